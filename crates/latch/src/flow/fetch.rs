//! Fetching flows: `GET /self-service/{kind}/flows?id=`, also used in-process by the built-in
//! UI. Kratos: `selfservice/flow/*/handler.go` (`get…Flow`).

use http::StatusCode;
use serde_json::{Value, json};

use super::Service;
use super::guard::*;
use super::request::Request as Req;
use super::respond::{self, Answer, flow_json};
use super::{FlowKind, FlowType};
use crate::error::ApiError;
use crate::flow::AppState;

/// `GET /self-service/{kind}/flows?id=`.
pub async fn fetch(deps: &AppState, kind: FlowKind, req: Req) -> Answer {
    match fetch_json(deps, kind, &req).await {
        Ok(flow) => respond::json(StatusCode::OK, flow),
        Err(e) => Answer::error(&e),
    }
}

/// The flow JSON `GET /self-service/{kind}/flows?id=` answers, with the same checks (CSRF
/// cookie for browser flows, session owner for settings, expiry). The built-in UI calls
/// this in-process with the browser's headers.
pub async fn fetch_json(deps: &Service, kind: FlowKind, req: &Req) -> Result<Value, ApiError> {
    let id = parse_flow_id(req.q("id"))?;
    let mut flow = load_flow(deps, kind, id).await?;
    let token = if flow.flow_type == FlowType::Browser {
        Some(check_flow_cookie(deps, &flow, req)?)
    } else {
        None
    };
    if kind == FlowKind::Settings {
        let cur = settings_owner(deps, &flow, req).await?;
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
