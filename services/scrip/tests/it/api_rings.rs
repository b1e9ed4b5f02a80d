//! Ring trades at clearing time: three people each offer one store currency for the next at
//! par; a clearing run settles the ring as far as the smallest offer goes.

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::json;

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    a_ring_of_swap_intents_settles_at_par_in_a_clearing_run,
    a_refused_ring_trade_sits_out_and_the_run_goes_on,
);

async fn a_ring_of_swap_intents_settles_at_par_in_a_clearing_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut people = Vec::new();
    for (owner, shop, code, person, amount) in [
        ("anna", "shopa", "AAA", "carl", "50"),
        ("bert", "shopb", "BBB", "dana", "30"),
        ("cleo", "shopc", "CCC", "eve", "40"),
    ] {
        let token = app.user(owner).await;
        app.shop(&token, shop, code).await;
        let holder = app.user(person).await;
        let (status, body) = app
            .pay(
                &token,
                json!({"from": shop, "to": person, "currency": code, "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        people.push((holder, code, amount));
    }
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    let intents = "/api/v1/clearing/intents";
    // carl gives AAA for BBB, dana BBB for CCC, eve CCC for AAA.
    let mut ids = Vec::new();
    for (i, (token, give, amount)) in people.iter().enumerate() {
        let want = people[(i + 1) % 3].1;
        let (status, intent) = app
            .post(
                intents,
                Some(token),
                json!({"give": give, "want": want, "max_amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{intent}");
        assert_eq!(intent["status"], "open");
        ids.push(intent["id"].as_str().expect("id").to_owned());
    }
    for (body, field) in [
        (
            json!({"give": "AAA", "want": "AAA", "max_amount": "1"}),
            "want",
        ),
        (
            json!({"give": "NOPE", "want": "AAA", "max_amount": "1"}),
            "give",
        ),
        (
            json!({"give": "AAA", "want": "BBB", "max_amount": "-1"}),
            "max_amount",
        ),
    ] {
        let answer = app.post(intents, Some(&people[0].0), body.clone()).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(answer.1["field"], field, "{body}");
    }

    // A preview shows the ring and moves nothing; the applied run settles it at par.
    let transfers = app.transfer_count().await;
    let (status, preview) = app
        .post(
            "/api/v1/clearing/runs",
            Some(&olga),
            json!({"dry_run": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{preview}");
    assert_eq!(
        preview["ring_trades"].as_array().map(Vec::len),
        Some(3),
        "{preview}"
    );
    assert_eq!(app.transfer_count().await, transfers);
    let (status, run) = app
        .post(
            "/api/v1/clearing/runs",
            Some(&olga),
            json!({"apply": preview["preview_id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["cleared"], "0", "no business debt here: {run}");
    for trade in run["ring_trades"].as_array().expect("ring") {
        assert_eq!(
            trade["gave"], "30.00",
            "the smallest offer limits the ring: {run}"
        );
        assert_eq!(trade["received"], "30.00");
    }
    let held = |token: String| {
        let app = &app;
        async move {
            let mut balances: Vec<(String, String)> = app
                .balances(&token, None)
                .await
                .into_iter()
                .map(|(c, b, _)| (c, b))
                .collect();
            balances.sort();
            balances
        }
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(c, b)| ((*c).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        held(people[0].0.clone()).await,
        pairs(&[("AAA", "20.00"), ("BBB", "30.00")])
    );
    assert_eq!(
        held(people[1].0.clone()).await,
        pairs(&[("BBB", "0.00"), ("CCC", "30.00")])
    );
    assert_eq!(
        held(people[2].0.clone()).await,
        pairs(&[("AAA", "30.00"), ("CCC", "10.00")])
    );
    let (_, mine) = app.get(intents, Some(&people[1].0)).await;
    assert_eq!(mine["items"][0]["status"], "filled", "{mine}");
    assert_eq!(mine["items"][0]["received"], "30.00");
    let (_, mine) = app.get(intents, Some(&people[0].0)).await;
    assert_eq!(mine["items"][0]["remaining"], "20.00", "{mine}");

    // Cancelling: once; never someone else's.
    let path = format!("{intents}/{}", ids[0]);
    assert_problem(
        &app.delete(&path, Some(&people[2].0)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, cancelled) = app.delete(&path, Some(&people[0].0)).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_problem(
        &app.delete(&path, Some(&people[0].0)).await,
        StatusCode::CONFLICT,
        "intent_closed",
    );
    let (status, again) = app
        .post("/api/v1/clearing/runs", Some(&olga), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["ring_trades"], json!([]), "no ring left: {again}");
    app.assert_audit_clean().await;
}

/// A ring trade the ledger refuses (here: the receiver would pass the currency's maximum
/// balance) leaves its intents out of that run; the run still clears the businesses' debts
/// instead of failing for everyone.
async fn a_refused_ring_trade_sits_out_and_the_run_goes_on(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut owners = Vec::new();
    let mut people = Vec::new();
    for (owner, shop, code, person) in [
        ("anna", "shopa", "AAA", "carl"),
        ("bert", "shopb", "BBB", "dana"),
        ("cleo", "shopc", "CCC", "eve"),
    ] {
        let token = app.user(owner).await;
        app.shop(&token, shop, code).await;
        let holder = app.user(person).await;
        let pay = json!({"from": shop, "to": person, "currency": code, "amount": "30"});
        let (status, body) = app.pay(&token, pay).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        owners.push(token);
        people.push(holder);
    }
    // A ring of debts among the shops, to show the run still clears it.
    for (i, (from, to, code)) in [
        ("shopa", "shopb", "AAA"),
        ("shopb", "shopc", "BBB"),
        ("shopc", "shopa", "CCC"),
    ]
    .into_iter()
    .enumerate()
    {
        let pay = json!({"from": from, "to": to, "currency": code, "amount": "10"});
        let (status, body) = app.pay(&owners[i], pay).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (i, (give, want)) in [("AAA", "BBB"), ("BBB", "CCC"), ("CCC", "AAA")]
        .into_iter()
        .enumerate()
    {
        let offer = json!({"give": give, "want": want, "max_amount": "30"});
        let (status, body) = app
            .post("/api/v1/clearing/intents", Some(&people[i]), offer)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // carl holds 10 BBB and may hold at most 35: receiving 30 more in the ring would pass it.
    let pay = json!({"from": "shopb", "to": "carl", "currency": "BBB", "amount": "10"});
    let (status, body) = app.pay(&owners[1], pay).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .patch(
            "/api/v1/currencies/BBB",
            Some(&owners[1]),
            json!({"max_balance": "35"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    let (status, run) = app
        .post("/api/v1/clearing/runs", Some(&olga), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["cleared"], "30", "the shops' ring is cleared: {run}");
    assert_eq!(
        run["ring_trades"],
        json!([]),
        "the refused ring sat out: {run}"
    );
    let (_, mine) = app.get("/api/v1/clearing/intents", Some(&people[0])).await;
    assert_eq!(
        mine["items"][0]["status"], "open",
        "still standing for a later run"
    );
    assert_eq!(mine["items"][0]["remaining"], "30.00");
    app.assert_audit_clean().await;
}
