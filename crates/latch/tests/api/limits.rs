//! Attempt budgets and rate limits, tried as an attacker would: many requests released at the
//! same instant (each written to its own connection but for its last byte, then all last
//! bytes sent together), so a "count, compare, record" gap would show. Also the `429` +
//! `Retry-After` answers of every limit, the owner signing in from another client while an
//! attacker is throttled, and the hashing queue failing fast with `503`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both;
use crate::client::{Client, Kind, csrf_of, message_ids};
use crate::code::{code_from_admin_api, send_step};
use crate::harness::{Backend, TestServer};

/// One raw HTTP answer.
#[derive(Debug)]
pub(crate) struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The bytes of a submission of `fields` to `flow` as client `c` would send it.
pub(crate) fn raw_submit(c: &Client<'_>, flow: &Value, fields: Value, extra_headers: &[(&str, &str)]) -> Vec<u8> {
    let action = flow["ui"]["action"].as_str().unwrap();
    let url = url::Url::parse(action).unwrap();
    let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    let mut fields = fields;
    if c.kind != Kind::Native {
        fields["csrf_token"] = json!(csrf_of(flow));
    }
    let (ctype, accept, body) = match c.kind {
        Kind::Browser => {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields.as_object().unwrap() {
                ser.append_pair(
                    k,
                    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()).as_str(),
                );
            }
            ("application/x-www-form-urlencoded", "text/html", ser.finish())
        }
        _ => ("application/json", "application/json", fields.to_string()),
    };
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {ctype}\r\nAccept: {accept}\r\nContent-Length: {}\r\nConnection: close\r\n",
        url.host_str().unwrap(),
        body.len()
    );
    if c.kind != Kind::Native
        && let Some(cookie) = c.jar.header()
    {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
    out
}

fn parse(raw: &[u8]) -> Raw {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP answer");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_vec() };
    Raw {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Sends every request on its own connection but for the last byte, then releases all last
/// bytes together and collects the answers (in request order).
pub(crate) async fn race(public: &str, requests: Vec<Vec<u8>>) -> Vec<Raw> {
    let addr = public.trim_start_matches("http://").to_string();
    let mut streams = Vec::with_capacity(requests.len());
    for req in &requests {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(&req[..req.len() - 1]).await.unwrap();
        s.flush().await.unwrap();
        streams.push(s);
    }
    for (s, req) in streams.iter_mut().zip(&requests) {
        s.write_all(&req[req.len() - 1..]).await.unwrap();
    }
    let mut tasks = Vec::new();
    for mut s in streams {
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            parse(&buf)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Per-IP budgets off for the race tests (every request comes from 127.0.0.1); the
/// per-address code budget and the password delays keep their defaults.
fn race_config() -> Value {
    json!({
        "selfservice": {"flows": {
            "registration": {"after": {"code": {"hooks": [{"hook": "session"}]}}},
            "verification": {"enabled": true, "use": "code"},
            "recovery": {"enabled": true, "use": "code"}
        }}
    })
}

/// What one answer tells about a code attempt.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Refused before the code was looked at (flow budget message or 429).
    Refused,
    /// The code was compared (wrong or right).
    Evaluated { signed_in: bool },
}

fn judge(r: &Raw, invalid_id: u64) -> Verdict {
    if r.status == 429 {
        assert!(r.header("retry-after").is_some(), "429 carries Retry-After");
        return Verdict::Refused;
    }
    let body = r.json();
    let ids = message_ids(&body);
    let text = body["ui"]["messages"][0]["text"].as_str().unwrap_or("");
    if ids == vec![4000001] && text.contains("submitted too often") {
        return Verdict::Refused;
    }
    if ids == vec![invalid_id] {
        return Verdict::Evaluated { signed_in: false };
    }
    let signed_in = body.get("session").is_some()
        || body["continue_with"].as_array().is_some_and(|a| !a.is_empty())
        || body["state"] == "passed_challenge"
        || r.header("set-cookie")
            .is_some_and(|c| c.contains("ory_kratos_session="));
    assert!(signed_in, "unexpected answer {} {}", r.status, r.body);
    Verdict::Evaluated { signed_in }
}

struct Purpose {
    flow: &'static str,
    invalid_id: u64,
}

const LOGIN: Purpose = Purpose {
    flow: "login",
    invalid_id: 4010008,
};
const REGISTRATION: Purpose = Purpose {
    flow: "registration",
    invalid_id: 4040003,
};
const VERIFICATION: Purpose = Purpose {
    flow: "verification",
    invalid_id: 4070006,
};
const RECOVERY: Purpose = Purpose {
    flow: "recovery",
    invalid_id: 4060006,
};

/// A flow of `p` for `email` in state `sent_email`, the fields that submit a code to it, and
/// the right code.
async fn code_flow(srv: &TestServer, c: &Client<'_>, p: &Purpose, email: &str) -> (Value, Value, String) {
    let flow = c.init(p.flow, "").await;
    let (send, base) = match p.flow {
        "login" => (
            json!({"method": "code", "identifier": email}),
            json!({"method": "code", "identifier": email}),
        ),
        "registration" => (
            json!({"method": "code", "traits.email": email}),
            json!({"method": "code", "traits.email": email}),
        ),
        _ => (json!({"method": "code", "email": email}), json!({"method": "code"})),
    };
    let flow = if p.flow == "login" || p.flow == "registration" {
        send_step(c, p.flow, &flow, send).await
    } else {
        let res = c.submit(&flow, send).await;
        let (_, flow) = c.flow_after(p.flow, res).await;
        assert_eq!(flow["state"], "sent_email", "{flow}");
        flow
    };
    let right = code_from_admin_api(srv, email).await;
    (flow, base, right)
}

fn with_code(base: &Value, code: &str) -> Value {
    let mut f = base.clone();
    f["code"] = json!(code);
    f
}

fn wrong_code(right: &str, i: usize) -> String {
    let mut n = (i * 7919) % 1_000_000;
    if format!("{n:06}") == right {
        n = (n + 1) % 1_000_000;
    }
    format!("{n:06}")
}

/// 200 codes at one flow at once (199 wrong, the right one among them): at most
/// `max_submissions` (5) are compared, and the right code signs in only if it was one of them.
async fn code_attempts_hold_under_concurrency_per_flow(b: Backend) {
    let srv = TestServer::with_config(b, race_config()).await;
    for p in [LOGIN, REGISTRATION, VERIFICATION, RECOVERY] {
        for kind in [Kind::Spa, Kind::Native] {
            let email = format!("race-{}-{kind:?}@example.com", p.flow).to_lowercase();
            if p.flow != "registration" {
                srv.create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
                    .await;
            }
            let c = Client::new(&srv, kind);
            let (flow, base, right) = code_flow(&srv, &c, &p, &email).await;
            let mut reqs: Vec<Vec<u8>> = (0..199)
                .map(|i| raw_submit(&c, &flow, with_code(&base, &wrong_code(&right, i)), &[]))
                .collect();
            reqs.insert(117, raw_submit(&c, &flow, with_code(&base, &right), &[]));
            let answers = race(&srv.public, reqs).await;
            let verdicts: Vec<Verdict> = answers.iter().map(|r| judge(r, p.invalid_id)).collect();
            let evaluated = verdicts.iter().filter(|v| **v != Verdict::Refused).count();
            let signed_in = verdicts
                .iter()
                .filter(|v| **v == Verdict::Evaluated { signed_in: true })
                .count();
            assert!(
                (1..=5).contains(&evaluated),
                "{} {kind:?}: {evaluated} of 200 codes were compared (budget 5)",
                p.flow
            );
            assert!(signed_in <= 1);
            if signed_in == 1 {
                assert_ne!(verdicts[117], Verdict::Refused, "only an evaluated code can sign in");
            }
            // The budget is spent: the right code sent afterwards is refused too.
            let res = c.submit(&flow, with_code(&base, &right)).await;
            let body: Value = res.json().await.unwrap();
            if signed_in == 0 {
                assert!(
                    body["ui"]["messages"][0]["text"]
                        .as_str()
                        .unwrap_or("")
                        .contains("submitted too often"),
                    "{} {kind:?}: {body}",
                    p.flow
                );
            }
        }
        // Browser forms: the same budget, whatever the answers look like.
        let email = format!("race-{}-browser@example.com", p.flow);
        if p.flow != "registration" {
            srv.create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
                .await;
        }
        let c = Client::new(&srv, Kind::Browser);
        let (flow, base, right) = code_flow(&srv, &c, &p, &email).await;
        let reqs: Vec<Vec<u8>> = (0..60)
            .map(|i| raw_submit(&c, &flow, with_code(&base, &wrong_code(&right, i)), &[]))
            .collect();
        let answers = race(&srv.public, reqs).await;
        assert!(
            answers.iter().all(|r| r.status == 303 || r.status == 302),
            "{}: forms get redirects: {:?}",
            p.flow,
            answers.iter().find(|r| r.status != 303 && r.status != 302)
        );
        assert!(
            answers.iter().all(|r| !r
                .header("set-cookie")
                .is_some_and(|c| c.contains("ory_kratos_session="))),
            "no wrong code signs in"
        );
        let res = c.submit(&flow, with_code(&base, &right)).await;
        let (_, after) = c.flow_after(p.flow, res).await;
        assert!(
            after["ui"]["messages"][0]["text"]
                .as_str()
                .unwrap_or("")
                .contains("submitted too often"),
            "{}: the right code after 60 wrong ones is refused: {after}",
            p.flow
        );
    }
}
both!(code_attempts_hold_under_concurrency_per_flow);

/// The right code submitted eight times at the same instant on one login flow signs in
/// exactly once: one answer carries a session, the others are refused without a server error,
/// and the identity ends up with one session (the code is found and consumed by one
/// conditional `UPDATE … RETURNING`, the session and the completed flow written together).
async fn right_code_raced_signs_in_once(b: Backend) {
    let srv = TestServer::with_config(b, race_config()).await;
    let http = reqwest::Client::new();
    for kind in [Kind::Browser, Kind::Spa, Kind::Native] {
        let email = format!("right-race-{kind:?}@example.com").to_lowercase();
        let identity = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
            .await;
        let c = Client::new(&srv, kind);
        let (flow, base, right) = code_flow(&srv, &c, &LOGIN, &email).await;
        let reqs: Vec<Vec<u8>> = (0..8)
            .map(|_| raw_submit(&c, &flow, with_code(&base, &right), &[]))
            .collect();
        let answers = race(&srv.public, reqs).await;
        assert!(
            answers.iter().all(|r| r.status < 500),
            "{kind:?}: no server error: {:?}",
            answers.iter().find(|r| r.status >= 500)
        );
        let signed_in = answers
            .iter()
            .filter(|r| match kind {
                Kind::Browser => r
                    .header("set-cookie")
                    .is_some_and(|c| c.contains("ory_kratos_session=")),
                _ => r.status == 200 && r.json().get("session").is_some(),
            })
            .count();
        assert_eq!(signed_in, 1, "{kind:?}: one of eight identical right codes signs in");
        let sessions: Vec<Value> = http
            .get(srv.admin_url(&format!(
                "/admin/identities/{}/sessions",
                identity["id"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            sessions.len(),
            1,
            "{kind:?}: one session for the identity: {sessions:?}"
        );
    }
}
both!(right_code_raced_signs_in_once);

/// 200 wrong codes at once spread over four flows for one address: at most the address'
/// budget (10 per hour) is compared, although the four flows would allow 20.
async fn code_attempts_hold_under_concurrency_per_address(b: Backend) {
    let srv = TestServer::with_config(b, race_config()).await;
    for p in [LOGIN, REGISTRATION, VERIFICATION, RECOVERY] {
        let email = format!("spread-{}@example.com", p.flow);
        if p.flow != "registration" {
            srv.create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
                .await;
        }
        let c = Client::new(&srv, Kind::Native);
        let mut reqs = Vec::new();
        for _ in 0..4 {
            let (flow, base, right) = code_flow(&srv, &c, &p, &email).await;
            for i in 0..50 {
                reqs.push(raw_submit(&c, &flow, with_code(&base, &wrong_code(&right, i)), &[]));
            }
        }
        let answers = race(&srv.public, reqs).await;
        let evaluated = answers
            .iter()
            .filter(|r| judge(r, p.invalid_id) != Verdict::Refused)
            .count();
        assert!(
            (1..=10).contains(&evaluated),
            "{}: {evaluated} of 200 codes for one address were compared (budget 10)",
            p.flow
        );
        let limited = answers.iter().filter(|r| r.status == 429).count();
        assert!(limited > 0, "{}: the address budget answered 429", p.flow);
        // A fresh flow with the right code is still refused within the hour.
        let (flow, base, right) = code_flow(&srv, &c, &p, &email).await;
        let res = c.submit(&flow, with_code(&base, &right)).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{}", p.flow);
    }
}
both!(code_attempts_hold_under_concurrency_per_address);

fn password_config() -> Value {
    json!({
        "serve": {"public": {"trusted_proxies": ["127.0.0.1"]}},
        "selfservice": {"methods": {"password": {"enabled": true}}}
    })
}

async fn password_user(srv: &TestServer, email: &str, password: &str) {
    srv.create_identity(json!({
        "schema_id": "default",
        "traits": {"email": email},
        "credentials": {"password": {"config": {"password": password}}}
    }))
    .await;
}

/// 200 passwords at once for one account from one client (the right one among them): at most
/// `free_failures` (5) are checked; the owner still signs in from another client.
async fn password_attempts_hold_under_concurrency(b: Backend) {
    // A first delay far longer than the test, so that a slow machine (200 requests can take
    // over a second) does not legitimately open a sixth attempt after the 1 s default.
    let mut config = password_config();
    config["latch"] = json!({"rate_limits": {"password": {"first_delay": "1h"}}});
    let srv = TestServer::with_config(b, config).await;
    let email = "owner@example.com";
    let password = "correct horse battery staple";
    password_user(&srv, email, password).await;
    for kind in [Kind::Spa, Kind::Native] {
        let attacker = Client::new(&srv, kind);
        let ip = if kind == Kind::Spa {
            "198.51.100.1"
        } else {
            "198.51.100.2"
        };
        let flow = attacker.init("login", "").await;
        let mut reqs: Vec<Vec<u8>> = (0..199)
            .map(|i| {
                let f = json!({"method": "password", "identifier": email, "password": format!("guess-{i}")});
                raw_submit(&attacker, &flow, f, &[("x-forwarded-for", ip)])
            })
            .collect();
        reqs.insert(
            150,
            raw_submit(
                &attacker,
                &flow,
                json!({"method": "password", "identifier": email, "password": password}),
                &[("x-forwarded-for", ip)],
            ),
        );
        let answers = race(&srv.public, reqs).await;
        let mut evaluated = 0;
        let mut refused = 0;
        for (i, r) in answers.iter().enumerate() {
            if r.status == 429 {
                refused += 1;
                let body = r.json();
                assert_eq!(body["error"]["id"], "rate_limit_exceeded");
                assert!(r.header("retry-after").is_some());
                continue;
            }
            evaluated += 1;
            let body = r.json();
            if body.get("session").is_some() {
                assert_eq!(i, 150, "only the right password signs in");
            } else {
                assert_eq!(message_ids(&body), vec![4000006], "{}", r.body);
            }
        }
        assert!(
            (1..=5).contains(&evaluated),
            "{kind:?}: {evaluated} of 200 passwords were checked (budget 5), {refused} refused"
        );
        // The owner, from another network, is not locked out.
        let owner = Client::new(&srv, Kind::Native);
        let flow = owner.init("login", "").await;
        let r = race(
            &srv.public,
            vec![raw_submit(
                &owner,
                &flow,
                json!({"method": "password", "identifier": email, "password": password}),
                &[("x-forwarded-for", "203.0.113.50")],
            )],
        )
        .await;
        assert_eq!(r[0].status, 200, "{}", r[0].body);
        assert!(r[0].json().get("session_token").is_some());
    }
}
both!(password_attempts_hold_under_concurrency);

/// Failed sign-ins slow the next attempt from that client: free 5, then 1 s, 2 s, 4 s, …;
/// a success resets the delays.
async fn password_failures_slow_down_and_success_resets(b: Backend) {
    let srv = TestServer::with_config(b, password_config()).await;
    let email = "slow@example.com";
    password_user(&srv, email, "the right password 123").await;
    for kind in [Kind::Browser, Kind::Spa, Kind::Native] {
        let c = Client::new(&srv, kind);
        let ip = match kind {
            Kind::Browser => "192.0.2.10",
            Kind::Spa => "192.0.2.11",
            Kind::Native => "192.0.2.12",
        };
        let attempt = |pw: &'static str| pw_attempt(&srv, &c, email, pw, ip);
        for _ in 0..5 {
            let r = attempt("wrong").await;
            if kind == Kind::Browser {
                assert_eq!(r.status, 303);
            } else {
                assert_eq!(r.status, 400, "{}", r.body);
            }
        }
        let r = attempt("wrong").await;
        match kind {
            Kind::Browser => {
                // Forms: back to the flow with the explanation.
                assert_eq!(r.status, 303);
                let loc = r.header("location").unwrap();
                let id = loc.split("flow=").nth(1).unwrap();
                let flow = c.fetch("login", id).await;
                assert!(
                    flow["ui"]["messages"][0]["text"]
                        .as_str()
                        .unwrap()
                        .contains("Too many failed sign-in attempts"),
                    "{flow}"
                );
            }
            _ => {
                assert_eq!(r.status, 429, "{}", r.body);
                assert_eq!(r.header("retry-after"), Some("1"));
            }
        }
        srv.clock.advance(Duration::from_millis(1001));
        assert_ne!(attempt("wrong").await.status, 429, "allowed again after the delay");
        let r = attempt("wrong").await;
        if kind != Kind::Browser {
            assert_eq!(r.status, 429);
            assert_eq!(r.header("retry-after"), Some("2"), "the delay doubles");
        }
        srv.clock.advance(Duration::from_secs(3));
        let r = attempt("the right password 123").await;
        assert!(r.status == 200 || r.status == 303, "{}", r.body);
        // Reset: five free failures again.
        for _ in 0..5 {
            assert_ne!(attempt("wrong").await.status, 429);
        }
        srv.clock.advance(Duration::from_secs(3600));
        let r = attempt("the right password 123").await;
        assert!(r.status == 200 || r.status == 303, "{}", r.body);
    }
}
both!(password_failures_slow_down_and_success_resets);

async fn pw_attempt(srv: &TestServer, c: &Client<'_>, email: &str, pw: &str, ip: &str) -> Raw {
    let flow = c.init("login", "").await;
    let fields = json!({"method": "password", "identifier": email, "password": pw});
    race(
        &srv.public,
        vec![raw_submit(c, &flow, fields, &[("x-forwarded-for", ip)])],
    )
    .await
    .remove(0)
}

/// Unknown identifiers are throttled exactly like known ones (no enumeration by limits).
async fn password_limits_do_not_tell_accounts_apart(b: Backend) {
    let srv = TestServer::with_config(b, password_config()).await;
    password_user(&srv, "known@example.com", "some password 123").await;
    let c = Client::new(&srv, Kind::Native);
    for who in ["known@example.com", "nobody@example.com"] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(pw_attempt(&srv, &c, who, "nope", "192.0.2.99").await.status);
        }
        assert_eq!(statuses, vec![400, 400, 400, 400, 400, 429], "{who}");
    }
}
both!(password_limits_do_not_tell_accounts_apart);

/// Flows created per client IP: 429 + Retry-After + RateLimit-* for JSON clients, the error
/// page for browsers; another IP is not affected; the window passes.
async fn flow_creation_is_limited_per_ip(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({
            "serve": {"public": {"trusted_proxies": ["127.0.0.1"]}},
            "latch": {"rate_limits": {"flow_creation_per_ip": {"limit": 3, "window": "1m"}}}
        }),
    )
    .await;
    let http = srv.client();
    let init = |path: &'static str, ip: &'static str, json_client: bool| {
        let mut rb = http
            .get(format!("{}/self-service/{path}", srv.public))
            .header("x-forwarded-for", ip);
        if json_client {
            rb = rb.header("accept", "application/json");
        }
        rb.send()
    };
    for path in ["login/api", "registration/browser", "login/browser"] {
        assert_eq!(init(path, "198.51.100.7", true).await.unwrap().status(), 200);
    }
    for path in ["login/api", "registration/browser"] {
        let res = init(path, "198.51.100.7", true).await.unwrap();
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()["ratelimit-limit"], "3");
        assert_eq!(res.headers()["ratelimit-remaining"], "0");
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(body["error"]["status"], "Too Many Requests");
        assert_eq!(body["error"]["id"], "rate_limit_exceeded");
    }
    // A browser is sent to the error page, which explains it.
    let res = init("login/browser", "198.51.100.7", false).await.unwrap();
    assert_eq!(res.status(), 303);
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let id = loc.split("id=").nth(1).unwrap();
    let err: Value = http
        .get(format!("{}/self-service/errors?id={id}", srv.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(err["error"]["code"], 429, "{err}");
    // Another client is fine; the window passes.
    assert_eq!(init("login/api", "198.51.100.8", true).await.unwrap().status(), 200);
    srv.clock.advance(Duration::from_secs(61));
    assert_eq!(init("login/api", "198.51.100.7", true).await.unwrap().status(), 200);
}
both!(flow_creation_is_limited_per_ip);

/// Submissions per client IP.
async fn submissions_are_limited_per_ip(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({"latch": {"rate_limits": {"submission_per_ip": {"limit": 2, "window": "1m"}}}}),
    )
    .await;
    for kind in [Kind::Browser, Kind::Spa, Kind::Native] {
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        for _ in 0..2 {
            let res = c
                .submit(&flow, json!({"method": "code", "identifier": "not an email"}))
                .await;
            assert_ne!(res.status(), 429);
        }
        let res = c
            .submit(&flow, json!({"method": "code", "identifier": "x@example.com"}))
            .await;
        match kind {
            Kind::Browser => {
                let (_, after) = c.flow_after("login", res).await;
                assert!(
                    after["ui"]["messages"][0]["text"]
                        .as_str()
                        .unwrap()
                        .contains("Too many requests"),
                    "{after}"
                );
            }
            _ => {
                assert_eq!(res.status(), 429);
                assert!(res.headers().contains_key("retry-after"));
                assert_eq!(res.headers()["ratelimit-limit"], "2");
            }
        }
        srv.clock.advance(Duration::from_secs(61));
    }
}
both!(submissions_are_limited_per_ip);

/// Code mails per address, with the defaults (3 per minute, 10 per hour), counted for known
/// and unknown addresses alike; new flows do not reset them.
async fn code_mails_are_limited_per_address(b: Backend) {
    let defaults = json!({"latch": {"rate_limits": {
        "code_mail_per_address": {"limit": 3, "window": "1m"},
        "code_mail_per_address_long": {"limit": 10, "window": "1h"}
    }}});
    let srv = TestServer::with_config(b, defaults).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "known@example.com"}}))
        .await;
    for kind in [Kind::Browser, Kind::Spa, Kind::Native] {
        for who in ["known@example.com", "ghost@example.com"] {
            let c = Client::new(&srv, kind);
            // Each code from a new flow: new flows do not reset the budget.
            for _ in 0..3 {
                let flow = c.init("login", "").await;
                send_step(&c, "login", &flow, json!({"method": "code", "identifier": who})).await;
            }
            let flow = c.init("login", "").await;
            let res = c.submit(&flow, json!({"method": "code", "identifier": who})).await;
            match kind {
                Kind::Browser => {
                    let (_, after) = c.flow_after("login", res).await;
                    assert!(
                        after["ui"]["messages"][0]["text"]
                            .as_str()
                            .unwrap()
                            .contains("Too many codes were requested"),
                        "{after}"
                    );
                }
                _ => {
                    assert_eq!(res.status(), 429, "{who}");
                    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                    assert!((1..=60).contains(&retry));
                    assert_eq!(res.headers()["ratelimit-limit"], "3");
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["error"]["id"], "rate_limit_exceeded");
                }
            }
        }
        srv.clock.advance(Duration::from_secs(61));
    }
    // Ten per hour: after the nine above, one more goes out, then no more.
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("login", "").await;
    let res = c
        .submit(&flow, json!({"method": "code", "identifier": "known@example.com"}))
        .await;
    assert_eq!(res.status(), 400, "the tenth mail goes out");
    srv.clock.advance(Duration::from_secs(61));
    let flow = c.init("login", "").await;
    let res = c
        .submit(&flow, json!({"method": "code", "identifier": "known@example.com"}))
        .await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["ratelimit-limit"], "10");
    let msgs: Vec<Value> = srv
        .client()
        .get(srv.admin_url("/admin/courier/messages?recipient=known@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(msgs.len(), 10, "exactly ten mails were queued for the address");
    // An hour later the address can get codes again.
    srv.clock.advance(Duration::from_secs(3600));
    let flow = c.init("login", "").await;
    let res = c
        .submit(&flow, json!({"method": "code", "identifier": "known@example.com"}))
        .await;
    assert_eq!(res.status(), 400);
}
both!(code_mails_are_limited_per_address);

/// With every hashing slot busy and no queue, a password login answers 503 + Retry-After at
/// once instead of waiting.
async fn hashing_queue_fails_fast(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({
            "serve": {"public": {"trusted_proxies": ["127.0.0.1"]}},
            "selfservice": {"methods": {"password": {"enabled": true}}},
            "hashers": {"argon2": {"memory": "64MB", "iterations": 4, "parallelism": 1}},
            "latch": {"hashing": {"max_concurrent": 1, "max_queue": 0}}
        }),
    )
    .await;
    let c = Client::new(&srv, Kind::Native);
    let mut reqs = Vec::new();
    for i in 0..8 {
        // Real hashes with the slow parameters, so a check holds its slot for a while.
        password_user(&srv, &format!("u{i}@example.com"), "the real password 1").await;
    }
    for i in 0..8 {
        let flow = c.init("login", "").await;
        let ip = format!("203.0.113.{i}");
        let f = json!({"method": "password", "identifier": format!("u{i}@example.com"), "password": "whatever"});
        reqs.push(raw_submit(&c, &flow, f, &[("x-forwarded-for", ip.as_str())]));
    }
    let answers = race(&srv.public, reqs).await;
    let busy: Vec<&Raw> = answers.iter().filter(|r| r.status == 503).collect();
    assert!(!busy.is_empty(), "some logins found the queue full: {answers:?}");
    for r in &busy {
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.json()["error"]["id"], "server_busy");
    }
    assert!(answers.iter().all(|r| r.status == 503 || r.status == 400));
    assert!(answers.iter().any(|r| r.status == 400), "one login was checked");
}
both!(hashing_queue_fails_fast);

/// With `latch.rate_limits.enabled: false` the per-IP, per-address and per-account limits are
/// off, but the per-flow code budget (`max_submissions`) still holds under concurrency.
async fn limits_can_be_switched_off_but_flow_budget_stays(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({
            "latch": {"rate_limits": {"enabled": false, "flow_creation_per_ip": {"limit": 1, "window": "1h"}}},
            "selfservice": {"flows": {"registration": {"after": {"code": {"hooks": [{"hook": "session"}]}}}}}
        }),
    )
    .await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "off@example.com"}}))
        .await;
    let c = Client::new(&srv, Kind::Native);
    let _ = c.init("login", "").await;
    let (flow, base, right) = code_flow(&srv, &c, &LOGIN, "off@example.com").await;
    let answers = race(
        &srv.public,
        (0..50)
            .map(|i| raw_submit(&c, &flow, with_code(&base, &wrong_code(&right, i)), &[]))
            .collect(),
    )
    .await;
    let evaluated = answers
        .iter()
        .filter(|r| judge(r, LOGIN.invalid_id) != Verdict::Refused)
        .count();
    assert!((1..=5).contains(&evaluated), "{evaluated}");
}
both!(limits_can_be_switched_off_but_flow_budget_stays);

/// Twenty code requests for one address released at once, each on its own flow: the address'
/// mail budget (3 per minute) is counted atomically, so exactly three mails are queued and the
/// rest are refused with 429 — for a known and an unknown address alike.
async fn code_mail_budget_holds_under_concurrency(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({"latch": {"rate_limits": {
            "code_mail_per_address": {"limit": 3, "window": "1m"},
            "code_mail_per_address_long": {"limit": 10, "window": "1h"}
        }}}),
    )
    .await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "flood@example.com"}}))
        .await;
    for who in ["flood@example.com", "nobody-flood@example.com"] {
        let c = Client::new(&srv, Kind::Native);
        let mut reqs = Vec::new();
        for _ in 0..20 {
            let flow = c.init("login", "").await;
            reqs.push(raw_submit(&c, &flow, json!({"method": "code", "identifier": who}), &[]));
        }
        let answers = race(&srv.public, reqs).await;
        let sent = answers.iter().filter(|r| r.status == 400).count();
        let refused = answers.iter().filter(|r| r.status == 429).count();
        assert_eq!(
            (sent, refused),
            (3, 17),
            "{who}: {:?}",
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        );
    }
    let msgs: Vec<Value> = srv
        .client()
        .get(srv.admin_url("/admin/courier/messages?recipient=flood@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(msgs.len(), 3, "three mails were queued for the address");
}
both!(code_mail_budget_holds_under_concurrency);
