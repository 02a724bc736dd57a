//! The `totp` method: authenticator apps (RFC 6238 codes) as a second factor. Added in
//! settings (QR code, secret, a code to confirm) and used by `aal=aal2` logins, which raise
//! the session to `aal2`. Kratos: `selfservice/strategy/totp`.
//!
//! Stricter than Kratos: a code is accepted once (RFC 6238 §5.2), and wrong codes count
//! against the account's sign-in budget before they are compared (`crate::limits`).

pub mod credentials;
mod login;
mod nodes;
mod settings;

use async_trait::async_trait;
use serde_json::Value;

use crate::deps::Env;
use crate::identity::Identity;
use crate::strategy::{CredentialType, Factor, FlowError, ImportCx, ImportError, Imported, Registry};
use credentials::Key;

/// Internal-context key of the key shown in a settings flow until it is confirmed (Kratos
/// keeps it as `totp.url`); never part of the public flow JSON.
const PENDING_KEY: &str = "totp_url";

/// The authenticator-app strategy.
#[derive(Debug, Clone)]
pub struct Totp {
    issuer: String,
}

impl crate::strategy::Strategy for Totp {
    fn id(&self) -> &'static str {
        "totp"
    }
    fn login(&self) -> Option<&dyn crate::strategy::LoginStrategy> {
        Some(self)
    }
    fn settings(&self) -> Option<&dyn crate::strategy::SettingsStrategy> {
        Some(self)
    }
}

impl Totp {
    /// The strategy for this configuration: the issuer is `config.issuer`, else the host of
    /// `serve.public.base_url` (Kratos: `TOTPIssuer`).
    pub fn new(config: &crate::config::Config) -> Totp {
        let issuer = config
            .selfservice
            .methods
            .totp
            .config
            .issuer
            .clone()
            .filter(|i| !i.trim().is_empty())
            .unwrap_or_else(|| config.public_base_url().host_str().unwrap_or_default().to_string());
        Totp { issuer }
    }
}

/// The `totp` credential: `{"totp_url": "otpauth://totp/…"}`, identified by the identity id.
#[derive(Debug)]
struct TotpCredential;

#[async_trait]
impl CredentialType for TotpCredential {
    fn id(&self) -> &'static str {
        "totp"
    }
    fn factor(&self) -> Factor {
        Factor::Second
    }
    fn is_second_factor(&self, _config: &crate::config::Config, identity: &Identity) -> bool {
        identity.credentials.contains_key("totp")
    }
    /// Kratos: `AdminIdentityImportCredentialsTOTPConfig` (`credentials.totp.config.totp_url`).
    async fn import(
        &self,
        _cx: &ImportCx<'_>,
        identity: &Identity,
        config: Value,
    ) -> Result<Option<Imported>, ImportError> {
        if config.is_null() {
            return Ok(None);
        }
        let Some(url) = credentials::url_of(&config) else {
            return Err(ImportError::Invalid(
                "credentials.totp.config.totp_url must be an otpauth://totp/ URL".into(),
            ));
        };
        if let Err(e) = Key::parse(url) {
            return Err(ImportError::Invalid(format!("credentials.totp.config.totp_url: {e}")));
        }
        Ok(Some(Imported {
            identifiers: vec![identity.id.to_string()],
            config: credentials::config_of(url.trim()),
            version: 1,
        }))
    }
}

static TOTP: TotpCredential = TotpCredential;

/// Registers the authenticator-app method (after `kratos_types`, whose opaque `totp` entry
/// this replaces).
pub fn register(r: &mut Registry<'_>) {
    r.credential(&TOTP);
    if r.config().selfservice.methods.totp.enabled {
        r.strategy(std::sync::Arc::new(Totp::new(r.config())));
    }
}

/// The identity's stored key, if it has a usable one.
fn stored_key(identity: &Identity) -> Option<Key> {
    let url = credentials::url_of(&identity.credentials.get("totp")?.config)?;
    match Key::parse(url) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::warn!(error = %e, "stored TOTP key cannot be used");
            None
        }
    }
}

/// Accepts `code` for `identity` once: the matched time step is consumed, so the same code
/// (or any code of that step) is refused for the rest of its window (RFC 6238 §5.2).
async fn accept_once(env: &Env, identity: &Identity, key: &Key, code: &str) -> Result<bool, FlowError> {
    let now = env.clock.now();
    let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let Some(step) = key.check(code, unix) else {
        return Ok(false);
    };
    // A step is accepted until one step after it ends (skew); keep the mark a little longer.
    let keep = std::time::Duration::from_secs(key.period().saturating_mul(3));
    let mut what = identity.id.as_bytes().to_vec();
    what.extend_from_slice(&step.to_be_bytes());
    Ok(crate::limits::consume_once(env, "totp", &what, now + keep).await?)
}
