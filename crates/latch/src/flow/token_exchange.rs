//! The session token hand-off of native apps' social sign-in. Kratos:
//! `selfservice/sessiontokenexchange`, `session/handler.go exchangeCode`.
//!
//! A native login or registration flow created with `return_session_token_exchange_code=true`
//! answers with `session_token_exchange_code` (the init code, shown once). The app sends the
//! person through the provider in a browser; when the callback signs them in, the browser is
//! sent to the flow's `return_to` with `?code=<return_to_code>` instead of receiving the
//! session token. The app then calls `GET /sessions/token-exchange?init_code=&return_to_code=`
//! and gets `{session, session_token}`: once, within [`EXCHANGE_WINDOW`].
//!
//! Both codes are 64 random letters and digits stored as SHA-256 hashes; the session token is
//! sealed (XChaCha20-Poly1305) under a key derived from the return_to code, which the database
//! never holds. Unlike Kratos (which hands the token out again for as long as the row lives),
//! an exchange is consumed by its first success.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::respond::{self, Answer};
use super::{Flow, FlowKind, FlowType, Service};
use crate::crypto::{random_alnum, seal::Sealer, sha256_hex};
use crate::deps::Deps;
use crate::error::ApiError;
use crate::session::manager::Issued;
use crate::strategy::FlowError;

/// Where a flow keeps the id of its exchange (internal context, never shown).
pub const KEY: &str = "session_token_exchange";
/// How long after the sign-in the app may exchange the codes.
pub const EXCHANGE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Length of both codes (Kratos: 64 letters and digits).
const CODE_LEN: usize = 64;

/// Whether flow creation asked for an exchange code: native login and registration flows
/// with `return_session_token_exchange_code` true (Kratos parses it as a boolean for login and
/// compares it with `true` for registration).
pub fn requested(kind: FlowKind, flow_type: FlowType, value: Option<&str>) -> bool {
    if flow_type != FlowType::Api {
        return false;
    }
    match (kind, value) {
        (FlowKind::Login, Some(v)) => matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"),
        (FlowKind::Registration, Some(v)) => v == "true",
        _ => false,
    }
}

/// Opens an exchange for a new flow (before it is stored) and returns its init code.
pub async fn create(deps: &Deps, flow: &mut Flow) -> Result<String, ApiError> {
    let init_code = random_alnum(CODE_LEN);
    let id = Uuid::new_v4();
    deps.store
        .insert_token_exchange(
            id,
            flow.id,
            &sha256_hex(init_code.as_bytes()),
            flow.expires_at,
            deps.clock.now(),
        )
        .await?;
    flow.internal_set(KEY, json!(id));
    Ok(init_code)
}

/// The exchange a successful submission hands its session to: a native flow that asked for
/// one, finished by the `oidc` callback (an ID token submitted by the app itself gets its
/// token directly, as Kratos).
pub fn pending(flow: &Flow, style: respond::Style, body: &Value, method: &str) -> Option<Uuid> {
    if style != respond::Style::Api || method != "oidc" {
        return None;
    }
    if body
        .get("id_token")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        return None;
    }
    flow.internal_get(KEY)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

fn sealer(return_to_code: &str, init_code_hash: &str) -> Option<Sealer> {
    Sealer::new(&[format!(
        "latch/session-token-exchange/v1.{return_to_code}.{init_code_hash}"
    )])
    .ok()
}

/// Stores the issued session on exchange `id` and sends the browser to `to` with the
/// return_to code (303).
pub async fn hand_off(deps: &Service, id: Uuid, issued: &Issued, to: &str) -> Result<Answer, FlowError> {
    let code = random_alnum(CODE_LEN);
    // The exchange's init code hash names it; the sealing key needs the return_to code too.
    let init_code_hash = deps
        .store
        .token_exchange_init_hash(id)
        .await?
        .ok_or_else(|| FlowError::Internal("the session token exchange of the flow is gone".into()))?;
    let sealed = sealer(&code, &init_code_hash)
        .ok_or_else(|| FlowError::Internal("no sealing key".into()))?
        .seal(issued.token.as_bytes());
    let until = deps.clock.now() + EXCHANGE_WINDOW;
    if !deps
        .store
        .complete_token_exchange(
            id,
            &sha256_hex(code.as_bytes()),
            Some((issued.session.id, &sealed)),
            until,
        )
        .await?
    {
        return Err(FlowError::Internal(
            "the session token exchange was completed before".into(),
        ));
    }
    with_code(to, &code, None).map_err(FlowError::Internal)
}

/// `to` with `code` (and `flow`) added, as a 303.
fn with_code(to: &str, code: &str, flow: Option<Uuid>) -> Result<Answer, String> {
    let mut url = url::Url::parse(to).map_err(|e| format!("return_to {to:?}: {e}"))?;
    url.query_pairs_mut().append_pair("code", code);
    if let Some(f) = flow {
        url.query_pairs_mut().append_pair("flow", &f.to_string());
    }
    Ok(respond::redirect(url.as_str(), StatusCode::SEE_OTHER))
}

/// A callback of a native flow with an exchange failed (the flow now shows why): as Kratos,
/// the browser still goes to `to` (its `return_to`) with a code (and, for registration, the flow id), and
/// the exchange answers 422 with the flow, so the app learns what happened.
pub async fn hand_off_failure(deps: &Service, id: Uuid, flow: &Flow, to: &str) -> Result<Answer, ApiError> {
    let code = random_alnum(CODE_LEN);
    if !deps
        .store
        .complete_token_exchange(id, &sha256_hex(code.as_bytes()), None, flow.expires_at)
        .await?
    {
        return Err(ApiError::internal());
    }
    let flow_param = (flow.kind == FlowKind::Registration).then_some(flow.id);
    with_code(to, &code, flow_param).map_err(|e| {
        tracing::error!(error = %e, "a failed sign-in could not be handed back");
        ApiError::internal()
    })
}

/// `GET /sessions/token-exchange?init_code=&return_to_code=`: `{session, session_token}`
/// once; 400 without both codes, 422 with the flow when its sign-in failed, 404 for unknown,
/// used, expired or not yet completed ones.
pub async fn exchange(deps: &Deps, init_code: &str, return_to_code: &str) -> Result<(StatusCode, Value), ApiError> {
    if init_code.is_empty() || return_to_code.is_empty() {
        return Err(ApiError::bad_request(
            "\"init_code\" and \"return_to_code\" query params must be set",
        ));
    }
    let none = || ApiError::not_found("no session yet for this \"code\"");
    if init_code.len() > 256 || return_to_code.len() > 256 {
        return Err(none());
    }
    let init_code_hash = sha256_hex(init_code.as_bytes());
    let now = deps.clock.now();
    let return_to_code_hash = sha256_hex(return_to_code.as_bytes());
    let Some(taken) = deps
        .store
        .take_token_exchange(&init_code_hash, &return_to_code_hash, now)
        .await?
    else {
        // A sign-in that failed: the flow with its messages (Kratos answers 422 with it).
        if let Some(flow_id) = deps
            .store
            .failed_token_exchange_flow(&init_code_hash, &return_to_code_hash, now)
            .await?
            && let Some(flow) = deps.store.get_flow(flow_id).await?
        {
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, respond::flow_json(&flow, None)));
        }
        return Err(none());
    };
    let token = sealer(return_to_code, &init_code_hash)
        .and_then(|s| s.open(&taken.sealed_token))
        .and_then(|t| String::from_utf8(t).ok())
        .ok_or_else(|| {
            tracing::error!("a session token exchange could not be opened");
            ApiError::internal()
        })?;
    let Some(cur) = crate::session::manager::by_token(deps, &token, false).await? else {
        // Revoked (or its identity deactivated) since the sign-in.
        return Err(none());
    };
    if cur.session.id != taken.session_id {
        tracing::error!("a session token exchange names another session than its token");
        return Err(ApiError::internal());
    }
    let schema_url = deps.schema_url(&cur.identity.schema_id);
    Ok((
        StatusCode::OK,
        json!({
            "session": cur.session.to_json(now, Some(&cur.identity), &schema_url, false),
            "session_token": token,
        }),
    ))
}
