//! Password registration. Kratos: `selfservice/strategy/password/registration.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Password, hash_new, password_node, validate_new_password};
use crate::deps::Env;
use crate::identity::manager::{apply_traits, new_identity, set_credential};
use crate::model::flow::Flow;
use crate::strategy::shared::traits_from;
use crate::strategy::{
    Cx, FlowError, RegistrationOutcome, RegistrationStep, RegistrationStrategy, field, traits_invalid,
};
use crate::text;
use crate::ui::{Autocomplete, Group, InputType, Node};

#[async_trait]
impl RegistrationStrategy for Password {
    fn id(&self) -> &'static str {
        "password"
    }

    fn populate(&self, _deps: &Env, flow: &mut Flow, _step: RegistrationStep) {
        flow.ui.upsert(password_node(Autocomplete::NewPassword));
        flow.ui.append(
            Node::input("method", InputType::Submit, Group::Password)
                .value("password")
                .label(text::registration()),
        );
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RegistrationOutcome, FlowError> {
        let env = cx.env;
        let traits = traits_from(flow, body)?;
        let password = field(body, "password").unwrap_or("");
        if password.is_empty() {
            return Err(FlowError::on_node("password", text::required("password")));
        }
        let schema_id = env.schemas.default_id().to_string();
        let mut identity = new_identity(&schema_id, traits, env.clock.as_ref());
        let extracted = match apply_traits(&mut identity, &env.schemas, env.clock.as_ref()) {
            Ok(x) => x,
            Err(crate::identity::manager::TraitsError::Invalid(errs)) => return Err(traits_invalid(&errs)),
            Err(e) => return Err(FlowError::message(text::system_generic(&e.to_string()))),
        };
        let identifiers = extracted.identifiers.get("password").cloned().unwrap_or_default();
        if identifiers.is_empty() {
            return Err(FlowError::message(text::identifier_missing()));
        }
        validate_new_password(env, password, &identifiers).await?;
        let hash = hash_new(env, password).await?;
        set_credential(
            &mut identity,
            "password",
            identifiers,
            json!({"hashed_password": hash, "use_password_migration_hook": false}),
            0,
            env.clock.as_ref(),
        );
        Ok(RegistrationOutcome::Create {
            identity: Box::new(identity),
            method: "password",
        })
    }
}
