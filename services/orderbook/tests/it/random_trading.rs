//! Property: whatever owners do (limit and market orders of every time in force, post-only,
//! cancels, reductions, self-trades, orders they cannot pay for), afterwards
//! - the ledger audit is clean (every currency sums to zero, no balance outside its limits,
//!   held funds equal the open holds, balances equal the journal);
//! - no funds stay held by an order that is no longer open;
//! - the book rebuilt from the stored open orders equals the writer's book and the feed's;
//! - every trade's quantity was taken from both orders exactly once.

use diesel::prelude::*;
use proptest::prelude::*;
use scrip_domain::PrincipalId;
use scrip_ledger::Ledger;
use scrip_matching::{Side, TimeInForce};
use scrip_orderbook::state::{Command, OrderType, PlaceOrder, Reply};
use scrip_orderbook::{Exchange, ExchangeMetrics, WorkerContext};
use scrip_store::Backend;
use scrip_store::test_support::TestDb;

use crate::fixtures;

const OWNERS: usize = 4;

#[derive(Debug, Clone)]
enum Step {
    Place {
        owner: usize,
        buy: bool,
        /// `None`: a market order.
        price_ticks: Option<i64>,
        quantity_lots: i64,
        tif: u8,
        post_only: bool,
    },
    /// Cancel the owner's n-th order placed so far (if it is still open).
    Cancel { owner: usize, nth: usize },
    Reduce {
        owner: usize,
        nth: usize,
        by_lots: i64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..OWNERS, any::<bool>(), prop::option::weighted(0.85, 95..106_i64), 1..6_i64, 0..3_u8, prop::bool::weighted(0.1))
            .prop_map(|(owner, buy, price_ticks, quantity_lots, tif, post_only)| Step::Place {
                owner, buy, price_ticks, quantity_lots, tif, post_only,
            }),
        2 => (0..OWNERS, 0..40_usize).prop_map(|(owner, nth)| Step::Cancel { owner, nth }),
        1 => (0..OWNERS, 0..40_usize, 1..3_i64).prop_map(|(owner, nth, by_lots)| Step::Reduce { owner, nth, by_lots }),
    ]
}

/// Two currencies (scale 2) issued by two shops, each owner funded with 60.00 of both, and a
/// market A-B with tick 0.01, lot 1.00 and a 250 bps fee (large, so fees show at these sizes).
fn world(db: &TestDb) -> (Exchange, Vec<PrincipalId>, PrincipalId) {
    let (exchange, owners, registry) =
        fixtures::world(db, &[("shopa", "AAA"), ("shopb", "BBB")], OWNERS, 6_000);
    fixtures::open(&exchange, db, ("AAA", "BBB"), 250, owners[0]);
    (exchange, owners, registry)
}

/// Runs the steps and checks the properties; returns how many trades and fee transfers happened.
fn run(steps: &[Step]) -> Result<(i64, i64), TestCaseError> {
    let db = TestDb::new(Backend::Sqlite);
    let (exchange, owners, registry) = world(&db);
    let market = exchange.market("AAA-BBB").expect("market");
    let mut placed: Vec<Vec<u64>> = vec![Vec::new(); OWNERS];
    for step in steps {
        let command = match *step {
            Step::Place {
                owner,
                buy,
                price_ticks,
                quantity_lots,
                tif,
                post_only,
            } => Command::Place(PlaceOrder {
                owner: owners[owner],
                side: if buy { Side::Buy } else { Side::Sell },
                order_type: if price_ticks.is_some() {
                    OrderType::Limit
                } else {
                    OrderType::Market
                },
                price_ticks,
                quantity_lots,
                time_in_force: [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok]
                    [usize::from(tif)],
                post_only: post_only && price_ticks.is_some(),
                client_order_id: None,
                idempotency: None,
            }),
            Step::Cancel { owner, nth } => match placed[owner].get(nth) {
                Some(&order) => Command::Cancel {
                    owner: owners[owner],
                    order,
                    reason: scrip_orderbook::state::EndReason::Requested,
                },
                None => continue,
            },
            Step::Reduce {
                owner,
                nth,
                by_lots,
            } => match placed[owner].get(nth) {
                Some(&order) => {
                    let Some(resting) = market_resting_quantity(&db, order) else {
                        continue;
                    };
                    Command::Reduce {
                        owner: owners[owner],
                        order,
                        quantity_lots: (resting - by_lots).max(0),
                    }
                }
                None => continue,
            },
        };
        // Refusals (insufficient funds, would cross, closed orders) are part of the game.
        if let Ok(Reply::Placed { order, .. }) = market.submit_blocking(command) {
            placed[owners.iter().position(|o| *o == order.owner).unwrap_or(0)].push(order.id);
        }
    }
    let report = Ledger::new(db.pool.clone()).audit().expect("audit");
    prop_assert!(report.is_clean(), "{:#?}", report.violations);
    let mut conn = db.pool.get().expect("conn");
    prop_assert_eq!(
        fixtures::count(&mut conn, fixtures::STRANDED_HOLDS),
        0,
        "funds held by closed orders"
    );
    prop_assert_eq!(
        fixtures::count(&mut conn, fixtures::FILLS_THAT_DO_NOT_ADD_UP),
        0,
        "order fills differ from trades"
    );
    let trades = fixtures::count(&mut conn, "SELECT COUNT(*) AS n FROM trades");
    let fees = fixtures::count(
        &mut conn,
        "SELECT COUNT(*) AS n FROM transfers WHERE kind = 'fee'",
    );
    // The stored open orders rebuild the same book the writer has and the feed shows.
    let shown = market.feed.snapshot(usize::MAX);
    drop(exchange);
    let rebuilt = Exchange::start(WorkerContext {
        pool: db.pool.clone(),
        database_url: db.url.clone(),
        registry,
        metrics: ExchangeMetrics::new(&scrip_telemetry::Metrics::new()),
        bus: None,
        notifier: None,
    })
    .expect("restart");
    let rebuilt = rebuilt.market("AAA-BBB").expect("market");
    // Answered once the new writer has loaded the market (a no-op: no such order).
    let _ = rebuilt.submit_blocking(Command::Cancel {
        owner: registry,
        order: 0,
        reason: scrip_orderbook::state::EndReason::Requested,
    });
    let again = rebuilt.feed.snapshot(usize::MAX);
    prop_assert_eq!((&shown.bids, &shown.asks), (&again.bids, &again.asks));
    Ok((trades, fees))
}

/// Remaining quantity of an order in lots, while it is open.
fn market_resting_quantity(db: &TestDb, order: u64) -> Option<i64> {
    use scrip_store::schema::orders;
    let mut conn = db.pool.get().ok()?;
    orders::table
        .find(i64::try_from(order).ok()?)
        .filter(orders::status.eq_any(["open", "partially_filled"]))
        .select(orders::quantity_lots)
        .first(&mut conn)
        .ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_trading_keeps_every_invariant(steps in prop::collection::vec(step(), 1..200)) {
        run(&steps)?;
    }
}

/// The property is not vacuous: orders that cross trade, and both sides pay fees.
#[test]
fn crossing_orders_trade_and_pay_fees() {
    let place = |owner, buy, price| Step::Place {
        owner,
        buy,
        price_ticks: Some(price),
        quantity_lots: 3,
        tif: 0,
        post_only: false,
    };
    let (trades, fees) = run(&[
        place(0, false, 100),
        place(1, true, 101),
        place(2, true, 99),
        place(3, false, 98),
    ])
    .expect("properties hold");
    assert_eq!(trades, 2);
    assert_eq!(fees, 4);
}
