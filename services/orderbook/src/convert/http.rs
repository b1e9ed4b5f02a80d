//! `POST /api/v1/quotes`, `POST /api/v1/payments`, `GET /api/v1/payments/{id}`.

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scrip_auth::Caller;
use scrip_auth::access::is_owner;
use scrip_auth::guard::{act_as, currency, resolve};
use scrip_domain::{Amount, CurrencyId, PrincipalId, RegistryId, TransferId};
use scrip_http::{
    ApiError, Problem, REPLAYED_HEADER, blocking, idempotency_key, idempotent_response,
    request_hash, rfc3339_from_us,
};
use scrip_ledger::{Ledger, journal_entry};
use scrip_store::DbConn;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::execute::{self, Executed, Mode, Names, Outcome, PaymentPlan, PaymentTrade};
use super::route::MAX_HOPS;
use super::store;
use crate::state::IdempotentRequest;
use crate::{Exchange, ExchangeError};

/// How long a quote's numbers may bound a payment.
const QUOTE_TTL_US: i64 = 60_000_000;
/// Routes of at most this many markets unless the request says otherwise.
const DEFAULT_HOPS: usize = 2;
/// At most this many currencies in `pay_with` or `max_spend`.
const MAX_SOURCES: usize = 16;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuote {
    /// Who is paid: a handle (or `handle@registry`).
    pub to: String,
    /// The currency the recipient receives.
    pub currency: String,
    /// What the recipient receives, exactly.
    pub amount: String,
    /// A business the caller owns, to pay out of its accounts; default the caller.
    pub from: Option<String>,
    /// Currencies to pay with, in order of preference; default every currency held.
    pub pay_with: Option<Vec<String>>,
    /// Markets a route may cross: 1 to 3, default 2.
    pub max_hops: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    pub to: String,
    pub currency: String,
    pub amount: String,
    pub from: Option<String>,
    pub pay_with: Option<Vec<String>>,
    pub max_hops: Option<u32>,
    /// The most each currency may cost: `{CODE: amount}`; more is `slippage_exceeded`.
    pub max_spend: Option<BTreeMap<String, String>>,
    /// A quote's `id`: the payment may cost no more of any currency than the quote said.
    pub quote_id: Option<String>,
    pub memo: Option<String>,
    /// A payment request this pays (its `to`, `currency` and `amount` must be the request's;
    /// its memo is the request's unless one is given). Claimed in the same transaction:
    /// `already_paid` (409) if someone paid it first, `request_expired` (422).
    pub request_id: Option<String>,
}

/// One source currency's part.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LegView {
    pub pay_currency: String,
    /// What this currency pays (before any change the route leaves over).
    pub spend: String,
    /// The markets crossed, in order.
    pub route: Vec<String>,
    /// The worst price reached in each market of `route` (quote per base).
    pub worst_price: Vec<String>,
    /// The market fees, by currency (each taken from what that market delivered).
    pub fees: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuoteView {
    /// Pass as `quote_id` to pay no more than this quote says.
    pub id: String,
    pub to: String,
    pub currency: String,
    pub amount: String,
    pub expires_at: String,
    pub legs: Vec<LegView>,
    /// What each currency would cost in all: `{CODE: amount}`.
    pub spend: BTreeMap<String, String>,
    /// What the routes would buy beyond the need (whole lots), left with the payer.
    pub change: BTreeMap<String, String>,
    /// The currency's transfer fee on top of `amount`, if it has one.
    pub fee: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentTradeView {
    pub market: String,
    pub price: String,
    pub quantity: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    /// The payment's transfer id.
    pub id: String,
    /// The payment request it paid, if it paid one.
    pub request_id: Option<String>,
    pub from: String,
    pub to: String,
    pub currency: String,
    pub amount: String,
    pub fee: Option<String>,
    /// What each currency cost the payer: `{CODE: amount}`.
    pub spent: BTreeMap<String, String>,
    /// What the conversion left over with the payer: `{CODE: amount}`.
    pub change: BTreeMap<String, String>,
    pub trades: Vec<PaymentTradeView>,
    pub memo: Option<String>,
    pub created_at: String,
}

/// What a quote's id carries: the payment it priced and what each currency would cost. Not
/// signed, because it only ever limits its bearer: a payment with a quote may cost no more
/// than the quote said, which a payer could also ask with `max_spend`.
#[derive(Debug, Serialize, Deserialize)]
struct QuoteToken {
    payer: i64,
    to: i64,
    currency: i64,
    amount_atoms: i64,
    spend: Vec<(i64, i64)>,
    expires_us: i64,
}

impl QuoteToken {
    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("q1.{}", URL_SAFE_NO_PAD.encode(json))
    }

    fn decode(raw: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::refused_field(
                "bad_quote",
                "quote_id",
                "this is not a quote id; ask POST /api/v1/quotes for one",
            )
        };
        let body = raw.strip_prefix("q1.").ok_or_else(bad)?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
        serde_json::from_slice(&json).map_err(|_| bad())
    }
}

/// The parts of a quote or payment request both share, checked.
struct Parsed {
    plan: PaymentPlan,
    from: String,
    to: String,
    code: String,
    /// The payer and the currency paid, for the business's approval rule.
    payer: scrip_ledger::Principal,
    target: scrip_ledger::Currency,
}

#[derive(Clone, Copy)]
struct Shape<'a> {
    to: &'a str,
    currency: &'a str,
    amount: &'a str,
    from: Option<&'a str>,
    pay_with: Option<&'a [String]>,
    max_hops: Option<u32>,
}

fn parse(
    conn: &mut DbConn,
    exchange: &Exchange,
    caller: &Caller,
    shape: Shape<'_>,
    registry: &RegistryId,
) -> Result<Parsed, ApiError> {
    let target = currency(conn, shape.currency, "unknown_account")?;
    let payer = act_as(conn, caller, shape.from, registry)?;
    let payee = resolve(conn, shape.to, registry)?;
    scrip_ledger::rules::may_be_paid(payee.kind)?;
    if payee.id == payer.id {
        return Err(ApiError::refused_field(
            "same_account",
            "to",
            "a payment to oneself changes nothing",
        ));
    }
    let amount = Amount::parse_positive(shape.amount, target.scale)
        .map_err(|e| ApiError::refused_field("bad_amount", "amount", e.to_string()))?;
    let max_hops = match shape.max_hops {
        None => DEFAULT_HOPS,
        Some(hops @ 1..=3) => hops as usize,
        Some(_) => {
            return Err(ApiError::refused_field(
                "bad_request",
                "max_hops",
                format!("a route crosses 1 to {MAX_HOPS} markets"),
            ));
        }
    };
    let mut names = Names::default();
    for market in exchange.markets() {
        let spec = &market.spec;
        names
            .0
            .insert(spec.base, (spec.base_code.to_string(), spec.base_scale));
        names
            .0
            .insert(spec.quote, (spec.quote_code.to_string(), spec.quote_scale));
    }
    names
        .0
        .insert(target.id, (target.code.to_string(), target.scale));
    let pay_with = match shape.pay_with {
        None => None,
        Some(codes) if codes.is_empty() || codes.len() > MAX_SOURCES => {
            return Err(ApiError::refused_field(
                "bad_request",
                "pay_with",
                format!("name 1 to {MAX_SOURCES} currencies to pay with"),
            ));
        }
        Some(codes) => Some(currencies(conn, codes, "pay_with")?),
    };
    Ok(Parsed {
        plan: PaymentPlan {
            payer: payer.id,
            recipient: payee.id,
            currency: target.id,
            amount,
            names,
            pay_with,
            max_hops,
            max_spend: HashMap::new(),
            memo: None,
            request: None,
            settles: None,
        },
        from: payer.handle.to_string(),
        to: payee.handle.to_string(),
        code: target.code.to_string(),
        payer,
        target,
    })
}

/// Currency codes to ids, in order, each once; 422 under `field` for one that does not exist.
fn currencies(
    conn: &mut DbConn,
    codes: &[String],
    field: &'static str,
) -> Result<Vec<CurrencyId>, ApiError> {
    let mut ids = Vec::with_capacity(codes.len());
    for code in codes {
        let found = currency(conn, code, "unknown_currency").map_err(|_| {
            ApiError::refused_field("unknown_currency", field, format!("no currency {code:?}"))
        })?;
        if !ids.contains(&found.id) {
            ids.push(found.id);
        }
    }
    Ok(ids)
}

/// `max_spend` as atoms per currency.
fn max_spend(
    conn: &mut DbConn,
    raw: &BTreeMap<String, String>,
) -> Result<HashMap<CurrencyId, i64>, ApiError> {
    if raw.len() > MAX_SOURCES {
        return Err(ApiError::refused_field(
            "bad_request",
            "max_spend",
            format!("at most {MAX_SOURCES} currencies"),
        ));
    }
    let mut limits = HashMap::new();
    for (code, amount) in raw {
        let found = currency(conn, code, "unknown_currency").map_err(|_| {
            ApiError::refused_field(
                "unknown_currency",
                "max_spend",
                format!("no currency {code:?}"),
            )
        })?;
        let atoms = Amount::parse(amount, found.scale)
            .ok()
            .filter(|a| a.atoms() >= 0)
            .ok_or_else(|| {
                ApiError::refused_field(
                    "bad_amount",
                    "max_spend",
                    format!(
                        "the most to spend of {code} is a number of at most {} decimals, not {amount:?}",
                        found.scale.decimals()
                    ),
                )
            })?;
        limits.insert(found.id, atoms.atoms());
    }
    Ok(limits)
}

fn amounts(names: &Names, lines: &[(CurrencyId, i64)]) -> BTreeMap<String, String> {
    lines
        .iter()
        .map(|&(currency, atoms)| (names.code(currency), names.amount(currency, atoms)))
        .collect()
}

fn legs(exchange: &Exchange, names: &Names, executed: &Executed) -> Vec<LegView> {
    executed
        .legs
        .iter()
        .map(|leg| {
            let mut fees: Vec<(CurrencyId, i64)> = Vec::new();
            let mut route = Vec::new();
            let mut worst_price = Vec::new();
            for hop in &leg.hops {
                let Some(market) = exchange.market_by_id(hop.step.market) else {
                    continue;
                };
                let spec = &market.spec;
                route.push(spec.symbol());
                worst_price.push(spec.price(hop.limit_ticks).to_string());
                // A market's fee is taken from what it delivers.
                let fee_currency = match hop.step.side {
                    scrip_matching::Side::Buy => spec.base,
                    scrip_matching::Side::Sell => spec.quote,
                };
                match fees.iter_mut().find(|(c, _)| *c == fee_currency) {
                    Some((_, atoms)) => *atoms += hop.fee_atoms,
                    None => fees.push((fee_currency, hop.fee_atoms)),
                }
            }
            let fees = amounts(names, &fees);
            LegView {
                pay_currency: names.code(leg.source),
                spend: names.amount(leg.source, leg.spent_atoms),
                route,
                worst_price,
                fees,
            }
        })
        .collect()
}

fn trade_views(exchange: &Exchange, trades: &[PaymentTrade]) -> Vec<PaymentTradeView> {
    trades
        .iter()
        .filter_map(|t| {
            let market = exchange.market_by_id(t.market)?;
            Some(PaymentTradeView {
                market: market.spec.symbol(),
                price: market.spec.price(t.price_ticks).to_string(),
                quantity: market.spec.quantity(t.quantity_lots).to_string(),
            })
        })
        .collect()
}

fn payment_view(exchange: &Exchange, parsed: &Parsed, executed: &Executed) -> PaymentView {
    let names = &parsed.plan.names;
    let transfer = &executed.transfer;
    PaymentView {
        id: transfer.id.to_string(),
        request_id: parsed.plan.request.clone(),
        from: parsed.from.clone(),
        to: parsed.to.clone(),
        currency: parsed.code.clone(),
        amount: transfer.amount.to_string(),
        fee: transfer.fee.map(|f| f.to_string()),
        spent: amounts(names, &executed.spent),
        change: amounts(names, &executed.change),
        trades: trade_views(exchange, &executed.trades),
        memo: transfer.memo.clone(),
        created_at: rfc3339_from_us(transfer.created_at_us),
    }
}

#[utoipa::path(
    post, path = "/api/v1/quotes", tag = "payments", request_body = NewQuote,
    security(("bearer" = [])),
    responses(
        (status = 201, body = QuoteView, description = "what paying would cost now: priced by running the payment on the live books and rolling it back"),
        (status = 404, body = Problem, description = "unknown_account"),
        (status = 422, body = Problem, description = "no_route (the detail says what limited it), bad_amount, unknown_currency, insufficient_funds, max_balance_exceeded, not_admitted"),
        (status = 503, body = Problem, description = "market_unavailable: a market of the route is busy or served by another process; nothing was applied"),
    )
)]
#[post("/api/v1/quotes")]
pub async fn create_quote(
    caller: Caller,
    body: scrip_http::Json<NewQuote>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
    registry: web::Data<RegistryId>,
    limiter: Option<web::Data<ConversionLimiter>>,
) -> Result<HttpResponse, ApiError> {
    check_rate(limiter.as_ref().map(|l| l.get_ref()), &caller).await?;
    let slot = exchange.conversion_slot()?;
    let view = blocking(move || {
        let _slot = slot;
        let mut conn = ledger.conn()?;
        let shape = Shape {
            to: &body.to,
            currency: &body.currency,
            amount: &body.amount,
            from: body.from.as_deref(),
            pay_with: body.pay_with.as_deref(),
            max_hops: body.max_hops,
        };
        let parsed = parse(&mut conn, &exchange, &caller, shape, &registry)?;
        drop(conn);
        let Outcome::Quoted(executed) =
            execute::run(&exchange, ledger.pool(), &parsed.plan, &Mode::Quote)?
        else {
            return Err(ApiError::Internal("a quote was not quoted".into()));
        };
        let plan = &parsed.plan;
        let token = QuoteToken {
            payer: plan.payer.get(),
            to: plan.recipient.get(),
            currency: plan.currency.get(),
            amount_atoms: plan.amount.atoms(),
            spend: executed.spent.iter().map(|&(c, a)| (c.get(), a)).collect(),
            expires_us: scrip_http::now_us() + QUOTE_TTL_US,
        };
        Ok(QuoteView {
            id: token.encode(),
            to: parsed.to.clone(),
            currency: parsed.code.clone(),
            amount: plan.amount.to_string(),
            expires_at: rfc3339_from_us(token.expires_us),
            legs: legs(&exchange, &plan.names, &executed),
            spend: amounts(&plan.names, &executed.spent),
            change: amounts(&plan.names, &executed.change),
            fee: executed.transfer.fee.map(|f| f.to_string()),
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Bounds a payment by its quote: the same payment, not expired, no currency costing more
/// than the quote said (and none the quote did not use).
fn apply_quote(plan: &mut PaymentPlan, raw: &str) -> Result<(), ApiError> {
    let quote = QuoteToken::decode(raw)?;
    let same = quote.payer == plan.payer.get()
        && quote.to == plan.recipient.get()
        && quote.currency == plan.currency.get()
        && quote.amount_atoms == plan.amount.atoms();
    if !same {
        return Err(ApiError::refused_field(
            "bad_quote",
            "quote_id",
            "the quote was made for another payment (payer, recipient, currency or amount)",
        ));
    }
    if scrip_http::now_us() > quote.expires_us {
        return Err(ExchangeError::QuoteExpired.into());
    }
    let quoted: Vec<CurrencyId> = quote
        .spend
        .iter()
        .map(|&(c, _)| CurrencyId::new(c))
        .collect();
    if plan.pay_with.is_none() {
        plan.pay_with = Some(quoted.clone());
    }
    for currency in plan
        .pay_with
        .iter()
        .flatten()
        .chain(std::iter::once(&plan.currency))
    {
        let quoted_atoms = quote
            .spend
            .iter()
            .find(|&&(c, _)| c == currency.get())
            .map_or(0, |&(_, a)| a);
        let limit = plan.max_spend.entry(*currency).or_insert(quoted_atoms);
        *limit = (*limit).min(quoted_atoms);
    }
    Ok(())
}

/// Makes the payment pay request `id`: it must be open and ask for exactly this payment.
fn for_request(conn: &mut DbConn, plan: &mut PaymentPlan, id: &str) -> Result<(), ApiError> {
    use scrip_ledger::requests;
    let row = requests::find(conn, id)?
        .ok_or_else(|| ApiError::not_found("not_found", format!("no payment request {id:?}")))?;
    row.payable(scrip_http::now_us())?;
    if row.to() != plan.recipient
        || row.currency() != plan.currency
        || row.amount_atoms != plan.amount.atoms()
    {
        return Err(ApiError::refused_field(
            "bad_request",
            "request_id",
            format!(
                "the request asks for {} to be paid to its recipient; pay exactly that",
                plan.names.say(row.currency(), row.amount_atoms)
            ),
        ));
    }
    if plan.memo.is_none() {
        plan.memo = row.memo;
    }
    plan.request = Some(row.id);
    Ok(())
}

/// The per-caller budget of quotes and payments (the wallet's payments budget, by the same
/// name, so with Redis one budget covers both): each borrows markets and holds them.
#[derive(Debug)]
pub struct ConversionLimiter(pub scrip_http::RateLimiter);

/// The caller's budget of payments (and quotes) that convert; shared by every endpoint that
/// pays through [`pay_for`].
pub async fn check_rate(
    limiter: Option<&ConversionLimiter>,
    caller: &Caller,
) -> Result<(), ApiError> {
    match limiter {
        Some(limiter) => limiter.0.check(&caller.id.to_string()).await,
        None => Ok(()),
    }
}

/// What a payment request came to: it ran (or replayed), or it became a proposal.
enum Answer {
    Ran(Outcome),
    Proposed(Box<scrip_governance::Proposed>),
}

#[utoipa::path(
    post, path = "/api/v1/payments", tag = "payments", request_body = NewPayment,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first result for the same body")),
    responses(
        (status = 201, body = PaymentView, description = "the recipient received exactly `amount`; what each currency cost and the trades that converted it"),
        (status = 202, body = scrip_governance::Proposed, description = "a payment out of a business's issuing account above what one owner may issue alone: a proposal the other owners approve"),
        (status = 403, body = Problem, description = "not_owner"),
        (status = 404, body = Problem, description = "unknown_account"),
        (status = 409, body = Problem, description = "idempotency_conflict, already_paid (the payment request)"),
        (status = 422, body = Problem, description = "no_route, slippage_exceeded (more than max_spend or the quote), quote_expired, bad_quote, request_expired, insufficient_funds, max_balance_exceeded, not_admitted, bad_amount; nothing changed"),
        (status = 503, body = Problem, description = "market_unavailable: a market of the route is busy or served by another process; nothing was applied"),
    )
)]
#[post("/api/v1/payments")]
pub async fn create_payment(
    request: HttpRequest,
    caller: Caller,
    body: scrip_http::Json<NewPayment>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
    registry: web::Data<RegistryId>,
    limiter: Option<web::Data<ConversionLimiter>>,
) -> Result<HttpResponse, ApiError> {
    check_rate(limiter.as_ref().map(|l| l.get_ref()), &caller).await?;
    let key = idempotency_key(&request)?;
    let body = body.into_inner();
    let hash = request_hash("POST /api/v1/payments", &body);
    let scope = caller.id;
    if let Some(key) = &key {
        let (reader, key, hash) = (ledger.clone(), key.clone(), hash.clone());
        let stored = blocking(move || Ok(reader.idempotent_lookup(scope, &key, &hash)?)).await?;
        if let Some(stored) = stored {
            return Ok(idempotent_response(&stored, true));
        }
    }
    let notifier_exchange = exchange.clone();
    let slot = exchange.conversion_slot()?;
    let (parsed, answer) = blocking(move || {
        let _slot = slot;
        let mut conn = ledger.conn()?;
        let shape = Shape {
            to: &body.to,
            currency: &body.currency,
            amount: &body.amount,
            from: body.from.as_deref(),
            pay_with: body.pay_with.as_deref(),
            max_hops: body.max_hops,
        };
        let mut parsed = parse(&mut conn, &exchange, &caller, shape, &registry)?;
        parsed.plan.memo = scrip_http::memo(body.memo.as_deref())?;
        if let Some(raw) = &body.max_spend {
            parsed.plan.max_spend = max_spend(&mut conn, raw)?;
        }
        if let Some(id) = &body.request_id {
            for_request(&mut conn, &mut parsed.plan, id)?;
        }
        if let Some(raw) = &body.quote_id {
            apply_quote(&mut parsed.plan, raw)?;
        }
        let payout = scrip_governance::Payout {
            payer: &parsed.payer,
            currency: &parsed.target,
            amount_atoms: parsed.plan.amount.atoms(),
            asked: scrip_governance::IssuePayload {
                to: parsed.to.clone(),
                currency: parsed.code.clone(),
                amount: parsed.plan.amount.to_string(),
                memo: parsed.plan.memo.clone(),
                request_id: parsed.plan.request.clone(),
            },
            caller: caller.id,
        };
        // Converting the business's own currency would issue it outside the rule's reach.
        for &source in parsed.plan.pay_with.iter().flatten() {
            let paying = scrip_ledger::currency_by_id(&mut conn, source)?;
            if source != parsed.target.id
                && scrip_governance::issuing_needs_approval(&mut conn, &parsed.payer, &paying)?
            {
                return Err(scrip_governance::needs_approval(
                    &parsed.payer,
                    paying.code.as_str(),
                ));
            }
        }
        let idempotency = key.as_ref().map(|key| (scope, key, hash.as_str()));
        if let Some(proposed) = scrip_governance::issue_or_propose(&mut conn, &payout, idempotency)?
        {
            return Ok((parsed, Answer::Proposed(Box::new(proposed))));
        }
        drop(conn);
        let idempotency = key.map(|key| IdempotentRequest {
            scope,
            key,
            request_hash: hash,
        });
        let render = |executed: &Executed| {
            serde_json::to_string(&payment_view(&exchange, &parsed, executed)).map_err(|e| {
                ExchangeError::Invariant(format!("cannot store a payment's answer: {e}"))
            })
        };
        let mode = Mode::Pay {
            idempotency,
            render: &render,
        };
        let outcome = execute::run(&exchange, ledger.pool(), &parsed.plan, &mode)?;
        Ok((parsed, Answer::Ran(outcome)))
    })
    .await?;
    let outcome = match answer {
        Answer::Ran(outcome) => outcome,
        Answer::Proposed(proposed) => return Ok(HttpResponse::Accepted().json(proposed)),
    };
    match outcome {
        Outcome::Paid(executed) => {
            let view = payment_view(&notifier_exchange, &parsed, &executed);
            notifier_exchange.announce_payment(parsed.plan.recipient, &view);
            Ok(HttpResponse::Created()
                .insert_header((REPLAYED_HEADER, "false"))
                .json(view))
        }
        Outcome::Replayed(stored) => Ok(idempotent_response(&stored, true)),
        Outcome::Quoted(_) => Err(ApiError::Internal("a payment was only quoted".into())),
    }
}

/// A payment another service makes on its caller's behalf (a marketplace deal), checked,
/// converted and answered exactly as `POST /api/v1/payments` would, with `settles` done in
/// the payment's own transaction. Blocking: call it from a blocking thread.
#[derive(Debug)]
pub struct PayFor<'a> {
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub currency: &'a str,
    pub amount: &'a str,
    pub pay_with: Option<&'a [String]>,
    pub max_spend: Option<&'a BTreeMap<String, String>>,
    pub memo: Option<String>,
    pub settles: std::sync::Arc<dyn super::execute::Settles>,
}

/// Makes `order` ([`PayFor`]); a payment out of a business's issuing account that its
/// approval rule would send to the other owners is refused (`needs_approval`), since the
/// deal cannot wait for them.
pub fn pay_for(
    ledger: &Ledger,
    exchange: &Exchange,
    caller: &Caller,
    registry: &RegistryId,
    order: PayFor<'_>,
) -> Result<PaymentView, ApiError> {
    // Bounded like `POST /payments`: a payment may borrow markets, so few run at once.
    let _slot = exchange.conversion_slot()?;
    let mut conn = ledger.conn()?;
    let shape = Shape {
        to: order.to,
        currency: order.currency,
        amount: order.amount,
        from: order.from,
        pay_with: order.pay_with,
        max_hops: None,
    };
    let mut parsed = parse(&mut conn, exchange, caller, shape, registry)?;
    parsed.plan.memo = order.memo;
    if let Some(raw) = order.max_spend {
        parsed.plan.max_spend = max_spend(&mut conn, raw)?;
    }
    let sources =
        std::iter::once(parsed.target.id).chain(parsed.plan.pay_with.iter().flatten().copied());
    for source in sources {
        let paying = scrip_ledger::currency_by_id(&mut conn, source)?;
        if scrip_governance::issuing_needs_approval(&mut conn, &parsed.payer, &paying)? {
            return Err(scrip_governance::needs_approval(
                &parsed.payer,
                paying.code.as_str(),
            ));
        }
    }
    drop(conn);
    parsed.plan.settles = Some(order.settles);
    let render = |executed: &Executed| {
        serde_json::to_string(&payment_view(exchange, &parsed, executed))
            .map_err(|e| ExchangeError::Invariant(format!("cannot render a payment: {e}")))
    };
    let mode = Mode::Pay {
        idempotency: None,
        render: &render,
    };
    match execute::run(exchange, ledger.pool(), &parsed.plan, &mode)? {
        Outcome::Paid(executed) => {
            let view = payment_view(exchange, &parsed, &executed);
            exchange.announce_payment(parsed.plan.recipient, &view);
            Ok(view)
        }
        Outcome::Replayed(_) | Outcome::Quoted(_) => {
            Err(ApiError::Internal("a deal's payment was not made".into()))
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/payments/{id}", tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the payment's id (its transfer's)")),
    responses(
        (status = 200, body = PaymentView, description = "one payment the caller made or received"),
        (status = 404, body = Problem, description = "not_found"),
    )
)]
#[get("/api/v1/payments/{id}")]
pub async fn get_payment(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("not_found", "no such payment");
    let id = path.parse::<i64>().map_err(|_| not_found())?;
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let entry = journal_entry(&mut conn, TransferId::new(id))?.ok_or_else(not_found)?;
        if entry.transfer.kind != scrip_ledger::TransferKind::Payment {
            return Err(not_found());
        }
        let party = |conn: &mut DbConn, p: PrincipalId| -> Result<bool, ApiError> {
            Ok(p == caller.id || is_owner(conn, p, caller.id)?)
        };
        let payer_sees = party(&mut conn, entry.from_principal)?;
        if !payer_sees && !party(&mut conn, entry.to_principal)? {
            return Err(not_found());
        }
        let (spends, trades) = store::parts(&mut conn, entry.transfer.id)?;
        let mut names = Names::default();
        for spend in &spends {
            let found = scrip_ledger::currency_by_id(&mut conn, spend.currency)?;
            names
                .0
                .insert(found.id, (found.code.to_string(), found.scale));
        }
        let line = |pick: fn(&store::Spend) -> i64| -> BTreeMap<String, String> {
            spends
                .iter()
                .filter(|s| pick(s) > 0)
                .map(|s| (names.code(s.currency), names.amount(s.currency, pick(s))))
                .collect()
        };
        let transfer = &entry.transfer;
        let request_id = scrip_ledger::requests::paid_by_transfer(&mut conn, transfer.id)?;
        // The recipient sees what it received; what the payer's conversion cost is the payer's.
        let (spent, change, trades) = if payer_sees {
            (
                line(|s| s.spent_atoms),
                line(|s| s.change_atoms),
                trade_views(&exchange, &trades),
            )
        } else {
            (BTreeMap::new(), BTreeMap::new(), Vec::new())
        };
        Ok(PaymentView {
            id: transfer.id.to_string(),
            request_id,
            from: entry.from.to_string(),
            to: entry.to.to_string(),
            currency: entry.code.to_string(),
            amount: transfer.amount.to_string(),
            fee: None,
            spent,
            change,
            trades,
            memo: transfer.memo.clone(),
            created_at: rfc3339_from_us(transfer.created_at_us),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
