//! Add and remove passkeys in settings. Kratos: `selfservice/strategy/passkey/passkey_settings.go`.

use async_trait::async_trait;
use serde_json::{Value, json};
use webauthn_rs::prelude::{Credential, PasskeyRegistration, RegisterPublicKeyCredential};

use super::credentials::{PasskeyConfig, StoredCredential};
use super::nodes::{add_script, hidden, trigger_button};
use super::{Passkey, REGISTRATION_KEY, new_user_handle, take_internal};
use crate::crypto::hex;
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::set_credential;
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, SettingsStrategy, field};
use crate::text::{self, UiText};
use crate::ui::{Group, InputType, Node, Trigger};

fn lockout() -> UiText {
    text::validation_generic(
        "Unable to remove this passkey because it would lock you out of your account: add another way to sign in first.",
    )
}

impl Passkey {
    fn settings_failed(&self, env: &Env, flow: &mut Flow, identity: &Identity, m: UiText) -> FlowError {
        SettingsStrategy::populate(self, env, flow, identity);
        FlowError::message(m)
    }

    async fn add_passkey(
        &self,
        env: &Env,
        flow: &mut Flow,
        identity: &Identity,
        raw: &str,
    ) -> Result<Identity, FlowError> {
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
        let reg: RegisterPublicKeyCredential = match serde_json::from_str(raw) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("Unable to parse WebAuthn response: {e}");
                return Err(self.settings_failed(env, flow, identity, text::validation_generic(&reason)));
            }
        };
        let (Some(state), false) = (state, handle.is_empty()) else {
            return Err(self.settings_failed(env, flow, identity, text::webauthn_invalid()));
        };
        let stored = self
            .webauthn
            .finish_passkey_registration(&reg, &state)
            .map_err(|e| e.to_string())
            .and_then(|pk| {
                StoredCredential::from_registration(&reg, &Credential::from(pk), env.clock.now())
                    .map_err(|e| e.to_string())
            });
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(error = %e, "passkey registration refused");
                return Err(self.settings_failed(env, flow, identity, text::webauthn_invalid()));
            }
        };
        let mut updated = identity.clone();
        let mut config = updated
            .credentials
            .get("passkey")
            .map(|c| PasskeyConfig::from_value(&c.config))
            .unwrap_or_default();
        if config.credentials.iter().any(|c| c.id == stored.id) {
            return Err(self.settings_failed(env, flow, identity, text::webauthn_invalid()));
        }
        config.credentials.push(stored);
        config.user_handle = handle.as_bytes().to_vec();
        set_credential(
            &mut updated,
            "passkey",
            vec![handle],
            config.to_value(),
            1,
            env.clock.as_ref(),
        );
        Ok(updated)
    }

    fn remove_passkey(
        &self,
        env: &Env,
        flow: &mut Flow,
        identity: &Identity,
        hex_id: &str,
    ) -> Result<Identity, FlowError> {
        let mut updated = identity.clone();
        let Some(cred) = updated.credentials.get("passkey") else {
            return Err(self.settings_failed(env, flow, identity, text::no_webauthn_device()));
        };
        let mut config = PasskeyConfig::from_value(&cred.config);
        let identifiers = cred.identifiers.clone();
        let before = config.credentials.len();
        config
            .credentials
            .retain(|c| hex(&c.id) != hex_id.trim().to_ascii_lowercase());
        if config.credentials.len() == before {
            return Err(self.settings_failed(env, flow, identity, text::no_webauthn_device()));
        }
        if config.credentials.is_empty()
            && !env
                .credentials
                .has_first_factor_besides(&env.config, identity, "passkey")
        {
            return Err(self.settings_failed(env, flow, identity, lockout()));
        }
        if config.credentials.is_empty() {
            updated.credentials.remove("passkey");
        } else {
            set_credential(
                &mut updated,
                "passkey",
                identifiers,
                config.to_value(),
                1,
                env.clock.as_ref(),
            );
        }
        Ok(updated)
    }
}

#[async_trait]
impl SettingsStrategy for Passkey {
    fn id(&self) -> &'static str {
        "passkey"
    }

    fn populate(&self, env: &Env, flow: &mut Flow, identity: &Identity) {
        flow.ui.remove_group(Group::Passkey);
        let config = identity
            .credentials
            .get("passkey")
            .map(|c| PasskeyConfig::from_value(&c.config))
            .unwrap_or_default();
        for c in &config.credentials {
            flow.ui.append(
                Node::input("passkey_remove", InputType::Submit, Group::Passkey)
                    .value(hex(&c.id))
                    .label(text::settings_remove_passkey(c.label_name(), c.added_at_time())),
            );
        }
        // Identities without passkeys get a user handle when they add one; a pending
        // registration already picked it.
        let handle = config.handle_str().unwrap_or_else(|| {
            flow.internal_get(REGISTRATION_KEY)
                .and_then(|p| p.get("user_handle"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(new_user_handle)
        });
        let name = crate::identity::manager::apply_traits(&mut identity.clone(), &env.schemas, env.clock.as_ref())
            .ok()
            .and_then(|x| x.passkey_display_name)
            .unwrap_or_else(|| identity.id.to_string());
        let exclude: Vec<_> = config.credentials.iter().map(|c| c.id.clone()).collect();
        let exclude_hex: Vec<String> = exclude.iter().map(|id| hex(id)).collect();
        // A form re-rendered while a registration is pending (e.g. after saving the profile)
        // keeps its challenge: UI kits that keep their own copy of the hidden inputs (Ory
        // Elements) would otherwise answer the previous challenge. The state is single use.
        let pending = flow.internal_get(REGISTRATION_KEY).filter(|p| {
            p.get("user_handle").and_then(Value::as_str) == Some(handle.as_str())
                && p.get("name").and_then(Value::as_str) == Some(name.as_str())
                && p.get("exclude") == Some(&json!(exclude_hex))
                && p.get("options").and_then(Value::as_str).is_some()
                && p.get("state").is_some()
        });
        let options = match pending.and_then(|p| p.get("options").and_then(Value::as_str)) {
            Some(o) => o.to_string(),
            None => {
                let creation = match self.start_registration(&handle, &name, exclude) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "could not start a passkey registration");
                        return;
                    }
                };
                let options = creation.options.to_string();
                flow.internal_set(
                    REGISTRATION_KEY,
                    json!({
                        "state": creation.state,
                        "user_handle": handle,
                        "name": name,
                        "exclude": exclude_hex,
                        "options": options,
                    }),
                );
                options
            }
        };
        flow.ui.upsert(hidden("passkey_create_data", Some(options)));
        let button = trigger_button(
            flow,
            "passkey_register_trigger",
            Trigger::PasskeySettingsRegistration,
            text::settings_add_passkey(),
        );
        flow.ui.upsert(button);
        flow.ui.upsert(hidden("passkey_settings_register", None));
        add_script(env, flow);
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Value,
        identity: &Identity,
    ) -> Result<Identity, FlowError> {
        let env = cx.env;
        if let Some(raw) = field(body, "passkey_settings_register").filter(|v| !v.trim().is_empty()) {
            return self.add_passkey(env, flow, identity, raw.trim()).await;
        }
        if let Some(id) = field(body, "passkey_remove").filter(|v| !v.trim().is_empty()) {
            return self.remove_passkey(env, flow, identity, id);
        }
        Err(FlowError::message(text::required("passkey_settings_register")))
    }
}
