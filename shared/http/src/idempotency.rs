use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use scrip_ledger::{IdempotencyKey, StoredResponse};
use sha2::{Digest, Sha256};

use crate::ApiError;

pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Says whether an answer is a replay of the first one (`true`) or fresh (`false`).
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The `Idempotency-Key` header, if sent; a malformed one is a 400, not silently ignored.
pub fn idempotency_key(request: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = request.headers().get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(IdempotencyKey::parse)
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })
}

/// What identifies "the same request" for an idempotency key: the route and the parsed body,
/// re-serialized so whitespace and key order do not matter.
pub fn request_hash(route: &str, body: &impl serde::Serialize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(body).unwrap_or_default());
    hex::encode(hasher.finalize())
}

/// The answer to a request made with an idempotency key, as stored with the key: the first
/// request's status and body, and `Idempotent-Replayed` saying whether this is a repeat.
pub fn idempotent_response(stored: &StoredResponse, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED);
    HttpResponse::build(status)
        .content_type("application/json")
        .insert_header((REPLAYED_HEADER, if replayed { "true" } else { "false" }))
        .body(stored.body.clone())
}
