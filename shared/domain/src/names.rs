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
