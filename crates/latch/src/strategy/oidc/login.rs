//! The `oidc` method in login flows: one `provider` button per provider; the callback signs
//! in a known `provider:subject` and signs up an unknown one (Kratos turns the login into a
//! registration). Kratos: `strategy_login.go`.

use async_trait::async_trait;
use serde_json::Value;

use super::{ID, Oidc, submit_common};
use crate::deps::Env;
use crate::identity::Identity;
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, LoginOutcome, LoginStrategy};
use crate::text;
use crate::ui::{Group, InputType, Node};

#[async_trait]
impl LoginStrategy for Oidc {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _env: &Env, flow: &mut Flow, _signed_in: Option<&Identity>) {
        // Social sign-in is a first factor: no buttons on second-factor logins.
        if flow.requested_aal == crate::model::Aal::Aal2 {
            return;
        }
        for p in &self.providers {
            flow.ui.append(
                Node::input("provider", InputType::Submit, Group::Oidc)
                    .value(p.id.clone())
                    .label(text::login_with(p.label(), &p.id)),
            );
        }
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError> {
        if flow.requested_aal == crate::model::Aal::Aal2 {
            return Err(FlowError::message(text::login_no_strategy()));
        }
        let (p, claims) = match submit_common(self, cx, flow, body).await? {
            Err(to) => return Ok(LoginOutcome::RedirectExternal(to)),
            Ok(done) => done,
        };
        if let Some(identity) = Self::find(cx.env, &p, &claims).await? {
            let identity = super::update::on_login(cx.env, &p, &claims, identity).await?;
            return Ok(LoginOutcome::Authenticated {
                identity: Box::new(identity),
                method: ID,
                aal: crate::model::Aal::Aal1,
            });
        }
        // Kratos: an unknown subject on a login flow becomes a registration; with
        // registration disabled only an account to link to lets it go on.
        // Traits sent along with an ID token fill what the token lacks (Apple's name).
        let form = super::id_token::submitted(body)
            .then(|| body.get("traits").filter(|t| t.is_object()).cloned())
            .flatten()
            .map(crate::strategy::shared::trim_traits);
        let identity = super::registration::new_identity(cx.env, &p, &claims, form.as_ref()).await?;
        let subject = super::registration::subject_of(&claims);
        if let Some(pending) = super::link::pending(cx.env, &p, subject, &identity).await? {
            return Ok(LoginOutcome::LinkExisting(Box::new(pending)));
        }
        if !cx.env.config.selfservice.flows.registration.enabled {
            return Err(FlowError::message(text::validation_generic(
                "Registration is not allowed because it was disabled.",
            )));
        }
        Ok(LoginOutcome::Register {
            identity: Box::new(identity),
            method: ID,
        })
    }

    fn link(&self, env: &Env, identity: &mut Identity, config: &Value) -> Result<Option<String>, FlowError> {
        super::link::link(env, identity, config)
    }
}
