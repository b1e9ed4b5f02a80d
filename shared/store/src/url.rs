use std::fmt;

use crate::StoreError;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A parsed `DATABASE_URL`: `postgres://...` or `sqlite://PATH`.
///
/// The scheme decides the backend explicitly; diesel's own `MultiConnection::establish`
/// would try each backend in turn, and SQLite accepts any string as a file name.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    /// What the backend's driver is given: the full URL for PostgreSQL, the path for SQLite.
    target: String,
    /// The URL as configured (may contain a password: never log it; `Debug` redacts it).
    raw: String,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self {
                backend: Backend::Postgres,
                target: raw.to_owned(),
                raw: raw.to_owned(),
            });
        }
        match raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            Some(path) if !path.is_empty() => Ok(Self {
                backend: Backend::Sqlite,
                target: path.to_owned(),
                raw: raw.to_owned(),
            }),
            _ => Err(StoreError::BadUrl(raw.to_owned())),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL as configured, to hand to another process. May contain credentials.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub(crate) fn target(&self) -> &str {
        &self.target
    }
}

impl fmt::Debug for DatabaseUrl {
    /// Never prints a password that may be embedded in a PostgreSQL URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.backend {
            Backend::Sqlite => write!(f, "sqlite://{}", self.target),
            Backend::Postgres => {
                let host = self.target.rsplit('@').next().unwrap_or_default();
                write!(f, "postgres://…@{host}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_picks_the_backend() {
        let pg = DatabaseUrl::parse("postgres://postgres@127.0.0.1/test").expect("pg");
        assert_eq!(pg.backend(), Backend::Postgres);
        let lite = DatabaseUrl::parse("sqlite://./data/scrip.db").expect("sqlite");
        assert_eq!(
            (lite.backend(), lite.target()),
            (Backend::Sqlite, "./data/scrip.db")
        );
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("./scrip.db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn debug_hides_credentials() {
        let pg = DatabaseUrl::parse("postgres://u:secret@db:5432/x").expect("pg");
        assert!(!format!("{pg:?}").contains("secret"));
    }
}
