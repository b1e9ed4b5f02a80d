//! Every refusal is its own typed error and changes nothing.

use scrip_domain::{
    Amount, AmountError, CurrencyId, Handle, HoldId, PrincipalId, PrincipalKind, Scale,
};
use scrip_ledger::{
    LedgerError, LimitsChange, NewCurrency, create_currency, create_principal, set_limits,
};
use scrip_store::Backend;

use crate::support::{BACKENDS, Economy};

const BREAD: usize = 0; // shop0, scale 2, credit limit 1000.00, max balance 500.00
const ALE: usize = 1; // shop1, scale 0, credit limit 300, no max balance
const SHOP0: usize = 0;
const SHOP1: usize = 1;
const ALICE: usize = 2;
const BOB: usize = 3;

fn economy(backend: Backend) -> Economy {
    let economy = Economy::new(
        backend,
        2,
        2,
        &[
            ("BREAD", SHOP0, 2, 100_000, Some(50_000)),
            ("ALE", SHOP1, 0, 300, None),
        ],
    );
    economy
        .ledger
        .transfer(&economy.pay(BREAD, SHOP0, ALICE, 10_000))
        .expect("issue 100.00");
    economy
}

/// Runs `attempt`, expects `check` to accept its error, and verifies nothing changed.
fn refused<T: std::fmt::Debug>(
    economy: &Economy,
    what: &str,
    attempt: impl FnOnce(&Economy) -> Result<T, LedgerError>,
    check: impl FnOnce(&LedgerError) -> bool,
) {
    let before = economy.snapshot();
    let audit_before = economy.ledger.audit().expect("audit");
    match attempt(economy) {
        Ok(value) => panic!("{what}: expected a refusal, got {value:?}"),
        Err(error) => assert!(check(&error), "{what}: unexpected error {error:?}"),
    }
    assert_eq!(economy.snapshot(), before, "{what}: balances changed");
    let audit_after = economy.ledger.audit().expect("audit");
    assert_eq!(
        audit_after.transfers, audit_before.transfers,
        "{what}: journal changed"
    );
    assert!(
        audit_after.is_clean(),
        "{what}: {:?}",
        audit_after.violations
    );
}

#[test]
fn refusals_are_typed_and_change_nothing() {
    for backend in BACKENDS {
        let e = economy(backend);
        let bread = e.currency(BREAD).clone();

        refused(
            &e,
            "zero",
            |e| e.ledger.transfer(&e.pay(BREAD, ALICE, BOB, 0)),
            |err| matches!(err, LedgerError::BadAmount(AmountError::NotPositive)),
        );
        refused(
            &e,
            "negative",
            |e| e.ledger.transfer(&e.pay(BREAD, ALICE, BOB, -5)),
            |err| matches!(err, LedgerError::BadAmount(AmountError::NotPositive)),
        );
        refused(
            &e,
            "wrong scale",
            |e| {
                let mut request = e.pay(BREAD, ALICE, BOB, 1);
                request.amount = Amount::from_atoms(1, Scale::new(3).expect("scale"));
                e.ledger.transfer(&request)
            },
            |err| matches!(err, LedgerError::ScaleMismatch { expected: 2 }),
        );
        refused(
            &e,
            "beyond the ledger's bound",
            |e| e.ledger.transfer(&e.pay(BREAD, SHOP0, BOB, i64::MAX)),
            |err| matches!(err, LedgerError::BadAmount(AmountError::Overflow)),
        );
        refused(
            &e,
            "unknown currency",
            |e| {
                let mut request = e.pay(BREAD, ALICE, BOB, 1);
                request.currency = CurrencyId::new(987_654);
                e.ledger.transfer(&request)
            },
            |err| matches!(err, LedgerError::UnknownCurrency),
        );
        refused(
            &e,
            "unknown payee",
            |e| {
                let mut request = e.pay(BREAD, ALICE, BOB, 1);
                request.to = PrincipalId::new(987_654);
                e.ledger.transfer(&request)
            },
            |err| matches!(err, LedgerError::UnknownPrincipal),
        );
        refused(
            &e,
            "to oneself",
            |e| e.ledger.transfer(&e.pay(BREAD, ALICE, ALICE, 1)),
            |err| matches!(err, LedgerError::SameAccount),
        );
        refused(
            &e,
            "member below zero",
            |e| e.ledger.transfer(&e.pay(BREAD, ALICE, BOB, 10_001)),
            |err| matches!(err, LedgerError::InsufficientFunds),
        );
        refused(
            &e,
            "never held the currency",
            |e| e.ledger.transfer(&e.pay(BREAD, BOB, ALICE, 1)),
            |err| matches!(err, LedgerError::InsufficientFunds),
        );
        refused(
            &e,
            "issuer below its credit limit",
            |e| e.ledger.transfer(&e.pay(ALE, SHOP1, BOB, 301)),
            |err| matches!(err, LedgerError::CreditLimitExceeded),
        );
        refused(
            &e,
            "above max balance",
            |e| e.ledger.transfer(&e.pay(BREAD, SHOP0, ALICE, 40_001)),
            |err| matches!(err, LedgerError::MaxBalanceExceeded),
        );

        // Held funds cannot be spent twice.
        let hold = e.hold(ALICE, BREAD, 6_000).expect("hold 60.00 of 100.00");
        assert_eq!(e.position(ALICE, bread.id), (10_000, 6_000));
        refused(
            &e,
            "spending held funds",
            |e| e.ledger.transfer(&e.pay(BREAD, ALICE, BOB, 4_001)),
            |err| matches!(err, LedgerError::InsufficientFunds),
        );
        refused(
            &e,
            "holding held funds",
            |e| e.hold(ALICE, BREAD, 4_001),
            |err| matches!(err, LedgerError::InsufficientFunds),
        );
        refused(
            &e,
            "releasing more than the hold",
            |e| e.release(hold, ALICE, BREAD, 6_001),
            |err| matches!(err, LedgerError::HoldExceeded),
        );
        refused(
            &e,
            "settling more than the hold",
            |e| e.settle(hold, ALICE, BOB, BREAD, 6_001),
            |err| matches!(err, LedgerError::HoldExceeded),
        );
        refused(
            &e,
            "unknown hold",
            |e| e.release(HoldId::new(987_654), ALICE, BREAD, 1),
            |err| matches!(err, LedgerError::UnknownHold),
        );
        refused(
            &e,
            "a hold on someone else's account",
            |e| e.release(hold, BOB, BREAD, 1),
            |err| matches!(err, LedgerError::UnknownHold),
        );
        refused(
            &e,
            "settling a hold to its own owner",
            |e| e.settle(hold, ALICE, ALICE, BREAD, 1),
            |err| matches!(err, LedgerError::SameAccount),
        );
        // Settling a hold into an account at its maximum is refused and the hold stays whole.
        e.ledger
            .transfer(&e.pay(BREAD, SHOP0, BOB, 50_000))
            .expect("bob at max balance");
        refused(
            &e,
            "settling above max balance",
            |e| e.settle(hold, ALICE, BOB, BREAD, 1),
            |err| matches!(err, LedgerError::MaxBalanceExceeded),
        );

        // Policies cannot be moved under existing positions.
        refused(
            &e,
            "credit limit below what is issued",
            |e| {
                let change = LimitsChange {
                    credit_limit: Some(e.amount(BREAD, 59_999)),
                    ..Default::default()
                };
                e.ledger.write(|c| set_limits(c, bread.id, &change))
            },
            |err| matches!(err, LedgerError::LimitBelowPosition),
        );
        refused(
            &e,
            "max balance below a holding",
            |e| {
                let change = LimitsChange {
                    max_balance: Some(Some(e.amount(BREAD, 49_999))),
                    ..Default::default()
                };
                e.ledger.write(|c| set_limits(c, bread.id, &change))
            },
            |err| matches!(err, LedgerError::LimitBelowPosition),
        );
        refused(
            &e,
            "code taken",
            |e| {
                let new = NewCurrency {
                    issuer: e.principals[SHOP1],
                    ..new_currency_like(e, BREAD)
                };
                e.ledger.write(|c| create_currency(c, &new))
            },
            |err| matches!(err, LedgerError::CodeTaken),
        );
        refused(
            &e,
            "handle taken",
            |e| {
                let handle = Handle::parse("user2").expect("handle");
                e.ledger
                    .write(|c| create_principal(c, &handle, PrincipalKind::User, None))
            },
            |err| matches!(err, LedgerError::HandleTaken),
        );
    }
}

fn new_currency_like(e: &Economy, index: usize) -> NewCurrency {
    let c = e.currency(index);
    NewCurrency {
        issuer: c.issuer_id,
        code: c.code.clone(),
        name: c.name.clone(),
        scale: c.scale,
        credit_limit: c.credit_limit,
        max_balance: c.max_balance,
        unit: c.unit.clone(),
        par: c.par,
        policies: Default::default(),
    }
}

#[test]
fn issue_pay_redeem_hold_and_settle_move_exact_amounts() {
    for backend in BACKENDS {
        let e = economy(backend);
        let bread = e.currency(BREAD).id;
        // Issued 100.00 to Alice in setup; she pays Bob 30.25 and redeems 10.00 at the shop.
        e.ledger
            .transfer(&e.pay(BREAD, ALICE, BOB, 3_025))
            .expect("pay");
        e.ledger
            .transfer(&e.pay(BREAD, ALICE, SHOP0, 1_000))
            .expect("redeem");
        assert_eq!(e.position(SHOP0, bread), (-9_000, 0));
        assert_eq!(e.position(ALICE, bread), (5_975, 0));
        assert_eq!(e.position(BOB, bread), (3_025, 0));

        // Bob reserves 20.00, 15.00 settle to the other shop, the rest is released.
        let hold = e.hold(BOB, BREAD, 2_000).expect("hold");
        e.settle(hold, BOB, SHOP1, BREAD, 1_500).expect("settle");
        let fill = e
            .ledger
            .read(|c| {
                scrip_ledger::journal_page(
                    c,
                    (e.principals[SHOP1], scrip_ledger::Lines::All),
                    None,
                    None,
                    1,
                )
            })
            .expect("statement");
        assert_eq!(fill.len(), 1);
        assert_eq!(
            (fill[0].transfer.amount.atoms(), fill[0].transfer.hold_id),
            (1_500, Some(hold))
        );
        assert_eq!(e.position(BOB, bread), (1_525, 500));
        e.release(hold, BOB, BREAD, 500).expect("release the rest");
        refused(
            &e,
            "releasing an emptied hold",
            |e| e.release(hold, BOB, BREAD, 1),
            |err| matches!(err, LedgerError::HoldExceeded),
        );
        assert_eq!(e.position(BOB, bread), (1_525, 0));
        assert_eq!(e.position(SHOP1, bread), (1_500, 0));

        // Lowering the credit limit to exactly what is issued, and raising max balance, are fine.
        let change = LimitsChange {
            credit_limit: Some(e.amount(BREAD, 9_000)),
            max_balance: Some(None),
            ..Default::default()
        };
        let updated = e
            .ledger
            .write(|c| set_limits(c, bread, &change))
            .expect("limits");
        assert_eq!(
            (updated.credit_limit.atoms(), updated.max_balance),
            (9_000, None)
        );
        e.assert_audit_clean();
    }
}

#[test]
fn a_batch_applies_each_transfer_on_its_own() {
    for backend in BACKENDS {
        let e = economy(backend);
        let batch = [
            e.pay(BREAD, ALICE, BOB, 4_000),
            e.pay(BREAD, ALICE, BOB, 7_000),
            e.pay(BREAD, ALICE, BOB, 6_000),
        ];
        let results = e.ledger.transfer_batch(&batch).expect("batch");
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(LedgerError::InsufficientFunds)));
        assert!(results[2].is_ok());
        assert_eq!(e.position(ALICE, e.currency(BREAD).id), (0, 0));
        e.assert_audit_clean();
    }
}

#[test]
fn a_refused_first_payment_opens_no_account() {
    for backend in BACKENDS {
        let e = economy(backend);
        assert!(e.accounts(BOB).is_empty());
        let refused = e.ledger.transfer(&e.pay(BREAD, ALICE, BOB, 10_001));
        assert!(matches!(refused, Err(LedgerError::InsufficientFunds)));
        assert!(e.accounts(BOB).is_empty(), "no empty account left behind");
        let batch = e
            .ledger
            .transfer_batch(&[
                e.pay(BREAD, ALICE, BOB, 20_000),
                e.pay(BREAD, ALICE, SHOP1, 1),
            ])
            .expect("batch");
        assert!(batch[0].is_err() && batch[1].is_ok());
        assert!(e.accounts(BOB).is_empty());
        assert_eq!(
            e.accounts(SHOP1).len(),
            2,
            "its own ALE account and the BREAD it received"
        );
        e.assert_audit_clean();
    }
}

/// The registry's fee accounts take no maximum balance: fees above a currency's maximum are
/// collected, and a maximum set later leaves them alone; the audit agrees.
#[test]
fn the_registrys_fee_accounts_have_no_ceiling() {
    for backend in BACKENDS {
        let e = economy(backend);
        let registry = e
            .ledger
            .read(|c| {
                scrip_ledger::principal_by_handle(c, &Handle::parse("registry").expect("handle"))
            })
            .expect("the registry principal");
        let bread = e.currency(BREAD).id;
        let fee = |atoms| scrip_ledger::TransferRequest {
            currency: bread,
            from: e.principals[SHOP0],
            to: registry.id,
            amount: e.amount(BREAD, atoms),
            kind: scrip_ledger::TransferKind::Fee,
            memo: None,
        };
        // 600.00 is above BREAD's maximum balance of 500.00.
        e.ledger
            .transfer(&fee(60_000))
            .expect("fees above the maximum");
        let change = LimitsChange {
            max_balance: Some(Some(e.amount(BREAD, 20_000))),
            ..Default::default()
        };
        e.ledger
            .write(|c| set_limits(c, bread, &change))
            .expect("a lower maximum does not count the registry");
        e.ledger.transfer(&fee(1)).expect("still collects");
        e.assert_audit_clean();
    }
}

/// A holder of more currencies than SQLite accepts variables in one statement (32,766) still
/// reads its history: the statement selects its accounts with a subquery, not a list of ids.
#[test]
fn a_holder_of_very_many_currencies_reads_its_history_on_sqlite() {
    use diesel::RunQueryDsl;
    let e = economy(Backend::Sqlite);
    let alice = e.principals[ALICE];
    let shop = e.principals[SHOP1].get();
    e.ledger
        .write(|c| {
            diesel::sql_query(format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 33000) \
                 INSERT INTO currencies (code, name, issuer_id, scale, credit_limit_atoms, \
                 max_balance_atoms, unit, par, created_at_us) \
                 SELECT 'Z' || i, 'many', {shop}, 0, 0, NULL, 'EUR', '1', 0 FROM n"
            ))
            .execute(c)?;
            diesel::sql_query(format!(
                "INSERT INTO accounts (principal_id, currency_id, balance_atoms, held_atoms, \
                 floor_atoms, ceiling_atoms, created_at_us) \
                 SELECT {}, id, 0, 0, 0, NULL, 0 FROM currencies WHERE name = 'many'",
                alice.get()
            ))
            .execute(c)?;
            Ok(())
        })
        .expect("33,000 empty accounts");
    let history = e
        .ledger
        .read(|c| scrip_ledger::journal_page(c, (alice, scrip_ledger::Lines::All), None, None, 50))
        .expect("the history of a holder of 33,000 currencies");
    assert_eq!(history.len(), 1, "the issue of 100.00 BREAD in the set-up");
}
