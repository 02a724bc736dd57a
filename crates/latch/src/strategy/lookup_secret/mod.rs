//! The `lookup_secret` method: backup recovery codes as a second factor. Generated and
//! confirmed in settings and used once each by `aal=aal2` logins, which raise the session to
//! `aal2`. Kratos: `selfservice/strategy/lookup`.
//!
//! Stricter than Kratos: new codes carry ~83 bits instead of ~41 and are stored hashed (so
//! they cannot be revealed again after they are confirmed: reveal shows which are used),
//! compared in constant time, used once even under concurrent submissions
//! (`crate::limits::consume_once`), and wrong codes count against the account's sign-in
//! budget before they are compared.

pub mod codes;
mod login;
mod nodes;
mod settings;

use async_trait::async_trait;
use serde_json::Value;

use crate::deps::Env;
use crate::identity::Identity;
use crate::strategy::{CredentialType, Factor, FlowError, ImportCx, ImportError, Imported, Registry};

/// Internal-context key of the codes shown in a settings flow until they are confirmed
/// (Kratos keeps them as `lookup_secret.regenerated`); never part of the public flow JSON.
const PENDING_KEY: &str = "lookup_secret_regenerated";
/// Internal-context key set when the codes were revealed (Kratos: `lookup_secret.revealed`).
const REVEALED_KEY: &str = "lookup_secret_revealed";

/// The backup-code strategy.
#[derive(Debug, Clone, Default)]
pub struct LookupSecret;

impl crate::strategy::Strategy for LookupSecret {
    fn id(&self) -> &'static str {
        "lookup_secret"
    }
    fn login(&self) -> Option<&dyn crate::strategy::LoginStrategy> {
        Some(self)
    }
    fn settings(&self) -> Option<&dyn crate::strategy::SettingsStrategy> {
        Some(self)
    }
}

/// The `lookup_secret` credential: `{"recovery_codes":[{"code_hash","used_at"}]}`,
/// identified by the identity id.
#[derive(Debug)]
struct LookupSecretCredential;

#[async_trait]
impl CredentialType for LookupSecretCredential {
    fn id(&self) -> &'static str {
        "lookup_secret"
    }
    fn factor(&self) -> Factor {
        Factor::Second
    }
    /// Kratos counts an identity with any lookup credential (`CountActiveMultiFactorCredentials`
    /// counts codes not yet used); Latch counts it while at least one code is unused.
    fn is_second_factor(&self, _config: &crate::config::Config, identity: &Identity) -> bool {
        identity
            .credentials
            .get("lookup_secret")
            .is_some_and(|c| codes::stored(&c.config).iter().any(|s| s.used_at.is_none()))
    }
    /// Kratos: `AdminIdentityImportCredentialsLookupSecret…`
    /// (`credentials.lookup_secret.config.recovery_codes`, codes in plain text): stored hashed.
    async fn import(
        &self,
        cx: &ImportCx<'_>,
        identity: &Identity,
        config: Value,
    ) -> Result<Option<Imported>, ImportError> {
        if config.is_null() {
            return Ok(None);
        }
        let parsed = codes::parse_import(&config).map_err(ImportError::Invalid)?;
        let mut stored = Vec::with_capacity(parsed.len());
        for (code, used_at) in parsed {
            // Kratos' codes carry ~41 bits, too few for a plain SHA-256: they are hashed with
            // the password hasher, which logins check after the SHA-256 hashes.
            let code_hash = match code {
                codes::ImportedCode::Hashed(h) => {
                    // Hashes that logins would evaluate are held to the imported-password limits.
                    if codes::is_password_hash(&h) {
                        crate::crypto::password::check_hash_cost(&h)
                            .map_err(|e| ImportError::Invalid(format!("credentials.lookup_secret: {e}")))?;
                    }
                    h
                }
                codes::ImportedCode::Plain(_) if cx.dry_run => String::new(),
                codes::ImportedCode::Plain(p) => cx
                    .hasher
                    .hash(&p)
                    .await
                    .map_err(|e| ImportError::Invalid(format!("credentials.lookup_secret: {e}")))?,
            };
            stored.push(codes::Stored { code_hash, used_at });
        }
        Ok(Some(Imported {
            identifiers: vec![identity.id.to_string()],
            config: codes::config_of(&stored),
            version: 1,
        }))
    }
}

static LOOKUP_SECRET: LookupSecretCredential = LookupSecretCredential;

/// Registers the backup-code method (after `kratos_types`, whose opaque `lookup_secret` entry
/// this replaces).
pub fn register(r: &mut Registry<'_>) {
    r.credential(&LOOKUP_SECRET);
    if r.config().selfservice.methods.lookup_secret.enabled {
        r.strategy(std::sync::Arc::new(LookupSecret));
    }
}

/// The identity's stored codes (empty without the credential).
fn stored_codes(identity: &Identity) -> Vec<codes::Stored> {
    identity
        .credentials
        .get("lookup_secret")
        .map(|c| codes::stored(&c.config))
        .unwrap_or_default()
}

/// What a submitted code matched.
enum Check {
    /// An unused code, now consumed: its index.
    Accepted(usize),
    /// A code that was used before.
    Used,
    /// No code.
    Invalid,
}

/// Checks `code` against `identity`'s codes and consumes it once: of concurrent submissions
/// of one code exactly one is accepted. SHA-256 hashes are compared in constant time, every one
/// of them; codes imported from Kratos (password-hasher strings) are verified after.
async fn check_and_consume(
    env: &Env,
    identity: &Identity,
    stored: &[codes::Stored],
    code: &str,
) -> Result<Check, FlowError> {
    let code = codes::normalize(code);
    let submitted = codes::hash(&code);
    let mut found = None;
    for (i, s) in stored.iter().enumerate() {
        if crate::crypto::ct_eq(s.code_hash.as_bytes(), submitted.as_bytes()) && found.is_none() {
            found = Some(i);
        }
    }
    if found.is_none() {
        for (i, s) in stored.iter().enumerate() {
            if codes::is_password_hash(&s.code_hash)
                && env
                    .hasher
                    .verify(&code, &s.code_hash)
                    .await
                    .map_err(|e| FlowError::Internal(format!("lookup secret hash: {e}")))?
            {
                found = Some(i);
                break;
            }
        }
    }
    let Some(i) = found else {
        return Ok(Check::Invalid);
    };
    if stored[i].used_at.is_some() {
        return Ok(Check::Used);
    }
    // The mark outlives any code: a set is replaced by regenerating, which changes the hashes.
    let keep = env.clock.now() + time::Duration::days(366 * 20);
    let mut what = identity.id.as_bytes().to_vec();
    what.extend_from_slice(stored[i].code_hash.as_bytes());
    if crate::limits::consume_once(env, "lookup_secret", &what, keep).await? {
        Ok(Check::Accepted(i))
    } else {
        Ok(Check::Used)
    }
}
