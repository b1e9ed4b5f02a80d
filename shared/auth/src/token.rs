use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Not before: refused until then (checked; equal to `iat` in the tokens issued here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    exp: u64,
    /// The session the token was issued in (absent in tokens from before sessions): a token
    /// of a session that ended (logout, reuse of its refresh token) is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<i64>,
}

/// What a valid token says: who it speaks for, and in which session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: PrincipalId,
    pub handle: Handle,
    pub session_id: Option<i64>,
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

    /// A signed token for the principal in `session_id`, valid for the issuer's lifetime.
    pub fn issue(
        &self,
        principal: PrincipalId,
        handle: &Handle,
        session_id: Option<i64>,
    ) -> Result<String, String> {
        let iat = now_s();
        let claims = Claims {
            sub: principal.to_string(),
            handle: handle.to_string(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            nbf: Some(iat),
            exp: iat + self.ttl_s,
            sid: session_id,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(|e| format!("cannot sign a token: {e}"))
    }
}

/// Tokens whose signature was checked, with what they say, so a client's next requests with
/// the same token skip the Ed25519 verification (the largest CPU cost of a request).
/// Keyed by the whole token: only a token that passed full verification is ever stored, and
/// its expiry is checked again at every use.
type Verified = HashMap<String, (Subject, u64)>;

/// Most tokens remembered; beyond this the memory is cleared and refilled (a bound on memory
/// under a flood of distinct valid tokens, not an eviction policy worth more).
const VERIFIED_CAPACITY: usize = 16_384;

/// Checks access tokens: signature (EdDSA only), expiry, not-before, issuer and audience.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    verified: Arc<Mutex<Verified>>,
    /// Principals seen to exist under the handle their token names. Principals are never
    /// deleted or renamed, so a pair once seen stays true; bounded like `verified`.
    live: Arc<Mutex<HashMap<PrincipalId, Handle>>>,
    /// Sessions seen live, and when: a session can end (logout), so it is read again once
    /// [`SESSION_RECHECK`] has passed; a logout in this process forgets it at once.
    sessions: Arc<Mutex<HashMap<i64, SessionSeen>>>,
}

/// What this process knows of a session.
#[derive(Debug, Clone, Copy)]
enum SessionSeen {
    /// Read live from the database at this instant.
    Live(Instant),
    /// Ended (here, or announced by another process): never cached live again, even by a
    /// request that read it live just before it ended.
    Ended,
}

/// Longest a token of an ended session still works in another process than the one that
/// ended it (this one forgets it at once).
pub const SESSION_RECHECK: Duration = Duration::from_secs(5);

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
        validation.validate_nbf = true;
        Ok(Self {
            key,
            validation,
            verified: Arc::default(),
            live: Arc::default(),
            sessions: Arc::default(),
        })
    }

    /// Whether the session was seen live less than [`SESSION_RECHECK`] ago.
    pub fn session_known_live(&self, session_id: i64) -> bool {
        self.sessions.lock().is_ok_and(|sessions| {
            matches!(sessions.get(&session_id), Some(SessionSeen::Live(seen)) if seen.elapsed() < SESSION_RECHECK)
        })
    }

    /// Whether the session is known to have ended.
    pub fn session_known_ended(&self, session_id: i64) -> bool {
        self.sessions
            .lock()
            .is_ok_and(|sessions| matches!(sessions.get(&session_id), Some(SessionSeen::Ended)))
    }

    /// Records that the session is live now (read from the database), unless it ended since.
    pub fn confirm_session(&self, session_id: i64) {
        if let Ok(mut sessions) = self.sessions.lock() {
            if sessions.len() >= VERIFIED_CAPACITY {
                // Past the bound the database is asked again: it knows which sessions ended.
                sessions.clear();
            }
            let seen = sessions
                .entry(session_id)
                .or_insert(SessionSeen::Live(Instant::now()));
            if let SessionSeen::Live(at) = seen {
                *at = Instant::now();
            }
        }
    }

    /// Marks a session ended (here or elsewhere), so its tokens are refused from now on.
    pub fn forget_session(&self, session_id: i64) {
        if let Ok(mut sessions) = self.sessions.lock() {
            if sessions.len() >= VERIFIED_CAPACITY {
                sessions.clear();
            }
            sessions.insert(session_id, SessionSeen::Ended);
        }
    }

    /// Whether this principal was already seen to exist under this handle.
    pub fn known_live(&self, id: PrincipalId, handle: &Handle) -> bool {
        self.live
            .lock()
            .is_ok_and(|live| live.get(&id) == Some(handle))
    }

    /// Records that the principal exists under this handle (read from the database).
    pub fn confirm_live(&self, id: PrincipalId, handle: Handle) {
        if let Ok(mut live) = self.live.lock() {
            if live.len() >= VERIFIED_CAPACITY {
                live.clear();
            }
            live.insert(id, handle);
        }
    }

    /// The principal the token speaks for, or why it is not accepted.
    pub fn verify(&self, token: &str) -> Result<Subject, String> {
        let now = now_s();
        let leeway = self.validation.leeway;
        if let Some((subject, exp)) = self.remembered(token)
            && exp + leeway > now
        {
            return Ok(subject);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| refusal(e.kind()).to_owned())?;
        let id = data
            .claims
            .sub
            .parse::<i64>()
            .map_err(|_| "invalid token subject".to_owned())?;
        let handle = Handle::parse(&data.claims.handle).map_err(|e| e.to_string())?;
        let subject = Subject {
            id: PrincipalId::new(id),
            handle,
            session_id: data.claims.sid,
        };
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
            verified.insert(token.to_owned(), (subject.clone(), data.claims.exp));
        }
        Ok(subject)
    }

    fn remembered(&self, token: &str) -> Option<(Subject, u64)> {
        let verified = self.verified.lock().ok()?;
        verified.get(token).cloned()
    }
}

/// Why a token is refused, in words for the client. The library's own messages name its
/// internals (its parsers, the algorithms it knows), which tell a prober more than a client
/// needs.
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired; log in again",
        ErrorKind::ImmatureSignature => "the token is not valid yet",
        ErrorKind::InvalidSignature => "the token's signature does not verify",
        ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => {
            "the token was not issued for this service"
        }
        _ => "not a valid access token",
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
        let token = issuer
            .issue(PrincipalId::new(7), &handle, Some(3))
            .expect("signed");
        assert_eq!(
            verifier.verify(&token),
            Ok(Subject {
                id: PrincipalId::new(7),
                handle: handle.clone(),
                session_id: Some(3),
            })
        );

        let _ = std::fs::remove_dir_all(&dir);
        let other = crate::load_or_create_keys(&dir).expect("other keys");
        let other_verifier = TokenVerifier::new(&other.public_pem).expect("verifier");
        assert!(other_verifier.verify(&token).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_remembered_token_is_trusted_only_as_itself_and_until_it_expires() {
        let dir = std::env::temp_dir().join(format!("scrip-keys-memo-{}", std::process::id()));
        let keys = crate::load_or_create_keys(&dir).expect("keys");
        let issuer = TokenIssuer::new(&keys, 60).expect("issuer");
        let verifier = TokenVerifier::new(&keys.public_pem).expect("verifier");
        let handle = Handle::parse("alice").expect("handle");
        let token = issuer
            .issue(PrincipalId::new(7), &handle, None)
            .expect("signed");
        let expected = Ok(Subject {
            id: PrincipalId::new(7),
            handle: handle.clone(),
            session_id: None,
        });
        assert_eq!(verifier.verify(&token), expected);
        assert_eq!(verifier.verify(&token), expected, "remembered");
        assert_eq!(
            verifier.clone().verify(&token),
            expected,
            "clones share what they remember"
        );

        // A token one character off is verified (and refused), not matched to the original.
        let mut tampered = token.clone();
        let last = tampered.pop().expect("non-empty");
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(verifier.verify(&tampered).is_err());

        // A remembered token past its expiry (and leeway) is verified again: refused here.
        let subject = |id, handle| Subject {
            id: PrincipalId::new(id),
            handle,
            session_id: None,
        };
        verifier
            .verified
            .lock()
            .expect("lock")
            .insert(token.clone(), (subject(7, handle), 1));
        let fresh = TokenVerifier::new(&keys.public_pem).expect("verifier");
        fresh.verified.lock().expect("lock").insert(
            "not.a.token".into(),
            (subject(8, Handle::parse("bob").expect("handle")), 1),
        );
        assert!(
            fresh.verify("not.a.token").is_err(),
            "expired entries are not trusted"
        );
        assert_eq!(
            verifier.verify(&token),
            expected,
            "an expired entry is replaced by a full verification of a valid token"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
