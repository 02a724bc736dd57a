//! A reverse proxy started by a test in front of Latch's public listener.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The last answer that went through a proxy (status and body), for tests that need the exact
/// bytes a client received.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A reverse proxy in front of Latch's public listener: strips `prefix`, forwards method,
/// path, query, body and every header (adding `X-Forwarded-*`), and returns Latch's status,
/// headers (each `Set-Cookie`, `Location`) and body unchanged without following redirects.
pub struct Proxy {
    pub addr: SocketAddr,
    prefix: String,
    forwarded_for: Option<String>,
    listener: Option<tokio::net::TcpListener>,
    last: Arc<Mutex<Recorded>>,
}

struct Shared {
    upstream: String,
    prefix: String,
    forwarded_for: Option<String>,
    http: reqwest::Client,
    last: Arc<Mutex<Recorded>>,
}

/// Hop-by-hop headers a proxy does not forward (RFC 9110 §7.6.1), plus the framing headers the
/// HTTP stacks set themselves.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

impl Proxy {
    /// Binds the proxy's listener (so its port is known before Latch starts). `forwarded_for`
    /// is the client address to report; `None` reports the connecting peer.
    pub async fn bind(prefix: &str, forwarded_for: Option<&str>) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Proxy {
            addr: listener.local_addr().unwrap(),
            prefix: prefix.trim_end_matches('/').to_string(),
            forwarded_for: forwarded_for.map(str::to_string),
            listener: Some(listener),
            last: Arc::default(),
        }
    }

    /// The public base URL through the proxy, ending in `/`.
    pub fn base(&self) -> String {
        format!("http://{}{}/", self.addr, self.prefix)
    }

    /// Starts forwarding to `upstream` (Latch's public listener, `http://127.0.0.1:<port>`).
    pub fn start(&mut self, upstream: &str) {
        let listener = self.listener.take().expect("proxy started twice");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            prefix: self.prefix.clone(),
            forwarded_for: self.forwarded_for.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            last: self.last.clone(),
        });
        let app = axum::Router::new().fallback(forward).with_state(shared);
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .await
                .unwrap();
        });
    }

    /// The last answer the proxy returned.
    pub fn last(&self) -> Recorded {
        self.last.lock().unwrap().clone()
    }
}

/// `path?query` below the prefix, or `None` when the request is outside it.
fn strip_prefix<'a>(path_and_query: &'a str, prefix: &str) -> Option<std::borrow::Cow<'a, str>> {
    if prefix.is_empty() {
        return Some(path_and_query.into());
    }
    let rest = path_and_query.strip_prefix(prefix)?;
    match rest.chars().next() {
        None => Some("/".into()),
        Some('/') => Some(rest.into()),
        Some('?') => Some(format!("/{rest}").into()),
        Some(_) => None,
    }
}

async fn forward(State(s): State<Arc<Shared>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Some(rest) = strip_prefix(pq, &s.prefix) else {
        return (StatusCode::NOT_FOUND, "not below the proxied prefix").into_response();
    };
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut rb = s.http.request(parts.method.clone(), format!("{}{rest}", s.upstream));
    for (name, value) in &parts.headers {
        if HOP_BY_HOP.contains(name) || name == header::HOST || name == header::CONTENT_LENGTH {
            continue;
        }
        if name.as_str().starts_with("x-forwarded-") {
            continue;
        }
        rb = rb.header(name, value);
    }
    let client = s.forwarded_for.clone().unwrap_or_else(|| peer.ip().to_string());
    let xff = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {client}"),
        None => client,
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    rb = rb
        .header("x-forwarded-for", xff)
        .header("x-forwarded-host", host)
        .header("x-forwarded-proto", "http");
    let res = rb.body(body).send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    *s.last.lock().unwrap() = Recorded {
        status: status.as_u16(),
        body: bytes.to_vec(),
    };
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = status;
    for (name, value) in &headers {
        if HOP_BY_HOP.contains(name) || name == header::CONTENT_LENGTH {
            continue;
        }
        out.headers_mut().append(name, value.clone());
    }
    out
}
