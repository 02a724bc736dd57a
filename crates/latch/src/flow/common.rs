//! What the engine and the per-kind handlers (`login`, `registration`, …) share: a new flow,
//! the submission handed to a handler, where browsers go afterwards. Handlers import this,
//! never the engine.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::request::Request as Req;
use super::respond::Style;
use super::{Flow, FlowKind, FlowType};
use crate::deps::Deps;
use crate::session::manager::{ClientInfo, Current};
use crate::ui::Container;

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
    Flow {
        id,
        kind,
        flow_type,
        state: if kind == FlowKind::Settings {
            crate::model::flow::FlowState::ShowForm
        } else {
            crate::model::flow::FlowState::ChooseMethod
        },
        request_url: deps.public_url(&req.path_and_query),
        return_to,
        csrf_hash: None,
        // Recovery and verification flows get their strategy as `active` when populated, as
        // Kratos sets it on creation (Ory Elements picks the form by it).
        active: None,
        ui: Container::new(action),
        internal: Value::Object(Map::new()),
        identity_id: None,
        session_id: None,
        refresh: false,
        requested_aal: crate::model::Aal::Aal1,
        issued_at: now,
        expires_at: now + lifespan(deps, kind),
        created_at: now,
        updated_at: now,
        rendered_identity: None,
        transient_payload: None,
    }
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

/// Kratos' 401 `session_aal1_required`: a second factor needs the first factor's session.
pub fn aal1_required() -> crate::error::ApiError {
    crate::error::ApiError::new(http::StatusCode::UNAUTHORIZED)
        .id("session_aal1_required")
        .reason("You can not requested a higher AAL (AAL2/AAL3) without an active session.")
        .message("aal2 and aal3 can only be requested if a session exists already")
}

/// Kratos' 403 `session_aal2_required`: the session has one factor while the identity has set
/// up a second one and the feature demands the highest available level. Browsers are sent to a
/// second-factor login that comes back to `return_to`.
pub fn aal2_required(deps: &Deps, return_to: Option<&str>) -> crate::error::ApiError {
    let mut to = deps.public_url("self-service/login/browser?aal=aal2");
    if let Some(back) = return_to {
        to.push_str("&return_to=");
        to.extend(url::form_urlencoded::byte_serialize(back.as_bytes()));
    }
    crate::error::ApiError::new(http::StatusCode::FORBIDDEN)
        .id("session_aal2_required")
        .reason("An active session was found but it does not fulfill the Authenticator Assurance Level, implying that the session must (e.g.) authenticate the second factor.")
        .message("Session does not fulfill the requested Authenticator Assurance Level")
        .details(serde_json::json!({"redirect_browser_to": to}))
        .extra("redirect_browser_to", serde_json::json!(to))
}

/// Whether `cur` satisfies `required`: `highest_available` demands `aal2` from identities that
/// have a second factor. Kratos: `DoesSessionSatisfy`.
pub fn satisfies(deps: &Deps, cur: &Current, required: crate::config::RequiredAal) -> bool {
    session_satisfies(deps, &cur.session, &cur.identity, required)
}

/// [`satisfies`] for a session and its identity (a session just issued by a login).
pub fn session_satisfies(
    deps: &Deps,
    session: &crate::session::Session,
    identity: &crate::identity::Identity,
    required: crate::config::RequiredAal,
) -> bool {
    required == crate::config::RequiredAal::Aal1
        || session.aal == crate::model::Aal::Aal2
        || deps.credentials.available_aal(&deps.config, identity) != crate::model::Aal::Aal2
}

/// Whether `kind` takes `link` tokens: recovery and verification flows while the `link`
/// method is enabled, whatever `use` says (Kratos lets every enabled strategy look at a
/// submission, so an admin recovery link works under `use: code` too). Such emailed
/// `GET ?flow=&token=` submissions need no CSRF cookie and go to the link strategy.
pub fn uses_link(deps: &Deps, kind: FlowKind) -> bool {
    matches!(kind, FlowKind::Recovery | FlowKind::Verification) && deps.config.selfservice.methods.link.enabled
}

/// A flow of `kind` that continues `from` (same type, `return_to` and CSRF binding), stored:
/// Kratos' login↔registration switch of social sign-in.
pub(super) async fn switched(
    deps: &Deps,
    from: &Flow,
    kind: FlowKind,
    sub: &Submission<'_>,
) -> Result<Flow, crate::strategy::FlowError> {
    let mut f = new_flow(deps, kind, from.flow_type, sub.req, from.return_to.clone());
    f.csrf_hash = from.csrf_hash.clone();
    for key in [crate::model::flow::AMR_PROVIDER, super::token_exchange::KEY] {
        if let Some(v) = from.internal_get(key) {
            f.internal_set(key, v.clone());
        }
    }
    deps.store.insert_flow(&f).await?;
    Ok(f)
}
