//! Executing a payment that converts through the books (the imperative shell).
//!
//! The payment borrows every market its routes may cross from their writers, in ascending
//! market id order ([`MarketHandle::borrow`]), then runs in one database transaction:
//!
//! 1. the payer's own balance in the recipient's currency is used first;
//! 2. for each source currency in the payer's order of preference, the cheapest route that
//!    the source can afford is sized on the borrowed books ([`route`]) and crossed: one
//!    immediate-or-cancel taker order per market, through the same order-entry code as any
//!    order (policies, holds, fees, self-trade prevention), settled by one hold batch;
//!    a source that cannot pay all that is missing pays as much as it can;
//! 3. the payment itself is one ledger transfer, with the currency's transfer fee;
//! 4. what each currency cost is measured on the payer's balances and checked against
//!    `max_spend` (and the quote): more is `slippage_exceeded`, and everything rolls back.
//!
//! Only when the transaction commits are the borrowed books replaced by the ones the payment
//! changed and their trades published; on any refusal the writers keep the books they had.
//! A quote is the same run, rolled back at the end: it costs what paying would have cost.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use scrip_domain::{Amount, CurrencyId, PrincipalId};
use scrip_ledger::retry::{Retry, retry_transient};
use scrip_ledger::{
    BatchRules, HoldBatch, LedgerError, Position, StoredResponse, Transfer, TransferKind,
    TransferRequest, idempotency,
};
use scrip_matching::Side;
use scrip_store::{DbConn, DbPool, write_transaction};

use super::route::{self, Edge, Offers, Shortfall, SizedHop, Step};
use crate::entry::EntryPolicies;
use crate::spec::MarketId;
use crate::state::{
    Changes, Command, IdempotentRequest, MarketState, OrderType, PlaceOrder, Reply,
};
use crate::worker::{Loan, Returned, still_owner};
use crate::{Exchange, ExchangeError, MarketHandle, store};

/// At most this many markets are borrowed for one payment.
const MAX_BORROWED: usize = 24;

/// A payment to make (or quote), as the handler validated it.
#[derive(Debug, Clone)]
pub struct PaymentPlan {
    pub payer: PrincipalId,
    pub recipient: PrincipalId,
    pub currency: CurrencyId,
    pub amount: Amount,
    /// Every currency the payment may touch, by id, to name them in answers and refusals.
    pub names: Names,
    /// Sources in order of preference; `None`: every currency the payer holds.
    pub pay_with: Option<Vec<CurrencyId>>,
    pub max_hops: usize,
    /// The most each currency may cost (from `max_spend` and the quote).
    pub max_spend: HashMap<CurrencyId, i64>,
    pub memo: Option<String>,
    /// The payment request this pays (claimed in the payment's transaction), if any.
    pub request: Option<String>,
    /// What else the payment settles in its transaction (a marketplace deal), if anything.
    pub settles: Option<Arc<dyn Settles>>,
}

/// Work another service does inside a payment's own transaction (the marketplace's deal):
/// [`Settles::claim`] runs before the transfer, so that two payments of one thing cannot both
/// commit; [`Settles::complete`] after it, with the transfer made. Either refusing rolls the
/// whole payment back, trades included.
pub trait Settles: Send + Sync + std::fmt::Debug {
    fn claim(&self, conn: &mut DbConn) -> Result<(), LedgerError>;
    fn complete(&self, conn: &mut DbConn, transfer: &Transfer) -> Result<(), LedgerError>;
}

/// Currencies' codes and scales, to say amounts in words.
#[derive(Debug, Clone, Default)]
pub struct Names(pub HashMap<CurrencyId, (String, scrip_domain::Scale)>);

impl Names {
    pub fn code(&self, currency: CurrencyId) -> String {
        self.0
            .get(&currency)
            .map_or_else(|| format!("currency {currency}"), |(code, _)| code.clone())
    }

    /// `atoms` of `currency` as a decimal string.
    pub fn amount(&self, currency: CurrencyId, atoms: i64) -> String {
        self.0.get(&currency).map_or_else(
            || atoms.to_string(),
            |(_, scale)| Amount::from_atoms(atoms, *scale).to_string(),
        )
    }

    /// `"1.50 BREAD"`.
    pub fn say(&self, currency: CurrencyId, atoms: i64) -> String {
        format!("{} {}", self.amount(currency, atoms), self.code(currency))
    }
}

/// One source currency's part of a payment: the route it took and what it paid.
#[derive(Debug, Clone)]
pub struct Leg {
    pub source: CurrencyId,
    pub spent_atoms: i64,
    /// The markets crossed, each with its side, worst price and fee.
    pub hops: Vec<SizedHop>,
}

/// Amounts by currency, in the order they matter: `(currency, atoms)`.
pub type Amounts = Vec<(CurrencyId, i64)>;

/// A trade a payment made, in its market.
#[derive(Debug, Clone, Copy)]
pub struct PaymentTrade {
    pub market: MarketId,
    pub trade_id: i64,
    pub price_ticks: i64,
    pub quantity_lots: i64,
}

/// What a payment did (or, for a quote, would do).
#[derive(Debug, Clone)]
pub struct Executed {
    pub transfer: Transfer,
    pub legs: Vec<Leg>,
    /// What each currency's balance fell by, in the order the currencies were used.
    pub spent: Amounts,
    /// What the routes bought beyond the need (rounded up to lots), left with the payer.
    pub change: Amounts,
    pub trades: Vec<PaymentTrade>,
}

/// How to run: pay for real, storing the answer under the idempotency key; or quote.
pub enum Mode<'a> {
    Pay {
        idempotency: Option<IdempotentRequest>,
        render: &'a dyn Fn(&Executed) -> Result<String, ExchangeError>,
    },
    Quote,
}

impl std::fmt::Debug for Mode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pay { idempotency, .. } => f
                .debug_struct("Pay")
                .field("idempotency", idempotency)
                .finish_non_exhaustive(),
            Self::Quote => f.write_str("Quote"),
        }
    }
}

/// A payment's answer: made now, replayed from its idempotency key, or quoted.
#[derive(Debug)]
pub enum Outcome {
    Paid(Box<Executed>),
    Replayed(StoredResponse),
    Quoted(Box<Executed>),
}

/// Why the transaction ended without committing: a refusal, or a quote done.
enum Stop {
    Refused(ExchangeError),
    Quoted(Box<Executed>),
    Replayed(StoredResponse),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(error) => error.fmt(f),
            Self::Quoted(_) => f.write_str("quoted"),
            Self::Replayed(_) => f.write_str("replayed"),
        }
    }
}

impl From<diesel::result::Error> for Stop {
    fn from(error: diesel::result::Error) -> Self {
        Self::Refused(error.into())
    }
}

impl From<ExchangeError> for Stop {
    fn from(error: ExchangeError) -> Self {
        Self::Refused(error)
    }
}

impl From<LedgerError> for Stop {
    fn from(error: LedgerError) -> Self {
        Self::Refused(error.into())
    }
}

/// A borrowed market: the loan (its writer's state, untouched) and the copy this attempt
/// works on.
struct Borrowed {
    handle: Arc<MarketHandle>,
    loan: Loan,
    working: MarketState,
    changes: Vec<Changes>,
}

/// Makes (or quotes) `plan`. Blocking: call it from a blocking thread.
pub fn run(
    exchange: &Exchange,
    pool: &DbPool,
    plan: &PaymentPlan,
    mode: &Mode<'_>,
) -> Result<Outcome, ExchangeError> {
    let sources = {
        let mut conn = pool.get().map_err(LedgerError::from)?;
        // A payer who holds enough of the currency itself pays it plainly: no market is
        // borrowed (and held up). Should the balance fall meanwhile, the payment is refused
        // with insufficient_funds rather than converted.
        if own_balance_covers(&mut conn, plan)? {
            Vec::new()
        } else {
            sources(&mut conn, plan)?
        }
    };
    let mut borrowed = borrow(exchange, plan, &sources)?;
    let mut conn = pool.get().map_err(LedgerError::from)?;
    let result = retry_transient(
        Retry::MARKET,
        |stop: &Stop| matches!(stop, Stop::Refused(ExchangeError::Ledger(e)) if e.is_transient()),
        |_attempt| {
            for market in &mut borrowed {
                market.working = market.loan.state.clone();
                market.changes.clear();
            }
            write_transaction(&mut conn, |conn| {
                attempt(conn, &mut borrowed, plan, &sources, mode)
            })
        },
    );
    let committed = result.is_ok();
    // A refusal by a rule rolled back cleanly; a failure of the database may have hidden
    // whether the commit happened.
    let unknown =
        matches!(&result, Err(Stop::Refused(ExchangeError::Ledger(e))) if !e.is_business_rule());
    for market in borrowed {
        let Borrowed {
            loan,
            working,
            changes,
            ..
        } = market;
        loan.give_back(if committed && !changes.is_empty() {
            Returned::Committed {
                state: Box::new(working),
                changes,
            }
        } else if unknown {
            Returned::Unknown
        } else {
            Returned::Unchanged
        });
    }
    match result {
        Ok(executed) => Ok(Outcome::Paid(Box::new(executed))),
        Err(Stop::Quoted(executed)) => Ok(Outcome::Quoted(executed)),
        Err(Stop::Replayed(stored)) => Ok(Outcome::Replayed(stored)),
        Err(Stop::Refused(error)) => Err(error),
    }
}

/// What the payment and its transfer fee come to, in atoms of the currency paid.
fn due_atoms(rules: &BatchRules, plan: &PaymentPlan) -> Result<(i64, i64), ExchangeError> {
    let target = rules
        .get(plan.currency)
        .ok_or(LedgerError::UnknownCurrency)?;
    let amount_atoms = target.atoms(plan.amount)?;
    let fee_atoms = target
        .transfer_fee_of(plan.payer, amount_atoms)
        .map_or(0, |(_, fee)| fee);
    Ok((amount_atoms, fee_atoms))
}

/// Whether the payer's available balance in the currency paid covers the payment and its fee.
fn own_balance_covers(conn: &mut DbConn, plan: &PaymentPlan) -> Result<bool, ExchangeError> {
    let rules = BatchRules::load(conn, &[plan.currency])?;
    let (amount_atoms, fee_atoms) = due_atoms(&rules, plan)?;
    let available = match scrip_ledger::account(conn, plan.payer, plan.currency)? {
        Some(account) => account.available().atoms(),
        None => not_opened_credit(conn, plan)?,
    };
    Ok(available >= amount_atoms.saturating_add(fee_atoms))
}

/// What the payer may spend in the currency paid before its account there is opened (a
/// mutual-credit member's credit line): the transfer opens the account with that floor.
fn not_opened_credit(conn: &mut DbConn, plan: &PaymentPlan) -> Result<i64, ExchangeError> {
    let currency = scrip_ledger::currency_by_id(conn, plan.currency)?;
    Ok(scrip_ledger::credit_before_opening(
        conn, &currency, plan.payer,
    )?)
}

/// The currencies that may pay, in order: `pay_with`, or every currency the payer holds
/// something of, largest balance first (ties by code).
fn sources(conn: &mut DbConn, plan: &PaymentPlan) -> Result<Vec<CurrencyId>, ExchangeError> {
    if let Some(listed) = &plan.pay_with {
        return Ok(listed.clone());
    }
    let mut held = scrip_ledger::holdings(conn, plan.payer)?;
    held.retain(|h| h.account.currency_id != plan.currency && h.account.balance.atoms() > 0);
    held.sort_by(|a, b| {
        b.account
            .balance
            .atoms()
            .cmp(&a.account.balance.atoms())
            .then_with(|| a.code.as_str().cmp(b.code.as_str()))
    });
    Ok(held.into_iter().map(|h| h.account.currency_id).collect())
}

/// Borrows every market on a route from a source to the target, in ascending id order; gives
/// back what it took when one cannot be borrowed (`market_unavailable`: full, or owned by
/// another process).
fn borrow(
    exchange: &Exchange,
    plan: &PaymentPlan,
    sources: &[CurrencyId],
) -> Result<Vec<Borrowed>, ExchangeError> {
    let handles = exchange.markets();
    let edges = edges(&handles);
    // Sources in order of preference, each with every market its routes may cross, as long
    // as they fit in what one payment may borrow (later sources are left out).
    let mut wanted: BTreeSet<MarketId> = BTreeSet::new();
    for &source in sources {
        let mut with = wanted.clone();
        for found in route::routes(&edges, source, plan.currency, plan.max_hops) {
            with.extend(found.iter().map(|step| step.market));
        }
        if with.len() <= MAX_BORROWED {
            wanted = with;
        } else if wanted.is_empty() {
            return Err(ExchangeError::NoRoute(format!(
                "paying with {} could cross {} markets, more than the {MAX_BORROWED} one payment \
                 may; lower max_hops",
                plan.names.code(source),
                with.len()
            )));
        }
    }
    let mut borrowed: Vec<Borrowed> = Vec::with_capacity(wanted.len());
    for id in wanted {
        let Some(handle) = handles.iter().find(|h| h.spec.id == id) else {
            continue;
        };
        match handle.borrow() {
            Ok(loan) => borrowed.push(Borrowed {
                handle: Arc::clone(handle),
                working: loan.state.clone(),
                loan,
                changes: Vec::new(),
            }),
            Err(error) => {
                for market in borrowed {
                    market.loan.give_back(Returned::Unchanged);
                }
                return Err(error);
            }
        }
    }
    Ok(borrowed)
}

fn edges(handles: &[Arc<MarketHandle>]) -> Vec<Edge> {
    handles
        .iter()
        .map(|h| Edge {
            market: h.spec.id,
            base: h.spec.base,
            quote: h.spec.quote,
        })
        .collect()
}

/// A borrowed book as the payer meets it.
struct OffersTo<'a> {
    state: &'a MarketState,
    payer: PrincipalId,
}

impl Offers for OffersTo<'_> {
    fn offered(&self, side: Side, visit: &mut dyn FnMut(i64, i64) -> bool) {
        self.state.offered(side, self.payer, visit);
    }
}

/// One attempt, inside the transaction.
fn attempt(
    conn: &mut DbConn,
    borrowed: &mut [Borrowed],
    plan: &PaymentPlan,
    sources: &[CurrencyId],
    mode: &Mode<'_>,
) -> Result<Executed, Stop> {
    if let Mode::Pay {
        idempotency: Some(request),
        ..
    } = mode
        && let Some(stored) =
            idempotency::replay(conn, request.scope, &request.key, &request.request_hash)?
    {
        return Err(Stop::Replayed(stored));
    }
    for market in borrowed.iter() {
        if let Some(pid) = market.loan.owner_pid {
            still_owner(conn, market.handle.spec.id, pid)?;
        }
    }
    let mut currencies: BTreeSet<CurrencyId> = sources.iter().copied().collect();
    currencies.insert(plan.currency);
    for market in borrowed.iter() {
        currencies.extend([market.handle.spec.base, market.handle.spec.quote]);
    }
    let currencies: Vec<CurrencyId> = currencies.into_iter().collect();
    lock_payer(conn, plan.payer, &currencies)?;
    let rules = BatchRules::load(conn, &currencies)?;
    let before = positions(conn, &rules, plan.payer, &currencies)?;
    let (amount_atoms, fee_atoms) = due_atoms(&rules, plan)?;
    let own_atoms = match before.get(&plan.currency) {
        Some(position) => position.available_atoms(),
        None => not_opened_credit(conn, plan)?,
    };
    let mut missing_atoms = amount_atoms + fee_atoms - own_atoms;
    let mut legs = Vec::new();
    let mut trades = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    let now_us = scrip_http::now_us();
    for &source in sources {
        if missing_atoms <= 0 {
            break;
        }
        if source == plan.currency {
            continue;
        }
        let funds_atoms = positions(conn, &rules, plan.payer, &[source])?
            .get(&source)
            .map_or(0, Position::available_atoms);
        let Some(chosen) = choose(
            borrowed,
            plan,
            source,
            missing_atoms,
            funds_atoms,
            &mut limits,
        ) else {
            continue;
        };
        let delivered = cross(
            conn,
            borrowed,
            &rules,
            plan.payer,
            &chosen,
            now_us,
            &mut trades,
        )?;
        missing_atoms -= delivered;
        legs.push(Leg {
            source,
            spent_atoms: chosen.first().map_or(0, |hop| hop.pays_atoms),
            hops: chosen,
        });
    }
    if missing_atoms > 0 {
        if sources.is_empty() {
            // Nothing to convert: the payer simply has too little of the currency itself.
            return Err(LedgerError::InsufficientFunds.into());
        }
        return Err(ExchangeError::NoRoute(no_route_detail(plan, &limits)).into());
    }
    if let Some(id) = &plan.request
        && !scrip_ledger::requests::claim(conn, id, plan.payer, now_us)?
    {
        // Paid or expired meanwhile: say which.
        let refusal = match scrip_ledger::requests::find(conn, id)? {
            Some(row) => row.payable(now_us).err(),
            None => None,
        };
        return Err(refusal.unwrap_or(LedgerError::AlreadyPaid).into());
    }
    if let Some(settles) = &plan.settles {
        settles.claim(conn)?;
    }
    let transfer = scrip_ledger::transfer(
        conn,
        &TransferRequest {
            currency: plan.currency,
            from: plan.payer,
            to: plan.recipient,
            amount: plan.amount,
            kind: TransferKind::Payment,
            memo: plan.memo.clone(),
        },
    )?;
    if let Some(id) = &plan.request {
        scrip_ledger::requests::record_transfer(conn, id, transfer.id)?;
    }
    if let Some(settles) = &plan.settles {
        settles.complete(conn, &transfer)?;
    }
    let after = positions(conn, &rules, plan.payer, &currencies)?;
    let (spent, change) = measure(&before, &after, sources, plan.currency);
    check_spend(&plan.names, &spent, &plan.max_spend)?;
    let executed = Executed {
        transfer,
        legs,
        spent,
        change,
        trades,
    };
    match mode {
        Mode::Quote => Err(Stop::Quoted(Box::new(executed))),
        Mode::Pay {
            idempotency,
            render,
        } => {
            super::store::record(conn, &executed)?;
            if let Some(request) = idempotency {
                let stored = StoredResponse {
                    status: 201,
                    body: render(&executed)?,
                };
                idempotency::remember(
                    conn,
                    request.scope,
                    &request.key,
                    &request.request_hash,
                    &stored,
                )?;
            }
            Ok(executed)
        }
    }
}

/// Locks the payer's accounts in `currencies` until commit (PostgreSQL; SQLite's write
/// transaction excludes other writers already), in ascending id order: what the payment
/// cost is measured as the change of these balances, so nothing else may move them
/// meanwhile (a payment received between the two reads would hide part of the cost from
/// `max_spend`). A deadlock with a transfer locking in another order is retried.
fn lock_payer(
    conn: &mut DbConn,
    payer: PrincipalId,
    currencies: &[CurrencyId],
) -> Result<(), ExchangeError> {
    use diesel::prelude::*;
    use scrip_store::schema::accounts;
    let wanted: Vec<i64> = currencies.iter().map(|c| c.get()).collect();
    let ids: Vec<i64> = accounts::table
        .filter(accounts::principal_id.eq(payer.get()))
        .filter(accounts::currency_id.eq_any(wanted))
        .order(accounts::id)
        .select(accounts::id)
        .load(conn)
        .map_err(LedgerError::from)?;
    for id in ids {
        scrip_store::lock_row(conn, "accounts", id).map_err(LedgerError::from)?;
    }
    Ok(())
}

/// The payer's accounts in `currencies` that exist, read in one query.
fn positions(
    conn: &mut DbConn,
    rules: &BatchRules,
    payer: PrincipalId,
    currencies: &[CurrencyId],
) -> Result<HashMap<CurrencyId, Position>, ExchangeError> {
    let read = HoldBatch::lock(conn, rules, currencies.iter().map(|&c| (payer, c)))?;
    Ok(currencies
        .iter()
        .filter_map(|&c| read.position(payer, c).map(|p| (c, p)))
        .collect())
}

/// What each currency cost (sources first, in order, then the target if its own balance
/// paid), and what is left over where balances grew.
fn measure(
    before: &HashMap<CurrencyId, Position>,
    after: &HashMap<CurrencyId, Position>,
    sources: &[CurrencyId],
    target: CurrencyId,
) -> (Amounts, Amounts) {
    let mut order: Vec<CurrencyId> = vec![target];
    order.extend(sources.iter().filter(|c| **c != target));
    let mut rest: Vec<CurrencyId> = after
        .keys()
        .filter(|c| !order.contains(c))
        .copied()
        .collect();
    rest.sort_unstable();
    order.extend(rest);
    let (mut spent, mut change) = (Vec::new(), Vec::new());
    for currency in order {
        let balance = |side: &HashMap<CurrencyId, Position>| {
            side.get(&currency).map_or(0, |p| p.balance_atoms)
        };
        let delta = balance(after) - balance(before);
        if delta < 0 {
            spent.push((currency, -delta));
        } else if delta > 0 {
            change.push((currency, delta));
        }
    }
    (spent, change)
}

fn check_spend(
    names: &Names,
    spent: &[(CurrencyId, i64)],
    max_spend: &HashMap<CurrencyId, i64>,
) -> Result<(), ExchangeError> {
    for &(currency, atoms) in spent {
        if let Some(&limit) = max_spend.get(&currency)
            && atoms > limit
        {
            return Err(ExchangeError::SlippageExceeded(format!(
                "the payment would cost {}, more than the {} allowed; the books moved since the quote",
                names.say(currency, atoms),
                names.amount(currency, limit)
            )));
        }
    }
    Ok(())
}

/// The route `source` pays by: the cheapest that delivers all that is missing within
/// `funds_atoms`, else the one that delivers the most. `None` when no route can deliver
/// anything; what limited it is added to `limits`.
fn choose(
    borrowed: &[Borrowed],
    plan: &PaymentPlan,
    source: CurrencyId,
    missing_atoms: i64,
    funds_atoms: i64,
    limits: &mut Vec<String>,
) -> Option<Vec<SizedHop>> {
    let handles: Vec<Arc<MarketHandle>> = borrowed.iter().map(|b| Arc::clone(&b.handle)).collect();
    let found = route::routes(&edges(&handles), source, plan.currency, plan.max_hops);
    if found.is_empty() {
        limits.push(format!(
            "no market leads from {} to {} within {} hops",
            plan.names.code(source),
            plan.names.code(plan.currency),
            plan.max_hops
        ));
        return None;
    }
    let size = |steps: &[Step], net: i64| -> Result<Vec<SizedHop>, Shortfall> {
        let hops: Vec<_> = steps
            .iter()
            .filter_map(|step| {
                let market = borrowed.iter().find(|b| b.handle.spec.id == step.market)?;
                let offers: Box<dyn Offers + '_> = Box::new(OffersTo {
                    state: &market.working,
                    payer: plan.payer,
                });
                Some((&market.handle.spec, *step, offers))
            })
            .collect();
        let refs: Vec<_> = hops
            .iter()
            .map(|(s, step, o)| (*s, *step, o.as_ref()))
            .collect();
        route::size_route(&refs, net)
    };
    let affordable =
        |hops: &Vec<SizedHop>| hops.first().is_some_and(|h| h.holds_atoms <= funds_atoms);
    let mut best: Option<Vec<SizedHop>> = None;
    for steps in &found {
        match size(steps, missing_atoms) {
            Ok(hops) if affordable(&hops) => {
                if best
                    .as_ref()
                    .is_none_or(|b| hops[0].pays_atoms < b[0].pays_atoms)
                {
                    best = Some(hops);
                }
            }
            Ok(hops) => limits.push(format!(
                "{} needs {} available, the payer has {}",
                route_name(borrowed, steps),
                plan.names.say(source, hops[0].holds_atoms),
                plan.names.amount(source, funds_atoms)
            )),
            Err(Shortfall::Depth { market }) => limits.push(format!(
                "the book of {} offers too little (the payer's own orders there are never traded with)",
                borrowed
                    .iter()
                    .find(|b| b.handle.spec.id == market)
                    .map_or_else(String::new, |b| b.handle.spec.symbol())
            )),
            Err(Shortfall::TooLarge) => limits.push("the amount is too large to convert".into()),
        }
    }
    if best.is_some() {
        return best;
    }
    // Nothing pays it all: the route that delivers the most within the funds (the largest
    // affordable net is found by bisection: sizing is monotone in the net).
    let mut partial: Option<(i64, Vec<SizedHop>)> = None;
    for steps in &found {
        let (mut low, mut high) = (0_i64, missing_atoms);
        let mut sized = None;
        while low < high {
            let middle = low + (high - low + 1) / 2;
            match size(steps, middle) {
                Ok(hops) if affordable(&hops) => {
                    low = middle;
                    sized = Some(hops);
                }
                _ => high = middle - 1,
            }
        }
        if let Some(hops) = sized
            && low > 0
            && partial.as_ref().is_none_or(|(net, _)| low > *net)
        {
            partial = Some((low, hops));
        }
    }
    partial.map(|(_, hops)| hops)
}

/// Crosses a sized route: one immediate-or-cancel taker order per market, settled by one hold
/// batch; returns what the last market delivered to the payer after its fee.
fn cross(
    conn: &mut DbConn,
    borrowed: &mut [Borrowed],
    rules: &BatchRules,
    payer: PrincipalId,
    hops: &[SizedHop],
    now_us: i64,
    trades: &mut Vec<PaymentTrade>,
) -> Result<i64, ExchangeError> {
    let mut keys = Vec::with_capacity(hops.len() + 1);
    for hop in hops {
        let spec = &market(borrowed, hop.step.market)?.handle.spec;
        let (pays, gets) = match hop.step.side {
            Side::Buy => (spec.quote, spec.base),
            Side::Sell => (spec.base, spec.quote),
        };
        keys.push((payer, pays));
        keys.push((payer, gets));
    }
    // What the route receives it must be able to hold (and spend, for the next market).
    HoldBatch::open_accounts(conn, rules, keys.iter().skip(1).copied())?;
    let mut holds = HoldBatch::lock(conn, rules, keys.iter().copied())?;
    let mut delivered = 0;
    let mut touched: Vec<(MarketId, Changes)> = Vec::with_capacity(hops.len());
    for hop in hops {
        let entry = market(borrowed, hop.step.market)?;
        let spec = entry.handle.spec.clone();
        let order = PlaceOrder {
            owner: payer,
            side: hop.step.side,
            order_type: OrderType::Limit,
            price_ticks: Some(hop.limit_ticks),
            quantity_lots: hop.lots,
            time_in_force: scrip_matching::TimeInForce::Ioc,
            post_only: false,
            client_order_id: Some("payment".into()),
            idempotency: None,
        };
        EntryPolicies::of(rules, spec.base, spec.quote)?.check(conn, &entry.working, &order)?;
        let mut changes = Changes::default();
        let reply = entry
            .working
            .apply(Command::Place(order), now_us, &mut holds, &mut changes)?;
        let Reply::Placed { order, fills } = reply else {
            return Err(ExchangeError::Invariant(
                "a payment's order was not placed".into(),
            ));
        };
        if order.filled_lots != hop.lots {
            return Err(ExchangeError::Invariant(format!(
                "a payment's order in {} filled {} of the {} lots it was sized for",
                spec.symbol(),
                order.filled_lots,
                hop.lots
            )));
        }
        let received: i64 = match hop.step.side {
            Side::Buy => spec.base_atoms(order.filled_lots).unwrap_or(0),
            Side::Sell => fills
                .iter()
                .filter_map(|f| spec.notional_atoms(f.price_ticks, f.quantity_lots))
                .sum(),
        };
        delivered = received - fills.iter().map(|f| f.fee_atoms).sum::<i64>();
        trades.extend(fills.iter().map(|f| PaymentTrade {
            market: spec.id,
            trade_id: f.trade_id,
            price_ticks: f.price_ticks,
            quantity_lots: f.quantity_lots,
        }));
        touched.push((spec.id, changes));
    }
    let committed = holds.commit(conn).map_err(|error| match error {
        LedgerError::MaxBalanceExceeded => ExchangeError::NoRoute(
            "an account on the route would go over its currency's maximum balance".into(),
        ),
        other => other.into(),
    })?;
    for (id, changes) in touched {
        store::write_changes(conn, id, &changes, &committed.new_hold_ids, now_us)?;
        let entry = market(borrowed, id)?;
        entry
            .working
            .resolve_holds(&changes, &committed.new_hold_ids);
        entry.changes.push(changes);
    }
    Ok(delivered)
}

fn market(borrowed: &mut [Borrowed], id: MarketId) -> Result<&mut Borrowed, ExchangeError> {
    borrowed
        .iter_mut()
        .find(|b| b.handle.spec.id == id)
        .ok_or_else(|| ExchangeError::Invariant(format!("market {id} was not borrowed")))
}

fn route_name(borrowed: &[Borrowed], steps: &[Step]) -> String {
    let symbols: Vec<String> = steps
        .iter()
        .filter_map(|s| borrowed.iter().find(|b| b.handle.spec.id == s.market))
        .map(|b| b.handle.spec.symbol())
        .collect();
    format!("the route through {}", symbols.join(", then "))
}

fn no_route_detail(plan: &PaymentPlan, limits: &[String]) -> String {
    let mut detail = format!(
        "{} {} cannot be paid with what the payer holds",
        plan.amount,
        plan.names.code(plan.currency)
    );
    if !limits.is_empty() {
        detail.push_str(": ");
        detail.push_str(&limits.join("; "));
    }
    detail
}
