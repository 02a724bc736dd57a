//! The durable web hook outbox (`response.ignore: true`): deliveries written in the
//! registration's or login's transaction, sent by the worker of every node to a real HTTP
//! receiver (an axum server on 127.0.0.1 started here), retried with backoff across restarts,
//! dead-lettered after the budget, never sent twice by two nodes; and the admin API
//! (`/admin/webhooks/deliveries`). Backoff waits are crossed by moving the servers' clocks;
//! every wait polls observable state with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode as AxStatus};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::both;
use crate::client::{ALL, Client, Kind};
use crate::flows::{finish, login, register};
use crate::harness::{Backend, TestServer};

const WAIT: Duration = Duration::from_secs(30);
const KEY: &str = "hook-key-1";
const PW: &str = "correct horse battery staple";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

impl Call {
    fn trigger(&self) -> String {
        self.headers.get("ory-webhook-trigger-id").cloned().unwrap_or_default()
    }
}

#[derive(Clone)]
struct Shared {
    calls: Arc<Mutex<Vec<Call>>>,
    count: watch::Sender<usize>,
    status: Arc<AtomicU16>,
}

/// A receiver on a fixed local port that is down until [`Receiver::up`].
struct Receiver {
    addr: SocketAddr,
    shared: Shared,
}

async fn record(State(s): State<Shared>, method: Method, headers: HeaderMap, body: String) -> AxStatus {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    s.calls.lock().unwrap().push(Call {
        method: method.to_string(),
        headers,
        body,
    });
    s.count.send_modify(|n| *n += 1);
    AxStatus::from_u16(s.status.load(Ordering::SeqCst)).unwrap()
}

impl Receiver {
    /// Picks a free port and leaves it closed: connections are refused until `up`.
    async fn down() -> Receiver {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        Receiver {
            addr,
            shared: Shared {
                calls: Arc::default(),
                count: watch::Sender::new(0),
                status: Arc::new(AtomicU16::new(200)),
            },
        }
    }

    async fn up(&self) {
        let app = axum::Router::new().fallback(record).with_state(self.shared.clone());
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }

    /// A receiver that is up, answering `status`.
    async fn answering(status: u16) -> Receiver {
        let r = Receiver::down().await;
        r.answer(status);
        r.up().await;
        r
    }

    fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("http://{}/events?src=latch", self.addr)
    }

    fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) {
        let mut rx = self.shared.count.subscribe();
        tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("the receiver never got {n} calls: {:#?}", self.calls()))
            .unwrap();
    }
}

fn body_program() -> String {
    let program = r#"function(ctx) {
        identity_id: ctx.identity.id,
        email: ctx.identity.traits.email,
        flow_id: ctx.flow.id,
        session_id: if std.objectHas(ctx, "session") then ctx.session.id else null,
        method: ctx.request_method,
      }"#;
    format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(program))
}

fn hook(url: &str, id: &str, key: &str) -> Value {
    json!({"hook": "web_hook", "config": {
        "id": id,
        "url": url,
        "method": "POST",
        "body": body_program(),
        "auth": {"type": "api_key", "config": {"name": "X-Hook-Key", "value": key, "in": "header"}},
        "response": {"ignore": true}
    }})
}

/// Hooks after registration (with the session) and after login; `webhooks` goes to
/// `latch.webhooks`.
fn config(url: &str, key: &str, webhooks: Value) -> Value {
    json!({
        "selfservice": {"flows": {
            "registration": {"after": {"password": {"hooks": [{"hook": "session"}, hook(url, "on-signup", key)]}}},
            "login": {"after": {"password": {"hooks": [hook(url, "on-login", key)]}}}
        }},
        "latch": {"web_hooks": webhooks}
    })
}

/// Quick polling, and a first retry an hour away: while the receiver is down every delivery
/// fails once and then waits until a test moves the clock.
fn hour_backoff() -> Value {
    json!({"poll_interval": "20ms", "initial_backoff": "1h", "max_backoff": "2h", "max_attempts": 100, "timeout": "5s"})
}

async fn admin_get(srv: &TestServer, path: &str) -> (u16, Value) {
    let res = srv.client().get(srv.admin_url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn deliveries(srv: &TestServer, query: &str) -> Vec<Value> {
    let (status, body) = admin_get(srv, &format!("/admin/webhooks/deliveries?page_size=1000{query}")).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

/// Waits (on the node's attempt counter) until `n` deliveries have `status`.
async fn wait_deliveries(srv: &TestServer, status: &str, n: usize) -> Vec<Value> {
    let mut attempts = srv.app.store.hooks.attempts.subscribe();
    let query = format!("&status={status}");
    tokio::time::timeout(WAIT, async {
        loop {
            let list = deliveries(srv, &query).await;
            if list.len() >= n {
                return list;
            }
            // Also polls: a delivery may change on another node.
            let _ = tokio::time::timeout(Duration::from_millis(100), attempts.changed()).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never {n} deliveries {status}"))
}

async fn wait_node_attempts(srv: &TestServer, n: u64) {
    let mut attempts = srv.app.store.hooks.attempts.subscribe();
    tokio::time::timeout(WAIT, attempts.wait_for(|a| *a >= n))
        .await
        .unwrap_or_else(|_| panic!("the worker never made {n} attempts"))
        .unwrap();
}

async fn register_native(srv: &TestServer, email: &str) {
    let mut c = Client::new(srv, Kind::Native);
    register(&mut c, email).await;
}

async fn registration_hooks_are_delivered_once_with_auth_identity_and_trigger_id(b: Backend) {
    let rx = Receiver::answering(200).await;
    let srv = TestServer::with_config(b, config(&rx.url(), KEY, json!({"poll_interval": "20ms"}))).await;
    let mut ids = BTreeMap::new();
    for kind in ALL {
        let email = format!("hook-{kind:?}@example.com").to_lowercase();
        let mut c = Client::new(&srv, kind);
        register(&mut c, &email).await;
        let who: Value = c.whoami().await.json().await.unwrap();
        ids.insert(email, who["identity"]["id"].as_str().unwrap().to_owned());
    }
    rx.wait_for(3).await;
    let list = wait_deliveries(&srv, "delivered", 3).await;
    let calls = rx.calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    for call in &calls {
        assert_eq!(call.method, "POST");
        assert_eq!(call.headers["x-hook-key"], KEY, "auth taken from the configuration");
        assert_eq!(call.headers["content-type"], "application/json");
        let email = call.body["email"].as_str().unwrap();
        assert_eq!(call.body["identity_id"], ids[email], "{call:?}");
        assert!(call.body["flow_id"].is_string());
        assert_eq!(
            call.body["session_id"],
            Value::Null,
            "registration hooks get no session"
        );
        assert_eq!(call.body["method"], "POST");
        let d = list
            .iter()
            .find(|d| d["id"] == call.trigger())
            .expect("trigger id is the delivery id");
        assert_eq!(d["event"], "registration.after");
        assert_eq!(d["hook_id"], "on-signup");
        assert_eq!(d["identity_id"], ids[email]);
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["last_status"], 200);
        assert_eq!(d["uses_auth"], true);
        assert!(d["delivered_at"].is_string());
        assert_eq!(d["url"], format!("http://{}/events", rx.addr), "no query shown");
        let shown = d.to_string();
        assert!(!shown.contains(KEY) && !shown.contains(email), "{shown}");
    }
    let triggers: BTreeSet<String> = calls.iter().map(Call::trigger).collect();
    assert_eq!(triggers.len(), 3);

    // A refused registration (the address is taken) queues nothing: the delivery shares the
    // identity's transaction.
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("registration", "").await;
    let email = "hook-native@example.com";
    let res = c
        .submit(&flow, json!({"method": "profile", "traits.email": email}))
        .await;
    let (_, flow) = c.flow_after("registration", res).await;
    let res = c
        .submit(
            &flow,
            json!({"method": "password", "traits.email": email, "password": PW}),
        )
        .await;
    let (status, flow) = c.flow_after("registration", res).await;
    assert_eq!(status, 400, "{flow}");
    assert_eq!(crate::client::message_ids(&flow), vec![4000007], "{flow}");
    assert_eq!(deliveries(&srv, "").await.len(), 3);

    // The key is not in the database: only its fingerprint.
    let all = latch::store::webhook::DeliveryFilter {
        limit: 100,
        ..Default::default()
    };
    let row = format!("{:?}", srv.app.store.list_web_hook_deliveries(&all).await.unwrap());
    assert!(!row.contains(KEY), "{row}");
    assert!(
        row.contains("hook-browser@example.com"),
        "the body is kept for now: {row}"
    );

    // Cleanup blanks delivered bodies (personal data) after the mail-body retention.
    let opts = latch::store::cleanup::CleanupOptions {
        keep_last: Duration::from_secs(6 * 3600),
        batch_size: 2,
        sleep_between_batches: Duration::ZERO,
        mail_body_retention: Duration::from_secs(24 * 3600),
    };
    let soon = srv.app.clock.now() + Duration::from_secs(3600);
    let report = srv.app.store.cleanup(soon, &opts).await.unwrap();
    assert_eq!(report.web_hook_bodies, 0, "not yet");
    let later = srv.app.clock.now() + Duration::from_secs(25 * 3600);
    let report = srv.app.store.cleanup(later, &opts).await.unwrap();
    assert_eq!(report.web_hook_bodies, 3);
    let rows = srv.app.store.list_web_hook_deliveries(&all).await.unwrap();
    assert!(
        rows.iter().all(|d| d.body.is_none() && d.headers.is_empty()),
        "{rows:?}"
    );
    assert_eq!(deliveries(&srv, "&status=delivered").await.len(), 3, "the rows stay");
    srv.stop().await;
}
both!(registration_hooks_are_delivered_once_with_auth_identity_and_trigger_id);

async fn login_hooks_carry_the_session_for_every_client(b: Backend) {
    let rx = Receiver::answering(204).await;
    let srv = TestServer::with_config(b, config(&rx.url(), KEY, json!({"poll_interval": "20ms"}))).await;
    for kind in ALL {
        let email = format!("login-{kind:?}@example.com").to_lowercase();
        register_native(&srv, &email).await;
    }
    rx.wait_for(3).await;
    for kind in ALL {
        let email = format!("login-{kind:?}@example.com").to_lowercase();
        let mut c = Client::new(&srv, kind);
        let n = rx.calls().len() + 1;
        let res = login(&mut c, &email, PW).await;
        finish(&mut c, res).await;
        let who: Value = c.whoami().await.json().await.unwrap();
        let session_id = who["id"].as_str().unwrap().to_owned();
        rx.wait_for(n).await;
        let call = rx.calls().pop().unwrap();
        assert_eq!(call.body["email"], email);
        assert_eq!(call.body["session_id"], session_id, "{kind:?}: the session issued");
    }
    let logins = deliveries(&srv, "").await;
    let logins: Vec<&Value> = logins.iter().filter(|d| d["event"] == "login.after").collect();
    assert_eq!(logins.len(), 3);
    wait_deliveries(&srv, "delivered", 6).await;

    // A refused login (wrong password) queues nothing.
    let mut c = Client::new(&srv, Kind::Native);
    let res = login(&mut c, "login-native@example.com", "wrong password!").await;
    assert_eq!(res.status(), 400);
    assert_eq!(deliveries(&srv, "").await.len(), 6);
    srv.stop().await;
}
both!(login_hooks_carry_the_session_for_every_client);

async fn deliveries_survive_a_receiver_outage_and_a_restart_exactly_once(b: Backend) {
    let rx = Receiver::down().await;
    let mut srv = TestServer::with_config(b, config(&rx.url(), KEY, hour_backoff())).await;
    let mut emails = vec![];
    for i in 0..3 {
        let email = format!("outage-{i}@example.com");
        register_native(&srv, &email).await;
        emails.push(email);
    }
    // Each delivery failed once (connection refused) and waits an hour.
    wait_node_attempts(&srv, 3).await;
    let queued = wait_deliveries(&srv, "queued", 3).await;
    for d in &queued {
        assert_eq!(d["attempts"], 1, "{d}");
        assert!(
            d["last_error"].as_str().unwrap().contains("could not be reached"),
            "{d}"
        );
        assert!(
            !d["last_error"].as_str().unwrap().contains("src=latch"),
            "no query in errors: {d}"
        );
    }

    // Restart with a rotated key: queued deliveries are sent with the key configured now.
    let rotated = "hook-key-2";
    srv = srv.restart(config(&rx.url(), rotated, hour_backoff())).await;
    for i in 3..5 {
        let email = format!("outage-{i}@example.com");
        register_native(&srv, &email).await;
        emails.push(email);
    }
    wait_node_attempts(&srv, 2).await;
    assert_eq!(wait_deliveries(&srv, "queued", 5).await.len(), 5);
    assert_eq!(rx.calls().len(), 0);

    // The receiver comes back; the retries fall due.
    rx.up().await;
    srv.clock.advance(Duration::from_secs(3 * 3600));
    srv.app.store.wake_web_hooks();
    let delivered = wait_deliveries(&srv, "delivered", 5).await;
    rx.wait_for(5).await;
    let calls = rx.calls();
    assert_eq!(calls.len(), 5, "each delivered exactly once: {calls:#?}");
    let got: BTreeSet<String> = calls
        .iter()
        .map(|c| c.body["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, emails.iter().cloned().collect());
    let triggers: BTreeSet<String> = calls.iter().map(Call::trigger).collect();
    let ids: BTreeSet<String> = delivered.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(triggers, ids);
    for c in &calls {
        assert_eq!(c.headers["x-hook-key"], rotated);
    }
    for d in &delivered {
        assert_eq!(d["attempts"], 2, "{d}");
        assert_eq!(d["last_error"], Value::Null);
    }
    srv.stop().await;
}
both!(deliveries_survive_a_receiver_outage_and_a_restart_exactly_once);

async fn two_nodes_never_deliver_one_row_twice(b: Backend) {
    let rx = Receiver::down().await;
    let cfg = |concurrency: u32| {
        let mut w = hour_backoff();
        w["concurrency"] = json!(concurrency);
        config(&rx.url(), KEY, w)
    };
    let a = TestServer::with_config(b, cfg(3)).await;
    let bnode = TestServer::sharing_db(&a, cfg(2)).await;
    let n = 12;
    for i in 0..n {
        let node = if i % 2 == 0 { &a } else { &bnode };
        register_native(node, &format!("pair-{i}@example.com")).await;
    }
    // Each delivery fails once (on either node) and waits an hour.
    let total = || *a.app.store.hooks.attempts.borrow() + *bnode.app.store.hooks.attempts.borrow();
    let (mut wa, mut wb) = (
        a.app.store.hooks.attempts.subscribe(),
        bnode.app.store.hooks.attempts.subscribe(),
    );
    tokio::time::timeout(WAIT, async {
        while total() < n as u64 {
            tokio::select! {
                _ = wa.changed() => {},
                _ = wb.changed() => {},
            }
        }
    })
    .await
    .expect("one failed attempt per delivery");
    let before = total();
    assert_eq!(before, n as u64, "one failed attempt each");
    let queued = deliveries(&a, "&status=queued").await;
    assert_eq!(queued.len(), n);
    assert!(queued.iter().all(|d| d["attempts"] == 1), "{queued:?}");

    rx.up().await;
    for node in [&a, &bnode] {
        node.clock.advance(Duration::from_secs(3 * 3600));
    }
    // Both workers race for the same due rows.
    a.app.store.wake_web_hooks();
    bnode.app.store.wake_web_hooks();
    wait_deliveries(&a, "delivered", n).await;
    rx.wait_for(n).await;
    let calls = rx.calls();
    let triggers: BTreeSet<String> = calls.iter().map(Call::trigger).collect();
    assert_eq!(calls.len(), n, "{calls:#?}");
    assert_eq!(triggers.len(), n);
    tokio::time::timeout(WAIT, async {
        while total() < 2 * n as u64 {
            tokio::select! {
                _ = wa.changed() => {},
                _ = wb.changed() => {},
            }
        }
    })
    .await
    .expect("one more attempt per delivery");
    assert_eq!(
        total() - before,
        n as u64,
        "one successful attempt per row over both nodes"
    );
    let delivered = deliveries(&a, "&status=delivered").await;
    assert!(delivered.iter().all(|d| d["attempts"] == 2), "{delivered:?}");
    bnode.stop().await;
    a.stop().await;
}
both!(two_nodes_never_deliver_one_row_twice);

async fn dead_letter_after_the_budget_then_admin_retry(b: Backend) {
    let rx = Receiver::answering(503).await;
    let fast = json!({"poll_interval": "20ms", "initial_backoff": "1ms", "max_backoff": "2ms", "max_attempts": 3});
    let srv = TestServer::with_config(b, config(&rx.url(), KEY, fast)).await;
    register_native(&srv, "dead@example.com").await;
    let dead = wait_deliveries(&srv, "dead", 1).await;
    let d = &dead[0];
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["last_status"], 503);
    assert!(d["last_error"].as_str().unwrap().contains("HTTP 503"), "{d}");
    assert_eq!(d["delivered_at"], Value::Null);
    let calls = rx.calls();
    assert_eq!(calls.len(), 3, "the budget, no more");
    assert!(
        calls.iter().all(|c| c.trigger() == d["id"]),
        "one trigger id across attempts"
    );
    let id = d["id"].as_str().unwrap().to_owned();

    // Only dead ones can be retried; unknown ids are 404, bad ones 400.
    let client = srv.client();
    let retry = |id: String| {
        let client = client.clone();
        let url = srv.admin_url(&format!("/admin/webhooks/deliveries/{id}/retry"));
        async move { client.post(url).send().await.unwrap() }
    };
    let res = retry(uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(res.status(), 404);
    let res = retry("not-a-uuid".into()).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 400);

    rx.answer(200);
    // Two admins at once: the delivery is queued once.
    let (r1, r2) = tokio::join!(retry(id.clone()), retry(id.clone()));
    let mut statuses = [r1.status().as_u16(), r2.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    let ok = if r1.status() == 200 { r1 } else { r2 };
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["attempts"], 0);
    let delivered = wait_deliveries(&srv, "delivered", 1).await;
    assert_eq!(delivered[0]["id"], id.as_str());
    assert_eq!(delivered[0]["attempts"], 1);
    rx.wait_for(4).await;
    assert_eq!(rx.calls().len(), 4);
    let res = retry(id.clone()).await;
    assert_eq!(res.status(), 409, "a delivered one is not retried");
    let (status, one) = admin_get(&srv, &format!("/admin/webhooks/deliveries/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["status"], "delivered");
    srv.stop().await;
}
both!(dead_letter_after_the_budget_then_admin_retry);

async fn admin_list_filters_and_pages(b: Backend) {
    let rx = Receiver::down().await;
    let srv = TestServer::with_config(b, config(&rx.url(), KEY, hour_backoff())).await;
    for i in 0..3 {
        register_native(&srv, &format!("page-{i}@example.com")).await;
    }
    wait_node_attempts(&srv, 3).await;
    let all = deliveries(&srv, "").await;
    assert_eq!(all.len(), 3);
    assert!(deliveries(&srv, "&status=delivered").await.is_empty());
    assert_eq!(deliveries(&srv, "&status=queued").await.len(), 3);
    let (status, body) = admin_get(&srv, "/admin/webhooks/deliveries?status=sent").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = admin_get(&srv, "/admin/webhooks/deliveries?page_size=0").await;
    assert_eq!(status, 400);
    let (status, _) = admin_get(&srv, "/admin/webhooks/deliveries?page_token=%%%").await;
    assert_eq!(status, 400);
    let (status, _) = admin_get(&srv, &format!("/admin/webhooks/deliveries/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, 404);

    // Keyset pages of one, newest first, following the Link header.
    let mut seen = vec![];
    let mut next = Some(srv.admin_url("/admin/webhooks/deliveries?page_size=1&status=queued"));
    while let Some(url) = next.take() {
        let res = srv.client().get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let link = res.headers()["link"].to_str().unwrap().to_owned();
        let page: Vec<Value> = res.json().await.unwrap();
        assert!(page.len() <= 1);
        seen.extend(page.into_iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        next = link
            .split(',')
            .find(|l| l.contains("rel=\"next\""))
            .map(|l| l.split(['<', '>']).nth(1).unwrap().to_owned());
        assert!(seen.len() <= 3, "pagination ends");
    }
    let expected: Vec<String> = all.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(seen, expected);
    srv.stop().await;
}
both!(admin_list_filters_and_pages);

#[tokio::test]
async fn a_broken_ignored_hook_stops_startup() {
    let db = crate::harness::TestDb::new(Backend::Sqlite).await;
    let mut cfg = crate::harness::base_config(&db.dsn);
    crate::harness::merge(
        &mut cfg,
        &json!({"selfservice": {"flows": {"login": {"after": {"hooks": [
            {"hook": "web_hook", "config": {"url": "ftp://x", "method": "POST", "response": {"ignore": true}}}
        ]}}}}}),
    );
    // Refused when the configuration is loaded, with the hook's path.
    let err = match latch::config::load_values(vec![cfg], &Default::default(), true) {
        Ok(_) => panic!("a web_hook that cannot be sent loads"),
        Err(e) => format!("{e:?}"),
    };
    assert!(
        err.contains("selfservice.flows.login.after.hooks[0].config")
            && err.contains("web_hook config")
            && err.contains("url"),
        "{err}"
    );
}

/// A node that claimed a delivery and died: a separate store claims the row (as a worker
/// does) and never records an outcome. Returns the delivery id and that claim.
async fn claim_and_die(srv: &TestServer, at: time::OffsetDateTime) -> (uuid::Uuid, uuid::Uuid, latch::store::Store) {
    let dsn = latch::config::parse_dsn(srv.dsn()).unwrap();
    let dead = latch::store::Store::connect(&dsn).await.unwrap();
    let claim = uuid::Uuid::new_v4();
    let rows = dead
        .claim_web_hooks(at, Duration::from_secs(60), 10, claim)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    (rows[0].id, claim, dead)
}

async fn a_dead_nodes_claim_is_taken_over_after_its_lease(b: Backend) {
    let rx = Receiver::down().await;
    let mut w = hour_backoff();
    w["max_attempts"] = json!(3);
    let srv = TestServer::with_config(b, config(&rx.url(), KEY, w)).await;
    register_native(&srv, "lease@example.com").await;
    wait_node_attempts(&srv, 1).await;
    // Three hours on, the retry is due; the other node claims it first and dies.
    let later = srv.app.clock.now() + Duration::from_secs(3 * 3600);
    let (id, stale, dead) = claim_and_die(&srv, later).await;
    rx.up().await;
    srv.clock.advance(Duration::from_secs(3 * 3600));
    let (_, d) = admin_get(&srv, &format!("/admin/webhooks/deliveries/{id}")).await;
    assert_eq!(d["status"], "processing", "{d}");
    assert_eq!(d["attempts"], 2, "the claim counts an attempt: {d}");
    // The lease (60 s here) runs out: this node takes the delivery over.
    srv.clock.advance(Duration::from_secs(120));
    let delivered = wait_deliveries(&srv, "delivered", 1).await;
    assert_eq!(delivered[0]["attempts"], 3);
    rx.wait_for(1).await;
    assert_eq!(rx.calls().len(), 1);
    // The dead node's late outcome is refused: its claim is gone.
    let now = srv.app.clock.now();
    assert!(!dead.mark_web_hook_delivered(id, stale, 200, now).await.unwrap());
    assert!(
        !dead
            .mark_web_hook_failed(id, stale, now, None, "late", Some(now))
            .await
            .unwrap()
    );
    let (_, d) = admin_get(&srv, &format!("/admin/webhooks/deliveries/{id}")).await;
    assert_eq!(d["status"], "delivered");
    dead.close().await;
    srv.stop().await;
}
both!(a_dead_nodes_claim_is_taken_over_after_its_lease);

async fn a_dead_nodes_claim_on_the_last_attempt_dead_letters(b: Backend) {
    let rx = Receiver::down().await;
    let mut w = hour_backoff();
    w["max_attempts"] = json!(2);
    let srv = TestServer::with_config(b, config(&rx.url(), KEY, w)).await;
    register_native(&srv, "last@example.com").await;
    wait_node_attempts(&srv, 1).await;
    let later = srv.app.clock.now() + Duration::from_secs(3 * 3600);
    let (id, _, dead) = claim_and_die(&srv, later).await;
    rx.up().await;
    srv.clock.advance(Duration::from_secs(3 * 3600 + 120));
    let list = wait_deliveries(&srv, "dead", 1).await;
    assert_eq!(list[0]["id"], id.to_string());
    assert_eq!(list[0]["attempts"], 2);
    assert!(
        list[0]["last_error"].as_str().unwrap().contains("stopped"),
        "{}",
        list[0]
    );
    assert!(rx.calls().is_empty());
    dead.close().await;
    srv.stop().await;
}
both!(a_dead_nodes_claim_on_the_last_attempt_dead_letters);
