//! Deals: a buyer and a seller agree on a listing, at a fixed price paid at once, or paid
//! after the service at the amount the buyer judges fair. A deal is paid once: the payment
//! (with conversion through the books where the buyer holds another currency) claims it in
//! the payment's own transaction. `POST /api/v1/listings/{id}/deals`, `POST
//! /api/v1/deals/{id}/pay`, `GET /api/v1/deals`, `GET /api/v1/deals/{id}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, get, post, web};
use diesel::prelude::*;
use scrip_auth::Caller;
use scrip_domain::{Amount, CurrencyId, PrincipalId, RegistryId};
use scrip_http::{ApiError, Problem, blocking, now_us, rfc3339_from_us};
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
}

/// Deals listed for one caller.
const MAX_LISTED_DEALS: i64 = 100;

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
                .map_err(|e| ApiError::invalid_field("amount", e.to_string()))
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
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 201, body = DealCreated, description = "the deal: `paid` with its payment when the caller buys at a fixed price, else `open`"),
        (status = 404, body = Problem, description = "not_found"),
        (status = 409, body = Problem, description = "listing_withdrawn"),
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
    let created = blocking(move || {
        let mut conn = ledger.conn()?;
        let listing = find_listing(&mut conn, &path)?;
        if listing.status != "open" {
            return Err(ApiError::conflict(
                "listing_withdrawn",
                "this listing was withdrawn",
            ));
        }
        let terms = match body.terms.as_str() {
            "fixed" => "fixed",
            "after" => "after",
            other => {
                return Err(ApiError::invalid_field(
                    "terms",
                    format!("terms are \"fixed\" or \"after\", not {other:?}"),
                ));
            }
        };
        let (buyer, seller) = parties(&mut conn, &caller, &listing)?;
        let currency = deal_currency(&mut conn, &listing, body.currency.as_deref())?;
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
        if !pays_now && (body.pay_with.is_some() || body.max_spend.is_some()) {
            return Err(ApiError::invalid_field(
                "pay_with",
                "only a deal paid now is paid with other currencies; pay it with POST /deals/{id}/pay",
            ));
        }
        let Some(amount) = amount.filter(|_| pays_now) else {
            drop(conn);
            let id = ledger.write(|conn| {
                Ok(diesel::insert_into(deals::table)
                    .values((
                        deals::listing_id.eq(listing.id),
                        deals::buyer_id.eq(buyer.id.get()),
                        deals::seller_id.eq(seller.id.get()),
                        deals::opened_by_id.eq(caller.id.get()),
                        deals::terms.eq(terms),
                        deals::status.eq("open"),
                        deals::currency_id.eq(currency.id.get()),
                        deals::amount_atoms.eq(amount.map(|a| a.atoms())),
                        deals::created_at_us.eq(now_us()),
                    ))
                    .returning(deals::id)
                    .get_result::<i64>(conn)?)
            })?;
            let mut conn = ledger.conn()?;
            return Ok(DealCreated {
                deal: one_view(&mut conn, id)?,
                payment: None,
            });
        };
        let subsidy = onboarding.subsidy(&mut conn, &buyer, &seller, &currency, amount.atoms())?;
        drop(conn);
        let buyer_atoms = amount.atoms() - subsidy.as_ref().map_or(0, |s| s.atoms);
        let settles = Arc::new(NewPaidDeal {
            listing_id: listing.id,
            buyer: buyer.id,
            seller: seller.id,
            terms,
            currency: currency.id,
            amount_atoms: amount.atoms(),
            subsidy,
            inserted: Mutex::new(None),
        });
        let checkout = Checkout {
            ledger: &ledger,
            exchange: &exchange,
            caller: &caller,
            registry: &registry,
        };
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
        let mut conn = ledger.conn()?;
        Ok(DealCreated {
            deal: one_view(&mut conn, id)?,
            payment: Some(payment),
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(
    post, path = "/api/v1/deals/{id}/pay", tag = "marketplace", request_body = PayDeal,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses(
        (status = 200, body = DealCreated, description = "the deal, paid, with its payment"),
        (status = 404, body = Problem, description = "not_found (also a deal the caller is not the buyer of)"),
        (status = 409, body = Problem, description = "already_paid"),
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
    let paid = blocking(move || {
        let mut conn = ledger.conn()?;
        let deal = for_party(&mut conn, caller.id, &path)?;
        let buyer = scrip_ledger::principal_by_id(&mut conn, PrincipalId::new(deal.buyer_id))?;
        let seller = scrip_ledger::principal_by_id(&mut conn, PrincipalId::new(deal.seller_id))?;
        if buyer.id != caller.id && !scrip_auth::access::is_owner(&mut conn, buyer.id, caller.id)? {
            return Err(ApiError::forbidden(
                "not_buyer",
                format!("{} pays this deal, not you", buyer.handle),
            ));
        }
        if deal.status != "open" {
            return Err(
                LedgerError::AlreadySettled("this deal has already been paid".into()).into(),
            );
        }
        let listing = find_listing(&mut conn, &deal.listing_id.to_string())?;
        let currency = match body.currency.as_deref() {
            Some(code) => deal_currency(&mut conn, &listing, Some(code))?,
            None => scrip_ledger::currency_by_id(&mut conn, CurrencyId::new(deal.currency_id))?,
        };
        let amount = match deal.amount_atoms {
            Some(atoms) if currency.id.get() == deal.currency_id => {
                let agreed = Amount::from_atoms(atoms, currency.scale);
                if let Some(raw) = &body.amount {
                    let given = Amount::parse_positive(raw, currency.scale)
                        .map_err(|e| ApiError::invalid_field("amount", e.to_string()))?;
                    if given != agreed {
                        return Err(ApiError::invalid_field(
                            "amount",
                            format!("this deal's agreed amount is {agreed} {}", currency.code),
                        ));
                    }
                }
                agreed
            }
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "currency",
                    "a fixed deal is paid in the currency it was agreed in",
                ));
            }
            None => {
                let raw = body.amount.as_deref().ok_or_else(|| {
                    ApiError::invalid_field("amount", "say what you judge the service worth")
                })?;
                Amount::parse_positive(raw, currency.scale)
                    .map_err(|e| ApiError::invalid_field("amount", e.to_string()))?
            }
        };
        let subsidy = onboarding.subsidy(&mut conn, &buyer, &seller, &currency, amount.atoms())?;
        drop(conn);
        let buyer_atoms = amount.atoms() - subsidy.as_ref().map_or(0, |s| s.atoms);
        let settles = Arc::new(OpenDealPaid {
            deal: deal.id,
            currency: currency.id,
            amount_atoms: amount.atoms(),
            subsidy,
        });
        let checkout = Checkout {
            ledger: &ledger,
            exchange: &exchange,
            caller: &caller,
            registry: &registry,
        };
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
        let mut conn = ledger.conn()?;
        Ok(DealCreated {
            deal: one_view(&mut conn, deal.id)?,
            payment: Some(payment),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(paid))
}

#[utoipa::path(
    get, path = "/api/v1/deals", tag = "marketplace", security(("bearer" = [])),
    responses((status = 200, body = DealList, description = "the caller's deals (and its businesses'), as buyer or seller, newest first: the latest 100"))
)]
#[get("/api/v1/deals")]
pub async fn list_deals(
    caller: Caller,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let list = blocking(move || {
        let mut conn = ledger.conn()?;
        let mine = acting_for(&mut conn, caller.id)?;
        let rows = deals::table
            .filter(
                deals::buyer_id
                    .eq_any(&mine)
                    .or(deals::seller_id.eq_any(&mine)),
            )
            .order(deals::id.desc())
            .limit(MAX_LISTED_DEALS)
            .select(DealRow::as_select())
            .load(&mut conn)
            .map_err(LedgerError::from)?;
        Ok(DealList {
            items: views(&mut conn, rows)?,
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
