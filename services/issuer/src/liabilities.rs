//! What a customer should see before holding a currency: the issuer's health (how much it
//! owes against its limit, how fast it issues and redeems, how concentrated its holders are,
//! whether clearing sets its debts off), and the published root of its liabilities, so any
//! holder can prove its balance is counted (`scrip_proofs`). All public.

use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;
use scrip_domain::Amount;
use scrip_http::{ApiError, PageQuery, Problem, blocking, now_us, rfc3339_from_us};
use scrip_ledger::{Currency, Ledger, LedgerError};
use scrip_proofs::Liabilities;
use scrip_store::DbConn;
use scrip_store::schema::{accounts, clearing_opt_outs, clearing_runs, clearing_settlements};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::handlers::find_currency;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiabilitiesView {
    pub currency: String,
    /// SHA-256 Merkle-sum root over every positive balance (hex); the encoding is the README's.
    pub root: String,
    /// The sum the root commits to: what the holders are owed.
    pub total: String,
    pub holders: usize,
    pub as_of: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RootView {
    pub root: String,
    pub total: String,
    pub holders: i64,
    pub as_of: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RootPage {
    pub items: Vec<RootView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthView {
    pub currency: String,
    /// What the holders are owed now.
    pub outstanding: String,
    pub credit_limit: String,
    /// A backed currency's: the most its reserve lets be outstanding now.
    pub reserve_backs: Option<String>,
    /// Outstanding as a share of what may be outstanding (the credit limit, or for a backed
    /// currency the smaller of it and what the reserve backs), in basis points; `null` when
    /// nothing may be.
    pub utilisation_bps: Option<i64>,
    /// Paid out of the issuer's account in the last 30 days.
    pub issued_30d: String,
    /// Paid back into it (redeemed, and set off by clearing) in the last 30 days.
    pub redeemed_30d: String,
    pub holders: usize,
    /// The largest holder's share of the outstanding, in basis points.
    pub largest_holder_bps: i64,
    /// Whether clearing may set the issuer's debts off.
    pub clearing_enabled: bool,
    pub last_cleared_at: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}/liabilities", tag = "issuer",
    params(("code" = String, Path)),
    responses((status = 200, body = LiabilitiesView, description = "public; the root is recorded with its time (see .../liabilities/roots)"), (status = 404, body = Problem))
)]
#[get("/api/v1/currencies/{code}/liabilities")]
pub async fn get_liabilities(
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    liabilities: web::Data<Liabilities>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let currency = find_currency(&mut *ledger.conn()?, &path)?;
        let snapshot = liabilities.current(&currency)?;
        Ok(LiabilitiesView {
            currency: currency.code.to_string(),
            root: hex::encode(snapshot.root.hash),
            total: Amount::from_atoms(snapshot.total_atoms(), currency.scale).to_string(),
            holders: snapshot.holders(),
            as_of: rfc3339_from_us(snapshot.as_of_us),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}/liabilities/roots", tag = "issuer",
    params(("code" = String, Path), PageQuery),
    responses((status = 200, body = RootPage, description = "public: every root published, newest first, so a proof kept from an earlier day can be checked"), (status = 404, body = Problem))
)]
#[get("/api/v1/currencies/{code}/liabilities/roots")]
pub async fn list_roots(
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let before = query.before_id()?;
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = find_currency(&mut conn, &path)?;
        let roots = scrip_proofs::roots(&mut conn, currency.id, before, limit + 1)?;
        let page = scrip_http::Page::from_overfetch(roots, limit, |r| r.id);
        Ok(RootPage {
            items: page
                .items
                .into_iter()
                .map(|r| RootView {
                    root: r.root,
                    total: Amount::from_atoms(r.total_atoms, currency.scale).to_string(),
                    holders: r.holders,
                    as_of: rfc3339_from_us(r.as_of_us),
                })
                .collect(),
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

const DAY_US: i64 = 86_400_000_000;

/// What left and what came back into the issuer's account since `since_us`, in atoms.
fn issued_and_redeemed(
    conn: &mut DbConn,
    currency: &Currency,
    since_us: i64,
) -> Result<(i64, i64), LedgerError> {
    let Some(account) = accounts::table
        .filter(accounts::principal_id.eq(currency.issuer_id.get()))
        .filter(accounts::currency_id.eq(currency.id.get()))
        .select(accounts::id)
        .first::<i64>(conn)
        .optional()?
    else {
        return Ok((0, 0));
    };
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }
    // Summed by the database, each side through its own index (account, id): one row back
    // whatever the traffic. Only integers are inlined, never client text; a 30 days' sum of
    // one account's lines fits as every balance does (saturated by the cast otherwise).
    let mut sum = |column: &str| -> Result<i64, LedgerError> {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(amount_atoms), 0) AS BIGINT) AS total FROM transfers \
             WHERE {column} = {account} AND created_at_us >= {since_us}"
        );
        Ok(diesel::sql_query(sql).get_result::<Total>(conn)?.total)
    };
    Ok((sum("from_account_id")?, sum("to_account_id")?))
}

/// The latest applied clearing run that settled any of `currency`.
fn last_cleared_us(conn: &mut DbConn, currency: &Currency) -> Result<Option<i64>, LedgerError> {
    Ok(clearing_settlements::table
        .inner_join(clearing_runs::table)
        .filter(clearing_settlements::currency_id.eq(currency.id.get()))
        .filter(clearing_runs::dry_run.eq(0))
        .order(clearing_runs::id.desc())
        .select(clearing_runs::finished_at_us)
        .first(conn)
        .optional()?)
}

/// `part / whole` in basis points, rounded down; 0 for an empty whole.
fn bps(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let share = i128::from(part) * 10_000 / i128::from(whole);
    i64::try_from(share).unwrap_or(i64::MAX)
}

#[utoipa::path(
    get, path = "/api/v1/currencies/{code}/health", tag = "issuer",
    params(("code" = String, Path)),
    responses((status = 200, body = HealthView, description = "public"), (status = 404, body = Problem))
)]
#[get("/api/v1/currencies/{code}/health")]
pub async fn get_health(
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    liabilities: web::Data<Liabilities>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let currency = find_currency(&mut *ledger.conn()?, &path)?;
        // Outstanding, holders and the largest holder from the same snapshot the liabilities
        // root is built on: one read of the balances, cached, whatever the traffic.
        let snapshot = liabilities.current(&currency)?;
        let mut conn = ledger.conn()?;
        let (issued, redeemed) = issued_and_redeemed(&mut conn, &currency, now_us() - 30 * DAY_US)?;
        let opted_out: i64 = clearing_opt_outs::table
            .filter(clearing_opt_outs::business_id.eq(currency.issuer_id.get()))
            .count()
            .get_result(&mut conn)
            .map_err(LedgerError::from)?;
        let outstanding = snapshot.total_atoms();
        let backs = match currency.policies.backing {
            Some(_) => {
                Some(scrip_ledger::reserve::reserve_of(&mut conn, &currency, now_us())?.backs_atoms)
            }
            None => None,
        };
        let limit = backs.map_or(currency.credit_limit.atoms(), |b| {
            b.min(currency.credit_limit.atoms())
        });
        let money = |atoms| Amount::from_atoms(atoms, currency.scale).to_string();
        Ok(HealthView {
            currency: currency.code.to_string(),
            outstanding: money(outstanding),
            credit_limit: money(currency.credit_limit.atoms()),
            reserve_backs: backs.map(money),
            utilisation_bps: (limit > 0).then(|| bps(outstanding, limit)),
            issued_30d: money(issued),
            redeemed_30d: money(redeemed),
            holders: snapshot.holders(),
            largest_holder_bps: bps(snapshot.largest_atoms(), outstanding),
            clearing_enabled: opted_out == 0,
            last_cleared_at: last_cleared_us(&mut conn, &currency)?.map(rfc3339_from_us),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
