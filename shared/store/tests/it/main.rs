//! Integration tests of the storage layer on both backends.

mod schema_parity;
