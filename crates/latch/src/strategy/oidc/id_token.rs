//! Sign-in with an ID token the app already holds (Sign in with Apple, Google Sign-In on a
//! phone): `{method: "oidc", provider, id_token, id_token_nonce}` submitted to a login or
//! registration flow. No redirect happens: the token is verified here and the flow finishes
//! at once, a native app getting its `session_token` as from any other method.
//! Kratos: `Strategy.ProcessIDToken`, `token_verifier.go`, `provider_{google,apple}.go`.
//!
//! What is checked, as Kratos: the signature against the issuer's published keys, the issuer,
//! the audience (`client_id` or one of `additional_id_token_audiences`), the expiry, `sub` and
//! `iss`, and the nonce: a token carrying one needs `id_token_nonce` equal to it; a token
//! without one is accepted only where the provider allows it (Google always, Apple when the
//! token says `nonce_supported: false`). Latch adds one rule: a token signs in once.

use std::str::FromStr;

use openidconnect::core::CoreIdToken;
use openidconnect::{ClientId, IssuerUrl, Nonce};
use serde_json::{Map, Value, json};

use super::{Oidc, claims, client};
use crate::config::OidcProvider;
use crate::crypto::ct_eq;
use crate::deps::Env;
use crate::error::ApiError;
use crate::model::flow::Flow;
use crate::strategy::{FlowError, field};
use crate::text;

/// Google's issuer (Kratos pins it; Google also writes it without the scheme).
const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// Apple's issuer.
const APPLE_ISSUER: &str = "https://appleid.apple.com";
/// The longest ID token looked at (real ones are 1–2 KiB).
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;

/// Providers that verify ID tokens submitted by apps (Kratos' `IDTokenVerifier`s this build
/// has: Google and Apple; `netid` exchanges the token at its broker first and is not built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Google,
    Apple,
}

/// The verifier of `p` and the issuer its tokens must name: the provider's own, or
/// `issuer_url` when configured (which Kratos ignores for these two; Latch honours it, so a
/// test or a proxy can stand in for the provider).
fn verifier(p: &OidcProvider) -> Option<(Kind, String)> {
    let (kind, default) = match p.provider.as_str() {
        "google" => (Kind::Google, GOOGLE_ISSUER),
        "apple" => (Kind::Apple, APPLE_ISSUER),
        _ => return None,
    };
    let issuer = p
        .issuer_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_string();
    Some((kind, issuer))
}

/// Whether a submission carries an ID token.
pub(super) fn submitted(body: &Value) -> bool {
    field(body, "id_token").is_some_and(|t| !t.is_empty())
}

/// Kratos' 403 for a token that does not verify; the cause is logged, not shown.
fn not_verified(p: &OidcProvider, cause: &str) -> FlowError {
    tracing::info!(provider = %p.id, cause, "an id_token was refused");
    FlowError::Api(
        ApiError::new(http::StatusCode::FORBIDDEN)
            .reason("Could not verify id_token")
            .message(format!("The id_token could not be verified: {cause}")),
    )
}

/// Kratos' 502 `upstream_error` (an unsupported provider, the nonce rules).
fn upstream(reason: String) -> FlowError {
    FlowError::Api(
        ApiError::new(http::StatusCode::BAD_GATEWAY)
            .id("upstream_error")
            .reason(reason)
            .message("Upstream error"),
    )
}

/// The token's audiences (`aud` is a string or a list).
fn audiences(raw: &Map<String, Value>) -> Vec<&str> {
    match raw.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn truthy(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true))) || matches!(v, Some(Value::String(s)) if s == "true")
}

impl Oidc {
    /// Verifies the submitted `id_token` for the submitted `provider` and returns the
    /// provider and the claims in Kratos' shape.
    pub(super) async fn with_id_token(
        &self,
        env: &Env,
        flow: &mut Flow,
        body: &Value,
    ) -> Result<(OidcProvider, Value), FlowError> {
        let id = field(body, "provider").unwrap_or("");
        let p = self.provider(id).ok_or_else(|| {
            FlowError::message(text::validation_generic(&format!(
                "Provider {id:?} is unknown or has not been configured."
            )))
        })?;
        let raw_token = field(body, "id_token").unwrap_or("");
        let nonce = field(body, "id_token_nonce").unwrap_or("");
        let raw = self.verify_id_token(env, p, raw_token, nonce).await?;
        // One token, one sign-in: a token that leaked (a log, a proxy) cannot be replayed.
        let exp = raw
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or_else(|| env.clock.now() + time::Duration::hours(1));
        if !crate::limits::consume_once(env, "oidc_id_token", raw_token.as_bytes(), exp).await? {
            return Err(not_verified(p, "the id_token was used before"));
        }
        flow.internal_set(crate::model::flow::AMR_PROVIDER, json!(p.id));
        let claims = claims::kratos_claims(raw).map_err(|reason| {
            FlowError::Api(
                ApiError::new(http::StatusCode::FORBIDDEN)
                    .reason("The id_token claims were invalid")
                    .message(reason),
            )
        })?;
        Ok((p.clone(), claims))
    }

    /// Kratos' `ProcessIDToken`: the token's claims once signature, issuer, audience, expiry
    /// and nonce are checked.
    async fn verify_id_token(
        &self,
        env: &Env,
        p: &OidcProvider,
        raw_token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, FlowError> {
        let Some((kind, issuer)) = verifier(p) else {
            return Err(upstream(format!(
                "The provider {} does not support id_token verification",
                if p.provider.is_empty() { "generic" } else { &p.provider }
            )));
        };
        if raw_token.len() > MAX_ID_TOKEN_LEN {
            return Err(not_verified(p, "the id_token is too long"));
        }
        let token = CoreIdToken::from_str(raw_token).map_err(|_| not_verified(p, "the id_token is malformed"))?;
        let issuer_url = IssuerUrl::new(issuer.clone()).map_err(|e| not_verified(p, &e.to_string()))?;
        let now = chrono::DateTime::from_timestamp(env.clock.now().unix_timestamp(), 0).unwrap_or_default();
        // Signature and expiry here; issuer and audience below, with Kratos' rules.
        let check = |keys| {
            let verifier = openidconnect::core::CoreIdTokenVerifier::new_public_client(
                ClientId::new(p.client_id.clone()),
                issuer_url.clone(),
                keys,
            )
            .require_issuer_match(false)
            .require_audience_match(false)
            .set_time_fn(move || now);
            token.claims(&verifier, |_: Option<&Nonce>| Ok(())).map(|_| ())
        };
        let keys = self
            .client
            .issuer_keys(&issuer, false)
            .await
            .map_err(|e| not_verified(p, &e.to_string()))?;
        if let Err(first) = check(keys) {
            // The provider may have rotated its keys since they were cached.
            if !matches!(first, openidconnect::ClaimsVerificationError::SignatureVerification(_)) {
                return Err(not_verified(p, &first.to_string()));
            }
            let keys = self
                .client
                .issuer_keys(&issuer, true)
                .await
                .map_err(|e| not_verified(p, &e.to_string()))?;
            check(keys).map_err(|e| not_verified(p, &e.to_string()))?;
        }
        let raw = client::payload_of(raw_token).map_err(|e| not_verified(p, &e.to_string()))?;
        let iss = raw.get("iss").and_then(Value::as_str).unwrap_or("");
        let issuer_ok = iss.trim_end_matches('/') == issuer
            || (kind == Kind::Google && issuer == GOOGLE_ISSUER && iss == "accounts.google.com");
        if !issuer_ok {
            return Err(not_verified(p, &format!("issuer {iss:?} is not {issuer:?}")));
        }
        let allowed: Vec<&str> = std::iter::once(p.client_id.as_str())
            .chain(p.additional_id_token_audiences.iter().map(String::as_str))
            .collect();
        if !audiences(&raw).iter().any(|a| allowed.contains(a)) {
            return Err(not_verified(p, "token audience didn't match allowed audiences"));
        }
        let token_nonce = raw.get("nonce").and_then(Value::as_str).unwrap_or("");
        if token_nonce.is_empty() {
            let may_skip = match kind {
                Kind::Google => true,
                Kind::Apple => !truthy(raw.get("nonce_supported")),
            };
            if !may_skip {
                return Err(upstream(
                    "No nonce was included in the id_token but is required by the provider".into(),
                ));
            }
        } else if nonce.is_empty() {
            return Err(upstream("No nonce was provided but is required by the provider".into()));
        } else if !ct_eq(nonce.as_bytes(), token_nonce.as_bytes()) {
            return Err(upstream(
                "The supplied nonce does not match the nonce from the id_token".into(),
            ));
        }
        Ok(raw)
    }
}
