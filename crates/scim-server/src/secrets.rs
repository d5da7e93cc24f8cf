//! Encryption at rest for the credentials of downstream applications.
//!
//! Credentials are sealed with XChaCha20-Poly1305 under a 32-byte key given
//! as base64 in `SCIM_SECRET_KEY` (`--secret-key`). The stored form is the
//! 24-byte random nonce followed by the ciphertext and tag. The tenant id and
//! application name are bound as associated data, so a sealed value copied
//! to another row does not open.
//!
//! Without a key the server refuses to store credentials (the API answers
//! 400) rather than keeping them in the clear or inventing a key that a
//! backup would separate from the data. Generate a key with
//! `head -c 32 /dev/urandom | base64`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::error::{Error, Result};

/// The nonce length of XChaCha20-Poly1305.
const NONCE_LEN: usize = 24;

/// The key that seals and opens credentials.
#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// The key from its base64 form (32 bytes once decoded).
    pub fn from_base64(text: &str) -> Result<Self> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| Error::Config("SCIM_SECRET_KEY is not valid base64".into()))?;
        if bytes.len() != 32 {
            return Err(Error::Config(format!(
                "SCIM_SECRET_KEY must decode to 32 bytes, not {}",
                bytes.len()
            )));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| Error::Config("SCIM_SECRET_KEY has the wrong length".into()))?;
        Ok(Self { cipher })
    }

    /// Seals `plain`, bound to `context` (authenticated, not encrypted).
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| Error::internal(format!("no randomness available: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .map_err(|_| Error::internal("sealing a credential failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`SecretKey::seal`] made with the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::internal("a stored credential is truncated"));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context,
                },
            )
            .map_err(|_| Error::internal("a stored credential does not open with SCIM_SECRET_KEY"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn seal_then_open_with_the_same_context() {
        let key = SecretKey::from_base64(KEY).unwrap();
        let a = key.seal(b"token", b"1/app").unwrap();
        let b = key.seal(b"token", b"1/app").unwrap();
        assert_ne!(a, b, "fresh nonce each time");
        assert!(!a.windows(5).any(|w| w == b"token"));
        assert_eq!(key.open(&a, b"1/app").unwrap(), b"token");
        assert!(key.open(&a, b"2/app").is_err());
        assert!(key.open(&a[..10], b"1/app").is_err());
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(SecretKey::from_base64("not base64!").is_err());
        assert!(SecretKey::from_base64("AAEC").is_err());
        assert!(format!("{:?}", SecretKey::from_base64(KEY).unwrap()).contains("redacted"));
    }
}
