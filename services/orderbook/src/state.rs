//! One market's state and the functional core of order entry.
//!
//! [`MarketState::apply`] takes one command, the matching engine and a [`HoldBatch`] (the
//! ledger's in-memory plan of holds and payments), and returns the answer for the client plus
//! the rows to write in [`Changes`]. It does no I/O: the worker (the imperative shell) locks
//! the accounts, applies a batch of commands, then writes the batch's changes and commits.
//! If the commit fails, the worker rebuilds this state from the database, which is the truth.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use scrip_domain::PrincipalId;
use scrip_ledger::{HoldBatch, HoldRef, TransferKind};
use scrip_matching::{Book, Event, Lots, NewOrder, OrderId, Side, Ticks, TimeInForce};

use crate::ExchangeError;
use crate::spec::MarketSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    Limit,
    Market,
}

impl OrderType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::Market => "market",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Limit, Self::Market]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Open,
    PartiallyFilled,
    Filled,
    /// Cancelled by its owner, reduced to nothing, or by self-trade prevention.
    Cancelled,
    /// Its time in force ran out: the unfilled rest of an IOC, FOK or market order.
    Expired,
}

impl OrderStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::PartiallyFilled => "partially_filled",
            Self::Filled => "filled",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Open,
            Self::PartiallyFilled,
            Self::Filled,
            Self::Cancelled,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// The status of an order that rests in the book.
    fn resting(filled_lots: Lots) -> Self {
        if filled_lots == 0 {
            Self::Open
        } else {
            Self::PartiallyFilled
        }
    }
}

pub fn side_str(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

pub fn parse_side(raw: &str) -> Option<Side> {
    match raw {
        "buy" => Some(Side::Buy),
        "sell" => Some(Side::Sell),
        _ => None,
    }
}

pub fn tif_str(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
    }
}

pub fn parse_tif(raw: &str) -> Option<TimeInForce> {
    match raw {
        "gtc" => Some(TimeInForce::Gtc),
        "ioc" => Some(TimeInForce::Ioc),
        "fok" => Some(TimeInForce::Fok),
        _ => None,
    }
}

/// A validated new order (the handler has parsed price and quantity with the market's spec).
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub owner: PrincipalId,
    pub side: Side,
    pub order_type: OrderType,
    /// Set for limit orders, absent for market orders.
    pub price_ticks: Option<Ticks>,
    pub quantity_lots: Lots,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub client_order_id: Option<String>,
    /// Set when the client sent an `Idempotency-Key`: the writer stores the answer with the
    /// key in the batch's transaction, and answers a repeat with the stored answer.
    pub idempotency: Option<IdempotentRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// Keys are scoped to the caller.
    pub scope: PrincipalId,
    pub key: scrip_ledger::IdempotencyKey,
    pub request_hash: String,
}

#[derive(Debug, Clone)]
pub enum Command {
    Place(PlaceOrder),
    Cancel {
        owner: PrincipalId,
        order: OrderId,
        reason: EndReason,
    },
    /// Lowers the order's total quantity to `quantity_lots` (not below what is filled).
    Reduce {
        owner: PrincipalId,
        order: OrderId,
        quantity_lots: Lots,
    },
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub id: OrderId,
    pub owner: PrincipalId,
    pub side: Side,
    pub order_type: OrderType,
    pub price_ticks: Option<Ticks>,
    pub quantity_lots: Lots,
    pub filled_lots: Lots,
    pub status: OrderStatus,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub client_order_id: Option<String>,
    pub hold: Option<HoldRef>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    /// Why it ended unfilled, once it has (kept apart from the row's other columns: written
    /// from the batch's notices).
    pub end_reason: Option<EndReason>,
}

/// What changes on an order that existed before the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderUpdate {
    pub quantity_lots: Lots,
    pub filled_lots: Lots,
    pub status: OrderStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRecord {
    pub id: i64,
    pub taker_order: OrderId,
    pub maker_order: OrderId,
    pub taker_side: Side,
    pub price_ticks: Ticks,
    pub quantity_lots: Lots,
    /// The buyer's fee, in base atoms.
    pub buyer_fee_atoms: i64,
    /// The seller's fee, in quote atoms.
    pub seller_fee_atoms: i64,
    pub created_at_us: i64,
}

/// One fill of an order, from that order's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub trade_id: i64,
    pub price_ticks: Ticks,
    pub quantity_lots: Lots,
    /// In the currency the order received.
    pub fee_atoms: i64,
    /// When the trade happened (its batch's time).
    pub at_us: i64,
}

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A new order, with the fills it got on arrival.
    Placed {
        order: OrderRecord,
        fills: Vec<Fill>,
    },
    /// An existing order was cancelled or reduced.
    Changed { order: OrderId },
    /// A repeat of an idempotent request: the first answer, as stored.
    Replayed(scrip_ledger::StoredResponse),
}

/// Why an order left the book before it filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its owner cancelled it.
    Requested,
    /// Self-trade prevention: its owner's new order would have traded with it.
    SelfTrade,
    /// Its owner's account cannot receive more of what it would get (the max balance).
    MaxBalance,
    /// The rest of an IOC or market order found nothing more at its price.
    Unfilled,
    /// A fill-or-kill order that could not fill in full.
    NotFillable,
    /// A post-only order that would have traded on arrival.
    WouldCross,
    /// Its owner's account in one of the market's currencies was frozen by the stewards.
    Frozen,
    /// Its owner is no longer a member of a members-only currency it would receive.
    NotMember,
}

impl EndReason {
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Requested,
            Self::SelfTrade,
            Self::MaxBalance,
            Self::Unfilled,
            Self::NotFillable,
            Self::WouldCross,
            Self::Frozen,
            Self::NotMember,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::SelfTrade => "self_trade",
            Self::MaxBalance => "max_balance",
            Self::Unfilled => "unfilled",
            Self::NotFillable => "not_fillable",
            Self::WouldCross => "would_cross",
            Self::Frozen => "frozen",
            Self::NotMember => "not_member",
        }
    }

    fn of(reason: scrip_matching::CancelReason) -> Self {
        use scrip_matching::CancelReason as Engine;
        match reason {
            Engine::Requested => Self::Requested,
            Engine::Unfilled => Self::Unfilled,
            Engine::NotFillable => Self::NotFillable,
            Engine::WouldCross => Self::WouldCross,
            Engine::SelfTrade => Self::SelfTrade,
        }
    }
}

/// What an order's owner is told once the batch commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderNotice {
    pub order: OrderId,
    pub owner: PrincipalId,
    pub side: Side,
    pub what: Noticed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noticed {
    /// It traded; its status and quantities after the fill.
    Filled {
        status: OrderStatus,
        filled_lots: Lots,
        remaining_lots: Lots,
    },
    /// It left the book unfilled (in part or whole): `Cancelled` or `Expired`, and why.
    Ended {
        status: OrderStatus,
        reason: EndReason,
    },
}

/// Everything a batch writes besides the ledger's part, and which book levels it touched.
#[derive(Debug, Default)]
pub struct Changes {
    pub inserted: Vec<OrderRecord>,
    inserted_index: HashMap<OrderId, usize>,
    pub updated: BTreeMap<OrderId, OrderUpdate>,
    pub trades: Vec<TradeRecord>,
    /// `(is_bid, price)` of every level whose quantity may have changed.
    pub touched_levels: BTreeSet<(bool, Ticks)>,
    /// What to tell the owners of the orders this batch filled or ended.
    pub notices: Vec<OrderNotice>,
}

impl Changes {
    fn insert(&mut self, record: OrderRecord) {
        self.inserted_index.insert(record.id, self.inserted.len());
        self.inserted.push(record);
    }

    /// Records a change of an order, whether it was made in this batch or before.
    fn update(&mut self, id: OrderId, update: OrderUpdate, now_us: i64) {
        match self.inserted_index.get(&id) {
            Some(&index) => {
                let record = &mut self.inserted[index];
                record.quantity_lots = update.quantity_lots;
                record.filled_lots = update.filled_lots;
                record.status = update.status;
                record.updated_at_us = now_us;
            }
            None => {
                self.updated.insert(id, update);
            }
        }
    }

    fn touch(&mut self, side: Side, price: Ticks) {
        self.touched_levels.insert((side == Side::Buy, price));
    }
}

/// A resting order's bookkeeping beside the engine: who owns it and what it still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resting {
    pub owner: PrincipalId,
    pub side: Side,
    pub price_ticks: Ticks,
    pub quantity_lots: Lots,
    pub filled_lots: Lots,
    pub hold: HoldRef,
    pub hold_remaining_atoms: i64,
}

/// An open order as loaded from the database when a market is (re)built.
#[derive(Debug, Clone, Copy)]
pub struct OpenOrder {
    pub id: OrderId,
    pub resting: Resting,
}

/// The order being entered while its events are processed.
struct Taker {
    record: OrderRecord,
    hold: HoldRef,
    hold_remaining_atoms: i64,
    fills: Vec<Fill>,
    /// What it has received so far in this command (base for a buy, quote for a sell): its
    /// fees are charged on the running total, so splitting never lowers them.
    received_atoms: i64,
    /// The price it rests at, once the engine has rested it.
    rested_at: Option<Ticks>,
    /// Why the engine ended what it did not fill or rest, if it did.
    ended: Option<EndReason>,
}

/// What the owner of a new order is told: that it traded, and that its rest expired.
fn notice_taker(taker: &Taker, changes: &mut Changes) {
    let record = &taker.record;
    let notice = |what| OrderNotice {
        order: record.id,
        owner: record.owner,
        side: record.side,
        what,
    };
    if record.filled_lots > 0 {
        changes.notices.push(notice(Noticed::Filled {
            status: record.status,
            filled_lots: record.filled_lots,
            remaining_lots: record.quantity_lots - record.filled_lots,
        }));
    }
    if let (OrderStatus::Expired, Some(reason)) = (record.status, record.end_reason) {
        changes.notices.push(notice(Noticed::Ended {
            status: OrderStatus::Expired,
            reason,
        }));
    }
}

/// One market: the engine's book plus what the ledger needs to know of each resting order.
/// Cloned when a payment borrows the market (the copy is kept only if the payment commits).
#[derive(Debug, Clone)]
pub struct MarketState {
    pub spec: MarketSpec,
    /// The registry's own principal, which collects fees.
    registry: PrincipalId,
    book: Book,
    resting: HashMap<OrderId, Resting>,
    /// Reused for every command, so matching allocates nothing in steady state.
    events: Vec<Event>,
    next_order_id: OrderId,
    next_trade_id: i64,
}

/// Ids of a market's orders and trades carry the market id in the high bits, so the market's
/// single owner assigns them without a database round trip and they are unique across markets.
pub const ID_MARKET_SHIFT: u32 = 40;

impl MarketState {
    /// Rebuilds a market from its open orders, entered in id order (their time priority).
    /// `last_order_id` and `last_trade_id` are the highest ids ever used in the market.
    pub fn restore(
        spec: MarketSpec,
        registry: PrincipalId,
        open_orders: &[OpenOrder],
        last_order_id: Option<i64>,
        last_trade_id: Option<i64>,
    ) -> Result<Self, ExchangeError> {
        let first_id = spec.id << ID_MARKET_SHIFT;
        let mut state = Self {
            registry,
            book: Book::new(),
            resting: HashMap::with_capacity(open_orders.len()),
            events: Vec::with_capacity(64),
            next_order_id: u64::try_from(last_order_id.map_or(first_id, |id| id + 1))
                .map_err(|_| ExchangeError::BadMarket("negative order id".into()))?,
            next_trade_id: last_trade_id.map_or(first_id, |id| id + 1),
            spec,
        };
        let mut sorted: Vec<&OpenOrder> = open_orders.iter().collect();
        sorted.sort_by_key(|o| o.id);
        for open in sorted {
            let r = open.resting;
            let order = NewOrder {
                id: open.id,
                owner: owner_key(r.owner),
                side: r.side,
                price: Some(r.price_ticks),
                quantity: r.quantity_lots - r.filled_lots,
                time_in_force: TimeInForce::Gtc,
                post_only: false,
            };
            state.events.clear();
            state.book.submit(order, &mut state.events).map_err(|e| {
                ExchangeError::BadOrder(format!("cannot restore order {}: {e:?}", open.id))
            })?;
            // Stored open orders never cross (the book is never crossed), so each one rests.
            let rested = state
                .events
                .iter()
                .any(|e| matches!(e, Event::Rested { .. }));
            if !rested {
                return Err(ExchangeError::BadOrder(format!(
                    "stored open order {} did not rest: the stored book is crossed",
                    open.id
                )));
            }
            state.resting.insert(open.id, r);
        }
        Ok(state)
    }

    pub fn book(&self) -> &Book {
        &self.book
    }

    /// What a taker on `side` owned by `owner` would meet, level by level, best first (see
    /// [`Book::offered`]); `visit` returns `false` to stop.
    pub fn offered(&self, side: Side, owner: PrincipalId, visit: impl FnMut(Ticks, Lots) -> bool) {
        self.book.offered(side, owner_key(owner), visit);
    }

    pub fn resting(&self, id: OrderId) -> Option<&Resting> {
        self.resting.get(&id)
    }

    /// The resting orders of `owner` that would receive `currency` when they trade (bids
    /// receive base, asks quote), oldest first.
    /// The owner's resting orders, oldest first.
    pub fn resting_of(&self, owner: PrincipalId) -> Vec<OrderId> {
        let mut ids: Vec<OrderId> = self
            .resting
            .iter()
            .filter(|(_, r)| r.owner == owner)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn resting_receiving(
        &self,
        owner: PrincipalId,
        currency: scrip_domain::CurrencyId,
    ) -> Vec<OrderId> {
        let mut ids: Vec<OrderId> = self
            .resting
            .iter()
            .filter(|(_, r)| {
                let receives = match r.side {
                    Side::Buy => self.spec.base,
                    Side::Sell => self.spec.quote,
                };
                r.owner == owner && receives == currency
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The next ids this market will assign, carried over when the state is rebuilt.
    pub fn next_ids(&self) -> (OrderId, i64) {
        (self.next_order_id, self.next_trade_id)
    }

    pub fn set_next_ids(&mut self, (order, trade): (OrderId, i64)) {
        self.next_order_id = self.next_order_id.max(order);
        self.next_trade_id = self.next_trade_id.max(trade);
    }

    /// The accounts whose available balance a command's hold needs, to lock before applying.
    pub fn paying_account(
        &self,
        command: &Command,
    ) -> Option<(PrincipalId, scrip_domain::CurrencyId)> {
        match command {
            Command::Place(order) => Some(match order.side {
                Side::Buy => (order.owner, self.spec.quote),
                Side::Sell => (order.owner, self.spec.base),
            }),
            Command::Cancel { .. } | Command::Reduce { .. } => None,
        }
    }

    /// Applies one command. A refusal (`Err`) leaves the state and the batch unchanged, except
    /// [`ExchangeError::Invariant`]: the book and the ledger's plan disagree, and both must be
    /// thrown away (the worker refuses the batch and rebuilds the market from the database).
    pub fn apply(
        &mut self,
        command: Command,
        now_us: i64,
        batch: &mut HoldBatch,
        changes: &mut Changes,
    ) -> Result<Reply, ExchangeError> {
        match command {
            Command::Place(order) => self.place(order, now_us, batch, changes),
            Command::Cancel {
                owner,
                order,
                reason,
            } => {
                self.cancel(owner, order, reason, now_us, batch, changes)?;
                Ok(Reply::Changed { order })
            }
            Command::Reduce {
                owner,
                order,
                quantity_lots,
            } => {
                self.reduce(owner, order, quantity_lots, now_us, batch, changes)?;
                Ok(Reply::Changed { order })
            }
        }
    }

    fn place(
        &mut self,
        order: PlaceOrder,
        now_us: i64,
        batch: &mut HoldBatch,
        changes: &mut Changes,
    ) -> Result<Reply, ExchangeError> {
        let spec = &self.spec;
        if order.quantity_lots <= 0 {
            return Err(ExchangeError::BadQuantity(
                "the quantity must be positive".into(),
            ));
        }
        // A market buy becomes an immediate-or-cancel limit at the worst price that sweeping
        // its quantity reaches now, so what it may spend is known before it trades.
        let (limit, time_in_force) = match (order.order_type, order.side) {
            (OrderType::Limit, _) => (order.price_ticks, order.time_in_force),
            (OrderType::Market, Side::Buy) => (
                self.book.sweep_price(Side::Buy, order.quantity_lots),
                market_time_in_force(order.time_in_force),
            ),
            (OrderType::Market, Side::Sell) => (None, market_time_in_force(order.time_in_force)),
        };
        if limit.is_some_and(|p| p <= 0)
            || (order.order_type == OrderType::Limit && limit.is_none())
        {
            return Err(ExchangeError::BadPrice(
                "a limit order needs a positive price".into(),
            ));
        }
        if order.post_only && self.book.crosses(order.side, limit) {
            return Err(ExchangeError::WouldCross);
        }
        let too_large = || ExchangeError::BadQuantity("the order's value is too large".into());
        // Every limit order's notional must fit, so no fill against it can overflow later.
        if let Some(price) = limit {
            spec.notional_atoms(price, order.quantity_lots)
                .ok_or_else(too_large)?;
        }
        let (hold_currency, hold_atoms) = match order.side {
            Side::Sell => (
                spec.base,
                spec.base_atoms(order.quantity_lots).ok_or_else(too_large)?,
            ),
            Side::Buy => (
                spec.quote,
                limit
                    .map_or(Some(0), |p| spec.notional_atoms(p, order.quantity_lots))
                    .ok_or_else(too_large)?,
            ),
        };
        let id = self.next_order_id;
        let mut record = OrderRecord {
            id,
            owner: order.owner,
            side: order.side,
            order_type: order.order_type,
            price_ticks: order.price_ticks,
            quantity_lots: order.quantity_lots,
            filled_lots: 0,
            status: OrderStatus::Open,
            time_in_force: order.time_in_force,
            post_only: order.post_only,
            client_order_id: order.client_order_id,
            hold: None,
            created_at_us: now_us,
            updated_at_us: now_us,
            end_reason: None,
        };
        if hold_atoms == 0 {
            // A market buy with nothing to buy: it expires at once and reserves nothing.
            self.next_order_id += 1;
            record.status = OrderStatus::Expired;
            record.end_reason = Some(EndReason::Unfilled);
            changes.notices.push(OrderNotice {
                order: id,
                owner: record.owner,
                side: record.side,
                what: Noticed::Ended {
                    status: OrderStatus::Expired,
                    reason: EndReason::Unfilled,
                },
            });
            changes.insert(record.clone());
            return Ok(Reply::Placed {
                order: record,
                fills: Vec::new(),
            });
        }
        let hold = batch.place_hold(
            order.owner,
            hold_currency,
            hold_atoms,
            format!("order {id}"),
        )?;
        self.next_order_id += 1;
        record.hold = Some(hold);
        let mut taker = Taker {
            record,
            hold,
            hold_remaining_atoms: hold_atoms,
            fills: Vec::new(),
            received_atoms: 0,
            rested_at: None,
            ended: None,
        };
        let new = NewOrder {
            id,
            owner: owner_key(order.owner),
            side: order.side,
            price: limit,
            quantity: order.quantity_lots,
            time_in_force,
            post_only: order.post_only,
        };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let submitted = self.book.submit(new, &mut events);
        if let Err(e) = submitted {
            self.events = events;
            // Unreachable with validated input; the batch must not commit the hold.
            return Err(broken(format!("the engine refused order {id}: {e:?}")));
        }
        for event in &events {
            match *event {
                Event::Fill {
                    maker,
                    taker_side,
                    price,
                    quantity,
                    maker_remaining,
                    ..
                } => self.settle(
                    &mut taker,
                    maker,
                    taker_side,
                    price,
                    quantity,
                    maker_remaining,
                    now_us,
                    batch,
                    changes,
                )?,
                Event::Rested {
                    price,
                    quantity,
                    side,
                    ..
                } => {
                    taker.rested_at = Some(price);
                    // A buy that traded below its limit keeps only what the rest needs.
                    let needed_atoms = self.hold_needed(side, price, quantity)?;
                    let excess_atoms = taker.hold_remaining_atoms - needed_atoms;
                    batch
                        .release(hold, order.owner, hold_currency, excess_atoms)
                        .map_err(|e| broken(format!("order {id} releasing its excess: {e}")))?;
                    taker.hold_remaining_atoms = needed_atoms;
                    changes.touch(side, price);
                }
                Event::Cancelled { id: cancelled, .. } if cancelled != id => {
                    // Self-trade prevention removed one of the owner's resting orders.
                    let reason = Some(EndReason::SelfTrade);
                    self.remove_resting(cancelled, reason, now_us, batch, changes)?;
                }
                Event::Cancelled { reason, .. } => taker.ended = Some(EndReason::of(reason)),
                Event::Accepted { .. } | Event::Reduced { .. } => {}
            }
        }
        self.events = events;
        let record = &mut taker.record;
        if let Some(price_ticks) = taker.rested_at {
            record.status = OrderStatus::resting(record.filled_lots);
            self.resting.insert(
                id,
                Resting {
                    owner: record.owner,
                    side: record.side,
                    price_ticks,
                    quantity_lots: record.quantity_lots,
                    filled_lots: record.filled_lots,
                    hold,
                    hold_remaining_atoms: taker.hold_remaining_atoms,
                },
            );
        } else {
            batch
                .release(
                    hold,
                    record.owner,
                    hold_currency,
                    taker.hold_remaining_atoms,
                )
                .map_err(|e| broken(format!("order {id} releasing its hold: {e}")))?;
            record.status = if record.filled_lots == record.quantity_lots {
                OrderStatus::Filled
            } else {
                record.end_reason = Some(taker.ended.unwrap_or(EndReason::Unfilled));
                OrderStatus::Expired
            };
        }
        notice_taker(&taker, changes);
        changes.insert(taker.record.clone());
        Ok(Reply::Placed {
            order: taker.record,
            fills: taker.fills,
        })
    }

    /// Settles one fill: both sides' payments out of their holds, each side's fee on what it
    /// received to the registry, and the trade record.
    #[expect(clippy::too_many_arguments, reason = "the fill event's fields")]
    fn settle(
        &mut self,
        taker: &mut Taker,
        maker_id: OrderId,
        taker_side: Side,
        price: Ticks,
        quantity: Lots,
        maker_remaining: Lots,
        now_us: i64,
        batch: &mut HoldBatch,
        changes: &mut Changes,
    ) -> Result<(), ExchangeError> {
        let spec = &self.spec;
        let trade_id = self.next_trade_id;
        self.next_trade_id += 1;
        // Bounded: the maker's notional at its own price was checked when it was entered.
        let quote_atoms = spec
            .notional_atoms(price, quantity)
            .ok_or_else(|| broken(format!("trade {trade_id}: its notional overflows")))?;
        let base_atoms = spec
            .base_atoms(quantity)
            .ok_or_else(|| broken(format!("trade {trade_id}: its quantity overflows")))?;
        let Some(maker) = self.resting.get_mut(&maker_id) else {
            return Err(broken(format!(
                "trade {trade_id}: maker {maker_id} is in the engine's book but not resting"
            )));
        };
        let taker_owner = taker.record.owner;
        let (buyer, buyer_hold, seller, seller_hold) = match taker_side {
            Side::Buy => (taker_owner, taker.hold, maker.owner, maker.hold),
            Side::Sell => (maker.owner, maker.hold, taker_owner, taker.hold),
        };
        // Each side's fee is charged on what its order has received in all, rounded down once:
        // the fee of a fill is the step in the fee on the running total, so an order split
        // over many fills pays what one fill would (never less). A maker always receives at its
        // own price, so its running total follows from its filled quantity (fills it took on
        // arrival count at that price too: the steps never add up to less than one fill's
        // fee). The registry pays no fee to itself.
        let overflow = || broken(format!("trade {trade_id}: a running total overflows"));
        let (maker_before, maker_after) = match maker.side {
            Side::Sell => (
                spec.notional_atoms(price, maker.filled_lots),
                spec.notional_atoms(price, maker.filled_lots + quantity),
            ),
            Side::Buy => (
                spec.base_atoms(maker.filled_lots),
                spec.base_atoms(maker.filled_lots + quantity),
            ),
        };
        let maker_fee = spec.fee_step(
            maker_before.ok_or_else(overflow)?,
            maker_after.ok_or_else(overflow)?,
        );
        let taker_gets = match taker_side {
            Side::Buy => base_atoms,
            Side::Sell => quote_atoms,
        };
        let taker_fee = spec.fee_step(taker.received_atoms, taker.received_atoms + taker_gets);
        taker.received_atoms += taker_gets;
        let exempt = |payer: PrincipalId, fee: i64| if payer == self.registry { 0 } else { fee };
        let (buyer_fee_atoms, seller_fee_atoms) = match taker_side {
            Side::Buy => (exempt(buyer, taker_fee), exempt(seller, maker_fee)),
            Side::Sell => (exempt(buyer, maker_fee), exempt(seller, taker_fee)),
        };
        let memo = format!("trade {trade_id}");
        let planned = batch
            .pay_from_hold(
                seller_hold,
                seller,
                buyer,
                spec.base,
                base_atoms,
                TransferKind::Trade,
                memo.clone(),
            )
            .and_then(|()| {
                batch.pay_from_hold(
                    buyer_hold,
                    buyer,
                    seller,
                    spec.quote,
                    quote_atoms,
                    TransferKind::Trade,
                    memo.clone(),
                )
            })
            .and_then(|()| {
                batch.pay(
                    buyer,
                    self.registry,
                    spec.base,
                    buyer_fee_atoms,
                    TransferKind::Fee,
                    memo.clone(),
                )
            })
            .and_then(|()| {
                batch.pay(
                    seller,
                    self.registry,
                    spec.quote,
                    seller_fee_atoms,
                    TransferKind::Fee,
                    memo.clone(),
                )
            });
        planned.map_err(|e| broken(format!("{memo}: the ledger refused its settlement: {e}")))?;
        let (taker_spent, maker_spent, taker_fee) = match taker_side {
            Side::Buy => (quote_atoms, base_atoms, buyer_fee_atoms),
            Side::Sell => (base_atoms, quote_atoms, seller_fee_atoms),
        };
        taker.hold_remaining_atoms -= taker_spent;
        taker.record.filled_lots += quantity;
        taker.fills.push(Fill {
            trade_id,
            price_ticks: price,
            quantity_lots: quantity,
            fee_atoms: taker_fee,
            at_us: now_us,
        });
        maker.hold_remaining_atoms -= maker_spent;
        maker.filled_lots += quantity;
        if maker.hold_remaining_atoms < 0 || taker.hold_remaining_atoms < 0 {
            return Err(broken(format!("{memo}: a hold paid out more than it had")));
        }
        let maker_side = maker.side;
        changes.trades.push(TradeRecord {
            id: trade_id,
            taker_order: taker.record.id,
            maker_order: maker_id,
            taker_side,
            price_ticks: price,
            quantity_lots: quantity,
            buyer_fee_atoms,
            seller_fee_atoms,
            created_at_us: now_us,
        });
        changes.touch(maker_side, price);
        if maker_remaining == 0 {
            self.remove_resting(maker_id, None, now_us, batch, changes)?;
        } else {
            let update = OrderUpdate {
                quantity_lots: maker.quantity_lots,
                filled_lots: maker.filled_lots,
                status: OrderStatus::PartiallyFilled,
            };
            changes.notices.push(OrderNotice {
                order: maker_id,
                owner: maker.owner,
                side: maker.side,
                what: Noticed::Filled {
                    status: update.status,
                    filled_lots: update.filled_lots,
                    remaining_lots: update.quantity_lots - update.filled_lots,
                },
            });
            changes.update(maker_id, update, now_us);
        }
        Ok(())
    }

    /// Takes an order that left the book out of the bookkeeping and releases what it held:
    /// filled (no `reason`) or cancelled for `reason`.
    fn remove_resting(
        &mut self,
        id: OrderId,
        reason: Option<EndReason>,
        now_us: i64,
        batch: &mut HoldBatch,
        changes: &mut Changes,
    ) -> Result<(), ExchangeError> {
        let Some(r) = self.resting.remove(&id) else {
            return Err(broken(format!(
                "order {id} left the engine's book but was not resting"
            )));
        };
        let currency = self.hold_currency(r.side);
        batch
            .release(r.hold, r.owner, currency, r.hold_remaining_atoms)
            .map_err(|e| broken(format!("order {id} releasing its hold: {e}")))?;
        changes.touch(r.side, r.price_ticks);
        let (status, what) = match reason {
            None => (
                OrderStatus::Filled,
                Noticed::Filled {
                    status: OrderStatus::Filled,
                    filled_lots: r.filled_lots,
                    remaining_lots: 0,
                },
            ),
            Some(reason) => (
                OrderStatus::Cancelled,
                Noticed::Ended {
                    status: OrderStatus::Cancelled,
                    reason,
                },
            ),
        };
        changes.notices.push(OrderNotice {
            order: id,
            owner: r.owner,
            side: r.side,
            what,
        });
        let update = OrderUpdate {
            quantity_lots: r.quantity_lots,
            filled_lots: r.filled_lots,
            status,
        };
        changes.update(id, update, now_us);
        Ok(())
    }

    /// What a resting order of `quantity` at `price` must keep held.
    fn hold_needed(&self, side: Side, price: Ticks, quantity: Lots) -> Result<i64, ExchangeError> {
        match side {
            Side::Buy => self.spec.notional_atoms(price, quantity).ok_or_else(|| {
                broken(format!(
                    "the notional of {quantity} lots at {price} overflows"
                ))
            }),
            Side::Sell => self
                .spec
                .base_atoms(quantity)
                .ok_or_else(|| broken(format!("{quantity} lots overflow"))),
        }
    }

    fn hold_currency(&self, side: Side) -> scrip_domain::CurrencyId {
        match side {
            Side::Buy => self.spec.quote,
            Side::Sell => self.spec.base,
        }
    }

    /// The caller's resting order; anyone else's is reported as unknown (never "forbidden").
    fn owned(&self, owner: PrincipalId, id: OrderId) -> Result<Resting, ExchangeError> {
        self.resting
            .get(&id)
            .filter(|r| r.owner == owner)
            .copied()
            .ok_or(ExchangeError::UnknownOrder)
    }

    fn cancel(
        &mut self,
        owner: PrincipalId,
        id: OrderId,
        reason: EndReason,
        now_us: i64,
        batch: &mut HoldBatch,
        changes: &mut Changes,
    ) -> Result<(), ExchangeError> {
        self.owned(owner, id)?;
        self.events.clear();
        self.book
            .cancel(id, &mut self.events)
            .map_err(|_| ExchangeError::UnknownOrder)?;
        self.remove_resting(id, Some(reason), now_us, batch, changes)
    }

    fn reduce(
        &mut self,
        owner: PrincipalId,
        id: OrderId,
        quantity_lots: Lots,
        now_us: i64,
        batch: &mut HoldBatch,
        changes: &mut Changes,
    ) -> Result<(), ExchangeError> {
        let r = self.owned(owner, id)?;
        if quantity_lots >= r.quantity_lots || quantity_lots < r.filled_lots {
            return Err(ExchangeError::NotAReduction);
        }
        let new_remaining = quantity_lots - r.filled_lots;
        if new_remaining == 0 {
            // Reduced to what is filled: the order is done, with its new quantity on record.
            if let Some(entry) = self.resting.get_mut(&id) {
                entry.quantity_lots = quantity_lots;
            }
            return self.cancel(owner, id, EndReason::Requested, now_us, batch, changes);
        }
        self.events.clear();
        self.book
            .reduce(id, new_remaining, &mut self.events)
            .map_err(|_| ExchangeError::NotAReduction)?;
        let needed_atoms = self.hold_needed(r.side, r.price_ticks, new_remaining)?;
        let currency = self.hold_currency(r.side);
        batch
            .release(
                r.hold,
                owner,
                currency,
                r.hold_remaining_atoms - needed_atoms,
            )
            .map_err(|e| broken(format!("order {id} releasing what a reduction frees: {e}")))?;
        let update = OrderUpdate {
            quantity_lots,
            filled_lots: r.filled_lots,
            status: OrderStatus::resting(r.filled_lots),
        };
        if let Some(entry) = self.resting.get_mut(&id) {
            entry.quantity_lots = quantity_lots;
            entry.hold_remaining_atoms = needed_atoms;
        }
        changes.touch(r.side, r.price_ticks);
        changes.update(id, update, now_us);
        Ok(())
    }

    /// After a batch committed: orders that came to rest in it learn their holds' stored ids.
    pub fn resolve_holds(&mut self, changes: &Changes, new_hold_ids: &[scrip_domain::HoldId]) {
        for record in &changes.inserted {
            if let Some(resting) = self.resting.get_mut(&record.id)
                && let Some(id) = resting.hold.resolve(new_hold_ids)
            {
                resting.hold = HoldRef::Existing(id);
            }
        }
    }
}

/// A state the engine and the ledger's rules make impossible: logged here, refused by the
/// worker with the whole batch.
fn broken(detail: String) -> ExchangeError {
    tracing::error!(%detail, "order book invariant broken");
    ExchangeError::Invariant(detail)
}

/// A market order never rests: fill-or-kill stays so, anything else is immediate-or-cancel.
fn market_time_in_force(requested: TimeInForce) -> TimeInForce {
    match requested {
        TimeInForce::Fok => TimeInForce::Fok,
        TimeInForce::Gtc | TimeInForce::Ioc => TimeInForce::Ioc,
    }
}

/// The engine's owner key: orders of the same principal never trade with each other.
fn owner_key(owner: PrincipalId) -> u64 {
    owner.get().unsigned_abs()
}

#[cfg(test)]
mod tests;
