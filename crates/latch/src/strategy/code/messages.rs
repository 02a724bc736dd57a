//! The `code` strategy for recovery and verification: a code sent to an address proves control
//! of it. Kratos: `selfservice/strategy/code/strategy_recovery.go`,
//! `strategy_verification.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Code, Purpose, issue, verify};
use crate::deps::Env;
use crate::identity::State;
use crate::model::flow::Flow;
use crate::strategy::{
    Cx, FlowError, RecoveryOutcome, RecoveryStrategy, VerificationOutcome, VerificationStrategy, address_change, field,
};
use crate::text;
use crate::ui::{Autocomplete, Group, InputType, Node};

/// The first screen of recovery and verification: an email input and a submit button.
pub fn address_nodes(flow: &mut Flow) {
    flow.ui.set_csrf(String::new());
    flow.ui.upsert(
        Node::input("email", InputType::Email, Group::Code)
            .required()
            .autocomplete(Autocomplete::Email)
            .label(text::label_email()),
    );
    flow.ui.append(
        Node::input("method", InputType::Submit, Group::Code)
            .value("code")
            .label(text::label_submit()),
    );
}

/// The form once a code was sent: code input, continue, and resend (to `email`, when known).
pub fn sent_nodes(flow: &mut Flow, email: &str, code_label: text::UiText) {
    flow.ui.nodes.retain(|n| n.group == Group::Default);
    flow.ui.append(
        Node::input("code", InputType::Text, Group::Code)
            .required()
            .autocomplete(Autocomplete::OneTimeCode)
            .label(code_label),
    );
    flow.ui
        .append(Node::input("method", InputType::Hidden, Group::Code).value("code"));
    flow.ui.append(
        Node::input("method", InputType::Submit, Group::Code)
            .value("code")
            .label(text::label_continue()),
    );
    if !email.is_empty() {
        flow.ui.append(
            Node::input("email", InputType::Submit, Group::Code)
                .value(email)
                .label(text::label_resend_code()),
        );
    }
}

fn submitted<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    field(body, name).filter(|v| !v.trim().is_empty())
}

fn address_of(flow: &Flow) -> String {
    flow.internal_get("code_address")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn missing(flow: &Flow) -> FlowError {
    let name = if flow.state == "sent_email" { "code" } else { "email" };
    FlowError::on_node(name, text::required(name))
}

#[async_trait]
impl RecoveryStrategy for Code {
    fn id(&self) -> &'static str {
        "code"
    }

    fn populate(&self, _deps: &Env, flow: &mut Flow) {
        address_nodes(flow);
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RecoveryOutcome, FlowError> {
        let env = cx.env;
        if let Some(code) = submitted(body, "code") {
            let address = address_of(flow);
            let row = verify(env, flow, Purpose::Recovery, &address, code).await?;
            let identity = match row.identity_id {
                Some(id) => env.store.get_identity(id).await?,
                None => None,
            };
            let Some(identity) = identity.filter(|i| i.state == State::Active) else {
                return Err(FlowError::message(text::recovery_code_invalid()));
            };
            return Ok(RecoveryOutcome::Recovered {
                identity: Box::new(identity),
                address,
                method: "code_recovery",
            });
        }
        let Some(email) = submitted(body, "email") else {
            return Err(missing(flow));
        };
        if !email.contains('@') {
            return Err(FlowError::on_node("email", text::invalid_email(email)));
        }
        let address = crate::identity::schema::normalize_identifier(email);
        match env.store.find_identity_by_address(false, "email", &address).await? {
            Some(i) if i.state == State::Active => {
                let data = json!({"identity": {"id": i.id, "traits": i.traits}});
                issue(env, flow, Purpose::Recovery, Some(i.id), &address, true, data, None).await?;
            }
            _ => issue(env, flow, Purpose::Recovery, None, &address, false, json!({}), None).await?,
        }
        flow.internal_set("code_address", json!(address));
        sent_nodes(flow, &address, text::label_recovery_code());
        flow.ui.add_message(text::recovery_code_sent());
        flow.state = crate::model::flow::FlowState::SentEmail;
        flow.active = Some("code".into());
        Ok(RecoveryOutcome::Continue)
    }
}

#[async_trait]
impl VerificationStrategy for Code {
    fn id(&self) -> &'static str {
        "code"
    }

    fn populate(&self, _deps: &Env, flow: &mut Flow) {
        address_nodes(flow);
    }

    async fn send(&self, env: &Env, flow: &mut Flow, address: &str) -> Result<(), FlowError> {
        let address = crate::identity::schema::normalize_identifier(address);
        let (address, owner) = address_change::recipient(env, flow.id, &address).await?;
        let url_base = env.public_url(&format!("self-service/verification?flow={}", flow.id));
        match owner {
            Some(i) => {
                let data = json!({"identity": {"id": i.id, "traits": i.traits}, "verification_url_base": url_base});
                issue(env, flow, Purpose::Verification, Some(i.id), &address, true, data, None).await?;
            }
            None => issue(env, flow, Purpose::Verification, None, &address, false, json!({}), None).await?,
        }
        flow.internal_set("code_address", json!(address));
        sent_nodes(flow, &address, text::label_verification_code());
        flow.ui.add_message(text::verification_code_sent());
        flow.state = crate::model::flow::FlowState::SentEmail;
        flow.active = Some("code".into());
        Ok(())
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<VerificationOutcome, FlowError> {
        let env = cx.env;
        if let Some(code) = submitted(body, "code") {
            let address = address_of(flow);
            let row = verify(env, flow, Purpose::Verification, &address, code).await?;
            if let Some(change) = address_change::for_flow(env, flow.id).await? {
                let invalid = text::verification_code_invalid();
                return address_change::outcome(env, &change, row.identity_id, &row.address, invalid).await;
            }
            if let Some(id) = row.identity_id
                && let Some(mut identity) = env.store.get_identity(id).await?
            {
                if !identity.verifiable_addresses.iter().any(|a| a.value == row.address) {
                    // The address left the identity (or was a change that is gone now): nothing
                    // to verify (Kratos: "invalid or already used").
                    return Ok(VerificationOutcome::Refused(text::verification_code_invalid()));
                }
                if identity.mark_address_verified(&row.address, env.clock.now()) {
                    env.store.update_identity(&identity).await?;
                }
            }
            if let Some(id) = row.identity_id {
                flow.internal_set(crate::model::flow::VERIFIED_IDENTITY, json!(id));
            }
            return Ok(VerificationOutcome::Verified);
        }
        let Some(email) = submitted(body, "email") else {
            return Err(missing(flow));
        };
        if !email.contains('@') {
            return Err(FlowError::on_node("email", text::invalid_email(email)));
        }
        self.send(env, flow, email).await?;
        Ok(VerificationOutcome::Continue)
    }
}
