//! Test clients in the three styles: a server-rendered browser (cookies, forms, redirects
//! not followed), a SPA (cookies + JSON) and a native app (JSON + session token).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::TestServer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Browser,
    Spa,
    Native,
}

pub const ALL: [Kind; 3] = [Kind::Browser, Kind::Spa, Kind::Native];

/// A cookie jar that keeps the last value per name and shows attributes to tests.
#[derive(Debug, Default, Clone)]
pub struct Jar(pub Arc<Mutex<BTreeMap<String, (String, String)>>>);

impl Jar {
    pub fn absorb(&self, res: &Response) {
        for v in res.headers().get_all("set-cookie") {
            let raw = v.to_str().unwrap().to_string();
            let (pair, _) = raw.split_once(';').unwrap_or((&raw, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let mut jar = self.0.lock().unwrap();
            let expired = raw.contains("Max-Age=0") || raw.contains("Max-Age=-");
            if value.is_empty() || expired {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), (value.to_string(), raw.clone()));
            }
        }
    }

    pub fn header(&self) -> Option<String> {
        let jar = self.0.lock().unwrap();
        if jar.is_empty() {
            return None;
        }
        Some(
            jar.iter()
                .map(|(k, (v, _))| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.0.lock().unwrap().get(name).map(|(v, _)| v.clone())
    }

    pub fn raw(&self, name: &str) -> Option<String> {
        self.0.lock().unwrap().get(name).map(|(_, r)| r.clone())
    }

    pub fn remove(&self, name: &str) {
        self.0.lock().unwrap().remove(name);
    }

    pub fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }
}

/// One client of a given style against a test server.
pub struct Client<'a> {
    pub kind: Kind,
    /// Clients live no longer than the server they talk to.
    _srv: std::marker::PhantomData<&'a TestServer>,
    pub jar: Jar,
    pub token: Option<String>,
    /// Where the client reaches Latch's public API: the server itself, or a proxy in front.
    pub base: String,
    http: reqwest::Client,
}

impl<'a> Client<'a> {
    pub fn new(srv: &'a TestServer, kind: Kind) -> Client<'a> {
        Client::via(srv, kind, &srv.public)
    }

    /// A client that reaches Latch's public API at `base` (e.g. a reverse proxy's path prefix).
    pub fn via(srv: &'a TestServer, kind: Kind, base: &str) -> Client<'a> {
        Client {
            kind,
            _srv: std::marker::PhantomData,
            jar: Jar::default(),
            token: None,
            base: base.trim_end_matches('/').to_string(),
            http: srv.client(),
        }
    }

    /// A public API URL as this client reaches it.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn api(&self) -> &'static str {
        if self.kind == Kind::Native { "api" } else { "browser" }
    }

    /// A request with this client's cookies, token and Accept header.
    pub fn req(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, url);
        match self.kind {
            Kind::Browser => r = r.header("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            Kind::Spa | Kind::Native => r = r.header("accept", "application/json"),
        }
        if self.kind != Kind::Native
            && let Some(c) = self.jar.header()
        {
            r = r.header("cookie", c);
        }
        if let Some(t) = &self.token {
            r = r.header("x-session-token", t);
        }
        r
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Response {
        let res = rb.send().await.unwrap();
        self.jar.absorb(&res);
        res
    }

    /// Starts a flow (`login`, `registration`) and returns its JSON (the browser client fetches it
    /// from the flows endpoint after the redirect, as a UI server would).
    pub async fn init(&self, flow: &str, query: &str) -> Value {
        let url = self.url(&format!("/self-service/{flow}/{}{query}", self.api()));
        let res = self.send(self.req(Method::GET, &url)).await;
        match self.kind {
            Kind::Browser => {
                assert_eq!(res.status(), StatusCode::SEE_OTHER, "browser init redirects");
                let loc = res.headers()["location"].to_str().unwrap().to_string();
                let id = loc.split("flow=").nth(1).unwrap().to_string();
                self.fetch(flow, &id).await
            }
            _ => {
                let status = res.status();
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, StatusCode::OK, "{body}");
                body
            }
        }
    }

    pub async fn fetch(&self, flow: &str, id: &str) -> Value {
        let url = self.url(&format!("/self-service/{flow}/flows?id={id}"));
        let res = self
            .send(self.req(Method::GET, &url).header("accept", "application/json"))
            .await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Submits `fields` (flat, dotted names) to the flow's action with the flow's CSRF token.
    pub async fn submit(&self, flow: &Value, fields: Value) -> Response {
        let action = flow["ui"]["action"].as_str().unwrap().to_string();
        let mut fields = fields;
        if self.kind != Kind::Native {
            fields["csrf_token"] = json!(csrf_of(flow));
        }
        let rb = self.req(Method::POST, &action);
        let rb = match self.kind {
            Kind::Browser => {
                let pairs: Vec<(String, String)> = fields
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect();
                rb.form(&pairs)
            }
            _ => rb.json(&fields),
        };
        self.send(rb).await
    }

    /// After a failed submission: the flow as the client sees it (JSON body, or fetched after
    /// the browser redirect).
    pub async fn flow_after(&self, flow: &str, res: Response) -> (StatusCode, Value) {
        let status = res.status();
        if self.kind == Kind::Browser {
            assert!(status.is_redirection(), "browser gets a redirect, got {status}");
            let loc = res.headers()["location"].to_str().unwrap().to_string();
            let id = loc
                .split("flow=")
                .nth(1)
                .unwrap_or_else(|| panic!("redirect to the flow UI, got {loc}"))
                .to_string();
            return (status, self.fetch(flow, &id).await);
        }
        (status, res.json().await.unwrap())
    }

    pub async fn whoami(&self) -> Response {
        self.send(self.req(Method::GET, &self.url("/sessions/whoami"))).await
    }
}

pub fn csrf_of(flow: &Value) -> String {
    node(flow, "csrf_token")
        .map(|n| n["attributes"]["value"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

pub fn node<'v>(flow: &'v Value, name: &str) -> Option<&'v Value> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == name)
}

pub fn message_ids(flow: &Value) -> Vec<u64> {
    flow["ui"]["messages"]
        .as_array()
        .map(|m| m.iter().map(|x| x["id"].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

pub fn node_message_ids(flow: &Value, name: &str) -> Vec<u64> {
    node(flow, name)
        .map(|n| {
            n["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_u64().unwrap())
                .collect()
        })
        .unwrap_or_default()
}
