//! Customers hold, pay and redeem store currencies; idempotency; who may see which transfer.

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{Limits, TestApp, assert_problem};

crate::on_both_backends!(
    a_customer_holds_pays_and_redeems,
    payment_refusals_are_exact_and_change_nothing,
    idempotent_payments_apply_once,
    transfers_are_private_and_paged,
    payments_are_rate_limited,
    concurrent_payments_through_http_add_up,
    a_statement_runs_from_the_opening_balance_to_the_current_one,
);

fn s(v: &str) -> String {
    v.to_owned()
}

async fn a_customer_holds_pays_and_redeems(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    let carl = app.user("carl").await;
    let dana = app.user("dana").await;
    app.shop(&rosa, "bakery", "BREAD").await;

    let (status, issued) = app
        .pay(&rosa, json!({"from": "bakery", "to": "carl@local", "currency": "BREAD", "amount": "25.50", "memo": "store credit"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(
        (
            issued["from"].as_str(),
            issued["to"].as_str(),
            issued["amount"].as_str(),
            issued["memo"].as_str()
        ),
        (
            Some("bakery"),
            Some("carl"),
            Some("25.50"),
            Some("store credit")
        )
    );
    assert!(
        issued["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let (status, _) = app
        .pay(
            &carl,
            json!({"to": "dana", "currency": "BREAD", "amount": "5"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .pay(
            &carl,
            json!({"to": "bakery", "currency": "BREAD", "amount": "0.50", "memo": "croissant"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "redeeming is paying the issuer"
    );

    assert_eq!(
        app.balances(&carl, None).await,
        vec![(s("BREAD"), s("20.00"), s("0.00"))]
    );
    assert_eq!(
        app.balances(&dana, None).await,
        vec![(s("BREAD"), s("5.00"), s("0.00"))]
    );
    assert_eq!(
        app.balances(&rosa, Some("bakery")).await,
        vec![(s("BREAD"), s("-25.00"), s("0.00"))]
    );
    let (_, bread) = app.get("/api/v1/currencies/BREAD", None).await;
    assert_eq!(
        (bread["outstanding"].as_str(), bread["holders"].as_i64()),
        (Some("25.00"), Some(2))
    );

    let (status, statement) = app.get("/api/v1/transfers", Some(&carl)).await;
    assert_eq!(status, StatusCode::OK);
    let amounts: Vec<&str> = statement["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["amount"].as_str())
        .collect();
    assert_eq!(amounts, ["0.50", "5.00", "25.50"], "newest first");
    app.assert_audit_clean().await;
}

async fn payment_refusals_are_exact_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    let carl = app.user("carl").await;
    app.user("dana").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.patch(
        "/api/v1/currencies/BREAD",
        Some(&rosa),
        json!({"max_balance": "50"}),
    )
    .await;
    app.pay(
        &rosa,
        json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "10"}),
    )
    .await;
    let before = app.transfer_count().await;

    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"to": "dana", "currency": "BREAD", "amount": "10.01"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
        ),
        (
            json!({"to": "dana", "currency": "BREAD", "amount": "1.005"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_amount",
        ),
        (
            json!({"to": "dana", "currency": "BREAD", "amount": "0"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_amount",
        ),
        (
            json!({"to": "dana", "currency": "BREAD", "amount": "-1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_amount",
        ),
        (
            json!({"to": "dana", "currency": "BREAD", "amount": "99999999999999999999"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_amount",
        ),
        (
            json!({"to": "dana", "currency": "BREAD", "amount": "1e3"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_amount",
        ),
        (
            json!({"to": "dana", "currency": "BREAD", "amount": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"to": "ghost", "currency": "BREAD", "amount": "1"}),
            StatusCode::NOT_FOUND,
            "unknown_account",
        ),
        (
            json!({"to": "dana@elsewhere", "currency": "BREAD", "amount": "1"}),
            StatusCode::NOT_FOUND,
            "unknown_account",
        ),
        (
            json!({"to": "dana", "currency": "NOPE", "amount": "1"}),
            StatusCode::NOT_FOUND,
            "unknown_account",
        ),
        (
            json!({"to": "dana", "currency": "bread", "amount": "1"}),
            StatusCode::NOT_FOUND,
            "unknown_account",
        ),
        (
            json!({"from": "dana", "to": "carl", "currency": "BREAD", "amount": "1"}),
            StatusCode::FORBIDDEN,
            "not_owner",
        ),
        (
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "1"}),
            StatusCode::FORBIDDEN,
            "not_owner",
        ),
        (
            json!({"to": "carl", "currency": "BREAD", "amount": "1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "same_account",
        ),
        (
            json!({"to": "dana", "currency": "BREAD", "amount": "1", "extra": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"to": "dana", "currency": "BREAD", "amount": "1", "memo": "x".repeat(201)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_memo",
        ),
        // The registry's accounts only collect fees.
        (
            json!({"to": "registry", "currency": "BREAD", "amount": "1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_payable",
        ),
    ];
    for (body, status, code) in cases {
        let answer = app.pay(&carl, body.clone()).await;
        assert_eq!(answer.0, status, "{body}: {}", answer.1);
        assert_eq!(answer.1["code"], code, "{body}: {}", answer.1);
    }
    // The issuer's own limits: credit limit and the holder's maximum balance.
    let over_limit = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "dana", "currency": "BREAD", "amount": "51"}),
        )
        .await;
    assert_problem(
        &over_limit,
        StatusCode::UNPROCESSABLE_ENTITY,
        "max_balance_exceeded",
    );
    app.patch(
        "/api/v1/currencies/BREAD",
        Some(&rosa),
        json!({"max_balance": null}),
    )
    .await;
    let over_credit = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "dana", "currency": "BREAD", "amount": "990.01"}),
        )
        .await;
    assert_problem(
        &over_credit,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );

    assert_eq!(app.transfer_count().await, before, "nothing changed");
    assert_eq!(
        app.balances(&carl, None).await,
        vec![(s("BREAD"), s("10.00"), s("0.00"))]
    );
    app.assert_audit_clean().await;
}

async fn idempotent_payments_apply_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.user("carl").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let body = json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "7.25"});

    let requests = (0..20).map(|_| {
        app.client
            .post(format!("{}/api/v1/transfers", app.base))
            .bearer_auth(&rosa)
            .header("Idempotency-Key", "order-42")
            .json(&body)
            .send()
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut bodies = Vec::new();
    for response in responses {
        let response = response.expect("sent");
        assert_eq!(response.status(), StatusCode::CREATED);
        bodies.push(response.json::<Value>().await.expect("json"));
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every replay gets the first answer"
    );
    assert_eq!(
        app.balances(&rosa, Some("bakery")).await,
        vec![(s("BREAD"), s("-7.25"), s("0.00"))]
    );

    let other_body = app
        .client
        .post(format!("{}/api/v1/transfers", app.base))
        .bearer_auth(&rosa)
        .header("Idempotency-Key", "order-42")
        .json(&json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "8"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(other_body.status(), StatusCode::CONFLICT);
    let problem: Value = other_body.json().await.expect("json");
    assert_eq!(problem["code"], "idempotency_conflict");

    let bad_key = app
        .client
        .post(format!("{}/api/v1/transfers", app.base))
        .bearer_auth(&rosa)
        .header("Idempotency-Key", "")
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(bad_key.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.transfer_count().await, 1);
    app.assert_audit_clean().await;
}

async fn transfers_are_private_and_paged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    let carl = app.user("carl").await;
    let eve = app.user("eve").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        let (_, t) = app.pay(&rosa, json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": format!("{i}")})).await;
        ids.push(t["id"].as_str().expect("id").to_owned());
    }
    let (status, one) = app
        .get(&format!("/api/v1/transfers/{}", ids[0]), Some(&carl))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["amount"], "1.00");
    let (status, _) = app
        .get(&format!("/api/v1/transfers/{}", ids[0]), Some(&rosa))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an owner of the paying business took part"
    );
    for path in [
        format!("/api/v1/transfers/{}", ids[0]),
        "/api/v1/transfers/999999".into(),
        "/api/v1/transfers/abc".into(),
    ] {
        let hidden = app.get(&path, Some(&eve)).await;
        assert_problem(&hidden, StatusCode::NOT_FOUND, "not_found");
    }
    let others = app.get("/api/v1/transfers?holder=carl", Some(&eve)).await;
    assert_problem(&others, StatusCode::FORBIDDEN, "not_owner");

    let (_, first) = app.get("/api/v1/transfers?limit=2", Some(&carl)).await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    let cursor = first["next_cursor"].as_str().expect("more pages");
    let (_, second) = app
        .get(
            &format!("/api/v1/transfers?limit=2&cursor={cursor}"),
            Some(&carl),
        )
        .await;
    let (_, third) = app
        .get(
            &format!(
                "/api/v1/transfers?limit=2&cursor={}",
                second["next_cursor"].as_str().expect("more")
            ),
            Some(&carl),
        )
        .await;
    let seen: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["items"].as_array().into_iter().flatten())
        .filter_map(|t| t["amount"].as_str())
        .collect();
    assert_eq!(seen, ["5.00", "4.00", "3.00", "2.00", "1.00"]);
    assert_eq!(third["next_cursor"], json!(null));
    let (_, by_currency) = app
        .get(
            "/api/v1/transfers?holder=bakery&currency=BREAD&limit=500",
            Some(&rosa),
        )
        .await;
    assert_eq!(by_currency["items"].as_array().map(Vec::len), Some(5));
    assert_problem(
        &app.get("/api/v1/transfers?limit=0", Some(&carl)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_limit",
    );
    assert_problem(
        &app.get("/api/v1/transfers?limit=501", Some(&carl)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_limit",
    );
    assert_problem(
        &app.get("/api/v1/transfers?cursor=zzz", Some(&carl)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_cursor",
    );
    assert_problem(
        &app.get("/api/v1/transfers?limit=-3", Some(&carl)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
}

async fn payments_are_rate_limited(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Limits {
            payments_per_minute: 2,
            ..Limits::default()
        },
    )
    .await;
    let rosa = app.user("rosa").await;
    app.user("carl").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let pay = json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "1"});
    assert_eq!(app.pay(&rosa, pay.clone()).await.0, StatusCode::CREATED);
    assert_eq!(app.pay(&rosa, pay.clone()).await.0, StatusCode::CREATED);
    assert_problem(
        &app.pay(&rosa, pay).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    assert_eq!(app.transfer_count().await, 2);
}

/// Many payments at once through HTTP (the group-commit path): from one hot issuer account and
/// between customers, some refused for lack of funds. Every acknowledged payment is in the
/// ledger, nothing else is, and the audit is clean.
async fn concurrent_payments_through_http_add_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let mut customers = Vec::new();
    for i in 0..4 {
        customers.push(app.user(&format!("cust{i}")).await);
    }
    let issue = (0..40).map(|i| {
        let body = json!({"from": "bakery", "to": format!("cust{}", i % 4), "currency": "BREAD", "amount": "2.50"});
        app.pay(&rosa, body)
    });
    let spend = (0..40).map(|i| {
        let body =
            json!({"to": format!("cust{}", (i + 1) % 4), "currency": "BREAD", "amount": "1.25"});
        app.pay(&customers[i % 4], body)
    });
    let (issued, spent) = futures_util::future::join(
        futures_util::future::join_all(issue),
        futures_util::future::join_all(spend),
    )
    .await;
    assert!(
        issued
            .iter()
            .all(|(status, _)| *status == StatusCode::CREATED),
        "the issuer had room"
    );
    let mut accepted = 0;
    for (status, body) in &spent {
        match *status {
            StatusCode::CREATED => accepted += 1,
            StatusCode::UNPROCESSABLE_ENTITY => assert_eq!(body["code"], "insufficient_funds"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(app.transfer_count().await, 40 + accepted);
    let mut total_atoms = 0;
    for token in &customers {
        for (_, balance, _) in app.balances(token, None).await {
            let scale = scrip_domain::Scale::new(2).expect("scale");
            total_atoms += scrip_domain::Amount::parse(&balance, scale)
                .expect("decimal")
                .atoms();
        }
    }
    assert_eq!(
        total_atoms,
        40 * 250,
        "customers hold exactly what was issued"
    );
    assert_eq!(
        app.balances(&rosa, Some("bakery")).await,
        vec![(s("BREAD"), s("-100.00"), s("0.00"))]
    );
    app.assert_audit_clean().await;
}

/// The statement as CSV text (asserting 200 and the content type).
async fn statement(app: &TestApp, token: &str, query: &str) -> Vec<Vec<String>> {
    let response = app
        .client
        .get(format!("{}/api/v1/statements?{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("statement");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("type")
        .to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let text = response.text().await.expect("text");
    text.lines()
        .skip(1)
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

async fn a_statement_runs_from_the_opening_balance_to_the_current_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    let carl = app.user("carl").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let (status, body) = app
        .pay(&rosa, json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "20.00", "memo": "=HYPERLINK(\"x\")"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, body) = app
        .pay(
            &carl,
            json!({"to": "bakery", "currency": "BREAD", "amount": "3.50"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second_at = body["created_at"].as_str().expect("time").to_owned();

    let lines = statement(&app, &carl, "currency=BREAD").await;
    let cells = |line: &Vec<String>| {
        (
            line[1].clone(),
            line[2].clone(),
            line[4].clone(),
            line[6].clone(),
        )
    };
    assert_eq!(
        lines.iter().map(cells).collect::<Vec<_>>(),
        [
            (s("opening"), s(""), s(""), s("0.00")),
            (s("payment"), s("bakery"), s("20.00"), s("20.00")),
            (s("payment"), s("bakery"), s("-3.50"), s("16.50")),
        ],
        "{lines:?}"
    );
    assert!(
        lines[1][3].starts_with("\"'=HYPERLINK"),
        "a memo is never a formula: {:?}",
        lines[1]
    );
    // From the second line on: it opens with what the first one left.
    let later = statement(&app, &carl, &format!("currency=BREAD&from={second_at}")).await;
    assert_eq!(
        later.iter().map(|l| l[6].clone()).collect::<Vec<_>>(),
        [s("20.00"), s("16.50")],
        "{later:?}"
    );
    // The issuer's statement runs below zero, as its issuing account does.
    let bakery = statement(&app, &rosa, "currency=BREAD&holder=bakery").await;
    assert_eq!(
        bakery.last().map(|l| l[6].clone()),
        Some(s("-16.50")),
        "{bakery:?}"
    );

    for (query, code) in [
        ("currency=BREAD&from=yesterday", "invalid_request"),
        (
            "currency=BREAD&from=2026-12-02&to=2026-12-01",
            "invalid_request",
        ),
    ] {
        let answer = app
            .get(&format!("/api/v1/statements?{query}"), Some(&carl))
            .await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let theirs = app
        .get(
            "/api/v1/statements?currency=BREAD&holder=bakery",
            Some(&carl),
        )
        .await;
    assert_problem(&theirs, StatusCode::FORBIDDEN, "not_owner");
    let never = app
        .get("/api/v1/statements?currency=NOPE", Some(&carl))
        .await;
    assert_problem(&never, StatusCode::NOT_FOUND, "unknown_account");
}
