use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use scrip_auth::access::{credentials_of, memberships_of, roles_of, store_credentials};
use scrip_auth::password::{self, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use scrip_auth::{Caller, TokenIssuer, sessions};
use scrip_domain::{Handle, PrincipalKind, RegistryId};
use scrip_http::{ApiError, Problem, RateLimiter, blocking, client_ip};
use scrip_ledger::{Ledger, create_principal, principal_by_id};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The gateway's own state: the token signer and the limits on anonymous endpoints.
#[derive(Debug)]
pub struct GatewayContext {
    pub tokens: TokenIssuer,
    /// Logins per client address and handle: guessing one user's password.
    pub login_limiter: RateLimiter,
    /// Logins per client address, whatever the handle: one client trying many handles.
    pub login_address_limiter: RateLimiter,
    pub signup_limiter: RateLimiter,
    /// The bounded pool every password hash runs on.
    pub hasher: password::Hasher,
    /// Tells every process when a session ends.
    pub revocation: scrip_auth::revocation::Revocation,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub handle: String,
    /// At least 10 characters.
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    pub id: String,
    pub handle: String,
    pub address: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub handle: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Buys the next access token (and the next refresh token) at `POST /api/v1/auth/refresh`,
    /// once; the session lasts at most 30 days from the login.
    pub refresh_token: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    /// Optional for the pages, whose refresh token is in the `scrip_refresh` cookie.
    pub refresh_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Membership {
    pub handle: String,
    pub role: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub id: String,
    pub handle: String,
    pub address: String,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    pub businesses: Vec<Membership>,
    /// Memberships offered to the caller and not yet accepted (`POST
    /// /api/v1/businesses/{handle}/invitations/{me}/accept` accepts, `DELETE
    /// /api/v1/businesses/{handle}/invitations/{me}` declines).
    pub invitations: Vec<InvitationView>,
}

impl Me {
    /// Whether the caller owns a business (and so may act for one on the pages).
    pub fn owns_a_business(&self) -> bool {
        self.businesses.iter().any(|b| b.role == "owner")
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    /// The business inviting.
    pub handle: String,
    pub role: String,
    pub invited_by: String,
    pub invited_at: String,
}

#[utoipa::path(
    post, path = "/api/v1/auth/register", tag = "identity", request_body = NewUser,
    responses(
        (status = 201, body = Registered),
        (status = 409, body = Problem, description = "handle_taken"),
        (status = 422, body = Problem, description = "weak_password, bad_handle, bad_name"),
        (status = 429, body = Problem, description = "rate_limited"),
    )
)]
#[post("/api/v1/auth/register")]
pub async fn register(
    request: HttpRequest,
    body: scrip_http::Json<NewUser>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    gateway: web::Data<GatewayContext>,
) -> Result<HttpResponse, ApiError> {
    let registered = create_user(
        &request,
        body.into_inner(),
        ledger.into_inner(),
        registry.into_inner(),
        &gateway,
    )
    .await?;
    Ok(HttpResponse::Created().json(registered))
}

#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "identity", request_body = Credentials,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, body = Problem, description = "bad_credentials (also for an unknown handle)"),
        (status = 429, body = Problem, description = "rate_limited"),
    )
)]
#[post("/api/v1/auth/login")]
pub async fn login(
    request: HttpRequest,
    body: scrip_http::Json<Credentials>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    gateway: web::Data<GatewayContext>,
) -> Result<HttpResponse, ApiError> {
    let response = check_password(
        &request,
        body.into_inner(),
        ledger.into_inner(),
        registry.into_inner(),
        gateway.into_inner(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(response))
}

#[utoipa::path(
    get, path = "/api/v1/me", tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem))
)]
#[get("/api/v1/me")]
pub async fn me(
    caller: Caller,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let me = blocking(move || profile(&mut *ledger.conn()?, caller.id, &registry)).await?;
    Ok(HttpResponse::Ok().json(me))
}

/// Checks the sign-up rate limit, validates a sign-up and creates the user: shared by the API
/// and the sign-up page.
pub(crate) async fn create_user(
    request: &HttpRequest,
    body: NewUser,
    ledger: Arc<Ledger>,
    registry: Arc<RegistryId>,
    gateway: &GatewayContext,
) -> Result<Registered, ApiError> {
    gateway.signup_limiter.check(&client_ip(request)).await?;
    let handle = Handle::parse_new(&body.handle)
        .map_err(|e| ApiError::unprocessable("bad_handle", e.to_string()))?;
    check_new_password(&body.password, "password")?;
    let display_name = match body.display_name.as_deref().map(str::trim) {
        Some(name)
            if name.chars().count() > 100 || name.chars().any(scrip_domain::is_invisible) =>
        {
            return Err(ApiError::unprocessable(
                "bad_name",
                "a display name is at most 100 printable characters",
            ));
        }
        Some("") | None => None,
        Some(name) => Some(name.to_owned()),
    };
    let hash = gateway.hasher.hash(body.password).await?;
    blocking(move || {
        let user = ledger.write(|conn| {
            let user =
                create_principal(conn, &handle, PrincipalKind::User, display_name.as_deref())?;
            store_credentials(conn, user.id, &hash)?;
            Ok(user)
        })?;
        Ok(Registered {
            id: user.id.to_string(),
            address: user.handle.address(&registry).to_string(),
            handle: user.handle.to_string(),
        })
    })
    .await
}

/// A password someone chooses: 10 to 256 characters (422 `weak_password` under `field`).
fn check_new_password(password: &str, field: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Err(ApiError::refused_field(
            "weak_password",
            field,
            "a password has at least 10 characters",
        ));
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(ApiError::refused_field(
            "weak_password",
            field,
            "a password has at most 256 characters",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password in use now.
    pub current: String,
    /// The new one: at least 10 characters.
    pub new: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    /// How many other sessions (browsers, devices) were signed out.
    pub signed_out_sessions: usize,
}

#[utoipa::path(
    post, path = "/api/v1/auth/password", tag = "identity", request_body = PasswordChange,
    security(("bearer" = [])),
    responses(
        (status = 200, body = PasswordChanged, description = "changed; every other session is signed out at once, on every process"),
        (status = 422, body = Problem, description = "bad_credentials (under `field`: current), weak_password (under `field`: new)"),
        (status = 429, body = Problem, description = "rate_limited"),
    )
)]
#[post("/api/v1/auth/password")]
pub async fn change_password(
    caller: Caller,
    body: scrip_http::Json<PasswordChange>,
    ledger: web::Data<Ledger>,
    gateway: web::Data<GatewayContext>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_new_password(&body.new, "new")?;
    // Guessing the current password through here is guessing a login.
    gateway
        .login_limiter
        .check(&format!("password|{}", caller.id))
        .await?;
    let reader = ledger.clone();
    let principal = caller.id;
    let stored = blocking(move || {
        Ok(scrip_auth::access::password_hash_of(
            &mut *reader.conn()?,
            principal,
        )?)
    })
    .await?;
    if !gateway.hasher.verify(stored, body.current).await? {
        // 422, not 401: the caller is signed in; a 401 would make clients renew the session.
        return Err(ApiError::refused_field(
            "bad_credentials",
            "current",
            "the current password is wrong",
        ));
    }
    let hash = gateway.hasher.hash(body.new).await?;
    let keep = caller.session_id;
    let ended = blocking(move || {
        Ok(ledger.write(|conn| {
            scrip_auth::access::set_password_hash(conn, principal, &hash)?;
            sessions::end_all_but(conn, principal, keep, scrip_http::now_us())
        })?)
    })
    .await?;
    gateway.revocation.announce(&ended);
    Ok(HttpResponse::Ok().json(PasswordChanged {
        signed_out_sessions: ended.len(),
    }))
}

/// Checks a handle and password under the login rate limit and issues a token: shared by the
/// API and the login page.
pub(crate) async fn check_password(
    request: &HttpRequest,
    body: Credentials,
    ledger: Arc<Ledger>,
    registry: Arc<RegistryId>,
    gateway: Arc<GatewayContext>,
) -> Result<LoginResponse, ApiError> {
    // Keyed by the parsed handle, so `alice` and `alice@local` share one budget and an
    // oversized handle cannot make a key of its own.
    let limit_key = match Handle::parse_local(&body.handle, &registry) {
        Ok(handle) => format!("{}|{handle}", client_ip(request)),
        Err(_) => client_ip(request),
    };
    gateway
        .login_address_limiter
        .check(&client_ip(request))
        .await?;
    gateway.login_limiter.check(&limit_key).await?;
    let handle = Handle::parse_local(&body.handle, &registry).ok();
    let lookup = handle.clone();
    let reader = Arc::clone(&ledger);
    let found = blocking(move || match &lookup {
        Some(handle) => Ok(credentials_of(&mut *reader.conn()?, handle)?),
        None => Ok(None),
    })
    .await?;
    let (principal, stored) = found.unzip();
    // An unknown handle spends the same hashing time as a wrong password.
    let matches = gateway.hasher.verify(stored, body.password).await?;
    let (Some(handle), Some(principal), true) = (handle, principal, matches) else {
        return Err(ApiError::Unauthorized {
            code: "bad_credentials",
            detail: "the handle or password is wrong".into(),
        });
    };
    let (session_id, first_refresh) = blocking(move || {
        Ok(ledger.write(|conn| sessions::open(conn, principal, scrip_http::now_us()))?)
    })
    .await?;
    tokens_for(&gateway, (principal, &handle), session_id, &first_refresh)
}

fn tokens_for(
    gateway: &GatewayContext,
    (principal, handle): (scrip_domain::PrincipalId, &Handle),
    session_id: i64,
    refresh_token: &sessions::RefreshToken,
) -> Result<LoginResponse, ApiError> {
    Ok(LoginResponse {
        access_token: gateway
            .tokens
            .issue(principal, handle, Some(session_id))
            .map_err(ApiError::Internal)?,
        token_type: "Bearer".into(),
        expires_in: gateway.tokens.ttl_s(),
        refresh_token: refresh_token.as_str().to_owned(),
    })
}

/// Spends a refresh token for a new access token and refresh token (rotation); shared by the
/// API and the pages' cookie.
pub(crate) async fn refresh_session(
    ledger: Arc<Ledger>,
    gateway: Arc<GatewayContext>,
    token: sessions::RefreshToken,
) -> Result<LoginResponse, ApiError> {
    let rotated = blocking(move || {
        let rotated = ledger.write(|conn| {
            let now_us = scrip_http::now_us();
            Ok(match sessions::rotate(conn, &token, now_us)? {
                Ok((principal, session, next)) => {
                    Ok((principal_by_id(conn, principal)?, session, next))
                }
                Err(refused) => Err(refused),
            })
        })?;
        Ok(rotated)
    })
    .await?;
    match rotated {
        Ok((principal, session, next)) => {
            tokens_for(&gateway, (principal.id, &principal.handle), session, &next)
        }
        Err(sessions::Refused::Raced) => Err(ApiError::conflict(
            "refresh_raced",
            "this session was refreshed a moment ago (in another tab?); send the request again",
        )),
        Err(sessions::Refused::Reused { session }) => {
            // Its access tokens (maybe the copier's) stop working on every process now.
            gateway.revocation.announce(&[session]);
            Err(ApiError::unauthorized(
                "this refresh token was used before, so it may have been copied: the session is ended; log in again",
            ))
        }
        Err(sessions::Refused::Unknown | sessions::Refused::Ended) => Err(ApiError::unauthorized(
            "the session has ended; log in again",
        )),
    }
}

#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "identity", request_body = RefreshBody,
    responses(
        (status = 200, body = LoginResponse, description = "a new access token and refresh token; the one sent is spent"),
        (status = 401, body = Problem, description = "the session ended (logout, older than 30 days), or the token was used twice (then the session is revoked)"),
        (status = 409, body = Problem, description = "refresh_raced: refreshed a moment ago by the same browser; retry the request"),
    )
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    request: HttpRequest,
    body: scrip_http::OptionalJson<RefreshBody>,
    ledger: web::Data<Ledger>,
    gateway: web::Data<GatewayContext>,
) -> Result<HttpResponse, ApiError> {
    let from_body = body.0.and_then(|b| b.refresh_token);
    let from_cookie = from_body.is_none();
    let raw = match from_body {
        Some(raw) => raw,
        None => {
            // A cookie alone never authorises a change (see CSRF_HEADER).
            scrip_auth::require_csrf_header(&request)?;
            request
                .cookie(scrip_auth::REFRESH_COOKIE)
                .map(|c| c.value().to_owned())
                .ok_or_else(|| {
                    ApiError::unauthorized("send {\"refresh_token\": ...}; log in again")
                })?
        }
    };
    let token = sessions::RefreshToken::from_client(&raw);
    let response =
        refresh_session(ledger.into_inner(), gateway.clone().into_inner(), token).await?;
    let mut answer = HttpResponse::Ok();
    if from_cookie {
        let ttl_s = gateway.tokens.ttl_s();
        for cookie in crate::pages::session_cookies(&request, &response, ttl_s) {
            answer.cookie(cookie);
        }
    }
    Ok(answer.json(response))
}

/// Who `id` is: handle, address, registry roles and business memberships.
pub(crate) fn profile(
    conn: &mut scrip_store::DbConn,
    id: scrip_domain::PrincipalId,
    registry: &RegistryId,
) -> Result<Me, ApiError> {
    let principal = principal_by_id(conn, id)?;
    Ok(Me {
        id: principal.id.to_string(),
        address: principal.handle.address(registry).to_string(),
        handle: principal.handle.to_string(),
        display_name: principal.display_name,
        roles: roles_of(conn, id)?,
        businesses: memberships_of(conn, id)?
            .into_iter()
            .map(|(handle, role)| Membership {
                handle: handle.to_string(),
                role: role.as_str().into(),
            })
            .collect(),
        invitations: scrip_auth::invitations::pending(
            conn,
            scrip_auth::invitations::Pending::ForMember(id),
        )?
        .into_iter()
        .map(|invitation| InvitationView {
            handle: invitation.business.to_string(),
            role: invitation.role.as_str().into(),
            invited_by: invitation.invited_by.to_string(),
            invited_at: scrip_http::rfc3339_from_us(invitation.created_at_us),
        })
        .collect(),
    })
}
