//! The wallet service: accounts, transfers and statements, the HTTP face of the ledger.
//! Payments go through the ledger's group-commit writer ([`scrip_ledger::Committer`]); a payment
//! with an `Idempotency-Key` runs in its own transaction with the key stored beside the effect.

mod dto;
mod handlers;

pub use dto::{AccountView, NewTransfer, TransferView};
pub use handlers::WalletContext;

use actix_web::web;
use utoipa::OpenApi;

/// Mounts the wallet's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(handlers::list_accounts)
        .service(handlers::create_transfer)
        .service(handlers::list_transfers)
        .service(handlers::get_transfer);
}

#[derive(OpenApi, Debug)]
#[openapi(
    paths(handlers::list_accounts, handlers::create_transfer, handlers::list_transfers, handlers::get_transfer),
    components(schemas(dto::AccountView, dto::AccountList, dto::NewTransfer, dto::TransferView, dto::TransferPage)),
    tags((name = "wallet", description = "Accounts, payments and statements"))
)]
pub struct WalletApi;
