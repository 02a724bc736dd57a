//! Passkey sign in: discoverable credentials, chosen by the person (button) or offered by
//! the browser's autofill. Kratos: `selfservice/strategy/passkey/passkey_login.go`.

use async_trait::async_trait;
use serde_json::{Value, json};
use webauthn_rs::prelude::{DiscoverableAuthentication, PublicKeyCredential, WebauthnError};

use super::credentials::PasskeyConfig;
use super::nodes::{add_script, hidden, trigger_button, without_inline_js};
use super::{LOGIN_KEY, Passkey};
use crate::deps::Env;
use crate::identity::{Identity, State};
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, LoginOutcome, LoginStrategy, field};
use crate::text;
use crate::ui::{Autocomplete, Node, Trigger};

impl Passkey {
    /// Puts a new challenge and the sign-in nodes into the flow.
    fn login_nodes(&self, env: &Env, flow: &mut Flow) {
        let challenge = match self.start_login(flow) {
            Ok(c) => c.to_string(),
            Err(e) => {
                tracing::error!(error = %e, "could not start a passkey sign in");
                return;
            }
        };
        match flow.ui.get_mut("identifier").and_then(Node::input_attributes_mut) {
            Some(a) => a.autocomplete = Some(Autocomplete::UsernameWebauthn),
            None => flow
                .ui
                .upsert(crate::strategy::shared::identifier_node(env).autocomplete(Autocomplete::UsernameWebauthn)),
        }
        add_script(env, flow);
        flow.ui.upsert(hidden("passkey_challenge", Some(challenge)));
        let login = hidden("passkey_login", None).onload_trigger(Trigger::PasskeyLoginAutocompleteInit);
        let login = without_inline_js(flow, login);
        flow.ui.upsert(login);
        let button = trigger_button(
            flow,
            "passkey_login_trigger",
            Trigger::PasskeyLogin,
            text::login_passkey(),
        )
        .value("");
        flow.ui.upsert(button);
    }

    /// A failed attempt: a new challenge for the next one, and the message.
    fn login_failed(&self, env: &Env, flow: &mut Flow, message: text::UiText) -> FlowError {
        self.login_nodes(env, flow);
        FlowError::message(message)
    }

    /// Verifies `raw` (the browser's credential JSON) and returns the identity it proves.
    ///
    /// The pending challenge is taken out of the flow and claimed in the database on every
    /// path, before the assertion is checked: a failed try uses it up, and of concurrent
    /// submissions of one challenge at most one gets past the claim. On PostgreSQL the claim
    /// and the identity lookup are one statement.
    async fn verify_login(&self, env: &Env, flow: &mut Flow, raw: &str) -> Result<Identity, FlowError> {
        let pending = super::take_internal(flow, LOGIN_KEY);
        let credential: PublicKeyCredential = match serde_json::from_str(raw) {
            Ok(c) => c,
            Err(e) => {
                super::claim_taken(env, flow, LOGIN_KEY, pending).await?;
                let reason = format!("Unable to parse WebAuthn response: {e}");
                return Err(self.login_failed(env, flow, text::validation_generic(&reason)));
            }
        };
        let handle = credential
            .response
            .user_handle
            .as_deref()
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| !h.is_empty())
            .map(str::to_string);
        let Some(handle) = handle else {
            super::claim_taken(env, flow, LOGIN_KEY, pending).await?;
            return Err(self.login_failed(env, flow, text::no_webauthn_user()));
        };
        let (state, identity) = match pending {
            Some(pending) => {
                let (once, until) = super::ceremony_marker(flow, LOGIN_KEY, &pending);
                let (claimed, identity) = env
                    .store
                    .consume_once_and_find_identity_by_identifier(&once, until, "passkey", &handle)
                    .await?;
                (claimed.then_some(pending), identity)
            }
            None => (None, env.store.find_identity_by_identifier("passkey", &handle).await?),
        };
        let state = state.and_then(|s| serde_json::from_value::<DiscoverableAuthentication>(s).ok());
        let Some(mut identity) = identity else {
            return Err(self.login_failed(env, flow, text::no_webauthn_user()));
        };
        let Some(stored) = identity.credentials.get("passkey") else {
            return Err(self.login_failed(env, flow, text::no_webauthn_user()));
        };
        let config = PasskeyConfig::from_value(&stored.config);
        let Some(entry) = config.find(&credential.raw_id) else {
            return Err(self.login_failed(env, flow, text::no_webauthn_user()));
        };
        let Some(state) = state else {
            // No pending challenge: this one was answered already (a replay) or never issued.
            return Err(self.login_failed(env, flow, text::webauthn_invalid()));
        };
        let known = match entry.to_webauthn() {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, identity = %identity.id, "stored passkey is unreadable");
                return Err(self.login_failed(env, flow, text::webauthn_invalid()));
            }
        };
        let result = match self
            .webauthn
            .finish_discoverable_authentication_v2(&credential, state, known)
        {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, WebauthnError::CredentialPossibleCompromise) {
                    super::save_sign_in(env, &mut identity, "passkey", &credential.raw_id, |entry| {
                        entry.authenticator.get_or_insert_with(Default::default).clone_warning = true;
                    })
                    .await;
                }
                tracing::info!(error = %e, "passkey assertion refused");
                return Err(self.login_failed(env, flow, text::webauthn_invalid()));
            }
        };
        super::save_sign_in(env, &mut identity, "passkey", &credential.raw_id, |entry| {
            let auth = entry.authenticator.get_or_insert_with(Default::default);
            auth.sign_count = auth.sign_count.max(result.counter());
            let flags = entry.flags.get_or_insert_with(Default::default);
            flags.user_present = true;
            flags.user_verified = result.user_verified();
            flags.backup_eligible = result.backup_eligible();
            flags.backup_state = result.backup_state();
        })
        .await;
        Ok(identity)
    }
}

#[async_trait]
impl LoginStrategy for Passkey {
    fn id(&self) -> &'static str {
        "passkey"
    }

    fn populate(&self, env: &Env, flow: &mut Flow, _signed_in: Option<&Identity>) {
        if flow.requested_aal != "aal1" {
            return;
        }
        self.login_nodes(env, flow);
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError> {
        let env = cx.env;
        let raw = field(body, "passkey_login").unwrap_or("").trim();
        if raw.is_empty() {
            if flow.flow_type == crate::model::flow::FlowType::Browser {
                // As Kratos: the browser must run the WebAuthn ceremony on the flow's page
                // (422 `browser_location_change_required` for SPAs, a redirect for forms).
                return Err(FlowError::BrowserLocationChange);
            }
            // Native apps get the flow back with fresh options to run the ceremony.
            self.login_nodes(env, flow);
            return Ok(LoginOutcome::Continue);
        }
        let identity = self.verify_login(env, flow, raw).await?;
        if identity.state != State::Active {
            return Err(self.login_failed(env, flow, text::identity_disabled()));
        }
        flow.active = Some("passkey".into());
        flow.ui.set_value("passkey_login", json!(""));
        Ok(LoginOutcome::Authenticated {
            identity: Box::new(identity),
            method: "passkey",
            aal: crate::model::Aal::Aal1,
        })
    }
}
