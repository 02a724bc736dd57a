//! Hooks: the password-migration hook against a real HTTP receiver (an axum server started
//! here on 127.0.0.1), and the built-in flow hooks (`require_verified_address`,
//! `revoke_active_sessions`, `verification` / `show_verification_ui` after login and settings, `session`
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

// --- Built-in flow hooks ---------------------------------------------------------------

const PW: &str = "a-long-enough-test-password";

fn verification_on(extra: Value) -> Value {
    // Mail stays in the outbox (the relay is unreachable); tests read codes from the admin API.
    let mut cfg = json!({
        "courier": {"smtp": {"connection_uri": "smtp://127.0.0.1:1/?disable_starttls=true"}},
        "selfservice": {"flows": {"verification": {"enabled": true, "use": "code"}}}
    });
    crate::harness::merge(&mut cfg, &extra);
    cfg
}

async fn identity_with_password(srv: &TestServer, email: &str, verified: bool) -> String {
    let mut body = json!({
        "schema_id": "default",
        "traits": {"email": email},
        "credentials": {"password": {"config": {"password": PW}}}
    });
    if verified {
        body["verifiable_addresses"] =
            json!([{"value": email, "via": "email", "verified": true, "status": "completed"}]);
    }
    srv.create_identity(body).await["id"].as_str().unwrap().to_string()
}

async fn login_require_verified_address_sends_to_verification_and_issues_no_session(b: Backend) {
    let srv = TestServer::with_config(
        b,
        verification_on(
            json!({"selfservice": {"flows": {"login": {"after": {"hooks": [{"hook": "require_verified_address"}]}}}}}),
        ),
    )
    .await;
    for kind in ALL {
        let email = format!("unverified-{kind:?}@example.com").to_lowercase();
        identity_with_password(&srv, &email, false).await;
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        let status = res.status();
        let vf_id = match kind {
            Kind::Browser => {
                assert_eq!(status, StatusCode::SEE_OTHER);
                let to = res.headers()["location"].to_str().unwrap().to_string();
                assert!(to.contains("verification") && to.contains("flow="), "{to}");
                to.split("flow=").nth(1).unwrap().to_string()
            }
            _ => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
                assert_eq!(body["error"]["id"], "session_verified_address_required", "{body}");
                let item = &body["error"]["details"]["continue_with"][0];
                assert_eq!(item["action"], "show_verification_ui", "{body}");
                assert_eq!(item["flow"]["verifiable_address"], email);
                assert!(item["flow"]["url"].as_str().unwrap().contains("flow="), "{body}");
                item["flow"]["id"].as_str().unwrap().to_string()
            }
        };
        assert!(
            c.jar.get("ory_kratos_session").is_none(),
            "no session before verification"
        );
        assert_eq!(c.whoami().await.status(), 401);

        // The code went out; verifying it lets the login through.
        let vf = c.fetch("verification", &vf_id).await;
        assert_eq!(vf["state"], "sent_email", "{vf}");
        let code = crate::code::code_from_admin_api(&srv, &email).await;
        let res = c.submit(&vf, json!({"method": "code", "code": code})).await;
        let (_, done) = c.flow_after("verification", res).await;
        assert_eq!(done["state"], "passed_challenge", "{done}");
        let res = login(&mut c, &email, PW).await;
        finish(&mut c, res).await;
    }
    // A verified identity passes at once.
    let mut c = Client::new(&srv, Kind::Native);
    identity_with_password(&srv, "verified@example.com", true).await;
    let res = login(&mut c, "verified@example.com", PW).await;
    finish(&mut c, res).await;
}
both!(login_require_verified_address_sends_to_verification_and_issues_no_session);

async fn login_require_verified_address_without_verification_flow_is_4000010(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"login": {"after": {"password": {"hooks": [{"hook": "require_verified_address"}]}}}}}}),
    )
    .await;
    for kind in ALL {
        let email = format!("noverif-{kind:?}@example.com").to_lowercase();
        identity_with_password(&srv, &email, false).await;
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        let flow = refused(&c, res).await;
        assert_eq!(message_ids(&flow), [4000010], "{flow}");
        assert!(c.jar.get("ory_kratos_session").is_none());
    }
}
both!(login_require_verified_address_without_verification_flow_is_4000010);

/// A native session for `email` (the one `revoke_active_sessions` should end).
async fn native_session<'a>(srv: &'a TestServer, email: &str) -> Client<'a> {
    let mut c = Client::new(srv, Kind::Native);
    let res = login(&mut c, email, PW).await;
    finish(&mut c, res).await;
    c
}

async fn login_revoke_active_sessions_follows_kratos_precedence(b: Backend) {
    // The generic list applies when the method list holds no hook that runs after login.
    let fallback = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"login": {"after": {
            "hooks": [{"hook": "revoke_active_sessions"}],
            "password": {"hooks": [{"hook": "b2b_sso"}]}
        }}}}}),
    )
    .await;
    // A method list with a hook that runs replaces the generic list: nothing is revoked.
    let replaced = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"login": {"after": {
            "hooks": [{"hook": "revoke_active_sessions"}],
            "password": {"hooks": [{"hook": "show_verification_ui"}]}
        }}}}}),
    )
    .await;
    for kind in ALL {
        let email = format!("revoke-{kind:?}@example.com").to_lowercase();
        for (srv, revoked) in [(&fallback, true), (&replaced, false)] {
            identity_with_password(srv, &email, false).await;
            let old = native_session(srv, &email).await;
            assert_eq!(old.whoami().await.status(), 200);
            let mut c = Client::new(srv, kind);
            let res = login(&mut c, &email, PW).await;
            finish(&mut c, res).await;
            assert_eq!(c.whoami().await.status(), 200, "the new session stays");
            let expected = if revoked { 401 } else { 200 };
            assert_eq!(old.whoami().await.status(), expected, "{kind:?} revoked={revoked}");
        }
    }
}
both!(login_revoke_active_sessions_follows_kratos_precedence);

async fn login_verification_and_show_verification_ui_sign_in_and_point_to_verification(b: Backend) {
    let srv = TestServer::with_config(
        b,
        verification_on(json!({"selfservice": {"flows": {"login": {"after": {"hooks": [
            {"hook": "verification"}, {"hook": "show_verification_ui"}
        ]}}}}})),
    )
    .await;
    for kind in ALL {
        let email = format!("verif-login-{kind:?}@example.com").to_lowercase();
        identity_with_password(&srv, &email, false).await;
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        let status = res.status();
        let vf_id = match kind {
            Kind::Browser => {
                assert_eq!(status, StatusCode::SEE_OTHER);
                let to = res.headers()["location"].to_str().unwrap().to_string();
                assert!(to.contains("verification") && to.contains("flow="), "{to}");
                assert!(c.jar.get("ory_kratos_session").is_some());
                to.split("flow=").nth(1).unwrap().to_string()
            }
            _ => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, StatusCode::OK, "{body}");
                let items = body["continue_with"].as_array().unwrap();
                let item = items.iter().find(|i| i["action"] == "show_verification_ui").unwrap();
                assert_eq!(item["flow"]["verifiable_address"], email);
                if kind == Kind::Native {
                    c.token = Some(body["session_token"].as_str().unwrap().to_string());
                } else {
                    assert_eq!(items[0]["action"], "redirect_browser_to", "{body}");
                }
                item["flow"]["id"].as_str().unwrap().to_string()
            }
        };
        assert_eq!(c.whoami().await.status(), 200, "signed in");
        let vf = c.fetch("verification", &vf_id).await;
        assert_eq!(vf["state"], "sent_email");
        crate::code::code_from_admin_api(&srv, &email).await;
    }
    // Without `show_verification_ui` the code is sent, but the answer does not point at it.
    let quiet = TestServer::with_config(
        b,
        verification_on(json!({"selfservice": {"flows": {"login": {"after": {"hooks": [{"hook": "verification"}]}}}}})),
    )
    .await;
    identity_with_password(&quiet, "quiet@example.com", false).await;
    let mut c = Client::new(&quiet, Kind::Native);
    let res = login(&mut c, "quiet@example.com", PW).await;
    let body = finish(&mut c, res).await;
    assert_eq!(body["continue_with"], Value::Null, "{body}");
    crate::code::code_from_admin_api(&quiet, "quiet@example.com").await;
}
both!(login_verification_and_show_verification_ui_sign_in_and_point_to_verification);

async fn registration_show_verification_ui_points_every_client_at_an_openable_flow(b: Backend) {
    let srv = TestServer::with_config(
        b,
        verification_on(
            json!({"selfservice": {"flows": {"registration": {"style": "unified", "after": {
                "password": {"hooks": [{"hook": "show_verification_ui"}, {"hook": "session"}]}
            }}}}}),
        ),
    )
    .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = c.init("registration", "").await;
        let email = format!("reg-verify-{kind:?}@example.com").to_lowercase();
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "traits.email": email, "password": PW}),
            )
            .await;
        let status = res.status();
        let vf_id = if kind == Kind::Browser {
            assert_eq!(status, StatusCode::SEE_OTHER);
            let to = res.headers()["location"].to_str().unwrap().to_string();
            assert!(to.contains("verification") && to.contains("flow="), "{to}");
            to.split("flow=").nth(1).unwrap().to_string()
        } else {
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, 200, "{body}");
            let items = body["continue_with"].as_array().unwrap();
            let item = items.iter().find(|i| i["action"] == "show_verification_ui").unwrap();
            assert_eq!(item["flow"]["verifiable_address"], email);
            assert_eq!(item["flow"]["url"].is_string(), kind == Kind::Spa, "{body}");
            item["flow"]["id"].as_str().unwrap().to_string()
        };
        // The session (`session` listed first or last: it runs last) and a flow the client
        // can open — browsers with the CSRF cookie the registration answer set.
        assert!(c.jar.get("ory_kratos_session").is_some() || kind == Kind::Native);
        let vf = c.fetch("verification", &vf_id).await;
        assert_eq!(vf["state"], "sent_email", "{vf}");
        let code = crate::code::code_from_admin_api(&srv, &email).await;
        let res = c.submit(&vf, json!({"method": "code", "code": code})).await;
        let (_, done) = c.flow_after("verification", res).await;
        assert_eq!(done["state"], "passed_challenge", "{done}");
    }
}
both!(registration_show_verification_ui_points_every_client_at_an_openable_flow);

async fn settings_new_address_gets_a_code_and_show_verification_ui_points_at_it(b: Backend) {
    let srv = TestServer::with_config(
        b,
        verification_on(json!({"selfservice": {"flows": {"settings": {"after": {
            "profile": {"hooks": [{"hook": "show_verification_ui"}]}
        }}}}})),
    )
    .await;
    for kind in ALL {
        let email = format!("settings-{kind:?}@example.com").to_lowercase();
        identity_with_password(&srv, &email, true).await;
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        finish(&mut c, res).await;
        let flow = c.init("settings", "").await;
        let new = format!("new-{email}");
        let res = c.submit(&flow, json!({"method": "profile", "traits.email": new})).await;
        let (status, after) = c.flow_after("settings", res).await;
        assert_eq!(after["state"], "success", "{after}");
        if kind != Kind::Browser {
            assert_eq!(status, 200);
            let items = after["continue_with"].as_array().unwrap();
            let item = items.iter().find(|i| i["action"] == "show_verification_ui").unwrap();
            assert_eq!(item["flow"]["verifiable_address"], new, "{after}");
            let vf = c.fetch("verification", item["flow"]["id"].as_str().unwrap()).await;
            assert_eq!(vf["state"], "sent_email");
        }
        crate::code::code_from_admin_api(&srv, &new).await;
        // Saving again mails nobody: the new address already got its code.
        let count = |to: String| {
            let srv = &srv;
            async move {
                let url = srv.admin_url(&format!("/admin/courier/messages?recipient={to}"));
                let msgs: Vec<Value> = srv.client().get(url).send().await.unwrap().json().await.unwrap();
                msgs.len()
            }
        };
        let before = count(new.clone()).await;
        let flow = c.init("settings", "").await;
        let res = c.submit(&flow, json!({"method": "profile", "traits.email": new})).await;
        let (_, after) = c.flow_after("settings", res).await;
        assert_eq!(after["state"], "success");
        assert_eq!(count(new.clone()).await, before);
    }
}
both!(settings_new_address_gets_a_code_and_show_verification_ui_points_at_it);
