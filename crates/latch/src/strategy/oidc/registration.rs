//! The `oidc` method in registration flows: one `provider` button per provider; the callback
//! creates the identity from the mapper's traits, or signs in when the subject is known
//! (Kratos turns the registration into a login). Kratos: `strategy_registration.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{ID, Oidc, claims, submit_common, unique_id};
use crate::config::OidcProvider;
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::{apply_traits, set_credential};
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, RegistrationOutcome, RegistrationStep, RegistrationStrategy};
use crate::text;
use crate::ui::{Group, InputType, Node};

/// Where traits submitted with the button wait for the callback.
const TRAITS_KEY: &str = "oidc_traits";

#[async_trait]
impl RegistrationStrategy for Oidc {
    fn id(&self) -> &'static str {
        ID
    }

    /// As Kratos, the provider buttons are on the first screen of either style.
    fn shows_on(&self, step: RegistrationStep) -> bool {
        step != RegistrationStep::CredentialSelection
    }

    fn populate(&self, _env: &Env, flow: &mut Flow, _step: RegistrationStep) {
        for p in &self.providers {
            flow.ui.append(
                Node::input("provider", InputType::Submit, Group::Oidc)
                    .value(p.id.clone())
                    .label(text::registration_with(p.label(), &p.id)),
            );
        }
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RegistrationOutcome, FlowError> {
        let (p, claims) = match submit_common(self, cx, flow, body).await? {
            Err(to) => {
                // Traits typed into the form win over the mapper's (Kratos' `merge`).
                let traits = body.get("traits").filter(|t| t.is_object()).cloned();
                flow.internal_set(
                    TRAITS_KEY,
                    traits.map(crate::strategy::shared::trim_traits).unwrap_or(Value::Null),
                );
                return Ok(RegistrationOutcome::RedirectExternal(to));
            }
            Ok(done) => done,
        };
        if let Some(identity) = Self::find(cx.env, &p, &claims).await? {
            let identity = super::update::on_login(cx.env, &p, &claims, identity).await?;
            return Ok(RegistrationOutcome::SignIn {
                identity: Box::new(identity),
                method: ID,
            });
        }
        let form = if super::id_token::submitted(body) {
            // No round trip: the traits come with the token (Kratos' `p.Traits`).
            body.get("traits")
                .filter(|t| t.is_object())
                .cloned()
                .map(crate::strategy::shared::trim_traits)
        } else {
            flow.internal_get(TRAITS_KEY).filter(|t| t.is_object()).cloned()
        };
        let identity = new_identity(cx.env, &p, &claims, form.as_ref()).await?;
        if let Some(pending) = super::link::pending(cx.env, &p, subject_of(&claims), &identity).await? {
            return Ok(RegistrationOutcome::LinkExisting(Box::new(pending)));
        }
        Ok(RegistrationOutcome::Create {
            identity: Box::new(identity),
            method: ID,
        })
    }
}

/// The `sub` claim.
pub(super) fn subject_of(claims: &Value) -> &str {
    claims.get("sub").and_then(Value::as_str).unwrap_or("")
}

/// Lets values in `a` win over `b`, recursively for objects. Kratos: `merge` in `form.go`.
/// A field left empty on the form (`""`, `null`: the email input beside the provider button)
/// does not wipe out what the provider supplied.
pub(super) fn merge(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Null, b) => b.clone(),
        (Value::String(s), b) if s.is_empty() && !b.is_null() => b.clone(),
        (Value::Object(a), Value::Object(b)) => {
            let mut out = b.clone();
            for (k, v) in a {
                let merged = match out.get(k) {
                    Some(existing) => merge(v, existing),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (a, _) => a.clone(),
    }
}

/// A new (not yet stored) identity for `claims` at `p`: traits, metadata and verified
/// addresses from the mapper, and the `oidc` credential `provider:subject`.
pub(super) async fn new_identity(
    env: &Env,
    p: &OidcProvider,
    claims: &Value,
    form_traits: Option<&Value>,
) -> Result<Identity, FlowError> {
    let mapped = claims::map(p, claims).await?;
    let traits = match form_traits {
        Some(f) => merge(f, &mapped.traits),
        None => mapped.traits,
    };
    let mut identity = crate::identity::manager::new_identity(env.schemas.default_id(), traits, env.clock.as_ref());
    identity.metadata_public = mapped.metadata_public;
    identity.metadata_admin = mapped.metadata_admin;
    if let Err(e) = apply_traits(&mut identity, &env.schemas, env.clock.as_ref()) {
        return Err(match e {
            crate::identity::manager::TraitsError::Invalid(errs) => crate::strategy::traits_invalid(&errs),
            other => FlowError::message(text::system_generic(&other.to_string())),
        });
    }
    let now = env.clock.now();
    for a in identity.verifiable_addresses.iter_mut() {
        if a.via == "email" && mapped.verified_emails.contains(&a.value.trim().to_lowercase()) {
            a.verified = true;
            a.verified_at = Some(now);
            a.status = "completed".into();
        }
    }
    let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    let config = json!({"providers": [{"subject": subject, "provider": p.id}]});
    set_credential(
        &mut identity,
        ID,
        vec![unique_id(&p.id, subject)],
        config,
        1,
        env.clock.as_ref(),
    );
    Ok(identity)
}
