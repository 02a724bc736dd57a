//! Passwordless login by code. Kratos: `selfservice/strategy/code/strategy_login.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Code, Purpose, issue, verify_signing_in};
use crate::deps::Env;
use crate::identity::State;
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, LoginOutcome, LoginStrategy, field};
use crate::text;
use crate::ui::{Group, InputType, Node};

/// Login identifiers are compared lower-cased when they look like email addresses.
pub fn normalize(identifier: &str) -> String {
    crate::identity::schema::normalize_identifier(identifier)
}

/// The form after a code was sent: identifier fixed, code input, continue and resend.
pub fn sent_nodes(flow: &mut Flow, identifier: &str, label: crate::text::UiText) {
    flow.ui.nodes.retain(|n| n.group == Group::Default);
    flow.ui.set_value("identifier", json!(identifier));
    if let Some(a) = flow.ui.get_mut("identifier").and_then(|n| n.input_attributes_mut()) {
        a.r#type = InputType::Hidden;
    }
    super::append_code_inputs(flow, label);
}

#[async_trait]
impl LoginStrategy for Code {
    fn id(&self) -> &'static str {
        "code"
    }

    fn populate(&self, env: &Env, flow: &mut Flow, signed_in: Option<&crate::identity::Identity>) {
        if flow.requested_aal == "aal2" {
            if self.mfa {
                super::mfa::populate(env, flow, signed_in);
            }
            return;
        }
        let c = &env.config.selfservice.methods.code;
        if !(c.enabled && c.passwordless_enabled) || flow.requested_aal != "aal1" {
            return;
        }
        if flow.ui.get("identifier").is_none() {
            flow.ui.upsert(crate::strategy::shared::identifier_node(env));
        }
        flow.ui.append(
            Node::input("method", InputType::Submit, Group::Code)
                .value("code")
                .label(text::login_send_code()),
        );
    }

    async fn on_aal2_created(
        &self,
        env: &Env,
        flow: &mut Flow,
        identity: &crate::identity::Identity,
    ) -> Result<bool, FlowError> {
        if !self.mfa {
            return Ok(false);
        }
        super::mfa::fast_send(env, flow, identity).await
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError> {
        let env = cx.env;
        if flow.requested_aal == "aal2" {
            return super::mfa::submit(env, flow, body).await;
        }
        let c = &env.config.selfservice.methods.code;
        if !(c.enabled && c.passwordless_enabled) {
            return Err(FlowError::message(text::login_no_strategy()));
        }
        let resend = field(body, "resend") == Some("code");
        let code = field(body, "code").filter(|c| !c.trim().is_empty());
        let stored = flow
            .internal_get("code_address")
            .and_then(Value::as_str)
            .map(str::to_string);
        let identifier = field(body, "identifier")
            .or_else(|| field(body, "address"))
            .map(normalize)
            .or(stored.clone());
        let Some(identifier) = identifier.filter(|i| !i.is_empty()) else {
            return Err(FlowError::on_node("identifier", text::required("identifier")));
        };
        if code.is_none() || resend {
            if flow.state == "sent_email" && !resend && code.is_none() && field(body, "identifier").is_none() {
                return Err(FlowError::on_node("code", text::required("code")));
            }
            let identity = env.store.find_identity_by_identifier("code", &identifier).await?;
            // The flow once the code is out, saved in the transaction that stores the code.
            let mut next = flow.clone();
            next.internal_set("code_address", json!(identifier));
            sent_nodes(&mut next, &identifier, text::label_login_code());
            next.ui.add_message(text::login_code_sent());
            next.state = crate::model::flow::FlowState::SentEmail;
            next.active = Some("code".into());
            next.updated_at = env.clock.now();
            match identity {
                Some(i) if i.state == State::Active => {
                    let data = json!({"identity": {"id": i.id, "traits": i.traits}, "request_url": flow.request_url});
                    issue(
                        env,
                        flow,
                        Purpose::Login,
                        Some(i.id),
                        &identifier,
                        true,
                        data,
                        Some(&next),
                    )
                    .await?;
                }
                _ if env.config.security.account_enumeration.mitigate => {
                    // Same answer and the same database work as for a known address.
                    let data = json!({"request_url": flow.request_url});
                    issue(env, flow, Purpose::Login, None, &identifier, false, data, Some(&next)).await?;
                }
                _ => return Err(FlowError::on_node("identifier", text::no_code_user())),
            }
            *flow = next;
            return Ok(LoginOutcome::Saved);
        }
        if stored.as_deref() != Some(identifier.as_str()) {
            return Err(FlowError::message(text::login_code_invalid()));
        }
        let (_, mut identity) = verify_signing_in(env, flow, Purpose::Login, &identifier, code.unwrap_or("")).await?;
        if identity.state != State::Active {
            return Err(FlowError::message(text::identity_disabled()));
        }
        // Receiving the code proves control of the address.
        let now = env.clock.now();
        if identity.mark_address_verified(&identifier, now) {
            env.store.update_identity(&identity).await?;
        }
        flow.active = Some("code".into());
        Ok(LoginOutcome::Authenticated {
            identity: Box::new(identity),
            method: "code",
            aal: crate::model::Aal::Aal1,
        })
    }
}
