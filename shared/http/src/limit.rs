//! Rate limits. Embedded: token buckets in this process. Production: a fixed one-minute
//! window counted in Redis, so every instance of a service shares one budget per key; if Redis
//! does not answer, the limiter falls back to this process's buckets rather than refuse
//! everyone (a limit is a safety valve, not a ledger).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::HttpRequest;

use crate::ApiError;

/// Longest wait for Redis's count before falling back to this process's buckets.
const SHARED_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

/// Buckets kept at most; beyond it, full (idle) buckets are dropped first.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Allows `per_minute` requests per key, with bursts up to the same number.
pub struct RateLimiter {
    name: &'static str,
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Redis, and the prefix of this deployment's counters in it.
    shared: Option<(redis::aio::ConnectionManager, String)>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("per_minute", &self.per_minute)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl RateLimiter {
    pub fn new(name: &'static str, per_minute: u32) -> Self {
        Self {
            name,
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Counts in Redis from now on, shared with every instance using the same Redis and
    /// `prefix`.
    #[must_use]
    pub fn shared(mut self, redis: redis::aio::ConnectionManager, prefix: &str) -> Self {
        self.shared = Some((redis, format!("{prefix}limit:")));
        self
    }

    /// Takes one request of `key`'s budget, or says how long to wait.
    pub async fn check(&self, key: &str) -> Result<(), ApiError> {
        if let Some((redis, prefix)) = &self.shared {
            // A Redis that hangs or reconnects must not hold up logins and payments: after a
            // short wait the request is counted here instead.
            let shared = tokio::time::timeout(
                SHARED_CHECK_TIMEOUT,
                self.check_shared(redis.clone(), prefix, key),
            )
            .await;
            match shared {
                Ok(Ok(result)) => return result,
                Ok(Err(error)) => {
                    tracing::warn!(limiter = self.name, %error, "shared rate limit unavailable; counting locally");
                }
                Err(_) => {
                    tracing::warn!(
                        limiter = self.name,
                        "shared rate limit too slow; counting locally"
                    );
                }
            }
        }
        self.check_local(key)
    }

    /// One hit in this minute's window of `key`; the window's counter expires after it.
    async fn check_shared(
        &self,
        mut redis: redis::aio::ConnectionManager,
        prefix: &str,
        key: &str,
    ) -> Result<Result<(), ApiError>, redis::RedisError> {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let window = now_s / 60;
        let counter = format!("{prefix}{}:{window}:{key}", self.name);
        let (count, _): (u64, bool) = redis::pipe()
            .atomic()
            .incr(&counter, 1)
            .expire(&counter, 120)
            .query_async(&mut redis)
            .await?;
        if count <= u64::from(self.per_minute) {
            Ok(Ok(()))
        } else {
            tracing::info!(limiter = self.name, key, "rate limited (shared)");
            Ok(Err(ApiError::RateLimited {
                retry_after_s: 60 - now_s % 60,
            }))
        }
    }

    fn check_local(&self, key: &str) -> Result<(), ApiError> {
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

/// Proxies whose `X-Forwarded-For` is believed (the load balancer in front of the services),
/// as addresses or networks (`10.0.0.7`, `10.42.0.0/16`). Register it as app data; without
/// it, the peer address is the client.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl TrustedProxies {
    fn trusts(&self, address: &std::net::IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    /// One entry of `SCRIP_TRUSTED_PROXIES`: an address or a network in CIDR notation.
    pub fn parse_entry(raw: &str) -> Result<ipnet::IpNet, String> {
        let raw = raw.trim();
        raw.parse::<ipnet::IpNet>()
            .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                format!("{raw:?} is neither an address (10.0.0.7) nor a network (10.42.0.0/16)")
            })
    }
}

/// The client's address, the key for limits on anonymous endpoints (login, sign-up). Behind a
/// trusted proxy it is the last address in `X-Forwarded-For` that is not itself a trusted
/// proxy (what the proxy saw); the header is ignored from anyone else, so a client cannot
/// choose its own key.
pub fn client_ip(request: &HttpRequest) -> String {
    let peer = request.peer_addr().map(|a| a.ip());
    let Some(trusted) = request.app_data::<actix_web::web::Data<TrustedProxies>>() else {
        return peer.map(|ip| ip.to_string()).unwrap_or_default();
    };
    if let Some(peer) = peer
        && trusted.trusts(&peer)
    {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
            .collect::<Vec<_>>();
        if let Some(client) = forwarded.iter().rev().find(|a| !trusted.trusts(a)) {
            return client.to_string();
        }
    }
    peer.map(|ip| ip.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses() {
        let limiter = RateLimiter::new("test", 3);
        for _ in 0..3 {
            assert!(limiter.check_local("k").is_ok());
        }
        assert!(matches!(
            limiter.check_local("k"),
            Err(ApiError::RateLimited { retry_after_s: 20 })
        ));
        assert!(limiter.check_local("other").is_ok(), "keys are independent");
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        use actix_web::test::TestRequest;
        let proxy: std::net::SocketAddr = "10.0.0.2:4000".parse().expect("addr");
        let trusted = actix_web::web::Data::new(TrustedProxies(vec![proxy.ip().into()]));
        let through_proxy = TestRequest::default()
            .peer_addr(proxy)
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.9"))
            .app_data(trusted.clone())
            .to_http_request();
        // The proxy appended what it saw; what the client wrote before it is not believed.
        assert_eq!(client_ip(&through_proxy), "203.0.113.9");
        let direct = TestRequest::default()
            .peer_addr("198.51.100.7:5000".parse().expect("addr"))
            .insert_header(("x-forwarded-for", "203.0.113.9"))
            .app_data(trusted)
            .to_http_request();
        assert_eq!(
            client_ip(&direct),
            "198.51.100.7",
            "a client cannot pick its key"
        );
        let untrusted = TestRequest::default()
            .peer_addr(proxy)
            .insert_header(("x-forwarded-for", "203.0.113.9"))
            .to_http_request();
        assert_eq!(client_ip(&untrusted), "10.0.0.2");
    }

    /// A network of proxies (a cluster's pod range) is trusted as a whole, and every proxy of
    /// it on the way is skipped.
    #[test]
    fn trusted_proxies_may_be_networks() {
        let network = TrustedProxies::parse_entry("10.42.0.0/16").expect("network");
        let single = TrustedProxies::parse_entry(" 192.0.2.1 ").expect("address");
        assert!(TrustedProxies::parse_entry("10.42.0.0/33").is_err());
        assert!(TrustedProxies::parse_entry("proxy").is_err());
        let trusted = actix_web::web::Data::new(TrustedProxies(vec![network, single]));
        let hop = actix_web::test::TestRequest::default()
            .peer_addr("10.42.7.9:443".parse().expect("addr"))
            .insert_header(("x-forwarded-for", "203.0.113.9, 10.42.1.1"))
            .app_data(trusted)
            .to_http_request();
        assert_eq!(client_ip(&hop), "203.0.113.9");
    }

    /// Two instances sharing one Redis share one budget per key. Needs Redis at
    /// `SCRIP_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`); fails without it.
    #[tokio::test]
    async fn instances_share_one_budget_through_redis() {
        let url = std::env::var("SCRIP_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = redis::Client::open(url.as_str()).expect("redis url");
        let connect = || async {
            redis::aio::ConnectionManager::new(client.clone())
                .await
                .unwrap_or_else(|e| panic!("Redis must be running at {url}: {e}"))
        };
        let first = RateLimiter::new("shared-test", 4).shared(connect().await, "scrip-test:");
        let second = RateLimiter::new("shared-test", 4).shared(connect().await, "scrip-test:");
        let key = format!("key-{}-{}", std::process::id(), crate::now_us());
        let mut allowed = 0;
        for n in 0..10 {
            let limiter = if n % 2 == 0 { &first } else { &second };
            if limiter.check(&key).await.is_ok() {
                allowed += 1;
            }
        }
        // A minute boundary between the calls could open a second window: at most twice.
        assert!(allowed == 4 || allowed == 8, "{allowed} allowed");
        assert!(first.check(&format!("{key}-other")).await.is_ok());
    }
}
