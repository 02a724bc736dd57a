//! Answering in the style the client asked for: 303 redirects for server-rendered
//! browsers, JSON for SPAs and native apps. Kratos: `x/http.go`, `selfservice/flow/*/error.go`.

use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Flow, FlowType};
use crate::crypto::csrf;
use crate::deps::Deps;
use crate::error::ApiError;

/// The three client styles of Kratos' behaviour matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Server-rendered browser: redirects.
    Browser,
    /// Browser flow driven by JavaScript with `Accept: application/json`.
    Spa,
    /// Native app (API flow).
    Api,
}

impl Style {
    /// The style of a submission or fetch of a flow of `flow_type`.
    pub fn for_flow(flow_type: FlowType, req: &super::request::Request) -> Style {
        match flow_type {
            FlowType::Api => Style::Api,
            FlowType::Browser if req.json_request => Style::Spa,
            FlowType::Browser => Style::Browser,
        }
    }

    /// The style of a flow-creation request (Accept negotiation only).
    pub fn for_init(flow_type: FlowType, req: &super::request::Request) -> Style {
        match flow_type {
            FlowType::Api => Style::Api,
            FlowType::Browser if req.accept_json => Style::Spa,
            FlowType::Browser => Style::Browser,
        }
    }

    /// JSON answers (SPA and native).
    pub fn is_json(self) -> bool {
        self != Style::Browser
    }
}

/// The engine's answer to a request, as data: the HTTP layer writes it out. Redirects carry
/// `location`, JSON answers `json`; both may set cookies and headers.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// `Location` of a redirect.
    pub location: Option<String>,
    /// A JSON body.
    pub json: Option<Value>,
    /// `Set-Cookie` values.
    pub cookies: Vec<String>,
    /// Other headers (`Ory-Error-Id`, `Retry-After`, …).
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    /// An error in Kratos' envelope with its headers.
    pub fn error(e: &ApiError) -> Answer {
        let mut headers = e.headers.clone();
        if let Some(id) = &e.id {
            headers.push(("ory-error-id", id.clone()));
        }
        Answer {
            status: e.status,
            location: None,
            json: Some(e.body()),
            cookies: vec![],
            headers,
        }
    }
}

/// Cookies to set on an answer.
#[derive(Debug, Default)]
pub struct Cookies(pub Vec<String>);

impl Cookies {
    /// Adds the `Set-Cookie` values to an answer.
    pub fn apply(self, mut res: Answer) -> Answer {
        res.cookies.extend(self.0);
        res
    }
}

/// A redirect with Kratos' status (303 See Other unless `status` says otherwise).
pub fn redirect(to: &str, status: StatusCode) -> Answer {
    Answer {
        status,
        location: Some(to.to_string()),
        json: None,
        cookies: vec![],
        headers: vec![],
    }
}

/// JSON with a status.
pub fn json(status: StatusCode, body: Value) -> Answer {
    Answer {
        status,
        location: None,
        json: Some(body),
        cookies: vec![],
        headers: vec![],
    }
}

/// The flow JSON with a freshly masked CSRF token (browser flows) — every render differs.
pub fn flow_json(flow: &Flow, csrf_token: Option<&[u8; 32]>) -> Value {
    let mut f = flow.clone();
    match (flow.flow_type, csrf_token) {
        (FlowType::Browser, Some(t)) => {
            f.ui.set_csrf(csrf::mask(t));
        }
        (FlowType::Api, _) => {
            f.ui.set_csrf(String::new());
        }
        _ => {}
    }
    f.to_json()
}

/// `<ui_url>?flow=<id>`.
pub fn ui_url_for(deps: &Deps, flow: &Flow) -> String {
    let mut u = deps.config.flow_ui_url(flow.kind.as_str());
    u.query_pairs_mut().append_pair("flow", &flow.id.to_string());
    u.to_string()
}

/// Shows the flow again: 400 + flow for JSON clients, a redirect to the UI for browsers
/// (302 for registration, as Kratos).
pub fn rerender(deps: &Deps, flow: &Flow, style: Style, csrf_token: Option<&[u8; 32]>) -> Answer {
    match style {
        Style::Browser => {
            let status = if flow.kind == super::FlowKind::Registration {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            };
            redirect(&ui_url_for(deps, flow), status)
        }
        _ => {
            // Verification and recovery answer 200 while the flow goes on (Kratos).
            let status = match flow.kind {
                super::FlowKind::Verification | super::FlowKind::Recovery => StatusCode::OK,
                _ => StatusCode::BAD_REQUEST,
            };
            json(status, flow_json(flow, csrf_token))
        }
    }
}

/// Like [`rerender`], for a registration step that went on rather than failed (profile step,
/// back, code sent): Kratos' strategies redirect browsers with 303 there, while its error
/// handler uses 302.
pub fn rerender_step(deps: &Deps, flow: &Flow, style: Style, csrf_token: Option<&[u8; 32]>) -> Answer {
    match style {
        Style::Browser => redirect(&ui_url_for(deps, flow), StatusCode::SEE_OTHER),
        _ => rerender(deps, flow, style, csrf_token),
    }
}

/// Answers an error: JSON clients get the error JSON; browsers are sent to the error UI
/// with the error stored for `GET /self-service/errors?id=`.
pub async fn error(deps: &Deps, err: ApiError, style: Style) -> Answer {
    if style.is_json() {
        return Answer::error(&err);
    }
    if matches!(
        err.id.as_deref(),
        Some("browser_location_change_required" | "session_aal2_required")
    ) && let Some(to) = err.extra.get("redirect_browser_to").and_then(Value::as_str)
    {
        return redirect(to, StatusCode::SEE_OTHER);
    }
    let id = Uuid::new_v4();
    if let Err(e) = deps.store.insert_error(id, &err.error_object(), deps.clock.now()).await {
        tracing::error!(error = %e, "could not store a self-service error");
        return Answer::error(&err);
    }
    let mut u = deps.config.flow_ui_url("error");
    u.query_pairs_mut().append_pair("id", &id.to_string());
    redirect(u.as_str(), StatusCode::SEE_OTHER)
}

/// Sends the client to an external URL (an identity provider): a 303 for forms, Kratos' 422
/// `browser_location_change_required` with `redirect_browser_to` for SPAs and native apps.
pub fn external(to: &str, style: Style) -> Answer {
    match style {
        Style::Browser => redirect(to, StatusCode::SEE_OTHER),
        _ => Answer::error(&location_change_error(to)),
    }
}

/// Kratos' 422 `browser_location_change_required` error pointing at `to`.
pub fn location_change_error(to: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY)
        .id("browser_location_change_required")
        .reason(format!(
            "In order to complete this flow please redirect the browser to: {to}"
        ))
        .message("browser location change required")
        .extra("redirect_browser_to", json!(to))
}
