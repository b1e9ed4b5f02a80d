//! The clearing house over HTTP: a ring of businesses holding each other's currencies.

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    a_run_that_fails_midway_applies_nothing,
    obligations_are_proposed_accepted_and_cleared,
    a_proposed_obligation_can_be_rejected_or_withdrawn,
    a_ring_of_businesses_is_cleared_optimally_and_exactly,
    scheduled_runs_clear_and_export_metrics,
    concurrent_opt_outs_all_succeed,
    obligations_are_bounded_and_self_dealing_is_shown_apart,
);

/// `(business, owner, currency)` of the ring: shopa owes shopb, shopb owes shopc, shopc owes shopa.
const RING: [(&str, &str, &str); 3] = [
    ("shopa", "anna", "AAA"),
    ("shopb", "bert", "BBB"),
    ("shopc", "cleo", "CCC"),
];

/// `(held value of other shops' currencies) - (own outstanding)`, per shop, in cents.
async fn net_positions(app: &TestApp, owners: &[String]) -> Vec<i64> {
    let cents = |s: &str| {
        scrip_domain::Amount::parse(s, scrip_domain::Scale::new(2).expect("scale"))
            .expect("amount")
            .atoms()
    };
    let mut nets = Vec::new();
    for (i, (shop, _, code)) in RING.iter().enumerate() {
        let mut net = 0;
        for (currency, balance, _) in app.balances(&owners[i], Some(shop)).await {
            net += if currency == *code {
                0
            } else {
                cents(&balance)
            };
        }
        let (_, view) = app.get(&format!("/api/v1/currencies/{code}"), None).await;
        net -= cents(view["outstanding"].as_str().expect("outstanding"));
        nets.push(net);
    }
    nets
}

async fn run(app: &TestApp, token: &str, dry_run: bool) -> Value {
    let (status, run) = app
        .post(
            "/api/v1/clearing/runs",
            Some(token),
            json!({"unit": "EUR", "dry_run": dry_run}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    run
}

/// Three shops holding 50, 30 and 40 of each other's money in a ring, and a customer `carl`
/// holding 5 of each; returns the owners' tokens and carl's.
async fn ring(app: &TestApp) -> (Vec<String>, String) {
    let mut owners = Vec::new();
    for (shop, owner, code) in RING {
        let token = app.user(owner).await;
        app.shop(&token, shop, code).await;
        owners.push(token);
    }
    let customer = app.user("carl").await;
    for (i, amount) in [(0, "50"), (1, "30"), (2, "40")] {
        let (shop, _, code) = RING[i];
        let next = RING[(i + 1) % 3].0;
        let issue = json!({"from": shop, "to": next, "currency": code, "amount": amount});
        let (status, body) = app.pay(&owners[i], issue).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let credit = json!({"from": shop, "to": "carl", "currency": code, "amount": "5"});
        app.pay(&owners[i], credit).await;
    }
    (owners, customer)
}

async fn scheduled_runs_clear_and_export_metrics(backend: Backend) {
    let limits = crate::app::Limits {
        clearing_interval_s: 1,
        ..Default::default()
    };
    let app = TestApp::spawn_with(backend, limits).await;
    let (_, customer) = ring(&app).await;
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    assert_problem(
        &app.get("/api/v1/clearing/runs", Some(&customer)).await,
        StatusCode::FORBIDDEN,
        "not_operator",
    );
    let mut applied = None;
    for _ in 0..50 {
        let (_, runs) = app.get("/api/v1/clearing/runs", Some(&olga)).await;
        let items = runs["items"].as_array().cloned().unwrap_or_default();
        if let Some(run) = items.into_iter().find(|r| r["cleared"] == "90") {
            applied = Some(run["dry_run"].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        applied,
        Some(json!(false)),
        "the schedule ran and applied the set-off"
    );
    // Later scheduled runs find nothing left to clear: counted, not recorded.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let (_, runs) = app.get("/api/v1/clearing/runs", Some(&olga)).await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(1), "{runs}");
    let url = format!("{}/metrics", app.base);
    let metrics = app
        .client
        .get(url)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("scrip_clearing_runs_total{kind=\"applied\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scrip_clearing_runs_total{kind=\"empty\"}"),
        "{metrics}"
    );
    // The gauges show the latest run: an empty one after the cycle was cleared (30 of the
    // 120 is not in a cycle).
    assert!(
        metrics.contains("scrip_clearing_gross_before 30"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scrip_clearing_participants 0"),
        "{metrics}"
    );
    app.assert_audit_clean().await;
}

async fn a_ring_of_businesses_is_cleared_optimally_and_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owners, customer) = ring(&app).await;
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    let nets_before = net_positions(&app, &owners).await;

    // Only operators run clearing or see the graph; only owners opt their business out.
    assert_problem(
        &app.post("/api/v1/clearing/runs", Some(&customer), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "not_operator",
    );
    assert_problem(
        &app.get("/api/v1/clearing/graph", Some(&owners[0])).await,
        StatusCode::FORBIDDEN,
        "not_operator",
    );
    assert_problem(
        &app.post("/api/v1/clearing/runs", None, json!({})).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let not_owner = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/businesses/shopc/clearing",
            Some(&owners[0]),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_problem(&not_owner, StatusCode::FORBIDDEN, "not_owner");

    let (status, graph) = app
        .get("/api/v1/clearing/graph?unit=EUR", Some(&olga))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut edges: Vec<(String, String, String)> = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["debtor"].as_str().unwrap_or_default().into(),
                e["creditor"].as_str().unwrap_or_default().into(),
                e["amount"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        vec![
            ("shopa".into(), "shopb".into(), "50".into()),
            ("shopb".into(), "shopc".into(), "30".into()),
            ("shopc".into(), "shopa".into(), "40".into())
        ],
        "customers are never part of the graph"
    );

    // A business that opted out is untouched: without shopc there is no cycle.
    let (status, _) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/businesses/shopc/clearing",
            Some(&owners[2]),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run(&app, &olga, false).await["cleared"], "0");
    app.request(
        reqwest::Method::PUT,
        "/api/v1/businesses/shopc/clearing",
        Some(&owners[2]),
        Some(json!({"enabled": true})),
    )
    .await;

    // Funds held (by open orders) are not cleared: shopb can offer only 5 of its 50 AAA.
    let ledger = scrip_ledger::Ledger::new(app.db.pool.clone());
    // The hold is placed and released through a HoldBatch, the exchange's path.
    let hold_plan = |ledger: scrip_ledger::Ledger, release: Option<scrip_domain::HoldId>| {
        tokio::task::spawn_blocking(move || {
            ledger.write(|conn| {
                let shopb = scrip_ledger::principal_by_handle(
                    conn,
                    &scrip_domain::Handle::parse("shopb").expect("h"),
                )?;
                let aaa = scrip_ledger::currency_by_code(
                    conn,
                    &scrip_domain::CurrencyCode::parse("AAA").expect("c"),
                )?;
                let rules = scrip_ledger::BatchRules::load(conn, &[aaa.id])?;
                let mut batch = scrip_ledger::HoldBatch::lock(conn, &rules, [(shopb.id, aaa.id)])?;
                match release {
                    None => drop(batch.place_hold(shopb.id, aaa.id, 4_500, "order".into())?),
                    Some(hold) => batch.release(
                        scrip_ledger::HoldRef::Existing(hold),
                        shopb.id,
                        aaa.id,
                        4_500,
                    )?,
                }
                Ok(batch.commit(conn)?.new_hold_ids)
            })
        })
    };
    let hold = hold_plan(ledger.clone(), None)
        .await
        .expect("task")
        .expect("hold")[0];
    assert_eq!(run(&app, &olga, true).await["cleared"], "15");
    hold_plan(ledger, Some(hold))
        .await
        .expect("task")
        .expect("release");

    // A body the server cannot read is refused: never run with the defaults, which apply.
    let before = app.transfer_count().await;
    let runs_before = app.get("/api/v1/clearing/runs", Some(&olga)).await.1["items"].clone();
    for (content_type, body, status, code) in [
        (
            "application/json",
            r#"{"unit":"EUR","dry_run":"yes"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "application/json",
            r#"{"unit":"EUR","dry_run":true,"x":1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "application/json",
            r#"{"unit":"EUR","dry_run":true"#,
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "text/plain",
            r#"{"unit":"EUR","dry_run":true}"#,
            StatusCode::BAD_REQUEST,
            "unsupported_media_type",
        ),
        // A unit no currency is valued in could only clear nothing: not a run.
        (
            "application/json",
            r#"{"unit":"USD","dry_run":false}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_unit",
        ),
    ] {
        let answer = app
            .post_raw(
                "/api/v1/clearing/runs",
                Some(&olga),
                content_type,
                body.into(),
            )
            .await;
        assert_problem(&answer, status, code);
    }
    assert_eq!(app.transfer_count().await, before);
    assert_eq!(
        app.get("/api/v1/clearing/runs", Some(&olga)).await.1["items"],
        runs_before,
        "no run was recorded"
    );

    // A dry run reports the optimum and changes nothing.
    let dry = run(&app, &olga, true).await;
    assert_eq!(
        (
            dry["gross_before"].as_str(),
            dry["cleared"].as_str(),
            dry["gross_after"].as_str()
        ),
        (Some("120"), Some("90"), Some("30"))
    );
    assert_eq!(
        (
            dry["dry_run"].as_bool(),
            dry["cycles"].as_i64(),
            dry["participants"].as_i64()
        ),
        (Some(true), Some(1), Some(3))
    );
    assert_eq!(app.transfer_count().await, before);

    // The real run moves exactly what API.md says and keeps every net position.
    let applied = run(&app, &olga, false).await;
    assert_eq!(applied["cleared"], "90");
    assert_eq!(
        applied["started_by"], "olga",
        "every run says who started it"
    );
    let amounts: Vec<&str> = applied["settlements"]
        .as_array()
        .expect("settlements")
        .iter()
        .filter_map(|s| s["amount"].as_str())
        .collect();
    assert_eq!(amounts, ["30", "30", "30"]);
    assert_eq!(app.transfer_count().await, before + 3);
    let holds = |shop: &'static str, i: usize| {
        let app = &app;
        let owners = &owners;
        async move { app.balances(&owners[i], Some(shop)).await }
    };
    let s = |v: &str| v.to_owned();
    assert_eq!(
        holds("shopa", 0).await,
        vec![
            (s("AAA"), s("-25.00"), s("0.00")),
            (s("CCC"), s("10.00"), s("0.00"))
        ]
    );
    assert_eq!(
        holds("shopb", 1).await,
        vec![
            (s("BBB"), s("-5.00"), s("0.00")),
            (s("AAA"), s("20.00"), s("0.00"))
        ]
    );
    assert_eq!(
        holds("shopc", 2).await,
        vec![
            (s("CCC"), s("-15.00"), s("0.00")),
            (s("BBB"), s("0.00"), s("0.00"))
        ]
    );
    assert_eq!(
        net_positions(&app, &owners).await,
        nets_before,
        "every net position unchanged to the cent"
    );
    assert_eq!(
        app.balances(&customer, None).await.len(),
        3,
        "customers keep their holdings"
    );
    assert_eq!(
        run(&app, &olga, false).await["cleared"],
        "0",
        "nothing left to clear"
    );

    let (status, page) = app.get("/api/v1/clearing/runs?limit=2", Some(&olga)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert!(page["next_cursor"].is_string());
    let id = applied["id"].as_str().expect("id");
    let (status, one) = app
        .get(&format!("/api/v1/clearing/runs/{id}"), Some(&olga))
        .await;
    assert_eq!(
        (status, &one["settlements"]),
        (StatusCode::OK, &applied["settlements"])
    );
    assert_problem(
        &app.get("/api/v1/clearing/runs/999999", Some(&olga)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    app.assert_audit_clean().await;
}

/// Tokens of the owners of `shopa` (anna) and `shopb` (bert), of a stranger (eve) and of an
/// operator (olga).
struct Parties {
    anna: String,
    bert: String,
    eve: String,
    olga: String,
}

async fn parties(app: &TestApp) -> Parties {
    let anna = app.user("anna").await;
    let bert = app.user("bert").await;
    let eve = app.user("eve").await;
    app.shop(&anna, "shopa", "AAA").await;
    app.shop(&bert, "shopb", "BBB").await;
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    Parties {
        anna,
        bert,
        eve,
        olga,
    }
}

async fn obligations_are_proposed_accepted_and_cleared(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let Parties {
        anna,
        bert,
        eve,
        olga,
    } = parties(&app).await;
    // shopa owes shopb 50 through its currency; shopb owes shopa 30 by invoice.
    app.pay(
        &anna,
        json!({"from": "shopa", "to": "shopb", "currency": "AAA", "amount": "50"}),
    )
    .await;

    let invoice = json!({"debtor": "shopb", "creditor": "shopa", "amount": "30", "memo": "flour"});
    assert_problem(
        &app.post("/api/v1/obligations", Some(&bert), invoice.clone())
            .await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    let to_person = json!({"debtor": "eve", "creditor": "shopa", "amount": "30"});
    assert_problem(
        &app.post("/api/v1/obligations", Some(&anna), to_person)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not_a_business",
    );
    let too_precise = json!({"debtor": "shopb", "creditor": "shopa", "amount": "1.123456789"});
    assert_problem(
        &app.post("/api/v1/obligations", Some(&anna), too_precise)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_amount",
    );
    let (status, proposed) = app.post("/api/v1/obligations", Some(&anna), invoice).await;
    assert_eq!(status, StatusCode::CREATED, "{proposed}");
    assert_eq!(
        (proposed["status"].as_str(), proposed["amount"].as_str()),
        (Some("proposed"), Some("30.00000000"))
    );
    let id = proposed["id"].as_str().expect("id").to_owned();

    // A proposed obligation is not cleared.
    assert_eq!(run(&app, &olga, true).await["cleared"], "0");

    let accept = format!("/api/v1/obligations/{id}/accept");
    assert_problem(
        &app.post(&accept, Some(&anna), json!({})).await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    assert_problem(
        &app.post(&accept, Some(&eve), json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, accepted) = app.post(&accept, Some(&bert), json!({})).await;
    assert_eq!(
        (status, accepted["status"].as_str()),
        (StatusCode::OK, Some("accepted"))
    );
    assert_problem(
        &app.post(&accept, Some(&bert), json!({})).await,
        StatusCode::CONFLICT,
        "already_accepted",
    );

    let applied = run(&app, &olga, false).await;
    assert_eq!(applied["cleared"], "60");
    let mut sources: Vec<&str> = applied["settlements"]
        .as_array()
        .expect("s")
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    sources.sort_unstable();
    assert_eq!(sources, ["holding", "obligation"]);
    let (_, mine) = app
        .get("/api/v1/obligations?status=accepted", Some(&bert))
        .await;
    assert_eq!(mine["items"][0]["remaining"], "0.00000000");
    // A worker of shopa sees none of its obligations: they are the owners' business.
    app.add_member((&anna, "shopa"), ("eve", &eve), "worker")
        .await;
    let (_, none) = app.get("/api/v1/obligations", Some(&eve)).await;
    assert_eq!(none["items"], json!([]));
    assert_eq!(none["next_cursor"], json!(null));
    // Listed a page at a time, newest first, filter kept across pages.
    for amount in ["1", "2", "3"] {
        let more = json!({"debtor": "shopb", "creditor": "shopa", "amount": amount});
        let (status, body) = app.post("/api/v1/obligations", Some(&anna), more).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let amounts = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .map(|o| o["amount"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        amounts(app.all_pages("/api/v1/obligations", Some(&bert), 2).await),
        ["3.00000000", "2.00000000", "1.00000000", "30.00000000"]
    );
    assert_eq!(
        amounts(
            app.all_pages("/api/v1/obligations?status=proposed", Some(&anna), 1)
                .await
        ),
        ["3.00000000", "2.00000000", "1.00000000"]
    );
    let s = |v: &str| v.to_owned();
    assert_eq!(
        app.balances(&bert, Some("shopb")).await,
        vec![
            (s("BBB"), s("0.00"), s("0.00")),
            (s("AAA"), s("20.00"), s("0.00"))
        ]
    );
    app.assert_audit_clean().await;
}

/// A failure after the set-off transfers were written (here: a trigger that refuses the
/// settlement record) rolls the whole run back: no transfer, no balance change, no run.
async fn a_run_that_fails_midway_applies_nothing(backend: Backend) {
    use diesel::RunQueryDsl;
    let app = TestApp::spawn(backend).await;
    let (owners, _) = ring(&app).await;
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    let before = app.transfer_count().await;
    let balances_before = app.balances(&owners[0], Some("shopa")).await;
    let (install, remove): (&[&str], &[&str]) = match backend {
        Backend::Sqlite => (
            &[
                "CREATE TRIGGER boom BEFORE INSERT ON clearing_settlements BEGIN SELECT RAISE(ABORT, 'boom'); END",
            ],
            &["DROP TRIGGER boom"],
        ),
        Backend::Postgres => (
            &[
                "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER boom BEFORE INSERT ON clearing_settlements FOR EACH ROW EXECUTE FUNCTION boom()",
            ],
            &[
                "DROP TRIGGER boom ON clearing_settlements",
                "DROP FUNCTION boom()",
            ],
        ),
    };
    let exec = |statements: &'static [&'static str]| {
        let pool = app.db.pool.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().expect("conn");
                for sql in statements {
                    diesel::sql_query(*sql).execute(&mut *conn).expect("ddl");
                }
            })
            .await
            .expect("task");
        }
    };
    exec(install).await;
    let (status, _) = app
        .post("/api/v1/clearing/runs", Some(&olga), json!({}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    exec(remove).await;
    assert_eq!(
        app.transfer_count().await,
        before,
        "no set-off transfer survived"
    );
    assert_eq!(
        app.balances(&owners[0], Some("shopa")).await,
        balances_before
    );
    let (_, runs) = app.get("/api/v1/clearing/runs", Some(&olga)).await;
    assert_eq!(runs["items"], json!([]), "no run was recorded");
    assert_eq!(
        run(&app, &olga, false).await["cleared"],
        "90",
        "and a later run works"
    );
    app.assert_audit_clean().await;
}

async fn a_proposed_obligation_can_be_rejected_or_withdrawn(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let Parties {
        anna,
        bert,
        eve,
        olga,
    } = parties(&app).await;
    // shopa (anna's) says shopb (bert's) owes it.
    let mut ids = Vec::new();
    for amount in ["10", "20", "30"] {
        let invoice = json!({"debtor": "shopb", "creditor": "shopa", "amount": amount});
        let (status, body) = app.post("/api/v1/obligations", Some(&anna), invoice).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    let decide = |id: &str, verb: &str, token: &str| {
        let (path, token) = (format!("/api/v1/obligations/{id}/{verb}"), token.to_owned());
        let app = &app;
        async move { app.post(&path, Some(&token), json!({})).await }
    };

    // The debtor rejects, the creditor withdraws; anyone else sees nothing.
    assert_problem(
        &decide(&ids[0], "reject", &anna).await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    assert_problem(
        &decide(&ids[0], "withdraw", &bert).await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    assert_problem(
        &decide(&ids[0], "reject", &eve).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &decide("999999", "withdraw", &anna).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, rejected) = decide(&ids[0], "reject", &bert).await;
    assert_eq!(
        (status, rejected["status"].as_str()),
        (StatusCode::OK, Some("rejected"))
    );
    let (status, withdrawn) = decide(&ids[1], "withdraw", &anna).await;
    assert_eq!(
        (status, withdrawn["status"].as_str()),
        (StatusCode::OK, Some("withdrawn"))
    );

    // Closed for good; and an accepted obligation can no longer be declined.
    for (id, verb, token) in [
        (&ids[0], "accept", &bert),
        (&ids[0], "withdraw", &anna),
        (&ids[1], "accept", &bert),
        (&ids[1], "reject", &bert),
    ] {
        assert_problem(
            &decide(id, verb, token).await,
            StatusCode::CONFLICT,
            "obligation_closed",
        );
    }
    let (status, _) = decide(&ids[2], "accept", &bert).await;
    assert_eq!(status, StatusCode::OK);
    assert_problem(
        &decide(&ids[2], "reject", &bert).await,
        StatusCode::CONFLICT,
        "already_accepted",
    );
    assert_problem(
        &decide(&ids[2], "withdraw", &anna).await,
        StatusCode::CONFLICT,
        "already_accepted",
    );

    // Both sides still see every one, by status.
    let statuses = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .map(|o| o["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    for token in [&anna, &bert] {
        assert_eq!(
            statuses(app.all_pages("/api/v1/obligations", Some(token), 2).await),
            ["accepted", "withdrawn", "rejected"]
        );
    }
    for (status, id) in [
        ("rejected", &ids[0]),
        ("withdrawn", &ids[1]),
        ("accepted", &ids[2]),
    ] {
        let (_, page) = app
            .get(&format!("/api/v1/obligations?status={status}"), Some(&bert))
            .await;
        assert_eq!(
            page["items"].as_array().map(Vec::len),
            Some(1),
            "{status}: {page}"
        );
        assert_eq!(page["items"][0]["id"].as_str(), Some(id.as_str()));
    }
    let (_, proposed) = app
        .get("/api/v1/obligations?status=proposed", Some(&bert))
        .await;
    assert_eq!(proposed["items"], json!([]));
    assert_problem(
        &app.get("/api/v1/obligations?status=nope", Some(&bert))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_status",
    );

    // Only the accepted one is a debt the clearing house sees.
    let (_, graph) = app
        .get("/api/v1/clearing/graph?unit=EUR", Some(&olga))
        .await;
    let obligations: Vec<&Value> = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| e["source"] == "obligation")
        .collect();
    assert_eq!(obligations.len(), 1, "{graph}");
    assert_eq!(
        (
            obligations[0]["debtor"].as_str(),
            obligations[0]["creditor"].as_str()
        ),
        (Some("shopb"), Some("shopa"))
    );
    let amount = obligations[0]["amount"].as_str().expect("amount");
    assert!(amount == "30" || amount.starts_with("30."), "{amount}");
    app.assert_audit_clean().await;
}

/// Opting out is idempotent, also when the requests race (one row, every answer 200).
async fn concurrent_opt_outs_all_succeed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let opt_out = || {
        app.request(
            reqwest::Method::PUT,
            "/api/v1/businesses/bakery/clearing",
            Some(&rosa),
            Some(json!({"enabled": false})),
        )
    };
    let answers = futures_util::future::join_all((0..8).map(|_| opt_out())).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
}

/// One business cannot bury another in proposals, no invoice is bigger than the largest
/// credit line, and debts between businesses with a common owner are marked (one person's
/// say-so), in the obligation and in the clearing graph.
async fn obligations_are_bounded_and_self_dealing_is_shown_apart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let Parties {
        anna, bert, olga, ..
    } = parties(&app).await;
    let huge = json!({"debtor": "shopb", "creditor": "shopa", "amount": "1000000.00000001"});
    assert_problem(
        &app.post("/api/v1/obligations", Some(&anna), huge).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_amount",
    );
    for n in 0..20 {
        let body = json!({"debtor": "shopb", "creditor": "shopa", "amount": format!("{}", n + 1)});
        let (status, created) = app.post("/api/v1/obligations", Some(&anna), body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["related"], false);
    }
    let one_more = json!({"debtor": "shopb", "creditor": "shopa", "amount": "1"});
    let refused = app.post("/api/v1/obligations", Some(&anna), one_more).await;
    assert_problem(&refused, StatusCode::CONFLICT, "too_many_proposals");
    // An answer makes room again.
    let (_, waiting) = app
        .get("/api/v1/obligations?status=proposed", Some(&bert))
        .await;
    let id = waiting["items"][0]["id"].as_str().expect("id").to_owned();
    let (status, _) = app
        .post(
            &format!("/api/v1/obligations/{id}/reject"),
            Some(&bert),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = json!({"debtor": "shopb", "creditor": "shopa", "amount": "1"});
    let (status, body) = app.post("/api/v1/obligations", Some(&anna), again).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // anna's second business owes her first: marked, and shown apart in the graph.
    app.shop(&anna, "shopc", "CCC").await;
    let own = json!({"debtor": "shopc", "creditor": "shopa", "amount": "900000"});
    let (status, created) = app.post("/api/v1/obligations", Some(&anna), own).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["related"], true);
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, _) = app
        .post(
            &format!("/api/v1/obligations/{id}/accept"),
            Some(&anna),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, graph) = app.get("/api/v1/clearing/graph", Some(&olga)).await;
    let edges = graph["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1, "{graph}");
    assert_eq!(
        (edges[0]["debtor"].as_str(), edges[0]["related"].as_bool()),
        (Some("shopc"), Some(true))
    );
}
