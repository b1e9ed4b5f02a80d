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

/// The incremental audit reads only the journal written since its checkpoint, yet still finds
/// a balance edited behind the ledger's back, and agrees with the full audit; lines still
/// within the settling minute are read again, never taken into the checkpoint early.
#[test]
fn the_incremental_audit_reads_only_whats_new_and_still_catches_edits() {
    for backend in BACKENDS {
        let e = Economy::new(backend, 1, 2, &[("BREAD", 0, 2, 100_000, None)]);
        for _ in 0..5 {
            e.ledger.transfer(&e.pay(0, 0, 1, 100)).expect("issue");
        }
        let minute = 60_000_000;
        let mut checkpoint = scrip_ledger::Checkpoint::default();
        let t0 = 1_000_000 * minute;
        let audit = |checkpoint: &mut scrip_ledger::Checkpoint, now| {
            e.ledger
                .read(|conn| scrip_ledger::audit_since(conn, checkpoint, now))
                .expect("audit")
        };
        let first = audit(&mut checkpoint, t0);
        assert!(first.is_clean(), "{:?}", first.violations);
        assert_eq!(first.transfers, 5);
        assert_eq!(checkpoint.through().transfers, 0, "nothing settled yet");
        // Within the minute: read again; after it, the first run's lines are settled.
        let again = audit(&mut checkpoint, t0 + minute / 2);
        assert!(again.is_clean());
        assert_eq!(checkpoint.through().transfers, 0);
        audit(&mut checkpoint, t0 + 2 * minute);
        let settled = checkpoint.through().transfers;
        assert!(settled > 0, "the first run's lines are settled");

        e.ledger.transfer(&e.pay(0, 1, 2, 50)).expect("pay");
        let next = audit(&mut checkpoint, t0 + 3 * minute);
        assert!(next.is_clean(), "{:?}", next.violations);
        assert_eq!(next.transfers, 6, "the checkpoint's lines and the new one");
        assert_eq!(
            next,
            e.ledger.audit().expect("full"),
            "the same verdict as a full audit"
        );

        let account = e.accounts(2)[0].id.get();
        let mut conn = e.db.pool.get().expect("conn");
        diesel::update(accounts::table.find(account))
            .set(accounts::balance_atoms.eq(accounts::balance_atoms + 7))
            .execute(&mut conn)
            .expect("tamper");
        let found = audit(&mut checkpoint, t0 + 4 * minute);
        assert!(
            found.violations.contains(&Violation::JournalMismatch {
                account,
                balance_atoms: 57,
                journal_atoms: 50
            }),
            "{:?}",
            found.violations
        );
        assert!(checkpoint.through().transfers >= settled);
    }
}

/// A hold placed for an order that no longer rests (here: one that never existed) is money
/// locked behind: the audit names it.
#[test]
fn a_hold_left_behind_an_ended_order_is_found() {
    for backend in BACKENDS {
        let e = Economy::new(backend, 1, 2, &[("BREAD", 0, 2, 100_000, None)]);
        e.ledger.transfer(&e.pay(0, 0, 1, 1_000)).expect("issue");
        let (principal, currency) = (e.principals[1], e.currencies[0].id);
        let (_, holds) = e
            .hold_batch(1, 0, |batch| {
                batch.place_hold(principal, currency, 300, "order 424242".into())
            })
            .expect("hold");
        let report = e.ledger.audit().expect("audit");
        assert_eq!(
            report.violations,
            vec![Violation::HoldLeftBehind {
                hold: holds[0].get(),
                order: 424_242
            }]
        );
        assert_eq!(report.violations[0].check(), "open_orders");
    }
}
