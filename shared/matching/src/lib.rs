//! The matching engine: one order book, a single-writer deterministic state machine.
//!
//! Prices are integer ticks and quantities integer lots (the order-book service converts from
//! decimal strings with the market's tick and lot sizes, so every notional is exact). Matching is
//! price-time priority. Every operation appends the events it caused to a caller-owned buffer,
//! which the caller reuses, so the steady state allocates nothing per order: orders live in a
//! slab (a vector with a free list) linked per price level; only a new price level allocates a
//! node in the ordered map of levels.

mod book;

pub use book::{Book, BookError};

/// An order's id, unique per book; chosen by the caller (the service's database id).
pub type OrderId = u64;
/// Who owns an order; orders of the same owner never trade with each other.
pub type OwnerId = u64;
/// Price in ticks (the market's tick size in quote currency per one base unit).
pub type Ticks = i64;
/// Quantity in lots of the base currency.
pub type Lots = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeInForce {
    /// Rests until filled or cancelled.
    Gtc,
    /// Trades what it can now; the rest is cancelled.
    Ioc,
    /// Trades in full now, or not at all.
    Fok,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    pub id: OrderId,
    pub owner: OwnerId,
    pub side: Side,
    /// `None` is a market order (never rests).
    pub price: Option<Ticks>,
    pub quantity: Lots,
    pub time_in_force: TimeInForce,
    /// Refused (`WouldCross`) if it would trade on arrival. Checked against the whole opposite
    /// side, the owner's own orders included (before self-trade prevention), so a post-only
    /// order never removes anything from the book.
    pub post_only: bool,
}

/// Why an order did not (fully) enter or stay in the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The owner cancelled it.
    Requested,
    /// IOC or market remainder.
    Unfilled,
    /// FOK that could not fill in full: nothing traded.
    NotFillable,
    /// Post-only that would have traded.
    WouldCross,
    /// A resting order cancelled because its owner's new order would have traded with it.
    SelfTrade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The order was accepted (it may then trade and rest).
    Accepted { id: OrderId },
    /// A trade: the taker's order met the resting maker at the maker's price.
    Fill {
        taker: OrderId,
        maker: OrderId,
        taker_owner: OwnerId,
        maker_owner: OwnerId,
        taker_side: Side,
        price: Ticks,
        quantity: Lots,
        /// What the maker has left after this fill.
        maker_remaining: Lots,
    },
    /// The order rests in the book with this quantity.
    Rested {
        id: OrderId,
        side: Side,
        price: Ticks,
        quantity: Lots,
    },
    /// The order (or what was left of it) left the book, or never entered it.
    Cancelled {
        id: OrderId,
        remaining: Lots,
        reason: CancelReason,
    },
    /// A resting order's quantity was reduced; it keeps its place in the queue.
    Reduced { id: OrderId, remaining: Lots },
}
