//! Replays the real Nasdaq sample (AAPL 2012-06-21, LOBSTER format; see
//! `tests/data/lobster/README.md`) through the engine: after every event the top 5 levels must
//! equal Nasdaq's recorded book, and every execution must hit the order Nasdaq hit.

use std::collections::HashMap;

use scrip_matching::{Book, Event, NewOrder, Side, TimeInForce};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/lobster/");
const MESSAGES: &str = "AAPL_2012-06-21_34200000_57600000_message_10.csv";
const BOOKS: &str = "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv";
const COMPARED_LEVELS: usize = 5;
/// Levels per side in the order-book file.
const RECORDED_LEVELS: usize = 10;
/// Ids of synthetic orders standing for liquidity placed before the file starts.
const SYNTHETIC_BASE: u64 = 1 << 40;
/// Owner of the incoming orders that replay executions; never a maker's owner.
const TAKER: u64 = u64::MAX;

struct Message {
    kind: u8,
    order_id: u64,
    size: i64,
    price: i64,
    side: Side,
}

type Levels = Vec<(i64, i64)>;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DATA}{name}")).expect("LOBSTER sample file")
}

fn messages() -> Vec<Message> {
    read(MESSAGES)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Message {
                kind: f[1].parse().expect("type"),
                order_id: f[2].parse().expect("id"),
                size: f[3].parse().expect("size"),
                price: f[4].parse().expect("price"),
                side: if f[5] == "1" { Side::Buy } else { Side::Sell },
            }
        })
        .collect()
}

/// Each row as (asks, bids), best first, empty levels left out.
fn books() -> Vec<(Levels, Levels)> {
    read(BOOKS)
        .lines()
        .map(|line| {
            let v: Vec<i64> = line
                .split(',')
                .map(|x| x.parse().expect("number"))
                .collect();
            let (mut asks, mut bids) = (Vec::new(), Vec::new());
            for level in v.chunks(4) {
                if level[1] > 0 {
                    asks.push((level[0], level[1]));
                }
                if level[3] > 0 {
                    bids.push((level[2], level[3]));
                }
            }
            (asks, bids)
        })
        .collect()
}

struct Replay {
    book: Book,
    synthetic: HashMap<(bool, i64), u64>,
    next_synthetic: u64,
    events: Vec<Event>,
}

impl Replay {
    fn add_synthetic(&mut self, side: Side, price: i64, size: i64) {
        let id = SYNTHETIC_BASE + self.next_synthetic;
        self.next_synthetic += 1;
        self.synthetic.insert((side == Side::Buy, price), id);
        let order = NewOrder {
            id,
            owner: id,
            side,
            price: Some(price),
            quantity: size,
            time_in_force: TimeInForce::Gtc,
            post_only: true,
        };
        self.events.clear();
        self.book.submit(order, &mut self.events).expect("seed");
        assert!(
            matches!(self.events.last(), Some(Event::Rested { .. })),
            "seeded level rests"
        );
    }

    /// The engine's id for a message's order: itself, or the synthetic order of its level.
    fn resolve(&self, m: &Message) -> u64 {
        if self.book.order(m.order_id).is_some() {
            m.order_id
        } else {
            *self
                .synthetic
                .get(&(m.side == Side::Buy, m.price))
                .expect("a synthetic order at that level")
        }
    }

    /// Seeds levels that came into view from beyond the recorded depth: missing from our book
    /// and worse than the last level of the previous row, when that row's window was full.
    fn seed_from_beyond(&mut self, side: Side, levels: &Levels, previous: &Levels) {
        let Some(&(boundary, _)) = previous.get(RECORDED_LEVELS - 1) else {
            return;
        };
        let ours = self.book.depth(side, usize::MAX);
        for &(price, size) in levels {
            let beyond = match side {
                Side::Buy => price < boundary,
                Side::Sell => price > boundary,
            };
            if beyond && !ours.iter().any(|l| l.0 == price) {
                self.add_synthetic(side, price, size);
            }
        }
    }
}

#[test]
fn replaying_nasdaq_reproduces_the_book_after_every_event() {
    let messages = messages();
    let books = books();
    assert_eq!(messages.len(), books.len());
    let mut replay = Replay {
        book: Book::new(),
        synthetic: HashMap::new(),
        next_synthetic: 0,
        events: Vec::new(),
    };

    // The book before the first event: the first row without that event's order.
    let first = &messages[0];
    assert_eq!(first.kind, 1);
    let (mut asks, mut bids) = books[0].clone();
    let side_levels = if first.side == Side::Buy {
        &mut bids
    } else {
        &mut asks
    };
    if let Some(level) = side_levels.iter_mut().find(|l| l.0 == first.price) {
        level.1 -= first.size;
    }
    side_levels.retain(|l| l.1 > 0);
    for &(price, size) in &asks {
        replay.add_synthetic(Side::Sell, price, size);
    }
    for &(price, size) in &bids {
        replay.add_synthetic(Side::Buy, price, size);
    }

    let mut executions = 0;
    for (n, (m, (asks, bids))) in messages.iter().zip(&books).enumerate() {
        replay.events.clear();
        match m.kind {
            1 => {
                let order = NewOrder {
                    id: m.order_id,
                    owner: m.order_id,
                    side: m.side,
                    price: Some(m.price),
                    quantity: m.size,
                    time_in_force: TimeInForce::Gtc,
                    post_only: true,
                };
                replay
                    .book
                    .submit(order, &mut replay.events)
                    .expect("new order");
                assert!(
                    matches!(replay.events.last(), Some(Event::Rested { .. })),
                    "event {n}: a new order rests"
                );
            }
            2 | 3 => {
                let id = replay.resolve(m);
                let (_, _, remaining) = replay.book.order(id).expect("resting");
                replay
                    .book
                    .reduce(id, remaining - m.size, &mut replay.events)
                    .expect("reduce or delete");
            }
            4 => {
                let maker = replay.resolve(m);
                let taker = NewOrder {
                    id: 1 << 50 | n as u64,
                    owner: TAKER,
                    side: m.side.opposite(),
                    price: Some(m.price),
                    quantity: m.size,
                    time_in_force: TimeInForce::Ioc,
                    post_only: false,
                };
                replay
                    .book
                    .submit(taker, &mut replay.events)
                    .expect("execution");
                let fills: Vec<(u64, i64, i64)> = replay
                    .events
                    .iter()
                    .filter_map(|e| match *e {
                        Event::Fill {
                            maker,
                            price,
                            quantity,
                            ..
                        } => Some((maker, price, quantity)),
                        _ => None,
                    })
                    .collect();
                assert_eq!(
                    fills,
                    vec![(maker, m.price, m.size)],
                    "event {n}: the execution hits the order Nasdaq hit"
                );
                executions += 1;
            }
            _ => {} // hidden executions and halts do not change the visible book
        }
        let (previous_asks, previous_bids) = if n == 0 {
            (&Vec::new(), &Vec::new())
        } else {
            (&books[n - 1].0, &books[n - 1].1)
        };
        replay.seed_from_beyond(Side::Sell, asks, previous_asks);
        replay.seed_from_beyond(Side::Buy, bids, previous_bids);
        let top = |levels: &Levels| {
            levels
                .iter()
                .take(COMPARED_LEVELS)
                .copied()
                .collect::<Levels>()
        };
        assert_eq!(
            replay.book.depth(Side::Sell, COMPARED_LEVELS),
            top(asks),
            "event {n}: asks"
        );
        assert_eq!(
            replay.book.depth(Side::Buy, COMPARED_LEVELS),
            top(bids),
            "event {n}: bids"
        );
    }
    assert_eq!(executions, 98, "every visible execution was replayed");
}
