//! `GET /api/v1/markets/{symbol}/stream`: the WebSocket market data stream.
//!
//! The first message is a `snapshot` of the whole committed book; then come `book` diffs and
//! `trade` messages, each with the next `sequence`. A client that falls too far behind gets a
//! fresh snapshot (its sequence jumps; the snapshot says where to continue from), and a client
//! that reconnects gets a fresh snapshot too, so resynchronising never needs a page reload.

use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::Message;
use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;

use crate::feed::StreamMessage;
use crate::{Exchange, ExchangeError};
use scrip_http::ApiError;

/// Longest a new client waits for a replica to catch up with the market's owner.
pub(crate) const REPLICA_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(5);

#[utoipa::path(
    get, path = "/api/v1/markets/{symbol}/stream", tag = "exchange",
    responses(
        (status = 101, description = "WebSocket: a snapshot message, then book and trade messages with a gapless sequence"),
        (status = 404, body = scrip_http::Problem, description = "unknown_market"),
    )
)]
#[get("/api/v1/markets/{symbol}/stream")]
pub async fn stream(
    request: HttpRequest,
    body: web::Payload,
    symbol: web::Path<String>,
    exchange: web::Data<Exchange>,
) -> Result<HttpResponse, ApiError> {
    let market = exchange.market(&symbol)?;
    // A replica that is still waiting for its owner's snapshot would hand out an empty book:
    // give it a moment to catch up first.
    market.feed.caught_up(REPLICA_CATCH_UP).await;
    let (response, mut session, mut incoming) = actix_ws::handle(&request, body)
        .map_err(|e| ApiError::bad_request("not_websocket", e.to_string()))?;
    actix_web::rt::spawn(async move {
        let feed = &market.feed;
        'resync: loop {
            let (snapshot, mut updates) = feed.subscribe();
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
                    message = incoming.next() => match message {
                        Some(Ok(Message::Ping(bytes))) => {
                            if session.pong(&bytes).await.is_err() {
                                break 'resync;
                            }
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break 'resync,
                        Some(Ok(_)) => {}
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
