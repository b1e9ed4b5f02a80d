//! What a run does to each business, worked out from the graph and the set-off. Pure: no I/O.
//!
//! - [`positions`]: per business, what it owes and is owed before and after, in granules; its
//!   net position (owed - owes) never changes, and [`Position::new`] refuses one that would.
//! - [`balance_moves`]: per account a run's holding set-offs touch, by how many atoms its
//!   balance moves (the holder's falls, the issuer's issuing account rises by as much).
//! - [`net_changes`]: the change of every business's net position, in exact value, from the
//!   balances and obligations as the ledger shows them after applying; must be zero for all.
//! - [`digest`]: a fingerprint of the graph a preview solved, so applying it later proves the
//!   debts are still exactly the ones previewed.

use std::collections::BTreeMap;

use scrip_domain::{CurrencyId, PrincipalId};
use sha2::{Digest, Sha256};

use crate::graph::{Edge, Graph, Source};

/// A business's side of a run, in the run's granules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub business: PrincipalId,
    pub owes_before: u64,
    pub owed_before: u64,
    pub owes_after: u64,
    pub owed_after: u64,
}

impl Position {
    /// Owed minus owes: what the business would be left with if every debt were paid.
    pub fn net_before(&self) -> i128 {
        i128::from(self.owed_before) - i128::from(self.owes_before)
    }

    pub fn net_after(&self) -> i128 {
        i128::from(self.owed_after) - i128::from(self.owes_after)
    }
}

/// Every business of the graph with what the set-off `cleared` (one amount per edge, in the
/// graph's order) does to it; ordered by business. `Err` names a business whose net position
/// the set-off would change, or an edge set off beyond its amount: a solver bug, refused.
pub fn positions(edges: &[Edge], cleared: &[u64]) -> Result<Vec<Position>, String> {
    if edges.len() != cleared.len() {
        return Err("one set-off amount per edge".into());
    }
    let mut by_business: BTreeMap<PrincipalId, Position> = BTreeMap::new();
    let mut updates = Vec::with_capacity(edges.len() * 2);
    for (edge, &set_off) in edges.iter().zip(cleared) {
        let left = edge
            .granules
            .checked_sub(set_off)
            .ok_or_else(|| format!("an edge of {} set off by {set_off}", edge.granules))?;
        updates.push((edge.debtor, edge.granules, left, true));
        updates.push((edge.creditor, edge.granules, left, false));
    }
    for (business, before, after, owing) in updates {
        let position = by_business.entry(business).or_insert(Position {
            business,
            owes_before: 0,
            owed_before: 0,
            owes_after: 0,
            owed_after: 0,
        });
        let add = |total: u64, amount: u64| {
            total
                .checked_add(amount)
                .ok_or_else(|| "a position does not fit".to_string())
        };
        if owing {
            position.owes_before = add(position.owes_before, before)?;
            position.owes_after = add(position.owes_after, after)?;
        } else {
            position.owed_before = add(position.owed_before, before)?;
            position.owed_after = add(position.owed_after, after)?;
        }
    }
    let positions: Vec<Position> = by_business.into_values().collect();
    match positions.iter().find(|p| p.net_before() != p.net_after()) {
        Some(p) => Err(format!(
            "the set-off would change principal {}'s net position from {} to {} granules",
            p.business,
            p.net_before(),
            p.net_after()
        )),
        None => Ok(positions),
    }
}

/// One account's balance move: `(holder or issuer, currency) -> atoms` (negative: falls).
pub type BalanceMoves = BTreeMap<(PrincipalId, CurrencyId), i64>;

/// The balance moves of the holding set-offs `(edge, atoms)`: the holder (the edge's creditor)
/// pays the issuer (its debtor) back in the issuer's currency.
pub fn balance_moves<'a>(set_offs: impl IntoIterator<Item = (&'a Edge, i64)>) -> BalanceMoves {
    let mut moves = BalanceMoves::new();
    for (edge, atoms) in set_offs {
        if let Source::Holding { currency, .. } = edge.source {
            *moves.entry((edge.creditor, currency)).or_default() -= atoms;
            *moves.entry((edge.debtor, currency)).or_default() += atoms;
        }
    }
    moves
}

/// A debt as the ledger shows it before and after a run, in exact value (10^-16 of the unit):
/// a holder's balance of an issuer's currency, or an obligation's remaining amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebtChange {
    pub debtor: PrincipalId,
    pub creditor: PrincipalId,
    pub before_value: i128,
    pub after_value: i128,
}

/// How every business's net position changed, from debts read back after applying. A run
/// keeps every net position, so every figure is zero; the caller refuses the run otherwise.
pub fn net_changes(debts: &[DebtChange]) -> BTreeMap<PrincipalId, i128> {
    let mut changes: BTreeMap<PrincipalId, i128> = BTreeMap::new();
    for debt in debts {
        let change = debt.after_value - debt.before_value;
        *changes.entry(debt.creditor).or_default() += change;
        *changes.entry(debt.debtor).or_default() -= change;
    }
    changes
}

/// A fingerprint of the graph: its granule and every edge (who, whom, how much, of what), in
/// order. Two graphs with the same digest give the solver the same problem.
pub fn digest(graph: &Graph) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"scrip-clearing-graph-v1");
    hasher.update(graph.granule_value.to_be_bytes());
    for edge in &graph.edges {
        hasher.update(edge.debtor.get().to_be_bytes());
        hasher.update(edge.creditor.get().to_be_bytes());
        hasher.update(edge.granules.to_be_bytes());
        match edge.source {
            Source::Holding {
                currency,
                atoms_per_granule,
                ..
            } => {
                hasher.update([0]);
                hasher.update(currency.get().to_be_bytes());
                hasher.update(atoms_per_granule.to_be_bytes());
            }
            Source::Obligation {
                id,
                atoms_per_granule,
            } => {
                hasher.update([1]);
                hasher.update(id.to_be_bytes());
                hasher.update(atoms_per_granule.to_be_bytes());
            }
        }
    }
    hasher.update(graph.intent_granule_value.to_be_bytes());
    for intent in &graph.intents {
        hasher.update([2]);
        hasher.update(intent.id.to_be_bytes());
        hasher.update(intent.granules.to_be_bytes());
        hasher.update(intent.give_atoms_per_granule.to_be_bytes());
        hasher.update(intent.want_atoms_per_granule.to_be_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrip_domain::Scale;

    fn p(id: i64) -> PrincipalId {
        PrincipalId::new(id)
    }

    fn holding(debtor: i64, creditor: i64, granules: u64, currency: i64) -> Edge {
        Edge {
            debtor: p(debtor),
            creditor: p(creditor),
            granules,
            source: Source::Holding {
                currency: CurrencyId::new(currency),
                scale: Scale::new(2).expect("scale"),
                atoms_per_granule: 1,
            },
        }
    }

    #[test]
    fn a_cycle_keeps_every_net_position() {
        let edges = [
            holding(1, 2, 10, 1),
            holding(2, 3, 7, 2),
            holding(3, 1, 5, 3),
        ];
        let positions = positions(&edges, &[5, 5, 5]).expect("a balanced set-off");
        assert_eq!(positions.len(), 3);
        let first = positions[0];
        assert_eq!(
            (
                first.owes_before,
                first.owed_before,
                first.owes_after,
                first.owed_after
            ),
            (10, 5, 5, 0)
        );
        assert!(positions.iter().all(|p| p.net_before() == p.net_after()));
    }

    #[test]
    fn an_unbalanced_set_off_is_refused() {
        let edges = [holding(1, 2, 10, 1), holding(2, 1, 10, 2)];
        assert!(positions(&edges, &[3, 2]).is_err());
        assert!(positions(&edges, &[11, 11]).is_err(), "beyond the edge");
        assert!(positions(&edges, &[3]).is_err(), "one amount per edge");
    }

    #[test]
    fn balance_moves_pay_the_issuer_back() {
        let edges = [holding(1, 2, 10, 7), holding(1, 3, 4, 7)];
        let moves = balance_moves(edges.iter().zip([300, 100]));
        assert_eq!(moves[&(p(2), CurrencyId::new(7))], -300);
        assert_eq!(moves[&(p(3), CurrencyId::new(7))], -100);
        assert_eq!(moves[&(p(1), CurrencyId::new(7))], 400);
    }

    #[test]
    fn net_changes_sum_what_each_side_gained() {
        let debt = |debtor, creditor, before_value, after_value| DebtChange {
            debtor: p(debtor),
            creditor: p(creditor),
            before_value,
            after_value,
        };
        let kept = net_changes(&[debt(1, 2, 10, 5), debt(2, 1, 8, 3)]);
        assert!(kept.values().all(|&v| v == 0));
        let broken = net_changes(&[debt(1, 2, 10, 5), debt(2, 1, 8, 4)]);
        assert_eq!(broken[&p(2)], -5 + 4);
    }

    #[test]
    fn the_digest_changes_with_any_edge() {
        let graph = |granules| Graph {
            granule_value: 1,
            edges: vec![holding(1, 2, granules, 1)],
            intents: Vec::new(),
            intent_granule_value: 1,
        };
        assert_eq!(digest(&graph(10)), digest(&graph(10)));
        assert_ne!(digest(&graph(10)), digest(&graph(11)));
    }
}
