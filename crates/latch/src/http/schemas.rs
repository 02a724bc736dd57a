//! `GET /schemas` and `GET /schemas/{id}`. Kratos: listIdentitySchemas, getIdentitySchema.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::query_one;
use crate::flow::AppState;
use crate::identity::schema::decode_schema_id;

/// Public schema routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/schemas", get(list))
        .route("/schemas/{id}", get(one))
}

async fn list(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = q.as_deref();
    let per_page = query_one(q, "per_page")
        .or_else(|| query_one(q, "page_size"))
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(250)
        .clamp(1, 1000);
    let page = query_one(q, "page").and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
    let all: Vec<Value> = state
        .schemas
        .iter()
        .map(|s| json!({"id": s.id, "schema": s.raw}))
        .collect();
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip(page * per_page).take(per_page).collect();
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        headers.insert("x-total-count", v);
    }
    Ok((headers, axum::Json(Value::Array(items))).into_response())
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Value>> {
    let decoded = decode_schema_id(&id);
    let schema = state
        .schemas
        .get(&decoded)
        .or_else(|| state.schemas.get(&id))
        .ok_or_else(|| ApiError::not_found(format!("Identity schema {id:?} does not exist.")))?;
    Ok(axum::Json(schema.raw.clone()))
}
