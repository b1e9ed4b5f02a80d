//! Request and response bodies, exactly as API.md names them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBusiness {
    /// `[a-z0-9][a-z0-9_.-]{2,31}`, shared namespace with users.
    pub handle: String,
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BusinessView {
    pub id: String,
    pub handle: String,
    pub address: String,
    pub name: String,
    pub owners: Vec<String>,
    /// The currencies the business issues.
    pub currencies: Vec<CurrencyView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub handle: String,
    /// `owner` or `worker`.
    pub role: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub business: String,
    pub handle: String,
    pub role: String,
    /// `active` (a member), `invited` (waiting for the person to accept), or after a
    /// `DELETE`: `removed` (a membership ended) or `withdrawn` (an invitation taken back or
    /// declined).
    pub status: String,
    /// Who invited them (invitations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<String>,
}

/// `GET /businesses/{handle}/members`: owners first, then workers, each by handle, then the
/// invitations waiting, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<MemberView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCurrencyBody {
    /// Handle of the issuing business; the caller must be one of its owners.
    pub issuer: String,
    /// `[A-Z][A-Z0-9]{1,11}`
    pub code: String,
    pub name: String,
    /// Decimals, 0 to 8.
    pub scale: i64,
    /// Decimal string: how far below zero the issuer's account may go.
    pub credit_limit: String,
    /// Decimal string: the most any holder may hold.
    pub max_balance: Option<String>,
    /// Unit of account, default `EUR`.
    pub unit: Option<String>,
    /// Units of account one token is worth, default `"1"`.
    pub par: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrencyView {
    pub code: String,
    pub name: String,
    pub issuer: String,
    pub scale: u8,
    pub credit_limit: String,
    pub max_balance: Option<String>,
    pub unit: String,
    pub par: String,
    /// Sum of all positive balances: what the issuer owes its holders.
    pub outstanding: String,
    /// Number of accounts other than the issuer's holding a positive balance.
    pub holders: i64,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrencyPage {
    pub items: Vec<CurrencyView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    /// Decimal string; omit to keep.
    pub credit_limit: Option<String>,
    /// Decimal string, or `null` to remove the maximum; omit to keep.
    #[serde(default, deserialize_with = "scrip_http::double_option")]
    #[schema(value_type = Option<String>)]
    pub max_balance: Option<Option<String>>,
}

/// One holder of a currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HolderView {
    pub holder: String,
    pub balance: String,
    /// What open orders reserve of it.
    pub held: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HolderPage {
    pub items: Vec<HolderView>,
    pub next_cursor: Option<String>,
}
