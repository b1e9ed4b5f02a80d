use std::process::Command;

use diesel::prelude::*;
use scrip_domain::{Amount, CurrencyCode, Handle, Par, PrincipalKind, Scale, UnitCode};
use scrip_ledger::{
    Ledger, NewCurrency, TransferKind, TransferRequest, create_currency, create_principal,
};
use scrip_store::schema::accounts;
use scrip_store::test_support::TestDb;

fn scrip(db: &TestDb, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scrip"))
        .args(args)
        .env("DATABASE_URL", db.url.as_str())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run scrip");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn audit_passes_on_a_clean_ledger_and_fails_on_a_tampered_one() {
    let db = TestDb::sqlite();
    let (code, out) = scrip(&db, &["migrate"]);
    assert_eq!(code, 0, "{out}");

    let ledger = Ledger::new(db.pool.clone());
    let scale = Scale::new(2).expect("scale");
    ledger
        .write(|conn| {
            let shop = create_principal(
                conn,
                &Handle::parse("bakery").expect("h"),
                PrincipalKind::Business,
                None,
            )?;
            let bob = create_principal(
                conn,
                &Handle::parse("bob").expect("h"),
                PrincipalKind::User,
                None,
            )?;
            let currency = create_currency(
                conn,
                &NewCurrency {
                    issuer: shop.id,
                    code: CurrencyCode::parse("BREAD").expect("code"),
                    name: "Bread".into(),
                    scale,
                    credit_limit: Amount::from_atoms(100_000, scale),
                    max_balance: None,
                    unit: UnitCode::parse("EUR").expect("unit"),
                    par: Par::one(),
                    policies: Default::default(),
                },
            )?;
            scrip_ledger::transfer(
                conn,
                &TransferRequest {
                    currency: currency.id,
                    from: shop.id,
                    to: bob.id,
                    amount: Amount::from_atoms(1_000, scale),
                    kind: TransferKind::Payment,
                    memo: None,
                },
            )
        })
        .expect("economy");

    let (code, out) = scrip(&db, &["audit"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every invariant holds"), "{out}");

    let mut conn = db.pool.get().expect("conn");
    diesel::update(accounts::table.filter(accounts::balance_atoms.eq(1_000)))
        .set(accounts::balance_atoms.eq(1_500))
        .execute(&mut conn)
        .expect("tamper");
    let (code, out) = scrip(&db, &["audit"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("balances sum to 500 atoms"), "{out}");
    assert!(out.contains("its transfers add up to 1000"), "{out}");
}

#[test]
fn a_bad_database_url_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_scrip"))
        .args(["audit", "--database-url", "mysql://nope"])
        .output()
        .expect("run scrip");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database URL must start with"));
}

/// `scrip verify-directory` checks a proof with nothing but the proof and the root: a real
/// one (built by the same code the server uses) passes, one for another member fails, a
/// malformed one is a clear error.
#[test]
fn verify_directory_checks_a_proof_offline() {
    use scrip_governance::directory::{leaf_hash, proof, root};
    let members = ["ann@local", "carl@local", "dana@local"];
    let leaves: Vec<_> = members.iter().map(|m| leaf_hash("CLUB", m)).collect();
    let top = hex::encode(root(&leaves));
    let path: Vec<serde_json::Value> = proof(&leaves, 1)
        .expect("proof")
        .into_iter()
        .map(|(side, hash)| serde_json::json!({"side": side.as_str(), "hash": hex::encode(hash)}))
        .collect();
    let run = |member: &str, root: &str| {
        let dir = std::env::temp_dir().join(format!("scrip-proof-{}-{member}", std::process::id()));
        let body =
            serde_json::json!({"currency": "CLUB", "member": member, "path": path, "root": top});
        std::fs::write(&dir, body.to_string()).expect("write proof");
        let out = Command::new(env!("CARGO_BIN_EXE_scrip"))
            .args([
                "verify-directory",
                dir.to_str().expect("path"),
                "--root",
                root,
            ])
            .output()
            .expect("run scrip");
        let _ = std::fs::remove_file(&dir);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, out) = run("carl@local", &top);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("carl@local is a member of CLUB"), "{out}");
    let (code, out) = run("mallory@local", &top);
    assert_eq!(code, 1, "{out}");
    let (code, out) = run("carl@local", "not-a-root");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("the root is not 64 hex digits"), "{out}");
}

mod served {
    use reqwest::StatusCode;
    use scrip::server::Services;
    use scrip_store::Backend;
    use serde_json::json;

    use crate::app::{Limits, TestApp, assert_problem};

    fn run_scrip(app: &TestApp, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scrip"))
            .args(args)
            .env("DATABASE_URL", app.db.url.as_str())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run scrip");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grant_operator_lets_an_operator_read_the_registry_accounts() {
        let app = TestApp::spawn(Backend::Sqlite).await;
        let olga = app.user("olga").await;
        let denied = app
            .get("/api/v1/accounts?holder=registry", Some(&olga))
            .await;
        assert_problem(&denied, StatusCode::FORBIDDEN, "not_owner");
        let (ok, out) = run_scrip(&app, &["admin", "grant-operator", "olga@local"]);
        assert!(ok, "{out}");
        let (_, me) = app.get("/api/v1/me", Some(&olga)).await;
        assert_eq!(me["roles"], json!(["operator"]));
        let (status, accounts) = app
            .get("/api/v1/accounts?holder=registry", Some(&olga))
            .await;
        assert_eq!((status, accounts), (StatusCode::OK, json!({"items": []})));
        let (ok, out) = run_scrip(&app, &["admin", "grant-operator", "nobody"]);
        assert!(!ok, "an unknown handle is an error: {out}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_service_per_process_serves_only_its_routes() {
        let app = TestApp::spawn_with(
            Backend::Sqlite,
            Limits {
                services: Services::only_wallet(),
                ..Limits::default()
            },
        )
        .await;
        assert_eq!(app.get("/healthz", None).await.0, StatusCode::OK);
        assert_eq!(app.get("/readyz", None).await.0, StatusCode::OK);
        let login = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"handle": "x", "password": "y"}),
            )
            .await;
        assert_problem(&login, StatusCode::NOT_FOUND, "not_found");
        let accounts = app.get("/api/v1/accounts", None).await;
        assert_problem(&accounts, StatusCode::UNAUTHORIZED, "unauthorized");
        let currencies = app.get("/api/v1/currencies", None).await;
        assert_problem(&currencies, StatusCode::NOT_FOUND, "not_found");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_economy_is_seeded_once_and_balances() {
        let app = TestApp::spawn(Backend::Sqlite).await;
        let ledger = scrip_ledger::Ledger::new(app.db.pool.clone());
        let registry = scrip_domain::RegistryId::default();
        for _ in 0..2 {
            let (ledger, registry) = (ledger.clone(), registry.clone());
            tokio::task::spawn_blocking(move || {
                scrip::demo::seed(&ledger, &registry).map_err(|e| e.to_string())
            })
            .await
            .expect("task")
            .expect("seed");
        }
        let carla = app.login("carla", scrip::demo::DEMO_PASSWORD).await;
        let held = app.balances(&carla, None).await;
        assert_eq!(
            held.len(),
            3,
            "a customer holds all three shop currencies: {held:?}"
        );
        let (_, ring) = app
            .get(
                "/api/v1/accounts?holder=bakery",
                Some(&app.login("rosa", scrip::demo::DEMO_PASSWORD).await),
            )
            .await;
        let codes: Vec<&str> = ring["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|a| a["currency"].as_str())
            .collect();
        assert!(
            codes.contains(&"ALE"),
            "the bakery holds the brewer's money: {codes:?}"
        );
        // wanda runs the bakery's till: she sees its balances, never pays out of it.
        let wanda = app.login("wanda", scrip::demo::DEMO_PASSWORD).await;
        let (status, _) = app
            .get("/api/v1/accounts?holder=bakery", Some(&wanda))
            .await;
        assert_eq!(status, reqwest::StatusCode::OK);
        let (status, _) = app
            .post(
                "/api/v1/transfers",
                Some(&wanda),
                serde_json::json!({"from": "bakery", "to": "carla", "currency": "BREAD", "amount": "1.00"}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
        app.assert_audit_clean().await;
    }
}

#[test]
fn clearing_bench_solves_a_file_and_rejects_bad_lines() {
    let dir = std::env::temp_dir().join(format!("scrip-clearing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = dir.join("ring.csv");
    std::fs::write(
        &good,
        "debtor,creditor,amount\ngrocer,bakery,50\nbakery,brewer,30\nbrewer,grocer,40\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_scrip"))
        .args(["clearing", "bench"])
        .arg(&good)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("total debt:   120"), "{text}");
    assert!(text.contains("cleared:      90"), "{text}");
    assert!(text.contains("remaining:    30"), "{text}");

    for (name, body, complaint) in [
        ("decimal.csv", "a,b,10\nb,a,1.5\n", "line 2"),
        ("first.csv", "a,b,x1\n", "line 1"),
        ("self.csv", "a,a,3\n", "cannot owe itself"),
        ("short.csv", "a,b\n", "expected debtor,creditor,amount"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_scrip"))
            .args(["clearing", "bench"])
            .arg(&path)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{name} must fail");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(complaint),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
