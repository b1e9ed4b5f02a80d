//! The web pages: sign-up and login, the wallet, the exchange, the shop console and the
//! clearing dashboard.
//!
//! Pages are rendered on the server (askama) with who is signed in, their businesses and roles
//! already in place; small hand-written scripts then read and change data through the public
//! API, the same one outside clients use, so a page can never do what the API would refuse and
//! every refusal is the API's own message. The session token lives in an HttpOnly, SameSite=Strict
//! cookie that scripts cannot read; state-changing API calls made with it must also carry
//! [`scrip_auth::CSRF_HEADER`]. Scripts and styles are embedded in the binary.

mod assets;
mod handlers;
mod session;

pub use handlers::not_found;
pub(crate) use session::session_cookies;

use actix_web::web;

/// Mounts the pages, their form handlers and their assets.
pub fn configure_web(cfg: &mut web::ServiceConfig) {
    cfg.service(assets::asset)
        .service(handlers::qr_code)
        .service(handlers::home)
        .service(handlers::login_page)
        .service(handlers::login_form)
        .service(handlers::signup_page)
        .service(handlers::signup_form)
        .service(handlers::logout)
        .service(handlers::logout_cookies_only)
        .service(handlers::wallet)
        .service(handlers::pay_request_page)
        .service(handlers::exchange)
        .service(handlers::market)
        .service(handlers::currency)
        .service(handlers::shop)
        .service(handlers::clearing)
        .service(handlers::status_page)
        .service(handlers::marketplace)
        .service(handlers::listing)
        .service(handlers::person);
}
