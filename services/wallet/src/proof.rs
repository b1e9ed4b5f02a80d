//! `GET /accounts/proof`: a holder's inclusion proof in its currency's liabilities tree, so it
//! can check that the balance it sees is counted in the total the registry publishes.

use actix_web::{HttpResponse, get, web};
use scrip_auth::Caller;
use scrip_auth::guard::view_as;
use scrip_domain::{Amount, RegistryId};
use scrip_http::{ApiError, Problem, blocking, rfc3339_from_us};
use scrip_ledger::Ledger;
use scrip_proofs::Liabilities;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    pub currency: String,
    /// A business the caller owns or works for; default the caller.
    pub holder: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProofStep {
    /// `left` or `right`: where the sibling stands.
    pub side: String,
    pub hash: String,
    /// The balances under the sibling, as a decimal amount of the currency.
    pub sum: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiabilityProofView {
    pub currency: String,
    /// Decimals of the currency: sums are hashed as atoms (the amount times 10^scale).
    pub scale: u8,
    /// The holder's address, as hashed into its leaf.
    pub address: String,
    /// The holder's secret salt (hex): only it can find its leaf among the others.
    pub salt: String,
    pub balance: String,
    pub leaf: String,
    /// From the leaf up.
    pub path: Vec<ProofStep>,
    /// The root and total this proof leads to; compare with `GET /currencies/{code}/liabilities`
    /// (or its list of roots for an earlier day).
    pub root: String,
    pub total: String,
    pub as_of: String,
}

#[utoipa::path(
    get, path = "/api/v1/accounts/proof", tag = "wallet", params(ProofQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = LiabilityProofView),
        (status = 403, body = Problem, description = "not_owner: the holder is a business the caller does not belong to"),
        (status = 404, body = Problem, description = "unknown_account: the holder has no positive balance of the currency, so it is owed nothing to prove"),
    )
)]
#[get("/api/v1/accounts/proof")]
pub async fn get_proof(
    caller: Caller,
    query: web::Query<ProofQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    liabilities: web::Data<Liabilities>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let holder = view_as(&mut conn, &caller, query.holder.as_deref(), &registry)?;
        let currency = scrip_auth::guard::currency(&mut conn, &query.currency, "unknown_account")?;
        drop(conn);
        let snapshot = liabilities.current(&currency)?;
        let proof = snapshot.proof(holder.id).ok_or_else(|| {
            ApiError::not_found(
                "unknown_account",
                format!(
                    "{} holds no {} now, so there is no balance to prove",
                    holder.handle, currency.code
                ),
            )
        })?;
        let money = |atoms: u128| {
            let atoms = i64::try_from(atoms).unwrap_or(i64::MAX);
            Amount::from_atoms(atoms, currency.scale).to_string()
        };
        Ok(LiabilityProofView {
            currency: currency.code.to_string(),
            scale: currency.scale.decimals(),
            address: proof.address,
            salt: hex::encode(proof.salt),
            balance: Amount::from_atoms(proof.balance_atoms, currency.scale).to_string(),
            leaf: hex::encode(proof.leaf.hash),
            path: proof
                .path
                .iter()
                .map(|(side, node)| ProofStep {
                    side: side.as_str().into(),
                    hash: hex::encode(node.hash),
                    sum: money(node.sum),
                })
                .collect(),
            root: hex::encode(proof.root.hash),
            total: money(proof.root.sum),
            as_of: rfc3339_from_us(proof.as_of_us),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
