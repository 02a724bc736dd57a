//! Self-service routes: login and registration flows, stored errors, logout.
//! Kratos: `selfservice/flow/*/handler.go`, `selfservice/errorx`, `selfservice/flow/logout`.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, query_one};
use crate::clock::rfc3339;
use crate::deps::Deps;
use crate::flow::AppState;
use crate::flow::engine::{self, Req};
use crate::flow::respond::{self, Cookies};
use crate::flow::{FlowKind, FlowType};
use crate::session::manager;

/// Public self-service routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/self-service/login/browser", get(login_browser))
        .route("/self-service/login/api", get(login_api))
        .route("/self-service/login/flows", get(login_flows))
        .route("/self-service/login", get(login_submit).post(login_submit))
        .route("/self-service/registration/browser", get(registration_browser))
        .route("/self-service/registration/api", get(registration_api))
        .route("/self-service/registration/flows", get(registration_flows))
        .route(
            "/self-service/registration",
            get(registration_submit).post(registration_submit),
        )
        .route("/self-service/settings/browser", get(settings_browser))
        .route("/self-service/settings/api", get(settings_api))
        .route("/self-service/settings/flows", get(settings_flows))
        .route("/self-service/settings", get(settings_submit).post(settings_submit))
        .route("/self-service/verification/browser", get(verification_browser))
        .route("/self-service/verification/api", get(verification_api))
        .route("/self-service/verification/flows", get(verification_flows))
        .route(
            "/self-service/verification",
            get(verification_submit).post(verification_submit),
        )
        .route("/self-service/recovery/browser", get(recovery_browser))
        .route("/self-service/recovery/api", get(recovery_api))
        .route("/self-service/recovery/flows", get(recovery_flows))
        .route("/self-service/recovery", get(recovery_submit).post(recovery_submit))
        .route("/.well-known/change-password", get(change_password))
        .route("/self-service/errors", get(get_error))
        .route("/self-service/logout/browser", get(logout_browser))
        .route("/self-service/logout", get(logout))
        .route("/self-service/logout/api", delete(logout_api))
}

fn req(s: &Deps, headers: &HeaderMap, peer: SocketAddr, uri: &Uri) -> Req {
    super::client::flow_request(
        s,
        headers,
        Some(peer),
        uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default(),
        uri.query().map(str::to_string),
    )
}

macro_rules! init_handler {
    ($name:ident, $kind:expr, $ty:expr) => {
        async fn $name(
            State(s): State<AppState>,
            ConnectInfo(peer): ConnectInfo<SocketAddr>,
            headers: HeaderMap,
            uri: Uri,
        ) -> Response {
            engine::init(&s, $kind, $ty, req(&s, &headers, peer, &uri))
                .await
                .into_response()
        }
    };
}
init_handler!(login_browser, FlowKind::Login, FlowType::Browser);
init_handler!(login_api, FlowKind::Login, FlowType::Api);
init_handler!(registration_browser, FlowKind::Registration, FlowType::Browser);
init_handler!(registration_api, FlowKind::Registration, FlowType::Api);
init_handler!(settings_browser, FlowKind::Settings, FlowType::Browser);
init_handler!(settings_api, FlowKind::Settings, FlowType::Api);
init_handler!(verification_browser, FlowKind::Verification, FlowType::Browser);
init_handler!(verification_api, FlowKind::Verification, FlowType::Api);
init_handler!(recovery_browser, FlowKind::Recovery, FlowType::Browser);
init_handler!(recovery_api, FlowKind::Recovery, FlowType::Api);

macro_rules! fetch_handler {
    ($name:ident, $kind:expr) => {
        async fn $name(
            State(s): State<AppState>,
            ConnectInfo(peer): ConnectInfo<SocketAddr>,
            headers: HeaderMap,
            uri: Uri,
        ) -> Response {
            engine::fetch(&s, $kind, req(&s, &headers, peer, &uri))
                .await
                .into_response()
        }
    };
}
fetch_handler!(login_flows, FlowKind::Login);
fetch_handler!(registration_flows, FlowKind::Registration);
fetch_handler!(settings_flows, FlowKind::Settings);
fetch_handler!(verification_flows, FlowKind::Verification);
fetch_handler!(recovery_flows, FlowKind::Recovery);

macro_rules! submit_handler {
    ($name:ident, $kind:expr) => {
        async fn $name(
            State(s): State<AppState>,
            ConnectInfo(peer): ConnectInfo<SocketAddr>,
            method: Method,
            mut headers: HeaderMap,
            uri: Uri,
            body: Bytes,
        ) -> Response {
            // GET submissions (links in emails) carry the fields in the query.
            let body = if method == Method::GET {
                headers.insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                Bytes::from(uri.query().unwrap_or("").to_string())
            } else {
                body
            };
            let mut r = req(&s, &headers, peer, &uri);
            r.get_submission = method == Method::GET;
            r.hook.method = method.as_str().to_string();
            engine::submit(&s, $kind, r, &body).await.into_response()
        }
    };
}
submit_handler!(login_submit, FlowKind::Login);
submit_handler!(registration_submit, FlowKind::Registration);
submit_handler!(settings_submit, FlowKind::Settings);
submit_handler!(verification_submit, FlowKind::Verification);
submit_handler!(recovery_submit, FlowKind::Recovery);

/// `GET /.well-known/change-password` → the settings UI. Kratos: getWellKnownChangePassword.
async fn change_password(State(s): State<AppState>) -> Response {
    respond::redirect(s.config.flow_ui_url("settings").as_str(), StatusCode::SEE_OTHER).into_response()
}

/// `GET /self-service/errors?id=`. Kratos: getFlowError.
async fn get_error(State(s): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<axum::Json<Value>> {
    let raw = query_one(q.as_deref(), "id")
        .or_else(|| query_one(q.as_deref(), "error"))
        .unwrap_or_default();
    Ok(axum::Json(load_error(&s, &raw).await?))
}

/// The stored self-service error `id` as `GET /self-service/errors?id=` answers it
/// (`stub:500` gives a stub); the built-in error page reads it in-process.
pub async fn load_error(s: &Deps, raw: &str) -> ApiResult<Value> {
    if raw == "stub:500" {
        let now = rfc3339(s.clock.now());
        return Ok(json!({
            "id": "stub:500",
            "error": ApiError::internal().reason("This is a stub error.").error_object(),
            "created_at": now,
            "updated_at": now,
        }));
    }
    let id = uuid::Uuid::parse_str(raw).map_err(|_| ApiError::not_found("Unable to locate the resource"))?;
    let (error, created, updated) = s
        .store
        .get_error(id, s.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("Unable to locate the resource"))?;
    Ok(json!({"id": id, "error": error, "created_at": rfc3339(created), "updated_at": rfc3339(updated)}))
}

fn no_session() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED)
        .id("session_inactive")
        .reason("No active session was found in this request.")
        .message("request does not have a valid authentication session")
}

/// `GET /self-service/logout/browser`. Kratos: createBrowserLogoutFlow.
async fn logout_browser(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let style = if crate::http::client::negotiates_json(&headers) {
        respond::Style::Spa
    } else {
        respond::Style::Browser
    };
    let result: ApiResult<Response> = async {
        let cur = manager::current(&s, super::client::presented_session(&s, &headers).as_ref())
            .await?
            .ok_or_else(no_session)?;
        let token = manager::logout_token_for(&cur.token);
        let mut url = s.public_url(&format!("self-service/logout?token={token}"));
        if let Some(r) = query_one(q.as_deref(), "return_to").filter(|r| !r.is_empty()) {
            let ok = crate::flow::return_to::validate(
                &r,
                &s.config.selfservice.allowed_return_urls,
                &s.public_base,
                s.config.selfservice.default_browser_return_url.as_ref(),
            )
            .map_err(|u| {
                ApiError::bad_request(format!("Requested return_to URL {u:?} is not allowed."))
                    .id("self_service_flow_return_to_forbidden")
            })?;
            url.push_str("&return_to=");
            url.push_str(&url::form_urlencoded::byte_serialize(ok.as_str().as_bytes()).collect::<String>());
        }
        Ok(axum::Json(json!({"logout_url": url, "logout_token": token})).into_response())
    }
    .await;
    match result {
        Ok(r) => r,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => e.into_response(),
        Err(e) => respond::error(&s, e, style).await.into_response(),
    }
}

/// `GET /self-service/logout?token=&return_to=`. Kratos: updateLogoutFlow.
async fn logout(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let json_client = crate::http::client::negotiates_json(&headers);
    let style = if json_client {
        respond::Style::Spa
    } else {
        respond::Style::Browser
    };
    let result: ApiResult<Response> = async {
        let token = query_one(q.as_deref(), "token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::bad_request("Please include a token in the URL query."))?;
        let stored = s
            .store
            .session_by_logout_hash(&crate::crypto::sha256_hex(token.as_bytes()))
            .await?;
        // Sessions issued before logout tokens were derived from the session token alone
        // stored another hash; the session cookie proves the token for them.
        let session = match stored {
            Some(found) => Some(found),
            None => manager::current(&s, super::client::presented_session(&s, &headers).as_ref())
                .await?
                .filter(|cur| crate::crypto::ct_eq(manager::logout_token_for(&cur.token).as_bytes(), token.as_bytes()))
                .map(|cur| cur.session),
        };
        let session = session.ok_or_else(|| {
            ApiError::new(StatusCode::FORBIDDEN).reason(
                "Unable to log out because the logout token in the URL query does not match the session cookie.",
            )
        })?;
        if let Some(cur) = manager::current(&s, super::client::presented_session(&s, &headers).as_ref()).await?
            && cur.session.id != session.id
        {
            return Err(ApiError::new(StatusCode::FORBIDDEN).reason(
                "Unable to log out because the logout token in the URL query does not match the session cookie.",
            ));
        }
        s.store.revoke_session(session.id, s.clock.now()).await?;
        let to = match query_one(q.as_deref(), "return_to").filter(|r| !r.is_empty()) {
            Some(r) => crate::flow::return_to::validate(
                &r,
                &s.config.selfservice.allowed_return_urls,
                &s.public_base,
                s.config.selfservice.default_browser_return_url.as_ref(),
            )
            .map(|u| u.to_string())
            .map_err(|u| {
                ApiError::bad_request(format!("Requested return_to URL {u:?} is not allowed."))
                    .id("self_service_flow_return_to_forbidden")
            })?,
            None => s
                .config
                .selfservice
                .flows
                .logout
                .after
                .default_browser_return_url
                .as_ref()
                .or(s.config.selfservice.default_browser_return_url.as_ref())
                .map(|u| u.to_string())
                .unwrap_or_else(|| s.public_base.to_string()),
        };
        let cookies = Cookies(vec![
            manager::clear_session_cookie(&s),
            manager::csrf_cookie(&s, &crate::crypto::csrf::new_cookie_token()),
        ]);
        let res = if json_client {
            respond::Answer {
                status: StatusCode::NO_CONTENT,
                location: None,
                json: None,
                cookies: vec![],
                headers: vec![],
            }
        } else {
            respond::redirect(&to, StatusCode::SEE_OTHER)
        };
        Ok(cookies.apply(res).into_response())
    }
    .await;
    match result {
        Ok(r) => r,
        Err(e) => respond::error(&s, e, style).await.into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
struct NativeLogout {
    session_token: String,
}

/// `DELETE /self-service/logout/api` with `{"session_token": …}`. Kratos: performNativeLogout.
async fn logout_api(State(s): State<AppState>, JsonBody(body): JsonBody<NativeLogout>) -> ApiResult<StatusCode> {
    let session = s
        .store
        .session_by_token_hash(&crate::crypto::sha256_hex(body.session_token.as_bytes()))
        .await?;
    match session {
        Some(sess) if sess.active => {
            s.store.revoke_session(sess.id, s.clock.now()).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::new(StatusCode::FORBIDDEN)
            .reason("The provided Ory Session Token could not be found, is invalid, or otherwise malformed.")),
    }
}

/// The routes strategies own (`Strategy::routes`, e.g. an OAuth callback), for `GET` and
/// `POST`. The strategy turns the request into a submission; the engine answers.
pub fn strategy_routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for r in state.strategies.routes() {
        let handler = r.handler.clone();
        let serve = move |State(s): State<AppState>,
                          ConnectInfo(peer): ConnectInfo<SocketAddr>,
                          params: axum::extract::RawPathParams,
                          method: axum::http::Method,
                          headers: HeaderMap,
                          uri: Uri,
                          body: Bytes| {
            let handler = handler.clone();
            async move {
                let req = req(&s, &headers, peer, &uri);
                let decoded = if body.is_empty() {
                    Value::Null
                } else {
                    crate::flow::body::decode_body(&s, &req.content_type, &body).unwrap_or(Value::Null)
                };
                let input = crate::strategy::RouteInput {
                    params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    query: {
                        let mut q = std::collections::BTreeMap::new();
                        for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
                            q.entry(k.into_owned()).or_insert_with(|| v.into_owned());
                        }
                        q
                    },
                    body: decoded,
                    post: method == axum::http::Method::POST,
                };
                engine::route(&s, handler.as_ref(), req, input).await.into_response()
            }
        };
        router = router.route(r.path, get(serve.clone()).post(serve));
    }
    router
}
