//! Sign up with a passkey. Kratos: `selfservice/strategy/passkey/passkey_registration.go`.

use async_trait::async_trait;
use serde_json::{Value, json};
use webauthn_rs::prelude::{Credential, PasskeyRegistration, RegisterPublicKeyCredential};

use super::credentials::{PasskeyConfig, StoredCredential};
use super::nodes::{add_script, hidden, trigger_button};
use super::{Passkey, REGISTRATION_KEY, new_user_handle, take_internal};
use crate::deps::Env;
use crate::identity::manager::{TraitsError, apply_traits, new_identity, set_credential};
use crate::model::flow::Flow;
use crate::strategy::shared::traits_from;
use crate::strategy::{
    Cx, FlowError, RegistrationOutcome, RegistrationStep, RegistrationStrategy, field, traits_invalid,
};
use crate::text::{self, UiText};
use crate::ui::Trigger;

/// Form fields whose value names the passkey (`passkey.display_name` traits, else
/// `webauthn` identifiers). Kratos: `passkey_schema_extension.go`.
pub fn display_name_fields(env: &Env) -> Vec<String> {
    let Some(schema) = env.schemas.default_schema() else {
        return vec![];
    };
    let mut marked = vec![];
    let mut identifiers = vec![];
    if let Some(traits) = schema.raw.pointer("/properties/traits") {
        walk(traits, "traits", &mut marked, &mut identifiers);
    }
    if marked.is_empty() { identifiers } else { marked }
}

fn walk(node: &Value, path: &str, marked: &mut Vec<String>, identifiers: &mut Vec<String>) {
    let creds = node.pointer("/ory.sh~1kratos/credentials");
    if creds.and_then(|c| c.pointer("/passkey/display_name")) == Some(&json!(true)) {
        marked.push(path.to_string());
    }
    if creds.and_then(|c| c.pointer("/webauthn/identifier")) == Some(&json!(true)) {
        identifiers.push(path.to_string());
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            walk(v, &format!("{path}.{k}"), marked, identifiers);
        }
    }
}

/// The value at a dotted `traits.…` path.
fn trait_value(traits: Option<&Value>, path: &str) -> Option<String> {
    let mut cur = traits?;
    for part in path.split('.').skip(1) {
        cur = cur.get(part)?;
    }
    cur.as_str().map(str::to_string)
}

impl Passkey {
    /// Starts a registration ceremony for the flow and shows its nodes.
    fn registration_nodes(&self, env: &Env, flow: &mut Flow, fields: &[String]) {
        let handle = flow
            .internal_get(REGISTRATION_KEY)
            .and_then(|r| r.get("user_handle"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(new_user_handle);
        let name = fields
            .iter()
            .find_map(|f| trait_value(flow.internal_get("traits"), f))
            .unwrap_or_default();
        // As Kratos (`passkey_registration.go`, `session_options`): while a ceremony is
        // pending, every re-render of the form shows the same options, so a UI that keeps the
        // first render's hidden inputs (Ory Elements) answers the challenge we expect.
        let pending = flow
            .internal_get(REGISTRATION_KEY)
            .filter(|p| p.get("state").is_some())
            .and_then(|p| p.get("options"))
            .filter(|o| o.is_object())
            .cloned();
        let options = match pending {
            Some(o) => o,
            None => {
                let creation = match self.start_registration(&handle, &name, vec![]) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "could not start a passkey registration");
                        return;
                    }
                };
                flow.internal_set(
                    REGISTRATION_KEY,
                    json!({"state": creation.state, "user_handle": handle, "options": creation.options}),
                );
                creation.options
            }
        };
        let data = json!({
            "credentialOptions": options,
            "displayNameFieldName": fields.first().cloned().unwrap_or_default(),
            "displayNameFieldNames": fields,
        });
        flow.ui.upsert(hidden("passkey_create_data", Some(data.to_string())));
        let button = trigger_button(
            flow,
            "passkey_register_trigger",
            Trigger::PasskeyRegistration,
            text::registration_passkey(),
        );
        flow.ui.upsert(button);
        add_script(env, flow);
        flow.ui.upsert(hidden("passkey_register", None));
    }

    /// A failed attempt: a fresh challenge (same user handle) and the message.
    fn registration_failed(&self, env: &Env, flow: &mut Flow, message: UiText) -> FlowError {
        self.registration_nodes(env, flow, &display_name_fields(env));
        FlowError::message(message)
    }
}

#[async_trait]
impl RegistrationStrategy for Passkey {
    fn id(&self) -> &'static str {
        "passkey"
    }

    fn populate(&self, env: &Env, flow: &mut Flow, _step: RegistrationStep) {
        let fields = display_name_fields(env);
        if fields.is_empty() {
            tracing::warn!(
                "no identity schema trait is marked as passkey display name (ory.sh/kratos.credentials.passkey.display_name): passkey registration is not offered"
            );
            return;
        }
        self.registration_nodes(env, flow, &fields);
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RegistrationOutcome, FlowError> {
        let env = cx.env;
        let traits = traits_from(flow, body)?;
        let raw = field(body, "passkey_register").unwrap_or("").trim();
        if raw.is_empty() || raw == "true" {
            return Err(FlowError::on_node(
                "passkey_register",
                text::required("passkey_register"),
            ));
        }
        let mut identity = new_identity(env.schemas.default_id(), traits, env.clock.as_ref());
        match apply_traits(&mut identity, &env.schemas, env.clock.as_ref()) {
            Ok(_) => {}
            Err(TraitsError::Invalid(errs)) => return Err(traits_invalid(&errs)),
            Err(e) => return Err(FlowError::message(text::system_generic(&e.to_string()))),
        }
        let pending = take_internal(flow, REGISTRATION_KEY).unwrap_or(Value::Null);
        let handle = pending
            .get("user_handle")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let state = pending
            .get("state")
            .cloned()
            .and_then(|s| serde_json::from_value::<PasskeyRegistration>(s).ok());
        if !handle.is_empty() {
            // Keep the handle for a retry.
            flow.internal_set(REGISTRATION_KEY, json!({"user_handle": handle}));
        }
        let reg: RegisterPublicKeyCredential = match serde_json::from_str(raw) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("Unable to parse WebAuthn response: {e}");
                return Err(self.registration_failed(env, flow, text::validation_generic(&reason)));
            }
        };
        let (Some(state), false) = (state, handle.is_empty()) else {
            return Err(self.registration_failed(env, flow, text::webauthn_invalid()));
        };
        let stored = match self.webauthn.finish_passkey_registration(&reg, &state) {
            Ok(pk) => StoredCredential::from_registration(&reg, &Credential::from(pk), env.clock.now()),
            Err(e) => {
                tracing::info!(error = %e, "passkey registration refused");
                return Err(self.registration_failed(env, flow, text::webauthn_invalid()));
            }
        };
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(error = %e, "passkey registration unreadable");
                return Err(self.registration_failed(env, flow, text::webauthn_invalid()));
            }
        };
        let config = PasskeyConfig {
            credentials: vec![stored],
            user_handle: handle.as_bytes().to_vec(),
            extra: Default::default(),
        };
        set_credential(
            &mut identity,
            "passkey",
            vec![handle],
            config.to_value(),
            1,
            env.clock.as_ref(),
        );
        Ok(RegistrationOutcome::Create {
            identity: Box::new(identity),
            method: "passkey",
        })
    }
}
