//! Creating flows: `GET /self-service/{kind}/{browser,api}`. Kratos:
//! `selfservice/flow/*/handler.go` (`create…Flow`).

use http::StatusCode;

use super::Service;
use super::common::{default_return_url, new_flow};
use super::guard::*;
use super::request::Request as Req;
use super::respond::{self, Answer, Cookies, Style, flow_json};
use super::{FlowKind, FlowType};
use crate::crypto::sha256_hex;
use crate::error::ApiError;
use crate::flow::AppState;
use crate::session::manager::{self};

/// `GET /self-service/{login,registration}/{browser,api}`.
pub async fn init(deps: &AppState, kind: FlowKind, flow_type: FlowType, req: Req) -> Answer {
    let style = Style::for_init(flow_type, &req);
    match init_inner(deps, kind, flow_type, &req, style).await {
        Ok(r) => r,
        Err(e) => respond::error(deps, e, style).await,
    }
}

async fn init_inner(
    deps: &Service,
    kind: FlowKind,
    flow_type: FlowType,
    req: &Req,
    style: Style,
) -> Result<Answer, ApiError> {
    let return_to = validate_return_to(deps, kind, req)?;
    if kind == FlowKind::Registration && !deps.config.selfservice.flows.registration.enabled {
        return Err(
            ApiError::bad_request("Registration is not allowed because it was disabled.")
                .id("self_service_flow_disabled")
                .message("registration flow disabled"),
        );
    }
    let refresh = req.q("refresh").is_some_and(|v| v == "true");
    let raw_aal = req.q("aal").unwrap_or_else(|| "aal1".into());
    let aal = match crate::model::Aal::parse(&raw_aal) {
        Some(a @ (crate::model::Aal::Aal1 | crate::model::Aal::Aal2)) => a,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Unable to parse AuthenticationMethod Assurance Level (AAL): {raw_aal:?}"
            )));
        }
    };
    let f = &deps.config.selfservice.flows;
    if (kind == FlowKind::Recovery && !f.recovery.enabled)
        || (kind == FlowKind::Verification && !f.verification.enabled)
    {
        return Err(flow_disabled(kind));
    }
    let current = manager::current(deps, req.session.as_ref()).await?;
    if kind == FlowKind::Settings && current.is_none() {
        if style == Style::Browser {
            let back = deps.public_url("self-service/settings/browser");
            let to = format!(
                "{}?return_to={}",
                deps.public_url("self-service/login/browser"),
                url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
            );
            return Ok(respond::redirect(&to, StatusCode::SEE_OTHER));
        }
        return Err(no_session());
    }
    if kind == FlowKind::Settings
        && let Some(cur) = &current
        && !super::common::satisfies(deps, cur, deps.config.selfservice.flows.settings.required_aal)
    {
        let back = deps.public_url(&req.path_and_query);
        let e = super::common::aal2_required(deps, Some(&back));
        if style == Style::Browser
            && let Some(to) = e.extra.get("redirect_browser_to").and_then(serde_json::Value::as_str)
        {
            return Ok(respond::redirect(to, StatusCode::SEE_OTHER));
        }
        return Err(e);
    }
    if let Some(cur) = &current
        && matches!(kind, FlowKind::Login | FlowKind::Registration | FlowKind::Recovery)
    {
        let satisfied = kind != FlowKind::Login || (!refresh && (aal == "aal1" || cur.session.aal == "aal2"));
        if satisfied {
            if style == Style::Browser {
                let to = return_to
                    .clone()
                    .unwrap_or_else(|| default_return_url(deps, kind, None));
                return Ok(respond::redirect(&to, StatusCode::SEE_OTHER));
            }
            return Err(already_logged_in(kind));
        }
    } else if kind == FlowKind::Login && aal == "aal2" {
        return Err(super::common::aal1_required());
    }
    crate::limits::flow_creation(deps, req.client.ip.as_deref()).await?;
    let mut flow = new_flow(deps, kind, flow_type, req, return_to);
    flow.refresh = refresh;
    flow.requested_aal = aal;
    if let Some(cur) = &current {
        flow.identity_id = Some(cur.identity.id);
        flow.session_id = Some(cur.session.id);
    }
    let mut cookies = Cookies::default();
    let csrf_token = if flow_type == FlowType::Browser {
        let (t, set) = ensure_csrf(deps, req);
        cookies.0.extend(set);
        flow.csrf_hash = Some(sha256_hex(&t));
        Some(t)
    } else {
        None
    };
    populate_new(deps, &mut flow, current.as_ref());
    // Kratos runs the `before` hooks on the new flow before storing it: a `web_hook` that
    // fails or refuses leaves no flow behind. `response.ignore` ones are queued once it is stored.
    let outbox =
        super::web_hook::run_before(deps, &flow, req, current.as_ref().map(|c| (&c.session, &c.identity))).await?;
    let exchange_code =
        if super::token_exchange::requested(kind, flow_type, req.q("return_session_token_exchange_code").as_deref()) {
            Some(super::token_exchange::create(deps, &mut flow).await?)
        } else {
            None
        };
    deps.store.insert_flow(&flow).await?;
    if !outbox.is_empty() {
        super::web_hook::enqueue_after_commit(deps, &super::web_hook::event(kind, "before"), &outbox).await;
    }
    if kind == FlowKind::Login
        && aal == crate::model::Aal::Aal2
        && let Some(cur) = &current
    {
        fast_second_factor(deps, &mut flow, &cur.identity).await?;
    }
    let res = match style {
        Style::Browser => respond::redirect(&respond::ui_url_for(deps, &flow), StatusCode::SEE_OTHER),
        _ => {
            let mut body = flow_json(&flow, csrf_token.as_ref());
            // Shown on creation only (Kratos).
            if let (Some(code), Some(o)) = (exchange_code, body.as_object_mut()) {
                o.insert("session_token_exchange_code".into(), serde_json::json!(code));
            }
            respond::json(StatusCode::OK, body)
        }
    };
    Ok(cookies.apply(res))
}

/// Kratos' `FastLogin2FA`: the first login method that takes its first step on creation of an
/// `aal2` flow does so. A refused step (a mail budget spent, …) leaves the flow as created: its
/// form still offers the step, and submitting it shows why.
async fn fast_second_factor(
    deps: &Service,
    flow: &mut super::Flow,
    identity: &crate::identity::Identity,
) -> Result<(), ApiError> {
    for s in deps.strategies.login() {
        let mut attempt = flow.clone();
        match s.on_aal2_created(deps, &mut attempt, identity).await {
            Ok(false) => continue,
            Ok(true) => {
                attempt.updated_at = deps.clock.now();
                deps.store.update_flow(&attempt).await?;
                *flow = attempt;
            }
            Err(crate::strategy::FlowError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::info!(method = s.id(), error = ?e, "the second factor's first step was not taken on flow creation")
            }
        }
        break;
    }
    Ok(())
}
