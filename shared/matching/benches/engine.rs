//! `cargo bench -p scrip-matching --bench engine`: the engine alone on one core with an
//! exchange-core-like mix: mostly new orders, cancels and moves around ~1,000 resting orders on
//! a few hundred levels, a few percent of orders that trade.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scrip_matching::{Book, Event, NewOrder, Side, TimeInForce};

const OPERATIONS: usize = 200_000;
const TARGET_RESTING: usize = 1_000;
const MID: i64 = 10_000;
const HALF_SPREAD_LEVELS: i64 = 150;

#[derive(Clone, Copy)]
enum Op {
    New(NewOrder),
    Cancel(u64),
    Reduce(u64, i64),
}

/// A deterministic stream of operations that keeps the book near its target size.
fn workload() -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(42);
    let mut book = Book::new();
    let mut live: Vec<u64> = Vec::new();
    let mut events = Vec::new();
    let mut ops = Vec::with_capacity(OPERATIONS);
    let mut next_id = 0;
    while ops.len() < OPERATIONS {
        let roll = rng.random_range(0..100);
        let op = if live.len() > TARGET_RESTING / 2 && roll < 40 {
            let i = rng.random_range(0..live.len());
            Op::Cancel(live.swap_remove(i))
        } else if !live.is_empty() && roll < 50 {
            let id = live[rng.random_range(0..live.len())];
            let (_, _, remaining) = book.order(id).unwrap_or((Side::Buy, 0, 1));
            Op::Reduce(id, (remaining - 1).max(1))
        } else {
            next_id += 1;
            let side = if rng.random_bool(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let aggressive = roll >= 96;
            let offset = if aggressive {
                -5
            } else {
                rng.random_range(1..=HALF_SPREAD_LEVELS)
            };
            let price = match side {
                Side::Buy => MID - offset,
                Side::Sell => MID + offset,
            };
            let tif = if aggressive {
                TimeInForce::Ioc
            } else {
                TimeInForce::Gtc
            };
            Op::New(NewOrder {
                id: next_id,
                owner: rng.random_range(0..1_000),
                side,
                price: Some(price),
                quantity: rng.random_range(1..100),
                time_in_force: tif,
                post_only: false,
            })
        };
        apply(&mut book, op, &mut events);
        live.retain(|&id| book.order(id).is_some());
        if let Op::New(order) = op
            && book.order(order.id).is_some()
        {
            live.push(order.id);
        }
        ops.push(op);
    }
    ops
}

fn apply(book: &mut Book, op: Op, events: &mut Vec<Event>) {
    events.clear();
    let _ = match op {
        Op::New(order) => book.submit(order, events),
        Op::Cancel(id) => book.cancel(id, events),
        Op::Reduce(id, q) => book.reduce(id, q, events),
    };
}

fn engine(c: &mut Criterion) {
    let ops = workload();
    let mut group = c.benchmark_group("matching");
    group.throughput(Throughput::Elements(ops.len() as u64));
    group.sample_size(20);
    group.bench_function("exchange_core_mix", |b| {
        let mut events = Vec::with_capacity(64);
        b.iter(|| {
            let mut book = Book::new();
            for &op in &ops {
                apply(&mut book, op, &mut events);
            }
            book.len()
        })
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
