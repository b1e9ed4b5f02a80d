//! `GET /api/v1/markets/{symbol}/stream`: the WebSocket market data stream.
//!
//! The first message is a `snapshot` of the committed book (its best `depth` levels a side,
//! at most 500, as REST); then come `book` diffs and `trade` messages, each with the next
//! `sequence`. A client that falls too far behind gets a fresh snapshot (its sequence jumps;
//! the snapshot says where to continue from), and a client that reconnects gets a fresh
//! snapshot too, so resynchronising never needs a page reload.
//!
//! Streams are anonymous, so they are bounded like every other resource: a cap in total and
//! per client address ([`StreamGate`]), a ping every [`StreamLimits::ping_interval`], and a
//! stream whose client said nothing (not even a pong, which browsers send by themselves) for
//! [`StreamLimits::idle_timeout`] is closed. Idle upgrades cannot use up the file descriptors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::Message;
use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;

use crate::dto::DepthQuery;
use crate::feed::StreamMessage;
use crate::{Exchange, ExchangeError};
use scrip_http::ApiError;

/// Bounds on the market data streams of one process.
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    /// Streams open at once in this process; beyond it 503 `overloaded`.
    pub total: usize,
    /// Streams open at once from one client address; beyond it 429.
    pub per_address: usize,
    pub ping_interval: Duration,
    /// A stream whose client sent nothing for this long is closed.
    pub idle_timeout: Duration,
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
                detail: "too many market data streams are open right now; try again shortly".into(),
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

/// Longest a new client waits for a replica to catch up with the market's owner.
pub(crate) const REPLICA_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(5);

#[utoipa::path(
    get, path = "/api/v1/markets/{symbol}/stream", tag = "exchange", params(DepthQuery),
    responses(
        (status = 101, description = "WebSocket: a snapshot message (the best `depth` levels a side, default and at most 500), then book and trade messages with a gapless sequence; pinged every 20 s, closed after 60 s without a word from the client"),
        (status = 404, body = scrip_http::Problem, description = "unknown_market"),
        (status = 422, body = scrip_http::Problem, description = "bad_depth"),
        (status = 429, body = scrip_http::Problem, description = "rate_limited: this address has the most streams open that one address may"),
        (status = 503, body = scrip_http::Problem, description = "overloaded: the server has the most streams open it takes"),
    )
)]
#[get("/api/v1/markets/{symbol}/stream")]
pub async fn stream(
    request: HttpRequest,
    body: web::Payload,
    symbol: web::Path<String>,
    query: web::Query<DepthQuery>,
    exchange: web::Data<Exchange>,
    gate: web::Data<Arc<StreamGate>>,
) -> Result<HttpResponse, ApiError> {
    let market = crate::handlers::market_named(&exchange, &symbol).await?;
    let depth = crate::handlers::depth_of(query.depth.unwrap_or(crate::handlers::MAX_DEPTH))?;
    let slot = gate.admit(&scrip_http::client_ip(&request))?;
    let limits = gate.limits();
    // A replica that is still waiting for its owner's snapshot would hand out an empty book:
    // give it a moment to catch up first.
    market.feed.caught_up(REPLICA_CATCH_UP).await;
    let (response, mut session, mut incoming) = actix_ws::handle(&request, body)
        .map_err(|e| ApiError::bad_request("not_websocket", e.to_string()))?;
    actix_web::rt::spawn(async move {
        let _slot = slot;
        let feed = &market.feed;
        let mut heard_at = Instant::now();
        let mut pings = tokio::time::interval(limits.ping_interval);
        'resync: loop {
            let (snapshot, mut updates) = feed.subscribe(depth);
            let Ok(text) = serde_json::to_string(&StreamMessage::Snapshot(snapshot)) else {
                break;
            };
            if session.text(text).await.is_err() {
                break;
            }
            loop {
                tokio::select! {
                    update = updates.recv() => match update {
                        Ok(text) => {
                            if session.text(text.to_string()).await.is_err() {
                                break 'resync;
                            }
                        }
                        Err(RecvError::Lagged(_)) => continue 'resync,
                        Err(RecvError::Closed) => break 'resync,
                    },
                    message = incoming.next() => {
                        heard_at = Instant::now();
                        match message {
                            Some(Ok(Message::Ping(bytes))) => {
                                if session.pong(&bytes).await.is_err() {
                                    break 'resync;
                                }
                            }
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break 'resync,
                            Some(Ok(_)) => {}
                        }
                    },
                    _ = pings.tick() => {
                        if heard_at.elapsed() >= limits.idle_timeout
                            || session.ping(b"").await.is_err()
                        {
                            break 'resync;
                        }
                    },
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

impl From<ExchangeError> for actix_web::Error {
    fn from(error: ExchangeError) -> Self {
        ApiError::from(error).into()
    }
}
