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
    /// `issuer_credit` (default), `mutual_credit` or `backed`; fixed once created.
    pub kind: Option<String>,
    /// `backed` only, and required for it: the reserve; fixed once created.
    pub backing: Option<BackingBody>,
    /// Paid once by each new member, to the issuer, in another currency.
    pub joining_fee: Option<JoiningFeeBody>,
    /// `mutual_credit` only: the credit limit a new member gets, default `"0"`.
    pub member_credit_limit: Option<String>,
    /// Decimal string: the largest single payment or order quantity.
    pub max_payment: Option<String>,
    pub transfer_fee: Option<TransferFeeBody>,
    pub demurrage: Option<DemurrageBody>,
    /// Only admitted members may hold it.
    #[serde(default)]
    pub requires_admission: bool,
    /// The stewards may freeze a holder's account in it; declared now and shown to holders.
    #[serde(default)]
    pub freezable: bool,
    /// Policy fields that can never change again.
    #[serde(default)]
    pub sealed: Vec<String>,
}

/// `transfer_fee`: each payment pays `bps` of its amount (at least `min`) on top, to the
/// issuer or to `to`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferFeeBody {
    /// 1 to 10000.
    pub bps: i64,
    /// Decimal string, default `"0"`.
    pub min: Option<String>,
    /// Handle of who collects it, default the issuer.
    pub to: Option<String>,
}

/// `backing`: the issuer's negative balance (what is outstanding) stays covered by a reserve
/// it holds in `currency`, valued at par: reserve x 10000 >= outstanding x `ratio_bps`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackingBody {
    /// Code of the reserve currency: another business's, valued in the same unit.
    pub currency: String,
    /// Reserve per outstanding value, in basis points: 10000 = fully backed, 1 to 100000.
    pub ratio_bps: i64,
    /// Days each deposit into the reserve stays locked, 0 (default) to 3650.
    #[serde(default)]
    pub lock_days: i64,
}

/// The backing of a currency with its reserve as it stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackingView {
    pub currency: String,
    pub ratio_bps: i64,
    pub lock_days: i64,
    /// The reserve held now, in `currency`.
    pub reserve: String,
    /// What the reserve backs, in this currency: the most that may be outstanding.
    pub backs: String,
}

/// `joining_fee`: paid once by a new member (on joining, or when admitted), to the issuer;
/// refunded on leaving after `refundable_after_days`, never without it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoiningFeeBody {
    /// Decimal string, in `currency`.
    pub amount: String,
    /// Code of the currency the fee is paid in (not the one joined).
    pub currency: String,
    /// Days of membership after which leaving refunds the fee; omit: never refunded.
    pub refundable_after_days: Option<i64>,
}

/// `demurrage`: every positive balance pays `rate_bps` of itself each period to the issuer
/// (or `to`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemurrageBody {
    /// 1 to 10000.
    pub rate_bps: i64,
    /// `day`, `week` or `month`.
    pub period: String,
    pub to: Option<String>,
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
    /// `issuer_credit`, `mutual_credit` or `backed`.
    pub kind: String,
    /// `backed` only: the reserve and what it backs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing: Option<BackingView>,
    pub joining_fee: Option<JoiningFeeBody>,
    /// `mutual_credit` only: the credit limit a new member gets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_credit_limit: Option<String>,
    pub max_payment: Option<String>,
    pub transfer_fee: Option<TransferFeeBody>,
    pub demurrage: Option<DemurrageView>,
    pub requires_admission: bool,
    pub freezable: bool,
    pub sealed: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DemurrageView {
    pub rate_bps: i64,
    pub period: String,
    pub to: Option<String>,
    /// When the next charge is taken (the end of the current period).
    pub next_charge_at: String,
    /// Everything collected so far.
    pub collected: String,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_limit: Option<String>,
    /// Decimal string, or `null` to remove the maximum; omit to keep.
    #[serde(default, deserialize_with = "scrip_http::double_option")]
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_balance: Option<Option<String>>,
    /// `mutual_credit` only: the limit new members get from now on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_credit_limit: Option<String>,
    /// Decimal string, or `null` to remove; omit to keep.
    #[serde(default, deserialize_with = "scrip_http::double_option")]
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_payment: Option<Option<String>>,
    /// The fee, or `null` to remove it; omit to keep.
    #[serde(default, deserialize_with = "scrip_http::double_option")]
    #[schema(value_type = Option<TransferFeeBody>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_fee: Option<Option<TransferFeeBody>>,
    /// Demurrage, or `null` to end it; omit to keep.
    #[serde(default, deserialize_with = "scrip_http::double_option")]
    #[schema(value_type = Option<DemurrageBody>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demurrage: Option<Option<DemurrageBody>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_admission: Option<bool>,
    /// The joining fee, or `null` to remove it; omit to keep. Members who joined keep the
    /// terms they joined on.
    #[serde(default, deserialize_with = "scrip_http::double_option")]
    #[schema(value_type = Option<JoiningFeeBody>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joining_fee: Option<Option<JoiningFeeBody>>,
    /// `kind`, `backing` and `freezable` are chosen at creation; sending them is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freezable: Option<bool>,
    /// Fields to seal from now on (a seal is never lifted).
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<String>,
}

/// `PATCH /businesses/{handle}/members/{member}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `owner` or `worker`.
    pub role: String,
}

/// `PUT /currencies/{code}/members/{handle}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    /// `mutual_credit` only: how far below zero this member may go; omit to keep (or to get
    /// the currency's default when admitting).
    pub credit_limit: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrencyMemberView {
    pub currency: String,
    pub member: String,
    pub credit_limit: String,
    pub balance: String,
    pub admitted_at: String,
    /// The joining fee it paid, in the currency it was paid in.
    pub joining_fee_paid: Option<FeePaidView>,
    /// From when leaving refunds that fee; never when absent.
    pub refundable_from: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeePaidView {
    pub amount: String,
    pub currency: String,
}

/// `POST /currencies/{code}/join`: who joins (default the caller; or a business it owns).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    pub holder: Option<String>,
}

/// What leaving gave back.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeftView {
    pub currency: String,
    pub member: String,
    /// The joining fee refunded, when its refundable time had passed.
    pub refunded: Option<FeePaidView>,
}

/// One holder of a currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HolderView {
    pub holder: String,
    pub balance: String,
    /// What open orders reserve of it.
    pub held: String,
    /// Frozen by the stewards: it can neither pay nor trade.
    pub frozen: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HolderPage {
    pub items: Vec<HolderView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrencyMemberPage {
    pub items: Vec<CurrencyMemberView>,
    pub next_cursor: Option<String>,
}
