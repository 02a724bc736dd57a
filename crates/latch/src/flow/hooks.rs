//! The built-in hooks of `selfservice.flows.<flow>.after[.<method>].hooks`, run as Kratos
//! runs them (`selfservice/hook/*.go`): `require_verified_address`, `revoke_active_sessions`,
//! `verification` and `show_verification_ui` after login; `verification` (whenever the
//! verification flow is enabled) and `show_verification_ui` after registration and settings. `session`
//! after registration is read by `registration.rs`; `revoke_active_sessions` after settings
//! and recovery lives in `revoke.rs`; `verify_new_address` and `notify_previous_addresses`
//! after settings in `address_change.rs` and `after_settings.rs`; `web_hook` (everywhere,
//! before and after, blocking or queued in the durable outbox) in `web_hook.rs`.
//!
//! Which list applies is Kratos' precedence ([`crate::config::After::hooks_running`]): the
//! method's own list when it holds a hook that runs there, else the flow-wide list; never both.

use http::StatusCode;
use serde_json::{Value, json};

use super::common::Submission;
use super::respond::{self, Answer, Style};
use super::{Flow, FlowType, Service};
use crate::config::Hook;
use crate::error::ApiError;
use crate::identity::Identity;
use crate::strategy::FlowError;
use crate::text;

/// Hooks Kratos runs after login (`login.PostHookExecutor` implementations).
pub const LOGIN_AFTER: &[&str] = &[
    "revoke_active_sessions",
    "require_verified_address",
    "web_hook",
    "verification",
    "show_verification_ui",
];

/// Hooks Kratos runs after registration, once the identity is stored
/// (`registration.PostHookPostPersistExecutor` implementations).
pub const REGISTRATION_AFTER: &[&str] = &["session", "show_verification_ui", "verification", "web_hook"];

/// Hooks Kratos runs after settings saved the identity (defined next to the hooks that run
/// after a deferred address change, which must not depend on this file).
pub use super::after_settings::SETTINGS_AFTER;

/// Whether `hooks` lists `name`.
pub fn has(hooks: &[Hook], name: &str) -> bool {
    hooks.iter().any(|h| h.hook == name)
}

/// The after-login hooks for `method`.
pub fn login_hooks<'a>(deps: &'a Service, method: &str) -> &'a [Hook] {
    deps.config
        .selfservice
        .flows
        .login
        .after
        .hooks_running(method, LOGIN_AFTER)
}

/// What the verification hooks add to a flow's answer.
#[derive(Debug, Default)]
pub struct Continue {
    /// `show_verification_ui` items for `continue_with`.
    pub continue_with: Vec<Value>,
    /// Where a browser form goes instead of the return URL (the verification UI).
    pub browser_to: Option<String>,
    /// The CSRF cookie the answer sets: the verification flows started are bound to it
    /// (Kratos regenerates the token in `hook.Verifier` for the same reason).
    pub csrf_cookie: Option<[u8; 32]>,
}

/// The CSRF token a browser holds after a sign-in answer: kept when the request was already
/// signed in as the same identity (refresh, step-up), else a fresh one (`success.rs`).
fn csrf_after_sign_in(flow: &Flow, sub: &Submission<'_>, identity: &Identity) -> Option<[u8; 32]> {
    if flow.flow_type != FlowType::Browser {
        return None;
    }
    let same = sub.current.as_ref().is_some_and(|c| c.identity.id == identity.id);
    match (same, sub.csrf) {
        (true, Some(keep)) => Some(keep),
        _ => Some(crate::crypto::csrf::new_cookie_token()),
    }
}

/// `require_verified_address`, before a login issues its session (Kratos:
/// `hook.AddressVerifier`). An identity with a verified address passes. Otherwise a
/// verification flow is started for its first address and a code sent; browsers are sent
/// to it (303), JSON clients get `403 session_verified_address_required` with the
/// `show_verification_ui` item in `error.details.continue_with`. No session is issued.
///
/// Returns the answer that ends the login, or `None` to go on.
pub async fn require_verified_address(
    deps: &Service,
    flow: &Flow,
    sub: &Submission<'_>,
    identity: &Identity,
    method: &str,
    hooks: &[Hook],
) -> Result<Option<Answer>, FlowError> {
    if !has(hooks, "require_verified_address") {
        return Ok(None);
    }
    let legacy = deps.config.feature_flag("legacy_require_verified_login_error");
    if legacy && method != "password" {
        return Ok(None);
    }
    if identity.verifiable_addresses.is_empty() {
        return Err(FlowError::Api(
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR)
                .id("invalid_configuration")
                .message("Invalid configuration")
                .reason(
                    "A misconfiguration prevents login. Expected to find a verification address but this identity \
                     does not have one assigned.",
                ),
        ));
    }
    if identity.verifiable_addresses.iter().any(|a| a.verified) {
        return Ok(None);
    }
    // Latch: without the verification flow there is nowhere to send the person, so the
    // login is refused with Kratos' legacy message (Kratos would start an unusable flow).
    let address = identity
        .verifiable_addresses
        .iter()
        .find(|a| !a.value.is_empty() && a.via == "email");
    let (Some(address), false, true) = (address, legacy, deps.config.selfservice.flows.verification.enabled) else {
        return Err(FlowError::message(text::address_not_verified()));
    };
    let vf = start(deps, flow, sub, &address.value, sub.csrf.or(sub.req.csrf_cookie)).await?;
    let url = respond::ui_url_for(deps, &vf);
    let item = json!({"action": "show_verification_ui",
        "flow": {"id": vf.id, "verifiable_address": address.value, "url": url}});
    if sub.style == Style::Browser {
        return Ok(Some(respond::redirect(&url, StatusCode::SEE_OTHER)));
    }
    // Kratos writes this with HTTP 403 while its body keeps herodot's `code: 400`; Latch's
    // `error.code` always equals the status.
    Err(FlowError::Api(
        ApiError::new(StatusCode::FORBIDDEN)
            .id("session_verified_address_required")
            .message("your email or phone address is not yet verified")
            .reason(
                "Your account's email or phone address are not verified yet. Please check your email or phone \
                 inbox or re-request verification.",
            )
            .details(json!({"continue_with": [item]})),
    ))
}

/// The hooks after a login signed `identity` in with session `session_id`:
/// `revoke_active_sessions` (every other session of the identity), `verification` (a code to
/// the first unverified address, `aal1` logins only) and `show_verification_ui`.
pub async fn after_login(
    deps: &Service,
    flow: &Flow,
    sub: &Submission<'_>,
    identity: &Identity,
    session_id: uuid::Uuid,
    hooks: &[Hook],
) -> Result<Continue, FlowError> {
    super::revoke::revoke_active_sessions(deps, hooks, identity.id, session_id).await?;
    let csrf = csrf_after_sign_in(flow, sub, identity);
    let sent = if has(hooks, "verification") && flow.requested_aal == crate::model::Aal::Aal1 {
        send_verification(deps, flow, sub, identity, csrf).await
    } else {
        vec![]
    };
    let mut out = show_ui(deps, has(hooks, "show_verification_ui"), sent);
    out.csrf_cookie = csrf;
    Ok(out)
}

/// The hooks after a registration stored `identity`: Kratos always starts verification when
/// the verification flow is enabled (whatever the list says), and `show_verification_ui`
/// points the client at it.
pub async fn after_registration(
    deps: &Service,
    flow: &Flow,
    sub: &Submission<'_>,
    identity: &Identity,
    hooks: &[Hook],
) -> Continue {
    // Registration is never signed in already: a session issued rotates the CSRF cookie;
    // without one the browser keeps its cookie.
    let csrf = if has(hooks, "session") {
        csrf_after_sign_in(flow, sub, identity)
    } else {
        sub.csrf.or(sub.req.csrf_cookie)
    };
    let sent = send_verification(deps, flow, sub, identity, csrf).await;
    let mut out = show_ui(deps, has(hooks, "show_verification_ui"), sent);
    out.csrf_cookie = csrf;
    out
}

/// The hooks after settings saved `identity`: Kratos always starts verification for a new
/// (`pending`) address when the verification flow is enabled, and `show_verification_ui`
/// adds the `continue_with` item (browsers stay on the settings page, as in Kratos).
pub async fn after_settings(
    deps: &Service,
    flow: &Flow,
    sub: &Submission<'_>,
    identity: &Identity,
    hooks: &[Hook],
) -> Continue {
    let sent = send_verification(deps, flow, sub, identity, sub.csrf.or(sub.req.csrf_cookie)).await;
    let mut out = show_ui(deps, has(hooks, "show_verification_ui"), sent);
    out.browser_to = None;
    out
}

/// Starts a verification flow (and sends the code) for the first unverified email address,
/// or for every one under `feature_flags.legacy_continue_with_verification_ui` (Kratos:
/// `hook.Verifier`). Failures (e.g. the mail budget) are logged: the person is signed in or
/// registered all the same and can ask for a code later.
async fn send_verification(
    deps: &Service,
    flow: &Flow,
    sub: &Submission<'_>,
    identity: &Identity,
    csrf: Option<[u8; 32]>,
) -> Vec<(Flow, String)> {
    if !deps.config.selfservice.flows.verification.enabled {
        return vec![];
    }
    let all = deps.config.feature_flag("legacy_continue_with_verification_ui");
    // Settings mail only addresses no code went to yet (new ones); registration and login
    // every unverified one.
    let settings = flow.kind == super::FlowKind::Settings;
    let mut sent = vec![];
    for a in identity
        .verifiable_addresses
        .iter()
        .filter(|a| !a.verified && a.via == "email" && !a.value.is_empty())
        .filter(|a| !settings || a.status == "pending")
    {
        match start(deps, flow, sub, &a.value, csrf).await {
            Ok(vf) => {
                if let Err(e) = deps
                    .store
                    .mark_address_sent(identity.id, &a.via, &a.value, deps.clock.now())
                    .await
                {
                    tracing::warn!(error = %e, "could not mark an address as sent");
                }
                sent.push((vf, a.value.clone()));
            }
            Err(e) => tracing::warn!(error = ?e, flow = flow.kind.as_str(), "could not start verification"),
        }
        if !all {
            break;
        }
    }
    sent
}

async fn start(
    deps: &Service,
    flow: &Flow,
    sub: &Submission<'_>,
    address: &str,
    csrf: Option<[u8; 32]>,
) -> Result<Flow, FlowError> {
    let path = format!("self-service/verification/{}", flow.flow_type.as_str());
    super::verification::start_for_address(
        deps,
        flow.flow_type,
        &path,
        flow.return_to.clone(),
        address,
        sub.req,
        csrf,
    )
    .await
}

/// `show_verification_ui` items for the verification flows started (Kratos:
/// `hook.ShowVerificationUIHook`); browsers go to the first one.
fn show_ui(deps: &Service, wanted: bool, sent: Vec<(Flow, String)>) -> Continue {
    let mut out = Continue::default();
    if !wanted {
        return out;
    }
    for (vf, address) in sent {
        let mut item = json!({"action": "show_verification_ui", "flow": {"id": vf.id, "verifiable_address": address}});
        if vf.flow_type == FlowType::Browser {
            let url = respond::ui_url_for(deps, &vf);
            item["flow"]["url"] = json!(url);
            out.browser_to.get_or_insert(url);
        }
        out.continue_with.push(item);
    }
    out
}
