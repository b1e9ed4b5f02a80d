use std::collections::{BTreeMap, HashMap};

use crate::{CancelReason, Event, Lots, NewOrder, OrderId, Side, Ticks, TimeInForce};

/// End of a level's linked list.
const NIL: u32 = u32::MAX;

/// Input the book refuses outright; nothing changes and no event is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookError {
    DuplicateId,
    UnknownOrder,
    /// Zero or negative quantity.
    BadQuantity,
    /// Zero or negative limit price.
    BadPrice,
    /// A new quantity above what remains: orders may only shrink in place.
    NotAReduction,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    id: OrderId,
    owner: u64,
    side: Side,
    price: Ticks,
    remaining: Lots,
    prev: u32,
    next: u32,
}

#[derive(Debug, Clone, Copy)]
struct Level {
    head: u32,
    tail: u32,
    /// Sum of the level's orders. Kept in i128 so no number of orders can overflow it; read
    /// out saturated to `Lots`.
    quantity: i128,
}

impl Level {
    fn total(&self) -> Lots {
        Lots::try_from(self.quantity).unwrap_or(Lots::MAX)
    }
}

/// One order book: resting orders by price level, each level a FIFO queue. Cloned to try a
/// command on a copy (a payment converting through several books) before keeping it.
#[derive(Debug, Default, Clone)]
pub struct Book {
    nodes: Vec<Node>,
    free: Vec<u32>,
    index: HashMap<OrderId, u32>,
    /// Best bid is the highest key.
    bids: BTreeMap<Ticks, Level>,
    /// Best ask is the lowest key.
    asks: BTreeMap<Ticks, Level>,
}

impl Book {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn best_bid(&self) -> Option<(Ticks, Lots)> {
        self.bids.iter().next_back().map(|(&p, l)| (p, l.total()))
    }

    pub fn best_ask(&self) -> Option<(Ticks, Lots)> {
        self.asks.iter().next().map(|(&p, l)| (p, l.total()))
    }

    /// Up to `levels` price levels of one side, best first: `(price, total quantity)`.
    pub fn depth(&self, side: Side, levels: usize) -> Vec<(Ticks, Lots)> {
        match side {
            Side::Buy => self
                .bids
                .iter()
                .rev()
                .take(levels)
                .map(|(&p, l)| (p, l.total()))
                .collect(),
            Side::Sell => self
                .asks
                .iter()
                .take(levels)
                .map(|(&p, l)| (p, l.total()))
                .collect(),
        }
    }

    /// The total resting quantity at one price of one side (zero when the level is empty).
    pub fn level_quantity(&self, side: Side, price: Ticks) -> Lots {
        let levels = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        levels.get(&price).map_or(0, Level::total)
    }

    /// The worst price a taker on `side` reaches when it sweeps `quantity` from the opposite
    /// side, best levels first (the deepest price when the side holds less); `None` when the
    /// opposite side is empty. The order-book service turns a market order into an
    /// immediate-or-cancel limit at this price, so what it may spend is known before it trades.
    pub fn sweep_price(&self, side: Side, quantity: Lots) -> Option<Ticks> {
        let mut swept: i128 = 0;
        let mut last = None;
        let mut visit = |(&price, level): (&Ticks, &Level)| {
            last = Some(price);
            swept += level.quantity;
            swept >= i128::from(quantity)
        };
        match side {
            Side::Buy => {
                let _ = self.asks.iter().any(&mut visit);
            }
            Side::Sell => {
                let _ = self.bids.iter().rev().any(&mut visit);
            }
        }
        last
    }

    /// What other owners offer a taker on `side` (from the opposite side), best price first,
    /// one `(price, quantity)` per level with the taker's own orders left out (self-trade
    /// prevention cancels those instead of trading them): exactly what the taker would fill,
    /// level by level. `visit` returns `false` to stop the walk.
    pub fn offered(&self, side: Side, owner: u64, mut visit: impl FnMut(Ticks, Lots) -> bool) {
        let mut level_walk = |(&price, level): (&Ticks, &Level)| {
            let mut quantity: Lots = 0;
            let mut slot = level.head;
            while slot != NIL {
                let n = self.nodes[slot as usize];
                if n.owner != owner {
                    quantity = quantity.saturating_add(n.remaining);
                }
                slot = n.next;
            }
            quantity == 0 || visit(price, quantity)
        };
        match side {
            Side::Buy => {
                let _ = self.asks.iter().all(&mut level_walk);
            }
            Side::Sell => {
                let _ = self.bids.iter().rev().all(&mut level_walk);
            }
        }
    }

    /// A resting order: `(side, price, remaining)`.
    pub fn order(&self, id: OrderId) -> Option<(Side, Ticks, Lots)> {
        self.index.get(&id).map(|&slot| {
            let n = self.nodes[slot as usize];
            (n.side, n.price, n.remaining)
        })
    }

    /// Number of resting orders.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Enters an order: matches what it can at price-time priority, then rests, cancels or
    /// refuses the rest according to its type. Events are appended to `events`.
    pub fn submit(&mut self, order: NewOrder, events: &mut Vec<Event>) -> Result<(), BookError> {
        if order.quantity <= 0 {
            return Err(BookError::BadQuantity);
        }
        if order.price.is_some_and(|p| p <= 0) {
            return Err(BookError::BadPrice);
        }
        if self.index.contains_key(&order.id) {
            return Err(BookError::DuplicateId);
        }
        events.push(Event::Accepted { id: order.id });
        let cancel = |events: &mut Vec<Event>, remaining, reason| {
            events.push(Event::Cancelled {
                id: order.id,
                remaining,
                reason,
            });
        };
        if order.post_only && self.crosses(order.side, order.price) {
            cancel(events, order.quantity, CancelReason::WouldCross);
            return Ok(());
        }
        if order.time_in_force == TimeInForce::Fok && self.fillable(&order) < order.quantity {
            cancel(events, order.quantity, CancelReason::NotFillable);
            return Ok(());
        }
        let remaining = self.take(&order, events);
        if remaining == 0 {
            return Ok(());
        }
        match (order.price, order.time_in_force) {
            (Some(price), TimeInForce::Gtc) => {
                self.rest(order, price, remaining);
                events.push(Event::Rested {
                    id: order.id,
                    side: order.side,
                    price,
                    quantity: remaining,
                });
            }
            _ => cancel(events, remaining, CancelReason::Unfilled),
        }
        Ok(())
    }

    /// Removes a resting order.
    pub fn cancel(&mut self, id: OrderId, events: &mut Vec<Event>) -> Result<(), BookError> {
        let slot = *self.index.get(&id).ok_or(BookError::UnknownOrder)?;
        let remaining = self.nodes[slot as usize].remaining;
        self.remove(slot);
        events.push(Event::Cancelled {
            id,
            remaining,
            reason: CancelReason::Requested,
        });
        Ok(())
    }

    /// Lowers a resting order's quantity in place (keeping its time priority); zero cancels it.
    pub fn reduce(
        &mut self,
        id: OrderId,
        quantity: Lots,
        events: &mut Vec<Event>,
    ) -> Result<(), BookError> {
        let slot = *self.index.get(&id).ok_or(BookError::UnknownOrder)?;
        let node = self.nodes[slot as usize];
        if quantity < 0 {
            return Err(BookError::BadQuantity);
        }
        if quantity > node.remaining {
            return Err(BookError::NotAReduction);
        }
        if quantity == 0 {
            return self.cancel(id, events);
        }
        let cut = node.remaining - quantity;
        self.nodes[slot as usize].remaining = quantity;
        if let Some(level) = self.levels_mut(node.side).get_mut(&node.price) {
            level.quantity -= i128::from(cut);
        }
        events.push(Event::Reduced {
            id,
            remaining: quantity,
        });
        Ok(())
    }

    fn levels_mut(&mut self, side: Side) -> &mut BTreeMap<Ticks, Level> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Whether an order at `price` (`None`: a market order) on `side` would trade on arrival.
    pub fn crosses(&self, side: Side, price: Option<Ticks>) -> bool {
        match side {
            Side::Buy => self
                .best_ask()
                .is_some_and(|(ask, _)| price.is_none_or(|p| ask <= p)),
            Side::Sell => self
                .best_bid()
                .is_some_and(|(bid, _)| price.is_none_or(|p| bid >= p)),
        }
    }

    fn acceptable(side: Side, limit: Option<Ticks>, level_price: Ticks) -> bool {
        match side {
            Side::Buy => limit.is_none_or(|p| level_price <= p),
            Side::Sell => limit.is_none_or(|p| level_price >= p),
        }
    }

    /// Quantity other owners offer within the order's limit (own orders would be cancelled by
    /// self-trade prevention, not traded).
    fn fillable(&self, order: &NewOrder) -> Lots {
        match order.side {
            Side::Buy => self.fillable_in(order, self.asks.iter()),
            Side::Sell => self.fillable_in(order, self.bids.iter().rev()),
        }
    }

    fn fillable_in<'a>(
        &self,
        order: &NewOrder,
        levels: impl Iterator<Item = (&'a Ticks, &'a Level)>,
    ) -> Lots {
        let mut total: Lots = 0;
        for (&price, level) in levels {
            if !Self::acceptable(order.side, order.price, price) || total >= order.quantity {
                break;
            }
            let mut slot = level.head;
            while slot != NIL {
                let n = self.nodes[slot as usize];
                if n.owner != order.owner {
                    total = total.saturating_add(n.remaining);
                }
                slot = n.next;
            }
        }
        total
    }

    /// Trades the incoming order against the opposite side; returns what is left of it.
    fn take(&mut self, order: &NewOrder, events: &mut Vec<Event>) -> Lots {
        let mut remaining = order.quantity;
        let opposite = order.side.opposite();
        while remaining > 0 {
            let best = match opposite {
                Side::Sell => self.asks.iter().next().map(|(&p, l)| (p, l.head)),
                Side::Buy => self.bids.iter().next_back().map(|(&p, l)| (p, l.head)),
            };
            let Some((price, head)) = best else { break };
            if !Self::acceptable(order.side, order.price, price) {
                break;
            }
            let maker = self.nodes[head as usize];
            if maker.owner == order.owner {
                self.remove(head);
                events.push(Event::Cancelled {
                    id: maker.id,
                    remaining: maker.remaining,
                    reason: CancelReason::SelfTrade,
                });
                continue;
            }
            let quantity = remaining.min(maker.remaining);
            remaining -= quantity;
            let maker_remaining = maker.remaining - quantity;
            events.push(Event::Fill {
                taker: order.id,
                maker: maker.id,
                taker_owner: order.owner,
                maker_owner: maker.owner,
                taker_side: order.side,
                price,
                quantity,
                maker_remaining,
            });
            if maker_remaining == 0 {
                self.remove(head);
            } else {
                self.nodes[head as usize].remaining = maker_remaining;
                if let Some(level) = self.levels_mut(opposite).get_mut(&price) {
                    level.quantity -= i128::from(quantity);
                }
            }
        }
        remaining
    }

    fn rest(&mut self, order: NewOrder, price: Ticks, remaining: Lots) {
        let node = Node {
            id: order.id,
            owner: order.owner,
            side: order.side,
            price,
            remaining,
            prev: NIL,
            next: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).unwrap_or(NIL)
            }
        };
        self.index.insert(order.id, slot);
        let tail = {
            let level = self.levels_mut(order.side).entry(price).or_insert(Level {
                head: NIL,
                tail: NIL,
                quantity: 0,
            });
            let tail = level.tail;
            level.tail = slot;
            if level.head == NIL {
                level.head = slot;
            }
            level.quantity += i128::from(remaining);
            tail
        };
        if tail != NIL {
            self.nodes[tail as usize].next = slot;
            self.nodes[slot as usize].prev = tail;
        }
    }

    /// Unlinks a resting order and frees its slot.
    fn remove(&mut self, slot: u32) {
        let node = self.nodes[slot as usize];
        if node.prev != NIL {
            self.nodes[node.prev as usize].next = node.next;
        }
        if node.next != NIL {
            self.nodes[node.next as usize].prev = node.prev;
        }
        let levels = self.levels_mut(node.side);
        let emptied = match levels.get_mut(&node.price) {
            Some(level) => {
                if level.head == slot {
                    level.head = node.next;
                }
                if level.tail == slot {
                    level.tail = node.prev;
                }
                level.quantity -= i128::from(node.remaining);
                level.head == NIL
            }
            None => false,
        };
        if emptied {
            levels.remove(&node.price);
        }
        self.index.remove(&node.id);
        self.free.push(slot);
    }
}
