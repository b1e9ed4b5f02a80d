//! The issuer service: businesses, their members, and the currencies they issue with their
//! policies (credit limit, maximum balance, kind, fees, demurrage, admission, seals) and
//! members. Money never moves here: issuing is a transfer out
//! of the issuer's account, done through the wallet.

mod admission;
mod currency_members;
mod dto;
mod freeze;
mod governance;
mod handlers;
mod holders;
mod liabilities;
mod members;
mod policies;
mod policy;
mod reserve;

pub use dto::{BusinessView, CurrencyView};
pub use governance::executors;
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
        .service(members::patch_member)
        .service(members::remove)
        .service(members::list_members)
        .service(handlers::create_currency)
        .service(handlers::list_currencies)
        .service(holders::list_holders)
        .service(currency_members::put_member)
        .service(currency_members::list_members)
        .service(currency_members::join)
        .service(currency_members::leave)
        .service(liabilities::get_liabilities)
        .service(liabilities::list_roots)
        .service(liabilities::get_health)
        .service(handlers::get_currency)
        .service(handlers::patch_currency)
        .service(admission::apply)
        .service(admission::list_applications)
        .service(admission::admit_application)
        .service(admission::decline_application)
        .service(admission::get_directory)
        .service(admission::get_proof)
        .service(freeze::freeze)
        .service(freeze::unfreeze)
        .service(reserve::get_reserve)
        .service(reserve::deposit)
        .service(reserve::release)
        .service(governance::put_approvals)
        .service(governance::get_approvals)
        .service(governance::list_proposals)
        .service(governance::get_proposal)
        .service(governance::approve_proposal)
        .service(governance::reject_proposal)
        .service(governance::get_log);
}

#[derive(OpenApi, Debug)]
#[openapi(
    paths(
        handlers::create_business,
        handlers::get_business,
        members::add_member,
        members::accept_invitation,
        members::withdraw_invitation,
        members::patch_member,
        members::remove,
        members::list_members,
        handlers::create_currency,
        handlers::list_currencies,
        handlers::get_currency,
        handlers::patch_currency,
        holders::list_holders,
        currency_members::put_member,
        currency_members::list_members,
        currency_members::join,
        currency_members::leave,
        freeze::freeze,
        freeze::unfreeze,
        reserve::get_reserve,
        reserve::deposit,
        reserve::release,
        admission::apply,
        admission::list_applications,
        admission::admit_application,
        admission::decline_application,
        admission::get_directory,
        admission::get_proof,
        governance::put_approvals,
        governance::get_approvals,
        governance::list_proposals,
        governance::get_proposal,
        governance::approve_proposal,
        governance::reject_proposal,
        governance::get_log,
        liabilities::get_liabilities,
        liabilities::list_roots,
        liabilities::get_health,
    ),
    components(schemas(
        liabilities::LiabilitiesView,
        liabilities::RootView,
        liabilities::RootPage,
        liabilities::HealthView,
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
        dto::BackingBody,
        dto::BackingView,
        dto::JoiningFeeBody,
        reserve::ReserveBody,
        reserve::ReserveView,
        reserve::DepositView,
        dto::MemberBody,
        dto::CurrencyMemberView,
        dto::CurrencyMemberPage,
        dto::FeePaidView,
        dto::JoinBody,
        dto::LeftView,
        dto::RoleBody,
        freeze::FreezeBody,
        admission::NewApplication,
        admission::ApplicationView,
        admission::ApplicationPage,
        admission::DirectoryView,
        admission::ProofView,
        admission::ProofStep,
        freeze::FreezeView,
        governance::RuleBody,
        scrip_governance::ProposalView,
        scrip_governance::Proposed,
        scrip_governance::ProposalPage,
        scrip_governance::RuleView,
        scrip_governance::LogEntryView,
        scrip_governance::LogPage,
    )),
    tags(
        (name = "issuer", description = "Businesses, members, currencies and their policies"),
        (name = "governance", description = "Approvals by k of n owners, proposals, and each business's log"),
    )
)]
pub struct IssuerApi;
