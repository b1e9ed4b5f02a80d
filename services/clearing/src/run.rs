//! Loading the graph from the ledger, and clearing runs: solve, then apply every set-off as a
//! ledger transfer (holder pays the issuer back in its own currency) in one transaction.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use scrip_domain::{CurrencyId, Par, PrincipalId, PrincipalKind, Scale, UnitCode};
use scrip_ledger::{LedgerError, TransferKind, TransferRequest, transfer_many};
use scrip_store::DbConn;
use scrip_store::schema::{
    accounts, clearing_opt_outs, clearing_runs, clearing_settlements, currencies, principals,
};

use crate::graph::{Graph, Holding, build};

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Businesses that take part: every business that has not opted out.
fn participants(conn: &mut DbConn) -> Result<HashSet<i64>, LedgerError> {
    let businesses: Vec<i64> = principals::table
        .filter(principals::kind.eq(PrincipalKind::Business.as_str()))
        .select(principals::id)
        .load(conn)?;
    let opted_out: HashSet<i64> = clearing_opt_outs::table
        .select(clearing_opt_outs::business_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    Ok(businesses
        .into_iter()
        .filter(|b| !opted_out.contains(b))
        .collect())
}

/// The debt graph in `unit`: available (unheld) holdings between participating businesses.
pub fn load_graph(conn: &mut DbConn, unit: &UnitCode) -> Result<Graph, LedgerError> {
    let taking_part = participants(conn)?;
    let rows: Vec<(i64, i64, i64, i64, i64, i32, String)> = accounts::table
        .inner_join(currencies::table)
        .filter(currencies::unit.eq(unit.as_str()))
        .filter(accounts::principal_id.ne(currencies::issuer_id))
        .filter((accounts::balance_atoms - accounts::held_atoms).gt(0))
        .order(accounts::id)
        .select((
            accounts::principal_id,
            currencies::issuer_id,
            currencies::id,
            accounts::balance_atoms,
            accounts::held_atoms,
            currencies::scale,
            currencies::par,
        ))
        .load(conn)?;
    let mut holdings = Vec::new();
    for (holder, issuer, currency, balance, held, scale, par) in rows {
        if taking_part.contains(&holder) && taking_part.contains(&issuer) {
            holdings.push(Holding {
                holder: PrincipalId::new(holder),
                issuer: PrincipalId::new(issuer),
                currency: CurrencyId::new(currency),
                available_atoms: balance - held,
                scale: Scale::new(i64::from(scale))?,
                par: Par::parse(&par)?,
            });
        }
    }
    Ok(build(&holdings))
}

/// One set-off of a run, as recorded: `debtor`'s debt to `creditor` fell by `amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub debtor: PrincipalId,
    pub creditor: PrincipalId,
    pub amount: String,
}

/// A set-off about to be applied: the settlement and the ledger transfer that applies it.
struct Planned {
    settlement: Settlement,
    currency: CurrencyId,
    amount: scrip_domain::Amount,
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    pub unit: String,
    pub dry_run: bool,
    pub started_at_us: i64,
    pub finished_at_us: i64,
    pub participants: i64,
    pub edges: i64,
    pub cycles: i64,
    pub gross_before: String,
    pub cleared: String,
    pub gross_after: String,
    pub settlements: Vec<Settlement>,
}

/// Why a run could not be applied.
#[derive(Debug)]
pub enum RunError {
    /// A holder spent what the run meant to set off while it ran; nothing was applied.
    Conflict,
    Ledger(LedgerError),
}

impl From<LedgerError> for RunError {
    fn from(error: LedgerError) -> Self {
        Self::Ledger(error)
    }
}

/// Computes the optimal set-off in `unit` and, unless `dry_run`, applies it: all of it or none.
pub fn execute(
    conn: &mut DbConn,
    unit: &UnitCode,
    dry_run: bool,
    requested_by: Option<PrincipalId>,
) -> Result<RunRecord, RunError> {
    let started_at_us = now_us();
    let graph = load_graph(conn, unit)?;
    let (parties, obligations) = graph.to_obligations();
    let set_off = scrip_netting::solve(parties.len(), &obligations)
        .map_err(|e| LedgerError::Unavailable(format!("clearing solver: {e}")))?;
    let planned: Vec<Planned> = graph
        .edges
        .iter()
        .zip(&set_off.cleared)
        .filter(|&(_, &granules)| granules > 0)
        .map(|(edge, &granules)| {
            // granules <= the holding's available atoms / atoms_per_granule, so this fits.
            let atoms = i64::try_from(granules)
                .unwrap_or(i64::MAX)
                .saturating_mul(edge.atoms_per_granule);
            Planned {
                settlement: Settlement {
                    debtor: edge.debtor,
                    creditor: edge.creditor,
                    amount: graph.value(u128::from(granules)),
                },
                currency: edge.currency,
                amount: scrip_domain::Amount::from_atoms(atoms, edge.scale),
            }
        })
        .collect();
    let run_id: i64 = diesel::insert_into(clearing_runs::table)
        .values((
            clearing_runs::unit.eq(unit.as_str()),
            clearing_runs::dry_run.eq(i32::from(dry_run)),
            clearing_runs::started_at_us.eq(started_at_us),
            clearing_runs::finished_at_us.eq(started_at_us),
            clearing_runs::participants
                .eq(i64::try_from(set_off.parties_in_cycles).unwrap_or(i64::MAX)),
            clearing_runs::edges.eq(i64::try_from(graph.edges.len()).unwrap_or(i64::MAX)),
            clearing_runs::cycles.eq(i64::try_from(set_off.cycles).unwrap_or(i64::MAX)),
            clearing_runs::gross_before.eq(graph.value(set_off.gross_before)),
            clearing_runs::cleared.eq(graph.value(set_off.total_cleared)),
            clearing_runs::gross_after.eq(graph.value(set_off.gross_after())),
            clearing_runs::requested_by.eq(requested_by.map(PrincipalId::get)),
        ))
        .returning(clearing_runs::id)
        .get_result(conn)
        .map_err(LedgerError::from)?;
    let transfer_ids: Vec<Option<i64>> = if dry_run {
        vec![None; planned.len()]
    } else {
        // The holder pays the issuer back in the issuer's own currency: the holder's claim
        // and the issuer's debt fall together, so the ledger's invariants hold throughout.
        let requests: Vec<TransferRequest> = planned
            .iter()
            .map(|p| TransferRequest {
                currency: p.currency,
                from: p.settlement.creditor,
                to: p.settlement.debtor,
                amount: p.amount,
                kind: TransferKind::Clearing,
                memo: Some(format!("clearing run {run_id}")),
            })
            .collect();
        let mut ids = Vec::with_capacity(requests.len());
        for outcome in transfer_many(conn, &requests)? {
            match outcome {
                Ok(transfer) => ids.push(Some(transfer.id.get())),
                Err(e) if e.is_business_rule() => return Err(RunError::Conflict),
                Err(e) => return Err(e.into()),
            }
        }
        ids
    };
    for (p, transfer_id) in planned.iter().zip(&transfer_ids) {
        diesel::insert_into(clearing_settlements::table)
            .values((
                clearing_settlements::run_id.eq(run_id),
                clearing_settlements::debtor_id.eq(p.settlement.debtor.get()),
                clearing_settlements::creditor_id.eq(p.settlement.creditor.get()),
                clearing_settlements::amount.eq(&p.settlement.amount),
                clearing_settlements::source.eq("holding"),
                clearing_settlements::currency_id.eq(Some(p.currency.get())),
                clearing_settlements::transfer_id.eq(*transfer_id),
            ))
            .execute(conn)
            .map_err(LedgerError::from)?;
    }
    let finished_at_us = now_us();
    diesel::update(clearing_runs::table.find(run_id))
        .set(clearing_runs::finished_at_us.eq(finished_at_us))
        .execute(conn)
        .map_err(LedgerError::from)?;
    Ok(RunRecord {
        id: run_id,
        unit: unit.to_string(),
        dry_run,
        started_at_us,
        finished_at_us,
        participants: i64::try_from(set_off.parties_in_cycles).unwrap_or(i64::MAX),
        edges: i64::try_from(graph.edges.len()).unwrap_or(i64::MAX),
        cycles: i64::try_from(set_off.cycles).unwrap_or(i64::MAX),
        gross_before: graph.value(set_off.gross_before),
        cleared: graph.value(set_off.total_cleared),
        gross_after: graph.value(set_off.gross_after()),
        settlements: planned.into_iter().map(|p| p.settlement).collect(),
    })
}

type RunRow = (
    i64,
    String,
    i32,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    String,
);

/// A recorded run with its settlements, or `None`.
pub fn load_run(conn: &mut DbConn, id: i64) -> Result<Option<RunRecord>, LedgerError> {
    let runs = load_runs(conn, Some(id), None, 1)?;
    Ok(runs.into_iter().next())
}

/// Runs newest first (`id < before`), with settlements.
pub fn load_runs(
    conn: &mut DbConn,
    only: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RunRecord>, LedgerError> {
    let mut query = clearing_runs::table
        .select((
            clearing_runs::id,
            clearing_runs::unit,
            clearing_runs::dry_run,
            clearing_runs::started_at_us,
            clearing_runs::finished_at_us,
            clearing_runs::participants,
            clearing_runs::edges,
            clearing_runs::cycles,
            clearing_runs::gross_before,
            clearing_runs::cleared,
            clearing_runs::gross_after,
        ))
        .order(clearing_runs::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(id) = only {
        query = query.filter(clearing_runs::id.eq(id));
    }
    if let Some(before) = before {
        query = query.filter(clearing_runs::id.lt(before));
    }
    let rows: Vec<RunRow> = query.load(conn)?;
    let mut runs = Vec::with_capacity(rows.len());
    for (
        id,
        unit,
        dry_run,
        started_at_us,
        finished_at_us,
        participants,
        edges,
        cycles,
        gross_before,
        cleared,
        gross_after,
    ) in rows
    {
        let settlements: Vec<(i64, i64, String)> = clearing_settlements::table
            .filter(clearing_settlements::run_id.eq(id))
            .order(clearing_settlements::id)
            .select((
                clearing_settlements::debtor_id,
                clearing_settlements::creditor_id,
                clearing_settlements::amount,
            ))
            .load(conn)?;
        runs.push(RunRecord {
            id,
            unit,
            dry_run: dry_run != 0,
            started_at_us,
            finished_at_us,
            participants,
            edges,
            cycles,
            gross_before,
            cleared,
            gross_after,
            settlements: settlements
                .into_iter()
                .map(|(debtor, creditor, amount)| Settlement {
                    debtor: PrincipalId::new(debtor),
                    creditor: PrincipalId::new(creditor),
                    amount,
                })
                .collect(),
        });
    }
    Ok(runs)
}

/// Handles of principals by id, for rendering.
pub fn handles(
    conn: &mut DbConn,
    ids: impl IntoIterator<Item = PrincipalId>,
) -> Result<HashMap<PrincipalId, String>, LedgerError> {
    let ids: Vec<i64> = ids.into_iter().map(PrincipalId::get).collect();
    Ok(principals::table
        .filter(principals::id.eq_any(ids))
        .select((principals::id, principals::handle))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .map(|(id, handle)| (PrincipalId::new(id), handle))
        .collect())
}

/// Opts a business in or out of clearing.
pub fn set_participation(
    conn: &mut DbConn,
    business: PrincipalId,
    enabled: bool,
) -> Result<(), LedgerError> {
    diesel::delete(clearing_opt_outs::table.find(business.get())).execute(conn)?;
    if !enabled {
        diesel::insert_into(clearing_opt_outs::table)
            .values((
                clearing_opt_outs::business_id.eq(business.get()),
                clearing_opt_outs::created_at_us.eq(now_us()),
            ))
            .execute(conn)?;
    }
    Ok(())
}
