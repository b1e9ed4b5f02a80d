//! Listings: what a person or a business it owns offers or wants, with a price and the
//! currencies it takes. `POST/GET /api/v1/listings`, `GET/PATCH/DELETE /api/v1/listings/{id}`,
//! `GET /api/v1/listings/{id}/matches`.

use std::collections::HashMap;

use actix_web::{HttpResponse, delete, get, patch, post, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_auth::guard::{act_as, resolve};
use scrip_domain::{Amount, CurrencyId, PrincipalId, RegistryId};
use scrip_http::{ApiError, Problem, blocking, now_us, rfc3339_from_us};
use scrip_ledger::{Currency, Ledger, LedgerError};
use scrip_store::DbConn;
use scrip_store::schema::{listing_currencies, listings, principals};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::reputation::{self, Reputation};
use crate::search::{self, Combine, Filters};

/// Open listings one holder may have at once.
pub const MAX_OPEN_LISTINGS: i64 = 200;
/// Currencies a listing may take besides its price's.
pub const MAX_ACCEPTS: usize = 8;
const TITLE_CHARS: (usize, usize) = (3, 120);
const DESCRIPTION_CHARS: usize = 4_000;
const CATEGORY_CHARS: usize = 40;
const PLACE_CHARS: usize = 80;
/// Matches shown for one listing.
const MAX_MATCHES: i64 = 20;
/// Searches ranked at once in one process. Ranking reads every match, so a burst beyond this
/// would only queue behind the database pool; it is refused at once instead (503).
pub const MAX_SEARCHES_IN_FLIGHT: usize = 16;

/// The bound on searches running at once ([`MAX_SEARCHES_IN_FLIGHT`]), one per process.
#[derive(Debug, Clone)]
pub struct SearchGate(std::sync::Arc<tokio::sync::Semaphore>);

impl Default for SearchGate {
    fn default() -> Self {
        Self(std::sync::Arc::new(tokio::sync::Semaphore::new(
            MAX_SEARCHES_IN_FLIGHT,
        )))
    }
}

impl SearchGate {
    fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        std::sync::Arc::clone(&self.0)
            .try_acquire_owned()
            .map_err(|_| ApiError::Overloaded {
                detail: "too many searches are running right now; try again in a moment".into(),
                retry_after_s: 1,
            })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewListing {
    /// `offer` or `want`.
    pub kind: String,
    pub title: String,
    pub description: Option<String>,
    pub price: Option<PriceInput>,
    /// Other currencies taken (codes); the price's currency is always taken.
    pub accepts: Option<Vec<String>>,
    pub category: Option<String>,
    pub place: Option<String>,
    /// A business the caller owns, to list for it; default the caller.
    pub holder: Option<String>,
}

/// `PATCH`: each field given replaces the listing's; `price: null` removes the price.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListingChange {
    pub title: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "scrip_http::double_option")]
    #[schema(value_type = Option<PriceInput>)]
    pub price: Option<Option<PriceInput>>,
    pub accepts: Option<Vec<String>>,
    #[serde(default, deserialize_with = "scrip_http::double_option")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    #[serde(default, deserialize_with = "scrip_http::double_option")]
    #[schema(value_type = Option<String>)]
    pub place: Option<Option<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PriceView {
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListingView {
    pub id: String,
    /// `offer` or `want`.
    pub kind: String,
    /// Who offers or wants it (a person or a business).
    pub holder: String,
    pub holder_name: Option<String>,
    pub holder_reputation: Reputation,
    pub title: String,
    pub description: String,
    pub price: Option<PriceView>,
    /// Every currency taken: the price's first.
    pub accepts: Vec<String>,
    pub category: Option<String>,
    pub place: Option<String>,
    /// `open` or `withdrawn`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ListingPage {
    pub items: Vec<ListingView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListingQuery {
    /// Words to find in the title and description (each must match; the last as a prefix).
    pub q: Option<String>,
    /// `offer` or `want`.
    pub kind: Option<String>,
    pub category: Option<String>,
    /// Listings priced in or taking this currency.
    pub currency: Option<String>,
    /// One holder's listings.
    pub holder: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A listing as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = listings)]
pub struct ListingRow {
    pub id: i64,
    pub holder_id: i64,
    pub author_id: i64,
    pub kind: String,
    pub title: String,
    pub description: String,
    pub price_atoms: Option<i64>,
    pub price_currency_id: Option<i64>,
    pub category: Option<String>,
    pub place: Option<String>,
    pub status: String,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

impl ListingRow {
    /// Every currency the listing takes, the price's first.
    pub fn currencies(&self, conn: &mut DbConn) -> Result<Vec<CurrencyId>, LedgerError> {
        let others: Vec<i64> = listing_currencies::table
            .filter(listing_currencies::listing_id.eq(self.id))
            .order(listing_currencies::currency_id)
            .select(listing_currencies::currency_id)
            .load(conn)?;
        Ok(self.taking(others))
    }

    /// The price's currency, then `others` (the listing's other currencies, read already).
    fn taking(&self, others: Vec<i64>) -> Vec<CurrencyId> {
        let mut ids: Vec<i64> = self.price_currency_id.into_iter().collect();
        ids.extend(
            others
                .into_iter()
                .filter(|c| Some(*c) != self.price_currency_id),
        );
        ids.into_iter().map(CurrencyId::new).collect()
    }
}

pub fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such listing")
}

/// The listing `raw` (an id as the API shows it).
pub fn find(conn: &mut DbConn, raw: &str) -> Result<ListingRow, ApiError> {
    let id = raw.parse::<i64>().map_err(|_| not_found())?;
    listings::table
        .find(id)
        .select(ListingRow::as_select())
        .first(conn)
        .optional()
        .map_err(LedgerError::from)?
        .ok_or_else(not_found)
}

fn kind_named(raw: &str, field: &str) -> Result<&'static str, ApiError> {
    match raw {
        "offer" => Ok("offer"),
        "want" => Ok("want"),
        _ => Err(ApiError::invalid_field(
            field,
            format!("a listing is an \"offer\" or a \"want\", not {raw:?}"),
        )),
    }
}

/// `raw` trimmed, within `min..=max` characters, as `field`.
fn text(raw: &str, field: &str, (min, max): (usize, usize)) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars < min || chars > max {
        let what = if min > 0 {
            format!("{min} to {max} characters")
        } else {
            format!("at most {max} characters")
        };
        let detail = if chars == 0 {
            format!("write the {field}: {what}")
        } else {
            format!("the {field} takes {what}; this one has {chars}")
        };
        return Err(ApiError::invalid_field(field, detail));
    }
    let lines_allowed = field == "description";
    if trimmed
        .chars()
        .any(|c| scrip_domain::is_invisible(c) && !(lines_allowed && c == '\n'))
    {
        return Err(ApiError::invalid_field(
            field,
            if lines_allowed {
                "no control or invisible characters (new lines are fine)"
            } else {
                "one line, without control or invisible characters"
            },
        ));
    }
    Ok(trimmed.to_owned())
}

/// An optional short text: empty means none.
fn optional_text(raw: Option<&str>, field: &str, max: usize) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(given) => text(given, field, (1, max)).map(Some),
    }
}

/// A category as searched: lower case, trimmed.
fn category(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    Ok(optional_text(raw, "category", CATEGORY_CHARS)?.map(|c| c.to_lowercase()))
}

fn currency_named(conn: &mut DbConn, code: &str, field: &str) -> Result<Currency, ApiError> {
    scrip_auth::guard::currency(conn, code, "unknown_currency")
        .map_err(|_| ApiError::invalid_field(field, format!("no currency {code:?}")))
}

fn price(conn: &mut DbConn, raw: &PriceInput) -> Result<(Currency, Amount), ApiError> {
    let currency = currency_named(conn, &raw.currency, "price.currency")?;
    let amount = Amount::parse_positive(&raw.amount, currency.scale)
        .map_err(|e| ApiError::refused_field("bad_amount", "price.amount", e.to_string()))?;
    Ok((currency, amount))
}

fn accepts(conn: &mut DbConn, codes: &[String]) -> Result<Vec<CurrencyId>, ApiError> {
    if codes.len() > MAX_ACCEPTS {
        return Err(ApiError::invalid_field(
            "accepts",
            format!("at most {MAX_ACCEPTS} currencies"),
        ));
    }
    let mut ids = Vec::with_capacity(codes.len());
    for code in codes {
        let id = currency_named(conn, code, "accepts")?.id;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn set_accepts(conn: &mut DbConn, listing: i64, ids: &[CurrencyId]) -> Result<(), LedgerError> {
    diesel::delete(listing_currencies::table.filter(listing_currencies::listing_id.eq(listing)))
        .execute(conn)?;
    for id in ids {
        diesel::insert_into(listing_currencies::table)
            .values((
                listing_currencies::listing_id.eq(listing),
                listing_currencies::currency_id.eq(id.get()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Listings as the API shows them, in the order given.
pub fn views(conn: &mut DbConn, rows: Vec<ListingRow>) -> Result<Vec<ListingView>, ApiError> {
    let holder_ids: Vec<i64> = rows.iter().map(|r| r.holder_id).collect();
    let holders: HashMap<i64, (String, Option<String>)> = principals::table
        .filter(principals::id.eq_any(&holder_ids))
        .select((principals::id, principals::handle, principals::display_name))
        .load::<(i64, String, Option<String>)>(conn)
        .map_err(LedgerError::from)?
        .into_iter()
        .map(|(id, handle, name)| (id, (handle, name)))
        .collect();
    let reputations = reputation::of_many(conn, &holder_ids)?;
    let listing_ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut also_taken: HashMap<i64, Vec<i64>> = HashMap::new();
    for (listing, currency) in listing_currencies::table
        .filter(listing_currencies::listing_id.eq_any(&listing_ids))
        .order((
            listing_currencies::listing_id,
            listing_currencies::currency_id,
        ))
        .select((
            listing_currencies::listing_id,
            listing_currencies::currency_id,
        ))
        .load::<(i64, i64)>(conn)
        .map_err(LedgerError::from)?
    {
        also_taken.entry(listing).or_default().push(currency);
    }
    let mut currencies: HashMap<CurrencyId, Currency> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let taken = row.taking(also_taken.remove(&row.id).unwrap_or_default());
        for id in &taken {
            if let std::collections::hash_map::Entry::Vacant(slot) = currencies.entry(*id) {
                slot.insert(scrip_ledger::currency_by_id(conn, *id)?);
            }
        }
        let price = match (row.price_atoms, row.price_currency_id) {
            (Some(atoms), Some(id)) => {
                let c = &currencies[&CurrencyId::new(id)];
                Some(PriceView {
                    amount: Amount::from_atoms(atoms, c.scale).to_string(),
                    currency: c.code.to_string(),
                })
            }
            _ => None,
        };
        let (holder, holder_name) = holders.get(&row.holder_id).cloned().unwrap_or_default();
        out.push(ListingView {
            id: row.id.to_string(),
            kind: row.kind,
            holder,
            holder_name,
            holder_reputation: reputations.get(&row.holder_id).cloned().unwrap_or_default(),
            title: row.title,
            description: row.description,
            price,
            accepts: taken
                .iter()
                .map(|id| currencies[id].code.to_string())
                .collect(),
            category: row.category,
            place: row.place,
            status: row.status,
            created_at: rfc3339_from_us(row.created_at_us),
            updated_at: rfc3339_from_us(row.updated_at_us),
        });
    }
    Ok(out)
}

/// The listing `id` as it is now, read after a change was committed.
fn view_of(ledger: &Ledger, id: i64) -> Result<ListingView, ApiError> {
    let mut conn = ledger.conn()?;
    let row = find(&mut conn, &id.to_string())?;
    one_view(&mut conn, row)
}

fn one_view(conn: &mut DbConn, row: ListingRow) -> Result<ListingView, ApiError> {
    views(conn, vec![row])?
        .pop()
        .ok_or_else(|| ApiError::Internal("a listing vanished while shown".into()))
}

/// The listing `id` for a change by the caller: its holder, or an owner of the business that
/// holds it. Others get 404, as if it did not exist.
fn own_listing(conn: &mut DbConn, caller: &Caller, raw: &str) -> Result<ListingRow, ApiError> {
    let row = find(conn, raw)?;
    let holder = PrincipalId::new(row.holder_id);
    if holder != caller.id && !scrip_auth::access::is_owner(conn, holder, caller.id)? {
        return Err(not_found());
    }
    Ok(row)
}

#[utoipa::path(
    post, path = "/api/v1/listings", tag = "marketplace", request_body = NewListing,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ListingView),
        (status = 403, body = Problem, description = "not_owner: `holder` is a business the caller does not own"),
        (status = 409, body = Problem, description = "too_many_listings (200 open per holder)"),
        (status = 422, body = Problem, description = "invalid_request under the field concerned: kind, title (3 to 120 characters), description, price.amount, price.currency, accepts, category, place"),
    )
)]
#[post("/api/v1/listings")]
pub async fn create_listing(
    caller: Caller,
    body: scrip_http::Json<NewListing>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let kind = kind_named(&body.kind, "kind")?;
        let title = text(&body.title, "title", TITLE_CHARS)?;
        let description = text(
            body.description.as_deref().unwrap_or(""),
            "description",
            (0, DESCRIPTION_CHARS),
        )?;
        let price = body.price.as_ref().map(|p| price(&mut conn, p)).transpose()?;
        let accepts = accepts(&mut conn, body.accepts.as_deref().unwrap_or(&[]))?;
        let category = category(body.category.as_deref())?;
        let place = optional_text(body.place.as_deref(), "place", PLACE_CHARS)?;
        let holder = act_as(&mut conn, &caller, body.holder.as_deref(), &registry)?;
        scrip_ledger::rules::may_be_paid(holder.kind)?;
        drop(conn);
        let now = now_us();
        let id = ledger.write(|conn| {
            scrip_store::lock_row(conn, "principals", holder.id.get())?;
            let open: i64 = listings::table
                .filter(listings::holder_id.eq(holder.id.get()))
                .filter(listings::status.eq("open"))
                .count()
                .get_result(conn)?;
            if open >= MAX_OPEN_LISTINGS {
                return Ok(None);
            }
            let id: i64 = diesel::insert_into(listings::table)
                .values((
                    listings::holder_id.eq(holder.id.get()),
                    listings::author_id.eq(caller.id.get()),
                    listings::kind.eq(kind),
                    listings::title.eq(&title),
                    listings::description.eq(&description),
                    listings::price_atoms.eq(price.as_ref().map(|(_, a)| a.atoms())),
                    listings::price_currency_id.eq(price.as_ref().map(|(c, _)| c.id.get())),
                    listings::category.eq(&category),
                    listings::place.eq(&place),
                    listings::status.eq("open"),
                    listings::created_at_us.eq(now),
                    listings::updated_at_us.eq(now),
                ))
                .returning(listings::id)
                .get_result(conn)?;
            set_accepts(conn, id, &accepts)?;
            Ok(Some(id))
        })?;
        let Some(id) = id else {
            return Err(ApiError::conflict(
                "too_many_listings",
                format!(
                    "{} has {MAX_OPEN_LISTINGS} open listings, the most one holder may; withdraw one first",
                    holder.handle
                ),
            ));
        };
        view_of(&ledger, id)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// An offset into ranked results, as an opaque cursor.
fn rank_cursor(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw {
        None => Ok(0),
        Some(c) => c
            .strip_prefix("r")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                ApiError::unprocessable("bad_cursor", "the cursor is not one this API gave out")
            }),
    }
}

#[utoipa::path(
    get, path = "/api/v1/listings", tag = "marketplace",
    params(ListingQuery),
    responses(
        (status = 200, body = ListingPage, description = "open listings: with `q`, best match first (ties newest first); without, newest first"),
        (status = 422, body = Problem, description = "invalid_request under q, kind, currency or holder; bad_limit, bad_cursor"),
        (status = 503, body = Problem, description = "overloaded: 16 searches run at once per process; Retry-After says when to try again"),
    )
)]
#[get("/api/v1/listings")]
pub async fn search_listings(
    query: web::Query<ListingQuery>,
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    gate: web::Data<SearchGate>,
) -> Result<HttpResponse, ApiError> {
    let permit = gate.admit()?;
    let query = query.into_inner();
    let paging = scrip_http::PageQuery {
        limit: query.limit,
        cursor: None,
    };
    let limit = paging.limit()?;
    let page = blocking(move || {
        let _permit = permit;
        let mut conn = ledger.conn()?;
        let mut filters = Filters {
            kind: query
                .kind
                .as_deref()
                .map(|k| kind_named(k, "kind"))
                .transpose()?,
            category: category(query.category.as_deref())?,
            ..Filters::default()
        };
        if let Some(code) = &query.currency {
            filters.currency_id = Some(currency_named(&mut conn, code, "currency")?.id.get());
        }
        if let Some(raw) = &query.holder {
            let holder = resolve(&mut conn, raw, &registry)
                .map_err(|_| ApiError::invalid_field("holder", format!("no one named {raw:?}")))?;
            filters.holder_id = Some(holder.id.get());
        }
        let words = query.q.as_deref().map(search::words).unwrap_or_default();
        if query.q.as_deref().is_some_and(|q| !q.trim().is_empty()) && words.is_empty() {
            return Err(ApiError::invalid_field("q", "search for at least one word"));
        }
        let (rows, next_cursor) = if words.is_empty() {
            newest(&mut conn, &filters, limit, query.cursor.as_deref())?
        } else {
            let offset = rank_cursor(query.cursor.as_deref())?;
            let mut ids =
                search::search_ids(&mut conn, &words, Combine::All, &filters, limit + 1, offset)
                    .map_err(LedgerError::from)?;
            let more = ids.len() as i64 > limit;
            ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            let next = more.then(|| format!("r{}", offset + limit));
            (load_in_order(&mut conn, &ids)?, next)
        };
        Ok(ListingPage {
            items: views(&mut conn, rows)?,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Open listings newest first, after the cursor's id.
fn newest(
    conn: &mut DbConn,
    filters: &Filters,
    limit: i64,
    cursor: Option<&str>,
) -> Result<(Vec<ListingRow>, Option<String>), ApiError> {
    let before = scrip_http::PageQuery {
        limit: None,
        cursor: cursor.map(str::to_owned),
    }
    .before_id()?;
    let mut q = listings::table
        .filter(listings::status.eq("open"))
        .order(listings::id.desc())
        .limit(limit + 1)
        .select(ListingRow::as_select())
        .into_boxed();
    if let Some(id) = before {
        q = q.filter(listings::id.lt(id));
    }
    if let Some(kind) = filters.kind {
        q = q.filter(listings::kind.eq(kind));
    }
    if let Some(category) = &filters.category {
        q = q.filter(listings::category.eq(category.clone()));
    }
    if let Some(holder) = filters.holder_id {
        q = q.filter(listings::holder_id.eq(holder));
    }
    if let Some(currency) = filters.currency_id {
        let accepting = listing_currencies::table
            .filter(listing_currencies::currency_id.eq(currency))
            .select(listing_currencies::listing_id);
        q = q.filter(
            listings::price_currency_id
                .eq(currency)
                .or(listings::id.eq_any(accepting)),
        );
    }
    let rows = q.load(conn).map_err(LedgerError::from)?;
    let page = scrip_http::Page::from_overfetch(rows, limit, |r| r.id);
    Ok((page.items, page.next_cursor))
}

fn load_in_order(conn: &mut DbConn, ids: &[i64]) -> Result<Vec<ListingRow>, ApiError> {
    let mut rows: HashMap<i64, ListingRow> = listings::table
        .filter(listings::id.eq_any(ids))
        .select(ListingRow::as_select())
        .load(conn)
        .map_err(LedgerError::from)?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    Ok(ids.iter().filter_map(|id| rows.remove(id)).collect())
}

#[utoipa::path(
    get, path = "/api/v1/listings/{id}", tag = "marketplace",
    params(("id" = String, Path)),
    responses((status = 200, body = ListingView), (status = 404, body = Problem, description = "not_found"))
)]
#[get("/api/v1/listings/{id}")]
pub async fn get_listing(
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let row = find(&mut conn, &path)?;
        one_view(&mut conn, row)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    patch, path = "/api/v1/listings/{id}", tag = "marketplace", request_body = ListingChange,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 200, body = ListingView),
        (status = 404, body = Problem, description = "not_found (also another's listing)"),
        (status = 409, body = Problem, description = "listing_withdrawn"),
        (status = 422, body = Problem, description = "invalid_request under the field concerned"),
    )
)]
#[patch("/api/v1/listings/{id}")]
pub async fn update_listing(
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<ListingChange>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let row = own_listing(&mut conn, &caller, &path)?;
        if row.status != "open" {
            return Err(ApiError::conflict(
                "listing_withdrawn",
                "this listing was withdrawn; post a new one",
            ));
        }
        let title = body
            .title
            .as_deref()
            .map(|t| text(t, "title", TITLE_CHARS))
            .transpose()?;
        let description = body
            .description
            .as_deref()
            .map(|d| text(d, "description", (0, DESCRIPTION_CHARS)))
            .transpose()?;
        let price = match &body.price {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => Some(Some(price(&mut conn, p)?)),
        };
        let accepts = body
            .accepts
            .as_deref()
            .map(|a| accepts(&mut conn, a))
            .transpose()?;
        let category = body
            .category
            .as_ref()
            .map(|c| category(c.as_deref()))
            .transpose()?;
        let place = body
            .place
            .as_ref()
            .map(|p| optional_text(p.as_deref(), "place", PLACE_CHARS))
            .transpose()?;
        drop(conn);
        ledger.write(|conn| {
            let target = listings::table.find(row.id);
            if let Some(title) = &title {
                diesel::update(target)
                    .set(listings::title.eq(title))
                    .execute(conn)?;
            }
            if let Some(description) = &description {
                diesel::update(target)
                    .set(listings::description.eq(description))
                    .execute(conn)?;
            }
            if let Some(price) = &price {
                diesel::update(target)
                    .set((
                        listings::price_atoms.eq(price.as_ref().map(|(_, a)| a.atoms())),
                        listings::price_currency_id.eq(price.as_ref().map(|(c, _)| c.id.get())),
                    ))
                    .execute(conn)?;
            }
            if let Some(category) = &category {
                diesel::update(target)
                    .set(listings::category.eq(category))
                    .execute(conn)?;
            }
            if let Some(place) = &place {
                diesel::update(target)
                    .set(listings::place.eq(place))
                    .execute(conn)?;
            }
            if let Some(accepts) = &accepts {
                set_accepts(conn, row.id, accepts)?;
            }
            diesel::update(target)
                .set(listings::updated_at_us.eq(now_us()))
                .execute(conn)?;
            Ok(())
        })?;
        view_of(&ledger, row.id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    delete, path = "/api/v1/listings/{id}", tag = "marketplace",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 200, body = ListingView, description = "withdrawn: no longer found or dealt; its deals stay"),
        (status = 404, body = Problem, description = "not_found (also another's listing)"),
    )
)]
#[delete("/api/v1/listings/{id}")]
pub async fn withdraw_listing(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let row = own_listing(&mut conn, &caller, &path)?;
        drop(conn);
        ledger.write(|conn| {
            diesel::update(listings::table.find(row.id))
                .set((
                    listings::status.eq("withdrawn"),
                    listings::updated_at_us.eq(now_us()),
                ))
                .execute(conn)?;
            Ok(())
        })?;
        view_of(&ledger, row.id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    get, path = "/api/v1/listings/{id}/matches", tag = "marketplace",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = ListingPage, description = "open listings of the other kind sharing a word of this one's title, best first; never the same holder's"),
        (status = 404, body = Problem, description = "not_found"),
    )
)]
#[get("/api/v1/listings/{id}/matches")]
pub async fn listing_matches(
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let row = find(&mut conn, &path)?;
        // Short words ("a", "of") would match nearly everything.
        let words: Vec<String> = search::words(&row.title)
            .into_iter()
            .filter(|w| w.chars().count() >= 3)
            .collect();
        if words.is_empty() {
            return Ok(ListingPage {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let filters = Filters {
            kind: Some(if row.kind == "offer" { "want" } else { "offer" }),
            not_holder_id: Some(row.holder_id),
            ..Filters::default()
        };
        let ids = search::search_ids(&mut conn, &words, Combine::Any, &filters, MAX_MATCHES, 0)
            .map_err(LedgerError::from)?;
        let rows = load_in_order(&mut conn, &ids)?;
        Ok(ListingPage {
            items: views(&mut conn, rows)?,
            next_cursor: None,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_past_the_bound_are_refused_at_once_and_a_finished_one_frees_its_place() {
        let gate = SearchGate::default();
        let running: Vec<_> = (0..MAX_SEARCHES_IN_FLIGHT)
            .map(|_| gate.admit().expect("within the bound"))
            .collect();
        let refused = gate.admit().expect_err("one too many");
        assert_eq!(refused.code(), "overloaded");
        drop(running);
        assert!(gate.admit().is_ok());
    }
}
