//! The password-migration hook: at the first login with an imported credential that has no
//! hash but `use_password_migration_hook: true`, the old system is asked whether the password
//! matches. Kratos: `selfservice/hook/password_migration_hook.go`, called from
//! `selfservice/strategy/password/login.go`.
//!
//! The request is `POST <url>` with the configured headers and `auth`. Its body is Kratos'
//! default `{"identifier", "password"}` as JSON, or, with `config.body`, what that Jsonnet
//! program returns for `ctx` (Kratos: the web hook `templateContext` plus `identifier` and
//! `password`): `ctx.flow` (the login flow as the API shows it), `ctx.identity` (as the admin
//! API shows it, without credentials), `ctx.identifier`, `ctx.password`, `ctx.request_method`,
//! `ctx.request_url` (the submission URL), `ctx.request_headers` (only `User-Agent`: Latch's
//! methods do not see the other headers yet) and `ctx.request_cookies` (always empty, for the
//! same reason). A configured `Content-Type: application/x-www-form-urlencoded` sends the
//! program's object of strings form-encoded, as Kratos' request builder does. A program that
//! fails, or cancels with `error "cancel"`, fails the login with a 500 (Kratos: the error of
//! its request builder). Programs are loaded once and kept for an hour (Kratos' fetcher cache).
//!
//! `200 {"status":"password_match"}` is a match; any other `200` body and `403` are "no
//! match"; every other status, a refused connection or a timeout is Kratos' `502`. The password
//! and the body are never logged; redirects are not followed (the password must not travel to
//! another address).

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};

use crate::config::HookAuth;
use crate::deps::Env;
use crate::error::ApiError;
use crate::identity::Identity;
use crate::jsonnet::{self, JsonnetError, Program};
use crate::model::flow::Flow;
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

/// What the hook is asked about: the login flow, the identity the identifier belongs to, and
/// what the person typed.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The login flow being submitted.
    pub flow: &'a Flow,
    /// The identity the identifier belongs to.
    pub identity: &'a Identity,
    /// The identifier as typed.
    pub identifier: &'a str,
    /// The password as typed.
    pub password: &'a str,
    /// The client's `User-Agent`, if it sent one.
    pub user_agent: Option<&'a str>,
}

/// Asks the old system. The caller has already counted the attempt.
pub async fn ask(env: &Env, attempt: Attempt<'_>) -> Result<Verdict, FlowError> {
    let hook = &env.config.selfservice.methods.password.config.migrate_hook;
    if !hook.enabled {
        return Err(FlowError::Api(misconfigured()));
    }
    let cfg = &hook.config;
    let configured_type = cfg
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_ascii_lowercase());
    let form = configured_type.as_deref() == Some("application/x-www-form-urlencoded");
    let body = match cfg.body.as_deref().filter(|b| !b.is_empty()) {
        None => json!({"identifier": attempt.identifier, "password": attempt.password}).to_string(),
        Some(url) => render_body(env, url, &attempt, form).await?,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| FlowError::Internal(format!("password migration hook client: {e}")))?;
    let content_type = if form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let mut rb = client
        .post(&cfg.url)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body);
    for (k, v) in cfg
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
    {
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

/// Programs loaded from `config.body`, by URL, with the time they were loaded.
type ProgramCache = std::sync::Mutex<std::collections::HashMap<String, (Program, Instant)>>;

/// How long a loaded body program is kept (Kratos' fetcher caches for an hour).
const PROGRAM_TTL: Duration = Duration::from_secs(3600);

async fn program(url: &str) -> Result<Program, JsonnetError> {
    static CACHE: std::sync::OnceLock<ProgramCache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(c) = cache.lock()
        && let Some((p, at)) = c.get(url)
        && at.elapsed() < PROGRAM_TTL
    {
        return Ok(p.clone());
    }
    let loaded = jsonnet::load(url).await?;
    if let Ok(mut c) = cache.lock() {
        c.insert(url.to_string(), (loaded.clone(), Instant::now()));
    }
    Ok(loaded)
}

/// Kratos' `ctx` for the body program: the web hook context plus `identifier` and `password`.
fn context(env: &Env, attempt: &Attempt<'_>) -> Value {
    let mut headers = serde_json::Map::new();
    if let Some(ua) = attempt.user_agent {
        headers.insert("User-Agent".into(), json!([ua]));
    }
    let identity = attempt
        .identity
        .to_json(&env.schema_url(&attempt.identity.schema_id), &Default::default());
    json!({
        "flow": attempt.flow.to_json(),
        "request_headers": headers,
        "request_method": "POST",
        "request_url": attempt.flow.ui.action,
        "request_cookies": {},
        "identity": identity,
        "identifier": attempt.identifier,
        "password": attempt.password,
    })
}

/// Renders `config.body`: JSON, or an object of strings sent form-encoded. Failures name the
/// program, never its output or the context (which holds the password).
async fn render_body(env: &Env, url: &str, attempt: &Attempt<'_>, form: bool) -> Result<String, FlowError> {
    let failed = |what: &str| {
        tracing::error!(body = %url_for_log(url), problem = what, "the password migration hook body could not be rendered");
        FlowError::Internal(format!("password migration hook body: {what}"))
    };
    let program = program(url).await.map_err(|e| {
        tracing::error!(error = %e, "the password migration hook body could not be loaded");
        FlowError::Internal("password migration hook body: cannot load".into())
    })?;
    let inputs = jsonnet::Inputs {
        ext_code: Vec::new(),
        tla_code: vec![("ctx".to_owned(), context(env, attempt))],
    };
    let rendered = match jsonnet::evaluate_inputs_limited(&program, inputs, jsonnet::Limits::default()).await {
        Ok(v) => v,
        // The error text may quote values of `ctx` (the password): only its kind is logged.
        Err(JsonnetError::Cancelled { .. }) => return Err(failed("the program cancelled the call")),
        Err(JsonnetError::Timeout { .. }) => return Err(failed("the program did not finish in time")),
        Err(JsonnetError::TooLarge { .. }) => return Err(failed("the program's output is too large")),
        Err(JsonnetError::ImportDenied { .. }) => return Err(failed("the program uses an import")),
        Err(JsonnetError::Syntax { .. }) => return Err(failed("the program does not parse")),
        Err(_) => return Err(failed("the program failed")),
    };
    if !form {
        return Ok(rendered.to_string());
    }
    let Some(fields) = rendered.as_object() else {
        return Err(failed("a form-encoded body program must return an object of strings"));
    };
    let mut pairs = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        let Some(v) = v.as_str() else {
            return Err(failed("a form-encoded body program must return an object of strings"));
        };
        pairs.push((k.as_str(), v));
    }
    pairs.sort_unstable();
    let mut encoder = url::form_urlencoded::Serializer::new(String::new());
    encoder.extend_pairs(pairs);
    Ok(encoder.finish())
}

/// A body URL as logs show it: the scheme and at most 40 characters (a `base64://` program is
/// configuration, not a secret, but long).
fn url_for_log(url: &str) -> String {
    let mut shown: String = url.chars().take(40).collect();
    if url.chars().count() > 40 {
        shown.push('…');
    }
    shown
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
