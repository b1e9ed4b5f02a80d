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

use crate::graph::{Edge, Graph, Holding, Intent, OpenObligation, Source, build_with_intents};
use crate::{rings, statement, statements, store};

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
    load_graph_without(conn, unit, Some(&HashSet::new()))
}

/// [`load_graph`] leaving out the swap intents `excluded` (refused by the ledger in an
/// earlier attempt of the same run), or every intent for `None`.
fn load_graph_without(
    conn: &mut DbConn,
    unit: &UnitCode,
    excluded: Option<&HashSet<i64>>,
) -> Result<Graph, LedgerError> {
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
    let intents = match excluded {
        Some(excluded) => {
            let mut intents = load_intents(conn, unit)?;
            intents.retain(|i| !excluded.contains(&i.id));
            intents
        }
        None => Vec::new(),
    };
    Ok(build_with_intents(&holdings, &open, &intents))
}

/// Open swap intents of people (a business's holdings are the debt graph's own) in `unit`,
/// each offering no more than its holder has available now, never from a frozen account.
fn load_intents(conn: &mut DbConn, unit: &UnitCode) -> Result<Vec<Intent>, LedgerError> {
    use scrip_store::schema::clearing_intents;
    let rows: Vec<(i64, i64, i64, i64, i64)> = clearing_intents::table
        .filter(clearing_intents::status.eq("open"))
        .filter(clearing_intents::remaining_atoms.gt(0))
        .order(clearing_intents::id)
        .select((
            clearing_intents::id,
            clearing_intents::holder_id,
            clearing_intents::give_currency_id,
            clearing_intents::want_currency_id,
            clearing_intents::remaining_atoms,
        ))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let currency_ids: HashSet<i64> = rows.iter().flat_map(|r| [r.2, r.3]).collect();
    let facts: HashMap<i64, (Scale, Par)> = currencies::table
        .filter(currencies::id.eq_any(currency_ids.iter().copied().collect::<Vec<_>>()))
        .filter(currencies::unit.eq(unit.as_str()))
        .select((currencies::id, currencies::scale, currencies::par))
        .load::<(i64, i32, String)>(conn)?
        .into_iter()
        .map(|(id, scale, par)| Ok((id, (Scale::new(i64::from(scale))?, Par::parse(&par)?))))
        .collect::<Result<_, LedgerError>>()?;
    let holders: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let people: HashSet<i64> = principals::table
        .filter(principals::id.eq_any(&holders))
        .filter(principals::kind.eq(PrincipalKind::User.as_str()))
        .select(principals::id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let available: HashMap<(i64, i64), i64> = accounts::table
        .filter(accounts::principal_id.eq_any(&holders))
        .filter(accounts::frozen.eq(0))
        .select((
            accounts::principal_id,
            accounts::currency_id,
            accounts::balance_atoms - accounts::held_atoms,
        ))
        .load::<(i64, i64, i64)>(conn)?
        .into_iter()
        .map(|(p, c, atoms)| ((p, c), atoms))
        .collect();
    // A holder's intents that give the same currency share what it holds, oldest first: two
    // offers can never promise the same money twice.
    let mut unpromised = available;
    Ok(rows
        .into_iter()
        .filter_map(|(id, holder, give, want, remaining)| {
            let (give_facts, want_facts) = (facts.get(&give)?, facts.get(&want)?);
            if !people.contains(&holder) {
                return None;
            }
            let left = unpromised.entry((holder, give)).or_insert(0);
            let offered = remaining.min(*left).max(0);
            *left -= offered;
            Some(Intent {
                id,
                holder: PrincipalId::new(holder),
                give: (CurrencyId::new(give), give_facts.0, give_facts.1),
                want: (CurrencyId::new(want), want_facts.0, want_facts.1),
                available_atoms: offered,
            })
        })
        .collect())
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
#[derive(Debug)]
pub struct Planned {
    pub settlement: Settlement,
    pub edge: Edge,
    pub atoms: i64,
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
    /// The dry run whose plan this run applied.
    pub preview_of: Option<i64>,
}

/// The exact value of `granules` of a run whose granule is worth `granule_value_e16`, as a
/// decimal string in its unit, with a sign when negative.
pub fn value_of(granules: i128, granule_value_e16: i64) -> String {
    // A granule is stored positive (CHECK constraint), and a product of two values that
    // fit an i64 fits a u128.
    let granule = u128::try_from(granule_value_e16).expect("a granule is positive");
    let magnitude = crate::graph::format_value(granules.unsigned_abs() * granule);
    if granules < 0 {
        format!("-{magnitude}")
    } else {
        magnitude
    }
}

impl RunRecord {
    /// The exact value of `granules` of this run, as a decimal string in its unit.
    pub fn value(&self, granules: i64) -> String {
        debug_assert!(granules >= 0, "stored amounts are never negative");
        value_of(i128::from(granules), self.granule_value_e16)
    }

    /// A net position (owed minus owes) of this run, signed.
    pub fn signed_value(&self, granules: i128) -> String {
        value_of(granules, self.granule_value_e16)
    }

    /// How many atoms worth `atom_value` (10^-16 of the unit) `granules` of this run are;
    /// `None` unless whole.
    pub fn atoms_of(&self, granules: i64, atom_value: u128) -> Option<i64> {
        let value = u128::try_from(granules).ok()? * u128::try_from(self.granule_value_e16).ok()?;
        (atom_value > 0 && value % atom_value == 0)
            .then(|| i64::try_from(value / atom_value).ok())
            .flatten()
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
    /// The ledger refused a ring trade (a holder spent what it offered, a ceiling, a
    /// membership): these intents sit the run out when it is tried again.
    RingRefused {
        intents: Vec<i64>,
        why: String,
    },
    /// The debts are no longer those preview `id` solved: nothing was applied.
    GraphChanged(i64),
    /// No dry run of that id in that unit.
    NoSuchPreview(i64),
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

/// How a run is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Compute and record the plan (a preview); apply nothing.
    DryRun,
    /// Compute the plan on the graph as it is now and apply it.
    Apply,
    /// Apply exactly the plan of dry run `id`, or refuse when the debts moved since.
    ApplyPreview(i64),
}

impl Mode {
    pub const fn dry_run(self) -> bool {
        matches!(self, Self::DryRun)
    }
}

/// A dry run about to be applied: the graph it solved and what it planned.
struct Preview {
    id: i64,
    digest: Option<String>,
    settlements: Vec<Settlement>,
}

/// The dry run `id` in `unit`; `NoSuchPreview` when there is none (or it was applied for real).
fn load_preview(conn: &mut DbConn, id: i64, unit: &UnitCode) -> Result<Preview, RunError> {
    let record = load_run(conn, id)?
        .filter(|r| r.dry_run && r.unit == unit.as_str())
        .ok_or(RunError::NoSuchPreview(id))?;
    let digest: Option<String> = clearing_runs::table
        .find(id)
        .select(clearing_runs::graph_digest)
        .first(conn)
        .map_err(LedgerError::from)?;
    Ok(Preview {
        id,
        digest,
        settlements: record.settlements,
    })
}

/// The set-offs the solver chose, in the graph's edge order.
fn plan(graph: &Graph, cleared: &[u64]) -> Result<Vec<Planned>, LedgerError> {
    graph
        .edges
        .iter()
        .zip(cleared)
        .filter(|&(_, &granules)| granules > 0)
        .map(|(edge, &granules)| {
            Ok(Planned {
                settlement: Settlement {
                    debtor: edge.debtor,
                    creditor: edge.creditor,
                    granules: stored_count("granules of a settlement", granules)?,
                    source: SettlementSource::of(&edge.source),
                },
                edge: *edge,
                atoms: settlement_atoms(granules, edge.source.atoms_per_granule())?,
            })
        })
        .collect()
}

/// A solver result that breaks the rules is a bug: refused in every build, not only in debug.
fn invariant(why: String) -> RunError {
    tracing::error!(%why, "clearing set-off refused");
    RunError::Ledger(LedgerError::Invariant(why))
}

/// Computes the optimal set-off in `unit` and, unless a dry run, applies it: all of it or
/// none. Every business's position before and after and every account it moves are recorded
/// with the run (its statements).
pub fn execute(
    conn: &mut DbConn,
    unit: &UnitCode,
    (mode, trigger): (Mode, Trigger),
    excluded: Option<&HashSet<i64>>,
) -> Result<Ran, RunError> {
    let requested_by = match trigger {
        Trigger::Operator(operator) => Some(operator),
        Trigger::Schedule => None,
    };
    let started_at_us = now_us();
    let preview = match mode {
        Mode::ApplyPreview(id) => Some(load_preview(conn, id, unit)?),
        Mode::DryRun | Mode::Apply => None,
    };
    let graph = load_graph_without(conn, unit, excluded)?;
    let graph_digest = statement::digest(&graph);
    if let Some(preview) = &preview
        && preview.digest.as_deref() != Some(graph_digest.as_str())
    {
        return Err(RunError::GraphChanged(preview.id));
    }
    let (parties, obligations) = graph.to_obligations();
    let set_off = scrip_netting::solve(parties.len(), &obligations)
        .map_err(|e| LedgerError::Unavailable(format!("clearing solver: {e}")))?;
    scrip_netting::check(parties.len(), &obligations, &set_off.cleared).map_err(invariant)?;
    let (edges_cleared, intents_cleared) = set_off.cleared.split_at(graph.edges.len());
    let positions = statement::positions(&graph.edges, edges_cleared).map_err(invariant)?;
    let planned = plan(&graph, edges_cleared)?;
    let ring = rings::transfers(&graph.intents, intents_cleared).map_err(invariant)?;
    if let Some(preview) = &preview {
        let now: Vec<&Settlement> = planned.iter().map(|p| &p.settlement).collect();
        if now != preview.settlements.iter().collect::<Vec<_>>() {
            return Err(RunError::GraphChanged(preview.id));
        }
    }
    let debt_before: u128 = graph.edges.iter().map(|e| u128::from(e.granules)).sum();
    let debt_cleared: u128 = edges_cleared.iter().map(|&g| u128::from(g)).sum();
    if planned.is_empty() && ring.is_empty() && trigger == Trigger::Schedule {
        return Ok(Ran::NothingToClear {
            gross_before: graph.value(debt_before),
        });
    }
    let mut record = RunRecord {
        id: 0,
        unit: unit.to_string(),
        dry_run: mode.dry_run(),
        started_at_us,
        finished_at_us: started_at_us,
        participants: stored_count("participants", took_part(&planned, &graph, intents_cleared))?,
        edges: stored_count("edges", graph.edges.len())?,
        cycles: stored_count("cycles", set_off.cycles)?,
        granule_value_e16: stored_count("granule", graph.granule_value)?,
        // The debts' figures: ring trades are holders' offers, not debts (shown apart).
        gross_before_granules: stored_count("gross debt", debt_before)?,
        cleared_granules: stored_count("cleared debt", debt_cleared)?,
        gross_after_granules: stored_count("gross debt after", debt_before - debt_cleared)?,
        settlements: Vec::new(),
        requested_by,
        preview_of: preview.map(|p| p.id),
    };
    let run_id = insert_run(conn, &record, &graph_digest)?;
    let moves = statement::balance_moves(planned.iter().map(|p| (&p.edge, p.atoms)));
    let balances_before = statements::read_balances(conn, moves.keys())?;
    let obligations_before = statements::read_remaining(conn, &planned)?;
    let transfer_ids = if mode.dry_run() {
        vec![None; planned.len()]
    } else {
        let ids = apply(conn, run_id, &record, &planned)?;
        apply_ring(conn, run_id, &ring, &graph.intents)?;
        ids
    };
    record_intent_fills(conn, run_id, &graph, intents_cleared, mode.dry_run())?;
    let balances_after = if mode.dry_run() {
        statements::planned_balances(&balances_before, &moves)?
    } else {
        let after = statements::read_balances(conn, moves.keys())?;
        statements::check_applied(
            &graph,
            &planned,
            (&balances_before, &after),
            (
                &obligations_before,
                &statements::read_remaining(conn, &planned)?,
            ),
            &moves,
        )
        // Read before the set-offs locked these rows, so a payment committed in between can
        // move one of them too (READ COMMITTED): a conflict, tried again on fresh figures.
        // A real bug fails every attempt and is refused all the same.
        .map_err(|why| {
            tracing::warn!(%why, "clearing read-back did not match the plan");
            RunError::Conflict(why)
        })?;
        after
    };
    insert_settlements(conn, run_id, &planned, &transfer_ids)?;
    statements::insert(
        conn,
        run_id,
        &positions,
        (&balances_before, &balances_after),
    )?;
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

/// Who took part: the businesses whose debts were set off and the holders whose intents were.
fn took_part(planned: &[Planned], graph: &Graph, intents_cleared: &[u64]) -> usize {
    let mut who: HashSet<PrincipalId> = planned
        .iter()
        .flat_map(|p| [p.settlement.debtor, p.settlement.creditor])
        .collect();
    who.extend(
        graph
            .intents
            .iter()
            .zip(intents_cleared)
            .filter(|(_, g)| **g > 0)
            .map(|(i, _)| i.holder),
    );
    who.len()
}

/// The ring trades' transfers, one set-based batch; a refusal (a holder spent what it
/// offered meanwhile, a ceiling) rolls the run back as a conflict.
fn apply_ring(
    conn: &mut DbConn,
    run_id: i64,
    ring: &[rings::RingTransfer],
    intents: &[crate::graph::IntentEdge],
) -> Result<(), RunError> {
    let requests: Vec<TransferRequest> = ring
        .iter()
        .map(|t| TransferRequest {
            currency: t.currency,
            from: t.from,
            to: t.to,
            amount: scrip_domain::Amount::from_atoms(t.atoms, t.scale),
            // A swap between people, not a set-off of an issuer's debt: the currency's rules
            // for payments (its fee, its largest payment) apply to it.
            kind: TransferKind::Payment,
            memo: Some(format!("ring trade, clearing run {run_id}")),
        })
        .collect();
    // Every refused transfer at once, so one attempt leaves out all the intents involved.
    let mut involved = Vec::new();
    let mut first_refusal = None;
    for (t, outcome) in ring.iter().zip(transfer_many(conn, &requests)?) {
        match outcome {
            Ok(_) => {}
            Err(e) if e.is_business_rule() => {
                // Both sides' intents in that currency sit the next attempt out.
                involved.extend(
                    intents
                        .iter()
                        .filter(|i| {
                            (i.holder == t.from && i.give == t.currency)
                                || (i.holder == t.to && i.want == t.currency)
                        })
                        .map(|i| i.id),
                );
                first_refusal.get_or_insert_with(|| {
                    format!(
                        "a ring trade of {} atoms of currency {} from principal {} to {} was refused: {e}",
                        t.atoms, t.currency, t.from, t.to
                    )
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    match first_refusal {
        Some(why) => Err(RunError::RingRefused {
            intents: involved,
            why,
        }),
        None => Ok(()),
    }
}

/// What each intent gave and got in the run; applied runs also lower what the intents have
/// left to give (conditionally: an intent cancelled meanwhile is a conflict).
fn record_intent_fills(
    conn: &mut DbConn,
    run_id: i64,
    graph: &Graph,
    intents_cleared: &[u64],
    dry_run: bool,
) -> Result<(), RunError> {
    use scrip_store::schema::{clearing_intent_fills, clearing_intents};
    for (intent, &granules) in graph.intents.iter().zip(intents_cleared) {
        if granules == 0 {
            continue;
        }
        let gave = settlement_atoms(granules, intent.give_atoms_per_granule)?;
        let received = settlement_atoms(granules, intent.want_atoms_per_granule)?;
        diesel::insert_into(clearing_intent_fills::table)
            .values((
                clearing_intent_fills::run_id.eq(run_id),
                clearing_intent_fills::intent_id.eq(intent.id),
                clearing_intent_fills::granules.eq(stored_count("granules of a fill", granules)?),
                clearing_intent_fills::gave_atoms.eq(gave),
                clearing_intent_fills::received_atoms.eq(received),
            ))
            .execute(conn)
            .map_err(LedgerError::from)?;
        if dry_run {
            continue;
        }
        let changed = diesel::update(
            clearing_intents::table
                .find(intent.id)
                .filter(clearing_intents::status.eq("open"))
                .filter(clearing_intents::remaining_atoms.ge(gave)),
        )
        .set(clearing_intents::remaining_atoms.eq(clearing_intents::remaining_atoms - gave))
        .execute(conn)
        .map_err(LedgerError::from)?;
        if changed != 1 {
            return Err(RunError::RingRefused {
                intents: vec![intent.id],
                why: format!(
                    "intent {} was cancelled or changed during the run",
                    intent.id
                ),
            });
        }
        diesel::update(
            clearing_intents::table
                .find(intent.id)
                .filter(clearing_intents::remaining_atoms.eq(0)),
        )
        .set(clearing_intents::status.eq("filled"))
        .execute(conn)
        .map_err(LedgerError::from)?;
    }
    Ok(())
}

fn insert_run(
    conn: &mut DbConn,
    record: &RunRecord,
    graph_digest: &str,
) -> Result<i64, LedgerError> {
    Ok(diesel::insert_into(clearing_runs::table)
        .values((
            clearing_runs::unit.eq(&record.unit),
            clearing_runs::dry_run.eq(i32::from(record.dry_run)),
            clearing_runs::started_at_us.eq(record.started_at_us),
            clearing_runs::finished_at_us.eq(record.started_at_us),
            clearing_runs::participants.eq(record.participants),
            clearing_runs::edges.eq(record.edges),
            clearing_runs::cycles.eq(record.cycles),
            clearing_runs::granule_value_e16.eq(record.granule_value_e16),
            clearing_runs::gross_before_granules.eq(record.gross_before_granules),
            clearing_runs::cleared_granules.eq(record.cleared_granules),
            clearing_runs::gross_after_granules.eq(record.gross_after_granules),
            clearing_runs::requested_by.eq(record.requested_by.map(PrincipalId::get)),
            clearing_runs::graph_digest.eq(graph_digest),
            clearing_runs::preview_of.eq(record.preview_of),
        ))
        .returning(clearing_runs::id)
        .get_result(conn)?)
}

/// Applies the plan: obligations reduced, holdings paid back to their issuers in one
/// set-based batch of ledger transfers. Returns each settlement's transfer, if any.
fn apply(
    conn: &mut DbConn,
    run_id: i64,
    record: &RunRecord,
    planned: &[Planned],
) -> Result<Vec<Option<i64>>, RunError> {
    // A holding is settled by the holder paying the issuer back in the issuer's own
    // currency: the holder's claim and the issuer's debt fall together, so the ledger's
    // invariants hold throughout.
    let mut transfer_ids: Vec<Option<i64>> = vec![None; planned.len()];
    let mut slots = Vec::new();
    let mut requests = Vec::new();
    for (slot, p) in planned.iter().enumerate() {
        match p.edge.source {
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
    Ok(transfer_ids)
}

fn insert_settlements(
    conn: &mut DbConn,
    run_id: i64,
    planned: &[Planned],
    transfer_ids: &[Option<i64>],
) -> Result<(), LedgerError> {
    for (p, transfer_id) in planned.iter().zip(transfer_ids) {
        let (currency, obligation) = match p.edge.source {
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
            .execute(conn)?;
    }
    Ok(())
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
    preview_of: Option<i64>,
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
            preview_of: row.preview_of,
        })
        .collect())
}

/// Whether a business takes part in clearing (it has not opted out).
pub fn takes_part(conn: &mut DbConn, business: PrincipalId) -> Result<bool, LedgerError> {
    let opted_out: i64 = clearing_opt_outs::table
        .filter(clearing_opt_outs::business_id.eq(business.get()))
        .count()
        .get_result(conn)?;
    Ok(opted_out == 0)
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
