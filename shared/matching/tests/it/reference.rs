//! A deliberately naive order book (a vector scanned for the best price and earliest arrival)
//! must produce exactly the engine's events on random operation sequences; the book is never
//! crossed and quantity is conserved.

use proptest::prelude::*;
use scrip_matching::{Book, CancelReason, Event, NewOrder, Side, TimeInForce};

#[derive(Debug, Clone, Copy)]
struct Resting {
    seq: u64,
    id: u64,
    owner: u64,
    side: Side,
    price: i64,
    remaining: i64,
}

#[derive(Default)]
struct Naive {
    orders: Vec<Resting>,
    seq: u64,
}

impl Naive {
    fn best(&self, side: Side) -> Option<usize> {
        let candidates = self
            .orders
            .iter()
            .enumerate()
            .filter(|(_, o)| o.side == side);
        match side {
            Side::Buy => candidates
                .max_by_key(|(_, o)| (o.price, std::cmp::Reverse(o.seq)))
                .map(|(i, _)| i),
            Side::Sell => candidates
                .min_by_key(|(_, o)| (o.price, o.seq))
                .map(|(i, _)| i),
        }
    }

    fn acceptable(side: Side, limit: Option<i64>, price: i64) -> bool {
        match side {
            Side::Buy => limit.is_none_or(|l| price <= l),
            Side::Sell => limit.is_none_or(|l| price >= l),
        }
    }

    fn submit(&mut self, o: NewOrder, events: &mut Vec<Event>) {
        if o.quantity <= 0
            || o.price.is_some_and(|p| p <= 0)
            || self.orders.iter().any(|r| r.id == o.id)
        {
            return;
        }
        events.push(Event::Accepted { id: o.id });
        let opposite = match o.side {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        };
        let crosses = self
            .best(opposite)
            .is_some_and(|i| Self::acceptable(o.side, o.price, self.orders[i].price));
        if o.post_only && crosses {
            events.push(Event::Cancelled {
                id: o.id,
                remaining: o.quantity,
                reason: CancelReason::WouldCross,
            });
            return;
        }
        if o.time_in_force == TimeInForce::Fok {
            let available: i64 = self
                .orders
                .iter()
                .filter(|r| {
                    r.side == opposite
                        && r.owner != o.owner
                        && Self::acceptable(o.side, o.price, r.price)
                })
                .map(|r| r.remaining)
                .sum();
            if available < o.quantity {
                events.push(Event::Cancelled {
                    id: o.id,
                    remaining: o.quantity,
                    reason: CancelReason::NotFillable,
                });
                return;
            }
        }
        let mut remaining = o.quantity;
        while remaining > 0 {
            let Some(i) = self.best(opposite) else { break };
            let maker = self.orders[i];
            if !Self::acceptable(o.side, o.price, maker.price) {
                break;
            }
            if maker.owner == o.owner {
                self.orders.remove(i);
                events.push(Event::Cancelled {
                    id: maker.id,
                    remaining: maker.remaining,
                    reason: CancelReason::SelfTrade,
                });
                continue;
            }
            let q = remaining.min(maker.remaining);
            remaining -= q;
            self.orders[i].remaining -= q;
            events.push(Event::Fill {
                taker: o.id,
                maker: maker.id,
                taker_owner: o.owner,
                maker_owner: maker.owner,
                taker_side: o.side,
                price: maker.price,
                quantity: q,
                maker_remaining: maker.remaining - q,
            });
            if self.orders[i].remaining == 0 {
                self.orders.remove(i);
            }
        }
        if remaining == 0 {
            return;
        }
        match (o.price, o.time_in_force) {
            (Some(price), TimeInForce::Gtc) => {
                self.seq += 1;
                self.orders.push(Resting {
                    seq: self.seq,
                    id: o.id,
                    owner: o.owner,
                    side: o.side,
                    price,
                    remaining,
                });
                events.push(Event::Rested {
                    id: o.id,
                    side: o.side,
                    price,
                    quantity: remaining,
                });
            }
            _ => events.push(Event::Cancelled {
                id: o.id,
                remaining,
                reason: CancelReason::Unfilled,
            }),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Submit {
        owner: u64,
        buy: bool,
        price: Option<i64>,
        quantity: i64,
        tif: u8,
        post_only: bool,
    },
    Cancel(u64),
    Reduce(u64, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0_u64..3, any::<bool>(), proptest::option::weighted(0.9, 95_i64..106), 1_i64..12, 0_u8..6, proptest::bool::weighted(0.1))
            .prop_map(|(owner, buy, price, quantity, tif, post_only)| Op::Submit { owner, buy, price, quantity, tif, post_only }),
        2 => (0_u64..60).prop_map(Op::Cancel),
        1 => (0_u64..60, 0_i64..8).prop_map(|(id, q)| Op::Reduce(id, q)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_matches_the_naive_reference(ops in proptest::collection::vec(op(), 1..80)) {
        let mut book = Book::new();
        let mut naive = Naive::default();
        let mut next_id = 0_u64;
        let (mut got, mut want) = (Vec::new(), Vec::new());
        for op in ops {
            got.clear();
            want.clear();
            match op {
                Op::Submit { owner, buy, price, quantity, tif, post_only } => {
                    next_id += 1;
                    let order = NewOrder {
                        id: next_id,
                        owner,
                        side: if buy { Side::Buy } else { Side::Sell },
                        price,
                        quantity,
                        time_in_force: match tif { 0 => TimeInForce::Ioc, 1 => TimeInForce::Fok, _ => TimeInForce::Gtc },
                        post_only,
                    };
                    let _ = book.submit(order, &mut got);
                    naive.submit(order, &mut want);
                }
                Op::Cancel(id) => {
                    let _ = book.cancel(id, &mut got);
                    if let Some(i) = naive.orders.iter().position(|o| o.id == id) {
                        let o = naive.orders.remove(i);
                        want.push(Event::Cancelled { id, remaining: o.remaining, reason: CancelReason::Requested });
                    }
                }
                Op::Reduce(id, q) => {
                    let _ = book.reduce(id, q, &mut got);
                    if let Some(i) = naive.orders.iter().position(|o| o.id == id) {
                        if q == 0 {
                            let o = naive.orders.remove(i);
                            want.push(Event::Cancelled { id, remaining: o.remaining, reason: CancelReason::Requested });
                        } else if q <= naive.orders[i].remaining {
                            naive.orders[i].remaining = q;
                            want.push(Event::Reduced { id, remaining: q });
                        }
                    }
                }
            }
            prop_assert_eq!(&got, &want);
            if let (Some((bid, _)), Some((ask, _))) = (book.best_bid(), book.best_ask()) {
                prop_assert!(bid < ask, "the book is never crossed");
            }
            let resting: i64 = naive.orders.iter().map(|o| o.remaining).sum();
            let booked: i64 = book.depth(Side::Buy, usize::MAX).iter().chain(&book.depth(Side::Sell, usize::MAX)).map(|l| l.1).sum();
            prop_assert_eq!(booked, resting, "quantity is conserved");
            prop_assert_eq!(book.len(), naive.orders.len());
        }
    }

    /// What `offered` reports a taker would meet is exactly what a sweeping immediate-or-cancel
    /// order of that owner then fills, level by level (the payment planner relies on it).
    #[test]
    fn offered_levels_are_what_a_sweep_fills(ops in proptest::collection::vec(op(), 1..60), owner in 0_u64..3, buy in any::<bool>()) {
        let mut book = Book::new();
        let mut events = Vec::new();
        for (id, op) in (1_u64..).zip(ops) {
            if let Op::Submit { owner, buy, price, quantity, .. } = op {
                let side = if buy { Side::Buy } else { Side::Sell };
                let order = NewOrder { id, owner, side, price, quantity, time_in_force: TimeInForce::Gtc, post_only: false };
                let _ = book.submit(order, &mut events);
            }
        }
        let side = if buy { Side::Buy } else { Side::Sell };
        let mut offered: Vec<(i64, i64)> = Vec::new();
        book.offered(side, owner, |price, quantity| { offered.push((price, quantity)); true });
        let mut swept = book.clone();
        events.clear();
        let sweep = NewOrder { id: u64::MAX, owner, side, price: None, quantity: i64::MAX / 4, time_in_force: TimeInForce::Ioc, post_only: false };
        swept.submit(sweep, &mut events).expect("a valid sweep");
        let mut filled: Vec<(i64, i64)> = Vec::new();
        for event in &events {
            if let Event::Fill { price, quantity, .. } = *event {
                match filled.last_mut() {
                    Some((p, q)) if *p == price => *q += quantity,
                    _ => filled.push((price, quantity)),
                }
            }
        }
        prop_assert_eq!(offered, filled);
    }
}
