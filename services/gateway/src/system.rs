//! Endpoints every Scrip process serves, whatever services it runs.

use actix_web::{HttpResponse, get, web};
use diesel::RunQueryDsl;
use scrip_http::{ApiError, blocking};
use scrip_ledger::{Ledger, LedgerError};
use scrip_telemetry::Metrics;
use serde_json::json;

pub fn configure_system(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
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
pub async fn readyz(ledger: web::Data<Ledger>) -> HttpResponse {
    let ready = blocking(move || {
        let mut conn = ledger.conn()?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .map_err(LedgerError::from)?;
        Ok(())
    })
    .await;
    match ready {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok", "database": "ok"})),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "database": "down"}))
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format")))]
#[get("/metrics")]
pub async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

/// Unknown routes get a problem+json 404 like every other error.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("not_found", "no such endpoint"))
}
