//! Obligations: debts recorded outside the ledger. The creditor's owner records one
//! (`proposed`); the debtor's owner accepts it, or rejects it; the creditor's owner may
//! withdraw it while it is proposed. Only accepted obligations are cleared; a rejected or
//! withdrawn one is closed for good and kept, so both sides see what happened.

use actix_web::{HttpResponse, get, post, web};
use scrip_auth::Caller;
use scrip_auth::access::{is_owner, share_an_owner};
use scrip_auth::guard::resolve;
use scrip_domain::{Amount, PrincipalKind, RegistryId, Scale, UnitCode};
use scrip_http::{ApiError, Page, PageQuery, Problem, blocking, rfc3339_from_us};
use scrip_ledger::Ledger;
use scrip_store::DbConn;

use crate::dto::{NewObligation, ObligationList, ObligationView, StatusQuery};
use crate::store::{self, Obligation, ObligationStatus};

/// Obligation amounts are in the unit of account with this many decimals.
const UNIT_SCALE: i64 = 8;

fn unit_scale() -> Scale {
    Scale::new(UNIT_SCALE).unwrap_or_else(|_| unreachable!("8 is a valid scale"))
}

pub(crate) fn view(conn: &mut DbConn, obligation: Obligation) -> Result<ObligationView, ApiError> {
    let names = scrip_ledger::handles(conn, [obligation.debtor, obligation.creditor])?;
    let name = |id| names.get(&id).cloned().unwrap_or_default();
    Ok(ObligationView {
        id: obligation.id.to_string(),
        debtor: name(obligation.debtor),
        creditor: name(obligation.creditor),
        unit: obligation.unit,
        amount: Amount::from_atoms(obligation.amount_atoms, unit_scale()).to_string(),
        remaining: Amount::from_atoms(obligation.remaining_atoms, unit_scale()).to_string(),
        memo: obligation.memo,
        status: obligation.status.as_str().to_owned(),
        created_at: rfc3339_from_us(obligation.created_at_us),
        related: obligation.related,
    })
}

fn business(
    conn: &mut DbConn,
    raw: &str,
    registry: &RegistryId,
) -> Result<scrip_ledger::Principal, ApiError> {
    let principal = resolve(conn, raw, registry)?;
    if principal.kind == PrincipalKind::Business {
        Ok(principal)
    } else {
        Err(ApiError::unprocessable(
            "not_a_business",
            format!("{raw} is not a business"),
        ))
    }
}

#[utoipa::path(
    post, path = "/api/v1/obligations", tag = "clearing", request_body = NewObligation,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ObligationView),
        (status = 403, body = Problem, description = "not_owner (of the creditor)"),
        (status = 404, body = Problem, description = "unknown_account"),
        (status = 422, body = Problem, description = "bad_amount, not_a_business, same_account"),
    )
)]
#[post("/api/v1/obligations")]
pub async fn propose(
    caller: Caller,
    body: scrip_http::Json<NewObligation>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let amount = Amount::parse_positive(&body.amount, unit_scale())
        .map_err(|e| ApiError::unprocessable("bad_amount", e.to_string()))?;
    if amount.atoms() > MAX_OBLIGATION_UNITS * unit_scale().atoms_per_unit() {
        return Err(ApiError::unprocessable(
            "bad_amount",
            format!("an obligation is at most {MAX_OBLIGATION_UNITS} units of account"),
        ));
    }
    let unit = UnitCode::parse(body.unit.as_deref().unwrap_or("EUR"))
        .map_err(|e| ApiError::unprocessable("bad_unit", e.to_string()))?;
    let memo = scrip_http::memo(body.memo.as_deref())?;
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let creditor = business(&mut conn, &body.creditor, &registry)?;
        let debtor = business(&mut conn, &body.debtor, &registry)?;
        if !is_owner(&mut conn, creditor.id, caller.id)? {
            return Err(ApiError::forbidden(
                "not_owner",
                format!(
                    "only an owner of {} records what it is owed",
                    creditor.handle
                ),
            ));
        }
        if debtor.id == creditor.id {
            return Err(ApiError::unprocessable(
                "same_account",
                "a business cannot owe itself",
            ));
        }
        let related = share_an_owner(&mut conn, debtor.id, creditor.id)?;
        let new = store::NewObligation {
            debtor: debtor.id,
            creditor: creditor.id,
            unit: unit.as_str(),
            amount_atoms: amount.atoms(),
            memo: memo.as_deref(),
            related,
        };
        drop(conn);
        let obligation = ledger.write(|conn| {
            // Counted under the debtor's row lock, so concurrent proposals cannot pass together.
            scrip_store::lock_row(conn, "principals", debtor.id.get())?;
            Ok(match within_proposal_caps(conn, &debtor, &creditor)? {
                Ok(()) => Ok(store::insert(conn, &new)?),
                Err(refused) => Err(refused),
            })
        })??;
        view(&mut *ledger.conn()?, obligation)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// The largest obligation, in units of account: the registry's default largest credit line.
/// No invoice between two businesses is bigger, and one cannot blow up the clearing figures.
pub const MAX_OBLIGATION_UNITS: i64 = 1_000_000;
/// Proposals that may wait for one debtor's answer, from one creditor and from all: a
/// business cannot bury another in proposals (2,000 in 4.5 s were sent in the review).
pub const MAX_OPEN_PROPOSALS_PER_PAIR: i64 = 20;
pub const MAX_OPEN_PROPOSALS_PER_DEBTOR: i64 = 200;

fn within_proposal_caps(
    conn: &mut DbConn,
    debtor: &scrip_ledger::Principal,
    creditor: &scrip_ledger::Principal,
) -> Result<Result<(), ApiError>, scrip_ledger::LedgerError> {
    let (all, from_creditor) = store::open_proposals(conn, debtor.id, creditor.id)?;
    Ok(if from_creditor >= MAX_OPEN_PROPOSALS_PER_PAIR {
        Err(ApiError::conflict(
            "too_many_proposals",
            format!(
                "{} already has {MAX_OPEN_PROPOSALS_PER_PAIR} proposals from {} waiting for an answer",
                debtor.handle, creditor.handle
            ),
        ))
    } else if all >= MAX_OPEN_PROPOSALS_PER_DEBTOR {
        Err(ApiError::conflict(
            "too_many_proposals",
            format!(
                "{} already has {MAX_OPEN_PROPOSALS_PER_DEBTOR} proposals waiting for an answer",
                debtor.handle
            ),
        ))
    } else {
        Ok(())
    })
}

/// What the owner of one side may do with a proposed obligation.
#[derive(Debug, Clone, Copy)]
enum Decision {
    Accept,
    Reject,
    Withdraw,
}

impl Decision {
    /// Accepting and rejecting are the debtor's; withdrawing is the creditor's.
    fn by_debtor(self) -> bool {
        !matches!(self, Decision::Withdraw)
    }

    /// The status the decision leads to.
    fn outcome(self) -> ObligationStatus {
        match self {
            Decision::Accept => ObligationStatus::Accepted,
            Decision::Reject => ObligationStatus::Rejected,
            Decision::Withdraw => ObligationStatus::Withdrawn,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Decision::Accept => "accepts",
            Decision::Reject => "rejects",
            Decision::Withdraw => "withdraws",
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/obligations/{id}/accept", tag = "clearing",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = ObligationView),
        (status = 403, body = Problem, description = "not_owner (of the debtor)"),
        (status = 404, body = Problem, description = "unknown, or not one of the caller's businesses'"),
        (status = 409, body = Problem, description = "already_accepted, obligation_closed"),
    )
)]
#[post("/api/v1/obligations/{id}/accept")]
pub async fn accept(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    decide(caller, &path, ledger, Decision::Accept).await
}

#[utoipa::path(
    post, path = "/api/v1/obligations/{id}/reject", tag = "clearing",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = ObligationView, description = "status `rejected`: closed, never cleared"),
        (status = 403, body = Problem, description = "not_owner (of the debtor)"),
        (status = 404, body = Problem, description = "unknown, or not one of the caller's businesses'"),
        (status = 409, body = Problem, description = "already_accepted, obligation_closed"),
    )
)]
#[post("/api/v1/obligations/{id}/reject")]
pub async fn reject(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    decide(caller, &path, ledger, Decision::Reject).await
}

#[utoipa::path(
    post, path = "/api/v1/obligations/{id}/withdraw", tag = "clearing",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = ObligationView, description = "status `withdrawn`: closed, never cleared"),
        (status = 403, body = Problem, description = "not_owner (of the creditor)"),
        (status = 404, body = Problem, description = "unknown, or not one of the caller's businesses'"),
        (status = 409, body = Problem, description = "already_accepted, obligation_closed"),
    )
)]
#[post("/api/v1/obligations/{id}/withdraw")]
pub async fn withdraw(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    decide(caller, &path, ledger, Decision::Withdraw).await
}

/// Applies a decision to a proposed obligation, if the caller owns the side that takes it.
/// The change is conditional on the obligation still being proposed and open, so of two
/// concurrent decisions exactly one wins; the other gets a conflict.
async fn decide(
    caller: Caller,
    path: &str,
    ledger: web::Data<Ledger>,
    decision: Decision,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("not_found", "no such obligation");
    let id = path.parse::<i64>().map_err(|_| not_found())?;
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let obligation = store::load(&mut conn, id)?.ok_or_else(not_found)?;
        let (debtor, creditor) = (obligation.debtor, obligation.creditor);
        let (side, decider, other) = if decision.by_debtor() {
            ("debtor", debtor, creditor)
        } else {
            ("creditor", creditor, debtor)
        };
        if !is_owner(&mut conn, decider, caller.id)? {
            return Err(if is_owner(&mut conn, other, caller.id)? {
                ApiError::forbidden(
                    "not_owner",
                    format!(
                        "only an owner of the {side} {} an obligation",
                        decision.verb()
                    ),
                )
            } else {
                not_found()
            });
        }
        let decided = store::decide(&mut conn, id, decision.outcome(), scrip_http::now_us())?;
        let Some(obligation) = decided else {
            // Not proposed any more: say why.
            let current = store::load(&mut conn, id)?
                .ok_or_else(|| ApiError::Internal("obligation vanished".into()))?;
            return Err(match current.status {
                ObligationStatus::Accepted => {
                    ApiError::conflict("already_accepted", "the obligation was already accepted")
                }
                closed => ApiError::conflict(
                    "obligation_closed",
                    format!("the obligation was {}", closed.as_str()),
                ),
            });
        };
        view(&mut conn, obligation)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    get, path = "/api/v1/obligations", tag = "clearing", params(StatusQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ObligationList))
)]
#[get("/api/v1/obligations")]
pub async fn list(
    caller: Caller,
    query: web::Query<StatusQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let StatusQuery {
        status,
        limit,
        cursor,
    } = query.into_inner();
    let paging = PageQuery { limit, cursor };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let status = match status.as_deref() {
        None => None,
        Some(raw) => Some(ObligationStatus::parse(raw).ok_or_else(|| {
            ApiError::unprocessable(
                "bad_status",
                "status is proposed, accepted, rejected or withdrawn",
            )
        })?),
    };
    let list = blocking(move || {
        let mut conn = ledger.conn()?;
        let rows = store::list_for_owner(&mut conn, caller.id, status, before, limit + 1)?;
        let page = Page::from_overfetch(rows, limit, |obligation| obligation.id);
        let items = page
            .items
            .into_iter()
            .map(|row| view(&mut conn, row))
            .collect::<Result<_, _>>()?;
        Ok(ObligationList {
            items,
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}
