use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use crate::{Bus, BusFuture, SUBSCRIBER_BUFFER};

/// Topics as tokio broadcast channels, created on first use.
#[derive(Debug, Default)]
pub struct InProcessBus {
    topics: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// The topic's channel; a new one holds `buffer` messages per subscriber.
    fn sender(&self, topic: &str, buffer: usize) -> broadcast::Sender<Arc<str>> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = topics.get(topic) {
            return sender.clone();
        }
        // Topics nobody listens to any more are dropped here, so the map stays as small as
        // the set of live topics.
        topics.retain(|_, sender| sender.receiver_count() > 0);
        let (sender, _) = broadcast::channel(buffer);
        topics.insert(topic.to_owned(), sender.clone());
        sender
    }

    /// Delivers to this process's subscribers only (the Redis bus's listener uses it).
    pub(crate) fn deliver(&self, topic: &str, payload: Arc<str>) {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = topics.get(topic) {
            // No receiver is not an error: nobody here listens to that topic right now.
            let _ = sender.send(payload);
        }
    }
}

impl Bus for InProcessBus {
    fn publish(&self, topic: &str, payload: Arc<str>) {
        self.deliver(topic, payload);
    }

    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<str>> {
        self.subscribe_with_buffer(topic, SUBSCRIBER_BUFFER)
    }

    fn subscribe_with_buffer(&self, topic: &str, buffer: usize) -> broadcast::Receiver<Arc<str>> {
        self.sender(topic, buffer).subscribe()
    }

    fn ping(&self) -> BusFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }
}
