//! The HTTP layer's one error type, mapped to RFC 9457 problem details in one place.
//!
//! Which error goes where:
//! - 400 `BadRequest`: the body is not JSON at all, or a header is malformed;
//! - 401 `Unauthorized`: no token, or a token that is expired, forged or for someone else;
//! - 403 `Forbidden`: a known caller acting for a business it does not own (`not_owner`);
//! - 404 `NotFound`: unknown resources, and resources the caller may not see (never 403, so
//!   ids cannot be probed);
//! - 409 `Conflict`: taken names, reused idempotency keys;
//! - 422 `Unprocessable`: well-formed JSON that breaks a rule (bad amount, insufficient funds);
//! - 429 `RateLimited`; 503 `Unavailable` (database down); 500 `Internal` only for bugs.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use scrip_ledger::{ErrorClass, LedgerError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{detail}")]
    Unauthorized { code: &'static str, detail: String },
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("the request body is too large (at most {limit_bytes} bytes)")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    /// A body field of the wrong type or value, unknown or missing (422 `invalid_request`,
    /// with the field's path in the problem's `field`).
    #[error("{detail}")]
    InvalidField { field: String, detail: String },
    /// A rule refused one field's value (422 with its own code and the field's path).
    #[error("{detail}")]
    RefusedField {
        code: &'static str,
        field: String,
        detail: String,
    },
    #[error("too many requests; try again in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    /// The database, a writer or a market cannot take the request now. The cause (which may
    /// name hosts, ports and drivers) is logged, never sent.
    #[error("the service is unavailable right now; try again shortly")]
    Unavailable(String),
    /// Refused at once because a bounded resource is full (503 with `Retry-After`): the
    /// server keeps doing what it can instead of queueing without bound.
    #[error("{detail}")]
    Overloaded { detail: String, retry_after_s: u64 },
    /// A bug or an infrastructure failure; the cause is logged, never shown to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            detail: detail.into(),
        }
    }

    /// A rule refused the value of `field` (422 `code`, with the field named).
    pub fn refused_field(
        code: &'static str,
        field: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::RefusedField {
            code,
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// A body whose `field` is of the wrong type or value, unknown or missing.
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            detail: detail.into(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::Unauthorized {
            code: "unauthorized",
            detail: detail.into(),
        }
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            detail: detail.into(),
        }
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            detail: detail.into(),
        }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    /// The stable machine-readable code of API.md.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::RefusedField { code, .. }
            | Self::Unauthorized { code, .. } => code,
            Self::InvalidField { .. } => "invalid_request",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded { .. } => "overloaded",
            Self::Internal(_) => "internal",
        }
    }
}

/// An RFC 9457 problem document as Scrip sends it.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable error code, e.g. `insufficient_funds`.
    pub code: String,
    /// The request field the problem is about (`fee_bps`, `nested.amount`), when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } | Self::InvalidField { .. } | Self::RefusedField { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let Self::Internal(cause) | Self::Unavailable(cause) = self {
            tracing::error!(%cause, code = self.code(), "request failed");
        }
        let problem = Problem {
            kind: format!("urn:scrip:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code().to_owned(),
            field: match self {
                Self::InvalidField { field, .. } | Self::RefusedField { field, .. } => {
                    Some(field.clone())
                }
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Self::RateLimited { retry_after_s } | Self::Overloaded { retry_after_s, .. } = self {
            response.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
        }
        if let Self::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.body(serde_json::to_string(&problem).unwrap_or_default())
    }
}

impl From<LedgerError> for ApiError {
    /// The ledger's own code and class decide the answer: one table (`LedgerError::code`).
    fn from(error: LedgerError) -> Self {
        let code = error.code();
        let detail = error.to_string();
        if let LedgerError::BadPolicy { field, .. } = &error {
            return Self::refused_field(code, *field, detail);
        }
        match error.class() {
            ErrorClass::Unprocessable => Self::unprocessable(code, detail),
            ErrorClass::NotFound => Self::not_found(code, detail),
            ErrorClass::Conflict => Self::conflict(code, detail),
            ErrorClass::Unavailable => Self::Unavailable(detail),
            ErrorClass::Internal => Self::Internal(detail),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    /// So a transaction whose work answers `ApiError` can run in `write_transaction`.
    fn from(error: diesel::result::Error) -> Self {
        LedgerError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;
    use actix_web::body::MessageBody;

    use super::ApiError;

    #[test]
    fn an_unavailable_answer_never_carries_its_cause() {
        let cause = "could not connect to server: Connection refused, host 10.0.0.7 port 5432";
        let response = ApiError::Unavailable(cause.into()).error_response();
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(
            response.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        let body = response.into_body().try_into_bytes().expect("a body");
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(text.contains("\"code\":\"unavailable\""), "{text}");
        assert!(
            !text.contains("5432") && !text.contains("10.0.0.7"),
            "{text}"
        );
    }
}
