//! Recovery flows by code: a code sent to a recovery address signs the person in with a
//! privileged session and continues to settings. Kratos: `selfservice/flow/recovery`,
//! `selfservice/strategy/code/strategy_recovery.go`.

use super::respond::Answer;
use serde_json::json;

use super::Service;
use super::common::{Submission, new_flow};
use super::request::Request as Req;
use super::respond::{self, rerender};
use super::{Flow, FlowKind, FlowType};
use crate::strategy::{Cx, FlowError, RecoveryOutcome, RecoveryStrategy};
use crate::text;

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
        env: deps,
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
    let issued = super::success::sign_in(deps, flow, sub, &identity, method, crate::model::Aal::Aal1).await?;
    let hooks = &deps.config.selfservice.flows.recovery.after.hooks;
    super::revoke::revoke_active_sessions(deps, hooks, identity.id, issued.session.id).await?;
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
    let done = super::success::Done {
        identity: &identity,
        method,
        issued: Some(issued),
        continue_with: vec![show],
        browser_to: Some(settings_url),
    };
    super::success::answer(deps, flow, sub, done).await
}
