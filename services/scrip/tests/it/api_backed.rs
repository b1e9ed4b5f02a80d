//! Backed currencies as their users meet them (issue 19, `kind: backed`): an issuer issues only
//! what its reserve in another business's currency covers, through payments and orders, at the
//! edge to the atom, also under concurrency; the reserve is released only as outstanding falls
//! and after its lock, and under the owners' approval rule. On both backends.

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    a_backed_currency_issues_only_what_its_reserve_covers,
    a_reserve_stays_locked_and_its_release_follows_the_owners_rule,
    backing_is_checked_under_its_field,
);

/// Bert's brewery issues ALE and pays rosa's bakery 300.00 ALE; the bakery issues BREAD
/// backed by ALE at `ratio_bps`, locked `lock_days`. Tokens of rosa and bert.
async fn backed_bakery(app: &TestApp, ratio_bps: i64, lock_days: i64) -> (String, String) {
    let rosa = app.user("rosa").await;
    let bert = app.user("bert").await;
    app.shop(&bert, "brewery", "ALE").await;
    app.business(&rosa, "bakery").await;
    let paid = app
        .pay(
            &bert,
            json!({"from": "brewery", "to": "bakery", "currency": "ALE", "amount": "300.00"}),
        )
        .await;
    assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);
    let (status, created) = app
        .post(
            "/api/v1/currencies",
            Some(&rosa),
            json!({"issuer": "bakery", "code": "BREAD", "name": "Bread", "scale": 2,
                   "credit_limit": "1000.00", "kind": "backed",
                   "backing": {"currency": "ALE", "ratio_bps": ratio_bps, "lock_days": lock_days}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["kind"], "backed");
    assert_eq!(created["backing"]["currency"], "ALE");
    assert_eq!(created["backing"]["backs"], "0.00");
    (rosa, bert)
}

fn issue(to: &str, amount: &str) -> Value {
    json!({"from": "bakery", "to": to, "currency": "BREAD", "amount": amount})
}

async fn reserve(app: &TestApp) -> Value {
    let (status, body) = app.get("/api/v1/currencies/BREAD/reserve", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn deposit(app: &TestApp, token: &str, amount: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/currencies/BREAD/reserve",
        Some(token),
        json!({"amount": amount}),
    )
    .await
}

async fn release(app: &TestApp, token: &str, amount: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/currencies/BREAD/reserve/release",
        Some(token),
        json!({"amount": amount}),
    )
    .await
}

async fn a_backed_currency_issues_only_what_its_reserve_covers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, _bert) = backed_bakery(&app, 5_000, 0).await;
    let alice = app.user("alice").await;

    // No reserve yet: not one atom can be issued, whatever the credit limit says.
    let refused = app.pay(&rosa, issue("alice", "0.01")).await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );

    // 100.00 ALE at 50 % backs 200.00 BREAD.
    let (status, body) = deposit(&app, &rosa, "100.00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["reserve"].as_str(), body["backs"].as_str()),
        (Some("100.00"), Some("200.00"))
    );
    let held = app.balances(&rosa, Some("bakery")).await;
    assert!(
        held.contains(&("ALE".into(), "300.00".into(), "100.00".into())),
        "the reserve stays the bakery's, held: {held:?}"
    );
    // More than the bakery holds free is refused and changes nothing.
    let too_much = deposit(&app, &rosa, "200.01").await;
    assert_problem(
        &too_much,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );

    // Concurrent issuing of 30 x 10.00 against 200.00 of cover: exactly 20 pass.
    let payments = (0..30).map(|_| app.pay(&rosa, issue("alice", "10.00")));
    let answers = futures_util::future::join_all(payments).await;
    let passed = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(passed, 20, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["code"], "insufficient_funds", "{body}");
    }
    let at_edge = app.pay(&rosa, issue("alice", "0.01")).await;
    assert_problem(
        &at_edge,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );
    assert!(
        at_edge.1["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("reserve"),
        "the refusal says the reserve is what limits it: {}",
        at_edge.1
    );

    // The whole reserve is needed: not one atom can be released.
    let in_use = release(&app, &rosa, "0.01").await;
    assert_problem(&in_use, StatusCode::UNPROCESSABLE_ENTITY, "reserve_in_use");
    assert!(
        in_use.1["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("0.00"),
        "{}",
        in_use.1
    );

    // Alice brings 50.00 back: 150.00 outstanding needs 75.00 ALE, so 25.00 is released.
    let back = app
        .pay(
            &alice,
            json!({"from": "alice", "to": "bakery", "currency": "BREAD", "amount": "50.00"}),
        )
        .await;
    assert_eq!(back.0, StatusCode::CREATED, "{}", back.1);
    let now = reserve(&app).await;
    assert_eq!(
        (now["outstanding"].as_str(), now["releasable"].as_str()),
        (Some("150.00"), Some("25.00")),
        "{now}"
    );
    let over = release(&app, &rosa, "25.01").await;
    assert_problem(&over, StatusCode::UNPROCESSABLE_ENTITY, "reserve_in_use");
    let (status, body) = release(&app, &rosa, "25.00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["reserve"].as_str(), body["backs"].as_str()),
        (Some("75.00"), Some("150.00"))
    );

    // Orders are held to the same cover: the bakery cannot offer BREAD it could not issue.
    app.market(&rosa, ("BREAD", "ALE")).await;
    let sell = json!({"market": "BREAD-ALE", "side": "sell", "type": "limit", "price": "1.00",
                      "quantity": "1.00", "holder": "bakery"});
    let refused = app.post("/api/v1/orders", Some(&rosa), sell.clone()).await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );
    let (status, body) = deposit(&app, &rosa, "0.50").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post("/api/v1/orders", Some(&rosa), sell).await;
    assert_eq!(status, StatusCode::CREATED, "exactly covered: {body}");

    // The credit limit still caps what the reserve would allow, and is never below what is out.
    let lowered = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"credit_limit": "150.99"}),
        )
        .await;
    assert_problem(
        &lowered,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_below_position",
    );
    let (status, body) = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"credit_limit": "151.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["backing"]["backs"], "151.00");
    let (status, public) = app.get("/api/v1/currencies/BREAD", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(public["backing"]["reserve"], "75.50", "{public}");
    let (status, health) = app.get("/api/v1/currencies/BREAD/health", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["reserve_backs"], "151.00", "{health}");
    app.assert_audit_clean().await;
}

async fn a_reserve_stays_locked_and_its_release_follows_the_owners_rule(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, _bert) = backed_bakery(&app, 10_000, 30).await;
    let (status, body) = deposit(&app, &rosa, "100.00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["locked"], "100.00");
    assert_eq!(body["releasable"], "0.00");
    let locked = release(&app, &rosa, "10.00").await;
    assert_problem(&locked, StatusCode::UNPROCESSABLE_ENTITY, "reserve_locked");
    assert!(
        locked.1["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("unlocks at"),
        "{}",
        locked.1
    );

    // Thirty-one days later (the deposit backdated), it may be released.
    app.sql("UPDATE holds SET created_at_us = created_at_us - 31 * 86400000000 WHERE reason LIKE 'reserve %'").await;
    let now = reserve(&app).await;
    assert_eq!(
        (now["locked"].as_str(), now["releasable"].as_str()),
        (Some("0.00"), Some("100.00"))
    );

    // With two owners whose rule guards limits, a release is a proposal until both agree.
    let otto = app.user("otto").await;
    app.add_member((&rosa, "bakery"), ("otto", &otto), "owner")
        .await;
    let (status, body) = app
        .put_json(
            "/api/v1/businesses/bakery/approvals",
            Some(&rosa),
            json!({"required": 2, "of": ["limits"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, proposed) = release(&app, &rosa, "40.00").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    assert_eq!(
        reserve(&app).await["reserve"],
        "100.00",
        "nothing released yet"
    );
    let id = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, body) = app
        .post(
            &format!("/api/v1/proposals/{id}/approve"),
            Some(&otto),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(reserve(&app).await["reserve"], "60.00");
    let held = app.balances(&rosa, Some("bakery")).await;
    assert!(
        held.contains(&("ALE".into(), "300.00".into(), "60.00".into())),
        "{held:?}"
    );
    app.assert_audit_clean().await;
}

async fn backing_is_checked_under_its_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, bert) = backed_bakery(&app, 10_000, 0).await;
    let (status, body) = app
        .post(
            "/api/v1/currencies",
            Some(&bert),
            json!({"issuer": "brewery", "code": "HOURS", "name": "Hours", "scale": 2,
                   "credit_limit": "0", "kind": "mutual_credit", "member_credit_limit": "100.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let base = |extra: Value| {
        let mut body = json!({"issuer": "bakery", "code": "ROLL", "name": "Rolls", "scale": 2,
                              "credit_limit": "100.00"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    for (extra, field) in [
        (json!({"kind": "backed"}), "backing"),
        (
            json!({"backing": {"currency": "ALE", "ratio_bps": 10000}}),
            "backing",
        ),
        (
            json!({"kind": "backed", "backing": {"currency": "NOPE", "ratio_bps": 10000}}),
            "backing.currency",
        ),
        (
            json!({"kind": "backed", "backing": {"currency": "ALE", "ratio_bps": 0}}),
            "backing.ratio_bps",
        ),
        (
            json!({"kind": "backed", "backing": {"currency": "ALE", "ratio_bps": 100, "lock_days": -1}}),
            "backing.lock_days",
        ),
        // Backed by its own issuer's currency, it could issue its own reserve.
        (
            json!({"kind": "backed", "backing": {"currency": "BREAD", "ratio_bps": 10000}}),
            "backing.currency",
        ),
        (
            json!({"kind": "backed", "unit": "USD", "backing": {"currency": "ALE", "ratio_bps": 10000}}),
            "backing.currency",
        ),
        // A mutual-credit "reserve" could be the issuer's own debt.
        (
            json!({"kind": "backed", "backing": {"currency": "HOURS", "ratio_bps": 10000}}),
            "backing.currency",
        ),
    ] {
        let refused = app
            .post("/api/v1/currencies", Some(&rosa), base(extra.clone()))
            .await;
        assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "bad_policy");
        assert_eq!(refused.1["field"], field, "{extra}: {}", refused.1);
    }
    let patched = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"backing": {"currency": "ALE", "ratio_bps": 1}}),
        )
        .await;
    assert_problem(&patched, StatusCode::UNPROCESSABLE_ENTITY, "bad_policy");
    let not_backed = app.get("/api/v1/currencies/ALE/reserve", None).await;
    assert_problem(&not_backed, StatusCode::UNPROCESSABLE_ENTITY, "not_backed");
    let stranger = deposit(&app, &bert, "1.00").await;
    assert_problem(&stranger, StatusCode::FORBIDDEN, "not_owner");
    let bad = deposit(&app, &rosa, "1.001").await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "bad_amount");
    assert_eq!(bad.1["field"], "amount");
    app.assert_audit_clean().await;
}
