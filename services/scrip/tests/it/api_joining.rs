//! Joining fees as their users meet them (issue 19, `joining_fee`): paid once, to the issuer,
//! by the newcomer who asks (joining, or applying and being admitted), never by being paid or
//! by a steward's say; refunded on leaving after its time, never before. On both backends.

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    a_joining_fee_is_paid_once_by_who_asks_and_refunded_after_its_time,
    admission_and_mutual_credit_take_the_joining_fee_on_entry,
    joining_fees_are_checked_changed_and_sealed,
    a_member_with_open_orders_stays_and_a_former_member_is_never_paid_by_a_fill,
);

/// Bert's brewery issues ALE and pays alice and the bakery 20.00 ALE each; rosa's bakery
/// issues BREAD with `policies` added. Tokens of rosa, bert, alice.
async fn bakery_with(app: &TestApp, policies: Value) -> (String, String, String) {
    let rosa = app.user("rosa").await;
    let bert = app.user("bert").await;
    let alice = app.user("alice").await;
    app.shop(&bert, "brewery", "ALE").await;
    app.business(&rosa, "bakery").await;
    for to in ["alice", "bakery"] {
        let paid = app
            .pay(
                &bert,
                json!({"from": "brewery", "to": to, "currency": "ALE", "amount": "20.00"}),
            )
            .await;
        assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);
    }
    let mut body = json!({"issuer": "bakery", "code": "BREAD", "name": "Bread", "scale": 2,
                          "credit_limit": "1000.00"});
    for (k, v) in policies.as_object().expect("object") {
        body[k] = v.clone();
    }
    let (status, created) = app.post("/api/v1/currencies", Some(&rosa), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (rosa, bert, alice)
}

async fn ale(app: &TestApp, token: &str, holder: &str) -> String {
    app.balances(token, Some(holder))
        .await
        .into_iter()
        .find(|(c, _, _)| c == "ALE")
        .map_or_else(|| "0.00".into(), |(_, b, _)| b)
}

fn bread(from: &str, to: &str, amount: &str) -> Value {
    json!({"from": from, "to": to, "currency": "BREAD", "amount": amount})
}

async fn backdate_refunds(app: &TestApp) {
    app.sql(
        "UPDATE currency_members SET refundable_from_us = refundable_from_us - 31 * 86400000000 \
             WHERE refundable_from_us IS NOT NULL",
    )
    .await;
}

async fn a_joining_fee_is_paid_once_by_who_asks_and_refunded_after_its_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fee =
        json!({"joining_fee": {"amount": "5.00", "currency": "ALE", "refundable_after_days": 30}});
    let (rosa, _bert, alice) = bakery_with(&app, fee).await;
    let (_, public) = app.get("/api/v1/currencies/BREAD", None).await;
    assert_eq!(public["joining_fee"]["amount"], "5.00", "{public}");

    // Being paid does not make anyone a member, nor does a steward's say.
    let refused = app.pay(&rosa, bread("bakery", "alice", "10.00")).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "not_admitted");
    let steward = app
        .put_json(
            "/api/v1/currencies/BREAD/members/alice",
            Some(&rosa),
            json!({}),
        )
        .await;
    assert_problem(
        &steward,
        StatusCode::UNPROCESSABLE_ENTITY,
        "joining_fee_required",
    );
    assert!(
        steward.1["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("5.00 ALE"),
        "{}",
        steward.1
    );

    // Alice asks: she pays 5.00 ALE once, however often she asks.
    let (status, joined) = app
        .post("/api/v1/currencies/BREAD/join", Some(&alice), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{joined}");
    assert_eq!(
        joined["joining_fee_paid"],
        json!({"amount": "5.00", "currency": "ALE"})
    );
    assert!(joined["refundable_from"].is_string(), "{joined}");
    let (status, again) = app
        .post("/api/v1/currencies/BREAD/join", Some(&alice), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(ale(&app, &alice, "alice").await, "15.00");
    assert_eq!(ale(&app, &rosa, "bakery").await, "25.00");
    let paid = app.pay(&rosa, bread("bakery", "alice", "10.00")).await;
    assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);

    // Dan holds no ALE: he cannot join, and nothing of him stays behind.
    let dan = app.user("dan").await;
    let poor = app
        .post("/api/v1/currencies/BREAD/join", Some(&dan), json!({}))
        .await;
    assert_problem(
        &poor,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );
    let still = app.pay(&rosa, bread("bakery", "dan", "1.00")).await;
    assert_problem(&still, StatusCode::UNPROCESSABLE_ENTITY, "not_admitted");

    // Leaving needs an empty account; before 30 days nothing is refunded.
    let full = app
        .delete("/api/v1/currencies/BREAD/members/alice", Some(&alice))
        .await;
    assert_problem(&full, StatusCode::UNPROCESSABLE_ENTITY, "account_not_empty");
    let back = app.pay(&alice, bread("alice", "bakery", "10.00")).await;
    assert_eq!(back.0, StatusCode::CREATED, "{}", back.1);
    let not_hers = app
        .delete("/api/v1/currencies/BREAD/members/alice", Some(&rosa))
        .await;
    assert_problem(&not_hers, StatusCode::FORBIDDEN, "not_owner");
    let (status, left) = app
        .delete("/api/v1/currencies/BREAD/members/alice", Some(&alice))
        .await;
    assert_eq!(status, StatusCode::OK, "{left}");
    assert_eq!(left["refunded"], Value::Null);
    let gone = app.pay(&rosa, bread("bakery", "alice", "1.00")).await;
    assert_problem(&gone, StatusCode::UNPROCESSABLE_ENTITY, "not_admitted");

    // She joins again (paying again) and, 31 days on, leaves with her fee back.
    let (status, body) = app
        .post("/api/v1/currencies/BREAD/join", Some(&alice), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(ale(&app, &alice, "alice").await, "10.00");
    backdate_refunds(&app).await;
    let (status, left) = app
        .delete("/api/v1/currencies/BREAD/members/alice", Some(&alice))
        .await;
    assert_eq!(status, StatusCode::OK, "{left}");
    assert_eq!(
        left["refunded"],
        json!({"amount": "5.00", "currency": "ALE"})
    );
    assert_eq!(ale(&app, &alice, "alice").await, "15.00");
    app.assert_audit_clean().await;
}

async fn admission_and_mutual_credit_take_the_joining_fee_on_entry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let policies = json!({"kind": "mutual_credit", "member_credit_limit": "50.00",
                          "requires_admission": true,
                          "joining_fee": {"amount": "15.00", "currency": "ALE"}});
    let (rosa, bert, alice) = bakery_with(&app, policies).await;
    let asked = app
        .post("/api/v1/currencies/BREAD/join", Some(&alice), json!({}))
        .await;
    assert_problem(&asked, StatusCode::UNPROCESSABLE_ENTITY, "not_admitted");

    // Alice applies and is admitted: the fee is taken then, and her credit line opens.
    let (status, application) = app
        .post(
            "/api/v1/currencies/BREAD/applications",
            Some(&alice),
            json!({"message": "hi"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{application}");
    let id = application["id"].as_str().expect("id").to_owned();
    let (status, body) = app
        .post(
            &format!("/api/v1/currencies/BREAD/applications/{id}/admit"),
            Some(&rosa),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ale(&app, &alice, "alice").await, "5.00");
    let spent = app.pay(&alice, bread("alice", "bakery", "50.00")).await;
    assert_eq!(
        spent.0,
        StatusCode::CREATED,
        "in credit as a member: {}",
        spent.1
    );

    // Bert himself holds no ALE (his brewery does): his admission is refused, still pending.
    let (status, application) = app
        .post(
            "/api/v1/currencies/BREAD/applications",
            Some(&bert),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{application}");
    let id = application["id"].as_str().expect("id").to_owned();
    let refused = app
        .post(
            &format!("/api/v1/currencies/BREAD/applications/{id}/admit"),
            Some(&rosa),
            json!({}),
        )
        .await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );
    let (status, pending) = app
        .get("/api/v1/currencies/BREAD/applications", Some(&rosa))
        .await;
    assert_eq!(status, StatusCode::OK, "{pending}");
    assert!(pending.to_string().contains("pending"), "{pending}");
    app.assert_audit_clean().await;
}

async fn joining_fees_are_checked_changed_and_sealed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, _bert, alice) = bakery_with(&app, json!({})).await;
    let paid = app.pay(&rosa, bread("bakery", "alice", "10.00")).await;
    assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);
    let open = app
        .post("/api/v1/currencies/BREAD/join", Some(&alice), json!({}))
        .await;
    assert_problem(&open, StatusCode::UNPROCESSABLE_ENTITY, "bad_policy");

    for (fee, code, field) in [
        (
            json!({"amount": "0", "currency": "ALE"}),
            "bad_amount",
            "joining_fee.amount",
        ),
        (
            json!({"amount": "1.001", "currency": "ALE"}),
            "bad_amount",
            "joining_fee.amount",
        ),
        (
            json!({"amount": "1.00", "currency": "NOPE"}),
            "bad_policy",
            "joining_fee.currency",
        ),
        (
            json!({"amount": "1.00", "currency": "BREAD"}),
            "bad_policy",
            "joining_fee.currency",
        ),
        (
            json!({"amount": "1.00", "currency": "ALE", "refundable_after_days": 4000}),
            "bad_policy",
            "joining_fee.refundable_after_days",
        ),
    ] {
        let refused = app
            .patch(
                "/api/v1/currencies/BREAD",
                Some(&rosa),
                json!({"joining_fee": fee.clone()}),
            )
            .await;
        assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, code);
        assert_eq!(refused.1["field"], field, "{fee}: {}", refused.1);
    }

    // Turned on later, it keeps who already holds BREAD: alice is still paid, a newcomer is not.
    let (status, body) = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"joining_fee": {"amount": "2.00", "currency": "ALE"}, "sealed": ["joining_fee"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let kept = app.pay(&rosa, bread("bakery", "alice", "1.00")).await;
    assert_eq!(kept.0, StatusCode::CREATED, "{}", kept.1);
    app.user("carl").await;
    let newcomer = app.pay(&rosa, bread("bakery", "carl", "1.00")).await;
    assert_problem(&newcomer, StatusCode::UNPROCESSABLE_ENTITY, "not_admitted");
    let sealed = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"joining_fee": null}),
        )
        .await;
    assert_problem(&sealed, StatusCode::CONFLICT, "sealed");
    app.assert_audit_clean().await;
}

async fn a_member_with_open_orders_stays_and_a_former_member_is_never_paid_by_a_fill(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let fee = json!({"joining_fee": {"amount": "5.00", "currency": "ALE"}});
    let (rosa, _bert, alice) = bakery_with(&app, fee).await;
    let (status, body) = app
        .post("/api/v1/currencies/BREAD/join", Some(&alice), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.market(&rosa, ("BREAD", "ALE")).await;
    let bid = json!({"market": "BREAD-ALE", "side": "buy", "type": "limit", "price": "1.00", "quantity": "2.00"});
    let (status, order) = app.post("/api/v1/orders", Some(&alice), bid).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let open = app
        .delete("/api/v1/currencies/BREAD/members/alice", Some(&alice))
        .await;
    assert_problem(&open, StatusCode::UNPROCESSABLE_ENTITY, "open_orders");

    // Her membership gone behind the book's back (a leave racing her order): the next seller
    // is not stuck behind her bid; it is cancelled, saying why, and nothing reaches her.
    app.sql("DELETE FROM currency_members WHERE principal_id = (SELECT id FROM principals WHERE handle = 'alice')").await;
    let ask = json!({"market": "BREAD-ALE", "side": "sell", "type": "limit", "price": "1.00",
                     "quantity": "1.00", "holder": "bakery"});
    let (status, sold) = app.post("/api/v1/orders", Some(&rosa), ask).await;
    assert_eq!(status, StatusCode::CREATED, "{sold}");
    assert_eq!(sold["filled"], "0.00", "{sold}");
    let id = order["id"].as_str().expect("id");
    let (status, ended) = app.get(&format!("/api/v1/orders/{id}"), Some(&alice)).await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(
        (ended["status"].as_str(), ended["reason"].as_str()),
        (Some("cancelled"), Some("not_member")),
        "{ended}"
    );
    app.assert_audit_clean().await;
}
