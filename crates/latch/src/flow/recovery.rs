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

/// Handles `POST /self-service/recovery?flow=` (and `GET …&token=` from a `link` email).
pub async fn submit(deps: &Service, flow: &mut Flow, sub: &Submission<'_>) -> Result<Answer, FlowError> {
    if is_link_token(deps, sub) {
        return link_token(deps, flow, sub).await;
    }
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

/// A `link` token in the submission (the emailed `?flow=&token=` link).
fn is_link_token(deps: &Service, sub: &Submission<'_>) -> bool {
    super::common::uses_link(deps, FlowKind::Recovery)
        && sub
            .body
            .get("token")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|t| !t.is_empty())
}

/// The link from a recovery email, opened in a browser (Kratos' `recoveryUseToken`): a valid
/// token signs the browser in and redirects it to a new settings flow, whatever the type of
/// the flow that sent the email; anything else redirects it to a new browser recovery flow
/// that says why.
async fn link_token(deps: &Service, flow: &mut Flow, sub: &Submission<'_>) -> Result<Answer, FlowError> {
    let cx = Cx {
        env: deps,
        client: &sub.client,
    };
    // The browser that opened the link may not be the one that asked for it: it keeps its
    // CSRF cookie or gets one, and the settings flow is bound to that cookie.
    let csrf = sub
        .csrf
        .or(sub.req.csrf_cookie)
        .unwrap_or_else(crate::crypto::csrf::new_cookie_token);
    let browser = Submission {
        req: sub.req,
        style: respond::Style::Browser,
        body: sub.body.clone(),
        csrf: Some(csrf),
        current: sub.current.clone(),
        client: sub.client.clone(),
    };
    let link = deps
        .strategies
        .recovery("link")
        .filter(|s| s.id() == "link")
        .ok_or_else(|| FlowError::Internal("the link method is not registered".into()))?;
    match link.submit(&cx, flow, &sub.body).await {
        Ok(RecoveryOutcome::Recovered {
            identity,
            address,
            method,
        }) => success(deps, flow, &browser, *identity, &address, method).await,
        Ok(RecoveryOutcome::Continue) => Err(FlowError::message(text::recovery_token_invalid())),
        Err(FlowError::Invalid { messages, .. }) => retry(deps, &browser, messages).await,
        Err(e) => Err(e),
    }
}

/// A new browser recovery flow showing `messages`, and a redirect to it (Kratos'
/// `retryRecoveryFlowWithMessage`).
async fn retry(deps: &Service, sub: &Submission<'_>, messages: Vec<text::UiText>) -> Result<Answer, FlowError> {
    let req = Req {
        path_and_query: "self-service/recovery/browser".into(),
        query: None,
        get_submission: false,
        ..sub.req.clone()
    };
    let mut flow = new_flow(deps, FlowKind::Recovery, FlowType::Browser, &req, None);
    let csrf = sub.csrf.unwrap_or_else(crate::crypto::csrf::new_cookie_token);
    flow.csrf_hash = Some(crate::crypto::sha256_hex(&csrf));
    populate(deps, &mut flow);
    for m in messages {
        flow.ui.add_message(m);
    }
    deps.store.insert_flow(&flow).await?;
    let res = respond::redirect(&respond::ui_url_for(deps, &flow), http::StatusCode::SEE_OTHER);
    let mut cookies = vec![];
    if sub.req.csrf_cookie != Some(csrf) {
        cookies.push(crate::session::manager::csrf_cookie(deps, &csrf));
    }
    Ok(respond::Cookies(cookies).apply(res))
}

async fn success(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    mut identity: crate::identity::Identity,
    address: &str,
    method: &str,
) -> Result<Answer, FlowError> {
    // A recovery link always continues in the browser that opened it (Kratos).
    let link = method == "link_recovery";
    let settings_type = if link { FlowType::Browser } else { flow.flow_type };
    let now = deps.clock.now();
    if identity.mark_address_verified(address, now) {
        deps.store.update_identity(&identity).await?;
    }
    let hooks = &deps.config.selfservice.flows.recovery.after.hooks;
    // Kratos runs the after-recovery hooks before the session is written; `ctx` has the
    // identity only. `response.ignore` ones are queued in the transaction that writes the session.
    let pending = super::success::prepare_sign_in(deps, flow, sub, &identity, method, crate::model::Aal::Aal1)?;
    let subject = super::web_hook::Subject {
        flow,
        req: sub.req,
        body: Some(&sub.body),
        session: None,
    };
    super::web_hook::run(
        deps,
        hooks,
        super::web_hook::Stage::After,
        &subject,
        super::web_hook::Who::Shown(&identity),
    )
    .await?;
    let event = super::web_hook::event(super::FlowKind::Recovery, "after");
    let outbox = super::web_hook::queue(deps, hooks, &event, &subject, Some(&identity)).await;
    let issued = super::success::commit_sign_in(deps, pending, &outbox).await?;
    super::revoke::revoke_active_sessions(deps, hooks, identity.id, issued.session.id).await?;
    // Continue to a settings flow owned by the new session.
    let settings_req = Req {
        path_and_query: format!(
            "self-service/settings/{}",
            if settings_type == FlowType::Api {
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
        settings_type,
        &settings_req,
        flow.return_to.clone(),
    );
    settings.identity_id = Some(identity.id);
    settings.session_id = Some(issued.session.id);
    settings.csrf_hash = match (link, sub.csrf) {
        (true, Some(t)) => Some(crate::crypto::sha256_hex(&t)),
        _ => flow.csrf_hash.clone(),
    };
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
    if settings_type == FlowType::Browser {
        show["flow"]["url"] = json!(settings_url);
    }
    let done = super::success::Done {
        identity: &identity,
        method,
        issued: Some(issued),
        continue_with: vec![show],
        browser_to: Some(settings_url),
        csrf_cookie: None,
        flow_saved: false,
    };
    super::success::answer(deps, flow, sub, done).await
}
