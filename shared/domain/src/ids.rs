//! Row ids. Each kind of id is its own type so an account id can never be passed where a
//! currency id is expected.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A user, a business, or the registry itself.
    PrincipalId
);
id_type!(
    /// A currency row.
    CurrencyId
);
id_type!(
    /// One principal's account in one currency.
    AccountId
);
id_type!(
    /// One recorded movement of money (the journal line).
    TransferId
);
id_type!(
    /// Funds reserved on an account (by an open order, for example).
    HoldId
);
