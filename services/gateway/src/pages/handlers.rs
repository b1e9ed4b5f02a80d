//! Page handlers: each renders a template with who is signed in; login, sign-up and logout are
//! plain HTML forms so they work before any script has loaded.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use scrip_auth::Caller;
use scrip_domain::RegistryId;
use scrip_http::{ApiError, blocking};
use scrip_ledger::Ledger;
use serde::Deserialize;

use super::session::{cleared_cookies, local_target, session_cookies, viewer};
use crate::auth::{Credentials, NewUser, check_password, create_user, profile};
use crate::{GatewayContext, Me};
use scrip_auth::same_origin;

/// What every page's frame shows: the page, who is signed in and what they may open.
#[derive(Debug)]
pub struct Nav {
    pub page: &'static str,
    pub title: String,
    pub me: Option<Me>,
    pub operator: bool,
    /// The signed-in user's profile as JSON for the page's script (`<` escaped so the data
    /// can never close its `<script>` element).
    pub me_json: String,
}

impl Nav {
    async fn load(
        request: &HttpRequest,
        page: &'static str,
        title: impl Into<String>,
    ) -> Result<Self, ApiError> {
        let me = match viewer(request) {
            Some(caller) => Some(load_profile(request, caller).await?),
            None => None,
        };
        let operator = me
            .as_ref()
            .is_some_and(|me| me.roles.iter().any(|r| r == "operator"));
        let me_json = serde_json::to_string(&me)
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .replace('<', "\\u003c");
        Ok(Self {
            page,
            title: title.into(),
            me,
            operator,
            me_json,
        })
    }
}

async fn load_profile(request: &HttpRequest, caller: Caller) -> Result<Me, ApiError> {
    let ledger = app_data::<Ledger>(request)?;
    let registry = app_data::<RegistryId>(request)?;
    blocking(move || profile(&mut *ledger.conn()?, caller.id, &registry)).await
}

fn app_data<T: 'static>(request: &HttpRequest) -> Result<Arc<T>, ApiError> {
    request
        .app_data::<web::Data<T>>()
        .map(|data| data.clone().into_inner())
        .ok_or_else(|| ApiError::Internal("page state missing".into()))
}

/// An HTML answer with the headers every page carries: no framing, no sniffing, scripts and
/// styles only from this site.
fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn render(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(body) => html(status, body),
        Err(error) => {
            tracing::error!(%error, "page template failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// A page that could not be built: the API's message, in the page frame.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Nav,
    status: u16,
    message: String,
}

fn failure(error: &ApiError) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(error);
    let page = ErrorPage {
        nav: Nav {
            page: "error",
            title: "Something went wrong".into(),
            me: None,
            operator: false,
            me_json: "null".into(),
        },
        status: status.as_u16(),
        message: error.to_string(),
    };
    render(status, &page)
}

/// What an unknown path answers: a browser asking for a page gets a page that says so, in the
/// site's frame; an API client (or any path under `/api/`) gets problem+json.
pub async fn not_found(request: HttpRequest) -> HttpResponse {
    let wants_page = !request.path().starts_with("/api/")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    let error = if wants_page {
        ApiError::not_found(
            "not_found",
            format!("There is no page at {}.", request.path()),
        )
    } else {
        ApiError::not_found("not_found", "no such endpoint")
    };
    if wants_page {
        failure(&error)
    } else {
        actix_web::ResponseError::error_response(&error)
    }
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A redirect that also sets (or clears) the session cookie.
fn redirect_with(location: &str, cookies: &[actix_web::cookie::Cookie<'static>]) -> HttpResponse {
    let mut response = redirect(location);
    for cookie in cookies {
        if let Err(error) = response.add_cookie(cookie) {
            return failure(&ApiError::Internal(error.to_string()));
        }
    }
    response
}

/// The login page for a request that needs a session, coming back here afterwards.
fn login_first(request: &HttpRequest) -> HttpResponse {
    let here = request
        .uri()
        .path_and_query()
        .map_or("/wallet", |p| p.as_str());
    let query: String = url_encode(here);
    redirect(&format!("/login?next={query}"))
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Renders a page that anyone may see.
async fn public_page<T: Template>(
    request: &HttpRequest,
    page: &'static str,
    title: impl Into<String>,
    build: impl FnOnce(Nav) -> T,
) -> HttpResponse {
    match Nav::load(request, page, title).await {
        Ok(nav) => render(StatusCode::OK, &build(nav)),
        Err(error) => failure(&error),
    }
}

/// Renders a page for signed-in users; others are sent to the login page.
async fn private_page<T: Template>(
    request: &HttpRequest,
    page: &'static str,
    title: impl Into<String>,
    build: impl FnOnce(Nav) -> T,
) -> HttpResponse {
    if viewer(request).is_none() {
        return login_first(request);
    }
    public_page(request, page, title, build).await
}

#[get("/")]
pub async fn home(request: HttpRequest) -> HttpResponse {
    redirect(if viewer(&request).is_some() {
        "/wallet"
    } else {
        "/exchange"
    })
}

/// `/pay/{id}`: what a payment request's QR code opens. The wallet pays it; whoever is not
/// signed in logs in (or signs up) first and comes back here.
#[get("/pay/{id}")]
pub async fn pay_request_page(request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if viewer(&request).is_none() {
        return login_first(&request);
    }
    redirect(&format!("/wallet?request={}", url_encode(&id)))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Nav,
    handle: String,
    next: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    /// Set when a page's session ended under it.
    expired: Option<String>,
}

#[get("/login")]
pub async fn login_page(request: HttpRequest, query: web::Query<NextQuery>) -> HttpResponse {
    let next = local_target(query.next.as_deref());
    let expired = query.expired.is_some();
    public_page(&request, "login", "Log in", |nav| LoginPage {
        nav,
        handle: String::new(),
        next,
        error: expired.then(|| "Your session ended; log in again to go on where you were.".into()),
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    handle: String,
    password: String,
    next: Option<String>,
}

#[post("/login")]
pub async fn login_form(
    request: HttpRequest,
    form: web::Form<LoginForm>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    gateway: web::Data<GatewayContext>,
) -> HttpResponse {
    if let Err(error) = same_origin(&request) {
        return failure(&error);
    }
    let form = form.into_inner();
    let next = local_target(form.next.as_deref());
    let credentials = Credentials {
        handle: form.handle.trim().to_owned(),
        password: form.password,
    };
    let handle = credentials.handle.clone();
    let ttl_s = gateway.tokens.ttl_s();
    let checked = check_password(
        &request,
        credentials,
        ledger.into_inner(),
        registry.into_inner(),
        gateway.into_inner(),
    )
    .await;
    match checked {
        Ok(login) => redirect_with(&next, &session_cookies(&request, &login, ttl_s)),
        Err(error) => {
            let status = actix_web::ResponseError::status_code(&error);
            let message = error.to_string();
            match Nav::load(&request, "login", "Log in").await {
                Ok(nav) => render(
                    status,
                    &LoginPage {
                        nav,
                        handle,
                        next,
                        error: Some(message),
                    },
                ),
                Err(error) => failure(&error),
            }
        }
    }
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    nav: Nav,
    handle: String,
    display_name: String,
    next: String,
    handle_error: Option<String>,
    password_error: Option<String>,
    name_error: Option<String>,
    error: Option<String>,
}

#[get("/signup")]
pub async fn signup_page(request: HttpRequest, query: web::Query<NextQuery>) -> HttpResponse {
    let next = local_target(query.next.as_deref());
    public_page(&request, "signup", "Sign up", |nav| SignupPage {
        nav,
        handle: String::new(),
        display_name: String::new(),
        next,
        handle_error: None,
        password_error: None,
        name_error: None,
        error: None,
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct SignupForm {
    handle: String,
    display_name: Option<String>,
    password: String,
    next: Option<String>,
}

#[post("/signup")]
pub async fn signup_form(
    request: HttpRequest,
    form: web::Form<SignupForm>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    gateway: web::Data<GatewayContext>,
) -> HttpResponse {
    if let Err(error) = same_origin(&request) {
        return failure(&error);
    }
    let form = form.into_inner();
    let next = local_target(form.next.as_deref());
    let handle = form.handle.trim().to_owned();
    let display_name = form.display_name.clone().unwrap_or_default();
    let signed_up = async {
        create_user(
            &request,
            NewUser {
                handle: handle.clone(),
                password: form.password.clone(),
                display_name: form.display_name.clone(),
            },
            ledger.clone().into_inner(),
            registry.clone().into_inner(),
            &gateway,
        )
        .await?;
        check_password(
            &request,
            Credentials {
                handle: handle.clone(),
                password: form.password.clone(),
            },
            ledger.clone().into_inner(),
            registry.clone().into_inner(),
            gateway.clone().into_inner(),
        )
        .await
    }
    .await;
    match signed_up {
        Ok(login) => redirect_with(
            &next,
            &session_cookies(&request, &login, gateway.tokens.ttl_s()),
        ),
        Err(error) => {
            let status = actix_web::ResponseError::status_code(&error);
            let message = Some(error.to_string());
            let mut page = SignupPage {
                nav: match Nav::load(&request, "signup", "Sign up").await {
                    Ok(nav) => nav,
                    Err(error) => return failure(&error),
                },
                handle,
                display_name,
                next,
                handle_error: None,
                password_error: None,
                name_error: None,
                error: None,
            };
            // The API's message goes next to the field it is about.
            match error.code() {
                "bad_handle" | "handle_taken" => page.handle_error = message,
                "weak_password" => page.password_error = message,
                "bad_name" => page.name_error = message,
                _ => page.error = message,
            }
            render(status, &page)
        }
    }
}

/// Log out: ends the session. The page sends its refresh cookie (sent to `/api/v1/auth` only,
/// hence the path) and is redirected to the login page with both cookies removed; an API
/// client sends its access token and gets 204. Either way the session's tokens are refused
/// at once on every process.
#[post("/api/v1/auth/logout")]
pub async fn logout(
    request: HttpRequest,
    caller: Option<scrip_auth::Caller>,
    ledger: web::Data<Ledger>,
    gateway: web::Data<GatewayContext>,
) -> HttpResponse {
    let bearer = request
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION);
    if !bearer && let Err(error) = same_origin(&request) {
        return failure(&error);
    }
    let session = caller
        .filter(|_| bearer)
        .and_then(|c| c.session_id.map(|s| (c.id, s)));
    let cookie = request
        .cookie(scrip_auth::REFRESH_COOKIE)
        .map(|c| scrip_auth::sessions::RefreshToken::from_client(c.value()));
    let ended = blocking(move || {
        Ok(ledger.write(|conn| {
            let now = scrip_http::now_us();
            let mut ended = Vec::new();
            if let Some((principal, id)) = session
                && scrip_auth::sessions::end_session(conn, principal, id, now)?
            {
                ended.push(id);
            }
            if let Some(token) = &cookie
                && let Some(id) = scrip_auth::sessions::end(conn, token, now)?
            {
                ended.push(id);
            }
            Ok(ended)
        })?)
    })
    .await;
    match ended {
        Ok(ended) => gateway.revocation.announce(&ended),
        Err(error) => return failure(&error),
    }
    if bearer {
        HttpResponse::NoContent().finish()
    } else {
        redirect_with("/login", &cleared_cookies())
    }
}

#[post("/logout")]
pub async fn logout_cookies_only(request: HttpRequest) -> HttpResponse {
    if let Err(error) = same_origin(&request) {
        return failure(&error);
    }
    redirect_with("/login", &cleared_cookies())
}

#[derive(Template)]
#[template(path = "wallet.html")]
struct WalletPage {
    nav: Nav,
}

#[get("/wallet")]
pub async fn wallet(request: HttpRequest) -> HttpResponse {
    private_page(&request, "wallet", "Wallet", |nav| WalletPage { nav }).await
}

#[derive(Template)]
#[template(path = "exchange.html")]
struct ExchangePage {
    nav: Nav,
}

#[get("/exchange")]
pub async fn exchange(request: HttpRequest) -> HttpResponse {
    public_page(&request, "exchange", "Markets", |nav| ExchangePage { nav }).await
}

#[derive(Template)]
#[template(path = "market.html")]
struct MarketPage {
    nav: Nav,
    symbol: String,
}

#[get("/exchange/{symbol}")]
pub async fn market(request: HttpRequest, symbol: web::Path<String>) -> HttpResponse {
    let symbol = symbol.into_inner();
    let title = symbol.clone();
    public_page(&request, "market", title, |nav| MarketPage { nav, symbol }).await
}

#[derive(Template)]
#[template(path = "currency.html")]
struct CurrencyPage {
    nav: Nav,
    code: String,
}

/// A currency's public page: what holding it means, before anyone holds it.
#[get("/currencies/{code}")]
pub async fn currency(request: HttpRequest, code: web::Path<String>) -> HttpResponse {
    let code = code.into_inner().to_uppercase();
    let title = code.clone();
    public_page(&request, "currency", title, |nav| CurrencyPage {
        nav,
        code,
    })
    .await
}

#[derive(Template)]
#[template(path = "shop.html")]
struct ShopPage {
    nav: Nav,
}

#[get("/shop")]
pub async fn shop(request: HttpRequest) -> HttpResponse {
    private_page(&request, "shop", "Shop console", |nav| ShopPage { nav }).await
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    nav: Nav,
}

/// The public invariant monitor.
#[get("/status")]
pub async fn status_page(request: HttpRequest) -> HttpResponse {
    public_page(&request, "status", "Status", |nav| StatusPage { nav }).await
}

#[derive(Template)]
#[template(path = "clearing.html")]
struct ClearingPage {
    nav: Nav,
}

#[get("/clearing")]
pub async fn clearing(request: HttpRequest) -> HttpResponse {
    private_page(&request, "clearing", "Clearing", |nav| ClearingPage { nav }).await
}

#[derive(Debug, Deserialize)]
pub struct QrQuery {
    text: String,
}

/// Longest text a QR code is drawn for (a payment link is far shorter).
const MAX_QR_TEXT_CHARS: usize = 1_024;

/// QR codes rendered at once at most; more are refused (503) rather than queued.
const MAX_QR_RENDERS: usize = 4;

/// `GET /qr.svg?text=...`: the text as a QR code, for payment request links shown at the till.
/// Rendered on the blocking pool (never on the async threads every request shares), a few at
/// a time, and cached by the browser for a day.
#[get("/qr.svg")]
pub async fn qr_code(query: web::Query<QrQuery>) -> Result<HttpResponse, ApiError> {
    static RENDERS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let text = query.into_inner().text;
    if text.is_empty() || text.chars().count() > MAX_QR_TEXT_CHARS {
        return Err(ApiError::unprocessable(
            "bad_text",
            "text must be 1 to 1024 characters",
        ));
    }
    let renders = RENDERS.get_or_init(|| tokio::sync::Semaphore::new(MAX_QR_RENDERS));
    let Ok(_permit) = renders.try_acquire() else {
        return Err(ApiError::Overloaded {
            detail: "too many QR codes are being drawn; try again in a moment".into(),
            retry_after_s: 1,
        });
    };
    let svg = blocking(move || {
        let code = qrcode::QrCode::new(text.as_bytes()).map_err(|_| {
            ApiError::unprocessable("bad_text", "that text is too long for a QR code")
        })?;
        Ok(code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(svg))
}

#[derive(Template)]
#[template(path = "marketplace.html")]
struct MarketplacePage {
    nav: Nav,
}

/// The marketplace: search, post an offer or a want, and (signed in) one's deals.
#[get("/marketplace")]
pub async fn marketplace(request: HttpRequest) -> HttpResponse {
    public_page(&request, "marketplace", "Marketplace", |nav| {
        MarketplacePage { nav }
    })
    .await
}

#[derive(Template)]
#[template(path = "listing.html")]
struct ListingPage {
    nav: Nav,
    id: String,
}

/// One listing, with its deal form.
#[get("/marketplace/{id}")]
pub async fn listing(request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let id = id.into_inner();
    // Listing ids are numbers; anything else (a crafted link) is no listing.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return not_found(request).await;
    }
    public_page(&request, "marketplace", "Listing", |nav| ListingPage {
        nav,
        id,
    })
    .await
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    nav: Nav,
    handle: String,
}

/// A person's or business's public profile: reputation and listings.
#[get("/people/{handle}")]
pub async fn person(request: HttpRequest, handle: web::Path<String>) -> HttpResponse {
    let handle = handle.into_inner();
    let title = handle.clone();
    public_page(&request, "marketplace", title, |nav| ProfilePage {
        nav,
        handle,
    })
    .await
}
