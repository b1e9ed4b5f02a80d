//! Tells order owners what a committed batch did to their orders (filled, cancelled and why,
//! expired) over their own event stream ([`scrip_notify`]). Runs on the market's writer thread
//! after the commit: the only I/O is reading the handles of owners it has not seen yet, once
//! per batch, into a bounded cache (handles never change), on an idle connection only.

use std::collections::HashMap;

use scrip_domain::PrincipalId;
use scrip_notify::{Event, Notifier};
use scrip_store::DbPool;

use crate::spec::MarketSpec;
use crate::state::{Noticed, OrderNotice, side_str};

/// Handles remembered at most; beyond it the cache starts again (it refills in one query).
const MAX_HANDLES: usize = 65_536;

#[derive(Debug)]
pub struct OrderNotifier {
    notifier: Notifier,
    handles: HashMap<PrincipalId, String>,
}

impl OrderNotifier {
    pub fn new(notifier: Notifier) -> Self {
        Self {
            notifier,
            handles: HashMap::new(),
        }
    }

    /// Publishes one event per notice. A failed handle lookup drops the batch's notices
    /// (logged): notifications are a convenience, the orders are the record.
    pub fn publish(&mut self, pool: &DbPool, spec: &MarketSpec, notices: &[OrderNotice]) {
        if notices.is_empty() {
            return;
        }
        if let Err(error) = self.learn_handles(pool, notices) {
            tracing::warn!(%error, market = spec.id, "order notices dropped: owners' handles unread");
            return;
        }
        let market = spec.symbol();
        for notice in notices {
            if let Some(handle) = self.handles.get(&notice.owner) {
                self.notifier
                    .publish(notice.owner, handle, &event(spec, &market, notice));
            }
        }
    }

    fn learn_handles(
        &mut self,
        pool: &DbPool,
        notices: &[OrderNotice],
    ) -> Result<(), scrip_ledger::LedgerError> {
        let mut unknown: Vec<PrincipalId> = notices
            .iter()
            .map(|n| n.owner)
            .filter(|owner| !self.handles.contains_key(owner))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort_unstable();
        unknown.dedup();
        if self.handles.len() + unknown.len() > MAX_HANDLES {
            self.handles.clear();
        }
        // Never wait for a connection on the market's writer thread: with the pool busy, this
        // batch's notices are dropped (the orders themselves are committed and readable).
        let Some(mut conn) = pool.try_get() else {
            return Err(scrip_ledger::LedgerError::Unavailable(
                "no idle database connection for the owners' handles".into(),
            ));
        };
        self.handles
            .extend(scrip_ledger::handles(&mut conn, unknown)?);
        Ok(())
    }
}

fn event(spec: &MarketSpec, market: &str, notice: &OrderNotice) -> Event {
    let order_id = notice.order.to_string();
    let market = market.to_owned();
    let side = side_str(notice.side).to_owned();
    match notice.what {
        Noticed::Filled {
            status,
            filled_lots,
            remaining_lots,
        } => Event::OrderFilled {
            order_id,
            market,
            side,
            status: status.as_str().to_owned(),
            filled: spec.quantity(filled_lots).to_string(),
            remaining: spec.quantity(remaining_lots).to_string(),
        },
        Noticed::Ended { status, reason } => {
            let reason = reason.as_str().to_owned();
            if status == crate::state::OrderStatus::Expired {
                Event::OrderExpired {
                    order_id,
                    market,
                    side,
                    reason,
                }
            } else {
                Event::OrderCancelled {
                    order_id,
                    market,
                    side,
                    reason,
                }
            }
        }
    }
}
