use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::runner::Runner;
use super::*;

/// The Google mapper of Kratos' social sign-in guide, in the shape users copy.
const GOOGLE_MAPPER: &str = r#"local claims = {
  email_verified: false,
} + std.extVar('claims');

{
  identity: {
    traits: {
      [if 'email' in claims && claims.email_verified then 'email' else null]: claims.email,
      [if 'name' in claims then 'name' else null]: claims.name,
    },
    metadata_public: {
      hd: if 'hd' in claims then claims.hd else null,
    },
  },
}
"#;

fn program(source: &str) -> Program {
    Program::inline("file:///etc/latch/test.jsonnet", source)
}

fn claims(v: Value) -> Vec<(String, Value)> {
    vec![("claims".to_owned(), v)]
}

fn limits(timeout: Duration) -> Limits {
    Limits {
        timeout,
        ..Limits::default()
    }
}

/// reqwest is built without a bundled crypto provider; the server installs one at startup.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Serves `/m.jsonnet` (the Google mapper), `/big` (2 MiB), `/redirect` (to plain http on a
/// private address) and 404 elsewhere on 127.0.0.1,
/// one plain HTTP/1.1 answer per connection (the layering rule keeps the web framework in `http/`).
async fn serve() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                let (status, body) = match path.split('?').next().unwrap_or("") {
                    "/m.jsonnet" => ("200 OK", GOOGLE_MAPPER.to_owned()),
                    "/redirect" => ("302 Found\r\nlocation: http://10.255.255.1/m.jsonnet", String::new()),
                    "/big" => ("200 OK", "x".repeat(2 * 1024 * 1024)),
                    _ => ("404 Not Found", String::new()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------- loading

#[tokio::test]
async fn load_file_reads_the_program_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("google.jsonnet");
    std::fs::write(&path, GOOGLE_MAPPER).unwrap();
    let url = format!("file://{}", path.display());
    let p = load(&url).await.unwrap();
    assert_eq!(p.source, GOOGLE_MAPPER);
    assert_eq!(p.origin, url);

    let missing = load("file:///nonexistent/latch/m.jsonnet").await.unwrap_err();
    assert!(matches!(&missing, JsonnetError::Load { origin, .. } if origin == "file:///nonexistent/latch/m.jsonnet"));
    assert!(
        missing.to_string().contains("file:///nonexistent/latch/m.jsonnet"),
        "{missing}"
    );
}

#[tokio::test]
async fn load_base64_standard_and_url_safe() {
    // Chosen so that the standard alphabet needs `+` and `/` and the URL-safe one `-` and `_`.
    let source = "{a: '>>>???'}";
    let std_b64 = STANDARD.encode(source);
    let url_b64 = URL_SAFE_NO_PAD.encode(source);
    assert!(std_b64.contains('+') || std_b64.contains('/'), "{std_b64}");
    assert!(url_b64.contains('-') || url_b64.contains('_'), "{url_b64}");
    for encoded in [std_b64, url_b64] {
        let p = load(&format!("base64://{encoded}")).await.unwrap();
        assert_eq!(p.source, source);
        assert_eq!(evaluate(&p, &[]).unwrap(), json!({"a": ">>>???"}));
    }
    let bad = load("base64://!!!").await.unwrap_err();
    assert!(matches!(bad, JsonnetError::Load { .. }), "{bad:?}");
}

#[tokio::test]
async fn load_base64_origin_is_truncated() {
    let url = format!("base64://{}", STANDARD.encode(GOOGLE_MAPPER));
    let p = load(&url).await.unwrap();
    assert_eq!(p.origin, format!("base64://{}…", &url[9..25]));
}

#[tokio::test]
async fn load_http_from_loopback_and_origin_without_query() {
    install_crypto();
    let addr = serve().await;
    let p = load(&format!("http://{addr}/m.jsonnet?token=secret#x")).await.unwrap();
    assert_eq!(p.source, GOOGLE_MAPPER);
    assert_eq!(p.origin, format!("http://{addr}/m.jsonnet"));

    let p = load(&format!("http://localhost:{}/m.jsonnet", addr.port()))
        .await
        .unwrap();
    assert_eq!(p.source, GOOGLE_MAPPER);

    let missing = load(&format!("http://{addr}/nope")).await.unwrap_err();
    assert!(missing.to_string().contains("404"), "{missing}");

    let big = load(&format!("http://{addr}/big")).await.unwrap_err();
    assert!(big.to_string().contains("1 MiB"), "{big}");

    // Redirects may not leave https or loopback.
    let redirected = load(&format!("http://{addr}/redirect")).await.unwrap_err();
    assert!(redirected.to_string().contains("302"), "{redirected}");
}

#[tokio::test]
async fn load_plain_http_elsewhere_and_unknown_schemes_are_refused() {
    for url in [
        "http://example.com/m.jsonnet",
        "http://10.0.0.1/m.jsonnet",
        "ftp://x/m",
        "/etc/m.jsonnet",
    ] {
        let err = load(url).await.unwrap_err();
        assert!(matches!(err, JsonnetError::Load { .. }), "{url}: {err:?}");
    }
}

// ---------------------------------------------------------------- evaluating

#[test]
fn evaluate_google_mapper_with_and_without_optional_claims() {
    let p = program(GOOGLE_MAPPER);
    let full = json!({"iss": "https://accounts.google.com", "sub": "1", "email": "a@b.c",
        "email_verified": true, "name": "Ann", "hd": "b.c"});
    let out = evaluate(&p, &[("claims", &full)]).unwrap();
    assert_eq!(
        out,
        json!({"identity": {"traits": {"email": "a@b.c", "name": "Ann"}, "metadata_public": {"hd": "b.c"}}})
    );

    let bare = json!({"iss": "https://accounts.google.com", "sub": "1", "email": "a@b.c"});
    let out = evaluate(&p, &[("claims", &bare)]).unwrap();
    assert_eq!(
        out,
        json!({"identity": {"traits": {}, "metadata_public": {"hd": null}}})
    );
}

#[test]
fn evaluate_std_functions_mappers_use() {
    let source = r#"
local claims = std.extVar('claims');
local identity = std.extVar('identity');
local parts = std.split(claims.email, '@');
{
  identity: identity + {
    traits+: {
      email: std.asciiLower(claims.email),
      domain: parts[1],
      joined: std.join('-', ['x', 'y', 'z']),
      groups: std.length(claims.raw_claims.groups),
      has_name: std.objectHas(claims, 'name'),
      nick: std.get(claims, 'nickname', 'none'),
      tags: { [g]: true for g in claims.raw_claims.groups },
      size: if std.length(parts[0]) > 3 then 'long' else 'short',
    },
  },
}
"#;
    let claims = json!({"email": "Ann@Example.COM", "raw_claims": {"groups": ["a", "b"]}});
    let identity = json!({"traits": {"kept": 1}, "metadata_public": {}});
    let out = evaluate(&program(source), &[("claims", &claims), ("identity", &identity)]).unwrap();
    assert_eq!(
        out,
        json!({"identity": {"metadata_public": {}, "traits": {
            "kept": 1, "email": "ann@example.com", "domain": "Example.COM", "joined": "x-y-z",
            "groups": 2, "has_name": false, "nick": "none", "tags": {"a": true, "b": true},
            "size": "short"}}})
    );
}

#[test]
fn evaluate_runtime_error_names_origin_and_line() {
    let source = "local claims = std.extVar('claims');\n{\n  email: claims.mail,\n}\n";
    let err = evaluate(&program(source), &[("claims", &json!({"email": "a@b.c"}))]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, JsonnetError::Runtime { .. }), "{err:?}");
    assert!(text.contains("file:///etc/latch/test.jsonnet"), "{text}");
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains("mail"), "{text}");

    let err = evaluate(&program("{\n a: error 'no email',\n}"), &[]).unwrap_err();
    assert!(
        err.to_string().contains("line 2") && err.to_string().contains("no email"),
        "{err}"
    );

    let err = evaluate(&program("std.extVar('claims')"), &[]).unwrap_err();
    assert!(err.to_string().contains("`claims`"), "{err}");
}

#[test]
fn evaluate_syntax_error_names_origin_and_line() {
    let err = evaluate(&program("{\n  a: 1,\n  b: ,\n}"), &[]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, JsonnetError::Syntax { .. }), "{err:?}");
    assert!(
        text.contains("test.jsonnet") && text.contains("line 3, column 6"),
        "{text}"
    );

    let err = evaluate(&program("{ a: nope }"), &[]).unwrap_err();
    assert!(err.to_string().contains("unknown variable `nope`"), "{err}");
}

#[test]
fn evaluate_imports_are_denied() {
    for source in [
        "import 'x.libsonnet'",
        "{ a: importstr '/etc/passwd' }",
        "{ a: importbin '/etc/passwd' }",
        "local p = '/etc/passwd'; { a: import p }",
    ] {
        let err = evaluate(&program(source), &[]).unwrap_err();
        assert_eq!(
            err,
            JsonnetError::ImportDenied {
                origin: "file:///etc/latch/test.jsonnet".to_owned()
            },
            "{source}"
        );
    }
}

#[test]
fn evaluate_error_cancel_is_cancelled() {
    let body = "function(ctx) if ctx.identity.traits.skip then error 'cancel' else { id: ctx.identity.id }";
    let p = program(body);
    let ctx = |skip: bool| Inputs {
        ext_code: Vec::new(),
        tla_code: vec![(
            "ctx".to_owned(),
            json!({"identity": {"id": "i1", "traits": {"skip": skip}}}),
        )],
    };
    let err = evaluate_inputs(&p, &ctx(true), &Limits::default()).unwrap_err();
    assert!(matches!(err, JsonnetError::Cancelled { .. }), "{err:?}");
    let out = evaluate_inputs(&p, &ctx(false), &Limits::default()).unwrap();
    assert_eq!(out, json!({"id": "i1"}));

    let asserted = program("function(ctx) assert !ctx.identity.traits.skip : 'cancel'; {}");
    let err = evaluate_inputs(&asserted, &ctx(true), &Limits::default()).unwrap_err();
    assert!(matches!(err, JsonnetError::Cancelled { .. }), "{err:?}");
    let other = program("function(ctx) error 'not allowed'");
    let err = evaluate_inputs(&other, &ctx(true), &Limits::default()).unwrap_err();
    assert!(matches!(err, JsonnetError::Runtime { .. }), "{err:?}");
}

#[test]
fn evaluate_deep_recursion_is_an_error_not_a_crash() {
    let err = evaluate(
        &program("local f(n) = if n == 0 then 0 else 1 + f(n - 1); f(100000)"),
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("stack overflow"), "{err}");
}

#[tokio::test]
async fn evaluate_limited_returns_the_output() {
    let out = evaluate_limited(
        &program(GOOGLE_MAPPER),
        claims(json!({"email": "a@b.c", "email_verified": true})),
        Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(out["identity"]["traits"], json!({"email": "a@b.c"}));
}

#[tokio::test]
async fn evaluate_limited_deeply_nested_source_does_not_crash() {
    let depth = 20_000;
    let source = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    // Either answer is fine; the process must survive it.
    let _ = evaluate_limited(&program(&source), Vec::new(), Limits::default()).await;
}

#[tokio::test]
async fn evaluate_limited_huge_output_is_refused() {
    let p = program("[std.repeat('x', 1000) for i in std.range(1, 2000)]");
    let err = evaluate_limited(&p, Vec::new(), Limits::default()).await.unwrap_err();
    assert!(matches!(err, JsonnetError::TooLarge { .. }), "{err:?}");
    let small = Limits {
        max_output_bytes: 4,
        ..Limits::default()
    };
    let err = evaluate_limited(&program("'hello'"), Vec::new(), small)
        .await
        .unwrap_err();
    assert!(matches!(err, JsonnetError::TooLarge { .. }), "{err:?}");
}

/// Exponential recursion: shallow stack, tiny memory, 2^n calls. n = 21 runs for seconds (far
/// past the 50 ms deadline) yet ends, so the test leaves no thread spinning for long; n = 60
/// would run for years and be cut off the same way.
const ENDLESS: &str = "local f(n) = if n == 0 then 0 else f(n - 1) + f(n - 1); f(std.extVar('n'))";

#[tokio::test]
async fn evaluate_limited_endless_program_times_out_and_caps_runaways() {
    let runner = Runner::new(1);
    let started = Instant::now();
    let err = runner
        .run(
            &program(ENDLESS),
            Inputs {
                ext_code: vec![("n".to_owned(), json!(21))],
                tla_code: Vec::new(),
            },
            limits(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, JsonnetError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(runner.runaway(), 1);
    assert!(err.to_string().contains("test.jsonnet"), "{err}");

    // While the runaway still runs, the next evaluation is refused at once.
    let err = runner
        .run(&program("{}"), Inputs::default(), Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, JsonnetError::Timeout { .. }), "{err:?}");
}

#[test]
fn evaluate_every_error_message_has_a_line() {
    for source in [
        "{\n  a: 1,\n  b: ,\n}",
        "local c = std.extVar('claims');\n{ e: c.mail }",
        "{ a: std.length(1) }",
        "{\n a: error 'no email',\n}",
        "local x = 1; x.y",
    ] {
        let err = evaluate(&program(source), &[("claims", &json!({}))]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("test.jsonnet") && text.contains(", column "), "{text}");
    }
}

#[test]
fn evaluate_numbers_keep_their_json_form() {
    let claims = json!({"updated_at": 1700000000, "ratio": 1.5, "big": 12345678901_i64});
    let out = evaluate(&program("std.extVar('claims') + {neg: -3}"), &[("claims", &claims)]).unwrap();
    assert_eq!(
        out,
        json!({"updated_at": 1700000000, "ratio": 1.5, "big": 12345678901_i64, "neg": -3})
    );
}

#[test]
fn evaluate_more_std_functions_from_published_mappers() {
    let source = r#"
local claims = std.extVar('claims');
{
  starts: std.startsWith(claims.email, 'ann'),
  ends: std.endsWith(claims.email, '@example.com'),
  member: std.member(claims.groups, 'admin'),
  replaced: std.strReplace(claims.email, '@', ' at '),
  formatted: std.format('%s <%s>', [claims.name, claims.email]),
  has_all: std.objectHasAll(claims, 'name'),
  parsed: std.parseJson('{"x": [1, 2]}'),
  mapped: std.map(function(g) std.asciiUpper(g), claims.groups),
  filtered: std.filter(function(g) g != 'admin', claims.groups),
  traced: std.trace('not logged', 1),
  hidden:: 'not in the output',
  merged: { a: { b: 1 } } + { a+: { c: 2 } },
}
"#;
    let claims = json!({"email": "ann@example.com", "name": "Ann", "groups": ["admin", "dev"]});
    let out = evaluate(&program(source), &[("claims", &claims)]).unwrap();
    assert_eq!(
        out,
        json!({"starts": true, "ends": true, "member": true, "replaced": "ann at example.com",
            "formatted": "Ann <ann@example.com>", "has_all": true, "parsed": {"x": [1, 2]},
            "mapped": ["ADMIN", "DEV"], "filtered": ["dev"], "traced": 1,
            "merged": {"a": {"b": 1, "c": 2}}})
    );
}

#[tokio::test]
async fn evaluate_inputs_limited_passes_ctx_to_a_webhook_body() {
    let body = program("function(ctx) { user_id: ctx.identity.id, email: ctx.identity.traits.email }");
    let inputs = Inputs {
        ext_code: Vec::new(),
        tla_code: vec![(
            "ctx".to_owned(),
            json!({"identity": {"id": "i1", "traits": {"email": "a@b.c"}}}),
        )],
    };
    let out = evaluate_inputs_limited(&body, inputs, Limits::default()).await.unwrap();
    assert_eq!(out, json!({"user_id": "i1", "email": "a@b.c"}));

    let err = evaluate_inputs_limited(&body, Inputs::default(), Limits::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing argument `ctx`"), "{err}");
}
