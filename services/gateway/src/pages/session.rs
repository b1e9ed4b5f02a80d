//! The page session: the token in an HttpOnly cookie, who it belongs to, and the checks on
//! form posts (same origin, local redirect targets only).

use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::{HttpRequest, web};
use scrip_auth::{Caller, REFRESH_COOKIE, SESSION_COOKIE, TokenVerifier};

/// The signed-in user of a page request, from the session cookie only (pages never read the
/// Authorization header, so a page is never rendered for a token pasted by a script).
pub fn viewer(request: &HttpRequest) -> Option<Caller> {
    let verifier = request.app_data::<web::Data<TokenVerifier>>()?;
    let token = request.cookie(SESSION_COOKIE)?;
    let subject = verifier.verify(token.value()).ok()?;
    Some(Caller {
        id: subject.id,
        handle: subject.handle,
        session_id: subject.session_id,
    })
}

/// The session cookie carrying `token` for `ttl_s` seconds.
pub fn session_cookie(request: &HttpRequest, token: String, ttl_s: u64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(request.connection_info().scheme() == "https")
        .max_age(Duration::seconds(i64::try_from(ttl_s).unwrap_or(i64::MAX)))
        .finish()
}

/// Where the refresh cookie is sent: the refresh endpoint (and logout reads it there too).
const REFRESH_PATH: &str = "/api/v1/auth";

/// The page session's two cookies: the access token for everything, and the refresh token
/// for `/api/v1/auth` only, living as long as the session may (30 days).
pub fn session_cookies(
    request: &HttpRequest,
    login: &crate::LoginResponse,
    ttl_s: u64,
) -> [Cookie<'static>; 2] {
    let refresh_max_s = scrip_auth::sessions::SESSION_LIFETIME_US / 1_000_000;
    [
        session_cookie(request, login.access_token.clone(), ttl_s),
        Cookie::build(REFRESH_COOKIE, login.refresh_token.clone())
            .path(REFRESH_PATH)
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(request.connection_info().scheme() == "https")
            .max_age(Duration::seconds(refresh_max_s))
            .finish(),
    ]
}

/// The cookies that remove the session.
pub fn cleared_cookies() -> [Cookie<'static>; 2] {
    let cleared = |name: &'static str, path: &'static str| {
        let mut cookie = Cookie::build(name, "")
            .path(path)
            .http_only(true)
            .same_site(SameSite::Strict)
            .finish();
        cookie.make_removal();
        cookie
    };
    [
        cleared(SESSION_COOKIE, "/"),
        cleared(REFRESH_COOKIE, REFRESH_PATH),
    ]
}

/// Where to go after logging in: a path on this site, never another site (`//evil` or
/// `https://evil` would make the login page an open redirect).
pub fn local_target(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && path.chars().all(|c| c.is_ascii_graphic()) =>
        {
            path.to_owned()
        }
        _ => "/wallet".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::local_target;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(local_target(Some("/exchange/A-B")), "/exchange/A-B");
        assert_eq!(local_target(Some("/wallet?pay_to=x")), "/wallet?pay_to=x");
        // Other sites, and what a Location header could not carry.
        for refused in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "/a\nb",
            "/\u{e9}",
            "/a b",
        ] {
            assert_eq!(local_target(Some(refused)), "/wallet", "{refused}");
        }
        assert_eq!(local_target(None), "/wallet");
    }
}
