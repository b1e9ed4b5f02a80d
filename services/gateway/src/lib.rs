//! The gateway: sign-up, login, the caller's profile, and the system endpoints every process
//! serves (`/healthz`, `/readyz`, `/metrics`, the OpenAPI document and its reference page).

mod auth;
mod pages;
mod system;

pub use auth::{GatewayContext, LoginResponse, Me, NewUser, Registered};
pub use pages::{configure_web, not_found};
pub use system::{configure_metrics, configure_system};

use actix_web::web;
use utoipa::OpenApi;

/// Mounts sign-up, login and `/me`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(auth::register)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::change_password)
        .service(auth::me);
}

#[derive(OpenApi, Debug)]
#[openapi(
    paths(auth::register, auth::login, auth::refresh, auth::change_password, auth::me, system::healthz, system::readyz, system::metrics, system::system_health, system::status),
    components(schemas(auth::NewUser, auth::Registered, auth::Credentials, auth::LoginResponse, auth::RefreshBody, auth::Me, auth::Membership, auth::InvitationView, auth::PasswordChange, auth::PasswordChanged, scrip_http::Problem, system::StatusView, system::CheckView)),
    tags(
        (name = "identity", description = "Sign-up, login, who am I"),
        (name = "system", description = "Health and metrics"),
    )
)]
pub struct GatewayApi;
