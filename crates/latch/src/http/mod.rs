//! The only module that knows axum: routers, middleware, error rendering.

pub mod admin_courier;
pub mod admin_identities;
pub mod admin_recovery;
pub mod admin_webhooks;
pub mod client;
pub mod cors;
pub mod error;
pub mod extract;
pub mod pages;
pub mod schemas;
pub mod selfservice;
pub mod server;
pub mod sessions;
pub mod well_known;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::json;
use tracing::Instrument;

use crate::flow::AppState;
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
    let around = Around {
        state: state.clone(),
        listener: Listener::Public,
        cors: Some(std::sync::Arc::new(cors::Policy::new(&state.config))),
    };
    Router::new()
        .route("/health/alive", get(alive))
        .route("/health/ready", get(ready))
        .merge(schemas::routes())
        .merge(selfservice::routes())
        .merge(selfservice::strategy_routes(&state))
        .merge(sessions::public_routes())
        .merge(pages::routes())
        .merge(well_known::routes())
        .fallback(public_fallback)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(middleware::from_fn_with_state(around, around_request))
        .with_state(state)
}

/// The admin router. Un-prefixed paths are served too (see [`admin_prefix`]).
pub fn admin_router(state: AppState) -> Router {
    let around = Around {
        state: state.clone(),
        listener: Listener::Admin,
        cors: None,
    };
    Router::new()
        .route("/admin/health/alive", get(alive))
        .route("/admin/health/ready", get(ready))
        .route("/admin/version", get(version))
        .route("/admin/metrics/prometheus", get(prometheus))
        .merge(admin_identities::routes())
        .merge(admin_courier::routes())
        .merge(admin_webhooks::routes())
        .merge(sessions::admin_routes())
        .merge(admin_recovery::routes())
        .fallback(admin_fallback)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(middleware::from_fn_with_state(around, around_request))
        .with_state(state)
}

/// What [`around_request`] needs: the listener it serves and, on the public port, CORS.
#[derive(Clone)]
struct Around {
    state: AppState,
    listener: Listener,
    cors: Option<std::sync::Arc<cors::Policy>>,
}

/// Everything Latch does around every request, outermost first: the header size limit
/// ([`limit_headers`]), the announced body size limit ([`refuse_oversized_body`]), CORS (public
/// port), request id, tracing span, access log, metrics and cache headers ([`observe`]), and
/// framework refusals in Kratos' envelope ([`envelope_refusals`]). One layer rather than one
/// per step: every layer costs a boxed service and a boxed future per request.
async fn around_request(State(a): State<Around>, req: Request, next: Next) -> Response {
    if let Some(refusal) = limit_headers(&req) {
        return refusal;
    }
    let req = match refuse_oversized_body(req).await {
        Ok(req) => req,
        Err(refusal) => return refusal,
    };
    let inner = |req: Request| async move {
        let res = next.run(req).await;
        envelope_refusals(res).await
    };
    match &a.cors {
        Some(policy) => cors::around(policy, req, |req| observe(&a.state, a.listener, req, inner)).await,
        None => observe(&a.state, a.listener, req, inner).await,
    }
}

/// How much of an oversized body is read and discarded before `413` is answered: a client
/// still sending its body would otherwise see a reset connection instead of the answer.
const DRAIN_CAP: usize = 16 * 1024 * 1024;
/// How long draining may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Answers `413` in Kratos' envelope when `Content-Length` announces more than
/// [`extract::MAX_BODY`] (Kratos' 5 MB), after draining up to [`DRAIN_CAP`] of the body so
/// the client can read the answer. Bodies without a length are cut at the same limit by the
/// extractors (and the refusal put in the envelope by [`envelope_refusals`]).
async fn refuse_oversized_body(req: Request) -> Result<Request, Response> {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(len) = announced.filter(|n| *n > extract::MAX_BODY as u64) else {
        return Ok(req);
    };
    if len <= DRAIN_CAP as u64 {
        use futures_util::StreamExt as _;
        let mut body = req.into_body().into_data_stream();
        let _ = tokio::time::timeout(DRAIN_TIME, async { while let Some(Ok(_)) = body.next().await {} }).await;
    }
    Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE)
        .reason(format!(
            "The request body is {len} bytes long; at most {} are accepted.",
            extract::MAX_BODY
        ))
        .into_response())
}

/// Refuses a request whose head (request line and headers) exceeds
/// [`server::MAX_HEADER_BYTES`] with `431` in Kratos' envelope (hyper's own refusal, for
/// heads beyond its buffer, has no body; see [`server`]).
fn limit_headers(req: &Request) -> Option<Response> {
    let size = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len())
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if size > server::MAX_HEADER_BYTES {
        return Some(
            ApiError::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .reason(format!(
                    "The request's headers are {size} bytes long; at most {} are accepted.",
                    server::MAX_HEADER_BYTES
                ))
                .into_response(),
        );
    }
    None
}

/// The longest framework refusal body kept as the envelope's `reason`.
const MAX_REASON: usize = 1024;

/// Turns refusals made by the framework rather than by Latch (axum's `405` with an empty
/// body, `413` when a body exceeds the limit, `415`/`400`/`422` from its extractors, all
/// `text/plain` or empty) into Kratos' error envelope. JSON and HTML answers pass unchanged.
async fn envelope_refusals(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !plain {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, MAX_REASON * 4)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let mut err = ApiError::new(status);
    if !text.is_empty() {
        err = err.reason(text.chars().take(MAX_REASON).collect::<String>());
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        err = err.reason("This path does not accept this HTTP method.");
    }
    let mut out = err.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
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

/// The longest `X-Request-Id` taken from a request; longer (or empty, or non-ASCII) ones are
/// replaced by a fresh id.
const MAX_REQUEST_ID: usize = 128;

/// The request's `X-Request-Id` if usable, else a fresh random (version 4) UUID. The UUID
/// comes from the thread's random generator, not a `getrandom` system call per request.
fn request_id(req: &Request) -> HeaderValue {
    if let Some(v) = req.headers().get("x-request-id")
        && !v.is_empty()
        && v.len() <= MAX_REQUEST_ID
        && v.to_str().is_ok()
    {
        return v.clone();
    }
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)).unwrap_or(HeaderValue::from_static(""))
}

/// Request id, tracing span, access log, metrics and the GET no-cache header.
async fn observe<F, Fut>(state: &AppState, listener: Listener, req: Request, run: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let started = Instant::now();
    let request_id = request_id(&req);
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route_str = route.as_ref().map_or("<unmatched>", |p| p.as_str());
    let method = req.method().clone();
    let is_get = method == axum::http::Method::GET;
    // Disabled (the log level is above info), the span is never built and no field is
    // formatted.
    let span = tracing::info_span!(
        "request",
        listener = listener.name(),
        %method,
        route = %route_str,
        request_id = %request_id.to_str().unwrap_or_default()
    );
    let mut res = if span.is_disabled() {
        run(req).await
    } else {
        run(req).instrument(span.clone()).await
    };
    let took = started.elapsed();
    let status = res.status().as_u16();
    if !span.is_disabled() {
        span.in_scope(|| tracing::debug!(status, took_us = took.as_micros() as u64, "request finished"));
    }
    state
        .metrics
        .record(listener.name(), method.as_str(), route_str, status, took);
    let h = res.headers_mut();
    if !request_id.is_empty() {
        h.insert("x-request-id", request_id);
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

/// `GET /health/alive`: a constant answer, written without building JSON.
async fn alive() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        axum::body::Bytes::from_static(b"{\"status\":\"ok\"}"),
    )
        .into_response()
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
