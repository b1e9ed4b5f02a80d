//! Optimal multilateral set-off.
//!
//! Input: obligations "debtor owes creditor `amount`". Output: how much of each to set off,
//! `0 <= f(e) <= amount(e)`, such that at every participant what is set off on the debts it
//! owes equals what is set off on the debts it is owed (so every net position is unchanged),
//! and the total set off is as large as possible. This is the maximum circulation problem.
//!
//! Method (exact, integral, deterministic):
//! 1. Only edges inside a strongly connected component can lie on a cycle, so every other
//!    edge is pruned up front (Tarjan's algorithm, iterative).
//! 2. Start from the (usually infeasible) all-cleared solution `f = amount`; each participant is
//!    then left with an imbalance. Restoring balance means un-clearing some amounts, each unit
//!    un-cleared costing 1: a min-cost flow problem with unit costs on the reversed edges.
//! 3. Solve it with the primal-dual method: Dijkstra on reduced costs for potentials, then a
//!    maximum flow on the zero-reduced-cost subgraph by shortest augmenting paths (ISAP),
//!    until every imbalance is routed.
//!    Min-cost flow optimality makes the un-cleared total minimal, so the cleared total is the
//!    maximum. No cycle-cancelling heuristic is involved.
//!
//! Nothing here allocates per augmentation; arrays are sized once per solve.

mod flow;
pub mod generate;
mod scc;

use thiserror::Error;

/// One obligation: `debtor` owes `creditor` `amount` (in the clearing's unit, as integer atoms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obligation {
    pub debtor: u32,
    pub creditor: u32,
    pub amount: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NettingError {
    #[error(
        "obligation {index} has the same debtor and creditor ({node}); a party cannot owe itself"
    )]
    SelfLoop { index: usize, node: u32 },
    #[error("obligation {index} names party {node}, but there are only {parties} parties")]
    UnknownParty {
        index: usize,
        node: u32,
        parties: usize,
    },
    #[error("too many parties or obligations for one solve (at most {max})")]
    TooLarge { max: usize },
}

/// The optimal set-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOff {
    /// Amount set off per obligation, in input order.
    pub cleared: Vec<u64>,
    /// Sum of all obligations before.
    pub gross_before: u128,
    /// Sum set off: the maximum possible.
    pub total_cleared: u128,
    /// Obligations that lie inside a strongly connected component (the others cannot clear).
    pub edges_in_cycles: usize,
    /// Parties that take part in at least one such obligation.
    pub parties_in_cycles: usize,
    /// Strongly connected groups of parties in which something was set off.
    pub cycles: usize,
}

impl SetOff {
    pub fn gross_after(&self) -> u128 {
        self.gross_before - self.total_cleared
    }
}

/// Largest number of parties or obligations in one solve: indexes are `u32`, and the flow
/// network has two arcs per obligation plus two per party.
pub const MAX_SIZE: usize = (u32::MAX / 4) as usize;

/// Solves the maximum circulation for `parties` parties (numbered `0..parties`).
pub fn solve(parties: usize, obligations: &[Obligation]) -> Result<SetOff, NettingError> {
    if parties > MAX_SIZE || obligations.len() > MAX_SIZE {
        return Err(NettingError::TooLarge { max: MAX_SIZE });
    }
    for (index, o) in obligations.iter().enumerate() {
        for node in [o.debtor, o.creditor] {
            if node as usize >= parties {
                return Err(NettingError::UnknownParty {
                    index,
                    node,
                    parties,
                });
            }
        }
        if o.debtor == o.creditor {
            return Err(NettingError::SelfLoop {
                index,
                node: o.debtor,
            });
        }
    }
    let gross_before = obligations.iter().map(|o| u128::from(o.amount)).sum();
    let component = scc::components(parties, obligations);
    let in_cycle: Vec<usize> = (0..obligations.len())
        .filter(|&i| {
            let o = obligations[i];
            o.amount > 0 && component[o.debtor as usize] == component[o.creditor as usize]
        })
        .collect();
    let cleared = clear_merged(parties, obligations, &in_cycle);
    let mut participating = vec![false; parties];
    for &edge in &in_cycle {
        participating[obligations[edge].debtor as usize] = true;
        participating[obligations[edge].creditor as usize] = true;
    }
    let total_cleared = cleared.iter().map(|&c| u128::from(c)).sum();
    let mut groups: Vec<u32> = in_cycle
        .iter()
        .filter(|&&edge| cleared[edge] > 0)
        .map(|&edge| component[obligations[edge].debtor as usize])
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let set_off = SetOff {
        cleared,
        gross_before,
        total_cleared,
        edges_in_cycles: in_cycle.len(),
        parties_in_cycles: participating.iter().filter(|&&p| p).count(),
        cycles: groups.len(),
    };
    debug_assert_eq!(check(parties, obligations, &set_off.cleared), Ok(()));
    Ok(set_off)
}

/// Parallel obligations (same debtor and creditor) are one arc to the solver, which makes the
/// network smaller; the arc's set-off is then shared out over them in input order.
fn clear_merged(parties: usize, obligations: &[Obligation], in_cycle: &[usize]) -> Vec<u64> {
    let mut order = in_cycle.to_vec();
    order.sort_by_key(|&i| (obligations[i].debtor, obligations[i].creditor, i));
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut debts: Vec<(u32, u32, u128)> = Vec::new();
    for (position, &edge) in order.iter().enumerate() {
        let o = obligations[edge];
        match debts.last_mut() {
            Some(last) if (last.0, last.1) == (o.debtor, o.creditor) => {
                last.2 += u128::from(o.amount);
                if let Some(group) = groups.last_mut() {
                    group.1 = position + 1;
                }
            }
            _ => {
                debts.push((o.debtor, o.creditor, u128::from(o.amount)));
                groups.push((position, position + 1));
            }
        }
    }
    let uncleared = flow::min_uncleared(parties, &debts);
    let mut cleared = vec![0_u64; obligations.len()];
    for ((&(start, end), &(_, _, total)), &undone) in groups.iter().zip(&debts).zip(&uncleared) {
        let mut to_clear = total - undone;
        for &edge in &order[start..end] {
            let take = u64::try_from(to_clear.min(u128::from(obligations[edge].amount)))
                .unwrap_or(u64::MAX);
            cleared[edge] = take;
            to_clear -= u128::from(take);
        }
    }
    cleared
}

/// Checks a set-off: every amount within its obligation, and every party's set-off owed equal
/// to its set-off owing (net positions unchanged). Independent of the solver.
pub fn check(parties: usize, obligations: &[Obligation], cleared: &[u64]) -> Result<(), String> {
    if cleared.len() != obligations.len() {
        return Err("one amount per obligation".into());
    }
    let mut balance = vec![0_i128; parties];
    for (i, (o, &c)) in obligations.iter().zip(cleared).enumerate() {
        if c > o.amount {
            return Err(format!("obligation {i}: {c} set off of {}", o.amount));
        }
        balance[o.debtor as usize] -= i128::from(c);
        balance[o.creditor as usize] += i128::from(c);
    }
    match balance.iter().position(|&b| b != 0) {
        Some(party) => Err(format!(
            "party {party}: net position changed by {}",
            balance[party]
        )),
        None => Ok(()),
    }
}
