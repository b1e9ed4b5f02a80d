//! `GET /api/v1/me/stream`: the caller's own events over a WebSocket.
//!
//! The first message is `{"type": "hello", "holders": [...]}`: the handles whose events this
//! stream carries (the caller and the businesses it belonged to when the stream opened; a
//! membership gained later shows up on the next connection). Then come the events, and
//! `{"type": "lagged"}` when the client fell so far behind that some were lost: read the
//! state again. Bounded like the market streams (the one [`StreamGate`] of the process), pinged
//! every 20 s, closed after 60 s without a word from the client, and refused when opened from
//! another site's page. Every [`StreamLimits::recheck_interval`] the stream checks that it may still carry what it
//! carries: it closes when the session ended (logout) or the caller's memberships changed (a
//! worker removed stops hearing the business's payments), and the client reconnects with what
//! it may hear now.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{Message, Session};
use futures_util::StreamExt as _;
use futures_util::stream::{self, BoxStream};
use scrip_auth::Caller;
use scrip_auth::access::{Role, business_roles};
use scrip_bus::Bus;
use scrip_domain::PrincipalId;
use scrip_http::{ApiError, StreamGate, StreamLimits, blocking};
use scrip_ledger::{Ledger, handles};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{Audience, topic};

/// Messages one topic of one stream may fall behind by; one person's events are few.
const BUFFER_PER_TOPIC: usize = 64;
/// Businesses one stream follows at most (a person belongs to a handful).
const MAX_BUSINESSES: i64 = 64;

#[utoipa::path(
    get, path = "/api/v1/me/stream", tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 101, description = "WebSocket: a `hello` message naming the holders followed, then `payment_received`, `payment_request_paid`, `order_filled`, `order_cancelled` (with `reason`) and `order_expired` events, each with `holder` and `at`; `lagged` when some were lost. At most once: read the state again after a `lagged` or a reconnect"),
        (status = 401, body = scrip_http::Problem),
        (status = 403, body = scrip_http::Problem, description = "csrf_check_failed: opened from another site"),
        (status = 429, body = scrip_http::Problem, description = "rate_limited: this address has the most streams open that one address may"),
        (status = 503, body = scrip_http::Problem, description = "overloaded: the server has the most streams open it takes"),
    )
)]
#[get("/api/v1/me/stream")]
pub async fn me_stream(
    request: HttpRequest,
    body: web::Payload,
    caller: Caller,
    ledger: web::Data<Ledger>,
    bus: web::Data<dyn Bus>,
    gate: web::Data<Arc<StreamGate>>,
) -> Result<HttpResponse, ApiError> {
    scrip_auth::same_origin(&request)?;
    let slot = gate.admit(&scrip_http::client_ip(&request))?;
    let limits = gate.limits();
    let (ids, holders) = followed(&ledger, &caller).await?;
    let events = subscribe(bus.get_ref(), &ids);
    let (response, session, incoming) = actix_ws::handle(&request, body)
        .map_err(|e| ApiError::bad_request("not_websocket", e.to_string()))?;
    let ledger = ledger.clone();
    actix_web::rt::spawn(async move {
        let _slot = slot;
        let hello = serde_json::json!({"type": "hello", "holders": holders}).to_string();
        let still_valid = move || {
            let (ledger, caller, ids) = (ledger.clone(), caller.clone(), ids.clone());
            async move { may_still_follow(&ledger, &caller, &ids).await }
        };
        relay(session, incoming, events, hello, limits, still_valid).await;
    });
    Ok(response)
}

/// Whether the caller's session is live and it still follows exactly `ids`.
async fn may_still_follow(
    ledger: &web::Data<Ledger>,
    caller: &Caller,
    ids: &[(PrincipalId, Audience)],
) -> bool {
    let session_live = match caller.session_id {
        None => true,
        Some(session) => {
            let ledger = ledger.clone();
            blocking(move || {
                let mut conn = ledger.conn()?;
                Ok(scrip_auth::sessions::is_live(
                    &mut conn,
                    session,
                    scrip_http::now_us(),
                )?)
            })
            .await
            .unwrap_or(false)
        }
    };
    session_live
        && followed(ledger, caller)
            .await
            .is_ok_and(|(now, _)| now == ids)
}

/// The topics the caller hears, and the handles they are about.
async fn followed(
    ledger: &web::Data<Ledger>,
    caller: &Caller,
) -> Result<(Vec<(PrincipalId, Audience)>, Vec<String>), ApiError> {
    let ledger = ledger.clone();
    let me = caller.id;
    blocking(move || {
        let mut conn = ledger.conn()?;
        let mut ids = vec![(me, Audience::Members), (me, Audience::Owners)];
        for (business, role) in business_roles(&mut conn, me, MAX_BUSINESSES)? {
            ids.push((business, Audience::Members));
            if role == Role::Owner {
                ids.push((business, Audience::Owners));
            }
        }
        let mut principals: Vec<PrincipalId> = ids.iter().map(|&(id, _)| id).collect();
        principals.dedup();
        let names = handles(&mut conn, principals.iter().copied())?;
        let holders = principals
            .iter()
            .filter_map(|id| names.get(id).cloned())
            .collect();
        Ok((ids, holders))
    })
    .await
}

/// What one topic delivers: a message, or word that some were lost.
enum Delivery {
    Message(Arc<str>),
    Lagged,
}

/// All the topics as one stream of deliveries.
fn subscribe(bus: &dyn Bus, ids: &[(PrincipalId, Audience)]) -> BoxStream<'static, Delivery> {
    let streams = ids.iter().map(|&(id, audience)| {
        let receiver = bus.subscribe_with_buffer(&topic(id, audience), BUFFER_PER_TOPIC);
        stream::unfold(receiver, next_delivery).boxed()
    });
    stream::select_all(streams).boxed()
}

async fn next_delivery(
    mut receiver: broadcast::Receiver<Arc<str>>,
) -> Option<(Delivery, broadcast::Receiver<Arc<str>>)> {
    match receiver.recv().await {
        Ok(text) => Some((Delivery::Message(text), receiver)),
        Err(RecvError::Lagged(_)) => Some((Delivery::Lagged, receiver)),
        Err(RecvError::Closed) => None,
    }
}

/// Sends `hello`, then every delivery, until the client goes or stays silent too long, or
/// `still_valid` says the stream may no longer carry what it carries.
async fn relay<F, Fut>(
    mut session: Session,
    mut incoming: actix_ws::MessageStream,
    mut events: BoxStream<'static, Delivery>,
    hello: String,
    limits: StreamLimits,
    still_valid: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let lagged = r#"{"type":"lagged"}"#;
    let mut heard_at = Instant::now();
    let mut pings = tokio::time::interval(limits.ping_interval);
    let recheck = limits.recheck_interval;
    let mut rechecks = tokio::time::interval_at(tokio::time::Instant::now() + recheck, recheck);
    if session.text(hello).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            delivery = events.next() => {
                let text = match delivery {
                    Some(Delivery::Message(text)) => text.to_string(),
                    Some(Delivery::Lagged) => lagged.to_owned(),
                    None => break,
                };
                if session.text(text).await.is_err() {
                    break;
                }
            },
            message = incoming.next() => {
                heard_at = Instant::now();
                match message {
                    Some(Ok(Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            },
            _ = pings.tick() => {
                if heard_at.elapsed() >= limits.idle_timeout || session.ping(b"").await.is_err() {
                    break;
                }
            },
            _ = rechecks.tick() => {
                if !still_valid().await {
                    break;
                }
            },
        }
    }
    let _ = session.close(None).await;
}
