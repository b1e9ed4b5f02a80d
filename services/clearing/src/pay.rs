//! `POST /obligations/{id}/pay`: the debtor pays an accepted obligation through the ledger, in
//! a currency the creditor accepts, and the obligation's remaining amount falls by the value
//! paid, in one transaction (with the `Idempotency-Key`, if any).
//!
//! The creditor accepts its own currencies (being paid in them redeems what it issued) and
//! those it already holds an account in; each valued in the obligation's unit, converted at
//! its par, to the exact atom.

use actix_web::{HttpRequest, HttpResponse, post, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_auth::access::is_owner;
use scrip_domain::{Amount, PrincipalId, Scale};
use scrip_http::{ApiError, Problem, blocking, idempotency_key, idempotent_response, request_hash};
use scrip_ledger::{Currency, Idempotent, Ledger, LedgerError, StoredResponse, TransferKind};
use scrip_store::DbConn;
use scrip_store::schema::accounts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::ObligationView;
use crate::store::{self, ObligationStatus};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayObligation {
    /// Value paid, in the obligation's unit (at most what is left).
    pub amount: String,
    /// The currency paid in: the creditor's own, or one it already holds.
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ObligationPaid {
    pub obligation: ObligationView,
    /// The ledger transfer that paid it.
    pub transfer_id: String,
    pub currency: String,
    /// How much of the currency was paid for `amount`.
    pub currency_amount: String,
}

/// Atoms of a currency at `par` (`par_e8`: par times 10^8) worth `value_e8` (10^-8 of the
/// unit); `None` unless a whole number of atoms.
fn atoms_worth(value_e8: i64, par_e8: i64, scale: Scale) -> Option<i64> {
    let numerator = i128::from(value_e8) * i128::from(scale.atoms_per_unit());
    let par = i128::from(par_e8);
    (par > 0 && numerator % par == 0)
        .then(|| i64::try_from(numerator / par).ok())
        .flatten()
}

/// Whether the creditor accepts `currency`: it issued it, or it holds an account in it.
fn accepts(
    conn: &mut DbConn,
    creditor: PrincipalId,
    currency: &Currency,
) -> Result<bool, LedgerError> {
    if currency.issuer_id == creditor {
        return Ok(true);
    }
    let held: i64 = accounts::table
        .filter(accounts::principal_id.eq(creditor.get()))
        .filter(accounts::currency_id.eq(currency.id.get()))
        .count()
        .get_result(conn)?;
    Ok(held > 0)
}

/// Every check before the first write; `Ok(Err(..))` is a refusal that changes nothing.
fn pay_in(
    conn: &mut DbConn,
    caller: &Caller,
    id: i64,
    body: &PayObligation,
) -> Result<Result<ObligationPaid, ApiError>, LedgerError> {
    let not_found = || ApiError::not_found("not_found", "no such obligation");
    let Some(obligation) = store::load(conn, id)? else {
        return Ok(Err(not_found()));
    };
    if !is_owner(conn, obligation.debtor, caller.id)? {
        return Ok(Err(if is_owner(conn, obligation.creditor, caller.id)? {
            ApiError::forbidden(
                "not_owner",
                "only an owner of the debtor pays an obligation",
            )
        } else {
            not_found()
        }));
    }
    if obligation.status != ObligationStatus::Accepted {
        return Ok(Err(ApiError::conflict(
            "not_accepted",
            format!(
                "the obligation is {}: only an accepted one is paid",
                obligation.status.as_str()
            ),
        )));
    }
    let unit_scale = Scale::new(8).map_err(LedgerError::from)?;
    let value = match Amount::parse_positive(&body.amount, unit_scale) {
        Ok(value) => value,
        Err(e) => return Ok(Err(ApiError::invalid_field("amount", e.to_string()))),
    };
    if value.atoms() > obligation.remaining_atoms {
        let left = Amount::from_atoms(obligation.remaining_atoms, unit_scale);
        return Ok(Err(ApiError::invalid_field(
            "amount",
            format!("only {left} {} is left to pay", obligation.unit),
        )));
    }
    let currency = match store::currency_named(conn, &body.currency, "currency")? {
        Ok(currency) => currency,
        Err(refused) => return Ok(Err(refused)),
    };
    if currency.unit.as_str() != obligation.unit {
        return Ok(Err(ApiError::invalid_field(
            "currency",
            format!(
                "{} is valued in {}, the obligation in {}",
                currency.code, currency.unit, obligation.unit
            ),
        )));
    }
    if !accepts(conn, obligation.creditor, &currency)? {
        return Ok(Err(ApiError::invalid_field(
            "currency",
            format!(
                "the creditor takes its own currencies and those it already holds, not {}",
                currency.code
            ),
        )));
    }
    let Some(atoms) = atoms_worth(value.atoms(), currency.par.numerator_e8(), currency.scale)
    else {
        return Ok(Err(ApiError::invalid_field(
            "amount",
            format!(
                "{value} {} is not a whole number of {} at par {}",
                obligation.unit, currency.code, currency.par
            ),
        )));
    };
    // Paying in its own currency is issuing it: under an approval rule that guards issuing,
    // that takes the owners' approval, as every other way of issuing does.
    let debtor = scrip_ledger::principal_by_id(conn, obligation.debtor)?;
    if scrip_governance::issuing_needs_approval(conn, &debtor, &currency)? {
        return Ok(Err(scrip_governance::needs_approval(
            &debtor,
            currency.code.as_str(),
        )));
    }
    // The obligation first, conditionally: of two concurrent payments of what is left, one
    // finds too little and rolls back with nothing paid.
    if !store::reduce(conn, id, value.atoms())? {
        return Ok(Err(ApiError::conflict(
            "obligation_changed",
            "the obligation was paid or cleared meanwhile: look again",
        )));
    }
    let transfer = scrip_ledger::transfer(
        conn,
        &scrip_ledger::TransferRequest {
            currency: currency.id,
            from: obligation.debtor,
            to: obligation.creditor,
            amount: Amount::from_atoms(atoms, currency.scale),
            kind: TransferKind::Payment,
            memo: Some(format!("obligation {id}")),
        },
    )?;
    let obligation = store::load(conn, id)?
        .ok_or_else(|| LedgerError::Invariant(format!("obligation {id} vanished")))?;
    Ok(Ok(ObligationPaid {
        obligation: crate::obligations::view(conn, obligation)
            .map_err(|e| LedgerError::Invariant(e.to_string()))?,
        transfer_id: transfer.id.to_string(),
        currency: currency.code.to_string(),
        currency_amount: Amount::from_atoms(atoms, currency.scale).to_string(),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/obligations/{id}/pay", tag = "clearing", request_body = PayObligation,
    security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = ObligationPaid),
        (status = 403, body = Problem, description = "not_owner (the creditor's owner does not pay); needs_approval (paying in the debtor's own currency while its approval rule guards issuing)"),
        (status = 404, body = Problem, description = "no such obligation among the caller's businesses'"),
        (status = 409, body = Problem, description = "not_accepted, obligation_changed"),
        (status = 422, body = Problem, description = "invalid_request under `amount` (more than is left, not whole atoms) or `currency` (unknown, another unit, not one the creditor takes); insufficient_funds and the ledger's other refusals"),
    )
)]
#[post("/api/v1/obligations/{id}/pay")]
pub async fn pay(
    http: HttpRequest,
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<PayObligation>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&http)?;
    let raw_id = path.into_inner();
    let id = raw_id
        .parse::<i64>()
        .map_err(|_| ApiError::not_found("not_found", "no such obligation"))?;
    let body = body.into_inner();
    let hash = request_hash(&format!("POST /api/v1/obligations/{id}/pay"), &body);
    let stored = blocking(move || {
        let mut work = |conn: &mut DbConn| {
            Ok(match pay_in(conn, &caller, id, &body)? {
                Ok(paid) => Ok(StoredResponse {
                    status: 200,
                    body: serde_json::to_string(&paid).map_err(|e| {
                        LedgerError::Invariant(format!("cannot store a payment's answer: {e}"))
                    })?,
                }),
                Err(refused) => Err(refused),
            })
        };
        let outcome = match &key {
            None => ledger.write(&mut work)?.map(Idempotent::Fresh),
            Some(key) => ledger.idempotent_or_refused(caller.id, key, &hash, &mut work)?,
        }?;
        Ok::<_, ApiError>(outcome)
    })
    .await?;
    let replayed = matches!(stored, Idempotent::Replayed(_));
    Ok(idempotent_response(stored.response(), replayed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_atoms_at_par_only() {
        let cents = Scale::new(2).expect("scale");
        // 12.50 EUR at par 1 is 1,250 cents; at par 2.5 it is 5.00 = 500 cents.
        assert_eq!(atoms_worth(1_250_000_000, 100_000_000, cents), Some(1_250));
        assert_eq!(atoms_worth(1_250_000_000, 250_000_000, cents), Some(500));
        // 1 EUR at par 3 is 0.333... : refused rather than rounded.
        assert_eq!(atoms_worth(100_000_000, 300_000_000, cents), None);
    }
}
