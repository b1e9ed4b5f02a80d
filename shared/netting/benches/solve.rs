//! `cargo bench -p scrip-netting --bench solve`: the solver on generated networks, up to the
//! issue's target of 300,000 obligations among 40,000 firms (one core).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scrip_netting::generate::{NetworkSpec, obligations};
use scrip_netting::solve;

fn solver(c: &mut Criterion) {
    let mut group = c.benchmark_group("netting");
    group.sample_size(10);
    for (firms, edges) in [(4_000, 30_000), (40_000, 300_000)] {
        let spec = NetworkSpec {
            firms,
            obligations: edges,
            seed: 7,
        };
        let network = obligations(&spec);
        let result = solve(firms, &network).expect("solve");
        eprintln!(
            "{firms} firms, {edges} obligations: gross {}, cleared {} ({:.1}%), {} obligations in cycles",
            result.gross_before,
            result.total_cleared,
            100.0 * result.total_cleared as f64 / result.gross_before as f64,
            result.edges_in_cycles
        );
        group.bench_with_input(
            BenchmarkId::new("solve", format!("{firms}x{edges}")),
            &network,
            |b, network| b.iter(|| solve(firms, network).expect("solve")),
        );
    }
    group.finish();
}

criterion_group!(benches, solver);
criterion_main!(benches);
