//! Ledger integration tests on both backends (SQLite files and real PostgreSQL).

mod audit;
mod concurrency;
mod idempotency;
mod model;
mod policies;
mod rules;
mod support;
