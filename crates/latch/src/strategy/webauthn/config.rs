//! The relying party of the `webauthn` method: `selfservice.methods.webauthn.config.rp`, or
//! derived from `serve.public.base_url`. Kratos: `driver/config/config.go` `WebAuthnConfig`.

use crate::config::Config;
use crate::strategy::passkey::config::{RelyingParty, RpError, resolve_rp};

/// The security-key relying party.
pub fn resolve(config: &Config) -> Result<RelyingParty, RpError> {
    resolve_rp(config, config.selfservice.methods.webauthn.config.rp.as_ref())
}
