use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use scrip_domain::{Handle, PrincipalId};
use scrip_http::ApiError;

use crate::TokenVerifier;

/// Name of the cookie the web pages keep the token in (HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "scrip_session";

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
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(request))
    }
}

fn authenticate(request: &HttpRequest) -> Result<Caller, ApiError> {
    let verifier = request
        .app_data::<web::Data<TokenVerifier>>()
        .ok_or_else(|| ApiError::Internal("no token verifier configured".into()))?;
    let (token, from_cookie) = bearer_token(request)
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <access_token>"))?;
    let (id, handle) = verifier.verify(&token).map_err(ApiError::unauthorized)?;
    if from_cookie && !request.method().is_safe() && !request.headers().contains_key(CSRF_HEADER) {
        return Err(ApiError::forbidden(
            "csrf_check_failed",
            format!(
                "a request authorised by the session cookie must carry the {CSRF_HEADER} header"
            ),
        ));
    }
    Ok(Caller { id, handle })
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
