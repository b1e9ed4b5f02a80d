//! Paying with what you hold (issue 18): a payment in the recipient's currency paid with
//! others, converted through the books in the same transaction. The recipient receives
//! exactly the amount or nothing changes anywhere; on both backends.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::api_exchange::assert_no_funds_locked;
use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    a_quote_changes_nothing_and_its_payment_costs_what_it_said,
    a_basket_pays_after_the_recipients_own_currency_through_two_markets,
    refused_payments_change_nothing_and_say_why,
    a_payment_with_an_idempotency_key_is_made_once,
    a_payment_request_is_paid_converted_once,
    an_expired_quote_and_a_full_recipient_are_refused,
    concurrent_payments_and_orders_on_the_same_books_are_whole_or_absent,
);

/// The grocer's till takes GROC. Alice holds BREAD and ALE; Mia makes markets in GROC-BREAD
/// (tick 0.01, lot 1.00, no fee) and ALE-BREAD (tick 0.01, lot 1.00, 25 bps).
struct Town {
    rosa: String,
    alice: String,
    mia: String,
    bob: String,
}

async fn town(app: &TestApp, alice_holds: &[(&str, &str, &str)]) -> Town {
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "grocer", "GROC").await;
    app.shop(&rosa, "brewery", "ALE").await;
    let alice = app.user("alice").await;
    let mia = app.user("mia").await;
    let bob = app.user("bob").await;
    let mut funding: Vec<(&str, &str, &str, &str)> = vec![
        ("grocer", "mia", "GROC", "200.00"),
        ("bakery", "mia", "BREAD", "200.00"),
        ("bakery", "bob", "BREAD", "200.00"),
    ];
    funding.extend(
        alice_holds
            .iter()
            .map(|&(shop, code, amount)| (shop, "alice", code, amount)),
    );
    for (from, to, currency, amount) in funding {
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": from, "to": to, "currency": currency, "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (base, fee_bps) in [("GROC", 0), ("ALE", 25)] {
        let (status, body) = app
            .post(
                "/api/v1/markets",
                Some(&rosa),
                json!({"base": base, "quote": "BREAD", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": fee_bps}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    Town {
        rosa,
        alice,
        mia,
        bob,
    }
}

async fn order(
    app: &TestApp,
    token: &str,
    market: &str,
    side: &str,
    price: &str,
    quantity: &str,
) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/orders",
            Some(token),
            json!({"market": market, "side": side, "type": "limit", "price": price, "quantity": quantity}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// `currency -> balance` of the caller (or a holder it may see).
async fn balances(app: &TestApp, token: &str, holder: Option<&str>) -> BTreeMap<String, String> {
    app.balances(token, holder)
        .await
        .into_iter()
        .map(|(currency, balance, _)| (currency, balance))
        .collect()
}

async fn asks(app: &TestApp, market: &str) -> Value {
    let (status, book) = app
        .get(&format!("/api/v1/markets/{market}/book"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{book}");
    book["asks"].clone()
}

fn spent(map: &[(&str, &str)]) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect(),
    )
}

async fn a_quote_changes_nothing_and_its_payment_costs_what_it_said(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = town(&app, &[("bakery", "BREAD", "100.00")]).await;
    let first = order(&app, &t.mia, "GROC-BREAD", "sell", "1.00", "10.00").await;
    let second = order(&app, &t.mia, "GROC-BREAD", "sell", "1.10", "10.00").await;
    let wallet_before = balances(&app, &t.alice, None).await;

    // 12.00 GROC: 10 at 1.00 and 2 at 1.10 BREAD.
    let ask = json!({"to": "grocer", "currency": "GROC", "amount": "12.00"});
    let (status, quote) = app
        .post("/api/v1/quotes", Some(&t.alice), ask.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{quote}");
    assert_eq!(quote["spend"], spent(&[("BREAD", "12.20")]), "{quote}");
    assert_eq!(quote["change"], json!({}));
    let leg = &quote["legs"][0];
    assert_eq!(leg["pay_currency"], "BREAD");
    assert_eq!(leg["spend"], "12.20");
    assert_eq!(leg["route"], json!(["GROC-BREAD"]));
    assert_eq!(leg["worst_price"], json!(["1.10"]));
    assert!(quote["id"].as_str().is_some_and(|id| id.starts_with("q1.")));
    // A quote is priced by running the payment and rolling it back: nothing moved.
    assert_eq!(balances(&app, &t.alice, None).await, wallet_before);
    assert_eq!(
        asks(&app, "GROC-BREAD").await,
        json!([{"price": "1.00", "quantity": "10.00"}, {"price": "1.10", "quantity": "10.00"}])
    );

    let mut pay = ask.clone();
    pay["quote_id"] = quote["id"].clone();
    pay["memo"] = json!("groceries");
    let (status, paid) = app.post("/api/v1/payments", Some(&t.alice), pay).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["amount"], "12.00");
    assert_eq!(paid["currency"], "GROC");
    assert_eq!(
        (&paid["from"], &paid["to"]),
        (&json!("alice"), &json!("grocer"))
    );
    assert_eq!(paid["spent"], spent(&[("BREAD", "12.20")]));
    assert_eq!(
        paid["trades"],
        json!([
            {"market": "GROC-BREAD", "price": "1.00", "quantity": "10.00"},
            {"market": "GROC-BREAD", "price": "1.10", "quantity": "2.00"}
        ])
    );
    let wallet = balances(&app, &t.alice, None).await;
    assert_eq!(wallet["BREAD"], "87.80");
    assert_eq!(
        wallet["GROC"], "0.00",
        "the conversion bought exactly what was paid"
    );
    let grocer = balances(&app, &t.rosa, Some("grocer")).await;
    assert_eq!(
        grocer["GROC"], "-188.00",
        "200 issued to Mia, 12 paid back by Alice"
    );
    let mia = balances(&app, &t.mia, None).await;
    assert_eq!(
        (mia["GROC"].as_str(), mia["BREAD"].as_str()),
        ("188.00", "212.20")
    );
    // The makers see ordinary fills.
    let id = |o: &Value| o["id"].as_str().expect("id").to_owned();
    let (_, filled) = app
        .get(&format!("/api/v1/orders/{}", id(&first)), Some(&t.mia))
        .await;
    assert_eq!(filled["status"], "filled");
    let (_, partial) = app
        .get(&format!("/api/v1/orders/{}", id(&second)), Some(&t.mia))
        .await;
    assert_eq!(
        (partial["status"].as_str(), partial["remaining"].as_str()),
        (Some("partially_filled"), Some("8.00"))
    );
    let (_, trades) = app.get("/api/v1/markets/GROC-BREAD/trades", None).await;
    assert_eq!(
        trades["items"].as_array().map(Vec::len),
        Some(2),
        "{trades}"
    );

    // The payer reads the whole payment; the recipient what it received, not the payer's costs.
    let path = format!("/api/v1/payments/{}", paid["id"].as_str().expect("id"));
    let (status, read) = app.get(&path, Some(&t.alice)).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        (&read["spent"], &read["trades"], &read["memo"]),
        (&paid["spent"], &paid["trades"], &json!("groceries"))
    );
    let (status, received) = app.get(&path, Some(&t.rosa)).await;
    assert_eq!(status, StatusCode::OK, "{received}");
    assert_eq!(
        (&received["amount"], &received["spent"]),
        (&json!("12.00"), &json!({}))
    );
    assert_problem(
        &app.get(&path, Some(&t.bob)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    app.assert_audit_clean().await;
    assert_no_funds_locked(&app).await;
}

async fn a_basket_pays_after_the_recipients_own_currency_through_two_markets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = town(
        &app,
        &[
            ("grocer", "GROC", "3.00"),
            ("bakery", "BREAD", "5.00"),
            ("brewery", "ALE", "100.00"),
        ],
    )
    .await;
    order(&app, &t.mia, "GROC-BREAD", "sell", "1.00", "20.00").await;
    order(&app, &t.mia, "ALE-BREAD", "buy", "0.50", "50.00").await;
    // 20.00 GROC: 3.00 of Alice's own GROC first; then all her BREAD buys 5.00 GROC; ALE pays
    // the last 12.00 through ALE-BREAD then GROC-BREAD: 12.00 BREAD needs 12.03 before the
    // 25 bps fee, so 25 ALE are sold (12.50 BREAD, fee 0.03) and 0.47 BREAD is left over.
    let pay = json!({"to": "grocer", "currency": "GROC", "amount": "20.00", "pay_with": ["BREAD", "ALE"]});
    let (status, quote) = app
        .post("/api/v1/quotes", Some(&t.alice), pay.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{quote}");
    assert_eq!(quote["legs"].as_array().map(Vec::len), Some(2), "{quote}");
    assert_eq!(
        quote["legs"][1]["route"],
        json!(["ALE-BREAD", "GROC-BREAD"])
    );
    assert_eq!(quote["legs"][1]["spend"], "25.00");
    assert_eq!(
        quote["legs"][1]["fees"],
        json!({"BREAD": "0.03", "GROC": "0.00"})
    );
    let (status, paid) = app.post("/api/v1/payments", Some(&t.alice), pay).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["spent"], quote["spend"]);
    assert_eq!(
        paid["spent"],
        spent(&[("ALE", "25.00"), ("BREAD", "4.53"), ("GROC", "3.00")]),
        "{paid}"
    );
    let wallet = balances(&app, &t.alice, None).await;
    assert_eq!(
        (
            wallet["GROC"].as_str(),
            wallet["BREAD"].as_str(),
            wallet["ALE"].as_str()
        ),
        ("0.00", "0.47", "75.00")
    );
    let grocer = balances(&app, &t.rosa, Some("grocer")).await;
    assert_eq!(grocer["GROC"], "-183.00", "203 issued, 20 paid back");
    // The registry collected the market fee where market fees go.
    app.grant_operator("rosa").await;
    let registry = balances(&app, &t.rosa, Some("registry")).await;
    assert_eq!(registry.get("BREAD").map(String::as_str), Some("0.03"));
    app.assert_audit_clean().await;
    assert_no_funds_locked(&app).await;
}

/// What a refused payment must leave as it was: the payer's wallet, the book, the journal.
async fn state(app: &TestApp, payer: &str) -> (BTreeMap<String, String>, Value, u64) {
    (
        balances(app, payer, None).await,
        asks(app, "GROC-BREAD").await,
        app.transfer_count().await,
    )
}

async fn refused_payments_change_nothing_and_say_why(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = town(
        &app,
        &[("bakery", "BREAD", "10.00"), ("brewery", "ALE", "5.00")],
    )
    .await;
    order(&app, &t.mia, "GROC-BREAD", "sell", "1.00", "5.00").await;
    order(&app, &t.mia, "GROC-BREAD", "sell", "1.50", "5.00").await;
    let ned = app.user("ned").await;
    let funded = app
        .pay(
            &t.rosa,
            json!({"from": "grocer", "to": "ned", "currency": "GROC", "amount": "3.00"}),
        )
        .await;
    assert_eq!(funded.0, StatusCode::CREATED, "{}", funded.1);
    let before = state(&app, &t.alice).await;
    let pay = |amount: &str| json!({"to": "grocer", "currency": "GROC", "amount": amount, "pay_with": ["BREAD"]});

    // More than the book holds.
    let deep = app
        .post("/api/v1/payments", Some(&t.alice), pay("11.00"))
        .await;
    assert_problem(&deep, StatusCode::UNPROCESSABLE_ENTITY, "no_route");
    assert!(
        deep.1["detail"]
            .as_str()
            .is_some_and(|d| d.contains("GROC-BREAD offers too little")),
        "{}",
        deep.1
    );
    // More than Alice's BREAD can buy: 7.00 GROC needs 5 x 1.00 + 2 x 1.50 (held at 1.50: 10.50).
    let poor = app
        .post("/api/v1/payments", Some(&t.alice), pay("7.00"))
        .await;
    assert_problem(&poor, StatusCode::UNPROCESSABLE_ENTITY, "no_route");
    assert!(
        poor.1["detail"]
            .as_str()
            .is_some_and(|d| d.contains("10.50 BREAD")),
        "{}",
        poor.1
    );
    // With only the recipient's own currency, and too little of it, the answer is plain.
    let short = app
        .post(
            "/api/v1/payments",
            Some(&ned),
            json!({"to": "grocer", "currency": "GROC", "amount": "5.00"}),
        )
        .await;
    assert_problem(
        &short,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );
    // ALE leads nowhere near GROC.
    let nowhere = app
        .post(
            "/api/v1/payments",
            Some(&t.alice),
            json!({"to": "grocer", "currency": "GROC", "amount": "1.00", "pay_with": ["ALE"]}),
        )
        .await;
    assert_problem(&nowhere, StatusCode::UNPROCESSABLE_ENTITY, "no_route");
    // It would cost 6.50 BREAD; Alice allows 6.49.
    let mut capped = pay("6.00");
    capped["max_spend"] = json!({"BREAD": "6.49"});
    let slipped = app.post("/api/v1/payments", Some(&t.alice), capped).await;
    assert_problem(
        &slipped,
        StatusCode::UNPROCESSABLE_ENTITY,
        "slippage_exceeded",
    );
    // A quote, then Bob takes the cheap asks: paying by the quote would cost more.
    let (status, quote) = app
        .post("/api/v1/quotes", Some(&t.alice), pay("5.00"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{quote}");
    assert_eq!(quote["spend"], spent(&[("BREAD", "5.00")]));
    let mut by_quote = pay("5.00");
    by_quote["quote_id"] = quote["id"].clone();
    let mut other = by_quote.clone();
    other["amount"] = json!("4.00");
    let mismatch = app.post("/api/v1/payments", Some(&t.alice), other).await;
    assert_problem(&mismatch, StatusCode::UNPROCESSABLE_ENTITY, "bad_quote");
    assert_eq!(mismatch.1["field"], "quote_id", "{}", mismatch.1);
    assert_eq!(state(&app, &t.alice).await, before);
    order(&app, &t.bob, "GROC-BREAD", "buy", "1.00", "1.00").await;
    let moved = state(&app, &t.alice).await;
    let late = app.post("/api/v1/payments", Some(&t.alice), by_quote).await;
    assert_problem(&late, StatusCode::UNPROCESSABLE_ENTITY, "slippage_exceeded");
    let mut forged = pay("1.00");
    forged["quote_id"] = json!("not-a-quote");
    assert_problem(
        &app.post("/api/v1/payments", Some(&t.alice), forged).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_quote",
    );
    let bad = app
        .post(
            "/api/v1/payments",
            Some(&t.alice),
            json!({"to": "grocer", "currency": "GROC", "amount": "-1"}),
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "bad_amount");
    let hops = app
        .post(
            "/api/v1/quotes",
            Some(&t.alice),
            json!({"to": "grocer", "currency": "GROC", "amount": "1.00", "max_hops": 4}),
        )
        .await;
    assert_eq!(hops.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", hops.1);
    assert_eq!(state(&app, &t.alice).await, moved);
    app.assert_audit_clean().await;
    assert_no_funds_locked(&app).await;
}

async fn a_payment_with_an_idempotency_key_is_made_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = town(&app, &[("bakery", "BREAD", "50.00")]).await;
    order(&app, &t.mia, "GROC-BREAD", "sell", "1.00", "40.00").await;
    let body = json!({"to": "grocer", "currency": "GROC", "amount": "4.00"});
    let send = |body: Value| {
        let request = app
            .client
            .post(format!("{}/api/v1/payments", app.base))
            .bearer_auth(&t.alice)
            .header("Idempotency-Key", "till-7-sale-1")
            .json(&body);
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status();
            let body: Value = response.json().await.expect("json");
            (status, body)
        }
    };
    let answers = futures_util::future::join_all((0..5).map(|_| send(body.clone()))).await;
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["id"], answers[0].1["id"]);
    }
    assert_eq!(
        balances(&app, &t.alice, None).await["BREAD"],
        "46.00",
        "charged once"
    );
    let mut other = body.clone();
    other["amount"] = json!("5.00");
    assert_problem(
        &send(other).await,
        StatusCode::CONFLICT,
        "idempotency_conflict",
    );
    app.assert_audit_clean().await;
}

async fn a_payment_request_is_paid_converted_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = town(&app, &[("bakery", "BREAD", "50.00")]).await;
    order(&app, &t.mia, "GROC-BREAD", "sell", "1.00", "40.00").await;
    // The grocer's till asks for 6.00 GROC; Alice holds only BREAD.
    let (status, asked) = app
        .post(
            "/api/v1/payment-requests",
            Some(&t.rosa),
            json!({"to": "grocer", "currency": "GROC", "amount": "6.00", "memo": "till 2"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    let id = asked["id"].as_str().expect("id").to_owned();
    let pay = json!({"to": "grocer", "currency": "GROC", "amount": "6.00", "request_id": id});
    let mut wrong = pay.clone();
    wrong["amount"] = json!("5.00");
    let refused = app.post("/api/v1/payments", Some(&t.alice), wrong).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "bad_request");
    assert_eq!(refused.1["field"], "request_id");
    let (status, paid) = app
        .post("/api/v1/payments", Some(&t.alice), pay.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(
        (&paid["request_id"], &paid["memo"]),
        (&json!(id), &json!("till 2"))
    );
    assert_eq!(paid["spent"], spent(&[("BREAD", "6.00")]));
    // Its details say which request it paid, as the answer did.
    let (_, details) = app
        .get(
            &format!("/api/v1/payments/{}", paid["id"].as_str().expect("id")),
            Some(&t.alice),
        )
        .await;
    assert_eq!(details["request_id"], json!(id), "{details}");
    // The till sees "paid"; a second payment of it is refused and changes nothing.
    let (_, seen) = app
        .get(&format!("/api/v1/payment-requests/{id}"), Some(&t.rosa))
        .await;
    assert_eq!(seen["status"], "paid", "{seen}");
    let before = state(&app, &t.alice).await;
    let again = app.post("/api/v1/payments", Some(&t.alice), pay).await;
    assert_problem(&again, StatusCode::CONFLICT, "already_paid");
    assert_eq!(state(&app, &t.alice).await, before);
    app.assert_audit_clean().await;
    assert_no_funds_locked(&app).await;
}

/// A quote's id with its expiry moved to `expires_us` (the id is the quote's own numbers,
/// base64url JSON, so a client holding one can only ever bound itself with it).
fn expired(quote_id: &str, expires_us: i64) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let body = quote_id.strip_prefix("q1.").expect("a quote id");
    let mut token: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("base64")).expect("json");
    token["expires_us"] = json!(expires_us);
    format!(
        "q1.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).expect("json"))
    )
}

async fn an_expired_quote_and_a_full_recipient_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = town(&app, &[("bakery", "BREAD", "50.00")]).await;
    order(&app, &t.mia, "GROC-BREAD", "sell", "1.00", "40.00").await;
    let pay = json!({"to": "bob", "currency": "GROC", "amount": "6.00"});
    let (status, quote) = app
        .post("/api/v1/quotes", Some(&t.alice), pay.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{quote}");
    let before = state(&app, &t.alice).await;
    let mut late = pay.clone();
    late["quote_id"] = json!(expired(quote["id"].as_str().expect("id"), 1));
    assert_problem(
        &app.post("/api/v1/payments", Some(&t.alice), late).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "quote_expired",
    );
    assert_eq!(state(&app, &t.alice).await, before);
    // Bob holds 199.00 GROC and may hold at most 200.00: the route would buy the 6.00, the
    // payment cannot land; the trades it would have made are rolled back with it.
    let (status, body) = app
        .pay(
            &t.rosa,
            json!({"from": "grocer", "to": "bob", "currency": "GROC", "amount": "199.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .patch(
            "/api/v1/currencies/GROC",
            Some(&t.rosa),
            json!({"max_balance": "200.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = state(&app, &t.alice).await;
    let full = app.post("/api/v1/payments", Some(&t.alice), pay).await;
    assert_problem(
        &full,
        StatusCode::UNPROCESSABLE_ENTITY,
        "max_balance_exceeded",
    );
    assert_eq!(state(&app, &t.alice).await, before, "nothing changed");
    assert_eq!(balances(&app, &t.bob, None).await["GROC"], "199.00");
    app.assert_audit_clean().await;
    assert_no_funds_locked(&app).await;
}

async fn concurrent_payments_and_orders_on_the_same_books_are_whole_or_absent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = town(
        &app,
        &[("bakery", "BREAD", "100.00"), ("brewery", "ALE", "100.00")],
    )
    .await;
    order(&app, &t.mia, "GROC-BREAD", "sell", "1.00", "60.00").await;
    order(&app, &t.mia, "ALE-BREAD", "buy", "0.50", "100.00").await;
    let payments = (0..25).map(|i| {
        let pay_with = if i % 2 == 0 { "BREAD" } else { "ALE" };
        let body =
            json!({"to": "grocer", "currency": "GROC", "amount": "3.00", "pay_with": [pay_with]});
        let app = &app;
        let alice = t.alice.clone();
        async move { app.post("/api/v1/payments", Some(&alice), body).await }
    });
    let orders = (0..25).map(|i| {
        let (side, price) = if i % 2 == 0 { ("buy", "1.00") } else { ("sell", "1.20") };
        let body = json!({"market": "GROC-BREAD", "side": side, "type": "limit", "price": price, "quantity": "1.00"});
        let token = if side == "buy" { t.bob.clone() } else { t.mia.clone() };
        let app = &app;
        async move { app.post("/api/v1/orders", Some(&token), body).await }
    });
    let (paid, placed) = futures_util::future::join(
        futures_util::future::join_all(payments),
        futures_util::future::join_all(orders),
    )
    .await;
    for (status, body) in &placed {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    let mut made = 0;
    for (status, body) in &paid {
        match *status {
            StatusCode::CREATED => made += 1,
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(made > 0, "some payments went through");
    // Every payment is whole or absent: the grocer received 3.00 GROC per payment made.
    let grocer = balances(&app, &t.rosa, Some("grocer")).await;
    let expected = format!("{:.2}", -200.0 + 3.0 * f64::from(made));
    assert_eq!(grocer["GROC"], expected);
    assert_eq!(
        balances(&app, &t.alice, None)
            .await
            .get("GROC")
            .map(String::as_str)
            .unwrap_or("0.00"),
        "0.00"
    );
    app.assert_audit_clean().await;
    assert_no_funds_locked(&app).await;
}

/// In the production topology markets may be owned by different order-book processes. A
/// payment whose route crosses markets of two processes cannot borrow them all from either:
/// each answers 503 before anything is applied (a load balancer may
/// retry it on the other, which answers the same), and a route within one process still pays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_across_two_processes_is_refused_whole_with_503() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let t = town(
        &app,
        &[("brewery", "ALE", "100.00"), ("bakery", "BREAD", "20.00")],
    )
    .await;
    // A second order-book process opens (and so owns) a third market, GROC-ALE.
    let peer = app.peer(scrip::server::Services::only_orderbook()).await;
    let client = reqwest::Client::new();
    let on_peer = |path: &str, token: &str, body: Value| {
        client
            .post(format!("{peer}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let opened = on_peer(
        "/api/v1/markets",
        &t.rosa,
        json!({"base": "GROC", "quote": "ALE", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0}),
    )
    .await
    .expect("sent");
    assert_eq!(opened.status(), StatusCode::CREATED);
    let placed = on_peer(
        "/api/v1/orders",
        &t.mia,
        json!({"market": "GROC-ALE", "side": "sell", "type": "limit", "price": "2.00", "quantity": "10.00"}),
    )
    .await
    .expect("sent");
    assert_eq!(placed.status(), StatusCode::CREATED);
    order(&app, &t.mia, "ALE-BREAD", "buy", "0.50", "100.00").await;
    order(&app, &t.mia, "GROC-BREAD", "sell", "3.00", "10.00").await;
    // Each process learns of the other's markets (reading a book serves it, as a replica).
    for base in [app.base.clone(), peer.clone()] {
        for market in ["GROC-ALE", "GROC-BREAD", "ALE-BREAD"] {
            let book = client
                .get(format!("{base}/api/v1/markets/{market}/book"))
                .send()
                .await
                .expect("sent");
            assert_eq!(book.status(), StatusCode::OK);
        }
    }
    let before = state(&app, &t.alice).await;
    // ALE pays GROC best through GROC-ALE (the peer's), else ALE-BREAD then GROC-BREAD: every
    // route's markets are borrowed before the payment runs, so neither process can.
    let pay = json!({"to": "grocer", "currency": "GROC", "amount": "2.00", "pay_with": ["ALE"]});
    let here = app
        .post("/api/v1/payments", Some(&t.alice), pay.clone())
        .await;
    assert_problem(&here, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let there = on_peer("/api/v1/payments", &t.alice, pay)
        .await
        .expect("sent");
    assert_eq!(there.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(state(&app, &t.alice).await, before, "nothing was applied");
    // A route whose markets are all this process's pays as always.
    let bread = json!({"to": "grocer", "currency": "GROC", "amount": "2.00", "pay_with": ["BREAD"], "max_hops": 1});
    let (status, paid) = app.post("/api/v1/payments", Some(&t.alice), bread).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["spent"], spent(&[("BREAD", "6.00")]));
    app.assert_audit_clean().await;
    assert_no_funds_locked(&app).await;
}
