//! The `passkey` method: discoverable WebAuthn credentials as a first factor, for sign up,
//! sign in (button or browser autofill) and settings, in browser and native (API) flows.
//! Kratos: `selfservice/strategy/passkey`.
//!
//! Ceremony state (the challenge) lives in the flow's server-side `internal` state and is
//! taken out and claimed in the database on each submission ([`claim_internal`]), so every
//! challenge answers at most once, also when two submissions race. Verification
//! (origin, RP id hash, UP and UV, signature, counter, backup flags) is webauthn-rs'.

pub mod config;
pub mod credentials;
mod login;
pub mod nodes;
mod registration;
mod settings;

use serde_json::{Value, json};
use webauthn_rs::prelude::{
    COSEAlgorithm, CreationChallengeResponse, CredentialID, DiscoverableAuthentication, PasskeyRegistration, Uuid,
    Webauthn, WebauthnError,
};
use webauthn_rs_proto::{
    AuthenticatorSelectionCriteria, PubKeyCredParams, ResidentKeyRequirement, UserVerificationPolicy,
};

use self::config::{RelyingParty, RpError};
use crate::model::flow::Flow;

/// Internal-state key of a pending registration ceremony (`{state, user_handle}`).
const REGISTRATION_KEY: &str = "passkey_registration";
/// Internal-state key of a pending sign-in ceremony.
const LOGIN_KEY: &str = "passkey_login";

/// The passkey strategy with its relying party.
#[derive(Debug, Clone)]
pub struct Passkey {
    rp: RelyingParty,
    webauthn: Webauthn,
}

impl super::Strategy for Passkey {
    fn id(&self) -> &'static str {
        "passkey"
    }
    fn login(&self) -> Option<&dyn super::LoginStrategy> {
        Some(self)
    }
    fn registration(&self) -> Option<&dyn super::RegistrationStrategy> {
        Some(self)
    }
    fn settings(&self) -> Option<&dyn super::SettingsStrategy> {
        Some(self)
    }
    fn webauthn_relying_party(&self) -> Option<&RelyingParty> {
        Some(&self.rp)
    }
}

/// The WebAuthn credentials in a stored config (`passkey` or `webauthn`).
pub(crate) fn stored_keys(identity: &crate::identity::Identity, kind: &str) -> Vec<Value> {
    identity
        .credentials
        .get(kind)
        .and_then(|c| c.config.get("credentials"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The `passkey` credential: discoverable WebAuthn credentials found by their user handle.
#[derive(Debug)]
struct PasskeyCredential;

#[async_trait::async_trait]
impl super::CredentialType for PasskeyCredential {
    fn id(&self) -> &'static str {
        "passkey"
    }
    fn signs_in_alone(&self, _config: &crate::config::Config, identity: &crate::identity::Identity) -> bool {
        !stored_keys(identity, "passkey").is_empty()
    }
    async fn import(
        &self,
        _cx: &super::ImportCx<'_>,
        _identity: &crate::identity::Identity,
        config: Value,
    ) -> Result<Option<super::Imported>, super::ImportError> {
        if config.is_null() {
            return Ok(None);
        }
        let identifiers = config
            .get("user_handle")
            .and_then(Value::as_str)
            .map(|h| vec![h.to_string()])
            .unwrap_or_default();
        Ok(Some(super::Imported {
            identifiers,
            config,
            version: 1,
        }))
    }
}

static PASSKEY: PasskeyCredential = PasskeyCredential;

/// Registers the passkey method (on by default in Latch; needs a relying party).
pub fn register(r: &mut super::Registry<'_>) {
    r.credential(&PASSKEY);
    if r.config().selfservice.methods.passkey.enabled {
        match Passkey::new(r.config()) {
            Ok(p) => r.strategy(std::sync::Arc::new(p)),
            Err(e) => tracing::warn!(error = %e, "passkeys are not offered"),
        }
    }
}

/// A started registration: the options for the client and the state to keep.
struct Creation {
    /// `{"publicKey": …}` as the browser's `navigator.credentials.create` takes it.
    options: Value,
    /// The serialised webauthn-rs state.
    state: Value,
}

impl Passkey {
    /// The strategy for this configuration's relying party.
    pub fn new(config: &crate::config::Config) -> Result<Passkey, RpError> {
        let rp = config::resolve(config)?;
        let webauthn = rp.webauthn()?;
        Ok(Passkey { rp, webauthn })
    }

    /// Starts a registration for `user_handle`: a discoverable credential (resident key
    /// required), user verification required, ES256 or RS256, none of `exclude`.
    fn start_registration(
        &self,
        user_handle: &str,
        user_name: &str,
        exclude: Vec<CredentialID>,
    ) -> Result<Creation, WebauthnError> {
        let name = if user_name.is_empty() {
            self.rp.display_name.as_str()
        } else {
            user_name
        };
        let exclude = if exclude.is_empty() { None } else { Some(exclude) };
        // webauthn-rs names users by UUID; the options carry Kratos' 64-character handle
        // instead (the registration state does not depend on the user id).
        let (mut ccr, state): (CreationChallengeResponse, PasskeyRegistration) = self
            .webauthn
            .start_passkey_registration(Uuid::new_v4(), name, name, exclude)?;
        let pk = &mut ccr.public_key;
        pk.user.id = user_handle.as_bytes().to_vec();
        pk.pub_key_cred_params = [COSEAlgorithm::ES256, COSEAlgorithm::RS256]
            .into_iter()
            .map(|alg| PubKeyCredParams {
                type_: "public-key".into(),
                alg: alg as i64,
            })
            .collect();
        let attachment = pk
            .authenticator_selection
            .take()
            .and_then(|s| s.authenticator_attachment);
        pk.authenticator_selection = Some(AuthenticatorSelectionCriteria {
            authenticator_attachment: attachment,
            resident_key: Some(ResidentKeyRequirement::Required),
            require_resident_key: true,
            user_verification: UserVerificationPolicy::Required,
        });
        Ok(Creation {
            options: serde_json::to_value(&ccr).map_err(|_| WebauthnError::InvalidUsername)?,
            state: serde_json::to_value(&state).map_err(|_| WebauthnError::InvalidUsername)?,
        })
    }

    /// Starts a discoverable sign in; returns `{"publicKey": …}` without `allowCredentials`
    /// (any passkey of this RP may answer) and stores the state in the flow.
    fn start_login(&self, flow: &mut Flow) -> Result<Value, WebauthnError> {
        let (rcr, state): (_, DiscoverableAuthentication) = self.webauthn.start_discoverable_authentication()?;
        let mut options = json!({ "publicKey": serde_json::to_value(&rcr.public_key).unwrap_or(Value::Null) });
        if let Some(pk) = options.get_mut("publicKey").and_then(Value::as_object_mut) {
            pk.remove("allowCredentials");
        }
        flow.internal_set(
            LOGIN_KEY,
            serde_json::to_value(&state).map_err(|_| WebauthnError::InvalidUsername)?,
        );
        Ok(options)
    }

    /// The relying party (for `/.well-known/webauthn`).
    pub fn relying_party(&self) -> &RelyingParty {
        &self.rp
    }
}

/// Takes a value out of the flow's internal state (single use).
fn take_internal(flow: &mut Flow, key: &str) -> Option<Value> {
    flow.internal.as_object_mut().and_then(|o| o.remove(key))
}

/// The single-use marker of the pending ceremony `state` under `key` in `flow`, and until when
/// it is kept: the key and expiry [`crate::limits::consume_once`] uses for the `ceremony`
/// markers of [`claim_internal`], so both ways of claiming agree (also across nodes running
/// different versions).
fn ceremony_marker(flow: &Flow, key: &str, state: &Value) -> (String, i64) {
    let marker = format!("{}:{key}:{state}", flow.id);
    let expires_ms = i64::try_from(flow.expires_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    (
        format!("once:ceremony:{}", crate::crypto::sha256_hex(marker.as_bytes())),
        expires_ms,
    )
}

/// Claims a ceremony already taken out of the flow (see [`claim_internal`]).
async fn claim_taken(
    env: &crate::deps::Env,
    flow: &Flow,
    key: &str,
    state: Option<Value>,
) -> Result<Option<Value>, crate::store::StoreError> {
    let Some(state) = state else {
        return Ok(None);
    };
    let (once, until) = ceremony_marker(flow, key, &state);
    Ok(env.store.consume_once(&once, until).await?.then_some(state))
}

/// Takes a pending ceremony out of the flow AND claims it in the database, so that of two
/// submissions answering the same challenge at once (both loaded the flow before either
/// saved it) only one proceeds. `None` when there was none or another request claimed it.
pub(crate) async fn claim_internal(
    env: &crate::deps::Env,
    flow: &mut Flow,
    key: &str,
) -> Result<Option<Value>, crate::store::StoreError> {
    let state = take_internal(flow, key);
    claim_taken(env, flow, key, state).await
}

/// Attempts of [`save_sign_in`] before it gives up on a credential others keep changing.
const SAVE_ATTEMPTS: usize = 3;

/// Stores what a sign in learnt about one WebAuthn credential (`cred_id` inside the
/// identity's `kind` credential: `passkey` or `webauthn`): `apply` updates its entry (sign
/// counter, flags, clone warning). One statement, a compare-and-swap on that credential's row
/// alone ([`crate::store::Store::replace_credential_config`]), so the identity's other rows
/// are not rewritten and a concurrent change (another sign in's counter, a passkey added in
/// settings) is never overwritten with what this request read: when the row changed since it
/// was read, it is read again and `apply` runs on the fresh config. `identity` is updated in
/// memory. A failure only costs freshness (as Kratos, the sign in still succeeds).
pub(crate) async fn save_sign_in(
    env: &crate::deps::Env,
    identity: &mut crate::identity::Identity,
    kind: &str,
    cred_id: &[u8],
    apply: impl Fn(&mut credentials::StoredCredential),
) {
    for attempt in 0..SAVE_ATTEMPTS {
        if attempt > 0 {
            // Someone else changed the row: take their version of this credential.
            match env.store.get_identity(identity.id).await {
                Ok(Some(fresh)) => match fresh.credentials.get(kind) {
                    Some(c) => {
                        identity.credentials.insert(c.kind.clone(), c.clone());
                    }
                    None => return,
                },
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "could not store the WebAuthn sign counter");
                    return;
                }
            }
        }
        let Some(c) = identity.credentials.get_mut(kind) else {
            return;
        };
        let mut config = credentials::PasskeyConfig::from_value(&c.config);
        let Some(entry) = config.find_mut(cred_id) else {
            return;
        };
        apply(entry);
        let now = env.clock.now();
        let value = config.to_value();
        match env
            .store
            .replace_credential_config(c.id, c.updated_at, &value, now)
            .await
        {
            Ok(true) => {
                c.config = value;
                c.updated_at = now;
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not store the WebAuthn sign counter");
                return;
            }
        }
    }
    tracing::warn!(identity = %identity.id, "could not store the WebAuthn sign counter: the credential kept changing");
}

/// A fresh user handle: 64 ASCII alphanumerics (Kratos' format).
fn new_user_handle() -> String {
    crate::crypto::random_alnum(credentials::USER_HANDLE_LEN)
}
