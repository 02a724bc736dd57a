//! Password hashes imported from other systems, in the encodings Kratos accepts
//! (`hash/hash_comparator.go`): pbkdf2, scrypt, Firebase scrypt, salted and plain
//! md5/sha1/sha256/sha512, LDAP `{SSHA*}`, `$hmac-*`, md5-crypt and sha256/sha512-crypt.
//! bcrypt and argon2 are handled in [`super::password`]. Every format is parsed into
//! [`Imported`] first, so import-time validation and login-time verification share one
//! decoder and one set of cost bounds. Users are moved to argon2id at their first login.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{KeyInit, Mac};
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::password::HashError;

/// Most PBKDF2 work (iterations × output blocks) of a hash Latch evaluates. Kratos bounds
/// iterations at 10,000,000; the output length multiplies the work, so it is counted too.
pub const MAX_PBKDF2_WORK: u64 = 10_000_000;
/// Largest scrypt `N` of a plain scrypt hash (128 MiB at r = 8, as Kratos).
pub const MAX_SCRYPT_N: u64 = 1 << 17;
/// Largest scrypt `r`.
pub const MAX_SCRYPT_R: u64 = 8;
/// Largest scrypt `p` (runs serially: it multiplies CPU time).
pub const MAX_SCRYPT_P: u64 = 10;
/// Largest Firebase `mem_cost` (log2 N).
pub const MAX_FIREBASE_LOG_N: u64 = 17;
/// Most sha-crypt rounds (glibc default 5,000; Kratos' docs example 535,000).
pub const MAX_SHA_CRYPT_ROUNDS: u64 = 2_000_000;
/// Longest derived key, salt or key field (bytes) in an imported hash.
const MAX_FIELD_BYTES: usize = 1024;

/// Digest used by pbkdf2 and the plain sha formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Sha {
    fn parse(s: &str) -> Option<Sha> {
        match s {
            "sha1" => Some(Sha::Sha1),
            "sha256" => Some(Sha::Sha256),
            "sha512" => Some(Sha::Sha512),
            _ => None,
        }
    }
    fn output_len(self) -> usize {
        match self {
            Sha::Sha1 => 20,
            Sha::Sha256 => 32,
            Sha::Sha512 => 64,
        }
    }
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Sha::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Sha::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Sha::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// Digest of an `$hmac-*` hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacDigest {
    /// MD4.
    Md4,
    /// MD5.
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// A decoded imported hash.
#[derive(Debug, Clone)]
pub enum Imported {
    /// `$pbkdf2-sha<N>$i=<iter>,l=<len>$<salt>$<hash>` (unpadded base64; padding tolerated).
    Pbkdf2 {
        /// PRF digest.
        sha: Sha,
        /// Iterations.
        iterations: u32,
        /// Salt.
        salt: Vec<u8>,
        /// Derived key.
        hash: Vec<u8>,
    },
    /// `$scrypt$ln=<N>,r=<r>,p=<p>$<salt>$<hash>` (padded base64). As in Kratos, `ln`
    /// carries N itself, not its logarithm.
    Scrypt {
        /// log2 N.
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
        /// Salt.
        salt: Vec<u8>,
        /// Derived key.
        hash: Vec<u8>,
    },
    /// `$firescrypt$ln=<mem_cost>,r=<rounds>,p=<p>$<salt>$<hash>$<salt_separator>$<signer_key>`.
    FirebaseScrypt {
        /// log2 N (Firebase `mem_cost`).
        log_n: u8,
        /// Firebase `rounds`.
        r: u32,
        /// Parallelism.
        p: u32,
        /// Per-user salt.
        salt: Vec<u8>,
        /// Per-user hash.
        hash: Vec<u8>,
        /// Project salt separator.
        separator: Vec<u8>,
        /// Project signer key.
        signer_key: Vec<u8>,
    },
    /// `$md5$<hash>` or `$md5$pf=<template>$<salt>$<hash>`.
    Md5 {
        /// Salting template (`{SALT}`, `{PASSWORD}`) and salt, if salted.
        salted: Option<(Vec<u8>, Vec<u8>)>,
        /// MD5 digest.
        hash: Vec<u8>,
    },
    /// `$sha1|sha256|sha512$pf=<template>$<salt>$<hash>`.
    Sha {
        /// Digest.
        sha: Sha,
        /// Salting template.
        template: Vec<u8>,
        /// Salt.
        salt: Vec<u8>,
        /// Digest of the filled-in template.
        hash: Vec<u8>,
    },
    /// `{SSHA}`, `{SSHA256}`, `{SSHA512}` + base64(digest ‖ salt).
    Ssha {
        /// Digest.
        sha: Sha,
        /// Salt.
        salt: Vec<u8>,
        /// Digest of password ‖ salt.
        hash: Vec<u8>,
    },
    /// `$hmac-<digest>$<base64 of the hex MAC>$<base64 key>`.
    Hmac {
        /// Digest.
        digest: HmacDigest,
        /// Hex MAC as stored (ASCII).
        hex_mac: Vec<u8>,
        /// Key.
        key: Vec<u8>,
    },
    /// `$md5-crypt$<salt>$<hash>` (crypt(3) `$1$`).
    Md5Crypt {
        /// The crypt string with the standard `$1$` prefix.
        salt: String,
        /// Encoded hash.
        hash: String,
    },
    /// `$sha256-crypt$…` / `$sha512-crypt$…` (crypt(3) `$5$` / `$6$`).
    ShaCrypt {
        /// The crypt string with the standard `$5$`/`$6$` prefix.
        crypt: String,
        /// Rounds (5,000 when not given).
        rounds: u64,
    },
}

fn bad(what: &str) -> HashError {
    HashError::Invalid(what.to_string())
}

fn field(engine: &base64::engine::GeneralPurpose, s: &str, what: &str) -> Result<Vec<u8>, HashError> {
    let v = engine
        .decode(s)
        .map_err(|_| bad(&format!("the {what} is not valid base64")))?;
    if v.len() > MAX_FIELD_BYTES {
        return Err(bad(&format!("the {what} is longer than {MAX_FIELD_BYTES} bytes")));
    }
    Ok(v)
}

fn std_field(s: &str, what: &str) -> Result<Vec<u8>, HashError> {
    field(&STANDARD, s, what)
}

/// Unpadded base64 as Kratos writes it; trailing `=` (Keycloak exports keep them) tolerated.
fn raw_field(s: &str, what: &str) -> Result<Vec<u8>, HashError> {
    field(&STANDARD_NO_PAD, s.trim_end_matches('='), what)
}

/// `a=1,b=2` → value of `name`.
fn param(params: &str, name: &str) -> Option<u64> {
    params
        .split(',')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn too_costly(msg: String) -> HashError {
    HashError::TooCostly(msg)
}

fn scrypt_bounds(kind: &str, n: u64, r: u64, p: u64) -> Result<(), HashError> {
    if n > MAX_SCRYPT_N || r > MAX_SCRYPT_R || p > MAX_SCRYPT_P {
        return Err(too_costly(format!(
            "{kind} parameters N={n},r={r},p={p} exceed what Latch accepts (N <= {MAX_SCRYPT_N}, r <= {MAX_SCRYPT_R}, p <= {MAX_SCRYPT_P})"
        )));
    }
    if n < 2 || r == 0 || p == 0 || !n.is_power_of_two() {
        return Err(bad(&format!(
            "{kind} parameters N={n},r={r},p={p} are invalid (N a power of two >= 2, r and p >= 1)"
        )));
    }
    Ok(())
}

/// Whether `hash` starts like one of the formats of this module.
pub fn is_imported_format(hash: &str) -> bool {
    [
        "$pbkdf2-",
        "$scrypt$",
        "$firescrypt$",
        "$md5$",
        "$sha1$",
        "$sha256$",
        "$sha512$",
        "{SSHA",
        "$hmac-",
        "$md5-crypt$",
        "$sha256-crypt$",
        "$sha512-crypt$",
    ]
    .iter()
    .any(|p| hash.starts_with(p))
}

impl Imported {
    /// Decodes `hash` and checks its cost parameters. `Ok(None)` if it is in none of the
    /// formats of this module.
    pub fn parse(hash: &str) -> Result<Option<Imported>, HashError> {
        if !is_imported_format(hash) {
            return Ok(None);
        }
        let parts: Vec<&str> = hash.split('$').collect();
        let id = parts.get(1).copied().unwrap_or("");
        let parsed = if let Some(sha) = id.strip_prefix("pbkdf2-") {
            let sha = Sha::parse(sha).ok_or_else(|| {
                HashError::Invalid(format!(
                    "pbkdf2-{sha} is not supported (use pbkdf2-sha1, -sha256 or -sha512)"
                ))
            })?;
            let [_, _, params, salt, hash] = parts[..] else {
                return Err(bad(
                    "a pbkdf2 hash has the form $pbkdf2-<digest>$i=<iter>,l=<len>$<salt>$<hash>",
                ));
            };
            let iterations = param(params, "i").ok_or_else(|| bad("the pbkdf2 iterations (i=) are missing"))?;
            let salt = raw_field(salt, "pbkdf2 salt")?;
            let hash = raw_field(hash, "pbkdf2 hash")?;
            if hash.is_empty() || iterations == 0 {
                return Err(bad("the pbkdf2 hash is empty or has zero iterations"));
            }
            let blocks = hash.len().div_ceil(sha.output_len()) as u64;
            if iterations.saturating_mul(blocks) > MAX_PBKDF2_WORK {
                return Err(too_costly(format!(
                    "pbkdf2 i={iterations} with a {}-byte key exceeds what Latch accepts (iterations x blocks <= {MAX_PBKDF2_WORK})",
                    hash.len()
                )));
            }
            Imported::Pbkdf2 {
                sha,
                iterations: u32::try_from(iterations).map_err(|_| bad("pbkdf2 iterations out of range"))?,
                salt,
                hash,
            }
        } else if id == "scrypt" {
            let [_, _, params, salt, hash] = parts[..] else {
                return Err(bad(
                    "a scrypt hash has the form $scrypt$ln=<N>,r=<r>,p=<p>$<salt>$<hash>",
                ));
            };
            let (Some(n), Some(r), Some(p)) = (param(params, "ln"), param(params, "r"), param(params, "p")) else {
                return Err(bad("the scrypt parameters ln=, r= and p= are required"));
            };
            scrypt_bounds("scrypt", n, r, p)?;
            let hash = std_field(hash, "scrypt hash")?;
            if hash.is_empty() {
                return Err(bad("the scrypt hash is empty"));
            }
            Imported::Scrypt {
                log_n: n.trailing_zeros() as u8,
                r: r as u32,
                p: p as u32,
                salt: std_field(salt, "scrypt salt")?,
                hash,
            }
        } else if id == "firescrypt" {
            let [_, _, params, salt, hash, separator, signer_key] = parts[..] else {
                return Err(bad(
                    "a Firebase scrypt hash has the form $firescrypt$ln=<mem_cost>,r=<rounds>,p=<p>$<salt>$<hash>$<salt_separator>$<signer_key>",
                ));
            };
            let (Some(ln), Some(r), Some(p)) = (param(params, "ln"), param(params, "r"), param(params, "p")) else {
                return Err(bad("the Firebase scrypt parameters ln=, r= and p= are required"));
            };
            if ln > MAX_FIREBASE_LOG_N {
                return Err(too_costly(format!(
                    "firescrypt ln={ln} exceeds what Latch accepts (ln <= {MAX_FIREBASE_LOG_N})"
                )));
            }
            scrypt_bounds("firescrypt", 1u64 << ln, r, p)?;
            let hash = std_field(hash, "Firebase hash")?;
            let signer_key = std_field(signer_key, "Firebase signer key")?;
            if hash.is_empty() || signer_key.is_empty() {
                return Err(bad("the Firebase hash or signer key is empty"));
            }
            Imported::FirebaseScrypt {
                log_n: ln as u8,
                r: r as u32,
                p: p as u32,
                salt: std_field(salt, "Firebase salt")?,
                hash,
                separator: std_field(separator, "Firebase salt separator")?,
                signer_key,
            }
        } else if id == "md5" {
            match parts[..] {
                [_, _, hash] => Imported::Md5 {
                    salted: None,
                    hash: digest_field(hash, 16, "md5 hash")?,
                },
                [_, _, pf, salt, hash] => Imported::Md5 {
                    salted: Some((template(pf)?, std_field(salt, "md5 salt")?)),
                    hash: digest_field(hash, 16, "md5 hash")?,
                },
                _ => {
                    return Err(bad(
                        "an md5 hash has the form $md5$<hash> or $md5$pf=<format>$<salt>$<hash>",
                    ));
                }
            }
        } else if let Some(sha) = Sha::parse(id) {
            let [_, _, pf, salt, hash] = parts[..] else {
                return Err(bad(&format!(
                    "a {id} hash has the form ${id}$pf=<format>$<salt>$<hash>"
                )));
            };
            Imported::Sha {
                sha,
                template: template(pf)?,
                salt: std_field(salt, "salt")?,
                hash: digest_field(hash, sha.output_len(), "hash")?,
            }
        } else if hash.starts_with("{SSHA") {
            let (sha, rest) = if let Some(r) = hash.strip_prefix("{SSHA}") {
                (Sha::Sha1, r)
            } else if let Some(r) = hash.strip_prefix("{SSHA256}") {
                (Sha::Sha256, r)
            } else if let Some(r) = hash.strip_prefix("{SSHA512}") {
                (Sha::Sha512, r)
            } else {
                return Err(bad("an SSHA hash starts with {SSHA}, {SSHA256} or {SSHA512}"));
            };
            let raw = std_field(rest, "SSHA value")?;
            if raw.len() <= sha.output_len() {
                return Err(bad("the SSHA value holds no salt"));
            }
            let (hash, salt) = raw.split_at(sha.output_len());
            Imported::Ssha {
                sha,
                salt: salt.to_vec(),
                hash: hash.to_vec(),
            }
        } else if let Some(d) = id.strip_prefix("hmac-") {
            let digest = match d {
                "md4" => HmacDigest::Md4,
                "md5" => HmacDigest::Md5,
                "sha1" => HmacDigest::Sha1,
                "sha224" => HmacDigest::Sha224,
                "sha256" => HmacDigest::Sha256,
                "sha384" => HmacDigest::Sha384,
                "sha512" => HmacDigest::Sha512,
                _ => return Err(bad(&format!("hmac-{d} is not supported"))),
            };
            let [_, _, mac, key] = parts[..] else {
                return Err(bad("an hmac hash has the form $hmac-<digest>$<hash>$<key>"));
            };
            let hex_mac = std_field(mac, "hmac hash")?;
            if hex_mac.is_empty() || !hex_mac.iter().all(u8::is_ascii_hexdigit) {
                return Err(bad("the hmac hash must be the base64 of the hex-encoded MAC"));
            }
            Imported::Hmac {
                digest,
                hex_mac,
                key: std_field(key, "hmac key")?,
            }
        } else if id == "md5-crypt" {
            let [_, _, salt, hash] = parts[..] else {
                return Err(bad("an md5-crypt hash has the form $md5-crypt$<salt>$<hash>"));
            };
            if salt.len() > 8 || hash.len() != 22 || !hash.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
                return Err(bad(
                    "the md5-crypt salt (at most 8 characters) or hash (22 characters) is malformed",
                ));
            }
            Imported::Md5Crypt {
                salt: salt.to_string(),
                hash: hash.to_string(),
            }
        } else if id == "sha256-crypt" || id == "sha512-crypt" {
            let (ident, len) = if id == "sha256-crypt" { ("5", 43) } else { ("6", 86) };
            let (rounds, salt, encoded) = match parts[..] {
                [_, _, r, salt, h] if r.starts_with("rounds=") => (param(r, "rounds"), salt, h),
                [_, _, salt, h] => (Some(5000), salt, h),
                _ => return Err(bad(&format!("a {id} hash has the form ${id}$rounds=<n>$<salt>$<hash>"))),
            };
            let rounds = rounds.ok_or_else(|| bad("the sha-crypt rounds are not a number"))?;
            if rounds > MAX_SHA_CRYPT_ROUNDS {
                return Err(too_costly(format!(
                    "{id} rounds={rounds} exceeds what Latch accepts (rounds <= {MAX_SHA_CRYPT_ROUNDS})"
                )));
            }
            if rounds < 1000 {
                return Err(bad("sha-crypt rounds below 1000 are not valid"));
            }
            if salt.len() > 16 || encoded.len() != len || !encoded.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
                return Err(bad(&format!("the {id} salt or hash is malformed")));
            }
            let crypt = if hash.contains("$rounds=") {
                format!("${ident}$rounds={rounds}${salt}${encoded}")
            } else {
                format!("${ident}${salt}${encoded}")
            };
            Imported::ShaCrypt { crypt, rounds }
        } else {
            return Err(HashError::Unsupported);
        };
        Ok(Some(parsed))
    }

    /// Checks `password` against this hash in constant time.
    pub fn verify(&self, password: &str) -> Result<bool, HashError> {
        let pw = password.as_bytes();
        let ok = match self {
            Imported::Pbkdf2 {
                sha,
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                match sha {
                    Sha::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, salt, *iterations, &mut out),
                    Sha::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw, salt, *iterations, &mut out),
                    Sha::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw, salt, *iterations, &mut out),
                }
                ct(&out, hash)
            }
            Imported::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                scrypt_into(pw, salt, *log_n, *r, *p, &mut out)?;
                ct(&out, hash)
            }
            Imported::FirebaseScrypt {
                log_n,
                r,
                p,
                salt,
                hash,
                separator,
                signer_key,
            } => ct(&firebase_scrypt(pw, salt, separator, signer_key, *log_n, *r, *p)?, hash),
            Imported::Md5 { salted, hash } => {
                let input = match salted {
                    Some((template, salt)) => fill_template(template, salt, pw),
                    None => pw.to_vec(),
                };
                ct(&md5::Md5::digest(&input), hash)
            }
            Imported::Sha {
                sha,
                template,
                salt,
                hash,
            } => ct(&sha.digest(&fill_template(template, salt, pw)), hash),
            Imported::Ssha { sha, salt, hash } => {
                let mut input = pw.to_vec();
                input.extend_from_slice(salt);
                ct(&sha.digest(&input), hash)
            }
            Imported::Hmac { digest, hex_mac, key } => {
                let mac = hmac_hex(*digest, key, pw)?;
                ct(mac.as_bytes(), hex_mac)
            }
            Imported::Md5Crypt { salt, hash } => ct(md5_crypt(pw, salt.as_bytes()).as_bytes(), hash.as_bytes()),
            Imported::ShaCrypt { crypt, .. } => {
                use sha_crypt::PasswordVerifier as _;
                match sha_crypt::ShaCrypt::default().verify_password(pw, crypt.as_str()) {
                    Ok(()) => true,
                    Err(sha_crypt::password_hash::Error::PasswordInvalid) => false,
                    Err(e) => return Err(HashError::Failed(e.to_string())),
                }
            }
        };
        Ok(ok)
    }
}

fn ct(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn template(pf: &str) -> Result<Vec<u8>, HashError> {
    let encoded = pf
        .strip_prefix("pf=")
        .ok_or_else(|| bad("the salting format (pf=) is missing"))?;
    std_field(encoded, "salting format")
}

fn digest_field(s: &str, len: usize, what: &str) -> Result<Vec<u8>, HashError> {
    let v = std_field(s, what)?;
    if v.len() != len {
        return Err(bad(&format!("the {what} must decode to {len} bytes")));
    }
    Ok(v)
}

/// Replaces `{SALT}` and `{PASSWORD}` in the template (left to right, as Go's `strings.Replacer`).
fn fill_template(template: &[u8], salt: &[u8], password: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + salt.len() + password.len());
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(b"{SALT}") {
            out.extend_from_slice(salt);
            rest = r;
        } else if let Some(r) = rest.strip_prefix(b"{PASSWORD}") {
            out.extend_from_slice(password);
            rest = r;
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

fn scrypt_into(pw: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32, out: &mut [u8]) -> Result<(), HashError> {
    let params = scrypt::Params::new(log_n, r, p).map_err(|e| HashError::Failed(e.to_string()))?;
    scrypt::scrypt(pw, salt, &params, out).map_err(|e| HashError::Failed(e.to_string()))
}

/// Firebase's modified scrypt: the scrypt key of (salt ‖ separator) encrypts the project's
/// signer key with AES-256-CTR (zero IV); the ciphertext is the stored hash.
pub fn firebase_scrypt(
    pw: &[u8],
    salt: &[u8],
    separator: &[u8],
    signer_key: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Vec<u8>, HashError> {
    use aes::cipher::{KeyIvInit, StreamCipher};
    let mut full_salt = salt.to_vec();
    full_salt.extend_from_slice(separator);
    let mut key = [0u8; 32];
    scrypt_into(pw, &full_salt, log_n, r, p, &mut key)?;
    let mut out = signer_key.to_vec();
    let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &[0u8; 16].into());
    cipher.apply_keystream(&mut out);
    Ok(out)
}

fn hmac_hex(digest: HmacDigest, key: &[u8], pw: &[u8]) -> Result<String, HashError> {
    fn run<M: Mac + KeyInit>(key: &[u8], pw: &[u8]) -> Result<Vec<u8>, HashError> {
        let mut m = <M as KeyInit>::new_from_slice(key).map_err(|e| HashError::Failed(e.to_string()))?;
        m.update(pw);
        Ok(m.finalize().into_bytes().to_vec())
    }
    let mac = match digest {
        HmacDigest::Md4 => run::<hmac::SimpleHmac<md4::Md4>>(key, pw)?,
        HmacDigest::Md5 => run::<hmac::SimpleHmac<md5::Md5>>(key, pw)?,
        HmacDigest::Sha1 => run::<hmac::SimpleHmac<sha1::Sha1>>(key, pw)?,
        HmacDigest::Sha224 => run::<hmac::SimpleHmac<sha2::Sha224>>(key, pw)?,
        HmacDigest::Sha256 => run::<hmac::SimpleHmac<sha2::Sha256>>(key, pw)?,
        HmacDigest::Sha384 => run::<hmac::SimpleHmac<sha2::Sha384>>(key, pw)?,
        HmacDigest::Sha512 => run::<hmac::SimpleHmac<sha2::Sha512>>(key, pw)?,
    };
    Ok(mac.iter().map(|b| format!("{b:02x}")).collect())
}

const CRYPT_ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// crypt(3) `$1$` (Poul-Henning Kamp's md5-crypt): the 22-character hash for `salt`.
pub fn md5_crypt(pw: &[u8], salt: &[u8]) -> String {
    let salt = &salt[..salt.len().min(8)];
    let alt = md5::Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = md5::Md5::new().chain_update(pw).chain_update(b"$1$").chain_update(salt);
    let mut left = pw.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut bits = pw.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..pw.len().min(1)]);
        }
        bits >>= 1;
    }
    let mut fin = ctx.finalize();
    for i in 0..1000 {
        let mut c = md5::Md5::new();
        if i & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if i % 3 != 0 {
            c.update(salt);
        }
        if i % 7 != 0 {
            c.update(pw);
        }
        if i & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize();
    }
    let mut out = String::with_capacity(22);
    let mut push = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(char::from(CRYPT_ALPHABET[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push(
            (u32::from(fin[a]) << 16) | (u32::from(fin[b]) << 8) | u32::from(fin[c]),
            4,
        );
    }
    push(u32::from(fin[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(hash: &str, pw: &str) {
        let parsed = Imported::parse(hash).unwrap().unwrap();
        assert!(parsed.verify(pw).unwrap(), "{hash}");
        assert!(!parsed.verify("not the password").unwrap(), "{hash}");
    }

    #[test]
    fn md5_crypt_matches_openssl() {
        // `openssl passwd -1 -salt abc hello`
        assert_eq!(md5_crypt(b"hello", b"abc"), "jWy0FsfCoVBK.I85XpXf30");
        check("$md5-crypt$abc$jWy0FsfCoVBK.I85XpXf30", "hello");
    }

    #[test]
    fn sha_crypt_matches_openssl() {
        // `openssl passwd -5 -salt abc hello`
        check("$sha256-crypt$abc$W6SISEcmf6GfVdGFK0lGBXz2NPDhGZ.FBBMOz418YA7", "hello");
    }

    #[test]
    fn template_fills_salt_and_password() {
        assert_eq!(fill_template(b"{SALT}--{PASSWORD}", b"s", b"p"), b"s--p");
        // A salt that contains a placeholder is not expanded again.
        assert_eq!(fill_template(b"{PASSWORD}{SALT}", b"{PASSWORD}", b"x"), b"x{PASSWORD}");
    }

    #[test]
    fn absurd_parameters_are_refused() {
        let h = STANDARD.encode([0u8; 32]);
        for hash in [
            format!(
                "$pbkdf2-sha256$i=20000000,l=32${}${}",
                "c2FsdA",
                STANDARD_NO_PAD.encode([0u8; 32])
            ),
            format!(
                "$pbkdf2-sha1$i=4000000,l=64$c2FsdA${}",
                STANDARD_NO_PAD.encode([0u8; 64])
            ),
            format!("$scrypt$ln=1048576,r=8,p=1$c2FsdA==${h}"),
            format!("$scrypt$ln=16384,r=64,p=1$c2FsdA==${h}"),
            format!("$scrypt$ln=16384,r=8,p=100$c2FsdA==${h}"),
            format!("$firescrypt$ln=30,r=8,p=1$c2FsdA==${h}$Bw==${h}"),
            "$sha512-crypt$rounds=999999999$abc$x".to_string(),
        ] {
            assert!(matches!(Imported::parse(&hash), Err(HashError::TooCostly(_))), "{hash}");
        }
        assert!(Imported::parse(&format!("$scrypt$ln=1000,r=8,p=1$c2FsdA==${h}")).is_err());
    }
}

#[cfg(test)]
mod firebase_vector {
    use super::*;

    /// The example from Firebase's scrypt README (project parameters and one user).
    #[test]
    fn firebase_readme_example_verifies() {
        let hash = "$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$Bw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==";
        let parsed = Imported::parse(hash).unwrap().unwrap();
        assert!(parsed.verify("user1password").unwrap());
        assert!(!parsed.verify("user2password").unwrap());
    }
}

#[cfg(test)]
mod docs_examples {
    use super::*;

    /// The worked examples of docs/migrating.md verify with the passwords it states.
    #[test]
    fn migrating_md_examples_verify() {
        let pw = "correct horse battery staple";
        let keycloak = "$pbkdf2-sha256$i=27500,l=32$L2pLcJ4DR0lJhYxVFyzG1w$MZCy70+gzBA626h4UujYAZx4UlioxK0ogUAZdsnIe3M";
        let keycloak_padded =
            "$pbkdf2-sha256$i=27500,l=32$L2pLcJ4DR0lJhYxVFyzG1w==$MZCy70+gzBA626h4UujYAZx4UlioxK0ogUAZdsnIe3M=";
        for h in [keycloak, keycloak_padded] {
            let parsed = Imported::parse(h).unwrap().unwrap();
            assert!(parsed.verify(pw).unwrap(), "{h}");
        }
        let docs = include_str!("../../../../docs/migrating.md");
        assert!(docs.contains(keycloak));
        assert!(docs.contains("$2b$10$8ZdB38/IKgTZWAefQsAQDu7w7/DWPbFBzdjThFxbNgTEz7Fnoxpxy"));
        assert!(bcrypt::verify(pw, "$2b$10$8ZdB38/IKgTZWAefQsAQDu7w7/DWPbFBzdjThFxbNgTEz7Fnoxpxy").unwrap());
        let argon = "$argon2id$v=19$m=65536,t=1,p=4$R/kyOUS3C/iyljRrvCTo5g$wEdH77uSkahFGQhgBUwlHbEZhC9QTKFz1gKSGNpGlBk";
        assert!(docs.contains(argon));
        use argon2::PasswordVerifier as _;
        let parsed = argon2::PasswordHash::new(argon).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(pw.as_bytes(), &parsed)
                .is_ok()
        );
    }
}
