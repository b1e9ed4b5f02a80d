//! The clearing house: the debt graph among businesses and optimal set-off runs.
//!
//! Pure parts: [`graph`] (exact valuation in granules) and `scrip-netting` (the solver). The
//! imperative shell ([`run`]) loads holdings, solves, and applies the set-offs as ledger
//! transfers of kind `clearing` in one transaction, recording the run beside them. HTTP lives
//! in [`handlers`] and [`obligations`], bodies in [`dto`], obligation rows in [`store`].

pub mod dto;
pub mod graph;
pub mod handlers;
pub mod intents;
pub mod obligations;
pub mod pay;
pub mod rings;
pub mod run;
pub mod statement;
pub mod statements;
pub mod store;

use actix_web::web;
use scrip_domain::UnitCode;
use scrip_http::ApiError;
use scrip_ledger::{Ledger, LedgerError};
use scrip_telemetry::Metrics;
use utoipa::OpenApi;

use crate::dto::{
    EdgeView, GraphView, NewRun, NodeView, Participation, RunPage, RunView, SettlementView,
};
use crate::handlers::{
    create_run, get_graph, get_participation, get_run, list_runs, set_participation,
};
use crate::run::{Mode, Ran, RunError, Trigger};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_graph)
        .service(create_run)
        .service(list_runs)
        .service(get_run)
        .service(set_participation)
        .service(get_participation)
        .service(obligations::propose)
        .service(obligations::accept)
        .service(obligations::reject)
        .service(obligations::withdraw)
        .service(obligations::list)
        .service(pay::pay)
        .service(intents::create_intent)
        .service(intents::list_intents)
        .service(intents::cancel_intent)
        .service(statements::get_statement)
        .service(statements::list_statements);
}

#[derive(OpenApi, Debug)]
#[openapi(
    paths(handlers::get_graph, handlers::create_run, handlers::list_runs, handlers::get_run, handlers::set_participation, handlers::get_participation, obligations::propose, obligations::accept, obligations::reject, obligations::withdraw, obligations::list, pay::pay, intents::create_intent, intents::list_intents, intents::cancel_intent, statements::get_statement, statements::list_statements),
    components(schemas(GraphView, NodeView, EdgeView, NewRun, RunView, dto::PositionView, SettlementView, RunPage, Participation, dto::NewObligation, dto::ObligationView, dto::ObligationList, statements::StatementView, statements::StatementBalance, statements::StatementSettlement, statements::StatementPosition, statements::StatementSummary, statements::StatementPage, pay::PayObligation, pay::ObligationPaid, intents::NewIntent, intents::IntentView, intents::IntentList, intents::RingTradeView)),
    tags((name = "clearing", description = "Optimal set-off of debts among businesses"))
)]
pub struct ClearingApi;

/// Runs clearing now in one write transaction (blocking) and exports the result as metrics.
/// Runs tried on a fresh graph when a set-off is refused, before the run is given up.
const CONFLICT_ATTEMPTS: u32 = 3;
/// Attempts more when ring trades were refused (each leaves their intents out).
const RING_RETRIES: u32 = 8;

/// Used by the API and by the schedule.
pub fn run_now(
    ledger: &Ledger,
    metrics: &Metrics,
    unit: &UnitCode,
    mode: Mode,
    trigger: Trigger,
) -> Result<Ran, ApiError> {
    let started = std::time::Instant::now();
    // A set-off is refused when a balance moved between reading the graph and settling it
    // (a holder spent what it held): the run is rolled back and tried again on the graph as
    // it is now, so one holder timing its payments cannot keep every run refused. A preview
    // is applied as previewed or not at all: never tried on another graph.
    let mut attempt = 0;
    // Intents whose ring trade the ledger refused sit the next attempts out, so one holder
    // cannot keep every run refused either (at most this many more attempts for them).
    let mut excluded = std::collections::HashSet::new();
    let mut ring_retries = 0;
    // Past the retries, the run goes on with the debts alone: refused swaps never stop
    // clearing the businesses' debts.
    let mut with_intents = true;
    let ran = loop {
        attempt += 1;
        let mut refusal = None;
        let outcome = ledger.write(|conn| {
            match run::execute(
                conn,
                unit,
                (mode, trigger),
                with_intents.then_some(&excluded),
            ) {
                Ok(record) => Ok(record),
                Err(RunError::Ledger(e)) => Err(e),
                Err(other) => {
                    refusal = Some(other);
                    // Any refusal rolls the whole run back; the caller is told which one.
                    Err(LedgerError::InsufficientFunds)
                }
            }
        });
        let preview = matches!(mode, Mode::ApplyPreview(_));
        match (outcome, refusal) {
            (Err(_), Some(RunError::RingRefused { intents, why }))
                if !preview && ring_retries < RING_RETRIES && !intents.is_empty() =>
            {
                tracing::info!(%why, ?intents, "ring trade refused; those intents sit the run out");
                ring_retries += 1;
                attempt -= 1;
                excluded.extend(intents);
            }
            (Err(_), Some(RunError::RingRefused { why, .. })) if !preview && with_intents => {
                tracing::warn!(%why, "ring trades kept being refused; this run clears the debts alone");
                attempt -= 1;
                with_intents = false;
            }
            (Err(_), Some(RunError::RingRefused { why, .. })) => {
                return Err(ApiError::conflict(
                    "clearing_conflict",
                    format!("{why}; nothing was applied"),
                ));
            }
            (Err(_), Some(RunError::Conflict(why))) if attempt < CONFLICT_ATTEMPTS && !preview => {
                tracing::info!(%why, attempt, "clearing run refused; trying again");
            }
            (Err(_), Some(RunError::Conflict(why))) => {
                tracing::warn!(%why, "clearing run refused; nothing applied");
                return Err(ApiError::conflict(
                    "clearing_conflict",
                    format!("{why}; nothing was applied"),
                ));
            }
            (Err(_), Some(RunError::GraphChanged(id))) => {
                return Err(ApiError::conflict(
                    "graph_changed",
                    format!(
                        "the debts changed since preview {id} was computed, so its plan no longer \
                         fits; nothing was applied: preview again"
                    ),
                ));
            }
            (Err(_), Some(RunError::NoSuchPreview(id))) => {
                return Err(ApiError::invalid_field(
                    "apply",
                    format!("there is no dry run {id} in {unit} to apply"),
                ));
            }
            (other, _) => break other?,
        }
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
    let kind = if mode.dry_run() { "dry_run" } else { "applied" };
    metrics.clearing_runs.with_label_values(&[kind]).inc();
    if !mode.dry_run() {
        set_gauges(
            metrics,
            &record.value(record.gross_before_granules),
            &record.value(record.cleared_granules),
            &record.value(record.gross_after_granules),
            record.participants,
        );
    }
    let cleared = record.value(record.cleared_granules);
    tracing::info!(run = record.id, %cleared, ?mode, "clearing run");
    Ok(Ran::Recorded(record))
}

/// The gauges show the latest run that was not a dry run: the gross debt it found, what it
/// cleared, what is left, and how many businesses took part. Amounts are decimal strings in
/// the run's unit; a gauge is a float by nature, and only the metric is one.
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
                run_now(&ledger, &metrics, &unit, Mode::Apply, Trigger::Schedule)
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
