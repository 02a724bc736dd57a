//! Hooks: the password-migration hook against a real HTTP receiver (an axum server started
//! here on 127.0.0.1), and the built-in flow hooks (`require_verified_address`,
//! `revoke_active_sessions`, `verification` / `show_verification_ui` after login, `session`
//! after registration) with Kratos' precedence between generic and per-method lists — for
//! browser, SPA and native clients.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids};
use crate::flows::{finish, login};
use crate::harness::{Backend, TestServer};

const OLD_PW: &str = "the-old-system-password";

/// What the old system saw: one entry per call (body and the auth header).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Call>>>);

/// One call: the JSON body and the `X-Migration-Key` header.
type Call = (Value, Option<String>);

impl Seen {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn last(&self) -> Call {
        self.0.lock().unwrap().last().cloned().unwrap()
    }
}

async fn old_system(State(seen): State<Seen>, headers: HeaderMap, body: String) -> (AxStatus, String) {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let key = headers.get("x-migration-key").map(|v| v.to_str().unwrap().to_string());
    seen.0.lock().unwrap().push((body.clone(), key));
    match body["password"].as_str() {
        Some(OLD_PW) => (AxStatus::OK, json!({"status": "password_match"}).to_string()),
        Some("teapot") => (AxStatus::INTERNAL_SERVER_ERROR, "{}".into()),
        Some("odd-answer") => (AxStatus::OK, json!({"status": "maybe"}).to_string()),
        _ => (AxStatus::FORBIDDEN, "{}".into()),
    }
}

/// Starts the old system's password check on a free port: its URL and what it saw.
async fn start_old_system() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/check", axum::routing::post(old_system))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/check"), seen)
}

fn migrate_config(url: &str) -> Value {
    json!({"selfservice": {"methods": {"password": {"config": {"migrate_hook": {
        "enabled": true,
        "config": {
            "url": url,
            "method": "POST",
            "auth": {"type": "api_key", "config": {"name": "X-Migration-Key", "value": "k-123", "in": "header"}}
        }
    }}}}}})
}

/// Imports an identity whose password lives only in the old system.
async fn import_for_migration(srv: &TestServer, email: &str) -> String {
    let created = srv
        .create_identity(json!({
            "schema_id": "default",
            "traits": {"email": email},
            "credentials": {"password": {"config": {"use_password_migration_hook": true}}}
        }))
        .await;
    created["id"].as_str().unwrap().to_string()
}

async fn stored_password_config(srv: &TestServer, id: &str) -> Value {
    let res = srv
        .client()
        .get(srv.admin_url(&format!("/admin/identities/{id}?include_credential=password")))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["credentials"]["password"]["config"].clone()
}

/// The flow (with its messages) after a refused login.
async fn refused(c: &Client<'_>, res: reqwest::Response) -> Value {
    let (status, flow) = c.flow_after("login", res).await;
    if c.kind != Kind::Browser {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{flow}");
    }
    flow
}

async fn migration_hook_match_stores_the_hash_and_is_asked_once(b: Backend) {
    let (url, seen) = start_old_system().await;
    let srv = TestServer::with_config(b, migrate_config(&url)).await;
    for kind in ALL {
        let email = format!("mig-{kind:?}@example.com").to_lowercase();
        let id = import_for_migration(&srv, &email).await;
        assert!(
            stored_password_config(&srv, &id).await["hashed_password"]
                .as_str()
                .unwrap_or("")
                .is_empty()
        );
        let before = seen.count();

        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, OLD_PW).await;
        finish(&mut c, res).await;
        assert_eq!(c.whoami().await.status(), 200);
        assert_eq!(seen.count(), before + 1);
        let (body, key) = seen.last();
        assert_eq!(
            body,
            json!({"identifier": email, "password": OLD_PW}),
            "Kratos' default body"
        );
        assert_eq!(key.as_deref(), Some("k-123"), "api_key auth in a header");

        let cfg = stored_password_config(&srv, &id).await;
        assert!(
            cfg["hashed_password"].as_str().unwrap().starts_with("$argon2id$"),
            "{cfg}"
        );
        assert_eq!(cfg["use_password_migration_hook"], false, "{cfg}");

        // The second login checks the stored hash; the old system is not asked again.
        let mut again = Client::new(&srv, kind);
        let res = login(&mut again, &email, OLD_PW).await;
        finish(&mut again, res).await;
        let mut wrong = Client::new(&srv, kind);
        let res = login(&mut wrong, &email, "not-it-at-all").await;
        let flow = refused(&wrong, res).await;
        assert_eq!(message_ids(&flow), [4000006]);
        assert_eq!(seen.count(), before + 1, "asked exactly once");
    }
}
both!(migration_hook_match_stores_the_hash_and_is_asked_once);

async fn migration_hook_no_match_is_invalid_credentials_and_stores_nothing(b: Backend) {
    let (url, seen) = start_old_system().await;
    let srv = TestServer::with_config(b, migrate_config(&url)).await;
    for kind in ALL {
        let email = format!("nomatch-{kind:?}@example.com").to_lowercase();
        let id = import_for_migration(&srv, &email).await;
        for pw in ["wrong-password", "odd-answer"] {
            let before = seen.count();
            let mut c = Client::new(&srv, kind);
            let res = login(&mut c, &email, pw).await;
            let flow = refused(&c, res).await;
            assert_eq!(message_ids(&flow), [4000006], "{pw}");
            assert!(c.jar.get("ory_kratos_session").is_none());
            assert_eq!(seen.count(), before + 1);
        }
        let cfg = stored_password_config(&srv, &id).await;
        assert_eq!(cfg["use_password_migration_hook"], true, "{cfg}");
        // The right password still migrates afterwards.
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, OLD_PW).await;
        finish(&mut c, res).await;
    }
}
both!(migration_hook_no_match_is_invalid_credentials_and_stores_nothing);

/// Answers with `status` for JSON clients; browsers are sent to the error page.
async fn assert_upstream_error(c: &Client<'_>, res: reqwest::Response, status: u16) {
    match c.kind {
        Kind::Browser => {
            let s = res.status().as_u16();
            assert!(s == status || s == 303, "browser: {s}");
        }
        _ => {
            assert_eq!(res.status().as_u16(), status);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], status, "{body}");
            assert!(!body.to_string().contains(OLD_PW), "{body}");
        }
    }
    assert!(c.jar.get("ory_kratos_session").is_none());
}

async fn migration_hook_down_or_failing_is_a_502_and_disabled_is_a_500(b: Backend) {
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = TestServer::with_config(b, migrate_config(&format!("http://{closed}/check"))).await;
    let (url, seen) = start_old_system().await;
    let failing = TestServer::with_config(b, migrate_config(&url)).await;
    let disabled = TestServer::start(b).await;
    for kind in ALL {
        let email = format!("down-{kind:?}@example.com").to_lowercase();

        import_for_migration(&down, &email).await;
        let mut c = Client::new(&down, kind);
        let res = login(&mut c, &email, OLD_PW).await;
        assert_upstream_error(&c, res, 502).await;

        import_for_migration(&failing, &email).await;
        let mut c = Client::new(&failing, kind);
        let res = login(&mut c, &email, "teapot").await;
        assert_upstream_error(&c, res, 502).await;
        assert_eq!(seen.last().0["password"], "teapot");

        let id = import_for_migration(&disabled, &email).await;
        let mut c = Client::new(&disabled, kind);
        let res = login(&mut c, &email, OLD_PW).await;
        if kind != Kind::Browser {
            assert_eq!(res.status(), 500);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["id"], "invalid_configuration", "{body}");
        } else {
            assert_upstream_error(&c, res, 500).await;
        }
        assert_eq!(
            stored_password_config(&disabled, &id).await["use_password_migration_hook"],
            true
        );
    }
}
both!(migration_hook_down_or_failing_is_a_502_and_disabled_is_a_500);

async fn migration_hook_calls_count_against_the_password_budget(b: Backend) {
    let (url, seen) = start_old_system().await;
    let mut cfg = migrate_config(&url);
    crate::harness::merge(
        &mut cfg,
        &json!({"latch": {"rate_limits": {"password": {"free_failures": 2, "first_delay": "1h"}}}}),
    );
    let srv = TestServer::with_config(b, cfg).await;
    let email = "budget@example.com";
    import_for_migration(&srv, email).await;
    for _ in 0..2 {
        let mut c = Client::new(&srv, Kind::Native);
        let res = login(&mut c, email, "guess").await;
        assert_eq!(res.status(), 400);
    }
    assert_eq!(seen.count(), 2);
    let mut c = Client::new(&srv, Kind::Native);
    let res = login(&mut c, email, "guess").await;
    assert_eq!(res.status(), 429, "the budget refuses before the old system is asked");
    assert_eq!(seen.count(), 2, "no call past the budget");
}
both!(migration_hook_calls_count_against_the_password_budget);

async fn migration_hook_concurrent_first_logins_all_sign_in_once_stored(b: Backend) {
    let (url, seen) = start_old_system().await;
    let srv = TestServer::with_config(b, migrate_config(&url)).await;
    let email = "race@example.com";
    let id = import_for_migration(&srv, email).await;
    let mut flows = vec![];
    for _ in 0..4 {
        let c = Client::new(&srv, Kind::Native);
        flows.push(c.init("login", "").await);
    }
    let answers = futures_util::future::join_all(flows.iter().map(|f| {
        let c = Client::new(&srv, Kind::Native);
        let f = f.clone();
        async move {
            let res = c
                .submit(
                    &f,
                    json!({"method": "password", "identifier": email, "password": OLD_PW}),
                )
                .await;
            res.status()
        }
    }))
    .await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    let asked = seen.count();
    assert!((1..=4).contains(&asked));
    let cfg = stored_password_config(&srv, &id).await;
    assert!(
        cfg["hashed_password"].as_str().unwrap().starts_with("$argon2id$"),
        "{cfg}"
    );
    assert_eq!(cfg["use_password_migration_hook"], false);
    let mut c = Client::new(&srv, Kind::Native);
    let res = login(&mut c, email, OLD_PW).await;
    finish(&mut c, res).await;
    assert_eq!(seen.count(), asked, "the stored hash answers afterwards");
}
both!(migration_hook_concurrent_first_logins_all_sign_in_once_stored);
