//! The clearing house's request and response bodies (API.md, Clearing).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct UnitQuery {
    /// Unit of account, default `EUR`.
    pub unit: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    pub handle: String,
    /// What the business is owed minus what it owes, in the unit.
    pub net: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EdgeView {
    pub debtor: String,
    pub creditor: String,
    pub amount: String,
    /// `holding` (the creditor holds the debtor's currency) or `obligation`.
    pub source: String,
    /// An obligation between businesses that shared an owner when it was proposed: one
    /// person's say-so, shown apart from debts between independent businesses.
    pub related: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GraphView {
    pub unit: String,
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    pub unit: Option<String>,
    /// Compute and record without applying: a preview, whose `preview_id` can be applied.
    #[serde(default)]
    pub dry_run: bool,
    /// A dry run's `preview_id`: apply exactly that plan, or 409 `graph_changed` when the
    /// debts moved since. Its unit is the preview's.
    pub apply: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettlementView {
    pub debtor: String,
    pub creditor: String,
    pub amount: String,
    pub source: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    pub id: String,
    pub unit: String,
    pub dry_run: bool,
    /// The operator's handle, or `schedule`.
    pub started_by: String,
    pub started_at: String,
    pub finished_at: String,
    pub participants: i64,
    pub edges: i64,
    pub gross_before: String,
    pub cleared: String,
    pub gross_after: String,
    pub cycles: i64,
    pub settlements: Vec<SettlementView>,
    /// Every business whose debts the run set off: owed and owing before and after, in the
    /// unit; its net position is the same before and after.
    pub positions: Vec<PositionView>,
    /// Holders' swap intents the run settled at par (ring trades).
    pub ring_trades: Vec<crate::intents::RingTradeView>,
    /// A dry run's: what to send as `apply` to carry out exactly this plan.
    pub preview_id: Option<String>,
    /// The preview this run applied.
    pub preview_of: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PositionView {
    pub business: String,
    pub owes_before: String,
    pub owed_before: String,
    pub owes_after: String,
    pub owed_after: String,
    /// Owed minus owes, before and after alike.
    pub net: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<RunView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Participation {
    pub enabled: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewObligation {
    /// The business that owes.
    pub debtor: String,
    /// The business that is owed; the caller must be one of its owners.
    pub creditor: String,
    /// Decimal string in the unit of account (at most 8 decimals).
    pub amount: String,
    /// Unit of account, default `EUR`.
    pub unit: Option<String>,
    pub memo: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ObligationView {
    pub id: String,
    pub debtor: String,
    pub creditor: String,
    pub unit: String,
    pub amount: String,
    /// What is left after clearing runs.
    pub remaining: String,
    pub memo: Option<String>,
    /// `proposed`, `accepted`, `rejected` (by the debtor) or `withdrawn` (by the creditor).
    pub status: String,
    pub created_at: String,
    /// Debtor and creditor shared an owner when it was proposed (shown apart: one person's
    /// say-so).
    pub related: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ObligationList {
    pub items: Vec<ObligationView>,
    pub next_cursor: Option<String>,
}

/// `?status=&limit=&cursor=` (the paging fields spelled out: a flattened [`PageQuery`] would
/// read `limit` as text from a query string).
#[derive(Debug, Deserialize, IntoParams)]
pub struct StatusQuery {
    /// `proposed`, `accepted`, `rejected` or `withdrawn`; default all.
    pub status: Option<String>,
    /// Items per page: 1 to 500, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
