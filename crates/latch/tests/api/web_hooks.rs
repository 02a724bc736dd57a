//! `web_hook` hooks in the flows, against a real HTTP receiver (an axum server started here on
//! 127.0.0.1 that records every request): interruptions with field messages, identity changes
//! before the identity is written, `error "cancel"`, the auth settings, timeouts and unreachable
//! receivers, `before` hooks that refuse a flow, and the `ctx` after login — for browser, SPA
//! and native clients.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus, Uri};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node_message_ids};
use crate::flows::finish;
use crate::harness::{Backend, TestServer, merge};

const PW: &str = "correct horse battery staple";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Seen>>>, Arc<tokio::sync::Notify>);

impl Receiver {
    /// Waits (at most 10 s) until `path` got `n` requests.
    async fn wait_for(&self, path: &str, n: usize) {
        let wait = async {
            loop {
                let notified = self.1.notified();
                if self.on(path).len() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("{path} got {} of {n} requests", self.on(path).len()));
    }
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
    fn on(&self, path: &str) -> Vec<Seen> {
        self.all().into_iter().filter(|s| s.path == path).collect()
    }
}

/// `/interrupt`: 400 with messages for `traits.email` and the whole form. `/parse`: 200 with
/// an identity (the submitted email, a first name, both metadata). `/hang`: never answers.
/// `/fail`: 500. Anything else: 200 `{}`.
async fn receive(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: String) -> (AxStatus, String) {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let headers = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    r.0.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        headers,
        body: body.clone(),
    });
    r.1.notify_waiters();
    match uri.path() {
        "/interrupt" => (
            AxStatus::BAD_REQUEST,
            json!({"messages": [
                {"instance_ptr": "#/traits/email", "messages": [
                    {"id": 4000042, "text": "This address is on the block list.", "type": "error", "context": {"list": "spam"}}
                ]},
                {"instance_ptr": "#/", "messages": [{"id": 4000043, "text": "Ask support.", "type": "info"}]}
            ]})
            .to_string(),
        ),
        "/parse" => {
            let email = body["identity"]["traits"]["email"].clone();
            (
                AxStatus::OK,
                json!({"identity": {
                    "traits": {"email": email, "name": {"first": "Hooked"}},
                    "metadata_public": {"plan": "pro"},
                    "metadata_admin": {"crm_id": 42}
                }})
                .to_string(),
            )
        }
        "/hang" => std::future::pending().await,
        "/fail" => (AxStatus::INTERNAL_SERVER_ERROR, "{}".into()),
        _ => (AxStatus::OK, "{}".into()),
    }
}

/// Starts the receiver on a free port: its base URL and what it records.
async fn start_receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let app = axum::Router::new().fallback(receive).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), r)
}

fn program(source: &str) -> String {
    format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(source))
}

/// A `web_hook` posting the whole `ctx` to `url`, with `extra` merged into its config.
fn web_hook(url: &str, extra: Value) -> Value {
    let mut config = json!({"url": url, "method": "POST", "body": program("function(ctx) ctx")});
    merge(&mut config, &extra);
    json!({"hook": "web_hook", "config": config})
}

/// Unified registration with `hooks` after the password method.
fn registration_hooks(hooks: Value) -> Value {
    json!({"selfservice": {"flows": {"registration": {"style": "unified", "after": {"password": {"hooks": hooks}}}}}})
}

async fn identities(srv: &TestServer) -> Vec<Value> {
    let res = srv
        .client()
        .get(srv.admin_url("/admin/identities"))
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

async fn submit_registration(c: &Client<'_>, email: &str) -> reqwest::Response {
    let flow = c.init("registration", "").await;
    c.submit(
        &flow,
        json!({"method": "password", "traits.email": email, "password": PW, "transient_payload": {"ref": "ad-7"}}),
    )
    .await
}

/// The error a refused request ends with: JSON clients get it in the answer, browsers are sent
/// to the error UI and read it from `/self-service/errors`.
async fn error_of(c: &Client<'_>, res: reqwest::Response) -> Value {
    if c.kind == Kind::Browser {
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let to = res.headers()["location"].to_str().unwrap().to_string();
        let id = to.split("id=").nth(1).unwrap_or_else(|| panic!("error UI: {to}"));
        let res = c
            .send(c.req(reqwest::Method::GET, &c.url(&format!("/self-service/errors?id={id}"))))
            .await;
        return res.json::<Value>().await.unwrap()["error"].clone();
    }
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        status.as_u16(),
        body["error"]["code"].as_u64().unwrap() as u16,
        "{body}"
    );
    body["error"].clone()
}

async fn registration_interrupted_shows_field_messages_and_writes_nothing(b: Backend) {
    let (base, rec) = start_receiver().await;
    let srv = TestServer::with_config(
        b,
        registration_hooks(json!([
            web_hook(&format!("{base}/interrupt"), json!({"response": {"parse": true}})),
            {"hook": "session"}
        ])),
    )
    .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let email = format!("blocked-{kind:?}@example.com").to_lowercase();
        let res = submit_registration(&c, &email).await;
        let (status, flow) = c.flow_after("registration", res).await;
        if kind == Kind::Browser {
            assert_eq!(status, StatusCode::FOUND, "registration re-renders with 302 (Kratos)");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{flow}");
        }
        assert_eq!(node_message_ids(&flow, "traits.email"), vec![4000042], "{flow}");
        assert_eq!(message_ids(&flow), vec![4000043], "{flow}");
        let email_node = crate::client::node(&flow, "traits.email").unwrap();
        assert_eq!(email_node["messages"][0]["type"], "error");
        assert_eq!(email_node["messages"][0]["context"]["list"], "spam");
        assert_eq!(flow["ui"]["messages"][0]["type"], "info");
        // What was typed stays on the form.
        assert_eq!(email_node["attributes"]["value"], email.as_str(), "{flow}");
        // The receiver saw the identity that was about to be written.
        let seen = rec.on("/interrupt");
        let last = &seen.last().unwrap().body;
        assert_eq!(last["identity"]["traits"]["email"], email.as_str(), "{last}");
        assert_eq!(last["flow"]["id"], flow["id"], "{last}");
        if kind != Kind::Browser {
            // JSON clients send it as an object (a form field holds a string).
            assert_eq!(last["flow"]["transient_payload"]["ref"], "ad-7", "{last}");
        }
        assert!(last.get("session").is_none(), "{last}");
        assert!(c.jar.get("ory_kratos_session").is_none());
    }
    assert!(identities(&srv).await.is_empty(), "nothing written");
    assert_eq!(rec.on("/interrupt").len(), 3);
}
both!(registration_interrupted_shows_field_messages_and_writes_nothing);

async fn registration_parse_changes_the_identity_before_it_is_written(b: Backend) {
    let (base, rec) = start_receiver().await;
    let srv = TestServer::with_config(
        b,
        registration_hooks(json!([
            // Listed first but runs after the identity is written (it does not parse).
            web_hook(&format!("{base}/after"), json!({})),
            web_hook(&format!("{base}/parse"), json!({"can_interrupt": true, "response": {"parse": true}})),
            {"hook": "session"}
        ])),
    )
    .await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        let email = format!("parsed-{kind:?}@example.com").to_lowercase();
        let res = submit_registration(&c, &email).await;
        let body = finish(&mut c, res).await;
        if kind != Kind::Browser {
            assert_eq!(body["identity"]["traits"]["name"]["first"], "Hooked", "{body}");
            assert_eq!(body["identity"]["metadata_public"]["plan"], "pro", "{body}");
        }
        let stored = identities(&srv)
            .await
            .into_iter()
            .find(|i| i["traits"]["email"] == email.as_str())
            .expect("registered");
        let id = stored["id"].as_str().unwrap();
        let full: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(full["traits"]["name"]["first"], "Hooked", "{full}");
        assert_eq!(full["metadata_public"], json!({"plan": "pro"}), "{full}");
        assert_eq!(full["metadata_admin"], json!({"crm_id": 42}), "{full}");
        // The email survived (the receiver returned it) and is still an address.
        assert_eq!(full["verifiable_addresses"][0]["value"], email.as_str(), "{full}");
        // The post-persist hook ran after the parse hook and saw the stored identity.
        let after = rec.on("/after");
        let last = &after.last().unwrap().body;
        assert_eq!(last["identity"]["id"], id, "{last}");
        assert_eq!(last["identity"]["metadata_public"]["plan"], "pro", "{last}");
        assert_eq!(last["identity"]["metadata_admin"]["crm_id"], 42, "{last}");
    }
    assert_eq!(rec.on("/parse").len(), 3);
    assert_eq!(rec.on("/after").len(), 3);
}
both!(registration_parse_changes_the_identity_before_it_is_written);

async fn after_login_ctx_auth_and_cancel(b: Backend) {
    let (base, rec) = start_receiver().await;
    let url = format!("{base}/login");
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"login": {"after": {"password": {"hooks": [
            web_hook(&url, json!({"id": "header", "auth": {"type": "api_key", "config": {"name": "X-Api-Key", "value": "k-header", "in": "header"}}})),
            web_hook(&url, json!({"id": "cookie", "headers": {"X-From": "latch"}, "auth": {"type": "api_key", "config": {"name": "hook_key", "value": "k-cookie", "in": "cookie"}}})),
            web_hook(&url, json!({"id": "basic", "auth": {"type": "basic_auth", "config": {"user": "latch", "password": "s3cret"}}})),
            web_hook(&url, json!({"id": "cancel", "body": program("function(ctx) error \"cancel\"")})),
            web_hook(&url, json!({"id": "cancel-when", "body": program("function(ctx) if ctx.identity.traits.email != 'nobody@example.com' then error \"cancel\" else ctx")})),
        ]}}}}}}),
    )
    .await;
    for kind in ALL {
        let email = format!("login-hook-{kind:?}@example.com").to_lowercase();
        srv.create_identity(json!({
            "schema_id": "default",
            "traits": {"email": email},
            "credentials": {"password": {"config": {"password": PW}}}
        }))
        .await;
        let before = rec.on("/login").len();
        let mut c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "identifier": email, "password": PW}),
            )
            .await;
        finish(&mut c, res).await;
        let seen: Vec<Seen> = rec.on("/login").into_iter().skip(before).collect();
        assert_eq!(seen.len(), 3, "cancelled hooks send nothing: {seen:#?}");
        let [header, cookie, basic] = [&seen[0], &seen[1], &seen[2]];
        assert_eq!(header.header("x-api-key"), Some("k-header"));
        assert_eq!(header.header("authorization"), None);
        assert_eq!(cookie.header("cookie"), Some("hook_key=k-cookie"));
        assert_eq!(cookie.header("x-from"), Some("latch"));
        assert_eq!(cookie.header("x-api-key"), None);
        let token = base64::engine::general_purpose::STANDARD.encode("latch:s3cret");
        assert_eq!(basic.header("authorization"), Some(format!("Basic {token}").as_str()));
        for s in &seen {
            assert_eq!(s.header("content-type"), Some("application/json"));
            assert!(s.header("ory-webhook-trigger-id").is_some());
            assert!(s.header("ory-webhook-request-id").is_some());
        }
        // The ctx: the flow, the identity and the session about to be issued, the request.
        let ctx = &header.body;
        assert_eq!(ctx["flow"]["id"], flow["id"], "{ctx}");
        assert_eq!(ctx["identity"]["traits"]["email"], email.as_str(), "{ctx}");
        assert!(
            ctx["identity"]["credentials"]["password"]["config"].is_null(),
            "no hashes: {ctx}"
        );
        assert!(ctx["session"]["id"].is_string(), "{ctx}");
        assert_eq!(ctx["session"]["identity"]["id"], ctx["identity"]["id"], "{ctx}");
        assert_eq!(
            ctx["session"]["authentication_methods"][0]["method"], "password",
            "{ctx}"
        );
        assert_eq!(ctx["request_method"], "POST", "{ctx}");
        let request_url = ctx["request_url"].as_str().unwrap();
        assert!(
            request_url.starts_with("http")
                && request_url.ends_with(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())),
            "{ctx}"
        );
        assert!(ctx["request_headers"]["Accept"].is_array(), "{ctx}");
        assert!(ctx["request_headers"].get("Cookie").is_none(), "{ctx}");
        assert!(ctx["request_headers"].get("X-Session-Token").is_none(), "{ctx}");
        if kind == Kind::Native {
            assert_eq!(ctx["request_cookies"], json!({}), "{ctx}");
        } else {
            let csrf = ctx["request_cookies"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("csrf_token"));
            assert!(csrf, "{ctx}");
        }
        // The session the hooks saw is the one issued.
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["id"], ctx["session"]["id"], "{who}");
    }
}
both!(after_login_ctx_auth_and_cancel);

async fn login_interrupted_issues_no_session(b: Backend) {
    let (base, rec) = start_receiver().await;
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"login": {"after": {"hooks": [
            web_hook(&format!("{base}/interrupt"), json!({"can_interrupt": true}))
        ]}}}}}),
    )
    .await;
    for kind in ALL {
        let email = format!("login-stop-{kind:?}@example.com").to_lowercase();
        let created = srv
            .create_identity(json!({
                "schema_id": "default",
                "traits": {"email": email},
                "credentials": {"password": {"config": {"password": PW}}}
            }))
            .await;
        let mut c = Client::new(&srv, kind);
        let res = crate::flows::login(&mut c, &email, PW).await;
        let (status, flow) = c.flow_after("login", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{flow}");
        }
        assert_eq!(message_ids(&flow), vec![4000043], "{flow}");
        assert!(c.jar.get("ory_kratos_session").is_none());
        let id = created["id"].as_str().unwrap();
        let sessions: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}/sessions")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(sessions, json!([]), "no session written");
    }
    assert_eq!(rec.on("/interrupt").len(), 3);
}
both!(login_interrupted_issues_no_session);

async fn blocking_hook_failures_are_upstream_errors_and_write_nothing(b: Backend) {
    let (base, rec) = start_receiver().await;
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for (url, code, reason_part) in [
        (format!("{base}/hang"), 504, "could not be reached"),
        (format!("http://{closed}/gone"), 500, "could not be reached"),
        (format!("{base}/fail"), 500, "responded improperly"),
    ] {
        let mut cfg =
            registration_hooks(json!([web_hook(&url, json!({"response": {"parse": true}})), {"hook": "session"}]));
        merge(
            &mut cfg,
            &json!({"latch": {"web_hooks": {"timeout": "300ms", "max_retries": 0}}}),
        );
        let srv = TestServer::with_config(b, cfg).await;
        for kind in ALL {
            let c = Client::new(&srv, kind);
            let email = format!("fail-{kind:?}@example.com").to_lowercase();
            let res = submit_registration(&c, &email).await;
            let error = error_of(&c, res).await;
            assert_eq!(error["code"], code, "{url}: {error}");
            let reason = error["reason"].as_str().unwrap();
            assert!(reason.contains(reason_part), "{url}: {error}");
            assert!(!error.to_string().contains(&url), "no URL in the error: {error}");
            assert!(c.jar.get("ory_kratos_session").is_none());
        }
        assert!(identities(&srv).await.is_empty(), "{url}: nothing written");
        srv.stop().await;
    }
    assert_eq!(rec.on("/hang").len(), 3, "one attempt each (max_retries: 0)");
    assert_eq!(rec.on("/fail").len(), 3);
}
both!(blocking_hook_failures_are_upstream_errors_and_write_nothing);

async fn before_hooks_see_the_new_flow_and_can_refuse_it(b: Backend) {
    let (base, rec) = start_receiver().await;
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {
            "login": {"before": {"hooks": [web_hook(&format!("{base}/interrupt"), json!({"response": {"parse": true}}))]}},
            "registration": {"before": {"hooks": [web_hook(&format!("{base}/before"), json!({}))]}}
        }}}),
    )
    .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        // Registration: the hook sees the flow that is then created.
        let flow = c.init("registration", "").await;
        let seen = rec.on("/before");
        let ctx = &seen.last().unwrap().body;
        assert_eq!(ctx["flow"]["id"], flow["id"], "{ctx}");
        assert_eq!(ctx["request_method"], "GET", "{ctx}");
        assert!(ctx.get("identity").is_none() && ctx.get("session").is_none(), "{ctx}");
        // Login: refused, nothing stored.
        let url = c.url(&format!("/self-service/login/{}", c.api()));
        let res = c.send(c.req(reqwest::Method::GET, &url)).await;
        let error = error_of(&c, res).await;
        assert_eq!(error["code"], 400, "{error}");
        assert!(
            error["reason"]
                .as_str()
                .unwrap()
                .contains("This address is on the block list."),
            "{error}"
        );
        let refused_id = rec.on("/interrupt").last().unwrap().body["flow"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let res = c
            .send(
                c.req(
                    reqwest::Method::GET,
                    &c.url(&format!("/self-service/login/flows?id={refused_id}")),
                )
                .header("accept", "application/json"),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "the refused flow was not stored");
    }
    assert_eq!(rec.on("/interrupt").len(), 3);
}
both!(before_hooks_see_the_new_flow_and_can_refuse_it);

async fn settings_parse_changes_the_identity_before_it_is_updated(b: Backend) {
    let (base, rec) = start_receiver().await;
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"settings": {"after": {"profile": {"hooks": [
            web_hook(&format!("{base}/parse"), json!({"response": {"parse": true}}))
        ]}}}}}}),
    )
    .await;
    for kind in ALL {
        let email = format!("settings-hook-{kind:?}@example.com").to_lowercase();
        let created = srv
            .create_identity(json!({
                "schema_id": "default",
                "traits": {"email": email},
                "credentials": {"password": {"config": {"password": PW}}}
            }))
            .await;
        let mut c = Client::new(&srv, kind);
        let res = crate::flows::login(&mut c, &email, PW).await;
        finish(&mut c, res).await;
        let flow = c.init("settings", "").await;
        let res = c
            .submit(
                &flow,
                json!({"method": "profile", "traits.email": email, "traits.name.first": "Typed"}),
            )
            .await;
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "{}",
            res.status()
        );
        let ctx = rec.on("/parse").last().unwrap().body.clone();
        assert_eq!(ctx["identity"]["traits"]["name"]["first"], "Typed", "{ctx}");
        assert!(ctx["session"]["id"].is_string(), "{ctx}");
        let id = created["id"].as_str().unwrap();
        let full: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(full["traits"]["name"]["first"], "Hooked", "{full}");
        assert_eq!(full["metadata_public"], json!({"plan": "pro"}), "{full}");
    }
}
both!(settings_parse_changes_the_identity_before_it_is_updated);

async fn ignored_hooks_never_delay_or_fail_the_flow(b: Backend) {
    let (base, rec) = start_receiver().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    // A blocking hook to `/hang` would hold every sign-up for the whole timeout.
    let mut config = registration_hooks(json!([
        web_hook(&format!("{base}/hang"), json!({"response": {"ignore": true}})),
        web_hook(&format!("http://{closed}/gone"), json!({"response": {"ignore": true}})),
        web_hook(&format!("{base}/fail"), json!({"response": {"ignore": true}})),
        {"hook": "session"}
    ]));
    // A failed delivery waits an hour before its next attempt: each receiver sees one.
    merge(
        &mut config,
        &json!({"latch": {"web_hooks": {"timeout": "2s", "poll_interval": "20ms", "initial_backoff": "1h", "max_backoff": "2h"}}}),
    );
    let srv = TestServer::with_config(b, config).await;
    let mut ids = vec![];
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        let email = format!("ignored-{kind:?}@example.com").to_lowercase();
        let started = std::time::Instant::now();
        let res = submit_registration(&c, &email).await;
        finish(&mut c, res).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "not held by the hook"
        );
        let who: Value = c.whoami().await.json().await.unwrap();
        ids.push(who["identity"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(identities(&srv).await.len(), 3);
    // Queued in the durable outbox with the identity (the same transaction): the rows are there
    // as soon as the sign-ups answered, whatever the receivers do.
    let rows = outbox(&srv).await;
    assert_eq!(rows.len(), 9, "{rows:#?}");
    for id in &ids {
        let mine: Vec<&Value> = rows.iter().filter(|d| d["identity_id"] == json!(id)).collect();
        assert_eq!(mine.len(), 3, "{rows:#?}");
        assert!(mine.iter().all(|d| d["event"] == "registration.after"), "{mine:#?}");
    }
    // Sent by the worker, with the stored identity.
    rec.wait_for("/hang", 3).await;
    for s in rec.on("/hang") {
        assert!(
            ids.contains(&s.body["identity"]["id"].as_str().unwrap().to_owned()),
            "{:?}",
            s.body
        );
    }
    rec.wait_for("/fail", 3).await;
}
both!(ignored_hooks_never_delay_or_fail_the_flow);

async fn recovery_and_verification_after_hooks(b: Backend) {
    let (base, rec) = start_receiver().await;
    let srv = TestServer::with_config(
        b,
        json!({
            // Mail stays in the outbox (the relay is unreachable); codes come from the admin API.
            "courier": {"smtp": {"connection_uri": "smtp://127.0.0.1:1/?disable_starttls=true"}},
            "selfservice": {"flows": {
                "recovery": {"enabled": true, "use": "code", "after": {"hooks": [
                    web_hook(&format!("{base}/interrupt"), json!({"can_interrupt": true}))
                ]}},
                "verification": {"enabled": true, "use": "code", "after": {"hooks": [
                    web_hook(&format!("{base}/verified"), json!({}))
                ]}}
            }}
        }),
    )
    .await;
    for kind in ALL {
        // Recovery: the code is right, the hook refuses, no session is issued.
        let email = format!("recover-hook-{kind:?}@example.com").to_lowercase();
        let created = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
            .await;
        let c = Client::new(&srv, kind);
        let flow = c.init("recovery", "").await;
        let res = c.submit(&flow, json!({"method": "code", "email": email})).await;
        let (_, flow) = c.flow_after("recovery", res).await;
        let code = crate::code::code_from_admin_api(&srv, &email).await;
        let res = c.submit(&flow, json!({"method": "code", "code": code})).await;
        let (status, flow) = c.flow_after("recovery", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "recovery forms come back with 200: {flow}");
        }
        assert_eq!(
            crate::client::node_message_ids(&flow, "traits.email"),
            vec![4000042],
            "{flow}"
        );
        assert!(message_ids(&flow).contains(&4000043), "{flow}");
        let ctx = rec.on("/interrupt").last().unwrap().body.clone();
        assert_eq!(ctx["identity"]["id"], created["id"], "{ctx}");
        assert!(ctx.get("session").is_none(), "{ctx}");
        let id = created["id"].as_str().unwrap();
        let sessions: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}/sessions")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(sessions, json!([]), "no session written");
        assert!(c.jar.get("ory_kratos_session").is_none());

        // Verification: the hook sees the identity with the address verified.
        let email = format!("verify-hook-{kind:?}@example.com").to_lowercase();
        let created = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
            .await;
        let flow = c.init("verification", "").await;
        let res = c.submit(&flow, json!({"method": "code", "email": email})).await;
        let (_, flow) = c.flow_after("verification", res).await;
        let code = crate::code::code_from_admin_api(&srv, &email).await;
        let res = c.submit(&flow, json!({"method": "code", "code": code})).await;
        let (_, done) = c.flow_after("verification", res).await;
        assert_eq!(done["state"], "passed_challenge", "{done}");
        let ctx = rec.on("/verified").last().unwrap().body.clone();
        assert_eq!(ctx["identity"]["id"], created["id"], "{ctx}");
        assert_eq!(ctx["identity"]["verifiable_addresses"][0]["verified"], true, "{ctx}");
        assert_eq!(ctx["flow"]["id"], done["id"], "{ctx}");
    }
    assert_eq!(rec.on("/interrupt").len(), 3);
    assert_eq!(rec.on("/verified").len(), 3);
}
both!(recovery_and_verification_after_hooks);

/// Every row of the web hook outbox (`GET /admin/webhooks/deliveries`).
async fn outbox(srv: &TestServer) -> Vec<Value> {
    let res = srv
        .client()
        .get(srv.admin_url("/admin/webhooks/deliveries?page_size=1000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

/// Waits (at most 10 s) until the outbox row with the trigger id of `seen` is delivered.
async fn delivered(srv: &TestServer, seen: &Seen) -> Value {
    let id = seen
        .header("ory-webhook-trigger-id")
        .expect("the trigger id is sent")
        .to_owned();
    // The worker records the outcome after the receiver answered: wait on its attempt counter.
    let mut attempts = srv.app.store.hooks.attempts.subscribe();
    let wait = async {
        loop {
            let row = outbox(srv).await.into_iter().find(|d| d["id"] == json!(id));
            if let Some(row) = row.filter(|d| d["status"] == "delivered") {
                return row;
            }
            let _ = attempts.changed().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("delivery {id} never marked delivered"))
}

async fn ignored_hooks_after_settings_verification_and_recovery_go_through_the_outbox(b: Backend) {
    let (base, rec) = start_receiver().await;
    let srv = TestServer::with_config(
        b,
        json!({
            "courier": {"smtp": {"connection_uri": "smtp://127.0.0.1:1/?disable_starttls=true"}},
            "selfservice": {"flows": {
                "settings": {"after": {"profile": {"hooks": [
                    web_hook(&format!("{base}/settings"), json!({"response": {"ignore": true}}))
                ]}}},
                "verification": {"enabled": true, "use": "code", "after": {"hooks": [
                    web_hook(&format!("{base}/verified"), json!({"response": {"ignore": true}}))
                ]}},
                "recovery": {"enabled": true, "use": "code", "after": {"hooks": [
                    web_hook(&format!("{base}/recovered"), json!({"response": {"ignore": true}}))
                ]}}
            }},
            "latch": {"web_hooks": {"poll_interval": "20ms"}}
        }),
    )
    .await;
    for (n, kind) in ALL.into_iter().enumerate() {
        let email = format!("outbox-settings-{kind:?}@example.com").to_lowercase();
        let created = srv
            .create_identity(json!({
                "schema_id": "default",
                "traits": {"email": email},
                "credentials": {"password": {"config": {"password": PW}}}
            }))
            .await;
        let id = created["id"].clone();
        let mut c = Client::new(&srv, kind);
        let res = crate::flows::login(&mut c, &email, PW).await;
        finish(&mut c, res).await;

        // Settings: the hook gets the identity as saved, from the outbox.
        let flow = c.init("settings", "").await;
        let res = c
            .submit(
                &flow,
                json!({"method": "profile", "traits.email": email, "traits.name.first": "Saved"}),
            )
            .await;
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "{}",
            res.status()
        );
        rec.wait_for("/settings", n + 1).await;
        let seen = rec.on("/settings")[n].clone();
        assert_eq!(seen.body["identity"]["id"], id, "{:?}", seen.body);
        assert_eq!(
            seen.body["identity"]["traits"]["name"]["first"], "Saved",
            "{:?}",
            seen.body
        );
        assert!(seen.body["session"]["id"].is_string(), "{:?}", seen.body);
        let row = delivered(&srv, &seen).await;
        assert_eq!(row["event"], "settings.after", "{row}");
        assert_eq!(row["identity_id"], id, "{row}");
        assert_eq!(row["attempts"], 1, "{row}");

        // Verification: queued right after the address is verified.
        let flow = c.init("verification", "").await;
        let res = c.submit(&flow, json!({"method": "code", "email": email})).await;
        let (_, flow) = c.flow_after("verification", res).await;
        let code = crate::code::code_from_admin_api(&srv, &email).await;
        let res = c.submit(&flow, json!({"method": "code", "code": code})).await;
        let (_, done) = c.flow_after("verification", res).await;
        assert_eq!(done["state"], "passed_challenge", "{done}");
        rec.wait_for("/verified", n + 1).await;
        let seen = rec.on("/verified")[n].clone();
        assert_eq!(seen.body["identity"]["id"], id, "{:?}", seen.body);
        assert_eq!(
            seen.body["identity"]["verifiable_addresses"][0]["verified"], true,
            "{:?}",
            seen.body
        );
        let row = delivered(&srv, &seen).await;
        assert_eq!(row["event"], "verification.after", "{row}");
        assert_eq!(row["identity_id"], id, "{row}");

        // Recovery (a fresh client): queued with the session it issues.
        let c = Client::new(&srv, kind);
        let flow = c.init("recovery", "").await;
        let res = c.submit(&flow, json!({"method": "code", "email": email})).await;
        let (_, flow) = c.flow_after("recovery", res).await;
        let code = crate::code::code_from_admin_api(&srv, &email).await;
        let res = c.submit(&flow, json!({"method": "code", "code": code})).await;
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "{}",
            res.status()
        );
        rec.wait_for("/recovered", n + 1).await;
        let seen = rec.on("/recovered")[n].clone();
        assert_eq!(seen.body["identity"]["id"], id, "{:?}", seen.body);
        let row = delivered(&srv, &seen).await;
        assert_eq!(row["event"], "recovery.after", "{row}");
        assert_eq!(row["identity_id"], id, "{row}");
    }
    assert_eq!(rec.on("/settings").len(), 3);
    assert_eq!(rec.on("/verified").len(), 3);
    assert_eq!(rec.on("/recovered").len(), 3);
}
both!(ignored_hooks_after_settings_verification_and_recovery_go_through_the_outbox);
