//! Loading the graph from the ledger, and clearing runs: solve, then apply every set-off as a
//! ledger transfer (holder pays the issuer back in its own currency) in one transaction.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use scrip_domain::{CurrencyId, Par, PrincipalId, PrincipalKind, Scale, UnitCode};
use scrip_http::now_us;
use scrip_ledger::{LedgerError, TransferKind, TransferRequest, transfer_many};
use scrip_store::DbConn;
use scrip_store::schema::{
    accounts, clearing_opt_outs, clearing_runs, clearing_settlements, currencies, principals,
};

use crate::graph::{Graph, Holding, OpenObligation, Source, build};
use crate::store;

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
/// Only what the currencies' policies let clearing settle: an issuer-credit currency's
/// holdings (in a mutual-credit one a positive balance is owed by the whole community, not by
/// its issuer, so there is no issuer's debt to set off), never a frozen account's.
pub fn load_graph(conn: &mut DbConn, unit: &UnitCode) -> Result<Graph, LedgerError> {
    let taking_part = participants(conn)?;
    let rows: Vec<(i64, i64, i64, i64, i64, i32, String)> = accounts::table
        .inner_join(currencies::table)
        .filter(currencies::unit.eq(unit.as_str()))
        .filter(currencies::kind.eq(scrip_ledger::policy::CurrencyKind::IssuerCredit.as_str()))
        .filter(accounts::frozen.eq(0))
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
    let open: Vec<OpenObligation> = store::open_accepted(conn, unit.as_str())?
        .into_iter()
        .filter(|(_, debtor, creditor, _)| {
            taking_part.contains(&debtor.get()) && taking_part.contains(&creditor.get())
        })
        .map(|(id, debtor, creditor, remaining_atoms)| OpenObligation {
            id,
            debtor,
            creditor,
            remaining_atoms,
        })
        .collect();
    Ok(build(&holdings, &open))
}

/// Lowers an obligation's remaining amount; a conflict when it no longer has that much left.
fn reduce_obligation(conn: &mut DbConn, id: i64, atoms: i64) -> Result<(), RunError> {
    if store::reduce(conn, id, atoms)? {
        Ok(())
    } else {
        Err(RunError::Conflict(format!(
            "obligation {id} no longer has {atoms} atoms left"
        )))
    }
}

/// What a settlement set off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementSource {
    /// The creditor held the debtor's currency and paid it back.
    Holding,
    /// An accepted obligation was reduced.
    Obligation,
}

impl SettlementSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Holding => "holding",
            Self::Obligation => "obligation",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Holding, Self::Obligation]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }

    fn of(source: &Source) -> Self {
        match source {
            Source::Holding { .. } => Self::Holding,
            Source::Obligation { .. } => Self::Obligation,
        }
    }
}

/// One set-off of a run, as recorded: `debtor`'s debt to `creditor` fell by `granules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub debtor: PrincipalId,
    pub creditor: PrincipalId,
    pub granules: i64,
    pub source: SettlementSource,
}

/// A set-off about to be applied: the settlement, the edge it clears and by how many atoms.
struct Planned {
    settlement: Settlement,
    source: Source,
    atoms: i64,
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
    /// The value of one granule in 10^-16 of the unit: every amount of the run is a whole
    /// number of granules.
    pub granule_value_e16: i64,
    pub gross_before_granules: i64,
    pub cleared_granules: i64,
    pub gross_after_granules: i64,
    pub settlements: Vec<Settlement>,
    /// The operator who started it; `None` for the schedule.
    pub requested_by: Option<PrincipalId>,
}

impl RunRecord {
    /// The exact value of `granules` of this run, as a decimal string in its unit.
    pub fn value(&self, granules: i64) -> String {
        // Both are stored non-negative (CHECK constraints), and their product fits a u128.
        let granules = u128::try_from(granules).expect("granules are never negative");
        let granule = u128::try_from(self.granule_value_e16).expect("a granule is positive");
        crate::graph::format_value(granules * granule)
    }
}

/// A count the database stores as `BIGINT`; one that does not fit refuses the run as a bug
/// instead of recording a clamped figure.
fn stored_count(
    what: &str,
    count: impl TryInto<i64> + Copy + std::fmt::Display,
) -> Result<i64, LedgerError> {
    count.try_into().map_err(|_| {
        tracing::error!(what, %count, "a clearing figure does not fit a BIGINT");
        LedgerError::Invariant(format!("the run's {what} ({count}) does not fit"))
    })
}

/// Why a run could not be applied.
#[derive(Debug)]
pub enum RunError {
    /// The ledger refused one of the set-offs (a holder spent the funds meanwhile, or a rule
    /// such as a ceiling stood in the way); nothing was applied. Says which one.
    Conflict(String),
    Ledger(LedgerError),
}

impl From<LedgerError> for RunError {
    fn from(error: LedgerError) -> Self {
        Self::Ledger(error)
    }
}

/// The atoms a set-off of `granules` moves. The solver never clears more granules than an
/// edge carries (its atoms divided by `atoms_per_granule`), so this fits; if it did not, the
/// run is refused as a bug instead of settling a clamped amount.
fn settlement_atoms(granules: u64, atoms_per_granule: i64) -> Result<i64, LedgerError> {
    i64::try_from(granules)
        .ok()
        .and_then(|g| g.checked_mul(atoms_per_granule))
        .filter(|atoms| *atoms > 0)
        .ok_or_else(|| {
            tracing::error!(
                granules,
                atoms_per_granule,
                "a set-off does not fit its edge"
            );
            LedgerError::Invariant(format!(
                "a set-off of {granules} granules of {atoms_per_granule} atoms does not fit"
            ))
        })
}

/// Who started a run, and so whether a run that clears nothing is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An operator's request: always recorded, and answered with the record.
    Operator(PrincipalId),
    /// The schedule: recorded only when it clears something, so the history of runs is not
    /// buried under an empty run every interval. The metrics count every run.
    Schedule,
}

/// What a run did.
#[derive(Debug)]
pub enum Ran {
    Recorded(RunRecord),
    /// A scheduled run found nothing to clear and left no record: the gross debt it saw.
    NothingToClear {
        gross_before: String,
    },
}

/// Computes the optimal set-off in `unit` and, unless `dry_run`, applies it: all of it or none.
pub fn execute(
    conn: &mut DbConn,
    unit: &UnitCode,
    dry_run: bool,
    trigger: Trigger,
) -> Result<Ran, RunError> {
    let requested_by = match trigger {
        Trigger::Operator(operator) => Some(operator),
        Trigger::Schedule => None,
    };
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
            Ok(Planned {
                settlement: Settlement {
                    debtor: edge.debtor,
                    creditor: edge.creditor,
                    granules: stored_count("granules of a settlement", granules)?,
                    source: SettlementSource::of(&edge.source),
                },
                source: edge.source,
                atoms: settlement_atoms(granules, edge.source.atoms_per_granule())?,
            })
        })
        .collect::<Result<_, LedgerError>>()?;
    if planned.is_empty() && trigger == Trigger::Schedule {
        return Ok(Ran::NothingToClear {
            gross_before: graph.value(set_off.gross_before),
        });
    }
    let mut record = RunRecord {
        id: 0,
        unit: unit.to_string(),
        dry_run,
        started_at_us,
        finished_at_us: started_at_us,
        participants: stored_count("participants", set_off.parties_in_cycles)?,
        edges: stored_count("edges", graph.edges.len())?,
        cycles: stored_count("cycles", set_off.cycles)?,
        granule_value_e16: stored_count("granule", graph.granule_value)?,
        gross_before_granules: stored_count("gross debt", set_off.gross_before)?,
        cleared_granules: stored_count("cleared debt", set_off.total_cleared)?,
        gross_after_granules: stored_count("gross debt after", set_off.gross_after())?,
        settlements: Vec::new(),
        requested_by,
    };
    let run_id: i64 = diesel::insert_into(clearing_runs::table)
        .values((
            clearing_runs::unit.eq(unit.as_str()),
            clearing_runs::dry_run.eq(i32::from(dry_run)),
            clearing_runs::started_at_us.eq(started_at_us),
            clearing_runs::finished_at_us.eq(started_at_us),
            clearing_runs::participants.eq(record.participants),
            clearing_runs::edges.eq(record.edges),
            clearing_runs::cycles.eq(record.cycles),
            clearing_runs::granule_value_e16.eq(record.granule_value_e16),
            clearing_runs::gross_before_granules.eq(record.gross_before_granules),
            clearing_runs::cleared_granules.eq(record.cleared_granules),
            clearing_runs::gross_after_granules.eq(record.gross_after_granules),
            clearing_runs::requested_by.eq(requested_by.map(PrincipalId::get)),
        ))
        .returning(clearing_runs::id)
        .get_result(conn)
        .map_err(LedgerError::from)?;
    let mut transfer_ids: Vec<Option<i64>> = vec![None; planned.len()];
    if !dry_run {
        // A holding is settled by the holder paying the issuer back in the issuer's own
        // currency: the holder's claim and the issuer's debt fall together, so the ledger's
        // invariants hold throughout. All of them in one set-based batch.
        let mut slots = Vec::new();
        let mut requests = Vec::new();
        for (slot, p) in planned.iter().enumerate() {
            match p.source {
                Source::Holding {
                    currency, scale, ..
                } => {
                    slots.push(slot);
                    requests.push(TransferRequest {
                        currency,
                        from: p.settlement.creditor,
                        to: p.settlement.debtor,
                        amount: scrip_domain::Amount::from_atoms(p.atoms, scale),
                        kind: TransferKind::Clearing,
                        memo: Some(format!("clearing run {run_id}")),
                    });
                }
                Source::Obligation { id, .. } => reduce_obligation(conn, id, p.atoms)?,
            }
        }
        for (slot, outcome) in slots.into_iter().zip(transfer_many(conn, &requests)?) {
            match outcome {
                Ok(transfer) => transfer_ids[slot] = Some(transfer.id.get()),
                Err(e) if e.is_business_rule() => {
                    let p = &planned[slot];
                    return Err(RunError::Conflict(format!(
                        "the set-off of {} between principals {} and {} was refused: {e}",
                        record.value(p.settlement.granules),
                        p.settlement.creditor,
                        p.settlement.debtor
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    for (p, transfer_id) in planned.iter().zip(&transfer_ids) {
        let (currency, obligation) = match p.source {
            Source::Holding { currency, .. } => (Some(currency.get()), None),
            Source::Obligation { id, .. } => (None, Some(id)),
        };
        diesel::insert_into(clearing_settlements::table)
            .values((
                clearing_settlements::run_id.eq(run_id),
                clearing_settlements::debtor_id.eq(p.settlement.debtor.get()),
                clearing_settlements::creditor_id.eq(p.settlement.creditor.get()),
                clearing_settlements::granules.eq(p.settlement.granules),
                clearing_settlements::source.eq(p.settlement.source.as_str()),
                clearing_settlements::currency_id.eq(currency),
                clearing_settlements::transfer_id.eq(*transfer_id),
                clearing_settlements::obligation_id.eq(obligation),
            ))
            .execute(conn)
            .map_err(LedgerError::from)?;
    }
    let finished_at_us = now_us();
    diesel::update(clearing_runs::table.find(run_id))
        .set(clearing_runs::finished_at_us.eq(finished_at_us))
        .execute(conn)
        .map_err(LedgerError::from)?;
    record.id = run_id;
    record.finished_at_us = finished_at_us;
    record.settlements = planned.into_iter().map(|p| p.settlement).collect();
    Ok(Ran::Recorded(record))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = clearing_runs)]
struct RunRow {
    id: i64,
    unit: String,
    dry_run: i32,
    started_at_us: i64,
    finished_at_us: i64,
    participants: i64,
    edges: i64,
    cycles: i64,
    granule_value_e16: i64,
    gross_before_granules: i64,
    cleared_granules: i64,
    gross_after_granules: i64,
    requested_by: Option<i64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = clearing_settlements)]
struct SettlementRow {
    run_id: i64,
    debtor_id: i64,
    creditor_id: i64,
    granules: i64,
    source: String,
}

/// A recorded run with its settlements, or `None`.
pub fn load_run(conn: &mut DbConn, id: i64) -> Result<Option<RunRecord>, LedgerError> {
    let runs = load_runs(conn, Some(id), None, 1)?;
    Ok(runs.into_iter().next())
}

/// Runs newest first (`id < before`), with settlements: two queries whatever the page size.
pub fn load_runs(
    conn: &mut DbConn,
    only: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RunRecord>, LedgerError> {
    let mut query = clearing_runs::table
        .select(RunRow::as_select())
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
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut settlements: HashMap<i64, Vec<Settlement>> = HashMap::new();
    let settlement_rows: Vec<SettlementRow> = clearing_settlements::table
        .filter(clearing_settlements::run_id.eq_any(ids))
        .order(clearing_settlements::id)
        .select(SettlementRow::as_select())
        .load(conn)?;
    for row in settlement_rows {
        let source = SettlementSource::parse(&row.source).ok_or_else(|| {
            LedgerError::Invariant(format!("unknown settlement source {:?}", row.source))
        })?;
        settlements.entry(row.run_id).or_default().push(Settlement {
            debtor: PrincipalId::new(row.debtor_id),
            creditor: PrincipalId::new(row.creditor_id),
            granules: row.granules,
            source,
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| RunRecord {
            settlements: settlements.remove(&row.id).unwrap_or_default(),
            id: row.id,
            unit: row.unit,
            dry_run: row.dry_run != 0,
            started_at_us: row.started_at_us,
            finished_at_us: row.finished_at_us,
            participants: row.participants,
            edges: row.edges,
            cycles: row.cycles,
            granule_value_e16: row.granule_value_e16,
            gross_before_granules: row.gross_before_granules,
            cleared_granules: row.cleared_granules,
            gross_after_granules: row.gross_after_granules,
            requested_by: row.requested_by.map(PrincipalId::new),
        })
        .collect())
}

/// Opts a business in or out of clearing.
pub fn set_participation(
    conn: &mut DbConn,
    business: PrincipalId,
    enabled: bool,
) -> Result<(), LedgerError> {
    if enabled {
        diesel::delete(clearing_opt_outs::table.find(business.get())).execute(conn)?;
        return Ok(());
    }
    // Idempotent under concurrency: a second opt-out finds the row and leaves it.
    let opt_out = diesel::insert_into(clearing_opt_outs::table)
        .values((
            clearing_opt_outs::business_id.eq(business.get()),
            clearing_opt_outs::created_at_us.eq(now_us()),
        ))
        .on_conflict_do_nothing();
    match conn {
        DbConn::Postgres(pg) => opt_out.execute(pg)?,
        DbConn::Sqlite(sqlite) => opt_out.execute(sqlite)?,
    };
    Ok(())
}
