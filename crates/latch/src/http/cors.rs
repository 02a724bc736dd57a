//! CORS for the public port from `serve.public.cors.*`, for SPAs on other origins.
//! Origins may be exact (`https://app.example.com`), wildcards (`https://*.example.com`)
//! or `*` (any origin; the request's origin is echoed so credentials keep working).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Cors;

/// Whether an `Origin` header value is allowed by the configured patterns.
pub fn origin_allowed(patterns: &[String], origin: &str) -> bool {
    patterns.iter().any(|p| {
        let p = p.trim().trim_end_matches('/');
        if p == "*" {
            return true;
        }
        match p.split_once("://*.") {
            Some((scheme, suffix)) => origin
                .strip_prefix(&format!("{scheme}://"))
                .is_some_and(|host| host.ends_with(&format!(".{suffix}"))),
            None => p.eq_ignore_ascii_case(origin),
        }
    })
}

/// The CORS layer, or `None` when CORS is disabled.
pub fn layer(cfg: &Cors) -> Option<CorsLayer> {
    if !cfg.enabled {
        return None;
    }
    let patterns = cfg.allowed_origins.clone();
    let methods: Vec<Method> = cfg
        .allowed_methods
        .iter()
        .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
        .collect();
    let headers: Vec<HeaderName> = cfg
        .allowed_headers
        .iter()
        .filter_map(|h| HeaderName::from_bytes(h.trim().as_bytes()).ok())
        .collect();
    let exposed: Vec<HeaderName> = cfg
        .exposed_headers
        .iter()
        .filter_map(|h| HeaderName::from_bytes(h.trim().as_bytes()).ok())
        .collect();
    let mut layer = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| origin_allowed(&patterns, o))
        }))
        .allow_methods(methods)
        .allow_headers(headers)
        .expose_headers(exposed)
        .allow_credentials(cfg.allow_credentials);
    if cfg.max_age > 0 {
        layer = layer.max_age(Duration::from_secs(cfg.max_age));
    }
    Some(layer)
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
        assert!(!origin_allowed(&p, "http://a.example.org"));
        assert!(origin_allowed(&["*".to_string()], "https://x.y"));
    }
}
