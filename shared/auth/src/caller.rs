use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{FutureExt as _, LocalBoxFuture, ready};
use scrip_domain::{Handle, PrincipalId};
use scrip_http::{ApiError, blocking};
use scrip_ledger::{Ledger, LedgerError};

use crate::TokenVerifier;

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
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (caller, verifier) = match authenticate(request) {
            Ok(found) => found,
            Err(refused) => return ready(Err(refused)).boxed_local(),
        };
        if verifier.known_live(caller.id, &caller.handle) {
            return ready(Ok(caller)).boxed_local();
        }
        let ledger = request.app_data::<web::Data<Ledger>>().cloned();
        async move {
            let ledger = ledger.ok_or_else(|| ApiError::Internal("no ledger configured".into()))?;
            confirm_live(ledger, &verifier, caller).await
        }
        .boxed_local()
    }
}

/// A well-signed token is only as good as the principal it names: one that does not exist
/// (a database restored or recreated under the same keys), or exists under another handle, is
/// refused like any bad token, before a handler can write for it. Read once per principal.
async fn confirm_live(
    ledger: web::Data<Ledger>,
    verifier: &TokenVerifier,
    caller: Caller,
) -> Result<Caller, ApiError> {
    let id = caller.id;
    let stored = blocking(move || {
        let mut conn = ledger.conn()?;
        match scrip_ledger::principal_by_id(&mut conn, id) {
            Ok(principal) => Ok(Some(principal.handle)),
            Err(LedgerError::UnknownPrincipal) => Ok(None),
            Err(other) => Err(other.into()),
        }
    })
    .await?;
    if stored.as_ref() != Some(&caller.handle) {
        return Err(ApiError::unauthorized(
            "the account this token names does not exist here; log in again",
        ));
    }
    verifier.confirm_live(caller.id, caller.handle.clone());
    Ok(caller)
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

fn authenticate(request: &HttpRequest) -> Result<(Caller, web::Data<TokenVerifier>), ApiError> {
    let verifier = request
        .app_data::<web::Data<TokenVerifier>>()
        .ok_or_else(|| ApiError::Internal("no token verifier configured".into()))?;
    let (token, from_cookie) = bearer_token(request)
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <access_token>"))?;
    let (id, handle) = verifier.verify(&token).map_err(ApiError::unauthorized)?;
    if from_cookie && !request.method().is_safe() {
        require_csrf_header(request)?;
    }
    Ok((Caller { id, handle }, verifier.clone()))
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
