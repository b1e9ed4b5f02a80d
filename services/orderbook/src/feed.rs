//! Market data of one market: the committed book's levels, numbered by a gapless sequence,
//! and a broadcast of every change. A subscriber takes the snapshot and subscribes under the
//! same lock the publisher holds while it numbers and sends, so the first message it receives
//! is exactly `snapshot.sequence + 1`: replaying the messages on the snapshot gives the book.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use scrip_http::rfc3339_from_us;
use scrip_matching::{Book, Lots, Side, Ticks};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::spec::MarketSpec;
use crate::state::{TradeRecord, side_str};

/// How many messages a slow subscriber may fall behind before it is resynchronised.
const SUBSCRIBER_BUFFER: usize = 4_096;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Level {
    pub price: String,
    pub quantity: String,
}

/// `GET /markets/{symbol}/book`, and the stream's `snapshot` message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BookView {
    pub symbol: String,
    pub sequence: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// A message of the WebSocket stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StreamMessage {
    Snapshot(BookView),
    /// Levels whose quantity changed; a quantity of `"0"` removes the level.
    Book {
        symbol: String,
        sequence: u64,
        bids: Vec<Level>,
        asks: Vec<Level>,
    },
    Trade {
        symbol: String,
        sequence: u64,
        id: String,
        price: String,
        quantity: String,
        taker_side: String,
        created_at: String,
    },
}

#[derive(Debug)]
struct Levels {
    sequence: u64,
    bids: BTreeMap<Ticks, Lots>,
    asks: BTreeMap<Ticks, Lots>,
    last_price_ticks: Option<Ticks>,
}

#[derive(Debug)]
pub struct Feed {
    spec: MarketSpec,
    symbol: String,
    levels: Mutex<Levels>,
    sender: broadcast::Sender<Arc<str>>,
}

impl Feed {
    pub fn new(spec: MarketSpec, last_price_ticks: Option<Ticks>) -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self {
            symbol: spec.symbol(),
            spec,
            levels: Mutex::new(Levels {
                sequence: 0,
                bids: BTreeMap::new(),
                asks: BTreeMap::new(),
                last_price_ticks,
            }),
            sender,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Levels> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.levels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// Replaces the levels with the book's (a market taken over or rebuilt), as one change.
    pub fn reset(&self, book: &Book) {
        let mut levels = self.lock();
        let bids: BTreeMap<Ticks, Lots> = book.depth(Side::Buy, usize::MAX).into_iter().collect();
        let asks: BTreeMap<Ticks, Lots> = book.depth(Side::Sell, usize::MAX).into_iter().collect();
        let mut changed = Vec::new();
        for (is_bid, old, new) in [(true, &levels.bids, &bids), (false, &levels.asks, &asks)] {
            for price in old.keys().chain(new.keys()) {
                let quantity = new.get(price).copied().unwrap_or(0);
                if old.get(price).copied().unwrap_or(0) != quantity {
                    changed.push((is_bid, *price, quantity));
                }
            }
        }
        changed.sort_unstable();
        changed.dedup();
        self.publish_locked(&mut levels, &[], &changed);
    }

    /// Publishes a committed batch: its trades, then the levels it changed.
    pub fn publish(&self, trades: &[TradeRecord], changed: &[(bool, Ticks, Lots)]) {
        let mut levels = self.lock();
        self.publish_locked(&mut levels, trades, changed);
    }

    fn publish_locked(
        &self,
        levels: &mut Levels,
        trades: &[TradeRecord],
        changed: &[(bool, Ticks, Lots)],
    ) {
        for trade in trades {
            levels.sequence += 1;
            levels.last_price_ticks = Some(trade.price_ticks);
            self.send(&StreamMessage::Trade {
                symbol: self.symbol.clone(),
                sequence: levels.sequence,
                id: trade.id.to_string(),
                price: self.spec.price(trade.price_ticks).to_string(),
                quantity: self.spec.quantity(trade.quantity_lots).to_string(),
                taker_side: side_str(trade.taker_side).to_owned(),
                created_at: rfc3339_from_us(trade.created_at_us),
            });
        }
        if changed.is_empty() {
            return;
        }
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for &(is_bid, price, quantity) in changed {
            let (map, out) = if is_bid {
                (&mut levels.bids, &mut bids)
            } else {
                (&mut levels.asks, &mut asks)
            };
            if quantity == 0 {
                map.remove(&price);
            } else {
                map.insert(price, quantity);
            }
            out.push(self.level(price, quantity));
        }
        levels.sequence += 1;
        self.send(&StreamMessage::Book {
            symbol: self.symbol.clone(),
            sequence: levels.sequence,
            bids,
            asks,
        });
    }

    fn level(&self, price: Ticks, quantity: Lots) -> Level {
        Level {
            price: self.spec.price(price).to_string(),
            quantity: self.spec.quantity(quantity).to_string(),
        }
    }

    fn send(&self, message: &StreamMessage) {
        if let Ok(text) = serde_json::to_string(message) {
            // No subscriber is not an error.
            let _ = self.sender.send(Arc::from(text));
        }
    }

    fn view(&self, levels: &Levels, depth: usize) -> BookView {
        BookView {
            symbol: self.symbol.clone(),
            sequence: levels.sequence,
            bids: levels
                .bids
                .iter()
                .rev()
                .take(depth)
                .map(|(&p, &q)| self.level(p, q))
                .collect(),
            asks: levels
                .asks
                .iter()
                .take(depth)
                .map(|(&p, &q)| self.level(p, q))
                .collect(),
        }
    }

    /// The committed book, best levels first.
    pub fn snapshot(&self, depth: usize) -> BookView {
        let levels = self.lock();
        self.view(&levels, depth)
    }

    pub fn last_price_ticks(&self) -> Option<Ticks> {
        self.lock().last_price_ticks
    }

    /// The full book and a receiver of every message after it.
    pub fn subscribe(&self) -> (BookView, broadcast::Receiver<Arc<str>>) {
        let levels = self.lock();
        let receiver = self.sender.subscribe();
        (self.view(&levels, usize::MAX), receiver)
    }
}
