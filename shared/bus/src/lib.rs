//! The event bus: publish a message on a topic, and every subscriber of that topic in every
//! process receives it, in the order one publisher sent it.
//!
//! - [`InProcessBus`]: tokio broadcast channels; the embedded default, and the local fan-out
//!   behind the Redis bus too.
//! - [`RedisBus`]: Redis pub/sub between processes. A message published here travels through
//!   Redis and comes back to local subscribers the same way it reaches other processes, so every
//!   subscriber anywhere sees one order.
//!
//! Delivery is at most once: a subscriber that falls behind, or a Redis connection that drops,
//! loses messages. Consumers that must not miss anything (the market data replicas) number
//! their messages and resynchronise from a snapshot when they see a gap.

mod in_process;
mod redis_bus;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use in_process::InProcessBus;
pub use redis_bus::RedisBus;
use tokio::sync::broadcast;

/// Messages a subscriber may fall behind by before it starts losing them.
pub const SUBSCRIBER_BUFFER: usize = 8_192;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the bus is shut down")]
    Closed,
}

/// A future the trait can return without `async fn` in a dyn-compatible trait.
pub type BusFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BusError>> + Send + 'a>>;

pub trait Bus: Send + Sync + fmt::Debug + 'static {
    /// Sends `payload` to every subscriber of `topic`. Never blocks and never fails: a message
    /// that cannot be sent is dropped (counted in the log), which subscribers detect by their
    /// own numbering.
    fn publish(&self, topic: &str, payload: Arc<str>);

    /// Messages published on `topic` from now on.
    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<str>>;

    /// [`Bus::subscribe`] for a quiet topic (one user's events): a channel the topic's first
    /// subscriber opens buffers `buffer` messages instead of [`SUBSCRIBER_BUFFER`], since a
    /// channel's buffer is allocated whole and there may be thousands of such topics.
    fn subscribe_with_buffer(&self, topic: &str, buffer: usize) -> broadcast::Receiver<Arc<str>>;

    /// Whether the bus's backend answers (for `/readyz`).
    fn ping(&self) -> BusFuture<'_, ()>;

    /// `"in-process"` or `"redis"`, for `/readyz` and logs.
    fn kind(&self) -> &'static str;
}

/// The bus a process uses: Redis when a URL is configured, in-process otherwise.
pub async fn connect(redis_url: Option<&str>, prefix: &str) -> Result<Arc<dyn Bus>, BusError> {
    Ok(match redis_url {
        Some(url) => Arc::new(RedisBus::connect(url, prefix).await?),
        None => Arc::new(InProcessBus::new()),
    })
}
