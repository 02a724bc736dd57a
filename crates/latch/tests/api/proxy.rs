//! Latch behind the application's own backend: a reverse proxy started by the test serves
//! Latch's public API at `/api/auth/…` on its own port, the way a same-origin deployment does.
//! Latch is configured with `serve.public.base_url: http://127.0.0.1:<proxy>/api/auth/`, so every
//! URL it generates must point through the proxy, while it serves its routes at the root.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both;
use crate::client::{Client, Kind, message_ids, node};
use crate::flows::{finish, login, register};
use crate::harness::{Backend, TestServer};
use crate::sdk;

const PW: &str = "correct horse battery staple";
/// The address the proxy reports as its client's (`X-Forwarded-For`).
pub const CLIENT_IP: &str = "203.0.113.7";
const PREFIX: &str = "/api/auth";

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

/// A proxy at `/api/auth` and a Latch configured for it.
async fn behind_proxy(b: Backend, overrides: Value) -> (Proxy, TestServer) {
    let mut proxy = Proxy::bind(PREFIX, Some(CLIENT_IP)).await;
    let mut config = json!({
        "serve": {"public": {"base_url": proxy.base(), "trusted_proxies": ["127.0.0.1"]}},
        // Cookies must reach every proxied path. Here the UI reads flows and whoami through
        // the proxy too, so the prefix is all they need; an app whose own server-rendered pages
        // outside it forward the Cookie header to Latch keeps the default `/` instead.
        "cookies": {"path": format!("{PREFIX}/")},
    });
    crate::harness::merge(&mut config, &overrides);
    let srv = TestServer::with_config(b, config).await;
    proxy.start(&srv.public);
    (proxy, srv)
}

/// Every `Set-Cookie` a client received so far is scoped to the proxied path.
fn assert_cookie_paths(c: &Client<'_>) {
    for name in c.jar.names() {
        let raw = c.jar.raw(&name).unwrap();
        assert!(raw.contains(&format!("; Path={PREFIX}/")), "{raw}");
    }
}

/// The URLs a flow carries point through the proxy.
fn assert_flow_urls(flow: &Value, base: &str) {
    let url = flow["request_url"].as_str().unwrap();
    assert!(url.starts_with(base), "request_url {url} is not below {base}");
    let action = flow["ui"]["action"].as_str().unwrap();
    assert!(action.starts_with(base), "ui.action {action} is not below {base}");
}

async fn browser_and_spa_flows_through_a_path_prefix_proxy(b: Backend) {
    let (proxy, srv) = behind_proxy(b, json!({})).await;
    let base = proxy.base();
    for kind in [Kind::Browser, Kind::Spa] {
        let email = format!("proxied-{kind:?}@example.com").to_lowercase();

        // Flow creation: the browser's redirect and the SPA's flow both point at the proxy.
        let c = Client::via(&srv, kind, &base);
        let res = c
            .send(c.req(Method::GET, &c.url("/self-service/registration/browser")))
            .await;
        if kind == Kind::Browser {
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let loc = res.headers()["location"].to_str().unwrap();
            assert!(loc.starts_with(&format!("{base}ui/registration?flow=")), "{loc}");
        } else {
            assert_eq!(res.status(), 200);
            let flow: Value = res.json().await.unwrap();
            assert_flow_urls(&flow, &base);
        }
        assert_cookie_paths(&c);

        // Registration (profile_first) and the session it starts.
        let mut c = Client::via(&srv, kind, &base);
        let flow = c.init("registration", "").await;
        assert_flow_urls(&flow, &base);
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": email}))
            .await;
        if kind == Kind::Browser {
            let loc = res.headers()["location"].to_str().unwrap();
            assert!(loc.starts_with(&format!("{base}ui/registration?flow=")), "{loc}");
        }
        let (_, step) = c.flow_after("registration", res).await;
        assert_flow_urls(&step, &base);
        let res = c
            .submit(
                &step,
                json!({"method": "password", "traits.email": email, "password": PW}),
            )
            .await;
        let body = finish(&mut c, res).await;
        assert_cookie_paths(&c);
        assert!(c.jar.get("ory_kratos_session").is_some());
        if kind == Kind::Spa {
            assert_eq!(body["identity"]["schema_url"], format!("{base}schemas/ZGVmYXVsdA"));
            assert_eq!(body["session"]["devices"][0]["ip_address"], CLIENT_IP);
        }

        // whoami by cookie, through the proxy: the device is the forwarded client.
        let res = c.whoami().await;
        assert_eq!(res.status(), 200);
        let who: Value = res.json().await.unwrap();
        assert_eq!(who["identity"]["traits"]["email"], email);
        assert_eq!(who["devices"][0]["ip_address"], CLIENT_IP);

        // A wrong password: the browser is sent back to the flow UI behind the proxy.
        let mut other = Client::via(&srv, kind, &base);
        let res = login(&mut other, &email, "not the password").await;
        if kind == Kind::Browser {
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let loc = res.headers()["location"].to_str().unwrap();
            assert!(loc.starts_with(&format!("{base}ui/login?flow=")), "{loc}");
        }
        let (_, flow) = other.flow_after("login", res).await;
        assert_eq!(message_ids(&flow), vec![4000006]);
        assert_flow_urls(&flow, &base);
        assert_eq!(node(&flow, "identifier").unwrap()["attributes"]["value"], email);

        // A CSRF failure sends the browser to the error UI behind the proxy, and the error is
        // readable there.
        if kind == Kind::Browser {
            let flow = other.init("login", "").await;
            let res = other
                .send(other.req(Method::POST, flow["ui"]["action"].as_str().unwrap()).form(&[
                    ("method", "password"),
                    ("identifier", email.as_str()),
                    ("password", PW),
                ]))
                .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let loc = res.headers()["location"].to_str().unwrap().to_string();
            assert!(loc.starts_with(&format!("{base}ui/error?id=")), "{loc}");
            let id = loc.split("id=").nth(1).unwrap();
            let res = other
                .send(
                    other
                        .req(Method::GET, &other.url(&format!("/self-service/errors?id={id}")))
                        .header("accept", "application/json"),
                )
                .await;
            assert_eq!(res.status(), 200);
            let err: Value = res.json().await.unwrap();
            assert_eq!(err["error"]["id"], "security_csrf_violation");
        }

        // Login, then logout through the proxy.
        let mut fresh = Client::via(&srv, kind, &base);
        let res = login(&mut fresh, &email, PW).await;
        finish(&mut fresh, res).await;
        assert_cookie_paths(&fresh);
        let res = fresh
            .send(
                fresh
                    .req(Method::GET, &fresh.url("/self-service/logout/browser"))
                    .header("accept", "application/json"),
            )
            .await;
        assert_eq!(res.status(), 200);
        let out: Value = res.json().await.unwrap();
        let token = out["logout_token"].as_str().unwrap();
        assert_eq!(out["logout_url"], format!("{base}self-service/logout?token={token}"));
        let res = fresh
            .send(fresh.req(Method::GET, out["logout_url"].as_str().unwrap()))
            .await;
        if kind == Kind::Browser {
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            assert_eq!(res.headers()["location"], "http://app.test/welcome");
            // The deleting Set-Cookie carries the same path, or the browser would keep the cookie.
            let cleared: Vec<String> = res
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .filter(|v| v.starts_with("ory_kratos_session="))
                .collect();
            assert_eq!(cleared.len(), 1);
            assert!(cleared[0].contains(&format!("; Path={PREFIX}/")), "{}", cleared[0]);
        } else {
            assert_eq!(res.status(), 204);
        }
        assert!(fresh.jar.get("ory_kratos_session").is_none());
        assert_eq!(fresh.whoami().await.status(), 401);
        assert_eq!(c.whoami().await.status(), 200, "the other session lives on");
    }
}
both!(browser_and_spa_flows_through_a_path_prefix_proxy);

async fn unified_registration_through_the_proxy(b: Backend) {
    let (proxy, srv) = behind_proxy(
        b,
        json!({"selfservice": {"flows": {"registration": {"style": "unified"}}}}),
    )
    .await;
    let base = proxy.base();
    for kind in [Kind::Browser, Kind::Spa] {
        let mut c = Client::via(&srv, kind, &base);
        let flow = c.init("registration", "").await;
        assert_flow_urls(&flow, &base);
        assert!(node(&flow, "password").is_some());
        let email = format!("unified-{kind:?}@example.com").to_lowercase();
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "traits.email": email, "password": PW}),
            )
            .await;
        finish(&mut c, res).await;
        assert_cookie_paths(&c);
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["devices"][0]["ip_address"], CLIENT_IP);
    }
}
both!(unified_registration_through_the_proxy);

async fn forwarded_for_is_believed_only_from_trusted_proxies(b: Backend) {
    // The same proxy, but Latch trusts another range: the proxy's own address is recorded.
    let (proxy, srv) = behind_proxy(b, json!({"serve": {"public": {"trusted_proxies": ["10.0.0.0/8"]}}})).await;
    let mut c = Client::via(&srv, Kind::Native, &proxy.base());
    let body = register(&mut c, "untrusted@example.com").await;
    assert_eq!(body["session"]["devices"][0]["ip_address"], "127.0.0.1");

    // A direct request with forged forwarding headers from an untrusted peer is not believed.
    let http = srv.client();
    let flow: Value = http
        .get(srv.public_url("/self-service/login/api"))
        .header("x-forwarded-for", CLIENT_IP)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = flow["id"].as_str().unwrap();
    let res = http
        .post(srv.public_url(&format!("/self-service/login?flow={id}")))
        .header("x-forwarded-for", CLIENT_IP)
        .header("x-real-ip", CLIENT_IP)
        .json(&json!({"method": "password", "identifier": "untrusted@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["devices"][0]["ip_address"], "127.0.0.1");
    let who: Value = http
        .get(srv.public_url("/sessions/whoami"))
        .header("x-session-token", body["session_token"].as_str().unwrap())
        .header("x-forwarded-for", CLIENT_IP)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["devices"][0]["ip_address"], "127.0.0.1");
}
both!(forwarded_for_is_believed_only_from_trusted_proxies);

async fn native_sdk_through_the_proxy(b: Backend) {
    let (proxy, srv) = behind_proxy(b, json!({})).await;
    let base = proxy.base();
    let cfg = sdk::sdk(&base);
    let session = sdk::native_journey(&cfg, &base, &proxy, "sdk-proxied@example.com").await;
    let devices = session.devices.unwrap_or_default();
    assert_eq!(devices[0].ip_address.as_deref(), Some(CLIENT_IP));
    // Native flows set no cookies, through the proxy as well.
    let res = srv
        .client()
        .get(format!("{base}self-service/login/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("set-cookie").is_none());
}
both!(native_sdk_through_the_proxy);
