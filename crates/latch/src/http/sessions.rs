//! Sessions: `whoami`, the caller's own sessions, and the admin session API.
//! Kratos: `session/handler.go`.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, patch};
use serde_json::{Value, json};
use uuid::Uuid;

use super::admin_identities::{decode_page_token, encode_page_token};
use super::error::{ApiError, ApiResult};
use super::extract::{query_all, query_one};
use crate::deps::Deps;
use crate::flow::AppState;
use crate::session::Session;
use crate::session::manager::{self, Current};
use crate::store::session::SessionFilter;

/// Public session routes.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/sessions/whoami", any(whoami))
        .route("/sessions/token-exchange", get(token_exchange))
        .route("/sessions", get(my_sessions).delete(delete_my_other_sessions))
        .route("/sessions/{id}", delete(delete_my_session))
}

/// Admin session routes.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/sessions", get(admin_list))
        .route("/admin/sessions/{id}", get(admin_get).delete(admin_disable))
        .route("/admin/sessions/{id}/extend", patch(admin_extend))
        .route(
            "/admin/identities/{id}/sessions",
            get(admin_identity_sessions).delete(admin_delete_identity_sessions),
        )
}

fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED)
        .id("session_inactive")
        .reason("No valid session credentials found in the request.")
}

async fn require_session(deps: &Deps, headers: &HeaderMap) -> ApiResult<Current> {
    manager::current(deps, super::client::presented_session(deps, headers).as_ref())
        .await?
        .ok_or_else(unauthorized)
}

/// `GET /sessions/whoami` (any method). Kratos: toSession.
///
/// Answers from the in-process cache when it can (one hash and one map lookup); otherwise
/// loads the session and identity, renders, and caches the answer. Takes the request rather
/// than a `HeaderMap` (that extractor copies every header).
async fn whoami(State(s): State<AppState>, req: axum::extract::Request) -> ApiResult<Response> {
    let headers = req.headers();
    let now = s.clock.now();
    // A cookie request is cached under a hash of the sealed cookie itself, so a hit skips
    // opening it (base64, XChaCha20-Poly1305, JSON). Only when no X-Session-Token header is
    // sent (that one wins); the entry is filled only from a token the cookie carried, and is
    // tracked under its identity like every entry, so invalidation drops it too.
    let cookie_key = if headers.contains_key("x-session-token") || !s.store.cache.enabled() {
        None
    } else {
        crate::http::client::cookie_str(headers, &s.config.session.cookie.name).map(|c| {
            let mut key = String::with_capacity(2 + 64);
            key.push_str("c:");
            key.push_str(&crate::crypto::sha256_hex(c.as_bytes()));
            key
        })
    };
    if let Some(key) = &cookie_key
        && let Some(hit) = s.store.cache.get(key, now)
    {
        return Ok(whoami_response(hit.identity_id, hit.body.clone()));
    }
    let Some(crate::session::Presented { token, from_cookie }) = super::client::presented_session(&s, headers) else {
        return Err(unauthorized());
    };
    let token_hash = crate::crypto::sha256_hex(token.as_bytes());
    let cookie_key = cookie_key.filter(|_| from_cookie);
    let key = cookie_key.as_deref().unwrap_or(&token_hash);
    if let Some(hit) = s.store.cache.get(key, now) {
        return Ok(whoami_response(hit.identity_id, hit.body.clone()));
    }
    // Read before the database: a revoke between the read and the fill then blocks the fill.
    let generation = s.store.cache.generation();
    let cur = manager::by_token_hash(&s, &token, &token_hash, from_cookie)
        .await?
        .ok_or_else(unauthorized)?;
    if !crate::flow::common::satisfies(&s, &cur, s.config.session.whoami.required_aal) {
        return Err(crate::flow::common::aal2_required(&s, None));
    }
    let bytes = axum::body::Bytes::from(cur.session.to_json_bytes(
        now,
        &cur.identity,
        &s.schema_url(&cur.identity.schema_id),
    ));
    s.store.cache.put(
        key.to_string(),
        cur.identity.id,
        cur.session.expires_at,
        bytes.clone(),
        generation,
    );
    Ok(whoami_response(cur.identity.id, bytes))
}

fn whoami_response(identity_id: Uuid, body: axum::body::Bytes) -> Response {
    let mut res = Response::new(axum::body::Body::from(body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    if let Ok(v) = HeaderValue::from_str(identity_id.hyphenated().encode_lower(&mut buf)) {
        h.insert("x-kratos-authenticated-identity-id", v);
    }
    h.insert(
        header::VARY,
        HeaderValue::from_static("Cookie, X-Session-Token, Authorization"),
    );
    res
}

fn page_params(q: Option<&str>) -> ApiResult<(u32, Option<Uuid>)> {
    let size = match query_one(q, "page_size").or_else(|| query_one(q, "per_page")) {
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_request("page_size must be a number from 1 to 1000."))?,
        None => 250,
    };
    let after = match query_one(q, "page_token").filter(|t| !t.is_empty()) {
        Some(t) => Some(decode_page_token(&t)?),
        None => None,
    };
    Ok((size, after))
}

async fn render_list(
    s: &Deps,
    mut filter: SessionFilter,
    q: Option<&str>,
    base_path: &str,
    expand_identity: bool,
    admin: bool,
) -> ApiResult<Response> {
    let (size, after) = page_params(q)?;
    filter.after = after;
    filter.limit = size + 1;
    let now = s.clock.now();
    let mut list = s.store.list_sessions(&filter, now).await?;
    let more = list.len() > size as usize;
    list.truncate(size as usize);
    let mut out = Vec::with_capacity(list.len());
    for sess in &list {
        let ident = if expand_identity {
            s.store.get_identity(sess.identity_id).await?
        } else {
            None
        };
        let schema_url = ident.as_ref().map(|i| s.schema_url(&i.schema_id)).unwrap_or_default();
        out.push(sess.to_json(now, ident.as_ref(), &schema_url, admin));
    }
    let mut res = axum::Json(Value::Array(out)).into_response();
    let base = if admin {
        s.admin_url(base_path)
    } else {
        s.public_url(base_path)
    };
    let mut links = vec![format!("<{base}?page_size={size}&page_token=>; rel=\"first\"")];
    if more && let Some(last) = list.last() {
        links.push(format!(
            "<{base}?page_size={size}&page_token={}>; rel=\"next\"",
            encode_page_token(last.id)
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        res.headers_mut().insert(header::LINK, v);
    }
    Ok(res)
}

/// `GET /sessions/token-exchange?init_code=&return_to_code=`: a native app's session token
/// after social sign-in in a browser. Kratos: exchangeSessionToken.
async fn token_exchange(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let q = q.as_deref();
    let init = query_one(q, "init_code").unwrap_or_default();
    let ret = query_one(q, "return_to_code").unwrap_or_default();
    let (status, body) = crate::flow::token_exchange::exchange(&s, &init, &ret).await?;
    Ok((status, axum::Json(body)))
}

/// `GET /sessions`: the caller's other active sessions. Kratos: listMySessions.
async fn my_sessions(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let cur = require_session(&s, &headers).await?;
    let filter = SessionFilter {
        identity_id: Some(cur.identity.id),
        active: Some(true),
        except: Some(cur.session.id),
        ..Default::default()
    };
    render_list(&s, filter, q.as_deref(), "sessions", true, false).await
}

/// `DELETE /sessions`: revoke all other sessions. Kratos: disableMyOtherSessions.
async fn delete_my_other_sessions(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<axum::Json<Value>> {
    let cur = require_session(&s, &headers).await?;
    let n = s
        .store
        .revoke_identity_sessions(cur.identity.id, Some(cur.session.id), s.clock.now())
        .await?;
    Ok(axum::Json(json!({"count": n})))
}

/// `DELETE /sessions/{id}`: revoke one of the caller's other sessions. Kratos: disableMySession.
async fn delete_my_session(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let cur = require_session(&s, &headers).await?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::bad_request("The session id is not a UUID."))?;
    if id == cur.session.id {
        return Err(ApiError::bad_request(
            "You cannot revoke the session you are currently using; log out instead.",
        ));
    }
    match s.store.get_session(id).await? {
        Some(other) if other.identity_id == cur.identity.id => {
            s.store.revoke_session(id, s.clock.now()).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::not_found("Unable to locate the resource")),
    }
}

fn expand(q: Option<&str>) -> (bool, bool) {
    let e = query_all(q, "expand");
    (e.iter().any(|x| x == "identity"), e.iter().any(|x| x == "devices"))
}

async fn admin_session_json(s: &Deps, sess: &Session, q: Option<&str>) -> ApiResult<Value> {
    let (with_identity, _) = expand(q);
    let ident = if with_identity {
        s.store.get_identity(sess.identity_id).await?
    } else {
        None
    };
    let schema_url = ident.as_ref().map(|i| s.schema_url(&i.schema_id)).unwrap_or_default();
    Ok(sess.to_json(s.clock.now(), ident.as_ref(), &schema_url, true))
}

async fn admin_list(State(s): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = q.as_deref();
    let active = match query_one(q, "active").as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let (with_identity, _) = expand(q);
    render_list(
        &s,
        SessionFilter {
            active,
            ..Default::default()
        },
        q,
        "admin/sessions",
        with_identity,
        true,
    )
    .await
}

async fn load_session(s: &Deps, id: &str) -> ApiResult<Session> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::bad_request("The session id is not a UUID."))?;
    s.store
        .get_session(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Unable to locate the resource"))
}

async fn admin_get(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<axum::Json<Value>> {
    let sess = load_session(&s, &id).await?;
    Ok(axum::Json(admin_session_json(&s, &sess, q.as_deref()).await?))
}

async fn admin_disable(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let sess = load_session(&s, &id).await?;
    s.store.revoke_session(sess.id, s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /admin/sessions/{id}/extend`. Kratos: extendSession (respects
/// `session.earliest_possible_extend`).
async fn admin_extend(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Value>> {
    let mut sess = load_session(&s, &id).await?;
    let now = s.clock.now();
    if !sess.is_active(now, None) {
        return Err(ApiError::not_found("The session is not active and cannot be extended."));
    }
    let lifespan = s.config.session.lifespan;
    let earliest = s.config.session.earliest_possible_extend.unwrap_or(lifespan);
    if sess.expires_at - earliest <= now {
        sess.expires_at = now + lifespan;
        s.store.set_session_expiry(sess.id, sess.expires_at, now).await?;
    }
    let ident = s.store.get_identity(sess.identity_id).await?;
    let schema_url = ident.as_ref().map(|i| s.schema_url(&i.schema_id)).unwrap_or_default();
    Ok(axum::Json(sess.to_json(now, ident.as_ref(), &schema_url, true)))
}

async fn admin_identity_sessions(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("Unable to locate the resource"))?;
    if s.store.get_identity(id).await?.is_none() {
        return Err(ApiError::not_found("Unable to locate the resource"));
    }
    let q = q.as_deref();
    let active = match query_one(q, "active").as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let filter = SessionFilter {
        identity_id: Some(id),
        active,
        ..Default::default()
    };
    render_list(&s, filter, q, &format!("admin/identities/{id}/sessions"), true, true).await
}

async fn admin_delete_identity_sessions(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("Unable to locate the resource"))?;
    if s.store.get_identity(id).await?.is_none() {
        return Err(ApiError::not_found("Unable to locate the resource"));
    }
    s.store.delete_identity_sessions(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
