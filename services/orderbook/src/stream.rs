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

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::Message;
use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;

use crate::dto::DepthQuery;
use crate::feed::StreamMessage;
use crate::{Exchange, ExchangeError};
use scrip_http::ApiError;
pub use scrip_http::{StreamGate, StreamLimits};

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
