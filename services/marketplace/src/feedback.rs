//! Feedback: once a deal is paid, each party rates the other once, 1 to 5 with a comment,
//! and may change it for 14 days. Never between principals with a common owner (no rating
//! one's own shop). `POST/PATCH /api/v1/deals/{id}/feedback`.

use std::collections::HashMap;

use actix_web::{HttpResponse, patch, post, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_domain::PrincipalId;
use scrip_http::{ApiError, Problem, blocking, now_us, rfc3339_from_us};
use scrip_ledger::{Ledger, LedgerError};
use scrip_store::DbConn;
use scrip_store::schema::{deal_feedback, principals};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::deals::{self, DealRow, related};

/// How long a rating may be changed after it was given.
pub const EDITABLE_FOR_US: i64 = 14 * 86_400 * 1_000_000;
const COMMENT_CHARS: usize = 1_000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFeedback {
    /// 1 (poor) to 5 (excellent).
    pub rating: i64,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackView {
    pub from: String,
    pub to: String,
    pub rating: i64,
    pub comment: Option<String>,
    pub created_at: String,
    /// Until when its author may change it.
    pub editable_until: String,
}

type FeedbackRow = (i64, i64, i64, i32, Option<String>, i64);

/// The feedback on `deals`, by deal, oldest first.
pub fn feedback_of(
    conn: &mut DbConn,
    deals: &[i64],
) -> Result<HashMap<i64, Vec<FeedbackView>>, LedgerError> {
    let rows: Vec<FeedbackRow> = deal_feedback::table
        .filter(deal_feedback::deal_id.eq_any(deals))
        .order((deal_feedback::deal_id, deal_feedback::created_at_us))
        .select((
            deal_feedback::deal_id,
            deal_feedback::from_id,
            deal_feedback::to_id,
            deal_feedback::rating,
            deal_feedback::comment,
            deal_feedback::created_at_us,
        ))
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().flat_map(|r| [r.1, r.2]).collect();
    let handles: HashMap<i64, String> = principals::table
        .filter(principals::id.eq_any(&ids))
        .select((principals::id, principals::handle))
        .load(conn)?
        .into_iter()
        .collect();
    let handle = |id: i64| handles.get(&id).cloned().unwrap_or_default();
    let mut out: HashMap<i64, Vec<FeedbackView>> = HashMap::new();
    for (deal, from, to, rating, comment, created_at_us) in rows {
        out.entry(deal).or_default().push(FeedbackView {
            from: handle(from),
            to: handle(to),
            rating: i64::from(rating),
            comment,
            created_at: rfc3339_from_us(created_at_us),
            editable_until: rfc3339_from_us(created_at_us + EDITABLE_FOR_US),
        });
    }
    Ok(out)
}

/// The rating and comment checked.
fn checked(body: &NewFeedback) -> Result<(i32, Option<String>), ApiError> {
    let rating = i32::try_from(body.rating)
        .ok()
        .filter(|r| (1..=5).contains(r))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "rating",
                format!(
                    "a rating is a whole number from 1 to 5, not {}",
                    body.rating
                ),
            )
        })?;
    let comment = match body.comment.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) if text.chars().count() > COMMENT_CHARS => {
            return Err(ApiError::invalid_field(
                "comment",
                format!("at most {COMMENT_CHARS} characters"),
            ));
        }
        Some(text)
            if text
                .chars()
                .any(|c| scrip_domain::is_invisible(c) && c != '\n') =>
        {
            return Err(ApiError::invalid_field(
                "comment",
                "no control or invisible characters (new lines are fine)",
            ));
        }
        Some(text) => Some(text.to_owned()),
    };
    Ok((rating, comment))
}

/// Which side of `deal` the caller rates from, and whom it rates: the party it is (or owns).
fn sides(conn: &mut DbConn, caller: PrincipalId, deal: &DealRow) -> Result<(i64, i64), ApiError> {
    let acts_for = |conn: &mut DbConn, party: i64| -> Result<bool, ApiError> {
        let party = PrincipalId::new(party);
        Ok(party == caller || scrip_auth::access::is_owner(conn, party, caller)?)
    };
    if acts_for(conn, deal.buyer_id)? {
        Ok((deal.buyer_id, deal.seller_id))
    } else if acts_for(conn, deal.seller_id)? {
        Ok((deal.seller_id, deal.buyer_id))
    } else {
        Err(deals::not_found())
    }
}

fn refuse_unrated(
    conn: &mut DbConn,
    deal: &DealRow,
    (from, to): (i64, i64),
) -> Result<(), ApiError> {
    if deal.status != "paid" {
        return Err(ApiError::unprocessable(
            "deal_unpaid",
            "feedback is for paid deals: this one is not paid yet",
        ));
    }
    if related(conn, PrincipalId::new(from), PrincipalId::new(to))? {
        return Err(ApiError::unprocessable(
            "related_parties",
            "these two share an owner: no one rates their own business",
        ));
    }
    Ok(())
}

#[utoipa::path(
    post, path = "/api/v1/deals/{id}/feedback", tag = "marketplace", request_body = NewFeedback,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 201, body = FeedbackView),
        (status = 404, body = Problem, description = "not_found (also a deal the caller is no party of)"),
        (status = 409, body = Problem, description = "feedback_given: once per party per deal (change it with PATCH)"),
        (status = 422, body = Problem, description = "deal_unpaid, related_parties; invalid_request under rating or comment"),
    )
)]
#[post("/api/v1/deals/{id}/feedback")]
pub async fn give_feedback(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<NewFeedback>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let deal = deals::for_party(&mut conn, caller.id, &path)?;
        let (from, to) = sides(&mut conn, caller.id, &deal)?;
        refuse_unrated(&mut conn, &deal, (from, to))?;
        let (rating, comment) = checked(&body)?;
        drop(conn);
        let now = now_us();
        let inserted = ledger.write(|conn| {
            let given: i64 = deal_feedback::table
                .filter(deal_feedback::deal_id.eq(deal.id))
                .filter(deal_feedback::from_id.eq(from))
                .count()
                .get_result(conn)?;
            if given > 0 {
                return Ok(false);
            }
            diesel::insert_into(deal_feedback::table)
                .values((
                    deal_feedback::deal_id.eq(deal.id),
                    deal_feedback::from_id.eq(from),
                    deal_feedback::to_id.eq(to),
                    deal_feedback::rating.eq(rating),
                    deal_feedback::comment.eq(&comment),
                    deal_feedback::created_at_us.eq(now),
                    deal_feedback::updated_at_us.eq(now),
                ))
                .execute(conn)?;
            Ok(true)
        });
        // Two concurrent first ratings: the primary key lets one in.
        let inserted = match inserted {
            Err(LedgerError::Store(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ))) => false,
            other => other?,
        };
        if !inserted {
            return Err(ApiError::conflict(
                "feedback_given",
                "you already rated this deal; change it with PATCH within 14 days",
            ));
        }
        let mut conn = ledger.conn()?;
        one(&mut conn, deal.id, from)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

fn one(conn: &mut DbConn, deal: i64, from: i64) -> Result<FeedbackView, ApiError> {
    let from_handle: String = principals::table
        .find(from)
        .select(principals::handle)
        .first(conn)
        .map_err(LedgerError::from)?;
    feedback_of(conn, &[deal])?
        .remove(&deal)
        .into_iter()
        .flatten()
        .find(|f| f.from == from_handle)
        .ok_or_else(|| ApiError::Internal("feedback vanished while shown".into()))
}

#[utoipa::path(
    patch, path = "/api/v1/deals/{id}/feedback", tag = "marketplace", request_body = NewFeedback,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 200, body = FeedbackView),
        (status = 404, body = Problem, description = "not_found: no such deal, or no rating of the caller's on it"),
        (status = 409, body = Problem, description = "feedback_locked: given more than 14 days ago"),
        (status = 422, body = Problem, description = "invalid_request under rating or comment"),
    )
)]
#[patch("/api/v1/deals/{id}/feedback")]
pub async fn change_feedback(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<NewFeedback>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let deal = deals::for_party(&mut conn, caller.id, &path)?;
        let (from, to) = sides(&mut conn, caller.id, &deal)?;
        // Becoming an owner of the business rated ends the right to change the rating.
        refuse_unrated(&mut conn, &deal, (from, to))?;
        let (rating, comment) = checked(&body)?;
        drop(conn);
        let now = now_us();
        let changed = ledger.write(|conn| {
            let target = deal_feedback::table.find((deal.id, from));
            let created: Option<i64> = target
                .select(deal_feedback::created_at_us)
                .first(conn)
                .optional()?;
            let Some(created) = created else {
                return Ok(None);
            };
            if now > created + EDITABLE_FOR_US {
                return Ok(Some(false));
            }
            diesel::update(target)
                .set((
                    deal_feedback::rating.eq(rating),
                    deal_feedback::comment.eq(&comment),
                    deal_feedback::updated_at_us.eq(now),
                ))
                .execute(conn)?;
            Ok(Some(true))
        })?;
        match changed {
            None => Err(ApiError::not_found(
                "not_found",
                "you have not rated this deal; rate it with POST",
            )),
            Some(false) => Err(ApiError::conflict(
                "feedback_locked",
                "a rating can be changed for 14 days after it was given; this one is final",
            )),
            Some(true) => {
                let mut conn = ledger.conn()?;
                one(&mut conn, deal.id, from)
            }
        }
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
