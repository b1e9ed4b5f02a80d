//! The solver against hand-checked cases, an exhaustive search on thousands of small random
//! graphs, and the invariants on large generated networks.

mod exhaustive;
mod known;
