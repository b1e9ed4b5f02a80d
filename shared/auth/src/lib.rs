//! Identity and access for every Scrip service.
//!
//! - [`password`]: argon2id hashing (call it from a blocking thread: it is deliberately slow);
//! - [`TokenIssuer`] / [`TokenVerifier`]: EdDSA-signed JWT access tokens with `exp`, `iss` and
//!   `aud` checked; only the gateway holds the private key, every service can verify;
//! - [`Caller`]: the actix extractor that makes "who is calling" part of a handler's signature;
//! - [`access`]: credentials, registry roles and business memberships in the database;
//! - [`invitations`]: memberships offered and not yet accepted;
//! - [`revocation`]: ended sessions announced to every process.

pub mod access;
mod caller;
pub mod guard;
pub mod invitations;
mod keys;
pub mod password;
pub mod revocation;
pub mod sessions;
mod token;

pub use caller::{
    CSRF_HEADER, Caller, REFRESH_COOKIE, SESSION_COOKIE, require_csrf_header, same_origin,
};
pub use keys::{KeyError, KeyPair, load_or_create_keys, load_public_key};
pub use token::{AUDIENCE, ISSUER, SESSION_RECHECK, Subject, TokenIssuer, TokenVerifier};
