//! A request as the flow engine sees it: everything it needs, read once at the HTTP edge
//! (`http::selfservice`), so the engine and the session manager never look at headers.

use crate::session::Presented;
use crate::session::manager::ClientInfo;

/// The parts of a request the engine uses.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Path and query as received (without the proxy prefix).
    pub path_and_query: String,
    /// The raw query string.
    pub query: Option<String>,
    /// A submission sent as `GET` (fields in the query), e.g. an email link.
    pub get_submission: bool,
    /// `Accept` prefers JSON over HTML (Kratos' negotiation).
    pub accept_json: bool,
    /// JSON was negotiated or sent (`Content-Type: application/json`).
    pub json_request: bool,
    /// The `Content-Type` of the body.
    pub content_type: String,
    /// `Sec-Fetch-Mode` says a script sent it (`cors`, `same-origin`).
    pub ajax: bool,
    /// An `Origin` header was sent (only browsers send one).
    pub has_origin: bool,
    /// A non-empty `Cookie` header was sent.
    pub has_cookies: bool,
    /// Cookies other than Cloudflare's were sent (API flows refuse them).
    pub foreign_cookies: bool,
    /// The token inside a valid CSRF cookie.
    pub csrf_cookie: Option<[u8; 32]>,
    /// The session credentials presented.
    pub session: Option<Presented>,
    /// Who sent it.
    pub client: ClientInfo,
    /// What a `web_hook`'s `ctx` shows of the request.
    pub hook: HookRequest,
}

/// The request as a `web_hook` body program sees it (Kratos' `templateContext`): the method,
/// the allow-listed headers and the cookies (the rest is dropped at the HTTP edge). `Debug`
/// shows the method and header names only: cookies are credentials.
#[derive(Clone, Default)]
pub struct HookRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// Allow-listed headers ([`crate::webhook::HEADER_ALLOW_LIST`]) and `Cookie` headers.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for HookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HookRequest")
            .field("method", &self.method)
            .field("header_names", &names)
            .finish()
    }
}

impl Request {
    /// A non-empty query parameter.
    pub fn q(&self, key: &str) -> Option<String> {
        query_one(self.query.as_deref(), key).filter(|v| !v.is_empty())
    }
}

/// All values of a repeated query parameter (`?include_credential=a&include_credential=b`).
pub fn query_all(query: Option<&str>, key: &str) -> Vec<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// The first value of a query parameter.
pub fn query_one(query: Option<&str>, key: &str) -> Option<String> {
    query_all(query, key).into_iter().next()
}

/// Whether a content type names JSON (`application/json`, `…+json`, with parameters).
pub fn is_json_content_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}
