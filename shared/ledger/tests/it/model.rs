//! Random sequences of issue / pay / redeem / hold / release / settle / trade fills / clearing
//! set-offs, through the code that ships (payments through `transfer_many`, holds, fills and
//! cancels through `HoldBatch`, the exchange's path), checked after every step against a
//! simple reference model: balances, holds and the zero sum must match, and a refused
//! operation must change nothing.

use std::collections::HashMap;

use proptest::prelude::*;
use scrip_domain::HoldId;
use scrip_ledger::{HoldRef, LedgerError, TransferKind};
use scrip_store::Backend;

use crate::support::Economy;

const PRINCIPALS: usize = 5; // 0 and 1 are issuers, 2..5 customers
/// The principal that collects trade fees in the model (the registry's role).
const FEE_COLLECTOR: usize = 4;
/// `(code, issuer, scale, credit limit atoms, max balance atoms)`
const CURRENCIES: [(&str, usize, i64, i64, Option<i64>); 2] = [
    ("AAA", 0, 2, 5_000, Some(3_000)),
    ("BBB", 1, 0, 2_000, None),
];

#[derive(Debug, Clone)]
enum Op {
    Pay {
        currency: usize,
        from: usize,
        to: usize,
        atoms: i64,
    },
    Hold {
        currency: usize,
        who: usize,
        atoms: i64,
    },
    Release {
        hold: usize,
        atoms: Option<i64>,
    },
    Settle {
        hold: usize,
        to: usize,
        atoms: i64,
    },
    /// Several payments in one transaction; later ones see the effect of earlier ones.
    PayBatch(Vec<(usize, usize, usize, i64)>),
    /// A clearing run's set-offs: holders pay issuers back, one transaction.
    SetOff(Vec<(usize, usize, i64)>),
    /// A trade fill as an order book settles it, in one plan: the owner of hold `a` pays
    /// `a_atoms` out of it to the owner of hold `b`, who pays `b_atoms` out of hold `b` back,
    /// and the first pays a fee of `fee_atoms` out of what it received.
    Fill {
        a: usize,
        b: usize,
        a_atoms: i64,
        b_atoms: i64,
        fee_atoms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let atoms = prop_oneof![8 => 1_i64..2_500, 1 => -3_i64..=0];
    prop_oneof![
        6 => (0..2_usize, 0..PRINCIPALS, 0..PRINCIPALS, atoms.clone())
            .prop_map(|(currency, from, to, atoms)| Op::Pay { currency, from, to, atoms }),
        2 => (0..2_usize, 0..PRINCIPALS, atoms.clone())
            .prop_map(|(currency, who, atoms)| Op::Hold { currency, who, atoms }),
        1 => (0..8_usize, proptest::option::of(1_i64..1_500))
            .prop_map(|(hold, atoms)| Op::Release { hold, atoms }),
        2 => (0..8_usize, 0..PRINCIPALS, atoms.clone())
            .prop_map(|(hold, to, atoms)| Op::Settle { hold, to, atoms }),
        2 => proptest::collection::vec((0..2_usize, 0..PRINCIPALS, 0..PRINCIPALS, atoms.clone()), 1..12)
            .prop_map(Op::PayBatch),
        1 => proptest::collection::vec((0..2_usize, 0..PRINCIPALS, atoms.clone()), 1..6)
            .prop_map(Op::SetOff),
        3 => (0..8_usize, 0..8_usize, 1_i64..1_500, 1_i64..1_500, 0_i64..40)
            .prop_map(|(a, b, a_atoms, b_atoms, fee_atoms)| Op::Fill { a, b, a_atoms, b_atoms, fee_atoms }),
    ]
}

/// What the model says an operation does: the refusals it allows (more than one when two
/// rules fail at once and the ledger may report either), or success.
type Expected = Result<(), Vec<&'static str>>;

fn name(error: &LedgerError) -> &'static str {
    match error {
        LedgerError::BadAmount(_) => "bad_amount",
        LedgerError::SameAccount => "same_account",
        LedgerError::InsufficientFunds => "insufficient",
        LedgerError::CreditLimitExceeded => "credit_limit",
        LedgerError::MaxBalanceExceeded => "max_balance",
        LedgerError::HoldExceeded => "hold_exceeded",
        other => panic!("unexpected error {other:?}"),
    }
}

#[derive(Default, Clone, PartialEq, Debug)]
struct Model {
    balance: HashMap<(usize, usize), i64>,
    held: HashMap<(usize, usize), i64>,
    /// `(owner, currency, remaining)` per hold, in creation order.
    holds: Vec<(usize, usize, i64)>,
}

impl Model {
    fn floor(who: usize, currency: usize) -> i64 {
        let (_, issuer, _, credit_limit, _) = CURRENCIES[currency];
        if who == issuer { -credit_limit } else { 0 }
    }

    fn available(&self, who: usize, currency: usize) -> i64 {
        self.balance.get(&(who, currency)).copied().unwrap_or(0)
            - self.held.get(&(who, currency)).copied().unwrap_or(0)
            - Self::floor(who, currency)
    }

    fn spend_refusal(who: usize, currency: usize) -> &'static str {
        if who == CURRENCIES[currency].1 {
            "credit_limit"
        } else {
            "insufficient"
        }
    }

    fn receive_ok(&self, who: usize, currency: usize, atoms: i64) -> bool {
        let (_, issuer, _, _, max_balance) = CURRENCIES[currency];
        let balance = self.balance.get(&(who, currency)).copied().unwrap_or(0);
        who == issuer || max_balance.is_none_or(|max| balance + atoms <= max)
    }

    fn pay(
        &mut self,
        currency: usize,
        from: usize,
        to: usize,
        atoms: i64,
        from_hold: bool,
    ) -> Expected {
        if from == to && !from_hold {
            return Err(vec!["same_account"]);
        }
        if atoms <= 0 {
            return Err(vec!["bad_amount"]);
        }
        let mut refusals = Vec::new();
        if !from_hold && self.available(from, currency) < atoms {
            refusals.push(Self::spend_refusal(from, currency));
        }
        if !self.receive_ok(to, currency, atoms) {
            refusals.push("max_balance");
        }
        if !refusals.is_empty() {
            return Err(refusals);
        }
        *self.balance.entry((from, currency)).or_default() -= atoms;
        *self.balance.entry((to, currency)).or_default() += atoms;
        if from_hold {
            *self.held.entry((from, currency)).or_default() -= atoms;
        }
        Ok(())
    }
}

impl Model {
    /// A fill's expected outcome (see [`Op::Fill`]), applied to the model when accepted. The
    /// ceiling is checked on each account's net receipt over the fill, as the rules say.
    fn fill(&mut self, a: usize, b: usize, a_atoms: i64, b_atoms: i64, fee_atoms: i64) -> Expected {
        let (a_owner, a_currency, a_left) = self.holds[a];
        let (b_owner, b_currency, b_left) = self.holds[b];
        let mut refusals = Vec::new();
        if a_atoms > a_left || b_atoms > b_left {
            refusals.push("hold_exceeded");
        }
        let mut net: HashMap<(usize, usize), i64> = HashMap::new();
        *net.entry((a_owner, a_currency)).or_default() -= a_atoms;
        *net.entry((b_owner, a_currency)).or_default() += a_atoms;
        *net.entry((b_owner, b_currency)).or_default() -= b_atoms;
        *net.entry((a_owner, b_currency)).or_default() += b_atoms - fee_atoms;
        *net.entry((FEE_COLLECTOR, b_currency)).or_default() += fee_atoms;
        for (&(who, currency), &delta) in &net {
            if delta > 0 && !self.receive_ok(who, currency, delta) {
                refusals.push("max_balance");
            }
        }
        if !refusals.is_empty() {
            return Err(refusals);
        }
        for (&key, &delta) in &net {
            *self.balance.entry(key).or_default() += delta;
        }
        *self.held.entry((a_owner, a_currency)).or_default() -= a_atoms;
        *self.held.entry((b_owner, b_currency)).or_default() -= b_atoms;
        self.holds[a].2 -= a_atoms;
        self.holds[b].2 -= b_atoms;
        Ok(())
    }
}

/// Runs one fill through a `HoldBatch`, as an order book's writer does.
fn fill_in_ledger(
    e: &Economy,
    holds: (HoldId, HoldId),
    legs: [(usize, usize); 2],
    atoms: (i64, i64, i64),
) -> Result<(), LedgerError> {
    let [(a_owner, a_currency), (b_owner, b_currency)] = legs;
    let (a_atoms, b_atoms, fee_atoms) = atoms;
    let p = |who: usize| e.principals[who];
    let c = |currency: usize| e.currency(currency).id;
    e.hold_batch(a_owner, a_currency, |batch| {
        let memo = || "model fill".to_owned();
        batch.pay_from_hold(
            HoldRef::Existing(holds.0),
            p(a_owner),
            p(b_owner),
            c(a_currency),
            a_atoms,
            TransferKind::Trade,
            memo(),
        )?;
        batch.pay_from_hold(
            HoldRef::Existing(holds.1),
            p(b_owner),
            p(a_owner),
            c(b_currency),
            b_atoms,
            TransferKind::Trade,
            memo(),
        )?;
        batch.pay(
            p(a_owner),
            p(FEE_COLLECTOR),
            c(b_currency),
            fee_atoms,
            TransferKind::Fee,
            memo(),
        )
    })
    .map(drop)
}

fn run_case(backend: Backend, ops: &[Op]) -> Result<(), TestCaseError> {
    let e = Economy::new(backend, 2, PRINCIPALS - 2, &CURRENCIES);
    let mut model = Model::default();
    let mut hold_ids: Vec<HoldId> = Vec::new();
    for op in ops {
        let batch: Option<Vec<(usize, usize, usize, i64)>> = match op {
            Op::PayBatch(payments) => Some(payments.clone()),
            Op::SetOff(set_offs) => Some(
                set_offs
                    .iter()
                    .map(|&(c, from, atoms)| (c, from, CURRENCIES[c].1, atoms))
                    .collect(),
            ),
            _ => None,
        };
        if let Some(payments) = &batch {
            let kind = match op {
                Op::SetOff(_) => TransferKind::Clearing,
                _ => TransferKind::Payment,
            };
            let requests: Vec<_> = payments
                .iter()
                .map(|&(c, from, to, atoms)| scrip_ledger::TransferRequest {
                    kind,
                    ..e.pay(c, from, to, atoms)
                })
                .collect();
            let results = e
                .ledger
                .transfer_batch(&requests)
                .expect("no infrastructure error");
            prop_assert_eq!(results.len(), payments.len());
            for (&(c, from, to, atoms), result) in payments.iter().zip(&results) {
                let expected = model.pay(c, from, to, atoms, false);
                match (&expected, result) {
                    (Ok(()), Ok(t)) => prop_assert_eq!(t.amount.atoms(), atoms),
                    (Err(allowed), Err(error)) => {
                        prop_assert!(allowed.contains(&name(error)), "{:?}: {:?}", op, error)
                    }
                    _ => prop_assert!(false, "{:?}: model {:?}, ledger {:?}", op, expected, result),
                }
            }
        }
        let (expected, actual): (Expected, Result<(), LedgerError>) = match *op {
            Op::PayBatch(_) | Op::SetOff(_) => (Ok(()), Ok(())),
            Op::Fill {
                a,
                b,
                a_atoms,
                b_atoms,
                fee_atoms,
            } => {
                if hold_ids.is_empty() {
                    continue;
                }
                let (a, b) = (a % hold_ids.len(), b % hold_ids.len());
                let (a_owner, a_currency, _) = model.holds[a];
                let (b_owner, b_currency, _) = model.holds[b];
                // A fill trades two currencies between two owners, neither of them the
                // fee collector; the fee comes out of what was received.
                if a_owner == b_owner
                    || a_currency == b_currency
                    || a_owner == FEE_COLLECTOR
                    || b_owner == FEE_COLLECTOR
                {
                    continue;
                }
                let fee_atoms = fee_atoms.min(b_atoms);
                let expected = model.fill(a, b, a_atoms, b_atoms, fee_atoms);
                let actual = fill_in_ledger(
                    &e,
                    (hold_ids[a], hold_ids[b]),
                    [(a_owner, a_currency), (b_owner, b_currency)],
                    (a_atoms, b_atoms, fee_atoms),
                );
                (expected, actual)
            }
            Op::Pay {
                currency,
                from,
                to,
                atoms,
            } => (
                model.pay(currency, from, to, atoms, false),
                e.ledger
                    .transfer(&e.pay(currency, from, to, atoms))
                    .map(drop),
            ),
            Op::Hold {
                currency,
                who,
                atoms,
            } => {
                let expected = if atoms <= 0 {
                    Err(vec!["bad_amount"])
                } else if model.available(who, currency) < atoms {
                    Err(vec![Model::spend_refusal(who, currency)])
                } else {
                    *model.held.entry((who, currency)).or_default() += atoms;
                    model.holds.push((who, currency, atoms));
                    Ok(())
                };
                let actual = e.hold(who, currency, atoms);
                if let Ok(hold) = &actual {
                    hold_ids.push(*hold);
                }
                (expected, actual.map(drop))
            }
            Op::Release { hold, atoms } => {
                if hold_ids.is_empty() {
                    continue;
                }
                let index = hold % hold_ids.len();
                let (who, currency, remaining) = model.holds[index];
                let take = atoms.unwrap_or(remaining);
                let expected = if take > remaining {
                    Err(vec!["hold_exceeded"])
                } else {
                    model.holds[index].2 -= take;
                    *model.held.entry((who, currency)).or_default() -= take;
                    Ok(())
                };
                (expected, e.release(hold_ids[index], who, currency, take))
            }
            Op::Settle { hold, to, atoms } => {
                if hold_ids.is_empty() {
                    continue;
                }
                let index = hold % hold_ids.len();
                let (who, currency, remaining) = model.holds[index];
                let expected = if atoms == 0 {
                    // Nothing to pay: the batch skips it.
                    Ok(())
                } else if atoms < 0 {
                    Err(vec!["bad_amount", "same_account"])
                } else if who == to {
                    Err(vec!["same_account"])
                } else if atoms > remaining {
                    let mut refusals = vec!["hold_exceeded"];
                    if !model.receive_ok(to, currency, atoms) {
                        refusals.push("max_balance");
                    }
                    Err(refusals)
                } else {
                    let paid = model.pay(currency, who, to, atoms, true);
                    if paid.is_ok() {
                        model.holds[index].2 -= atoms;
                    }
                    paid
                };
                (
                    expected,
                    e.settle(hold_ids[index], who, to, currency, atoms),
                )
            }
        };
        match (&expected, &actual) {
            (Ok(()), Ok(())) => {}
            (Err(allowed), Err(error)) => {
                prop_assert!(
                    allowed.contains(&name(error)),
                    "{op:?}: got {error:?}, model allows {allowed:?}"
                );
            }
            _ => prop_assert!(
                false,
                "{op:?}: model says {expected:?}, ledger says {actual:?}"
            ),
        }
        for who in 0..PRINCIPALS {
            for currency in 0..CURRENCIES.len() {
                let want = (
                    model.balance.get(&(who, currency)).copied().unwrap_or(0),
                    model.held.get(&(who, currency)).copied().unwrap_or(0),
                );
                prop_assert_eq!(e.position(who, e.currency(currency).id), want, "{:?}", op);
            }
        }
        for currency in 0..CURRENCIES.len() {
            let sum: i64 = (0..PRINCIPALS)
                .map(|w| model.balance.get(&(w, currency)).copied().unwrap_or(0))
                .sum();
            prop_assert_eq!(sum, 0);
        }
    }
    let report = e.ledger.audit().expect("audit");
    prop_assert!(report.is_clean(), "{:?}", report.violations);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn ledger_matches_the_model_on_sqlite(ops in proptest::collection::vec(op(), 1..60)) {
        run_case(Backend::Sqlite, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn ledger_matches_the_model_on_postgres(ops in proptest::collection::vec(op(), 1..60)) {
        run_case(Backend::Postgres, &ops)?;
    }
}
