//! Approvals at the HTTP edge: a business's rule (`PUT/GET /businesses/{h}/approvals`), its
//! proposals and their decisions (`/proposals/{id}/approve|reject`), its log; and the
//! executors of the issuer's own guarded actions (issuing, limits, policies, members, the
//! rule itself). A proposal's action runs in the transaction of the approval that completes
//! it, under the business's lock: concurrent approvals run it once, and an action that the
//! state no longer allows refuses the approval whole (it can be approved again later).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, put, web};
use scrip_auth::Caller;
use scrip_auth::access::{Role, role_in};
use scrip_domain::{Amount, PrincipalId, RegistryId};
use scrip_governance::store::{self, ProposalRow};
use scrip_governance::{
    Action, ApprovalRule, Execute, Executors, Gate, LogEntryView, LogPage, Proposal, ProposalPage,
    ProposalView, Proposed, RuleView, Tally, proposal_view, rule_view,
};
use scrip_http::{ApiError, Page, PageQuery, Problem, blocking, now_us, rfc3339_from_us};
use scrip_ledger::{Ledger, Principal, TransferKind, TransferRequest, principal_by_id};
use scrip_store::{DbConn, write_transaction};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::handlers::business;

/// What a guarded action did: done now, or waiting in a proposal for more owners.
pub(crate) enum Done<T> {
    Now(T),
    Proposed(Box<ProposalView>),
}

impl<T: Serialize> Done<T> {
    /// `status` with the result, or `202 {proposal}`.
    pub(crate) fn respond(self, status: StatusCode) -> HttpResponse {
        match self {
            Self::Now(view) => HttpResponse::build(status).json(view),
            Self::Proposed(proposal) => HttpResponse::Accepted().json(Proposed {
                proposal: *proposal,
            }),
        }
    }
}

/// What a proposal for an action records: its request and a line saying what it does.
pub(crate) struct Asked {
    pub action: Action,
    pub payload: serde_json::Value,
    pub summary: String,
}

/// Under the business's lock: `act` now when the rule lets the caller act alone, or a
/// proposal for it otherwise.
pub(crate) fn act_or_propose<T>(
    conn: &mut DbConn,
    (business, caller): (&Principal, PrincipalId),
    gate: Gate,
    asked: impl FnOnce() -> Asked,
    act: impl FnOnce(&mut DbConn) -> Result<T, ApiError>,
) -> Result<Done<T>, ApiError> {
    match gate {
        Gate::Proceed => act(conn).map(Done::Now),
        Gate::Propose { required } => {
            let asked = asked();
            let proposal = Proposal {
                business,
                action: asked.action,
                payload: asked.payload,
                summary: asked.summary,
                proposed_by: caller,
            };
            Ok(Done::Proposed(Box::new(scrip_governance::propose(
                conn, &proposal, required,
            )?)))
        }
    }
}

fn require_owner_id(
    conn: &mut DbConn,
    business: &Principal,
    who: PrincipalId,
) -> Result<(), ApiError> {
    match role_in(conn, business.id, who)? {
        Some(Role::Owner) => Ok(()),
        // A worker sees that the business exists, not its governance.
        Some(Role::Worker) => Err(ApiError::forbidden(
            "not_owner",
            format!("only an owner of {} may do this", business.handle),
        )),
        None => Err(ApiError::not_found(
            "not_found",
            format!("no business named {:?}", business.handle.as_str()),
        )),
    }
}

/// `PUT /businesses/{handle}/approvals`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// How many distinct owners the actions in `of` need (1: each owner acts alone).
    pub required: i64,
    /// Which actions: `issue`, `limits`, `markets`, `members`, `policy`.
    #[serde(default)]
    pub of: Vec<String>,
    /// Issuing needs approvals only above this amount (in the currency's units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_above: Option<String>,
}

fn checked_rule(
    conn: &mut DbConn,
    business: &Principal,
    body: &RuleBody,
) -> Result<ApprovalRule, ApiError> {
    let owners = store::owners(conn, business.id)?.len();
    scrip_governance::rule::parse_rule(body.required, &body.of, body.issue_above.as_deref(), owners)
        .map_err(|refusal| ApiError::refused_field("bad_rule", refusal.field, refusal.detail))
}

fn set_rule(
    conn: &mut DbConn,
    business: &Principal,
    body: &RuleBody,
    actor: PrincipalId,
) -> Result<RuleView, ApiError> {
    let rule = checked_rule(conn, business, body)?;
    store::set_rule(conn, business.id, &rule, (actor, now_us()))?;
    if rule.required > 1 {
        // An owner invited under the old rule would join without the owners agreeing now.
        for invited in scrip_auth::invitations::withdraw_owner_invitations(conn, business.id)? {
            let line =
                format!("the invitation of {invited} as owner was withdrawn by the new rule");
            scrip_governance::log(conn, business.id, actor, ("invitation_withdrawn", &line))?;
        }
    }
    let view = rule_view(&business.handle, &rule);
    let detail = describe_rule(&view);
    scrip_governance::log(conn, business.id, actor, ("approvals_set", &detail))?;
    Ok(view)
}

fn describe_rule(view: &RuleView) -> String {
    if view.required <= 1 || view.of.is_empty() {
        return "every owner acts alone (the rule asks for one owner)".into();
    }
    let above = view
        .issue_above
        .as_ref()
        .map(|a| format!(" (issuing above {a})"))
        .unwrap_or_default();
    format!(
        "{} owners must agree to: {}{above}",
        view.required,
        view.of.join(", ")
    )
}

#[utoipa::path(
    put, path = "/api/v1/businesses/{handle}/approvals", tag = "governance", request_body = RuleBody,
    security(("bearer" = [])), params(("handle" = String, Path)),
    responses(
        (status = 200, body = RuleView, description = "from now on the actions in `of` need `required` distinct owners"),
        (status = 202, body = Proposed, description = "the rule in force needs more owners to change it: a proposal"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "no such business"),
        (status = 422, body = Problem, description = "bad_rule (under `field`: required, of, issue_above)"),
    )
)]
#[put("/api/v1/businesses/{handle}/approvals")]
pub async fn put_approvals(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<RuleBody>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let done = blocking(move || {
        let mut conn = ledger.conn()?;
        let business = business(&mut conn, &path, &registry)?;
        write_transaction(&mut conn, |conn| {
            scrip_governance::lock_business(conn, business.id)?;
            require_owner_id(conn, &business, caller.id)?;
            // Checked before a proposal is opened, so nobody approves a rule that cannot be.
            let asked_rule = checked_rule(conn, &business, &body)?;
            let gate = scrip_governance::gate(conn, business.id, Action::Approvals)?;
            act_or_propose(
                conn,
                (&business, caller.id),
                gate,
                || Asked {
                    action: Action::Approvals,
                    payload: serde_json::to_value(&body).unwrap_or_default(),
                    summary: format!(
                        "change the approval rule: {}",
                        describe_rule(&rule_view(&business.handle, &asked_rule))
                    ),
                },
                |conn| set_rule(conn, &business, &body, caller.id),
            )
        })
    })
    .await?;
    Ok(done.respond(StatusCode::OK))
}

#[utoipa::path(
    get, path = "/api/v1/businesses/{handle}/approvals", tag = "governance",
    security(("bearer" = [])), params(("handle" = String, Path)),
    responses(
        (status = 200, body = RuleView, description = "the rule in force (`required: 1`: every owner acts alone)"),
        (status = 403, body = Problem, description = "not_owner (a worker)"),
        (status = 404, body = Problem, description = "no such business, or the caller is not a member"),
    )
)]
#[get("/api/v1/businesses/{handle}/approvals")]
pub async fn get_approvals(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let business = business(&mut conn, &path, &registry)?;
        require_owner_id(&mut conn, &business, caller.id)?;
        let rule = store::rule_of(&mut conn, business.id)?;
        Ok(rule_view(&business.handle, &rule))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A page of proposals or applications in one status.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// Proposals: `open`, `executed`, `rejected` or `expired`; applications: `pending`,
    /// `admitted` or `declined`.
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/businesses/{handle}/proposals", tag = "governance",
    security(("bearer" = [])), params(("handle" = String, Path), StatusQuery),
    responses(
        (status = 200, body = ProposalPage, description = "newest first"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "no such business"),
        (status = 422, body = Problem, description = "bad_status"),
    )
)]
#[get("/api/v1/businesses/{handle}/proposals")]
pub async fn list_proposals(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<StatusQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let paging = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    if let Some(status) = query.status.as_deref()
        && !["open", "executed", "rejected", "expired"].contains(&status)
    {
        return Err(ApiError::refused_field(
            "bad_status",
            "status",
            "status is open, executed, rejected or expired",
        ));
    }
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let business = business(&mut conn, &path, &registry)?;
        require_owner_id(&mut conn, &business, caller.id)?;
        let now = now_us();
        let rows = store::proposals_page(
            &mut conn,
            business.id,
            (query.status.as_deref(), now),
            before,
            limit + 1,
        )?;
        let page = Page::from_overfetch(rows, limit, |row| row.id);
        let mut items = Vec::with_capacity(page.items.len());
        for row in &page.items {
            items.push(proposal_view(&mut conn, row, &business.handle, now)?);
        }
        Ok(ProposalPage {
            items,
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

fn no_such_proposal() -> ApiError {
    ApiError::not_found("not_found", "no such proposal")
}

/// The proposal and its business, for an owner of it (404 for anyone else).
fn owned_proposal(
    conn: &mut DbConn,
    raw: &str,
    caller: PrincipalId,
) -> Result<(ProposalRow, Principal), ApiError> {
    let id = raw.parse::<i64>().map_err(|_| no_such_proposal())?;
    let row = store::proposal(conn, id)?.ok_or_else(no_such_proposal)?;
    let business = principal_by_id(conn, row.business())?;
    if role_in(conn, business.id, caller)? != Some(Role::Owner) {
        return Err(no_such_proposal());
    }
    Ok((row, business))
}

#[utoipa::path(
    get, path = "/api/v1/proposals/{id}", tag = "governance",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 200, body = ProposalView),
        (status = 404, body = Problem, description = "no such proposal, or the caller is not an owner of its business"),
    )
)]
#[get("/api/v1/proposals/{id}")]
pub async fn get_proposal(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let (row, business) = owned_proposal(&mut conn, &path, caller.id)?;
        Ok(proposal_view(&mut conn, &row, &business.handle, now_us())?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    post, path = "/api/v1/proposals/{id}/approve", tag = "governance",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 200, body = ProposalView, description = "the approval is counted; `status: executed` when it was the last one needed (the action ran, `outcome` says what it answered)"),
        (status = 404, body = Problem, description = "no such proposal, or the caller is not an owner of its business"),
        (status = 409, body = Problem, description = "already_decided, proposal_closed, proposal_expired"),
        (status = 422, body = Problem, description = "the action's own refusal (insufficient_funds, sealed, ...): nothing changed, the approval is not counted"),
    )
)]
#[post("/api/v1/proposals/{id}/approve")]
pub async fn approve_proposal(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    executors: web::Data<Executors>,
) -> Result<HttpResponse, ApiError> {
    decide(caller, path.into_inner(), true, ledger, executors).await
}

#[utoipa::path(
    post, path = "/api/v1/proposals/{id}/reject", tag = "governance",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 200, body = ProposalView, description = "the rejection is counted; `status: rejected` once too few owners are left to approve it"),
        (status = 404, body = Problem, description = "no such proposal, or the caller is not an owner of its business"),
        (status = 409, body = Problem, description = "already_decided, proposal_closed, proposal_expired"),
    )
)]
#[post("/api/v1/proposals/{id}/reject")]
pub async fn reject_proposal(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    executors: web::Data<Executors>,
) -> Result<HttpResponse, ApiError> {
    decide(caller, path.into_inner(), false, ledger, executors).await
}

async fn decide(
    caller: Caller,
    raw: String,
    approve: bool,
    ledger: web::Data<Ledger>,
    executors: web::Data<Executors>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let (_, business) = owned_proposal(&mut conn, &raw, caller.id)?;
        write_transaction(&mut conn, |conn| {
            scrip_governance::lock_business(conn, business.id)?;
            // Read again under the lock: a concurrent decision may have closed it.
            let (row, _) = owned_proposal(conn, &raw, caller.id)?;
            decide_locked(conn, (&business, &row), (caller.id, approve), &executors)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

fn decide_locked(
    conn: &mut DbConn,
    (business, row): (&Principal, &ProposalRow),
    (owner, approve): (PrincipalId, bool),
    executors: &Executors,
) -> Result<ProposalView, ApiError> {
    let now = now_us();
    match row.status_at(now) {
        "open" => {}
        "expired" => {
            return Err(ApiError::conflict(
                "proposal_expired",
                format!(
                    "proposal {} expired at {}: it will never run; propose it again",
                    row.id,
                    rfc3339_from_us(row.expires_at_us)
                ),
            ));
        }
        status => {
            return Err(ApiError::conflict(
                "proposal_closed",
                format!("proposal {} is {status}: it is decided", row.id),
            ));
        }
    }
    if !store::record_vote(conn, row.id, owner, (approve, now))? {
        return Err(ApiError::conflict(
            "already_decided",
            "you have already decided on this proposal",
        ));
    }
    let owners = store::owners(conn, business.id)?;
    let votes: Vec<(PrincipalId, bool)> = store::votes(conn, row.id)?
        .into_iter()
        .map(|(id, _, approve)| (id, approve))
        .collect();
    // A rule made stricter since the proposal was opened applies to it too.
    let now_needed = row.action().map_or(0, |action| {
        store::rule_of(conn, business.id).map_or(0, |r| r.needed_for(action))
    });
    let required = u32::try_from(row.required)
        .unwrap_or(u32::MAX)
        .max(now_needed);
    let word = if approve { "approved" } else { "rejected" };
    let line = format!("{word} proposal #{}: {}", row.id, row.summary);
    scrip_governance::log(
        conn,
        business.id,
        owner,
        (&format!("proposal_{word}"), &line),
    )?;
    match scrip_governance::rule::tally(required, &owners, &votes) {
        Tally::Approved => {
            let action = row
                .action()
                .ok_or_else(|| ApiError::Internal(format!("proposal {} has no action", row.id)))?;
            let executor = executors.get(action).ok_or_else(|| {
                ApiError::Unavailable(format!("no executor for {} here", action.as_str()))
            })?;
            let outcome = executor.execute(conn, business, row)?;
            store::close(conn, row.id, ("executed", Some(&outcome)), now)?;
            let line = format!("executed proposal #{}: {}", row.id, row.summary);
            scrip_governance::log(conn, business.id, owner, ("proposal_executed", &line))?;
        }
        Tally::Rejected => store::close(conn, row.id, ("rejected", None), now)?,
        Tally::Open { .. } => {}
    }
    let row = store::proposal(conn, row.id)?.ok_or_else(no_such_proposal)?;
    Ok(proposal_view(conn, &row, &business.handle, now)?)
}

#[utoipa::path(
    get, path = "/api/v1/businesses/{handle}/log", tag = "governance",
    security(("bearer" = [])), params(("handle" = String, Path), PageQuery),
    responses(
        (status = 200, body = LogPage, description = "every change of members, limits, policies and approvals, newest first"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "no such business"),
    )
)]
#[get("/api/v1/businesses/{handle}/log")]
pub async fn get_log(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let (limit, before) = (query.limit()?, query.before_id()?);
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let business = business(&mut conn, &path, &registry)?;
        require_owner_id(&mut conn, &business, caller.id)?;
        let rows = store::log_page(&mut conn, business.id, before, limit + 1)?;
        let page = Page::from_overfetch(rows, limit, |row| row.id);
        Ok(LogPage {
            items: page
                .items
                .into_iter()
                .map(|row| LogEntryView {
                    id: row.id.to_string(),
                    actor: row.actor,
                    action: row.action,
                    detail: row.detail,
                    at: rfc3339_from_us(row.at_us),
                })
                .collect(),
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

fn payload<T: serde::de::DeserializeOwned>(row: &ProposalRow) -> Result<T, ApiError> {
    serde_json::from_str(&row.payload)
        .map_err(|e| ApiError::Internal(format!("proposal {} cannot be read: {e}", row.id)))
}

/// Issuing: the payment runs as the business, checked by the ledger like any other.
struct IssueExecutor {
    registry: RegistryId,
}

impl Execute for IssueExecutor {
    fn execute(
        &self,
        conn: &mut DbConn,
        business: &Principal,
        row: &ProposalRow,
    ) -> Result<serde_json::Value, ApiError> {
        let asked: scrip_governance::IssuePayload = payload(row)?;
        let currency = scrip_auth::guard::currency(conn, &asked.currency, "unknown_account")?;
        let payee = scrip_auth::guard::resolve(conn, &asked.to, &self.registry)?;
        scrip_ledger::rules::may_be_paid(payee.kind)?;
        let amount = Amount::parse_positive(&asked.amount, currency.scale)
            .map_err(|e| ApiError::unprocessable("bad_amount", e.to_string()))?;
        if let Some(request) = &asked.request_id {
            // Paid at most once, never after it expired: the approval is refused otherwise.
            let now = now_us();
            if !scrip_ledger::requests::claim(conn, request, business.id, now)? {
                let row = scrip_ledger::requests::find(conn, request)?;
                let refusal = row.and_then(|r| r.payable(now).err());
                return Err(refusal
                    .unwrap_or(scrip_ledger::LedgerError::AlreadyPaid)
                    .into());
            }
        }
        let transfer = scrip_ledger::transfer(
            conn,
            &TransferRequest {
                currency: currency.id,
                from: business.id,
                to: payee.id,
                amount,
                kind: TransferKind::Payment,
                memo: asked.memo.clone(),
            },
        )?;
        if let Some(request) = &asked.request_id {
            scrip_ledger::requests::record_transfer(conn, request, transfer.id)?;
        }
        Ok(serde_json::json!({
            "transfer_id": transfer.id.get().to_string(),
            "from": business.handle.to_string(),
            "to": payee.handle.to_string(),
            "currency": currency.code.to_string(),
            "amount": amount.to_string(),
        }))
    }
}

/// The rule itself, changed under the rule.
struct RuleExecutor;

impl Execute for RuleExecutor {
    fn execute(
        &self,
        conn: &mut DbConn,
        business: &Principal,
        row: &ProposalRow,
    ) -> Result<serde_json::Value, ApiError> {
        let body: RuleBody = payload(row)?;
        let view = set_rule(conn, business, &body, PrincipalId::new(row.proposed_by))?;
        serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()))
    }
}

/// The executors of the issuer's guarded actions; the exchange adds `markets`.
pub fn executors(policy: crate::IssuerPolicy, registry: RegistryId) -> Executors {
    Executors::default()
        .with(
            Action::Issue,
            std::sync::Arc::new(IssueExecutor {
                registry: registry.clone(),
            }),
        )
        .with(Action::Approvals, std::sync::Arc::new(RuleExecutor))
        .with(
            Action::Members,
            std::sync::Arc::new(crate::members::MembersExecutor {
                registry: registry.clone(),
            }),
        )
        .with(
            Action::Limits,
            std::sync::Arc::new(crate::handlers::CurrencyExecutor {
                policy,
                registry: registry.clone(),
            }),
        )
        .with(
            Action::Policy,
            std::sync::Arc::new(crate::handlers::CurrencyExecutor { policy, registry }),
        )
}
