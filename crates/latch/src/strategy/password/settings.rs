//! Changing (or adding) the password in settings. Kratos:
//! `selfservice/strategy/password/settings.go` (`continueSettingsFlow`,
//! `PopulateSettingsMethod`).

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Password, hash_new, hashing_busy, password_node, validate_new_password};
use crate::crypto::password::HashError;
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::{TraitsError, apply_traits, set_credential};
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, SettingsStrategy, field, traits_invalid};
use crate::text;
use crate::ui::{Autocomplete, Group, InputType, Node};

#[async_trait]
impl SettingsStrategy for Password {
    fn id(&self) -> &'static str {
        "password"
    }

    /// The new-password input and its "Save" button, on every settings flow (Kratos shows
    /// them whether or not the identity has a password yet).
    fn populate(&self, _env: &Env, flow: &mut Flow, _identity: &Identity) {
        flow.ui.remove_group(Group::Password);
        flow.ui.upsert(password_node(Autocomplete::NewPassword));
        flow.ui.append(
            Node::input("method", InputType::Submit, Group::Password)
                .value("password")
                .label(text::label_save()),
        );
    }

    /// Sets the submitted password: the engine has checked that the session is privileged.
    /// Identifiers come from the traits, as at registration, so an identity without a
    /// password (code or passkey only) gets one it can sign in with.
    async fn submit(
        &self,
        cx: &Cx<'_>,
        _flow: &mut Flow,
        body: &Value,
        identity: &Identity,
    ) -> Result<Identity, FlowError> {
        let env = cx.env;
        let password = field(body, "password").unwrap_or("");
        if password.is_empty() {
            return Err(FlowError::on_node("password", text::required("password")));
        }
        let mut updated = identity.clone();
        let extracted = match apply_traits(&mut updated, &env.schemas, env.clock.as_ref()) {
            Ok(x) => x,
            Err(TraitsError::Invalid(errs)) => return Err(traits_invalid(&errs)),
            Err(e) => return Err(FlowError::message(text::system_generic(&e.to_string()))),
        };
        let identifiers = extracted.identifiers.get("password").cloned().unwrap_or_default();
        if identifiers.is_empty() {
            return Err(FlowError::message(text::identifier_missing()));
        }
        if same_as_old(env, identity, password).await? {
            return Err(FlowError::on_node("password", text::password_same_as_old()));
        }
        validate_new_password(env, password, &identifiers).await?;
        let hash = hash_new(env, password).await?;
        set_credential(
            &mut updated,
            "password",
            identifiers,
            json!({"hashed_password": hash, "use_password_migration_hook": false}),
            0,
            env.clock.as_ref(),
        );
        Ok(updated)
    }
}

/// Whether `password` is the identity's current one (Kratos refuses it with 4000039, so a
/// leaked password is really replaced).
async fn same_as_old(env: &Env, identity: &Identity, password: &str) -> Result<bool, FlowError> {
    let Some(old) = identity
        .credentials
        .get("password")
        .and_then(|c| c.config.get("hashed_password"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
    else {
        return Ok(false);
    };
    match env.hasher.verify(password, old).await {
        Ok(same) => Ok(same),
        Err(HashError::Busy) => Err(hashing_busy()),
        Err(_) => Ok(false),
    }
}
