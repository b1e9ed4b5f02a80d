//! Clearing for the businesses: previews applied exactly or not at all, and statements that add
//! up for every participant of a random graph.

use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use scrip_domain::{Amount, Scale};
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    a_preview_is_applied_exactly_or_not_at_all,
    statements_add_up_for_every_participant,
    an_accepted_obligation_is_paid_through_the_ledger,
);

/// Atoms of `raw` at `decimals` (unit values have up to 16; currencies here 2).
fn atoms(raw: &str, decimals: i64) -> i64 {
    Amount::parse(raw, Scale::new(decimals).expect("scale"))
        .unwrap_or_else(|e| panic!("{raw}: {e}"))
        .atoms()
}

fn value(raw: &Value) -> i64 {
    atoms(raw.as_str().unwrap_or_else(|| panic!("{raw}")), 8)
}

async fn post_run(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.post("/api/v1/clearing/runs", Some(token), body).await
}

/// Shops `shop0..` (owners `owner0..`, currencies `CA`, `CB`, ...) paying random amounts of
/// their own currency to random others. Returns the owners' tokens.
async fn random_graph(app: &TestApp, n: usize, seed: u64) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut owners = Vec::new();
    for i in 0..n {
        let token = app.user(&format!("owner{i}")).await;
        app.shop(&token, &format!("shop{i}"), &code(i)).await;
        owners.push(token);
    }
    for (i, owner) in owners.iter().enumerate() {
        for _ in 0..3 {
            let j = (i + rng.random_range(1..n)) % n;
            let cents: i64 = rng.random_range(1..5_000);
            let amount = format!("{}.{:02}", cents / 100, cents % 100);
            let pay = json!({"from": format!("shop{i}"), "to": format!("shop{j}"), "currency": code(i), "amount": amount});
            let (status, body) = app.pay(owner, pay).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    owners
}

fn code(i: usize) -> String {
    format!(
        "C{}",
        char::from(b'A' + u8::try_from(i).expect("few shops"))
    )
}

async fn a_preview_is_applied_exactly_or_not_at_all(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owners = random_graph(&app, 4, 7).await;
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;

    let (status, preview) = post_run(&app, &olga, json!({"dry_run": true})).await;
    assert_eq!(status, StatusCode::CREATED, "{preview}");
    assert_eq!(preview["preview_id"], preview["id"], "{preview}");
    let positions = preview["positions"].as_array().expect("positions");
    assert!(
        !positions.is_empty(),
        "a random graph of 12 debts has a cycle: {preview}"
    );
    for p in positions {
        let net = value(&p["owed_before"]) - value(&p["owes_before"]);
        assert_eq!(
            net,
            value(&p["owed_after"]) - value(&p["owes_after"]),
            "{p}"
        );
        assert_eq!(net, value(&p["net"]), "{p}");
    }

    // What cannot be applied is refused under the field it concerns.
    let id = preview["preview_id"].as_str().expect("id").to_owned();
    for (body, field) in [
        (json!({"apply": id, "dry_run": true}), "apply"),
        (json!({"apply": "not-a-run"}), "apply"),
        (json!({"apply": "999999"}), "apply"),
        (json!({"apply": id, "unit": "USD"}), "unit"),
    ] {
        let answer = post_run(&app, &olga, body.clone()).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(answer.1["field"], field, "{body}: {}", answer.1);
    }

    // A debt moves after the preview: applying it is refused and changes nothing.
    let (status, body) = app
        .pay(
            &owners[0],
            json!({"from": "shop0", "to": "shop1", "currency": "CA", "amount": "1.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let transfers = app.transfer_count().await;
    let answer = post_run(&app, &olga, json!({"apply": id})).await;
    assert_problem(&answer, StatusCode::CONFLICT, "graph_changed");
    assert_eq!(app.transfer_count().await, transfers, "nothing applied");

    // A fresh preview applies exactly as shown, once.
    let (_, preview) = post_run(&app, &olga, json!({"dry_run": true})).await;
    let id = preview["preview_id"].as_str().expect("id").to_owned();
    let (status, applied) = post_run(&app, &olga, json!({"apply": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{applied}");
    assert_eq!(applied["dry_run"], false);
    assert_eq!(applied["preview_of"], id.as_str());
    assert_eq!(applied["preview_id"], Value::Null);
    for field in [
        "cleared",
        "gross_before",
        "gross_after",
        "settlements",
        "positions",
    ] {
        assert_eq!(applied[field], preview[field], "{field}");
    }
    assert!(value(&applied["cleared"]) > 0, "{applied}");
    let answer = post_run(&app, &olga, json!({"apply": id})).await;
    assert_problem(&answer, StatusCode::CONFLICT, "graph_changed");
    app.assert_audit_clean().await;
}

/// The statement's CSV: the lines after the header, split on commas (no cell here quotes).
async fn statement_csv(app: &TestApp, token: &str, run: &str, shop: &str) -> Vec<Vec<String>> {
    let response = app
        .client
        .get(format!(
            "{}/api/v1/clearing/runs/{run}/statements/{shop}?format=csv",
            app.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("statement");
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response.headers()[name]
            .to_str()
            .expect("header")
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/csv"));
    assert!(
        header("content-disposition").contains(&format!("scrip-clearing-{shop}-run-{run}.csv"))
    );
    let text = response.text().await.expect("text");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "record,run,finished_at,unit,currency,debtor,creditor,source,value,currency_amount,before,after"
        )
    );
    lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// Checks one participant's statement against the run and the ledger as it is after it.
async fn check_statement(app: &TestApp, token: &str, run: &Value, shop: &str, own: &str) {
    let run_id = run["id"].as_str().expect("id");
    let (status, s) = app
        .get(
            &format!("/api/v1/clearing/runs/{run_id}/statements/{shop}"),
            Some(token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["business"], shop);
    let settlements = s["settlements"].as_array().expect("settlements");
    let in_run: Vec<&Value> = run["settlements"]
        .as_array()
        .expect("run settlements")
        .iter()
        .filter(|t| t["debtor"] == shop || t["creditor"] == shop)
        .collect();
    assert_eq!(
        settlements.len(),
        in_run.len(),
        "every settlement it took part in"
    );
    // Balance before + what the settlements moved = balance after, per currency; and the
    // ledger holds the balance after.
    let now: Vec<(String, String, String)> = app.balances(token, Some(shop)).await;
    for b in s["balances"].as_array().expect("balances") {
        let currency = b["currency"].as_str().expect("currency");
        let moved: i64 = settlements
            .iter()
            .filter(|t| t["currency"] == currency)
            .map(|t| {
                let atoms = atoms(t["currency_amount"].as_str().expect("amount"), 2);
                if currency == own { atoms } else { -atoms }
            })
            .sum();
        let (before, after) = (
            b["before"].as_str().expect("b"),
            b["after"].as_str().expect("a"),
        );
        assert_eq!(
            atoms(before, 2) + moved,
            atoms(after, 2),
            "{shop} {currency}: {s}"
        );
        let ledger = now.iter().find(|(c, _, _)| c == currency).expect("held");
        assert_eq!(atoms(&ledger.1, 2), atoms(after, 2), "{shop} {currency}");
    }
    let p = &s["position"];
    assert_eq!(p["net_before"], p["net_after"], "{s}");
    let owed: i64 = settlements
        .iter()
        .filter(|t| t["creditor"] == shop)
        .map(|t| value(&t["amount"]))
        .sum();
    let owes: i64 = settlements
        .iter()
        .filter(|t| t["debtor"] == shop)
        .map(|t| value(&t["amount"]))
        .sum();
    assert_eq!(
        value(&p["owed_before"]) - value(&p["owed_after"]),
        owed,
        "{s}"
    );
    assert_eq!(
        value(&p["owes_before"]) - value(&p["owes_after"]),
        owes,
        "{s}"
    );
    assert_eq!(
        owed, owes,
        "what it was owed and what it owed fell together"
    );

    let csv = statement_csv(app, token, run_id, shop).await;
    let count = |record: &str| csv.iter().filter(|l| l[0] == record).count();
    assert_eq!(
        count("balance"),
        s["balances"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(count("settlement"), settlements.len());
    let net = csv.iter().find(|l| l[0] == "net").expect("net line");
    assert_eq!(net[10], net[11], "net before = net after");
    assert_eq!(net[10], p["net_before"].as_str().expect("net"));
}

async fn statements_add_up_for_every_participant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let n = 6;
    let owners = random_graph(&app, n, 42).await;
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    let customer = app.user("carl").await;
    let (status, run) = post_run(&app, &olga, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert!(
        value(&run["cleared"]) > 0,
        "a random graph of 18 debts has a cycle: {run}"
    );
    let run_id = run["id"].as_str().expect("id").to_owned();
    for (i, owner) in owners.iter().enumerate() {
        let shop = format!("shop{i}");
        check_statement(&app, owner, &run, &shop, &code(i)).await;
        let (status, page) = app
            .get(
                &format!("/api/v1/businesses/{shop}/clearing/statements"),
                Some(owner),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["items"][0]["run"], run_id.as_str(), "{page}");
    }
    // Its owners and the operators only; to anyone else it does not exist.
    let path = format!("/api/v1/clearing/runs/{run_id}/statements/shop0");
    assert_eq!(app.get(&path, Some(&olga)).await.0, StatusCode::OK);
    for token in [&owners[1], &customer] {
        assert_problem(
            &app.get(&path, Some(token)).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        assert_problem(
            &app.get("/api/v1/businesses/shop0/clearing/statements", Some(token))
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    let answer = app
        .get(&format!("{path}?format=pdf"), Some(&owners[0]))
        .await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(answer.1["field"], "format");
    app.assert_audit_clean().await;
}

/// An accepted obligation is paid through the ledger in a currency the creditor takes; what is
/// left falls by exactly the value paid; every refusal changes nothing; a replay pays once.
async fn an_accepted_obligation_is_paid_through_the_ledger(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anna = app.user("anna").await;
    let bert = app.user("bert").await;
    app.shop(&anna, "shopa", "AAA").await;
    app.shop(&bert, "shopb", "BBB").await;
    let cleo = app.user("cleo").await;
    app.shop(&cleo, "shopc", "CCC").await;
    // shopb owes shopa 30 by invoice, and holds 20 AAA (shopa's own money).
    let (status, body) = app
        .pay(
            &anna,
            json!({"from": "shopa", "to": "shopb", "currency": "AAA", "amount": "20"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, invoice) = app
        .post(
            "/api/v1/obligations",
            Some(&anna),
            json!({"debtor": "shopb", "creditor": "shopa", "amount": "30"}),
        )
        .await;
    let id = invoice["id"].as_str().expect("id").to_owned();
    let pay_path = format!("/api/v1/obligations/{id}/pay");
    let pay = |token: &String, body: Value| {
        let (app, path, token) = (&app, pay_path.clone(), token.clone());
        async move { app.post(&path, Some(&token), body).await }
    };
    assert_problem(
        &pay(&bert, json!({"amount": "5", "currency": "AAA"})).await,
        StatusCode::CONFLICT,
        "not_accepted",
    );
    let (status, _) = app
        .post(
            &format!("/api/v1/obligations/{id}/accept"),
            Some(&bert),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let transfers = app.transfer_count().await;
    for (token, body, status, code, field) in [
        (
            &anna,
            json!({"amount": "5", "currency": "AAA"}),
            StatusCode::FORBIDDEN,
            "not_owner",
            None,
        ),
        (
            &cleo,
            json!({"amount": "5", "currency": "AAA"}),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            &bert,
            json!({"amount": "31", "currency": "AAA"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            Some("amount"),
        ),
        (
            &bert,
            json!({"amount": "-1", "currency": "AAA"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            Some("amount"),
        ),
        (
            &bert,
            json!({"amount": "0.001", "currency": "AAA"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            Some("amount"),
        ),
        (
            &bert,
            json!({"amount": "5", "currency": "CCC"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            Some("currency"),
        ),
        (
            &bert,
            json!({"amount": "5", "currency": "NOPE"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            Some("currency"),
        ),
        (
            &bert,
            json!({"amount": "25", "currency": "AAA"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
            None,
        ),
    ] {
        let answer = pay(token, body.clone()).await;
        assert_problem(&answer, status, code);
        if let Some(field) = field {
            assert_eq!(answer.1["field"], field, "{body}: {}", answer.1);
        }
    }
    assert_eq!(
        app.transfer_count().await,
        transfers,
        "every refusal changed nothing"
    );

    // Paid 12.50 in AAA (redeeming shopa's own money), then the rest in shopb's own BBB,
    // which shopa takes once it holds any.
    let keyed = |key: &'static str, body: Value| {
        app.client
            .post(format!("{}{pay_path}", app.base))
            .bearer_auth(&bert)
            .header("idempotency-key", key)
            .json(&body)
    };
    let first = keyed("pay-1", json!({"amount": "12.50", "currency": "AAA"}))
        .send()
        .await
        .expect("pay");
    assert_eq!(first.status(), StatusCode::OK);
    let paid: Value = first.json().await.expect("json");
    assert_eq!(paid["obligation"]["remaining"], "17.50000000", "{paid}");
    assert_eq!(paid["currency_amount"], "12.50");
    let replay = keyed("pay-1", json!({"amount": "12.50", "currency": "AAA"}))
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(app.transfer_count().await, transfers + 1, "paid once");
    let balances = app.balances(&bert, Some("shopb")).await;
    let aaa = balances.iter().find(|(c, _, _)| c == "AAA").expect("AAA");
    assert_eq!(aaa.1, "7.50");

    assert_problem(
        &pay(&bert, json!({"amount": "17.5", "currency": "BBB"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    let (status, body) = app
        .pay(
            &bert,
            json!({"from": "shopb", "to": "shopa", "currency": "BBB", "amount": "1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Paying in its own money is issuing it: under a rule that guards issuing, not alone.
    let bea = app.user("bea").await;
    app.add_member((&bert, "shopb"), ("bea", &bea), "owner")
        .await;
    let rule = json!({"required": 2, "of": ["issue"]});
    let (status, body) = app
        .put_json("/api/v1/businesses/shopb/approvals", Some(&bert), rule)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_problem(
        &pay(&bert, json!({"amount": "17.5", "currency": "BBB"})).await,
        StatusCode::FORBIDDEN,
        "needs_approval",
    );
    let (status, body) = app
        .put_json(
            "/api/v1/businesses/shopb/approvals",
            Some(&bert),
            json!({"required": 1, "of": []}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the rule guards itself: {body}"
    );
    let id_of = body["proposal"]["id"]
        .as_str()
        .expect("proposal")
        .to_owned();
    let (status, body) = app
        .post(
            &format!("/api/v1/proposals/{id_of}/approve"),
            Some(&bea),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, paid) = pay(&bert, json!({"amount": "17.5", "currency": "BBB"})).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["obligation"]["remaining"], "0.00000000");
    assert_problem(
        &pay(&bert, json!({"amount": "0.01", "currency": "AAA"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    // Whether the business takes part in clearing, as its owners see and set it.
    let path = "/api/v1/businesses/shopb/clearing";
    assert_eq!(app.get(path, Some(&bert)).await.1["enabled"], true);
    let (status, _) = app
        .put_json(path, Some(&bert), json!({"enabled": false}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get(path, Some(&bert)).await.1["enabled"], false);
    assert_problem(
        &app.get(path, Some(&anna)).await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    app.assert_audit_clean().await;
}
