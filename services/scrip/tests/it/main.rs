//! The `scrip` binary, run as a user would.

mod commands;
