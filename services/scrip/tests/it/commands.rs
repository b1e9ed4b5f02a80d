use std::process::Command;

use diesel::prelude::*;
use scrip_domain::{Amount, CurrencyCode, Handle, Par, PrincipalKind, Scale, UnitCode};
use scrip_ledger::{
    Ledger, NewCurrency, TransferKind, TransferRequest, create_currency, create_principal,
};
use scrip_store::Backend;
use scrip_store::schema::accounts;
use scrip_store::test_support::TestDb;

fn scrip(db: &TestDb, args: &[&str]) -> (i32, String) {
    let url = format!("{:?}", db.url);
    let url = match db.url.backend() {
        Backend::Sqlite => url,
        Backend::Postgres => panic!("use the sqlite backend for CLI tests"),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_scrip"))
        .args(args)
        .env("DATABASE_URL", url)
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
