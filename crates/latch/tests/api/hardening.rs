//! Hardening: CORS from derived origins, no live tokens at rest, startup secrets, the
//! byte-bounded whoami cache, bounded client strings and refused absurd password hashes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::client::{Client, Kind};
use crate::flows::register;
use crate::harness::{Backend, TestServer};

/// The Ory reference UI's origin (where `selfservice.flows.login.ui_url` points).
const UI_ORIGIN: &str = "http://127.0.0.1:4455";

fn cors_config(extra: Value) -> Value {
    let mut cfg = json!({
        "serve": {"public": {"cors": {"enabled": true}}},
        "selfservice": {"flows": {"login": {"ui_url": format!("{UI_ORIGIN}/login")}}}
    });
    crate::harness::merge(&mut cfg, &extra);
    cfg
}

/// `(ACAO, ACAC)` of a simple GET to `path` with `Origin: origin`.
async fn cors_get(srv: &TestServer, path: &str, origin: &str) -> (StatusCode, Option<String>, Option<String>) {
    let res = srv
        .client()
        .get(srv.public_url(path))
        .header("origin", origin)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let h = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    (
        res.status(),
        h("access-control-allow-origin"),
        h("access-control-allow-credentials"),
    )
}

/// `(status, ACAO, ACAC, ACAM)` of a preflight for a credentialed POST.
async fn cors_preflight(
    srv: &TestServer,
    path: &str,
    origin: &str,
) -> (StatusCode, Option<String>, Option<String>, Option<String>) {
    let res = srv
        .client()
        .request(Method::OPTIONS, srv.public_url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    let h = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    (
        res.status(),
        h("access-control-allow-origin"),
        h("access-control-allow-credentials"),
        h("access-control-allow-methods"),
    )
}

async fn cors_arbitrary_and_null_origins_are_never_reflected_with_credentials(b: Backend) {
    // Kratos' quickstart: `cors.enabled: true` and nothing else.
    let srv = TestServer::with_config(b, cors_config(json!({}))).await;
    for origin in [
        "https://evil.example",
        "null",
        "http://app.test.evil.example",
        "http://127.0.0.1:4456",
    ] {
        let (_, acao, acac) = cors_get(&srv, "/sessions/whoami", origin).await;
        assert_eq!(acao, None, "{origin} must not be allowed");
        assert_eq!(acac, None, "{origin} must not get credentials");
        let (_, acao, acac, _) = cors_preflight(&srv, "/self-service/login", origin).await;
        assert_eq!(acao, None, "preflight from {origin}");
        assert_eq!(acac, None, "preflight from {origin}");
    }
    // Even an explicit `null` or `*` entry never gets `null` or a reflected origin with credentials.
    let srv = TestServer::with_config(
        b,
        cors_config(json!({"serve": {"public": {"cors": {"allowed_origins": ["null", "*"]}}}})),
    )
    .await;
    for origin in ["null", "https://evil.example"] {
        let (_, acao, acac) = cors_get(&srv, "/sessions/whoami", origin).await;
        assert_ne!(acao.as_deref(), Some(origin));
        assert_eq!(acac, None, "{origin}");
    }
}
both!(cors_arbitrary_and_null_origins_are_never_reflected_with_credentials);

async fn cors_derived_origins_work_with_credentials(b: Backend) {
    let srv = TestServer::with_config(b, cors_config(json!({}))).await;
    let own = srv.public.clone();
    // The UI origin, the return URLs' origin (http://app.test) and the public base URL's origin.
    for origin in [UI_ORIGIN, "http://app.test", own.as_str()] {
        let (status, acao, acac) = cors_get(&srv, "/self-service/login/browser", origin).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(acao.as_deref(), Some(origin), "simple request from {origin}");
        assert_eq!(acac.as_deref(), Some("true"));
        let (status, acao, acac, acam) = cors_preflight(&srv, "/self-service/login", origin).await;
        assert!(status.is_success(), "{status}");
        assert_eq!(acao.as_deref(), Some(origin), "preflight from {origin}");
        assert_eq!(acac.as_deref(), Some("true"));
        assert!(acam.unwrap_or_default().contains("POST"));
    }
    // An SPA on the UI origin reads whoami with its cookie.
    let mut c = Client::new(&srv, Kind::Spa);
    register(&mut c, "cors@example.com").await;
    let res = c
        .send(
            c.req(Method::GET, &srv.public_url("/sessions/whoami"))
                .header("origin", UI_ORIGIN),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], UI_ORIGIN);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
}
both!(cors_derived_origins_work_with_credentials);

async fn cors_wildcard_is_a_literal_star_without_credentials(b: Backend) {
    let srv = TestServer::with_config(
        b,
        cors_config(json!({"serve": {"public": {"cors": {"allowed_origins": ["*"]}}}})),
    )
    .await;
    let (_, acao, acac) = cors_get(&srv, "/sessions/whoami", "https://anyone.example").await;
    assert_eq!(acao.as_deref(), Some("*"));
    assert_eq!(acac, None);
    let (_, acao, acac, _) = cors_preflight(&srv, "/self-service/login", "https://anyone.example").await;
    assert_eq!(acao.as_deref(), Some("*"));
    assert_eq!(acac, None);
    // Derived origins keep their credentials.
    let (_, acao, acac) = cors_get(&srv, "/sessions/whoami", UI_ORIGIN).await;
    assert_eq!(acao.as_deref(), Some(UI_ORIGIN));
    assert_eq!(acac.as_deref(), Some("true"));
}
both!(cors_wildcard_is_a_literal_star_without_credentials);

async fn cors_explicit_origins_add_to_the_derived_ones(b: Backend) {
    let cfg = cors_config(json!({"serve": {"public": {"cors": {
        "allowed_origins": ["https://spa.example.com", "https://*.apps.example.com"]
    }}}}));
    let srv = TestServer::with_config(b, cfg).await;
    for origin in [
        "https://spa.example.com",
        "https://one.apps.example.com",
        UI_ORIGIN,
        "http://app.test",
    ] {
        let (_, acao, acac) = cors_get(&srv, "/sessions/whoami", origin).await;
        assert_eq!(acao.as_deref(), Some(origin), "{origin}");
        assert_eq!(acac.as_deref(), Some("true"), "{origin}");
        let (_, acao, _, _) = cors_preflight(&srv, "/self-service/settings", origin).await;
        assert_eq!(acao.as_deref(), Some(origin), "preflight {origin}");
    }
    for origin in ["https://evil.example.com", "https://apps.example.com.evil.io", "null"] {
        let (_, acao, _) = cors_get(&srv, "/sessions/whoami", origin).await;
        assert_eq!(acao, None, "{origin}");
    }
}
both!(cors_explicit_origins_add_to_the_derived_ones);

async fn cors_reference_ui_loads_webauthn_js_cross_origin(b: Backend) {
    // `<script src=".../.well-known/ory/webauthn.js" crossorigin>` on the reference UI's origin
    // is a GET with an Origin header.
    let srv = TestServer::with_config(b, cors_config(json!({}))).await;
    let (status, acao, acac) = cors_get(&srv, "/.well-known/ory/webauthn.js", UI_ORIGIN).await;
    assert_eq!(status, 200);
    assert_eq!(acao.as_deref(), Some(UI_ORIGIN));
    assert_eq!(acac.as_deref(), Some("true"));
    // Without `cors.enabled`, the public script is still loadable from any origin (no
    // credentials), while the API sends no CORS headers.
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"login": {"ui_url": format!("{UI_ORIGIN}/login")}}}}),
    )
    .await;
    let (status, acao, acac) = cors_get(&srv, "/.well-known/ory/webauthn.js", UI_ORIGIN).await;
    assert_eq!(status, 200);
    assert_eq!(acao.as_deref(), Some("*"));
    assert_eq!(acac, None);
    let (_, acao, _) = cors_get(&srv, "/sessions/whoami", UI_ORIGIN).await;
    assert_eq!(acao, None);
}
both!(cors_reference_ui_loads_webauthn_js_cross_origin);

async fn logout_url_survives_cookie_secret_rotation(b: Backend) {
    let old = "the-old-cookie-secret-of-32-chars";
    let a = TestServer::with_config(b, json!({"secrets": {"cookie": [old]}})).await;
    let mut c = Client::new(&a, Kind::Browser);
    register(&mut c, "rotate@example.com").await;
    let res = c
        .send(
            c.req(Method::GET, &a.public_url("/self-service/logout/browser"))
                .header("accept", "application/json"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let url = body["logout_url"].as_str().unwrap().to_string();
    // A node with a rotated secret list: a new first secret, the old one second.
    let b_srv = TestServer::sharing_db(
        &a,
        json!({"secrets": {"cookie": ["the-new-cookie-secret-of-32-chars", old]}}),
    )
    .await;
    let mut on_b_client = Client::via(&b_srv, Kind::Browser, &b_srv.public);
    on_b_client.jar = c.jar.clone();
    let c = on_b_client;
    let again: Value = c
        .send(
            c.req(Method::GET, &b_srv.public_url("/self-service/logout/browser"))
                .header("accept", "application/json"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["logout_token"], body["logout_token"],
        "the token does not depend on the secret list"
    );
    let on_b = url.replace(&a.public, &b_srv.public);
    let res = c.send(c.req(Method::GET, &on_b)).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(c.whoami().await.status(), 401);
}
both!(logout_url_survives_cookie_secret_rotation);

/// Tables (and columns) whose text contains `needle`, over the whole database.
pub async fn tables_containing(srv: &TestServer, needle: &str) -> Vec<String> {
    let pattern = format!("%{needle}%");
    let mut hits = vec![];
    match &srv.app.store.pool {
        latch::store::Pool::Sqlite(p) => {
            let tables: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                    .fetch_all(p)
                    .await
                    .unwrap();
            for (t,) in tables {
                let cols: Vec<(i64, String, String, i64, Option<String>, i64)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("PRAGMA table_info(\"{t}\")")))
                        .fetch_all(p)
                        .await
                        .unwrap();
                for (_, c, ..) in cols {
                    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT count(*) FROM \"{t}\" WHERE CAST(\"{c}\" AS TEXT) LIKE $1"
                    )))
                    .bind(&pattern)
                    .fetch_one(p)
                    .await
                    .unwrap();
                    if n > 0 {
                        hits.push(format!("{t}.{c}"));
                    }
                }
            }
        }
        latch::store::Pool::Postgres(p) => {
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(p)
            .await
            .unwrap();
            for (t,) in tables {
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM \"{t}\" x WHERE x::text LIKE $1"
                )))
                .bind(&pattern)
                .fetch_one(p)
                .await
                .unwrap();
                if n > 0 {
                    hits.push(t);
                }
            }
        }
    }
    hits
}

/// A session issued through the library for an identity (cheaper than a sign in over HTTP).
async fn issue_session(srv: &TestServer, identity_id: &str, user_agent: &str) -> String {
    let id = uuid::Uuid::parse_str(identity_id).unwrap();
    let identity = srv.app.store.get_identity(id).await.unwrap().unwrap();
    let client = latch::session::manager::ClientInfo {
        ip: Some("203.0.113.9".into()),
        user_agent: Some(user_agent.to_string()),
        location: None,
    };
    let am = latch::session::AuthMethod {
        method: "code".into(),
        aal: "aal1".into(),
        completed_at: srv.app.clock.now(),
        provider: None,
    };
    latch::session::manager::issue(&srv.app, &identity, vec![am], &client)
        .await
        .unwrap()
        .token
}

async fn whoami_cache_stays_under_its_byte_bound_with_long_user_agents(b: Backend) {
    let srv = TestServer::with_config(b, json!({"latch": {"cache": {"whoami": {"max_bytes": "1MB"}}}})).await;
    let bound = srv.app.config.latch.cache.whoami.max_bytes;
    let ua = "Mozilla/5.0 ".repeat(100 * 1024 / 12);
    assert!(ua.len() >= 100 * 1000);
    let mut tokens = vec![];
    for i in 0..20 {
        let ident = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": format!("ua{i}@example.com")}}))
            .await;
        let id = ident["id"].as_str().unwrap().to_string();
        for _ in 0..500 {
            tokens.push(issue_session(&srv, &id, &ua).await);
        }
    }
    assert_eq!(tokens.len(), 10_000);
    use futures_util::StreamExt as _;
    let http = srv.client();
    let url = srv.public_url("/sessions/whoami");
    let statuses: Vec<StatusCode> = futures_util::stream::iter(tokens.iter())
        .map(|t| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(url)
                    .header("x-session-token", t)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    let size = srv.app.store.cache.weighted_size();
    assert!(
        size <= bound,
        "the cache holds {size} bytes, above its bound of {bound}"
    );
    assert!(srv.app.store.cache.entry_count() > 0, "answers are cached");
    // The device's user agent was cut before it was stored.
    let who: Value = http
        .get(&url)
        .header("x-session-token", &tokens[0])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored = who["devices"][0]["user_agent"].as_str().unwrap();
    assert!(stored.len() <= 512 && ua.starts_with(stored), "{}", stored.len());
}
both!(whoami_cache_stays_under_its_byte_bound_with_long_user_agents);

async fn a_long_user_agent_is_cut_before_it_is_stored(b: Backend) {
    let srv = TestServer::start(b).await;
    let mut c = Client::new(&srv, Kind::Native);
    register(&mut c, "longua@example.com").await;
    let ua = "é".repeat(60 * 1024);
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("login", "").await;
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let res = c
        .send(c.req(Method::POST, &action).header("user-agent", &ua).json(&json!({
            "method": "password", "identifier": "longua@example.com", "password": "correct horse battery staple"
        })))
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let stored = body["session"]["devices"][0]["user_agent"].as_str().unwrap();
    assert!(stored.len() <= 512 && stored.len() >= 510, "{}", stored.len());
    assert!(stored.chars().all(|c| c == 'é'), "cut on a character boundary");
    assert!(
        tables_containing(&srv, &"é".repeat(300)).await.is_empty(),
        "nothing longer is stored"
    );
}
both!(a_long_user_agent_is_cut_before_it_is_stored);

async fn whoami_revoke_racing_a_fill_is_not_cached(b: Backend) {
    let srv = TestServer::start(b).await;
    let mut c = Client::new(&srv, Kind::Native);
    let reg = register(&mut c, "race@example.com").await;
    let token = reg["session_token"].as_str().unwrap().to_string();
    let sid = reg["session"]["id"].as_str().unwrap().to_string();
    let identity_id = uuid::Uuid::parse_str(reg["identity"]["id"].as_str().unwrap()).unwrap();
    let cache = srv.app.store.cache.clone();
    assert_eq!(c.whoami().await.status(), 200, "cached");
    // Another fill starts: it reads the generation, then the session (still valid) ...
    let generation = cache.generation();
    let body = axum::body::Bytes::from(c.whoami().await.text().await.unwrap());
    let hash = latch::crypto::sha256_hex(token.as_bytes());
    let expires = srv.app.clock.now() + time::Duration::hours(1);
    // ... the session is revoked while the fill is in flight ...
    let res = srv
        .client()
        .delete(srv.admin_url(&format!("/admin/sessions/{sid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // ... and the fill finishes with what it read before the revoke: refused.
    assert!(!cache.put(hash.clone(), identity_id, expires, body, generation));
    assert!(cache.get(&hash, srv.app.clock.now()).is_none());
    assert_eq!(
        c.whoami().await.status(),
        401,
        "revoked at once, even with a fill in flight"
    );
}
both!(whoami_revoke_racing_a_fill_is_not_cached);

async fn imported_password_hashes_with_absurd_parameters_are_refused(b: Backend) {
    let srv = TestServer::start(b).await;
    let cases = [
        (format!("$2b$31${}", "a".repeat(53)), "bcrypt cost 31"),
        (
            "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".to_string(),
            "m=4194304",
        ),
        (
            "$argon2id$v=19$m=65536,t=10000,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".to_string(),
            "t=10000",
        ),
        (
            "$argon2id$v=19$m=65536,t=2,p=255$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".to_string(),
            "p=255",
        ),
    ];
    for (i, (hash, says)) in cases.iter().enumerate() {
        let res = srv
            .client()
            .post(srv.admin_url("/admin/identities"))
            .json(&json!({
                "schema_id": "default",
                "traits": {"email": format!("absurd{i}@example.com")},
                "credentials": {"password": {"config": {"hashed_password": hash}}}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], 400, "{body}");
        let text = body["error"].to_string();
        assert!(text.contains(says) && text.contains("hashed_password"), "{body}");
    }
    // Reasonable parameters still import.
    srv.create_identity(json!({
        "schema_id": "default",
        "traits": {"email": "fine@example.com"},
        "credentials": {"password": {"config": {"hashed_password": bcrypt_hash()}}}
    }))
    .await;
}
both!(imported_password_hashes_with_absurd_parameters_are_refused);

/// A well-formed bcrypt hash of cost 4 (its value does not matter for the import).
fn bcrypt_hash() -> String {
    format!("$2b$04${}", "a".repeat(53))
}

#[tokio::test]
async fn startup_without_secrets_outside_dev_fails_clearly() {
    let cfg = json!({
        "dsn": "memory",
        "serve": {"public": {"base_url": "https://auth.example.com/", "host": "127.0.0.1"}, "admin": {"host": "127.0.0.1"}},
        "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": format!("base64://{}", {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(crate::harness::SCHEMA)
        })}]},
        "courier": {"smtp": {"connection_uri": "smtp://127.0.0.1:2525/"}}
    });
    let mut loaded = latch::config::load_values(vec![cfg.clone()], &Default::default(), false).unwrap();
    loaded.config.serve.public.port = 0;
    loaded.config.serve.admin.port = 0;
    let opts = latch::app::BuildOptions {
        clock: None,
        migrate: true,
    };
    let err = latch::app::App::build(loaded.config, opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("secrets.cookie") && err.contains("--dev"), "{err}");
    // With a secret the same configuration starts.
    let mut with_secret = cfg;
    crate::harness::merge(
        &mut with_secret,
        &json!({"secrets": {"cookie": ["a-real-secret-of-at-least-32-chars"]}}),
    );
    let mut loaded = latch::config::load_values(vec![with_secret], &Default::default(), false).unwrap();
    loaded.config.serve.public.port = 0;
    loaded.config.serve.admin.port = 0;
    let opts = latch::app::BuildOptions {
        clock: None,
        migrate: true,
    };
    assert!(latch::app::App::build(loaded.config, opts).await.is_ok());
}
