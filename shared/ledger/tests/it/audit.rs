//! The audit catches money edited behind the ledger's back.

use diesel::prelude::*;
use scrip_ledger::Violation;
use scrip_store::Backend;
use scrip_store::schema::{accounts, holds, transfers};

use crate::support::{BACKENDS, Economy};

#[test]
fn audit_catches_edits_behind_the_ledgers_back() {
    for backend in BACKENDS {
        let e = Economy::new(backend, 1, 2, &[("BREAD", 0, 2, 100_000, None)]);
        e.ledger.transfer(&e.pay(0, 0, 1, 2_500)).expect("issue");
        e.assert_audit_clean();
        let account = e.accounts(1)[0].id.get();

        // A balance bumped by one atom: money from nowhere, unexplained by the journal.
        let mut conn = e.db.pool.get().expect("conn");
        diesel::update(accounts::table.find(account))
            .set(accounts::balance_atoms.eq(accounts::balance_atoms + 1))
            .execute(&mut conn)
            .expect("tamper");
        let report = e.ledger.audit().expect("audit");
        assert!(report.violations.contains(&Violation::NonZeroSum {
            currency: "BREAD".into(),
            sum_atoms: 1
        }));
        assert!(report.violations.contains(&Violation::JournalMismatch {
            account,
            balance_atoms: 2_501,
            journal_atoms: 2_500
        }));

        // Undo it, then fake a hold that no hold row explains.
        diesel::update(accounts::table.find(account))
            .set((
                accounts::balance_atoms.eq(2_500),
                accounts::held_atoms.eq(10),
            ))
            .execute(&mut conn)
            .expect("tamper");
        let report = e.ledger.audit().expect("audit");
        assert_eq!(
            report.violations,
            vec![Violation::HoldsMismatch {
                account,
                held_atoms: 10,
                holds_atoms: 0
            }]
        );
        diesel::update(accounts::table.find(account))
            .set(accounts::held_atoms.eq(0))
            .execute(&mut conn)
            .expect("restore");
        diesel::delete(holds::table)
            .execute(&mut conn)
            .expect("no holds");
        e.assert_audit_clean();
    }
}

/// PostgreSQL does not check some references of the exchange's write path with a foreign key
/// (migration `writer_references`); the audit does. SQLite keeps the key.
#[test]
fn a_reference_no_key_checks_is_audited() {
    for backend in BACKENDS {
        let e = Economy::new(backend, 1, 2, &[("BREAD", 0, 2, 100_000, None)]);
        e.ledger.transfer(&e.pay(0, 0, 1, 2_500)).expect("issue");
        e.assert_audit_clean();
        let mut conn = e.db.pool.get().expect("conn");
        let transfer: i64 = transfers::table
            .select(transfers::id)
            .first(&mut conn)
            .expect("a journal line");
        let tampered = diesel::update(transfers::table.find(transfer))
            .set(transfers::hold_id.eq(Some(999_999_i64)))
            .execute(&mut conn);
        match backend {
            Backend::Sqlite => assert!(tampered.is_err(), "SQLite's foreign key refuses it"),
            Backend::Postgres => {
                tampered.expect("no key on PostgreSQL");
                let report = e.ledger.audit().expect("audit");
                assert_eq!(
                    report.violations,
                    vec![Violation::DanglingReference {
                        reference: "transfers.hold_id",
                        row: transfer
                    }]
                );
            }
        }
    }
}
