//! Realistic obligation networks for benchmarks and `scrip clearing generate`: a few large
//! firms trade with many (Zipf-skewed degrees), most trade stays within a region, and amounts
//! are heavy-tailed (Pareto), as in real inter-firm credit networks. Deterministic per seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Obligation;

#[derive(Debug, Clone, Copy)]
pub struct NetworkSpec {
    pub firms: usize,
    pub obligations: usize,
    pub seed: u64,
}

/// Zipf exponent of firm activity: a handful of hubs, a long tail of small firms.
const ACTIVITY_EXPONENT: f64 = 0.9;
/// Share of obligations within a firm's region (neighbouring ids).
const LOCAL_SHARE: f64 = 0.7;
const REGION_SIZE: usize = 200;
/// Pareto tail of amounts (atoms): minimum and shape.
const AMOUNT_MIN: f64 = 1_000.0;
const AMOUNT_SHAPE: f64 = 1.3;
const AMOUNT_MAX: f64 = 1.0e12;

/// Generates `spec.obligations` obligations among `spec.firms` firms (at least 2).
pub fn obligations(spec: &NetworkSpec) -> Vec<Obligation> {
    let firms = spec.firms.max(2);
    let mut rng = StdRng::seed_from_u64(spec.seed);
    // Cumulative Zipf weights over a random ranking of firms.
    let mut rank: Vec<u32> = (0..firms as u32).collect();
    for i in (1..firms).rev() {
        rank.swap(i, rng.random_range(0..=i));
    }
    let mut cumulative = Vec::with_capacity(firms);
    let mut total = 0.0;
    for r in 0..firms {
        total += 1.0 / ((r + 1) as f64).powf(ACTIVITY_EXPONENT);
        cumulative.push(total);
    }
    let pick = |rng: &mut StdRng| -> u32 {
        let x = rng.random_range(0.0..total);
        rank[cumulative.partition_point(|&c| c < x).min(firms - 1)]
    };
    (0..spec.obligations)
        .map(|_| {
            let debtor = pick(&mut rng);
            let creditor = loop {
                let candidate = if rng.random_bool(LOCAL_SHARE) {
                    let region = (debtor as usize / REGION_SIZE) * REGION_SIZE;
                    (region + rng.random_range(0..REGION_SIZE)).min(firms - 1) as u32
                } else {
                    pick(&mut rng)
                };
                if candidate != debtor {
                    break candidate;
                }
            };
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            let amount = (AMOUNT_MIN / u.powf(1.0 / AMOUNT_SHAPE)).min(AMOUNT_MAX) as u64;
            Obligation {
                debtor,
                creditor,
                amount,
            }
        })
        .collect()
}
