//! The password-migration hook: at the first login with an imported credential that has no
//! hash but `use_password_migration_hook: true`, the old system is asked whether the password
//! matches. Kratos: `selfservice/hook/password_migration_hook.go`, called from
//! `selfservice/strategy/password/login.go`.
//!
//! The request is Kratos' default: `POST <url>` with `{"identifier", "password"}` as JSON,
//! the configured headers and `auth`. `200 {"status":"password_match"}` is a match; any other
//! `200` body and `403` are "no match"; every other status, a refused connection or a timeout
//! is Kratos' `502`. The password is never logged; redirects are not followed (the password
//! must not travel to another address).

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use crate::config::HookAuth;
use crate::deps::Env;
use crate::error::ApiError;
use crate::strategy::FlowError;

/// Kratos' HTTP client timeout for hooks (`driver/registry_default.go`, 30 s).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read (Kratos reads 1 KiB).
const MAX_ANSWER: usize = 1024;

/// The old system's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `200 {"status":"password_match"}`.
    Match,
    /// `403`, or a `200` with any other body.
    NoMatch,
}

/// Whether a stored password credential asks for the hook: no hash and the flag set
/// (Kratos' `ShouldUsePasswordMigrationHook`).
pub fn wanted(config: &Value) -> bool {
    let hash = config.get("hashed_password").and_then(Value::as_str).unwrap_or("");
    hash.is_empty() && config.get("use_password_migration_hook") == Some(&Value::Bool(true))
}

/// Asks the old system. The caller has already counted the attempt.
pub async fn ask(env: &Env, identifier: &str, password: &str) -> Result<Verdict, FlowError> {
    let hook = &env.config.selfservice.methods.password.config.migrate_hook;
    if !hook.enabled {
        return Err(FlowError::Api(misconfigured()));
    }
    let cfg = &hook.config;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| FlowError::Internal(format!("password migration hook client: {e}")))?;
    let mut rb = client
        .post(&cfg.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(json!({"identifier": identifier, "password": password}).to_string());
    for (k, v) in &cfg.headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    match &cfg.auth {
        Some(HookAuth::ApiKey { name, value, in_ }) if in_ == "cookie" => {
            rb = rb.header(http::header::COOKIE, format!("{name}={value}"));
        }
        Some(HookAuth::ApiKey { name, value, .. }) => rb = rb.header(name.as_str(), value.as_str()),
        Some(HookAuth::BasicAuth { user, password }) => rb = rb.basic_auth(user, Some(password)),
        None => {}
    }
    let mut res = match rb.send().await {
        Ok(res) => res,
        Err(e) => {
            // reqwest's error names the URL, never the body.
            tracing::warn!(error = %e, "the password migration hook could not be reached");
            return Err(FlowError::Api(upstream(
                "A third-party upstream service could not be reached. Please try again later.",
                "calling the password migration hook failed",
            )));
        }
    };
    let status = res.status();
    tracing::info!(status = status.as_u16(), "password migration hook answered");
    match status {
        StatusCode::OK => {
            let mut body = Vec::new();
            while body.len() < MAX_ANSWER {
                match res.chunk().await {
                    Ok(Some(c)) => body.extend_from_slice(&c),
                    Ok(None) => break,
                    Err(_) => return Ok(Verdict::NoMatch),
                }
            }
            body.truncate(MAX_ANSWER);
            let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            Ok(
                if answer.get("status").and_then(Value::as_str) == Some("password_match") {
                    Verdict::Match
                } else {
                    Verdict::NoMatch
                },
            )
        }
        StatusCode::FORBIDDEN => Ok(Verdict::NoMatch),
        other => Err(FlowError::Api(upstream(
            "A third-party upstream service responded improperly. Please try again later.",
            &format!("password migration hook failed with status code {}", other.as_u16()),
        ))),
    }
}

/// Kratos' `502 Bad Gateway` for a hook's upstream.
fn upstream(reason: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY).reason(reason).message(message)
}

/// Kratos' `500 invalid_configuration` when a credential asks for the hook while it is off.
fn misconfigured() -> ApiError {
    tracing::error!(
        "an imported password credential asks for the password migration hook, but \
         selfservice.methods.password.config.migrate_hook.enabled is not true"
    );
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR)
        .id("invalid_configuration")
        .message("Invalid configuration")
        .reason("Password migration hook is not enabled but password migration is requested.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_credentials_without_a_hash_and_with_the_flag_ask_the_hook() {
        assert!(wanted(
            &json!({"hashed_password": "", "use_password_migration_hook": true})
        ));
        assert!(wanted(&json!({"use_password_migration_hook": true})));
        assert!(!wanted(
            &json!({"hashed_password": "$argon2id$x", "use_password_migration_hook": true})
        ));
        assert!(!wanted(
            &json!({"hashed_password": "", "use_password_migration_hook": false})
        ));
        assert!(!wanted(&json!({})));
    }
}
