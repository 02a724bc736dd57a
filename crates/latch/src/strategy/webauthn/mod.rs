//! The `webauthn` method: security keys, browser flows only. With
//! `config.passwordless: true` a first factor (sign up and two-step sign in by identifier);
//! otherwise a second factor added in settings and used by `aal=aal2` logins, which raise
//! the session to `aal2`. Kratos: `selfservice/strategy/webauthn`.
//!
//! Credentials use the same Kratos JSON as passkeys ([`crate::strategy::passkey::credentials`]);
//! the user handle is 16 random bytes, as in Kratos.

pub mod config;
mod login;
mod nodes;
mod registration;
mod settings;

use serde_json::{Value, json};
use webauthn_rs::prelude::{
    CredentialID, SecurityKey, SecurityKeyAuthentication, SecurityKeyRegistration, Uuid, Webauthn, WebauthnError,
};
use webauthn_rs_proto::UserVerificationPolicy;

use crate::identity::Identity;
use crate::model::flow::Flow;
use crate::strategy::passkey::config::{RelyingParty, RpError};
use crate::strategy::passkey::credentials::{PasskeyConfig, StoredCredential};

/// Internal-state key of a pending registration (`{state, user_handle}`).
const REGISTRATION_KEY: &str = "webauthn_registration";
/// Internal-state key of a pending sign in (`{state, identity_id}`).
const LOGIN_KEY: &str = "webauthn_login";

/// The security-key strategy.
#[derive(Debug, Clone)]
pub struct SecurityKeys {
    webauthn: Webauthn,
    passwordless: bool,
}

impl crate::strategy::Strategy for SecurityKeys {
    fn id(&self) -> &'static str {
        "webauthn"
    }
    fn login(&self) -> Option<&dyn crate::strategy::LoginStrategy> {
        Some(self)
    }
    fn registration(&self) -> Option<&dyn crate::strategy::RegistrationStrategy> {
        Some(self)
    }
    fn settings(&self) -> Option<&dyn crate::strategy::SettingsStrategy> {
        Some(self)
    }
}

/// The `webauthn` credential: security keys, passwordless (first factor) or not (second).
#[derive(Debug)]
struct SecurityKeyCredential;

fn passwordless(key: &Value) -> bool {
    key.get("is_passwordless") == Some(&Value::Bool(true))
}

impl crate::strategy::CredentialType for SecurityKeyCredential {
    fn id(&self) -> &'static str {
        "webauthn"
    }
    fn factor(&self) -> crate::strategy::Factor {
        crate::strategy::Factor::Both
    }
    fn signs_in_alone(&self, _config: &crate::config::Config, identity: &Identity) -> bool {
        crate::strategy::passkey::stored_keys(identity, "webauthn")
            .iter()
            .any(passwordless)
    }
    fn is_second_factor(&self, _config: &crate::config::Config, identity: &Identity) -> bool {
        crate::strategy::passkey::stored_keys(identity, "webauthn")
            .iter()
            .any(|k| !passwordless(k))
    }
    fn identifiers_from_traits(&self) -> bool {
        true
    }
}

static SECURITY_KEY: SecurityKeyCredential = SecurityKeyCredential;

/// Registers the security-key method.
pub fn register(r: &mut crate::strategy::Registry<'_>) {
    r.credential(&SECURITY_KEY);
    if r.config().selfservice.methods.webauthn.enabled {
        match SecurityKeys::new(r.config()) {
            Ok(w) => r.strategy(std::sync::Arc::new(w)),
            Err(e) => tracing::warn!(error = %e, "security keys (webauthn) are not offered"),
        }
    }
}

impl SecurityKeys {
    /// The strategy for this configuration.
    pub fn new(config: &crate::config::Config) -> Result<SecurityKeys, RpError> {
        let rp: RelyingParty = config::resolve(config)?;
        Ok(SecurityKeys {
            webauthn: rp.webauthn()?,
            passwordless: config.selfservice.methods.webauthn.config.passwordless,
        })
    }

    /// Starts a registration; stores the state in the flow and returns `{"publicKey": …}`.
    fn start_registration(
        &self,
        flow: &mut Flow,
        user_handle: Uuid,
        name: &str,
        exclude: Vec<CredentialID>,
    ) -> Result<Value, WebauthnError> {
        let exclude = if exclude.is_empty() { None } else { Some(exclude) };
        let (ccr, state): (_, SecurityKeyRegistration) =
            self.webauthn
                .start_securitykey_registration(user_handle, name, name, exclude, None, None)?;
        let state = serde_json::to_value(&state).map_err(|_| WebauthnError::InvalidUsername)?;
        flow.internal_set(REGISTRATION_KEY, json!({"state": state, "user_handle": user_handle}));
        serde_json::to_value(&ccr).map_err(|_| WebauthnError::InvalidUsername)
    }

    /// Finishes a registration started in this flow (single use).
    fn finish_registration(
        &self,
        flow: &mut Flow,
        raw: &str,
        now: time::OffsetDateTime,
    ) -> Option<(StoredCredential, Uuid)> {
        let pending = flow.internal.as_object_mut().and_then(|o| o.remove(REGISTRATION_KEY))?;
        let handle: Uuid = serde_json::from_value(pending.get("user_handle")?.clone()).ok()?;
        let state: SecurityKeyRegistration = serde_json::from_value(pending.get("state")?.clone()).ok()?;
        let reg = serde_json::from_str(raw).ok()?;
        let key = match self.webauthn.finish_securitykey_registration(&reg, &state) {
            Ok(k) => k,
            Err(e) => {
                tracing::info!(error = %e, "security key registration refused");
                return None;
            }
        };
        let mut stored = StoredCredential::from_registration(&reg, &key.into(), now).ok()?;
        stored.is_passwordless = self.passwordless;
        Some((stored, handle))
    }

    /// The identity's security keys usable in this mode (first or second factor).
    fn usable<'a>(&self, config: &'a PasskeyConfig) -> Vec<&'a StoredCredential> {
        config
            .credentials
            .iter()
            .filter(|c| c.is_passwordless == self.passwordless)
            .collect()
    }

    /// Starts a sign in for `identity`'s keys; stores the state and returns the options.
    fn start_login(&self, flow: &mut Flow, identity: &Identity) -> Option<Value> {
        let config = webauthn_config(identity);
        let keys: Vec<SecurityKey> = self
            .usable(&config)
            .into_iter()
            .filter_map(|c| c.to_webauthn_with(UserVerificationPolicy::Preferred).ok())
            .map(SecurityKey::from)
            .collect();
        if keys.is_empty() {
            return None;
        }
        let (rcr, state): (_, SecurityKeyAuthentication) =
            self.webauthn.start_securitykey_authentication(&keys).ok()?;
        let state = serde_json::to_value(&state).ok()?;
        flow.internal_set(LOGIN_KEY, json!({"state": state, "identity_id": identity.id}));
        Some(json!({ "publicKey": serde_json::to_value(&rcr.public_key).ok()? }))
    }
}

impl SecurityKeys {
    /// Options for an identifier with no security keys (unknown, or without keys): a real
    /// challenge for a decoy key whose id is derived from the identifier with the server's
    /// hash key, so the answer has the same shape as for a known user and repeats the same
    /// key id for the same identifier. No assertion can ever match it.
    fn start_decoy_login(&self, flow: &mut Flow, key: &crate::crypto::HashKey, identifier: &str) -> Option<Value> {
        let decoy = SecurityKey::from(decoy_credential(key, identifier)?);
        let (rcr, state): (_, SecurityKeyAuthentication) =
            self.webauthn.start_securitykey_authentication(&[decoy]).ok()?;
        let state = serde_json::to_value(&state).ok()?;
        flow.internal_set(LOGIN_KEY, json!({"state": state, "identity_id": Uuid::nil()}));
        Some(json!({ "publicKey": serde_json::to_value(&rcr.public_key).ok()? }))
    }
}

/// A credential that no authenticator holds: the P-256 base point as public key, and an id
/// derived from the identifier.
fn decoy_credential(key: &crate::crypto::HashKey, identifier: &str) -> Option<webauthn_rs::prelude::Credential> {
    use hmac::{Hmac, KeyInit, Mac};
    use serde_cbor_2::Value as Cbor;
    use webauthn_rs::prelude::{
        AttestationFormat, AttestationMetadata, COSEKey, ParsedAttestation, ParsedAttestationData,
    };
    const GX: &str = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
    const GY: &str = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
    let unhex = |h: &str| -> Option<Vec<u8>> {
        (0..h.len())
            .step_by(2)
            .map(|i| h.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect()
    };
    let cose = Cbor::Map(
        [
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(-7)),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (Cbor::Integer(-2), Cbor::Bytes(unhex(GX)?)),
            (Cbor::Integer(-3), Cbor::Bytes(unhex(GY)?)),
        ]
        .into_iter()
        .collect(),
    );
    let cred = COSEKey::try_from(&cose).ok()?;
    let mut id = Vec::with_capacity(64);
    for part in [b"decoy security key 1".as_slice(), b"decoy security key 2".as_slice()] {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.expose().as_bytes()).ok()?;
        mac.update(part);
        mac.update(identifier.as_bytes());
        id.extend_from_slice(&mac.finalize().into_bytes());
    }
    // Real key ids differ in length by authenticator (16 to 64 bytes are common); pick one
    // per identifier so the decoy is stable but not recognisable by its length.
    let len = [16, 32, 48, 64][usize::from(id.first().copied().unwrap_or(0) % 4)];
    id.truncate(len);
    Some(webauthn_rs::prelude::Credential {
        cred_id: CredentialID::from(id),
        cred,
        counter: 0,
        transports: None,
        user_verified: false,
        backup_eligible: false,
        backup_state: false,
        registration_policy: UserVerificationPolicy::Preferred,
        extensions: webauthn_rs_proto::RegisteredExtensions::none(),
        attestation: ParsedAttestation {
            data: ParsedAttestationData::None,
            metadata: AttestationMetadata::None,
        },
        attestation_format: AttestationFormat::None,
    })
}

/// The identity's `webauthn` credential config (empty when it has none).
fn webauthn_config(identity: &Identity) -> PasskeyConfig {
    identity
        .credentials
        .get("webauthn")
        .map(|c| PasskeyConfig::from_value(&c.config))
        .unwrap_or_default()
}

/// The identity's user handle, or a new one.
fn user_handle(config: &PasskeyConfig) -> Uuid {
    Uuid::from_slice(&config.user_handle).unwrap_or_else(|_| Uuid::new_v4())
}
