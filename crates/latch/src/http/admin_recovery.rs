//! `POST /admin/recovery/code`: an administrator creates a recovery code for an identity.
//! Kratos: createRecoveryCodeForIdentity.

use axum::Router;
use axum::extract::State;
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
    Router::new().route("/admin/recovery/code", post(create_code))
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
