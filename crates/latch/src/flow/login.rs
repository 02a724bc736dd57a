//! Login flows: nodes, submission, success. Kratos: `selfservice/flow/login`.

use super::respond::Answer;
use serde_json::json;

use super::Flow;
use super::Service;
use super::common::Submission;
use super::respond::{self, rerender};
use crate::session::manager::Current;
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
    // A second factor only ever adds to the session of the identity the flow was started
    // for; without it, a second factor alone would sign in (Kratos refuses with 401).
    let own_session = sub
        .current
        .as_ref()
        .is_some_and(|c| Some(c.identity.id) == flow.identity_id);
    if flow.requested_aal == crate::model::Aal::Aal2 && !own_session {
        return Err(FlowError::Aal1Required);
    }
    let method = crate::strategy::method_of(&sub.body);
    let Some(strategy) = deps.strategies.login().find(|s| s.id() == method) else {
        return Err(FlowError::message(text::login_no_strategy()));
    };
    let cx = Cx {
        env: deps,
        client: &sub.client,
    };
    match strategy.submit(&cx, flow, &sub.body).await? {
        LoginOutcome::Continue => {
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(rerender(deps, flow, sub.style, sub.csrf.as_ref()))
        }
        LoginOutcome::Saved => Ok(rerender(deps, flow, sub.style, sub.csrf.as_ref())),
        LoginOutcome::RedirectExternal(to) => {
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(respond::external(&to, sub.style))
        }
        LoginOutcome::Authenticated { identity, method, aal } => {
            super::signin::success(deps, flow, sub, &identity, method, aal).await
        }
        LoginOutcome::Register { identity, method } => {
            let mut reg = super::common::switched(deps, flow, super::FlowKind::Registration, sub).await?;
            super::registration::create(deps, &mut reg, sub, *identity, method).await
        }
        LoginOutcome::LinkExisting(link) => super::linking::start(deps, flow, sub, &link).await,
    }
}
