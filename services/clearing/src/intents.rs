//! Standing swap intents: a person offers to give up to an amount of one currency for another
//! at par; clearing runs settle cycles of such intents as ring trades ([`crate::rings`]).
//! `POST /clearing/intents`, `GET /clearing/intents` (the caller's), `DELETE .../{id}`.

use std::collections::HashMap;

use actix_web::{HttpResponse, delete, get, post, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_domain::{Amount, PrincipalKind};
use scrip_http::{ApiError, Problem, blocking, now_us, rfc3339_from_us};
use scrip_ledger::{Currency, Ledger, LedgerError};
use scrip_store::DbConn;
use scrip_store::schema::{clearing_intent_fills, clearing_intents, clearing_runs};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Open intents one holder may have at once.
pub const MAX_OPEN_INTENTS: i64 = 20;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIntent {
    /// The currency offered.
    pub give: String,
    /// The currency wanted in return, at par (valued in the same unit).
    pub want: String,
    /// The most of `give` to part with, over every run.
    pub max_amount: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentView {
    pub id: String,
    pub give: String,
    pub want: String,
    pub max_amount: String,
    /// What is left to give.
    pub remaining: String,
    /// Received so far, in `want`, by applied clearing runs.
    pub received: String,
    /// `open`, `filled` or `cancelled`.
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentList {
    pub items: Vec<IntentView>,
}

type IntentRow = (i64, i64, i64, i64, i64, String, i64);

/// The currencies `ids` (repeats read once).
fn currencies_of(
    conn: &mut DbConn,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, Currency>, LedgerError> {
    let mut currencies = HashMap::new();
    for id in ids {
        if let std::collections::hash_map::Entry::Vacant(slot) = currencies.entry(id) {
            slot.insert(scrip_ledger::currency_by_id(
                conn,
                scrip_domain::CurrencyId::new(id),
            )?);
        }
    }
    Ok(currencies)
}

/// The caller's intents `rows` as the API shows them, with what applied runs gave them.
fn views(conn: &mut DbConn, rows: Vec<IntentRow>) -> Result<Vec<IntentView>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let received: HashMap<i64, i64> = clearing_intent_fills::table
        .inner_join(clearing_runs::table)
        .filter(clearing_intent_fills::intent_id.eq_any(&ids))
        .filter(clearing_runs::dry_run.eq(0))
        .select((
            clearing_intent_fills::intent_id,
            clearing_intent_fills::received_atoms,
        ))
        .load::<(i64, i64)>(conn)
        .map_err(LedgerError::from)?
        .into_iter()
        .fold(HashMap::new(), |mut sums, (id, atoms)| {
            *sums.entry(id).or_default() += atoms;
            sums
        });
    let currencies = currencies_of(conn, rows.iter().flat_map(|r| [r.1, r.2]))?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, give, want, max, remaining, status, created_at_us) in rows {
        let (g, w) = (&currencies[&give], &currencies[&want]);
        out.push(IntentView {
            id: id.to_string(),
            give: g.code.to_string(),
            want: w.code.to_string(),
            max_amount: Amount::from_atoms(max, g.scale).to_string(),
            remaining: Amount::from_atoms(remaining, g.scale).to_string(),
            received: Amount::from_atoms(received.get(&id).copied().unwrap_or(0), w.scale)
                .to_string(),
            status,
            created_at: rfc3339_from_us(created_at_us),
        });
    }
    Ok(out)
}

fn load(conn: &mut DbConn, holder: i64, only: Option<i64>) -> Result<Vec<IntentRow>, LedgerError> {
    let mut query = clearing_intents::table
        .filter(clearing_intents::holder_id.eq(holder))
        .order(clearing_intents::id.desc())
        .limit(100)
        .select((
            clearing_intents::id,
            clearing_intents::give_currency_id,
            clearing_intents::want_currency_id,
            clearing_intents::max_atoms,
            clearing_intents::remaining_atoms,
            clearing_intents::status,
            clearing_intents::created_at_us,
        ))
        .into_boxed();
    if let Some(id) = only {
        query = query.filter(clearing_intents::id.eq(id));
    }
    Ok(query.load(conn)?)
}

#[utoipa::path(
    post, path = "/api/v1/clearing/intents", tag = "clearing", request_body = NewIntent,
    security(("bearer" = [])),
    responses(
        (status = 201, body = IntentView),
        (status = 403, body = Problem, description = "not_a_person: a business's holdings are cleared as its debts already"),
        (status = 409, body = Problem, description = "too_many_intents (20 open)"),
        (status = 422, body = Problem, description = "invalid_request under `give`, `want` (unknown, the same, another unit) or `max_amount`"),
    )
)]
#[post("/api/v1/clearing/intents")]
pub async fn create_intent(
    caller: Caller,
    body: scrip_http::Json<NewIntent>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let me = scrip_ledger::principal_by_id(&mut conn, caller.id)?;
        if me.kind != PrincipalKind::User {
            return Err(ApiError::forbidden(
                "not_a_person",
                "swap intents are for people; a business's holdings are cleared as its debts",
            ));
        }
        let give = crate::store::currency_named(&mut conn, &body.give, "give")??;
        let want = crate::store::currency_named(&mut conn, &body.want, "want")??;
        if give.id == want.id {
            return Err(ApiError::invalid_field(
                "want",
                "want another currency than the one given",
            ));
        }
        if give.unit != want.unit {
            return Err(ApiError::invalid_field(
                "want",
                format!(
                    "{} is valued in {}, {} in {}: a swap at par needs one unit",
                    give.code, give.unit, want.code, want.unit
                ),
            ));
        }
        let max = Amount::parse_positive(&body.max_amount, give.scale)
            .map_err(|e| ApiError::invalid_field("max_amount", e.to_string()))?;
        drop(conn);
        let id = ledger.write(|conn| {
            scrip_store::lock_row(conn, "principals", caller.id.get())?;
            let open: i64 = clearing_intents::table
                .filter(clearing_intents::holder_id.eq(caller.id.get()))
                .filter(clearing_intents::status.eq("open"))
                .count()
                .get_result(conn)?;
            if open >= MAX_OPEN_INTENTS {
                return Ok(None);
            }
            Ok(Some(
                diesel::insert_into(clearing_intents::table)
                    .values((
                        clearing_intents::holder_id.eq(caller.id.get()),
                        clearing_intents::give_currency_id.eq(give.id.get()),
                        clearing_intents::want_currency_id.eq(want.id.get()),
                        clearing_intents::max_atoms.eq(max.atoms()),
                        clearing_intents::remaining_atoms.eq(max.atoms()),
                        clearing_intents::status.eq("open"),
                        clearing_intents::created_at_us.eq(now_us()),
                    ))
                    .returning(clearing_intents::id)
                    .get_result::<i64>(conn)?,
            ))
        })?;
        let Some(id) = id else {
            return Err(ApiError::conflict(
                "too_many_intents",
                format!("{MAX_OPEN_INTENTS} intents are open already: cancel one first"),
            ));
        };
        let mut conn = ledger.conn()?;
        let rows = load(&mut conn, caller.id.get(), Some(id))?;
        views(&mut conn, rows)?
            .pop()
            .ok_or_else(|| ApiError::Internal("a new intent vanished".into()))
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(
    get, path = "/api/v1/clearing/intents", tag = "clearing",
    security(("bearer" = [])),
    responses((status = 200, body = IntentList, description = "the caller's latest 100 intents, newest first"))
)]
#[get("/api/v1/clearing/intents")]
pub async fn list_intents(
    caller: Caller,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let items = blocking(move || {
        let mut conn = ledger.conn()?;
        let rows = load(&mut conn, caller.id.get(), None)?;
        views(&mut conn, rows)
    })
    .await?;
    Ok(HttpResponse::Ok().json(IntentList { items }))
}

#[utoipa::path(
    delete, path = "/api/v1/clearing/intents/{id}", tag = "clearing",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 200, body = IntentView, description = "status `cancelled`"),
        (status = 404, body = Problem, description = "not one of the caller's intents"),
        (status = 409, body = Problem, description = "intent_closed: filled or cancelled already"),
    )
)]
#[delete("/api/v1/clearing/intents/{id}")]
pub async fn cancel_intent(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("not_found", "no such intent");
    let id = path.parse::<i64>().map_err(|_| not_found())?;
    let view = blocking(move || {
        let changed = ledger.write(|conn| {
            Ok(diesel::update(
                clearing_intents::table
                    .find(id)
                    .filter(clearing_intents::holder_id.eq(caller.id.get()))
                    .filter(clearing_intents::status.eq("open")),
            )
            .set(clearing_intents::status.eq("cancelled"))
            .execute(conn)?)
        })?;
        let mut conn = ledger.conn()?;
        let rows = load(&mut conn, caller.id.get(), Some(id))?;
        let view = views(&mut conn, rows)?.pop().ok_or_else(not_found)?;
        if changed == 0 {
            return Err(ApiError::conflict(
                "intent_closed",
                format!("the intent is {} already", view.status),
            ));
        }
        Ok(view)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RingTradeView {
    pub holder: String,
    /// What the holder gave, in `give`.
    pub gave: String,
    pub give: String,
    /// What it received at par, in `want`.
    pub received: String,
    pub want: String,
}

/// The ring trades of run `run_id`, by intent.
pub fn ring_trades(conn: &mut DbConn, run_id: i64) -> Result<Vec<RingTradeView>, ApiError> {
    let fills: Vec<(i64, i64, i64, i64, i64, i64)> = clearing_intent_fills::table
        .inner_join(clearing_intents::table)
        .filter(clearing_intent_fills::run_id.eq(run_id))
        .order(clearing_intent_fills::intent_id)
        .select((
            clearing_intents::holder_id,
            clearing_intents::give_currency_id,
            clearing_intents::want_currency_id,
            clearing_intent_fills::gave_atoms,
            clearing_intent_fills::received_atoms,
            clearing_intent_fills::intent_id,
        ))
        .load(conn)
        .map_err(LedgerError::from)?;
    if fills.is_empty() {
        return Ok(Vec::new());
    }
    let names = scrip_ledger::handles(
        conn,
        fills.iter().map(|f| scrip_domain::PrincipalId::new(f.0)),
    )?;
    let currencies = currencies_of(conn, fills.iter().flat_map(|f| [f.1, f.2]))?;
    let mut out = Vec::with_capacity(fills.len());
    for (holder, give, want, gave, received, _) in fills {
        let (g, w) = (&currencies[&give], &currencies[&want]);
        out.push(RingTradeView {
            holder: names
                .get(&scrip_domain::PrincipalId::new(holder))
                .cloned()
                .unwrap_or_default(),
            gave: Amount::from_atoms(gave, g.scale).to_string(),
            give: g.code.to_string(),
            received: Amount::from_atoms(received, w.scale).to_string(),
            want: w.code.to_string(),
        });
    }
    Ok(out)
}
