//! In-process rate limits (token buckets). A Redis-backed limiter shared by all instances
//! replaces this in the production topology.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::HttpRequest;

use crate::ApiError;

/// Buckets kept at most; beyond it, full (idle) buckets are dropped first.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Allows `per_minute` requests per key, with bursts up to the same number.
#[derive(Debug)]
pub struct RateLimiter {
    name: &'static str,
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(name: &'static str, per_minute: u32) -> Self {
        Self {
            name,
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.refilled).as_secs_f64() * per_second < capacity
            });
            // Still full: a flood of distinct keys. Forget them all rather than grow without
            // bound; the cost is that those keys start again with a full bucket.
            if buckets.len() >= MAX_BUCKETS {
                tracing::warn!(limiter = self.name, "rate limiter table full; resetting it");
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            refilled: now,
        });
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_s = ((1.0 - bucket.tokens) / per_second).ceil();
            tracing::info!(limiter = self.name, key, "rate limited");
            Err(ApiError::RateLimited {
                retry_after_s: wait_s as u64,
            })
        }
    }
}

/// The peer address, the key for limits on anonymous endpoints (login, sign-up).
pub fn client_ip(request: &HttpRequest) -> String {
    request
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses() {
        let limiter = RateLimiter::new("test", 3);
        for _ in 0..3 {
            assert!(limiter.check("k").is_ok());
        }
        assert!(matches!(
            limiter.check("k"),
            Err(ApiError::RateLimited { retry_after_s: 20 })
        ));
        assert!(limiter.check("other").is_ok(), "keys are independent");
    }
}
