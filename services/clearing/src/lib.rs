//! The clearing house: the debt graph among businesses and optimal set-off runs.
//!
//! Pure parts: [`graph`] (exact valuation in granules) and `scrip-netting` (the solver). The
//! imperative shell ([`run`]) loads holdings, solves, and applies the set-offs as ledger
//! transfers of kind `clearing` in one transaction, recording the run beside them.

pub mod graph;
pub mod obligations;
pub mod run;

use actix_web::{HttpResponse, get, post, put, web};
use scrip_auth::Caller;
use scrip_auth::access::{is_operator, is_owner};
use scrip_auth::guard::resolve;
use scrip_domain::{PrincipalId, PrincipalKind, RegistryId, UnitCode};
use scrip_http::{ApiError, OptionalJson, PageQuery, Problem, blocking, rfc3339_from_us};
use scrip_ledger::{Ledger, LedgerError};
use scrip_store::DbConn;
use scrip_telemetry::Metrics;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::run::{Ran, RunError, RunRecord, Trigger};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_graph)
        .service(create_run)
        .service(list_runs)
        .service(get_run)
        .service(set_participation)
        .service(obligations::propose)
        .service(obligations::accept)
        .service(obligations::reject)
        .service(obligations::withdraw)
        .service(obligations::list);
}

#[derive(OpenApi, Debug)]
#[openapi(
    paths(get_graph, create_run, list_runs, get_run, set_participation, obligations::propose, obligations::accept, obligations::reject, obligations::withdraw, obligations::list),
    components(schemas(GraphView, NodeView, EdgeView, NewRun, RunView, SettlementView, RunPage, Participation, obligations::NewObligation, obligations::ObligationView, obligations::ObligationList)),
    tags((name = "clearing", description = "Optimal set-off of debts among businesses"))
)]
pub struct ClearingApi;

#[derive(Debug, Deserialize, IntoParams)]
pub struct UnitQuery {
    /// Unit of account, default `EUR`.
    pub unit: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    pub handle: String,
    /// What the business is owed minus what it owes, in the unit.
    pub net: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EdgeView {
    pub debtor: String,
    pub creditor: String,
    pub amount: String,
    /// `holding` (the creditor holds the debtor's currency) or `obligation`.
    pub source: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GraphView {
    pub unit: String,
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    pub unit: Option<String>,
    /// Compute and record without applying.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettlementView {
    pub debtor: String,
    pub creditor: String,
    pub amount: String,
    pub source: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    pub id: String,
    pub unit: String,
    pub dry_run: bool,
    pub started_at: String,
    pub finished_at: String,
    pub participants: i64,
    pub edges: i64,
    pub gross_before: String,
    pub cleared: String,
    pub gross_after: String,
    pub cycles: i64,
    pub settlements: Vec<SettlementView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<RunView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Participation {
    pub enabled: bool,
}

fn unit(raw: Option<&str>) -> Result<UnitCode, ApiError> {
    UnitCode::parse(raw.unwrap_or("EUR"))
        .map_err(|e| ApiError::unprocessable("bad_unit", e.to_string()))
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

/// Runs clearing now in one write transaction (blocking) and exports the result as metrics.
/// Used by the API and by the schedule.
pub fn run_now(
    ledger: &Ledger,
    metrics: &Metrics,
    unit: &UnitCode,
    dry_run: bool,
    trigger: Trigger,
) -> Result<Ran, ApiError> {
    let started = std::time::Instant::now();
    let mut conflict = None;
    let outcome = ledger.write(|conn| match run::execute(conn, unit, dry_run, trigger) {
        Ok(record) => Ok(record),
        Err(RunError::Conflict(why)) => {
            conflict = Some(why);
            // Any refusal rolls the whole run back; the caller is told which one.
            Err(LedgerError::InsufficientFunds)
        }
        Err(RunError::Ledger(e)) => Err(e),
    });
    let ran = match (outcome, conflict) {
        (Err(_), Some(why)) => {
            tracing::warn!(%why, "clearing run refused; nothing applied");
            return Err(ApiError::conflict(
                "clearing_conflict",
                format!("{why}; nothing was applied"),
            ));
        }
        (other, _) => other?,
    };
    metrics
        .clearing_duration
        .observe(started.elapsed().as_secs_f64());
    let record = match ran {
        Ran::Recorded(record) => record,
        Ran::NothingToClear { gross_before } => {
            metrics.clearing_runs.with_label_values(&["empty"]).inc();
            set_gauges(metrics, &gross_before, "0", &gross_before, 0);
            tracing::debug!(%gross_before, "scheduled clearing run: nothing to clear");
            return Ok(Ran::NothingToClear { gross_before });
        }
    };
    let kind = if dry_run { "dry_run" } else { "applied" };
    metrics.clearing_runs.with_label_values(&[kind]).inc();
    if !dry_run {
        set_gauges(
            metrics,
            &record.gross_before,
            &record.cleared,
            &record.gross_after,
            record.participants,
        );
    }
    tracing::info!(run = record.id, cleared = %record.cleared, dry_run, "clearing run");
    Ok(Ran::Recorded(record))
}

/// The gauges show the latest run that was not a dry run: the gross debt it found, what it
/// cleared, what is left, and how many businesses took part. Amounts are decimal strings in
/// the run's unit.
fn set_gauges(
    metrics: &Metrics,
    gross_before: &str,
    cleared: &str,
    gross_after: &str,
    participants: i64,
) {
    let units = |v: &str| v.parse::<f64>().unwrap_or_default();
    metrics.clearing_gross_before.set(units(gross_before));
    metrics.clearing_cleared.set(units(cleared));
    metrics.clearing_gross_after.set(units(gross_after));
    metrics.clearing_participants.set(participants);
}

/// Runs clearing in `unit` every `interval` until the process stops.
pub fn spawn_schedule(
    ledger: Ledger,
    metrics: Metrics,
    unit: UnitCode,
    interval: std::time::Duration,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.tick().await; // the first tick is immediate; start one interval after boot
        loop {
            ticks.tick().await;
            let (ledger, metrics, unit) = (ledger.clone(), metrics.clone(), unit.clone());
            match tokio::task::spawn_blocking(move || {
                run_now(&ledger, &metrics, &unit, false, Trigger::Schedule)
            })
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "scheduled clearing run failed"),
                Err(error) => tracing::warn!(%error, "scheduled clearing task failed"),
            }
        }
    });
}

fn run_view(conn: &mut DbConn, run: &RunRecord) -> Result<RunView, ApiError> {
    let names = scrip_ledger::handles(
        conn,
        run.settlements.iter().flat_map(|s| [s.debtor, s.creditor]),
    )?;
    let name = |p: &PrincipalId| names.get(p).cloned().unwrap_or_default();
    Ok(RunView {
        id: run.id.to_string(),
        unit: run.unit.clone(),
        dry_run: run.dry_run,
        started_at: rfc3339_from_us(run.started_at_us),
        finished_at: rfc3339_from_us(run.finished_at_us),
        participants: run.participants,
        edges: run.edges,
        gross_before: run.gross_before.clone(),
        cleared: run.cleared.clone(),
        gross_after: run.gross_after.clone(),
        cycles: run.cycles,
        settlements: run
            .settlements
            .iter()
            .map(|s| SettlementView {
                debtor: name(&s.debtor),
                creditor: name(&s.creditor),
                amount: s.amount.clone(),
                source: s.source.clone(),
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
        (status = 409, body = Problem, description = "clearing_conflict: balances moved during the run; nothing applied"),
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
    let unit = unit(body.unit.as_deref())?;
    let view = blocking(move || {
        require_operator(&mut *ledger.conn()?, &caller)?;
        let Ran::Recorded(record) = run_now(
            &ledger,
            &metrics,
            &unit,
            body.dry_run,
            Trigger::Operator(caller.id),
        )?
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
    put, path = "/api/v1/businesses/{handle}/clearing", tag = "clearing", request_body = Participation,
    security(("bearer" = [])),
    params(("handle" = String, Path)),
    responses((status = 200, body = Participation), (status = 403, body = Problem, description = "not_owner"), (status = 404, body = Problem))
)]
#[put("/api/v1/businesses/{handle}/clearing")]
pub async fn set_participation(
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Participation>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let enabled = body.enabled;
    blocking(move || {
        let mut conn = ledger.conn()?;
        let business = resolve(&mut conn, &path, &registry)?;
        if business.kind != PrincipalKind::Business {
            return Err(ApiError::not_found("not_found", "no such business"));
        }
        if !is_owner(&mut conn, business.id, caller.id)? {
            return Err(ApiError::forbidden(
                "not_owner",
                format!("only an owner of {} may do this", business.handle),
            ));
        }
        drop(conn);
        ledger.write(|conn| run::set_participation(conn, business.id, enabled))?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().json(Participation { enabled }))
}
