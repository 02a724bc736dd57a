//! Recovery flows by code: a code sent to a recovery address signs the person in with a
//! privileged session and continues to settings. Kratos: `selfservice/flow/recovery`,
//! `selfservice/strategy/code/strategy_recovery.go`.

use super::respond::Answer;
use http::StatusCode;
use serde_json::json;

use super::Service;
use super::common::{Submission, new_flow};
use super::request::Request as Req;
use super::respond::{self, Cookies, Style, rerender};
use super::{Flow, FlowKind, FlowType};
use crate::session::AuthMethod;
use crate::session::manager;
use crate::strategy::{Cx, FlowError, RecoveryOutcome, RecoveryStrategy};
use crate::text;
use crate::ui::Group;

fn strategy(deps: &Service) -> Result<&dyn RecoveryStrategy, FlowError> {
    let name = match deps.config.selfservice.flows.recovery.use_ {
        crate::config::MessageStrategy::Code => "code",
        crate::config::MessageStrategy::Link => "link",
    };
    deps.strategies
        .recovery(name)
        .ok_or_else(|| FlowError::Internal("no recovery strategy is enabled".into()))
}

/// The first screen of the configured strategy.
pub fn populate(deps: &Service, flow: &mut Flow) {
    if let Ok(s) = strategy(deps) {
        s.populate(deps, flow);
        flow.active = Some(s.id().to_string());
    }
}

/// Handles `POST /self-service/recovery?flow=`.
pub async fn submit(deps: &Service, flow: &mut Flow, sub: &Submission<'_>) -> Result<Answer, FlowError> {
    if flow.state == "passed_challenge" {
        return Err(FlowError::message(text::recovery_retry_success()));
    }
    let cx = Cx {
        deps,
        client: &sub.client,
    };
    match strategy(deps)?.submit(&cx, flow, &sub.body).await? {
        RecoveryOutcome::Continue => {
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(rerender(deps, flow, sub.style, sub.csrf.as_ref()))
        }
        RecoveryOutcome::Recovered {
            identity,
            address,
            method,
        } => success(deps, flow, sub, *identity, &address, method).await,
    }
}

async fn success(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    mut identity: crate::identity::Identity,
    address: &str,
    method: &str,
) -> Result<Answer, FlowError> {
    let now = deps.clock.now();
    if identity.mark_address_verified(address, now) {
        deps.store.update_identity(&identity).await?;
    }
    let am = AuthMethod {
        method: method.to_string(),
        aal: crate::model::Aal::Aal1,
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
    flow.state = crate::model::flow::FlowState::PassedChallenge;
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
