//! Admin courier API. Kratos: `courier/handler.go` (listCourierMessages, getCourierMessage).
//!
//! As in Kratos, subjects and bodies (which carry one-time codes) are shown only in dev mode;
//! otherwise they read `<redacted-unless-dev-mode>`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::query_one;
use crate::clock::rfc3339;
use crate::courier::message::MessageStatus;
use crate::flow::AppState;
use crate::store::courier::MessageFilter;

/// Routes under `/admin`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/courier/messages", get(list_messages))
        .route("/admin/courier/messages/{id}", get(get_message))
        .route("/admin/courier/messages/{id}/retry", post(retry_message))
}

const DEFAULT_PAGE_SIZE: u32 = 250;
const MAX_PAGE_SIZE: u32 = 1000;

/// Kratos: `listCourierMessages`.
async fn list_messages(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = q.as_deref();
    let page_size = match query_one(q, "page_size").or_else(|| query_one(q, "per_page")) {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("page_size must be a number from 1 to {MAX_PAGE_SIZE}.")))?,
        None => DEFAULT_PAGE_SIZE,
    };
    let status = match query_one(q, "status") {
        Some(s) => Some(MessageStatus::parse(&s).ok_or_else(|| {
            ApiError::bad_request("Message status is not valid: use queued, processing, sent or abandoned.")
        })?),
        None => None,
    };
    let recipient = query_one(q, "recipient").filter(|r| !r.is_empty());
    let after = match query_one(q, "page_token").filter(|t| !t.is_empty()) {
        Some(t) => Some(decode_token(&t)?),
        None => None,
    };
    let filter = MessageFilter {
        status,
        recipient: recipient.clone(),
        after,
        limit: page_size + 1,
    };
    let mut list = state.store.list_messages(&filter).await?;
    let has_more = list.len() > page_size as usize;
    list.truncate(page_size as usize);
    let redact = !state.config.dev;
    let body: Vec<Value> = list.iter().map(|m| m.to_json(redact)).collect();

    let mut base = format!("{}?page_size={page_size}", state.admin_url("admin/courier/messages"));
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    if let Some(s) = status {
        params.append_pair("status", s.as_str());
    }
    if let Some(r) = &recipient {
        params.append_pair("recipient", r);
    }
    let params = params.finish();
    if !params.is_empty() {
        base = format!("{base}&{params}");
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

/// Kratos: `getCourierMessage` (with the message's delivery attempts).
async fn get_message(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = Uuid::parse_str(&id)
        .map_err(|e| ApiError::bad_request(format!("could not parse parameter {{id}} as UUID: {e}")))?;
    let message = state
        .store
        .get_message(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND).message("Unable to locate the resource"))?;
    Ok(Json(message.to_json(!state.config.dev)).into_response())
}

/// Latch only (Kratos has no counterpart): puts an `abandoned` message back in the queue
/// with a fresh retry budget, e.g. after a relay was misconfigured for longer than the budget.
/// Answers the message (`queued`, `send_count` 0); 404 for an unknown id, 409 for a message
/// that is not abandoned.
async fn retry_message(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = Uuid::parse_str(&id)
        .map_err(|e| ApiError::bad_request(format!("could not parse parameter {{id}} as UUID: {e}")))?;
    match state.store.requeue_message(id, state.clock.now()).await? {
        None => Err(ApiError::new(StatusCode::NOT_FOUND).message("Unable to locate the resource")),
        Some(false) => Err(ApiError::conflict(
            "Only abandoned messages can be retried; this one is not abandoned.",
        )),
        Some(true) => {
            let message = state
                .store
                .get_message(id)
                .await?
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND).message("Unable to locate the resource"));
            // Wake the worker only after reading the message: the answer shows it `queued`,
            // not already sent by a fast worker.
            state.store.wake_courier();
            Ok(Json(message?.to_json(!state.config.dev)).into_response())
        }
    }
}

/// Opaque page token: base64url of `<created_at>/<id>` of the last message seen.
pub(super) fn encode_token(created_at: OffsetDateTime, id: Uuid) -> String {
    crate::crypto::b64url(format!("{}/{id}", rfc3339(created_at)).as_bytes())
}

pub(super) fn decode_token(t: &str) -> ApiResult<(OffsetDateTime, Uuid)> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (at, id) = s.rsplit_once('/')?;
            Some((OffsetDateTime::parse(at, &Rfc3339).ok()?, Uuid::parse_str(id).ok()?))
        })
        .ok_or_else(|| ApiError::bad_request("The page_token is invalid. Use the token from the Link header."))
}
