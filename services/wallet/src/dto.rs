use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct HolderQuery {
    /// A business the caller owns (or `registry` for operators); default the caller.
    pub holder: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub currency: String,
    pub balance: String,
    pub held: String,
    /// `balance - held - floor`: what a payment or order may spend.
    pub available: String,
    /// The lowest the balance may go: `-credit_limit` for the issuer, `0` for everyone else.
    pub floor: String,
    /// The currency's maximum balance for holders, if any.
    pub ceiling: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    /// Handle paying; default the caller. A business the caller owns pays out of (and issues
    /// from) the business's account.
    pub from: Option<String>,
    /// Handle or address receiving.
    pub to: String,
    /// Currency code.
    pub currency: String,
    /// Decimal string with at most the currency's scale of decimals.
    pub amount: String,
    pub memo: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferView {
    pub id: String,
    pub from: String,
    pub to: String,
    pub currency: String,
    pub amount: String,
    pub memo: Option<String>,
    /// `payment`, `trade`, `fee` or `clearing`.
    pub kind: String,
    pub created_at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TransfersQuery {
    pub holder: Option<String>,
    pub currency: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferPage {
    pub items: Vec<TransferView>,
    pub next_cursor: Option<String>,
}
