//! The marketplace (issue 22): listings found by a real full-text index, deals paid fixed or
//! after the service (converted through the books where the buyer holds another currency),
//! paid once, and feedback that makes a public reputation; on both backends.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    listings_are_found_by_their_words_ranked_and_paged,
    listings_are_checked_and_only_their_holder_changes_them,
    deals_pay_fixed_at_once_or_after_at_what_the_buyer_judges,
    a_deal_is_paid_once_under_ten_concurrent_payers,
    a_fixed_deal_converts_what_the_buyer_holds,
    feedback_is_once_per_party_of_a_paid_deal_and_makes_a_reputation,
    new_coinage_pays_half_of_a_newcomers_purchases_within_the_allowance,
    a_retried_deal_with_its_idempotency_key_is_made_and_paid_once,
);

/// A bakery (rosa) with BREAD; carl holds 50.00 BREAD; gus is a gardener.
async fn village(app: &TestApp) -> (String, String, String) {
    let rosa = app.user("rosa").await;
    let carl = app.user("carl").await;
    let gus = app.user("gus").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let (status, body) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "50.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (rosa, carl, gus)
}

async fn list(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, listing) = app.post("/api/v1/listings", Some(token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{listing}");
    listing
}

async fn titles(app: &TestApp, query: &str) -> Vec<String> {
    let (status, page) = app.get(&format!("/api/v1/listings?{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn balance(app: &TestApp, token: &str, holder: Option<&str>, code: &str) -> String {
    app.balances(token, holder)
        .await
        .into_iter()
        .find(|(c, _, _)| c == code)
        .map_or_else(|| "none".into(), |(_, balance, _)| balance)
}

async fn listings_are_found_by_their_words_ranked_and_paged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, carl, gus) = village(&app).await;
    let loaf = list(
        &app,
        &rosa,
        json!({"holder": "bakery", "kind": "offer", "title": "Sourdough bread loaf",
               "description": "We bake it every morning.", "price": {"amount": "4.50", "currency": "BREAD"},
               "category": "Food", "place": "High Street"}),
    )
    .await;
    assert_eq!(loaf["holder"], "bakery");
    assert_eq!(
        loaf["category"], "food",
        "categories are searched in lower case"
    );
    assert_eq!(loaf["accepts"], json!(["BREAD"]));
    assert_eq!(
        loaf["price"],
        json!({"amount": "4.50", "currency": "BREAD"})
    );
    list(
        &app,
        &gus,
        json!({"kind": "offer", "title": "Garden help", "description": "Weeding, mowing and baking advice", "category": "garden"}),
    )
    .await;
    let want = list(
        &app,
        &carl,
        json!({"kind": "want", "title": "Need sourdough starter", "accepts": ["BREAD"]}),
    )
    .await;

    // Words of the title and the description, stemmed, the last one as a prefix.
    assert_eq!(titles(&app, "q=sourdough").await.len(), 2);
    assert_eq!(
        titles(&app, "q=sourdo").await.len(),
        2,
        "the last word is a prefix"
    );
    assert_eq!(
        titles(&app, "q=baking").await,
        ["Garden help", "Sourdough bread loaf"],
        "stemmed: baking finds bake; the word in a title ranks no higher than in a description here"
    );
    assert_eq!(
        titles(&app, "q=sourdough&kind=want").await,
        ["Need sourdough starter"]
    );
    assert_eq!(
        titles(&app, "q=bread%20morning").await,
        ["Sourdough bread loaf"]
    );
    assert!(
        titles(&app, "q=bread%20garden").await.is_empty(),
        "every word must match"
    );
    assert_eq!(titles(&app, "category=Garden").await, ["Garden help"]);
    assert_eq!(
        titles(&app, "currency=BREAD").await.len(),
        2,
        "priced in it or taking it"
    );
    assert_eq!(
        titles(&app, "holder=bakery&q=loaf").await,
        ["Sourdough bread loaf"]
    );
    // Index syntax typed by a user is only words.
    // (`NEAR(...)` would be an FTS5 operator; here "near" is one more word none has.)
    assert_eq!(
        titles(&app, "q=%22sourdough%22%20NEAR(starter)")
            .await
            .len(),
        0
    );
    assert_eq!(titles(&app, "q=sourdough%22*").await.len(), 2);

    // An offer's matches are wants sharing a word of its title, never its holder's own.
    let (status, matches) = app
        .get(
            &format!(
                "/api/v1/listings/{}/matches",
                loaf["id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{matches}");
    assert_eq!(matches["items"][0]["id"], want["id"], "{matches}");
    assert_eq!(matches["items"].as_array().map(Vec::len), Some(1));

    // Paging through ranked results: every match once, none twice.
    for i in 0..7 {
        list(
            &app,
            &gus,
            json!({"kind": "offer", "title": format!("Rye bread number {i}")}),
        )
        .await;
    }
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/listings?q=bread&limit=3&cursor={c}"),
            None => "/api/v1/listings?q=bread&limit=3".into(),
        };
        let (status, page) = app.get(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().expect("items") {
            assert!(
                seen.insert(item["id"].as_str().expect("id").to_owned()),
                "twice: {item}"
            );
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (8, 3));
    // Newest first without words, paged by id.
    let all = app.all_pages("/api/v1/listings", None, 4).await;
    assert_eq!(all.len(), 10);
    assert_eq!(all[0]["title"], "Rye bread number 6");

    for (query, field) in [
        ("q=%21%21", "q"),
        ("kind=gift", "kind"),
        ("currency=NOPE", "currency"),
        ("holder=nobody", "holder"),
    ] {
        let answer = app.get(&format!("/api/v1/listings?{query}"), None).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(answer.1["field"], field, "{query}: {}", answer.1);
    }
    let answer = app.get("/api/v1/listings?q=bread&cursor=zzz", None).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "bad_cursor");
}

async fn listings_are_checked_and_only_their_holder_changes_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, carl, gus) = village(&app).await;
    for (body, field) in [
        (json!({"kind": "gift", "title": "Bread"}), "kind"),
        (json!({"kind": "offer", "title": "ab"}), "title"),
        (json!({"kind": "offer", "title": "Bread\nrolls"}), "title"),
        (json!({"kind": "offer", "title": "x".repeat(121)}), "title"),
        (
            json!({"kind": "offer", "title": "Bread", "price": {"amount": "1", "currency": "NOPE"}}),
            "price.currency",
        ),
        (
            json!({"kind": "offer", "title": "Bread", "accepts": ["NOPE"]}),
            "accepts",
        ),
    ] {
        let answer = app.post("/api/v1/listings", Some(&gus), body.clone()).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(answer.1["field"], field, "{body}: {}", answer.1);
    }
    for amount in ["4.505", "-1", "lots"] {
        let answer = app
            .post("/api/v1/listings", Some(&gus), json!({"kind": "offer", "title": "Bread", "price": {"amount": amount, "currency": "BREAD"}}))
            .await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "bad_amount");
        assert_eq!(answer.1["field"], "price.amount", "{amount}: {}", answer.1);
    }
    let answer = app
        .post(
            "/api/v1/listings",
            Some(&gus),
            json!({"kind": "offer", "title": "Bread\u{202e}evil"}),
        )
        .await;
    assert_eq!(
        answer.1["field"], "title",
        "an invisible character: {}",
        answer.1
    );
    let answer = app
        .post(
            "/api/v1/listings",
            Some(&gus),
            json!({"kind": "offer", "title": "Bread", "holder": "bakery"}),
        )
        .await;
    assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
    assert_eq!(
        titles(&app, "").await.len(),
        0,
        "nothing refused was listed"
    );

    let listing = list(
        &app,
        &rosa,
        json!({"holder": "bakery", "kind": "offer", "title": "<b>Cake</b>", "price": {"amount": "9.00", "currency": "BREAD"}}),
    )
    .await;
    let id = listing["id"].as_str().expect("id");
    let path = format!("/api/v1/listings/{id}");
    assert_eq!(
        listing["title"], "<b>Cake</b>",
        "stored as typed; pages escape it"
    );
    let answer = app
        .patch(&path, Some(&carl), json!({"title": "Mine now"}))
        .await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
    let (status, changed) = app
        .patch(
            &path,
            Some(&rosa),
            json!({"title": "Carrot cake", "price": null, "category": "cakes"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["title"], "Carrot cake");
    assert_eq!(changed["price"], Value::Null);
    assert_eq!(
        titles(&app, "q=carrot").await,
        ["Carrot cake"],
        "the index follows edits"
    );
    assert!(
        titles(&app, "q=b").await.is_empty(),
        "the old title is out of the index"
    );

    let answer = app.delete(&path, Some(&carl)).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
    let (status, withdrawn) = app.delete(&path, Some(&rosa)).await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(withdrawn["status"], "withdrawn");
    assert!(titles(&app, "q=carrot").await.is_empty());
    let answer = app
        .post(
            &format!("{path}/deals"),
            Some(&carl),
            json!({"terms": "fixed", "amount": "9.00", "currency": "BREAD"}),
        )
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "listing_withdrawn");
    let answer = app
        .patch(&path, Some(&rosa), json!({"title": "Back again"}))
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "listing_withdrawn");
    let answer = app.get("/api/v1/listings/999999", None).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
}

async fn deals_pay_fixed_at_once_or_after_at_what_the_buyer_judges(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, carl, gus) = village(&app).await;
    let loaf = list(
        &app,
        &rosa,
        json!({"holder": "bakery", "kind": "offer", "title": "Sourdough loaf", "price": {"amount": "4.50", "currency": "BREAD"}}),
    )
    .await;
    let loaf_deals = format!(
        "/api/v1/listings/{}/deals",
        loaf["id"].as_str().expect("id")
    );

    // Fixed: paid at once, the price exactly.
    let answer = app
        .post(
            &loaf_deals,
            Some(&carl),
            json!({"terms": "fixed", "amount": "4.00"}),
        )
        .await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(answer.1["field"], "amount");
    let answer = app
        .post(&loaf_deals, Some(&carl), json!({"terms": "swap"}))
        .await;
    assert_eq!(answer.1["field"], "terms", "{}", answer.1);
    let answer = app
        .post(&loaf_deals, Some(&rosa), json!({"terms": "fixed"}))
        .await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "own_listing");
    // The buyer never sets the price it pays at once: an unpriced offer is paid after.
    let free = list(
        &app,
        &gus,
        json!({"kind": "offer", "title": "Odd jobs", "accepts": ["BREAD"]}),
    )
    .await;
    let answer = app
        .post(
            &format!(
                "/api/v1/listings/{}/deals",
                free["id"].as_str().expect("id")
            ),
            Some(&carl),
            json!({"terms": "fixed", "amount": "0.01"}),
        )
        .await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert_eq!(answer.1["field"], "currency", "{}", answer.1);
    let (status, deal) = app
        .post(&loaf_deals, Some(&carl), json!({"terms": "fixed"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    assert_eq!(deal["status"], "paid");
    assert_eq!(
        (deal["buyer"].as_str(), deal["seller"].as_str()),
        (Some("carl"), Some("bakery"))
    );
    assert_eq!(deal["amount"], "4.50");
    assert_eq!(deal["payment"]["amount"], "4.50", "{deal}");
    assert_eq!(deal["payment_id"], deal["payment"]["id"]);
    assert_eq!(balance(&app, &carl, None, "BREAD").await, "45.50");
    // A buyer short of funds is refused and nothing is recorded.
    let before = app.get("/api/v1/deals", Some(&gus)).await.1["items"]
        .as_array()
        .map(Vec::len);
    let answer = app
        .post(&loaf_deals, Some(&gus), json!({"terms": "fixed"}))
        .await;
    assert_eq!(answer.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.1);
    assert_eq!(
        app.get("/api/v1/deals", Some(&gus)).await.1["items"]
            .as_array()
            .map(Vec::len),
        before
    );

    // After: the buyer pays what it judges fair once served; only the buyer pays, once.
    let help = list(
        &app,
        &gus,
        json!({"kind": "offer", "title": "Garden help", "accepts": ["BREAD"]}),
    )
    .await;
    let (status, open) = app
        .post(
            &format!(
                "/api/v1/listings/{}/deals",
                help["id"].as_str().expect("id")
            ),
            Some(&carl),
            json!({"terms": "after"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{open}");
    assert_eq!(
        (open["status"].as_str(), open["amount"].as_str()),
        (Some("open"), None)
    );
    assert_eq!(open["currency"], "BREAD");
    let pay = format!("/api/v1/deals/{}/pay", open["id"].as_str().expect("id"));
    let answer = app.post(&pay, Some(&gus), json!({"amount": "12.00"})).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "not_buyer");
    let answer = app
        .post(&pay, Some(&rosa), json!({"amount": "12.00"}))
        .await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
    let answer = app.post(&pay, Some(&carl), json!({})).await;
    assert_eq!(answer.1["field"], "amount", "{}", answer.1);
    let (status, paid) = app
        .post(&pay, Some(&carl), json!({"amount": "12.00"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(
        (paid["status"].as_str(), paid["amount"].as_str()),
        (Some("paid"), Some("12.00"))
    );
    assert_eq!(balance(&app, &gus, None, "BREAD").await, "12.00");
    let answer = app
        .post(&pay, Some(&carl), json!({"amount": "12.00"}))
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "already_paid");
    assert_eq!(balance(&app, &carl, None, "BREAD").await, "33.50");

    // A want: the one answering it sells; the want's holder pays the agreed amount.
    let bike = list(
        &app,
        &carl,
        json!({"kind": "want", "title": "Bike repair", "price": {"amount": "20.00", "currency": "BREAD"}}),
    )
    .await;
    let (status, offer) = app
        .post(
            &format!(
                "/api/v1/listings/{}/deals",
                bike["id"].as_str().expect("id")
            ),
            Some(&gus),
            json!({"terms": "fixed"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{offer}");
    assert_eq!(
        (offer["buyer"].as_str(), offer["seller"].as_str()),
        (Some("carl"), Some("gus"))
    );
    assert_eq!(offer["status"], "open", "the seller cannot pay itself");
    let pay = format!("/api/v1/deals/{}/pay", offer["id"].as_str().expect("id"));
    let answer = app
        .post(&pay, Some(&carl), json!({"amount": "19.00"}))
        .await;
    assert_eq!(answer.1["field"], "amount", "{}", answer.1);
    let (status, paid) = app.post(&pay, Some(&carl), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(balance(&app, &gus, None, "BREAD").await, "32.00");

    // Each party sees its deals; the history shows the payments.
    let (_, mine) = app.get("/api/v1/deals", Some(&gus)).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(2), "{mine}");
    let (_, bakery_deals) = app.get("/api/v1/deals", Some(&rosa)).await;
    assert_eq!(
        bakery_deals["items"].as_array().map(Vec::len),
        Some(1),
        "a shop's owner sees its deals"
    );
    app.assert_audit_clean().await;
}

async fn a_deal_is_paid_once_under_ten_concurrent_payers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_rosa, carl, gus) = village(&app).await;
    let help = list(
        &app,
        &gus,
        json!({"kind": "offer", "title": "Garden help", "accepts": ["BREAD"]}),
    )
    .await;
    let (_, open) = app
        .post(
            &format!(
                "/api/v1/listings/{}/deals",
                help["id"].as_str().expect("id")
            ),
            Some(&carl),
            json!({"terms": "after"}),
        )
        .await;
    let pay = format!("/api/v1/deals/{}/pay", open["id"].as_str().expect("id"));
    let transfers = app.transfer_count().await;
    let answers = futures_util::future::join_all(
        (0..10).map(|_| app.post(&pay, Some(&carl), json!({"amount": "3.00"}))),
    )
    .await;
    let paid = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    // The others are refused: paid already, or (past the 8 converting payments a process
    // runs at once) overloaded before anything was tried.
    let refused = answers
        .iter()
        .filter(|(s, b)| {
            (*s == StatusCode::CONFLICT && b["code"] == "already_paid")
                || (*s == StatusCode::SERVICE_UNAVAILABLE && b["code"] == "overloaded")
        })
        .count();
    assert_eq!((paid, refused), (1, 9), "{answers:?}");
    assert_eq!(app.transfer_count().await, transfers + 1);
    assert_eq!(balance(&app, &carl, None, "BREAD").await, "47.00");
    app.assert_audit_clean().await;

    // The audit would see a deal whose payment is not its amount.
    let pool = app.db.pool.clone();
    let report = tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl as _;
        let mut conn = pool.get().expect("conn");
        diesel::sql_query("UPDATE deals SET amount_atoms = amount_atoms + 1")
            .execute(&mut conn)
            .expect("tamper");
        scrip_ledger::Ledger::new(pool).audit().expect("audit")
    })
    .await
    .expect("task");
    let checks: Vec<&str> = report
        .violations
        .iter()
        .map(scrip_ledger::Violation::check)
        .collect();
    assert_eq!(checks, ["deals"], "{:?}", report.violations);
}

async fn a_fixed_deal_converts_what_the_buyer_holds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, _carl, _gus) = village(&app).await;
    app.shop(&rosa, "brewery", "ALE").await;
    let alice = app.user("alice").await;
    let mia = app.user("mia").await;
    for (from, to, code) in [("brewery", "alice", "ALE"), ("bakery", "mia", "BREAD")] {
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": from, "to": to, "currency": code, "amount": "20.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, market) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "ALE", "quote": "BREAD", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{market}");
    let (status, bid) = app
        .post(
            "/api/v1/orders",
            Some(&mia),
            json!({"market": "ALE-BREAD", "side": "buy", "type": "limit", "price": "1.00", "quantity": "10.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bid}");
    let loaf = list(
        &app,
        &rosa,
        json!({"holder": "bakery", "kind": "offer", "title": "Sourdough loaf", "price": {"amount": "4.50", "currency": "BREAD"}}),
    )
    .await;
    let deals = format!(
        "/api/v1/listings/{}/deals",
        loaf["id"].as_str().expect("id")
    );
    // Bounded: more than max_spend is refused whole.
    let answer = app
        .post(
            &deals,
            Some(&alice),
            json!({"terms": "fixed", "pay_with": ["ALE"], "max_spend": {"ALE": "4.00"}}),
        )
        .await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "slippage_exceeded",
    );
    assert_eq!(balance(&app, &alice, None, "ALE").await, "20.00");
    let (status, deal) = app
        .post(
            &deals,
            Some(&alice),
            json!({"terms": "fixed", "pay_with": ["ALE"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    assert_eq!(deal["status"], "paid");
    assert_eq!(deal["payment"]["spent"], json!({"ALE": "5.00"}), "{deal}");
    assert_eq!(balance(&app, &alice, None, "ALE").await, "15.00");
    assert_eq!(
        balance(&app, &alice, None, "BREAD").await,
        "0.50",
        "the lot's change stays with her"
    );
    assert_eq!(
        balance(&app, &mia, None, "ALE").await,
        "5.00",
        "the maker sees an ordinary fill"
    );
    app.assert_audit_clean().await;
}

async fn rate(app: &TestApp, token: &str, deal: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/deals/{deal}/feedback"), Some(token), body)
        .await
}

async fn feedback_is_once_per_party_of_a_paid_deal_and_makes_a_reputation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, carl, gus) = village(&app).await;
    let dana = app.user("dana").await;
    let (status, body) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "dana", "currency": "BREAD", "amount": "10.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let loaf = list(
        &app,
        &rosa,
        json!({"holder": "bakery", "kind": "offer", "title": "Sourdough loaf", "price": {"amount": "4.50", "currency": "BREAD"}}),
    )
    .await;
    let deals = format!(
        "/api/v1/listings/{}/deals",
        loaf["id"].as_str().expect("id")
    );
    let by_carl = app
        .post(&deals, Some(&carl), json!({"terms": "fixed"}))
        .await
        .1;
    let by_dana = app
        .post(&deals, Some(&dana), json!({"terms": "fixed"}))
        .await
        .1;
    let (carl_deal, dana_deal) = (
        by_carl["id"].as_str().expect("id").to_owned(),
        by_dana["id"].as_str().expect("id").to_owned(),
    );

    for (body, field) in [
        (json!({"rating": 6}), "rating"),
        (json!({"rating": 0}), "rating"),
        (json!({"rating": "good"}), "rating"),
    ] {
        let answer = rate(&app, &carl, &carl_deal, body.clone()).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(answer.1["field"], field, "{body}: {}", answer.1);
    }
    let (status, given) = rate(
        &app,
        &carl,
        &carl_deal,
        json!({"rating": 5, "comment": "Lovely crust"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{given}");
    assert_eq!(
        (given["from"].as_str(), given["to"].as_str()),
        (Some("carl"), Some("bakery"))
    );
    let answer = rate(&app, &carl, &carl_deal, json!({"rating": 1})).await;
    assert_problem(&answer, StatusCode::CONFLICT, "feedback_given");
    let answer = rate(&app, &gus, &carl_deal, json!({"rating": 1})).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
    // The seller's owner rates the buyer.
    let (status, _) = rate(&app, &rosa, &carl_deal, json!({"rating": 4})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = rate(&app, &dana, &dana_deal, json!({"rating": 4})).await;
    assert_eq!(status, StatusCode::CREATED);

    // An unpaid deal is not rated.
    let help = list(
        &app,
        &gus,
        json!({"kind": "offer", "title": "Garden help", "accepts": ["BREAD"]}),
    )
    .await;
    let (_, open) = app
        .post(
            &format!(
                "/api/v1/listings/{}/deals",
                help["id"].as_str().expect("id")
            ),
            Some(&carl),
            json!({"terms": "after"}),
        )
        .await;
    let answer = rate(
        &app,
        &carl,
        open["id"].as_str().expect("id"),
        json!({"rating": 5}),
    )
    .await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "deal_unpaid");

    let answer = app
        .patch(
            &format!("/api/v1/deals/{dana_deal}/feedback"),
            Some(&dana),
            json!({"rating": 5}),
        )
        .await;
    assert_eq!(
        answer.0,
        StatusCode::OK,
        "a change within 14 days: {}",
        answer.1
    );

    // No one rates their own business: gus buys a loaf, then becomes one of its owners.
    let (status, body) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "gus", "currency": "BREAD", "amount": "5.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let by_gus = app
        .post(&deals, Some(&gus), json!({"terms": "fixed"}))
        .await
        .1;
    assert_eq!(by_gus["status"], "paid", "{by_gus}");
    app.add_member((&rosa, "bakery"), ("gus", &gus), "owner")
        .await;
    let answer = rate(
        &app,
        &gus,
        by_gus["id"].as_str().expect("id"),
        json!({"rating": 5}),
    )
    .await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "related_parties");
    let answer = app
        .post(&deals, Some(&gus), json!({"terms": "fixed"}))
        .await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "own_listing");

    // After 14 days a rating is final.
    let pool = app.db.pool.clone();
    let deal_id: i64 = carl_deal.parse().expect("id");
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl as _;
        let mut conn = pool.get().expect("conn");
        diesel::sql_query(format!(
            "UPDATE deal_feedback SET created_at_us = created_at_us - {} WHERE deal_id = {deal_id}",
            15_i64 * 86_400 * 1_000_000
        ))
        .execute(&mut conn)
        .expect("backdate");
    })
    .await
    .expect("task");
    let answer = app
        .patch(
            &format!("/api/v1/deals/{carl_deal}/feedback"),
            Some(&carl),
            json!({"rating": 1}),
        )
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "feedback_locked");

    // The bakery's reputation: 5 (carl) and 5 (dana, changed from 4).
    let (status, profile) = app.get("/api/v1/principals/bakery", None).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(
        profile["reputation"],
        json!({"score": "5.00", "ratings": 2}),
        "{profile}"
    );
    assert_eq!(profile["listings"][0]["title"], "Sourdough loaf");
    assert_eq!(profile["ratings"][0]["from"], "dana");
    let (_, carl_profile) = app.get("/api/v1/principals/carl", None).await;
    assert_eq!(
        carl_profile["reputation"],
        json!({"score": "4.00", "ratings": 1})
    );
    let (_, page) = app.get("/api/v1/listings?q=sourdough", None).await;
    assert_eq!(page["items"][0]["holder_reputation"]["score"], "5.00");
    let answer = app.get("/api/v1/principals/nobody", None).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "unknown_account");
}

async fn onboarding_app(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        crate::app::Limits {
            onboarding: Some(("LETS", "20.00", "4.00")),
            ..crate::app::Limits::default()
        },
    )
    .await
}

async fn buy(app: &TestApp, token: &str, listing: &Value) -> (StatusCode, Value) {
    app.post(
        &format!(
            "/api/v1/listings/{}/deals",
            listing["id"].as_str().expect("id")
        ),
        Some(token),
        json!({"terms": "fixed"}),
    )
    .await
}

async fn set_limit(app: &TestApp, steward: &str, member: &str, limit: &str) {
    let (status, body) = app
        .put_json(
            &format!("/api/v1/currencies/LETS/members/{member}"),
            Some(steward),
            json!({"credit_limit": limit}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn new_coinage_pays_half_of_a_newcomers_purchases_within_the_allowance(backend: Backend) {
    let app = onboarding_app(backend).await;
    let steward = app.user("steward").await;
    app.business(&steward, "commons").await;
    let (status, lets) = app
        .post(
            "/api/v1/currencies",
            Some(&steward),
            json!({"issuer": "commons", "code": "LETS", "name": "Valley LETS", "scale": 2,
                   "credit_limit": "0", "kind": "mutual_credit", "member_credit_limit": "10.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lets}");
    set_limit(&app, &steward, "registry-onboarding", "30.00").await;
    let sam = app.user("sam").await;
    let tom = app.user("tom").await;
    let olga = app.user("olga").await;
    let nina = app.user("nina").await;
    let loaf = list(
        &app,
        &sam,
        json!({"kind": "offer", "title": "Loaf", "price": {"amount": "4.00", "currency": "LETS"}}),
    )
    .await;
    let cake = list(
        &app,
        &sam,
        json!({"kind": "offer", "title": "Cake", "price": {"amount": "12.00", "currency": "LETS"}}),
    )
    .await;
    let pie = list(
        &app,
        &tom,
        json!({"kind": "offer", "title": "Pie", "price": {"amount": "2.00", "currency": "LETS"}}),
    )
    .await;

    // Sam's buyers pay him whole until three different ones have rated him well.
    let omar = app.user("omar").await;
    let otto = app.user("otto").await;
    let buy_and_rate = |token: String, rating: i64| {
        let (app, loaf) = (&app, &loaf);
        async move {
            let (status, deal) = buy(app, &token, loaf).await;
            assert_eq!(status, StatusCode::CREATED, "{deal}");
            assert_eq!(deal["onboarding"], Value::Null, "{deal}");
            let (status, body) = rate(
                app,
                &token,
                deal["id"].as_str().expect("id"),
                json!({"rating": rating}),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };
    buy_and_rate(olga.clone(), 5).await;
    buy_and_rate(omar.clone(), 5).await;
    assert_eq!(
        balance(&app, &olga, None, "LETS").await,
        "-4.00",
        "paid from her credit line"
    );
    let (_, deal) = buy(&app, &nina, &loaf).await;
    assert_eq!(
        deal["onboarding"],
        Value::Null,
        "two buyers' word is not enough: {deal}"
    );
    buy_and_rate(otto.clone(), 4).await;

    // Now the fund pays half of Nina's cake; she pays the other half from her credit line,
    // down to its limit exactly.
    let (status, deal) = buy(&app, &nina, &cake).await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    assert_eq!(
        (deal["amount"].as_str(), deal["onboarding"].as_str()),
        (Some("12.00"), Some("6.00")),
        "{deal}"
    );
    assert_eq!(deal["payment"]["amount"], "6.00");
    assert_eq!(balance(&app, &nina, None, "LETS").await, "-10.00");
    assert_eq!(balance(&app, &sam, None, "LETS").await, "28.00");
    let (_, sam_history) = app.get("/api/v1/transfers", Some(&sam)).await;
    assert!(
        sam_history["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|t| t["kind"] == "onboarding" && t["amount"] == "6.00"),
        "{sam_history}"
    );

    // A second cake is more than Nina's own line allows: refused whole, the allowance kept.
    let answer = buy(&app, &nina, &cake).await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    );
    app.user("operator").await;
    app.grant_operator("operator").await;
    let operator = app.login("operator", "correct horse battery").await;
    let (status, fund) = app.get("/api/v1/onboarding", Some(&operator)).await;
    assert_eq!(status, StatusCode::OK, "{fund}");
    assert_eq!(
        (
            fund["paid"].as_str(),
            fund["balance"].as_str(),
            fund["deals"].as_i64()
        ),
        (Some("6.00"), Some("-6.00"), Some(1)),
        "{fund}"
    );

    // With a larger line she buys more: 6.00 twice, then only the 2.00 left of her 20.00.
    set_limit(&app, &steward, "nina", "50.00").await;
    for share in ["6.00", "6.00", "2.00"] {
        let (_, next) = buy(&app, &nina, &cake).await;
        assert_eq!(next["onboarding"], share, "{next}");
    }
    let (_, spent) = buy(&app, &nina, &cake).await;
    assert_eq!(
        spent["onboarding"],
        Value::Null,
        "the allowance is spent: {spent}"
    );
    assert_eq!(balance(&app, &nina, None, "LETS").await, "-44.00");
    // Tom has no reputation: his pie is paid whole.
    let (_, pie_deal) = buy(&app, &olga, &pie).await;
    assert_eq!(pie_deal["onboarding"], Value::Null);

    // The fund never goes past its limit: a second newcomer gets only what is left of it.
    let (status, body) = app
        .put_json(
            "/api/v1/currencies/LETS/members/registry-onboarding",
            Some(&steward),
            json!({"credit_limit": "25.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pia = app.user("pia").await;
    set_limit(&app, &steward, "pia", "50.00").await;
    let (_, deal) = buy(&app, &pia, &cake).await;
    assert_eq!(deal["onboarding"], "5.00", "{deal}");
    let (_, fund) = app.get("/api/v1/onboarding", Some(&operator)).await;
    assert_eq!(
        (
            fund["paid"].as_str(),
            fund["balance"].as_str(),
            fund["newcomers"].as_i64()
        ),
        (Some("25.00"), Some("-25.00"), Some(2)),
        "{fund}"
    );
    let answer = app.get("/api/v1/onboarding", Some(&nina)).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "not_operator");
    app.assert_audit_clean().await;
}

/// POST `body` to `path` as `token` with `Idempotency-Key: key`: status, replayed header, body.
async fn keyed_post(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let response = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let replayed = response
        .headers()
        .get("Idempotent-Replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, replayed, response.json().await.expect("json"))
}

async fn a_retried_deal_with_its_idempotency_key_is_made_and_paid_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rosa, carl, gus) = village(&app).await;
    let loaf = list(
        &app,
        &rosa,
        json!({"holder": "bakery", "kind": "offer", "title": "Sourdough loaf", "price": {"amount": "4.50", "currency": "BREAD"}}),
    )
    .await;
    let deals = format!(
        "/api/v1/listings/{}/deals",
        loaf["id"].as_str().expect("id")
    );
    // Five tries of one purchase at once (a till retrying): one deal, one payment.
    let answers = futures_util::future::join_all(
        (0..5).map(|_| keyed_post(&app, &carl, &deals, "loaf-1", json!({"terms": "fixed"}))),
    )
    .await;
    for (status, _, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        assert_eq!(body["id"], answers[0].2["id"], "{body}");
    }
    let replays = answers
        .iter()
        .filter(|a| a.1.as_deref() == Some("true"))
        .count();
    assert_eq!(replays, 4, "{answers:?}");
    assert_eq!(
        balance(&app, &carl, None, "BREAD").await,
        "45.50",
        "charged once"
    );
    let (status, _, body) =
        keyed_post(&app, &carl, &deals, "loaf-1", json!({"terms": "after"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_conflict")),
        "{body}"
    );
    // A new key is a new purchase.
    let (status, replayed, second) =
        keyed_post(&app, &carl, &deals, "loaf-2", json!({"terms": "fixed"})).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::CREATED, Some("false")),
        "{second}"
    );
    assert_ne!(second["id"], answers[0].2["id"]);

    // Paying an open deal: a retry gets the paid deal, not 409.
    let help = list(
        &app,
        &gus,
        json!({"kind": "offer", "title": "Garden help", "accepts": ["BREAD"]}),
    )
    .await;
    let (_, open) = app
        .post(
            &format!(
                "/api/v1/listings/{}/deals",
                help["id"].as_str().expect("id")
            ),
            Some(&carl),
            json!({"terms": "after"}),
        )
        .await;
    let pay = format!("/api/v1/deals/{}/pay", open["id"].as_str().expect("id"));
    let (status, replayed, paid) =
        keyed_post(&app, &carl, &pay, "help-1", json!({"amount": "6.00"})).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::OK, Some("false")),
        "{paid}"
    );
    let (status, replayed, again) =
        keyed_post(&app, &carl, &pay, "help-1", json!({"amount": "6.00"})).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::OK, Some("true")),
        "{again}"
    );
    assert_eq!(again["status"], "paid");
    let (status, _, other) =
        keyed_post(&app, &carl, &pay, "help-1", json!({"amount": "7.00"})).await;
    assert_eq!(
        (status, other["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_conflict")),
        "{other}"
    );
    let (status, _, other) =
        keyed_post(&app, &carl, &pay, "help-2", json!({"amount": "6.00"})).await;
    assert_eq!(
        (status, other["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_paid")),
        "{other}"
    );
    assert_eq!(balance(&app, &carl, None, "BREAD").await, "35.00");
    app.assert_audit_clean().await;
}
