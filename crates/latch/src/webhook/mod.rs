//! Kratos' `web_hook` hook as a self-contained building block: [`WebHookConfig`] from the hook's
//! `config`, the [`Context`] its body program reads, and [`deliver`], which renders the body, sends
//! the request and reads the answer. It borrows no request state, so the flow engine can call it
//! inline (`response.parse` / `can_interrupt`) and a background worker can call it from a stored
//! row later (`response.ignore`).
//!
//! Behaviour, as Kratos (`selfservice/hook/web_hook.go`, `request/builder.go`, `request/auth.go`,
//! go-retryablehttp through `ory/x/httpx.NewResilientClient` in `driver/registry_default.go`):
//!
//! - **Body**: every method but `TRACE` gets a body rendered by the `body` Jsonnet program with
//!   `ctx` as a top-level argument (`function(ctx) {…}`). `error "cancel"` skips the call silently
//!   ([`Outcome::Cancelled`]). A program is required for those methods ("got empty template path"
//!   in Kratos). `Content-Type` defaults to `application/json`; `application/x-www-form-urlencoded`
//!   sends the program's object of strings form-encoded (keys sorted); any other content type is
//!   an error.
//! - **Auth**: `api_key` sets the header `name: value` or adds the cookie `name=value`;
//!   `basic_auth` sends `Authorization: Basic …`. Config headers come first, auth after.
//! - **Transport** ([`Transport::KRATOS`]): each attempt may take 30 s (Go's `http.Client.Timeout`,
//!   which covers connecting, sending and reading the body: it is per attempt, not for the whole
//!   delivery); at most 2 retries (3 attempts); a retry follows a transport error (timeouts
//!   included), a `429`, or a `5xx` other than `501`; waits are 1 s then 2 s (1 s × 2^n, at most
//!   30 s; a `Retry-After` in seconds on `429`/`503` is used instead, capped at 30 s here where
//!   Kratos does not cap it). Worst case 3 × 30 s + 3 s = 93 s. Redirects are followed (10 at most).
//!   After the last retryable failure the delivery fails, even if the last answer carried messages.
//!   The answer is read up to 5 MiB.
//! - **Headers added**: `Ory-Webhook-Trigger-ID` (one per delivery) and `Ory-Webhook-Request-ID`
//!   (one per attempt) when `emit_analytics_event` is on (the default).
//! - **Answer**: with `response.parse` or `can_interrupt`, a `>= 400` (that is not retried) with
//!   `{"messages":[{"instance_ptr":…,"messages":[{id,text,type,context}]}]}` becomes
//!   [`Outcome::Interrupted`]; an unparseable or empty list is an error. With `response.parse`, a
//!   `200` with a non-null `identity` becomes [`Outcome::Identity`]; a `200` must then be JSON.
//!   Any other `>= 400` is [`WebHookError::Status`] (Kratos: 502), a timeout
//!   [`WebHookError::Timeout`] (Kratos: 504).
//!
//! Where Latch differs: `error "cancel"` also skips form-encoded bodies (Kratos reports an error
//! there), a `null` in the answer's identity fields means "unchanged", and `Retry-After` is capped.
//!
//! `response.ignore: true` hooks go through the durable outbox ([`outbox`], [`dispatcher`]): the
//! body is [`render`]ed when the event happens (`crate::flow::web_hook::queue`), the row is
//! written in the event's transaction (or right after it), and a worker on every node sends it
//! with [`send_once`], retrying with backoff.
//!
//! Secrets: API keys, passwords, bodies and answers are never logged or put in errors; URLs in
//! errors and logs lose their credentials, query and fragment.

mod config;
mod context;
pub mod dispatcher;
pub mod outbox;
mod response;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use config::{Auth, ConfigError, WebHookConfig};
pub use context::{Context, HEADER_ALLOW_LIST, RequestInfo, canonical_header};
pub use response::{FieldMessages, IdentityPatch};

use crate::jsonnet::{self, JsonnetError};

/// Retry and timeout settings of a delivery. [`Transport::KRATOS`] is what Kratos uses; tests
/// shorten it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// Deadline of one attempt: connect, send, and read the whole answer.
    pub attempt_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First wait between attempts; doubles each retry.
    pub retry_wait_min: Duration,
    /// Longest wait between attempts (also caps `Retry-After`).
    pub retry_wait_max: Duration,
    /// Largest answer read; the rest is cut off (and a cut JSON answer then fails to parse).
    pub max_response_bytes: usize,
}

impl Transport {
    /// Kratos' client: 30 s per attempt, 2 retries, 1 s…30 s exponential waits, 5 MiB answers.
    pub const KRATOS: Transport = Transport {
        attempt_timeout: Duration::from_secs(30),
        max_retries: 2,
        retry_wait_min: Duration::from_secs(1),
        retry_wait_max: Duration::from_secs(30),
        max_response_bytes: 5 << 20,
    };
}

impl Default for Transport {
    fn default() -> Self {
        Self::KRATOS
    }
}

/// What a delivery ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The body program raised `error "cancel"`; no request was sent.
    Cancelled,
    /// The receiver answered and there is nothing to apply.
    Delivered,
    /// `response.parse` and a `200` with `identity`: apply it before saving the identity.
    Identity(Box<IdentityPatch>),
    /// `response.parse` / `can_interrupt` and a `>= 400` with messages: show them on the form
    /// (`instance_ptr` `#/traits/email` → node `traits.email`) and stop the flow.
    Interrupted(Vec<FieldMessages>),
}

/// Why a delivery failed. Messages name the hook's URL without credentials or query, never a
/// secret, a body or an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebHookError {
    /// The configuration cannot produce a request (no body program for a method with a body,
    /// unsupported content type).
    #[error("web hook {url}: {reason}")]
    Config { url: String, reason: String },
    /// The body program could not be loaded or failed.
    #[error("web hook {url}: the body could not be rendered: {source}")]
    Body { url: String, source: JsonnetError },
    /// No attempt got an answer in time (Kratos: 504, "could not be reached").
    #[error("web hook {url}: no answer within {timeout:?} after {attempts} attempt(s)")]
    Timeout {
        url: String,
        timeout: Duration,
        attempts: u32,
    },
    /// The receiver could not be reached (connection refused, DNS, TLS…).
    #[error("web hook {url}: the receiver could not be reached after {attempts} attempt(s): {reason}")]
    Unreachable { url: String, attempts: u32, reason: String },
    /// The receiver answered with an error status (Kratos: 502, "responded improperly").
    #[error("web hook {url}: the receiver answered HTTP {status} after {attempts} attempt(s)")]
    Status { url: String, status: u16, attempts: u32 },
    /// The answer was to be parsed but is not what Kratos accepts.
    #[error("web hook {url}: the answer (HTTP {status}) could not be used: {reason}")]
    BadResponse { url: String, status: u16, reason: String },
}

impl WebHookError {
    /// The HTTP status Kratos gives the flow for this error: 504 for a timeout, 502 for an error
    /// status, 500 otherwise.
    pub fn flow_status(&self) -> u16 {
        match self {
            Self::Timeout { .. } => 504,
            Self::Status { status, .. } if *status < 500 || *status == 501 => 502,
            _ => 500,
        }
    }
}

/// Delivers with Kratos' transport and a fresh trigger id.
pub async fn deliver(cfg: &WebHookConfig, ctx: &Context) -> Result<Outcome, WebHookError> {
    deliver_with(cfg, ctx, &Transport::KRATOS, uuid::Uuid::new_v4()).await
}

/// Delivers with `transport`; `trigger_id` is sent as `Ory-Webhook-Trigger-ID` (an outbox keeps
/// it across its own retries so that the receiver can recognise repeats).
pub async fn deliver_with(
    cfg: &WebHookConfig,
    ctx: &Context,
    transport: &Transport,
    trigger_id: uuid::Uuid,
) -> Result<Outcome, WebHookError> {
    let url = shown_url(&cfg.url);
    let body = match render_body(cfg, ctx, &url).await? {
        Some(body) => Some(body),
        None if cfg.method == http::Method::TRACE => None,
        None => return Ok(Outcome::Cancelled),
    };
    let result = send(cfg, body, transport, trigger_id, &url).await;
    match &result {
        Ok((status, attempts, _)) => {
            tracing::info!(hook = cfg.id.as_deref().unwrap_or(""), url = %url, status, attempts, "web hook delivered");
        }
        Err(e) => tracing::warn!(hook = cfg.id.as_deref().unwrap_or(""), error = %e, "web hook failed"),
    }
    let (status, attempts, answer) = result?;
    response::interpret(cfg, status, attempts, &answer, &url)
}

/// A body rendered ahead of sending (the outbox renders when the event happens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// The body program raised `error "cancel"`: nothing is to be sent.
    Cancelled,
    /// Send this body (`None` for `TRACE`, which never has one).
    Ready(Option<Vec<u8>>),
}

/// Renders the request body for `ctx` without sending anything.
pub async fn render(cfg: &WebHookConfig, ctx: &Context) -> Result<Rendered, WebHookError> {
    let url = shown_url(&cfg.url);
    match render_body(cfg, ctx, &url).await? {
        Some(body) => Ok(Rendered::Ready(Some(body))),
        None if cfg.method == http::Method::TRACE => Ok(Rendered::Ready(None)),
        None => Ok(Rendered::Cancelled),
    }
}

/// Sends an already rendered body with `transport` (the outbox passes no retries: it retries
/// itself) and returns the receiver's status. Any status `>= 400` is [`WebHookError::Status`];
/// the answer is not interpreted (`response.ignore`).
pub async fn send_once(
    cfg: &WebHookConfig,
    body: Option<Vec<u8>>,
    transport: &Transport,
    trigger_id: uuid::Uuid,
) -> Result<u16, WebHookError> {
    let url = shown_url(&cfg.url);
    let (status, attempts, _) = send(cfg, body, transport, trigger_id, &url).await?;
    if status >= 400 {
        return Err(WebHookError::Status { url, status, attempts });
    }
    Ok(status)
}

/// A fingerprint of the hook's `auth` that holds no secret: SHA-256 over the URL, method, `id`,
/// auth type and key name (or user). The outbox stores it instead of the credentials and looks
/// the current credentials up by it when it sends, so a rotated key is picked up and no secret
/// sits in the database. `None` without `auth`.
pub fn auth_ref(cfg: &WebHookConfig) -> Option<String> {
    let auth = cfg.auth.as_ref()?;
    let (kind, name) = match auth {
        Auth::ApiKey {
            name, in_cookie: true, ..
        } => ("api_key/cookie", name.as_str()),
        Auth::ApiKey { name, .. } => ("api_key/header", name.as_str()),
        Auth::BasicAuth { user, .. } => ("basic_auth", user.as_str()),
    };
    let text = format!(
        "latch web hook auth v1\0{}\0{}\0{}\0{kind}\0{name}",
        cfg.url,
        cfg.method,
        cfg.id.as_deref().unwrap_or("")
    );
    Some(crate::crypto::sha256_hex(text.as_bytes()))
}

/// What the outbox shows of a stored URL: no credentials, query or fragment.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => shown_url(&u),
        Err(_) => String::new(),
    }
}

/// Renders the body: `Ok(None)` for `TRACE` (never a body) or when the program cancels.
async fn render_body(cfg: &WebHookConfig, ctx: &Context, url: &str) -> Result<Option<Vec<u8>>, WebHookError> {
    if cfg.method == http::Method::TRACE {
        return Ok(None);
    }
    let config_error = |reason: &str| WebHookError::Config {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let form = match cfg.content_type() {
        "application/json" => false,
        "application/x-www-form-urlencoded" => true,
        _ => {
            return Err(config_error(
                "the Content-Type must be application/json or application/x-www-form-urlencoded for a request with a body",
            ));
        }
    };
    let Some(body_url) = &cfg.body else {
        return Err(config_error(&format!(
            "`body` is required for {} requests (only TRACE has no body)",
            cfg.method
        )));
    };
    let body_error = |source| WebHookError::Body {
        url: url.to_owned(),
        source,
    };
    let program = jsonnet::load(body_url).await.map_err(body_error)?;
    let ctx_json = serde_json::to_value(ctx).map_err(|e| WebHookError::Config {
        url: url.to_owned(),
        reason: format!("the context cannot be serialised: {e}"),
    })?;
    let inputs = jsonnet::Inputs {
        ext_code: Vec::new(),
        tla_code: vec![("ctx".to_owned(), ctx_json)],
    };
    let rendered = match jsonnet::evaluate_inputs_limited(&program, inputs, jsonnet::Limits::default()).await {
        Ok(v) => v,
        Err(JsonnetError::Cancelled { .. }) => return Ok(None),
        Err(e) => return Err(body_error(e)),
    };
    if !form {
        return serde_json::to_vec(&rendered)
            .map(Some)
            .map_err(|e| config_error(&format!("the body cannot be serialised: {e}")));
    }
    let Some(fields) = rendered.as_object() else {
        return Err(config_error(
            "a form-encoded body program must return an object of strings",
        ));
    };
    let mut pairs = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        let v = v.as_str().ok_or_else(|| {
            config_error(&format!(
                "a form-encoded body program must return an object of strings; `{k}` is not a string"
            ))
        })?;
        pairs.push((k.as_str(), v));
    }
    pairs.sort_unstable();
    let mut encoder = url::form_urlencoded::Serializer::new(String::new());
    encoder.extend_pairs(pairs);
    Ok(Some(encoder.finish().into_bytes()))
}

/// One shared client: connections are reused, each attempt has its own deadline.
fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let built = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok(CLIENT.get_or_init(|| built))
}

/// Sends with retries; returns the final status, the number of attempts and the answer (cut at
/// `max_response_bytes`).
async fn send(
    cfg: &WebHookConfig,
    body: Option<Vec<u8>>,
    transport: &Transport,
    trigger_id: uuid::Uuid,
    url: &str,
) -> Result<(u16, u32, Vec<u8>), WebHookError> {
    let client = client().map_err(|reason| WebHookError::Unreachable {
        url: url.to_owned(),
        attempts: 0,
        reason,
    })?;
    let headers = request_headers(cfg).map_err(|reason| WebHookError::Config {
        url: url.to_owned(),
        reason,
    })?;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let mut request = client
            .request(cfg.method.clone(), cfg.url.clone())
            .timeout(transport.attempt_timeout)
            .headers(headers.clone());
        if cfg.emit_analytics_event {
            request = request
                .header("Ory-Webhook-Request-ID", uuid::Uuid::new_v4().to_string())
                .header("Ory-Webhook-Trigger-ID", trigger_id.to_string());
        }
        if let Some(body) = &body {
            request = request.body(body.clone());
        }

        let outcome = match request.send().await {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|_| status == 429 || status == 503)
                    .map(Duration::from_secs);
                let retryable = status == 429 || (status >= 500 && status != 501);
                if !retryable {
                    let mut answer = Vec::new();
                    loop {
                        match response.chunk().await {
                            Ok(Some(chunk)) => {
                                let room = transport.max_response_bytes.saturating_sub(answer.len());
                                answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
                                if room <= chunk.len() {
                                    break;
                                }
                            }
                            Ok(None) => break,
                            Err(e) if e.is_timeout() => {
                                return Err(WebHookError::Timeout {
                                    url: url.to_owned(),
                                    timeout: transport.attempt_timeout,
                                    attempts: attempt,
                                });
                            }
                            Err(e) => {
                                return Err(WebHookError::Unreachable {
                                    url: url.to_owned(),
                                    attempts: attempt,
                                    reason: format!("reading the answer failed: {}", e.without_url()),
                                });
                            }
                        }
                    }
                    return Ok((status, attempt, answer));
                }
                (
                    WebHookError::Status {
                        url: url.to_owned(),
                        status,
                        attempts: attempt,
                    },
                    retry_after,
                )
            }
            Err(e) => {
                let failure = if e.is_timeout() {
                    WebHookError::Timeout {
                        url: url.to_owned(),
                        timeout: transport.attempt_timeout,
                        attempts: attempt,
                    }
                } else {
                    WebHookError::Unreachable {
                        url: url.to_owned(),
                        attempts: attempt,
                        reason: describe(&e),
                    }
                };
                // Too many redirects and unusable requests are not retried (retryablehttp).
                if e.is_redirect() || e.is_builder() {
                    return Err(failure);
                }
                (failure, None)
            }
        };
        let (failure, retry_after) = outcome;
        if attempt > transport.max_retries {
            return Err(failure);
        }
        let backoff = retry_after.unwrap_or_else(|| {
            transport
                .retry_wait_min
                .saturating_mul(2u32.saturating_pow(attempt - 1))
        });
        tokio::time::sleep(backoff.min(transport.retry_wait_max)).await;
    }
}

/// The configured headers with the auth applied as Go's `http.Header` does: `Set` replaces a
/// header of the same name (any case), a cookie is appended to a configured `Cookie` header.
fn request_headers(cfg: &WebHookConfig) -> Result<http::HeaderMap, String> {
    use base64::Engine as _;
    let value = |v: &str| http::HeaderValue::from_str(v).map_err(|_| "a header value is not allowed".to_owned());
    let name = |n: &str| http::HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("`{n}` is not a header name"));
    let mut headers = http::HeaderMap::new();
    for (n, v) in &cfg.headers {
        headers.insert(name(n)?, value(v)?);
    }
    match &cfg.auth {
        Some(Auth::ApiKey {
            name: key,
            value: secret,
            in_cookie: false,
        }) => {
            headers.insert(name(key)?, value(secret)?);
        }
        Some(Auth::ApiKey {
            name: key,
            value: secret,
            in_cookie: true,
        }) => {
            let cookie = match headers.get(http::header::COOKIE).and_then(|c| c.to_str().ok()) {
                Some(existing) if !existing.is_empty() => format!("{existing}; {key}={secret}"),
                _ => format!("{key}={secret}"),
            };
            headers.insert(http::header::COOKIE, value(&cookie)?);
        }
        Some(Auth::BasicAuth { user, password }) => {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let mut v = value(&format!("Basic {token}"))?;
            v.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, v);
        }
        None => {}
    }
    Ok(headers)
}

/// A transport error without its URL (which may hold a token in the query).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = String::new();
    let mut cur: Option<&dyn std::error::Error> = e.source();
    while let Some(err) = cur {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&err.to_string());
        cur = err.source();
    }
    if text.is_empty() { e.to_string() } else { text }
}

/// What messages show of the hook URL: no credentials, query or fragment.
fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}
