//! The exchange over HTTP: markets, orders with holds, settlement with fees, restart, market
//! data and its WebSocket stream. After every scenario: the ledger audit is clean and no funds
//! stay held by an order that is no longer open.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    a_trade_settles_both_sides_and_the_fees_exactly,
    bad_orders_are_refused_and_change_nothing,
    markets_are_opened_by_owners_and_operators_only,
    time_in_force_market_orders_and_reductions,
    concurrent_takers_never_double_fill_a_maker,
    a_restart_loses_no_acknowledged_order_and_rebuilds_the_same_book,
    the_stream_replayed_from_its_snapshot_equals_the_rest_book,
    an_order_with_an_idempotency_key_is_placed_once,
    a_maker_that_cannot_receive_is_cancelled_not_a_wall,
    concurrent_openings_of_one_market_get_one_market_and_conflicts,
    an_issuer_opens_a_bounded_number_of_markets,
    streams_are_bounded_and_idle_ones_are_closed,
    candles_are_the_trades_aggregated,
    orders_end_with_their_reason_and_owners_hear_it,
);

/// Tokens of the people in the market scenarios.
struct Market {
    /// Owner of `bakery` (currency BREAD) and of `grocer` (currency GROC).
    rosa: String,
    /// Holds 100.00 BREAD.
    alice: String,
    /// Holds 100.00 GROC.
    bob: String,
}

/// Two shops, two customers funded by them, and the market BREAD-GROC (tick 0.01, lot 1.00,
/// fee 25 bps).
async fn market(app: &TestApp) -> Market {
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "grocer", "GROC").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    for (from, to, currency) in [("bakery", "alice", "BREAD"), ("grocer", "bob", "GROC")] {
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": from, "to": to, "currency": currency, "amount": "100.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "BREAD", "quote": "GROC", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 25}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["symbol"], "BREAD-GROC");
    Market { rosa, alice, bob }
}

async fn order(app: &TestApp, token: &str, body: Value) -> Value {
    let mut body = body;
    body["market"] = json!("BREAD-GROC");
    let (status, order) = app.post("/api/v1/orders", Some(token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    order
}

/// `currency -> (balance, held)`.
async fn wallet(
    app: &TestApp,
    token: &str,
    holder: Option<&str>,
) -> BTreeMap<String, (String, String)> {
    app.balances(token, holder)
        .await
        .into_iter()
        .map(|(c, b, h)| (c, (b, h)))
        .collect()
}

fn money(balance: &str, held: &str) -> (String, String) {
    (balance.to_owned(), held.to_owned())
}

/// Invariant: every hold with something left belongs to an order that is still open.
pub(crate) async fn assert_no_funds_locked(app: &TestApp) {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let pool = app.db.pool.clone();
    let stranded = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("conn");
        diesel::sql_query(
            "SELECT COUNT(*) AS n FROM holds h WHERE h.remaining_atoms > 0 AND NOT EXISTS \
             (SELECT 1 FROM orders o WHERE o.hold_id = h.id AND o.status IN ('open', 'partially_filled'))",
        )
        .get_result::<Count>(&mut conn)
        .expect("count")
        .n
    })
    .await
    .expect("task");
    assert_eq!(stranded, 0, "funds stay held by closed orders");
    app.assert_audit_clean().await;
}

async fn book(app: &TestApp) -> Value {
    let (status, book) = app
        .get("/api/v1/markets/BREAD-GROC/book?depth=500", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{book}");
    book
}

async fn a_trade_settles_both_sides_and_the_fees_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let m = market(&app).await;

    let ask = order(
        &app,
        &m.alice,
        json!({"side": "sell", "type": "limit", "price": "2.00", "quantity": "10.00", "client_order_id": "a-1"}),
    )
    .await;
    assert_eq!(ask["status"], "open");
    assert_eq!(ask["remaining"], "10.00");
    assert_eq!(ask["client_order_id"], "a-1");
    assert_eq!(
        wallet(&app, &m.alice, None).await["BREAD"],
        money("100.00", "10.00")
    );

    // Bob bids above the ask: he trades at the maker's price, 4 x 2.00 = 8.00 GROC.
    let bid = order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "limit", "price": "2.50", "quantity": "4.00"}),
    )
    .await;
    assert_eq!(bid["status"], "filled", "{bid}");
    assert_eq!(bid["filled"], "4.00");
    assert_eq!(bid["remaining"], "0.00");
    let fill = &bid["fills"][0];
    assert_eq!(fill["price"], "2.00");
    assert_eq!(fill["quantity"], "4.00");
    // 25 bps of the 4.00 BREAD bob receives, rounded down: 0.01.
    assert_eq!(fill["fee"], "0.01");
    assert_eq!(fill["fee_currency"], "BREAD");
    assert_eq!(fill["total"], "8.00", "4.00 at 2.00, in GROC");
    assert!(
        fill["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{fill}"
    );

    let bob_wallet = wallet(&app, &m.bob, None).await;
    assert_eq!(
        bob_wallet["GROC"],
        money("92.00", "0.00"),
        "the unused 2.00 of the hold is released"
    );
    assert_eq!(bob_wallet["BREAD"], money("3.99", "0.00"));
    let alice_wallet = wallet(&app, &m.alice, None).await;
    assert_eq!(alice_wallet["BREAD"], money("96.00", "6.00"));
    // 25 bps of the 8.00 GROC alice receives: 0.02.
    assert_eq!(alice_wallet["GROC"], money("7.98", "0.00"));

    // Neither trader is shown the other: the other side of a trade is "the exchange".
    for (token, me, other) in [(&m.bob, "bob", "alice"), (&m.alice, "alice", "bob")] {
        let (_, history) = app.get("/api/v1/transfers", Some(token)).await;
        let trades: Vec<&Value> = history["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|t| t["kind"] == "trade")
            .collect();
        assert!(!trades.is_empty(), "{history}");
        for t in trades {
            let sides = [t["from"].as_str(), t["to"].as_str()];
            assert!(
                sides.contains(&Some(me)) && sides.contains(&Some("exchange")),
                "{t}"
            );
            assert!(!sides.contains(&Some(other)), "{t}");
            let id = t["id"].as_str().expect("id");
            let (_, one) = app
                .get(&format!("/api/v1/transfers/{id}"), Some(token))
                .await;
            assert_eq!((&one["from"], &one["to"]), (&t["from"], &t["to"]), "{one}");
        }
    }

    // The fees are in the registry's accounts, which operators may read.
    app.grant_operator("rosa").await;
    let registry = wallet(&app, &m.rosa, Some("registry")).await;
    assert_eq!(registry["BREAD"], money("0.01", "0.00"));
    assert_eq!(registry["GROC"], money("0.02", "0.00"));
    // Read only: an operator cannot pay the registry's fees to anyone, nor trade with them.
    let payout = app
        .pay(
            &m.rosa,
            json!({"from": "registry", "to": "rosa", "currency": "GROC", "amount": "0.02"}),
        )
        .await;
    assert_problem(&payout, StatusCode::FORBIDDEN, "not_owner");
    let trade = app
        .post(
            "/api/v1/orders",
            Some(&m.rosa),
            json!({"market": "BREAD-GROC", "holder": "registry", "side": "sell", "type": "limit", "price": "2.00", "quantity": "1.00"}),
        )
        .await;
    assert_problem(&trade, StatusCode::FORBIDDEN, "not_owner");
    assert_eq!(
        wallet(&app, &m.rosa, Some("registry")).await["GROC"],
        money("0.02", "0.00")
    );

    let book_now = book(&app).await;
    assert_eq!(
        book_now["asks"],
        json!([{"price": "2.00", "quantity": "6.00"}])
    );
    assert_eq!(book_now["bids"], json!([]));
    let (_, markets) = app.get("/api/v1/markets", None).await;
    assert_eq!(markets["items"][0]["last_price"], "2.00");
    assert_eq!(markets["items"][0]["fee_bps"], 25);
    let (_, trades) = app.get("/api/v1/markets/BREAD-GROC/trades", None).await;
    assert_eq!(trades["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(trades["next_cursor"], json!(null));
    assert_eq!(trades["items"][0]["taker_side"], "buy");
    assert_eq!(trades["items"][0]["price"], "2.00");
    let (status, candles) = app
        .get("/api/v1/markets/BREAD-GROC/candles?interval=1m", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{candles}");
    let candle = &candles["items"][0];
    assert_eq!(
        (candle["open"].as_str(), candle["volume"].as_str()),
        (Some("2.00"), Some("4.00"))
    );

    // The maker's view of its order, then its cancellation releases the rest of its hold.
    let id = ask["id"].as_str().expect("id");
    let (_, seen) = app
        .get(&format!("/api/v1/orders/{id}"), Some(&m.alice))
        .await;
    assert_eq!(seen["status"], "partially_filled");
    assert_eq!(seen["fills"][0]["fee"], "0.02");
    assert_eq!(seen["fills"][0]["fee_currency"], "GROC");
    let (status, cancelled) = app
        .delete(&format!("/api/v1/orders/{id}"), Some(&m.alice))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["filled"], "4.00");
    assert_eq!(
        wallet(&app, &m.alice, None).await["BREAD"],
        money("96.00", "0.00")
    );
    assert_problem(
        &app.delete(&format!("/api/v1/orders/{id}"), Some(&m.alice))
            .await,
        StatusCode::CONFLICT,
        "order_closed",
    );
    let (_, open) = app.get("/api/v1/orders?status=open", Some(&m.alice)).await;
    assert_eq!(open["items"], json!([]));
    let (_, all) = app
        .get("/api/v1/orders?market=BREAD-GROC", Some(&m.alice))
        .await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
    // `rejected` is a status of the API; a refused order is answered, never stored.
    let (status, rejected) = app
        .get("/api/v1/orders?status=rejected", Some(&m.alice))
        .await;
    assert_eq!((status, &rejected["items"]), (StatusCode::OK, &json!([])));
    assert_problem(
        &app.get("/api/v1/orders?status=gone", Some(&m.alice)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_status",
    );
    assert_eq!(book(&app).await["asks"], json!([]));
    assert_no_funds_locked(&app).await;
}

async fn bad_orders_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let m = market(&app).await;
    let resting = order(
        &app,
        &m.alice,
        json!({"side": "sell", "type": "limit", "price": "3.00", "quantity": "5.00"}),
    )
    .await;
    let before = (
        wallet(&app, &m.alice, None).await,
        wallet(&app, &m.bob, None).await,
        app.transfer_count().await,
        book(&app).await["asks"].clone(),
    );
    let limit = |price: &str, quantity: &str| json!({"market": "BREAD-GROC", "side": "buy", "type": "limit", "price": price, "quantity": quantity});
    let cases = [
        (
            limit("2.005", "1.00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_price",
        ),
        (
            limit("0", "1.00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_price",
        ),
        (
            limit("-1.00", "1.00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_price",
        ),
        (
            limit("abc", "1.00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_price",
        ),
        (
            limit("2.00", "0.50"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_quantity",
        ),
        (
            limit("2.00", "0"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_quantity",
        ),
        (
            limit("2.00", "1.001"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_quantity",
        ),
        (
            limit("2.00", "99999999999999999999999"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_quantity",
        ),
        (
            limit("99999999999.00", "9999999.00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_quantity",
        ),
        (
            limit("2.00", "60.00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
        ),
        (
            json!({"market": "BREAD-GROC", "side": "buy", "type": "limit", "price": "3.00", "quantity": "1.00", "post_only": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "would_cross",
        ),
        (
            json!({"market": "NOPE-GROC", "side": "buy", "type": "limit", "price": "1.00", "quantity": "1.00"}),
            StatusCode::NOT_FOUND,
            "unknown_market",
        ),
        (
            json!({"market": "BREAD-GROC", "side": "buy", "type": "limit", "price": "1.00", "quantity": "1.00", "holder": "alice"}),
            StatusCode::FORBIDDEN,
            "not_owner",
        ),
        (
            json!({"market": "BREAD-GROC", "side": "buy", "type": "limit", "price": "1.00", "quantity": "1.00", "holder": "bakery"}),
            StatusCode::FORBIDDEN,
            "not_owner",
        ),
        (
            json!({"market": "BREAD-GROC", "side": "sideways", "type": "limit", "price": "1.00", "quantity": "1.00"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"market": "BREAD-GROC", "side": "buy", "type": "market", "price": "1.00", "quantity": "1.00"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_price",
        ),
        (
            json!({"market": "BREAD-GROC", "side": "buy", "type": "limit", "quantity": "1.00"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_price",
        ),
        (
            json!({"market": "BREAD-GROC", "side": "buy", "type": "limit", "price": 1, "quantity": "1.00"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        let answer = app.post("/api/v1/orders", Some(&m.bob), body.clone()).await;
        assert_eq!(answer.0, status, "{body} -> {}", answer.1);
        assert_eq!(answer.1["code"], code, "{body} -> {}", answer.1);
    }
    // No token, a forged one.
    let body = limit("1.00", "1.00");
    assert_problem(
        &app.post("/api/v1/orders", None, body.clone()).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_problem(
        &app.post(
            "/api/v1/orders",
            Some("eyJhbGciOiJFZERTQSJ9.e30.c2ln"),
            body,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Someone else's order is not found, whatever is asked of it.
    let id = resting["id"].as_str().expect("id");
    for answer in [
        app.get(&format!("/api/v1/orders/{id}"), Some(&m.bob)).await,
        app.delete(&format!("/api/v1/orders/{id}"), Some(&m.bob))
            .await,
        app.patch(
            &format!("/api/v1/orders/{id}"),
            Some(&m.bob),
            json!({"quantity": "1.00"}),
        )
        .await,
        app.get("/api/v1/orders/12345", Some(&m.bob)).await,
        app.get("/api/v1/orders/not-an-id", Some(&m.bob)).await,
    ] {
        assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
    }
    // Increasing is not a reduction; off-lot is refused.
    let path = format!("/api/v1/orders/{id}");
    for quantity in ["6.00", "5.00", "2.50", "-1.00"] {
        assert_problem(
            &app.patch(&path, Some(&m.alice), json!({"quantity": quantity}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_quantity",
        );
    }
    let after = (
        wallet(&app, &m.alice, None).await,
        wallet(&app, &m.bob, None).await,
        app.transfer_count().await,
        book(&app).await["asks"].clone(),
    );
    assert_eq!(before, after, "refusals changed nothing");
    assert_no_funds_locked(&app).await;
}

async fn markets_are_opened_by_owners_and_operators_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let m = market(&app).await;
    let market = |base: &str, quote: &str, tick: &str, lot: &str, fee: u32| json!({"base": base, "quote": quote, "tick_size": tick, "lot_size": lot, "fee_bps": fee});
    assert_problem(
        &app.post(
            "/api/v1/markets",
            Some(&m.alice),
            market("GROC", "BREAD", "0.01", "1.00", 0),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    assert_problem(
        &app.post(
            "/api/v1/markets",
            Some(&m.rosa),
            market("BREAD", "GROC", "0.01", "1.00", 0),
        )
        .await,
        StatusCode::CONFLICT,
        "market_exists",
    );
    for bad in [
        market("GROC", "BREAD", "0.01", "0.10", 0),
        market("GROC", "BREAD", "0.001", "1.00", 0),
        market("GROC", "BREAD", "0", "1.00", 0),
        market("GROC", "BREAD", "0.01", "1.00", 5_000),
        market("GROC", "GROC", "0.01", "1.00", 0),
    ] {
        assert_problem(
            &app.post("/api/v1/markets", Some(&m.rosa), bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_market",
        );
    }
    assert_problem(
        &app.post(
            "/api/v1/markets",
            Some(&m.rosa),
            market("NOPE", "GROC", "0.01", "1.00", 0),
        )
        .await,
        StatusCode::NOT_FOUND,
        "unknown_currency",
    );
    // An operator may open any market; a new market trades at once.
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    let (status, body) = app
        .post(
            "/api/v1/markets",
            Some(&olga),
            market("GROC", "BREAD", "0.05", "1.00", 10),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tick_size"], "0.05");
    assert_eq!(body["lot_size"], "1.00");
    // Markets are listed oldest first, a page at a time.
    let symbols: Vec<Value> = app
        .all_pages("/api/v1/markets", None, 1)
        .await
        .iter()
        .map(|m| m["symbol"].clone())
        .collect();
    assert_eq!(symbols, [json!("BREAD-GROC"), json!("GROC-BREAD")]);
    let (status, body) = app
        .post(
            "/api/v1/orders",
            Some(&m.bob),
            json!({"market": "GROC-BREAD", "side": "sell", "type": "limit", "price": "0.55", "quantity": "2.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_problem(
        &app.get("/api/v1/markets/NOPE-GROC/book", None).await,
        StatusCode::NOT_FOUND,
        "unknown_market",
    );
    assert_no_funds_locked(&app).await;
}

async fn time_in_force_market_orders_and_reductions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let m = market(&app).await;
    for (price, quantity) in [("2.00", "3.00"), ("2.10", "3.00")] {
        order(
            &app,
            &m.alice,
            json!({"side": "sell", "type": "limit", "price": price, "quantity": quantity}),
        )
        .await;
    }
    // FOK for more than there is: nothing trades, nothing stays held.
    let fok = order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "limit", "price": "2.10", "quantity": "7.00", "time_in_force": "fok"}),
    )
    .await;
    assert_eq!(
        (fok["status"].as_str(), fok["filled"].as_str()),
        (Some("expired"), Some("0.00"))
    );
    assert_eq!(
        wallet(&app, &m.bob, None).await["GROC"],
        money("100.00", "0.00")
    );
    // IOC at 2.00 takes the 3 at 2.00; the rest expires.
    let ioc = order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "limit", "price": "2.00", "quantity": "5.00", "time_in_force": "ioc"}),
    )
    .await;
    assert_eq!(
        (ioc["status"].as_str(), ioc["filled"].as_str()),
        (Some("expired"), Some("3.00"))
    );
    // A market buy sweeps what it needs, at most the 3 left at 2.10.
    let market_buy = order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "market", "quantity": "4.00"}),
    )
    .await;
    assert_eq!(market_buy["filled"], "3.00", "{market_buy}");
    assert_eq!(market_buy["status"], "expired");
    // 100 - 6.00 - 6.30 = 87.70
    assert_eq!(
        wallet(&app, &m.bob, None).await["GROC"],
        money("87.70", "0.00")
    );
    // A market order on an empty side expires with nothing held.
    let nothing = order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "market", "quantity": "1.00"}),
    )
    .await;
    assert_eq!(nothing["status"], "expired");

    // Reduce keeps priority: bob's first bid, reduced, still trades first.
    let first = order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "limit", "price": "1.00", "quantity": "5.00"}),
    )
    .await;
    let second = order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "limit", "price": "1.00", "quantity": "5.00"}),
    )
    .await;
    assert_eq!(
        wallet(&app, &m.bob, None).await["GROC"],
        money("87.70", "10.00")
    );
    let first_id = first["id"].as_str().expect("id");
    let (status, reduced) = app
        .patch(
            &format!("/api/v1/orders/{first_id}"),
            Some(&m.bob),
            json!({"quantity": "2.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reduced}");
    assert_eq!(
        (reduced["quantity"].as_str(), reduced["remaining"].as_str()),
        (Some("2.00"), Some("2.00"))
    );
    assert_eq!(
        wallet(&app, &m.bob, None).await["GROC"],
        money("87.70", "7.00")
    );
    let sell = order(
        &app,
        &m.alice,
        json!({"side": "sell", "type": "market", "quantity": "3.00"}),
    )
    .await;
    assert_eq!(sell["filled"], "3.00");
    let (_, first_now) = app
        .get(&format!("/api/v1/orders/{first_id}"), Some(&m.bob))
        .await;
    assert_eq!(
        first_now["status"], "filled",
        "the reduced order kept its place"
    );
    let second_id = second["id"].as_str().expect("id");
    let (_, second_now) = app
        .get(&format!("/api/v1/orders/{second_id}"), Some(&m.bob))
        .await;
    assert_eq!(second_now["filled"], "1.00");
    // Self-trade prevention: bob's own resting bid is cancelled, not traded against.
    let bob_sells = order(
        &app,
        &m.bob,
        json!({"side": "sell", "type": "limit", "price": "1.00", "quantity": "1.00"}),
    )
    .await;
    assert_eq!(bob_sells["filled"], "0.00");
    let (_, second_now) = app
        .get(&format!("/api/v1/orders/{second_id}"), Some(&m.bob))
        .await;
    assert_eq!(second_now["status"], "cancelled");
    assert_no_funds_locked(&app).await;
}

async fn concurrent_takers_never_double_fill_a_maker(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let m = market(&app).await;
    let maker = order(
        &app,
        &m.alice,
        json!({"side": "sell", "type": "limit", "price": "1.00", "quantity": "10.00"}),
    )
    .await;
    // Eight takers, each funded, each wanting 3: only 10 exist.
    let mut takers = Vec::new();
    for i in 0..8 {
        let handle = format!("taker{i}");
        let token = app.user(&handle).await;
        let (status, body) = app
            .pay(
                &m.rosa,
                json!({"from": "grocer", "to": handle, "currency": "GROC", "amount": "5.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        takers.push(token);
    }
    let answers = futures_util::future::join_all(takers.iter().map(|token| {
        app.post(
            "/api/v1/orders",
            Some(token),
            json!({"market": "BREAD-GROC", "side": "buy", "type": "limit", "price": "1.00", "quantity": "3.00", "time_in_force": "ioc"}),
        )
    }))
    .await;
    let mut filled_atoms = 0;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        let filled = scrip_domain::Amount::parse(
            body["filled"].as_str().expect("filled"),
            scrip_domain::Scale::new(2).expect("scale"),
        )
        .expect("amount");
        filled_atoms += filled.atoms();
    }
    assert_eq!(filled_atoms, 1_000, "exactly the maker's 10.00 was sold");
    let id = maker["id"].as_str().expect("id");
    let (_, maker_now) = app
        .get(&format!("/api/v1/orders/{id}"), Some(&m.alice))
        .await;
    assert_eq!(maker_now["status"], "filled");
    let fills: i64 = maker_now["fills"].as_array().expect("fills").len() as i64;
    assert!((4..=8).contains(&fills), "{maker_now}");
    assert_eq!(
        wallet(&app, &m.alice, None).await["BREAD"],
        money("90.00", "0.00")
    );
    // The market's trades, paged two at a time, are the whole list once each, newest first.
    let (_, all) = app
        .get("/api/v1/markets/BREAD-GROC/trades?limit=500", None)
        .await;
    let paged = app
        .all_pages("/api/v1/markets/BREAD-GROC/trades", None, 2)
        .await;
    assert_eq!(json!(paged), all["items"]);
    assert_eq!(paged.len() as i64, fills);
    assert_no_funds_locked(&app).await;
}

async fn a_restart_loses_no_acknowledged_order_and_rebuilds_the_same_book(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let m = market(&app).await;
    let mut placed = Vec::new();
    for i in 0..20 {
        let (token, side, price) = if i % 2 == 0 {
            (&m.alice, "sell", format!("{}.{:02}", 2 + i % 3, i))
        } else {
            (&m.bob, "buy", format!("1.{:02}", 50 + i))
        };
        let o = order(
            &app,
            token,
            json!({"side": side, "type": "limit", "price": price, "quantity": "1.00"}),
        )
        .await;
        placed.push(o["id"].as_str().expect("id").to_owned());
    }
    // A trade, a reduction and a cancellation before the crash.
    order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "limit", "price": "2.00", "quantity": "1.00"}),
    )
    .await;
    let before = book(&app).await;
    let wallets = (
        wallet(&app, &m.alice, None).await,
        wallet(&app, &m.bob, None).await,
    );

    app.restart().await;
    // The new process owns the market within seconds (at once on SQLite).
    let mut after = Value::Null;
    for _ in 0..100 {
        after = book(&app).await;
        if after["bids"] == before["bids"] && after["asks"] == before["asks"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (&after["bids"], &after["asks"]),
        (&before["bids"], &before["asks"])
    );
    assert_eq!(
        wallets,
        (
            wallet(&app, &m.alice, None).await,
            wallet(&app, &m.bob, None).await
        )
    );
    for id in &placed {
        let (status, body) = app
            .get(&format!("/api/v1/orders/{id}"), Some(&m.alice))
            .await;
        let (status2, _) = app.get(&format!("/api/v1/orders/{id}"), Some(&m.bob)).await;
        assert!(
            status == StatusCode::OK || status2 == StatusCode::OK,
            "{body}"
        );
    }
    // It keeps trading, with fresh ids, against the rebuilt book.
    let mut traded = None;
    for _ in 0..50 {
        let (status, body) = app
            .post(
                "/api/v1/orders",
                Some(&m.bob),
                json!({"market": "BREAD-GROC", "side": "buy", "type": "limit", "price": "3.00", "quantity": "2.00"}),
            )
            .await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        traded = Some(body);
        break;
    }
    let traded = traded.expect("the market is served again");
    assert_eq!(traded["filled"], "2.00", "{traded}");
    assert!(!placed.contains(&traded["id"].as_str().expect("id").to_owned()));
    assert_no_funds_locked(&app).await;
}

/// Applies one stream message to a book kept as `price -> quantity` per side.
fn apply(book: &mut (BTreeMap<String, String>, BTreeMap<String, String>), message: &Value) {
    for (side, levels) in [
        (&mut book.0, &message["bids"]),
        (&mut book.1, &message["asks"]),
    ] {
        for level in levels.as_array().into_iter().flatten() {
            let price = level["price"].as_str().expect("price").to_owned();
            let quantity = level["quantity"].as_str().expect("quantity").to_owned();
            if quantity.trim_start_matches(['0', '.']).is_empty() {
                side.remove(&price);
            } else {
                side.insert(price, quantity);
            }
        }
    }
}

fn levels(book: &Value) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut out = (BTreeMap::new(), BTreeMap::new());
    apply(&mut out, book);
    out
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client on BREAD-GROC's stream at `base`.
async fn open_stream(base: &str) -> Stream {
    let url = format!(
        "{}/api/v1/markets/BREAD-GROC/stream",
        base.replacen("http", "ws", 1)
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0
}

/// The next text message, as JSON.
async fn next_message(socket: &mut Stream) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("json");
        }
    }
}

/// Applies stream messages to `replayed` until `target`, checking the sequence has no gap;
/// returns how many trades went by.
async fn replay_until(
    socket: &mut Stream,
    replayed: &mut (BTreeMap<String, String>, BTreeMap<String, String>),
    mut sequence: u64,
    target: u64,
) -> usize {
    let mut trades = 0;
    while sequence < target {
        let message = next_message(socket).await;
        let got = message["sequence"].as_u64().expect("sequence");
        assert_eq!(got, sequence + 1, "gapless: {message}");
        sequence = got;
        match message["type"].as_str() {
            Some("book") => apply(replayed, &message),
            Some("trade") => trades += 1,
            other => panic!("unexpected message {other:?}"),
        }
    }
    trades
}

async fn the_stream_replayed_from_its_snapshot_equals_the_rest_book(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let m = market(&app).await;
    order(
        &app,
        &m.alice,
        json!({"side": "sell", "type": "limit", "price": "2.00", "quantity": "5.00"}),
    )
    .await;
    let mut socket = open_stream(&app.base).await;
    let snapshot = next_message(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot");
    let mut replayed = levels(&snapshot);
    let sequence = snapshot["sequence"].as_u64().expect("sequence");

    // Trading while the stream runs: rests, a partial fill, a cancel, a reduction.
    let bid = order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "limit", "price": "1.50", "quantity": "4.00"}),
    )
    .await;
    order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "limit", "price": "2.00", "quantity": "2.00"}),
    )
    .await;
    let ask = order(
        &app,
        &m.alice,
        json!({"side": "sell", "type": "limit", "price": "2.50", "quantity": "3.00"}),
    )
    .await;
    let bid_id = bid["id"].as_str().expect("id");
    app.patch(
        &format!("/api/v1/orders/{bid_id}"),
        Some(&m.bob),
        json!({"quantity": "1.00"}),
    )
    .await;
    let ask_id = ask["id"].as_str().expect("id");
    app.delete(&format!("/api/v1/orders/{ask_id}"), Some(&m.alice))
        .await;

    let rest = book(&app).await;
    let target = rest["sequence"].as_u64().expect("sequence");
    let trades = replay_until(&mut socket, &mut replayed, sequence, target).await;
    assert_eq!(trades, 1);
    assert_eq!(
        replayed,
        levels(&rest),
        "the replayed stream equals the REST book"
    );

    // A client that reconnects starts again from a snapshot equal to the REST book.
    let mut again = open_stream(&app.base).await;
    let first = next_message(&mut again).await;
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["sequence"], rest["sequence"]);
    assert_eq!(levels(&first), levels(&rest));
    assert_no_funds_locked(&app).await;
}

async fn an_order_with_an_idempotency_key_is_placed_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let m = market(&app).await;
    let body = json!({"market": "BREAD-GROC", "side": "sell", "type": "limit", "price": "2.00", "quantity": "3.00"});
    let send = |key: &'static str, body: Value| {
        let request = app
            .client
            .post(format!("{}/api/v1/orders", app.base))
            .bearer_auth(&m.alice)
            .header("Idempotency-Key", key)
            .json(&body);
        async move {
            let response = request.send().await.expect("sent");
            let replayed = response
                .headers()
                .get("Idempotent-Replayed")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let status = response.status();
            let body: Value = response.json().await.expect("json");
            (status, body, replayed)
        }
    };
    // Ten at once with one key: one order, ten identical answers.
    let answers =
        futures_util::future::join_all((0..10).map(|_| send("sell-once", body.clone()))).await;
    let first = &answers[0].1;
    for (status, answer, _) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["id"], first["id"], "{answer}");
    }
    assert_eq!(
        answers.iter().filter(|a| a.2 == "false").count(),
        1,
        "placed once"
    );
    let (status, again, replayed) = send("sell-once", body.clone()).await;
    assert_eq!((status, replayed.as_str()), (StatusCode::CREATED, "true"));
    assert_eq!(again, *first);
    assert_eq!(
        wallet(&app, &m.alice, None).await["BREAD"],
        money("100.00", "3.00")
    );
    let (_, open) = app.get("/api/v1/orders?status=open", Some(&m.alice)).await;
    assert_eq!(open["items"].as_array().map(Vec::len), Some(1));
    // The same key with another body is a conflict and changes nothing.
    let mut other = body.clone();
    other["price"] = json!("2.50");
    let (status, conflict, _) = send("sell-once", other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["code"], "idempotency_conflict");
    assert_eq!(
        wallet(&app, &m.alice, None).await["BREAD"],
        money("100.00", "3.00")
    );
    assert_no_funds_locked(&app).await;
}

/// PostgreSQL only (SQLite has no advisory locks): when the session holding a market's lock
/// dies and another process takes the lock, the writer notices inside its next batch and
/// refuses instead of writing from a book the other process now owns; once the other lets go,
/// it takes the market back and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_lost_its_market_lock_stops_writing() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let m = market(&app).await;
    order(
        &app,
        &m.alice,
        json!({"side": "sell", "type": "limit", "price": "2.00", "quantity": "1.00"}),
    )
    .await;
    let before = book(&app).await;
    // The lock session dies and another process (here, the test) takes the market's lock
    // before this one can take it back.
    let url = app.db.url.as_str().to_owned();
    let rival = tokio::task::spawn_blocking(move || {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let mut rival = diesel::PgConnection::establish(&url).expect("rival session");
        for _ in 0..50 {
            diesel::sql_query(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND pid <> pg_backend_pid() \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .execute(&mut rival)
            .expect("terminate");
            let taken = diesel::sql_query(
                "SELECT pg_try_advisory_lock(23583, (SELECT id FROM markets WHERE symbol = 'BREAD-GROC')::int) AS locked",
            )
            .get_result::<Locked>(&mut rival)
            .expect("lock");
            if taken.locked {
                return rival;
            }
        }
        panic!("the rival never got the market's lock");
    })
    .await
    .expect("task");
    let body = json!({"market": "BREAD-GROC", "side": "sell", "type": "limit", "price": "2.10", "quantity": "1.00"});
    let first = app
        .post("/api/v1/orders", Some(&m.alice), body.clone())
        .await;
    assert_problem(&first, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    // The rival stops (its session ends, so does its lock): the market is served again.
    drop(rival);
    let mut placed = None;
    for _ in 0..50 {
        let answer = app
            .post("/api/v1/orders", Some(&m.alice), body.clone())
            .await;
        if answer.0 == StatusCode::CREATED {
            placed = Some(answer.1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(placed.is_some(), "the market is served again");
    let after = book(&app).await;
    assert_eq!(after["asks"][0], before["asks"][0]);
    assert_eq!(after["asks"].as_array().map(Vec::len), Some(2));
    assert_no_funds_locked(&app).await;
}

/// A resting order whose owner's account sits at the currency's maximum balance cannot be
/// paid; rather than refusing every taker that reaches it, it is cancelled and the taker trades
/// with the next order.
async fn a_maker_that_cannot_receive_is_cancelled_not_a_wall(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let m = market(&app).await;
    let carol = app.user("carol").await;
    let (status, body) = app
        .pay(
            &m.rosa,
            json!({"from": "bakery", "to": "carol", "currency": "BREAD", "amount": "10.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let wall = order(
        &app,
        &carol,
        json!({"side": "sell", "type": "limit", "price": "1.00", "quantity": "5.00"}),
    )
    .await;
    order(
        &app,
        &m.alice,
        json!({"side": "sell", "type": "limit", "price": "1.01", "quantity": "5.00"}),
    )
    .await;
    // GROC now caps holdings at 100.00, and carol holds exactly that.
    let (status, body) = app
        .patch(
            "/api/v1/currencies/GROC",
            Some(&m.rosa),
            json!({"max_balance": "100.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .pay(
            &m.rosa,
            json!({"from": "grocer", "to": "carol", "currency": "GROC", "amount": "100.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let bid = order(
        &app,
        &m.bob,
        json!({"side": "buy", "type": "limit", "price": "1.01", "quantity": "5.00"}),
    )
    .await;
    assert_eq!(bid["status"], "filled", "{bid}");
    assert_eq!(bid["fills"][0]["price"], "1.01", "traded with the next ask");
    let id = wall["id"].as_str().expect("id");
    let (_, wall_now) = app.get(&format!("/api/v1/orders/{id}"), Some(&carol)).await;
    assert_eq!(wall_now["status"], "cancelled");
    assert_eq!(
        wallet(&app, &carol, None).await["BREAD"],
        money("10.00", "0.00")
    );
    assert_no_funds_locked(&app).await;
}

/// Production topology in one test process: the order book on one server, a gateway-only
/// server on the same database and Redis. A WebSocket client on the gateway sees the owner's
/// stream with the same gapless sequence, and the gateway's book equals the owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_instance_streams_the_owners_book_through_redis() {
    let app = TestApp::spawn_with(
        Backend::Postgres,
        crate::app::Limits {
            redis: true,
            ..Default::default()
        },
    )
    .await;
    let m = market(&app).await;
    order(
        &app,
        &m.alice,
        json!({"side": "sell", "type": "limit", "price": "2.00", "quantity": "5.00"}),
    )
    .await;
    let gateway = app.peer(scrip::server::Services::only_gateway()).await;
    let mut socket = open_stream(&gateway).await;
    let snapshot = next_message(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot");
    let owner_book = book(&app).await;
    assert_eq!(snapshot["sequence"], owner_book["sequence"], "{snapshot}");
    assert_eq!(levels(&snapshot), levels(&owner_book));
    let mut replayed = levels(&snapshot);
    let sequence = snapshot["sequence"].as_u64().expect("sequence");

    // Trading on the owner while the gateway's client watches.
    for (who, body) in [
        (
            &m.bob,
            json!({"side": "buy", "type": "limit", "price": "1.50", "quantity": "4.00"}),
        ),
        (
            &m.bob,
            json!({"side": "buy", "type": "limit", "price": "2.00", "quantity": "2.00"}),
        ),
        (
            &m.alice,
            json!({"side": "sell", "type": "limit", "price": "2.50", "quantity": "3.00"}),
        ),
        (
            &m.alice,
            json!({"side": "sell", "type": "limit", "price": "1.50", "quantity": "1.00"}),
        ),
    ] {
        order(&app, who, body).await;
    }
    let target = book(&app).await["sequence"].as_u64().expect("sequence");
    let trades = replay_until(&mut socket, &mut replayed, sequence, target).await;
    assert_eq!(trades, 2);
    let owner_book = book(&app).await;
    assert_eq!(
        replayed,
        levels(&owner_book),
        "the gateway's stream is the owner's book"
    );
    let gateway_book: Value = app
        .client
        .get(format!("{gateway}/api/v1/markets/BREAD-GROC/book"))
        .send()
        .await
        .expect("book")
        .json()
        .await
        .expect("json");
    assert_eq!(levels(&gateway_book), levels(&owner_book), "{gateway_book}");
    assert_eq!(gateway_book["sequence"], owner_book["sequence"]);
    // The gateway serves market data but never takes orders.
    let refused = app
        .client
        .post(format!("{gateway}/api/v1/orders"))
        .bearer_auth(&m.bob)
        .json(&json!({"market": "BREAD-GROC", "side": "buy", "type": "limit", "price": "1.00", "quantity": "1.00"}))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let ready: Value = app
        .client
        .get(format!("{gateway}/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["redis"], "ok", "{ready}");
    assert_no_funds_locked(&app).await;
}

/// Many owners' requests to open the same pair at once: exactly one market, every other
/// answer 409 `market_exists`, never a 500 (the check races; the constraint decides).
async fn concurrent_openings_of_one_market_get_one_market_and_conflicts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "grocer", "GROC").await;
    let body = json!({"base": "GROC", "quote": "BREAD", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0});
    let attempts = (0..8).map(|_| app.post("/api/v1/markets", Some(&rosa), body.clone()));
    let answers = futures_util::future::join_all(attempts).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    for (status, problem) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::CONFLICT, "{problem}");
        assert_eq!(problem["code"], "market_exists", "{problem}");
    }
}

/// `bakery` (owned by rosa) issuing `count` currencies B0, B1, ..., and the pairs among them
/// in a fixed order.
async fn bakery_with_currencies(app: &TestApp, count: usize) -> (String, Vec<(String, String)>) {
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let codes: Vec<String> = (0..count).map(|i| format!("B{i}")).collect();
    for code in &codes {
        let (status, body) = app
            .post(
                "/api/v1/currencies",
                Some(&rosa),
                json!({"issuer": "bakery", "code": code, "name": format!("{code} money"), "scale": 2, "credit_limit": "1000.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut pairs = Vec::new();
    for (i, base) in codes.iter().enumerate() {
        for quote in &codes[i + 1..] {
            pairs.push((base.clone(), quote.clone()));
        }
    }
    (rosa, pairs)
}

fn new_market(base: &str, quote: &str) -> Value {
    json!({"base": base, "quote": quote, "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0})
}

/// Every market is a writer thread and a stream and anyone may issue a currency, so the
/// markets trading one issuer's currencies are capped, unless an operator opens them.
async fn an_issuer_opens_a_bounded_number_of_markets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, pairs) = bakery_with_currencies(&app, 7).await;
    let max = usize::try_from(scrip_orderbook::MAX_MARKETS_PER_ISSUER).expect("small");
    for (base, quote) in &pairs[..max] {
        let (status, body) = app
            .post("/api/v1/markets", Some(&rosa), new_market(base, quote))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (base, quote) = &pairs[max];
    let refused = app
        .post("/api/v1/markets", Some(&rosa), new_market(base, quote))
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "market_limit");
    assert!(
        refused.1["detail"]
            .as_str()
            .is_some_and(|d| d.contains("bakery") && d.contains(&max.to_string())),
        "{refused:?}"
    );
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    let (status, body) = app
        .post("/api/v1/markets", Some(&olga), new_market(base, quote))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "an operator may open more: {body}"
    );
}

/// PostgreSQL only: a process holds the locks of all the markets it writes on one session,
/// so opening markets never uses up the database's connections (one session per market let
/// ~90 markets exhaust `max_connections` for everyone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_markets_of_a_process_are_locked_on_one_session() {
    #[derive(QueryableByName, Debug)]
    struct Locks {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        locks: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        sessions: i64,
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let (rosa, pairs) = bakery_with_currencies(&app, 5).await;
    for (base, quote) in &pairs {
        let (status, body) = app
            .post("/api/v1/markets", Some(&rosa), new_market(base, quote))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Every market takes its lock when its writer starts; wait until all have.
    let pool = app.db.pool.clone();
    let mut seen = None;
    for _ in 0..50 {
        let pool = pool.clone();
        let locks = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().expect("conn");
            diesel::sql_query(
                "SELECT COUNT(*) AS locks, COUNT(DISTINCT pid) AS sessions FROM pg_locks \
                 WHERE locktype = 'advisory' AND granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .get_result::<Locks>(&mut conn)
            .expect("pg_locks")
        })
        .await
        .expect("task");
        if locks.locks == i64::try_from(pairs.len()).expect("small") {
            seen = Some(locks);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let locks = seen.expect("every market's writer takes its lock");
    assert_eq!(locks.sessions, 1, "{locks:?}");
}

/// Streams are anonymous, so they are bounded: per client address (429 beyond), a snapshot of
/// at most `depth` levels a side, and a client that answers nothing, not even the server's
/// pings, is closed after the idle timeout, giving its place back.
async fn streams_are_bounded_and_idle_ones_are_closed(backend: Backend) {
    let limits = crate::app::Limits {
        streams: scrip_orderbook::StreamLimits {
            total: 100,
            per_address: 2,
            ping_interval: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(1),
            recheck_interval: Duration::from_secs(60),
        },
        ..crate::app::Limits::default()
    };
    let app = TestApp::spawn_with(backend, limits).await;
    let m = market(&app).await;
    for price in ["2.00", "2.10"] {
        order(
            &app,
            &m.alice,
            json!({"side": "sell", "type": "limit", "price": price, "quantity": "1.00"}),
        )
        .await;
    }
    assert_problem(
        &app.get("/api/v1/markets/BREAD-GROC/stream?depth=0", None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_depth",
    );
    let url = format!(
        "{}/api/v1/markets/BREAD-GROC/stream?depth=1",
        app.base.replacen("http", "ws", 1)
    );
    let connect = || tokio_tungstenite::connect_async(url.clone());
    let mut listening = connect().await.expect("first stream").0;
    let snapshot = next_message(&mut listening).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(
        snapshot["asks"].as_array().map(Vec::len),
        Some(1),
        "{snapshot}"
    );
    assert_eq!(snapshot["asks"][0]["price"], "2.00");
    let mut silent = connect().await.expect("second stream").0;
    match connect().await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        }
        other => panic!("a third stream from one address is refused: {other:?}"),
    }
    // The listening client answers the pings (tungstenite does as it reads) and stays open
    // well past the idle timeout; the silent one is closed meanwhile.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2_500);
    let mut pings = 0;
    while let Ok(message) = tokio::time::timeout_at(deadline, listening.next()).await {
        match message
            .expect("the listening stream stays open")
            .expect("frame")
        {
            tokio_tungstenite::tungstenite::Message::Ping(_) => pings += 1,
            tokio_tungstenite::tungstenite::Message::Close(frame) => {
                panic!("closed a client that answers pings: {frame:?}")
            }
            _ => {}
        }
    }
    assert!(pings >= 5, "pinged every 200 ms: {pings}");
    let mut third = connect()
        .await
        .expect("the silent stream's place is free again")
        .0;
    assert_eq!(next_message(&mut third).await["type"], "snapshot");
    let mut closed = false;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), silent.next()).await
    {
        if matches!(
            message,
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_)
        ) {
            closed = true;
            break;
        }
    }
    assert!(closed, "the silent stream was closed");
}

/// The database aggregates candles (no request reads a window's trades): trades spread over
/// several hours by rewriting their times give the candles a model computes from the trades
/// list, for every interval.
async fn candles_are_the_trades_aggregated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let m = market(&app).await;
    for (price, quantity) in [
        ("2.00", "1.00"),
        ("2.05", "2.00"),
        ("1.95", "1.00"),
        ("2.10", "3.00"),
        ("2.02", "1.00"),
        ("1.99", "2.00"),
    ] {
        order(
            &app,
            &m.alice,
            json!({"side": "sell", "type": "limit", "price": price, "quantity": quantity}),
        )
        .await;
        let bid = order(
            &app,
            &m.bob,
            json!({"side": "buy", "type": "limit", "price": price, "quantity": quantity}),
        )
        .await;
        assert_eq!(bid["status"], "filled", "{bid}");
    }
    // Trade n happened n * 25 minutes before the current minute began, oldest id first.
    let minute_us: i64 = 60_000_000;
    let now_us = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_micros(),
    )
    .expect("time");
    let base_us = now_us - now_us.rem_euclid(minute_us);
    let pool = app.db.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("conn");
        let ids: Vec<i64> = diesel::sql_query("SELECT id FROM trades ORDER BY id")
            .load::<TradeId>(&mut conn)
            .expect("ids")
            .into_iter()
            .map(|t| t.id)
            .collect();
        let count = i64::try_from(ids.len()).expect("small");
        for (n, id) in ids.into_iter().enumerate() {
            let n = i64::try_from(n).expect("small");
            let at_us = base_us - (count - n) * 25 * minute_us + 7;
            diesel::sql_query(format!(
                "UPDATE trades SET created_at_us = {at_us} WHERE id = {id}"
            ))
            .execute(&mut conn)
            .expect("update");
        }
    })
    .await
    .expect("task");
    let (_, trades) = app.get("/api/v1/markets/BREAD-GROC/trades", None).await;
    let mut trades: Vec<(String, f64, i64)> = trades["items"]
        .as_array()
        .expect("trades")
        .iter()
        .map(|t| {
            let at = chrono::DateTime::parse_from_rfc3339(t["created_at"].as_str().expect("at"))
                .expect("rfc3339")
                .timestamp_micros();
            (
                t["price"].as_str().expect("price").to_owned(),
                t["quantity"].as_str().expect("qty").parse().expect("qty"),
                at,
            )
        })
        .collect();
    trades.reverse();
    assert_eq!(trades.len(), 6);
    for (interval, length_us) in [
        ("1m", minute_us),
        ("5m", 5 * minute_us),
        ("1h", 60 * minute_us),
        ("1d", 1440 * minute_us),
    ] {
        // The model: (start, open, high, low, close, volume, trades) per non-empty interval.
        let mut model: Vec<(i64, String, String, String, String, f64, u64)> = Vec::new();
        for (price, quantity, at_us) in &trades {
            let start = at_us - at_us.rem_euclid(length_us);
            match model.last_mut() {
                Some(c) if c.0 == start => {
                    if price > &c.2 {
                        c.2 = price.clone();
                    }
                    if price < &c.3 {
                        c.3 = price.clone();
                    }
                    c.4 = price.clone();
                    c.5 += quantity;
                    c.6 += 1;
                }
                _ => model.push((
                    start,
                    price.clone(),
                    price.clone(),
                    price.clone(),
                    price.clone(),
                    *quantity,
                    1,
                )),
            }
        }
        let (status, candles) = app
            .get(
                &format!("/api/v1/markets/BREAD-GROC/candles?interval={interval}&limit=500"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{candles}");
        let got: Vec<(i64, String, String, String, String, f64, u64)> = candles["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|c| {
                let text = |k: &str| c[k].as_str().expect("field").to_owned();
                (
                    chrono::DateTime::parse_from_rfc3339(&text("start"))
                        .expect("start")
                        .timestamp_micros(),
                    text("open"),
                    text("high"),
                    text("low"),
                    text("close"),
                    text("volume").parse().expect("volume"),
                    c["trades"].as_u64().expect("count"),
                )
            })
            .collect();
        assert_eq!(got, model, "interval {interval}");
    }
}

#[derive(QueryableByName)]
struct TradeId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// The next event about order `id` on `socket`.
async fn event_about(socket: &mut crate::api_requests::Socket, id: &Value) -> Value {
    loop {
        let event = crate::api_requests::next_event(socket, Duration::from_secs(10))
            .await
            .expect("an event in time");
        if event["order_id"] == *id {
            return event;
        }
    }
}

async fn orders_end_with_their_reason_and_owners_hear_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let Market { rosa, alice, bob } = market(&app).await;
    let (status, body) = app
        .pay(
            &rosa,
            json!({"from": "grocer", "to": "alice", "currency": "GROC", "amount": "50.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut heard = crate::api_requests::me_stream(&app, &alice).await;
    let hello = crate::api_requests::next_event(&mut heard, Duration::from_secs(10)).await;
    assert_eq!(hello.expect("hello")["type"], "hello");

    // Alice bids, then offers below her own bid: self-trade prevention cancels the bid, and
    // both the order and her stream say so.
    let bid = order(
        &app,
        &alice,
        json!({"side": "buy", "type": "limit", "price": "1.00", "quantity": "10.00"}),
    )
    .await;
    let ask = order(
        &app,
        &alice,
        json!({"side": "sell", "type": "limit", "price": "0.90", "quantity": "5.00"}),
    )
    .await;
    assert_eq!(ask["status"], "open", "{ask}");
    let event = event_about(&mut heard, &bid["id"]).await;
    assert_eq!(
        (
            event["type"].as_str(),
            event["reason"].as_str(),
            event["market"].as_str()
        ),
        (
            Some("order_cancelled"),
            Some("self_trade"),
            Some("BREAD-GROC")
        ),
        "{event}"
    );
    let (_, seen) = app
        .get(
            &format!("/api/v1/orders/{}", bid["id"].as_str().expect("id")),
            Some(&alice),
        )
        .await;
    assert_eq!(
        (seen["status"].as_str(), seen["reason"].as_str()),
        (Some("cancelled"), Some("self_trade")),
        "{seen}"
    );

    // Bob takes part of her offer: she hears her order filled, with what is left.
    let taken = order(&app, &bob, json!({"side": "buy", "type": "limit", "price": "0.95", "quantity": "2.00", "time_in_force": "ioc"})).await;
    assert_eq!(taken["status"], "filled", "{taken}");
    assert!(
        taken.get("reason").is_none(),
        "a filled order has no end reason: {taken}"
    );
    let event = event_about(&mut heard, &ask["id"]).await;
    assert_eq!(
        (
            event["type"].as_str(),
            event["status"].as_str(),
            event["filled"].as_str(),
            event["remaining"].as_str()
        ),
        (
            Some("order_filled"),
            Some("partially_filled"),
            Some("2.00"),
            Some("3.00")
        ),
        "{event}"
    );

    // An IOC that finds nothing at its price expires, and says why.
    let missed = order(&app, &bob, json!({"side": "buy", "type": "limit", "price": "0.80", "quantity": "1.00", "time_in_force": "ioc"})).await;
    assert_eq!(
        (missed["status"].as_str(), missed["reason"].as_str()),
        (Some("expired"), Some("unfilled")),
        "{missed}"
    );

    // Alice cancels the rest herself.
    let ask_path = format!("/api/v1/orders/{}", ask["id"].as_str().expect("id"));
    let (status, cancelled) = app.delete(&ask_path, Some(&alice)).await;
    assert_eq!(
        (status, cancelled["reason"].as_str()),
        (StatusCode::OK, Some("requested")),
        "{cancelled}"
    );
    let event = event_about(&mut heard, &ask["id"]).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("order_cancelled"), Some("requested")),
        "{event}"
    );

    // The history keeps every ended order with its reason.
    let (_, history) = app
        .get("/api/v1/orders?status=cancelled", Some(&alice))
        .await;
    let reasons: Vec<&str> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["requested", "self_trade"], "{history}");
    assert_no_funds_locked(&app).await;
    app.assert_audit_clean().await;
}
