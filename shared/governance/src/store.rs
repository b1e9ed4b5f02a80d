//! Rules, proposals, decisions and the log, as rows. Callers hold the business's row lock
//! (see [`crate::lock_business`]) around anything that reads and then writes them.

use std::collections::BTreeSet;

use diesel::prelude::*;
use scrip_domain::PrincipalId;
use scrip_ledger::LedgerError;
use scrip_store::DbConn;
use scrip_store::schema::{
    approval_rules, business_log, memberships, principals, proposal_votes, proposals,
};

use crate::rule::{Action, ApprovalRule, stored_rule};

/// The business's rule; [`ApprovalRule::alone`] when it set none.
pub fn rule_of(conn: &mut DbConn, business: PrincipalId) -> Result<ApprovalRule, LedgerError> {
    let row: Option<(i32, String, Option<String>)> = approval_rules::table
        .find(business.get())
        .select((
            approval_rules::required,
            approval_rules::actions,
            approval_rules::issue_above,
        ))
        .first(conn)
        .optional()?;
    Ok(
        row.map_or_else(ApprovalRule::alone, |(required, actions, above)| {
            stored_rule(required, &actions, above.as_deref())
        }),
    )
}

/// Replaces the business's rule.
pub fn set_rule(
    conn: &mut DbConn,
    business: PrincipalId,
    rule: &ApprovalRule,
    (by, now_us): (PrincipalId, i64),
) -> Result<(), LedgerError> {
    diesel::delete(approval_rules::table.find(business.get())).execute(conn)?;
    diesel::insert_into(approval_rules::table)
        .values((
            approval_rules::business_id.eq(business.get()),
            approval_rules::required.eq(i32::try_from(rule.required).unwrap_or(i32::MAX)),
            approval_rules::actions.eq(rule.actions_text()),
            approval_rules::issue_above.eq(rule.issue_above.map(|d| d.to_string())),
            approval_rules::set_by.eq(by.get()),
            approval_rules::set_at_us.eq(now_us),
        ))
        .execute(conn)?;
    Ok(())
}

/// The business's owners now.
pub fn owners(
    conn: &mut DbConn,
    business: PrincipalId,
) -> Result<BTreeSet<PrincipalId>, LedgerError> {
    let ids: Vec<i64> = memberships::table
        .filter(memberships::business_id.eq(business.get()))
        .filter(memberships::role.eq("owner"))
        .select(memberships::member_id)
        .load(conn)?;
    Ok(ids.into_iter().map(PrincipalId::new).collect())
}

/// A proposal as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = proposals)]
pub struct ProposalRow {
    pub id: i64,
    pub business_id: i64,
    pub action: String,
    pub payload: String,
    pub summary: String,
    pub proposed_by: i64,
    pub required: i32,
    pub status: String,
    pub outcome: Option<String>,
    pub created_at_us: i64,
    pub expires_at_us: i64,
    pub decided_at_us: Option<i64>,
}

impl ProposalRow {
    pub fn action(&self) -> Option<Action> {
        Action::parse(&self.action)
    }

    pub fn business(&self) -> PrincipalId {
        PrincipalId::new(self.business_id)
    }

    /// `open`, `executed`, `rejected`, or `expired` (open past its time: it never runs).
    pub fn status_at(&self, now_us: i64) -> &str {
        if self.status == "open" && now_us >= self.expires_at_us {
            "expired"
        } else {
            &self.status
        }
    }
}

/// What a new proposal is.
#[derive(Debug)]
pub struct NewProposal<'a> {
    pub business: PrincipalId,
    pub action: Action,
    pub payload: &'a serde_json::Value,
    pub summary: &'a str,
    pub proposed_by: PrincipalId,
    pub required: u32,
    pub now_us: i64,
    pub expires_at_us: i64,
}

pub fn insert_proposal(
    conn: &mut DbConn,
    new: &NewProposal<'_>,
) -> Result<ProposalRow, LedgerError> {
    let id: i64 = diesel::insert_into(proposals::table)
        .values((
            proposals::business_id.eq(new.business.get()),
            proposals::action.eq(new.action.as_str()),
            proposals::payload.eq(new.payload.to_string()),
            proposals::summary.eq(new.summary),
            proposals::proposed_by.eq(new.proposed_by.get()),
            proposals::required.eq(i32::try_from(new.required).unwrap_or(i32::MAX)),
            proposals::status.eq("open"),
            proposals::created_at_us.eq(new.now_us),
            proposals::expires_at_us.eq(new.expires_at_us),
        ))
        .returning(proposals::id)
        .get_result(conn)?;
    proposal(conn, id)?.ok_or(LedgerError::Invariant(format!("proposal {id} vanished")))
}

pub fn proposal(conn: &mut DbConn, id: i64) -> Result<Option<ProposalRow>, LedgerError> {
    Ok(proposals::table
        .find(id)
        .select(ProposalRow::as_select())
        .first(conn)
        .optional()?)
}

/// The business's proposals, newest first, below `before`; `status` filters on the stored
/// status (`expired` is open past `now_us`).
pub fn proposals_page(
    conn: &mut DbConn,
    business: PrincipalId,
    (status, now_us): (Option<&str>, i64),
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ProposalRow>, LedgerError> {
    let mut query = proposals::table
        .filter(proposals::business_id.eq(business.get()))
        .order(proposals::id.desc())
        .limit(limit)
        .select(ProposalRow::as_select())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(proposals::id.lt(before));
    }
    query = match status {
        Some("open") => query
            .filter(proposals::status.eq("open"))
            .filter(proposals::expires_at_us.gt(now_us)),
        Some("expired") => query
            .filter(proposals::status.eq("open"))
            .filter(proposals::expires_at_us.le(now_us)),
        Some(other) => query.filter(proposals::status.eq(other.to_owned())),
        None => query,
    };
    Ok(query.load(conn)?)
}

/// How many of the business's proposals are open (not past their time).
pub fn open_count(
    conn: &mut DbConn,
    business: PrincipalId,
    now_us: i64,
) -> Result<i64, LedgerError> {
    Ok(proposals::table
        .filter(proposals::business_id.eq(business.get()))
        .filter(proposals::status.eq("open"))
        .filter(proposals::expires_at_us.gt(now_us))
        .count()
        .get_result(conn)?)
}

/// The decisions on a proposal: `(owner, handle, approve)`, in the order they came.
pub fn votes(
    conn: &mut DbConn,
    proposal: i64,
) -> Result<Vec<(PrincipalId, String, bool)>, LedgerError> {
    let rows: Vec<(i64, String, i32)> = proposal_votes::table
        .inner_join(principals::table.on(principals::id.eq(proposal_votes::owner_id)))
        .filter(proposal_votes::proposal_id.eq(proposal))
        .order(proposal_votes::at_us)
        .select((
            proposal_votes::owner_id,
            principals::handle,
            proposal_votes::approve,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, handle, approve)| (PrincipalId::new(id), handle, approve == 1))
        .collect())
}

/// Records an owner's decision; `false` when it had decided already (nothing changes).
pub fn record_vote(
    conn: &mut DbConn,
    proposal: i64,
    owner: PrincipalId,
    (approve, now_us): (bool, i64),
) -> Result<bool, LedgerError> {
    let decided = proposal_votes::table
        .find((proposal, owner.get()))
        .count()
        .get_result::<i64>(conn)?;
    if decided > 0 {
        return Ok(false);
    }
    diesel::insert_into(proposal_votes::table)
        .values((
            proposal_votes::proposal_id.eq(proposal),
            proposal_votes::owner_id.eq(owner.get()),
            proposal_votes::approve.eq(i32::from(approve)),
            proposal_votes::at_us.eq(now_us),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Closes an open proposal as `executed` (with what the action answered) or `rejected`.
/// Conditional on it still being open, so an action can never run twice: a second closing
/// is a broken invariant (callers hold the business's lock).
pub fn close(
    conn: &mut DbConn,
    proposal: i64,
    (status, outcome): (&str, Option<&serde_json::Value>),
    now_us: i64,
) -> Result<(), LedgerError> {
    let closed = diesel::update(
        proposals::table
            .filter(proposals::id.eq(proposal))
            .filter(proposals::status.eq("open")),
    )
    .set((
        proposals::status.eq(status),
        proposals::outcome.eq(outcome.map(ToString::to_string)),
        proposals::decided_at_us.eq(now_us),
    ))
    .execute(conn)?;
    if closed != 1 {
        return Err(LedgerError::Invariant(format!(
            "proposal {proposal} was closed twice"
        )));
    }
    Ok(())
}

/// One line of a business's log.
#[derive(Debug, Clone, Queryable)]
pub struct LogRow {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub at_us: i64,
}

/// Records a change of the business, in the transaction that makes it.
pub fn log(
    conn: &mut DbConn,
    business: PrincipalId,
    actor: PrincipalId,
    (action, detail): (&str, &str),
) -> Result<(), LedgerError> {
    diesel::insert_into(business_log::table)
        .values((
            business_log::business_id.eq(business.get()),
            business_log::actor_id.eq(actor.get()),
            business_log::action.eq(action),
            business_log::detail.eq(detail),
            business_log::at_us.eq(scrip_http::now_us()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The business's log, newest first, below `before`.
pub fn log_page(
    conn: &mut DbConn,
    business: PrincipalId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<LogRow>, LedgerError> {
    let mut query = business_log::table
        .inner_join(principals::table.on(principals::id.eq(business_log::actor_id)))
        .filter(business_log::business_id.eq(business.get()))
        .order(business_log::id.desc())
        .limit(limit)
        .select((
            business_log::id,
            principals::handle,
            business_log::action,
            business_log::detail,
            business_log::at_us,
        ))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(business_log::id.lt(before));
    }
    Ok(query.load(conn)?)
}
