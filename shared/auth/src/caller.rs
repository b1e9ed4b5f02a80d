use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{FutureExt as _, LocalBoxFuture, ready};
use scrip_domain::{Handle, PrincipalId};
use scrip_http::{ApiError, blocking};
use scrip_ledger::{Ledger, LedgerError};

use crate::{Subject, TokenVerifier};

/// Name of the cookie the web pages keep the token in (HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "scrip_session";
/// Name of the cookie holding the page session's refresh token (HttpOnly, SameSite=Strict,
/// sent only to `/api/v1/auth`).
pub const REFRESH_COOKIE: &str = "scrip_refresh";

/// Header the web pages' scripts send with every state-changing request. A cookie alone never
/// authorises a change: another site can make a browser send the cookie (old browsers ignore
/// SameSite) but cannot add a custom header without a CORS preflight, which Scrip never grants.
pub const CSRF_HEADER: &str = "x-scrip-csrf";

/// The authenticated caller. A handler that takes a `Caller` can only run for a request with
/// a valid token; everything else is answered 401 before the handler starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: PrincipalId,
    pub handle: Handle,
    /// The session its token was issued in (none for tokens from before sessions).
    pub session_id: Option<i64>,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (subject, verifier) = match authenticate(request) {
            Ok(found) => found,
            Err(refused) => return ready(Err(refused)).boxed_local(),
        };
        if subject
            .session_id
            .is_some_and(|session| verifier.session_known_ended(session))
        {
            return ready(Err(ApiError::unauthorized(
                "this session has ended (you logged out, or it was revoked); log in again",
            )))
            .boxed_local();
        }
        let principal_known = verifier.known_live(subject.id, &subject.handle);
        let session_known = subject
            .session_id
            .is_none_or(|session| verifier.session_known_live(session));
        if principal_known && session_known {
            return ready(Ok(caller_of(subject))).boxed_local();
        }
        let ledger = request.app_data::<web::Data<Ledger>>().cloned();
        async move {
            let ledger = ledger.ok_or_else(|| ApiError::Internal("no ledger configured".into()))?;
            confirm_live(ledger, &verifier, subject, principal_known).await
        }
        .boxed_local()
    }
}

fn caller_of(subject: Subject) -> Caller {
    Caller {
        id: subject.id,
        handle: subject.handle,
        session_id: subject.session_id,
    }
}

/// A well-signed token is only as good as the principal it names and the session it was
/// issued in: a principal that does not exist (a database restored or recreated under the
/// same keys), or exists under another handle, is refused like any bad token, and so is a
/// session that ended (logged out, or revoked for a reused refresh token). The principal is
/// read once per principal, the session again every [`crate::SESSION_RECHECK`].
async fn confirm_live(
    ledger: web::Data<Ledger>,
    verifier: &TokenVerifier,
    subject: Subject,
    principal_known: bool,
) -> Result<Caller, ApiError> {
    let (id, session) = (subject.id, subject.session_id);
    let (stored, session_live) = blocking(move || {
        let mut conn = ledger.conn()?;
        let stored = if principal_known {
            None
        } else {
            match scrip_ledger::principal_by_id(&mut conn, id) {
                Ok(principal) => Some(principal.handle),
                Err(LedgerError::UnknownPrincipal) => None,
                Err(other) => return Err(other.into()),
            }
        };
        let live = match session {
            Some(session) => crate::sessions::is_live(&mut conn, session, scrip_http::now_us())?,
            None => true,
        };
        Ok::<_, ApiError>((stored, live))
    })
    .await?;
    if !principal_known && stored.as_ref() != Some(&subject.handle) {
        return Err(ApiError::unauthorized(
            "the account this token names does not exist here; log in again",
        ));
    }
    if !session_live {
        return Err(ApiError::unauthorized(
            "this session has ended (you logged out, or it was revoked); log in again",
        ));
    }
    verifier.confirm_live(subject.id, subject.handle.clone());
    if let Some(session) = session {
        verifier.confirm_session(session);
    }
    Ok(caller_of(subject))
}

/// A change authorised by a cookie must carry [`CSRF_HEADER`] (403 `csrf_check_failed`).
pub fn require_csrf_header(request: &HttpRequest) -> Result<(), ApiError> {
    if request.headers().contains_key(CSRF_HEADER) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "csrf_check_failed",
            format!(
                "a request authorised by the session cookie must carry the {CSRF_HEADER} header"
            ),
        ))
    }
}

fn authenticate(request: &HttpRequest) -> Result<(Subject, web::Data<TokenVerifier>), ApiError> {
    let verifier = request
        .app_data::<web::Data<TokenVerifier>>()
        .ok_or_else(|| ApiError::Internal("no token verifier configured".into()))?;
    let (token, from_cookie) = bearer_token(request)
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <access_token>"))?;
    let subject = verifier.verify(&token).map_err(ApiError::unauthorized)?;
    if from_cookie && !request.method().is_safe() {
        require_csrf_header(request)?;
    }
    Ok((subject, verifier.clone()))
}

/// The token and whether it came from the session cookie rather than the header.
fn bearer_token(request: &HttpRequest) -> Option<(String, bool)> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| (token.trim().to_owned(), false));
    }
    request
        .cookie(SESSION_COOKIE)
        .map(|c| (c.value().to_owned(), true))
}

/// Refuses a form post or a WebSocket opened from another site: browsers send `Origin` on
/// every cross-site POST and every WebSocket handshake, so an `Origin` that is not this host
/// means a forged form (login CSRF, forced logout) or another site listening in.
pub fn same_origin(request: &HttpRequest) -> Result<(), ApiError> {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let host = request.connection_info().host().to_owned();
    let origin = origin.to_str().unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    if origin_host == host {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "csrf_check_failed",
            "this form was sent from another site",
        ))
    }
}
