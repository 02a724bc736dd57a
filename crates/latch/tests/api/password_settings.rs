//! The password in settings (change it, or add one to a code-only account), the privileged
//! session it needs and the change resumed after the refresh login, the
//! `revoke_active_sessions` hook, and the breach check against a local range API — for
//! browser, SPA and native clients.

use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha1::Digest as _;

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node, node_message_ids};
use crate::code::{code_from_admin_api, send_step};
use crate::flows::{finish, login, register};
use crate::harness::{Backend, TestServer};

/// The password `flows::register` sets.
const PW: &str = "correct horse battery staple";
const NEW: &str = "a brand new passphrase for latch";

/// Submits a new password to a settings flow; the flow as the client then sees it.
async fn change(c: &Client<'_>, flow: &Value, password: &str) -> (StatusCode, Value) {
    let res = c
        .submit(flow, json!({"method": "password", "password": password}))
        .await;
    c.flow_after("settings", res).await
}

/// Signs in with a fresh client: `true` when the password is accepted.
async fn signs_in(srv: &TestServer, kind: Kind, email: &str, password: &str) -> bool {
    let mut c = Client::new(srv, kind);
    let res = login(&mut c, email, password).await;
    let ok = match kind {
        Kind::Browser => res.headers()["location"] == "http://app.test/welcome",
        _ => res.status() == StatusCode::OK,
    };
    if ok {
        finish(&mut c, res).await;
    } else {
        let (_, flow) = c.flow_after("login", res).await;
        assert_eq!(message_ids(&flow), vec![4000006], "{flow}");
    }
    ok
}

fn password_group(flow: &Value) -> Vec<Value> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["group"] == "password")
        .cloned()
        .collect()
}

async fn settings_password_change_then_only_the_new_one_signs_in(b: Backend) {
    let srv = TestServer::start(b).await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        let email = format!("pw-{kind:?}@example.com").to_lowercase();
        register(&mut c, &email).await;
        let flow = c.init("settings", "").await;
        if kind == Kind::Browser {
            insta::assert_json_snapshot!("settings_password_nodes", password_group(&flow));
        }
        let pw = node(&flow, "password").unwrap();
        assert_eq!(pw["group"], "password");
        assert_eq!(pw["attributes"]["type"], "password");
        assert_eq!(pw["attributes"]["autocomplete"], "new-password");
        assert_eq!(pw["attributes"]["required"], true);
        assert_eq!(pw["meta"]["label"]["id"], 1070001);
        let (status, after) = change(&c, &flow, NEW).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "{after}");
        }
        assert_eq!(after["state"], "success", "{after}");
        assert_eq!(message_ids(&after), vec![1050001]);
        assert_ne!(node(&after, "password").unwrap()["attributes"]["value"], NEW);
        assert_eq!(c.whoami().await.status(), 200, "the session that changed it stays");
        assert!(!signs_in(&srv, kind, &email, PW).await, "the old password is refused");
        assert!(signs_in(&srv, kind, &email, NEW).await, "the new password signs in");
    }
}
both!(settings_password_change_then_only_the_new_one_signs_in);

async fn settings_password_policy_refusals_carry_kratos_messages(b: Backend) {
    let srv = TestServer::start(b).await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        let email = format!("policy-{kind:?}@example.com").to_lowercase();
        register(&mut c, &email).await;
        let mut flow = c.init("settings", "").await;
        for (password, id) in [
            ("", 4000002),
            ("short", 4000032),
            (email.as_str(), 4000031),
            (PW, 4000039),
        ] {
            let (status, after) = change(&c, &flow, password).await;
            if kind != Kind::Browser {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{after}");
            }
            assert_eq!(node_message_ids(&after, "password"), vec![id], "{password:?}: {after}");
            assert_eq!(after["state"], "show_form");
            flow = after;
        }
        assert!(signs_in(&srv, kind, &email, PW).await, "nothing changed");
    }
}
both!(settings_password_policy_refusals_carry_kratos_messages);

async fn settings_password_needs_a_privileged_session_and_resumes_after_the_refresh_login(b: Backend) {
    let srv = TestServer::start(b).await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        let email = format!("refresh-{kind:?}@example.com").to_lowercase();
        register(&mut c, &email).await;
        let flow = c.init("settings", "").await;
        let id = flow["id"].as_str().unwrap();
        srv.clock.advance(std::time::Duration::from_secs(16 * 60));
        let back = srv.public_url(&format!("/self-service/settings?flow={id}"));
        let refresh = format!(
            "{}?refresh=true&return_to={}",
            srv.public_url("/self-service/login/browser"),
            url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
        );
        let res = c.submit(&flow, json!({"method": "password", "password": NEW})).await;
        match kind {
            Kind::Browser => {
                assert_eq!(res.status(), 303);
                assert_eq!(res.headers()["location"].to_str().unwrap(), refresh);
                // The refresh login returns to the settings submit URL, which applies the
                // change that was waiting (Kratos' continuity).
                let res = c.send(c.req(Method::GET, &refresh)).await;
                assert_eq!(res.status(), 303);
                let loc = res.headers()["location"].to_str().unwrap().to_string();
                let login_flow = c.fetch("login", loc.split("flow=").nth(1).unwrap()).await;
                assert_eq!(login_flow["refresh"], true);
                let res = c
                    .submit(
                        &login_flow,
                        json!({"method": "password", "identifier": email, "password": PW}),
                    )
                    .await;
                assert_eq!(res.status(), 303);
                assert_eq!(res.headers()["location"].to_str().unwrap(), back);
                let res = c.send(c.req(Method::GET, &back)).await;
                let (_, after) = c.flow_after("settings", res).await;
                assert_eq!(after["id"], flow["id"]);
                assert_eq!(after["state"], "success", "{after}");
                assert_eq!(message_ids(&after), vec![1050001]);
                // Resumed once: coming back again changes nothing and submits nothing.
                let res = c.send(c.req(Method::GET, &back)).await;
                assert_ne!(res.status(), 200);
            }
            _ => {
                assert_eq!(res.status(), 403);
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"]["id"], "session_refresh_required");
                assert_eq!(body["redirect_browser_to"], refresh);
                assert!(signs_in(&srv, kind, &email, PW).await, "nothing changed yet");
                // JSON clients re-authenticate and submit again (Kratos resumes only
                // browser navigations).
                let login_flow = c.init("login", "?refresh=true").await;
                assert_eq!(login_flow["refresh"], true);
                let res = c
                    .submit(
                        &login_flow,
                        json!({"method": "password", "identifier": email, "password": PW}),
                    )
                    .await;
                assert_eq!(res.status(), 200);
                let (status, after) = change(&c, &flow, NEW).await;
                assert_eq!(status, StatusCode::OK, "{after}");
                assert_eq!(after["state"], "success");
            }
        }
        assert!(signs_in(&srv, kind, &email, NEW).await);
        assert!(!signs_in(&srv, kind, &email, PW).await);
    }
}
both!(settings_password_needs_a_privileged_session_and_resumes_after_the_refresh_login);

async fn settings_password_change_revokes_other_sessions_only_with_the_hook(b: Backend) {
    let hooked = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"settings": {"after": {"password": {"hooks": [
            {"hook": "revoke_active_sessions"}
        ]}}}}}}),
    )
    .await;
    let plain = TestServer::start(b).await;
    for (srv, revokes) in [(&hooked, true), (&plain, false)] {
        for kind in ALL {
            let mut c = Client::new(srv, kind);
            let email = format!("revoke-{kind:?}@example.com").to_lowercase();
            register(&mut c, &email).await;
            let mut other = Client::new(srv, Kind::Native);
            let res = login(&mut other, &email, PW).await;
            finish(&mut other, res).await;
            // A profile save runs the profile hooks, not the password ones.
            let flow = c.init("settings", "").await;
            let res = c
                .submit(&flow, json!({"method": "profile", "traits.email": email}))
                .await;
            let (_, flow) = c.flow_after("settings", res).await;
            assert_eq!(flow["state"], "success");
            assert_eq!(other.whoami().await.status(), 200);
            let (_, after) = change(&c, &flow, NEW).await;
            assert_eq!(message_ids(&after), vec![1050001]);
            assert_eq!(c.whoami().await.status(), 200, "the session in use is kept");
            let expected = if revokes { 401 } else { 200 };
            assert_eq!(other.whoami().await.status(), expected, "{kind:?} revokes={revokes}");
        }
    }
}
both!(settings_password_change_revokes_other_sessions_only_with_the_hook);

async fn recovery_revokes_other_sessions_with_the_hook(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"recovery": {"enabled": true, "use": "code",
            "after": {"hooks": [{"hook": "revoke_active_sessions"}]}}}},
        "courier": {"smtp": {"connection_uri": "smtp://127.0.0.1:1/?disable_starttls=true"}}}),
    )
    .await;
    let email = "recover-revoke@example.com";
    let created = srv
        .create_identity(json!({"schema_id": "default", "traits": {"email": email},
            "credentials": {"password": {"config": {"password": PW}}}}))
        .await;
    let mut other = Client::new(&srv, Kind::Native);
    let res = login(&mut other, email, PW).await;
    finish(&mut other, res).await;
    assert_eq!(other.whoami().await.status(), 200);
    let http = srv.client();
    let body: Value = http
        .post(srv.admin_url("/admin/recovery/code"))
        .json(&json!({"identity_id": created["id"], "expires_in": "15m", "flow_type": "api"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = body["recovery_code"].as_str().unwrap();
    let id = body["recovery_link"].as_str().unwrap().split("flow=").nth(1).unwrap();
    let c = Client::new(&srv, Kind::Native);
    let flow = c.fetch("recovery", id).await;
    let res = c.submit(&flow, json!({"method": "code", "code": code})).await;
    let body: Value = res.json().await.unwrap();
    let token = body["continue_with"][0]["ory_session_token"].as_str().unwrap();
    let mine = http
        .get(srv.public_url("/sessions/whoami"))
        .header("x-session-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 200, "the recovery session is kept");
    assert_eq!(other.whoami().await.status(), 401, "the earlier session is revoked");
}
both!(recovery_revokes_other_sessions_with_the_hook);

async fn settings_password_added_to_a_code_only_account(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"registration": {"after": {"code": {"hooks": [{"hook": "session"}]}}}}}}),
    )
    .await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        let email = format!("codeonly-{kind:?}@example.com").to_lowercase();
        let flow = c.init("registration", "").await;
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": email}))
            .await;
        let (_, flow) = c.flow_after("registration", res).await;
        let flow = send_step(
            &c,
            "registration",
            &flow,
            json!({"method": "code", "traits.email": email}),
        )
        .await;
        let code = code_from_admin_api(&srv, &email).await;
        let res = c
            .submit(&flow, json!({"method": "code", "traits.email": email, "code": code}))
            .await;
        finish(&mut c, res).await;
        assert!(!signs_in(&srv, kind, &email, NEW).await, "no password yet");
        let flow = c.init("settings", "").await;
        assert!(node(&flow, "password").is_some(), "offered without a password");
        let (_, after) = change(&c, &flow, NEW).await;
        assert_eq!(after["state"], "success", "{after}");
        assert_eq!(after["identity"]["id"], flow["identity"]["id"]);
        assert!(signs_in(&srv, kind, &email, NEW).await, "the added password signs in");
    }
}
both!(settings_password_added_to_a_code_only_account);

/// A local k-anonymity range API (`GET /range/<5 hex>` → `SUFFIX:COUNT` lines) that lists
/// each of `breached` with its count, and records the prefixes it was asked for.
async fn range_api(breached: &[(&str, u64)]) -> (String, Arc<Mutex<Vec<String>>>) {
    let listed: Vec<(String, u64)> = breached
        .iter()
        .map(|(p, n)| {
            let d = sha1::Sha1::digest(p.as_bytes());
            (d.iter().map(|b| format!("{b:02X}")).collect(), *n)
        })
        .collect();
    let asked = Arc::new(Mutex::new(vec![]));
    let seen = asked.clone();
    let app = axum::Router::new().route(
        "/range/{prefix}",
        axum::routing::get(move |axum::extract::Path(prefix): axum::extract::Path<String>| {
            let listed = listed.clone();
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(prefix.clone());
                let mut lines = vec!["0000000000000000000000000000000000A:7".to_string()];
                for (hash, n) in &listed {
                    if hash[..5].eq_ignore_ascii_case(&prefix) {
                        lines.push(format!("{}:{n}", &hash[5..]));
                    }
                }
                lines.join("\r\n")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, asked)
}

fn hibp(host: &str, extra: Value) -> Value {
    let mut config = json!({"haveibeenpwned_enabled": true, "haveibeenpwned_host": host});
    crate::harness::merge(&mut config, &extra);
    json!({"selfservice": {"methods": {"password": {"config": config}}}})
}

/// Registration's password step for `email`: the flow after it (refused) or `None` (signed up).
async fn register_with(c: &mut Client<'_>, email: &str, password: &str) -> Option<Value> {
    let flow = c.init("registration", "").await;
    let res = c
        .submit(&flow, json!({"method": "profile", "traits.email": email}))
        .await;
    let (_, flow) = c.flow_after("registration", res).await;
    let res = c
        .submit(
            &flow,
            json!({"method": "password", "traits.email": email, "password": password}),
        )
        .await;
    let ok = match c.kind {
        Kind::Browser => res.headers()["location"] == "http://app.test/welcome",
        _ => res.status() == StatusCode::OK,
    };
    if ok {
        finish(c, res).await;
        return None;
    }
    Some(c.flow_after("registration", res).await.1)
}

const BREACHED: &str = "this one leaked in 2019";

async fn password_breach_check_refuses_listed_passwords_at_registration_and_settings(b: Backend) {
    let (host, asked) = range_api(&[(BREACHED, 3)]).await;
    let srv = TestServer::with_config(b, hibp(&host, json!({}))).await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        let email = format!("hibp-{kind:?}@example.com").to_lowercase();
        let refused = register_with(&mut c, &email, BREACHED).await.expect("refused");
        assert_eq!(node_message_ids(&refused, "password"), vec![4000034], "{refused}");
        let msg = &node(&refused, "password").unwrap()["messages"][0];
        assert_eq!(msg["context"]["breaches"], 3);
        assert!(
            register_with(&mut c, &email, PW).await.is_none(),
            "an unlisted one passes"
        );
        let flow = c.init("settings", "").await;
        let (_, after) = change(&c, &flow, BREACHED).await;
        assert_eq!(node_message_ids(&after, "password"), vec![4000034]);
        let (_, after) = change(&c, &after, NEW).await;
        assert_eq!(after["state"], "success");
    }
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 12, "{asked:?}");
    assert!(
        asked.iter().all(|p| p.len() == 5),
        "only 5-digit prefixes leave Latch: {asked:?}"
    );
    // Up to max_breaches listings are tolerated.
    let tolerant = TestServer::with_config(b, hibp(&host, json!({"max_breaches": 3}))).await;
    let mut c = Client::new(&tolerant, Kind::Native);
    assert!(register_with(&mut c, "tolerant@example.com", BREACHED).await.is_none());
}
both!(password_breach_check_refuses_listed_passwords_at_registration_and_settings);

async fn password_breach_check_unreachable_passes_only_with_ignore_network_errors(b: Backend) {
    // Nothing listens on port 1: connecting fails at once.
    let down = "http://127.0.0.1:1";
    let lenient = TestServer::with_config(b, hibp(down, json!({}))).await;
    for kind in ALL {
        let mut c = Client::new(&lenient, kind);
        let email = format!("offline-{kind:?}@example.com").to_lowercase();
        assert!(
            register_with(&mut c, &email, PW).await.is_none(),
            "Kratos' default lets it pass"
        );
    }
    let strict = TestServer::with_config(b, hibp(down, json!({"ignore_network_errors": false}))).await;
    for kind in ALL {
        let mut c = Client::new(&strict, kind);
        let email = format!("strict-{kind:?}@example.com").to_lowercase();
        // The check cannot be skipped: the field says why (Kratos' 4000005), nothing is created.
        let refused = register_with(&mut c, &email, PW).await.expect("refused");
        assert_eq!(node_message_ids(&refused, "password"), vec![4000005], "{refused}");
        let reason = &node(&refused, "password").unwrap()["messages"][0]["context"]["reason"];
        assert!(reason.as_str().unwrap().contains("network error"), "{refused}");
        assert_eq!(c.whoami().await.status(), 401);
    }
}
both!(password_breach_check_unreachable_passes_only_with_ignore_network_errors);

async fn settings_page_of_the_built_in_ui_offers_the_password_change(b: Backend) {
    let srv = TestServer::start(b).await;
    let mut c = Client::new(&srv, Kind::Browser);
    register(&mut c, "page@example.com").await;
    let res = c.send(c.req(Method::GET, &srv.public_url("/ui/settings"))).await;
    assert_eq!(res.status(), 303);
    let init = res.headers()["location"].to_str().unwrap().to_string();
    let res = c.send(c.req(Method::GET, &init)).await;
    assert_eq!(res.status(), 303);
    let page = res.headers()["location"].to_str().unwrap().to_string();
    assert!(page.contains("/ui/settings?flow="), "{page}");
    let res = c.send(c.req(Method::GET, &page)).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let input = html
        .split('<')
        .find(|t| t.starts_with("input") && t.contains("name=\"password\""))
        .unwrap_or_else(|| panic!("a password input: {html}"));
    assert!(input.contains("type=\"password\""), "{input}");
    assert!(input.contains("autocomplete=\"new-password\""), "{input}");
    assert!(
        html.split('<')
            .any(|t| t.contains("name=\"method\"") && t.contains("value=\"password\"")),
        "a submit button for the password method: {html}"
    );
}
both!(settings_page_of_the_built_in_ui_offers_the_password_change);
