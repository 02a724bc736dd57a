//! `POST /admin/recovery/code` and `POST /admin/recovery/link`: an administrator creates a
//! recovery code or link for an identity. Kratos: createRecoveryCodeForIdentity,
//! createRecoveryLinkForIdentity.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::JsonBody;
use crate::clock::rfc3339;
use crate::config::parse_duration;
use crate::flow::AppState;
use crate::flow::engine::{Req, new_flow};
use crate::flow::{FlowKind, FlowType};
use crate::store::code::CodeRow;
use crate::strategy::code::{generate, hash};
use crate::text;

/// Admin recovery routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/recovery/code", post(create_code))
        .route("/admin/recovery/link", post(create_link))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    identity_id: Uuid,
    #[serde(default)]
    expires_in: Option<String>,
    #[serde(default)]
    flow_type: Option<String>,
}

async fn create_code(State(s): State<AppState>, JsonBody(body): JsonBody<Body>) -> ApiResult<Response> {
    let identity = s
        .store
        .get_identity(body.identity_id)
        .await?
        .ok_or_else(|| ApiError::not_found("The requested identity does not exist."))?;
    let flow_type = match body.flow_type.as_deref().unwrap_or("browser") {
        "browser" => FlowType::Browser,
        "api" => FlowType::Api,
        other => {
            return Err(ApiError::bad_request(format!(
                "flow_type must be browser or api, not {other:?}."
            )));
        }
    };
    let lifespan = match body.expires_in.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => parse_duration(e).map_err(|err| ApiError::bad_request(format!("expires_in: {err}")))?,
        None => s.config.selfservice.flows.recovery.lifespan,
    };
    let now = s.clock.now();
    let req = Req {
        path_and_query: format!("self-service/recovery/{}", flow_type.as_str()),
        ..Req::default()
    };
    let mut flow = new_flow(&s, FlowKind::Recovery, flow_type, &req, None);
    flow.expires_at = now + lifespan;
    let address = identity
        .recovery_addresses
        .first()
        .map(|a| a.value.clone())
        .unwrap_or_default();
    crate::strategy::code::messages::address_nodes(&mut flow);
    crate::strategy::code::messages::sent_nodes(&mut flow, "", text::label_recovery_code());
    flow.ui.add_message(text::recovery_code_sent());
    flow.state = crate::model::flow::FlowState::SentEmail;
    flow.active = Some("code".into());
    flow.internal_set("code_address", json!(address));
    if flow_type == FlowType::Api {
        flow.ui.strip_js();
    }
    s.store.insert_flow(&flow).await?;
    let code = generate();
    let row = CodeRow {
        id: Uuid::new_v4(),
        flow_id: flow.id,
        identity_id: Some(identity.id),
        purpose: "recovery".into(),
        address,
        address_type: "email".into(),
        code_hash: hash(&s, flow.id, &code),
        expires_at: now + lifespan,
        used_at: None,
        created_at: now,
    };
    s.store.insert_code(&row).await?;
    let link = s.public_url(&format!("self-service/recovery?flow={}", flow.id));
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"recovery_link": link, "recovery_code": code, "expires_at": rfc3339(now + lifespan)})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    identity_id: Uuid,
    #[serde(default)]
    expires_in: Option<String>,
}

/// Kratos' answer when the `link` method is disabled (`strategy.EndpointDisabledMessage`).
const ENDPOINT_DISABLED: &str = "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.";

/// `POST /admin/recovery/link?return_to=`: a browser recovery flow and a link whose token
/// signs the identity in (no mail). 200 `{recovery_link, expires_at}`.
async fn create_link(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody<LinkBody>,
) -> ApiResult<Response> {
    if !s.config.selfservice.methods.link.enabled {
        return Err(ApiError::not_found(ENDPOINT_DISABLED));
    }
    let lifespan = match body.expires_in.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => parse_duration(e).map_err(|_| {
            ApiError::bad_request(format!(
                "Unable to parse \"expires_in\" as a duration string (e.g. \"1h\", \"1m30s\", \"500ms\"): {e}"
            ))
        })?,
        None => s.config.selfservice.methods.link.config.lifespan,
    };
    if lifespan.is_zero() {
        return Err(ApiError::bad_request(format!(
            "Value from \"expires_in\" must be result to a future time: {}",
            body.expires_in.unwrap_or_default()
        )));
    }
    let return_to = match crate::flow::request::query_one(query.as_deref(), "return_to").filter(|r| !r.is_empty()) {
        Some(r) => Some(
            crate::flow::return_to::validate(
                &r,
                &s.config.selfservice.allowed_return_urls,
                &s.public_base,
                s.config.selfservice.default_browser_return_url.as_ref(),
            )
            .map_err(|u| {
                ApiError::bad_request(format!("Requested return_to URL {u:?} is not allowed."))
                    .id("self_service_flow_return_to_forbidden")
                    .message("Requested return_to URL is not allowed.")
            })?
            .to_string(),
        ),
        None => None,
    };
    let identity = s
        .store
        .get_identity(body.identity_id)
        .await?
        .ok_or_else(|| ApiError::not_found("The requested identity does not exist."))?;
    let now = s.clock.now();
    let req = Req {
        path_and_query: "self-service/recovery/browser".into(),
        ..Req::default()
    };
    let mut flow = new_flow(&s, FlowKind::Recovery, FlowType::Browser, &req, return_to);
    flow.expires_at = now + lifespan;
    crate::strategy::link::address_nodes(&mut flow, "");
    flow.active = Some("link".into());
    let token = crate::strategy::link::issue_admin(&s, &flow, identity.id, lifespan)
        .await
        .map_err(|e| match e {
            crate::strategy::FlowError::Store(e) => ApiError::from(e),
            _ => ApiError::internal(),
        })?;
    let link = crate::strategy::link::url(&s, crate::strategy::link::Purpose::Recovery, flow.id, &token);
    Ok((
        StatusCode::OK,
        axum::Json(json!({"recovery_link": link, "expires_at": rfc3339(flow.expires_at)})),
    )
        .into_response())
}
