//! What the API shows of rules, proposals and the log.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProposalView {
    pub id: String,
    pub business: String,
    /// `issue`, `limits`, `markets`, `members`, `policy` or `approvals`.
    pub action: String,
    /// In words: what runs when it is approved.
    pub summary: String,
    /// The request that runs when approved, as it was made (checked again then).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub proposed_by: String,
    /// Owners who approved (the proposer first).
    pub approvals: Vec<String>,
    pub rejections: Vec<String>,
    pub required: u32,
    /// `open`, `executed`, `rejected` or `expired` (never ran, never will).
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
    pub decided_at: Option<String>,
    /// What the action answered when it ran.
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<serde_json::Value>,
}

/// The answer to a guarded action that needs more owners: `202 {proposal}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Proposed {
    pub proposal: ProposalView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalPage {
    pub items: Vec<ProposalView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    pub business: String,
    pub required: u32,
    pub of: Vec<String>,
    pub issue_above: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntryView {
    pub id: String,
    /// Who made the change.
    pub actor: String,
    pub action: String,
    /// The change in words.
    pub detail: String,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    pub items: Vec<LogEntryView>,
    pub next_cursor: Option<String>,
}
