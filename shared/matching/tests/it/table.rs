use scrip_matching::{Book, BookError, CancelReason, Event, NewOrder, Side, TimeInForce};

fn limit(id: u64, owner: u64, side: Side, price: i64, quantity: i64) -> NewOrder {
    NewOrder {
        id,
        owner,
        side,
        price: Some(price),
        quantity,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
    }
}

fn submit(book: &mut Book, order: NewOrder) -> Vec<Event> {
    let mut events = Vec::new();
    book.submit(order, &mut events).expect("valid order");
    events
}

fn fills(events: &[Event]) -> Vec<(u64, i64, i64)> {
    events
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
        .collect()
}

#[test]
fn a_taker_sweeps_levels_in_price_then_time_order() {
    let mut book = Book::new();
    submit(&mut book, limit(1, 1, Side::Sell, 101, 5));
    submit(&mut book, limit(2, 2, Side::Sell, 100, 3));
    submit(&mut book, limit(3, 3, Side::Sell, 100, 4));
    let events = submit(&mut book, limit(4, 4, Side::Buy, 101, 10));
    assert_eq!(fills(&events), vec![(2, 100, 3), (3, 100, 4), (1, 101, 3)]);
    assert_eq!(book.best_ask(), Some((101, 2)));
    assert_eq!(book.best_bid(), None, "fully filled: nothing rests");
    assert_eq!(book.order(1), Some((Side::Sell, 101, 2)));
}

#[test]
fn a_partial_fill_rests_the_remainder_at_its_limit() {
    let mut book = Book::new();
    submit(&mut book, limit(1, 1, Side::Sell, 100, 3));
    let events = submit(&mut book, limit(2, 2, Side::Buy, 100, 5));
    assert_eq!(fills(&events), vec![(1, 100, 3)]);
    assert_eq!(
        events.last(),
        Some(&Event::Rested {
            id: 2,
            side: Side::Buy,
            price: 100,
            quantity: 2
        })
    );
    assert_eq!(book.best_bid(), Some((100, 2)));
}

#[test]
fn ioc_and_market_remainders_are_cancelled() {
    let mut book = Book::new();
    submit(&mut book, limit(1, 1, Side::Sell, 100, 3));
    let ioc = NewOrder {
        time_in_force: TimeInForce::Ioc,
        ..limit(2, 2, Side::Buy, 100, 5)
    };
    let events = submit(&mut book, ioc);
    assert_eq!(
        events.last(),
        Some(&Event::Cancelled {
            id: 2,
            remaining: 2,
            reason: CancelReason::Unfilled
        })
    );
    submit(&mut book, limit(3, 1, Side::Sell, 105, 1));
    let market = NewOrder {
        price: None,
        ..limit(4, 2, Side::Buy, 1, 4)
    };
    let events = submit(&mut book, market);
    assert_eq!(fills(&events), vec![(3, 105, 1)]);
    assert_eq!(
        events.last(),
        Some(&Event::Cancelled {
            id: 4,
            remaining: 3,
            reason: CancelReason::Unfilled
        })
    );
    assert!(book.is_empty());
}

#[test]
fn fok_that_cannot_fill_changes_nothing() {
    let mut book = Book::new();
    submit(&mut book, limit(1, 1, Side::Sell, 100, 3));
    submit(&mut book, limit(2, 1, Side::Sell, 102, 3));
    let fok = NewOrder {
        time_in_force: TimeInForce::Fok,
        ..limit(3, 2, Side::Buy, 101, 4)
    };
    let events = submit(&mut book, fok);
    assert_eq!(
        events,
        vec![
            Event::Accepted { id: 3 },
            Event::Cancelled {
                id: 3,
                remaining: 4,
                reason: CancelReason::NotFillable
            }
        ]
    );
    assert_eq!(book.depth(Side::Sell, 5), vec![(100, 3), (102, 3)]);
    let fok = NewOrder {
        time_in_force: TimeInForce::Fok,
        ..limit(4, 2, Side::Buy, 102, 6)
    };
    assert_eq!(
        fills(&submit(&mut book, fok)),
        vec![(1, 100, 3), (2, 102, 3)]
    );
}

#[test]
fn post_only_that_would_cross_is_refused() {
    let mut book = Book::new();
    submit(&mut book, limit(1, 1, Side::Sell, 100, 3));
    let post = NewOrder {
        post_only: true,
        ..limit(2, 2, Side::Buy, 100, 1)
    };
    assert_eq!(
        submit(&mut book, post).last(),
        Some(&Event::Cancelled {
            id: 2,
            remaining: 1,
            reason: CancelReason::WouldCross
        })
    );
    let post = NewOrder {
        post_only: true,
        ..limit(3, 2, Side::Buy, 99, 1)
    };
    assert_eq!(
        submit(&mut book, post).last(),
        Some(&Event::Rested {
            id: 3,
            side: Side::Buy,
            price: 99,
            quantity: 1
        })
    );
}

#[test]
fn self_trades_cancel_the_resting_order() {
    let mut book = Book::new();
    submit(&mut book, limit(1, 7, Side::Sell, 100, 3));
    submit(&mut book, limit(2, 8, Side::Sell, 100, 3));
    let events = submit(&mut book, limit(3, 7, Side::Buy, 100, 2));
    assert_eq!(
        events[1],
        Event::Cancelled {
            id: 1,
            remaining: 3,
            reason: CancelReason::SelfTrade
        }
    );
    assert_eq!(fills(&events), vec![(2, 100, 2)]);
}

#[test]
fn reduce_keeps_priority_and_reduce_to_zero_cancels() {
    let mut book = Book::new();
    submit(&mut book, limit(1, 1, Side::Sell, 100, 5));
    submit(&mut book, limit(2, 2, Side::Sell, 100, 5));
    let mut events = Vec::new();
    book.reduce(1, 2, &mut events).expect("reduce");
    assert_eq!(
        events,
        vec![Event::Reduced {
            id: 1,
            remaining: 2
        }]
    );
    assert_eq!(book.best_ask(), Some((100, 7)));
    assert_eq!(
        book.reduce(1, 3, &mut events),
        Err(BookError::NotAReduction)
    );
    assert_eq!(
        fills(&submit(&mut book, limit(3, 3, Side::Buy, 100, 3))),
        vec![(1, 100, 2), (2, 100, 1)],
        "1 kept its place"
    );
    events.clear();
    book.reduce(2, 0, &mut events).expect("to zero");
    assert_eq!(
        events,
        vec![Event::Cancelled {
            id: 2,
            remaining: 4,
            reason: CancelReason::Requested
        }]
    );
    assert!(book.is_empty());
}

#[test]
fn bad_input_changes_nothing() {
    let mut book = Book::new();
    submit(&mut book, limit(1, 1, Side::Sell, 100, 5));
    let mut events = Vec::new();
    assert_eq!(
        book.submit(limit(1, 2, Side::Buy, 90, 1), &mut events),
        Err(BookError::DuplicateId)
    );
    assert_eq!(
        book.submit(limit(2, 2, Side::Buy, 90, 0), &mut events),
        Err(BookError::BadQuantity)
    );
    assert_eq!(
        book.submit(limit(3, 2, Side::Buy, 0, 1), &mut events),
        Err(BookError::BadPrice)
    );
    assert_eq!(book.cancel(99, &mut events), Err(BookError::UnknownOrder));
    assert!(events.is_empty());
    assert_eq!(book.depth(Side::Sell, 5), vec![(100, 5)]);
}
