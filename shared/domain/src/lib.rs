//! Validated value types of Scrip.
//!
//! Every type here has one constructor, `parse` (or `new` for plain numbers), that checks
//! its input once; after that the value is known to be valid wherever it travels. Nothing in
//! this crate does I/O. Money is always an integer number of atoms (minor units) of a
//! currency with a fixed [`Scale`]; decimal strings are parsed exactly and never rounded.

mod amount;
mod error;
mod ids;
mod names;

pub use amount::{Amount, MAX_SCALE, Par, Scale};
pub use error::{AmountError, DomainError};
pub use ids::{AccountId, CurrencyId, HoldId, PrincipalId, TransferId};
pub use names::{Address, CurrencyCode, Handle, PrincipalKind, RegistryId, UnitCode, is_invisible};
