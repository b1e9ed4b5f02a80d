//! Sessions that last: a login opens a session and hands out a refresh token; the refresh
//! token buys a new access token and a new refresh token, once (rotation). A refresh token
//! presented a second time was copied (the client already has its successor), so the whole
//! session is revoked, its newer tokens with it. Only SHA-256 hashes of refresh tokens are
//! stored. A session ends at the latest [`SESSION_LIFETIME_US`] after the login.

use base64::Engine as _;
use diesel::prelude::*;
use rand_core::{OsRng, RngCore};
use scrip_domain::PrincipalId;
use scrip_ledger::LedgerError;
use scrip_store::DbConn;
use scrip_store::schema::{refresh_tokens, sessions};
use sha2::{Digest, Sha256};

/// Longest a session lasts from its login, however active: 30 days.
pub const SESSION_LIFETIME_US: i64 = 30 * 24 * 3_600 * 1_000_000;
/// Two tabs of one browser share the refresh cookie and may refresh in the same instant: a
/// token presented again this soon after its use is a race of the token's own holder, not a
/// copy, and revokes nothing (the holder already has the successor in its cookie).
const RACE_GRACE_US: i64 = 10_000_000;

/// A refresh token as the client holds it (never stored).
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(..)")
    }
}

impl RefreshToken {
    fn new() -> Self {
        let mut bytes = [0_u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_client(raw: &str) -> Self {
        Self(raw.trim().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// Why a refresh token buys nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a token of any session.
    Unknown,
    /// Used before: the session is revoked now.
    Reused { session: i64 },
    /// Used a moment ago by the same holder (another tab): try the request again.
    Raced,
    /// The session was revoked (logout, reuse) or is past its lifetime.
    Ended,
}

/// Opens a session for `principal`; its id (which access tokens carry) and its first refresh
/// token.
pub fn open(
    conn: &mut DbConn,
    principal: PrincipalId,
    now_us: i64,
) -> Result<(i64, RefreshToken), LedgerError> {
    let session: i64 = diesel::insert_into(sessions::table)
        .values((
            sessions::principal_id.eq(principal.get()),
            sessions::created_at_us.eq(now_us),
            sessions::expires_at_us.eq(now_us + SESSION_LIFETIME_US),
        ))
        .returning(sessions::id)
        .get_result(conn)?;
    Ok((session, issue(conn, session, now_us)?))
}

/// Whether access tokens of `session_id` still speak for its principal: neither revoked nor
/// past its lifetime.
pub fn is_live(conn: &mut DbConn, session_id: i64, now_us: i64) -> Result<bool, LedgerError> {
    let found: Option<(i64, Option<i64>)> = sessions::table
        .find(session_id)
        .select((sessions::expires_at_us, sessions::revoked_at_us))
        .first(conn)
        .optional()?;
    Ok(found.is_some_and(|(expires_at_us, revoked)| revoked.is_none() && expires_at_us > now_us))
}

fn issue(conn: &mut DbConn, session: i64, now_us: i64) -> Result<RefreshToken, LedgerError> {
    let token = RefreshToken::new();
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(token.hash()),
            refresh_tokens::session_id.eq(session),
            refresh_tokens::issued_at_us.eq(now_us),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Spends `token` for its successor; the session's principal and id with it. Run it in a write
/// transaction: the token is marked used by a conditional update, so of two concurrent
/// refreshes with one token exactly one gets a successor and the other revokes the session.
pub fn rotate(
    conn: &mut DbConn,
    token: &RefreshToken,
    now_us: i64,
) -> Result<Result<(PrincipalId, i64, RefreshToken), Refused>, LedgerError> {
    let found: Option<(i64, Option<i64>)> = refresh_tokens::table
        .find(token.hash())
        .select((refresh_tokens::session_id, refresh_tokens::used_at_us))
        .first(conn)
        .optional()?;
    let Some((session, used_at_us)) = found else {
        return Ok(Err(Refused::Unknown));
    };
    let (principal, expires_at_us, revoked_at_us): (i64, i64, Option<i64>) = sessions::table
        .find(session)
        .select((
            sessions::principal_id,
            sessions::expires_at_us,
            sessions::revoked_at_us,
        ))
        .first(conn)?;
    if revoked_at_us.is_some() || expires_at_us <= now_us {
        return Ok(Err(Refused::Ended));
    }
    if used_at_us.is_some_and(|used| now_us - used < RACE_GRACE_US) {
        return Ok(Err(Refused::Raced));
    }
    let spent = used_at_us.is_none()
        && diesel::update(
            refresh_tokens::table
                .find(token.hash())
                .filter(refresh_tokens::used_at_us.is_null()),
        )
        .set(refresh_tokens::used_at_us.eq(now_us))
        .execute(conn)?
            == 1;
    if !spent {
        revoke(conn, session, now_us)?;
        return Ok(Err(Refused::Reused { session }));
    }
    Ok(Ok((
        PrincipalId::new(principal),
        session,
        issue(conn, session, now_us)?,
    )))
}

/// Ends the session `token` belongs to (logout), returning its id; nothing when it belongs to
/// none.
pub fn end(
    conn: &mut DbConn,
    token: &RefreshToken,
    now_us: i64,
) -> Result<Option<i64>, LedgerError> {
    let session: Option<i64> = refresh_tokens::table
        .find(token.hash())
        .select(refresh_tokens::session_id)
        .first(conn)
        .optional()?;
    if let Some(session) = session {
        revoke(conn, session, now_us)?;
    }
    Ok(session)
}

/// Ends every live session of `principal` but `keep` (a password change keeps the session
/// that made it); their ids.
pub fn end_all_but(
    conn: &mut DbConn,
    principal: PrincipalId,
    keep: Option<i64>,
    now_us: i64,
) -> Result<Vec<i64>, LedgerError> {
    let live: Vec<i64> = sessions::table
        .filter(sessions::principal_id.eq(principal.get()))
        .filter(sessions::revoked_at_us.is_null())
        .filter(sessions::expires_at_us.gt(now_us))
        .select(sessions::id)
        .load(conn)?;
    let ended: Vec<i64> = live.into_iter().filter(|id| Some(*id) != keep).collect();
    for &session in &ended {
        revoke(conn, session, now_us)?;
    }
    Ok(ended)
}

/// Ends one session of `principal` (a logout with its access token); whether it was live.
pub fn end_session(
    conn: &mut DbConn,
    principal: PrincipalId,
    session: i64,
    now_us: i64,
) -> Result<bool, LedgerError> {
    let ended = diesel::update(
        sessions::table
            .find(session)
            .filter(sessions::principal_id.eq(principal.get()))
            .filter(sessions::revoked_at_us.is_null()),
    )
    .set(sessions::revoked_at_us.eq(now_us))
    .execute(conn)?;
    Ok(ended == 1)
}

fn revoke(conn: &mut DbConn, session: i64, now_us: i64) -> Result<(), LedgerError> {
    diesel::update(
        sessions::table
            .find(session)
            .filter(sessions::revoked_at_us.is_null()),
    )
    .set(sessions::revoked_at_us.eq(now_us))
    .execute(conn)?;
    Ok(())
}
