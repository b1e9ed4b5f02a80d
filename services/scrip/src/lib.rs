//! The `scrip` binary's library half: configuration, the server that wires the services
//! together, the demo economy. `main.rs` only parses the command line and calls in here, so
//! the black-box tests can start exactly the server users run.

pub mod clearing_bench;
pub mod cli;
pub mod demo;
pub mod demo_listings;
pub mod server;
