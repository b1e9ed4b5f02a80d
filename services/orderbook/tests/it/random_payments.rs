//! Property: random books, random payments converting through them (direct and two-hop
//! routes, baskets, caps on what may be spent). Each payment is all or nothing:
//! - made: the recipient received exactly the amount, and every currency the payer's balance
//!   moved by equals, to the atom, what the payment's own fills paid and received (after
//!   their fees) plus the payment itself; the answer's `spent` and `change` say the same;
//! - refused: no balance, book or trade changed.
//!
//! Afterwards the ledger audit is clean and no funds stay held by a closed order.

use std::collections::HashMap;

use diesel::prelude::*;
use proptest::prelude::*;
use scrip_domain::{Amount, CurrencyCode, CurrencyId, PrincipalId, Scale};
use scrip_ledger::Ledger;
use scrip_matching::{Side, TimeInForce};
use scrip_orderbook::convert::execute::{self, Mode, Names, Outcome, PaymentPlan};
use scrip_orderbook::state::{Command, OrderType, PlaceOrder};
use scrip_orderbook::{Exchange, ExchangeError};
use scrip_store::Backend;
use scrip_store::test_support::TestDb;

use crate::fixtures;

const PAYER: usize = 0;
const RECIPIENT: usize = 3;
const CODES: [&str; 3] = ["AAA", "BBB", "CCC"];

#[derive(Debug, Clone)]
enum Step {
    /// A resting order of owner 1 or 2 in AAA-BBB (0) or CCC-BBB (1).
    Make {
        maker: usize,
        market: usize,
        buy: bool,
        price_ticks: i64,
        quantity_lots: i64,
    },
    /// The payer pays the recipient `amount_atoms` of CCC.
    Pay {
        amount_atoms: i64,
        /// Indexes into `[AAA, BBB]`, in order; empty: whatever the payer holds.
        pay_with: Vec<usize>,
        /// A cap on one currency: `(index into CODES, atoms)`.
        cap: Option<(usize, i64)>,
        max_hops: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1..3_usize, 0..2_usize, any::<bool>(), 80..121_i64, 1..9_i64)
            .prop_map(|(maker, market, buy, price_ticks, quantity_lots)| Step::Make { maker, market, buy, price_ticks, quantity_lots }),
        2 => (1..3_000_i64, prop::sample::subsequence(vec![0_usize, 1], 0..=2), prop::option::weighted(0.3, (0..3_usize, 0..2_000_i64)), 1..3_usize)
            .prop_map(|(amount_atoms, pay_with, cap, max_hops)| Step::Pay { amount_atoms, pay_with, cap, max_hops }),
    ]
}

struct World {
    db: TestDb,
    exchange: Exchange,
    owners: Vec<PrincipalId>,
    currencies: Vec<CurrencyId>,
    names: Names,
}

fn world() -> World {
    let db = TestDb::new(Backend::Sqlite);
    let shops = [("shopa", "AAA"), ("shopb", "BBB"), ("shopc", "CCC")];
    let (exchange, owners, _) = fixtures::world(&db, &shops, 4, 6_000);
    fixtures::open(&exchange, &db, ("AAA", "BBB"), 250, owners[1]);
    fixtures::open(&exchange, &db, ("CCC", "BBB"), 100, owners[1]);
    let mut conn = db.pool.get().expect("conn");
    let scale = Scale::new(2).expect("scale");
    let currencies: Vec<CurrencyId> = CODES
        .iter()
        .map(|code| {
            scrip_ledger::currency_by_code(&mut conn, &CurrencyCode::parse(code).expect("code"))
                .expect("currency")
                .id
        })
        .collect();
    let names = Names(
        currencies
            .iter()
            .zip(CODES)
            .map(|(id, code)| (*id, (code.to_owned(), scale)))
            .collect(),
    );
    drop(conn);
    World {
        db,
        exchange,
        owners,
        currencies,
        names,
    }
}

/// Balances of `principal` by currency index (zero without an account).
fn balances(world: &World, principal: PrincipalId) -> Vec<i64> {
    let mut conn = world.db.pool.get().expect("conn");
    world
        .currencies
        .iter()
        .map(|&c| {
            scrip_ledger::account(&mut conn, principal, c)
                .expect("account")
                .map_or(0, |a| a.balance.atoms())
        })
        .collect()
}

/// Both books and the number of trades: what a refused payment must leave as it was.
fn markets(world: &World) -> (Vec<String>, i64) {
    let books = ["AAA-BBB", "CCC-BBB"]
        .iter()
        .map(|symbol| {
            let book = world
                .exchange
                .market(symbol)
                .expect("market")
                .feed
                .snapshot(usize::MAX);
            format!("{:?} {:?}", book.bids, book.asks)
        })
        .collect();
    let mut conn = world.db.pool.get().expect("conn");
    (
        books,
        fixtures::count(&mut conn, "SELECT COUNT(*) AS n FROM trades"),
    )
}

/// What the payer's own fills moved, by currency: paid out negative, received (after the
/// fee) positive.
fn fill_flows(world: &World, trade_ids: &[i64]) -> HashMap<CurrencyId, i64> {
    use scrip_store::schema::trades;
    let mut conn = world.db.pool.get().expect("conn");
    let rows: Vec<(i64, String, i64, i64, i64, i64)> = trades::table
        .filter(trades::id.eq_any(trade_ids))
        .select((
            trades::market_id,
            trades::taker_side,
            trades::price_ticks,
            trades::quantity_lots,
            trades::buyer_fee_atoms,
            trades::seller_fee_atoms,
        ))
        .load(&mut conn)
        .expect("trades");
    let mut flows: HashMap<CurrencyId, i64> = HashMap::new();
    for (market, side, price, lots, buyer_fee, seller_fee) in rows {
        let spec = &world.exchange.market_by_id(market).expect("market").spec;
        let quote = spec.notional_atoms(price, lots).expect("notional");
        let base = spec.base_atoms(lots).expect("base");
        if side == "buy" {
            *flows.entry(spec.quote).or_default() -= quote;
            *flows.entry(spec.base).or_default() += base - buyer_fee;
        } else {
            *flows.entry(spec.base).or_default() -= base;
            *flows.entry(spec.quote).or_default() += quote - seller_fee;
        }
    }
    flows
}

fn make(
    world: &World,
    maker: usize,
    market: usize,
    buy: bool,
    price_ticks: i64,
    quantity_lots: i64,
) {
    let symbol = ["AAA-BBB", "CCC-BBB"][market];
    let handle = world.exchange.market(symbol).expect("market");
    // Refusals (a maker out of funds) are part of the game.
    let _ = handle.submit_blocking(Command::Place(PlaceOrder {
        owner: world.owners[maker],
        side: if buy { Side::Buy } else { Side::Sell },
        order_type: OrderType::Limit,
        price_ticks: Some(price_ticks),
        quantity_lots,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        client_order_id: None,
        idempotency: None,
    }));
}

/// Runs the steps; returns how many payments were made.
fn run(steps: &[Step]) -> Result<usize, TestCaseError> {
    let world = world();
    let (payer, recipient) = (world.owners[PAYER], world.owners[RECIPIENT]);
    let scale = Scale::new(2).expect("scale");
    let mut made = 0;
    for step in steps {
        let (amount_atoms, pay_with, cap, max_hops) = match step {
            Step::Make {
                maker,
                market,
                buy,
                price_ticks,
                quantity_lots,
            } => {
                make(&world, *maker, *market, *buy, *price_ticks, *quantity_lots);
                continue;
            }
            Step::Pay {
                amount_atoms,
                pay_with,
                cap,
                max_hops,
            } => (*amount_atoms, pay_with, *cap, *max_hops),
        };
        let plan = PaymentPlan {
            payer,
            recipient,
            currency: world.currencies[2],
            amount: Amount::from_atoms(amount_atoms, scale),
            names: world.names.clone(),
            pay_with: (!pay_with.is_empty())
                .then(|| pay_with.iter().map(|&i| world.currencies[i]).collect()),
            max_hops,
            max_spend: cap
                .map(|(i, atoms)| (world.currencies[i], atoms))
                .into_iter()
                .collect(),
            memo: None,
            request: None,
            settles: None,
        };
        let (payer_before, recipient_before, markets_before) = (
            balances(&world, payer),
            balances(&world, recipient),
            markets(&world),
        );
        let render = |_: &execute::Executed| Ok::<String, ExchangeError>(String::new());
        let mode = Mode::Pay {
            idempotency: None,
            render: &render,
        };
        let outcome = execute::run(&world.exchange, &world.db.pool, &plan, &mode);
        let (payer_after, recipient_after) = (balances(&world, payer), balances(&world, recipient));
        match outcome {
            Ok(Outcome::Paid(executed)) => {
                made += 1;
                prop_assert_eq!(
                    recipient_after[2] - recipient_before[2],
                    amount_atoms,
                    "the recipient gets exactly the amount"
                );
                let trade_ids: Vec<i64> = executed.trades.iter().map(|t| t.trade_id).collect();
                let mut flows = fill_flows(&world, &trade_ids);
                *flows.entry(world.currencies[2]).or_default() -= amount_atoms;
                for (i, &currency) in world.currencies.iter().enumerate() {
                    let moved = payer_after[i] - payer_before[i];
                    prop_assert_eq!(
                        moved,
                        flows.get(&currency).copied().unwrap_or(0),
                        "{}: balance moved by the fills and the payment",
                        CODES[i]
                    );
                    let spent = executed
                        .spent
                        .iter()
                        .find(|(c, _)| *c == currency)
                        .map_or(0, |(_, a)| *a);
                    let change = executed
                        .change
                        .iter()
                        .find(|(c, _)| *c == currency)
                        .map_or(0, |(_, a)| *a);
                    prop_assert_eq!(
                        moved,
                        change - spent,
                        "{}: the answer says what moved",
                        CODES[i]
                    );
                    if let Some(&limit) = plan.max_spend.get(&currency) {
                        prop_assert!(spent <= limit, "a cap is never exceeded");
                    }
                }
            }
            Ok(other) => prop_assert!(false, "a payment answered {other:?}"),
            Err(_) => {
                prop_assert_eq!(
                    &payer_after,
                    &payer_before,
                    "a refused payment moves nothing"
                );
                prop_assert_eq!(&recipient_after, &recipient_before);
                prop_assert_eq!(markets(&world), markets_before, "nor any book");
            }
        }
    }
    let report = Ledger::new(world.db.pool.clone()).audit().expect("audit");
    prop_assert!(report.is_clean(), "{:#?}", report.violations);
    let mut conn = world.db.pool.get().expect("conn");
    prop_assert_eq!(
        fixtures::count(&mut conn, fixtures::STRANDED_HOLDS),
        0,
        "funds held by closed orders"
    );
    prop_assert_eq!(
        fixtures::count(&mut conn, fixtures::FILLS_THAT_DO_NOT_ADD_UP),
        0
    );
    Ok(made)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn payments_through_random_books_are_whole_or_absent(steps in prop::collection::vec(step(), 1..40)) {
        run(&steps)?;
    }
}

/// The property is not vacuous: a direct and a two-hop payment both go through.
#[test]
fn payments_through_one_and_two_markets_are_made() {
    let make = |market, buy, price_ticks| Step::Make {
        maker: 1,
        market,
        buy,
        price_ticks,
        quantity_lots: 8,
    };
    let pay = |pay_with: Vec<usize>| Step::Pay {
        amount_atoms: 250,
        pay_with,
        cap: None,
        max_hops: 2,
    };
    let made = run(&[
        make(1, false, 100),
        make(0, true, 90),
        pay(vec![1]),
        pay(vec![0]),
    ])
    .expect("properties hold");
    assert_eq!(made, 2);
}
