//! Random sequences of issue / pay / redeem / hold / release / settle, checked after every
//! step against a simple reference model: balances, holds and the zero sum must match, and a
//! refused operation must change nothing.

use std::collections::HashMap;

use proptest::prelude::*;
use scrip_domain::HoldId;
use scrip_ledger::{LedgerError, TransferKind, place_hold, release_hold, settle_hold};
use scrip_store::Backend;

use crate::support::Economy;

const PRINCIPALS: usize = 5; // 0 and 1 are issuers, 2..5 customers
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
        2 => proptest::collection::vec((0..2_usize, 0..PRINCIPALS, 0..PRINCIPALS, atoms), 1..12)
            .prop_map(Op::PayBatch),
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

fn run_case(backend: Backend, ops: &[Op]) -> Result<(), TestCaseError> {
    let e = Economy::new(backend, 2, PRINCIPALS - 2, &CURRENCIES);
    let mut model = Model::default();
    let mut hold_ids: Vec<HoldId> = Vec::new();
    for op in ops {
        if let Op::PayBatch(payments) = op {
            let requests: Vec<_> = payments
                .iter()
                .map(|&(c, from, to, atoms)| e.pay(c, from, to, atoms))
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
            Op::PayBatch(_) => (Ok(()), Ok(())),
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
                let actual = e.ledger.write(|c| {
                    place_hold(
                        c,
                        e.principals[who],
                        e.currency(currency).id,
                        e.amount(currency, atoms),
                        "model",
                    )
                });
                if let Ok(hold) = &actual {
                    hold_ids.push(hold.id);
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
                let amount = atoms.map(|a| e.amount(currency, a));
                (
                    expected,
                    e.ledger
                        .write(|c| release_hold(c, hold_ids[index], amount))
                        .map(drop),
                )
            }
            Op::Settle { hold, to, atoms } => {
                if hold_ids.is_empty() {
                    continue;
                }
                let index = hold % hold_ids.len();
                let (who, currency, remaining) = model.holds[index];
                let expected = if atoms <= 0 {
                    Err(vec!["bad_amount"])
                } else if who == to {
                    Err(vec!["same_account"])
                } else if atoms > remaining {
                    Err(vec!["hold_exceeded"])
                } else {
                    let paid = model.pay(currency, who, to, atoms, true);
                    if paid.is_ok() {
                        model.holds[index].2 -= atoms;
                    }
                    paid
                };
                let actual = e.ledger.write(|c| {
                    settle_hold(
                        c,
                        hold_ids[index],
                        e.principals[to],
                        e.amount(currency, atoms),
                        TransferKind::Trade,
                        None,
                    )
                });
                (expected, actual.map(drop))
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
