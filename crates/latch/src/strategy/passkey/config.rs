//! The relying party of the passkey method: `selfservice.methods.passkey.config.rp`, or
//! derived from `serve.public.base_url` when unset (a Latch default; Kratos requires it).
//! Kratos: `driver/config/config.go` `PasskeyConfig`.

use std::time::Duration;

use url::Url;
use webauthn_rs::prelude::{Webauthn, WebauthnBuilder};

use crate::config::Config;

/// How long the browser waits for the authenticator (Kratos' go-webauthn default).
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// The relying party as Latch uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// RP id: a registrable domain the origins belong to.
    pub id: String,
    /// Name authenticators show.
    pub display_name: String,
    /// Every origin (web and native) whose assertions are accepted.
    pub origins: Vec<String>,
}

/// Why passkeys cannot be offered with this configuration.
#[derive(Debug, thiserror::Error)]
pub enum RpError {
    /// The base URL's host is an IP address, which WebAuthn does not accept as RP id.
    #[error(
        "cannot derive a WebAuthn relying party from {0}: an RP id must be a domain name; set selfservice.methods.<passkey|webauthn>.config.rp"
    )]
    NoDomain(String),
    /// An origin is not a URL.
    #[error("rp.origins: {0:?} is not a valid origin")]
    BadOrigin(String),
    /// webauthn-rs refused the combination (rp id not a suffix of the first web origin).
    #[error("rp.id {0:?} does not match the origin {1:?}")]
    Mismatch(String, String),
}

/// The passkey relying party: configured, or derived from the public base URL.
pub fn resolve(config: &Config) -> Result<RelyingParty, RpError> {
    resolve_rp(config, config.selfservice.methods.passkey.config.rp.as_ref())
}

/// A configured relying party (`rp` of `passkey` or `webauthn`), completed with defaults
/// derived from the public base URL.
pub fn resolve_rp(config: &Config, configured: Option<&crate::config::RelyingParty>) -> Result<RelyingParty, RpError> {
    let base = config.public_base_url();
    let configured = configured.cloned().unwrap_or_default();
    let id = if configured.id.is_empty() {
        match base.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            _ => return Err(RpError::NoDomain(base.to_string())),
        }
    } else {
        configured.id.clone()
    };
    let display_name = if configured.display_name.is_empty() {
        id.clone()
    } else {
        configured.display_name.clone()
    };
    let mut origins = configured.all_origins();
    if origins.is_empty() {
        if configured.id.is_empty() {
            origins.push(base.origin().ascii_serialization());
        } else {
            // Kratos: `<public base_url scheme>://<rp.id>`.
            origins.push(format!("{}://{}", base.scheme(), id));
        }
    }
    Ok(RelyingParty {
        id,
        display_name,
        origins,
    })
}

impl RelyingParty {
    /// The webauthn-rs verifier for this relying party: the rp id hash and every origin are
    /// checked on each ceremony.
    pub fn webauthn(&self) -> Result<Webauthn, RpError> {
        let urls: Vec<Url> = self
            .origins
            .iter()
            .map(|o| Url::parse(o).map_err(|_| RpError::BadOrigin(o.clone())))
            .collect::<Result<_, _>>()?;
        // webauthn-rs checks the rp id against the first origin; native origins
        // (`android:apk-key-hash:…`) have no host, so start from a web one.
        let first = urls
            .iter()
            .position(|u| u.domain().is_some())
            .ok_or_else(|| RpError::BadOrigin(self.origins.join(", ")))?;
        let mut builder = WebauthnBuilder::new(&self.id, &urls[first])
            .map_err(|_| RpError::Mismatch(self.id.clone(), self.origins[first].clone()))?
            .rp_name(&self.display_name)
            .timeout(TIMEOUT);
        for (i, u) in urls.iter().enumerate() {
            if i != first {
                builder = builder.append_allowed_origin(u);
            }
        }
        builder
            .build()
            .map_err(|_| RpError::Mismatch(self.id.clone(), self.origins[first].clone()))
    }
}
