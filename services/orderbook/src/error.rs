//! The exchange's refusals, mapped to problem+json once (API.md, Exchange).

use scrip_http::ApiError;
use scrip_ledger::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("{0}")]
    BadPrice(String),
    #[error("{0}")]
    BadQuantity(String),
    #[error("{0}")]
    BadMarket(String),
    #[error("{0}")]
    BadOrder(String),
    #[error("no market {0:?}")]
    UnknownMarket(String),
    #[error("the market {0} already exists")]
    MarketExists(String),
    #[error(
        "{issuer} already trades in {max} markets, the most a business may open; an operator can open more"
    )]
    MarketLimit { issuer: String, max: i64 },
    #[error("no such order")]
    UnknownOrder,
    #[error("the order is no longer open")]
    OrderClosed,
    #[error("a post-only order may not trade on arrival")]
    WouldCross,
    #[error("the new quantity must be below the current quantity and not below what is filled")]
    NotAReduction,
    #[error("the market is not served by this process right now; try again")]
    MarketUnavailable,
    /// A batch could not settle because this principal's account in this currency would go
    /// over the currency's maximum balance.
    #[error("a receiving account would exceed its currency's maximum balance")]
    ReceiverAtCeiling {
        principal: scrip_domain::PrincipalId,
        currency: scrip_domain::CurrencyId,
    },
    /// A batch could not settle because this principal's account in this currency is frozen
    /// (its stewards froze it while its orders were resting).
    #[error("the account is frozen in this currency: it can neither pay nor trade")]
    AccountFrozen {
        principal: scrip_domain::PrincipalId,
        currency: scrip_domain::CurrencyId,
    },
    /// A batch could not settle because this principal may no longer receive one of the
    /// market's currencies (it left a members-only currency while its order rested).
    #[error("only members may hold this currency")]
    MakerNotMember {
        principal: scrip_domain::PrincipalId,
    },
    /// A payment converting through the books cannot be made; the detail says what limited it.
    #[error("{0}")]
    NoRoute(String),
    /// A payment would cost more than `max_spend` or its quote allows.
    #[error("{0}")]
    SlippageExceeded(String),
    #[error("the quote expired; ask for a new one")]
    QuoteExpired,
    #[error("{0}")]
    BadQuote(String),
    /// The book and the ledger's plan disagree (a bug): the batch is refused whole.
    #[error("internal error in the market's writer: {0}")]
    Invariant(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<diesel::result::Error> for ExchangeError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Ledger(LedgerError::Store(error))
    }
}

impl ExchangeError {
    /// The stable code of API.md (also the label of the refusal in metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadPrice(_) => "bad_price",
            Self::BadQuantity(_) | Self::NotAReduction => "bad_quantity",
            Self::BadMarket(_) => "bad_market",
            Self::BadOrder(_) => "invalid_request",
            Self::UnknownMarket(_) => "unknown_market",
            Self::MarketExists(_) => "market_exists",
            Self::MarketLimit { .. } => "market_limit",
            Self::UnknownOrder => "not_found",
            Self::OrderClosed => "order_closed",
            Self::WouldCross => "would_cross",
            Self::MarketUnavailable => "market_unavailable",
            Self::ReceiverAtCeiling { .. } => "max_balance_exceeded",
            Self::AccountFrozen { .. } => "account_frozen",
            Self::MakerNotMember { .. } => "not_admitted",
            Self::NoRoute(_) => "no_route",
            Self::SlippageExceeded(_) => "slippage_exceeded",
            Self::QuoteExpired => "quote_expired",
            Self::BadQuote(_) => "bad_quote",
            Self::Invariant(_) => "internal",
            Self::Ledger(ledger) => ledger.code(),
        }
    }
}

impl From<ExchangeError> for ApiError {
    fn from(error: ExchangeError) -> Self {
        use ExchangeError as E;
        let code = error.code();
        let detail = error.to_string();
        match error {
            E::BadPrice(_)
            | E::BadQuantity(_)
            | E::NotAReduction
            | E::BadMarket(_)
            | E::BadOrder(_)
            | E::WouldCross
            | E::ReceiverAtCeiling { .. }
            | E::AccountFrozen { .. }
            | E::MakerNotMember { .. }
            | E::NoRoute(_)
            | E::SlippageExceeded(_)
            | E::QuoteExpired
            | E::BadQuote(_) => Self::unprocessable(code, detail),
            E::UnknownMarket(_) | E::UnknownOrder => Self::not_found(code, detail),
            E::MarketExists(_) | E::MarketLimit { .. } | E::OrderClosed => {
                Self::conflict(code, detail)
            }
            E::MarketUnavailable => Self::Unavailable(detail),
            E::Invariant(_) => Self::Internal(detail),
            E::Ledger(ledger) => ledger.into(),
        }
    }
}
