//! Names: handles, addresses, registry ids and currency codes.

use std::fmt;

use crate::DomainError;

fn is_handle_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')
}

/// A principal's handle: `[a-z0-9][a-z0-9_.-]{2,31}`. Users and businesses share one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bytes = raw.as_bytes();
        let valid_len = (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len());
        let valid_first = bytes
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if valid_len && valid_first && bytes.iter().all(|&c| is_handle_char(c)) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::BadHandle)
        }
    }

    /// The stricter rules for a handle being taken (sign-up, a new business): it may not end
    /// with punctuation, double it, or start with `registry`, so a new name cannot pass for
    /// an existing one (`bakery.`, `registry-fees`). Existing handles keep parsing as before.
    pub fn parse_new(raw: &str) -> Result<Self, DomainError> {
        let handle = Self::parse(raw)?;
        let bytes = raw.as_bytes();
        let punct = |c: &u8| matches!(c, b'_' | b'.' | b'-');
        let ends_well = bytes.last().is_some_and(|c| !punct(c));
        let doubled = bytes.windows(2).any(|w| punct(&w[0]) && punct(&w[1]));
        if !ends_well || doubled || raw.starts_with("registry") {
            return Err(DomainError::LookAlikeHandle);
        }
        Ok(handle)
    }

    /// Accepts a bare handle or a full address of `registry`, as the API does wherever a
    /// handle is expected. An address of another registry is refused rather than ignored.
    pub fn parse_local(raw: &str, registry: &RegistryId) -> Result<Self, DomainError> {
        if raw.contains('@') {
            let address = Address::parse(raw)?;
            if &address.registry != registry {
                return Err(DomainError::ForeignRegistry(address.registry.0));
            }
            Ok(address.handle)
        } else {
            Self::parse(raw)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn address(&self, registry: &RegistryId) -> Address {
        Address {
            handle: self.clone(),
            registry: registry.clone(),
        }
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a deployment's registry, the part after `@` in an address (default `local`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryId(String);

impl RegistryId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bytes = raw.as_bytes();
        if (1..=63).contains(&bytes.len()) && bytes.iter().all(|&c| is_handle_char(c)) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::BadRegistry)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RegistryId {
    fn default() -> Self {
        Self("local".to_owned())
    }
}

impl fmt::Display for RegistryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `handle@registry`: how a principal is named across registries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub handle: Handle,
    pub registry: RegistryId,
}

impl Address {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let (handle, registry) = raw.split_once('@').ok_or(DomainError::BadAddress)?;
        Ok(Self {
            handle: Handle::parse(handle)?,
            registry: RegistryId::parse(registry)?,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.handle, self.registry)
    }
}

/// A currency code: `[A-Z][A-Z0-9]{1,11}`, e.g. `BREAD`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurrencyCode(String);

impl CurrencyCode {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bytes = raw.as_bytes();
        let valid = (2..=12).contains(&bytes.len())
            && bytes[0].is_ascii_uppercase()
            && bytes
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::BadCurrencyCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stricter rule for a code being taken: not an ISO 4217 code or a well-known
    /// currency's ticker, which a store currency must not pass for.
    pub fn parse_new(raw: &str) -> Result<Self, DomainError> {
        let code = Self::parse(raw)?;
        if RESERVED_CODES.contains(&raw) {
            return Err(DomainError::ReservedCurrencyCode);
        }
        Ok(code)
    }
}

/// ISO 4217 codes (current and common historic ones, and the X-codes for metals and
/// special units) and the tickers of well-known crypto-currencies.
const RESERVED_CODES: &[&str] = &[
    "ADA", "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD",
    "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BNB", "BOB", "BOV", "BRL", "BSD", "BTC", "BTN",
    "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU",
    "CRC", "CUC", "CUP", "CVE", "CZK", "DAI", "DEM", "DJF", "DKK", "DOGE", "DOP", "DOT", "DZD",
    "EGP", "ERN", "ETB", "ETH", "EUR", "FJD", "FKP", "FRF", "GBP", "GEL", "GHS", "GIP", "GMD",
    "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK",
    "ITL", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LTC", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT",
    "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK",
    "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOL", "SOS",
    "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD",
    "TWD", "TZS", "UAH", "UGX", "USD", "USDC", "USDT", "USN", "UYI", "UYU", "UYW", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XDR",
    "XLM", "XMR", "XOF", "XPD", "XPF", "XPT", "XRP", "XSU", "XTS", "XUA", "XXX", "YER", "ZAR",
    "ZMW", "ZWL",
];

/// A character that changes how text around it reads without showing itself: bidirectional
/// controls (U+202E turns `gpj.exe` into `exe.jpg`), zero-width characters, the soft hyphen.
/// Names and memos refuse them along with control characters.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The unit of account a currency is redeemable in (`EUR` by default); same syntax as a code.
pub type UnitCode = CurrencyCode;

/// What kind of principal owns an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    User,
    Business,
    /// The registry's own principal (handle `registry`), which collects fees.
    Registry,
}

impl PrincipalKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Business => "business",
            Self::Registry => "registry",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(Self::User),
            "business" => Some(Self::Business),
            "registry" => Some(Self::Registry),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn new_names_cannot_pass_for_others() {
        use super::{CurrencyCode, Handle, is_invisible};
        for bad in [
            "bakery.",
            "bakery-",
            "ba..kery",
            "registry",
            "registry-fees",
            "registry2",
        ] {
            assert!(Handle::parse_new(bad).is_err(), "{bad}");
        }
        for good in ["bakery", "rosas.bakery", "bake-r2", "reg1stry"] {
            assert!(Handle::parse_new(good).is_ok(), "{good}");
        }
        assert!(
            Handle::parse("bakery.").is_ok(),
            "existing handles still parse"
        );
        for bad in ["USD", "EUR", "BTC", "USDT"] {
            assert!(CurrencyCode::parse_new(bad).is_err(), "{bad}");
        }
        assert!(CurrencyCode::parse_new("BREAD").is_ok());
        assert!(is_invisible('\u{202E}') && is_invisible('\u{200B}') && is_invisible('\n'));
        assert!(!is_invisible('é') && !is_invisible('€') && !is_invisible(' '));
    }

    use super::*;

    #[test]
    fn handles_follow_the_api_grammar() {
        for ok in ["abc", "bob", "a.b-c_d", "0shop", &"x".repeat(32)] {
            assert!(Handle::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "Bob",
            "_abc",
            ".abc",
            "ab c",
            "bób",
            "abc@",
            &"x".repeat(33),
            "émile",
        ] {
            assert_eq!(Handle::parse(bad), Err(DomainError::BadHandle), "{bad}");
        }
    }

    #[test]
    fn addresses_are_accepted_where_handles_are() {
        let local = RegistryId::default();
        assert_eq!(
            Handle::parse_local("bob@local", &local).map(|h| h.to_string()),
            Ok("bob".to_owned())
        );
        assert_eq!(
            Handle::parse_local("bob@elsewhere", &local),
            Err(DomainError::ForeignRegistry("elsewhere".into()))
        );
        assert_eq!(
            Handle::parse_local("bob@", &local),
            Err(DomainError::BadRegistry)
        );
        assert_eq!(
            Address::parse("bob@local").map(|a| a.to_string()),
            Ok("bob@local".into())
        );
    }

    #[test]
    fn currency_codes_follow_the_api_grammar() {
        for ok in ["EUR", "BREAD", "B2", "ABCDEFGHIJKL"] {
            assert!(CurrencyCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "E", "eur", "2EUR", "ABCDEFGHIJKLM", "EU R", "EUR-"] {
            assert_eq!(
                CurrencyCode::parse(bad),
                Err(DomainError::BadCurrencyCode),
                "{bad}"
            );
        }
    }
}
