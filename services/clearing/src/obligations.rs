//! Obligations: debts recorded outside the ledger. The creditor's owner records one
//! (`proposed`); the debtor's owner accepts it, or rejects it; the creditor's owner may
//! withdraw it while it is proposed. Only accepted obligations are cleared; a rejected or
//! withdrawn one is closed for good and kept, so both sides see what happened.

use actix_web::{HttpResponse, get, post, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_auth::access::{is_owner, memberships_of};
use scrip_auth::guard::resolve;
use scrip_domain::{Amount, PrincipalKind, RegistryId, Scale, UnitCode};
use scrip_http::{ApiError, Page, PageQuery, Problem, blocking, rfc3339_from_us};
use scrip_ledger::{Ledger, principal_by_handle};
use scrip_store::DbConn;
use scrip_store::schema::obligations;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An obligation's statuses, as the API shows them.
const STATUSES: [&str; 4] = ["proposed", "accepted", "rejected", "withdrawn"];

/// Obligation amounts are in the unit of account with this many decimals.
const UNIT_SCALE: i64 = 8;

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

type Row = (
    i64,
    i64,
    i64,
    String,
    i64,
    i64,
    Option<String>,
    String,
    i64,
    Option<String>,
);

fn columns() -> (
    obligations::id,
    obligations::debtor_id,
    obligations::creditor_id,
    obligations::unit,
    obligations::amount_atoms,
    obligations::remaining_atoms,
    obligations::memo,
    obligations::status,
    obligations::created_at_us,
    obligations::closed,
) {
    (
        obligations::id,
        obligations::debtor_id,
        obligations::creditor_id,
        obligations::unit,
        obligations::amount_atoms,
        obligations::remaining_atoms,
        obligations::memo,
        obligations::status,
        obligations::created_at_us,
        obligations::closed,
    )
}

fn load(conn: &mut DbConn, id: i64) -> Result<Option<Row>, ApiError> {
    Ok(obligations::table
        .find(id)
        .select(columns())
        .first(conn)
        .optional()
        .map_err(scrip_ledger::LedgerError::from)?)
}

fn unit_scale() -> Scale {
    Scale::new(UNIT_SCALE).unwrap_or_else(|_| unreachable!("8 is a valid scale"))
}

fn view(conn: &mut DbConn, row: Row) -> Result<ObligationView, ApiError> {
    let (id, debtor, creditor, unit, amount, remaining, memo, status, created_at_us, closed) = row;
    let names =
        scrip_ledger::handles(conn, [debtor, creditor].map(scrip_domain::PrincipalId::new))?;
    let name = |id: i64| {
        names
            .get(&scrip_domain::PrincipalId::new(id))
            .cloned()
            .unwrap_or_default()
    };
    Ok(ObligationView {
        id: id.to_string(),
        debtor: name(debtor),
        creditor: name(creditor),
        unit,
        amount: Amount::from_atoms(amount, unit_scale()).to_string(),
        remaining: Amount::from_atoms(remaining, unit_scale()).to_string(),
        memo,
        // A closed obligation was proposed and never accepted: its closing word is its status.
        status: closed.unwrap_or(status),
        created_at: rfc3339_from_us(created_at_us),
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
    body: web::Json<NewObligation>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let amount = Amount::parse_positive(&body.amount, unit_scale())
        .map_err(|e| ApiError::unprocessable("bad_amount", e.to_string()))?;
    if amount.atoms() > scrip_ledger::MAX_AMOUNT_ATOMS {
        return Err(ApiError::unprocessable(
            "bad_amount",
            "the amount is too large",
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
        let id: i64 = diesel::insert_into(obligations::table)
            .values((
                obligations::debtor_id.eq(debtor.id.get()),
                obligations::creditor_id.eq(creditor.id.get()),
                obligations::unit.eq(unit.as_str()),
                obligations::amount_atoms.eq(amount.atoms()),
                obligations::remaining_atoms.eq(amount.atoms()),
                obligations::memo.eq(memo),
                obligations::status.eq("proposed"),
                obligations::created_at_us.eq(scrip_http::now_us()),
            ))
            .returning(obligations::id)
            .get_result(&mut *conn)
            .map_err(scrip_ledger::LedgerError::from)?;
        let row =
            load(&mut conn, id)?.ok_or_else(|| ApiError::Internal("obligation vanished".into()))?;
        view(&mut conn, row)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
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
        let row = load(&mut conn, id)?.ok_or_else(not_found)?;
        let (debtor, creditor) = (
            scrip_domain::PrincipalId::new(row.1),
            scrip_domain::PrincipalId::new(row.2),
        );
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
        let now = scrip_http::now_us();
        let open = || {
            obligations::table
                .find(id)
                .filter(obligations::status.eq("proposed"))
                .filter(obligations::closed.is_null())
        };
        // The changed row comes back with the update; none when it was no longer open.
        let changed: Option<Row> = match decision {
            Decision::Accept => diesel::update(open())
                .set((
                    obligations::status.eq("accepted"),
                    obligations::accepted_at_us.eq(Some(now)),
                ))
                .returning(columns())
                .get_result(&mut *conn),
            Decision::Reject | Decision::Withdraw => {
                let closed = if decision.by_debtor() {
                    "rejected"
                } else {
                    "withdrawn"
                };
                diesel::update(open())
                    .set((
                        obligations::closed.eq(Some(closed)),
                        obligations::closed_at_us.eq(Some(now)),
                    ))
                    .returning(columns())
                    .get_result(&mut *conn)
            }
        }
        .optional()
        .map_err(scrip_ledger::LedgerError::from)?;
        let Some(row) = changed else {
            // Not open any more: say why.
            let row = load(&mut conn, id)?
                .ok_or_else(|| ApiError::Internal("obligation vanished".into()))?;
            return Err(match &row.9 {
                Some(closed) => {
                    ApiError::conflict("obligation_closed", format!("the obligation was {closed}"))
                }
                None => {
                    ApiError::conflict("already_accepted", "the obligation was already accepted")
                }
            });
        };
        view(&mut conn, row)
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
    if status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(ApiError::unprocessable(
            "bad_status",
            "status is proposed, accepted, rejected or withdrawn",
        ));
    }
    let list = blocking(move || {
        let mut conn = ledger.conn()?;
        let mut mine = Vec::new();
        for (handle, _) in memberships_of(&mut conn, caller.id)? {
            mine.push(principal_by_handle(&mut conn, &handle)?.id.get());
        }
        let mut query = obligations::table
            .filter(
                obligations::debtor_id
                    .eq_any(mine.clone())
                    .or(obligations::creditor_id.eq_any(mine)),
            )
            .order(obligations::id.desc())
            .limit(limit + 1)
            .select(columns())
            .into_boxed();
        query = match status.as_deref() {
            None => query,
            Some("proposed") => query
                .filter(obligations::status.eq("proposed"))
                .filter(obligations::closed.is_null()),
            Some("accepted") => query.filter(obligations::status.eq("accepted")),
            Some(closed) => query.filter(obligations::closed.eq(closed.to_owned())),
        };
        if let Some(before) = before {
            query = query.filter(obligations::id.lt(before));
        }
        let rows: Vec<Row> = query
            .load(&mut *conn)
            .map_err(scrip_ledger::LedgerError::from)?;
        let page = Page::from_overfetch(rows, limit, |row| row.0);
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
