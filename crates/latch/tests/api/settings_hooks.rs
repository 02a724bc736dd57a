//! Settings hooks about addresses (`verify_new_address`, `notify_previous_addresses`) with mail
//! read from a real SMTP server, and the password-migration hook's Jsonnet `body` received by a
//! real HTTP server on 127.0.0.1 — for browser, SPA and native clients, on SQLite and
//! PostgreSQL.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode as AxStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids};
use crate::code::code_of;
use crate::flows::{finish, login};
use crate::harness::{Backend, TestServer, merge};
use crate::smtp_sink::SmtpSink;

const PW: &str = "a-long-enough-test-password";

fn config(sink: &SmtpSink, profile_hooks: Value) -> Value {
    json!({
        "courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}},
        "selfservice": {"flows": {
            "verification": {"enabled": true, "use": "code"},
            "settings": {"after": {"profile": {"hooks": profile_hooks}}}
        }}
    })
}

/// An identity with a password and a verified address; its id.
async fn identity(srv: &TestServer, email: &str) -> String {
    let body = json!({
        "schema_id": "default",
        "traits": {"email": email},
        "credentials": {"password": {"config": {"password": PW}}},
        "verifiable_addresses": [{"value": email, "via": "email", "verified": true, "status": "completed"}]
    });
    srv.create_identity(body).await["id"].as_str().unwrap().to_string()
}

async fn admin_identity(srv: &TestServer, id: &str) -> Value {
    let url = srv.admin_url(&format!("/admin/identities/{id}"));
    srv.client().get(url).send().await.unwrap().json().await.unwrap()
}

/// Messages the outbox holds for `to` (the admin courier API).
async fn outbox_count(srv: &TestServer, to: &str) -> usize {
    let url = srv.admin_url(&format!("/admin/courier/messages?recipient={to}"));
    let msgs: Vec<Value> = srv.client().get(url).send().await.unwrap().json().await.unwrap();
    msgs.len()
}

async fn signed_in<'a>(srv: &'a TestServer, kind: Kind, email: &str) -> Client<'a> {
    let mut c = Client::new(srv, kind);
    let res = login(&mut c, email, PW).await;
    finish(&mut c, res).await;
    c
}

/// Submits a profile change of the email and checks Kratos' deferred answer; returns the
/// verification flow it points at.
async fn change_email_deferred(c: &Client<'_>, new: &str) -> Value {
    let flow = c.init("settings", "").await;
    let res = c.submit(&flow, json!({"method": "profile", "traits.email": new})).await;
    let status = res.status();
    let vf_id = match c.kind {
        Kind::Browser => {
            assert_eq!(status, StatusCode::SEE_OTHER);
            let to = res.headers()["location"].to_str().unwrap().to_string();
            assert!(to.contains("/verification") && to.contains("flow="), "{to}");
            to.split("flow=").nth(1).unwrap().to_string()
        }
        _ => {
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "Kratos writes the settings flow: {body}");
            assert_eq!(body["id"], flow["id"], "{body}");
            assert_eq!(body["state"], "show_form", "nothing was saved: {body}");
            let items = body["continue_with"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{body}");
            assert_eq!(items[0]["action"], "show_verification_ui", "{body}");
            assert_eq!(items[0]["flow"]["verifiable_address"], new, "{body}");
            // Only browser flows have a UI URL.
            assert_eq!(items[0]["flow"]["url"].is_string(), c.kind == Kind::Spa, "{body}");
            items[0]["flow"]["id"].as_str().unwrap().to_string()
        }
    };
    let vf = c.fetch("verification", &vf_id).await;
    assert_eq!(vf["state"], "sent_email", "{vf}");
    assert_eq!(vf["type"], if c.kind == Kind::Native { "api" } else { "browser" });
    vf
}

async fn verify_new_address_applies_the_change_only_after_the_code(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(
        b,
        config(
            &sink,
            json!([{"hook": "verify_new_address"}, {"hook": "notify_previous_addresses"}]),
        ),
    )
    .await;
    for kind in ALL {
        let old = format!("vna-{kind:?}@example.com").to_lowercase();
        let new = format!("new-{old}");
        let id = identity(&srv, &old).await;
        let c = signed_in(&srv, kind, &old).await;

        let vf = change_email_deferred(&c, &new).await;
        // Nothing changed yet: traits, addresses, the session's identity; no notice either.
        let before = admin_identity(&srv, &id).await;
        assert_eq!(before["traits"]["email"], old, "{before}");
        assert_eq!(before["verifiable_addresses"].as_array().unwrap().len(), 1);
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["identity"]["traits"]["email"], old);
        assert_eq!(outbox_count(&srv, &old).await, 0);

        // The code went to the new address; entering it applies the change.
        let code = code_of(&sink.next_mail_to(&new).await);
        let res = c.submit(&vf, json!({"method": "code", "code": code})).await;
        let (status, done) = c.flow_after("verification", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "{done}");
        }
        assert_eq!(done["state"], "passed_challenge", "{done}");
        assert_eq!(message_ids(&done), [1080002], "{done}");

        let after = admin_identity(&srv, &id).await;
        assert_eq!(after["traits"]["email"], new, "{after}");
        let addresses = after["verifiable_addresses"].as_array().unwrap();
        assert_eq!(addresses.len(), 1, "{after}");
        assert_eq!(addresses[0]["value"], new);
        assert_eq!(addresses[0]["verified"], true, "the code proved it: {after}");
        assert_eq!(addresses[0]["status"], "completed");
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["identity"]["traits"]["email"], new, "the session sees the change");

        // notify_previous_addresses ran after the change was applied: the old address is told.
        let notice = sink.next_mail_to(&old).await;
        assert_eq!(
            notice.header("Subject"),
            Some("An address of your account was changed"),
            "{notice:?}"
        );
        assert!(notice.text.clone().unwrap().contains(&id), "{notice:?}");

        // The password now signs in with the new address only.
        let mut again = Client::new(&srv, Kind::Native);
        let res = login(&mut again, &new, PW).await;
        finish(&mut again, res).await;
        let mut stale = Client::new(&srv, Kind::Native);
        let res = login(&mut stale, &old, PW).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);

        // The code is used up: the flow cannot apply anything again.
        let res = c.submit(&vf, json!({"method": "code", "code": code})).await;
        let (_, again) = c.flow_after("verification", res).await;
        assert_ne!(message_ids(&again), [1080002], "{again}");
    }
}
both!(verify_new_address_applies_the_change_only_after_the_code);

async fn verify_new_address_is_refused_after_the_session_ends(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink, json!([{"hook": "verify_new_address"}]))).await;
    for kind in ALL {
        for how in ["revoked", "logged out everywhere"] {
            let old = format!("gone-{kind:?}-{}@example.com", how.len()).to_lowercase();
            let new = format!("new-{old}");
            let id = identity(&srv, &old).await;
            let c = signed_in(&srv, kind, &old).await;
            let vf = change_email_deferred(&c, &new).await;
            let code = code_of(&sink.next_mail_to(&new).await);

            let who: Value = c.whoami().await.json().await.unwrap();
            let sid = who["id"].as_str().unwrap();
            let url = match how {
                "revoked" => srv.admin_url(&format!("/admin/sessions/{sid}")),
                _ => srv.admin_url(&format!("/admin/identities/{id}/sessions")),
            };
            let res = srv.client().delete(url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::NO_CONTENT, "{how}");

            // The verification flow needs no session; the change is refused all the same.
            let res = c.submit(&vf, json!({"method": "code", "code": code})).await;
            let (status, flow) = c.flow_after("verification", res).await;
            if kind != Kind::Browser {
                assert_eq!(status, StatusCode::OK, "{flow}");
            }
            assert_eq!(message_ids(&flow), [4070006], "{how}: {flow}");
            assert_eq!(flow["state"], "sent_email", "{flow}");
            let after = admin_identity(&srv, &id).await;
            assert_eq!(after["traits"]["email"], old, "{how}: {after}");
            assert_eq!(after["verifiable_addresses"][0]["value"], old);
        }
    }
}
both!(verify_new_address_is_refused_after_the_session_ends);

async fn verify_new_address_code_applies_once_under_simultaneous_submissions(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink, json!([{"hook": "verify_new_address"}]))).await;
    let old = "race-vna@example.com";
    let new = "new-race-vna@example.com";
    let id = identity(&srv, old).await;
    let c = signed_in(&srv, Kind::Native, old).await;
    let vf = change_email_deferred(&c, new).await;
    let code = code_of(&sink.next_mail_to(new).await);
    let answers =
        futures_util::future::join_all((0..6).map(|_| c.submit(&vf, json!({"method": "code", "code": code.clone()}))))
            .await;
    let mut passed = 0;
    for res in answers {
        let body: Value = res.json().await.unwrap();
        if body["state"] == "passed_challenge" {
            passed += 1;
        }
    }
    assert_eq!(passed, 1, "the code applies the change exactly once");
    assert_eq!(admin_identity(&srv, &id).await["traits"]["email"], new);
}
both!(verify_new_address_code_applies_once_under_simultaneous_submissions);

/// The default schema plus a second verifiable address.
fn two_address_schema() -> Value {
    use base64::Engine;
    let mut schema: Value = serde_json::from_str(crate::harness::SCHEMA).unwrap();
    schema["properties"]["traits"]["properties"]["backup"] = json!({
        "type": "string", "format": "email",
        "ory.sh/kratos": {"verification": {"via": "email"}}
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(schema.to_string());
    json!({"identity": {"schemas": [{"id": "default", "url": format!("base64://{encoded}")}]}})
}

async fn verify_new_address_refuses_two_changes_at_once_and_a_taken_address(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = config(&sink, json!([{"hook": "verify_new_address"}]));
    merge(&mut cfg, &two_address_schema());
    let srv = TestServer::with_config(b, cfg).await;
    identity(&srv, "taken@example.com").await;
    for kind in ALL {
        let old = format!("two-{kind:?}@example.com").to_lowercase();
        let id = identity(&srv, &old).await;
        let c = signed_in(&srv, kind, &old).await;

        let flow = c.init("settings", "").await;
        let res = c
            .submit(
                &flow,
                json!({"method": "profile", "traits.email": format!("a-{old}"), "traits.backup": format!("b-{old}")}),
            )
            .await;
        let (status, after) = c.flow_after("settings", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "Kratos answers 200 here: {after}");
        }
        assert_eq!(message_ids(&after), [4050002], "{after}");

        let flow = c.init("settings", "").await;
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": "taken@example.com"}))
            .await;
        let (status, after) = c.flow_after("settings", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{after}");
        }
        assert_eq!(message_ids(&after), [4000007], "{after}");

        assert_eq!(admin_identity(&srv, &id).await["traits"]["email"], old);
        // A change that touches no address is stored at once.
        let flow = c.init("settings", "").await;
        let res = c
            .submit(
                &flow,
                json!({"method": "profile", "traits.email": old, "traits.name.first": "Ada"}),
            )
            .await;
        let (_, after) = c.flow_after("settings", res).await;
        assert_eq!(after["state"], "success", "{after}");
        assert_eq!(admin_identity(&srv, &id).await["traits"]["name"]["first"], "Ada");
    }
}
both!(verify_new_address_refuses_two_changes_at_once_and_a_taken_address);

async fn notify_previous_addresses_mails_the_removed_address_on_a_direct_change(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink, json!([{"hook": "notify_previous_addresses"}]))).await;
    for kind in ALL {
        let old = format!("notify-{kind:?}@example.com").to_lowercase();
        let new = format!("new-{old}");
        let id = identity(&srv, &old).await;
        let c = signed_in(&srv, kind, &old).await;
        // A save that keeps the address mails nobody.
        let flow = c.init("settings", "").await;
        let res = c
            .submit(
                &flow,
                json!({"method": "profile", "traits.email": old, "traits.name.first": "Bo"}),
            )
            .await;
        let (_, after) = c.flow_after("settings", res).await;
        assert_eq!(after["state"], "success", "{after}");
        assert_eq!(outbox_count(&srv, &old).await, 0);

        let flow = c.init("settings", "").await;
        let res = c.submit(&flow, json!({"method": "profile", "traits.email": new})).await;
        let (_, after) = c.flow_after("settings", res).await;
        assert_eq!(after["state"], "success", "stored at once: {after}");
        assert_eq!(admin_identity(&srv, &id).await["traits"]["email"], new);
        let notice = sink.next_mail_to(&old).await;
        assert_eq!(notice.header("Subject"), Some("An address of your account was changed"));
        let text = notice.text.clone().unwrap();
        assert!(text.contains(&old) && text.contains(&id), "{text}");
        assert_eq!(
            outbox_count(&srv, &new).await,
            1,
            "only the verification code to the new address"
        );
    }
}
both!(notify_previous_addresses_mails_the_removed_address_on_a_direct_change);

// --- Password migration hook with a Jsonnet body ---------------------------------------------

/// What the old system received: content type and raw body of each call.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String)>>>);

async fn old_system(
    axum::extract::State(seen): axum::extract::State<Received>,
    headers: HeaderMap,
    body: String,
) -> (AxStatus, String) {
    let ct = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    seen.0.lock().unwrap().push((ct, body.clone()));
    let matched = body.contains("old-secret");
    if matched {
        (AxStatus::OK, json!({"status": "password_match"}).to_string())
    } else {
        (AxStatus::FORBIDDEN, "{}".into())
    }
}

async fn start_old_system() -> (String, Received) {
    let seen = Received::default();
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

fn migrate_with_body(url: &str, program: &str, headers: Value) -> Value {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(program);
    json!({"selfservice": {"methods": {"password": {"config": {"migrate_hook": {
        "enabled": true,
        "config": {"url": url, "method": "POST", "headers": headers, "body": format!("base64://{body}")}
    }}}}}})
}

async fn migration_hook_sends_the_jsonnet_body(b: Backend) {
    let (url, seen) = start_old_system().await;
    let program = r#"function(ctx) {
        user: ctx.identifier,
        secret: ctx.password,
        id: ctx.identity.id,
        email: ctx.identity.traits.email,
        flow: ctx.flow.id,
        flow_type: ctx.flow.type,
        method: ctx.request_method,
        url: ctx.request_url,
    }"#;
    let json_srv = TestServer::with_config(b, migrate_with_body(&url, program, json!({}))).await;
    let form_program = r#"function(ctx) { user: ctx.identifier, pw: ctx.password }"#;
    let form_srv = TestServer::with_config(
        b,
        migrate_with_body(
            &url,
            form_program,
            json!({"Content-Type": "application/x-www-form-urlencoded"}),
        ),
    )
    .await;
    for kind in ALL {
        let email = format!("jsonnet-{kind:?}@example.com").to_lowercase();
        let created = json_srv
            .create_identity(json!({
                "schema_id": "default",
                "traits": {"email": email},
                "credentials": {"password": {"config": {"use_password_migration_hook": true}}}
            }))
            .await;
        let id = created["id"].as_str().unwrap();
        let mut c = Client::new(&json_srv, kind);
        let flow = c.init("login", "").await;
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "identifier": email, "password": "old-secret"}),
            )
            .await;
        finish(&mut c, res).await;
        let (ct, body) = seen.0.lock().unwrap().last().cloned().unwrap();
        assert_eq!(ct, "application/json");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({
                "user": email, "secret": "old-secret", "id": id, "email": email,
                "flow": flow["id"], "flow_type": flow["type"], "method": "POST",
                "url": flow["ui"]["action"]
            }),
            "the program's output is the body"
        );

        // A wrong password: the program runs, the old system says no.
        let mut wrong = Client::new(&json_srv, Kind::Native);
        let other = format!("other-{email}");
        json_srv
            .create_identity(json!({
                "schema_id": "default",
                "traits": {"email": other},
                "credentials": {"password": {"config": {"use_password_migration_hook": true}}}
            }))
            .await;
        let res = login(&mut wrong, &other, "not-it").await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);

        // Form-encoded when the configured Content-Type says so.
        form_srv
            .create_identity(json!({
                "schema_id": "default",
                "traits": {"email": email},
                "credentials": {"password": {"config": {"use_password_migration_hook": true}}}
            }))
            .await;
        let mut c = Client::new(&form_srv, kind);
        let res = login(&mut c, &email, "old-secret").await;
        finish(&mut c, res).await;
        let (ct, body) = seen.0.lock().unwrap().last().cloned().unwrap();
        assert_eq!(ct, "application/x-www-form-urlencoded");
        let expected = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("pw", "old-secret")
            .append_pair("user", &email)
            .finish();
        assert_eq!(body, expected);
    }
}
both!(migration_hook_sends_the_jsonnet_body);

async fn migration_hook_body_that_fails_is_a_500_and_sends_nothing(b: Backend) {
    let (url, seen) = start_old_system().await;
    let srv = TestServer::with_config(
        b,
        migrate_with_body(&url, r#"function(ctx) { x: error "boom " + ctx.password }"#, json!({})),
    )
    .await;
    srv.create_identity(json!({
        "schema_id": "default",
        "traits": {"email": "boom@example.com"},
        "credentials": {"password": {"config": {"use_password_migration_hook": true}}}
    }))
    .await;
    let mut c = Client::new(&srv, Kind::Native);
    let res = login(&mut c, "boom@example.com", "old-secret").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = res.text().await.unwrap();
    assert!(!body.contains("old-secret"), "{body}");
    assert!(seen.0.lock().unwrap().is_empty(), "no call without a body");
}
both!(migration_hook_body_that_fails_is_a_500_and_sends_nothing);

/// The link in a verification mail.
fn link_of(mail: &crate::smtp_sink::Mail) -> String {
    let text = mail.text.clone().unwrap_or_default();
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains("/self-service/verification?") && w.contains("token="))
        .unwrap_or_else(|| panic!("no verification link in mail: {text}"))
        .to_string()
}

async fn verify_new_address_by_link_applies_or_refuses_after_revocation(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = config(&sink, json!([{"hook": "verify_new_address"}]));
    merge(
        &mut cfg,
        &json!({"selfservice": {"methods": {"link": {"enabled": true}}, "flows": {"verification": {"use": "link"}}}}),
    );
    let srv = TestServer::with_config(b, cfg).await;
    for kind in ALL {
        for revoke in [false, true] {
            let old = format!("link-{kind:?}-{revoke}@example.com").to_lowercase();
            let new = format!("new-{old}");
            let id = identity(&srv, &old).await;
            let c = signed_in(&srv, kind, &old).await;
            let vf = change_email_deferred(&c, &new).await;
            let link = link_of(&sink.next_mail_to(&new).await);
            if revoke {
                let who: Value = c.whoami().await.json().await.unwrap();
                let sid = who["id"].as_str().unwrap();
                let res = srv
                    .client()
                    .delete(srv.admin_url(&format!("/admin/sessions/{sid}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::NO_CONTENT);
            }
            // Opened from the mail in another browser.
            let opener = Client::new(&srv, Kind::Browser);
            let res = opener.send(opener.req(reqwest::Method::GET, &link)).await;
            let flow = if kind == Kind::Native {
                assert_eq!(res.status(), StatusCode::OK);
                res.json::<Value>().await.unwrap()
            } else {
                assert_eq!(res.status(), StatusCode::SEE_OTHER);
                c.fetch("verification", vf["id"].as_str().unwrap()).await
            };
            let after = admin_identity(&srv, &id).await;
            if revoke {
                assert_eq!(message_ids(&flow), [4070001], "{flow}");
                assert_eq!(after["traits"]["email"], old, "{after}");
            } else {
                assert_eq!(flow["state"], "passed_challenge", "{flow}");
                assert_eq!(after["traits"]["email"], new, "{after}");
                assert_eq!(after["verifiable_addresses"][0]["verified"], true, "{after}");
            }
        }
    }
}
both!(verify_new_address_by_link_applies_or_refuses_after_revocation);
