//! Opaque, tamper-proof, encrypted cookie values (the session cookie).
//!
//! Format: URL-safe base64 without padding of
//! `version (1 byte) ‖ nonce (24 bytes) ‖ XChaCha20-Poly1305 ciphertext+tag`,
//! with the version byte as associated data. Keys are derived from the
//! configured secrets with HMAC-SHA256 under a fixed label; the first secret
//! seals, every secret opens (rotation).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LABEL: &[u8] = b"latch/seal/v1/cookie-encryption-key";
/// Cookies are at most a few KiB; refuse to decode anything larger.
const MAX_SEALED_LEN: usize = 16 * 1024;

/// Why a [`Sealer`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// No non-empty secret was given.
    #[error("at least one non-empty secret is required to seal cookies")]
    NoSecret,
}

/// Seals and opens cookie values with keys derived from rotating secrets.
/// Kratos counterpart: the gorilla `securecookie` codec behind
/// `secrets.cookie` (its format is not reproduced; clients never parse it).
#[derive(Clone)]
pub struct Sealer {
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("keys", &self.keys.len()).finish()
    }
}

fn derive_key(secret: &str) -> Option<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(KEY_LABEL);
    mac.finalize().into_bytes().as_slice().try_into().ok()
}

impl Sealer {
    /// Builds a sealer from secrets, newest first: the first seals, all open.
    /// Empty secrets are skipped; `SealError::NoSecret` if none remain.
    pub fn new(secrets: &[String]) -> Result<Self, SealError> {
        let keys: Vec<[u8; 32]> = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| derive_key(s))
            .collect();
        if keys.is_empty() {
            return Err(SealError::NoSecret);
        }
        Ok(Self { keys })
    }

    /// Encrypts and authenticates `payload` with the first secret and a
    /// random nonce. (Encryption can only fail for payloads of hundreds of
    /// GiB; such a value would come out as one that never opens.)
    pub fn seal(&self, payload: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let ciphertext = self
            .keys
            .first()
            .and_then(|key| {
                XChaCha20Poly1305::new(&(*key).into())
                    .encrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: payload,
                            aad: &[VERSION],
                        },
                    )
                    .ok()
            })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Decrypts a sealed value with any configured secret; `None` if it is
    /// malformed, of another version, tampered with, or sealed with an
    /// unknown secret.
    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > MAX_SEALED_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let (version, rest) = bytes.split_first()?;
        if *version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let nonce = XNonce::from(nonce);
        self.keys.iter().find_map(|key| {
            XChaCha20Poly1305::new(&(*key).into())
                .decrypt(
                    &nonce,
                    Payload {
                        msg: ciphertext,
                        aad: &[VERSION],
                    },
                )
                .ok()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn sealer(secrets: &[&str]) -> Sealer {
        Sealer::new(&secrets.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn round_trip() {
        let s = sealer(&["first-secret-0123456789abcdef"]);
        let payload = br#"{"session_token":"ory_st_x","expires_at":"2025-05-02T12:00:00Z"}"#;
        let a = s.seal(payload);
        let b = s.seal(payload);
        assert_ne!(a, b, "random nonce");
        assert!(!a.contains(['+', '/', '=']));
        assert_eq!(s.open(&a).as_deref(), Some(&payload[..]));
        assert_eq!(s.open(&b).as_deref(), Some(&payload[..]));
        assert_eq!(s.open(&s.seal(b"")).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn tamper_is_rejected() {
        let s = sealer(&["k"]);
        let sealed = s.seal(b"hello");
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 0x01;
            assert_eq!(s.open(&URL_SAFE_NO_PAD.encode(&raw)), None, "byte {i}");
            raw[i] ^= 0x01;
        }
        assert_eq!(s.open(&sealed[..sealed.len() - 2]), None);
        assert_eq!(s.open(""), None);
        assert_eq!(s.open("!!!"), None);
        assert_eq!(s.open(&"A".repeat(MAX_SEALED_LEN + 1)), None);
    }

    #[test]
    fn other_secret_is_rejected() {
        let sealed = sealer(&["one"]).seal(b"x");
        assert_eq!(sealer(&["two"]).open(&sealed), None);
    }

    #[test]
    fn rotation() {
        let old = sealer(&["old"]);
        let sealed_old = old.seal(b"payload");
        let rotated = sealer(&["new", "old"]);
        assert_eq!(rotated.open(&sealed_old).as_deref(), Some(&b"payload"[..]));
        let sealed_new = rotated.seal(b"payload");
        assert_eq!(old.open(&sealed_new), None, "new values use the first secret");
        assert_eq!(sealer(&["new"]).open(&sealed_new).as_deref(), Some(&b"payload"[..]));
    }

    #[test]
    fn needs_a_secret() {
        assert_eq!(Sealer::new(&[]).unwrap_err(), SealError::NoSecret);
        assert_eq!(Sealer::new(&[String::new()]).unwrap_err(), SealError::NoSecret);
        assert_eq!(format!("{:?}", sealer(&["a", "b"])), "Sealer { keys: 2 }");
    }
}
