//! Proof of liabilities and issuer health over HTTP: every holder's proof reaches the
//! published root, whose total is the outstanding; a tampered proof does not, neither here nor
//! with `scrip verify-proof`; roots are kept over time; health tells a customer what it lends.

use std::process::Command;

use reqwest::StatusCode;
use scrip_domain::{Amount, Scale};
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};

crate::on_both_backends!(
    every_holder_proves_its_balance_is_counted,
    health_shows_what_a_customer_lends,
);

fn atoms(raw: &Value) -> u128 {
    let raw = raw.as_str().unwrap_or_else(|| panic!("{raw}"));
    let amount = Amount::parse(raw, Scale::new(2).expect("scale")).expect("amount");
    u128::try_from(amount.atoms()).expect("positive")
}

/// Checks `proof` against `root`/`total` with the same function `scrip verify-proof` uses.
fn verifies(proof: &Value, root: &str, total: &Value) -> bool {
    let path: Vec<(String, String, u128)> = proof["path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|s| {
            (
                s["side"].as_str().expect("side").to_owned(),
                s["hash"].as_str().expect("hash").to_owned(),
                atoms(&s["sum"]),
            )
        })
        .collect();
    let path: Vec<(&str, &str, u128)> = path
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
        .collect();
    let text = |name: &str| proof[name].as_str().expect("field");
    scrip_proofs::check(
        (
            text("currency"),
            text("salt"),
            text("address"),
            atoms(&proof["balance"]),
        ),
        &path,
        (root, atoms(total)),
    )
    .expect("well formed")
}

/// `scrip verify-proof FILE --root ROOT`: its exit status and output.
fn verify_proof_cli(proof: &Value, root: &str, name: &str) -> (i32, String) {
    let file =
        std::env::temp_dir().join(format!("scrip-liabilities-{}-{name}", std::process::id()));
    std::fs::write(&file, proof.to_string()).expect("write proof");
    let out = Command::new(env!("CARGO_BIN_EXE_scrip"))
        .args(["verify-proof", file.to_str().expect("path"), "--root", root])
        .output()
        .expect("run scrip");
    let _ = std::fs::remove_file(&file);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

async fn every_holder_proves_its_balance_is_counted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let mut holders = Vec::new();
    for (i, amount) in ["12.50", "3.00", "40.25", "0.01", "7.77"]
        .into_iter()
        .enumerate()
    {
        let handle = format!("holder{i}");
        let token = app.user(&handle).await;
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": "bakery", "to": handle, "currency": "BREAD", "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        holders.push((handle, token, amount));
    }
    let (status, published) = app.get("/api/v1/currencies/BREAD/liabilities", None).await;
    assert_eq!(status, StatusCode::OK, "{published}");
    assert_eq!(published["total"], "63.53", "the outstanding: {published}");
    assert_eq!(
        published["holders"], 5,
        "the issuer's own account is not a liability"
    );
    let (_, currency) = app.get("/api/v1/currencies/BREAD", None).await;
    assert_eq!(published["total"], currency["outstanding"]);
    let root = published["root"].as_str().expect("root").to_owned();

    for (handle, token, amount) in &holders {
        let (status, proof) = app
            .get("/api/v1/accounts/proof?currency=BREAD", Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        assert_eq!(proof["balance"], *amount);
        assert_eq!(proof["address"], format!("{handle}@local"));
        assert_eq!(
            proof["root"],
            root.as_str(),
            "proofs come from the published tree"
        );
        assert!(verifies(&proof, &root, &published["total"]), "{proof}");

        // A shrunk balance, a wrong sibling, or another total never verifies.
        let mut shrunk = proof.clone();
        shrunk["balance"] = json!("0.01");
        if *amount != "0.01" {
            assert!(!verifies(&shrunk, &root, &published["total"]));
        }
        let mut wrong = proof.clone();
        wrong["path"][0]["sum"] = json!("1000.00");
        assert!(!verifies(&wrong, &root, &published["total"]));
        let mut wrong = proof.clone();
        wrong["path"][0]["hash"] = json!("00".repeat(32));
        assert!(!verifies(&wrong, &root, &published["total"]));
        assert!(!verifies(&proof, &root, &json!("63.52")));
    }

    // The command line checks the same, offline.
    let (_, proof) = app
        .get("/api/v1/accounts/proof?currency=BREAD", Some(&holders[0].1))
        .await;
    let (code, out) = verify_proof_cli(&proof, &root, "good");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("holder0@local's 12.50 BREAD is counted"),
        "{out}"
    );
    let mut forged = proof.clone();
    forged["balance"] = json!("99.00");
    let (code, out) = verify_proof_cli(&forged, &root, "forged");
    assert_eq!(code, 1, "{out}");
    let (code, out) = verify_proof_cli(&proof, "nope", "bad-root");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("the root is not 64 hex digits"), "{out}");

    // Nothing to prove for someone who holds nothing; a business's proof for its owner only.
    let stranger = app.user("stranger").await;
    assert_problem(
        &app.get("/api/v1/accounts/proof?currency=BREAD", Some(&stranger))
            .await,
        StatusCode::NOT_FOUND,
        "unknown_account",
    );
    assert_eq!(
        app.get("/api/v1/accounts/proof?currency=BREAD", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // Balances move; once the snapshot is renewed the new root is published and the old one
    // is still listed, so a proof kept from before can be checked against it.
    let (status, body) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "holder1", "currency": "BREAD", "amount": "1.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(10_500)).await;
    let (_, now) = app.get("/api/v1/currencies/BREAD/liabilities", None).await;
    assert_eq!(now["total"], "64.53", "{now}");
    assert_ne!(now["root"], root.as_str());
    let (_, roots) = app
        .get("/api/v1/currencies/BREAD/liabilities/roots", None)
        .await;
    let listed: Vec<&str> = roots["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["root"].as_str().expect("root"))
        .collect();
    assert_eq!(
        listed,
        vec![now["root"].as_str().expect("root"), root.as_str()],
        "{roots}"
    );
    assert!(
        verifies(&proof, &root, &json!("63.53")),
        "the kept proof still checks against its day's root"
    );
    assert_problem(
        &app.get("/api/v1/currencies/NOPE/liabilities", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

async fn health_shows_what_a_customer_lends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let carl = app.user("carl").await;
    let dana = app.user("dana").await;
    for (to, amount) in [("carl", "150.00"), ("dana", "50.00")] {
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": "bakery", "to": to, "currency": "BREAD", "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .pay(
            &carl,
            json!({"to": "bakery", "currency": "BREAD", "amount": "30.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let _ = dana;
    let (status, health) = app.get("/api/v1/currencies/BREAD/health", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["outstanding"], "170.00", "{health}");
    assert_eq!(health["credit_limit"], "1000.00");
    assert_eq!(health["utilisation_bps"], 1_700, "170 of 1000");
    assert_eq!(health["issued_30d"], "200.00");
    assert_eq!(health["redeemed_30d"], "30.00");
    assert_eq!(health["holders"], 2);
    assert_eq!(
        health["largest_holder_bps"], 7_058,
        "120 of 170, rounded down"
    );
    assert_eq!(health["clearing_enabled"], true);
    assert_eq!(health["last_cleared_at"], Value::Null);
    assert_problem(
        &app.get("/api/v1/currencies/NOPE/health", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

/// The public invariant monitor: every check of the audit with its result and when it ran,
/// for anyone, and its page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_monitor_shows_every_check() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    let started = std::time::Instant::now();
    let status = loop {
        let (code, status) = app.get("/api/v1/status", None).await;
        assert_eq!(code, StatusCode::OK, "{status}");
        if status["audit"] != "not_run" {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no audit ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(status["audit"], "clean", "{status}");
    assert_eq!(
        status["kind"], "full",
        "the first audit reads the whole journal"
    );
    let names: Vec<&str> = status["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    for check in scrip_ledger::Violation::CHECKS {
        assert!(names.contains(&check), "{check} in {names:?}");
    }
    assert!(
        status["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["result"] == "pass" && c["about"].as_str().is_some_and(|a| !a.is_empty()))
    );
    let page = app
        .client
        .get(format!("{}/status", app.base))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("What the ledger keeps")
    );
}
