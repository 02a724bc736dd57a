//! Login flows: nodes, submission, success. Kratos: `selfservice/flow/login`.

use super::respond::Answer;
use http::StatusCode;
use serde_json::json;

use super::Service;
use super::common::{Submission, default_return_url};
use super::respond::{self, Cookies, Style, rerender};
use super::{Flow, FlowKind};
use crate::identity::Identity;
use crate::session::AuthMethod;
use crate::session::manager::{self, Current};
use crate::strategy::{Cx, FlowError, LoginOutcome};
use crate::text;

/// Fills a new login flow with the nodes of every enabled method.
pub fn populate(deps: &Service, flow: &mut Flow, current: Option<&Current>) {
    flow.ui.set_csrf(String::new());
    for s in deps.strategies.login() {
        s.populate(deps, flow, current.map(|c| &c.identity));
    }
    if flow.refresh
        && let Some(cur) = current
        && let Some(id) = cur
            .identity
            .credentials
            .values()
            .flat_map(|c| c.identifiers.first())
            .next()
    {
        flow.ui.set_value("identifier", json!(id));
    }
    flow.ui.sort_login();
}

/// Handles `POST /self-service/login?flow=`.
pub async fn submit(deps: &Service, flow: &mut Flow, sub: &Submission<'_>) -> Result<Answer, FlowError> {
    if flow.internal_get("completed") == Some(&json!(true)) {
        return Err(FlowError::message(text::login_retry_success()));
    }
    if sub.current.is_some() && !flow.refresh && flow.requested_aal == "aal1" {
        return Err(FlowError::SessionAlreadyAvailable);
    }
    let method = crate::strategy::method_of(&sub.body);
    let Some(strategy) = deps.strategies.login().find(|s| s.id() == method) else {
        return Err(FlowError::message(text::login_no_strategy()));
    };
    let cx = Cx {
        deps,
        client: &sub.client,
    };
    match strategy.submit(&cx, flow, &sub.body).await? {
        LoginOutcome::Continue => {
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(rerender(deps, flow, sub.style, sub.csrf.as_ref()))
        }
        LoginOutcome::RedirectExternal(to) => {
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(respond::external(&to, sub.style))
        }
        LoginOutcome::Authenticated { identity, method, aal } => success(deps, flow, sub, &identity, method, aal).await,
    }
}

async fn success(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    identity: &Identity,
    method: &str,
    aal: crate::model::Aal,
) -> Result<Answer, FlowError> {
    let now = deps.clock.now();
    let am = AuthMethod {
        method: method.to_string(),
        aal,
        completed_at: now,
    };
    let (session, token) = match &sub.current {
        Some(cur) if (flow.refresh || flow.requested_aal == "aal2") && cur.identity.id == identity.id => {
            let mut s = cur.session.clone();
            s.methods.push(am);
            s.aal = crate::session::compute_aal(&s.methods);
            s.authenticated_at = now;
            s.expires_at = now + deps.config.session.lifespan;
            deps.store.update_session_auth(&s, now).await?;
            (s, cur.token.clone())
        }
        _ => {
            let issued = manager::issue(deps, identity, vec![am], &sub.client).await?;
            (issued.session, issued.token)
        }
    };
    flow.internal_set("completed", json!(true));
    flow.state = crate::model::flow::FlowState::PassedChallenge;
    flow.updated_at = now;
    deps.store.update_flow(flow).await?;
    let to = flow
        .return_to
        .clone()
        .unwrap_or_else(|| default_return_url(deps, FlowKind::Login, Some(method)));
    let session_json = session.to_json(now, Some(identity), &deps.schema_url(&identity.schema_id), false);
    Ok(match sub.style {
        Style::Api => respond::json(
            StatusCode::OK,
            json!({"session_token": token, "session": session_json, "continue_with": null}),
        ),
        style => {
            let mut cookies = Cookies::default();
            cookies
                .0
                .push(manager::session_cookie(deps, &token, session.expires_at));
            let fresh = crate::crypto::csrf::new_cookie_token();
            cookies.0.push(manager::csrf_cookie(deps, &fresh));
            let res = if style == Style::Spa {
                respond::json(
                    StatusCode::OK,
                    json!({
                        "session": session_json,
                        "continue_with": [{"action": "redirect_browser_to", "redirect_browser_to": to}],
                    }),
                )
            } else {
                respond::redirect(&to, StatusCode::SEE_OTHER)
            };
            cookies.apply(res)
        }
    })
}
