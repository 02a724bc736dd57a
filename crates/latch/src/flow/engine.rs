//! The flow engine: creates, fetches and submits flows for every method. It owns expiry,
//! CSRF, session checks, strategy dispatch and the answer in the client's style;
//! strategies never see HTTP. Kratos: `selfservice/flow/{login,registration}/handler.go`.

use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::Service;
use super::body::decode_body;
pub use super::csrf_explain::{CsrfFailure, csrf_error};
use super::respond::{self, Answer, Cookies, Style, flow_json, rerender};
use super::{Flow, FlowKind, FlowType, login, registration};
use crate::clock::rfc3339;
use crate::crypto::{csrf, sha256_hex};
use crate::error::ApiError;
use crate::flow::AppState;
use crate::session::manager::{self};
use crate::strategy::FlowError;
use crate::text::{self, UiText};

pub use super::common::{Submission, default_return_url, new_flow};
pub use super::fetch::{fetch, fetch_json};
use super::guard::*;
pub use super::init::init;
pub use super::request::Request as Req;

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
fn api_flow_violation(req: &Req) -> Option<String> {
    if req.has_origin {
        return Some(
            "The request was rejected because it carried an Origin header, which only browsers send: browsers must use the \
             /browser flow endpoints, native apps the /api ones."
                .into(),
        );
    }
    if req.foreign_cookies {
        return Some(
            "The request was rejected because it carried cookies: API flows are for native apps and must not send cookies. \
             Browsers and backends forwarding browser cookies must use the /browser flow endpoints."
                .into(),
        );
    }
    None
}

/// `POST /self-service/{kind}?flow=` (JSON or form).
pub async fn submit(deps: &AppState, kind: FlowKind, req: Req, body: &[u8]) -> Answer {
    let guess = Style::for_flow(FlowType::Browser, &req);
    let id = match parse_flow_id(req.q("flow")) {
        Ok(id) => id,
        Err(e) => return respond::error(deps, e, guess).await,
    };
    let mut flow = match load_flow(deps, kind, id).await {
        Ok(f) => f,
        Err(e) => return respond::error(deps, e, guess).await,
    };
    let style = Style::for_flow(flow.flow_type, &req);
    match submit_inner(deps, &mut flow, &req, Input::Raw(body), style).await {
        Ok(r) => r,
        Err(e) => respond::error(deps, e, style).await,
    }
}

/// A submission's body: as sent by the client, or built by a strategy route that
/// authenticated the request itself.
enum Input<'a> {
    Raw(&'a [u8]),
    FromRoute(Value),
}

/// A request to a strategy's own route (`Strategy::routes`): the strategy turns it into a
/// submission of one of its flows, which then runs like any other.
pub async fn route(
    deps: &AppState,
    handler: &dyn crate::strategy::RouteHandler,
    req: Req,
    input: crate::strategy::RouteInput,
) -> Answer {
    let guess = Style::for_flow(FlowType::Browser, &req);
    let outcome = match handler.handle(deps, &input).await {
        Ok(o) => o,
        Err(FlowError::Invalid { messages, .. }) => {
            let reason = messages.first().map(|m| m.text.clone()).unwrap_or_default();
            return respond::error(deps, ApiError::bad_request(reason), guess).await;
        }
        Err(e) => {
            tracing::warn!(error = ?e, "a strategy route failed");
            return respond::error(deps, ApiError::internal(), guess).await;
        }
    };
    let (flow_id, body) = match outcome {
        crate::strategy::RouteOutcome::Submit { flow_id, body } => (flow_id, body),
        crate::strategy::RouteOutcome::Redirect(to) => return respond::redirect(&to, StatusCode::FOUND),
    };
    let mut flow = match deps.store.get_flow(flow_id).await {
        Ok(Some(f)) => f,
        Ok(None) => return respond::error(deps, ApiError::not_found("Unable to locate the resource"), guess).await,
        Err(e) => return respond::error(deps, e.into(), guess).await,
    };
    let style = Style::for_flow(flow.flow_type, &req);
    match submit_inner(deps, &mut flow, &req, Input::FromRoute(body), style).await {
        Ok(r) => r,
        Err(e) => respond::error(deps, e, style).await,
    }
}

async fn submit_inner(
    deps: &Service,
    flow: &mut Flow,
    req: &Req,
    input: Input<'_>,
    style: Style,
) -> Result<Answer, ApiError> {
    let now = deps.clock.now();
    let client = req.client.clone();
    if let Err(e) = crate::limits::submission(deps, client.ip.as_deref()).await {
        return match e {
            crate::limits::LimitError::Limited(l) => {
                flow.ui.reset_messages();
                limited(deps, flow, style, None, l).await
            }
            crate::limits::LimitError::Store(e) => Err(e.into()),
        };
    }
    if flow.expired(now) {
        return expired_replacement(deps, flow, req, style, now).await;
    }
    // Admin-created recovery flows (`POST /admin/recovery/code`) meet their browser when the
    // link is opened: bind the flow to that browser's CSRF cookie and show the code form.
    // A link of the `link` method (`?flow=&token=`) may be opened in any browser: the token
    // is the proof, so that one GET needs no CSRF cookie (Kratos).
    let link_token = req.get_submission && req.q("token").is_some() && super::common::uses_link(deps, flow.kind);
    if flow.kind == FlowKind::Recovery
        && flow.flow_type == FlowType::Browser
        && flow.csrf_hash.is_none()
        && req.get_submission
        && !link_token
    {
        let (t, set) = ensure_csrf(deps, req);
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
    let link = link_token || (flow.kind == FlowKind::Verification && req.get_submission && req.q("code").is_some());
    let csrf_token = if flow.flow_type == FlowType::Browser && !link {
        Some(check_flow_cookie(deps, flow, req)?)
    } else {
        req.csrf_cookie
    };
    flow.ui.reset_messages();
    let (body, from_route) = match input {
        Input::FromRoute(body) => (Ok(body), true),
        Input::Raw(bytes) => (decode_body(deps, &req.content_type, bytes), false),
    };
    let body = match body {
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
    // A browser back from the refresh login resumes the settings change it was sent away from.
    let body = if flow.kind == FlowKind::Settings {
        super::continuity::resume(deps, flow, req, body)
    } else {
        body
    };
    if link || from_route {
        // Checked above (the CSRF cookie) or by the strategy: no token to compare.
    } else if let Some(token) = csrf_token.as_ref().filter(|_| flow.flow_type == FlowType::Browser) {
        let sent = body.get("csrf_token").and_then(Value::as_str).unwrap_or("");
        if sent.is_empty() {
            return Err(csrf_error(deps, req.ajax, CsrfFailure::TokenMissing));
        }
        if !csrf::verify(token, sent) {
            return Err(csrf_error(deps, req.ajax, CsrfFailure::Mismatch));
        }
    } else if let Some(reason) = api_flow_violation(req) {
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
    let current = manager::current(deps, req.session.as_ref()).await?;
    let sub = Submission {
        req,
        style,
        body,
        csrf: csrf_token,
        current,
        client,
    };
    let outcome = match flow.kind {
        FlowKind::Login => login::submit(deps, flow, &sub).await,
        FlowKind::Registration => registration::submit(deps, flow, &sub).await,
        FlowKind::Verification => super::verification::submit(deps, flow, &sub).await,
        FlowKind::Recovery => super::recovery::submit(deps, flow, &sub).await,
        FlowKind::Settings => {
            let cur = settings_owner(deps, flow, req).await?;
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
            // A native app's failed social sign-in in the browser goes back to the app.
            if from_route
                && let Some(exchange) =
                    super::token_exchange::pending(flow, style, &sub.body, crate::strategy::method_of(&sub.body))
            {
                let to = flow
                    .return_to
                    .clone()
                    .unwrap_or_else(|| default_return_url(deps, flow.kind, Some("oidc")));
                return super::token_exchange::hand_off_failure(deps, exchange, flow, &to).await;
            }
            Ok(rerender(deps, flow, style, sub.csrf.as_ref()))
        }
        Err(FlowError::Limited(l)) => limited(deps, flow, style, sub.csrf.as_ref(), l).await,
        Err(FlowError::SessionAlreadyAvailable) => {
            let e = already_logged_in(flow.kind);
            let reason = e.reason.clone().unwrap_or_else(|| e.message.clone());
            show_message(deps, flow, style, sub.csrf.as_ref(), text::validation_generic(&reason)).await
        }
        Err(FlowError::BrowserLocationChange) => {
            // As Kratos: 422 `browser_location_change_required` for SPAs, a redirect for forms.
            let to = respond::ui_url_for(deps, flow);
            match style {
                Style::Browser => Ok(respond::redirect(&to, StatusCode::SEE_OTHER)),
                _ => Err(respond::location_change_error(&to)),
            }
        }
        Err(FlowError::RefreshRequired) => {
            if super::continuity::pause(deps, flow, &sub.body) {
                flow.updated_at = deps.clock.now();
                deps.store.update_flow(flow).await?;
            }
            let e = super::settings::refresh_required(deps, flow);
            match (style, e.extra.get("redirect_browser_to").and_then(Value::as_str)) {
                (Style::Browser, Some(to)) => Ok(respond::redirect(to, StatusCode::SEE_OTHER)),
                _ => Err(e),
            }
        }
        Err(FlowError::Aal1Required) => Err(super::common::aal1_required()),
        Err(FlowError::Store(e)) => Err(e.into()),
        Err(FlowError::Internal(reason)) => {
            tracing::error!(error = %reason, flow = flow.kind.as_str(), "a submission failed");
            Err(ApiError::internal())
        }
        Err(FlowError::Api(e)) => Err(e),
    }
}

/// A refused submission: browsers see the explanation on the form; JSON clients get `429`
/// (or `503`) with `Retry-After`.
async fn limited(
    deps: &Service,
    flow: &mut Flow,
    style: Style,
    csrf: Option<&[u8; 32]>,
    l: crate::limits::Limited,
) -> Result<Answer, ApiError> {
    if style == Style::Browser {
        return show_message(deps, flow, style, csrf, text::validation_generic(&l.explain())).await;
    }
    Err(l.into())
}

/// Saves the flow with one global message and shows it again.
pub async fn show_message(
    deps: &Service,
    flow: &mut Flow,
    style: Style,
    csrf: Option<&[u8; 32]>,
    message: UiText,
) -> Result<Answer, ApiError> {
    flow.ui.add_message(message);
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(flow).await?;
    Ok(rerender(deps, flow, style, csrf))
}

/// An expired flow on submit: a replacement flow, then 410 with `use_flow_id` (JSON) or a
/// redirect to the new flow (browsers).
async fn expired_replacement(
    deps: &Service,
    old: &Flow,
    req: &Req,
    style: Style,
    now: OffsetDateTime,
) -> Result<Answer, ApiError> {
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
    flow.requested_aal = old.requested_aal;
    flow.csrf_hash = old.csrf_hash.clone();
    let current = manager::current(deps, req.session.as_ref()).await?;
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
    let gone = ApiError::new(StatusCode::GONE)
        .id("self_service_flow_expired")
        .reason(format!(
            "The self-service flow expired {minutes:.2} minutes ago, initialize a new one."
        ))
        .message("self-service flow expired")
        .extra("expired_at", json!(rfc3339(old.expires_at)))
        .extra("since", json!(since as i64))
        .extra("use_flow_id", json!(flow.id));
    Ok(Answer::error(&gone))
}
