//! Idempotency keys: the same key and request replays the first response; the same key with
//! another request is refused. The key is stored in the same transaction as the effect, so a
//! crash can never leave an effect without its key or a key without its effect.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scrip_domain::PrincipalId;
use scrip_store::DbConn;
use scrip_store::schema::idempotency_keys;

use crate::LedgerError;
use crate::model::now_us;

/// A client-chosen key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = (1..=255).contains(&raw.len()) && raw.bytes().all(|c| c.is_ascii_graphic());
        valid.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The response the first request got, as the service rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// Whether a response was made now or replayed from an earlier request with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent {
    Fresh(StoredResponse),
    Replayed(StoredResponse),
}

impl Idempotent {
    pub fn response(&self) -> &StoredResponse {
        match self {
            Self::Fresh(r) | Self::Replayed(r) => r,
        }
    }
}

/// The earlier response for this key, or a conflict when it was used for another request.
pub fn replay(
    conn: &mut DbConn,
    scope: PrincipalId,
    key: &IdempotencyKey,
    request_hash: &str,
) -> Result<Option<StoredResponse>, LedgerError> {
    let stored: Option<(String, i32, String)> = idempotency_keys::table
        .find((scope.get(), key.as_str()))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_status,
            idempotency_keys::response_body,
        ))
        .first(conn)
        .optional()?;
    match stored {
        None => Ok(None),
        Some((hash, _, _)) if hash != request_hash => Err(LedgerError::IdempotencyConflict),
        Some((_, status, body)) => Ok(Some(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            body,
        })),
    }
}

/// Stores the response with the key. When a concurrent request with the same key committed
/// first, this reports a serialization failure: the ledger retries the whole transaction, and
/// the retry finds that request's response and replays it.
pub fn remember(
    conn: &mut DbConn,
    scope: PrincipalId,
    key: &IdempotencyKey,
    request_hash: &str,
    response: &StoredResponse,
) -> Result<(), LedgerError> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::principal_id.eq(scope.get()),
            idempotency_keys::idempotency_key.eq(key.as_str()),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::response_status.eq(i32::from(response.status)),
            idempotency_keys::response_body.eq(&response.body),
            idempotency_keys::created_at_us.eq(now_us()),
        ))
        .execute(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                LedgerError::Store(DieselError::DatabaseError(
                    DatabaseErrorKind::SerializationFailure,
                    Box::new("a concurrent request used the same idempotency key".to_owned()),
                ))
            }
            other => other.into(),
        })?;
    Ok(())
}
