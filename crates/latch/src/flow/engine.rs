//! The flow engine: creates, fetches and submits flows for every method. It owns expiry,
//! CSRF, session checks, strategy dispatch and the answer in the client's style;
//! strategies never see HTTP. Kratos: `selfservice/flow/{login,registration}/handler.go`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::respond::{self, Cookies, Style, flow_json, rerender};
use super::{Flow, FlowKind, FlowType, login, registration};
use crate::clock::rfc3339;
use crate::crypto::{csrf, sha256_hex};
use crate::deps::{AppState, Deps};
use crate::http::client::{cookies as request_cookies, has_cookie_header};
use crate::http::error::ApiError;
use crate::http::extract::{is_json_content_type, query_one};
use crate::session::manager::{self, ClientInfo, Current};
use crate::strategy::FlowError;
use crate::text::{self, UiText};
use crate::ui::Container;

/// The parts of a request the engine needs.
#[derive(Debug, Clone)]
pub struct Req {
    /// Request headers.
    pub headers: HeaderMap,
    /// The TCP peer.
    pub peer: Option<SocketAddr>,
    /// Path and query as received (without the proxy prefix).
    pub path_and_query: String,
    /// The raw query string.
    pub query: Option<String>,
    /// A submission sent as `GET` (fields in the query), e.g. an email link.
    pub get_submission: bool,
}

impl Req {
    fn q(&self, key: &str) -> Option<String> {
        query_one(self.query.as_deref(), key).filter(|v| !v.is_empty())
    }
}

fn lifespan(deps: &Deps, kind: FlowKind) -> std::time::Duration {
    let f = &deps.config.selfservice.flows;
    match kind {
        FlowKind::Login => f.login.lifespan,
        FlowKind::Registration => f.registration.lifespan,
        FlowKind::Settings => f.settings.lifespan,
        FlowKind::Recovery => f.recovery.lifespan,
        FlowKind::Verification => f.verification.lifespan,
    }
}

/// Where browsers go after a flow when no `return_to` was given.
pub fn default_return_url(deps: &Deps, kind: FlowKind, method: Option<&str>) -> String {
    let f = &deps.config.selfservice.flows;
    let after = match kind {
        FlowKind::Login => Some(&f.login.after),
        FlowKind::Registration => Some(&f.registration.after),
        FlowKind::Settings => Some(&f.settings.after),
        _ => None,
    };
    after
        .and_then(|a| a.return_url_for(method.unwrap_or("")))
        .or(deps.config.selfservice.default_browser_return_url.as_ref())
        .map(|u| u.to_string())
        .unwrap_or_else(|| deps.public_base.to_string())
}

/// A new flow of `kind` with an empty form posting to `ui.action`.
pub fn new_flow(deps: &Deps, kind: FlowKind, flow_type: FlowType, req: &Req, return_to: Option<String>) -> Flow {
    let now = deps.clock.now();
    let id = Uuid::new_v4();
    let action = deps.public_url(&format!("self-service/{}?flow={id}", kind.as_str()));
    // Kratos creates recovery and verification flows with `active` set to the strategy in
    // use (`recovery/flow.go`, `verification/flow.go`); UI kits such as Ory Elements need it
    // to pick the form. Latch implements these flows with the `code` strategy only.
    let active = matches!(kind, FlowKind::Recovery | FlowKind::Verification).then(|| "code".to_string());
    Flow {
        id,
        kind,
        flow_type,
        state: if kind == FlowKind::Settings {
            "show_form"
        } else {
            "choose_method"
        }
        .into(),
        request_url: deps.public_url(&req.path_and_query),
        return_to,
        csrf_hash: None,
        active,
        ui: Container::new(action),
        internal: Value::Object(Map::new()),
        identity_id: None,
        session_id: None,
        refresh: false,
        requested_aal: "aal1".into(),
        issued_at: now,
        expires_at: now + lifespan(deps, kind),
        created_at: now,
        updated_at: now,
        rendered_identity: None,
        transient_payload: None,
    }
}

/// Fills a new flow of any kind with its first screen.
fn populate_new(deps: &Deps, flow: &mut Flow, current: Option<&Current>) {
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

fn flow_disabled(kind: FlowKind) -> ApiError {
    ApiError::bad_request(format!(
        "The {} flow is disabled: enable selfservice.flows.{}.enabled.",
        kind.as_str(),
        kind.as_str()
    ))
    .id("self_service_flow_disabled")
    .message(format!("{} flow disabled", kind.as_str()))
}

fn no_session() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED)
        .id("session_inactive")
        .reason("No active session was found in this request.")
        .message("request does not have a valid authentication session")
}

/// The browser's CSRF token, or a new one with the `Set-Cookie` that installs it.
fn ensure_csrf(deps: &Deps, headers: &HeaderMap) -> ([u8; 32], Option<String>) {
    match manager::csrf_token_from_request(deps, headers) {
        Some(t) => (t, None),
        None => {
            let t = csrf::new_cookie_token();
            (t, Some(manager::csrf_cookie(deps, &t)))
        }
    }
}

fn validate_return_to(deps: &Deps, kind: FlowKind, req: &Req) -> Result<Option<String>, ApiError> {
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

fn already_logged_in(kind: FlowKind) -> ApiError {
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

/// `GET /self-service/{login,registration}/{browser,api}`.
pub async fn init(deps: &AppState, kind: FlowKind, flow_type: FlowType, req: Req) -> Response {
    let style = Style::for_init(flow_type, &req.headers);
    match init_inner(deps, kind, flow_type, &req, style).await {
        Ok(r) => r,
        Err(e) => respond::error(deps, e, style).await,
    }
}

async fn init_inner(
    deps: &Deps,
    kind: FlowKind,
    flow_type: FlowType,
    req: &Req,
    style: Style,
) -> Result<Response, ApiError> {
    let return_to = validate_return_to(deps, kind, req)?;
    if kind == FlowKind::Registration && !deps.config.selfservice.flows.registration.enabled {
        return Err(
            ApiError::bad_request("Registration is not allowed because it was disabled.")
                .id("self_service_flow_disabled")
                .message("registration flow disabled"),
        );
    }
    let refresh = req.q("refresh").is_some_and(|v| v == "true");
    let aal = req.q("aal").unwrap_or_else(|| "aal1".into());
    if !matches!(aal.as_str(), "aal1" | "aal2") {
        return Err(ApiError::bad_request(format!(
            "Unable to parse AuthenticationMethod Assurance Level (AAL): {aal:?}"
        )));
    }
    let f = &deps.config.selfservice.flows;
    if (kind == FlowKind::Recovery && !f.recovery.enabled)
        || (kind == FlowKind::Verification && !f.verification.enabled)
    {
        return Err(flow_disabled(kind));
    }
    let current = manager::current(deps, &req.headers).await?;
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
        return Err(ApiError::new(StatusCode::UNAUTHORIZED)
            .id("session_aal1_required")
            .reason("You can not requested a higher AAL (AAL2/AAL3) without an active session.")
            .message("aal2 and aal3 can only be requested if a session exists already"));
    }
    let mut flow = new_flow(deps, kind, flow_type, req, return_to);
    flow.refresh = refresh;
    flow.requested_aal = aal;
    if let Some(cur) = &current {
        flow.identity_id = Some(cur.identity.id);
        flow.session_id = Some(cur.session.id);
    }
    let mut cookies = Cookies::default();
    let csrf_token = if flow_type == FlowType::Browser {
        let (t, set) = ensure_csrf(deps, &req.headers);
        cookies.0.extend(set);
        flow.csrf_hash = Some(sha256_hex(&t));
        Some(t)
    } else {
        None
    };
    populate_new(deps, &mut flow, current.as_ref());
    deps.store.insert_flow(&flow).await?;
    let res = match style {
        Style::Browser => respond::redirect(&respond::ui_url_for(deps, &flow), StatusCode::SEE_OTHER),
        _ => respond::json(StatusCode::OK, flow_json(&flow, csrf_token.as_ref())),
    };
    Ok(cookies.apply(res))
}

/// Why a browser request failed the CSRF check; each says what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfFailure {
    /// No `Cookie` header at all.
    NoCookies,
    /// Cookies, but not the CSRF cookie.
    NoCsrfCookie,
    /// The cookie is there but the body has no `csrf_token`.
    TokenMissing,
    /// Cookie and token (or flow) do not belong together.
    Mismatch,
}

/// Kratos' 403 `security_csrf_violation`, with a `details.reject_reason` that explains the
/// failure and what to check.
pub fn csrf_error(deps: &Deps, headers: &HeaderMap, failure: CsrfFailure) -> ApiError {
    let base = deps.public_base.as_str();
    let c = &deps.config.cookies;
    let name = &deps.csrf_cookie_name;
    let domain = c.domain.clone().unwrap_or_else(|| "unset (host-only)".into());
    let reject_reason = match failure {
        CsrfFailure::NoCookies => format!(
            "The HTTP Cookie Header is empty or not set. The request carried no cookies at all, so the anti-CSRF cookie {name} \
             set when the flow was created did not come back. Check that: the browser uses the same host as serve.public.base_url \
             ({base}) (cookies for localhost are not sent to 127.0.0.1 and vice versa); single-page apps send requests with \
             credentials: 'include' (fetch) or withCredentials: true (axios) and CORS allows credentials; a backend or proxy in \
             front of Latch forwards the browser's Cookie header and returns Latch's Set-Cookie headers; the cookie was not \
             dropped because it is Secure and the page uses plain http (run Latch with --dev locally)."
        ),
        CsrfFailure::NoCsrfCookie => format!(
            "The HTTP Cookie Header was set but did not include the anti-CSRF cookie. Latch expected a cookie named {name} \
             (derived from serve.public.base_url = {base}). Check that the flow was created through that same base URL, that \
             cookies.domain ({domain}) covers the host the browser uses, that cookies.path ({}) covers /self-service/, and that \
             a proxy in front of Latch forwards every cookie.",
            c.path
        ),
        CsrfFailure::TokenMissing => "The anti-CSRF cookie was found but the CSRF token was not included in the HTTP request body \
             (csrf_token) nor in the HTTP Header (X-CSRF-Token). Submit the value of the csrf_token node from the flow's ui.nodes \
             with the form."
            .to_string(),
        CsrfFailure::Mismatch => "The HTTP Cookie Header was set and a CSRF token was sent but they do not match. We recommend \
             deleting all cookies for this domain and retrying the flow. This usually means the flow was created or fetched with \
             another anti-CSRF cookie (another browser, or the cookie was renewed by signing in or out): fetch the flow again and \
             submit its current csrf_token."
            .to_string(),
    };
    let ajax = headers
        .get("sec-fetch-mode")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m == "cors" || m == "same-origin");
    let hint = if ajax {
        "We detected an AJAX call, please ensure that CORS is enabled and configured correctly, and that your AJAX code sends \
         cookies and has credentials enabled. For further debugging, check your Browser's Network Tab to see what cookies are \
         included or excluded."
    } else {
        "We detected a regular browser or API request. If this request was made by a server (for example a backend rendering \
         the UI), forward the browser's Cookie header to Latch and the Set-Cookie headers back to the browser."
    };
    let failure_id = match failure {
        CsrfFailure::NoCookies => "cookie_header_missing",
        CsrfFailure::NoCsrfCookie => "csrf_cookie_missing",
        CsrfFailure::TokenMissing => "csrf_token_missing",
        CsrfFailure::Mismatch => "csrf_token_mismatch",
    };
    ApiError::new(StatusCode::FORBIDDEN)
        .id("security_csrf_violation")
        .reason(
            "Please retry the flow and optionally clear your cookies. The request was rejected to protect you from \
             Cross-Site-Request-Forgery (CSRF) which could cause account takeover, leaking personal information, and other \
             serious security issues.",
        )
        .message("the request was rejected to protect you from Cross-Site-Request-Forgery")
        .details(json!({
            "docs": "https://www.ory.com/docs/troubleshooting/csrf",
            "hint": hint,
            "reject_reason": reject_reason,
            "latch_failure": failure_id,
            "expected_cookie": {
                "name": name,
                "domain": c.domain,
                "path": c.path,
                "secure": c.secure.unwrap_or(!deps.config.dev),
            },
            "public_base_url": base,
        }))
}

/// Checks that the request's CSRF cookie is the one the flow was created with.
fn check_flow_cookie(deps: &Deps, flow: &Flow, headers: &HeaderMap) -> Result<[u8; 32], ApiError> {
    if !has_cookie_header(headers) {
        return Err(csrf_error(deps, headers, CsrfFailure::NoCookies));
    }
    let Some(token) = manager::csrf_token_from_request(deps, headers) else {
        return Err(csrf_error(deps, headers, CsrfFailure::NoCsrfCookie));
    };
    let matches = flow
        .csrf_hash
        .as_deref()
        .is_some_and(|h| crate::crypto::ct_eq(h.as_bytes(), sha256_hex(&token).as_bytes()));
    if !matches {
        return Err(csrf_error(deps, headers, CsrfFailure::Mismatch));
    }
    Ok(token)
}

fn parse_flow_id(raw: Option<String>) -> Result<Uuid, ApiError> {
    raw.and_then(|s| Uuid::parse_str(&s).ok())
        .ok_or_else(|| ApiError::bad_request("The flow query parameter is missing or malformed."))
}

async fn load_flow(deps: &Deps, kind: FlowKind, id: Uuid) -> Result<Flow, ApiError> {
    match deps.store.get_flow(id).await? {
        Some(f) if f.kind == kind => Ok(f),
        _ => Err(ApiError::not_found("Unable to locate the resource")),
    }
}

/// `GET /self-service/{kind}/flows?id=`.
pub async fn fetch(deps: &AppState, kind: FlowKind, req: Req) -> Response {
    match fetch_json(deps, kind, &req).await {
        Ok(flow) => respond::json(StatusCode::OK, flow),
        Err(e) => e.into_response(),
    }
}

/// The flow JSON `GET /self-service/{kind}/flows?id=` answers, with the same checks (CSRF
/// cookie for browser flows, session owner for settings, expiry). The built-in UI calls
/// this in-process with the browser's headers.
pub async fn fetch_json(deps: &Deps, kind: FlowKind, req: &Req) -> Result<Value, ApiError> {
    let id = parse_flow_id(req.q("id"))?;
    let mut flow = load_flow(deps, kind, id).await?;
    let token = if flow.flow_type == FlowType::Browser {
        Some(check_flow_cookie(deps, &flow, &req.headers)?)
    } else {
        None
    };
    if kind == FlowKind::Settings {
        let cur = settings_owner(deps, &flow, &req.headers).await?;
        flow.rendered_identity = Some(
            cur.identity
                .to_json(&deps.schema_url(&cur.identity.schema_id), &Default::default()),
        );
    }
    let now = deps.clock.now();
    if flow.expired(now) {
        let init = match flow.flow_type {
            FlowType::Browser => "browser",
            FlowType::Api => "api",
        };
        let mut init_url = deps.public_url(&format!("self-service/{}/{init}", kind.as_str()));
        if let Some(r) = &flow.return_to {
            init_url = format!(
                "{init_url}?return_to={}",
                url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()
            );
        }
        let (reason, key) = match flow.flow_type {
            FlowType::Browser => (
                format!(
                    "The {} flow has expired. Redirect the user to the {} flow init endpoint to initialize a new {} flow.",
                    kind.as_str(),
                    kind.as_str(),
                    kind.as_str()
                ),
                "redirect_to",
            ),
            FlowType::Api => (
                format!(
                    "The {} flow has expired. Call the {} flow init API endpoint to initialize a new {} flow.",
                    kind.as_str(),
                    kind.as_str(),
                    kind.as_str()
                ),
                "api",
            ),
        };
        let mut details = json!({ key: init_url });
        if let (Some(r), Some(o)) = (&flow.return_to, details.as_object_mut()) {
            o.insert("return_to".into(), json!(r));
        }
        return Err(ApiError::new(StatusCode::GONE)
            .id("self_service_flow_expired")
            .reason(reason)
            .details(details));
    }
    Ok(flow_json(&flow, token.as_ref()))
}

/// The session that owns a settings flow: the request must carry a session of the flow's identity.
async fn settings_owner(deps: &Deps, flow: &Flow, headers: &HeaderMap) -> Result<Current, ApiError> {
    let cur = manager::current(deps, headers).await?.ok_or_else(no_session)?;
    if flow.identity_id != Some(cur.identity.id) {
        return Err(ApiError::new(StatusCode::FORBIDDEN)
            .id("security_identity_mismatch")
            .reason("The flow belongs to another identity than the session in this request."));
    }
    Ok(cur)
}

/// Decodes a submission: JSON (nested or with dotted keys) or an HTML form.
/// Kratos: `decoderx.HTTP`.
pub fn decode_body(deps: &Deps, headers: &HeaderMap, bytes: &[u8]) -> Result<Value, String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if bytes.is_empty() {
        return Err("Unable to decode HTTP Request Body because its HTTP Header \"Content-Length\" is zero.".into());
    }
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let flat: Vec<(String, Value)> = if is_json_content_type(&ct) {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("Unable to decode the JSON request body: {e}"))?;
        let Value::Object(map) = v else {
            return Err("The JSON request body must be an object.".into());
        };
        map.into_iter().collect()
    } else if essence == "application/x-www-form-urlencoded" {
        let schema = deps.schemas.default_schema().map(|s| &s.raw);
        url::form_urlencoded::parse(bytes)
            .map(|(k, v)| {
                let value = coerce_form_value(schema, &k, &v);
                (k.into_owned(), value)
            })
            .collect()
    } else {
        return Err(format!(
            "HTTP POST Request used unknown HTTP Header \"Content-Type: {ct}\", only [application/x-www-form-urlencoded application/json] are supported."
        ));
    };
    let mut out = Value::Object(Map::new());
    for (k, v) in flat {
        insert_path(&mut out, &k, v);
    }
    Ok(out)
}

/// Form values are strings; trait values are converted to the schema's type.
fn coerce_form_value(schema: Option<&Value>, key: &str, raw: &str) -> Value {
    let Some(rest) = key.strip_prefix("traits.") else {
        return Value::String(raw.to_string());
    };
    let mut node = schema.and_then(|s| s.pointer("/properties/traits"));
    for part in rest.split('.') {
        node = node.and_then(|n| n.get("properties")).and_then(|p| p.get(part));
    }
    let ty = node
        .and_then(|n| n.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("string");
    match ty {
        "boolean" => match raw {
            "true" | "on" | "1" => Value::Bool(true),
            "false" | "off" | "0" | "" => Value::Bool(false),
            _ => Value::String(raw.to_string()),
        },
        "number" | "integer" => raw
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| raw.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(raw.to_string())),
        _ => Value::String(raw.to_string()),
    }
}

fn insert_path(root: &mut Value, key: &str, value: Value) {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = root;
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(obj) = cur.as_object_mut() else { return };
        if i + 1 == parts.len() {
            match (obj.get_mut(*p), value) {
                (Some(existing @ Value::Object(_)), Value::Object(new)) => {
                    for (k, v) in new {
                        insert_path(existing, &k, v);
                    }
                }
                (_, value) => {
                    obj.insert((*p).to_string(), value);
                }
            }
            return;
        }
        cur = obj.entry((*p).to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Applies strategy failures to the form.
pub fn apply_invalid(flow: &mut Flow, messages: Vec<UiText>, node_messages: Vec<(String, UiText)>) {
    for m in messages {
        flow.ui.add_message(m);
    }
    for (name, m) in node_messages {
        flow.ui.add_node_message(&name, m);
    }
}

/// API flows refuse browser traits: an `Origin` header or cookies other than Cloudflare's.
fn api_flow_violation(headers: &HeaderMap) -> Option<String> {
    if headers.contains_key(header::ORIGIN) {
        return Some(
            "The request was rejected because it carried an Origin header, which only browsers send: browsers must use the \
             /browser flow endpoints, native apps the /api ones."
                .into(),
        );
    }
    let foreign = request_cookies(headers)
        .iter()
        .any(|(k, _)| !(k.starts_with("__cf") || k.starts_with("_cf") || k.starts_with("cf_")));
    if foreign {
        return Some(
            "The request was rejected because it carried cookies: API flows are for native apps and must not send cookies. \
             Browsers and backends forwarding browser cookies must use the /browser flow endpoints."
                .into(),
        );
    }
    None
}

/// Everything a submission handler hands to the kind-specific code.
#[derive(Debug)]
pub struct Submission<'a> {
    /// The request.
    pub req: &'a Req,
    /// Answer style.
    pub style: Style,
    /// Decoded body.
    pub body: Value,
    /// The browser's CSRF token (browser flows).
    pub csrf: Option<[u8; 32]>,
    /// The session the request carries.
    pub current: Option<Current>,
    /// The client, for session devices.
    pub client: ClientInfo,
}

/// `POST /self-service/{kind}?flow=` (JSON or form).
pub async fn submit(deps: &AppState, kind: FlowKind, req: Req, body: Bytes) -> Response {
    let guess = Style::for_flow(FlowType::Browser, &req.headers);
    let id = match parse_flow_id(req.q("flow")) {
        Ok(id) => id,
        Err(e) => return respond::error(deps, e, guess).await,
    };
    let mut flow = match load_flow(deps, kind, id).await {
        Ok(f) => f,
        Err(e) => return respond::error(deps, e, guess).await,
    };
    let style = Style::for_flow(flow.flow_type, &req.headers);
    match submit_inner(deps, &mut flow, &req, &body, style).await {
        Ok(r) => r,
        Err(e) => respond::error(deps, e, style).await,
    }
}

async fn submit_inner(
    deps: &Deps,
    flow: &mut Flow,
    req: &Req,
    bytes: &[u8],
    style: Style,
) -> Result<Response, ApiError> {
    let now = deps.clock.now();
    if flow.expired(now) {
        return expired_replacement(deps, flow, req, style, now).await;
    }
    // Admin-created recovery flows (`POST /admin/recovery/code`) meet their browser when the
    // link is opened: bind the flow to that browser's CSRF cookie and show the code form.
    if flow.kind == FlowKind::Recovery
        && flow.flow_type == FlowType::Browser
        && flow.csrf_hash.is_none()
        && req.get_submission
    {
        let (t, set) = ensure_csrf(deps, &req.headers);
        flow.csrf_hash = Some(sha256_hex(&t));
        flow.updated_at = now;
        deps.store.update_flow(flow).await?;
        let res = match style {
            Style::Browser => respond::redirect(&respond::ui_url_for(deps, flow), StatusCode::SEE_OTHER),
            _ => respond::json(StatusCode::OK, flow_json(flow, Some(&t))),
        };
        return Ok(Cookies(set.into_iter().collect()).apply(res));
    }
    // A verification link from an email may be opened in another browser: the code itself
    // is the proof, so that one GET needs no CSRF cookie.
    let link = flow.kind == FlowKind::Verification && req.get_submission && req.q("code").is_some();
    let csrf_token = if flow.flow_type == FlowType::Browser && !link {
        Some(check_flow_cookie(deps, flow, &req.headers)?)
    } else {
        manager::csrf_token_from_request(deps, &req.headers)
    };
    flow.ui.reset_messages();
    let body = match decode_body(deps, &req.headers, bytes) {
        Ok(b) => b,
        Err(reason) => {
            return show_message(
                deps,
                flow,
                style,
                csrf_token.as_ref(),
                text::validation_generic(&reason),
            )
            .await;
        }
    };
    if link {
        // Checked above: no token to compare.
    } else if let Some(token) = csrf_token.as_ref().filter(|_| flow.flow_type == FlowType::Browser) {
        let sent = body.get("csrf_token").and_then(Value::as_str).unwrap_or("");
        if sent.is_empty() {
            return Err(csrf_error(deps, &req.headers, CsrfFailure::TokenMissing));
        }
        if !csrf::verify(token, sent) {
            return Err(csrf_error(deps, &req.headers, CsrfFailure::Mismatch));
        }
    } else if let Some(reason) = api_flow_violation(&req.headers) {
        return show_message(deps, flow, style, None, text::validation_generic(&reason)).await;
    }
    // Kratos keeps the submitted transient payload on the flow it answers with for the
    // profile step, the code strategy (login, registration, recovery, verification) and
    // identifier-first login; other strategies leave it out.
    let method = crate::strategy::method_of(&body);
    if matches!(flow.kind, FlowKind::Recovery | FlowKind::Verification)
        || matches!(method, "code" | "profile" | "identifier_first")
        || (flow.kind == FlowKind::Registration && body.get("screen").is_some())
    {
        flow.transient_payload = body.get("transient_payload").filter(|t| t.is_object()).cloned();
    }
    let current = manager::current(deps, &req.headers).await?;
    let sub = Submission {
        req,
        style,
        body,
        csrf: csrf_token,
        current,
        client: ClientInfo::from_request(deps, &req.headers, req.peer),
    };
    let outcome = match flow.kind {
        FlowKind::Login => login::submit(deps, flow, &sub).await,
        FlowKind::Registration => registration::submit(deps, flow, &sub).await,
        FlowKind::Verification => super::verification::submit(deps, flow, &sub).await,
        FlowKind::Recovery => super::recovery::submit(deps, flow, &sub).await,
        FlowKind::Settings => {
            let cur = settings_owner(deps, flow, &req.headers).await?;
            flow.rendered_identity = Some(
                cur.identity
                    .to_json(&deps.schema_url(&cur.identity.schema_id), &Default::default()),
            );
            super::settings::submit(deps, flow, &sub, &cur).await
        }
    };
    match outcome {
        Ok(res) => Ok(res),
        Err(FlowError::Invalid {
            messages,
            node_messages,
        }) => {
            apply_invalid(flow, messages, node_messages);
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(rerender(deps, flow, style, sub.csrf.as_ref()))
        }
        Err(FlowError::Api(e)) if e.status == StatusCode::BAD_REQUEST => {
            let reason = e.reason.clone().unwrap_or_else(|| e.message.clone());
            show_message(deps, flow, style, sub.csrf.as_ref(), text::validation_generic(&reason)).await
        }
        Err(FlowError::Api(e)) => Err(e),
    }
}

/// Saves the flow with one global message and shows it again.
pub async fn show_message(
    deps: &Deps,
    flow: &mut Flow,
    style: Style,
    csrf: Option<&[u8; 32]>,
    message: UiText,
) -> Result<Response, ApiError> {
    flow.ui.add_message(message);
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(flow).await?;
    Ok(rerender(deps, flow, style, csrf))
}

/// An expired flow on submit: a replacement flow, then 410 with `use_flow_id` (JSON) or a
/// redirect to the new flow (browsers).
async fn expired_replacement(
    deps: &Deps,
    old: &Flow,
    req: &Req,
    style: Style,
    now: OffsetDateTime,
) -> Result<Response, ApiError> {
    let init_path = format!(
        "self-service/{}/{}",
        old.kind.as_str(),
        if old.flow_type == FlowType::Browser {
            "browser"
        } else {
            "api"
        }
    );
    let init_req = Req {
        path_and_query: init_path,
        query: None,
        ..req.clone()
    };
    let mut flow = new_flow(deps, old.kind, old.flow_type, &init_req, old.return_to.clone());
    flow.refresh = old.refresh;
    flow.requested_aal = old.requested_aal.clone();
    flow.csrf_hash = old.csrf_hash.clone();
    let current = manager::current(deps, &req.headers).await?;
    flow.identity_id = old.identity_id;
    flow.session_id = old.session_id;
    populate_new(deps, &mut flow, current.as_ref());
    let message = match old.kind {
        FlowKind::Login => text::login_flow_expired(old.expires_at, now),
        FlowKind::Registration => text::registration_flow_expired(old.expires_at, now),
        FlowKind::Settings => text::settings_flow_expired(old.expires_at, now),
        FlowKind::Recovery => text::recovery_flow_expired(old.expires_at, now),
        FlowKind::Verification => text::verification_flow_expired(old.expires_at, now),
    };
    flow.ui.add_message(message);
    deps.store.insert_flow(&flow).await?;
    if style == Style::Browser {
        return Ok(respond::redirect(
            &respond::ui_url_for(deps, &flow),
            StatusCode::SEE_OTHER,
        ));
    }
    let since = (now - old.expires_at).whole_nanoseconds();
    let minutes = (now - old.expires_at).as_seconds_f64() / 60.0;
    Ok(ApiError::new(StatusCode::GONE)
        .id("self_service_flow_expired")
        .reason(format!(
            "The self-service flow expired {minutes:.2} minutes ago, initialize a new one."
        ))
        .message("self-service flow expired")
        .extra("expired_at", json!(rfc3339(old.expires_at)))
        .extra("since", json!(since as i64))
        .extra("use_flow_id", json!(flow.id))
        .into_response())
}
