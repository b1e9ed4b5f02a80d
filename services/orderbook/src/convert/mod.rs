//! Paying with what you hold: a payment in one currency paid with others, converted through
//! the order books atomically (API.md, "Paying with what you hold").
//!
//! - [`route`]: which markets lead from a source to the target and how much to trade in each
//!   (pure);
//! - [`execute`]: borrowing the markets from their writers and running the whole payment in
//!   one transaction;
//! - [`store`]: what a payment cost and its trades; [`http`]: the endpoints.

pub mod execute;
pub mod http;
pub mod route;
pub mod store;
