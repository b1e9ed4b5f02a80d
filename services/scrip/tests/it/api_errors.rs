//! Hostile and broken input: always a 4xx problem+json, never a 5xx, nothing changed.

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::json;

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(malformed_input_is_a_clear_4xx, system_endpoints_answer);

async fn malformed_input_is_a_clear_4xx(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.user("carl").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let before = app.transfer_count().await;

    let not_json = app
        .post_raw(
            "/api/v1/transfers",
            Some(&rosa),
            "application/json",
            b"{\"to\": ".to_vec(),
        )
        .await;
    assert_problem(&not_json, StatusCode::BAD_REQUEST, "malformed_json");
    let garbage = app
        .post_raw(
            "/api/v1/auth/register",
            None,
            "application/json",
            vec![0xff, 0xfe, 0x00],
        )
        .await;
    assert_problem(&garbage, StatusCode::BAD_REQUEST, "malformed_json");
    let text = app
        .post_raw("/api/v1/auth/login", None, "text/plain", b"hello".to_vec())
        .await;
    assert_problem(&text, StatusCode::BAD_REQUEST, "unsupported_media_type");
    let huge = format!(
        "{{\"to\": \"carl\", \"currency\": \"BREAD\", \"amount\": \"1\", \"memo\": \"{}\"}}",
        "x".repeat(1 << 20)
    );
    let too_big = app
        .post_raw(
            "/api/v1/transfers",
            Some(&rosa),
            "application/json",
            huge.into_bytes(),
        )
        .await;
    assert_problem(&too_big, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // Said in our words, under the field it is about; never the parser's text.
    let wrong_type = app.post("/api/v1/currencies", Some(&rosa), json!({"issuer": "bakery", "code": "X1", "name": "x", "scale": "2", "credit_limit": "1"})).await;
    assert_field(
        &wrong_type,
        "scale",
        "scale must be a whole number, not \"2\"",
    );
    let bad_fee = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "BREAD", "quote": "BREAD", "tick_size": "0.01", "lot_size": "1", "fee_bps": -1}),
        )
        .await;
    assert_field(
        &bad_fee,
        "fee_bps",
        "fee_bps must be a whole number, 0 or more, not -1",
    );
    let unknown = app
        .pay(
            &rosa,
            json!({"to": "carl", "currency": "BREAD", "amount": "1", "act_as": "bakery"}),
        )
        .await;
    assert_field(
        &unknown,
        "act_as",
        "act_as is not a field of this request; it takes ",
    );
    let number_limit = app
        .post(
            "/api/v1/currencies",
            Some(&rosa),
            json!({"issuer": "bakery", "code": "X1", "name": "x", "scale": 2, "credit_limit": 100}),
        )
        .await;
    assert_problem(
        &number_limit,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    let missing = app
        .post("/api/v1/transfers", Some(&rosa), json!({"to": "carl"}))
        .await;
    assert_problem(
        &missing,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    let array = app
        .post("/api/v1/transfers", Some(&rosa), json!([1, 2, 3]))
        .await;
    assert_problem(&array, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let unicode = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "cärl", "currency": "BREAD", "amount": "1"}),
        )
        .await;
    assert_problem(&unicode, StatusCode::NOT_FOUND, "unknown_account");
    let emoji_business = app
        .post(
            "/api/v1/businesses",
            Some(&rosa),
            json!({"handle": "🍞bakery", "name": "x"}),
        )
        .await;
    assert_problem(
        &emoji_business,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_handle",
    );
    let empty_name = app
        .post(
            "/api/v1/businesses",
            Some(&rosa),
            json!({"handle": "newshop", "name": "  "}),
        )
        .await;
    assert_problem(&empty_name, StatusCode::UNPROCESSABLE_ENTITY, "bad_name");
    let huge_scale = app.post("/api/v1/currencies", Some(&rosa), json!({"issuer": "bakery", "code": "X1", "name": "x", "scale": 99999999999_i64, "credit_limit": "1"})).await;
    assert_problem(&huge_scale, StatusCode::UNPROCESSABLE_ENTITY, "bad_scale");
    let unknown_route = app.get("/api/v1/nothing-here", None).await;
    assert_problem(&unknown_route, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.transfer_count().await, before);
}

async fn system_endpoints_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.user("carl").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.pay(
        &rosa,
        json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "1"}),
    )
    .await;
    assert_eq!(
        app.get("/healthz", None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(app.get("/readyz", None).await.0, StatusCode::OK);
    // Methods a client makes up are counted as `other`: each would be a series of its own.
    for made_up in ["BREW", "BREW2", "WHEN"] {
        let method = reqwest::Method::from_bytes(made_up.as_bytes()).expect("a method token");
        let answer = app
            .client
            .request(method, format!("{}/api/v1/transfers", app.base))
            .send()
            .await
            .expect("sent");
        assert!(
            answer.status().is_client_error(),
            "{made_up}: {}",
            answer.status()
        );
    }
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("scrip_http_requests_total{method=\"POST\",route=\"/api/v1/transfers\",status=\"201\"} 1"), "{metrics}");
    assert!(metrics.contains("scrip_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(
        !metrics.contains("BREW") && !metrics.contains("WHEN"),
        "{metrics}"
    );
    assert!(metrics.contains("scrip_ledger_transfers_total 1"));
    assert!(metrics.contains("scrip_ledger_audit_ok 1"));
    // The dashboard's JSON view of the same figures.
    let (status, health) = app.get("/api/v1/system/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["audit"], "clean");
    assert_eq!(health["counters"]["transfers"], 1);
    assert!(
        health["counters"]["requests"]
            .as_u64()
            .is_some_and(|n| n > 1),
        "{health}"
    );
    let docs = app
        .client
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text().await.expect("html").contains("swagger"),
        "the API reference page is served offline"
    );
}

/// A 422 `invalid_request` about `field`, whose detail starts with `detail` and carries no
/// parser position.
#[track_caller]
fn assert_field(answer: &(StatusCode, serde_json::Value), field: &str, detail: &str) {
    assert_problem(answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(answer.1["field"], field, "{}", answer.1);
    let said = answer.1["detail"].as_str().unwrap_or_default();
    assert!(
        said.starts_with(detail) && !said.contains(" line "),
        "{said}"
    );
}
