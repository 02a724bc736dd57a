//! The `ctx` a web hook's body program receives (Kratos: `templateContext` in
//! `selfservice/hook/web_hook.go`), built from plain values so that it can be stored and sent later.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Request headers that reach `ctx.request_headers`, in canonical form (Kratos:
/// `RequestHeaderAllowList`). Everything else (cookies, authorization, forwarding headers) is
/// dropped; cookies reach the program separately as `ctx.request_cookies`.
pub const HEADER_ALLOW_LIST: &[&str] = &[
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Content-Length",
    "Content-Type",
    "Origin",
    "Priority",
    "Referer",
    "Sec-Ch-Ua",
    "Sec-Ch-Ua-Mobile",
    "Sec-Ch-Ua-Platform",
    "Sec-Fetch-Dest",
    "Sec-Fetch-Mode",
    "Sec-Fetch-Site",
    "Sec-Fetch-User",
    "True-Client-Ip",
    "User-Agent",
];

/// The request that triggered the hook, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// `GET`, `POST`…
    pub method: String,
    /// The full URL the client called (Kratos: `x.RequestURL`, scheme and host included).
    pub url: String,
    /// Every request header in arrival order, names in any case; `Cookie` headers are read for
    /// `request_cookies`.
    pub headers: Vec<(String, String)>,
}

/// What the body program gets as `ctx`, serialised exactly as Kratos does: `flow`,
/// `request_headers` (name → list of values, allow-listed, canonical names), `request_method`,
/// `request_url`, `request_cookies` (name → value), and `identity` / `session` only when present.
///
/// Owned and serialisable so that a delivery can be stored in a database row and sent by a worker.
/// It may hold personal data and the user's cookies (Kratos sends them too): store it like identity
/// data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// The flow as the API shows it; `transient_payload` is inside it.
    pub flow: Value,
    pub request_headers: BTreeMap<String, Vec<String>>,
    pub request_method: String,
    pub request_url: String,
    pub request_cookies: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Value>,
}

impl Context {
    /// A context for `flow` (its API JSON) triggered by `request`; headers are filtered by
    /// [`HEADER_ALLOW_LIST`] and cookies parsed from the `Cookie` headers (a later cookie with the
    /// same name wins, nameless ones are skipped, as Go's `Request.Cookies`).
    pub fn new(flow: Value, request: &RequestInfo) -> Self {
        let mut request_headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut request_cookies = BTreeMap::new();
        for (name, value) in &request.headers {
            let canonical = canonical_header(name);
            if canonical == "Cookie" {
                for pair in value.split(';') {
                    let pair = pair.trim();
                    let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let n = n.trim();
                    if n.is_empty() {
                        continue;
                    }
                    let v = v.trim();
                    let v = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v);
                    request_cookies.insert(n.to_owned(), v.to_owned());
                }
            } else if HEADER_ALLOW_LIST.contains(&canonical.as_str()) {
                request_headers.entry(canonical).or_default().push(value.clone());
            }
        }
        Self {
            flow,
            request_headers,
            request_method: request.method.clone(),
            request_url: request.url.clone(),
            request_cookies,
            identity: None,
            session: None,
        }
    }

    /// Adds the identity (after-hooks: login, registration, settings, verification, recovery).
    pub fn with_identity(mut self, identity: Value) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Adds the session (Kratos: after-login only).
    pub fn with_session(mut self, session: Value) -> Self {
        self.session = Some(session);
        self
    }

    /// Sets `flow.transient_payload` (the client's `transient_payload`), where Kratos' flows
    /// carry it. Does nothing if the flow is not an object.
    pub fn with_transient_payload(mut self, payload: Value) -> Self {
        if let Some(flow) = self.flow.as_object_mut() {
            flow.insert("transient_payload".to_owned(), payload);
        }
        self
    }

    /// `ctx.flow.transient_payload`, if any.
    pub fn transient_payload(&self) -> Option<&Value> {
        self.flow.get("transient_payload")
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `x-forwarded-for` → `X-Forwarded-For`. Names with
/// characters outside a token are returned unchanged, as Go does.
pub fn canonical_header(name: &str) -> String {
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}
