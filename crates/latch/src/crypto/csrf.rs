//! Double-submit CSRF tokens compatible with Kratos (nosurf).
//!
//! The browser holds a random 32-byte "real" token in a cookie (standard
//! base64, 44 chars). Forms and flows carry masked copies: a fresh 32-byte
//! one-time pad followed by the token XOR the pad (88 chars), so every
//! response shows a different value for the same cookie.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of the real token. nosurf: `tokenLength`.
pub const TOKEN_LEN: usize = 32;

/// `Max-Age` Kratos gives the CSRF cookie (365 days). nosurf: `MaxAge`.
pub const COOKIE_MAX_AGE_SECS: i64 = 31_536_000;

/// Standard alphabet with padding, tolerant of non-zero trailing bits like
/// Go's `base64.StdEncoding`.
const STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// A fresh random real token for a new CSRF cookie. nosurf: `generateToken`.
pub fn new_cookie_token() -> [u8; TOKEN_LEN] {
    let mut token = [0u8; TOKEN_LEN];
    rand::fill(&mut token);
    token
}

/// The cookie value for a real token (standard base64, 44 chars).
/// nosurf: `b64encode(realToken)`.
pub fn encode_cookie(token: &[u8; TOKEN_LEN]) -> String {
    STD.encode(token)
}

/// Parses a cookie value; `None` unless it is base64 of exactly 32 bytes
/// (then a new cookie must be issued). nosurf: `b64decode` + length check.
pub fn decode_cookie(value: &str) -> Option<[u8; TOKEN_LEN]> {
    STD.decode(value).ok()?.try_into().ok()
}

/// A freshly masked copy of the real token for forms/flows (88 chars).
/// nosurf: `maskToken` (via `nosurf.Token`); Kratos: `GenerateCSRFToken`.
pub fn mask(real: &[u8; TOKEN_LEN]) -> String {
    let mut key = [0u8; TOKEN_LEN];
    rand::fill(&mut key);
    let mut out = Vec::with_capacity(2 * TOKEN_LEN);
    out.extend_from_slice(&key);
    out.extend(real.iter().zip(key.iter()).map(|(r, k)| r ^ k));
    STD.encode(out)
}

/// Recovers the real token from a masked (88-char) or raw (44-char) token;
/// `None` for anything else. nosurf: `unmaskToken`.
pub fn unmask(sent: &str) -> Option<[u8; TOKEN_LEN]> {
    let bytes = STD.decode(sent.trim()).ok()?;
    match bytes.len() {
        TOKEN_LEN => bytes.try_into().ok(),
        n if n == 2 * TOKEN_LEN => {
            let (key, masked) = bytes.split_at(TOKEN_LEN);
            let mut real = [0u8; TOKEN_LEN];
            for ((r, m), k) in real.iter_mut().zip(masked).zip(key) {
                *r = m ^ k;
            }
            Some(real)
        }
        _ => None,
    }
}

/// Whether a submitted token (masked or raw) carries the cookie's real
/// token, compared in constant time. nosurf: `verifyToken`.
pub fn verify(real: &[u8; TOKEN_LEN], sent: &str) -> bool {
    unmask(sent).is_some_and(|s| bool::from(real.ct_eq(&s)))
}

/// Whether two tokens, each masked or raw, carry the same real token (as
/// Kratos compares a token derived from the cookie with the one stored in a
/// flow). nosurf: `VerifyToken`.
pub fn tokens_match(a: &str, b: &str) -> bool {
    match (unmask(a), unmask(b)) {
        (Some(a), Some(b)) => bool::from(a.ct_eq(&b)),
        _ => false,
    }
}

/// Name of the CSRF cookie: `csrf_token_` + lower-hex SHA-256 of the
/// configured public base URL exactly as given (trailing slash matters).
/// Kratos: `nosurfx` cookie name from `SelfPublicURL().String()`.
pub fn cookie_name(public_base_url: &str) -> String {
    let digest = Sha256::digest(public_base_url.as_bytes());
    let mut name = String::with_capacity(11 + 64);
    name.push_str("csrf_token_");
    for b in digest.iter() {
        name.push(hex_digit(b >> 4));
        name.push(hex_digit(b & 0x0f));
    }
    name
}

fn hex_digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn cookie_name_vector() {
        assert_eq!(
            cookie_name("http://127.0.0.1:4433/"),
            "csrf_token_806060ca5bf70dff3caa0e5c860002aade9d470a5a4dce73bcfa7ba10778f481"
        );
        assert_ne!(
            cookie_name("http://127.0.0.1:4433"),
            cookie_name("http://127.0.0.1:4433/")
        );
    }

    #[test]
    fn cookie_round_trip() {
        let t = new_cookie_token();
        let c = encode_cookie(&t);
        assert_eq!(c.len(), 44);
        assert!(c.ends_with('='));
        assert_eq!(decode_cookie(&c), Some(t));
        assert_eq!(decode_cookie("short"), None);
        assert_eq!(decode_cookie(&STD.encode([0u8; 31])), None);
        assert_ne!(new_cookie_token(), t);
    }

    #[test]
    fn masks_differ_and_verify() {
        let real = new_cookie_token();
        let a = mask(&real);
        let b = mask(&real);
        assert_eq!(a.len(), 88);
        assert_ne!(a, b);
        assert!(verify(&real, &a));
        assert!(verify(&real, &b));
        assert_eq!(unmask(&a), Some(real));
        assert!(verify(&real, &encode_cookie(&real)));
        assert!(tokens_match(&a, &b));
        assert!(tokens_match(&a, &encode_cookie(&real)));

        let other = new_cookie_token();
        assert!(!verify(&other, &a));
        assert!(!tokens_match(&a, &mask(&other)));
    }

    #[test]
    fn rejects_garbage() {
        let real = new_cookie_token();
        assert!(!verify(&real, ""));
        assert!(!verify(&real, "not base64!"));
        assert!(!verify(&real, &STD.encode([1u8; 48])));
        let mut tampered = mask(&real).into_bytes();
        if let Some(c) = tampered.get_mut(60) {
            *c = if *c == b'A' { b'B' } else { b'A' };
        }
        assert!(!verify(&real, &String::from_utf8(tampered).unwrap()));
        assert!(!tokens_match("x", "x"));
    }

    #[test]
    fn known_mask_decodes() {
        // key = 0x01.., real = 0x02.. → masked half = 0x03..
        let mut bytes = vec![1u8; 32];
        bytes.extend([3u8; 32]);
        assert_eq!(unmask(&STD.encode(&bytes)), Some([2u8; 32]));
    }
}
