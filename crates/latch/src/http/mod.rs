//! The only module that knows axum: routers, middleware, error rendering.

pub mod admin_courier;
pub mod admin_identities;
pub mod admin_recovery;
pub mod client;
pub mod cors;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod pages;
pub mod schemas;
pub mod selfservice;
pub mod sessions;
pub mod well_known;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::json;
use tracing::Instrument;

use crate::deps::AppState;
use error::ApiError;

/// Which listener a request arrived on (for metrics and port redirects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The public port (self-service, sessions, schemas).
    Public,
    /// The admin port (identities, sessions admin, courier).
    Admin,
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Public => "public",
            Listener::Admin => "admin",
        }
    }
}

/// The public router.
pub fn public_router(state: AppState) -> Router {
    let cors = std::sync::Arc::new(cors::Policy::new(&state.config));
    let router = Router::new()
        .route("/health/alive", get(alive))
        .route("/health/ready", get(ready))
        .merge(schemas::routes())
        .merge(selfservice::routes())
        .merge(sessions::public_routes())
        .merge(pages::routes())
        .merge(well_known::routes())
        .fallback(public_fallback)
        .layer(middleware::from_fn_with_state(
            (state.clone(), Listener::Public),
            observe,
        ))
        .with_state(state);
    router.layer(middleware::from_fn_with_state(cors, cors::middleware))
}

/// The admin router. Un-prefixed paths are served too (see [`admin_prefix`]).
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/admin/health/alive", get(alive))
        .route("/admin/health/ready", get(ready))
        .route("/admin/version", get(version))
        .route("/admin/metrics/prometheus", get(prometheus))
        .merge(admin_identities::routes())
        .merge(admin_courier::routes())
        .merge(sessions::admin_routes())
        .merge(admin_recovery::routes())
        .fallback(admin_fallback)
        .layer(middleware::from_fn_with_state(
            (state.clone(), Listener::Admin),
            observe,
        ))
        .with_state(state)
}

/// Kratos serves admin routes with and without the `/admin` prefix; this rewrites the URI
/// before routing so one route table serves both.
pub fn admin_prefix(mut req: Request) -> Request {
    let path = req.uri().path();
    if path != "/admin" && !path.starts_with("/admin/") {
        let pq = req.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
        if let Ok(uri) = format!("/admin{pq}").parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Request id, tracing span, access log, metrics and the GET no-cache header.
async fn observe(State((state, listener)): State<(AppState, Listener)>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "<unmatched>".to_string());
    let method = req.method().clone();
    let is_get = method == axum::http::Method::GET;
    let span =
        tracing::info_span!("request", listener = listener.name(), %method, route = %route, request_id = %request_id);
    let mut res = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    span.in_scope(|| tracing::debug!(status, took_us = took.as_micros() as u64, "request finished"));
    state
        .metrics
        .record(listener.name(), method.as_str(), &route, status, took);
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    if listener == Listener::Public && !h.contains_key(header::VARY) {
        h.insert(header::VARY, HeaderValue::from_static("Cookie"));
    }
    if is_get && listener == Listener::Public && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache, no-store, must-revalidate"),
        );
    }
    res
}

async fn alive() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"errors": {"database": "the database is not reachable"}})),
            )
                .into_response()
        }
    }
}

async fn version() -> impl IntoResponse {
    axum::Json(json!({"version": concat!("v", env!("CARGO_PKG_VERSION"))}))
}

async fn prometheus(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Identity/admin paths on the public port redirect (307) to the admin port, as Kratos does.
async fn public_fallback(State(state): State<AppState>, uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/admin/") || path.starts_with("/identities") {
        let target = state.admin_url(uri.path_and_query().map(|p| p.as_str()).unwrap_or(path));
        return Redirect::temporary(&target).into_response();
    }
    not_found()
}

/// Self-service, whoami and identity-schema paths on the admin port redirect (307) to the
/// public port, as Kratos does (its SDK's `IdentityApi` reads schemas through the admin URL).
async fn admin_fallback(State(state): State<AppState>, uri: Uri) -> Response {
    let path = uri.path();
    let stripped = path.strip_prefix("/admin").unwrap_or(path);
    if stripped.starts_with("/self-service/")
        || stripped.starts_with("/sessions/whoami")
        || stripped == "/schemas"
        || stripped.starts_with("/schemas/")
    {
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or(path);
        let pq = pq.strip_prefix("/admin").unwrap_or(pq);
        return Redirect::temporary(&state.public_url(pq)).into_response();
    }
    not_found()
}

fn not_found() -> Response {
    ApiError::not_found("The requested path does not exist on this server.").into_response()
}
