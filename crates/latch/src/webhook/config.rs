//! `web_hook` hook configuration, read from the hook's `config` object as Kratos' config schema
//! (`definitions.selfServiceWebHook`) describes it: unknown keys and wrong types are refused with
//! an error that names the key.

use serde_json::{Map, Value};

/// Why a `web_hook` configuration was refused. The message names the offending key (as a path
/// below the hook's `config`) and never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("web_hook config: {0}")]
pub struct ConfigError(pub String);

/// How the request authenticates to the receiver (`config.auth`).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `type: api_key`: a header or a cookie `name` with `value`.
    ApiKey {
        name: String,
        value: String,
        in_cookie: bool,
    },
    /// `type: basic_auth`: `Authorization: Basic base64(user:password)`.
    BasicAuth { user: String, password: String },
}

/// Never shows the key value or the password.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::ApiKey { name, in_cookie, .. } => f
                .debug_struct("ApiKey")
                .field("name", name)
                .field("in", &if *in_cookie { "cookie" } else { "header" })
                .finish_non_exhaustive(),
            Auth::BasicAuth { user, .. } => f.debug_struct("BasicAuth").field("user", user).finish_non_exhaustive(),
        }
    }
}

/// One `web_hook` hook's configuration (Kratos: `request.Config` plus the hook's own keys).
/// `Debug` shows header names but not their values, and the URL without query or credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct WebHookConfig {
    /// `id`: names the hook in logs and errors only.
    pub id: Option<String>,
    /// `url` (required): an `http://` or `https://` URL.
    pub url: url::Url,
    /// `method` (required), sent as written (Kratos does not upper-case it either).
    pub method: http::Method,
    /// `body`: the Jsonnet program's URL (`file://`, `base64://`, `https://`, `http://`). A bare
    /// path (deprecated in Kratos) is read as `file://<path>`. `None` when absent or empty.
    pub body: Option<String>,
    /// `headers`, in order, plus `Content-Type: application/json` when the config sets no
    /// content type (Kratos' default).
    pub headers: Vec<(String, String)>,
    /// `auth`.
    pub auth: Option<Auth>,
    /// `response.ignore` (default false): the caller runs the hook detached from the request
    /// (Kratos: a goroutine; Latch: the caller's choice, later the durable outbox).
    pub response_ignore: bool,
    /// `response.parse` (default false): a `200` may change the identity, a `>= 400` may interrupt.
    pub response_parse: bool,
    /// `can_interrupt` (deprecated, default false): a `>= 400` may interrupt.
    pub can_interrupt: bool,
    /// `emit_analytics_event` (default true): adds the `Ory-Webhook-Request-ID` and
    /// `Ory-Webhook-Trigger-ID` headers, as Kratos does when it instruments the call.
    pub emit_analytics_event: bool,
}

impl std::fmt::Debug for WebHookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("WebHookConfig")
            .field("id", &self.id)
            .field("url", &super::shown_url(&self.url))
            .field("method", &self.method)
            .field("body", &self.body.as_deref().map(shown_body))
            .field("header_names", &header_names)
            .field("auth", &self.auth)
            .field("response_ignore", &self.response_ignore)
            .field("response_parse", &self.response_parse)
            .field("can_interrupt", &self.can_interrupt)
            .field("emit_analytics_event", &self.emit_analytics_event)
            .finish()
    }
}

/// A body URL for `Debug`: HTTP URLs without query or credentials, others cut at 40 characters.
fn shown_body(body: &str) -> String {
    match url::Url::parse(body) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => super::shown_url(&u),
        _ if body.chars().count() > 40 => format!("{}…", body.chars().take(40).collect::<String>()),
        _ => body.to_owned(),
    }
}

impl WebHookConfig {
    /// Whether the response is parsed: `response.parse` or `can_interrupt`. Kratos runs such
    /// hooks before the registration or settings change is saved, the others after.
    pub fn parses_response(&self) -> bool {
        self.response_parse || self.can_interrupt
    }

    /// The value of the `Content-Type` header that will be sent.
    pub fn content_type(&self) -> &str {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map_or("", |(_, v)| v.as_str())
    }

    /// Reads the hook's `config` object.
    pub fn from_value(config: &Value) -> Result<Self, ConfigError> {
        let obj = object(config, "config")?;
        known_keys(
            obj,
            "",
            &[
                "id",
                "url",
                "method",
                "body",
                "headers",
                "auth",
                "response",
                "can_interrupt",
                "emit_analytics_event",
            ],
        )?;
        let id = opt_string(obj, "", "id")?;
        let url_text = opt_string(obj, "", "url")?.ok_or_else(|| err("`url` is required"))?;
        let url = url::Url::parse(&url_text).map_err(|e| err(format!("`url` is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err("`url` must be an http:// or https:// URL"));
        }
        let method_text = opt_string(obj, "", "method")?.ok_or_else(|| err("`method` is required"))?;
        let method = http::Method::from_bytes(method_text.as_bytes())
            .map_err(|_| err(format!("`method` {method_text:?} is not an HTTP method")))?;
        let body = opt_string(obj, "", "body")?.filter(|b| !b.is_empty()).map(|b| {
            let lower = b.get(..9).unwrap_or(&b).to_ascii_lowercase();
            if ["http://", "https://", "file://", "base64://"]
                .iter()
                .any(|s| lower.starts_with(s))
            {
                b
            } else {
                format!("file://{b}")
            }
        });

        let mut headers = Vec::new();
        if let Some(h) = obj.get("headers") {
            let h = object(h, "headers")?;
            if !h.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
                headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
            }
            for (name, value) in h {
                let value = value
                    .as_str()
                    .ok_or_else(|| err(format!("`headers.{name}` must be a string")))?;
                http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| err(format!("`headers.{name}` is not a valid header name")))?;
                http::HeaderValue::from_str(value)
                    .map_err(|_| err(format!("`headers.{name}` has characters not allowed in a header")))?;
                headers.push((name.clone(), value.to_owned()));
            }
        } else {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }

        let auth = obj.get("auth").map(parse_auth).transpose()?;

        let (mut response_ignore, mut response_parse) = (false, false);
        if let Some(r) = obj.get("response") {
            let r = object(r, "response")?;
            known_keys(r, "response.", &["ignore", "parse"])?;
            response_ignore = opt_bool(r, "response.", "ignore")?.unwrap_or(false);
            response_parse = opt_bool(r, "response.", "parse")?.unwrap_or(false);
        }
        let can_interrupt = opt_bool(obj, "", "can_interrupt")?.unwrap_or(false);
        let emit_analytics_event = opt_bool(obj, "", "emit_analytics_event")?.unwrap_or(true);
        if response_ignore && (response_parse || can_interrupt) {
            return Err(err(
                "`response.ignore` cannot be combined with `response.parse` or `can_interrupt`: an ignored response cannot be parsed",
            ));
        }
        Ok(Self {
            id,
            url,
            method,
            body,
            headers,
            auth,
            response_ignore,
            response_parse,
            can_interrupt,
            emit_analytics_event,
        })
    }
}

fn parse_auth(v: &Value) -> Result<Auth, ConfigError> {
    let a = object(v, "auth")?;
    known_keys(a, "auth.", &["type", "config"])?;
    let kind = opt_string(a, "auth.", "type")?.ok_or_else(|| err("`auth.type` is required"))?;
    let c = object(
        a.get("config").ok_or_else(|| err("`auth.config` is required"))?,
        "auth.config",
    )?;
    let need = |key: &str| -> Result<String, ConfigError> {
        opt_string(c, "auth.config.", key)?.ok_or_else(|| err(format!("`auth.config.{key}` is required for {kind}")))
    };
    match kind.as_str() {
        "api_key" => {
            known_keys(c, "auth.config.", &["name", "value", "in"])?;
            let name = need("name")?;
            let value = need("value")?;
            let in_cookie = match need("in")?.as_str() {
                "header" => false,
                "cookie" => true,
                other => {
                    return Err(err(format!(
                        "`auth.config.in` must be \"header\" or \"cookie\", not {other:?}"
                    )));
                }
            };
            if !in_cookie {
                http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| err("`auth.config.name` is not a valid header name"))?;
            }
            if http::HeaderValue::from_str(&value).is_err() || value.contains(';') && in_cookie {
                return Err(err(
                    "`auth.config.value` has characters not allowed in a header or cookie",
                ));
            }
            Ok(Auth::ApiKey { name, value, in_cookie })
        }
        "basic_auth" => {
            known_keys(c, "auth.config.", &["user", "password"])?;
            Ok(Auth::BasicAuth {
                user: need("user")?,
                password: need("password")?,
            })
        }
        other => Err(err(format!(
            "`auth.type` must be \"api_key\" or \"basic_auth\", not {other:?}"
        ))),
    }
}

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    v.as_object().ok_or_else(|| err(format!("`{path}` must be an object")))
}

fn known_keys(obj: &Map<String, Value>, prefix: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(format!(
            "unknown key `{prefix}{k}` (allowed: {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn opt_string(obj: &Map<String, Value>, prefix: &str, key: &str) -> Result<Option<String>, ConfigError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(format!("`{prefix}{key}` must be a string"))),
    }
}

fn opt_bool(obj: &Map<String, Value>, prefix: &str, key: &str) -> Result<Option<bool>, ConfigError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(err(format!("`{prefix}{key}` must be true or false"))),
    }
}
