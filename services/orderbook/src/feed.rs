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
    /// Which ownership of the market numbered `sequence`: it changes when another process
    /// takes the market over, and numbering within one epoch is gapless.
    #[serde(default)]
    pub epoch: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    /// Price of the last trade, if any.
    #[serde(default)]
    pub last_price: Option<String>,
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
        #[serde(default)]
        epoch: u64,
        bids: Vec<Level>,
        asks: Vec<Level>,
    },
    Trade {
        symbol: String,
        sequence: u64,
        #[serde(default)]
        epoch: u64,
        id: String,
        price: String,
        quantity: String,
        taker_side: String,
        created_at: String,
    },
    /// Between processes only (never sent to WebSocket clients): the owner's current number,
    /// every few seconds, so a replica that missed the last messages notices.
    Heartbeat {
        symbol: String,
        sequence: u64,
        epoch: u64,
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
    /// The ownership that numbers the messages (see [`BookView::epoch`]).
    epoch: u64,
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
                epoch: 0,
            }),
            sender,
            bus,
            owner: AtomicBool::new(false),
        }
    }

    /// Waits (up to `limit`) for a replica that has not caught up with its owner yet, so a new
    /// reader is not handed an empty book.
    pub async fn caught_up(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.is_catching_up() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
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

    /// Publishes the whole book on the bus: the owner's answer to a replica's resync request.
    /// Numbered like the last message, so replicas that are in step ignore it.
    pub fn publish_snapshot(&self) {
        let levels = self.lock();
        let message = StreamMessage::Snapshot(self.view(&levels, usize::MAX));
        self.publish_to_bus(&message);
    }

    /// Publishes the owner's current number on the bus (small; replicas compare it with theirs).
    pub fn publish_heartbeat(&self) {
        let levels = self.lock();
        let message = StreamMessage::Heartbeat {
            symbol: self.symbol.clone(),
            sequence: levels.sequence,
            epoch: levels.epoch,
        };
        self.publish_to_bus(&message);
    }

    /// Called with the feed's lock held, so bus messages keep the sequence's order.
    fn publish_to_bus(&self, message: &StreamMessage) {
        let Some(bus) = &self.bus else { return };
        if let Ok(text) = serde_json::to_string(message) {
            bus.publish(&data_topic(&self.symbol), Arc::from(text));
        }
    }

    /// Applies a message the owner published, keeping this replica's levels, epoch and sequence
    /// equal to the owner's, and passes it on to this process's subscribers.
    ///
    /// Within an epoch the sequence is gapless. A message of an older epoch comes from an owner
    /// that has been replaced and is ignored. A message of a newer epoch is applied only if it
    /// continues this replica's numbering (the new owner followed the same messages); anything
    /// else waits for a snapshot, which is taken from any epoch at least as new as ours.
    pub fn apply_remote(&self, text: &Arc<str>) -> Replicated {
        let Ok(message) = serde_json::from_str::<StreamMessage>(text) else {
            tracing::warn!(symbol = %self.symbol, "unreadable market data message");
            return Replicated::Applied;
        };
        let mut levels = self.lock();
        match message {
            StreamMessage::Snapshot(view) => {
                let stale = view.epoch < levels.epoch
                    || (levels.synced
                        && view.epoch == levels.epoch
                        && view.sequence <= levels.sequence);
                if stale {
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
                levels.epoch = view.epoch;
                if let Some(price) = view.last_price.as_deref() {
                    levels.last_price_ticks = self.spec.price_ticks(price).ok();
                }
                levels.synced = true;
                // Local subscribers start again from this snapshot, as after a lag.
                let _ = self.sender.send(Arc::clone(text));
                Replicated::Applied
            }
            StreamMessage::Heartbeat {
                sequence, epoch, ..
            } => {
                let behind = epoch > levels.epoch
                    || (epoch == levels.epoch && sequence > levels.sequence)
                    || (epoch == levels.epoch && !levels.synced);
                if behind {
                    levels.synced = false;
                    Replicated::NeedSnapshot
                } else {
                    Replicated::Applied
                }
            }
            StreamMessage::Book {
                sequence,
                epoch,
                bids,
                asks,
                ..
            } => {
                if let Some(outcome) = Self::check_sequence(&mut levels, epoch, sequence) {
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
                levels.epoch = epoch;
                let _ = self.sender.send(Arc::clone(text));
                Replicated::Applied
            }
            StreamMessage::Trade {
                sequence,
                epoch,
                price,
                ..
            } => {
                if let Some(outcome) = Self::check_sequence(&mut levels, epoch, sequence) {
                    return outcome;
                }
                if let Ok(ticks) = self.spec.price_ticks(&price) {
                    levels.last_price_ticks = Some(ticks);
                }
                levels.sequence = sequence;
                levels.epoch = epoch;
                let _ = self.sender.send(Arc::clone(text));
                Replicated::Applied
            }
        }
    }

    /// `None` when the message is the next one; otherwise what to do instead of applying it.
    fn check_sequence(levels: &mut Levels, epoch: u64, sequence: u64) -> Option<Replicated> {
        if epoch < levels.epoch {
            // From an owner that has been replaced.
            return Some(Replicated::Applied);
        }
        if !levels.synced {
            return Some(Replicated::NeedSnapshot);
        }
        if epoch == levels.epoch && sequence <= levels.sequence {
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
        let taking_over = !self.owner.swap(true, Ordering::AcqRel);
        let mut levels = self.lock();
        let now_us = u64::try_from(scrip_http::now_us()).unwrap_or(0);
        if taking_over {
            // A new ownership: a new epoch, so replicas can tell this owner's messages from a
            // replaced owner's (clocks of the hosts are assumed synchronised to well under the
            // seconds a takeover takes).
            levels.epoch = (levels.epoch + 1).max(now_us);
        }
        if !levels.synced {
            // Taken without following the previous owner (first start, or the replica had
            // not caught up): its numbering is unknown, so jump past anything it can have
            // used. Clients see a gap and resync from a snapshot; numbers never go back.
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
        // A takeover is always announced (even with nothing changed), so replicas learn the
        // new epoch from a message that continues their numbering.
        self.publish_locked(&mut levels, &[], &changed, taking_over);
    }

    /// Publishes a committed batch: its trades, then the levels it changed.
    pub fn publish(&self, trades: &[TradeRecord], changed: &[(bool, Ticks, Lots)]) {
        let mut levels = self.lock();
        self.publish_locked(&mut levels, trades, changed, false);
    }

    fn publish_locked(
        &self,
        levels: &mut Levels,
        trades: &[TradeRecord],
        changed: &[(bool, Ticks, Lots)],
        announce: bool,
    ) {
        for trade in trades {
            levels.sequence += 1;
            levels.last_price_ticks = Some(trade.price_ticks);
            self.send(&StreamMessage::Trade {
                symbol: self.symbol.clone(),
                sequence: levels.sequence,
                epoch: levels.epoch,
                id: trade.id.to_string(),
                price: self.spec.price(trade.price_ticks).to_string(),
                quantity: self.spec.quantity(trade.quantity_lots).to_string(),
                taker_side: side_str(trade.taker_side).to_owned(),
                created_at: rfc3339_from_us(trade.created_at_us),
            });
        }
        if changed.is_empty() && !announce {
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
            epoch: levels.epoch,
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
            epoch: levels.epoch,
            last_price: levels
                .last_price_ticks
                .map(|ticks| self.spec.price(ticks).to_string()),
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

    /// The sequence of the last message (it moves on with every change of the book and
    /// every trade).
    pub fn sequence(&self) -> u64 {
        self.lock().sequence
    }

    pub fn last_price_ticks(&self) -> Option<Ticks> {
        self.lock().last_price_ticks
    }

    /// The book's best `depth` levels a side and a receiver of every message after it.
    pub fn subscribe(&self, depth: usize) -> (BookView, broadcast::Receiver<Arc<str>>) {
        let levels = self.lock();
        let receiver = self.sender.subscribe();
        (self.view(&levels, depth), receiver)
    }
}

#[cfg(test)]
mod tests {
    use scrip_bus::InProcessBus;
    use scrip_domain::{CurrencyCode, CurrencyId, Scale};

    use super::*;

    fn spec() -> MarketSpec {
        let code = |c: &str| CurrencyCode::parse(c).expect("code");
        let scale = Scale::new(2).expect("scale");
        MarketSpec::new(
            1,
            (CurrencyId::new(1), code("BREAD"), scale),
            (CurrencyId::new(2), code("GROCER"), scale),
            1,
            100,
            25,
        )
        .expect("spec")
    }

    /// Everything published on the market's topic since `receiver` subscribed.
    fn drain(receiver: &mut broadcast::Receiver<Arc<str>>) -> Vec<Arc<str>> {
        std::iter::from_fn(|| receiver.try_recv().ok()).collect()
    }

    fn levels_of(feed: &Feed) -> (Vec<Level>, Vec<Level>) {
        let view = feed.snapshot(usize::MAX);
        (view.bids, view.asks)
    }

    #[test]
    fn replicas_follow_the_owner_across_a_takeover_and_ignore_a_replaced_one() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let mut wire = bus.subscribe(&data_topic("BREAD-GROCER"));
        let owner = Feed::new(spec(), None, Some(Arc::clone(&bus)));
        let standby = Feed::new(spec(), None, Some(Arc::clone(&bus)));
        let replica = Feed::new(spec(), None, Some(Arc::clone(&bus)));
        let deliver = |wire: &mut broadcast::Receiver<Arc<str>>, feeds: &[&Feed]| {
            let mut outcomes = Vec::new();
            for text in drain(wire) {
                for feed in feeds {
                    outcomes.push(feed.apply_remote(&text));
                }
            }
            outcomes
        };

        // The owner takes the market; replicas need a snapshot before they can follow.
        owner.reset(&Book::new());
        assert!(deliver(&mut wire, &[&standby, &replica]).contains(&Replicated::NeedSnapshot));
        owner.publish_snapshot();
        deliver(&mut wire, &[&standby, &replica]);
        assert!(standby.is_in_step() && replica.is_in_step());
        owner.publish(&[], &[(true, 95, 3), (false, 105, 2)]);
        owner.publish(&[], &[(true, 95, 0), (true, 94, 1)]);
        assert!(
            deliver(&mut wire, &[&standby, &replica])
                .iter()
                .all(|o| *o == Replicated::Applied)
        );
        assert_eq!(levels_of(&replica), levels_of(&owner));
        let before = replica.snapshot(0);

        // The owner dies; the standby takes over from the stored book and continues the
        // numbering under a new epoch: the replica follows without a snapshot.
        let mut book = Book::new();
        for (id, side, price, lots) in [
            (1, Side::Buy, 94, 1),
            (2, Side::Sell, 105, 2),
            (3, Side::Buy, 90, 4),
        ] {
            let mut events = Vec::new();
            let order = scrip_matching::NewOrder {
                id,
                owner: 1,
                side,
                price: Some(price),
                quantity: lots,
                time_in_force: scrip_matching::TimeInForce::Gtc,
                post_only: false,
            };
            book.submit(order, &mut events).expect("order");
        }
        standby.reset(&book);
        assert!(
            deliver(&mut wire, &[&replica])
                .iter()
                .all(|o| *o == Replicated::Applied)
        );
        let after = replica.snapshot(0);
        assert!(after.epoch > before.epoch);
        assert_eq!(
            after.sequence,
            before.sequence + 1,
            "gapless across the takeover"
        );
        assert_eq!(levels_of(&replica), levels_of(&standby));

        // The replaced owner (it lost its lock but does not know yet) is ignored.
        owner.publish(&[], &[(true, 99, 7)]);
        assert!(
            deliver(&mut wire, &[&replica])
                .iter()
                .all(|o| *o == Replicated::Applied)
        );
        assert_eq!(levels_of(&replica), levels_of(&standby));

        // A replica that saw a message the new owner never saw does not take the new owner's
        // same-numbered message as a continuation: it asks for a snapshot.
        let other = Feed::new(spec(), None, Some(Arc::clone(&bus)));
        standby.publish_snapshot();
        deliver(&mut wire, &[&other]);
        let taker = Feed::new(spec(), None, Some(Arc::clone(&bus)));
        standby.publish_snapshot();
        deliver(&mut wire, &[&taker]);
        standby.publish(&[], &[(false, 110, 1)]); // reaches `other` only
        let missed = drain(&mut wire);
        assert_eq!(other.apply_remote(&missed[0]), Replicated::Applied);
        standby.disown();
        taker.reset(&book);
        let outcomes = deliver(&mut wire, &[&other]);
        assert!(outcomes.contains(&Replicated::NeedSnapshot), "{outcomes:?}");
        taker.publish_snapshot();
        deliver(&mut wire, &[&other]);
        assert_eq!(levels_of(&other), levels_of(&taker));
    }
}
