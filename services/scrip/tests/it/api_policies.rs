//! Currency policies as their users meet them (issue 19): a community LETS with members in
//! credit, fees on top, the largest payment, admission, seals; each rule at its edge, through
//! payments and orders, on both backends.

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    a_community_lets_trades_below_zero_within_each_members_limit,
    a_transfer_fee_is_paid_on_top_to_the_issuer,
    max_payment_holds_at_its_edge_for_payments_and_orders,
    only_admitted_members_may_hold_a_currency,
    sealed_policies_never_change,
    policies_are_checked_under_the_field_they_concern,
);

async fn currency(app: &TestApp, owner: &str, body: Value) -> Value {
    let (status, created) = app.post("/api/v1/currencies", Some(owner), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn balance(app: &TestApp, token: &str, code: &str) -> String {
    app.balances(token, None)
        .await
        .into_iter()
        .find(|(currency, _, _)| currency == code)
        .map_or_else(|| "0.00".into(), |(_, balance, _)| balance)
}

async fn a_community_lets_trades_below_zero_within_each_members_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let steward = app.user("steward").await;
    app.business(&steward, "valley").await;
    let lets = currency(
        &app,
        &steward,
        json!({"issuer": "valley", "code": "HOURS", "name": "Valley hours", "scale": 2,
               "credit_limit": "0", "kind": "mutual_credit", "member_credit_limit": "100.00"}),
    )
    .await;
    assert_eq!(lets["kind"], "mutual_credit");
    assert_eq!(lets["member_credit_limit"], "100.00");
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let cat = app.user("cat").await;

    // Ann has never received anything: as a member she pays out of her credit line.
    let pay = |from: &str, to: &str, amount: &str| json!({"from": from, "to": to, "currency": "HOURS", "amount": amount});
    let (status, body) = app.pay(&ann, pay("ann", "bob", "60.00")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.pay(&ann, pay("ann", "cat", "40.00")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(balance(&app, &ann, "HOURS").await, "-100.00");
    // Exactly at her limit: one atom more is refused and changes nothing.
    let refused = app.pay(&ann, pay("ann", "bob", "0.01")).await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );
    assert_eq!(balance(&app, &bob, "HOURS").await, "60.00");
    // Bob spends what he earned and goes below zero too.
    let (status, body) = app.pay(&bob, pay("bob", "cat", "150.00")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(balance(&app, &bob, "HOURS").await, "-90.00");

    // The stewards give Ann a larger line; lowering it below what she owes is refused.
    let (status, member) = app
        .put_json(
            "/api/v1/currencies/HOURS/members/ann",
            Some(&steward),
            json!({"credit_limit": "150.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{member}");
    assert_eq!(member["credit_limit"], "150.00");
    assert_eq!(member["balance"], "-100.00");
    let (status, body) = app.pay(&ann, pay("ann", "cat", "50.00")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let lower = app
        .put_json(
            "/api/v1/currencies/HOURS/members/ann",
            Some(&steward),
            json!({"credit_limit": "149.99"}),
        )
        .await;
    assert_problem(
        &lower,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_below_position",
    );
    let not_steward = app
        .put_json(
            "/api/v1/currencies/HOURS/members/ann",
            Some(&bob),
            json!({"credit_limit": "999.00"}),
        )
        .await;
    assert_problem(&not_steward, StatusCode::FORBIDDEN, "not_owner");

    // The sum stays zero: every member's balance, listed for the stewards.
    let members = app
        .all_pages("/api/v1/currencies/HOURS/members", Some(&steward), 2)
        .await;
    let mut by_member: Vec<(String, String)> = members
        .iter()
        .map(|m| {
            (
                m["member"].as_str().unwrap_or_default().to_owned(),
                m["balance"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    by_member.sort();
    assert_eq!(
        by_member,
        vec![
            ("ann".into(), "-150.00".into()),
            ("bob".into(), "-90.00".into()),
            ("cat".into(), "240.00".into()),
        ]
    );
    let (_, accounts) = app.get("/api/v1/accounts", Some(&ann)).await;
    assert_eq!(accounts["items"][0]["floor"], "-150.00", "{accounts}");
    let _ = cat;
    app.assert_audit_clean().await;
}

async fn a_transfer_fee_is_paid_on_top_to_the_issuer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.business(&rosa, "bakery").await;
    let created = currency(
        &app,
        &rosa,
        json!({"issuer": "bakery", "code": "BREAD", "name": "Bread", "scale": 2,
               "credit_limit": "1000", "transfer_fee": {"bps": 100, "min": "0.02"}}),
    )
    .await;
    assert_eq!(
        created["transfer_fee"],
        json!({"bps": 100, "min": "0.02", "to": null})
    );
    let carl = app.user("carl").await;
    let dora = app.user("dora").await;
    // The issuer collects the fee, so issuing pays none.
    let (status, issued) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "10.09"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued.get("fee"), None, "{issued}");
    // 1 % of 5.00 is 0.05, on top.
    let (status, paid) = app
        .pay(
            &carl,
            json!({"to": "dora", "currency": "BREAD", "amount": "5.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["fee"], "0.05");
    assert_eq!(balance(&app, &carl, "BREAD").await, "5.04");
    // The minimum: 1 % of 1.00 is 0.01, below the minimum of 0.02.
    let (status, small) = app
        .pay(
            &carl,
            json!({"to": "dora", "currency": "BREAD", "amount": "1.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{small}");
    assert_eq!(small["fee"], "0.02");
    // What is left, 4.02, pays exactly 3.99 + 0.03; 4.00 + 0.04 is refused whole.
    let over = app
        .pay(
            &carl,
            json!({"to": "dora", "currency": "BREAD", "amount": "4.00"}),
        )
        .await;
    assert_problem(
        &over,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );
    let (status, body) = app
        .pay(
            &carl,
            json!({"to": "dora", "currency": "BREAD", "amount": "3.99"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(balance(&app, &carl, "BREAD").await, "0.00");
    assert_eq!(balance(&app, &dora, "BREAD").await, "9.99");
    // The fee lines are in Carl's history, apart from the payments.
    let (_, history) = app
        .get("/api/v1/transfers?currency=BREAD", Some(&carl))
        .await;
    let fees: Vec<&str> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|t| t["kind"] == "transfer_fee")
        .map(|t| t["amount"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(fees, vec!["0.03", "0.02", "0.05"], "{history}");
    let (_, bakery) = app.get("/api/v1/accounts?holder=bakery", Some(&rosa)).await;
    assert_eq!(
        bakery["items"][0]["balance"], "-9.99",
        "the fees came back to the issuer: {bakery}"
    );
    app.assert_audit_clean().await;
}

async fn max_payment_holds_at_its_edge_for_payments_and_orders(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.business(&rosa, "bakery").await;
    app.business(&rosa, "grocer").await;
    currency(
        &app,
        &rosa,
        json!({"issuer": "bakery", "code": "BREAD", "name": "Bread", "scale": 2,
               "credit_limit": "1000", "max_payment": "50.00"}),
    )
    .await;
    currency(
        &app,
        &rosa,
        json!({"issuer": "grocer", "code": "GROC", "name": "Groceries", "scale": 2,
               "credit_limit": "1000", "max_payment": "30.00"}),
    )
    .await;
    let alice = app.user("alice").await;
    let issue = |to: &str, code: &str, from: &str, amount: &str| json!({"from": from, "to": to, "currency": code, "amount": amount});
    let (status, body) = app
        .pay(&rosa, issue("alice", "BREAD", "bakery", "50.00"))
        .await;
    // (then she holds 50 BREAD: the sells below are refused for their size, not her funds)
    assert_eq!(status, StatusCode::CREATED, "exactly the maximum: {body}");
    let over = app
        .pay(&rosa, issue("alice", "BREAD", "bakery", "50.01"))
        .await;
    assert_problem(&over, StatusCode::UNPROCESSABLE_ENTITY, "over_max_payment");
    assert!(
        over.1["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("50.00"),
        "{}",
        over.1
    );
    for _ in 0..2 {
        let (status, body) = app
            .pay(&rosa, issue("alice", "GROC", "grocer", "20.00"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "BREAD", "quote": "GROC", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let order = |side: &str, price: &str, quantity: &str| json!({"market": "BREAD-GROC", "side": side, "type": "limit", "price": price, "quantity": quantity});
    // Buys: one costing 30.50 GROC is over GROC's maximum, one costing exactly 30.00 is not.
    // Sells: 51 BREAD is over BREAD's maximum, and so is one that would fetch 30.50 GROC.
    for (side, price, quantity, refused) in [
        ("buy", "0.61", "50", true),
        ("buy", "0.60", "50", false),
        ("sell", "0.90", "51", true),
        ("sell", "0.61", "50", true),
        ("sell", "0.70", "40", false),
    ] {
        let answer = app
            .post("/api/v1/orders", Some(&alice), order(side, price, quantity))
            .await;
        if refused {
            assert_problem(
                &answer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "over_max_payment",
            );
        } else {
            assert_eq!(
                answer.0,
                StatusCode::CREATED,
                "{side} {quantity} @ {price}: {}",
                answer.1
            );
        }
    }
    // Lowering the maximum applies to the next order at once.
    let (status, body) = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"max_payment": "10.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = app
        .post("/api/v1/orders", Some(&alice), order("sell", "0.70", "11"))
        .await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "over_max_payment",
    );
    app.assert_audit_clean().await;
}

async fn only_admitted_members_may_hold_a_currency(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.business(&rosa, "club").await;
    currency(
        &app,
        &rosa,
        json!({"issuer": "club", "code": "CLUB", "name": "Club credit", "scale": 2,
               "credit_limit": "1000", "requires_admission": true}),
    )
    .await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let carl = app.user("carl").await;
    let dora = app.user("dora").await;
    let issue = json!({"from": "club", "to": "carl", "currency": "CLUB", "amount": "10.00"});
    let refused = app.pay(&rosa, issue.clone()).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "not_admitted");
    let (_, accounts) = app.get("/api/v1/accounts", Some(&carl)).await;
    assert_eq!(
        accounts["items"],
        json!([]),
        "a refused payment leaves no account"
    );
    let (status, member) = app
        .put_json(
            "/api/v1/currencies/CLUB/members/carl",
            Some(&rosa),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{member}");
    let (status, body) = app.pay(&rosa, issue).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A member cannot pass it to someone who is not one.
    let refused = app
        .pay(
            &carl,
            json!({"to": "dora", "currency": "CLUB", "amount": "1.00"}),
        )
        .await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "not_admitted");
    // Nor can the exchange: Dora's buy of CLUB is refused when it enters.
    let (status, body) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "dora", "currency": "BREAD", "amount": "10.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "CLUB", "quote": "BREAD", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let buy = json!({"market": "CLUB-BREAD", "side": "buy", "type": "limit", "price": "1.00", "quantity": "1"});
    let refused = app.post("/api/v1/orders", Some(&dora), buy.clone()).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "not_admitted");
    let (status, body) = app
        .put_json(
            "/api/v1/currencies/CLUB/members/dora",
            Some(&rosa),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post("/api/v1/orders", Some(&dora), buy).await;
    assert_eq!(status, StatusCode::CREATED, "admitted, she may buy: {body}");
    app.assert_audit_clean().await;
}

async fn sealed_policies_never_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.business(&rosa, "bakery").await;
    let created = currency(
        &app,
        &rosa,
        json!({"issuer": "bakery", "code": "BREAD", "name": "Bread", "scale": 2,
               "credit_limit": "1000", "max_payment": "50.00", "sealed": ["max_payment", "credit_limit"]}),
    )
    .await;
    assert_eq!(created["sealed"], json!(["credit_limit", "max_payment"]));
    for body in [
        json!({"max_payment": "60.00"}),
        json!({"max_payment": null}),
        json!({"credit_limit": "900"}),
    ] {
        let refused = app
            .patch("/api/v1/currencies/BREAD", Some(&rosa), body)
            .await;
        assert_problem(&refused, StatusCode::CONFLICT, "sealed");
    }
    let (status, body) = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"demurrage": {"rate_bps": 100, "period": "month"}, "sealed": ["demurrage"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["demurrage"]["rate_bps"], 100);
    assert_eq!(
        body["sealed"],
        json!(["credit_limit", "max_payment", "demurrage"])
    );
    let refused = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"demurrage": null}),
        )
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "sealed");
    let (_, shown) = app.get("/api/v1/currencies/BREAD", None).await;
    assert_eq!(shown["max_payment"], "50.00");
    assert_eq!(shown["demurrage"]["period"], "month");
}

async fn policies_are_checked_under_the_field_they_concern(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.business(&rosa, "bakery").await;
    let base = json!({"issuer": "bakery", "code": "CAKE", "name": "Cake", "scale": 2, "credit_limit": "10"});
    for (field, value, code, named) in [
        ("kind", json!("gift_card"), "bad_policy", "kind"),
        (
            "member_credit_limit",
            json!("5.00"),
            "bad_policy",
            "member_credit_limit",
        ),
        ("max_payment", json!("0"), "bad_amount", "max_payment"),
        ("max_payment", json!("1.001"), "bad_amount", "max_payment"),
        (
            "transfer_fee",
            json!({"bps": 0}),
            "bad_policy",
            "transfer_fee.bps",
        ),
        (
            "transfer_fee",
            json!({"bps": 10, "to": "nobody"}),
            "bad_policy",
            "transfer_fee.to",
        ),
        (
            "demurrage",
            json!({"rate_bps": 100, "period": "year"}),
            "bad_policy",
            "demurrage.period",
        ),
        (
            "demurrage",
            json!({"rate_bps": 10001, "period": "week"}),
            "bad_policy",
            "demurrage.rate_bps",
        ),
        ("sealed", json!(["everything"]), "bad_policy", "sealed"),
    ] {
        let mut body = base.clone();
        body[field] = value;
        let refused = app.post("/api/v1/currencies", Some(&rosa), body).await;
        assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, code);
        assert_eq!(refused.1["field"], named, "{}", refused.1);
    }
    let (status, _) = app.get("/api/v1/currencies/CAKE", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created");
    currency(&app, &rosa, base).await;
    for (body, named) in [
        (json!({"kind": "mutual_credit"}), "kind"),
        (json!({"freezable": true}), "freezable"),
        (
            json!({"member_credit_limit": "1.00"}),
            "member_credit_limit",
        ),
    ] {
        let refused = app
            .patch("/api/v1/currencies/CAKE", Some(&rosa), body)
            .await;
        assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "bad_policy");
        assert_eq!(refused.1["field"], named);
    }
}
