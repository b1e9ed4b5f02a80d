//! Request and response bodies of the exchange (API.md, Exchange).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MarketView {
    /// `BASE-QUOTE`.
    pub symbol: String,
    pub base: String,
    pub quote: String,
    /// Price step, in quote per one base.
    pub tick_size: String,
    /// Quantity step, in base.
    pub lot_size: String,
    pub fee_bps: u32,
    pub last_price: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MarketList {
    pub items: Vec<MarketView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMarket {
    pub base: String,
    pub quote: String,
    pub tick_size: String,
    pub lot_size: String,
    pub fee_bps: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Market symbol, e.g. `BREAD-GROCER`.
    pub market: String,
    /// `buy` or `sell` (of the base currency).
    pub side: String,
    /// `limit` or `market`.
    #[serde(rename = "type")]
    pub order_type: String,
    /// Quote per one base; required for limit orders, refused for market orders.
    pub price: Option<String>,
    /// In base.
    pub quantity: String,
    /// `gtc` (default), `ioc` or `fok`.
    pub time_in_force: Option<String>,
    pub post_only: Option<bool>,
    /// The client's own reference, up to 64 visible characters; echoed back.
    pub client_order_id: Option<String>,
    /// A business the caller owns, to trade out of the business's accounts; default the caller.
    pub holder: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderChange {
    /// The order's new total quantity: below the current one, not below what is filled.
    pub quantity: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FillView {
    pub trade_id: String,
    pub price: String,
    pub quantity: String,
    /// The fee on what this order received, rounded down to the atom.
    pub fee: String,
    /// What the fee is in: base for a buy, quote for a sell.
    pub fee_currency: String,
    /// What the fill was worth in the quote currency (price x quantity).
    pub total: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    pub market: String,
    pub side: String,
    #[serde(rename = "type")]
    pub order_type: String,
    pub price: Option<String>,
    pub quantity: String,
    pub filled: String,
    /// What still works in the book: `quantity - filled` while open, `0` once closed.
    pub remaining: String,
    /// `open`, `partially_filled`, `filled`, `cancelled`, `rejected` or `expired`.
    pub status: String,
    /// Why a cancelled or expired order ended: `requested` (its owner), `self_trade` (the
    /// owner's own new order would have traded with it), `max_balance` (the owner could not
    /// receive more), `unfilled` (the rest of an IOC or market order), `not_fillable` (a
    /// fill-or-kill that could not fill whole), `would_cross` (post-only), `frozen` (its owner's account was frozen). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub time_in_force: String,
    pub post_only: bool,
    pub client_order_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub fills: Vec<FillView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OrdersQuery {
    /// Only this market.
    pub market: Option<String>,
    /// `open` (resting: open or partially filled), or any other status.
    pub status: Option<String>,
    pub holder: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DepthQuery {
    /// Levels per side, 1 to 500 (default 20).
    pub depth: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TradeView {
    pub id: String,
    pub price: String,
    pub quantity: String,
    pub taker_side: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TradeList {
    pub items: Vec<TradeView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CandlesQuery {
    /// `1m`, `5m`, `1h` or `1d` (default `1m`).
    pub interval: Option<String>,
    /// Most recent intervals to cover, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Candle {
    /// Start of the interval.
    pub start: String,
    pub open: String,
    pub high: String,
    pub low: String,
    pub close: String,
    /// Base traded.
    pub volume: String,
    pub trades: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CandleList {
    pub symbol: String,
    pub interval: String,
    /// Oldest first; intervals without trades are left out.
    pub items: Vec<Candle>,
}
