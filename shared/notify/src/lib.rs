//! Each signed-in user's own events: a payment received, a payment request paid, an order
//! filled, cancelled (and why) or expired. The services that make these happen publish them
//! after their transaction commits ([`Notifier::publish`]); `GET /api/v1/me/stream`
//! ([`me_stream`]) carries them to the user's open pages, for the user and for every business
//! it belongs to.
//!
//! Notifications are a convenience, never the record: delivery is at most once (the bus's
//! own guarantee), so a client treats an event as "something changed, look" and reads the
//! state through the API, and after a `lagged` message or a reconnect reads it again. A till
//! that missed `payment_request_paid` still sees the request `paid` when it asks.
//!
//! Who hears what: payments (received, requests paid) go to everyone in the business, workers
//! included, since the till is theirs; order events go to those who may trade for it (the
//! principal itself, or its owners).

mod stream;

use std::sync::Arc;

use scrip_bus::Bus;
use scrip_domain::PrincipalId;
use serde::Serialize;

pub use stream::me_stream;

/// The OpenAPI paths of this crate.
#[derive(utoipa::OpenApi, Debug)]
#[openapi(paths(stream::me_stream))]
pub struct NotifyApi;

/// One event, as the stream sends it (`type` plus these fields, and the `holder` it is
/// about and when it happened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    PaymentReceived {
        transfer_id: String,
        from: String,
        currency: String,
        amount: String,
        memo: Option<String>,
    },
    PaymentRequestPaid {
        request_id: String,
        payment_id: String,
        currency: String,
        amount: String,
        paid_by: String,
    },
    OrderFilled {
        order_id: String,
        market: String,
        side: String,
        /// The order's status after the fill: `partially_filled` or `filled`.
        status: String,
        filled: String,
        remaining: String,
    },
    OrderCancelled {
        order_id: String,
        market: String,
        side: String,
        /// Why, in one word: `requested`, `self_trade`, `max_balance`, ...
        reason: String,
    },
    OrderExpired {
        order_id: String,
        market: String,
        side: String,
        reason: String,
    },
}

/// Who in a business hears an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// Owners and workers.
    Members,
    /// Whoever may trade for the holder: the holder itself and its owners.
    Owners,
}

impl Event {
    fn audience(&self) -> Audience {
        match self {
            Self::PaymentReceived { .. } | Self::PaymentRequestPaid { .. } => Audience::Members,
            Self::OrderFilled { .. } | Self::OrderCancelled { .. } | Self::OrderExpired { .. } => {
                Audience::Owners
            }
        }
    }
}

/// The bus topic of a principal's events for one audience.
fn topic(holder: PrincipalId, audience: Audience) -> String {
    match audience {
        Audience::Members => format!("me.{}", holder.get()),
        Audience::Owners => format!("me.{}.owners", holder.get()),
    }
}

/// An event on the wire.
#[derive(Serialize)]
struct Notice<'a> {
    holder: &'a str,
    at: String,
    #[serde(flatten)]
    event: &'a Event,
}

/// Publishes events to the users they concern. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Notifier {
    bus: Arc<dyn Bus>,
}

impl Notifier {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus }
    }

    /// Tells everyone listening for `holder` (whose handle is `holder_handle`) about `event`.
    /// Call it after the change committed. Never blocks, never fails (see the crate docs).
    pub fn publish(&self, holder: PrincipalId, holder_handle: &str, event: &Event) {
        let notice = Notice {
            holder: holder_handle,
            at: scrip_http::rfc3339_from_us(scrip_http::now_us()),
            event,
        };
        match serde_json::to_string(&notice) {
            Ok(text) => self
                .bus
                .publish(&topic(holder, event.audience()), Arc::from(text)),
            Err(error) => tracing::error!(%error, "cannot encode a notification"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payments_reach_every_member_and_orders_only_owners() {
        let paid = Event::PaymentReceived {
            transfer_id: "1".into(),
            from: "ann".into(),
            currency: "BREAD".into(),
            amount: "1.00".into(),
            memo: None,
        };
        let cancelled = Event::OrderCancelled {
            order_id: "7".into(),
            market: "BREAD-ALE".into(),
            side: "buy".into(),
            reason: "self_trade".into(),
        };
        let bakery = PrincipalId::new(3);
        assert_eq!(topic(bakery, paid.audience()), "me.3");
        assert_eq!(topic(bakery, cancelled.audience()), "me.3.owners");
    }

    #[tokio::test]
    async fn a_notice_names_its_type_holder_and_time() {
        let bus: Arc<dyn Bus> = Arc::new(scrip_bus::InProcessBus::new());
        let mut listening = bus.subscribe_with_buffer("me.3.owners", 4);
        let notifier = Notifier::new(Arc::clone(&bus));
        notifier.publish(
            PrincipalId::new(3),
            "bakery",
            &Event::OrderExpired {
                order_id: "9".into(),
                market: "BREAD-ALE".into(),
                side: "sell".into(),
                reason: "unfilled".into(),
            },
        );
        let text = listening.recv().await.expect("the notice arrives");
        let notice: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(notice["type"], "order_expired");
        assert_eq!(notice["holder"], "bakery");
        assert_eq!(notice["reason"], "unfilled");
        assert!(notice["at"].as_str().is_some_and(|at| at.ends_with('Z')));
    }
}
