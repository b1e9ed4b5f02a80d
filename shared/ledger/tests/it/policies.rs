//! Currency policies through the code that ships, on both backends: demurrage against a model
//! computed independently, at most once per account and period however the job is run.

use std::collections::HashMap;

use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scrip_ledger::demurrage::run_due;
use scrip_ledger::policy::{Demurrage, DemurragePeriod};
use scrip_ledger::{LimitsChange, set_limits};
use scrip_store::Backend;
use scrip_store::schema::currencies;

use crate::support::{BACKENDS, Economy};

const ISSUER: usize = 0;
const HOLDERS: usize = 6;

/// The model, written without the ledger's code: each period every holder owes `rate` of its
/// whole balance (rounded down) plus what it still owed, and pays what is not held.
fn model(balances: &[i64], held: &[i64], rate_bps: i64, periods: usize) -> (Vec<i64>, i64) {
    let mut balances = balances.to_vec();
    let mut owed = vec![0_i64; balances.len()];
    let mut collected = 0;
    for _ in 0..periods {
        for i in 0..balances.len() {
            if balances[i] <= 0 {
                continue;
            }
            let due = balances[i] * rate_bps / 10_000 + owed[i];
            let take = due.min(balances[i] - held[i]).max(0);
            balances[i] -= take;
            owed[i] = due - take;
            collected += take;
        }
    }
    (balances, collected)
}

fn economy(backend: Backend) -> Economy {
    Economy::new(
        backend,
        1,
        HOLDERS,
        &[("MELT", ISSUER, 2, 100_000_000, None)],
    )
}

fn start_demurrage(e: &Economy, rate_bps: i64) {
    let change = LimitsChange {
        demurrage: Some(Some(Demurrage {
            rate_bps,
            period: DemurragePeriod::Day,
            to: None,
        })),
        ..LimitsChange::default()
    };
    e.ledger
        .write(|c| set_limits(c, e.currency(0).id, &change))
        .expect("demurrage on");
}

/// When the `n`th day after today begins: running then charges today + 1 .. today + n - 1.
fn day_start(n: i64) -> i64 {
    let today = DemurragePeriod::Day.index_at(scrip_http_now());
    DemurragePeriod::Day.start_us(today + n)
}

fn scrip_http_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn balances(e: &Economy) -> Vec<i64> {
    (1..=HOLDERS)
        .map(|p| e.position(p, e.currency(0).id).0)
        .collect()
}

#[test]
fn demurrage_over_many_periods_equals_the_model() {
    for backend in BACKENDS {
        let mut rng = StdRng::seed_from_u64(19);
        for _case in 0..4 {
            let e = economy(backend);
            let rate_bps = rng.random_range(1..=800);
            let periods = rng.random_range(1..=6_usize);
            let start: Vec<i64> = (0..HOLDERS)
                .map(|_| rng.random_range(0..2_000_000))
                .collect();
            for (i, &atoms) in start.iter().enumerate() {
                if atoms > 0 {
                    e.ledger
                        .transfer(&e.pay(0, ISSUER, i + 1, atoms))
                        .expect("issue");
                }
            }
            // Some holders keep most of it in an order: the hold must stay payable.
            let mut held = vec![0_i64; HOLDERS];
            for (i, h) in held.iter_mut().enumerate() {
                if start[i] > 10 && rng.random_bool(0.4) {
                    *h = start[i] - rng.random_range(0..start[i] / 10);
                    e.hold(i + 1, 0, *h).expect("hold");
                }
            }
            start_demurrage(&e, rate_bps);
            let at = day_start(periods as i64 + 1);
            let report = run_due(&e.ledger, at).expect("run");
            assert_eq!(report.periods, periods as u64, "{backend:?}");
            let (expected, collected) = model(&start, &held, rate_bps, periods);
            assert_eq!(
                balances(&e),
                expected,
                "{backend:?} rate {rate_bps} x {periods}"
            );
            let issuer = e.position(ISSUER, e.currency(0).id).0;
            let issued: i64 = start.iter().sum();
            assert_eq!(
                issuer,
                -issued + collected,
                "zero-sum: the issuer collected it"
            );
            for (i, &h) in held.iter().enumerate() {
                assert_eq!(e.position(i + 1, e.currency(0).id).1, h, "holds untouched");
            }
            // Run again at the same moment: nothing more is due.
            let again = run_due(&e.ledger, at).expect("rerun");
            assert_eq!(again.periods, 0);
            assert_eq!(balances(&e), expected);
            e.assert_audit_clean();
        }
    }
}

#[test]
fn a_run_that_stopped_before_marking_its_period_charges_nobody_twice() {
    for backend in BACKENDS {
        let e = economy(backend);
        for holder in 1..=HOLDERS {
            e.ledger
                .transfer(&e.pay(0, ISSUER, holder, 100_000))
                .expect("issue");
        }
        start_demurrage(&e, 100);
        let through: Option<i64> = e
            .ledger
            .read(|c| {
                Ok(currencies::table
                    .find(e.currency(0).id.get())
                    .select(currencies::demurrage_through)
                    .first(c)?)
            })
            .expect("through");
        let at = day_start(2);
        run_due(&e.ledger, at).expect("run");
        let after_one = balances(&e);
        assert_eq!(after_one, vec![99_000; HOLDERS]);
        // As if the run had crashed after charging every page but before moving the mark.
        e.ledger
            .write(|c| {
                diesel::update(currencies::table.find(e.currency(0).id.get()))
                    .set(currencies::demurrage_through.eq(through))
                    .execute(c)?;
                Ok(())
            })
            .expect("rewind");
        let report = run_due(&e.ledger, at).expect("rerun");
        assert_eq!((report.periods, report.accounts_charged), (1, 0));
        assert_eq!(
            balances(&e),
            after_one,
            "each account paid that period once"
        );
        e.assert_audit_clean();
    }
}

#[test]
fn concurrent_runs_charge_each_account_once() {
    let e = economy(Backend::Postgres);
    for holder in 1..=HOLDERS {
        e.ledger
            .transfer(&e.pay(0, ISSUER, holder, 1_000_000))
            .expect("issue");
    }
    start_demurrage(&e, 250);
    let at = day_start(4);
    let totals: Vec<HashMap<_, i128>> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| run_due(&e.ledger, at).expect("run").charged_atoms))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("thread"))
            .collect()
    });
    let (expected, collected) = model(&[1_000_000; HOLDERS], &[0; HOLDERS], 250, 3);
    assert_eq!(balances(&e), expected);
    let taken: i128 = totals.iter().flat_map(|t| t.values()).sum();
    assert_eq!(
        taken,
        i128::from(collected),
        "what the runs report was taken once"
    );
    e.assert_audit_clean();
}
