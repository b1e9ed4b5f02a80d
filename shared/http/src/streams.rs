//! Bounds on the WebSocket streams of one process (market data and each user's own events):
//! a cap in total and per client address, so idle upgrades cannot use up the file descriptors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ApiError;

/// Bounds on the streams of one process.
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    /// Streams open at once in this process; beyond it 503 `overloaded`.
    pub total: usize,
    /// Streams open at once from one client address; beyond it 429.
    pub per_address: usize,
    pub ping_interval: Duration,
    /// A stream whose client sent nothing for this long is closed.
    pub idle_timeout: Duration,
    /// How often a user's own stream checks again that it may carry what it carries (its
    /// session, its memberships).
    pub recheck_interval: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            // Far below the descriptors a process gets (20,000 here), leaving room for HTTP
            // clients and the database.
            total: 4_096,
            // A trader with several tabs and a few markets open.
            per_address: 16,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            recheck_interval: Duration::from_secs(60),
        }
    }
}

/// Counts the open streams, in total and per client address.
#[derive(Debug)]
pub struct StreamGate {
    limits: StreamLimits,
    open: Mutex<OpenStreams>,
}

#[derive(Debug, Default)]
struct OpenStreams {
    total: usize,
    /// Only addresses with a stream open (removed at zero), so at most `total` entries.
    by_address: HashMap<String, usize>,
}

/// One open stream; gives its place back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    gate: Arc<StreamGate>,
    address: String,
}

impl StreamGate {
    pub fn new(limits: StreamLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::default(),
        })
    }

    pub fn limits(&self) -> StreamLimits {
        self.limits
    }

    /// A place for one more stream from `address`, or the refusal to send.
    pub fn admit(self: &Arc<Self>, address: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.limits.total {
            return Err(ApiError::Overloaded {
                detail: "too many streams are open right now; try again shortly".into(),
                retry_after_s: 5,
            });
        }
        let mine = open.by_address.entry(address.to_owned()).or_default();
        if *mine >= self.limits.per_address {
            return Err(ApiError::RateLimited { retry_after_s: 10 });
        }
        *mine += 1;
        open.total += 1;
        Ok(StreamSlot {
            gate: Arc::clone(self),
            address: address.to_owned(),
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(mine) = open.by_address.get_mut(&self.address) {
            *mine -= 1;
            if *mine == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}
