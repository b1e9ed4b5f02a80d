//! The exchange service below HTTP: random sequences of orders, cancels and reductions from
//! several owners, and random payments converting through the books, through the real market
//! writers on a real database, checked against the ledger's invariants after every sequence.

mod fixtures;
mod random_payments;
mod random_trading;
