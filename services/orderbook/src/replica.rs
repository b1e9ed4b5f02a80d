//! Market data between processes: the owner of a market publishes every stream message on the
//! bus; every other process keeps a replica of the book from them (same levels, same gapless
//! sequence), so a WebSocket client on any instance sees the same stream. A replica that sees
//! a gap asks the owner for a snapshot and starts again from it; the owner also publishes a
//! heartbeat with its current number every second, so a replica that missed the last messages
//! (or whose request was lost) notices.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scrip_bus::Bus;
use tokio::sync::broadcast::error::RecvError;

use crate::feed::{Feed, Replicated, data_topic, resync_topic};

/// How often the owner publishes its current number (a heartbeat) unasked.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two snapshots the owner publishes for one market.
const SNAPSHOT_COALESCE: Duration = Duration::from_millis(250);
/// Least time between two resync requests of one replica.
const RESYNC_BACKOFF: Duration = Duration::from_millis(250);

/// Runs the bridge of one market's feed for as long as the feed is in use (it holds the feed
/// weakly). Without a tokio runtime (tools, some tests) there is nothing to bridge to and
/// nothing is started.
pub fn spawn_bridge(feed: Arc<Feed>, bus: Arc<dyn Bus>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let symbol = feed.symbol().to_owned();
    let feed = Arc::downgrade(&feed);
    runtime.spawn(async move {
        let mut data = bus.subscribe(&data_topic(&symbol));
        let mut requests = bus.subscribe(&resync_topic(&symbol));
        let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut snapshot_at: Option<Instant> = None;
        let mut asked: Option<Instant> = None;
        let mut ask = |bus: &dyn Bus| {
            if asked.is_none_or(|at| at.elapsed() >= RESYNC_BACKOFF) {
                bus.publish(&resync_topic(&symbol), Arc::from(""));
                asked = Some(Instant::now());
            }
        };
        loop {
            let event = tokio::select! {
                message = data.recv() => Event::Data(message),
                request = requests.recv() => Event::Request(request.map(|_| ())),
                _ = ticks.tick() => Event::Tick,
            };
            let Some(feed) = feed.upgrade() else {
                return; // the market is no longer served here
            };
            match event {
                Event::Data(message) => match message {
                    // The owner's own messages come back too; only replicas apply them.
                    Ok(text) => {
                        if !feed.is_owner() && feed.apply_remote(&text) == Replicated::NeedSnapshot
                        {
                            ask(bus.as_ref());
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        if !feed.is_owner() {
                            feed.mark_out_of_step();
                            ask(bus.as_ref());
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                Event::Request(request) => match request {
                    Ok(()) | Err(RecvError::Lagged(_)) => {
                        // Many replicas asking at once get one snapshot between them.
                        let due = snapshot_at.is_none_or(|at| at.elapsed() >= SNAPSHOT_COALESCE);
                        if feed.is_owner() && due {
                            feed.publish_snapshot();
                            snapshot_at = Some(Instant::now());
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                Event::Tick => {
                    if feed.is_owner() {
                        feed.publish_heartbeat();
                    } else if !feed.is_in_step() {
                        ask(bus.as_ref());
                    }
                }
            }
        }
    });
}

enum Event {
    Data(Result<Arc<str>, RecvError>),
    Request(Result<(), RecvError>),
    Tick,
}
