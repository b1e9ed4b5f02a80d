//! Demurrage over many accounts: how long one period's charge takes and how much memory it
//! needs, through the code that ships (`scrip_ledger::demurrage::run_due`).
//!
//! `cargo run --release -p scrip-ledger --example demurrage_bench -- [accounts] [sqlite|postgres]`
//! (default 100000 on PostgreSQL at SCRIP_TEST_POSTGRES_URL or the local server).

use std::time::Instant;

use diesel::prelude::*;
use scrip_domain::{
    Amount, CurrencyCode, Handle, Par, PrincipalId, PrincipalKind, Scale, UnitCode,
};
use scrip_ledger::demurrage::run_due;
use scrip_ledger::policy::{Demurrage, DemurragePeriod, Policies};
use scrip_ledger::{
    Ledger, NewCurrency, TransferKind, TransferRequest, create_currency, create_principal,
};
use scrip_store::Backend;
use scrip_store::schema::principals;
use scrip_store::test_support::TestDb;

const FUNDING_BATCH: usize = 1_000;

/// `VmRSS` and `VmHWM` (peak) of this process, in MiB.
fn memory_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let accounts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let backend = match args.next().as_deref() {
        Some("sqlite") => Backend::Sqlite,
        _ => Backend::Postgres,
    };
    let db = TestDb::new(backend);
    let ledger = Ledger::new(db.pool.clone());
    let scale = Scale::new(2).expect("scale");
    let started = Instant::now();
    let (issuer, holders) = ledger
        .write(|conn| {
            let shop = Handle::parse("melt-shop").expect("handle");
            let issuer = create_principal(conn, &shop, PrincipalKind::Business, None)?.id;
            let rows: Vec<_> = (0..accounts)
                .map(|i| {
                    (
                        principals::handle.eq(format!("holder{i}")),
                        principals::kind.eq("user"),
                        principals::created_at_us.eq(0_i64),
                    )
                })
                .collect();
            for chunk in rows.chunks(5_000) {
                match conn {
                    scrip_store::DbConn::Postgres(pg) => diesel::insert_into(principals::table)
                        .values(chunk)
                        .execute(pg)?,
                    scrip_store::DbConn::Sqlite(sqlite) => diesel::insert_into(principals::table)
                        .values(chunk)
                        .execute(sqlite)?,
                };
            }
            let ids: Vec<i64> = principals::table
                .filter(principals::handle.like("holder%"))
                .select(principals::id)
                .load(conn)?;
            Ok((
                issuer,
                ids.into_iter().map(PrincipalId::new).collect::<Vec<_>>(),
            ))
        })
        .expect("principals");
    let policies = Policies {
        demurrage: Some(Demurrage {
            rate_bps: 100,
            period: DemurragePeriod::Day,
            to: None,
        }),
        ..Policies::default()
    };
    let currency = ledger
        .write(|conn| {
            create_currency(
                conn,
                &NewCurrency {
                    issuer,
                    code: CurrencyCode::parse("MELT").expect("code"),
                    name: "Melting money".into(),
                    scale,
                    credit_limit: Amount::from_atoms(1_000_000_000_000, scale),
                    max_balance: None,
                    unit: UnitCode::parse("EUR").expect("unit"),
                    par: Par::one(),
                    policies: policies.clone(),
                },
            )
        })
        .expect("currency");
    for batch in holders.chunks(FUNDING_BATCH) {
        let requests: Vec<TransferRequest> = batch
            .iter()
            .enumerate()
            .map(|(i, &to)| TransferRequest {
                currency: currency.id,
                from: issuer,
                to,
                amount: Amount::from_atoms(10_000 + i as i64, scale),
                kind: TransferKind::Payment,
                memo: None,
            })
            .collect();
        for result in ledger.transfer_batch(&requests).expect("funding") {
            result.expect("funded");
        }
    }
    println!(
        "{backend:?}: {accounts} funded accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (rss_before, _) = memory_mib();
    let today = DemurragePeriod::Day.index_at(now_us());
    let at = DemurragePeriod::Day.start_us(today + 2);
    let run = Instant::now();
    let report = run_due(&ledger, at).expect("demurrage");
    let elapsed = run.elapsed().as_secs_f64();
    let (rss_after, peak) = memory_mib();
    println!(
        "one period over {} accounts: {elapsed:.2} s ({:.0} accounts/s), {} atoms taken; RSS {rss_before} -> {rss_after} MiB, peak {peak} MiB",
        report.accounts_charged,
        report.accounts_charged as f64 / elapsed,
        report.charged_atoms.values().sum::<i128>()
    );
    let audit = Instant::now();
    let clean = ledger.audit().expect("audit").is_clean();
    println!(
        "audit clean: {clean} ({:.1} s)",
        audit.elapsed().as_secs_f64()
    );
    assert!(clean);
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
