//! On small graphs the optimum can be found by trying every integral set-off; the solver must
//! match it exactly. (Integral optima suffice: the constraint matrix is totally unimodular.)

use proptest::prelude::*;
use scrip_netting::{Obligation, check, solve};

/// The largest total over every `0 <= f(e) <= amount(e)` that balances every party.
fn brute_force(parties: usize, edges: &[Obligation]) -> u128 {
    let mut best = 0;
    let mut f = vec![0_u64; edges.len()];
    loop {
        if check(parties, edges, &f).is_ok() {
            best = best.max(f.iter().map(|&x| u128::from(x)).sum());
        }
        // Next assignment, odometer style.
        let mut i = 0;
        loop {
            if i == edges.len() {
                return best;
            }
            if f[i] < edges[i].amount {
                f[i] += 1;
                break;
            }
            f[i] = 0;
            i += 1;
        }
    }
}

fn graph() -> impl Strategy<Value = (usize, Vec<Obligation>)> {
    (2_usize..=5).prop_flat_map(|parties| {
        let edge = (0..parties as u32, 0..parties as u32, 0_u64..=3)
            .prop_filter("no self-loops", |(d, c, _)| d != c)
            .prop_map(|(debtor, creditor, amount)| Obligation {
                debtor,
                creditor,
                amount,
            });
        (Just(parties), proptest::collection::vec(edge, 0..=7))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn the_solver_finds_the_exhaustive_optimum((parties, edges) in graph()) {
        let result = solve(parties, &edges).expect("valid input");
        prop_assert_eq!(check(parties, &edges, &result.cleared), Ok(()));
        prop_assert_eq!(result.total_cleared, brute_force(parties, &edges));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Larger random graphs with large amounts: always balanced, bounded, and never worse than
    /// clearing each simple 2-cycle on its own (a lower bound any optimum meets).
    #[test]
    fn larger_graphs_stay_balanced(
        parties in 2_usize..40,
        raw in proptest::collection::vec((0_u32..40, 0_u32..40, 1_u64..1_000_000_000), 1..200)
    ) {
        let edges: Vec<Obligation> = raw
            .into_iter()
            .map(|(d, c, amount)| (d % parties as u32, c % parties as u32, amount))
            .filter(|(d, c, _)| d != c)
            .map(|(debtor, creditor, amount)| Obligation { debtor, creditor, amount })
            .collect();
        let result = solve(parties, &edges).expect("valid input");
        prop_assert_eq!(check(parties, &edges, &result.cleared), Ok(()));
        prop_assert!(result.total_cleared <= result.gross_before);
        prop_assert!(result.total_cleared >= pairwise_set_off(&edges));
    }
}

/// What bilateral netting alone clears: for each pair, twice the smaller of the two directions.
fn pairwise_set_off(edges: &[Obligation]) -> u128 {
    let mut pairs: std::collections::HashMap<(u32, u32), (u128, u128)> = Default::default();
    for e in edges {
        let key = (e.debtor.min(e.creditor), e.debtor.max(e.creditor));
        let entry = pairs.entry(key).or_default();
        if e.debtor < e.creditor {
            entry.0 += u128::from(e.amount);
        } else {
            entry.1 += u128::from(e.amount);
        }
    }
    pairs.values().map(|&(a, b)| 2 * a.min(b)).sum()
}
