//! Endpoints every Scrip process serves, whatever services it runs.

use actix_web::{HttpResponse, get, web};
use diesel::RunQueryDsl;
use scrip_bus::Bus;
use scrip_http::blocking;
use scrip_ledger::{Ledger, LedgerError};
use scrip_telemetry::Metrics;
use serde_json::json;

/// How long `/readyz` waits for Redis before calling it down.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `/healthz`, `/readyz` and the public health summary; `/metrics` too unless it is served on
/// an internal address of its own ([`configure_metrics`]).
pub fn configure_system(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    cfg.service(healthz)
        .service(readyz)
        .service(system_health)
        .service(status);
    if with_metrics {
        cfg.service(metrics);
    }
}

/// What the internal metrics address serves: `/metrics`, and `/healthz` for probes.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(metrics);
}

#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "{\"status\":\"ok\"}")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(
    get, path = "/readyz", tag = "system",
    responses((status = 200, description = "the database answers"), (status = 503, description = "it does not"))
)]
#[get("/readyz")]
pub async fn readyz(ledger: web::Data<Ledger>, bus: web::Data<dyn Bus>) -> HttpResponse {
    let redis = if bus.kind() == "redis" {
        match tokio::time::timeout(READY_TIMEOUT, bus.ping()).await {
            Ok(Ok(())) => Some("ok"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "Redis does not answer");
                Some("down")
            }
            Err(_) => Some("down"),
        }
    } else {
        None
    };
    let ready = blocking(move || {
        let mut conn = ledger.conn()?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .map_err(LedgerError::from)?;
        Ok(())
    })
    .await;
    let database = match ready {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(%error, "database not ready");
            "down"
        }
    };
    let mut body = json!({"database": database, "bus": bus.kind()});
    if let Some(redis) = redis {
        body["redis"] = json!(redis);
    }
    if database == "ok" && redis != Some("down") {
        body["status"] = json!("ok");
        HttpResponse::Ok().json(body)
    } else {
        body["status"] = json!("unavailable");
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format")))]
#[get("/metrics")]
pub async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

/// Event counts since the process started; a client turns two reads into rates.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HealthCounters {
    pub requests: Option<u64>,
    pub orders: Option<u64>,
    pub trades: Option<u64>,
    pub transfers: Option<u64>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SystemHealth {
    /// The last invariant audit: `clean`, `failing` or `not_run`.
    pub audit: &'static str,
    /// Counters of this process (`null` for a service it does not run).
    pub counters: HealthCounters,
}

/// What the clearing dashboard shows of the system: the audit's verdict and this process's
/// counters, as JSON (the same figures `/metrics` exports, without parsing its text).
#[utoipa::path(get, path = "/api/v1/system/health", tag = "system", responses((status = 200, body = SystemHealth)))]
#[get("/api/v1/system/health")]
pub async fn system_health(registry: web::Data<Metrics>) -> HttpResponse {
    let counter = |name| registry.counter_total(name);
    HttpResponse::Ok().json(SystemHealth {
        audit: match registry.audit_clean() {
            Some(true) => "clean",
            Some(false) => "failing",
            None => "not_run",
        },
        counters: HealthCounters {
            requests: counter("scrip_http_requests_total"),
            orders: counter("scrip_exchange_commands_total"),
            trades: counter("scrip_exchange_trades_total"),
            transfers: counter("scrip_ledger_transfers_total"),
        },
    })
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CheckView {
    /// The check's name (the `check` label of `scrip_audit_check_violations`).
    pub name: &'static str,
    /// What it makes sure of.
    pub about: &'static str,
    /// `pass` or `fail`.
    pub result: &'static str,
    /// How many violations it found (what they are is in the server's log and for operators
    /// in `scrip audit`: the public monitor names no account).
    pub violations: usize,
    pub checked_at: String,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StatusView {
    /// `clean`, `failing`, or `not_run` (the server has not finished its first audit).
    pub audit: &'static str,
    /// `full` or `incremental` (only the journal written since the last audit was read).
    pub kind: Option<&'static str>,
    pub ran_at: Option<String>,
    pub last_full_at: Option<String>,
    pub took_ms: Option<i64>,
    pub accounts: Option<usize>,
    pub journal_lines: Option<u64>,
    pub checks: Vec<CheckView>,
}

/// The public invariant monitor: every check the ledger audit makes, its result and when it
/// last ran. The server audits every minute, incrementally, and reads the whole journal again
/// every hour; `scrip audit` runs a full one on demand.
#[utoipa::path(get, path = "/api/v1/status", tag = "system", responses((status = 200, body = StatusView, description = "public")))]
#[get("/api/v1/status")]
pub async fn status(registry: web::Data<Metrics>) -> HttpResponse {
    let Some(last) = registry.audit_status() else {
        return HttpResponse::Ok().json(StatusView {
            audit: "not_run",
            kind: None,
            ran_at: None,
            last_full_at: None,
            took_ms: None,
            accounts: None,
            journal_lines: None,
            checks: Vec::new(),
        });
    };
    let clean = last.checks.iter().all(|c| c.violations == 0);
    let ran_at = scrip_http::rfc3339_from_us(last.ran_at_us);
    HttpResponse::Ok().json(StatusView {
        audit: if clean { "clean" } else { "failing" },
        kind: Some(last.kind),
        last_full_at: Some(scrip_http::rfc3339_from_us(last.last_full_at_us)),
        took_ms: Some(last.duration_us / 1_000),
        accounts: Some(last.accounts),
        journal_lines: Some(last.journal_lines),
        checks: last
            .checks
            .into_iter()
            .map(|c| CheckView {
                name: c.name,
                about: c.about,
                result: if c.violations == 0 { "pass" } else { "fail" },
                violations: c.violations,
                checked_at: ran_at.clone(),
            })
            .collect(),
        ran_at: Some(ran_at),
    })
}
