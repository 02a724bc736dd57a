//! Recovery flows by code: a code sent to a recovery address signs the person in with a
//! privileged session and continues to settings. Kratos: `selfservice/flow/recovery`,
//! `selfservice/strategy/code/strategy_recovery.go`.

use super::respond::Answer;
use http::StatusCode;
use serde_json::{Value, json};

use super::Service;
use super::common::{Submission, new_flow};
use super::request::Request as Req;
use super::respond::{self, Cookies, Style, rerender};
use super::{Flow, FlowKind, FlowType};
use crate::identity::State;
use crate::session::AuthMethod;
use crate::session::manager;
use crate::strategy::FlowError;
use crate::strategy::code::{Purpose, issue, verify};
use crate::text;
use crate::ui::Group;

/// The first screen: an email input and a submit button.
pub fn populate(deps: &Service, flow: &mut Flow) {
    super::verification::populate(deps, flow);
}

/// The form once a code was sent.
pub fn sent_nodes(flow: &mut Flow, email: &str) {
    super::verification::sent_nodes(flow, email, text::label_recovery_code());
}

/// Handles `POST /self-service/recovery?flow=`.
pub async fn submit(deps: &Service, flow: &mut Flow, sub: &Submission<'_>) -> Result<Answer, FlowError> {
    let body = &sub.body;
    if flow.state == "passed_challenge" {
        return Err(FlowError::message(text::recovery_retry_success()));
    }
    let code = body
        .get("code")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty());
    let email = body
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| !e.trim().is_empty());
    if let Some(code) = code {
        let address = flow
            .internal_get("code_address")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let row = verify(deps, flow, Purpose::Recovery, &address, code).await?;
        return success(deps, flow, sub, row.identity_id).await;
    }
    let Some(email) = email else {
        let name = if flow.state == "sent_email" { "code" } else { "email" };
        return Err(FlowError::on_node(name, text::required(name)));
    };
    if !email.contains('@') {
        return Err(FlowError::on_node("email", text::invalid_email(email)));
    }
    let address = crate::identity::schema::normalize_identifier(email);
    match deps.store.find_identity_by_address(false, "email", &address).await? {
        Some(i) if i.state == State::Active => {
            let data = json!({"identity": {"id": i.id, "traits": i.traits}});
            issue(deps, flow, Purpose::Recovery, Some(i.id), &address, true, data).await?;
        }
        _ => issue(deps, flow, Purpose::Recovery, None, &address, false, json!({})).await?,
    }
    flow.internal_set("code_address", json!(address));
    sent_nodes(flow, &address);
    flow.ui.add_message(text::recovery_code_sent());
    flow.state = "sent_email".into();
    flow.active = Some("code".into());
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(flow).await?;
    Ok(rerender(deps, flow, sub.style, sub.csrf.as_ref()))
}

async fn success(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    identity_id: Option<uuid::Uuid>,
) -> Result<Answer, FlowError> {
    let identity = match identity_id {
        Some(id) => deps.store.get_identity(id).await?,
        None => None,
    };
    let Some(mut identity) = identity.filter(|i| i.state == State::Active) else {
        return Err(FlowError::message(text::recovery_code_invalid()));
    };
    let now = deps.clock.now();
    let address = flow
        .internal_get("code_address")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if identity.mark_address_verified(&address, now) {
        deps.store.update_identity(&identity).await?;
    }
    let am = AuthMethod {
        method: "code_recovery".into(),
        aal: "aal1".into(),
        completed_at: now,
    };
    let issued = manager::issue(deps, &identity, vec![am], &sub.client).await?;
    // Continue to a settings flow owned by the new session.
    let settings_req = Req {
        path_and_query: format!(
            "self-service/settings/{}",
            if flow.flow_type == FlowType::Api {
                "api"
            } else {
                "browser"
            }
        ),
        query: None,
        get_submission: false,
        ..sub.req.clone()
    };
    let mut settings = new_flow(
        deps,
        FlowKind::Settings,
        flow.flow_type,
        &settings_req,
        flow.return_to.clone(),
    );
    settings.identity_id = Some(identity.id);
    settings.session_id = Some(issued.session.id);
    settings.csrf_hash = flow.csrf_hash.clone();
    super::settings::populate(deps, &mut settings, &identity);
    settings.ui.add_message(text::recovery_successful(
        now + deps.config.selfservice.flows.settings.privileged_session_max_age,
        now,
    ));
    if settings.flow_type == FlowType::Api {
        settings.ui.strip_js();
    }
    deps.store.insert_flow(&settings).await?;
    let settings_url = respond::ui_url_for(deps, &settings);
    let mut show = json!({"action": "show_settings_ui", "flow": {"id": settings.id}});
    if flow.flow_type == FlowType::Browser {
        show["flow"]["url"] = json!(settings_url);
    }
    // Only the non-secret part is stored: a flow GET serves `continue_with` to anyone who
    // knows the flow id, so the live session token goes out in this response alone.
    flow.state = "passed_challenge".into();
    flow.internal_set("continue_with", json!([show.clone()]));
    flow.ui.nodes.retain(|n| n.group == Group::Default);
    flow.updated_at = now;
    deps.store.update_flow(flow).await?;
    let mut continue_with = vec![];
    if flow.flow_type == FlowType::Api {
        continue_with.push(json!({"action": "set_ory_session_token", "ory_session_token": issued.token}));
    }
    continue_with.push(show);
    let mut body = respond::flow_json(flow, sub.csrf.as_ref());
    body["continue_with"] = json!(continue_with);
    Ok(match sub.style {
        Style::Api => respond::json(StatusCode::OK, body),
        style => {
            let cookies = Cookies(vec![
                manager::session_cookie(deps, &issued.token, issued.session.expires_at),
                manager::csrf_cookie(deps, &sub.csrf.unwrap_or_else(crate::crypto::csrf::new_cookie_token)),
            ]);
            let res = if style == Style::Spa {
                respond::json(StatusCode::OK, body)
            } else {
                respond::redirect(&settings_url, StatusCode::SEE_OTHER)
            };
            cookies.apply(res)
        }
    })
}
