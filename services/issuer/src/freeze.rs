//! Stewards freeze and unfreeze a holder's account in a currency declared `freezable` (its
//! holders were told so before they held it). A frozen account can neither pay nor trade in
//! the currency; its resting orders in it are cancelled (the order books hear of it on the
//! bus); it may still be paid. Every freeze and unfreeze is in the issuer's log.

use actix_web::{HttpResponse, post, web};
use scrip_auth::Caller;
use scrip_auth::guard::resolve;
use scrip_domain::RegistryId;
use scrip_http::{ApiError, Problem, blocking};
use scrip_ledger::Ledger;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::handlers::{find_currency, lock_business, require_owner};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeBody {
    /// The holder whose account is frozen or unfrozen (handle or address).
    pub holder: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreezeView {
    pub currency: String,
    pub holder: String,
    pub frozen: bool,
}

#[utoipa::path(
    post, path = "/api/v1/currencies/{code}/freeze", tag = "issuer", request_body = FreezeBody,
    security(("bearer" = [])), params(("code" = String, Path)),
    responses(
        (status = 200, body = FreezeView, description = "frozen: the account can neither pay nor trade in the currency; its resting orders in it are cancelled"),
        (status = 403, body = Problem, description = "not_owner: stewards (the issuer's owners) only"),
        (status = 404, body = Problem, description = "not_found (currency), unknown_account (the holder holds no account in it)"),
        (status = 422, body = Problem, description = "not_freezable: the currency was not declared freezable"),
    )
)]
#[post("/api/v1/currencies/{code}/freeze")]
pub async fn freeze(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<FreezeBody>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    bus: web::Data<dyn scrip_bus::Bus>,
) -> Result<HttpResponse, ApiError> {
    set(
        caller,
        (path.into_inner(), body.into_inner()),
        true,
        (ledger, registry, bus),
    )
    .await
}

#[utoipa::path(
    post, path = "/api/v1/currencies/{code}/unfreeze", tag = "issuer", request_body = FreezeBody,
    security(("bearer" = [])), params(("code" = String, Path)),
    responses(
        (status = 200, body = FreezeView, description = "unfrozen: the account pays and trades again"),
        (status = 403, body = Problem, description = "not_owner: stewards (the issuer's owners) only"),
        (status = 404, body = Problem, description = "not_found (currency), unknown_account"),
        (status = 422, body = Problem, description = "not_freezable"),
    )
)]
#[post("/api/v1/currencies/{code}/unfreeze")]
pub async fn unfreeze(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<FreezeBody>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    bus: web::Data<dyn scrip_bus::Bus>,
) -> Result<HttpResponse, ApiError> {
    set(
        caller,
        (path.into_inner(), body.into_inner()),
        false,
        (ledger, registry, bus),
    )
    .await
}

async fn set(
    caller: Caller,
    (code, body): (String, FreezeBody),
    frozen: bool,
    (ledger, registry, bus): (
        web::Data<Ledger>,
        web::Data<RegistryId>,
        web::Data<dyn scrip_bus::Bus>,
    ),
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &code)?;
        let issuer = scrip_ledger::principal_by_id(&mut conn, currency.issuer_id)?;
        require_owner(&mut conn, &issuer, &caller)?;
        if !currency.policies.freezable {
            return Err(ApiError::unprocessable(
                "not_freezable",
                format!(
                    "{} was not declared freezable when it was created: its holders' accounts cannot be frozen",
                    currency.code
                ),
            ));
        }
        let holder = resolve(&mut conn, &body.holder, &registry)?;
        let changed = scrip_store::write_transaction(&mut conn, |conn| {
            lock_business(conn, &issuer)?;
            if !scrip_ledger::freeze::set_frozen(conn, (holder.id, currency.id), frozen)? {
                return Err(ApiError::not_found(
                    "unknown_account",
                    format!("{} holds no {} account", holder.handle, currency.code),
                ));
            }
            let (word, action) = if frozen {
                ("froze", "account_frozen")
            } else {
                ("unfroze", "account_unfrozen")
            };
            let line = format!("{word} the {} account of {}", currency.code, holder.handle);
            scrip_governance::log(conn, issuer.id, caller.id, (action, &line))?;
            Ok(())
        });
        changed?;
        Ok((holder, currency))
    })
    .await?;
    let (holder, currency) = view;
    if frozen {
        let message = scrip_ledger::freeze::frozen_message(holder.id, currency.id);
        bus.publish(scrip_ledger::freeze::FROZEN_TOPIC, message.into());
    }
    Ok(HttpResponse::Ok().json(FreezeView {
        currency: currency.code.to_string(),
        holder: holder.handle.to_string(),
        frozen,
    }))
}
