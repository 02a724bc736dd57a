//! Verification flows by code: send a code to an address, enter it (or follow the link in
//! the email) and the address is verified. Kratos: `selfservice/flow/verification`,
//! `selfservice/strategy/code/strategy_verification.go`.

use serde_json::{Value, json};

use super::Service;
use super::common::Submission;
use super::respond::rerender;
use super::{Flow, FlowKind, FlowType};
use crate::strategy::FlowError;
use crate::strategy::code::{Purpose, issue, verify};
use crate::text;
use crate::ui::{Autocomplete, Group, InputType, Node};

/// The first screen: an email input and a submit button (verification and recovery).
pub fn populate(_deps: &Service, flow: &mut Flow) {
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
/// Shared with recovery, which differs only in the code label.
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

/// Sends a verification code for `address` in a (new or given) verification flow. Used by the
/// flow itself and after registration. Unknown addresses get the same answer but no email.
pub async fn send_code(deps: &Service, flow: &mut Flow, address: &str) -> Result<(), FlowError> {
    let address = crate::identity::schema::normalize_identifier(address);
    let owner = deps.store.find_identity_by_address(true, "email", &address).await?;
    let url_base = deps.public_url(&format!("self-service/verification?flow={}", flow.id));
    match owner {
        Some(i) => {
            let data = json!({"identity": {"id": i.id, "traits": i.traits}, "verification_url_base": url_base});
            issue(deps, flow, Purpose::Verification, Some(i.id), &address, true, data).await?;
        }
        None => issue(deps, flow, Purpose::Verification, None, &address, false, json!({})).await?,
    }
    flow.internal_set("code_address", json!(address));
    sent_nodes(flow, &address, text::label_verification_code());
    flow.ui.add_message(text::verification_code_sent());
    flow.state = "sent_email".into();
    flow.active = Some("code".into());
    Ok(())
}

/// Creates a verification flow for an address and sends the code (after registration).
pub async fn start_for_address(
    deps: &Service,
    flow_type: FlowType,
    request_path: &str,
    return_to: Option<String>,
    address: &str,
    req: &super::request::Request,
) -> Result<Flow, FlowError> {
    let r = super::request::Request {
        path_and_query: request_path.to_string(),
        query: None,
        get_submission: false,
        ..req.clone()
    };
    let mut flow = super::common::new_flow(deps, FlowKind::Verification, flow_type, &r, return_to);
    populate(deps, &mut flow);
    deps.store.insert_flow(&flow).await?;
    send_code(deps, &mut flow, address).await?;
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(&flow).await?;
    Ok(flow)
}

/// Handles `POST /self-service/verification?flow=` (and `GET …&code=` from the email link).
pub async fn submit(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
) -> Result<super::respond::Answer, FlowError> {
    let body = &sub.body;
    let code = body
        .get("code")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty());
    let email = body
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| !e.trim().is_empty());
    if flow.state == "passed_challenge" {
        return Err(FlowError::message(text::verification_retry_success()));
    }
    match (code, email) {
        (Some(code), _) => {
            let address = flow
                .internal_get("code_address")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let row = verify(deps, flow, Purpose::Verification, &address, code).await?;
            if let Some(id) = row.identity_id
                && let Some(mut identity) = deps.store.get_identity(id).await?
                && identity.mark_address_verified(&row.address, deps.clock.now())
            {
                deps.store.update_identity(&identity).await?;
            }
            flow.ui.nodes.retain(|n| n.group == Group::Default);
            let to = flow
                .return_to
                .clone()
                .unwrap_or_else(|| super::common::default_return_url(deps, FlowKind::Verification, None));
            flow.ui
                .append(Node::anchor("continue", to, text::label_continue(), Group::Code));
            flow.ui.add_message(text::verification_successful());
            flow.state = "passed_challenge".into();
        }
        (None, Some(email)) => {
            if !email.contains('@') {
                return Err(FlowError::on_node("email", text::invalid_email(email)));
            }
            send_code(deps, flow, email).await?;
        }
        (None, None) => {
            let name = if flow.state == "sent_email" { "code" } else { "email" };
            return Err(FlowError::on_node(name, text::required(name)));
        }
    }
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(flow).await?;
    Ok(rerender(deps, flow, sub.style, sub.csrf.as_ref()))
}
