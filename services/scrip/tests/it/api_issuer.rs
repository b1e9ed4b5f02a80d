//! A shop owner opens a business, creates its currency, manages members and limits.

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    a_shop_owner_creates_a_business_and_its_currency,
    only_owners_govern_a_business,
    two_owners_demoting_each_other_at_once_leave_one_owner,
    membership_needs_the_persons_consent,
    a_business_lists_its_holders_largest_first,
);

async fn a_shop_owner_creates_a_business_and_its_currency(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    let (status, business) = app
        .post(
            "/api/v1/businesses",
            Some(&rosa),
            json!({"handle": "bakery", "name": "Rosa's Bakery"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{business}");
    assert_eq!(business["owners"], json!(["rosa"]));
    assert_eq!(business["address"], "bakery@local");
    assert_eq!(business["name"], "Rosa's Bakery");
    let taken = app
        .post(
            "/api/v1/businesses",
            Some(&rosa),
            json!({"handle": "rosa", "name": "Taken"}),
        )
        .await;
    assert_problem(&taken, StatusCode::CONFLICT, "handle_taken");

    let (status, currency) = app
        .post(
            "/api/v1/currencies",
            Some(&rosa),
            json!({"issuer": "bakery", "code": "BREAD", "name": "Bread money", "scale": 2,
                   "credit_limit": "500", "max_balance": "100.00", "par": "0.5"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{currency}");
    assert_eq!(
        currency,
        json!({"code": "BREAD", "name": "Bread money", "issuer": "bakery", "scale": 2,
               "credit_limit": "500.00", "max_balance": "100.00", "unit": "EUR", "par": "0.5",
               "outstanding": "0.00", "holders": 0, "created_at": currency["created_at"],
               "kind": "issuer_credit", "max_payment": null, "transfer_fee": null, "joining_fee": null,
               "demurrage": null, "requires_admission": false, "freezable": false, "sealed": []})
    );
    let again = app
        .post("/api/v1/currencies", Some(&rosa), json!({"issuer": "bakery", "code": "BREAD", "name": "x", "scale": 2, "credit_limit": "1"}))
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "code_taken");
    let too_high = app
        .post("/api/v1/currencies", Some(&rosa), json!({"issuer": "bakery", "code": "CAKE", "name": "x", "scale": 0, "credit_limit": "1000001"}))
        .await;
    assert_problem(
        &too_high,
        StatusCode::UNPROCESSABLE_ENTITY,
        "credit_limit_too_high",
    );
    for (field, value, code) in [
        ("scale", json!(9), "bad_scale"),
        ("code", json!("cake"), "bad_currency_code"),
        ("credit_limit", json!("-5"), "bad_amount"),
        ("credit_limit", json!("1.001"), "bad_amount"),
        ("par", json!("0"), "bad_par"),
    ] {
        let mut body = json!({"issuer": "bakery", "code": "CAKE", "name": "Cake", "scale": 2, "credit_limit": "10"});
        body[field] = value;
        let refused = app.post("/api/v1/currencies", Some(&rosa), body).await;
        assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, code);
    }

    // Issue to a customer; the public view shows what the bakery owes and to how many.
    let carl = app.user("carl").await;
    let (status, _) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "60"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, view) = app.get("/api/v1/currencies/BREAD", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (view["outstanding"].as_str(), view["holders"].as_i64()),
        (Some("60.00"), Some(1))
    );
    let (_, profile) = app.get("/api/v1/businesses/bakery@local", None).await;
    assert_eq!(profile["currencies"][0]["code"], "BREAD");
    assert_eq!(profile["owners"], json!(["rosa"]));
    let (_, list) = app.get("/api/v1/currencies?limit=1", None).await;
    assert_eq!(list["items"][0]["code"], "BREAD");
    assert_eq!(list["next_cursor"], json!(null));
    // A list shows each currency's own figures (computed for the whole page at once), the
    // same as its single view.
    let gus = app.user("gus").await;
    app.shop(&gus, "cakes", "CAKE").await;
    for (to, amount) in [("carl", "5"), ("rosa", "7")] {
        let (status, body) = app
            .pay(
                &gus,
                json!({"from": "cakes", "to": to, "currency": "CAKE", "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let listed = app.all_pages("/api/v1/currencies", None, 50).await;
    let figures: Vec<(Value, Value, Value, Value)> = listed
        .iter()
        .map(|c| {
            (
                c["code"].clone(),
                c["issuer"].clone(),
                c["outstanding"].clone(),
                c["holders"].clone(),
            )
        })
        .collect();
    assert_eq!(
        figures,
        [
            (json!("CAKE"), json!("cakes"), json!("12.00"), json!(2)),
            (json!("BREAD"), json!("bakery"), json!("60.00"), json!(1)),
        ]
    );
    for item in &listed {
        let code = item["code"].as_str().expect("code");
        let (_, single) = app.get(&format!("/api/v1/currencies/{code}"), None).await;
        assert_eq!(&single, item);
    }

    // Limits: lowering under what is issued or held is refused, raising and removing work.
    let below = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"credit_limit": "59.99"}),
        )
        .await;
    assert_problem(
        &below,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_below_position",
    );
    let under_holder = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"max_balance": "59"}),
        )
        .await;
    assert_problem(
        &under_holder,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_below_position",
    );
    let (status, patched) = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"credit_limit": "800", "max_balance": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (patched["credit_limit"].as_str(), &patched["max_balance"]),
        (Some("800.00"), &json!(null))
    );
    let (status, accounts) = app.get("/api/v1/accounts?holder=bakery", Some(&rosa)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        accounts["items"],
        json!([{"currency": "BREAD", "balance": "-60.00", "held": "0.00", "available": "740.00", "floor": "-800.00", "ceiling": null}])
    );
    let _ = carl;
    app.assert_audit_clean().await;
}

async fn only_owners_govern_a_business(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    let walt = app.user("walt").await;
    let eve = app.user("eve").await;
    app.shop(&rosa, "bakery", "BREAD").await;

    // A stranger cannot add members, issue a currency for the shop, change its limits or pay for it.
    let members = app
        .post(
            "/api/v1/businesses/bakery/members",
            Some(&eve),
            json!({"handle": "eve", "role": "owner"}),
        )
        .await;
    assert_problem(&members, StatusCode::FORBIDDEN, "not_owner");
    let issue = app
        .post("/api/v1/currencies", Some(&eve), json!({"issuer": "bakery", "code": "FAKE", "name": "x", "scale": 0, "credit_limit": "10"}))
        .await;
    assert_problem(&issue, StatusCode::FORBIDDEN, "not_owner");
    let raise = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&eve),
            json!({"credit_limit": "5000"}),
        )
        .await;
    assert_problem(&raise, StatusCode::FORBIDDEN, "not_owner");
    let pay = app
        .pay(
            &eve,
            json!({"from": "bakery", "to": "eve", "currency": "BREAD", "amount": "1"}),
        )
        .await;
    assert_problem(&pay, StatusCode::FORBIDDEN, "not_owner");
    let peek = app.get("/api/v1/accounts?holder=bakery", Some(&eve)).await;
    assert_problem(&peek, StatusCode::FORBIDDEN, "not_owner");

    // A worker belongs to the business but is not an owner; it becomes one by accepting.
    let (status, member) = app
        .post(
            "/api/v1/businesses/bakery/members",
            Some(&rosa),
            json!({"handle": "walt@local", "role": "worker"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(
        member,
        json!({"business": "bakery", "handle": "walt", "role": "worker", "status": "invited", "invited_by": "rosa"})
    );
    let (_, me) = app.get("/api/v1/me", Some(&walt)).await;
    assert_eq!(me["businesses"], json!([]), "not a member before accepting");
    assert_eq!(me["invitations"][0]["handle"], "bakery");
    assert_eq!(me["invitations"][0]["role"], "worker");
    let accept = "/api/v1/businesses/bakery/invitations/walt/accept";
    assert_problem(
        &app.post(accept, Some(&eve), json!({})).await,
        StatusCode::FORBIDDEN,
        "not_invited",
    );
    let (status, accepted) = app.post(accept, Some(&walt), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["status"], "active");
    assert_problem(
        &app.post(accept, Some(&walt), json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (_, me) = app.get("/api/v1/me", Some(&walt)).await;
    assert_eq!(me["invitations"], json!([]));
    assert_eq!(
        me["businesses"],
        json!([{"handle": "bakery", "role": "worker"}])
    );
    let worker_pays = app
        .pay(
            &walt,
            json!({"from": "bakery", "to": "walt", "currency": "BREAD", "amount": "1"}),
        )
        .await;
    assert_problem(&worker_pays, StatusCode::FORBIDDEN, "not_owner");
    let worker_raises = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&walt),
            json!({"credit_limit": "5000"}),
        )
        .await;
    assert_problem(&worker_raises, StatusCode::FORBIDDEN, "not_owner");
    let worker_adds = app
        .post(
            "/api/v1/businesses/bakery/members",
            Some(&walt),
            json!({"handle": "eve", "role": "owner"}),
        )
        .await;
    assert_problem(&worker_adds, StatusCode::FORBIDDEN, "not_owner");

    // The only owner cannot step down: the business would be frozen for good.
    let abdicate = app
        .post(
            "/api/v1/businesses/bakery/members",
            Some(&rosa),
            json!({"handle": "rosa", "role": "worker"}),
        )
        .await;
    assert_problem(&abdicate, StatusCode::UNPROCESSABLE_ENTITY, "last_owner");

    // Promoted to owner (which walt accepts: an owner is a partner), the same requests go
    // through.
    let (status, promoted) = app
        .post(
            "/api/v1/businesses/bakery/members",
            Some(&rosa),
            json!({"handle": "walt", "role": "owner"}),
        )
        .await;
    assert_eq!(
        (status, promoted["status"].as_str()),
        (StatusCode::CREATED, Some("invited")),
        "{promoted}"
    );
    let (_, me) = app.get("/api/v1/me", Some(&walt)).await;
    assert_eq!(
        me["businesses"],
        json!([{"handle": "bakery", "role": "worker"}]),
        "a worker until accepting"
    );
    let (status, _) = app.post(accept, Some(&walt), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .pay(
            &walt,
            json!({"from": "bakery", "to": "walt", "currency": "BREAD", "amount": "1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, profile) = app.get("/api/v1/businesses/bakery", None).await;
    assert_eq!(profile["owners"], json!(["rosa", "walt"]));

    let unknown_member = app
        .post(
            "/api/v1/businesses/bakery/members",
            Some(&rosa),
            json!({"handle": "ghost", "role": "worker"}),
        )
        .await;
    assert_problem(&unknown_member, StatusCode::NOT_FOUND, "unknown_account");
    let bad_role = app
        .post(
            "/api/v1/businesses/bakery/members",
            Some(&rosa),
            json!({"handle": "eve", "role": "king"}),
        )
        .await;
    assert_problem(&bad_role, StatusCode::UNPROCESSABLE_ENTITY, "bad_role");
    let no_business = app.get("/api/v1/businesses/nowhere", None).await;
    assert_problem(&no_business, StatusCode::NOT_FOUND, "not_found");
    let user_is_not_business = app.get("/api/v1/businesses/eve", None).await;
    assert_problem(&user_is_not_business, StatusCode::NOT_FOUND, "not_found");
    let no_currency = app.get("/api/v1/currencies/NOPE", None).await;
    assert_problem(&no_currency, StatusCode::NOT_FOUND, "not_found");
}

async fn set_role(app: &TestApp, by: &str, who: &str, role: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/businesses/bakery/members",
        Some(by),
        json!({"handle": who, "role": role}),
    )
    .await
}

/// Two owners demote each other at the same moment, round after round: one wins, the other
/// is refused (it is no longer an owner), and the business always keeps an owner.
async fn two_owners_demoting_each_other_at_once_leave_one_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    let otto = app.user("otto").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.add_member((&rosa, "bakery"), ("otto", &otto), "owner")
        .await;
    for round in 0..10 {
        let (a, b) = tokio::join!(
            set_role(&app, &rosa, "otto", "worker"),
            set_role(&app, &otto, "rosa", "worker")
        );
        let rosa_won = a.0 == StatusCode::CREATED;
        let otto_won = b.0 == StatusCode::CREATED;
        assert!(rosa_won != otto_won, "round {round}: {a:?} {b:?}");
        let (owner, other) = if rosa_won {
            (&rosa, "otto")
        } else {
            (&otto, "rosa")
        };
        let (status, list) = app
            .get("/api/v1/businesses/bakery/members", Some(owner))
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let owners = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|m| m["role"] == "owner")
            .count();
        assert_eq!(owners, 1, "round {round}: {list}");
        let (status, body) = set_role(&app, owner, other, "owner").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let other_token = if rosa_won { &otto } else { &rosa };
        let accept = format!("/api/v1/businesses/bakery/invitations/{other}/accept");
        let (status, body) = app.post(&accept, Some(other_token), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// A business cannot name anyone its partner without their consent: an invitation changes
/// nothing the public sees until it is accepted; the person may decline, an owner withdraw;
/// members leave or are removed, and the last owner stays.
async fn membership_needs_the_persons_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    let otto = app.user("otto").await;
    let walt = app.user("walt").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let (status, invited) = set_role(&app, &rosa, "otto", "owner").await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    assert_eq!(invited["status"], "invited");
    let (_, profile) = app.get("/api/v1/businesses/bakery", None).await;
    assert_eq!(
        profile["owners"],
        json!(["rosa"]),
        "not a partner before accepting"
    );
    let (_, list) = app
        .get("/api/v1/businesses/bakery/members", Some(&rosa))
        .await;
    assert_eq!(
        list["items"][1],
        json!({"business": "bakery", "handle": "otto", "role": "owner", "status": "invited", "invited_by": "rosa"})
    );
    // Not yet a member: otto cannot act for the business.
    let pay = app
        .pay(
            &otto,
            json!({"from": "bakery", "to": "otto", "currency": "BREAD", "amount": "1"}),
        )
        .await;
    assert_problem(&pay, StatusCode::FORBIDDEN, "not_owner");
    // otto declines; the invitation is gone.
    let (status, declined) = app
        .delete("/api/v1/businesses/bakery/invitations/otto", Some(&otto))
        .await;
    assert_eq!(
        (status, declined["status"].as_str()),
        (StatusCode::OK, Some("withdrawn")),
        "{declined}"
    );
    assert_problem(
        &app.post(
            "/api/v1/businesses/bakery/invitations/otto/accept",
            Some(&otto),
            json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // An owner withdraws an invitation; a stranger can do neither.
    set_role(&app, &rosa, "walt", "worker").await;
    assert_problem(
        &app.delete("/api/v1/businesses/bakery/invitations/walt", Some(&otto))
            .await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    let (status, _) = app
        .delete("/api/v1/businesses/bakery/invitations/walt", Some(&rosa))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, me) = app.get("/api/v1/me", Some(&walt)).await;
    assert_eq!(me["invitations"], json!([]));
    // Members leave, or are removed; the last owner cannot leave.
    app.add_member((&rosa, "bakery"), ("walt", &walt), "worker")
        .await;
    // A withdrawal that comes after the acceptance (a stale page) removes nobody.
    assert_problem(
        &app.delete("/api/v1/businesses/bakery/invitations/walt", Some(&rosa))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    app.add_member((&rosa, "bakery"), ("otto", &otto), "owner")
        .await;
    let (_, profile) = app.get("/api/v1/businesses/bakery", None).await;
    assert_eq!(profile["owners"], json!(["otto", "rosa"]));
    let (status, left) = app
        .delete("/api/v1/businesses/bakery/members/walt", Some(&walt))
        .await;
    assert_eq!(
        (status, left["status"].as_str()),
        (StatusCode::OK, Some("removed")),
        "{left}"
    );
    let (status, _) = app
        .delete("/api/v1/businesses/bakery/members/otto", Some(&rosa))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_problem(
        &app.delete("/api/v1/businesses/bakery/members/rosa", Some(&rosa))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "last_owner",
    );
    assert_problem(
        &app.delete("/api/v1/businesses/bakery/members/walt", Some(&rosa))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (_, me) = app.get("/api/v1/me", Some(&otto)).await;
    assert_eq!(me["businesses"], json!([]));
}

async fn a_business_lists_its_holders_largest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    let wendy = app.user("wendy").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.add_member((&rosa, "bakery"), ("wendy", &wendy), "worker")
        .await;
    let amounts = ["5.00", "30.00", "12.50", "30.00", "1.00"];
    for (n, amount) in amounts.iter().enumerate() {
        let handle = format!("cust{n}");
        app.user(&handle).await;
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": "bakery", "to": handle, "currency": "BREAD", "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Two at a time through the cursors: every holder once, largest first, ties by age.
    let holders = app
        .all_pages("/api/v1/currencies/BREAD/holders", Some(&rosa), 2)
        .await;
    let listed: Vec<(&str, &str)> = holders
        .iter()
        .map(|h| {
            (
                h["holder"].as_str().unwrap_or(""),
                h["balance"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("cust1", "30.00"),
            ("cust3", "30.00"),
            ("cust2", "12.50"),
            ("cust0", "5.00"),
            ("cust4", "1.00")
        ],
        "the issuer's own account is not a holder"
    );
    // Customers are the business's to see: not its worker's, not a stranger's.
    let stranger = app.user("dana").await;
    for token in [&wendy, &stranger] {
        let answer = app
            .get("/api/v1/currencies/BREAD/holders", Some(token))
            .await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "not_owner");
    }
    assert_problem(
        &app.get("/api/v1/currencies/BREAD/holders?cursor=x", Some(&rosa))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_cursor",
    );
    assert_problem(
        &app.get("/api/v1/currencies/NOPE/holders", Some(&rosa))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}
