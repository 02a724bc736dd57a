//! Admin API of the web hook outbox (Latch only; Kratos has no durable web hooks):
//! `GET /admin/webhooks/deliveries` (newest first, `status` filter, keyset pagination with
//! `page_size` and `page_token` from the `Link` header, as the courier list),
//! `GET /admin/webhooks/deliveries/{id}`, and `POST /admin/webhooks/deliveries/{id}/retry`
//! (a `dead` delivery back in the queue with a fresh budget).
//!
//! Deliveries are shown without body and header values (they may carry personal data or keys)
//! and with the URL stripped of credentials, query and fragment.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use uuid::Uuid;

use super::admin_courier::{decode_token, encode_token};
use super::error::{ApiError, ApiResult};
use super::extract::query_one;
use crate::flow::AppState;
use crate::store::webhook::DeliveryFilter;
use crate::webhook::outbox::DeliveryStatus;

/// Routes under `/admin`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/webhooks/deliveries", get(list_deliveries))
        .route("/admin/webhooks/deliveries/{id}", get(get_delivery))
        .route("/admin/webhooks/deliveries/{id}/retry", post(retry_delivery))
}

const DEFAULT_PAGE_SIZE: u32 = 250;
const MAX_PAGE_SIZE: u32 = 1000;

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND).message("Unable to locate the resource")
}

fn parse_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|e| ApiError::bad_request(format!("could not parse parameter {{id}} as UUID: {e}")))
}

async fn list_deliveries(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = q.as_deref();
    let page_size = match query_one(q, "page_size").or_else(|| query_one(q, "per_page")) {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("page_size must be a number from 1 to {MAX_PAGE_SIZE}.")))?,
        None => DEFAULT_PAGE_SIZE,
    };
    let status = match query_one(q, "status").filter(|s| !s.is_empty()) {
        Some(s) => Some(DeliveryStatus::parse(&s).ok_or_else(|| {
            ApiError::bad_request("Delivery status is not valid: use queued, processing, delivered or dead.")
        })?),
        None => None,
    };
    let after = match query_one(q, "page_token").filter(|t| !t.is_empty()) {
        Some(t) => Some(decode_token(&t)?),
        None => None,
    };
    let filter = DeliveryFilter {
        status,
        after,
        limit: page_size + 1,
    };
    let mut list = state.store.list_web_hook_deliveries(&filter).await?;
    let has_more = list.len() > page_size as usize;
    list.truncate(page_size as usize);
    let body: Vec<Value> = list.iter().map(|d| d.to_json()).collect();

    let mut base = format!("{}?page_size={page_size}", state.admin_url("admin/webhooks/deliveries"));
    if let Some(s) = status {
        base = format!("{base}&status={}", s.as_str());
    }
    let mut links = vec![format!("<{base}&page_token=>; rel=\"first\"")];
    if has_more && let Some(last) = list.last() {
        links.push(format!(
            "<{base}&page_token={}>; rel=\"next\"",
            encode_token(last.created_at, last.id)
        ));
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        headers.insert(header::LINK, v);
    }
    Ok((headers, Json(Value::Array(body))).into_response())
}

async fn get_delivery(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let d = state.store.get_web_hook_delivery(id).await?.ok_or_else(not_found)?;
    Ok(Json(d.to_json()).into_response())
}

/// Puts a `dead` delivery back in the queue with a fresh budget and answers it (`queued`,
/// `attempts` 0); 404 for an unknown id, 409 for a delivery that is not dead.
async fn retry_delivery(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    match state.store.retry_web_hook(id, state.clock.now()).await? {
        None => Err(not_found()),
        Some(false) => Err(ApiError::conflict(
            "Only dead deliveries can be retried; this one is not dead.",
        )),
        Some(true) => {
            let d = state.store.get_web_hook_delivery(id).await?.ok_or_else(not_found);
            // Wake the worker only after reading: the answer shows the delivery `queued`.
            state.store.wake_web_hooks();
            Ok(Json(d?.to_json()).into_response())
        }
    }
}
