//! CORS for the public port from `serve.public.cors.*` (see `docs/adr/0007-cors-origins.md`).
//!
//! With `enabled: true`, the origins Latch derives from its own configuration (the public base
//! URL, every `selfservice.flows.*.ui_url`, `selfservice.default_browser_return_url` and
//! `selfservice.allowed_return_urls`) are answered with their own origin and credentials;
//! `allowed_origins` adds exact origins and one-wildcard patterns (`https://*.example.com`) to
//! them. A `*` entry is answered with a literal `Access-Control-Allow-Origin: *` and never with
//! credentials, and the `null` origin is never allowed. Kratos (rs/cors) echoes any origin with
//! credentials for `*`, which lets every site read sessions; Latch does not.
//!
//! Whatever `enabled` says, static public assets (`/.well-known/ory/webauthn.js`) are served
//! with `Access-Control-Allow-Origin: *`, so UIs on other origins can load them with
//! `crossorigin`.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::{Config, Cors};

/// Paths that are public static assets: `*` for every origin, never credentials.
const PUBLIC_ASSETS: &[&str] = &["/.well-known/ory/webauthn.js"];

/// How one request's origin is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Echo the origin, with credentials when `allow_credentials`.
    Credentialed,
    /// A literal `*`, never with credentials.
    Any,
    /// No CORS headers.
    Denied,
}

/// The CORS rules of the public port, computed once from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    enabled: bool,
    /// Derived origins plus explicit entries other than `*`.
    patterns: Vec<String>,
    any: bool,
    allow_credentials: bool,
    methods: String,
    headers: String,
    exposed: String,
    max_age: u64,
    options_passthrough: bool,
    debug: bool,
}

/// `scheme://host[:port]` of a URL or URL pattern, lower-case; `None` when it has none.
/// Keeps a `*.` wildcard host (as allowed in `allowed_return_urls`).
pub fn origin_of(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() || authority.is_empty() {
        return None;
    }
    if authority.starts_with("*.") {
        return Some(format!("{scheme}://{authority}").to_ascii_lowercase());
    }
    let url = url::Url::parse(&format!("{scheme}://{authority}/")).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The origins Latch trusts from its own configuration.
pub fn derived_origins(config: &Config) -> Vec<String> {
    let ss = &config.selfservice;
    let mut urls: Vec<String> = vec![config.public_base_url().to_string()];
    for flow in ["login", "registration", "settings", "verification", "recovery", "error"] {
        urls.push(config.flow_ui_url(flow).to_string());
    }
    if let Some(u) = &ss.default_browser_return_url {
        urls.push(u.to_string());
    }
    urls.extend(ss.allowed_return_urls.iter().cloned());
    let mut out: Vec<String> = Vec::new();
    for o in urls.iter().filter_map(|u| origin_of(u)) {
        if !out.contains(&o) {
            out.push(o);
        }
    }
    out
}

/// Whether an `Origin` header value matches one of the patterns (exact origins or
/// `scheme://*.suffix`). `null` never matches.
pub fn origin_allowed(patterns: &[String], origin: &str) -> bool {
    let origin = origin.trim();
    if origin.eq_ignore_ascii_case("null") || origin.is_empty() {
        return false;
    }
    patterns.iter().any(|p| {
        let p = p.trim().trim_end_matches('/');
        match p.split_once("://*.") {
            Some((scheme, suffix)) => origin.strip_prefix(&format!("{scheme}://")).is_some_and(|host| {
                host.len() > suffix.len() + 1
                    && host
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", suffix.to_ascii_lowercase()))
            }),
            None => !p.eq_ignore_ascii_case("null") && p.eq_ignore_ascii_case(origin),
        }
    })
}

impl Policy {
    /// The policy for a configuration (whose base URLs are already bound).
    pub fn new(config: &Config) -> Policy {
        let cfg: &Cors = &config.serve.public.cors;
        let mut patterns = derived_origins(config);
        let mut any = false;
        for entry in &cfg.allowed_origins {
            let e = entry.trim();
            if e == "*" {
                any = true;
            } else if !e.is_empty() && !e.eq_ignore_ascii_case("null") && !patterns.iter().any(|p| p == e) {
                patterns.push(e.to_string());
            }
        }
        let join = |items: &[String]| {
            items
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Policy {
            enabled: cfg.enabled,
            patterns,
            any,
            allow_credentials: cfg.allow_credentials,
            methods: join(&cfg.allowed_methods),
            headers: join(&cfg.allowed_headers),
            exposed: join(&cfg.exposed_headers),
            max_age: cfg.max_age,
            options_passthrough: cfg.options_passthrough,
            debug: cfg.debug,
        }
    }

    /// How a request from `origin` to `path` is answered.
    pub fn decide(&self, origin: &str, path: &str) -> Decision {
        let public_asset = PUBLIC_ASSETS.contains(&path);
        if self.enabled && origin_allowed(&self.patterns, origin) {
            Decision::Credentialed
        } else if (self.enabled && self.any) || public_asset {
            Decision::Any
        } else {
            Decision::Denied
        }
    }

    fn apply(&self, decision: Decision, origin: &HeaderValue, h: &mut HeaderMap) {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        match decision {
            Decision::Denied => return,
            Decision::Any => {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                h.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
            }
            Decision::Credentialed => {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                if self.allow_credentials {
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        HeaderValue::from_static("true"),
                    );
                }
            }
        }
        if !self.exposed.is_empty()
            && let Ok(v) = HeaderValue::from_str(&self.exposed)
        {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }

    fn apply_preflight(&self, decision: Decision, origin: &HeaderValue, h: &mut HeaderMap) {
        self.apply(decision, origin, h);
        h.append(
            header::VARY,
            HeaderValue::from_static("Access-Control-Request-Method, Access-Control-Request-Headers"),
        );
        if decision == Decision::Denied {
            return;
        }
        h.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
        if let Ok(v) = HeaderValue::from_str(&self.methods) {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.headers) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if self.max_age > 0 {
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(self.max_age));
        }
    }
}

/// Answers preflights and adds CORS headers to the responses `run` makes (the public port's
/// middleware, see [`super::around_request`]).
pub async fn around<F, Fut>(policy: &Policy, req: Request, run: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return run(req).await;
    };
    let path = req.uri().path().to_string();
    let decision = policy.decide(origin.to_str().unwrap_or("null"), &path);
    if policy.debug {
        tracing::debug!(?decision, path = %path, "CORS decision");
    }
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        && policy.enabled;
    if preflight && !policy.options_passthrough {
        let mut res = StatusCode::NO_CONTENT.into_response();
        policy.apply_preflight(decision, &origin, res.headers_mut());
        return res;
    }
    let mut res = run(req).await;
    if preflight {
        policy.apply_preflight(decision, &origin, res.headers_mut());
    } else {
        policy.apply(decision, &origin, res.headers_mut());
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns() {
        let p = vec![
            "https://app.example.com".to_string(),
            "https://*.example.org".to_string(),
        ];
        assert!(origin_allowed(&p, "https://app.example.com"));
        assert!(!origin_allowed(&p, "https://evil.com"));
        assert!(origin_allowed(&p, "https://a.example.org"));
        assert!(!origin_allowed(&p, "https://evilexample.org"));
        assert!(!origin_allowed(&p, "http://a.example.org"));
        assert!(!origin_allowed(&p, "null"));
        assert!(!origin_allowed(&["null".to_string()], "null"));
        assert!(!origin_allowed(&["*".to_string()], "https://x.y"));
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin_of("http://127.0.0.1:4455/login?x=1").as_deref(),
            Some("http://127.0.0.1:4455")
        );
        assert_eq!(
            origin_of("https://App.Example.com:443/").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("https://*.example.com/cb").as_deref(),
            Some("https://*.example.com")
        );
        assert_eq!(origin_of("/relative"), None);
    }
}
