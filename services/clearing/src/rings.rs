//! Ring trades: holders' standing swap intents ("I give up to 50 BREAD for GROCER at par")
//! settled at par in the same circulation as the businesses' debts. Pure: no I/O.
//!
//! The model: each currency is a node, each intent an edge from the currency it gives to the
//! currency it wants, carrying up to the value its holder offers. A circulation on these edges
//! is a set of ring trades: at every currency's node as much value flows in (given by some
//! holders) as out (received by others), so every holder receives, at par, exactly the value
//! it gives. The solver's maximum circulation is the most value that can change hands. Here
//! the flow at each node is turned into ledger transfers from the givers to the receivers.

use scrip_domain::{CurrencyId, PrincipalId, Scale};

use crate::graph::IntentEdge;

/// One transfer of a ring trade: `from` pays `to` `atoms` of `currency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingTransfer {
    pub currency: CurrencyId,
    pub scale: Scale,
    pub from: PrincipalId,
    pub to: PrincipalId,
    pub atoms: i64,
}

/// The transfers that carry out `cleared` (granules per intent, in order). At each currency the
/// givers (in intent order) pay the receivers (in intent order) until each has its share; a
/// holder on both sides of one currency pays itself nothing. `Err` when the flow does not
/// balance at some currency (a solver bug) or an amount does not fit.
pub fn transfers(intents: &[IntentEdge], cleared: &[u64]) -> Result<Vec<RingTransfer>, String> {
    if intents.len() != cleared.len() {
        return Err("one amount per intent".into());
    }
    let mut currencies: Vec<CurrencyId> = intents.iter().flat_map(|i| [i.give, i.want]).collect();
    currencies.sort_unstable();
    currencies.dedup();
    let atoms = |granules: u64, per: i64| {
        i64::try_from(granules)
            .ok()
            .and_then(|g| g.checked_mul(per))
            .ok_or_else(|| "a ring trade does not fit".to_string())
    };
    let mut out = Vec::new();
    for currency in currencies {
        let mut scale = None;
        let mut givers = Vec::new();
        let mut takers = Vec::new();
        for (intent, &granules) in intents.iter().zip(cleared).filter(|(_, g)| **g > 0) {
            if intent.give == currency {
                scale = Some(intent.give_scale);
                givers.push((
                    intent.holder,
                    atoms(granules, intent.give_atoms_per_granule)?,
                ));
            }
            if intent.want == currency {
                scale = Some(intent.want_scale);
                takers.push((
                    intent.holder,
                    atoms(granules, intent.want_atoms_per_granule)?,
                ));
            }
        }
        let (given, taken): (i64, i64) = (
            givers.iter().map(|g| g.1).sum(),
            takers.iter().map(|t| t.1).sum(),
        );
        if given != taken {
            return Err(format!(
                "currency {currency}: {given} atoms given but {taken} received"
            ));
        }
        let Some(scale) = scale else { continue };
        let (mut g, mut t) = (0, 0);
        while g < givers.len() && t < takers.len() {
            let moved = givers[g].1.min(takers[t].1);
            if moved > 0 && givers[g].0 != takers[t].0 {
                out.push(RingTransfer {
                    currency,
                    scale,
                    from: givers[g].0,
                    to: takers[t].0,
                    atoms: moved,
                });
            }
            givers[g].1 -= moved;
            takers[t].1 -= moved;
            if givers[g].1 == 0 {
                g += 1;
            }
            if takers[t].1 == 0 {
                t += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;

    fn intent(id: i64, holder: i64, give: i64, want: i64, granules: u64) -> IntentEdge {
        IntentEdge {
            id,
            holder: PrincipalId::new(holder),
            give: CurrencyId::new(give),
            want: CurrencyId::new(want),
            granules,
            give_atoms_per_granule: 1,
            want_atoms_per_granule: 1,
            give_scale: Scale::new(2).expect("scale"),
            want_scale: Scale::new(2).expect("scale"),
        }
    }

    fn solve(intents: &[IntentEdge]) -> Vec<u64> {
        let graph = Graph {
            granule_value: 1,
            edges: Vec::new(),
            intents: intents.to_vec(),
            intent_granule_value: 1,
        };
        let (parties, obligations) = graph.to_obligations();
        scrip_netting::solve(parties.len(), &obligations)
            .expect("solve")
            .cleared
    }

    /// The largest circulation by trying every integer flow (small capacities only).
    fn exhaustive(intents: &[IntentEdge]) -> u64 {
        fn walk(intents: &[IntentEdge], at: usize, flow: &mut Vec<u64>, best: &mut u64) {
            if at == intents.len() {
                let mut balance = std::collections::HashMap::<i64, i64>::new();
                for (i, &f) in intents.iter().zip(flow.iter()) {
                    let f = i64::try_from(f).expect("small");
                    *balance.entry(i.give.get()).or_default() -= f;
                    *balance.entry(i.want.get()).or_default() += f;
                }
                if balance.values().all(|&b| b == 0) {
                    *best = (*best).max(flow.iter().sum());
                }
                return;
            }
            for f in 0..=intents[at].granules {
                flow.push(f);
                walk(intents, at + 1, flow, best);
                flow.pop();
            }
        }
        let mut best = 0;
        walk(intents, 0, &mut Vec::new(), &mut best);
        best
    }

    #[test]
    fn a_ring_of_three_swaps_at_par() {
        // 1 gives A for B, 2 gives B for C, 3 gives C for A; the smallest offer limits the ring.
        let intents = [
            intent(1, 1, 10, 11, 50),
            intent(2, 2, 11, 12, 30),
            intent(3, 3, 12, 10, 40),
        ];
        let cleared = solve(&intents);
        assert_eq!(cleared, vec![30, 30, 30]);
        let moves = transfers(&intents, &cleared).expect("balanced");
        // Each currency goes from its giver to its wanter: A 1->3, B 2->1, C 3->2.
        let mut pairs: Vec<(i64, i64, i64, i64)> = moves
            .iter()
            .map(|m| (m.currency.get(), m.from.get(), m.to.get(), m.atoms))
            .collect();
        pairs.sort_unstable();
        assert_eq!(pairs, vec![(10, 1, 3, 30), (11, 2, 1, 30), (12, 3, 2, 30)]);
    }

    #[test]
    fn the_solver_finds_the_optimum_of_every_small_graph() {
        // Every graph of up to 5 intents among 3 currencies, capacities 0..=2, by a fixed
        // pseudo-random walk: the solver's total equals the exhaustive maximum.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..400 {
            let count = 1 + usize::try_from(next(5)).expect("small");
            let mut intents = Vec::new();
            for id in 0..count {
                let give = i64::try_from(next(3)).expect("small");
                let want = (give + 1 + i64::try_from(next(2)).expect("small")) % 3;
                let holder = i64::try_from(next(3)).expect("small");
                let id = i64::try_from(id).expect("small");
                intents.push(intent(id, holder, give, want, 1 + next(2)));
            }
            let cleared = solve(&intents);
            assert_eq!(
                cleared.iter().sum::<u64>(),
                exhaustive(&intents),
                "{intents:?}"
            );
            transfers(&intents, &cleared).expect("every node balances");
        }
    }

    #[test]
    fn an_unbalanced_flow_is_refused() {
        let intents = [intent(1, 1, 10, 11, 5), intent(2, 2, 11, 10, 5)];
        assert!(transfers(&intents, &[5, 4]).is_err());
        assert!(transfers(&intents, &[5]).is_err());
    }
}
