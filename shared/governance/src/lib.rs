//! Who must agree before a business acts. A business's approval rule says which actions
//! (issuing above a threshold, limits, members, markets, policies) need how many distinct
//! owners. A guarded action asked for by one owner becomes a proposal; the action runs,
//! once and atomically, in the transaction of the approval that completes it. The rule
//! guards itself. Every change of a business is logged in the transaction that makes it.
//!
//! `rule` is the pure core (rules, tallies); `store` the rows; this module the steps the
//! services take under the business's row lock.

pub mod directory;
pub mod rule;
pub mod store;
pub mod view;

use scrip_domain::{Handle, PrincipalId};
use scrip_http::rfc3339_from_us;
use scrip_ledger::{LedgerError, Principal, principal_by_id};
use scrip_store::DbConn;

pub use rule::{Action, ApprovalRule, Tally};
pub use store::log;
pub use view::{LogEntryView, LogPage, ProposalPage, ProposalView, Proposed, RuleView};

/// How long a proposal waits for its approvals: a week.
pub const PROPOSAL_LIFETIME_US: i64 = 7 * 24 * 3_600 * 1_000_000;
/// Open proposals a business may have at once: one owner cannot bury the others in them.
pub const MAX_OPEN_PROPOSALS: i64 = 100;

/// Locks the business's row until commit (PostgreSQL; SQLite's write transaction already
/// excludes other writers): rule changes, votes and guarded actions of one business are
/// serialized, so concurrent approvals run an action once.
pub fn lock_business(conn: &mut DbConn, business: PrincipalId) -> Result<(), LedgerError> {
    Ok(scrip_store::lock_row(conn, "principals", business.get())?)
}

/// What a guarded action does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The caller alone may do it.
    Proceed,
    /// It needs this many distinct owners: open a proposal instead.
    Propose { required: u32 },
}

fn gate_of(required: u32) -> Gate {
    if required <= 1 {
        Gate::Proceed
    } else {
        Gate::Propose { required }
    }
}

/// Whether `action` of `business` needs a proposal under its rule.
pub fn gate(conn: &mut DbConn, business: PrincipalId, action: Action) -> Result<Gate, LedgerError> {
    Ok(gate_of(store::rule_of(conn, business)?.needed_for(action)))
}

/// Whether paying `amount_atoms` (of a currency with `scale`) out of the business's issuing
/// account needs a proposal.
pub fn gate_issue(
    conn: &mut DbConn,
    business: PrincipalId,
    (amount_atoms, scale): (i64, u8),
) -> Result<Gate, LedgerError> {
    let amount = rust_decimal::Decimal::new(amount_atoms, u32::from(scale));
    Ok(gate_of(
        store::rule_of(conn, business)?.needed_to_issue(amount),
    ))
}

/// A guarded action one owner asked for.
#[derive(Debug)]
pub struct Proposal<'a> {
    pub business: &'a Principal,
    pub action: Action,
    /// The request, as the action's executor will read it back.
    pub payload: serde_json::Value,
    pub summary: String,
    pub proposed_by: PrincipalId,
}

/// Opens a proposal, with its proposer's approval; under the business's lock.
pub fn propose(
    conn: &mut DbConn,
    proposal: &Proposal<'_>,
    required: u32,
) -> Result<ProposalView, ProposeError> {
    let now_us = scrip_http::now_us();
    if store::open_count(conn, proposal.business.id, now_us)? >= MAX_OPEN_PROPOSALS {
        return Err(ProposeError::TooMany);
    }
    let row = store::insert_proposal(
        conn,
        &store::NewProposal {
            business: proposal.business.id,
            action: proposal.action,
            payload: &proposal.payload,
            summary: &proposal.summary,
            proposed_by: proposal.proposed_by,
            required,
            now_us,
            expires_at_us: now_us + PROPOSAL_LIFETIME_US,
        },
    )?;
    store::record_vote(conn, row.id, proposal.proposed_by, (true, now_us))?;
    let detail = format!(
        "proposed (#{}, needs {required} owners): {}",
        row.id, proposal.summary
    );
    store::log(
        conn,
        proposal.business.id,
        proposal.proposed_by,
        ("proposal_opened", &detail),
    )?;
    Ok(proposal_view(
        conn,
        &row,
        &proposal.business.handle,
        now_us,
    )?)
}

/// Why a proposal could not be opened.
#[derive(Debug)]
pub enum ProposeError {
    TooMany,
    Ledger(LedgerError),
}

impl From<LedgerError> for ProposeError {
    fn from(error: LedgerError) -> Self {
        Self::Ledger(error)
    }
}

impl From<ProposeError> for scrip_http::ApiError {
    fn from(error: ProposeError) -> Self {
        match error {
            ProposeError::TooMany => Self::conflict(
                "too_many_proposals",
                format!(
                    "the business already has {MAX_OPEN_PROPOSALS} proposals waiting; decide some first"
                ),
            ),
            ProposeError::Ledger(error) => error.into(),
        }
    }
}

/// The proposal as the API shows it.
pub fn proposal_view(
    conn: &mut DbConn,
    row: &store::ProposalRow,
    business: &Handle,
    now_us: i64,
) -> Result<ProposalView, LedgerError> {
    let proposer = principal_by_id(conn, PrincipalId::new(row.proposed_by))?;
    let votes = store::votes(conn, row.id)?;
    let decided = |approve: bool| {
        votes
            .iter()
            .filter(|(_, _, a)| *a == approve)
            .map(|(_, handle, _)| handle.clone())
            .collect()
    };
    Ok(ProposalView {
        id: row.id.to_string(),
        business: business.to_string(),
        action: row.action.clone(),
        summary: row.summary.clone(),
        details: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
        proposed_by: proposer.handle.to_string(),
        approvals: decided(true),
        rejections: decided(false),
        required: u32::try_from(row.required).unwrap_or(0),
        status: row.status_at(now_us).to_owned(),
        created_at: rfc3339_from_us(row.created_at_us),
        expires_at: rfc3339_from_us(row.expires_at_us),
        decided_at: row.decided_at_us.map(rfc3339_from_us),
        outcome: row
            .outcome
            .as_deref()
            .and_then(|raw| serde_json::from_str(raw).ok()),
    })
}

/// The rule as the API shows it.
pub fn rule_view(business: &Handle, rule: &ApprovalRule) -> RuleView {
    RuleView {
        business: business.to_string(),
        required: rule.required,
        of: rule.actions.iter().map(|a| a.as_str().to_owned()).collect(),
        issue_above: rule.issue_above.map(|d| d.to_string()),
    }
}

/// Runs an approved proposal's action, in the transaction of the approval that completed it
/// (under the business's lock): it checks the request again against the state now, and an
/// error rolls the approval back with it. Answers what the action would have answered.
pub trait Execute: Send + Sync {
    fn execute(
        &self,
        conn: &mut DbConn,
        business: &Principal,
        proposal: &store::ProposalRow,
    ) -> Result<serde_json::Value, scrip_http::ApiError>;
}

/// The executors of every action, each registered by the service that owns the action.
#[derive(Default, Clone)]
pub struct Executors {
    by_action: std::collections::HashMap<Action, std::sync::Arc<dyn Execute>>,
}

impl std::fmt::Debug for Executors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_action.keys()).finish()
    }
}

impl Executors {
    #[must_use]
    pub fn with(mut self, action: Action, executor: std::sync::Arc<dyn Execute>) -> Self {
        self.by_action.insert(action, executor);
        self
    }

    pub fn get(&self, action: Action) -> Option<&std::sync::Arc<dyn Execute>> {
        self.by_action.get(&action)
    }
}

/// An issue proposal's request: a payment out of the business's issuing account.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IssuePayload {
    pub to: String,
    pub currency: String,
    pub amount: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// The payment request it pays, claimed when the payment runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The refusal of a payment that would issue the business's currency where its approval rule
/// cannot follow (an order, a conversion, paying a request from its page): one owner alone
/// may not issue more than the rule lets it, whatever the route.
pub fn needs_approval(business: &Principal, currency: &str) -> scrip_http::ApiError {
    scrip_http::ApiError::forbidden(
        "needs_approval",
        format!(
            "{}'s approval rule asks more owners to agree to issuing {currency}: pay it out with \
             POST /api/v1/payments (it becomes a proposal the other owners approve)",
            business.handle
        ),
    )
}

/// Whether `holder` spending `currency` issues it beyond what one owner may: a business
/// paying in a currency it issues, when its rule guards issuing at every amount this may be.
pub fn issuing_needs_approval(
    conn: &mut DbConn,
    holder: &Principal,
    currency: &scrip_ledger::Currency,
) -> Result<bool, LedgerError> {
    if holder.kind != scrip_domain::PrincipalKind::Business || currency.issuer_id != holder.id {
        return Ok(false);
    }
    Ok(store::rule_of(conn, holder.id)?.needed_for(Action::Issue) > 1)
}

/// A payment as the payment endpoints checked it, for [`issue_or_propose`].
#[derive(Debug)]
pub struct Payout<'a> {
    pub payer: &'a Principal,
    pub currency: &'a scrip_ledger::Currency,
    pub amount_atoms: i64,
    pub asked: IssuePayload,
    pub caller: PrincipalId,
}

/// A request's idempotency: `(scope, key, request hash)`.
pub type Idempotency<'a> = (PrincipalId, &'a scrip_ledger::IdempotencyKey, &'a str);

/// For the payment endpoints: `None` when the payment may run now; a proposal (opened under
/// the business's lock, and remembered under the request's idempotency key so a retry gets
/// the same proposal) when it pays out of the business's issuing account above what its rule
/// lets one owner issue alone.
pub fn issue_or_propose(
    conn: &mut DbConn,
    payout: &Payout<'_>,
    idempotency: Option<Idempotency<'_>>,
) -> Result<Option<Proposed>, scrip_http::ApiError> {
    let issuing = payout.payer.kind == scrip_domain::PrincipalKind::Business
        && payout.currency.issuer_id == payout.payer.id;
    if !issuing {
        return Ok(None);
    }
    let size = (payout.amount_atoms, payout.currency.scale.decimals());
    let gate = |conn: &mut DbConn| gate_issue(conn, payout.payer.id, size);
    propose_if_guarded(conn, payout.payer.id, gate, |conn, required| {
        let summary = format!(
            "pay {} {} to {}",
            payout.asked.amount, payout.asked.currency, payout.asked.to
        );
        let proposal = Proposal {
            business: payout.payer,
            action: Action::Issue,
            payload: serde_json::to_value(&payout.asked).unwrap_or_default(),
            summary,
            proposed_by: payout.caller,
        };
        let proposed = Proposed {
            proposal: propose(conn, &proposal, required)?,
        };
        if let Some((scope, key, hash)) = idempotency {
            let body = serde_json::to_string(&proposed)
                .map_err(|e| scrip_http::ApiError::Internal(e.to_string()))?;
            let stored = scrip_ledger::StoredResponse { status: 202, body };
            scrip_ledger::idempotency::remember(conn, scope, key, hash, &stored)?;
        }
        Ok(proposed)
    })
}

/// For a guarded action outside the issuer service: `None` when `gate` lets the caller act
/// alone; otherwise `open(conn, required)` (which opens the proposal) in a transaction under
/// the business's lock, the gate read again there. The first read keeps the common case (no
/// rule) off the lock.
pub fn propose_if_guarded<T>(
    conn: &mut DbConn,
    business: PrincipalId,
    gate: impl Fn(&mut DbConn) -> Result<Gate, LedgerError>,
    open: impl FnOnce(&mut DbConn, u32) -> Result<T, scrip_http::ApiError>,
) -> Result<Option<T>, scrip_http::ApiError> {
    if gate(conn)? == Gate::Proceed {
        return Ok(None);
    }
    scrip_store::write_transaction(conn, |conn| {
        lock_business(conn, business)?;
        match gate(conn)? {
            Gate::Proceed => Ok(None),
            Gate::Propose { required } => open(conn, required).map(Some),
        }
    })
}
