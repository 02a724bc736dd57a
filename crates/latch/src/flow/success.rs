//! The one success responder of login, registration and recovery: it issues (or steps up)
//! the session and answers the three client styles. The per-kind differences Kratos has
//! (which body, which `continue_with` items, where a form goes) are written out once, here.

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::common::{Submission, default_return_url};
use super::respond::{self, Answer, Cookies, Style};
use super::{Flow, FlowKind, Service};
use crate::identity::Identity;
use crate::model::Aal;
use crate::model::flow::FlowState;
use crate::session::AuthMethod;
use crate::session::manager::{self, Issued};
use crate::strategy::FlowError;

/// Signs `identity` in with `method` at `aal` ([`prepare_sign_in`] then [`commit_sign_in`]
/// with no web hook deliveries: registration's session hook).
pub async fn sign_in(
    deps: &Service,
    flow: &Flow,
    sub: &Submission<'_>,
    identity: &Identity,
    method: &str,
    aal: Aal,
) -> Result<Issued, FlowError> {
    let pending = prepare_sign_in(deps, flow, sub, identity, method, aal)?;
    commit_sign_in(deps, pending, &[]).await
}

/// A sign-in decided but not written: the session as it will be stored (after-login and
/// after-recovery `web_hook`s see it first and may still refuse it).
#[derive(Debug)]
pub struct PendingSignIn {
    /// The session and its token.
    pub issued: Issued,
    /// The request's own session gains a method (refresh, step-up) rather than a new one.
    step_up: bool,
}

/// [`sign_in`] without writing anything: a login that refreshes or steps up the request's own
/// session adds the method to it (same token); everything else makes a new session.
pub fn prepare_sign_in(
    deps: &Service,
    flow: &Flow,
    sub: &Submission<'_>,
    identity: &Identity,
    method: &str,
    aal: Aal,
) -> Result<PendingSignIn, FlowError> {
    let now = deps.clock.now();
    let am = AuthMethod {
        method: method.to_string(),
        aal,
        completed_at: now,
        provider: flow
            .internal_get(crate::model::flow::AMR_PROVIDER)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string),
    };
    let step_up = flow.kind == FlowKind::Login && (flow.refresh || flow.requested_aal == "aal2");
    match &sub.current {
        Some(cur) if step_up && cur.identity.id == identity.id => {
            let mut s = cur.session.clone();
            s.methods.push(am);
            s.aal = crate::session::compute_aal(&s.methods);
            s.authenticated_at = now;
            s.expires_at = now + deps.config.session.lifespan;
            Ok(PendingSignIn {
                issued: Issued {
                    session: s,
                    token: cur.token.clone(),
                },
                step_up: true,
            })
        }
        // A step-up never issues a fresh session (the login engine refuses such submissions
        // before a strategy runs; this keeps it so if that check is ever bypassed).
        _ if flow.requested_aal == Aal::Aal2 => Err(FlowError::Aal1Required),
        _ => Ok(PendingSignIn {
            issued: manager::new_session(deps, identity, vec![am], &sub.client),
            step_up: false,
        }),
    }
}

/// Writes a [`PendingSignIn`], with `outbox` (the `response.ignore` web hooks of the event,
/// rendered beforehand) in the same transaction: they are queued if and only if the session is.
pub async fn commit_sign_in(
    deps: &Service,
    pending: PendingSignIn,
    outbox: &[crate::webhook::outbox::NewDelivery],
) -> Result<Issued, FlowError> {
    if pending.step_up {
        deps.store
            .update_session_auth_with(&pending.issued.session, deps.clock.now(), outbox)
            .await?;
    } else {
        manager::store(deps, &pending.issued, outbox).await?;
    }
    Ok(pending.issued)
}

/// [`commit_sign_in`] that also completes `flow` (as [`answer`] would) and saves it in the
/// session's transaction; `true` when it did (a new session), so the answer need not save it
/// again ([`Done::flow_saved`]). A step-up of the request's own session leaves the flow to
/// the answer.
pub async fn commit_sign_in_completing(
    deps: &Service,
    pending: PendingSignIn,
    outbox: &[crate::webhook::outbox::NewDelivery],
    flow: &mut Flow,
) -> Result<(Issued, bool), FlowError> {
    if pending.step_up || flow.kind == FlowKind::Recovery {
        return Ok((commit_sign_in(deps, pending, outbox).await?, false));
    }
    mark_completed(flow, deps.clock.now());
    let issued = &pending.issued;
    let logout = manager::logout_token_for(&issued.token);
    deps.store
        .insert_session_saving(
            &issued.session,
            &crate::crypto::sha256_hex(issued.token.as_bytes()),
            &crate::crypto::sha256_hex(logout.as_bytes()),
            outbox,
            Some(flow),
        )
        .await?;
    Ok((pending.issued, true))
}

/// Marks a login or registration flow completed (a later submission is refused).
fn mark_completed(flow: &mut Flow, now: time::OffsetDateTime) {
    flow.internal_set("completed", json!(true));
    flow.state = FlowState::PassedChallenge;
    flow.updated_at = now;
}

/// A completed flow, ready to be answered.
#[derive(Debug)]
pub struct Done<'a> {
    /// Who completed it.
    pub identity: &'a Identity,
    /// The method that completed it (for the default return URL).
    pub method: &'a str,
    /// The session, when one was issued (registration without the `session` hook has none).
    pub issued: Option<Issued>,
    /// `continue_with` items after the session ones (verification or settings UI).
    pub continue_with: Vec<Value>,
    /// Where a browser form goes instead of the flow's return URL (a verification or
    /// settings UI).
    pub browser_to: Option<String>,
    /// The CSRF cookie to set when the session rotates it (a verification flow started by a
    /// hook is bound to it); `None` makes a fresh one.
    pub csrf_cookie: Option<[u8; 32]>,
    /// The flow was already completed and saved with the session
    /// ([`commit_sign_in_completing`]).
    pub flow_saved: bool,
}

/// Marks the flow as completed, stores it and answers the client. Kratos' shapes:
/// - login: native `{session_token, session, continue_with: null}`, SPA `{session,
///   continue_with: [redirect_browser_to]}`;
/// - registration: `identity` (+ `session`, and for native apps `session_token` and a
///   `set_ory_session_token` item), SPA `redirect_browser_to` first;
/// - recovery: the flow itself with `continue_with` (`set_ory_session_token` for native
///   apps, then `show_settings_ui`); its settings flow shares the CSRF cookie, which is kept.
///
/// Browser forms get a 303 with the session and a fresh CSRF cookie.
pub async fn answer(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    done: Done<'_>,
) -> Result<Answer, FlowError> {
    answer_with(deps, flow, sub, done, None).await
}

/// [`answer`] for a first-factor login whose new session does not satisfy
/// `session.whoami.required_aal` (Kratos' `PostLoginHook` → `checkAAL`): the session is
/// issued all the same (at `aal1`), but browsers are sent to `aal2_to` (the second-factor
/// login) with a 303, SPAs get 422 `browser_location_change_required` pointing there, and
/// native apps get their token with the session's `identity` left out ("to preserve the
/// user's privacy in case of a phishing attack").
pub async fn answer_needing_aal2(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    done: Done<'_>,
    aal2_to: &str,
) -> Result<Answer, FlowError> {
    answer_with(deps, flow, sub, done, Some(aal2_to)).await
}

async fn answer_with(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    done: Done<'_>,
    aal2_to: Option<&str>,
) -> Result<Answer, FlowError> {
    let now = deps.clock.now();
    let kind = flow.kind;
    if kind == FlowKind::Recovery {
        // Only the non-secret part is stored: a flow GET serves `continue_with` to anyone
        // who knows the flow id, so a session token goes out in this response alone.
        flow.internal_set("continue_with", json!(done.continue_with));
        flow.ui.nodes.retain(|n| n.group == crate::ui::Group::Default);
        flow.state = FlowState::PassedChallenge;
        flow.updated_at = now;
        deps.store.update_flow(flow).await?;
    } else if !done.flow_saved {
        mark_completed(flow, now);
        deps.store.update_flow(flow).await?;
    }

    let identity = done.identity;
    let schema_url = deps.schema_url(&identity.schema_id);
    let to = flow
        .return_to
        .clone()
        .unwrap_or_else(|| default_return_url(deps, kind, Some(done.method)));
    // A native app's social sign-in that asked for the token exchange: the browser goes to
    // `return_to` with the code; the app fetches the token with it.
    if let (Some(i), Some(exchange)) = (
        &done.issued,
        super::token_exchange::pending(flow, sub.style, &sub.body, done.method),
    ) {
        return super::token_exchange::hand_off(deps, exchange, i, &to).await;
    }
    let mut body = match kind {
        FlowKind::Recovery => match respond::flow_json(flow, sub.csrf.as_ref()) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        FlowKind::Registration => {
            let mut m = Map::new();
            m.insert("identity".into(), identity.to_json(&schema_url, &Default::default()));
            m
        }
        _ => Map::new(),
    };
    if kind != FlowKind::Recovery
        && let Some(i) = &done.issued
    {
        let shown = if aal2_to.is_some() { None } else { Some(identity) };
        body.insert("session".into(), i.session.to_json(now, shown, &schema_url, false));
    }
    let mut continue_with = vec![];
    match sub.style {
        Style::Api => {
            if let Some(i) = &done.issued {
                if kind != FlowKind::Recovery {
                    body.insert("session_token".into(), json!(i.token));
                }
                if kind != FlowKind::Login {
                    continue_with.push(json!({"action": "set_ory_session_token", "ory_session_token": i.token}));
                }
            }
        }
        Style::Spa if kind != FlowKind::Recovery => {
            continue_with.push(json!({"action": "redirect_browser_to", "redirect_browser_to": to}));
        }
        _ => {}
    }
    continue_with.extend(done.continue_with);
    body.insert(
        "continue_with".into(),
        if continue_with.is_empty() {
            Value::Null
        } else {
            json!(continue_with)
        },
    );
    let res = match (sub.style, aal2_to) {
        (Style::Browser, Some(aal2)) => respond::redirect(aal2, StatusCode::SEE_OTHER),
        (Style::Spa, Some(aal2)) => Answer::error(&respond::location_change_error(aal2)),
        (Style::Browser, None) => respond::redirect(done.browser_to.as_deref().unwrap_or(&to), StatusCode::SEE_OTHER),
        _ => respond::json(StatusCode::OK, Value::Object(body)),
    };
    Ok(match (&done.issued, sub.style) {
        (Some(i), Style::Browser | Style::Spa) => {
            // As Kratos (`IssueCookie`): the CSRF cookie rotates unless the request was already
            // signed in as the same identity (a refresh or step-up), so the settings flow that
            // asked for the refresh (bound to that cookie) can resume.
            let same_identity = sub
                .current
                .as_ref()
                .is_some_and(|c| c.identity.id == i.session.identity_id);
            let csrf = match (kind, sub.csrf) {
                (FlowKind::Recovery, Some(keep)) => keep,
                (_, Some(keep)) if same_identity => keep,
                _ => done.csrf_cookie.unwrap_or_else(crate::crypto::csrf::new_cookie_token),
            };
            Cookies(vec![
                manager::session_cookie(deps, &i.token, i.session.expires_at),
                manager::csrf_cookie(deps, &csrf),
            ])
            .apply(res)
        }
        _ => res,
    })
}
