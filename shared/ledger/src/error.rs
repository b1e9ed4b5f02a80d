use scrip_domain::{AmountError, DomainError};
use thiserror::Error;

/// Everything a ledger call can refuse, each a distinct business rule, plus `Store` for
/// failures of the database itself. Transient conflicts (serialization failures, deadlocks,
/// a busy SQLite file) are retried inside the ledger and never appear here.
///
/// [`LedgerError::code`] is the one table of codes (API.md's words) and
/// [`LedgerError::class`] the kind of answer; `scrip-http` maps them to HTTP once.
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
    #[error(
        "the issuer's account would go below its credit limit (for a backed currency: past what its reserve backs)"
    )]
    CreditLimitExceeded,
    #[error("the receiving account would exceed the currency's maximum balance")]
    MaxBalanceExceeded,
    #[error("the registry's accounts only collect fees: they cannot be paid")]
    FeeAccount,
    #[error("the hold has less remaining than that")]
    HoldExceeded,
    #[error("the new limit would leave an existing balance outside it")]
    LimitBelowPosition,
    /// A policy that cannot be: `why` in words, `field` the request field it concerns.
    #[error("{why}")]
    BadPolicy { field: &'static str, why: String },
    #[error("the amount is more than the currency's largest single payment ({max})")]
    OverMaxPayment { max: String },
    #[error("only admitted members may hold this currency")]
    NotAdmitted,
    #[error("the account is frozen in this currency: it can neither pay nor trade")]
    Frozen,
    #[error("the currency's {field} is sealed: it can never change again")]
    Sealed { field: crate::policy::PolicyField },
    /// A release of more of a backed currency's reserve than its unlocked deposits hold.
    #[error(
        "only {releasable} of the reserve can be released now: each deposit stays locked for the currency's lock_days{next_unlock}"
    )]
    ReserveLocked {
        releasable: String,
        next_unlock: String,
    },
    /// A release that would leave what is outstanding uncovered.
    #[error(
        "the reserve backs what is outstanding: at most {releasable} can be released now (it is released as outstanding falls)"
    )]
    ReserveInUse { releasable: String },
    /// Stewards cannot make someone a member of a currency with a joining fee: the newcomer
    /// joins (or applies) and pays it.
    #[error(
        "joining {currency} costs {fee}: a newcomer joins by paying it (POST /api/v1/currencies/{currency}/join) or applies, the stewards cannot admit them without it"
    )]
    JoiningFeeRequired { currency: String, fee: String },
    /// Leaving a currency with money in it (or held, or owed).
    #[error(
        "leave with an empty account: it holds {balance} (held {held}); spend or settle it first"
    )]
    AccountNotEmpty { balance: String, held: String },
    /// Leaving a currency while orders in its markets are open.
    #[error("cancel your open orders in {currency} markets before leaving")]
    OpenOrders { currency: String },
    #[error("the idempotency key was already used with a different request")]
    IdempotencyConflict,
    #[error("this payment request has already been paid")]
    AlreadyPaid,
    /// Something else a payment settles was paid first (a deal): the detail says what.
    #[error("{0}")]
    AlreadySettled(String),
    /// What a payment was priced on changed before it committed (the onboarding fund's share
    /// of a deal, say): nothing was applied, and trying again prices it anew.
    #[error("{0}")]
    ChangedMeanwhile(String),
    #[error("this payment request expired at {at}; ask for a new one")]
    RequestExpired { at: String },
    #[error("database error: {0}")]
    Store(#[from] diesel::result::Error),
    #[error("database error: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// A state the rules make impossible was found (a plan refused where it was written
    /// although it was made from the same numbers, say): a bug, logged, and the unit of work
    /// is refused whole.
    #[error("internal invariant broken: {0}")]
    Invariant(String),
    /// The group-commit writer could not apply a batch, or has stopped.
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
}

impl LedgerError {
    /// A refused policy: `why` names `field` first, as every refusal under a field does.
    pub fn bad_policy(field: &'static str, why: impl Into<String>) -> Self {
        Self::BadPolicy {
            field,
            why: why.into(),
        }
    }
}

impl From<DomainError> for LedgerError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Amount(amount) => Self::BadAmount(amount),
            other => Self::BadInput(other),
        }
    }
}

/// How a refusal is answered: one HTTP status class per kind (`scrip-http` maps each once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A rule refused well-formed input (422).
    Unprocessable,
    /// No such thing, or not the caller's to see (404).
    NotFound,
    /// Taken names, reused keys (409).
    Conflict,
    /// The database or a writer cannot take work now; retry (503).
    Unavailable,
    /// A bug or a failing database (500).
    Internal,
}

impl LedgerError {
    /// The stable code of API.md: the same word in problem documents, logs and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadAmount(_) | Self::ScaleMismatch { .. } => "bad_amount",
            Self::BadInput(_) => "invalid_request",
            Self::SameAccount => "same_account",
            Self::UnknownCurrency | Self::UnknownPrincipal => "unknown_account",
            Self::UnknownHold | Self::UnknownTransfer => "not_found",
            Self::HandleTaken => "handle_taken",
            Self::CodeTaken => "code_taken",
            // The issuer's refusal says why in its detail; the code is the same.
            Self::InsufficientFunds | Self::CreditLimitExceeded => "insufficient_funds",
            Self::MaxBalanceExceeded => "max_balance_exceeded",
            Self::FeeAccount => "not_payable",
            Self::HoldExceeded => "hold_exceeded",
            Self::LimitBelowPosition => "limit_below_position",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::AlreadyPaid | Self::AlreadySettled(_) => "already_paid",
            Self::ChangedMeanwhile(_) => "changed_meanwhile",
            Self::RequestExpired { .. } => "request_expired",
            Self::BadPolicy { .. } => "bad_policy",
            Self::OverMaxPayment { .. } => "over_max_payment",
            Self::NotAdmitted => "not_admitted",
            Self::Frozen => "account_frozen",
            Self::Sealed { .. } => "sealed",
            Self::ReserveLocked { .. } => "reserve_locked",
            Self::ReserveInUse { .. } => "reserve_in_use",
            Self::JoiningFeeRequired { .. } => "joining_fee_required",
            Self::AccountNotEmpty { .. } => "account_not_empty",
            Self::OpenOrders { .. } => "open_orders",
            Self::Store(_) | Self::Invariant(_) => "internal",
            Self::Pool(_) | Self::Unavailable(_) => "unavailable",
        }
    }

    /// The kind of answer the refusal gets.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::UnknownCurrency
            | Self::UnknownPrincipal
            | Self::UnknownHold
            | Self::UnknownTransfer => ErrorClass::NotFound,
            Self::HandleTaken
            | Self::CodeTaken
            | Self::IdempotencyConflict
            | Self::AlreadyPaid
            | Self::AlreadySettled(_)
            | Self::ChangedMeanwhile(_)
            | Self::Sealed { .. } => ErrorClass::Conflict,
            Self::Pool(_) | Self::Unavailable(_) => ErrorClass::Unavailable,
            Self::Store(_) | Self::Invariant(_) => ErrorClass::Internal,
            Self::BadAmount(_)
            | Self::BadInput(_)
            | Self::ScaleMismatch { .. }
            | Self::SameAccount
            | Self::InsufficientFunds
            | Self::CreditLimitExceeded
            | Self::MaxBalanceExceeded
            | Self::FeeAccount
            | Self::HoldExceeded
            | Self::LimitBelowPosition
            | Self::BadPolicy { .. }
            | Self::OverMaxPayment { .. }
            | Self::NotAdmitted
            | Self::RequestExpired { .. }
            | Self::ReserveLocked { .. }
            | Self::ReserveInUse { .. }
            | Self::JoiningFeeRequired { .. }
            | Self::AccountNotEmpty { .. }
            | Self::OpenOrders { .. }
            | Self::Frozen => ErrorClass::Unprocessable,
        }
    }

    /// A serialization failure, deadlock or busy database: the unit of work may be retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(e) if scrip_store::is_retryable(e))
    }

    /// True for refusals by a business rule, false for infrastructure failures and bugs (5xx).
    pub fn is_business_rule(&self) -> bool {
        !matches!(self.class(), ErrorClass::Unavailable | ErrorClass::Internal)
    }
}
