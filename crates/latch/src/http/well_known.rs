//! `/.well-known/ory/webauthn.js` (the script passkey and WebAuthn nodes load) and
//! `/.well-known/webauthn` (WebAuthn related origins). Kratos: `x/webauthnx/js`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::error::ApiError;
use crate::flow::AppState;
use crate::strategy::passkey::nodes::SCRIPT;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/ory/webauthn.js", get(webauthn_js))
        .route("/.well-known/webauthn", get(related_origins))
}

/// The embedded script; its bytes are what the script nodes' `integrity` hashes.
async fn webauthn_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=UTF-8")], SCRIPT).into_response()
}

/// Related origins: every web origin of the passkey relying party, so one passkey works
/// across them (WebAuthn Level 3 §5.11). 404 when passkeys are off.
async fn related_origins(State(s): State<AppState>) -> Response {
    let Some(rp) = s.strategies.webauthn_relying_party() else {
        return ApiError::new(StatusCode::NOT_FOUND)
            .reason("Passkeys are not enabled.")
            .into_response();
    };
    let origins: Vec<&String> = rp
        .origins
        .iter()
        .filter(|o| o.starts_with("https://") || o.starts_with("http://"))
        .collect();
    axum::Json(json!({ "origins": origins })).into_response()
}
