//! Governance: a business's approval rule (k of n owners), proposals that run their action
//! once when the last approval arrives, the rule guarding itself, expiry, the log, and who
//! may do what.

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    one_owner_alone_cannot_issue_or_admit_by_another_route,
    admission_by_the_stewards_and_a_directory_anyone_can_check,
    a_frozen_account_neither_pays_nor_trades_and_its_orders_are_cancelled,
    a_worker_sees_the_balances_and_the_payments_received_and_nothing_else,
    two_of_three_owners_issue_and_concurrent_approvals_run_it_once,
    the_rule_guards_itself_and_closed_or_expired_proposals_never_run,
    guarded_members_limits_and_markets_wait_for_approval,
    each_role_may_do_only_what_it_may,
);

/// A bakery owned by rosa, otto and pia, with BREAD; carl holds 50.00 BREAD. Tokens.
async fn co_owned(app: &TestApp) -> (String, String, String, String) {
    let rosa = app.user("rosa").await;
    let otto = app.user("otto").await;
    let pia = app.user("pia").await;
    let carl = app.user("carl").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.add_member((&rosa, "bakery"), ("otto", &otto), "owner")
        .await;
    app.add_member((&rosa, "bakery"), ("pia", &pia), "owner")
        .await;
    let paid = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "50.00"}),
        )
        .await;
    assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);
    (rosa, otto, pia, carl)
}

async fn set_rule(app: &TestApp, token: &str, rule: Value) -> (StatusCode, Value) {
    app.put_json("/api/v1/businesses/bakery/approvals", Some(token), rule)
        .await
}

async fn decide(app: &TestApp, token: &str, id: &str, verb: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/proposals/{id}/{verb}"),
        Some(token),
        json!({}),
    )
    .await
}

async fn bread_of(app: &TestApp, token: &str) -> String {
    let (_, accounts) = app.get("/api/v1/accounts", Some(token)).await;
    accounts["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["currency"] == "BREAD"))
        .map(|a| a["balance"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| "0".into())
}

async fn two_of_three_owners_issue_and_concurrent_approvals_run_it_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, otto, pia, carl) = co_owned(&app).await;
    let (status, rule) = set_rule(
        &app,
        &rosa,
        json!({"required": 2, "of": ["issue"], "issue_above": "100"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rule}");
    assert_eq!(
        rule,
        json!({"business": "bakery", "required": 2, "of": ["issue", "members"], "issue_above": "100"}),
        "a rule of more than one owner always guards members"
    );

    // Up to the threshold one owner issues alone.
    let small = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "100.00"}),
        )
        .await;
    assert_eq!(small.0, StatusCode::CREATED, "{}", small.1);
    assert_eq!(bread_of(&app, &carl).await, "150.00");

    // Above it, the payment becomes a proposal, on either payment endpoint; nothing moves.
    let before = app.transfer_count().await;
    let (status, proposed) = app
        .pay(&rosa, json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "500.00", "memo": "wages"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    let proposal = &proposed["proposal"];
    assert_eq!(proposal["action"], "issue");
    assert_eq!(proposal["status"], "open");
    assert_eq!(proposal["required"], 2);
    assert_eq!(proposal["approvals"], json!(["rosa"]));
    assert_eq!(proposal["summary"], "pay 500.00 BREAD to carl");
    let (status, via_payments) = app
        .post(
            "/api/v1/payments",
            Some(&rosa),
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "300.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{via_payments}");
    assert_eq!(app.transfer_count().await, before);
    assert_eq!(bread_of(&app, &carl).await, "150.00");

    // The proposer has decided already.
    let id = proposal["id"].as_str().expect("id").to_owned();
    assert_problem(
        &decide(&app, &rosa, &id, "approve").await,
        StatusCode::CONFLICT,
        "already_decided",
    );

    // Two owners approve at the same moment: the payment runs exactly once.
    let (first, second) = tokio::join!(
        decide(&app, &otto, &id, "approve"),
        decide(&app, &pia, &id, "approve")
    );
    let answers = [first, second];
    let executed: Vec<&(StatusCode, Value)> = answers
        .iter()
        .filter(|(status, body)| *status == StatusCode::OK && body["status"] == "executed")
        .collect();
    assert_eq!(executed.len(), 1, "{answers:?}");
    let other = answers
        .iter()
        .find(|a| !(a.0 == StatusCode::OK && a.1["status"] == "executed"))
        .expect("the other answer");
    assert_problem(other, StatusCode::CONFLICT, "proposal_closed");
    assert_eq!(executed[0].1["outcome"]["amount"], "500.00");
    assert_eq!(bread_of(&app, &carl).await, "650.00");
    assert_eq!(app.transfer_count().await, before + 1);

    // Listed with its decisions; the other proposal still waits.
    let (_, open) = app
        .get(
            "/api/v1/businesses/bakery/proposals?status=open",
            Some(&rosa),
        )
        .await;
    assert_eq!(open["items"].as_array().map(Vec::len), Some(1), "{open}");
    assert_eq!(open["items"][0]["summary"], "pay 300.00 BREAD to carl");
    let (_, log) = app.get("/api/v1/businesses/bakery/log", Some(&otto)).await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "approvals_set",
        "proposal_opened",
        "proposal_approved",
        "proposal_executed",
        "member_joined",
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    app.assert_audit_clean().await;
}

async fn the_rule_guards_itself_and_closed_or_expired_proposals_never_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, otto, pia, carl) = co_owned(&app).await;
    let (status, _) = set_rule(&app, &rosa, json!({"required": 2, "of": ["issue"]})).await;
    assert_eq!(status, StatusCode::OK);

    // Changing the rule now takes two owners: one alone only proposes it.
    let (status, proposed) = set_rule(&app, &rosa, json!({"required": 1})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    let lower = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    // Two of three reject: it can no longer pass, and it never runs.
    let (status, view) = decide(&app, &otto, &lower, "reject").await;
    assert_eq!(
        (status, view["status"].clone()),
        (StatusCode::OK, json!("open"))
    );
    let (status, view) = decide(&app, &pia, &lower, "reject").await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "rejected");
    assert_eq!(view["rejections"], json!(["otto", "pia"]));
    let (_, rule) = app
        .get("/api/v1/businesses/bakery/approvals", Some(&pia))
        .await;
    assert_eq!(rule["required"], 2, "{rule}");
    assert_problem(
        &decide(&app, &pia, &lower, "approve").await,
        StatusCode::CONFLICT,
        "proposal_closed",
    );

    // A proposal past its time never runs.
    let (_, proposed) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "5.00"}),
        )
        .await;
    let late = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    expire(&app, &late).await;
    let (_, view) = app
        .get(&format!("/api/v1/proposals/{late}"), Some(&otto))
        .await;
    assert_eq!(view["status"], "expired", "{view}");
    let before = app.transfer_count().await;
    assert_problem(
        &decide(&app, &otto, &late, "approve").await,
        StatusCode::CONFLICT,
        "proposal_expired",
    );
    assert_eq!(app.transfer_count().await, before);
    assert_eq!(bread_of(&app, &carl).await, "50.00");

    // Refused rules say which field is wrong.
    let too_many = set_rule(&app, &rosa, json!({"required": 4, "of": ["issue"]})).await;
    assert_problem(&too_many, StatusCode::UNPROCESSABLE_ENTITY, "bad_rule");
    assert_eq!(too_many.1["field"], "required");
    let unknown = set_rule(&app, &rosa, json!({"required": 2, "of": ["everything"]})).await;
    assert_eq!(unknown.1["field"], "of", "{}", unknown.1);
    let above = set_rule(&app, &rosa, json!({"required": 2, "issue_above": "lots"})).await;
    assert_eq!(above.1["field"], "issue_above", "{}", above.1);
    app.assert_audit_clean().await;
}

/// Moves a proposal's expiry into the past, as a week's wait would.
async fn expire(app: &TestApp, id: &str) {
    let pool = app.db.pool.clone();
    let id: i64 = id.parse().expect("numeric id");
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl as _;
        let mut conn = pool.get().expect("conn");
        diesel::sql_query(format!(
            "UPDATE proposals SET expires_at_us = 1 WHERE id = {id}"
        ))
        .execute(&mut conn)
        .expect("expire");
    })
    .await
    .expect("task");
}

async fn guarded_members_limits_and_markets_wait_for_approval(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, otto, pia, _carl) = co_owned(&app).await;
    let (status, _) = set_rule(
        &app,
        &rosa,
        json!({"required": 2, "of": ["members", "limits", "markets", "policy"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Limits: proposed, unchanged until approved, then changed.
    let (status, proposed) = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"credit_limit": "2000"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    assert_eq!(proposed["proposal"]["action"], "limits");
    let (_, bread) = app.get("/api/v1/currencies/BREAD", None).await;
    assert_eq!(bread["credit_limit"], "1000.00", "{bread}");
    let id = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, done) = decide(&app, &pia, &id, "approve").await;
    assert_eq!(
        (status, done["status"].clone()),
        (StatusCode::OK, json!("executed")),
        "{done}"
    );
    let (_, bread) = app.get("/api/v1/currencies/BREAD", None).await;
    assert_eq!(bread["credit_limit"], "2000.00", "{bread}");

    // A new currency is a new credit line: it waits too.
    let (status, proposed) = app
        .post(
            "/api/v1/currencies",
            Some(&rosa),
            json!({"issuer": "bakery", "code": "CAKE", "name": "Cake money", "scale": 2, "credit_limit": "500"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    assert_eq!(
        app.get("/api/v1/currencies/CAKE", None).await.0,
        StatusCode::NOT_FOUND
    );
    let id = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, done) = decide(&app, &otto, &id, "approve").await;
    assert_eq!(done["outcome"]["code"], "CAKE", "{status} {done}");
    assert_eq!(
        app.get("/api/v1/currencies/CAKE", None).await.0,
        StatusCode::OK
    );

    // Members: removing an owner waits; the action is checked again when it runs.
    let (status, proposed) = app
        .delete("/api/v1/businesses/bakery/members/pia", Some(&rosa))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    let remove_pia = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, proposed) = app
        .delete("/api/v1/businesses/bakery/members/otto", Some(&rosa))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    let remove_otto = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, done) = decide(&app, &otto, &remove_pia, "approve").await;
    assert_eq!(
        (status, done["status"].clone()),
        (StatusCode::OK, json!("executed")),
        "{done}"
    );
    // Two owners are left and the rule needs two: removing otto now is refused, and his
    // approval is not counted (the proposal stays open).
    let refused = decide(&app, &otto, &remove_otto, "approve").await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not_enough_owners",
    );
    let (_, still) = app
        .get(&format!("/api/v1/proposals/{remove_otto}"), Some(&rosa))
        .await;
    assert_eq!(
        (still["status"].clone(), still["approvals"].clone()),
        (json!("open"), json!(["rosa"]))
    );
    // pia, no longer an owner, sees none of it.
    assert_problem(
        &app.get(&format!("/api/v1/proposals/{remove_otto}"), Some(&pia))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Leaving is never guarded.
    let wendy = app.user("wendy").await;
    let (status, proposed) = app
        .post(
            "/api/v1/businesses/bakery/members",
            Some(&rosa),
            json!({"handle": "wendy", "role": "worker"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    let invite = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, done) = decide(&app, &otto, &invite, "approve").await;
    assert_eq!(done["outcome"]["status"], "invited", "{status} {done}");
    let accepted = app
        .post(
            "/api/v1/businesses/bakery/invitations/wendy/accept",
            Some(&wendy),
            json!({}),
        )
        .await;
    assert_eq!(accepted.0, StatusCode::OK, "{}", accepted.1);
    let left = app
        .delete("/api/v1/businesses/bakery/members/wendy", Some(&wendy))
        .await;
    assert_eq!(
        (left.0, left.1["status"].clone()),
        (StatusCode::OK, json!("removed"))
    );

    // Markets: the issuer's owners open one together.
    let grocer = app.user("gus").await;
    app.shop(&grocer, "grocer", "VEG").await;
    let (status, proposed) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "BREAD", "quote": "VEG", "tick_size": "0.01", "lot_size": "1", "fee_bps": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    assert_problem(
        &app.get("/api/v1/markets/BREAD-VEG/book", None).await,
        StatusCode::NOT_FOUND,
        "unknown_market",
    );
    let id = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, done) = decide(&app, &otto, &id, "approve").await;
    assert_eq!(done["outcome"]["symbol"], "BREAD-VEG", "{status} {done}");
    let (status, market) = app.get("/api/v1/markets/BREAD-VEG/book", None).await;
    assert_eq!(status, StatusCode::OK, "{market}");
    // Owning a second, one-owner business does not take a market past the bakery's rule.
    app.business(&rosa, "rosashop").await;
    let (status, own) = app
        .post(
            "/api/v1/currencies",
            Some(&rosa),
            json!({"issuer": "rosashop", "code": "ROSA", "name": "Rosa's", "scale": 2, "credit_limit": "10"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    let (status, proposed) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "ROSA", "quote": "BREAD", "tick_size": "0.01", "lot_size": "1", "fee_bps": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    assert_eq!(proposed["proposal"]["business"], "bakery");
    app.assert_audit_clean().await;
}

async fn each_role_may_do_only_what_it_may(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, otto, _pia, _carl) = co_owned(&app).await;
    let wendy = app.user("wendy").await;
    app.add_member((&rosa, "bakery"), ("wendy", &wendy), "worker")
        .await;
    let stranger = app.user("sam").await;
    let (status, proposed) = app
        .put_json(
            "/api/v1/businesses/bakery/approvals",
            Some(&rosa),
            json!({"required": 2, "of": ["issue"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{proposed}");
    let (_, proposed) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "1.00"}),
        )
        .await;
    let id = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    let before = app.transfer_count().await;

    // (who, what, expected status, expected code): every refusal changes nothing.
    let rule = json!({"required": 1});
    for (who, token) in [("worker", &wendy), ("stranger", &stranger)] {
        let refused = if who == "worker" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        let code = if who == "worker" {
            "not_owner"
        } else {
            "not_found"
        };
        let answers = [
            (
                "set the rule",
                app.put_json(
                    "/api/v1/businesses/bakery/approvals",
                    Some(token),
                    rule.clone(),
                )
                .await,
                refused,
                code,
            ),
            (
                "list proposals",
                app.get("/api/v1/businesses/bakery/proposals", Some(token))
                    .await,
                refused,
                code,
            ),
            (
                "read the log",
                app.get("/api/v1/businesses/bakery/log", Some(token)).await,
                refused,
                code,
            ),
            (
                "see a proposal",
                app.get(&format!("/api/v1/proposals/{id}"), Some(token))
                    .await,
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                "approve",
                decide(&app, token, &id, "approve").await,
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                "reject",
                decide(&app, token, &id, "reject").await,
                StatusCode::NOT_FOUND,
                "not_found",
            ),
        ];
        for (what, answer, status, code) in answers {
            assert_eq!(answer.0, status, "a {who} may not {what}: {}", answer.1);
            assert_eq!(
                answer.1["code"], code,
                "a {who} may not {what}: {}",
                answer.1
            );
        }
        let patched = app
            .patch(
                "/api/v1/businesses/bakery/members/otto",
                Some(token),
                json!({"role": "worker"}),
            )
            .await;
        assert_eq!(
            patched.0,
            StatusCode::FORBIDDEN,
            "a {who} may not change roles: {}",
            patched.1
        );
        let pays = app
            .pay(
                token,
                json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "1.00"}),
            )
            .await;
        assert_problem(&pays, StatusCode::FORBIDDEN, "not_owner");
    }
    // Everything else a business does, refused to its worker and to a stranger alike.
    refused_everything_else(&app, &[("worker", &wendy), ("stranger", &stranger)]).await;
    assert_eq!(app.transfer_count().await, before);
    // The rule is the owners' business: a worker and a stranger see nothing of it.
    assert_eq!(
        app.get("/api/v1/businesses/bakery/approvals", Some(&wendy))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/businesses/bakery/approvals", Some(&stranger))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, view) = app
        .get(&format!("/api/v1/proposals/{id}"), Some(&otto))
        .await;
    assert_eq!(
        (view["approvals"].clone(), view["status"].clone()),
        (json!(["rosa"]), json!("open"))
    );
    assert_eq!(app.transfer_count().await, before);

    // Owners change roles with PATCH; under a rule of two owners that is a proposal (a rule
    // of more than one owner always guards members).
    let (status, demoted) = app
        .patch(
            "/api/v1/businesses/bakery/members/otto",
            Some(&rosa),
            json!({"role": "worker"}),
        )
        .await;
    assert_eq!(
        (status, demoted["proposal"]["summary"].clone()),
        (StatusCode::ACCEPTED, json!("make otto a worker of bakery")),
        "{demoted}"
    );
    let bad = app
        .patch(
            "/api/v1/businesses/bakery/members/otto",
            Some(&rosa),
            json!({"role": "boss"}),
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "bad_role");
    let nobody = app
        .patch(
            "/api/v1/businesses/bakery/members/sam",
            Some(&rosa),
            json!({"role": "worker"}),
        )
        .await;
    assert_problem(&nobody, StatusCode::NOT_FOUND, "not_found");
}

async fn a_worker_sees_the_balances_and_the_payments_received_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, _otto, _pia, carl) = co_owned(&app).await;
    let wendy = app.user("wendy").await;
    app.add_member((&rosa, "bakery"), ("wendy", &wendy), "worker")
        .await;
    let paid = app
        .pay(
            &carl,
            json!({"to": "bakery", "currency": "BREAD", "amount": "4.50", "memo": "2 loaves"}),
        )
        .await;
    assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);

    let (status, accounts) = app
        .get("/api/v1/accounts?holder=bakery", Some(&wendy))
        .await;
    assert_eq!(status, StatusCode::OK, "{accounts}");
    assert_eq!(accounts["items"][0]["balance"], "-45.50", "{accounts}");
    // The payment received, never the pay-out to carl.
    let (status, lines) = app
        .get("/api/v1/transfers?holder=bakery", Some(&wendy))
        .await;
    assert_eq!(status, StatusCode::OK, "{lines}");
    let items = lines["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{lines}");
    assert_eq!(
        (items[0]["from"].clone(), items[0]["amount"].clone()),
        (json!("carl"), json!("4.50"))
    );
    let (_, all) = app
        .get("/api/v1/transfers?holder=bakery", Some(&rosa))
        .await;
    assert_eq!(
        all["items"].as_array().map(Vec::len),
        Some(2),
        "an owner sees both: {all}"
    );
    // Nothing else of the business: its orders, its statements.
    let orders = app.get("/api/v1/orders?holder=bakery", Some(&wendy)).await;
    assert_problem(&orders, StatusCode::FORBIDDEN, "not_owner");
    let statement = app
        .get(
            "/api/v1/statements?holder=bakery&currency=BREAD",
            Some(&wendy),
        )
        .await;
    assert_eq!(statement.0, StatusCode::FORBIDDEN, "{}", statement.1);
    // And a stranger not even that.
    let sam = app.user("sam").await;
    let refused = app.get("/api/v1/accounts?holder=bakery", Some(&sam)).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "not_owner");
}

async fn a_frozen_account_neither_pays_nor_trades_and_its_orders_are_cancelled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, _otto, _pia, carl) = co_owned(&app).await;
    let (status, token) = app
        .post(
            "/api/v1/currencies",
            Some(&rosa),
            json!({"issuer": "bakery", "code": "TOKN", "name": "Bakery tokens", "scale": 2, "credit_limit": "1000", "freezable": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let paid = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "TOKN", "amount": "100.00"}),
        )
        .await;
    assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);
    let (status, market) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "TOKN", "quote": "BREAD", "tick_size": "0.01", "lot_size": "1", "fee_bps": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{market}");
    let order = |side: &str, price: &str| json!({"market": "TOKN-BREAD", "side": side, "type": "limit", "price": price, "quantity": "10"});
    let (status, resting) = app
        .post("/api/v1/orders", Some(&carl), order("sell", "2.00"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resting}");
    let resting_id = resting["id"].as_str().expect("id").to_owned();

    // Only a freezable currency, only its stewards.
    let not_freezable = app
        .post(
            "/api/v1/currencies/BREAD/freeze",
            Some(&rosa),
            json!({"holder": "carl"}),
        )
        .await;
    assert_problem(
        &not_freezable,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not_freezable",
    );
    let by_holder = app
        .post(
            "/api/v1/currencies/TOKN/freeze",
            Some(&carl),
            json!({"holder": "carl"}),
        )
        .await;
    assert_problem(&by_holder, StatusCode::FORBIDDEN, "not_owner");

    let (status, frozen) = app
        .post(
            "/api/v1/currencies/TOKN/freeze",
            Some(&rosa),
            json!({"holder": "carl"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{frozen}");
    assert_eq!(
        frozen,
        json!({"currency": "TOKN", "holder": "carl", "frozen": true})
    );
    // The resting order is cancelled, its hold released.
    let mut view = Value::Null;
    for _ in 0..100 {
        view = app
            .get(&format!("/api/v1/orders/{resting_id}"), Some(&carl))
            .await
            .1;
        if view["status"] == "cancelled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        (view["status"].clone(), view["reason"].clone()),
        (json!("cancelled"), json!("frozen")),
        "{view}"
    );
    let (_, accounts) = app.get("/api/v1/accounts", Some(&carl)).await;
    let tokn = accounts["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["currency"] == "TOKN"))
        .cloned()
        .expect("TOKN account");
    assert_eq!(
        (tokn["frozen"].clone(), tokn["held"].clone()),
        (json!(true), json!("0.00")),
        "{tokn}"
    );

    // Neither pays nor trades in it, either side of the book; may still be paid.
    let before = app.transfer_count().await;
    let pays = app
        .pay(
            &carl,
            json!({"to": "rosa", "currency": "TOKN", "amount": "1.00"}),
        )
        .await;
    assert_problem(&pays, StatusCode::UNPROCESSABLE_ENTITY, "account_frozen");
    let sells = app
        .post("/api/v1/orders", Some(&carl), order("sell", "2.00"))
        .await;
    assert_problem(&sells, StatusCode::UNPROCESSABLE_ENTITY, "account_frozen");
    let buys = app
        .post("/api/v1/orders", Some(&carl), order("buy", "1.00"))
        .await;
    assert_problem(&buys, StatusCode::UNPROCESSABLE_ENTITY, "account_frozen");
    assert_eq!(app.transfer_count().await, before);
    let paid = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "TOKN", "amount": "1.00"}),
        )
        .await;
    assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);

    let (status, thawed) = app
        .post(
            "/api/v1/currencies/TOKN/unfreeze",
            Some(&rosa),
            json!({"holder": "carl"}),
        )
        .await;
    assert_eq!(
        (status, thawed["frozen"].clone()),
        (StatusCode::OK, json!(false))
    );
    let pays = app
        .pay(
            &carl,
            json!({"to": "rosa", "currency": "TOKN", "amount": "1.00"}),
        )
        .await;
    assert_eq!(pays.0, StatusCode::CREATED, "{}", pays.1);
    let (_, log) = app.get("/api/v1/businesses/bakery/log", Some(&rosa)).await;
    assert!(
        log.to_string().contains("froze the TOKN account of carl"),
        "{log}"
    );

    // A maker frozen without the books hearing of it (the announcement lost): the first taker
    // that reaches its order has it cancelled instead of being refused itself.
    let (status, resting) = app
        .post("/api/v1/orders", Some(&carl), order("sell", "2.00"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resting}");
    let pool = app.db.pool.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl as _;
        let mut conn = pool.get().expect("conn");
        diesel::sql_query(
            "UPDATE accounts SET frozen = 1 WHERE principal_id = \
             (SELECT id FROM principals WHERE handle = 'carl') AND currency_id = \
             (SELECT id FROM currencies WHERE code = 'TOKN')",
        )
        .execute(&mut conn)
        .expect("freeze behind the books' back");
    })
    .await
    .expect("task");
    let taker = app.user("tia").await;
    let funded = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "tia", "currency": "BREAD", "amount": "50.00"}),
        )
        .await;
    assert_eq!(funded.0, StatusCode::CREATED, "{}", funded.1);
    let (status, bought) = app
        .post("/api/v1/orders", Some(&taker), order("buy", "2.00"))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the taker is not refused: {bought}"
    );
    assert_eq!(bought["filled"], "0.00", "{bought}");
    let (_, maker) = app
        .get(
            &format!("/api/v1/orders/{}", resting["id"].as_str().expect("id")),
            Some(&carl),
        )
        .await;
    assert_eq!(
        (maker["status"].clone(), maker["reason"].clone()),
        (json!("cancelled"), json!("frozen")),
        "{maker}"
    );
    app.assert_audit_clean().await;
}

async fn admission_by_the_stewards_and_a_directory_anyone_can_check(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, otto, _pia, carl) = co_owned(&app).await;
    let dana = app.user("dana").await;
    let (status, club) = app
        .post(
            "/api/v1/currencies",
            Some(&rosa),
            json!({"issuer": "bakery", "code": "CLUB", "name": "Bakery club", "scale": 2, "credit_limit": "100", "requires_admission": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{club}");

    let (status, applied) = app
        .post(
            "/api/v1/currencies/CLUB/applications",
            Some(&carl),
            json!({"message": "regular since 2019"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{applied}");
    assert_eq!(
        (applied["status"].clone(), applied["applicant"].clone()),
        (json!("pending"), json!("carl"))
    );
    let again = app
        .post(
            "/api/v1/currencies/CLUB/applications",
            Some(&carl),
            json!({}),
        )
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "already_applied");
    let open = app
        .post(
            "/api/v1/currencies/BREAD/applications",
            Some(&carl),
            json!({}),
        )
        .await;
    assert_problem(
        &open,
        StatusCode::UNPROCESSABLE_ENTITY,
        "admission_not_required",
    );
    let nosy = app
        .get("/api/v1/currencies/CLUB/applications", Some(&carl))
        .await;
    assert_problem(&nosy, StatusCode::FORBIDDEN, "not_owner");
    let self_admit = app
        .post(
            &format!(
                "/api/v1/currencies/CLUB/applications/{}/admit",
                applied["id"].as_str().expect("id")
            ),
            Some(&carl),
            json!({}),
        )
        .await;
    assert_problem(&self_admit, StatusCode::FORBIDDEN, "not_owner");

    // A steward admits carl alone (no rule yet); then members take two owners.
    let carl_app = applied["id"].as_str().expect("id").to_owned();
    let (status, admitted) = app
        .post(
            &format!("/api/v1/currencies/CLUB/applications/{carl_app}/admit"),
            Some(&rosa),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, admitted["status"].clone()),
        (StatusCode::OK, json!("admitted")),
        "{admitted}"
    );
    let twice = app
        .post(
            &format!("/api/v1/currencies/CLUB/applications/{carl_app}/decline"),
            Some(&rosa),
            json!({}),
        )
        .await;
    assert_problem(&twice, StatusCode::CONFLICT, "application_decided");
    let (status, _) = set_rule(&app, &rosa, json!({"required": 2, "of": ["members"]})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, dana_app) = app
        .post(
            "/api/v1/currencies/CLUB/applications",
            Some(&dana),
            json!({}),
        )
        .await;
    let dana_id = dana_app["id"].as_str().expect("id").to_owned();
    let (status, proposed) = app
        .post(
            &format!("/api/v1/currencies/CLUB/applications/{dana_id}/admit"),
            Some(&rosa),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    assert_eq!(proposed["proposal"]["summary"], "admit dana to CLUB");
    let (_, directory) = app.get("/api/v1/currencies/CLUB/directory", None).await;
    assert_eq!(directory["members"], 1, "dana waits: {directory}");
    let id = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, done) = decide(&app, &otto, &id, "approve").await;
    assert_eq!(done["outcome"]["status"], "admitted", "{status} {done}");

    // The directory is public; every member's proof checks against its root, a forged one
    // does not, and a stranger has none.
    let (status, directory) = app.get("/api/v1/currencies/CLUB/directory", None).await;
    assert_eq!(
        (status, directory["members"].clone()),
        (StatusCode::OK, json!(2)),
        "{directory}"
    );
    let root = directory["root"].as_str().expect("root").to_owned();
    for member in ["carl", "dana"] {
        let (status, proof) = app
            .get(
                &format!("/api/v1/currencies/CLUB/directory/proof?member={member}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        assert_eq!(proof["member"], format!("{member}@local"));
        let path: Vec<(&str, &str)> = proof["path"]
            .as_array()
            .expect("path")
            .iter()
            .map(|s| {
                (
                    s["side"].as_str().unwrap_or(""),
                    s["hash"].as_str().unwrap_or(""),
                )
            })
            .collect();
        let checks = |who: &str, root: &str| {
            scrip_governance::directory::check(("CLUB", who), &path, root).expect("well formed")
        };
        assert!(
            checks(&format!("{member}@local"), &root),
            "{member}'s proof"
        );
        assert!(!checks("mallory@local", &root), "a forged member");
        let mut other_root = root.clone().into_bytes();
        other_root[0] = if other_root[0] == b'0' { b'1' } else { b'0' };
        assert!(!checks(
            &format!("{member}@local"),
            &String::from_utf8(other_root).expect("hex")
        ));
    }
    let stranger = app
        .get("/api/v1/currencies/CLUB/directory/proof?member=pia", None)
        .await;
    assert_problem(&stranger, StatusCode::NOT_FOUND, "not_a_member");
    // Admitted means may hold it: carl can now be paid CLUB.
    let paid = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "CLUB", "amount": "5.00"}),
        )
        .await;
    assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);
    app.assert_audit_clean().await;
}

/// Each of the business's actions asked by each of `who`: every one refused (403
/// `not_owner`, or 404 where the caller may not even see it), nothing changed.
async fn refused_everything_else(app: &TestApp, who: &[(&str, &String)]) {
    let gus = app.user("gus").await;
    app.shop(&gus, "grocer", "VEG").await;
    let steward_only = [
        (
            "PATCH",
            "/api/v1/currencies/BREAD",
            json!({"credit_limit": "5000"}),
        ),
        (
            "POST",
            "/api/v1/currencies",
            json!({"issuer": "bakery", "code": "WORK", "name": "Worker money", "scale": 2, "credit_limit": "10"}),
        ),
        (
            "POST",
            "/api/v1/markets",
            json!({"base": "BREAD", "quote": "VEG", "tick_size": "0.01", "lot_size": "1", "fee_bps": 0}),
        ),
        (
            "POST",
            "/api/v1/currencies/BREAD/freeze",
            json!({"holder": "carl"}),
        ),
        (
            "POST",
            "/api/v1/businesses/bakery/members",
            json!({"handle": "sam", "role": "owner"}),
        ),
        (
            "DELETE",
            "/api/v1/businesses/bakery/members/otto",
            json!({}),
        ),
        ("PUT", "/api/v1/currencies/BREAD/members/sam", json!({})),
        (
            "POST",
            "/api/v1/transfers",
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "1.00"}),
        ),
        (
            "POST",
            "/api/v1/payments",
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "1.00"}),
        ),
        ("GET", "/api/v1/businesses/bakery/members", json!({})),
        ("GET", "/api/v1/orders?holder=bakery", json!({})),
        (
            "GET",
            "/api/v1/statements?holder=bakery&currency=BREAD",
            json!({}),
        ),
    ];
    for (role, token) in who {
        for (method, path, body) in &steward_only {
            let (status, answer) = match *method {
                "GET" => app.get(path, Some(token)).await,
                "DELETE" => app.delete(path, Some(token)).await,
                "PATCH" => app.patch(path, Some(token), body.clone()).await,
                "PUT" => app.put_json(path, Some(token), body.clone()).await,
                _ => app.post(path, Some(token), body.clone()).await,
            };
            assert!(
                status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
                "a {role} may not {method} {path}: {status} {answer}"
            );
        }
    }
    let (_, bread) = app.get("/api/v1/currencies/BREAD", None).await;
    assert_eq!(bread["credit_limit"], "1000.00", "{bread}");
    assert_eq!(
        app.get("/api/v1/currencies/WORK", None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, markets) = app.get("/api/v1/markets", None).await;
    assert_eq!(markets["items"], json!([]), "{markets}");
}

async fn one_owner_alone_cannot_issue_or_admit_by_another_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, otto, _pia, carl) = co_owned(&app).await;
    let gus = app.user("gus").await;
    app.shop(&gus, "grocer", "VEG").await;
    let (status, market) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "BREAD", "quote": "VEG", "tick_size": "0.01", "lot_size": "1", "fee_bps": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{market}");
    // An owner invitation sent before the rule would add an owner without the others.
    let sam = app.user("sam").await;
    let (status, invited) = app
        .post(
            "/api/v1/businesses/bakery/members",
            Some(&rosa),
            json!({"handle": "sam", "role": "owner"}),
        )
        .await;
    assert_eq!(
        (status, invited["status"].clone()),
        (StatusCode::CREATED, json!("invited"))
    );
    let (status, _) = set_rule(&app, &rosa, json!({"required": 2, "of": ["issue"]})).await;
    assert_eq!(status, StatusCode::OK);
    let late = app
        .post(
            "/api/v1/businesses/bakery/invitations/sam/accept",
            Some(&sam),
            json!({}),
        )
        .await;
    assert_eq!(
        late.0,
        StatusCode::NOT_FOUND,
        "withdrawn by the rule: {}",
        late.1
    );
    let before = app.transfer_count().await;

    // Selling the business's own currency on the exchange issues it: refused.
    let sell = app
        .post(
            "/api/v1/orders",
            Some(&rosa),
            json!({"holder": "bakery", "market": "BREAD-VEG", "side": "sell", "type": "limit", "price": "1.00", "quantity": "500"}),
        )
        .await;
    assert_problem(&sell, StatusCode::FORBIDDEN, "needs_approval");
    // So is converting it to pay in another currency.
    let convert = app
        .post(
            "/api/v1/payments",
            Some(&rosa),
            json!({"from": "bakery", "to": "gus", "currency": "VEG", "amount": "1.00", "pay_with": ["BREAD"]}),
        )
        .await;
    assert_problem(&convert, StatusCode::FORBIDDEN, "needs_approval");
    // And paying a request of one's own from its page; through /payments it is a proposal.
    let (status, request) = app
        .post(
            "/api/v1/payment-requests",
            Some(&carl),
            json!({"to": "carl", "currency": "BREAD", "amount": "900.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let id = request["id"].as_str().expect("id").to_owned();
    let direct = app
        .post(
            &format!("/api/v1/payment-requests/{id}/pay"),
            Some(&rosa),
            json!({"from": "bakery"}),
        )
        .await;
    assert_problem(&direct, StatusCode::FORBIDDEN, "needs_approval");
    assert_eq!(app.transfer_count().await, before);
    let (status, proposed) = app
        .post(
            "/api/v1/payments",
            Some(&rosa),
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "900.00", "request_id": id}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{proposed}");
    let proposal = proposed["proposal"]["id"].as_str().expect("id").to_owned();
    // Made stricter meanwhile (3 of 3), the rule applies to the open proposal too.
    let (status, stricter) = set_rule(&app, &rosa, json!({"required": 3, "of": ["issue"]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{stricter}");
    let rule_change = stricter["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, done) = decide(&app, &otto, &rule_change, "approve").await;
    assert_eq!(
        (status, done["status"].clone()),
        (StatusCode::OK, json!("executed")),
        "{done}"
    );
    let (status, waiting) = decide(&app, &otto, &proposal, "approve").await;
    assert_eq!(
        (status, waiting["status"].clone()),
        (StatusCode::OK, json!("open")),
        "needs pia too: {waiting}"
    );
    let pia = app.login("pia", "correct horse battery").await;
    let (status, paid) = decide(&app, &pia, &proposal, "approve").await;
    assert_eq!(
        (status, paid["status"].clone()),
        (StatusCode::OK, json!("executed")),
        "{paid}"
    );
    // The approved payment paid the request, once.
    let (_, seen) = app
        .get(&format!("/api/v1/payment-requests/{id}"), Some(&carl))
        .await;
    assert_eq!(seen["status"], "paid", "{seen}");
    assert_eq!(app.transfer_count().await, before + 1);
    app.assert_audit_clean().await;
}
