//! Payment requests at the till: tracked, paid at most once (also under 20 concurrent payers),
//! public status, expiry; and the per-user event stream that tells the till "paid".

use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::app::{Limits, TestApp, assert_problem};

crate::on_both_backends!(
    a_till_request_is_paid_once_and_its_status_is_public,
    refused_request_payments_change_nothing,
    a_request_is_paid_once_under_twenty_concurrent_payers,
    the_till_hears_its_request_paid_on_its_own_stream,
    a_stream_closes_when_its_holder_may_no_longer_hear_it,
);

/// A bakery (owner rosa, worker wendy) with BREAD, and carl holding 50.00 BREAD.
async fn bakery(app: &TestApp) -> (String, String, String) {
    let rosa = app.user("rosa").await;
    let wendy = app.user("wendy").await;
    let carl = app.user("carl").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.add_member((&rosa, "bakery"), ("wendy", &wendy), "worker")
        .await;
    let (status, body) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "50.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (rosa, wendy, carl)
}

async fn ask(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, request) = app
        .post("/api/v1/payment-requests", Some(token), body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    request
}

async fn pay_request(app: &TestApp, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/payment-requests/{id}/pay"),
        Some(token),
        body,
    )
    .await
}

fn balance_of(balances: &[(String, String, String)], code: &str) -> String {
    balances
        .iter()
        .find(|(c, _, _)| c == code)
        .map(|(_, balance, _)| balance.clone())
        .unwrap_or_else(|| "none".into())
}

async fn a_till_request_is_paid_once_and_its_status_is_public(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, wendy, carl) = bakery(&app).await;
    let dana = app.user("dana").await;

    // The worker at the till asks; a stranger may not ask on the bakery's behalf.
    let request = ask(
        &app,
        &wendy,
        json!({"to": "bakery", "currency": "BREAD", "amount": "4.50", "memo": "2 loaves"}),
    )
    .await;
    assert_eq!(request["status"], "open", "{request}");
    assert_eq!(request["amount"], "4.50");
    let id = request["id"].as_str().expect("id").to_owned();
    assert!(
        request["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/pay/{id}"))),
        "{request}"
    );
    let stranger = app
        .post(
            "/api/v1/payment-requests",
            Some(&dana),
            json!({"to": "bakery", "currency": "BREAD", "amount": "1"}),
        )
        .await;
    assert_problem(&stranger, StatusCode::FORBIDDEN, "not_owner");

    // Anyone with the id sees it; nobody sees who paid but the bakery's people.
    let (status, public) = app
        .get(&format!("/api/v1/payment-requests/{id}"), None)
        .await;
    assert_eq!(
        (status, public["status"].as_str()),
        (StatusCode::OK, Some("open")),
        "{public}"
    );

    let (status, payment) = pay_request(&app, &carl, &id, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["spent"], json!({"BREAD": "4.50"}), "{payment}");
    assert_eq!(
        (payment["from"].as_str(), payment["to"].as_str()),
        (Some("carl"), Some("bakery"))
    );
    assert_eq!(payment["trades"], json!([]));

    let (_, seen) = app
        .get(&format!("/api/v1/payment-requests/{id}"), Some(&wendy))
        .await;
    assert_eq!(
        (seen["status"].as_str(), seen["paid_by"].as_str()),
        (Some("paid"), Some("carl")),
        "{seen}"
    );
    assert_eq!(seen["payment_id"], payment["id"]);
    let (_, public) = app
        .get(&format!("/api/v1/payment-requests/{id}"), Some(&dana))
        .await;
    assert_eq!(public["status"], "paid");
    assert!(
        public.get("paid_by").is_none(),
        "only the requester sees the payer: {public}"
    );

    // Paid once: a second payer (or the first again) is refused and nothing moves.
    let before = app.transfer_count().await;
    assert_problem(
        &pay_request(&app, &dana, &id, json!({})).await,
        StatusCode::CONFLICT,
        "already_paid",
    );
    assert_problem(
        &pay_request(&app, &carl, &id, json!({})).await,
        StatusCode::CONFLICT,
        "already_paid",
    );
    assert_eq!(app.transfer_count().await, before);
    assert_eq!(
        balance_of(&app.balances(&carl, None).await, "BREAD"),
        "45.50"
    );

    // The till's history shows the payment with the request's memo.
    let (_, history) = app
        .get("/api/v1/transfers?holder=bakery", Some(&rosa))
        .await;
    let paid_in = &history["items"][0];
    assert_eq!(
        (
            paid_in["from"].as_str(),
            paid_in["amount"].as_str(),
            paid_in["memo"].as_str()
        ),
        (Some("carl"), Some("4.50"), Some("2 loaves")),
        "{history}"
    );
    app.assert_audit_clean().await;
}

/// Makes a request's time run out, as if its expiry had passed.
async fn expire(app: &TestApp, id: &str) {
    use diesel::RunQueryDsl as _;
    let pool = app.db.pool.clone();
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("connection");
        diesel::sql_query(format!(
            "UPDATE payment_requests SET expires_at_us = 0 WHERE id = '{id}'"
        ))
        .execute(&mut *conn)
        .expect("update");
    })
    .await
    .expect("task");
}

async fn refused_request_payments_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, _wendy, carl) = bakery(&app).await;
    let dana = app.user("dana").await;
    let asked = |amount: &str| json!({"to": "bakery", "currency": "BREAD", "amount": amount});

    for (body, code) in [
        (
            json!({"to": "bakery", "currency": "BREAD", "amount": "1.234"}),
            "bad_amount",
        ),
        (
            json!({"to": "bakery", "currency": "BREAD", "amount": "0"}),
            "bad_amount",
        ),
        (
            json!({"to": "bakery", "currency": "BREAD", "amount": "1", "expires_in_s": 5}),
            "bad_expiry",
        ),
        (
            json!({"to": "registry", "currency": "BREAD", "amount": "1"}),
            "not_owner",
        ),
    ] {
        let answer = app
            .post("/api/v1/payment-requests", Some(&rosa), body.clone())
            .await;
        assert_eq!(answer.1["code"], code, "{body}: {}", answer.1);
    }
    let unknown = app
        .post(
            "/api/v1/payment-requests",
            Some(&rosa),
            json!({"to": "bakery", "currency": "NOPE", "amount": "1"}),
        )
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "unknown_account");
    assert_problem(
        &app.get("/api/v1/payment-requests/pr_nothing", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let big = ask(&app, &rosa, asked("80.00")).await;
    let big_id = big["id"].as_str().expect("id");
    let before = app.transfer_count().await;
    // Too little money, another currency, a lower max_spend, no money at all: refused, and the
    // request stays open for the next try.
    assert_problem(
        &pay_request(&app, &carl, big_id, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );
    assert_problem(
        &pay_request(&app, &carl, big_id, json!({"pay_with": ["ALE"]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_route",
    );
    assert_problem(
        &pay_request(
            &app,
            &carl,
            big_id,
            json!({"max_spend": {"BREAD": "79.99"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "slippage_exceeded",
    );
    assert_problem(
        &pay_request(&app, &dana, big_id, json!({"from": "bakery"})).await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    let typo = pay_request(&app, &carl, big_id, json!({"pay_wiht": ["BREAD"]})).await;
    assert_problem(&typo, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(app.transfer_count().await, before);
    let (_, still) = app
        .get(&format!("/api/v1/payment-requests/{big_id}"), None)
        .await;
    assert_eq!(still["status"], "open", "{still}");

    // An expired request is never paid.
    let small = ask(&app, &rosa, asked("1.00")).await;
    let small_id = small["id"].as_str().expect("id");
    expire(&app, small_id).await;
    let (_, seen) = app
        .get(&format!("/api/v1/payment-requests/{small_id}"), None)
        .await;
    assert_eq!(seen["status"], "expired");
    assert_problem(
        &pay_request(&app, &carl, small_id, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "request_expired",
    );
    assert_eq!(app.transfer_count().await, before);
    assert_eq!(
        balance_of(&app.balances(&carl, None).await, "BREAD"),
        "50.00"
    );
}

async fn a_request_is_paid_once_under_twenty_concurrent_payers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, _wendy, _carl) = bakery(&app).await;
    let mut payers = Vec::new();
    for n in 0..20 {
        let handle = format!("payer{n:02}");
        let token = app.user(&handle).await;
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": "bakery", "to": handle, "currency": "BREAD", "amount": "10.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        payers.push(token);
    }
    let request = ask(
        &app,
        &rosa,
        json!({"to": "bakery", "currency": "BREAD", "amount": "3.00"}),
    )
    .await;
    let id = request["id"].as_str().expect("id");
    let before = app.transfer_count().await;
    let answers = futures_util::future::join_all(
        payers
            .iter()
            .map(|token| pay_request(&app, token, id, json!({}))),
    )
    .await;
    let paid = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    for answer in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_problem(answer, StatusCode::CONFLICT, "already_paid");
    }
    assert_eq!(paid, 1, "{answers:?}");
    assert_eq!(app.transfer_count().await, before + 1);
    let mut spent = 0;
    for token in &payers {
        if balance_of(&app.balances(token, None).await, "BREAD") == "7.00" {
            spent += 1;
        }
    }
    assert_eq!(spent, 1, "exactly one payer paid");
    app.assert_audit_clean().await;
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn me_stream(app: &TestApp, token: &str) -> Socket {
    let url = format!("{}/api/v1/me/stream", app.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket")
        .0
}

/// The next text message within `wait`, as JSON.
pub async fn next_event(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(wait, socket.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return Some(serde_json::from_str(text.as_str()).expect("json"));
        }
    }
}

async fn the_till_hears_its_request_paid_on_its_own_stream(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_rosa, wendy, carl) = bakery(&app).await;
    let dana = app.user("dana").await;
    let mut till = me_stream(&app, &wendy).await;
    let hello = next_event(&mut till, Duration::from_secs(10))
        .await
        .expect("hello");
    assert_eq!(hello["type"], "hello", "{hello}");
    let mut holders: Vec<&str> = hello["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    holders.sort_unstable();
    assert_eq!(holders, ["bakery", "wendy"], "{hello}");
    let mut stranger = me_stream(&app, &dana).await;
    assert_eq!(
        next_event(&mut stranger, Duration::from_secs(10))
            .await
            .expect("hello")["type"],
        "hello"
    );

    let request = ask(
        &app,
        &wendy,
        json!({"to": "bakery", "currency": "BREAD", "amount": "2.20"}),
    )
    .await;
    let id = request["id"].as_str().expect("id");
    let (status, payment) = pay_request(&app, &carl, id, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");

    let mut heard = Vec::new();
    while heard.len() < 2 {
        heard.push(
            next_event(&mut till, Duration::from_secs(10))
                .await
                .expect("an event in time"),
        );
    }
    let paid = heard
        .iter()
        .find(|e| e["type"] == "payment_request_paid")
        .expect("request paid");
    assert_eq!(
        (
            paid["holder"].as_str(),
            paid["request_id"].as_str(),
            paid["paid_by"].as_str(),
            paid["amount"].as_str()
        ),
        (Some("bakery"), Some(id), Some("carl"), Some("2.20")),
        "{paid}"
    );
    assert_eq!(paid["payment_id"], payment["id"]);
    let received = heard
        .iter()
        .find(|e| e["type"] == "payment_received")
        .expect("payment received");
    assert_eq!(
        (received["from"].as_str(), received["currency"].as_str()),
        (Some("carl"), Some("BREAD")),
        "{received}"
    );

    // A plain payment to the bakery is heard too; someone outside the bakery hears nothing.
    app.pay(
        &carl,
        json!({"to": "bakery", "currency": "BREAD", "amount": "1.00"}),
    )
    .await;
    let next = next_event(&mut till, Duration::from_secs(10))
        .await
        .expect("payment");
    assert_eq!(
        (next["type"].as_str(), next["amount"].as_str()),
        (Some("payment_received"), Some("1.00")),
        "{next}"
    );
    assert!(
        next_event(&mut stranger, Duration::from_millis(500))
            .await
            .is_none(),
        "a stranger hears nothing of the bakery"
    );

    // Opened from another site's page: refused.
    let url = format!("{}/api/v1/me/stream", app.base.replacen("http", "ws", 1));
    let mut forged = url.into_client_request().expect("request");
    forged.headers_mut().insert(
        "authorization",
        format!("Bearer {wendy}").parse().expect("header"),
    );
    forged
        .headers_mut()
        .insert("origin", "https://evil.example".parse().expect("header"));
    match tokio_tungstenite::connect_async(forged).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("a stream from another site must be refused: {other:?}"),
    }
}

/// Whether the server closed `socket` within `wait` (other messages are skipped).
async fn closed_within(socket: &mut Socket, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_))) => return true,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn a_stream_closes_when_its_holder_may_no_longer_hear_it(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Limits {
            streams: scrip_orderbook::StreamLimits {
                recheck_interval: Duration::from_millis(300),
                ..scrip_orderbook::StreamLimits::default()
            },
            ..Limits::default()
        },
    )
    .await;
    let (rosa, wendy, _carl) = bakery(&app).await;
    let mut till = me_stream(&app, &wendy).await;
    assert_eq!(
        next_event(&mut till, Duration::from_secs(10))
            .await
            .expect("hello")["type"],
        "hello"
    );
    assert!(
        !closed_within(&mut till, Duration::from_secs(1)).await,
        "nothing changed: it stays open"
    );

    // Removed from the bakery, the worker stops hearing its payments: the stream closes, and
    // a new one follows only her own account.
    let (status, body) = app
        .delete("/api/v1/businesses/bakery/members/wendy", Some(&rosa))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        closed_within(&mut till, Duration::from_secs(10)).await,
        "the stream closes"
    );
    let mut again = me_stream(&app, &wendy).await;
    let hello = next_event(&mut again, Duration::from_secs(10))
        .await
        .expect("hello");
    assert_eq!(hello["holders"], json!(["wendy"]), "{hello}");
}
