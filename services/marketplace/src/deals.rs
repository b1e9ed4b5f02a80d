//! Deals: a buyer and a seller agree on a listing, at a fixed price paid at once, or paid
//! after the service at the amount the buyer judges fair. A deal is paid once: the payment
//! (with conversion through the books where the buyer holds another currency) claims it in
//! the payment's own transaction. `POST /api/v1/listings/{id}/deals`, `POST
//! /api/v1/deals/{id}/pay`, `GET /api/v1/deals`, `GET /api/v1/deals/{id}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_domain::{Amount, CurrencyId, PrincipalId, RegistryId};
use scrip_http::{
    ApiError, Problem, REPLAYED_HEADER, blocking, idempotency_key, now_us, request_hash,
    rfc3339_from_us,
};
use scrip_ledger::{Currency, Ledger, LedgerError, Principal, Transfer};
use scrip_orderbook::Exchange;
use scrip_orderbook::convert::execute::Settles;
use scrip_orderbook::convert::http::{ConversionLimiter, PayFor, PaymentView, check_rate, pay_for};
use scrip_store::DbConn;
use scrip_store::schema::{deals, listings, memberships, principals};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::feedback::{FeedbackView, feedback_of};
use crate::listings::{ListingRow, find as find_listing};
use crate::onboarding::{Onboarding, Subsidy};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    /// `fixed`: the price, paid now when the caller buys; `after`: the buyer pays what it
    /// judges fair once served.
    pub terms: String,
    /// Fixed terms in a currency the listing has no price in: the amount agreed.
    pub amount: Option<String>,
    /// A currency the listing takes; default its price's.
    pub currency: Option<String>,
    /// Paying now: currencies to convert from, in order of preference (as `POST /payments`).
    pub pay_with: Option<Vec<String>>,
    /// Paying now: the most each currency may cost (as `POST /payments`).
    pub max_spend: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayDeal {
    /// What the buyer pays: required with terms `after`; with `fixed`, the agreed amount.
    pub amount: Option<String>,
    /// A currency the listing takes; default the deal's.
    pub currency: Option<String>,
    pub pay_with: Option<Vec<String>>,
    pub max_spend: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DealView {
    pub id: String,
    pub listing: String,
    pub listing_title: String,
    pub buyer: String,
    pub seller: String,
    /// `fixed` or `after`.
    pub terms: String,
    /// `open` (to pay) or `paid`.
    pub status: String,
    pub currency: String,
    /// The amount agreed (fixed) or paid; none while an `after` deal is open.
    pub amount: Option<String>,
    /// What the registry's onboarding fund paid of it (new coinage), if anything: the buyer
    /// paid `amount` less this.
    pub onboarding: Option<String>,
    /// The buyer's payment's id (`GET /api/v1/payments/{id}`), once paid.
    pub payment_id: Option<String>,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub feedback: Vec<FeedbackView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DealCreated {
    #[serde(flatten)]
    pub deal: DealView,
    /// The payment, when the deal was paid at once.
    pub payment: Option<PaymentView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DealList {
    pub items: Vec<DealView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deals)]
pub struct DealRow {
    pub id: i64,
    pub listing_id: i64,
    pub buyer_id: i64,
    pub seller_id: i64,
    pub opened_by_id: i64,
    pub terms: String,
    pub status: String,
    pub currency_id: i64,
    pub amount_atoms: Option<i64>,
    pub transfer_id: Option<i64>,
    pub onboarding_atoms: i64,
    pub created_at_us: i64,
    pub paid_at_us: Option<i64>,
    pub request_key: Option<String>,
    pub request_hash: Option<String>,
    pub paid_key: Option<String>,
    pub paid_hash: Option<String>,
}

pub fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such deal")
}

pub fn find(conn: &mut DbConn, raw: &str) -> Result<DealRow, ApiError> {
    let id = raw.parse::<i64>().map_err(|_| not_found())?;
    deals::table
        .find(id)
        .select(DealRow::as_select())
        .first(conn)
        .optional()
        .map_err(LedgerError::from)?
        .ok_or_else(not_found)
}

/// Whether two principals are one, one owns the other, or a person owns both: what passes
/// between them is one person's say-so (no rating one's own shop).
pub fn related(conn: &mut DbConn, a: PrincipalId, b: PrincipalId) -> Result<bool, LedgerError> {
    use scrip_auth::access::{is_owner, share_an_owner};
    Ok(a == b || is_owner(conn, a, b)? || is_owner(conn, b, a)? || share_an_owner(conn, a, b)?)
}

/// The principals whose deals the caller sees: itself and the businesses it owns.
fn acting_for(conn: &mut DbConn, caller: PrincipalId) -> Result<Vec<i64>, LedgerError> {
    let mut ids: Vec<i64> = memberships::table
        .filter(memberships::member_id.eq(caller.get()))
        .filter(memberships::role.eq("owner"))
        .select(memberships::business_id)
        .load(conn)?;
    ids.push(caller.get());
    Ok(ids)
}

/// The deal `raw`, for one of its parties (or an owner of a business party); 404 otherwise.
pub fn for_party(conn: &mut DbConn, caller: PrincipalId, raw: &str) -> Result<DealRow, ApiError> {
    let deal = find(conn, raw)?;
    let mine = acting_for(conn, caller)?;
    if !mine.contains(&deal.buyer_id) && !mine.contains(&deal.seller_id) {
        return Err(not_found());
    }
    Ok(deal)
}

pub fn views(conn: &mut DbConn, rows: Vec<DealRow>) -> Result<Vec<DealView>, ApiError> {
    let ids: Vec<i64> = rows
        .iter()
        .flat_map(|d| [d.buyer_id, d.seller_id])
        .collect();
    let handles: HashMap<i64, String> = principals::table
        .filter(principals::id.eq_any(&ids))
        .select((principals::id, principals::handle))
        .load(conn)
        .map_err(LedgerError::from)?
        .into_iter()
        .collect();
    let listing_ids: Vec<i64> = rows.iter().map(|d| d.listing_id).collect();
    let titles: HashMap<i64, String> = listings::table
        .filter(listings::id.eq_any(&listing_ids))
        .select((listings::id, listings::title))
        .load(conn)
        .map_err(LedgerError::from)?
        .into_iter()
        .collect();
    let deal_ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
    let mut feedback = feedback_of(conn, &deal_ids)?;
    let mut currencies: HashMap<i64, Currency> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if let std::collections::hash_map::Entry::Vacant(slot) = currencies.entry(row.currency_id) {
            slot.insert(scrip_ledger::currency_by_id(
                conn,
                CurrencyId::new(row.currency_id),
            )?);
        }
        let currency = &currencies[&row.currency_id];
        let say = |atoms: i64| Amount::from_atoms(atoms, currency.scale).to_string();
        let handle = |id: i64| handles.get(&id).cloned().unwrap_or_default();
        out.push(DealView {
            id: row.id.to_string(),
            listing: row.listing_id.to_string(),
            listing_title: titles.get(&row.listing_id).cloned().unwrap_or_default(),
            buyer: handle(row.buyer_id),
            seller: handle(row.seller_id),
            terms: row.terms,
            status: row.status,
            currency: currency.code.to_string(),
            amount: row.amount_atoms.map(say),
            onboarding: (row.onboarding_atoms > 0).then(|| say(row.onboarding_atoms)),
            payment_id: row.transfer_id.map(|id| id.to_string()),
            created_at: rfc3339_from_us(row.created_at_us),
            paid_at: row.paid_at_us.map(rfc3339_from_us),
            feedback: feedback.remove(&row.id).unwrap_or_default(),
        });
    }
    Ok(out)
}

fn one_view(conn: &mut DbConn, id: i64) -> Result<DealView, ApiError> {
    let row = find(conn, &id.to_string())?;
    views(conn, vec![row])?
        .pop()
        .ok_or_else(|| ApiError::Internal("a deal vanished while shown".into()))
}

/// The currency a deal on `listing` is in: `asked`, which the listing must take, or its
/// price's. A listing that names no currency takes any.
fn deal_currency(
    conn: &mut DbConn,
    listing: &ListingRow,
    asked: Option<&str>,
) -> Result<Currency, ApiError> {
    let taken = listing.currencies(conn)?;
    let Some(code) = asked else {
        return match taken.first() {
            Some(&id) => Ok(scrip_ledger::currency_by_id(conn, id)?),
            None => Err(ApiError::invalid_field(
                "currency",
                "this listing names no currency: say which one the deal is in",
            )),
        };
    };
    let currency = scrip_auth::guard::currency(conn, code, "unknown_currency")
        .map_err(|_| ApiError::invalid_field("currency", format!("no currency {code:?}")))?;
    if !taken.is_empty() && !taken.contains(&currency.id) {
        let mut codes = Vec::new();
        for id in taken {
            codes.push(scrip_ledger::currency_by_id(conn, id)?.code.to_string());
        }
        return Err(ApiError::invalid_field(
            "currency",
            format!("this listing takes {}, not {code}", codes.join(", ")),
        ));
    }
    Ok(currency)
}

/// The amount of a fixed deal: the listing's price when it has one in `currency` (an
/// `amount` given must be it), else the `amount` given.
fn fixed_amount(
    listing: &ListingRow,
    currency: &Currency,
    asked: Option<&str>,
) -> Result<Amount, ApiError> {
    let price = match (listing.price_atoms, listing.price_currency_id) {
        (Some(atoms), Some(id)) if id == currency.id.get() => {
            Some(Amount::from_atoms(atoms, currency.scale))
        }
        _ => None,
    };
    let given = asked
        .map(|raw| {
            Amount::parse_positive(raw, currency.scale)
                .map_err(|e| ApiError::refused_field("bad_amount", "amount", e.to_string()))
        })
        .transpose()?;
    match (price, given) {
        (Some(price), Some(given)) if price != given => Err(ApiError::invalid_field(
            "amount",
            format!(
                "the price is {price} {}; a fixed deal pays the price (or choose terms \"after\")",
                currency.code
            ),
        )),
        (Some(price), _) => Ok(price),
        (None, Some(given)) => Ok(given),
        (None, None) => Err(ApiError::invalid_field(
            "amount",
            format!(
                "this listing has no price in {}: say the amount",
                currency.code
            ),
        )),
    }
}

fn memo(deal_title: &str) -> Option<String> {
    let short: String = deal_title.chars().take(120).collect();
    Some(format!("Marketplace: {short}"))
}

/// Runs `work` on a connection of its own, given back when it ends.
fn fresh<T>(
    ledger: &Ledger,
    work: impl FnOnce(&mut DbConn) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut conn = ledger.conn()?;
    work(&mut conn)
}

/// A request's `Idempotency-Key` and the hash of what it asked: a retry with both gets the
/// deal it made; the key with another request is 409 `idempotency_conflict`.
#[derive(Debug, Clone)]
struct Keyed {
    key: String,
    hash: String,
}

fn keyed(
    request: &HttpRequest,
    route: &str,
    body: &impl Serialize,
) -> Result<Option<Keyed>, ApiError> {
    Ok(idempotency_key(request)?.map(|key| Keyed {
        key: key.as_str().to_owned(),
        hash: request_hash(route, body),
    }))
}

/// The deal `opener` opened with this key, if any (the same request's).
fn opened_with(
    conn: &mut DbConn,
    opener: PrincipalId,
    keyed: &Keyed,
) -> Result<Option<i64>, ApiError> {
    let found: Option<(i64, Option<String>)> = deals::table
        .filter(deals::opened_by_id.eq(opener.get()))
        .filter(deals::request_key.eq(&keyed.key))
        .select((deals::id, deals::request_hash))
        .first(conn)
        .optional()
        .map_err(LedgerError::from)?;
    match found {
        None => Ok(None),
        Some((id, Some(hash))) if hash == keyed.hash => Ok(Some(id)),
        Some(_) => Err(LedgerError::IdempotencyConflict.into()),
    }
}

/// Whether `deal` was paid with this key (the same request's).
fn paid_with(deal: &DealRow, keyed: &Keyed) -> Result<bool, ApiError> {
    match (&deal.paid_key, &deal.paid_hash) {
        (Some(key), Some(hash)) if *key == keyed.key => {
            if *hash == keyed.hash {
                Ok(true)
            } else {
                Err(LedgerError::IdempotencyConflict.into())
            }
        }
        _ => Ok(false),
    }
}

/// A deal's answer, and whether it is a replay of an earlier request's.
type Answered = (bool, DealCreated);

fn replayed(conn: &mut DbConn, id: i64) -> Result<Answered, ApiError> {
    Ok((
        true,
        DealCreated {
            deal: one_view(conn, id)?,
            payment: None,
        },
    ))
}

fn answer(status: actix_web::http::StatusCode, (replay, body): Answered) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((REPLAYED_HEADER, if replay { "true" } else { "false" }))
        .json(body)
}

/// A deal paid at once: inserted, paid, in the payment's transaction.
#[derive(Debug)]
struct NewPaidDeal {
    listing_id: i64,
    buyer: PrincipalId,
    seller: PrincipalId,
    terms: &'static str,
    currency: CurrencyId,
    amount_atoms: i64,
    subsidy: Option<Subsidy>,
    keyed: Option<Keyed>,
    inserted: Mutex<Option<i64>>,
}

impl Settles for NewPaidDeal {
    fn claim(&self, conn: &mut DbConn) -> Result<(), LedgerError> {
        still_open(conn, self.listing_id)
    }

    fn complete(&self, conn: &mut DbConn, transfer: &Transfer) -> Result<(), LedgerError> {
        let now = now_us();
        let onboarding_atoms = match &self.subsidy {
            Some(subsidy) => subsidy.pay(conn)?,
            None => 0,
        };
        let id: i64 = diesel::insert_into(deals::table)
            .values((
                deals::listing_id.eq(self.listing_id),
                deals::buyer_id.eq(self.buyer.get()),
                deals::seller_id.eq(self.seller.get()),
                deals::opened_by_id.eq(self.buyer.get()),
                deals::terms.eq(self.terms),
                deals::status.eq("paid"),
                deals::currency_id.eq(self.currency.get()),
                deals::amount_atoms.eq(self.amount_atoms),
                deals::transfer_id.eq(transfer.id.get()),
                deals::onboarding_atoms.eq(onboarding_atoms),
                deals::created_at_us.eq(now),
                deals::paid_at_us.eq(now),
                deals::request_key.eq(self.keyed.as_ref().map(|k| k.key.as_str())),
                deals::request_hash.eq(self.keyed.as_ref().map(|k| k.hash.as_str())),
            ))
            .returning(deals::id)
            .get_result(conn)?;
        *self.inserted.lock().map_err(|_| poisoned())? = Some(id);
        Ok(())
    }
}

fn poisoned() -> LedgerError {
    LedgerError::Invariant("a deal's lock was poisoned".into())
}

/// The listing is still open (a withdrawn one is dealt no more).
fn still_open(conn: &mut DbConn, listing: i64) -> Result<(), LedgerError> {
    // Locked (PostgreSQL) until the deal commits: a withdrawal waits, or is seen.
    scrip_store::lock_row(conn, "listings", listing)?;
    let status: String = listings::table
        .find(listing)
        .select(listings::status)
        .first(conn)?;
    if status == "open" {
        Ok(())
    } else {
        Err(LedgerError::AlreadySettled(
            "this listing was withdrawn meanwhile".into(),
        ))
    }
}

/// An open deal paid: claimed (open to paid) before the transfer, so that of two payments
/// only one commits; the transfer recorded after.
#[derive(Debug)]
struct OpenDealPaid {
    deal: i64,
    currency: CurrencyId,
    amount_atoms: i64,
    subsidy: Option<Subsidy>,
    keyed: Option<Keyed>,
}

impl Settles for OpenDealPaid {
    fn claim(&self, conn: &mut DbConn) -> Result<(), LedgerError> {
        let claimed = diesel::update(
            deals::table
                .filter(deals::id.eq(self.deal))
                .filter(deals::status.eq("open")),
        )
        .set((
            deals::status.eq("paid"),
            deals::currency_id.eq(self.currency.get()),
            deals::amount_atoms.eq(self.amount_atoms),
            deals::paid_at_us.eq(now_us()),
            deals::paid_key.eq(self.keyed.as_ref().map(|k| k.key.as_str())),
            deals::paid_hash.eq(self.keyed.as_ref().map(|k| k.hash.as_str())),
        ))
        .execute(conn)?;
        if claimed == 1 {
            Ok(())
        } else {
            Err(LedgerError::AlreadySettled(
                "this deal has already been paid".into(),
            ))
        }
    }

    fn complete(&self, conn: &mut DbConn, transfer: &Transfer) -> Result<(), LedgerError> {
        let onboarding_atoms = match &self.subsidy {
            Some(subsidy) => subsidy.pay(conn)?,
            None => 0,
        };
        diesel::update(deals::table.find(self.deal))
            .set((
                deals::transfer_id.eq(transfer.id.get()),
                deals::onboarding_atoms.eq(onboarding_atoms),
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// Who buys and who sells when the caller deals on `listing`: an offer's holder sells to
/// the caller; a want's holder buys from the caller.
fn parties(
    conn: &mut DbConn,
    caller: &Caller,
    listing: &ListingRow,
) -> Result<(Principal, Principal), ApiError> {
    let holder = scrip_ledger::principal_by_id(conn, PrincipalId::new(listing.holder_id))?;
    let me = scrip_ledger::principal_by_id(conn, caller.id)?;
    if related(conn, holder.id, me.id)? {
        return Err(ApiError::unprocessable(
            "own_listing",
            "this listing is yours (or a business of yours): a deal needs someone else",
        ));
    }
    Ok(if listing.kind == "offer" {
        (me, holder)
    } else {
        (holder, me)
    })
}

/// What a payment of a deal needs beyond the deal: the buyer's choice of sources.
struct Paying<'a> {
    pay_with: Option<&'a [String]>,
    max_spend: Option<&'a BTreeMap<String, String>>,
}

/// Who pays a deal, through what: the caller (the buyer or an owner of it) and the services
/// its payment runs on.
struct Checkout<'a> {
    ledger: &'a Ledger,
    exchange: &'a Exchange,
    caller: &'a Caller,
    registry: &'a RegistryId,
}

impl Checkout<'_> {
    /// Pays `buyer_atoms` of `currency` from `buyer` to `seller` (the price less what
    /// onboarding pays), with the buyer's choice of sources, settling `settles` in the same
    /// transaction.
    fn pay(
        &self,
        (buyer, seller): (&Principal, &Principal),
        (currency, buyer_atoms): (&Currency, i64),
        paying: &Paying<'_>,
        title: &str,
        settles: Arc<dyn Settles>,
    ) -> Result<PaymentView, ApiError> {
        let from = (buyer.id != self.caller.id).then(|| buyer.handle.to_string());
        let amount = Amount::from_atoms(buyer_atoms, currency.scale).to_string();
        pay_for(
            self.ledger,
            self.exchange,
            self.caller,
            self.registry,
            PayFor {
                from: from.as_deref(),
                to: seller.handle.as_str(),
                currency: currency.code.as_str(),
                amount: &amount,
                pay_with: paying.pay_with,
                max_spend: paying.max_spend,
                memo: memo(title),
                settles,
            },
        )
    }
}

#[utoipa::path(
    post, path = "/api/v1/listings/{id}/deals", tag = "marketplace", request_body = NewDeal,
    security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "a retry gets the deal it made")),
    responses(
        (status = 201, body = DealCreated, description = "the deal: `paid` with its payment when the caller buys at a fixed price, else `open`"),
        (status = 404, body = Problem, description = "not_found"),
        (status = 409, body = Problem, description = "listing_withdrawn, too_many_deals (50 open deals opened), idempotency_conflict"),
        (status = 422, body = Problem, description = "own_listing; invalid_request under terms, amount, currency; and every refusal of `POST /payments` (no_route, slippage_exceeded, insufficient_funds...), nothing changed"),
        (status = 429, body = Problem, description = "rate_limited: the caller's payments budget"),
        (status = 503, body = Problem, description = "market_unavailable or overloaded (too many converting payments at once): nothing was applied"),
    )
)]
#[post("/api/v1/listings/{id}/deals")]
#[expect(
    clippy::too_many_arguments,
    reason = "actix extractors, one per piece of state"
)]
pub async fn create_deal(
    request: HttpRequest,
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::Json<NewDeal>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
    registry: web::Data<RegistryId>,
    onboarding: web::Data<Onboarding>,
    limiter: Option<web::Data<ConversionLimiter>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.terms == "fixed" {
        check_rate(limiter.as_ref().map(|l| l.get_ref()), &caller).await?;
    }
    let keyed = keyed(
        &request,
        &format!("POST /api/v1/listings/{path}/deals"),
        &body,
    )?;
    let created = blocking(move || {
        let checkout = Checkout {
            ledger: &ledger,
            exchange: &exchange,
            caller: &caller,
            registry: &registry,
        };
        if let Some(keyed) = &keyed
            && let Some(id) = fresh(&ledger, |c| opened_with(c, caller.id, keyed))?
        {
            return fresh(&ledger, |c| replayed(c, id));
        }
        let outcome = open_deal(&checkout, &onboarding, &path, &body, keyed.as_ref());
        match (&outcome, &keyed) {
            // A concurrent request with the same key made the deal first.
            (Err(_), Some(keyed)) => match fresh(&ledger, |c| opened_with(c, caller.id, keyed))? {
                Some(id) => fresh(&ledger, |c| replayed(c, id)),
                None => outcome.map(|created| (false, created)),
            },
            _ => outcome.map(|created| (false, created)),
        }
    })
    .await?;
    Ok(answer(actix_web::http::StatusCode::CREATED, created))
}

/// At most this many open deals one principal opened at once (answering wants, pay-after).
pub const MAX_OPEN_DEALS: i64 = 50;

/// The terms asked, checked.
fn terms_named(raw: &str) -> Result<&'static str, ApiError> {
    match raw {
        "fixed" => Ok("fixed"),
        "after" => Ok("after"),
        other => Err(ApiError::invalid_field(
            "terms",
            format!("terms are \"fixed\" or \"after\", not {other:?}"),
        )),
    }
}

/// A deal on listing `raw` as `body` asks: paid now (a fixed price bought by the caller) or
/// opened for its buyer to pay.
fn open_deal(
    checkout: &Checkout<'_>,
    onboarding: &Onboarding,
    raw: &str,
    body: &NewDeal,
    keyed: Option<&Keyed>,
) -> Result<DealCreated, ApiError> {
    let caller = checkout.caller;
    let mut pooled = checkout.ledger.conn()?;
    let conn: &mut DbConn = &mut pooled;
    let listing = find_listing(conn, raw)?;
    if listing.status != "open" {
        return Err(ApiError::conflict(
            "listing_withdrawn",
            "this listing was withdrawn",
        ));
    }
    let terms = terms_named(&body.terms)?;
    let (buyer, seller) = parties(conn, caller, &listing)?;
    let currency = deal_currency(conn, &listing, body.currency.as_deref())?;
    let amount = match terms {
        "fixed" => Some(fixed_amount(&listing, &currency, body.amount.as_deref())?),
        _ if body.amount.is_some() => {
            return Err(ApiError::invalid_field(
                "amount",
                "with terms \"after\" the buyer says the amount when paying",
            ));
        }
        _ => None,
    };
    let pays_now = terms == "fixed" && buyer.id == caller.id;
    if pays_now && listing.price_currency_id != Some(currency.id.get()) {
        // Else the buyer alone would set the price it pays at once.
        return Err(ApiError::invalid_field(
            "currency",
            match listing.price_currency_id {
                Some(_) => format!(
                    "this offer is priced in another currency than {}: buy it in that one (paying with {} if you like), or choose terms \"after\"",
                    currency.code, currency.code
                ),
                None => {
                    "this offer has no price: choose terms \"after\" and pay what you judge fair"
                        .to_owned()
                }
            },
        ));
    }
    if !pays_now && (body.pay_with.is_some() || body.max_spend.is_some()) {
        return Err(ApiError::invalid_field(
            "pay_with",
            "only a deal paid now is paid with other currencies; pay it with POST /deals/{id}/pay",
        ));
    }
    let Some(amount) = amount.filter(|_| pays_now) else {
        let opened = Opened {
            listing: listing.id,
            parties: (buyer.id, seller.id),
            terms,
            currency: currency.id,
            amount_atoms: amount.map(|a| a.atoms()),
        };
        drop(pooled);
        let id = insert_open(checkout.ledger, caller.id, &opened, keyed)?;
        return Ok(DealCreated {
            deal: fresh(checkout.ledger, |c| one_view(c, id))?,
            payment: None,
        });
    };
    let subsidy = onboarding.subsidy(conn, &buyer, &seller, &currency, amount.atoms())?;
    // The payment takes connections of its own.
    drop(pooled);
    let buyer_atoms = amount.atoms() - subsidy.as_ref().map_or(0, |s| s.atoms);
    let settles = Arc::new(NewPaidDeal {
        listing_id: listing.id,
        buyer: buyer.id,
        seller: seller.id,
        terms,
        currency: currency.id,
        amount_atoms: amount.atoms(),
        subsidy,
        keyed: keyed.cloned(),
        inserted: Mutex::new(None),
    });
    let paying = Paying {
        pay_with: body.pay_with.as_deref(),
        max_spend: body.max_spend.as_ref(),
    };
    let payment = checkout.pay(
        (&buyer, &seller),
        (&currency, buyer_atoms),
        &paying,
        &listing.title,
        settles.clone(),
    )?;
    let id = settles
        .inserted
        .lock()
        .map_err(|_| ApiError::Internal("a deal's lock was poisoned".into()))?
        .ok_or_else(|| ApiError::Internal("a paid deal was not recorded".into()))?;
    Ok(DealCreated {
        deal: fresh(checkout.ledger, |c| one_view(c, id))?,
        payment: Some(payment),
    })
}

/// An open deal to record.
struct Opened {
    listing: i64,
    parties: (PrincipalId, PrincipalId),
    terms: &'static str,
    currency: CurrencyId,
    amount_atoms: Option<i64>,
}

/// Records an open deal, within the opener's bound of open deals.
fn insert_open(
    ledger: &Ledger,
    opener: PrincipalId,
    opened: &Opened,
    keyed: Option<&Keyed>,
) -> Result<i64, ApiError> {
    let id = ledger.write(|conn| {
        scrip_store::lock_row(conn, "principals", opener.get())?;
        let open: i64 = deals::table
            .filter(deals::opened_by_id.eq(opener.get()))
            .filter(deals::status.eq("open"))
            .count()
            .get_result(conn)?;
        if open >= MAX_OPEN_DEALS {
            return Ok(None);
        }
        let (buyer, seller) = opened.parties;
        Ok(Some(
            diesel::insert_into(deals::table)
                .values((
                    deals::listing_id.eq(opened.listing),
                    deals::buyer_id.eq(buyer.get()),
                    deals::seller_id.eq(seller.get()),
                    deals::opened_by_id.eq(opener.get()),
                    deals::terms.eq(opened.terms),
                    deals::status.eq("open"),
                    deals::currency_id.eq(opened.currency.get()),
                    deals::amount_atoms.eq(opened.amount_atoms),
                    deals::created_at_us.eq(now_us()),
                    deals::request_key.eq(keyed.map(|k| k.key.as_str())),
                    deals::request_hash.eq(keyed.map(|k| k.hash.as_str())),
                ))
                .returning(deals::id)
                .get_result::<i64>(conn)?,
        ))
    })?;
    id.ok_or_else(|| {
        ApiError::conflict(
            "too_many_deals",
            format!("{MAX_OPEN_DEALS} deals you opened are still open, the most at once; wait for them to be paid"),
        )
    })
}

#[utoipa::path(
    post, path = "/api/v1/deals/{id}/pay", tag = "marketplace", request_body = PayDeal,
    security(("bearer" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "a retry gets the paid deal")),
    responses(
        (status = 200, body = DealCreated, description = "the deal, paid, with its payment (none on a replay)"),
        (status = 403, body = Problem, description = "not_buyer: the seller (or its owner) asked"),
        (status = 404, body = Problem, description = "not_found (also a deal the caller is no party of)"),
        (status = 409, body = Problem, description = "already_paid, idempotency_conflict, changed_meanwhile (the onboarding fund's share: try again)"),
        (status = 422, body = Problem, description = "invalid_request under amount or currency; every refusal of `POST /payments`, nothing changed"),
        (status = 429, body = Problem, description = "rate_limited: the caller's payments budget"),
        (status = 503, body = Problem, description = "market_unavailable or overloaded (too many converting payments at once): nothing was applied"),
    )
)]
#[post("/api/v1/deals/{id}/pay")]
#[expect(
    clippy::too_many_arguments,
    reason = "actix extractors, one per piece of state"
)]
pub async fn pay_deal(
    request: HttpRequest,
    caller: Caller,
    path: web::Path<String>,
    body: scrip_http::OptionalJson<PayDeal>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
    registry: web::Data<RegistryId>,
    onboarding: web::Data<Onboarding>,
    limiter: Option<web::Data<ConversionLimiter>>,
) -> Result<HttpResponse, ApiError> {
    check_rate(limiter.as_ref().map(|l| l.get_ref()), &caller).await?;
    let body = body.0.unwrap_or_default();
    let keyed = keyed(&request, &format!("POST /api/v1/deals/{path}/pay"), &body)?;
    let paid = blocking(move || {
        let checkout = Checkout {
            ledger: &ledger,
            exchange: &exchange,
            caller: &caller,
            registry: &registry,
        };
        let deal = fresh(&ledger, |c| for_party(c, caller.id, &path))?;
        if let Some(keyed) = &keyed
            && paid_with(&deal, keyed)?
        {
            return fresh(&ledger, |c| replayed(c, deal.id));
        }
        let outcome = pay_open(&checkout, &onboarding, &deal, &body, keyed.as_ref());
        match (&outcome, &keyed) {
            // A concurrent request with the same key paid it first.
            (Err(_), Some(keyed)) => {
                let now = fresh(&ledger, |c| find(c, &deal.id.to_string()))?;
                if paid_with(&now, keyed)? {
                    fresh(&ledger, |c| replayed(c, deal.id))
                } else {
                    outcome.map(|paid| (false, paid))
                }
            }
            _ => outcome.map(|paid| (false, paid)),
        }
    })
    .await?;
    Ok(answer(actix_web::http::StatusCode::OK, paid))
}

/// The amount a payment of `deal` pays in `currency`: the agreed one of a fixed deal (an
/// `amount` given must be it), the buyer's own of a pay-after deal.
fn amount_due(
    deal: &DealRow,
    currency: &Currency,
    asked: Option<&str>,
) -> Result<Amount, ApiError> {
    let parse = |raw: &str| {
        Amount::parse_positive(raw, currency.scale)
            .map_err(|e| ApiError::refused_field("bad_amount", "amount", e.to_string()))
    };
    match deal.amount_atoms {
        Some(atoms) if currency.id.get() == deal.currency_id => {
            let agreed = Amount::from_atoms(atoms, currency.scale);
            match asked.map(parse).transpose()? {
                Some(given) if given != agreed => Err(ApiError::invalid_field(
                    "amount",
                    format!("this deal's agreed amount is {agreed} {}", currency.code),
                )),
                _ => Ok(agreed),
            }
        }
        Some(_) => Err(ApiError::invalid_field(
            "currency",
            "a fixed deal is paid in the currency it was agreed in",
        )),
        None => parse(asked.ok_or_else(|| {
            ApiError::invalid_field("amount", "say what you judge the service worth")
        })?),
    }
}

/// Pays the open `deal` as its buyer (or an owner of it).
fn pay_open(
    checkout: &Checkout<'_>,
    onboarding: &Onboarding,
    deal: &DealRow,
    body: &PayDeal,
    keyed: Option<&Keyed>,
) -> Result<DealCreated, ApiError> {
    let caller = checkout.caller;
    let mut pooled = checkout.ledger.conn()?;
    let conn: &mut DbConn = &mut pooled;
    let buyer = scrip_ledger::principal_by_id(conn, PrincipalId::new(deal.buyer_id))?;
    let seller = scrip_ledger::principal_by_id(conn, PrincipalId::new(deal.seller_id))?;
    if buyer.id != caller.id && !scrip_auth::access::is_owner(conn, buyer.id, caller.id)? {
        return Err(ApiError::forbidden(
            "not_buyer",
            format!("{} pays this deal, not you", buyer.handle),
        ));
    }
    if deal.status != "open" {
        return Err(LedgerError::AlreadySettled("this deal has already been paid".into()).into());
    }
    let listing = find_listing(conn, &deal.listing_id.to_string())?;
    let agreed = scrip_ledger::currency_by_id(conn, CurrencyId::new(deal.currency_id))?;
    let currency = match body.currency.as_deref() {
        Some(code) => deal_currency(conn, &listing, Some(code))?,
        None => agreed.clone(),
    };
    // Another currency only among those the listing names; one that names none was dealt in
    // the currency its seller chose.
    if currency.id != agreed.id && listing.currencies(conn)?.is_empty() {
        return Err(ApiError::invalid_field(
            "currency",
            format!("this deal is in {}", agreed.code),
        ));
    }
    let amount = amount_due(deal, &currency, body.amount.as_deref())?;
    let subsidy = onboarding.subsidy(conn, &buyer, &seller, &currency, amount.atoms())?;
    // The payment takes connections of its own.
    drop(pooled);
    let buyer_atoms = amount.atoms() - subsidy.as_ref().map_or(0, |s| s.atoms);
    let settles = Arc::new(OpenDealPaid {
        deal: deal.id,
        currency: currency.id,
        amount_atoms: amount.atoms(),
        subsidy,
        keyed: keyed.cloned(),
    });
    let paying = Paying {
        pay_with: body.pay_with.as_deref(),
        max_spend: body.max_spend.as_ref(),
    };
    let payment = checkout.pay(
        (&buyer, &seller),
        (&currency, buyer_atoms),
        &paying,
        &listing.title,
        settles,
    )?;
    Ok(DealCreated {
        deal: fresh(checkout.ledger, |c| one_view(c, deal.id))?,
        payment: Some(payment),
    })
}

#[utoipa::path(
    get, path = "/api/v1/deals", tag = "marketplace", security(("bearer" = [])),
    params(scrip_http::PageQuery),
    responses((status = 200, body = DealList, description = "the caller's deals (and its businesses'), as buyer or seller, newest first, paged"))
)]
#[get("/api/v1/deals")]
pub async fn list_deals(
    caller: Caller,
    query: web::Query<scrip_http::PageQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let before = query.before_id()?;
    let list = blocking(move || {
        let mut conn = ledger.conn()?;
        let mine = acting_for(&mut conn, caller.id)?;
        let mut rows = deals::table
            .filter(
                deals::buyer_id
                    .eq_any(&mine)
                    .or(deals::seller_id.eq_any(&mine)),
            )
            .order(deals::id.desc())
            .limit(limit + 1)
            .select(DealRow::as_select())
            .into_boxed();
        if let Some(id) = before {
            rows = rows.filter(deals::id.lt(id));
        }
        let rows = rows.load(&mut conn).map_err(LedgerError::from)?;
        let page = scrip_http::Page::from_overfetch(rows, limit, |d| d.id);
        Ok(DealList {
            items: views(&mut conn, page.items)?,
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(
    get, path = "/api/v1/deals/{id}", tag = "marketplace", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = DealView), (status = 404, body = Problem, description = "not_found (also another's deal)"))
)]
#[get("/api/v1/deals/{id}")]
pub async fn get_deal(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let deal = for_party(&mut conn, caller.id, &path)?;
        one_view(&mut conn, deal.id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
