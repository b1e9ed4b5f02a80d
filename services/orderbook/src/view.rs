//! How orders look in the API (shared by the handlers and the writer, which stores the
//! response of an order placed with an idempotency key).

use scrip_domain::Amount;
use scrip_http::rfc3339_from_us;
use scrip_matching::Side;

use crate::dto::{FillView, OrderView};
use crate::spec::MarketSpec;
use crate::state::{Fill, OrderRecord, OrderStatus, side_str, tif_str};

pub fn fill_view(spec: &MarketSpec, side: Side, fill: &Fill) -> FillView {
    let (fee, fee_currency) = match side {
        Side::Buy => (
            Amount::from_atoms(fill.fee_atoms, spec.base_scale),
            &spec.base_code,
        ),
        Side::Sell => (
            Amount::from_atoms(fill.fee_atoms, spec.quote_scale),
            &spec.quote_code,
        ),
    };
    FillView {
        trade_id: fill.trade_id.to_string(),
        price: spec.price(fill.price_ticks).to_string(),
        quantity: spec.quantity(fill.quantity_lots).to_string(),
        fee: fee.to_string(),
        fee_currency: fee_currency.to_string(),
        // The trade settled exactly this much quote, so it fits.
        total: Amount::from_atoms(
            spec.notional_atoms(fill.price_ticks, fill.quantity_lots)
                .unwrap_or(i64::MAX),
            spec.quote_scale,
        )
        .to_string(),
        created_at: rfc3339_from_us(fill.at_us),
    }
}

pub fn order_view(
    spec: &MarketSpec,
    symbol: &str,
    order: &OrderRecord,
    fills: &[Fill],
) -> OrderView {
    let open = matches!(
        order.status,
        OrderStatus::Open | OrderStatus::PartiallyFilled
    );
    let remaining = if open {
        order.quantity_lots - order.filled_lots
    } else {
        0
    };
    OrderView {
        id: order.id.to_string(),
        market: symbol.to_owned(),
        side: side_str(order.side).to_owned(),
        order_type: order.order_type.as_str().to_owned(),
        price: order.price_ticks.map(|p| spec.price(p).to_string()),
        quantity: spec.quantity(order.quantity_lots).to_string(),
        filled: spec.quantity(order.filled_lots).to_string(),
        remaining: spec.quantity(remaining).to_string(),
        status: order.status.as_str().to_owned(),
        reason: order.end_reason.map(|r| r.as_str().to_owned()),
        time_in_force: tif_str(order.time_in_force).to_owned(),
        post_only: order.post_only,
        client_order_id: order.client_order_id.clone(),
        created_at: rfc3339_from_us(order.created_at_us),
        updated_at: rfc3339_from_us(order.updated_at_us),
        fills: fills
            .iter()
            .map(|f| fill_view(spec, order.side, f))
            .collect(),
    }
}
