//! The public profile of a person or business: `GET /api/v1/principals/{handle}`.

use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;
use scrip_auth::guard::resolve;
use scrip_domain::RegistryId;
use scrip_http::{ApiError, Problem, blocking, rfc3339_from_us};
use scrip_ledger::{Ledger, LedgerError};
use scrip_store::schema::{deal_feedback, listings, principals};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::listings::{ListingRow, ListingView, views};
use crate::reputation::{self, Reputation};

/// Open listings and latest ratings shown on a profile.
const PROFILE_LISTINGS: i64 = 50;
const PROFILE_RATINGS: i64 = 20;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RatingView {
    pub from: String,
    pub rating: i64,
    pub comment: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileView {
    pub handle: String,
    /// `handle@registry`.
    pub address: String,
    /// `user` or `business`.
    pub kind: String,
    pub display_name: Option<String>,
    pub member_since: String,
    pub reputation: Reputation,
    /// The latest ratings received, newest first.
    pub ratings: Vec<RatingView>,
    /// Open listings, newest first.
    pub listings: Vec<ListingView>,
}

#[utoipa::path(
    get, path = "/api/v1/principals/{handle}", tag = "marketplace",
    params(("handle" = String, Path)),
    responses(
        (status = 200, body = ProfileView, description = "public: display name, open listings, reputation"),
        (status = 404, body = Problem, description = "unknown_account"),
    )
)]
#[get("/api/v1/principals/{handle}")]
pub async fn profile(
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let who = resolve(&mut conn, &path, &registry)?;
        if who.kind == scrip_domain::PrincipalKind::Registry {
            return Err(ApiError::not_found(
                "unknown_account",
                format!("no account holder named {:?}", path.as_str()),
            ));
        }
        let rows = listings::table
            .filter(listings::holder_id.eq(who.id.get()))
            .filter(listings::status.eq("open"))
            .order(listings::id.desc())
            .limit(PROFILE_LISTINGS)
            .select(ListingRow::as_select())
            .load(&mut conn)
            .map_err(LedgerError::from)?;
        let ratings = deal_feedback::table
            .inner_join(principals::table.on(principals::id.eq(deal_feedback::from_id)))
            .filter(deal_feedback::to_id.eq(who.id.get()))
            .order(deal_feedback::created_at_us.desc())
            .limit(PROFILE_RATINGS)
            .select((
                principals::handle,
                deal_feedback::rating,
                deal_feedback::comment,
                deal_feedback::created_at_us,
            ))
            .load::<(String, i32, Option<String>, i64)>(&mut conn)
            .map_err(LedgerError::from)?
            .into_iter()
            .map(|(from, rating, comment, at)| RatingView {
                from,
                rating: i64::from(rating),
                comment,
                created_at: rfc3339_from_us(at),
            })
            .collect();
        Ok(ProfileView {
            handle: who.handle.to_string(),
            address: who.handle.address(&registry).to_string(),
            kind: who.kind.as_str().to_owned(),
            display_name: who.display_name.clone(),
            member_since: rfc3339_from_us(who.created_at_us),
            reputation: reputation::of(&mut conn, who.id.get())?,
            ratings,
            listings: views(&mut conn, rows)?,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
