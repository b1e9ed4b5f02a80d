//! The issuer service: businesses, their members, and the currencies they issue with their
//! policies (credit limit, maximum balance, kind, fees, demurrage, admission, seals) and
//! members. Money never moves here: issuing is a transfer out
//! of the issuer's account, done through the wallet.

mod currency_members;
mod dto;
mod handlers;
mod holders;
mod members;
mod policies;
mod policy;

pub use dto::{BusinessView, CurrencyView};
pub use handlers::{currencies_of_business, currency_view};
pub use policy::IssuerPolicy;

use actix_web::web;
use utoipa::OpenApi;

/// Mounts the issuer's routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(handlers::create_business)
        .service(handlers::get_business)
        .service(members::add_member)
        .service(members::accept_invitation)
        .service(members::withdraw_invitation)
        .service(members::remove)
        .service(members::list_members)
        .service(handlers::create_currency)
        .service(handlers::list_currencies)
        .service(holders::list_holders)
        .service(currency_members::put_member)
        .service(currency_members::list_members)
        .service(handlers::get_currency)
        .service(handlers::patch_currency);
}

#[derive(OpenApi, Debug)]
#[openapi(
    paths(
        handlers::create_business,
        handlers::get_business,
        members::add_member,
        members::accept_invitation,
        members::withdraw_invitation,
        members::remove,
        members::list_members,
        handlers::create_currency,
        handlers::list_currencies,
        handlers::get_currency,
        handlers::patch_currency,
        holders::list_holders,
        currency_members::put_member,
        currency_members::list_members,
    ),
    components(schemas(
        dto::NewBusiness,
        dto::BusinessView,
        dto::HolderView,
        dto::HolderPage,
        dto::NewMember,
        dto::MemberView,
        dto::MemberList,
        dto::NewCurrencyBody,
        dto::CurrencyView,
        dto::CurrencyPage,
        dto::LimitsPatch,
        dto::TransferFeeBody,
        dto::DemurrageBody,
        dto::DemurrageView,
        dto::MemberBody,
        dto::CurrencyMemberView,
        dto::CurrencyMemberPage,
    )),
    tags((name = "issuer", description = "Businesses, members, currencies and their policies"))
)]
pub struct IssuerApi;
