use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::{broadcast, mpsc};

use crate::{Bus, BusError, BusFuture, InProcessBus};

/// Messages waiting to be sent to Redis before new ones are dropped.
const OUTBOX: usize = 65_536;
/// Most messages sent to Redis in one pipelined round trip.
const PIPELINE_MAX: usize = 512;
/// Wait before reconnecting after Redis went away.
const RECONNECT_DELAY: Duration = Duration::from_millis(250);

/// Redis pub/sub between processes, with local fan-out through an [`InProcessBus`].
///
/// One task sends everything published here to Redis in order (pipelined); one task listens
/// to every topic under the prefix and hands each message to the local subscribers. Both
/// reconnect by themselves; messages in flight while Redis is away are lost (see the crate
/// documentation).
#[derive(Debug)]
pub struct RedisBus {
    prefix: String,
    outbox: mpsc::Sender<(String, Arc<str>)>,
    local: Arc<InProcessBus>,
    client: redis::Client,
    dropped: Arc<AtomicU64>,
}

impl RedisBus {
    /// Connects (failing at once if Redis does not answer) and starts the two tasks. Topics are
    /// namespaced by `prefix` so that deployments may share one Redis.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let client = redis::Client::open(url)?;
        // Both connections are made before returning, so a wrong URL fails the start.
        let publisher = client.get_multiplexed_async_connection().await?;
        let mut listener = client.get_async_pubsub().await?;
        let pattern = format!("{prefix}*");
        listener.psubscribe(&pattern).await?;
        let local = Arc::new(InProcessBus::new());
        let (outbox, queued) = mpsc::channel(OUTBOX);
        tokio::spawn(send_loop(client.clone(), publisher, queued));
        tokio::spawn(listen_loop(
            client.clone(),
            listener,
            pattern,
            prefix.to_owned(),
            local.clone(),
        ));
        Ok(Self {
            prefix: prefix.to_owned(),
            outbox,
            local,
            client,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }
}

impl Bus for RedisBus {
    fn publish(&self, topic: &str, payload: Arc<str>) {
        if self
            .outbox
            .try_send((format!("{}{topic}", self.prefix), payload))
            .is_err()
        {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "bus outbox full or closed; messages dropped");
            }
        }
    }

    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<str>> {
        self.local.subscribe(topic)
    }

    fn subscribe_with_buffer(&self, topic: &str, buffer: usize) -> broadcast::Receiver<Arc<str>> {
        self.local.subscribe_with_buffer(topic, buffer)
    }

    fn ping(&self) -> BusFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.client.get_multiplexed_async_connection().await?;
            let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// Sends queued messages to Redis in order, as many per round trip as are waiting.
async fn send_loop(
    client: redis::Client,
    mut conn: redis::aio::MultiplexedConnection,
    mut queued: mpsc::Receiver<(String, Arc<str>)>,
) {
    let mut batch = Vec::with_capacity(PIPELINE_MAX);
    while queued.recv_many(&mut batch, PIPELINE_MAX).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.cmd("PUBLISH")
                .arg(channel)
                .arg(payload.as_bytes())
                .ignore();
        }
        if let Err(error) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(%error, lost = batch.len(), "bus: publishing to Redis failed; reconnecting");
            conn = reconnect(|| client.get_multiplexed_async_connection()).await;
        }
        batch.clear();
    }
}

/// Hands every message under the prefix to the local subscribers; resubscribes after a drop.
async fn listen_loop(
    client: redis::Client,
    mut listener: redis::aio::PubSub,
    pattern: String,
    prefix: String,
    local: Arc<InProcessBus>,
) {
    loop {
        {
            let mut messages = listener.on_message();
            while let Some(message) = messages.next().await {
                let channel = message.get_channel_name();
                let Some(topic) = channel.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                match message.get_payload::<String>() {
                    Ok(payload) => local.deliver(topic, Arc::from(payload)),
                    Err(error) => tracing::warn!(%error, topic, "bus: unreadable message"),
                }
            }
        }
        tracing::warn!("bus: Redis subscription ended; reconnecting");
        listener = loop {
            let mut fresh = reconnect(|| client.get_async_pubsub()).await;
            match fresh.psubscribe(&pattern).await {
                Ok(()) => break fresh,
                Err(error) => {
                    tracing::warn!(%error, "bus: resubscribing failed");
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
        };
    }
}

async fn reconnect<T, F, Fut>(connect: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    loop {
        match connect().await {
            Ok(conn) => return conn,
            Err(error) => {
                tracing::warn!(%error, "bus: Redis unreachable; retrying");
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }
    }
}
