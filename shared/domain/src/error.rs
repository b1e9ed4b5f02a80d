use thiserror::Error;

/// Why a decimal string could not become an [`crate::Amount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AmountError {
    #[error("an amount is a decimal string such as \"12.50\"")]
    Malformed,
    #[error("the amount has more decimals than the currency's scale of {scale}")]
    TooManyDecimals { scale: u8 },
    #[error("the amount is too large")]
    Overflow,
    #[error("the amount must be greater than zero")]
    NotPositive,
    #[error("the amount must not be negative")]
    Negative,
    #[error("amounts of different scales cannot be combined")]
    ScaleMismatch,
}

/// A value that failed validation. Each variant names the rule that was broken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error(
        "a handle is 3 to 32 characters of a-z, 0-9, '_', '.', '-' starting with a letter or digit"
    )]
    BadHandle,
    #[error(
        "a new handle ends with a letter or digit, has no two '_', '.' or '-' in a row, and does not start with 'registry'"
    )]
    LookAlikeHandle,
    #[error("that code is reserved: it names a national or a well-known currency")]
    ReservedCurrencyCode,
    #[error("an address is handle@registry")]
    BadAddress,
    #[error("a registry id is 1 to 63 characters of a-z, 0-9, '_', '.', '-'")]
    BadRegistry,
    #[error("the address belongs to registry '{0}', not this one")]
    ForeignRegistry(String),
    #[error("a currency code is 2 to 12 characters of A-Z and 0-9 starting with a letter")]
    BadCurrencyCode,
    #[error("a scale is a whole number of decimals from 0 to 8")]
    BadScale,
    #[error("par is a positive decimal with at most 8 decimals")]
    BadPar,
    #[error(transparent)]
    Amount(#[from] AmountError),
}
