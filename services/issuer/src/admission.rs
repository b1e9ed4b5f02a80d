//! Admission to a currency that requires it: people apply, the stewards (the issuer's owners)
//! admit them, under the issuer's approval rule for `members`, or decline; and the public
//! directory of admitted members as a SHA-256 Merkle root with inclusion proofs anyone can
//! check (`scrip_governance::directory` documents the encoding).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_domain::{PrincipalId, RegistryId};
use scrip_governance::Action;
use scrip_governance::directory::{self, Hash};
use scrip_http::{ApiError, Page, PageQuery, Problem, blocking, now_us, rfc3339_from_us};
use scrip_ledger::{Currency, Ledger, Principal};
use scrip_store::DbConn;
use scrip_store::schema::{admission_applications, currency_members, principals};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::governance::{Asked, Done, StatusQuery, act_or_propose};
use crate::handlers::{find_currency, lock_business, require_owner};

/// Pending applications a currency keeps at once: nobody buries its stewards in them.
const MAX_PENDING_PER_CURRENCY: i64 = 1_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// What the applicant tells the stewards (at most 140 characters).
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    pub id: String,
    pub currency: String,
    pub applicant: String,
    pub message: Option<String>,
    /// `pending`, `admitted` or `declined`.
    pub status: String,
    pub created_at: String,
    pub decided_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationPage {
    pub items: Vec<ApplicationView>,
    pub next_cursor: Option<String>,
}

type ApplicationRow = (i64, i64, String, Option<String>, String, i64, Option<i64>);

fn application(conn: &mut DbConn, id: i64) -> Result<Option<ApplicationRow>, ApiError> {
    Ok(admission_applications::table
        .inner_join(principals::table.on(principals::id.eq(admission_applications::applicant_id)))
        .filter(admission_applications::id.eq(id))
        .select((
            admission_applications::id,
            admission_applications::currency_id,
            principals::handle,
            admission_applications::message,
            admission_applications::status,
            admission_applications::created_at_us,
            admission_applications::decided_at_us,
        ))
        .first(conn)
        .optional()?)
}

fn view(code: &str, row: ApplicationRow) -> ApplicationView {
    let (id, _, applicant, message, status, created_at_us, decided_at_us) = row;
    ApplicationView {
        id: id.to_string(),
        currency: code.to_owned(),
        applicant,
        message,
        status,
        created_at: rfc3339_from_us(created_at_us),
        decided_at: decided_at_us.map(rfc3339_from_us),
    }
}

#[utoipa::path(
    post, path = "/api/v1/currencies/{code}/applications", tag = "governance", request_body = NewApplication,
    security(("bearer" = [])), params(("code" = String, Path)),
    responses(
        (status = 201, body = ApplicationView, description = "pending: the stewards admit or decline it"),
        (status = 404, body = Problem, description = "not_found"),
        (status = 409, body = Problem, description = "already_member, already_applied, too_many_applications"),
        (status = 422, body = Problem, description = "admission_not_required, bad_memo"),
    )
)]
#[post("/api/v1/currencies/{code}/applications")]
pub async fn apply(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<NewApplication>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let message = scrip_http::memo(body.message.as_deref())?;
    let created = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        if !currency.policies.requires_admission {
            return Err(ApiError::unprocessable(
                "admission_not_required",
                format!(
                    "anyone may hold {}: there is nothing to apply for",
                    currency.code
                ),
            ));
        }
        scrip_store::write_transaction(&mut conn, |conn| {
            scrip_store::lock_row(conn, "currencies", currency.id.get())?;
            check_may_apply(conn, &currency, caller.id)?;
            let id: i64 = diesel::insert_into(admission_applications::table)
                .values((
                    admission_applications::currency_id.eq(currency.id.get()),
                    admission_applications::applicant_id.eq(caller.id.get()),
                    admission_applications::message.eq(&message),
                    admission_applications::status.eq("pending"),
                    admission_applications::created_at_us.eq(now_us()),
                ))
                .returning(admission_applications::id)
                .get_result(conn)?;
            let row = application(conn, id)?.ok_or_else(|| ApiError::Internal("lost".into()))?;
            Ok(view(currency.code.as_str(), row))
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

fn check_may_apply(
    conn: &mut DbConn,
    currency: &Currency,
    applicant: PrincipalId,
) -> Result<(), ApiError> {
    if applicant == currency.issuer_id || scrip_ledger::is_member(conn, currency.id, applicant)? {
        return Err(ApiError::conflict(
            "already_member",
            format!("you may already hold {}", currency.code),
        ));
    }
    let pending = |conn: &mut DbConn, only_applicant: bool| -> Result<i64, ApiError> {
        let mut query = admission_applications::table
            .filter(admission_applications::currency_id.eq(currency.id.get()))
            .filter(admission_applications::status.eq("pending"))
            .into_boxed();
        if only_applicant {
            query = query.filter(admission_applications::applicant_id.eq(applicant.get()));
        }
        Ok(query.count().get_result(conn)?)
    };
    if pending(conn, true)? > 0 {
        return Err(ApiError::conflict(
            "already_applied",
            "your application is waiting for the stewards",
        ));
    }
    if pending(conn, false)? >= MAX_PENDING_PER_CURRENCY {
        return Err(ApiError::conflict(
            "too_many_applications",
            format!(
                "{} has {MAX_PENDING_PER_CURRENCY} applications waiting; try again later",
                currency.code
            ),
        ));
    }
    Ok(())
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}/applications", tag = "governance",
    security(("bearer" = [])), params(("code" = String, Path), StatusQuery),
    responses(
        (status = 200, body = ApplicationPage, description = "newest first"),
        (status = 403, body = Problem, description = "not_owner: stewards only"),
    )
)]
#[get("/api/v1/currencies/{code}/applications")]
pub async fn list_applications(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<StatusQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let paging = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let (limit, before) = (paging.limit()?, paging.before_id()?);
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        let issuer = scrip_ledger::principal_by_id(&mut conn, currency.issuer_id)?;
        require_owner(&mut conn, &issuer, &caller)?;
        let mut rows = admission_applications::table
            .inner_join(
                principals::table.on(principals::id.eq(admission_applications::applicant_id)),
            )
            .filter(admission_applications::currency_id.eq(currency.id.get()))
            .order(admission_applications::id.desc())
            .limit(limit + 1)
            .select((
                admission_applications::id,
                admission_applications::currency_id,
                principals::handle,
                admission_applications::message,
                admission_applications::status,
                admission_applications::created_at_us,
                admission_applications::decided_at_us,
            ))
            .into_boxed();
        if let Some(before) = before {
            rows = rows.filter(admission_applications::id.lt(before));
        }
        if let Some(status) = &query.status {
            rows = rows.filter(admission_applications::status.eq(status.clone()));
        }
        let rows: Vec<ApplicationRow> = rows.load(&mut conn)?;
        let page = Page::from_overfetch(rows, limit, |row| row.0);
        Ok(ApplicationPage {
            items: page
                .items
                .into_iter()
                .map(|row| view(currency.code.as_str(), row))
                .collect(),
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    post, path = "/api/v1/currencies/{code}/applications/{id}/admit", tag = "governance",
    security(("bearer" = [])), params(("code" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, body = ApplicationView, description = "admitted: the applicant may hold the currency and is in its directory"),
        (status = 202, body = scrip_governance::Proposed, description = "the issuer's approval rule guards members: a proposal"),
        (status = 403, body = Problem, description = "not_owner: stewards only"),
        (status = 404, body = Problem, description = "no such application"),
        (status = 409, body = Problem, description = "application_decided"),
    )
)]
#[post("/api/v1/currencies/{code}/applications/{id}/admit")]
pub async fn admit_application(
    caller: Caller,
    path: web::Path<(String, String)>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    decide(caller, path.into_inner(), true, ledger).await
}

#[utoipa::path(
    post, path = "/api/v1/currencies/{code}/applications/{id}/decline", tag = "governance",
    security(("bearer" = [])), params(("code" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, body = ApplicationView, description = "declined"),
        (status = 403, body = Problem, description = "not_owner: stewards only"),
        (status = 404, body = Problem, description = "no such application"),
        (status = 409, body = Problem, description = "application_decided"),
    )
)]
#[post("/api/v1/currencies/{code}/applications/{id}/decline")]
pub async fn decline_application(
    caller: Caller,
    path: web::Path<(String, String)>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    decide(caller, path.into_inner(), false, ledger).await
}

async fn decide(
    caller: Caller,
    (code, raw_id): (String, String),
    admit: bool,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let done = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &code)?;
        let issuer = scrip_ledger::principal_by_id(&mut conn, currency.issuer_id)?;
        require_owner(&mut conn, &issuer, &caller)?;
        let id = raw_id.parse::<i64>().map_err(|_| no_application())?;
        scrip_store::write_transaction(&mut conn, |conn| {
            lock_business(conn, &issuer)?;
            if !admit {
                return settle(conn, (&issuer, &currency), id, (false, caller.id)).map(Done::Now);
            }
            let pending = pending_applicant(conn, &currency, id)?;
            let gate = scrip_governance::gate(conn, issuer.id, Action::Members)?;
            act_or_propose(
                conn,
                (&issuer, caller.id),
                gate,
                || Asked {
                    action: Action::Members,
                    payload: serde_json::json!({"op": "admit", "currency": currency.code.to_string(), "application": id}),
                    summary: format!("admit {pending} to {}", currency.code),
                },
                |conn| settle(conn, (&issuer, &currency), id, (true, caller.id)),
            )
        })
    })
    .await?;
    Ok(done.respond(StatusCode::OK))
}

fn no_application() -> ApiError {
    ApiError::not_found("not_found", "no such application")
}

/// The applicant of a pending application of `currency`.
fn pending_applicant(conn: &mut DbConn, currency: &Currency, id: i64) -> Result<String, ApiError> {
    let row = application(conn, id)?.ok_or_else(no_application)?;
    if row.1 != currency.id.get() {
        return Err(no_application());
    }
    if row.4 != "pending" {
        return Err(ApiError::conflict(
            "application_decided",
            format!("this application was {} already", row.4),
        ));
    }
    Ok(row.2)
}

/// Admits or declines a pending application, and logs it; in the caller's transaction.
fn settle(
    conn: &mut DbConn,
    (issuer, currency): (&Principal, &Currency),
    id: i64,
    (admit, actor): (bool, PrincipalId),
) -> Result<ApplicationView, ApiError> {
    let applicant = pending_applicant(conn, currency, id)?;
    let status = if admit { "admitted" } else { "declined" };
    let applicant_id: i64 = admission_applications::table
        .find(id)
        .select(admission_applications::applicant_id)
        .first(conn)?;
    if admit {
        // The applicant asked: it pays the joining fee, if any, now (or is not admitted).
        let asked = (None, scrip_ledger::Joining::Asked);
        scrip_ledger::set_member(conn, currency, PrincipalId::new(applicant_id), asked)?;
    }
    diesel::update(
        admission_applications::table
            .filter(admission_applications::id.eq(id))
            .filter(admission_applications::status.eq("pending")),
    )
    .set((
        admission_applications::status.eq(status),
        admission_applications::decided_by.eq(actor.get()),
        admission_applications::decided_at_us.eq(now_us()),
    ))
    .execute(conn)?;
    let line = format!("{status} {applicant} to {}", currency.code);
    scrip_governance::log(conn, issuer.id, actor, ("member_admission", &line))?;
    let row = application(conn, id)?.ok_or_else(no_application)?;
    Ok(view(currency.code.as_str(), row))
}

/// Runs an approved admission.
pub(crate) fn execute_admission(
    conn: &mut DbConn,
    business: &Principal,
    asked: &serde_json::Value,
    actor: PrincipalId,
) -> Result<serde_json::Value, ApiError> {
    let code = asked
        .get("currency")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let id = asked
        .get("application")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_default();
    let currency = find_currency(conn, code)?;
    if currency.issuer_id != business.id {
        return Err(ApiError::Internal(
            "an admission to another issuer's currency".into(),
        ));
    }
    let view = settle(conn, (business, &currency), id, (true, actor))?;
    serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The admitted members' addresses, in directory order, and their leaves.
fn directory_leaves(
    conn: &mut DbConn,
    currency: &Currency,
    registry: &RegistryId,
) -> Result<(Vec<String>, Vec<Hash>), ApiError> {
    let handles: Vec<String> = currency_members::table
        .inner_join(principals::table.on(principals::id.eq(currency_members::principal_id)))
        .filter(currency_members::currency_id.eq(currency.id.get()))
        .select(principals::handle)
        .load(conn)?;
    let mut addresses: Vec<String> = handles
        .into_iter()
        .map(|handle| format!("{handle}@{registry}"))
        .collect();
    addresses.sort_unstable();
    let leaves = addresses
        .iter()
        .map(|address| directory::leaf_hash(currency.code.as_str(), address))
        .collect();
    Ok((addresses, leaves))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryView {
    pub currency: String,
    /// SHA-256 Merkle root of the admitted members (hex); see the encoding in the README.
    pub root: String,
    pub members: usize,
    pub as_of: String,
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}/directory", tag = "governance",
    params(("code" = String, Path)),
    responses((status = 200, body = DirectoryView, description = "public"), (status = 404, body = Problem))
)]
#[get("/api/v1/currencies/{code}/directory")]
pub async fn get_directory(
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        let (addresses, leaves) = directory_leaves(&mut conn, &currency, &registry)?;
        Ok(DirectoryView {
            currency: currency.code.to_string(),
            root: hex::encode(directory::root(&leaves)),
            members: addresses.len(),
            as_of: rfc3339_from_us(now_us()),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// The member's handle or address.
    pub member: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProofStep {
    /// `left` or `right`: where the sibling stands.
    pub side: String,
    pub hash: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProofView {
    pub currency: String,
    /// The member's address, as hashed into its leaf.
    pub member: String,
    pub leaf: String,
    /// From the leaf up.
    pub path: Vec<ProofStep>,
    pub root: String,
    pub members: usize,
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}/directory/proof", tag = "governance",
    params(("code" = String, Path), ProofQuery),
    responses(
        (status = 200, body = ProofView, description = "public: the path from the member's leaf to the root"),
        (status = 404, body = Problem, description = "not_found (currency), not_a_member"),
    )
)]
#[get("/api/v1/currencies/{code}/directory/proof")]
pub async fn get_proof(
    path: web::Path<String>,
    query: web::Query<ProofQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        let not_member = || {
            ApiError::not_found(
                "not_a_member",
                format!(
                    "{} is not in the directory of {}",
                    query.member, currency.code
                ),
            )
        };
        let handle = scrip_domain::Handle::parse_local(&query.member, &registry)
            .map_err(|_| not_member())?;
        let address = format!("{handle}@{}", registry.get_ref());
        let (addresses, leaves) = directory_leaves(&mut conn, &currency, &registry)?;
        let index = addresses
            .binary_search(&address)
            .map_err(|_| not_member())?;
        let path = directory::proof(&leaves, index).ok_or_else(not_member)?;
        Ok(ProofView {
            currency: currency.code.to_string(),
            member: address,
            leaf: hex::encode(leaves[index]),
            path: path
                .into_iter()
                .map(|(side, hash)| ProofStep {
                    side: side.as_str().to_owned(),
                    hash: hex::encode(hash),
                })
                .collect(),
            root: hex::encode(directory::root(&leaves)),
            members: addresses.len(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
