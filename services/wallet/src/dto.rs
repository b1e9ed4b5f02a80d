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
    /// Frozen by the currency's stewards: it can neither pay nor trade in it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub frozen: bool,
    /// The currency's demurrage: what the next charge would take on this balance, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_demurrage: Option<NextDemurrage>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NextDemurrage {
    /// On the balance as it is now, with what earlier periods could not take (held funds).
    pub amount: String,
    pub at: String,
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
    /// `payment`, `trade`, `fee`, `clearing`, `transfer_fee`, `demurrage` or `onboarding`.
    pub kind: String,
    pub created_at: String,
    /// The currency's transfer fee this payment paid on top (its own line in the history,
    /// kind `transfer_fee`); only on the answer to the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPaymentRequest {
    /// Who is to be paid: the caller, or a business it owns or works for.
    pub to: String,
    pub currency: String,
    /// Decimal string with at most the currency's scale of decimals.
    pub amount: String,
    pub memo: Option<String>,
    /// Seconds until the request can no longer be paid: 30 to 2,592,000 (30 days); default
    /// 900 (a till's sale).
    pub expires_in_s: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentRequestView {
    pub id: String,
    pub to: String,
    pub currency: String,
    pub amount: String,
    pub memo: Option<String>,
    /// `open`, `paid` or `expired`.
    pub status: String,
    /// The page that pays this request (what its QR code holds).
    pub url: String,
    pub created_at: String,
    pub expires_at: String,
    /// When it was paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    /// The transfer that paid it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Who paid it: shown to the requester (the recipient and its members) only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_by: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    /// Who pays: the caller (default) or a business it owns.
    pub from: Option<String>,
    /// Currencies the payer is willing to pay with, in order of preference. Until paying with
    /// conversion lands, only the request's own currency can pay it.
    pub pay_with: Option<Vec<String>>,
    /// The most the payer will spend of each currency.
    pub max_spend: Option<std::collections::BTreeMap<String, String>>,
}

/// A payment: what the recipient received and what it cost the payer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    /// The transfer that carried it.
    pub id: String,
    pub request_id: Option<String>,
    pub from: String,
    pub to: String,
    pub currency: String,
    pub amount: String,
    /// What the payer spent, per currency.
    pub spent: std::collections::BTreeMap<String, String>,
    /// Trades made to convert (none for a payment in the recipient's own currency).
    pub trades: Vec<PaymentTrade>,
    pub memo: Option<String>,
    pub created_at: String,
}

/// One trade a payment made to convert.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentTrade {
    pub market: String,
    pub price: String,
    pub quantity: String,
}
