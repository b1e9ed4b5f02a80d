//! The token signing key. Embedded mode generates an Ed25519 key pair on first start and keeps
//! it in the data directory; production supplies the PEM files by configuration.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rand_core::OsRng;

const PRIVATE_FILE: &str = "jwt-ed25519-private.pem";
const PUBLIC_FILE: &str = "jwt-ed25519-public.pem";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the generated key: {0}")]
    Encode(String),
    #[error("the key in {path} is not a valid Ed25519 PEM key: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// PEM-encoded Ed25519 keys (PKCS#8 private, SPKI public).
#[derive(Clone)]
pub struct KeyPair {
    pub private_pem: String,
    pub public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPair { private: <redacted>, public: .. }")
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads the key pair from `dir`, generating and storing a new one when there is none.
pub fn load_or_create_keys(dir: &Path) -> Result<KeyPair, KeyError> {
    let private_path = dir.join(PRIVATE_FILE);
    let public_path = dir.join(PUBLIC_FILE);
    if private_path.exists() {
        // The public key is derived, not trusted from its file: a crash between the two writes
        // or a mismatched file must not leave a server whose every token fails.
        let private_pem = std::fs::read_to_string(&private_path).map_err(io(&private_path))?;
        let signing = SigningKey::from_pkcs8_pem(&private_pem).map_err(|e| KeyError::Invalid {
            path: private_path.clone(),
            reason: e.to_string(),
        })?;
        let public_pem = public_pem_of(&signing)?;
        if std::fs::read_to_string(&public_path).ok().as_deref() != Some(public_pem.as_str()) {
            std::fs::write(&public_path, &public_pem).map_err(io(&public_path))?;
        }
        return Ok(KeyPair {
            private_pem,
            public_pem,
        });
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let signing = SigningKey::generate(&mut OsRng);
    let private_pem = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))?
        .to_string();
    let public_pem = public_pem_of(&signing)?;
    write_private(&private_path, &private_pem)?;
    std::fs::write(&public_path, &public_pem).map_err(io(&public_path))?;
    tracing::info!(path = %private_path.display(), "generated a new token signing key");
    Ok(KeyPair {
        private_pem,
        public_pem,
    })
}

fn public_pem_of(signing: &SigningKey) -> Result<String, KeyError> {
    signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))
}

/// A verifying service needs only the public key.
pub fn load_public_key(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(io(path))
}

fn write_private(path: &Path, pem: &str) -> Result<(), KeyError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(pem.as_bytes()).map_err(io(path))
}
