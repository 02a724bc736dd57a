//! Add and remove security keys in settings. Kratos: `selfservice/strategy/webauthn/settings.go`.

use async_trait::async_trait;
use serde_json::Value;

use super::nodes::{hidden, trigger_button};
use super::{SecurityKeys, user_handle, webauthn_config};
use crate::crypto::hex;
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::set_credential;
use crate::model::flow::{Flow, FlowType};
use crate::strategy::passkey::nodes::add_script;
use crate::strategy::{Cx, FlowError, SettingsStrategy, field};
use crate::text;
use crate::ui::{Group, InputType, Node, Trigger};

impl SecurityKeys {
    fn refused(&self, env: &Env, flow: &mut Flow, identity: &Identity, m: text::UiText) -> FlowError {
        SettingsStrategy::populate(self, env, flow, identity);
        FlowError::message(m)
    }
}

#[async_trait]
impl SettingsStrategy for SecurityKeys {
    fn id(&self) -> &'static str {
        "webauthn"
    }

    /// Kratos: a credential to register or remove selects this method, `method` or not.
    fn claims(&self, body: &Value) -> bool {
        ["webauthn_register", "webauthn_remove"]
            .iter()
            .any(|k| field(body, k).is_some_and(|v| !v.is_empty()))
    }

    fn populate(&self, env: &Env, flow: &mut Flow, identity: &Identity) {
        if flow.flow_type == FlowType::Api {
            return;
        }
        flow.ui.remove_in_group(
            Group::Webauthn,
            &[
                "webauthn_remove",
                "webauthn_register_displayname",
                "webauthn_register_trigger",
                "webauthn_register",
            ],
        );
        let config = webauthn_config(identity);
        for c in &config.credentials {
            flow.ui.append(
                Node::input("webauthn_remove", InputType::Submit, Group::Webauthn)
                    .value(hex(&c.id))
                    .label(text::settings_remove_webauthn(c.label_name(), c.added_at_time())),
            );
        }
        let name = identity
            .credentials
            .get("webauthn")
            .and_then(|c| c.identifiers.first().cloned())
            .unwrap_or_else(|| identity.id.to_string());
        let exclude = config.credentials.iter().map(|c| c.id.clone()).collect();
        let options = match self.start_registration(flow, user_handle(&config), &name, exclude) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "could not start a security key registration");
                return;
            }
        };
        flow.ui.upsert(
            Node::input("webauthn_register_displayname", InputType::Text, Group::Webauthn)
                .value("")
                .label(text::settings_webauthn_display_name()),
        );
        flow.ui.upsert(trigger_button(
            "webauthn_register_trigger",
            Trigger::WebAuthnRegistration,
            &options,
            text::settings_add_webauthn(),
        ));
        flow.ui.upsert(hidden("webauthn_register"));
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
        if flow.flow_type == FlowType::Api {
            return Err(FlowError::message(text::settings_no_strategy()));
        }
        let mut updated = identity.clone();
        let mut config = webauthn_config(identity);
        let identifiers = identity
            .credentials
            .get("webauthn")
            .map(|c| c.identifiers.clone())
            .unwrap_or_default();
        if let Some(raw) = field(body, "webauthn_register").filter(|v| !v.trim().is_empty()) {
            let Some((mut stored, handle)) = self.finish_registration(flow, raw.trim(), env.clock.now()) else {
                return Err(self.refused(env, flow, identity, text::webauthn_invalid()));
            };
            stored.display_name = field(body, "webauthn_register_displayname")
                .unwrap_or("")
                .trim()
                .to_string();
            config.credentials.push(stored);
            config.user_handle = handle.as_bytes().to_vec();
        } else if let Some(id) = field(body, "webauthn_remove").filter(|v| !v.trim().is_empty()) {
            let id = id.trim().to_ascii_lowercase();
            let Some(pos) = config.credentials.iter().position(|c| hex(&c.id) == id) else {
                return Err(self.refused(env, flow, identity, text::no_webauthn_device()));
            };
            let removed = config.credentials.remove(pos);
            let first_factor_left = config.credentials.iter().any(|c| c.is_passwordless);
            if removed.is_passwordless
                && !first_factor_left
                && !env
                    .credentials
                    .has_first_factor_besides(&env.config, identity, "webauthn")
            {
                return Err(self.refused(
                    env,
                    flow,
                    identity,
                    text::validation_generic(
                        "Unable to remove this security key because it would lock you out of your account: add another way to sign in first.",
                    ),
                ));
            }
        } else {
            return Err(FlowError::message(text::required("webauthn_register")));
        }
        if config.credentials.is_empty() {
            updated.credentials.remove("webauthn");
        } else {
            set_credential(
                &mut updated,
                "webauthn",
                identifiers,
                config.to_value(),
                1,
                env.clock.as_ref(),
            );
        }
        Ok(updated)
    }
}
