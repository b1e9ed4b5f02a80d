//! The engine against hand-checked cases and against a naive reference implementation.

mod lobster;
mod reference;
mod table;
