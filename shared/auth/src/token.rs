use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use scrip_domain::{Handle, PrincipalId};
use serde::{Deserialize, Serialize};

use crate::KeyPair;
use crate::keys::KeyError;

pub const ISSUER: &str = "scrip-gateway";
pub const AUDIENCE: &str = "scrip-api";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    handle: String,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Signs access tokens; held by the gateway only.
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
    ttl_s: u64,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenIssuer {{ ttl_s: {} }}", self.ttl_s)
    }
}

impl TokenIssuer {
    pub fn new(keys: &KeyPair, ttl_s: u64) -> Result<Self, KeyError> {
        let key = EncodingKey::from_ed_pem(keys.private_pem.as_bytes()).map_err(|e| {
            KeyError::Invalid {
                path: "private key".into(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self { key, ttl_s })
    }

    pub fn ttl_s(&self) -> u64 {
        self.ttl_s
    }

    /// A signed token for the principal, valid for the issuer's lifetime from now.
    pub fn issue(&self, principal: PrincipalId, handle: &Handle) -> Result<String, String> {
        let iat = now_s();
        let claims = Claims {
            sub: principal.to_string(),
            handle: handle.to_string(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            exp: iat + self.ttl_s,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(|e| format!("cannot sign a token: {e}"))
    }
}

/// Checks access tokens: signature (EdDSA only), expiry, issuer and audience.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier")
    }
}

impl TokenVerifier {
    pub fn new(public_pem: &str) -> Result<Self, KeyError> {
        let key =
            DecodingKey::from_ed_pem(public_pem.as_bytes()).map_err(|e| KeyError::Invalid {
                path: "public key".into(),
                reason: e.to_string(),
            })?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self { key, validation })
    }

    /// The principal the token speaks for, or why it is not accepted.
    pub fn verify(&self, token: &str) -> Result<(PrincipalId, Handle), String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| format!("invalid token: {e}"))?;
        let id = data
            .claims
            .sub
            .parse::<i64>()
            .map_err(|_| "invalid token subject".to_owned())?;
        let handle = Handle::parse(&data.claims.handle).map_err(|e| e.to_string())?;
        Ok((PrincipalId::new(id), handle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_another_key_is_refused() {
        let dir = std::env::temp_dir().join(format!("scrip-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = crate::load_or_create_keys(&dir).expect("keys");
        let again = crate::load_or_create_keys(&dir).expect("same keys");
        assert_eq!(
            keys.public_pem, again.public_pem,
            "the key is kept, not regenerated"
        );
        let issuer = TokenIssuer::new(&keys, 60).expect("issuer");
        let verifier = TokenVerifier::new(&keys.public_pem).expect("verifier");
        let handle = Handle::parse("alice").expect("handle");
        let token = issuer.issue(PrincipalId::new(7), &handle).expect("signed");
        assert_eq!(
            verifier.verify(&token),
            Ok((PrincipalId::new(7), handle.clone()))
        );

        let _ = std::fs::remove_dir_all(&dir);
        let other = crate::load_or_create_keys(&dir).expect("other keys");
        let other_verifier = TokenVerifier::new(&other.public_pem).expect("verifier");
        assert!(other_verifier.verify(&token).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
