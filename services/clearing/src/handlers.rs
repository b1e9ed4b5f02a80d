//! HTTP handlers of the clearing house: the graph, runs and participation. Obligations have
//! their own module.

use actix_web::{HttpResponse, get, post, put, web};
use scrip_auth::Caller;
use scrip_auth::access::{is_operator, is_owner};
use scrip_auth::guard::resolve;
use scrip_domain::{PrincipalId, PrincipalKind, RegistryId, UnitCode};
use scrip_http::{ApiError, OptionalJson, PageQuery, Problem, blocking, rfc3339_from_us};
use scrip_ledger::Ledger;
use scrip_store::DbConn;
use scrip_telemetry::Metrics;

use crate::dto::{
    EdgeView, GraphView, NewRun, NodeView, Participation, PositionView, RunPage, RunView,
    SettlementView, UnitQuery,
};
use crate::run::{self, Mode, Ran, RunRecord, Trigger};
use crate::run_now;

fn unit(raw: Option<&str>) -> Result<UnitCode, ApiError> {
    UnitCode::parse(raw.unwrap_or("EUR"))
        .map_err(|e| ApiError::unprocessable("bad_unit", e.to_string()))
}

/// A run in a unit no currency is valued in could only ever clear nothing: refused, so the
/// history never shows an "applied" run of a typo.
fn require_unit_in_use(conn: &mut DbConn, unit: &UnitCode) -> Result<(), ApiError> {
    use diesel::prelude::*;
    use scrip_store::schema::currencies;
    let in_use: i64 = currencies::table
        .filter(currencies::unit.eq(unit.as_str()))
        .count()
        .get_result(conn)
        .map_err(scrip_ledger::LedgerError::from)?;
    if in_use > 0 {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "unknown_unit",
            format!("no currency is valued in {unit}, so there is nothing to clear in it"),
        ))
    }
}

/// The unit of preview `id`, which must be a dry run; a unit asked for beside it must match.
fn preview_unit(
    ledger: &Ledger,
    id: i64,
    requested: Option<UnitCode>,
) -> Result<UnitCode, ApiError> {
    let preview = run::load_run(&mut *ledger.conn()?, id)?
        .filter(|r| r.dry_run)
        .ok_or_else(|| {
            ApiError::invalid_field("apply", format!("there is no dry run {id} to apply"))
        })?;
    let unit = unit(Some(&preview.unit))?;
    match requested {
        Some(asked) if asked != unit => Err(ApiError::invalid_field(
            "unit",
            format!("preview {id} is in {unit}, not {asked}"),
        )),
        _ => Ok(unit),
    }
}

fn require_operator(conn: &mut DbConn, caller: &Caller) -> Result<(), ApiError> {
    if is_operator(conn, caller.id)? {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_operator",
            "only registry operators may do this",
        ))
    }
}

/// Who a scheduled run shows as started by.
const SCHEDULE: &str = "schedule";

fn run_view(conn: &mut DbConn, run: &RunRecord) -> Result<RunView, ApiError> {
    let positions = crate::statements::moved_positions(conn, run.id)?;
    let names = scrip_ledger::handles(
        conn,
        run.settlements
            .iter()
            .flat_map(|s| [s.debtor, s.creditor])
            .chain(run.requested_by)
            .chain(positions.iter().map(|p| p.business)),
    )?;
    let name = |p: &PrincipalId| names.get(p).cloned().unwrap_or_default();
    Ok(RunView {
        id: run.id.to_string(),
        unit: run.unit.clone(),
        dry_run: run.dry_run,
        started_by: run
            .requested_by
            .map_or_else(|| SCHEDULE.to_owned(), |operator| name(&operator)),
        started_at: rfc3339_from_us(run.started_at_us),
        finished_at: rfc3339_from_us(run.finished_at_us),
        participants: run.participants,
        edges: run.edges,
        gross_before: run.value(run.gross_before_granules),
        cleared: run.value(run.cleared_granules),
        gross_after: run.value(run.gross_after_granules),
        cycles: run.cycles,
        positions: positions
            .iter()
            .map(|p| PositionView {
                business: name(&p.business),
                owes_before: run.value(p.owes_before),
                owed_before: run.value(p.owed_before),
                owes_after: run.value(p.owes_after),
                owed_after: run.value(p.owed_after),
                net: run.signed_value(i128::from(p.owed_before) - i128::from(p.owes_before)),
            })
            .collect(),
        ring_trades: crate::intents::ring_trades(conn, run.id)?,
        preview_id: run.dry_run.then(|| run.id.to_string()),
        preview_of: run.preview_of.map(|id| id.to_string()),
        settlements: run
            .settlements
            .iter()
            .map(|s| SettlementView {
                debtor: name(&s.debtor),
                creditor: name(&s.creditor),
                amount: run.value(s.granules),
                source: s.source.as_str().to_owned(),
            })
            .collect(),
    })
}

#[utoipa::path(
    get, path = "/api/v1/clearing/graph", tag = "clearing", params(UnitQuery),
    security(("bearer" = [])),
    responses((status = 200, body = GraphView), (status = 403, body = Problem, description = "not_operator"))
)]
#[get("/api/v1/clearing/graph")]
pub async fn get_graph(
    caller: Caller,
    query: web::Query<UnitQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let unit = unit(query.unit.as_deref())?;
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        require_operator(&mut conn, &caller)?;
        let graph = run::load_graph(&mut conn, &unit)?;
        let related = crate::store::related_open(&mut conn, unit.as_str())?;
        let mut net: std::collections::BTreeMap<PrincipalId, i128> = Default::default();
        for e in &graph.edges {
            *net.entry(e.creditor).or_default() += i128::from(e.granules);
            *net.entry(e.debtor).or_default() -= i128::from(e.granules);
        }
        let names = scrip_ledger::handles(&mut conn, net.keys().copied())?;
        let signed = |v: i128| {
            let magnitude = graph.value(v.unsigned_abs());
            if v < 0 {
                format!("-{magnitude}")
            } else {
                magnitude
            }
        };
        Ok(GraphView {
            unit: unit.to_string(),
            nodes: net
                .iter()
                .map(|(p, &v)| NodeView {
                    handle: names.get(p).cloned().unwrap_or_default(),
                    net: signed(v),
                })
                .collect(),
            edges: graph
                .edges
                .iter()
                .map(|e| EdgeView {
                    debtor: names.get(&e.debtor).cloned().unwrap_or_default(),
                    creditor: names.get(&e.creditor).cloned().unwrap_or_default(),
                    amount: graph.value(u128::from(e.granules)),
                    source: e.source.name().into(),
                    related: matches!(e.source, crate::graph::Source::Obligation { id, .. } if related.contains(&id)),
                })
                .collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    post, path = "/api/v1/clearing/runs", tag = "clearing", request_body = NewRun,
    security(("bearer" = [])),
    responses(
        (status = 201, body = RunView),
        (status = 403, body = Problem, description = "not_operator"),
        (status = 409, body = Problem, description = "clearing_conflict: balances moved during the run; graph_changed: the debts moved since the preview named by `apply`; nothing applied"),
        (status = 422, body = Problem, description = "bad_unit; unknown_unit: no currency is valued in that unit; invalid_request under `apply` (no such dry run, or with dry_run) or `unit` (not the preview's)"),
    )
)]
#[post("/api/v1/clearing/runs")]
pub async fn create_run(
    caller: Caller,
    body: OptionalJson<NewRun>,
    ledger: web::Data<Ledger>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0.unwrap_or_default();
    let preview = body
        .apply
        .as_deref()
        .map(|raw| {
            if body.dry_run {
                return Err(ApiError::invalid_field(
                    "apply",
                    "a preview is applied, not previewed again: send apply or dry_run",
                ));
            }
            raw.parse::<i64>()
                .map_err(|_| ApiError::invalid_field("apply", "apply is a dry run's preview_id"))
        })
        .transpose()?;
    let requested_unit = body.unit.as_deref().map(|u| unit(Some(u))).transpose()?;
    let view = blocking(move || {
        require_operator(&mut *ledger.conn()?, &caller)?;
        let (unit, mode) = match preview {
            Some(id) => (
                preview_unit(&ledger, id, requested_unit)?,
                Mode::ApplyPreview(id),
            ),
            None if body.dry_run => (requested_unit.map_or_else(|| unit(None), Ok)?, Mode::DryRun),
            None => (requested_unit.map_or_else(|| unit(None), Ok)?, Mode::Apply),
        };
        require_unit_in_use(&mut *ledger.conn()?, &unit)?;
        let Ran::Recorded(record) =
            run_now(&ledger, &metrics, &unit, mode, Trigger::Operator(caller.id))?
        else {
            return Err(ApiError::Internal(
                "an operator's run is always recorded".into(),
            ));
        };
        run_view(&mut *ledger.conn()?, &record)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(
    get, path = "/api/v1/clearing/runs", tag = "clearing", params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = RunPage), (status = 403, body = Problem, description = "not_operator"))
)]
#[get("/api/v1/clearing/runs")]
pub async fn list_runs(
    caller: Caller,
    query: web::Query<PageQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let before = query.before_id()?;
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        // Runs name who owed whom: registry operators only, like the graph.
        require_operator(&mut conn, &caller)?;
        let runs = run::load_runs(&mut conn, None, before, limit + 1)?;
        let page = scrip_http::Page::from_overfetch(runs, limit, |r| r.id);
        let items = page
            .items
            .iter()
            .map(|r| run_view(&mut conn, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RunPage {
            items,
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get, path = "/api/v1/clearing/runs/{id}", tag = "clearing",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = RunView), (status = 404, body = Problem))
)]
#[get("/api/v1/clearing/runs/{id}")]
pub async fn get_run(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("not_found", "no such clearing run");
    let id = path.parse::<i64>().map_err(|_| not_found())?;
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        require_operator(&mut conn, &caller)?;
        let run = run::load_run(&mut conn, id)?.ok_or_else(not_found)?;
        run_view(&mut conn, &run)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    get, path = "/api/v1/businesses/{handle}/clearing", tag = "clearing",
    security(("bearer" = [])),
    params(("handle" = String, Path)),
    responses((status = 200, body = Participation), (status = 403, body = Problem, description = "not_owner"), (status = 404, body = Problem))
)]
#[get("/api/v1/businesses/{handle}/clearing")]
pub async fn get_participation(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let enabled = blocking(move || {
        let mut conn = ledger.conn()?;
        let business = owned_business(&mut conn, &caller, &path, &registry)?;
        Ok(run::takes_part(&mut conn, business.id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Participation { enabled }))
}

/// The business named `handle`, which the caller must own.
fn owned_business(
    conn: &mut DbConn,
    caller: &Caller,
    handle: &str,
    registry: &RegistryId,
) -> Result<scrip_ledger::Principal, ApiError> {
    let business = resolve(conn, handle, registry)?;
    if business.kind != PrincipalKind::Business {
        return Err(ApiError::not_found("not_found", "no such business"));
    }
    if !is_owner(conn, business.id, caller.id)? {
        return Err(ApiError::forbidden(
            "not_owner",
            format!("only an owner of {} may do this", business.handle),
        ));
    }
    Ok(business)
}

#[utoipa::path(
    put, path = "/api/v1/businesses/{handle}/clearing", tag = "clearing", request_body = Participation,
    security(("bearer" = [])),
    params(("handle" = String, Path)),
    responses((status = 200, body = Participation), (status = 403, body = Problem, description = "not_owner"), (status = 404, body = Problem))
)]
#[put("/api/v1/businesses/{handle}/clearing")]
pub async fn set_participation(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<Participation>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let enabled = body.enabled;
    blocking(move || {
        let mut conn = ledger.conn()?;
        let business = owned_business(&mut conn, &caller, &path, &registry)?;
        drop(conn);
        ledger.write(|conn| run::set_participation(conn, business.id, enabled))?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().json(Participation { enabled }))
}
