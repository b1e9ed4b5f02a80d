//! Ledger throughput on both backends: single transfers (one transaction each, from one thread
//! and from 8 threads), batched transfers (100 per transaction), and a hot-account case where
//! every transfer pays out of one issuer account.
//!
//! `cargo bench -p scrip-ledger --bench transfers` (PostgreSQL at SCRIP_TEST_POSTGRES_URL or
//! the local server). Throughput is reported in transfers per second.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scrip_domain::{
    Amount, CurrencyCode, Handle, Par, PrincipalId, PrincipalKind, Scale, UnitCode,
};
use scrip_ledger::{
    Committer, Currency, Ledger, NewCurrency, TransferKind, TransferRequest, create_currency,
    create_principal,
};
use scrip_store::Backend;
use scrip_store::test_support::TestDb;

const HOLDERS: usize = 200;
const BATCH: usize = 100;
/// A larger batch, as the group-commit writer forms under heavy load (it takes up to 256).
const BATCH_LARGE: usize = 1_000;
const THREADS: usize = 8;
/// Concurrent callers of the group-commit writer, as an HTTP server under load would have.
const SUBMITTERS: usize = 64;

struct Bench {
    _db: TestDb,
    ledger: Ledger,
    issuer: PrincipalId,
    holders: Vec<PrincipalId>,
    currency: Currency,
}

fn setup(backend: Backend) -> Bench {
    let db = TestDb::new(backend);
    let ledger = Ledger::new(db.pool.clone());
    let scale = Scale::new(2).expect("scale");
    let (issuer, holders, currency) = ledger
        .write(|conn| {
            let kind = PrincipalKind::Business;
            let issuer =
                create_principal(conn, &Handle::parse("bench-shop").expect("h"), kind, None)?.id;
            let mut holders = Vec::new();
            for i in 0..HOLDERS {
                let handle = Handle::parse(&format!("holder{i}")).expect("h");
                holders.push(create_principal(conn, &handle, PrincipalKind::User, None)?.id);
            }
            let currency = create_currency(
                conn,
                &NewCurrency {
                    issuer,
                    code: CurrencyCode::parse("BENCH").expect("code"),
                    name: "Bench".into(),
                    scale,
                    credit_limit: Amount::from_atoms(1_000_000_000_000_000, scale),
                    max_balance: None,
                    unit: UnitCode::parse("EUR").expect("unit"),
                    par: Par::one(),
                    policies: Default::default(),
                },
            )?;
            Ok((issuer, holders, currency))
        })
        .expect("setup");
    let bench = Bench {
        _db: db,
        ledger,
        issuer,
        holders,
        currency,
    };
    // Fund every holder so holder-to-holder payments always succeed.
    let funding: Vec<_> = bench
        .holders
        .iter()
        .map(|&h| bench.request(bench.issuer, h))
        .collect();
    for chunk in funding.chunks(BATCH) {
        let mut big = chunk.to_vec();
        for r in &mut big {
            r.amount = Amount::from_atoms(1_000_000_000_000, scale);
        }
        bench.ledger.transfer_batch(&big).expect("funding");
    }
    bench
}

impl Bench {
    fn request(&self, from: PrincipalId, to: PrincipalId) -> TransferRequest {
        TransferRequest {
            currency: self.currency.id,
            from,
            to,
            amount: Amount::from_atoms(1, self.currency.scale),
            kind: TransferKind::Payment,
            memo: None,
        }
    }

    /// The `n`-th transfer of a scenario: between holders, or out of the hot issuer account.
    fn nth(&self, n: usize, hot: bool) -> TransferRequest {
        let to = self.holders[n % HOLDERS];
        let from = if hot {
            self.issuer
        } else {
            self.holders[(n * 7 + 3) % HOLDERS]
        };
        let from = if from == to {
            self.holders[(n + 1) % HOLDERS]
        } else {
            from
        };
        self.request(from, to)
    }
}

fn ledger_benches(c: &mut Criterion) {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let bench = setup(backend);
        let label = format!("{backend:?}").to_lowercase();
        let mut group = c.benchmark_group(format!("ledger_{label}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(8))
            .warm_up_time(Duration::from_secs(1));
        for hot in [false, true] {
            let case = if hot { "hot_issuer" } else { "spread" };
            let mut n = 0;
            group.throughput(Throughput::Elements(1));
            group.bench_function(BenchmarkId::new("single", case), |b| {
                b.iter(|| {
                    n += 1;
                    bench.ledger.transfer(&bench.nth(n, hot)).expect("transfer")
                })
            });
            group.throughput(Throughput::Elements(THREADS as u64));
            group.bench_function(BenchmarkId::new("single_8_threads", case), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..THREADS {
                            let bench = &bench;
                            s.spawn(move || {
                                for i in 0..iters as usize {
                                    let request = bench.nth(i * THREADS + t, hot);
                                    bench.ledger.transfer(&request).expect("transfer");
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
            let committer = Committer::start(bench.ledger.clone());
            group.throughput(Throughput::Elements(SUBMITTERS as u64));
            group.bench_function(BenchmarkId::new("group_commit_64_callers", case), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..SUBMITTERS {
                            let (bench, committer) = (&bench, &committer);
                            s.spawn(move || {
                                for i in 0..iters as usize {
                                    let request = bench.nth(i * SUBMITTERS + t, hot);
                                    committer.transfer(request).expect("transfer");
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
            for (size, name) in [(BATCH, "batch_100"), (BATCH_LARGE, "batch_1000")] {
                group.throughput(Throughput::Elements(size as u64));
                group.bench_function(BenchmarkId::new(name, case), |b| {
                    b.iter(|| {
                        let batch: Vec<_> = (0..size).map(|i| bench.nth(n + i, hot)).collect();
                        n += size;
                        bench.ledger.transfer_batch(&batch).expect("batch")
                    })
                });
            }
        }
        group.finish();
        assert!(bench.ledger.audit().expect("audit").is_clean());
    }
}

criterion_group!(benches, ledger_benches);
criterion_main!(benches);
