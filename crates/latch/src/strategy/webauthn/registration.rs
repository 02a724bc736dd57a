//! Sign up with a security key (passwordless mode only). Kratos:
//! `selfservice/strategy/webauthn/registration.go`.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::SecurityKeys;
use super::nodes::{hidden, trigger_button};
use crate::deps::Env;
use crate::identity::manager::{TraitsError, apply_traits, new_identity, set_credential};
use crate::model::flow::{Flow, FlowType};
use crate::strategy::passkey::credentials::PasskeyConfig;
use crate::strategy::passkey::nodes::add_script;
use crate::strategy::shared::traits_from;
use crate::strategy::{
    Cx, FlowError, RegistrationOutcome, RegistrationStep, RegistrationStrategy, field, traits_invalid,
};
use crate::text;
use crate::ui::{Group, InputType, Node, Trigger};

impl SecurityKeys {
    fn registration_nodes(&self, env: &Env, flow: &mut Flow) {
        let name = env
            .config
            .selfservice
            .methods
            .webauthn
            .config
            .rp
            .as_ref()
            .map_or("", |r| r.display_name.as_str())
            .to_string();
        let name = if name.is_empty() {
            "Security key".to_string()
        } else {
            name
        };
        let options = match self.start_registration(flow, Uuid::new_v4(), &name, vec![]) {
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
            text::registration_webauthn(),
        ));
        add_script(env, flow);
        flow.ui.upsert(hidden("webauthn_register"));
    }
}

#[async_trait]
impl RegistrationStrategy for SecurityKeys {
    fn id(&self) -> &'static str {
        "webauthn"
    }

    fn populate(&self, env: &Env, flow: &mut Flow, _step: RegistrationStep) {
        if self.passwordless && flow.flow_type == FlowType::Browser {
            self.registration_nodes(env, flow);
        }
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RegistrationOutcome, FlowError> {
        let env = cx.env;
        if !self.passwordless || flow.flow_type == FlowType::Api {
            return Err(FlowError::message(text::registration_no_strategy()));
        }
        let traits = traits_from(flow, body)?;
        let raw = field(body, "webauthn_register").unwrap_or("").trim();
        if raw.is_empty() {
            return Err(FlowError::on_node(
                "webauthn_register",
                text::required("webauthn_register"),
            ));
        }
        let mut identity = new_identity(env.schemas.default_id(), traits, env.clock.as_ref());
        let extracted = match apply_traits(&mut identity, &env.schemas, env.clock.as_ref()) {
            Ok(x) => x,
            Err(TraitsError::Invalid(errs)) => return Err(traits_invalid(&errs)),
            Err(e) => return Err(FlowError::message(text::system_generic(&e.to_string()))),
        };
        let identifiers = extracted.identifiers_for("webauthn").to_vec();
        if identifiers.is_empty() {
            return Err(FlowError::message(text::identifier_missing()));
        }
        let Some((mut stored, handle)) = self.finish_registration(flow, raw, env.clock.now()) else {
            self.registration_nodes(env, flow);
            return Err(FlowError::message(text::webauthn_invalid()));
        };
        stored.display_name = field(body, "webauthn_register_displayname")
            .unwrap_or("")
            .trim()
            .to_string();
        let config = PasskeyConfig {
            credentials: vec![stored],
            user_handle: handle.as_bytes().to_vec(),
            extra: Default::default(),
        };
        set_credential(
            &mut identity,
            "webauthn",
            identifiers,
            config.to_value(),
            1,
            env.clock.as_ref(),
        );
        Ok(RegistrationOutcome::Create {
            identity: Box::new(identity),
            method: "webauthn",
        })
    }
}
