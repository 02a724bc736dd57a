//! Verification flows: send a proof to an address (a code, later a link), the person answers
//! and the address is verified. The method is a [`VerificationStrategy`] picked by
//! `selfservice.flows.verification.use`. Kratos: `selfservice/flow/verification`.

use super::Service;
use super::common::Submission;
use super::respond::rerender;
use super::{Flow, FlowKind, FlowType};
use crate::strategy::{Cx, FlowError, VerificationOutcome, VerificationStrategy};
use crate::text;
use crate::ui::{Group, Node};

fn strategy(deps: &Service) -> Result<&dyn VerificationStrategy, FlowError> {
    let name = match deps.config.selfservice.flows.verification.use_ {
        crate::config::MessageStrategy::Code => "code",
        crate::config::MessageStrategy::Link => "link",
    };
    deps.strategies
        .verification(name)
        .ok_or_else(|| FlowError::Internal("no verification strategy is enabled".into()))
}

/// The first screen of the configured strategy.
pub fn populate(deps: &Service, flow: &mut Flow) {
    if let Ok(s) = strategy(deps) {
        s.populate(deps, flow);
        flow.active = Some(s.id().to_string());
    }
}

/// Creates and stores a verification flow (in `sent_email` once [`send_proof`] ran). A
/// browser flow is bound to the CSRF cookie `csrf` the browser will hold after the answer.
pub async fn create_for_address(
    deps: &Service,
    flow_type: FlowType,
    request_path: &str,
    return_to: Option<String>,
    req: &super::request::Request,
    csrf: Option<[u8; 32]>,
) -> Result<Flow, FlowError> {
    let r = super::request::Request {
        path_and_query: request_path.to_string(),
        query: None,
        get_submission: false,
        ..req.clone()
    };
    let mut flow = super::common::new_flow(deps, FlowKind::Verification, flow_type, &r, return_to);
    if flow_type == FlowType::Browser {
        flow.csrf_hash = csrf.map(|t| crate::crypto::sha256_hex(&t));
    }
    populate(deps, &mut flow);
    deps.store.insert_flow(&flow).await?;
    Ok(flow)
}

/// Sends the proof for `address` in a flow made by [`create_for_address`] and stores it.
pub async fn send_proof(deps: &Service, flow: &mut Flow, address: &str) -> Result<(), FlowError> {
    strategy(deps)?.send(deps, flow, address).await?;
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(flow).await?;
    Ok(())
}

/// Creates a verification flow for an address and sends the proof (after-registration and
/// after-login hooks). A browser flow is bound to the CSRF cookie `csrf` the browser will
/// hold after the answer.
pub async fn start_for_address(
    deps: &Service,
    flow_type: FlowType,
    request_path: &str,
    return_to: Option<String>,
    address: &str,
    req: &super::request::Request,
    csrf: Option<[u8; 32]>,
) -> Result<Flow, FlowError> {
    let mut flow = create_for_address(deps, flow_type, request_path, return_to, req, csrf).await?;
    send_proof(deps, &mut flow, address).await?;
    Ok(flow)
}

/// Handles `POST /self-service/verification?flow=` (and `GET …&code=` from the email link).
pub async fn submit(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
) -> Result<super::respond::Answer, FlowError> {
    let link_token = super::common::uses_link(deps, FlowKind::Verification)
        && sub
            .body
            .get("token")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|t| !t.is_empty());
    if flow.state == "passed_challenge" && !link_token {
        return Err(FlowError::message(text::verification_retry_success()));
    }
    let cx = Cx {
        env: deps,
        client: &sub.client,
    };
    let chosen = if link_token {
        deps.strategies
            .verification("link")
            .filter(|s| s.id() == "link")
            .ok_or_else(|| FlowError::Internal("the link method is not registered".into()))?
    } else {
        strategy(deps)?
    };
    let outcome = match chosen.submit(&cx, flow, &sub.body).await {
        // A bad link starts over in a new browser flow that says why (Kratos'
        // `retryVerificationFlowWithMessage`).
        Err(FlowError::Invalid { messages, .. }) if link_token => return retry(deps, sub, messages).await,
        other => other?,
    };
    let changed = match outcome {
        VerificationOutcome::Continue => None,
        VerificationOutcome::Verified => Some(None),
        VerificationOutcome::AddressChanged(applied) => Some(Some(applied)),
        VerificationOutcome::Refused(message) => {
            flow.ui.add_message(message);
            None
        }
    };
    if let Some(applied) = changed {
        if let Some(applied) = &applied {
            // The change is stored: what follows a settings change runs now (Kratos runs
            // the profile method's post-persist hooks here). Their failures do not undo it.
            super::after_settings::after_applied(deps, applied, flow, sub.req).await;
        }
        // Kratos' `PostVerificationHook`: the address is verified (and a deferred change
        // applied) whatever the hooks answer.
        after_hooks(deps, flow, sub).await?;
        flow.ui.nodes.retain(|n| n.group == Group::Default);
        let to = flow
            .return_to
            .clone()
            .unwrap_or_else(|| super::common::default_return_url(deps, FlowKind::Verification, None));
        let group = if chosen.id() == "link" {
            Group::Link
        } else {
            Group::Code
        };
        flow.ui
            .append(Node::anchor("continue", to, text::label_continue(), group));
        flow.ui.add_message(text::verification_successful());
        flow.state = crate::model::flow::FlowState::PassedChallenge;
    }
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(flow).await?;
    Ok(rerender(deps, flow, sub.style, sub.csrf.as_ref()))
}

/// A new browser verification flow showing `messages`, and a redirect to it.
async fn retry(
    deps: &Service,
    sub: &Submission<'_>,
    messages: Vec<text::UiText>,
) -> Result<super::respond::Answer, FlowError> {
    let req = super::request::Request {
        path_and_query: "self-service/verification/browser".into(),
        query: None,
        get_submission: false,
        ..sub.req.clone()
    };
    let mut flow = super::common::new_flow(deps, FlowKind::Verification, FlowType::Browser, &req, None);
    let csrf = sub
        .csrf
        .or(sub.req.csrf_cookie)
        .unwrap_or_else(crate::crypto::csrf::new_cookie_token);
    flow.csrf_hash = Some(crate::crypto::sha256_hex(&csrf));
    populate(deps, &mut flow);
    for m in messages {
        flow.ui.add_message(m);
    }
    deps.store.insert_flow(&flow).await?;
    let res = super::respond::redirect(&super::respond::ui_url_for(deps, &flow), http::StatusCode::SEE_OTHER);
    let mut cookies = vec![];
    if sub.req.csrf_cookie != Some(csrf) {
        cookies.push(crate::session::manager::csrf_cookie(deps, &csrf));
    }
    Ok(super::respond::Cookies(cookies).apply(res))
}

/// The after-verification hooks (Kratos' `PostVerificationHook`): `web_hook`s with the identity
/// whose address was verified. The address stays verified if one fails; the flow answers the
/// error, as in Kratos. `response.ignore` ones go to the outbox right after the verification
/// committed (it has no transaction left to share).
async fn after_hooks(deps: &Service, flow: &Flow, sub: &Submission<'_>) -> Result<(), FlowError> {
    let hooks = &deps.config.selfservice.flows.verification.after.hooks;
    if !super::web_hook::any_at(hooks, super::web_hook::Stage::After) {
        return Ok(());
    }
    let owner = flow
        .internal_get(crate::model::flow::VERIFIED_IDENTITY)
        .and_then(serde_json::Value::as_str)
        .and_then(|id| uuid::Uuid::parse_str(id).ok());
    let identity = match owner {
        Some(id) => deps.store.get_identity(id).await?,
        None => None,
    };
    let Some(identity) = identity else {
        // An address no identity owns (any more): nothing to tell the hooks about.
        return Ok(());
    };
    let subject = super::web_hook::Subject {
        flow,
        req: sub.req,
        body: Some(&sub.body),
        session: None,
    };
    // The address is verified already: `response.ignore` hooks are queued on their own, first,
    // so a blocking hook that fails does not lose them.
    let event = super::web_hook::event(FlowKind::Verification, "after");
    let outbox = super::web_hook::queue(deps, hooks, &event, &subject, Some(&identity)).await;
    super::web_hook::enqueue_after_commit(deps, &event, &outbox).await;
    super::web_hook::run(
        deps,
        hooks,
        super::web_hook::Stage::After,
        &subject,
        super::web_hook::Who::Shown(&identity),
    )
    .await
}
