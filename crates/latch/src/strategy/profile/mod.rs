//! The `profile` method: the traits of an identity. In registration it is the first screen of
//! the `profile_first` style (traits checked, then the credential methods); in settings it
//! changes the traits. It has no credential. Kratos: `selfservice/strategy/profile`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::shared::{flatten, is_unified, trim_traits};
use super::{
    Cx, FlowError, RegistrationOutcome, RegistrationStep, RegistrationStrategy, Registry, SettingsStrategy, Strategy,
    traits_invalid,
};
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::{TraitsError, apply_traits, new_identity};
use crate::model::flow::{Flow, FlowState};
use crate::text;
use crate::ui::{Group, InputType, Node, trait_nodes};

const ID: &str = "profile";

/// The profile method. Registration always has it (it is how `profile_first` works); settings
/// only when `selfservice.methods.profile.enabled`.
#[derive(Debug)]
pub struct Profile {
    settings_enabled: bool,
}

/// Registers the method.
pub fn register(r: &mut Registry) {
    let settings_enabled = r.config().selfservice.methods.profile.enabled;
    r.strategy(std::sync::Arc::new(Profile { settings_enabled }));
}

impl Strategy for Profile {
    fn id(&self) -> &'static str {
        ID
    }

    fn registration(&self) -> Option<&dyn RegistrationStrategy> {
        Some(self)
    }

    fn settings(&self) -> Option<&dyn SettingsStrategy> {
        self.settings_enabled.then_some(self as &dyn SettingsStrategy)
    }
}

#[async_trait]
impl RegistrationStrategy for Profile {
    fn id(&self) -> &'static str {
        ID
    }

    fn shows_on(&self, step: RegistrationStep) -> bool {
        step != RegistrationStep::Unified
    }

    fn populate(&self, _env: &Env, flow: &mut Flow, step: RegistrationStep) {
        match step {
            RegistrationStep::Profile => flow.ui.append(
                Node::input("method", InputType::Submit, Group::Profile)
                    .value(ID)
                    .label(text::registration()),
            ),
            RegistrationStep::CredentialSelection => flow.ui.append(
                Node::input("screen", InputType::Submit, Group::Profile)
                    .value("previous")
                    .label(text::registration_back()),
            ),
            RegistrationStep::Unified => {}
        }
    }

    /// `method=profile` checks the traits and moves on to the credential methods;
    /// `screen=previous` goes back to the traits; `screen=credential-selection` shows the
    /// methods again for the traits accepted before. The unified style has no profile step,
    /// so its submissions start over.
    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RegistrationOutcome, FlowError> {
        let env = cx.env;
        let screen = body.get("screen").and_then(Value::as_str);
        let stored = flow.internal_get("traits").cloned();
        if screen == Some("previous") || is_unified(env) {
            return Ok(RegistrationOutcome::Show(RegistrationStep::Profile));
        }
        let traits = match (screen, stored) {
            (Some("credential-selection"), Some(s)) => s,
            _ => trim_traits(body.get("traits").cloned().unwrap_or_else(|| json!({}))),
        };
        let mut probe = new_identity(env.schemas.default_id(), traits.clone(), env.clock.as_ref());
        for (k, v) in flatten("traits", &traits) {
            flow.ui.set_value(&k, v);
        }
        match apply_traits(&mut probe, &env.schemas, env.clock.as_ref()) {
            Ok(_) => {}
            Err(TraitsError::Invalid(errs)) => return Err(traits_invalid(&errs)),
            Err(e) => return Err(FlowError::message(text::system_generic(&e.to_string()))),
        }
        flow.internal_set("traits", traits);
        // Kratos (`profile/registration.go` showCredentialsSelection) resets the flow here:
        // no method is in use yet, so `active` is cleared (absent), never "profile".
        flow.state = FlowState::ChooseMethod;
        flow.active = None;
        flow.ui.add_message(text::registration_choose_credentials());
        Ok(RegistrationOutcome::Show(RegistrationStep::CredentialSelection))
    }
}

fn set_trait_nodes(env: &Env, flow: &mut Flow, identity: &Identity) {
    if let Some(schema) = env.schemas.get(&identity.schema_id) {
        for n in trait_nodes(&schema.raw, Group::Profile, "traits", Some(&identity.traits)) {
            flow.ui.upsert(n);
        }
    }
}

#[async_trait]
impl SettingsStrategy for Profile {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, env: &Env, flow: &mut Flow, identity: &Identity) {
        if env.schemas.get(&identity.schema_id).is_none() {
            return;
        }
        set_trait_nodes(env, flow, identity);
        flow.ui.append(
            Node::input("method", InputType::Submit, Group::Profile)
                .value(ID)
                .label(text::label_save()),
        );
    }

    fn check(&self, body: &Value) -> Result<(), FlowError> {
        if body.get("traits").is_some_and(Value::is_object) {
            Ok(())
        } else {
            Err(FlowError::on_node("traits", text::required("traits")))
        }
    }

    /// New traits, validated against the identity schema; invalid ones are shown again with
    /// their messages.
    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Value,
        identity: &Identity,
    ) -> Result<Identity, FlowError> {
        let env = cx.env;
        let traits = body
            .get("traits")
            .cloned()
            .filter(Value::is_object)
            .map(trim_traits)
            .ok_or_else(|| FlowError::on_node("traits", text::required("traits")))?;
        let mut updated = identity.clone();
        updated.traits = traits;
        match apply_traits(&mut updated, &env.schemas, env.clock.as_ref()) {
            Ok(_) => Ok(updated),
            Err(TraitsError::Invalid(errs)) => {
                set_trait_nodes(env, flow, &updated);
                Err(traits_invalid(&errs))
            }
            Err(e) => Err(FlowError::message(text::system_generic(&e.to_string()))),
        }
    }
}
