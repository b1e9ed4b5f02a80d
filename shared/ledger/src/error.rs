use scrip_domain::{AmountError, DomainError};
use thiserror::Error;

/// Everything a ledger call can refuse, each a distinct business rule, plus `Store` for
/// failures of the database itself. Transient conflicts (serialization failures, deadlocks,
/// a busy SQLite file) are retried inside the ledger and never appear here.
///
/// Services map these to HTTP once (API.md codes): `InsufficientFunds` and
/// `CreditLimitExceeded` are both `insufficient_funds`, `Unknown*` are `unknown_account`...
#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("bad amount: {0}")]
    BadAmount(#[from] AmountError),
    #[error("{0}")]
    BadInput(DomainError),
    #[error("the amount's scale does not match the currency's scale of {expected}")]
    ScaleMismatch { expected: u8 },
    #[error("a transfer needs two different accounts")]
    SameAccount,
    #[error("no such currency")]
    UnknownCurrency,
    #[error("no such principal")]
    UnknownPrincipal,
    #[error("no such hold, or it is not on this account")]
    UnknownHold,
    #[error("no such transfer")]
    UnknownTransfer,
    #[error("the handle is already taken")]
    HandleTaken,
    #[error("the currency code is already taken")]
    CodeTaken,
    #[error("the account's available balance is too small")]
    InsufficientFunds,
    #[error("the issuer's account would go below its credit limit")]
    CreditLimitExceeded,
    #[error("the receiving account would exceed the currency's maximum balance")]
    MaxBalanceExceeded,
    #[error("the hold has less remaining than that")]
    HoldExceeded,
    #[error("the new limit would leave an existing balance outside it")]
    LimitBelowPosition,
    #[error("the idempotency key was already used with a different request")]
    IdempotencyConflict,
    #[error("database error: {0}")]
    Store(#[from] diesel::result::Error),
    #[error("database error: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The group-commit writer could not apply a batch, or has stopped.
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
}

impl From<DomainError> for LedgerError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Amount(amount) => Self::BadAmount(amount),
            other => Self::BadInput(other),
        }
    }
}

impl LedgerError {
    /// A short stable name for logs and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadAmount(_) | Self::ScaleMismatch { .. } => "bad_amount",
            Self::BadInput(_) => "bad_input",
            Self::SameAccount => "same_account",
            Self::UnknownCurrency => "unknown_currency",
            Self::UnknownPrincipal => "unknown_principal",
            Self::UnknownHold => "unknown_hold",
            Self::UnknownTransfer => "unknown_transfer",
            Self::HandleTaken => "handle_taken",
            Self::CodeTaken => "code_taken",
            Self::InsufficientFunds => "insufficient_funds",
            Self::CreditLimitExceeded => "credit_limit_exceeded",
            Self::MaxBalanceExceeded => "max_balance_exceeded",
            Self::HoldExceeded => "hold_exceeded",
            Self::LimitBelowPosition => "limit_below_position",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::Store(_) | Self::Pool(_) => "store",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// True for refusals by a business rule, false for infrastructure failures (5xx).
    pub fn is_business_rule(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::Pool(_) | Self::Unavailable(_))
    }
}
