//! Market data of one market: the committed book's levels, numbered by a gapless sequence,
//! and a broadcast of every change. A subscriber takes the snapshot and subscribes under the
//! same lock the publisher holds while it numbers and sends, so the first message it receives
//! is exactly `snapshot.sequence + 1`: replaying the messages on the snapshot gives the book.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use scrip_bus::Bus;
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
    /// A replica's levels match the owner's at `sequence` (always true in the owner).
    synced: bool,
}

/// What a replica did with a message from the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicated {
    /// Applied, or already seen: nothing to do.
    Applied,
    /// A gap, or not yet synced: the replica needs a fresh snapshot from the owner.
    NeedSnapshot,
}

#[derive(Debug)]
pub struct Feed {
    spec: MarketSpec,
    symbol: String,
    levels: Mutex<Levels>,
    sender: broadcast::Sender<Arc<str>>,
    /// Where the owner publishes for other processes; `None` keeps the feed in this process.
    bus: Option<Arc<dyn Bus>>,
    /// Whether this process writes the market (its feed is the truth, not a replica).
    owner: AtomicBool,
}

/// The bus topic of a market's stream messages.
pub fn data_topic(symbol: &str) -> String {
    format!("market.{symbol}")
}

/// The bus topic on which replicas ask the owner for a snapshot.
pub fn resync_topic(symbol: &str) -> String {
    format!("market.{symbol}.resync")
}

impl Feed {
    pub fn new(
        spec: MarketSpec,
        last_price_ticks: Option<Ticks>,
        bus: Option<Arc<dyn Bus>>,
    ) -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self {
            symbol: spec.symbol(),
            spec,
            levels: Mutex::new(Levels {
                sequence: 0,
                bids: BTreeMap::new(),
                asks: BTreeMap::new(),
                last_price_ticks,
                synced: false,
            }),
            sender,
            bus,
            owner: AtomicBool::new(false),
        }
    }

    /// A replica that has not caught up with its owner yet (it waits for a snapshot).
    pub fn is_catching_up(&self) -> bool {
        self.bus.is_some() && !self.is_owner() && !self.is_in_step()
    }

    pub fn is_owner(&self) -> bool {
        self.owner.load(Ordering::Acquire)
    }

    /// This process stopped writing the market: from now on its feed follows the new owner.
    pub fn disown(&self) {
        self.owner.store(false, Ordering::Release);
        self.lock().synced = false;
    }

    /// A replica missed messages: it waits for the owner's next snapshot.
    pub fn mark_out_of_step(&self) {
        self.lock().synced = false;
    }

    /// Whether this feed's levels are the owner's (always, in the owner).
    pub fn is_in_step(&self) -> bool {
        self.lock().synced
    }

    /// Publishes the whole book on the bus (the owner's answer to a replica's resync request,
    /// and a periodic backstop). Numbered like the last message, so replicas that are in step
    /// ignore it.
    pub fn publish_snapshot(&self) {
        let Some(bus) = &self.bus else { return };
        let levels = self.lock();
        if let Ok(text) =
            serde_json::to_string(&StreamMessage::Snapshot(self.view(&levels, usize::MAX)))
        {
            bus.publish(&data_topic(&self.symbol), Arc::from(text));
        }
    }

    /// Applies a message the owner published, keeping this replica's levels and sequence equal
    /// to the owner's, and passes it on to this process's subscribers.
    pub fn apply_remote(&self, text: &Arc<str>) -> Replicated {
        let Ok(message) = serde_json::from_str::<StreamMessage>(text) else {
            tracing::warn!(symbol = %self.symbol, "unreadable market data message");
            return Replicated::Applied;
        };
        let mut levels = self.lock();
        match message {
            StreamMessage::Snapshot(view) => {
                if levels.synced && view.sequence <= levels.sequence {
                    return Replicated::Applied;
                }
                let (Some(bids), Some(asks)) =
                    (self.parse_levels(&view.bids), self.parse_levels(&view.asks))
                else {
                    return Replicated::NeedSnapshot;
                };
                levels.bids = bids.into_iter().collect();
                levels.asks = asks.into_iter().collect();
                levels.sequence = view.sequence;
                levels.synced = true;
                // Local subscribers start again from this snapshot, as after a lag.
                let _ = self.sender.send(Arc::clone(text));
                Replicated::Applied
            }
            StreamMessage::Book {
                sequence,
                bids,
                asks,
                ..
            } => {
                if let Some(outcome) = Self::check_sequence(&mut levels, sequence) {
                    return outcome;
                }
                let (Some(bids), Some(asks)) = (self.parse_levels(&bids), self.parse_levels(&asks))
                else {
                    levels.synced = false;
                    return Replicated::NeedSnapshot;
                };
                let Levels {
                    bids: bid_levels,
                    asks: ask_levels,
                    ..
                } = &mut *levels;
                for (map, changed) in [(bid_levels, bids), (ask_levels, asks)] {
                    for (price, quantity) in changed {
                        if quantity == 0 {
                            map.remove(&price);
                        } else {
                            map.insert(price, quantity);
                        }
                    }
                }
                levels.sequence = sequence;
                let _ = self.sender.send(Arc::clone(text));
                Replicated::Applied
            }
            StreamMessage::Trade {
                sequence, price, ..
            } => {
                if let Some(outcome) = Self::check_sequence(&mut levels, sequence) {
                    return outcome;
                }
                if let Ok(ticks) = self.spec.price_ticks(&price) {
                    levels.last_price_ticks = Some(ticks);
                }
                levels.sequence = sequence;
                let _ = self.sender.send(Arc::clone(text));
                Replicated::Applied
            }
        }
    }

    /// `None` when `sequence` is the next one; otherwise what to do instead of applying it.
    fn check_sequence(levels: &mut Levels, sequence: u64) -> Option<Replicated> {
        if !levels.synced {
            return Some(Replicated::NeedSnapshot);
        }
        if sequence <= levels.sequence {
            // Seen already (our own message back from the bus, or a duplicate).
            return Some(Replicated::Applied);
        }
        if sequence != levels.sequence + 1 {
            levels.synced = false;
            return Some(Replicated::NeedSnapshot);
        }
        None
    }

    /// Levels as the owner wrote them; `None` if one does not fit this market's ticks and lots.
    fn parse_levels(&self, levels: &[Level]) -> Option<Vec<(Ticks, Lots)>> {
        levels
            .iter()
            .map(|level| {
                let price = self.spec.price_ticks(&level.price).ok()?;
                let quantity = if level.quantity.trim_start_matches(['0', '.']).is_empty() {
                    0
                } else {
                    self.spec.quantity_lots(&level.quantity).ok()?
                };
                Some((price, quantity))
            })
            .collect()
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
    /// Called by the writer when it owns the market: the numbering continues from wherever
    /// this feed was, so a replica that followed the previous owner continues without a gap.
    pub fn reset(&self, book: &Book) {
        self.owner.store(true, Ordering::Release);
        let mut levels = self.lock();
        if !levels.synced {
            // Taken without following the previous owner (first start, or the replica had
            // not caught up): its numbering is unknown, so jump past anything it can have
            // used. Clients see a gap and resync from a snapshot; numbers never go back.
            let now_us = u64::try_from(scrip_http::now_us()).unwrap_or(0);
            levels.sequence = levels.sequence.max(now_us);
        }
        levels.synced = true;
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
            let text: Arc<str> = Arc::from(text);
            // Published under the feed's lock, so the bus carries messages in sequence order.
            if let Some(bus) = &self.bus {
                bus.publish(&data_topic(&self.symbol), Arc::clone(&text));
            }
            // No subscriber is not an error.
            let _ = self.sender.send(text);
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
