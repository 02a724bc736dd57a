//! Sign in with a security key: two steps by identifier (passwordless mode) or the second
//! factor of an `aal2` flow. Kratos: `selfservice/strategy/webauthn/login.go`.

use async_trait::async_trait;
use serde_json::{Value, json};
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, SecurityKeyAuthentication};

use super::nodes::{hidden, trigger_button};
use super::{LOGIN_KEY, SecurityKeys};
use crate::deps::Env;
use crate::identity::{Identity, State};
use crate::model::flow::{Flow, FlowType};
use crate::strategy::passkey::nodes::add_script;
use crate::strategy::{Cx, FlowError, LoginOutcome, LoginStrategy, field};
use crate::text;
use crate::ui::{Autocomplete, Group, InputType, Node, Trigger};

impl SecurityKeys {
    /// The challenge nodes for `identity`'s keys; false when it has none.
    fn challenge_nodes(&self, env: &Env, flow: &mut Flow, identity: &Identity) -> bool {
        let Some(options) = self.start_login(flow, identity) else {
            return false;
        };
        add_script(env, flow);
        flow.ui.upsert(trigger_button(
            "webauthn_login_trigger",
            Trigger::WebAuthnLogin,
            &options,
            text::login_continue(),
        ));
        flow.ui.upsert(hidden("webauthn_login"));
        true
    }

    /// The challenge for an identifier: its keys, or (enumeration protection) a decoy
    /// challenge shaped alike when it has none. False when nothing could be shown.
    fn identifier_challenge(&self, env: &Env, flow: &mut Flow, identity: Option<&Identity>, normalized: &str) -> bool {
        if identity.is_some_and(|i| self.challenge_nodes(env, flow, i)) {
            return true;
        }
        if !env.config.security.account_enumeration.mitigate {
            return false;
        }
        let Some(options) = self.start_decoy_login(flow, &env.hash_key, normalized) else {
            return false;
        };
        add_script(env, flow);
        flow.ui.upsert(trigger_button(
            "webauthn_login_trigger",
            Trigger::WebAuthnLogin,
            &options,
            text::login_continue(),
        ));
        flow.ui.upsert(hidden("webauthn_login"));
        true
    }

    /// Step 1 of the passwordless sign in: the identifier picks the keys to ask for.
    async fn identifier_step(&self, env: &Env, flow: &mut Flow, identifier: &str) -> Result<LoginOutcome, FlowError> {
        let normalized = crate::identity::schema::normalize_identifier(identifier);
        let identity = env.store.find_identity_by_identifier("webauthn", &normalized).await?;
        if !self.identifier_challenge(env, flow, identity.as_ref(), &normalized) {
            return Err(FlowError::message(text::no_webauthn_user()));
        }
        flow.ui.remove_in_group(Group::Webauthn, &["method"]);
        flow.ui
            .upsert(Node::input("identifier", InputType::Hidden, Group::Default).value(identifier.to_string()));
        flow.ui.add_message(text::login_webauthn_passwordless());
        Ok(LoginOutcome::Continue)
    }

    /// Verifies the assertion against the keys the challenge was issued for.
    async fn verify(&self, env: &Env, flow: &mut Flow, raw: &str) -> Result<Identity, FlowError> {
        let pending = crate::strategy::passkey::claim_internal(env, flow, LOGIN_KEY).await?;
        let Some(pending) = pending else {
            return Err(FlowError::message(text::webauthn_invalid()));
        };
        let state = pending
            .get("state")
            .cloned()
            .and_then(|s| serde_json::from_value::<SecurityKeyAuthentication>(s).ok());
        let identity_id = pending
            .get("identity_id")
            .cloned()
            .and_then(|v| serde_json::from_value::<Uuid>(v).ok());
        let credential = serde_json::from_str::<PublicKeyCredential>(raw).map_err(|e| {
            FlowError::message(text::validation_generic(&format!(
                "Unable to parse WebAuthn response: {e}"
            )))
        })?;
        let (Some(state), Some(identity_id)) = (state, identity_id) else {
            return Err(FlowError::message(text::webauthn_invalid()));
        };
        // A decoy challenge (nil identity) fails here exactly like a wrong key.
        let Some(mut identity) = env.store.get_identity(identity_id).await? else {
            return Err(FlowError::message(text::webauthn_invalid()));
        };
        let result = match self.webauthn.finish_securitykey_authentication(&credential, &state) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "security key assertion refused");
                return Err(FlowError::message(text::webauthn_invalid()));
            }
        };
        crate::strategy::passkey::save_sign_in(env, &mut identity, "webauthn", result.cred_id(), |entry| {
            let auth = entry.authenticator.get_or_insert_with(Default::default);
            auth.sign_count = auth.sign_count.max(result.counter());
            let flags = entry.flags.get_or_insert_with(Default::default);
            flags.user_verified = result.user_verified();
            flags.backup_eligible = result.backup_eligible();
            flags.backup_state = result.backup_state();
        })
        .await;
        Ok(identity)
    }
}

#[async_trait]
impl LoginStrategy for SecurityKeys {
    fn id(&self) -> &'static str {
        "webauthn"
    }

    fn populate(&self, env: &Env, flow: &mut Flow, signed_in: Option<&Identity>) {
        if flow.flow_type == FlowType::Api {
            return;
        }
        match (flow.requested_aal.as_str(), self.passwordless, signed_in) {
            ("aal1", true, _) => {
                match flow.ui.get_mut("identifier").and_then(Node::input_attributes_mut) {
                    Some(a) => a.autocomplete = Some(Autocomplete::UsernameWebauthn),
                    None => flow.ui.upsert(
                        crate::strategy::shared::identifier_node(env).autocomplete(Autocomplete::UsernameWebauthn),
                    ),
                }
                flow.ui.append(
                    Node::input("method", InputType::Submit, Group::Webauthn)
                        .value("webauthn")
                        .label(text::login_webauthn()),
                );
            }
            ("aal2", false, Some(identity)) => {
                self.challenge_nodes(env, flow, identity);
            }
            _ => {}
        }
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError> {
        let env = cx.env;
        let second_factor = flow.requested_aal == "aal2";
        if flow.flow_type == FlowType::Api || second_factor == self.passwordless {
            return Err(FlowError::message(text::login_no_strategy()));
        }
        let raw = field(body, "webauthn_login").unwrap_or("").trim();
        if raw.is_empty() {
            let identifier = field(body, "identifier").unwrap_or("").trim();
            if second_factor || identifier.is_empty() {
                return Err(FlowError::on_node("identifier", text::required("identifier")));
            }
            return self.identifier_step(env, flow, identifier).await;
        }
        let identity = match self.verify(env, flow, raw).await {
            Ok(i) => i,
            Err(e) => {
                // A fresh challenge for the next try.
                if let (true, Some(id)) = (second_factor, flow.identity_id) {
                    if let Some(who) = env.store.get_identity(id).await? {
                        self.challenge_nodes(env, flow, &who);
                    }
                } else {
                    let identifier = field(body, "identifier").unwrap_or("").trim();
                    let normalized = crate::identity::schema::normalize_identifier(identifier);
                    let who = env.store.find_identity_by_identifier("webauthn", &normalized).await?;
                    if who.is_some() || !normalized.is_empty() {
                        self.identifier_challenge(env, flow, who.as_ref(), &normalized);
                    }
                }
                return Err(e);
            }
        };
        if second_factor && flow.identity_id != Some(identity.id) {
            return Err(FlowError::message(text::webauthn_invalid()));
        }
        if identity.state != State::Active {
            return Err(FlowError::message(text::identity_disabled()));
        }
        flow.active = Some("webauthn".into());
        flow.ui.set_value("webauthn_login", json!(""));
        Ok(LoginOutcome::Authenticated {
            identity: Box::new(identity),
            method: "webauthn",
            aal: if second_factor {
                crate::model::Aal::Aal2
            } else {
                crate::model::Aal::Aal1
            },
        })
    }
}
