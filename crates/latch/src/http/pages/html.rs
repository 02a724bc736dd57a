//! Small HTML helpers: escaping, attribute lists and the page frame with its security headers.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::i18n::{Locale, Phrase};
use crate::deps::Deps;

/// The stylesheet and script, embedded in the binary.
pub const CSS: &str = include_str!("assets/latch.css");
/// See [`CSS`].
pub const JS: &str = include_str!("assets/latch.js");

/// A short content hash appended to asset URLs so browsers may cache them forever.
pub static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut both = String::with_capacity(CSS.len() + JS.len());
    both.push_str(CSS);
    both.push_str(JS);
    crate::crypto::sha256_hex(both.as_bytes()).chars().take(12).collect()
});

/// Escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Attributes of one element, written in order; `None` values are boolean attributes.
#[derive(Debug, Default)]
pub struct Attrs(Vec<(String, Option<String>)>);

impl Attrs {
    /// An empty list.
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// `name="value"`.
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Attrs {
        self.0.push((name.to_string(), Some(value.into())));
        self
    }

    /// `name="value"` when `value` is `Some` and not empty.
    pub fn opt(self, name: &str, value: Option<&str>) -> Attrs {
        match value.filter(|v| !v.is_empty()) {
            Some(v) => self.set(name, v),
            None => self,
        }
    }

    /// A boolean attribute when `on`.
    pub fn flag(mut self, name: &str, on: bool) -> Attrs {
        if on {
            self.0.push((name.to_string(), None));
        }
        self
    }

    /// ` a="b" c` (with a leading space when not empty).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.0 {
            out.push(' ');
            out.push_str(name);
            if let Some(v) = value {
                out.push_str("=\"");
                out.push_str(&esc(v));
                out.push('"');
            }
        }
        out
    }
}

/// Only values made of these characters are used as CSP nonces (UUIDs, hex, base64).
pub fn valid_nonce(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))
}

/// A fresh nonce for pages whose flow carries no script node.
pub fn new_nonce() -> String {
    crate::crypto::b64(&crate::crypto::random_bytes(18))
}

/// Only links that cannot run script: http(s), relative paths, fragments.
pub fn safe_href(href: &str) -> String {
    let lower = href.trim().to_ascii_lowercase();
    let scheme_end = lower.find(':');
    let first_sep = lower.find(['/', '?', '#']);
    let has_scheme = match (scheme_end, first_sep) {
        (Some(c), Some(s)) => c < s,
        (Some(_), None) => true,
        _ => false,
    };
    if !has_scheme || lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:") {
        href.to_string()
    } else {
        "#".to_string()
    }
}

/// `Content-Security-Policy` for a page: scripts from Latch or carrying one of `nonces`,
/// styles from Latch, forms posting only to Latch and the configured return URLs.
pub fn csp(deps: &Deps, nonces: &[String]) -> String {
    let mut script = String::from("'self'");
    for n in nonces.iter().filter(|n| valid_nonce(n)) {
        script.push_str(&format!(" 'nonce-{n}'"));
    }
    let mut targets: Vec<String> = vec![deps.public_base.to_string()];
    // Chromium applies form-action to the redirects after a submission too, so the places a
    // finished flow sends the browser must be allowed.
    let c = &deps.config.selfservice;
    let mut urls: Vec<url::Url> = c.default_browser_return_url.iter().cloned().collect();
    for u in &c.allowed_return_urls {
        if let Ok(u) = url::Url::parse(u) {
            urls.push(u);
        }
    }
    for flow in ["login", "registration", "settings", "verification", "recovery", "error"] {
        urls.push(deps.config.flow_ui_url(flow));
    }
    // Social sign-in buttons post to Latch, which redirects to the provider's authorization
    // endpoint: its origin (the issuer's, `auth_url`'s, or a preset's) must be allowed too.
    let oidc = &c.methods.oidc;
    if oidc.enabled {
        for p in &oidc.config.providers {
            for u in crate::strategy::oidc::authorization_urls(p) {
                if let Ok(u) = url::Url::parse(&u) {
                    urls.push(u);
                }
            }
        }
    }
    for u in urls {
        let origin = u.origin();
        if origin.is_tuple() {
            let o = origin.ascii_serialization();
            if !targets.contains(&o) && !deps.public_base.as_str().starts_with(&format!("{o}/")) {
                targets.push(o);
            }
        }
    }
    format!(
        "default-src 'none'; script-src {script}; style-src 'self'; img-src 'self' data:; form-action 'self' {}; \
         base-uri 'none'; frame-ancestors 'none'",
        targets.join(" ")
    )
}

/// One page: the document frame around `body`, with the security headers.
pub struct Page<'a> {
    /// `<title>` and the `<h1>`.
    pub title: &'a str,
    /// The main content (already HTML).
    pub body: String,
    /// Nonces of script nodes on the page; the first also marks Latch's own script.
    pub nonces: Vec<String>,
    /// Language of the page.
    pub locale: Locale,
    /// HTTP status.
    pub status: StatusCode,
}

impl Page<'_> {
    /// Renders the document and its headers.
    pub fn respond(mut self, deps: &Deps) -> Response {
        if self.nonces.iter().all(|n| !valid_nonce(n)) {
            self.nonces.insert(0, new_nonce());
        }
        let nonce = self.nonces.iter().find(|n| valid_nonce(n)).cloned().unwrap_or_default();
        let v = ASSET_VERSION.as_str();
        let l = self.locale;
        let doc = format!(
            "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"color-scheme\" content=\"light dark\">\n\
             <title>{title} · Latch</title>\n\
             <link rel=\"stylesheet\" href=\"assets/latch.css?v={v}\">\n\
             <script src=\"assets/latch.js?v={v}\" defer nonce=\"{nonce}\"></script>\n\
             </head>\n<body>\n<a class=\"skip\" href=\"#main\">{skip}</a>\n\
             <header class=\"top\"><span class=\"brand\" aria-hidden=\"true\">◆</span> <span class=\"brand-name\">Latch</span></header>\n\
             <main id=\"main\" class=\"card\">\n<h1>{title}</h1>\n{body}</main>\n\
             <footer class=\"foot\"><p>{footer}</p></footer>\n</body>\n</html>\n",
            lang = l.tag(),
            title = esc(self.title),
            nonce = esc(&nonce),
            skip = esc(l.phrase(Phrase::SkipToContent)),
            body = self.body,
            footer = esc(l.phrase(Phrase::Footer)),
        );
        let mut res = (self.status, doc).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&csp(deps, &self.nonces)) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn hrefs_cannot_run_script() {
        assert_eq!(safe_href("javascript:alert(1)"), "#");
        assert_eq!(safe_href(" JavaScript:alert(1)"), "#");
        assert_eq!(safe_href("data:text/html,x"), "#");
        assert_eq!(safe_href("https://a.test/x"), "https://a.test/x");
        assert_eq!(safe_href("/ui/login?x=a:b"), "/ui/login?x=a:b");
        assert_eq!(safe_href("login"), "login");
    }

    #[test]
    fn nonces_are_plain_tokens() {
        assert!(valid_nonce("0b8f5c1e-1d2c-4c0e-9a7b-3f2e1d0c9b8a"));
        assert!(valid_nonce(&new_nonce()));
        assert!(!valid_nonce("x' 'unsafe-inline"));
        assert!(!valid_nonce(""));
    }
}
