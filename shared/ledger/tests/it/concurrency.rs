//! Many threads moving money at once, with every thread also hitting one issuer account.
//! No invariant may break, no error that is not a business rule may reach a caller, and the
//! final balances must equal the sum of the transfers that were acknowledged.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scrip_ledger::{Committer, LedgerError};
use scrip_store::Backend;

use crate::support::{BACKENDS, Economy};

const THREADS: usize = 8;
const TRANSFERS_PER_THREAD: usize = 2_000;
const BUSINESSES: usize = 3;
const CUSTOMERS: usize = 47;
/// The issuer every thread keeps paying out of.
const HOT_ISSUER: usize = 0;

/// How the threads reach the ledger.
#[derive(Clone, Copy)]
enum Path {
    /// Each transfer in its own transaction.
    Direct,
    /// Through the group-commit writer.
    GroupCommit,
}

fn run(backend: Backend, path: Path) {
    let e = Economy::new(
        backend,
        BUSINESSES,
        CUSTOMERS,
        &[
            ("HOT", 0, 2, 50_000_000, None),
            ("CAPPED", 1, 0, 400_000, Some(5_000)),
            ("FINE", 2, 4, 2_000_000_000, None),
        ],
    );
    let principals = BUSINESSES + CUSTOMERS;
    let committer = Committer::start(e.ledger.clone());
    let committed: Vec<HashMap<(usize, usize), i64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let e = &e;
                let committer = &committer;
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(thread as u64);
                    let mut deltas: HashMap<(usize, usize), i64> = HashMap::new();
                    for _ in 0..TRANSFERS_PER_THREAD {
                        let currency = rng.random_range(0..3);
                        let from = match rng.random_range(0..10) {
                            0..=2 => HOT_ISSUER,
                            3..=4 => currency,
                            _ => rng.random_range(0..principals),
                        };
                        let currency = if from == HOT_ISSUER { 0 } else { currency };
                        let mut to = rng.random_range(0..principals);
                        if to == from {
                            to = (to + 1) % principals;
                        }
                        let atoms = rng.random_range(1..=2_000);
                        let request = e.pay(currency, from, to, atoms);
                        let outcome = match path {
                            Path::Direct => e.ledger.transfer(&request),
                            Path::GroupCommit => committer.transfer(request),
                        };
                        match outcome {
                            Ok(_) => {
                                *deltas.entry((from, currency)).or_default() -= atoms;
                                *deltas.entry((to, currency)).or_default() += atoms;
                            }
                            Err(
                                LedgerError::InsufficientFunds
                                | LedgerError::CreditLimitExceeded
                                | LedgerError::MaxBalanceExceeded,
                            ) => {}
                            Err(other) => {
                                panic!("a non-business error reached the caller: {other:?}")
                            }
                        }
                    }
                    deltas
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });

    let mut expected: HashMap<(usize, usize), i64> = HashMap::new();
    for deltas in committed {
        for (key, delta) in deltas {
            *expected.entry(key).or_default() += delta;
        }
    }
    let mut moved = 0;
    for principal in 0..principals {
        for currency in 0..3 {
            let (balance, held) = e.position(principal, e.currency(currency).id);
            let want = expected.get(&(principal, currency)).copied().unwrap_or(0);
            assert_eq!(balance, want, "principal {principal} currency {currency}");
            assert_eq!(held, 0);
            moved += balance.abs();
        }
    }
    assert!(moved > 0, "the test moved money");
    let report = e.ledger.audit().expect("audit");
    assert!(report.is_clean(), "{:#?}", report.violations);
    assert!(
        report.transfers > (THREADS * TRANSFERS_PER_THREAD / 4) as u64,
        "most transfers went through: {}",
        report.transfers
    );
}

#[test]
fn concurrent_transfers_keep_every_invariant_on_postgres() {
    run(BACKENDS[1], Path::Direct);
}

#[test]
fn concurrent_transfers_keep_every_invariant_on_sqlite() {
    run(BACKENDS[0], Path::Direct);
}

#[test]
fn group_committed_transfers_keep_every_invariant_on_postgres() {
    run(BACKENDS[1], Path::GroupCommit);
}

#[test]
fn group_committed_transfers_keep_every_invariant_on_sqlite() {
    run(BACKENDS[0], Path::GroupCommit);
}

/// Half the threads pay as above; the other half trade as an order book does, each in its own
/// transactions through `HoldBatch`: reserve funds (read unlocked, checked again under lock at
/// commit, so a payment that spent them meanwhile refuses the hold), pay part of the hold out
/// as a fill, release the rest. Every acknowledged effect must be in the final balances, no
/// hold may be left, and the audit must be clean.
fn run_trading(backend: Backend) {
    const ROUNDS: usize = 300;
    let e = Economy::new(
        backend,
        BUSINESSES,
        CUSTOMERS,
        &[
            ("HOT", 0, 2, 50_000_000, None),
            ("CAPPED", 1, 0, 400_000, Some(5_000)),
        ],
    );
    let principals = BUSINESSES + CUSTOMERS;
    // Fund the customers so that holds have something to reserve.
    for customer in BUSINESSES..principals {
        for currency in 0..2 {
            e.ledger
                .transfer(&e.pay(currency, currency, customer, 4_000))
                .expect("funding");
        }
    }
    let committed: Vec<HashMap<(usize, usize), i64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let e = &e;
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(100 + thread as u64);
                    let mut deltas: HashMap<(usize, usize), i64> = HashMap::new();
                    let mut moved = |from: usize, to: usize, currency: usize, atoms: i64| {
                        *deltas.entry((from, currency)).or_default() -= atoms;
                        *deltas.entry((to, currency)).or_default() += atoms;
                    };
                    for _ in 0..ROUNDS {
                        let currency = rng.random_range(0..2);
                        let who = rng.random_range(BUSINESSES..principals);
                        let mut to = rng.random_range(0..principals);
                        if to == who {
                            to = (to + 1) % principals;
                        }
                        let atoms = rng.random_range(1..=1_500);
                        if thread % 2 == 0 {
                            match e.ledger.transfer(&e.pay(currency, who, to, atoms)) {
                                Ok(_) => moved(who, to, currency, atoms),
                                Err(
                                    LedgerError::InsufficientFunds
                                    | LedgerError::MaxBalanceExceeded,
                                ) => {}
                                Err(other) => panic!("payment: {other:?}"),
                            }
                            continue;
                        }
                        let hold = match e.hold(who, currency, atoms) {
                            Ok(hold) => hold,
                            Err(LedgerError::InsufficientFunds) => continue,
                            Err(other) => panic!("hold: {other:?}"),
                        };
                        let fill = rng.random_range(0..=atoms);
                        let mut left = atoms;
                        if fill > 0 {
                            match e.settle(hold, who, to, currency, fill) {
                                Ok(()) => {
                                    moved(who, to, currency, fill);
                                    left -= fill;
                                }
                                Err(LedgerError::MaxBalanceExceeded) => {}
                                Err(other) => panic!("fill: {other:?}"),
                            }
                        }
                        e.release(hold, who, currency, left)
                            .expect("release the rest");
                    }
                    deltas
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let mut expected: HashMap<(usize, usize), i64> = HashMap::new();
    for customer in BUSINESSES..principals {
        for currency in 0..2 {
            *expected.entry((currency, currency)).or_default() -= 4_000;
            *expected.entry((customer, currency)).or_default() += 4_000;
        }
    }
    for deltas in committed {
        for (key, delta) in deltas {
            *expected.entry(key).or_default() += delta;
        }
    }
    for principal in 0..principals {
        for currency in 0..2 {
            let (balance, held) = e.position(principal, e.currency(currency).id);
            let want = expected.get(&(principal, currency)).copied().unwrap_or(0);
            assert_eq!(balance, want, "principal {principal} currency {currency}");
            assert_eq!(held, 0, "every hold was settled or released");
        }
    }
    e.assert_audit_clean();
}

#[test]
fn holds_fills_and_payments_race_without_breaking_an_invariant_on_postgres() {
    run_trading(BACKENDS[1]);
}

#[test]
fn holds_fills_and_payments_race_without_breaking_an_invariant_on_sqlite() {
    run_trading(BACKENDS[0]);
}
