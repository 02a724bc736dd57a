use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::*;
use crate::text::TextType;

/// reqwest is built without a bundled crypto provider; the server installs one at startup.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the receiver answers to the n-th request (0-based): `None` never answers.
type Answer = Arc<dyn Fn(usize, &Seen) -> Option<(u16, String)> + Send + Sync>;

/// A plain HTTP/1.1 receiver on 127.0.0.1 (the layering rule keeps the web framework in `http/`), one
/// request per connection, recording every request.
async fn receiver(answer: Answer) -> (String, Arc<Mutex<Vec<Seen>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let log = log.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i;
                    }
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap_or("").split(' ');
                let method = first.next().unwrap_or("").to_owned();
                let path = first.next().unwrap_or("").to_owned();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = buf[head_end + 4..].to_vec();
                while body.len() < len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let req = Seen {
                    method,
                    path,
                    headers,
                    body,
                };
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(req.clone());
                    log.len() - 1
                };
                let Some((status, text)) = answer(n, &req) else {
                    // Hold the connection open without answering.
                    let _ = sock.read(&mut chunk).await;
                    std::future::pending::<()>().await;
                    return;
                };
                // 429 always asks for an hour's pause.
                let extra = if status == 429 { "retry-after: 3600\r\n" } else { "" };
                let response = format!(
                    "HTTP/1.1 {status} X\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}/hook"), seen)
}

fn always(status: u16, body: &str) -> Answer {
    let body = body.to_owned();
    Arc::new(move |_, _| Some((status, body.clone())))
}

fn b64(src: &str) -> String {
    format!("base64://{}", STANDARD.encode(src))
}

fn config(v: Value) -> WebHookConfig {
    WebHookConfig::from_value(&v).unwrap()
}

/// Short waits so that retry tests stay fast; same shape as Kratos' transport.
const FAST: Transport = Transport {
    attempt_timeout: Duration::from_millis(300),
    max_retries: 2,
    retry_wait_min: Duration::from_millis(10),
    retry_wait_max: Duration::from_millis(50),
    max_response_bytes: 5 << 20,
};

fn ctx() -> Context {
    let request = RequestInfo {
        method: "POST".to_owned(),
        url: "https://auth.example.com/self-service/registration?flow=f1".to_owned(),
        headers: vec![
            ("user-agent".to_owned(), "test-agent/1".to_owned()),
            ("Accept-Language".to_owned(), "de".to_owned()),
            ("accept-language".to_owned(), "en".to_owned()),
            ("Authorization".to_owned(), "Bearer nope".to_owned()),
            ("X-Forwarded-For".to_owned(), "10.0.0.1".to_owned()),
            ("Cookie".to_owned(), "a=1; csrf=\"xyz\"; =skip".to_owned()),
            ("cookie".to_owned(), "a=2".to_owned()),
        ],
    };
    Context::new(json!({"id": "f1", "type": "browser"}), &request)
        .with_identity(json!({"id": "i1", "traits": {"email": "ann@example.com"}}))
        .with_transient_payload(json!({"consent": true}))
}

async fn run(cfg: &WebHookConfig) -> Result<Outcome, WebHookError> {
    install_crypto();
    deliver_with(cfg, &ctx(), &FAST, uuid::Uuid::nil()).await
}

#[tokio::test]
async fn delivery_runs_detached_from_owned_values() {
    // What a background worker does: owned config and a context read back from storage.
    install_crypto();
    let (url, seen) = receiver(always(204, "")).await;
    let cfg = config(
        json!({"url": url, "method": "POST", "body": b64("function(ctx) { email: ctx.identity.traits.email }")}),
    );
    let stored = serde_json::to_string(&ctx()).unwrap();
    let task = tokio::spawn(async move {
        let ctx: Context = serde_json::from_str(&stored).unwrap();
        deliver_with(&cfg, &ctx, &FAST, uuid::Uuid::nil()).await
    });
    assert_eq!(task.await.unwrap().unwrap(), Outcome::Delivered);
    assert_eq!(seen.lock().unwrap()[0].json(), json!({"email": "ann@example.com"}));
}

// ---------------------------------------------------------------- context

#[test]
fn context_keeps_allowed_headers_and_cookies_and_serialises_as_kratos() {
    let c = ctx();
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(
        v["request_headers"],
        json!({"Accept-Language": ["de", "en"], "User-Agent": ["test-agent/1"]})
    );
    assert_eq!(v["request_cookies"], json!({"a": "2", "csrf": "xyz"}));
    assert_eq!(v["request_method"], "POST");
    assert_eq!(v["flow"]["transient_payload"], json!({"consent": true}));
    assert_eq!(v["identity"]["id"], "i1");
    assert!(v.get("session").is_none(), "absent session is omitted: {v}");
    let back: Context = serde_json::from_value(v).unwrap();
    assert_eq!(back, c);
    assert_eq!(canonical_header("sec-ch-ua-MOBILE"), "Sec-Ch-Ua-Mobile");
    assert_eq!(canonical_header("true-client-ip"), "True-Client-Ip");
}

// ---------------------------------------------------------------- config

#[test]
fn config_reads_every_key_and_defaults() {
    let c = config(json!({
        "id": "crm", "url": "https://hooks.example.com/x?token=t", "method": "POST",
        "body": "/etc/body.jsonnet", "headers": {"X-Env": "prod"},
        "auth": {"type": "api_key", "config": {"name": "X-Key", "value": "s3cret", "in": "header"}},
        "response": {"parse": true}, "can_interrupt": false, "emit_analytics_event": false
    }));
    assert_eq!(c.id.as_deref(), Some("crm"));
    assert_eq!(c.body.as_deref(), Some("file:///etc/body.jsonnet"));
    assert_eq!(c.content_type(), "application/json");
    assert!(c.response_parse && !c.response_ignore && !c.emit_analytics_event);
    assert!(c.parses_response());
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("token=t") && !shown.contains("prod"),
        "{shown}"
    );
    assert!(shown.contains("X-Env"), "{shown}");

    let d = config(json!({"url": "http://127.0.0.1/x", "method": "GET"}));
    assert!(d.body.is_none() && d.auth.is_none() && d.emit_analytics_event && !d.parses_response());
    let form = config(json!({"url": "http://h/x", "method": "POST",
        "headers": {"content-type": "application/x-www-form-urlencoded"}}));
    assert_eq!(form.content_type(), "application/x-www-form-urlencoded");
    assert_eq!(form.headers.len(), 1, "no default content type when one is configured");
    let basic = config(json!({"url": "http://h/x", "method": "POST",
        "auth": {"type": "basic_auth", "config": {"user": "u", "password": "pw-secret"}}}));
    assert!(!format!("{basic:?}").contains("pw-secret"));
}

#[test]
fn config_errors_name_the_key() {
    let cases = [
        (json!({"method": "POST"}), "`url` is required"),
        (json!({"url": "http://h/x"}), "`method` is required"),
        (json!({"url": "not a url", "method": "POST"}), "`url`"),
        (json!({"url": "ftp://h/x", "method": "POST"}), "`url` must be an http"),
        (json!({"url": "http://h/x", "method": "PO ST"}), "`method`"),
        (
            json!({"url": "http://h/x", "method": "POST", "bogus": 1}),
            "unknown key `bogus`",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "response": {"ignore": true, "parse": true}}),
            "`response.ignore`",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "response": {"ignore": true}, "can_interrupt": true}),
            "`can_interrupt`",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "response": {"later": true}}),
            "unknown key `response.later`",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "response": {"parse": "yes"}}),
            "`response.parse` must be true or false",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "headers": {"X-N": 1}}),
            "`headers.X-N` must be a string",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "body": 3}),
            "`body` must be a string",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "auth": {"type": "oauth", "config": {}}}),
            "`auth.type`",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "auth": {"type": "api_key", "config": {"name": "k", "value": "v", "in": "query"}}}),
            "`auth.config.in`",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "auth": {"type": "api_key", "config": {"name": "k", "in": "header"}}}),
            "`auth.config.value` is required",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "auth": {"type": "basic_auth", "config": {"user": "u"}}}),
            "`auth.config.password` is required",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "auth": {"type": "basic_auth"}}),
            "`auth.config` is required",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "auth": {"type": "basic_auth", "config": {"user": "u", "password": "p", "realm": "r"}}}),
            "unknown key `auth.config.realm`",
        ),
        (
            json!({"url": "http://h/x", "method": "POST", "emit_analytics_event": "no"}),
            "`emit_analytics_event`",
        ),
        (json!("http://h/x"), "`config` must be an object"),
    ];
    for (input, needle) in cases {
        let e = WebHookConfig::from_value(&input).unwrap_err().to_string();
        assert!(e.contains(needle), "{input}: {e:?} should contain {needle:?}");
        assert!(e.starts_with("web_hook config: "), "{e}");
    }
}

// ---------------------------------------------------------------- requests

#[tokio::test]
async fn body_is_rendered_with_ctx_and_sent_as_json() {
    let (url, seen) = receiver(always(204, "")).await;
    let body = b64("function(ctx) { email: ctx.identity.traits.email, flow: ctx.flow.id, \
         consent: ctx.flow.transient_payload.consent, ua: ctx.request_headers['User-Agent'][0], \
         cookie: ctx.request_cookies.a, method: ctx.request_method, url: ctx.request_url, \
         has_auth: std.objectHas(ctx.request_headers, 'Authorization'), has_session: std.objectHas(ctx, 'session') }");
    let cfg = config(json!({"url": url, "method": "POST", "body": body, "headers": {"X-Env": "test"}}));
    assert_eq!(run(&cfg).await.unwrap(), Outcome::Delivered);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/hook"));
    assert_eq!(
        req.json(),
        json!({"email": "ann@example.com", "flow": "f1", "consent": true, "ua": "test-agent/1",
            "cookie": "2", "method": "POST", "url": "https://auth.example.com/self-service/registration?flow=f1",
            "has_auth": false, "has_session": false})
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-env"), Some("test"));
    assert_eq!(
        req.header("ory-webhook-trigger-id"),
        Some("00000000-0000-0000-0000-000000000000")
    );
    assert!(req.header("ory-webhook-request-id").is_some());
}

#[tokio::test]
async fn form_encoded_body_and_no_analytics_headers() {
    let (url, seen) = receiver(always(200, "")).await;
    let cfg = config(json!({"url": url, "method": "PUT", "emit_analytics_event": false,
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "body": b64("function(ctx) { z: 'last', email: ctx.identity.traits.email }")}));
    assert_eq!(run(&cfg).await.unwrap(), Outcome::Delivered);
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(req.method, "PUT");
    assert_eq!(String::from_utf8(req.body).unwrap(), "email=ann%40example.com&z=last");
    assert!(
        req.headers
            .iter()
            .all(|(k, _)| !k.to_ascii_lowercase().starts_with("ory-webhook"))
    );

    let bad = config(
        json!({"url": url, "method": "POST", "headers": {"Content-Type": "text/plain"},
        "body": b64("function(ctx) {}")}),
    );
    assert!(matches!(run(&bad).await, Err(WebHookError::Config { .. })));
    let nested = config(json!({"url": url, "method": "POST",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"}, "body": b64("function(ctx) { a: 1 }")}));
    assert!(matches!(run(&nested).await, Err(WebHookError::Config { reason, .. }) if reason.contains("`a`")));
    assert_eq!(seen.lock().unwrap().len(), 1, "refused bodies are never sent");
}

#[tokio::test]
async fn cancel_skips_the_request() {
    let (url, seen) = receiver(always(200, "")).await;
    let cfg = config(json!({"url": url, "method": "POST",
        "body": b64("function(ctx) if ctx.identity.traits.email == 'ann@example.com' then error 'cancel' else {}")}));
    assert_eq!(run(&cfg).await.unwrap(), Outcome::Cancelled);
    assert!(seen.lock().unwrap().is_empty());

    let failing = config(json!({"url": url, "method": "POST", "body": b64("function(ctx) error 'boom'")}));
    let e = run(&failing).await.unwrap_err();
    assert!(matches!(e, WebHookError::Body { .. }), "{e:?}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_program_is_required_except_for_trace() {
    let (url, seen) = receiver(always(200, "")).await;
    let get = config(json!({"url": url, "method": "GET"}));
    let e = run(&get).await.unwrap_err();
    assert!(e.to_string().contains("`body` is required for GET"), "{e}");
    let trace = config(json!({"url": url, "method": "TRACE", "body": b64("function(ctx) error 'cancel'")}));
    assert_eq!(run(&trace).await.unwrap(), Outcome::Delivered);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "TRACE");
    assert!(seen[0].body.is_empty());
}

#[tokio::test]
async fn api_key_in_header_or_cookie_and_basic_auth() {
    let (url, seen) = receiver(always(200, "")).await;
    let body = b64("function(ctx) {}");
    let header = config(
        json!({"url": url, "method": "POST", "body": body, "headers": {"X-Api-Key": "configured"},
        "auth": {"type": "api_key", "config": {"name": "X-Api-Key", "value": "k-123", "in": "header"}}}),
    );
    let cookie = config(
        json!({"url": url, "method": "POST", "body": body, "headers": {"Cookie": "env=test"},
        "auth": {"type": "api_key", "config": {"name": "hook_key", "value": "c-456", "in": "cookie"}}}),
    );
    let basic = config(json!({"url": url, "method": "POST", "body": body,
        "auth": {"type": "basic_auth", "config": {"user": "latch", "password": "pa:ss"}}}));
    for cfg in [&header, &cookie, &basic] {
        assert_eq!(run(cfg).await.unwrap(), Outcome::Delivered);
    }
    let seen = seen.lock().unwrap();
    let keys: Vec<&str> = seen[0]
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-api-key"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        keys,
        ["k-123"],
        "the auth key replaces a configured header of the same name"
    );
    assert_eq!(seen[1].header("cookie"), Some("env=test; hook_key=c-456"));
    assert_eq!(
        seen[2].header("authorization"),
        Some(format!("Basic {}", STANDARD.encode("latch:pa:ss")).as_str())
    );
}

#[tokio::test]
async fn timeout_fails_quickly_after_the_retries_and_hides_secrets() {
    let (url, seen) = receiver(Arc::new(|_, _| None)).await;
    let cfg = config(
        json!({"url": format!("{url}?token=q-secret"), "method": "POST", "body": b64("function(ctx) {}"),
        "auth": {"type": "api_key", "config": {"name": "X-Key", "value": "k-secret", "in": "header"}}}),
    );
    let started = Instant::now();
    let e = run(&cfg).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(matches!(e, WebHookError::Timeout { attempts: 3, .. }), "{e:?}");
    assert_eq!(e.flow_status(), 504);
    assert_eq!(seen.lock().unwrap().len(), 3, "two retries after the first attempt");
    let text = e.to_string();
    assert!(!text.contains("secret"), "{text}");
    assert!(text.contains("/hook"), "{text}");
}

#[tokio::test]
async fn unreachable_receiver_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let cfg = config(json!({"url": format!("http://{addr}/hook"), "method": "POST", "body": b64("function(ctx) {}")}));
    let e = run(&cfg).await.unwrap_err();
    assert!(matches!(e, WebHookError::Unreachable { attempts: 3, .. }), "{e:?}");
    assert_eq!(e.flow_status(), 500);
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    // 500, 503, then 200: delivered on the third attempt.
    let (url, seen) = receiver(Arc::new(|n, _| {
        Some((if n < 2 { 500 + 3 * n as u16 } else { 200 }, String::new()))
    }))
    .await;
    let cfg = config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}")}));
    assert_eq!(run(&cfg).await.unwrap(), Outcome::Delivered);
    assert_eq!(seen.lock().unwrap().len(), 3);

    let (url, seen) = receiver(always(502, "")).await;
    let cfg = config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "can_interrupt": true}));
    let e = run(&cfg).await.unwrap_err();
    assert!(
        matches!(
            e,
            WebHookError::Status {
                status: 502,
                attempts: 3,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 3);

    let (url, seen) = receiver(always(403, "{}")).await;
    let cfg = config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}")}));
    let e = run(&cfg).await.unwrap_err();
    assert!(
        matches!(
            e,
            WebHookError::Status {
                status: 403,
                attempts: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.flow_status(), 502);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_long_retry_after_is_capped() {
    // 429 asks for an hour; the wait is capped at `retry_wait_max` (50 ms here).
    let (url, seen) = receiver(Arc::new(|n, _| Some((if n == 0 { 429 } else { 200 }, String::new())))).await;
    let cfg = config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}")}));
    let delivered = tokio::time::timeout(Duration::from_secs(2), run(&cfg)).await;
    assert_eq!(delivered.expect("the wait must be capped").unwrap(), Outcome::Delivered);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn answers_are_cut_at_the_size_limit() {
    let big = json!({"identity": {"traits": {"bio": "x".repeat(4096)}}}).to_string();
    let (url, _) = receiver(always(200, &big)).await;
    let cfg =
        config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "response": {"parse": true}}));
    install_crypto();
    let small = Transport {
        max_response_bytes: 1024,
        ..FAST
    };
    let e = deliver_with(&cfg, &ctx(), &small, uuid::Uuid::nil()).await.unwrap_err();
    assert!(matches!(e, WebHookError::BadResponse { status: 200, .. }), "{e:?}");
    assert!(matches!(run(&cfg).await.unwrap(), Outcome::Identity(_)));
}

const MESSAGES: &str = r##"{"messages":[{"instance_ptr":"#/traits/email","messages":[
  {"id":4000100,"text":"This email is on a block list.","type":"error","context":{"reason":"blocked"}},
  {"id":1,"text":"Try another one.","type":"info"}]},
  {"instance_ptr":"#/","messages":[{"id":2,"text":"Whole form.","type":"warning","context":null}]}]}"##;

#[tokio::test]
async fn interrupt_messages_are_parsed_with_parse_or_can_interrupt() {
    let (url, _) = receiver(always(400, MESSAGES)).await;
    for key in ["can_interrupt", "parse"] {
        let cfg = if key == "parse" {
            config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "response": {"parse": true}}))
        } else {
            config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "can_interrupt": true}))
        };
        let Outcome::Interrupted(fields) = run(&cfg).await.unwrap() else {
            panic!("{key}: expected an interruption");
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].instance_ptr, "#/traits/email");
        assert_eq!(fields[0].messages.len(), 2);
        assert_eq!(fields[0].messages[0].id, 4000100);
        assert_eq!(fields[0].messages[0].r#type, TextType::Error);
        assert_eq!(fields[0].messages[0].context["reason"], "blocked");
        assert_eq!(fields[0].messages[1].r#type, TextType::Info);
        assert_eq!(
            fields[1].messages[0].r#type,
            TextType::Info,
            "anything but error is info"
        );
        assert!(fields[1].messages[0].context.is_empty());
    }

    // Without parse/can_interrupt the same answer is a plain error status.
    let plain = config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}")}));
    assert!(matches!(
        run(&plain).await,
        Err(WebHookError::Status { status: 400, .. })
    ));

    // A >= 400 without messages cannot interrupt: error.
    for answer in ["{}", "not json", r#"{"messages":[]}"#] {
        let (url, _) = receiver(always(422, answer)).await;
        let cfg = config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "can_interrupt": true}));
        let e = run(&cfg).await.unwrap_err();
        assert!(
            matches!(e, WebHookError::BadResponse { status: 422, .. }),
            "{answer}: {e:?}"
        );
        assert!(!e.to_string().contains("not json"), "answers stay out of errors: {e}");
    }
}

#[tokio::test]
async fn identity_changes_are_parsed_on_200_with_parse() {
    let answer = json!({"identity": {
        "traits": {"email": "ann@example.com", "plan": "pro"},
        "metadata_public": {"crm_id": 42}, "metadata_admin": {"note": "vip"},
        "state": "", "verifiable_addresses": [], "schema_id": "customer", "external_id": null,
        "ignored_field": 1
    }})
    .to_string();
    let (url, _) = receiver(always(200, &answer)).await;
    let cfg =
        config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "response": {"parse": true}}));
    let Outcome::Identity(patch) = run(&cfg).await.unwrap() else {
        panic!("expected an identity patch");
    };
    assert_eq!(patch.traits, Some(json!({"email": "ann@example.com", "plan": "pro"})));
    assert_eq!(patch.metadata_public, Some(json!({"crm_id": 42})));
    assert_eq!(patch.schema_id.as_deref(), Some("customer"));
    assert_eq!(patch.state, None, "empty fields leave the identity alone");
    assert_eq!(patch.verifiable_addresses, None);
    assert_eq!(patch.external_id, Some(None));
    let mut identity = json!({"id": "i1", "traits": {"email": "ann@example.com"}, "state": "active",
        "metadata_public": null, "external_id": "old"});
    patch.apply_to(&mut identity);
    assert_eq!(
        identity,
        json!({"id": "i1", "traits": {"email": "ann@example.com", "plan": "pro"}, "state": "active",
            "metadata_public": {"crm_id": 42}, "metadata_admin": {"note": "vip"}, "schema_id": "customer",
            "external_id": null})
    );

    // can_interrupt alone never reads a 200; parse with no identity changes nothing.
    let interrupt_only =
        config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "can_interrupt": true}));
    assert_eq!(run(&interrupt_only).await.unwrap(), Outcome::Delivered);
    let (url, _) = receiver(always(200, r#"{"other": 1}"#)).await;
    let cfg =
        config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "response": {"parse": true}}));
    assert_eq!(run(&cfg).await.unwrap(), Outcome::Delivered);
    // A 200 that is not JSON cannot be parsed (Kratos: "could not be unmarshalled").
    let (url, _) = receiver(always(200, "")).await;
    let cfg =
        config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "response": {"parse": true}}));
    assert!(matches!(
        run(&cfg).await,
        Err(WebHookError::BadResponse { status: 200, .. })
    ));
    // 201 is not read.
    let (url, _) = receiver(always(201, "junk")).await;
    let cfg =
        config(json!({"url": url, "method": "POST", "body": b64("function(ctx) {}"), "response": {"parse": true}}));
    assert_eq!(run(&cfg).await.unwrap(), Outcome::Delivered);
}

#[tokio::test]
async fn body_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body.jsonnet");
    std::fs::write(&path, "function(ctx) { id: ctx.identity.id }").unwrap();
    let (url, seen) = receiver(always(200, "")).await;
    let cfg = config(json!({"url": url, "method": "POST", "body": format!("file://{}", path.display())}));
    assert_eq!(run(&cfg).await.unwrap(), Outcome::Delivered);
    assert_eq!(seen.lock().unwrap()[0].json(), json!({"id": "i1"}));
    let missing = config(json!({"url": url, "method": "POST", "body": "file:///nonexistent/latch/body.jsonnet"}));
    assert!(matches!(run(&missing).await, Err(WebHookError::Body { .. })));
}
