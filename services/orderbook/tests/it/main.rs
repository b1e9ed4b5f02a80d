//! The exchange service below HTTP: random sequences of orders, cancels and reductions from
//! several owners, through the real market writer on a real database, checked against the
//! ledger's invariants after every sequence.

mod random_trading;
