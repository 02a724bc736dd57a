//! The checks the engine runs on every request, shared by creating, fetching and submitting
//! flows: first screens, CSRF binding, flow lookup, the session that owns a settings flow, and
//! the errors Kratos answers when they fail.

use http::StatusCode;
use uuid::Uuid;

use super::Service;
use super::csrf_explain::{CsrfFailure, csrf_error};
use super::request::Request as Req;
use super::{Flow, FlowKind, FlowType, login, registration};
use crate::crypto::{csrf, sha256_hex};
use crate::error::ApiError;
use crate::session::manager::{self, Current};

/// Fills a new flow of any kind with its first screen.
pub(super) fn populate_new(deps: &Service, flow: &mut Flow, current: Option<&Current>) {
    match flow.kind {
        FlowKind::Login => login::populate(deps, flow, current),
        FlowKind::Registration => registration::populate_initial(deps, flow, None),
        FlowKind::Verification => super::verification::populate(deps, flow),
        FlowKind::Recovery => super::recovery::populate(deps, flow),
        FlowKind::Settings => {
            if let Some(cur) = current {
                super::settings::populate(deps, flow, &cur.identity);
                flow.rendered_identity = Some(
                    cur.identity
                        .to_json(&deps.schema_url(&cur.identity.schema_id), &Default::default()),
                );
            }
        }
    }
    if flow.flow_type == FlowType::Api {
        flow.ui.strip_js();
    }
}

pub(super) fn flow_disabled(kind: FlowKind) -> ApiError {
    ApiError::bad_request(format!(
        "The {} flow is disabled: enable selfservice.flows.{}.enabled.",
        kind.as_str(),
        kind.as_str()
    ))
    .id("self_service_flow_disabled")
    .message(format!("{} flow disabled", kind.as_str()))
}

pub(super) fn no_session() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED)
        .id("session_inactive")
        .reason("No active session was found in this request.")
        .message("request does not have a valid authentication session")
}

/// The browser's CSRF token, or a new one with the `Set-Cookie` that installs it.
pub(super) fn ensure_csrf(deps: &Service, req: &Req) -> ([u8; 32], Option<String>) {
    match req.csrf_cookie {
        Some(t) => (t, None),
        None => {
            let t = csrf::new_cookie_token();
            (t, Some(manager::csrf_cookie(deps, &t)))
        }
    }
}

pub(super) fn validate_return_to(deps: &Service, kind: FlowKind, req: &Req) -> Result<Option<String>, ApiError> {
    let Some(requested) = req.q("return_to") else {
        return Ok(None);
    };
    let default = deps.config.selfservice.default_browser_return_url.as_ref();
    let _ = kind;
    super::return_to::validate(
        &requested,
        &deps.config.selfservice.allowed_return_urls,
        &deps.public_base,
        default,
    )
    .map(|u| Some(u.to_string()))
    .map_err(|u| {
        ApiError::bad_request(format!("Requested return_to URL {u:?} is not allowed."))
            .id("self_service_flow_return_to_forbidden")
            .message("Requested return_to URL is not allowed.")
    })
}

pub(super) fn already_logged_in(kind: FlowKind) -> ApiError {
    let what = if kind == FlowKind::Login {
        "login"
    } else {
        "registration"
    };
    let mut reason = format!("A valid session was detected and thus {what} is not possible.");
    if kind == FlowKind::Login {
        reason.push_str(" Did you forget to set `?refresh=true`?");
    }
    ApiError::bad_request(reason)
        .id("session_already_available")
        .message("you are already logged in")
}

/// Checks that the request's CSRF cookie is the one the flow was created with.
pub(super) fn check_flow_cookie(deps: &Service, flow: &Flow, req: &Req) -> Result<[u8; 32], ApiError> {
    if !req.has_cookies {
        return Err(csrf_error(deps, req.ajax, CsrfFailure::NoCookies));
    }
    let Some(token) = req.csrf_cookie else {
        return Err(csrf_error(deps, req.ajax, CsrfFailure::NoCsrfCookie));
    };
    let matches = flow
        .csrf_hash
        .as_deref()
        .is_some_and(|h| crate::crypto::ct_eq(h.as_bytes(), sha256_hex(&token).as_bytes()));
    if !matches {
        return Err(csrf_error(deps, req.ajax, CsrfFailure::Mismatch));
    }
    Ok(token)
}

pub(super) fn parse_flow_id(raw: Option<String>) -> Result<Uuid, ApiError> {
    raw.and_then(|s| Uuid::parse_str(&s).ok())
        .ok_or_else(|| ApiError::bad_request("The flow query parameter is missing or malformed."))
}

pub(super) async fn load_flow(deps: &Service, kind: FlowKind, id: Uuid) -> Result<Flow, ApiError> {
    match deps.store.get_flow(id).await? {
        Some(f) if f.kind == kind => Ok(f),
        _ => Err(ApiError::not_found("Unable to locate the resource")),
    }
}

/// The session that owns a settings flow: the request must carry a session of the flow's identity.
pub(super) async fn settings_owner(deps: &Service, flow: &Flow, req: &Req) -> Result<Current, ApiError> {
    let cur = manager::current(deps, req.session.as_ref())
        .await?
        .ok_or_else(no_session)?;
    if flow.identity_id != Some(cur.identity.id) {
        return Err(ApiError::new(StatusCode::FORBIDDEN)
            .id("security_identity_mismatch")
            .reason("The flow belongs to another identity than the session in this request."));
    }
    if !super::common::satisfies(deps, &cur, deps.config.selfservice.flows.settings.required_aal) {
        let back = super::respond::ui_url_for(deps, flow);
        return Err(super::common::aal2_required(deps, Some(&back)));
    }
    Ok(cur)
}
