//! Clearing statements: what a run did to one business, kept with the run so its owner can
//! explain every change to an accountant. Rows here, the checks a run makes before it keeps
//! them, and the HTTP handlers (`GET /clearing/runs/{id}/statements/{business}`, JSON or CSV,
//! and a business's list of statements).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_auth::access::{is_operator, is_owner};
use scrip_auth::guard::resolve;
use scrip_domain::{Amount, CurrencyId, Par, PrincipalId, PrincipalKind, RegistryId, Scale};
use scrip_http::{ApiError, Problem, blocking, csv_row, rfc3339_from_us};
use scrip_ledger::{Ledger, LedgerError};
use scrip_store::DbConn;
use scrip_store::schema::{
    accounts, clearing_balances, clearing_positions, clearing_runs, clearing_settlements,
    currencies, obligations,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::graph::{Graph, Source};
use crate::run::{self, Planned, RunRecord};
use crate::statement::{BalanceMoves, DebtChange, Position, net_changes};

/// Balances by `(principal, currency)`, in atoms.
pub type Balances = BTreeMap<(PrincipalId, CurrencyId), i64>;

/// The balances of the accounts `keys` as the ledger has them now.
pub fn read_balances<'a>(
    conn: &mut DbConn,
    keys: impl Iterator<Item = &'a (PrincipalId, CurrencyId)>,
) -> Result<Balances, LedgerError> {
    let keys: Vec<(PrincipalId, CurrencyId)> = keys.copied().collect();
    let principals: Vec<i64> = keys.iter().map(|(p, _)| p.get()).collect();
    let wanted: std::collections::BTreeSet<_> = keys.iter().copied().collect();
    let rows: Vec<(i64, i64, i64)> = accounts::table
        .filter(accounts::principal_id.eq_any(principals))
        .filter(accounts::currency_id.eq_any(keys.iter().map(|(_, c)| c.get())))
        .select((
            accounts::principal_id,
            accounts::currency_id,
            accounts::balance_atoms,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(p, c, balance)| ((PrincipalId::new(p), CurrencyId::new(c)), balance))
        .filter(|(key, _)| wanted.contains(key))
        .collect())
}

/// The remaining atoms of every obligation the plan sets off.
pub fn read_remaining(
    conn: &mut DbConn,
    planned: &[Planned],
) -> Result<BTreeMap<i64, i64>, LedgerError> {
    let ids: Vec<i64> = planned
        .iter()
        .filter_map(|p| match p.edge.source {
            Source::Obligation { id, .. } => Some(id),
            Source::Holding { .. } => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(obligations::table
        .filter(obligations::id.eq_any(ids))
        .select((obligations::id, obligations::remaining_atoms))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect())
}

/// A dry run's balances after: the balances before moved as planned.
pub fn planned_balances(before: &Balances, moves: &BalanceMoves) -> Result<Balances, LedgerError> {
    moves
        .iter()
        .map(|(key, &moved)| {
            let was = before.get(key).copied().unwrap_or(0);
            was.checked_add(moved)
                .map(|now| (*key, now))
                .ok_or_else(|| LedgerError::Invariant("a planned balance does not fit".into()))
        })
        .collect()
}

/// After applying, in the same transaction: every account moved exactly as planned, and
/// every business's net position, recomputed in exact value from what the ledger now holds,
/// is unchanged. `Err` says what broke; the caller rolls the run back.
pub fn check_applied(
    graph: &Graph,
    planned: &[Planned],
    (before, after): (&Balances, &Balances),
    (remaining_before, remaining_after): (&BTreeMap<i64, i64>, &BTreeMap<i64, i64>),
    moves: &BalanceMoves,
) -> Result<(), String> {
    for (key, moved) in moves {
        let (was, now) = (before.get(key), after.get(key));
        if was.zip(now).map(|(was, now)| now - was) != Some(*moved) {
            return Err(format!(
                "principal {}'s balance of currency {} went from {was:?} to {now:?}, not by {moved}",
                key.0, key.1
            ));
        }
    }
    let value = |atoms: Option<&i64>, per_granule: i64| -> Result<i128, String> {
        let atoms = atoms.ok_or("a settled debt is missing after the run")?;
        let atom_value = graph.granule_value / u128::from(per_granule.unsigned_abs());
        Ok(i128::from(*atoms) * i128::try_from(atom_value).map_err(|e| e.to_string())?)
    };
    let mut debts = Vec::with_capacity(planned.len());
    for p in planned {
        let per_granule = p.edge.source.atoms_per_granule();
        let (was, now) = match p.edge.source {
            Source::Holding { currency, .. } => {
                let key = (p.edge.creditor, currency);
                (before.get(&key), after.get(&key))
            }
            Source::Obligation { id, .. } => (remaining_before.get(&id), remaining_after.get(&id)),
        };
        debts.push(DebtChange {
            debtor: p.edge.debtor,
            creditor: p.edge.creditor,
            before_value: value(was, per_granule)?,
            after_value: value(now, per_granule)?,
        });
    }
    match net_changes(&debts)
        .into_iter()
        .find(|&(_, change)| change != 0)
    {
        Some((business, change)) => Err(format!(
            "principal {business}'s net position moved by {change} (10^-16 of the unit)"
        )),
        None => Ok(()),
    }
}

/// Keeps a run's positions and balance moves with it.
pub fn insert(
    conn: &mut DbConn,
    run_id: i64,
    positions: &[Position],
    (before, after): (&Balances, &Balances),
) -> Result<(), LedgerError> {
    let count = |granules: u64| {
        i64::try_from(granules)
            .map_err(|_| LedgerError::Invariant("a position does not fit a BIGINT".into()))
    };
    // In chunks: one statement per few hundred businesses, whatever the graph's size.
    for chunk in positions.chunks(500) {
        let rows = chunk
            .iter()
            .map(|p| {
                Ok((
                    clearing_positions::run_id.eq(run_id),
                    clearing_positions::business_id.eq(p.business.get()),
                    clearing_positions::owes_before_granules.eq(count(p.owes_before)?),
                    clearing_positions::owed_before_granules.eq(count(p.owed_before)?),
                    clearing_positions::owes_after_granules.eq(count(p.owes_after)?),
                    clearing_positions::owed_after_granules.eq(count(p.owed_after)?),
                ))
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        let insert = diesel::insert_into(clearing_positions::table).values(rows);
        // A multi-row insert is spelled per backend (diesel's multi-backend has no batch form).
        match conn {
            DbConn::Postgres(pg) => insert.execute(pg)?,
            DbConn::Sqlite(sqlite) => insert.execute(sqlite)?,
        };
    }
    let rows: Vec<_> = after
        .iter()
        .map(|(&(business, currency), &after_atoms)| {
            (
                clearing_balances::run_id.eq(run_id),
                clearing_balances::business_id.eq(business.get()),
                clearing_balances::currency_id.eq(currency.get()),
                clearing_balances::before_atoms
                    .eq(before.get(&(business, currency)).copied().unwrap_or(0)),
                clearing_balances::after_atoms.eq(after_atoms),
            )
        })
        .collect();
    for chunk in rows.chunks(500) {
        let insert = diesel::insert_into(clearing_balances::table).values(chunk.to_vec());
        match conn {
            DbConn::Postgres(pg) => insert.execute(pg)?,
            DbConn::Sqlite(sqlite) => insert.execute(sqlite)?,
        };
    }
    Ok(())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatementBalance {
    pub currency: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatementSettlement {
    pub debtor: String,
    pub creditor: String,
    /// Value set off, in the run's unit.
    pub amount: String,
    /// `holding` or `obligation`.
    pub source: String,
    /// For a holding: the currency paid back to its issuer, and how much of it.
    pub currency: Option<String>,
    pub currency_amount: Option<String>,
    /// For an obligation: its id.
    pub obligation: Option<String>,
}

/// In the run's unit: what the business owed and was owed, before and after.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatementPosition {
    pub owes_before: String,
    pub owed_before: String,
    pub owes_after: String,
    pub owed_after: String,
    /// Owed minus owes; the same before and after.
    pub net_before: String,
    pub net_after: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatementView {
    pub run: String,
    pub business: String,
    pub unit: String,
    /// A dry run's statement is what applying it would do.
    pub dry_run: bool,
    pub started_at: String,
    pub finished_at: String,
    pub balances: Vec<StatementBalance>,
    pub settlements: Vec<StatementSettlement>,
    pub position: StatementPosition,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatementSummary {
    pub run: String,
    pub unit: String,
    pub finished_at: String,
    pub cleared: String,
    pub net: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatementPage {
    pub items: Vec<StatementSummary>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct FormatQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// `(debtor, creditor, granules, source, currency, obligation)` of a settlement.
type SettlementRow = (i64, i64, i64, String, Option<i64>, Option<i64>);

/// `(run, unit, finished_at_us, granule_value_e16, owes_before, owes_after, owed_before)`.
type SummaryRow = (i64, String, i64, i64, i64, i64, i64);

#[derive(Queryable)]
struct PositionRow {
    owes_before: i64,
    owed_before: i64,
    owes_after: i64,
    owed_after: i64,
}

/// A run's businesses whose debts it set off, in granules (`i64` as stored).
#[derive(Debug)]
pub struct MovedPosition {
    pub business: PrincipalId,
    pub owes_before: i64,
    pub owed_before: i64,
    pub owes_after: i64,
    pub owed_after: i64,
}

/// The positions of run `run_id` that it changed, by business.
pub fn moved_positions(conn: &mut DbConn, run_id: i64) -> Result<Vec<MovedPosition>, LedgerError> {
    let rows: Vec<(i64, i64, i64, i64, i64)> = clearing_positions::table
        .filter(clearing_positions::run_id.eq(run_id))
        .filter(
            clearing_positions::owes_before_granules
                .ne(clearing_positions::owes_after_granules)
                .or(clearing_positions::owed_before_granules
                    .ne(clearing_positions::owed_after_granules)),
        )
        .order(clearing_positions::business_id)
        .select((
            clearing_positions::business_id,
            clearing_positions::owes_before_granules,
            clearing_positions::owed_before_granules,
            clearing_positions::owes_after_granules,
            clearing_positions::owed_after_granules,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(business, owes_before, owed_before, owes_after, owed_after)| MovedPosition {
                business: PrincipalId::new(business),
                owes_before,
                owed_before,
                owes_after,
                owed_after,
            },
        )
        .collect())
}

/// The currencies `ids` as `(code, scale, par)`.
fn currency_facts(
    conn: &mut DbConn,
    ids: impl IntoIterator<Item = i64>,
) -> Result<BTreeMap<i64, (String, Scale, Par)>, LedgerError> {
    let rows: Vec<(i64, String, i32, String)> = currencies::table
        .filter(currencies::id.eq_any(ids.into_iter().collect::<Vec<_>>()))
        .select((
            currencies::id,
            currencies::code,
            currencies::scale,
            currencies::par,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, code, scale, par)| {
            Ok((id, (code, Scale::new(i64::from(scale))?, Par::parse(&par)?)))
        })
        .collect()
}

/// The statement of `business` for `run`, or `None` when it took no part.
fn load_statement(
    conn: &mut DbConn,
    record: &RunRecord,
    business: PrincipalId,
) -> Result<Option<StatementView>, LedgerError> {
    let Some(position) = clearing_positions::table
        .find((record.id, business.get()))
        .select((
            clearing_positions::owes_before_granules,
            clearing_positions::owed_before_granules,
            clearing_positions::owes_after_granules,
            clearing_positions::owed_after_granules,
        ))
        .first::<PositionRow>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let balances: Vec<(i64, i64, i64)> = clearing_balances::table
        .filter(clearing_balances::run_id.eq(record.id))
        .filter(clearing_balances::business_id.eq(business.get()))
        .order(clearing_balances::currency_id)
        .select((
            clearing_balances::currency_id,
            clearing_balances::before_atoms,
            clearing_balances::after_atoms,
        ))
        .load(conn)?;
    let settlements: Vec<SettlementRow> = clearing_settlements::table
        .filter(clearing_settlements::run_id.eq(record.id))
        .filter(
            clearing_settlements::debtor_id
                .eq(business.get())
                .or(clearing_settlements::creditor_id.eq(business.get())),
        )
        .order(clearing_settlements::id)
        .select((
            clearing_settlements::debtor_id,
            clearing_settlements::creditor_id,
            clearing_settlements::granules,
            clearing_settlements::source,
            clearing_settlements::currency_id,
            clearing_settlements::obligation_id,
        ))
        .load(conn)?;
    let facts = currency_facts(
        conn,
        balances
            .iter()
            .map(|b| b.0)
            .chain(settlements.iter().filter_map(|s| s.4)),
    )?;
    let names = scrip_ledger::handles(
        conn,
        settlements
            .iter()
            .flat_map(|s| [PrincipalId::new(s.0), PrincipalId::new(s.1)])
            .chain([business]),
    )?;
    let name = |id: i64| {
        names
            .get(&PrincipalId::new(id))
            .cloned()
            .unwrap_or_default()
    };
    let code = |id: i64| facts.get(&id).map(|f| f.0.clone()).unwrap_or_default();
    let money = |id: i64, atoms: i64| {
        facts
            .get(&id)
            .map(|f| Amount::from_atoms(atoms, f.1).to_string())
            .unwrap_or_default()
    };
    Ok(Some(StatementView {
        run: record.id.to_string(),
        business: name(business.get()),
        unit: record.unit.clone(),
        dry_run: record.dry_run,
        started_at: rfc3339_from_us(record.started_at_us),
        finished_at: rfc3339_from_us(record.finished_at_us),
        balances: balances
            .iter()
            .map(|&(currency, before, after)| StatementBalance {
                currency: code(currency),
                before: money(currency, before),
                after: money(currency, after),
            })
            .collect(),
        settlements: settlements
            .iter()
            .map(
                |(debtor, creditor, granules, source, currency, obligation)| StatementSettlement {
                    debtor: name(*debtor),
                    creditor: name(*creditor),
                    amount: record.value(*granules),
                    source: source.clone(),
                    currency: currency.map(code),
                    currency_amount: currency.and_then(|c| {
                        let (_, scale, par) = facts.get(&c)?;
                        let atoms =
                            record.atoms_of(*granules, crate::graph::atom_value(*scale, *par))?;
                        Some(money(c, atoms))
                    }),
                    obligation: obligation.map(|id| id.to_string()),
                },
            )
            .collect(),
        position: StatementPosition {
            owes_before: record.value(position.owes_before),
            owed_before: record.value(position.owed_before),
            owes_after: record.value(position.owes_after),
            owed_after: record.value(position.owed_after),
            net_before: record
                .signed_value(i128::from(position.owed_before) - i128::from(position.owes_before)),
            net_after: record
                .signed_value(i128::from(position.owed_after) - i128::from(position.owes_after)),
        },
    }))
}

/// One flat table an accountant can sort and sum: a line per balance, per settlement, and the
/// position, each with the run, its time and unit.
fn render_csv(statement: &StatementView) -> String {
    let mut out = csv_row(&[
        "record",
        "run",
        "finished_at",
        "unit",
        "currency",
        "debtor",
        "creditor",
        "source",
        "value",
        "currency_amount",
        "before",
        "after",
    ]);
    let head = [
        statement.run.as_str(),
        statement.finished_at.as_str(),
        statement.unit.as_str(),
    ];
    let mut line = |record: &str, rest: [&str; 8]| {
        let mut cells = vec![record];
        cells.extend(head);
        cells.extend(rest);
        out.push_str(&csv_row(&cells));
    };
    for b in &statement.balances {
        line(
            "balance",
            [&b.currency, "", "", "", "", "", &b.before, &b.after],
        );
    }
    for s in &statement.settlements {
        line(
            "settlement",
            [
                s.currency.as_deref().unwrap_or(""),
                &s.debtor,
                &s.creditor,
                &s.source,
                &s.amount,
                s.currency_amount.as_deref().unwrap_or(""),
                "",
                "",
            ],
        );
    }
    let p = &statement.position;
    line(
        "owes",
        ["", "", "", "", "", "", &p.owes_before, &p.owes_after],
    );
    line(
        "owed",
        ["", "", "", "", "", "", &p.owed_before, &p.owed_after],
    );
    line("net", ["", "", "", "", "", "", &p.net_before, &p.net_after]);
    out
}

/// The business named `handle`, if the caller may read its statements (an owner, or a
/// registry operator); 404 otherwise, so a statement's existence is not revealed.
fn readable_business(
    conn: &mut DbConn,
    caller: &Caller,
    handle: &str,
    registry: &RegistryId,
) -> Result<(PrincipalId, String), ApiError> {
    let not_found = || ApiError::not_found("not_found", format!("no statements of {handle}"));
    let business = resolve(conn, handle, registry).map_err(|_| not_found())?;
    if business.kind != PrincipalKind::Business {
        return Err(not_found());
    }
    if is_owner(conn, business.id, caller.id)? || is_operator(conn, caller.id)? {
        Ok((business.id, business.handle.to_string()))
    } else {
        Err(not_found())
    }
}

#[utoipa::path(
    get, path = "/api/v1/clearing/runs/{id}/statements/{business}", tag = "clearing",
    security(("bearer" = [])), params(("id" = String, Path), ("business" = String, Path), FormatQuery),
    responses(
        (status = 200, body = StatementView, description = "JSON, or with `?format=csv` a CSV (record,run,finished_at,unit,currency,debtor,creditor,source,value,currency_amount,before,after)"),
        (status = 404, body = Problem, description = "no such run, the business took no part, or the caller is neither its owner nor an operator"),
        (status = 422, body = Problem, description = "invalid_request: format is json or csv"),
    )
)]
#[get("/api/v1/clearing/runs/{id}/statements/{business}")]
pub async fn get_statement(
    caller: Caller,
    path: web::Path<(String, String)>,
    query: web::Query<FormatQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid_field("format", "format is json or csv")),
    };
    let (run_id, handle) = path.into_inner();
    let statement = blocking(move || {
        let not_found = || ApiError::not_found("not_found", "no such statement");
        let mut conn = ledger.conn()?;
        let (business, _) = readable_business(&mut conn, &caller, &handle, &registry)?;
        let run_id = run_id.parse::<i64>().map_err(|_| not_found())?;
        let record = run::load_run(&mut conn, run_id)?.ok_or_else(not_found)?;
        load_statement(&mut conn, &record, business)?.ok_or_else(not_found)
    })
    .await?;
    if !csv {
        return Ok(HttpResponse::Ok().json(statement));
    }
    let name = format!(
        "scrip-clearing-{}-run-{}.csv",
        statement.business, statement.run
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(render_csv(&statement)))
}

#[utoipa::path(
    get, path = "/api/v1/businesses/{handle}/clearing/statements", tag = "clearing",
    security(("bearer" = [])), params(("handle" = String, Path), scrip_http::PageQuery),
    responses(
        (status = 200, body = StatementPage, description = "the business's statements of applied runs, newest first"),
        (status = 404, body = Problem, description = "no such business, or the caller is neither its owner nor an operator"),
    )
)]
#[get("/api/v1/businesses/{handle}/clearing/statements")]
pub async fn list_statements(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<scrip_http::PageQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let before = query.before_id()?;
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let (business, _) = readable_business(&mut conn, &caller, &path, &registry)?;
        let mut runs = clearing_positions::table
            .inner_join(clearing_runs::table.on(clearing_runs::id.eq(clearing_positions::run_id)))
            .filter(clearing_positions::business_id.eq(business.get()))
            .filter(clearing_runs::dry_run.eq(0))
            .order(clearing_runs::id.desc())
            .limit(limit + 1)
            .select((
                clearing_runs::id,
                clearing_runs::unit,
                clearing_runs::finished_at_us,
                clearing_runs::granule_value_e16,
                clearing_positions::owes_before_granules,
                clearing_positions::owes_after_granules,
                clearing_positions::owed_before_granules,
            ))
            .into_boxed();
        if let Some(before) = before {
            runs = runs.filter(clearing_runs::id.lt(before));
        }
        let rows: Vec<SummaryRow> = runs.load(&mut conn).map_err(LedgerError::from)?;
        let page = scrip_http::Page::from_overfetch(rows, limit, |r| r.0);
        let items = page
            .items
            .into_iter()
            .map(
                |(run_id, unit, finished_at_us, granule, owes_before, owes_after, owed_before)| {
                    StatementSummary {
                        run: run_id.to_string(),
                        unit,
                        finished_at: rfc3339_from_us(finished_at_us),
                        cleared: run::value_of(i128::from(owes_before - owes_after), granule),
                        net: run::value_of(
                            i128::from(owed_before) - i128::from(owes_before),
                            granule,
                        ),
                    }
                },
            )
            .collect();
        Ok(StatementPage {
            items,
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
