//! The wallet service: accounts, transfers and statements, the HTTP face of the ledger.
//! Payments go through the ledger's group-commit writer ([`scrip_ledger::Committer`]); a payment
//! with an `Idempotency-Key` runs in its own transaction with the key stored beside the effect.
//! Payment requests ([`requests`]) are tracked: paid at most once, with a public status.

mod dto;
mod handlers;
mod proof;
mod requests;
mod statements;

pub use dto::{AccountView, NewTransfer, TransferView};
pub use handlers::WalletContext;

use actix_web::web;
use utoipa::OpenApi;

/// Mounts the wallet's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(handlers::list_accounts)
        .service(handlers::create_transfer)
        .service(handlers::list_transfers)
        .service(handlers::get_transfer)
        .service(requests::create_request)
        .service(requests::get_request)
        .service(requests::pay_request)
        .service(statements::statement)
        .service(proof::get_proof);
}

#[derive(OpenApi, Debug)]
#[openapi(
    paths(
        handlers::list_accounts, handlers::create_transfer, handlers::list_transfers, handlers::get_transfer,
        requests::create_request, requests::get_request, requests::pay_request,
        statements::statement, proof::get_proof,
    ),
    components(schemas(
        dto::AccountView, dto::AccountList, dto::NewTransfer, dto::TransferView, dto::TransferPage,
        dto::NewPaymentRequest, dto::PaymentRequestView, dto::PayRequest, dto::PaymentView, dto::PaymentTrade,
        proof::LiabilityProofView, proof::ProofStep,
    )),
    tags((name = "wallet", description = "Accounts, payments and statements"))
)]
pub struct WalletApi;
