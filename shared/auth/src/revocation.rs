//! Ending sessions everywhere at once. A process that ends sessions (logout, a password
//! change, a reused refresh token) publishes their ids on the bus; every process (through
//! Redis, when the services run apart) forgets them, so their access tokens are refused at
//! their next request instead of after [`crate::SESSION_RECHECK`]. The bus delivers at most
//! once: a lost message leaves that bound as the fallback.

use std::sync::Arc;

use scrip_bus::Bus;
use tokio::sync::broadcast::error::RecvError;

use crate::TokenVerifier;

/// The topic ended sessions are announced on.
pub const TOPIC: &str = "sessions.ended";

/// Tells every process that `sessions` ended (this one included, which forgets them now).
pub fn announce(bus: &dyn Bus, verifier: &TokenVerifier, sessions: &[i64]) {
    for &session in sessions {
        verifier.forget_session(session);
    }
    if sessions.is_empty() {
        return;
    }
    let payload = sessions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    bus.publish(TOPIC, Arc::from(payload));
}

/// What announces ended sessions: the bus and this process's verifier.
#[derive(Clone)]
pub struct Revocation {
    bus: Arc<dyn Bus>,
    verifier: TokenVerifier,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revocation")
    }
}

impl Revocation {
    pub fn new(bus: Arc<dyn Bus>, verifier: TokenVerifier) -> Self {
        Self { bus, verifier }
    }

    /// [`announce`] through this process's bus and verifier.
    pub fn announce(&self, sessions: &[i64]) {
        announce(self.bus.as_ref(), &self.verifier, sessions);
    }
}

/// Forgets every session another process announces as ended, for as long as the runtime
/// runs.
pub fn spawn_listener(bus: &dyn Bus, verifier: TokenVerifier) {
    let mut ended = bus.subscribe(TOPIC);
    tokio::spawn(async move {
        loop {
            match ended.recv().await {
                Ok(payload) => {
                    for session in payload.split(',').filter_map(|id| id.parse::<i64>().ok()) {
                        verifier.forget_session(session);
                    }
                }
                // Missed announcements: those sessions end within SESSION_RECHECK anyway.
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "ended-session announcements were missed");
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}
