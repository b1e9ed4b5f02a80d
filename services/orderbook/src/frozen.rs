//! Freezing reaches the books: when the stewards freeze a holder's account in a currency
//! (the issuer service, perhaps another process), the announcement on the bus makes every
//! order-book process cancel that holder's resting orders in the markets it writes that
//! trade the currency, so no taker runs into an order its owner may no longer pay.

use std::sync::Arc;

use diesel::prelude::*;
use scrip_bus::Bus;
use scrip_domain::{CurrencyId, PrincipalId};
use scrip_ledger::LedgerError;
use scrip_store::schema::orders;
use tokio::sync::broadcast::error::RecvError;

use crate::Exchange;
use crate::state::{Command, EndReason};

/// Cancels frozen holders' resting orders as their freezing is announced.
///
/// Holds the exchange weakly, as market discovery does: a stopped server's markets (and the
/// locks that make this process their writer) are released, not kept alive here.
pub fn spawn_listener(bus: &dyn Bus, exchange: &Arc<Exchange>) {
    let exchange = Arc::downgrade(exchange);
    let mut frozen = bus.subscribe(scrip_ledger::freeze::FROZEN_TOPIC);
    tokio::spawn(async move {
        loop {
            match frozen.recv().await {
                Ok(payload) => {
                    let Some(exchange) = exchange.upgrade() else {
                        return;
                    };
                    if let Some((principal, currency)) =
                        scrip_ledger::freeze::parse_frozen_message(&payload)
                    {
                        cancel_orders_of(&exchange, principal, currency).await;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "announcements of frozen accounts were missed");
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

async fn cancel_orders_of(exchange: &Arc<Exchange>, owner: PrincipalId, currency: CurrencyId) {
    let markets: Vec<_> = exchange
        .markets()
        .into_iter()
        .filter(|m| m.spec.base == currency || m.spec.quote == currency)
        .collect();
    for market in markets {
        let pool = exchange.pool();
        let market_id = market.spec.id;
        let open = tokio::task::spawn_blocking(move || -> Result<Vec<i64>, LedgerError> {
            let mut conn = pool.get()?;
            Ok(orders::table
                .filter(orders::market_id.eq(market_id))
                .filter(orders::owner_id.eq(owner.get()))
                .filter(orders::status.eq_any(["open", "partially_filled"]))
                .order(orders::id)
                .select(orders::id)
                .load(&mut conn)?)
        })
        .await;
        let Ok(Ok(ids)) = open else {
            tracing::warn!(market = market_id, "cannot read a frozen holder's orders");
            continue;
        };
        for id in ids {
            let Ok(order) = scrip_matching::OrderId::try_from(id) else {
                continue;
            };
            let cancel = Command::Cancel {
                owner,
                order,
                reason: EndReason::Frozen,
            };
            // A market another process writes answers unavailable: that process cancels.
            if let Err(error) = market.submit(cancel).await {
                tracing::debug!(market = market_id, order = id, %error, "frozen holder's order not cancelled here");
            }
        }
    }
}
