//! Idempotency keys under concurrency: one effect, the same answer for every replay.

use std::sync::Barrier;

use scrip_ledger::{IdempotencyKey, Idempotent, LedgerError, StoredResponse, transfer};

use crate::support::{BACKENDS, Economy};

#[test]
fn concurrent_replays_of_one_key_make_one_transfer() {
    for backend in BACKENDS {
        let e = Economy::new(backend, 1, 2, &[("BREAD", 0, 2, 1_000_000, None)]);
        let key = IdempotencyKey::parse("pay-bob-1").expect("key");
        let request = e.pay(0, 0, 1, 1_234);
        let payer = e.principals[0];
        let barrier = Barrier::new(20);
        let outcomes: Vec<Result<Idempotent, LedgerError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..20)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        e.ledger.idempotent(payer, &key, "hash-a", |conn| {
                            let t = transfer(conn, &request)?;
                            Ok(StoredResponse {
                                status: 201,
                                body: format!("transfer {}", t.id),
                            })
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let responses: Vec<&StoredResponse> = outcomes
            .iter()
            .map(|o| o.as_ref().expect("no error reaches the caller").response())
            .collect();
        assert!(
            responses.windows(2).all(|w| w[0] == w[1]),
            "same answer: {responses:?}"
        );
        let fresh = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Idempotent::Fresh(_))))
            .count();
        assert_eq!(fresh, 1);
        assert_eq!(e.position(1, e.currency(0).id), (1_234, 0));
        assert_eq!(e.ledger.audit().expect("audit").transfers, 1);

        let conflict = e.ledger.idempotent(payer, &key, "hash-b", |_| {
            Ok(StoredResponse {
                status: 201,
                body: String::new(),
            })
        });
        assert!(matches!(conflict, Err(LedgerError::IdempotencyConflict)));
        // Keys are scoped to the caller: another principal may use the same key.
        let other = e.ledger.idempotent(e.principals[1], &key, "hash-b", |_| {
            Ok(StoredResponse {
                status: 200,
                body: "other".into(),
            })
        });
        assert!(matches!(other, Ok(Idempotent::Fresh(_))));
        e.assert_audit_clean();
    }
}

#[test]
fn keys_are_bounded_visible_ascii() {
    assert!(IdempotencyKey::parse("").is_none());
    assert!(IdempotencyKey::parse("a b").is_none());
    assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
    assert!(IdempotencyKey::parse("0b7c1e4e-key").is_some());
}
