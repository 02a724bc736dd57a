//! Backup codes: generation, the stored (hashed) credential config and its import from
//! Kratos. Kratos: `identity/credentials_lookup.go`, `selfservice/strategy/lookup/settings.go`.
//!
//! Kratos stores the codes themselves (`{"recovery_codes":[{"code","used_at"}]}`); Latch
//! stores a hash of each (`{"recovery_codes":[{"code_hash","used_at"}]}`), so a database dump
//! does not reveal codes (NIST SP 800-63B §5.1.2.2). New codes carry about 83 bits (16
//! characters of `[a-z0-9]`, Kratos' 8 carry 41), so a SHA-256 of each resists offline
//! guessing without a key that secret rotation would invalidate; codes imported from Kratos
//! (41 bits) are hashed with the password hasher instead.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::crypto::sha256_hex;

/// Codes per set (Kratos' `numCodes`).
pub const COUNT: usize = 12;
/// Characters per new code: 16 of `[a-z0-9]`, about 83 bits (Kratos: 8, about 41).
pub const LEN: usize = 16;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `COUNT` new codes of `LEN` characters of `[a-z0-9]`, drawn without modulo bias.
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let mut out = String::with_capacity(LEN);
            while out.len() < LEN {
                for b in crate::crypto::random_bytes(16) {
                    // 252 = 7 × 36: larger bytes are dropped so each character is uniform.
                    if b < 252 && out.len() < LEN {
                        out.push(char::from(ALPHABET[usize::from(b % 36)]));
                    }
                }
            }
            out
        })
        .collect()
}

/// The code as people type it: surrounding and inner spaces and dashes dropped, lower case.
pub fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The stored hash of a new (high-entropy) code: SHA-256 of the normalized code.
pub fn hash(code: &str) -> String {
    sha256_hex(format!("latch lookup secret\0{}", normalize(code)).as_bytes())
}

/// One stored code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Hex keyed hash of the code.
    pub code_hash: String,
    /// When it was used, if it was.
    pub used_at: Option<OffsetDateTime>,
}

fn time_of(v: Option<&Value>) -> Option<OffsetDateTime> {
    let s = v?.as_str()?;
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    // Go's zero time (`0001-01-01T00:00:00Z`) means "not used", as in Kratos exports.
    (t.year() > 1).then_some(t)
}

/// The stored codes of a credential config.
pub fn stored(config: &Value) -> Vec<Stored> {
    config
        .get("recovery_codes")
        .and_then(Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .filter_map(|c| {
                    Some(Stored {
                        code_hash: c.get("code_hash")?.as_str()?.to_string(),
                        used_at: time_of(c.get("used_at")),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The credential config for `codes`.
pub fn config_of(codes: &[Stored]) -> Value {
    let list: Vec<Value> = codes
        .iter()
        .map(|c| {
            json!({
                "code_hash": c.code_hash,
                "used_at": c.used_at.and_then(|t| t.format(&Rfc3339).ok()),
            })
        })
        .collect();
    json!({ "recovery_codes": list })
}

/// One entry of an imported config: a plain code (Kratos export) or a hash (Latch export).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportedCode {
    /// A plain code, to be hashed before it is stored.
    Plain(String),
    /// A stored hash, kept.
    Hashed(String),
}

/// A Kratos export (`{"recovery_codes":[{"code","used_at"}]}`, codes in plain text) or a
/// Latch one (`code_hash`); `Err` names what is wrong.
pub fn parse_import(config: &Value) -> Result<Vec<(ImportedCode, Option<OffsetDateTime>)>, String> {
    let Some(list) = config.get("recovery_codes").and_then(Value::as_array) else {
        return Err("credentials.lookup_secret.config.recovery_codes must be a list".into());
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let used_at = time_of(c.get("used_at"));
        if let Some(h) = c.get("code_hash").and_then(Value::as_str).filter(|h| !h.is_empty()) {
            out.push((ImportedCode::Hashed(h.to_string()), used_at));
            continue;
        }
        let code = c.get("code").and_then(Value::as_str).map(normalize).unwrap_or_default();
        if code.is_empty() {
            return Err(format!(
                "credentials.lookup_secret.config.recovery_codes[{i}].code must be a non-empty string"
            ));
        }
        out.push((ImportedCode::Plain(code), used_at));
    }
    if out.is_empty() {
        return Err("credentials.lookup_secret.config.recovery_codes is empty".into());
    }
    Ok(out)
}

/// Whether a stored hash is a password-hasher (PHC/MCF) string, as imported codes are stored,
/// rather than a keyed hash.
pub fn is_password_hash(h: &str) -> bool {
    h.starts_with('$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_twelve_distinct_lowercase_alphanumerics() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        for c in &codes {
            assert_eq!(c.len(), LEN);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)), "{c}");
        }
        let mut d = codes.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), COUNT);
    }

    #[test]
    fn hashes_are_normalized() {
        assert_eq!(hash("abcd1234"), hash(" ABCD-1234 "));
        assert_ne!(hash("abcd1234"), hash("abcd1235"));
        assert_eq!(hash("x").len(), 64);
    }

    #[test]
    fn kratos_exports_parse_with_used_at() {
        let cfg = json!({"recovery_codes": [
            {"code": "AAAA1111", "used_at": null},
            {"code": "bbbb2222", "used_at": "2024-05-06T07:08:09Z"},
            {"code": "cccc3333", "used_at": "0001-01-01T00:00:00Z"},
            {"code_hash": "$argon2id$x", "used_at": null},
        ]});
        let s = parse_import(&cfg).unwrap();
        assert_eq!(s[0], (ImportedCode::Plain("aaaa1111".into()), None));
        assert!(s[1].1.is_some() && s[2].1.is_none());
        assert_eq!(s[3].0, ImportedCode::Hashed("$argon2id$x".into()));
        assert!(parse_import(&json!({"recovery_codes": [{"code": ""}]})).is_err());
        assert!(parse_import(&json!({"recovery_codes": []})).is_err());
        assert!(parse_import(&json!({})).is_err());
        let st = vec![Stored {
            code_hash: hash("aaaa1111"),
            used_at: None,
        }];
        assert_eq!(stored(&config_of(&st)), st);
    }
}
