//! The order book's core driven with made-up positions: no database, the ledger's plan and the
//! book's changes inspected directly.

use scrip_domain::{CurrencyCode, CurrencyId, PrincipalId, Scale};
use scrip_ledger::rules::check_change;
use scrip_ledger::{BatchRules, CurrencyRules, HoldBatch, LedgerError, Position};
use scrip_matching::{Lots, Side, Ticks, TimeInForce};

use super::*;

const BREAD: CurrencyId = CurrencyId::new(1);
const GROCER: CurrencyId = CurrencyId::new(2);
const BAKERY: PrincipalId = PrincipalId::new(10);
const GROCERY: PrincipalId = PrincipalId::new(11);
const REGISTRY: PrincipalId = PrincipalId::new(1);
const CARLA: PrincipalId = PrincipalId::new(20);
const DEV: PrincipalId = PrincipalId::new(21);

/// BREAD-GROCER, both at scale 2, tick 0.01, lot 1.00, fee 25 bps.
fn market() -> MarketState {
    let code = |c: &str| CurrencyCode::parse(c).expect("code");
    let scale = Scale::new(2).expect("scale");
    let spec = MarketSpec::new(
        1,
        (BREAD, code("BREAD"), scale),
        (GROCER, code("GROCER"), scale),
        1,
        100,
        25,
    )
    .expect("spec");
    MarketState::restore(spec, REGISTRY, &[], None, None).expect("empty market")
}

fn holder(balance_atoms: i64) -> Position {
    Position {
        balance_atoms,
        ..Position::empty(None)
    }
}

/// A batch where Carla holds 100.00 BREAD and Dev 100.00 GROCER.
fn batch() -> HoldBatch {
    batch_with([
        ((CARLA, BREAD), holder(10_000)),
        ((DEV, GROCER), holder(10_000)),
        ((CARLA, GROCER), holder(0)),
        ((DEV, BREAD), holder(0)),
    ])
}

fn batch_with<const N: usize>(positions: [((PrincipalId, CurrencyId), Position); N]) -> HoldBatch {
    let scale = Scale::new(2).expect("scale");
    let rules = BatchRules::new([
        CurrencyRules::plain(BREAD, scale, BAKERY),
        CurrencyRules::plain(GROCER, scale, GROCERY),
    ]);
    HoldBatch::new(rules, positions)
}

fn limit(owner: PrincipalId, side: Side, price_ticks: Ticks, quantity_lots: Lots) -> Command {
    Command::Place(PlaceOrder {
        owner,
        side,
        order_type: OrderType::Limit,
        price_ticks: Some(price_ticks),
        quantity_lots,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        client_order_id: None,
        idempotency: None,
    })
}

fn placed(reply: Reply) -> (OrderRecord, Vec<Fill>) {
    match reply {
        Reply::Placed { order, fills } => (order, fills),
        other => panic!("expected a placed order, got {other:?}"),
    }
}

/// Applies a new order that must be accepted.
fn place(
    market: &mut MarketState,
    batch: &mut HoldBatch,
    changes: &mut Changes,
    command: Command,
    now_us: i64,
) -> (OrderRecord, Vec<Fill>) {
    placed(
        market
            .apply(command, now_us, batch, changes)
            .expect("accepted"),
    )
}

fn change(batch: &HoldBatch, who: PrincipalId, currency: CurrencyId) -> (i64, i64) {
    let change = batch.plan().change((who, currency));
    (change.balance_atoms, change.held_atoms)
}

#[test]
fn a_fill_pays_both_sides_at_the_makers_price_and_charges_each_its_fee() {
    let mut market = market();
    let mut batch = batch();
    let mut changes = Changes::default();
    // Carla offers 30 BREAD at 2.50; Dev bids 2.60 for 30 (holding 78.00 GROCER) and trades
    // at the resting 2.50.
    let (ask, _) = place(
        &mut market,
        &mut batch,
        &mut changes,
        limit(CARLA, Side::Sell, 250, 30),
        1,
    );
    let (bid, fills) = place(
        &mut market,
        &mut batch,
        &mut changes,
        limit(DEV, Side::Buy, 260, 30),
        2,
    );
    assert_eq!(bid.status, OrderStatus::Filled);
    assert_eq!(fills.len(), 1);
    assert_eq!((fills[0].price_ticks, fills[0].quantity_lots), (250, 30));
    // Dev receives 30.00 BREAD less 0.25 % (0.075, rounded down to 0.07); Carla 75.00 GROCER
    // less 0.1875 (0.18). Dev's 3.00 held beyond the fill's cost is released.
    assert_eq!(fills[0].fee_atoms, 7);
    assert_eq!(change(&batch, DEV, BREAD), (3_000 - 7, 0));
    assert_eq!(change(&batch, DEV, GROCER), (-7_500, 0));
    assert_eq!(change(&batch, CARLA, BREAD), (-3_000, 0));
    assert_eq!(change(&batch, CARLA, GROCER), (7_500 - 18, 0));
    assert_eq!(change(&batch, REGISTRY, BREAD), (7, 0));
    assert_eq!(change(&batch, REGISTRY, GROCER), (18, 0));
    assert_eq!(changes.trades.len(), 1);
    assert_eq!(changes.trades[0].maker_order, ask.id);
    assert!(
        market.resting(ask.id).is_none(),
        "the filled maker left the book"
    );
    // Money is only moved, never made: every currency's changes sum to zero.
    for currency in [BREAD, GROCER] {
        let sum: i64 = [CARLA, DEV, REGISTRY]
            .iter()
            .map(|&who| change(&batch, who, currency).0)
            .sum();
        assert_eq!(sum, 0);
    }
}

#[test]
fn a_buy_cannot_hold_more_than_is_available_and_a_refusal_plans_nothing() {
    let mut market = market();
    let mut batch = batch();
    let mut changes = Changes::default();
    // 40 at 2.60 would hold 104.00 GROCER; Dev has 100.00.
    let refused = market.apply(limit(DEV, Side::Buy, 260, 40), 1, &mut batch, &mut changes);
    assert!(matches!(
        refused,
        Err(ExchangeError::Ledger(LedgerError::InsufficientFunds))
    ));
    assert_eq!(batch.plan(), &scrip_ledger::Plan::default());
    assert!(changes.inserted.is_empty());
    assert!(market.book().is_empty());
}

#[test]
fn a_resting_order_holds_its_funds_and_cancelling_releases_them() {
    let mut market = market();
    let mut batch = batch();
    let mut changes = Changes::default();
    let (bid, _) = place(
        &mut market,
        &mut batch,
        &mut changes,
        limit(DEV, Side::Buy, 200, 30),
        1,
    );
    assert_eq!(bid.status, OrderStatus::Open);
    assert_eq!(change(&batch, DEV, GROCER), (0, 6_000));
    assert_eq!(
        batch.position(DEV, GROCER).map(|p| p.available_atoms()),
        Some(4_000)
    );
    market
        .apply(
            Command::Cancel {
                owner: DEV,
                order: bid.id,
                reason: EndReason::Requested,
            },
            2,
            &mut batch,
            &mut changes,
        )
        .expect("cancel");
    assert_eq!(change(&batch, DEV, GROCER), (0, 0));
    assert_eq!(changes.inserted[0].status, OrderStatus::Cancelled);
    // Someone else's order is unknown to them, never "forbidden".
    assert!(matches!(
        market.apply(
            Command::Cancel {
                owner: CARLA,
                order: bid.id,
                reason: EndReason::Requested,
            },
            3,
            &mut batch,
            &mut changes
        ),
        Err(ExchangeError::UnknownOrder)
    ));
}

#[test]
fn self_trade_prevention_cancels_the_resting_order_and_releases_its_hold() {
    let mut market = market();
    let mut changes = Changes::default();
    // Carla holds both: she bids, then offers at a crossing price.
    let mut batch = batch_with([
        ((CARLA, BREAD), holder(10_000)),
        ((CARLA, GROCER), holder(10_000)),
    ]);
    let (bid, _) = place(
        &mut market,
        &mut batch,
        &mut changes,
        limit(CARLA, Side::Buy, 250, 10),
        1,
    );
    let (ask, fills) = place(
        &mut market,
        &mut batch,
        &mut changes,
        limit(CARLA, Side::Sell, 240, 10),
        2,
    );
    assert!(fills.is_empty(), "an owner never trades with itself");
    assert!(market.resting(bid.id).is_none());
    assert!(market.resting(ask.id).is_some());
    let cancelled = changes
        .inserted
        .iter()
        .find(|o| o.id == bid.id)
        .expect("the bid is recorded");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    // Its owner is told why it went.
    assert_eq!(
        changes.notices,
        [OrderNotice {
            order: bid.id,
            owner: CARLA,
            side: Side::Buy,
            what: Noticed::Ended {
                status: OrderStatus::Cancelled,
                reason: EndReason::SelfTrade,
            },
        }]
    );
    // The bid's GROCER hold is released; the ask holds its BREAD.
    assert_eq!(change(&batch, CARLA, GROCER), (0, 0));
    assert_eq!(change(&batch, CARLA, BREAD), (0, 1_000));
}

#[test]
fn a_maker_at_its_ceiling_refuses_the_batch_where_it_is_written() {
    let mut market = market();
    let mut batch = batch();
    let mut changes = Changes::default();
    let (ask, _) = place(
        &mut market,
        &mut batch,
        &mut changes,
        limit(CARLA, Side::Sell, 250, 10),
        1,
    );
    place(
        &mut market,
        &mut batch,
        &mut changes,
        limit(DEV, Side::Buy, 250, 10),
        2,
    );
    // Carla receives 25.00 GROCER less its fee. With GROCER's maximum balance at 20.00 her
    // account cannot take it: the writer's check (the same rule) refuses the plan, and the
    // worker then cancels her resting orders in that currency.
    let at_ceiling = Position {
        ceiling_atoms: Some(2_000),
        ..holder(0)
    };
    let net = batch.plan().change((CARLA, GROCER));
    assert_eq!(net.balance_atoms, 2_500 - 6);
    assert!(matches!(
        check_change(&at_ceiling, net),
        Err(LedgerError::MaxBalanceExceeded)
    ));
    assert!(market.resting_receiving(CARLA, GROCER).is_empty());
    assert!(market.resting(ask.id).is_none());
}

#[test]
fn splitting_an_order_over_many_fills_never_lowers_its_fee() {
    let mut market = market();
    let mut batch = batch();
    let mut changes = Changes::default();
    // Twenty-five resting offers of 1.00 BREAD at 2.50: 0.25 % of each fill, rounded down on
    // its own, would be nothing on either side.
    for at in 0..25 {
        place(
            &mut market,
            &mut batch,
            &mut changes,
            limit(CARLA, Side::Sell, 250, 1),
            at,
        );
    }
    let (bid, fills) = place(
        &mut market,
        &mut batch,
        &mut changes,
        limit(DEV, Side::Buy, 250, 25),
        99,
    );
    assert_eq!(bid.status, OrderStatus::Filled);
    assert_eq!(fills.len(), 25);
    // Dev received 25.00 BREAD in all: the fee is 0.25 % of that, 0.06, as in one fill.
    let taker_fees: i64 = fills.iter().map(|f| f.fee_atoms).sum();
    assert_eq!(taker_fees, 6);
    assert_eq!(change(&batch, DEV, BREAD), (2_500 - 6, 0));
    // Each maker received 2.50 GROCER: its own fee on that rounds to nothing.
    assert_eq!(change(&batch, CARLA, GROCER), (6_250, 0));
    assert_eq!(change(&batch, REGISTRY, BREAD), (6, 0));
}

/// Carla offers `lots` at `price_ticks`; Dev takes them one lot at a time. Returns the fees
/// Carla paid over all fills and the fee on her whole receipt in one fill.
fn maker_fees_filled_lot_by_lot(price_ticks: Ticks, lots: Lots) -> (i64, i64) {
    let mut market = market();
    let mut batch = batch();
    let mut changes = Changes::default();
    place(
        &mut market,
        &mut batch,
        &mut changes,
        limit(CARLA, Side::Sell, price_ticks, lots),
        0,
    );
    for at in 1..=lots {
        place(
            &mut market,
            &mut batch,
            &mut changes,
            limit(DEV, Side::Buy, price_ticks, 1),
            at,
        );
    }
    let paid: i64 = changes.trades.iter().map(|t| t.seller_fee_atoms).sum();
    let received = market
        .spec
        .notional_atoms(price_ticks, lots)
        .expect("a small notional");
    (paid, market.spec.fee_atoms(received))
}

#[test]
fn a_maker_filled_in_parts_pays_the_fee_on_its_total() {
    // 3.00 BREAD at 1.33: each fill brings Carla 1.33 GROCER (fee 0.0033, nothing on its
    // own); all three 3.99 (fee 0.009975 -> 0.00).
    let (paid, one_fill) = maker_fees_filled_lot_by_lot(133, 3);
    assert_eq!(paid, one_fill);
    // 40.00 BREAD at 2.50: the running total charges what one fill would, 0.25 GROCER.
    let (paid, one_fill) = maker_fees_filled_lot_by_lot(250, 40);
    assert_eq!(paid, one_fill);
    assert_eq!(paid, 25);
}
