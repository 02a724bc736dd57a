//! Codes as a second factor (`selfservice.methods.code.mfa_enabled`) for browser, SPA and
//! native clients: the first-factor login is sent on to the `aal2` login (Kratos'
//! `PostLoginHook`); when the code is the identity's only second factor, to one address, that
//! flow starts with the code mailed (Kratos' `FastLogin2FA`), else it offers a "Send code to
//! {address}" button per code address. The code steps the session up to `aal2` with `code` in
//! its methods. Codes are used once, also under concurrency.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node};
use crate::code::code_of;
use crate::flows::{finish, finish_first_factor, login};
use crate::harness::{Backend, TestServer};
use crate::limits::{race, raw_submit};
use crate::smtp_sink::SmtpSink;

const PW: &str = "correct horse battery staple";

fn mfa_config(sink: &SmtpSink) -> Value {
    json!({
        "courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}},
        "selfservice": {"methods": {"code": {"mfa_enabled": true}}}
    })
}

async fn with_password(srv: &TestServer, email: &str) -> String {
    let created = srv
        .create_identity(json!({"schema_id": "default", "traits": {"email": email},
            "credentials": {"password": {"config": {"password": PW}}}}))
        .await;
    created["id"].as_str().unwrap().to_string()
}

fn methods(who: &Value) -> Vec<(String, String)> {
    who["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["method"].as_str().unwrap().to_string(),
                m["aal"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asks for a code on an `aal2` flow; returns the flow in `sent_email`.
async fn send_code(c: &Client<'_>, flow: &Value, address: &str) -> Value {
    // Kratos' address buttons post `address` and no `method`.
    let res = c.submit(flow, json!({"address": address})).await;
    let (status, sent) = c.flow_after("login", res).await;
    if c.kind != Kind::Browser {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{sent}");
    }
    assert_eq!(sent["state"], "sent_email", "{sent}");
    assert_eq!(sent["active"], "code");
    assert_eq!(message_ids(&sent), vec![1010025], "{sent}");
    assert_eq!(
        node(&sent, "code").unwrap()["attributes"]["autocomplete"],
        "one-time-code"
    );
    let kept = node(&sent, "identifier").unwrap();
    assert_eq!(kept["attributes"]["type"], "hidden");
    assert_eq!(kept["attributes"]["value"], address);
    sent
}

/// Checks that a new `aal2` flow starts with the code already sent (Kratos' `FastLogin2FA`:
/// the identity's only second factor is one code address).
fn assert_sent_at_once(flow: &Value, address: &str) {
    assert_eq!(flow["requested_aal"], "aal2");
    assert_eq!(flow["state"], "sent_email", "{flow}");
    assert_eq!(flow["active"], "code");
    assert_eq!(message_ids(flow), vec![1010025], "{flow}");
    assert!(node(flow, "address").is_none(), "{flow}");
    assert!(node(flow, "password").is_none(), "{flow}");
    let kept = node(flow, "identifier").unwrap();
    assert_eq!(kept["attributes"]["type"], "hidden");
    assert_eq!(kept["attributes"]["value"], address);
    assert_eq!(
        node(flow, "code").unwrap()["attributes"]["autocomplete"],
        "one-time-code"
    );
    assert!(
        flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["attributes"]["name"] == "resend")
    );
}

async fn code_mfa_step_up_for_every_client(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, mfa_config(&sink)).await;
    for kind in ALL {
        let email = format!("mfa-{kind:?}@example.com").to_lowercase();
        let id = with_password(&srv, &email).await;
        let mut c = Client::new(&srv, kind);

        // The first factor issues an aal1 session but sends the client on to the aal2 login.
        let res = login(&mut c, &email, PW).await;
        finish_first_factor(&mut c, res).await;
        let res = c.whoami().await;
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["id"], "session_aal2_required");

        // The code is the identity's only second factor, to one address: the aal2 flow starts
        // with it mailed.
        let sent = c.init("login", "?aal=aal2").await;
        assert_sent_at_once(&sent, &email);
        let code = code_of(&sink.next_mail_to(&email).await);

        // A wrong code is refused; the right one steps the same session up.
        let wrong = if code == "000000" { "000001" } else { "000000" };
        let res = c.submit(&sent, json!({"method": "code", "code": wrong})).await;
        let (status, refused) = c.flow_after("login", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(message_ids(&refused), vec![4010008], "{refused}");
        assert_eq!(c.whoami().await.status(), 403);
        let res = c
            .submit(&refused, json!({"method": "code", "code": code, "identifier": email}))
            .await;
        match kind {
            Kind::Browser => {
                assert_eq!(res.status(), StatusCode::SEE_OTHER);
                assert_eq!(res.headers()["location"], "http://app.test/welcome");
            }
            _ => {
                let status = res.status();
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body["session"]["authenticator_assurance_level"], "aal2");
                assert_eq!(body["session"]["identity"]["id"], id, "the identity is shown at aal2");
                if kind == Kind::Native {
                    assert_eq!(body["session_token"].as_str(), c.token.as_deref(), "the same session");
                }
            }
        }
        let res = c.whoami().await;
        assert_eq!(res.status(), 200);
        let who: Value = res.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2");
        assert_eq!(
            methods(&who),
            vec![("password".into(), "aal1".into()), ("code".into(), "aal2".into())]
        );
        // Receiving the code proved the address.
        assert_eq!(who["identity"]["verifiable_addresses"][0]["verified"], true, "{who}");

        // The code is used up: another aal1 session cannot step up with it.
        let mut other = Client::new(&srv, kind);
        let res = login(&mut other, &email, PW).await;
        finish_first_factor(&mut other, res).await;
        let sent = other.init("login", "?aal=aal2").await;
        assert_sent_at_once(&sent, &email);
        let fresh = code_of(&sink.next_mail_to(&email).await);
        if fresh != code {
            let res = other.submit(&sent, json!({"method": "code", "code": code})).await;
            let (_, refused) = other.flow_after("login", res).await;
            assert_eq!(message_ids(&refused), vec![4010008], "{refused}");
        }
        assert_eq!(other.whoami().await.status(), 403);
    }
}
both!(code_mfa_step_up_for_every_client);

/// The `aal2` redirect keeps the login's `return_to`, as Kratos'
/// `PassReturnToAndLoginChallengeParameters` does, and the step-up then returns there.
async fn code_mfa_first_factor_redirect_keeps_return_to(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, mfa_config(&sink)).await;
    let back = "http://app.test/after";
    let expected = "/self-service/login/browser?aal=aal2&return_to=http%3A%2F%2Fapp.test%2Fafter";
    for kind in [Kind::Browser, Kind::Spa] {
        let email = format!("return-{kind:?}@example.com").to_lowercase();
        with_password(&srv, &email).await;
        let c = Client::new(&srv, kind);
        let flow = c.init("login", &format!("?return_to={back}")).await;
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "identifier": email, "password": PW}),
            )
            .await;
        match kind {
            Kind::Browser => {
                assert_eq!(res.status(), StatusCode::SEE_OTHER);
                let to = res.headers()["location"].to_str().unwrap().to_string();
                assert!(to.ends_with(expected), "{to}");
            }
            _ => {
                assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
                let body: Value = res.json().await.unwrap();
                let to = body["redirect_browser_to"].as_str().unwrap();
                assert!(to.ends_with(expected), "{body}");
            }
        }
        let sent = c.init("login", &format!("?aal=aal2&return_to={back}")).await;
        assert_sent_at_once(&sent, &email);
        let code = code_of(&sink.next_mail_to(&email).await);
        let res = c.submit(&sent, json!({"method": "code", "code": code})).await;
        match kind {
            Kind::Browser => assert_eq!(res.headers()["location"], back),
            _ => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["continue_with"][0]["redirect_browser_to"], back, "{body}");
            }
        }
    }
}
both!(code_mfa_first_factor_redirect_keeps_return_to);

/// With `session.whoami.required_aal: aal1` the first factor finishes as usual; without
/// `mfa_enabled` (passwordless codes) an email address is no second factor and the `aal2`
/// login offers no code.
async fn code_mfa_only_demanded_when_configured(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut relaxed = mfa_config(&sink);
    crate::harness::merge(&mut relaxed, &json!({"session": {"whoami": {"required_aal": "aal1"}}}));
    let lenient = TestServer::with_config(b, relaxed).await;
    let passwordless = TestServer::start(b).await;
    for kind in ALL {
        let email = format!("relaxed-{kind:?}@example.com").to_lowercase();
        for srv in [&lenient, &passwordless] {
            with_password(srv, &email).await;
            let mut c = Client::new(srv, kind);
            let res = login(&mut c, &email, PW).await;
            let body = finish(&mut c, res).await;
            if kind != Kind::Browser {
                assert_eq!(body["session"]["identity"]["traits"]["email"], email, "{body}");
            }
            assert_eq!(c.whoami().await.status(), 200);
        }
        // An aal2 flow is still possible where MFA codes are on (the session is aal1) …
        let mut c = Client::new(&lenient, kind);
        let res = login(&mut c, &email, PW).await;
        finish(&mut c, res).await;
        let flow = c.init("login", "?aal=aal2").await;
        assert_sent_at_once(&flow, &email);
        // … but offers no code where codes are passwordless.
        let mut c = Client::new(&passwordless, kind);
        let res = login(&mut c, &email, PW).await;
        finish(&mut c, res).await;
        let res = c
            .send(c.req(
                reqwest::Method::GET,
                &c.url(&format!("/self-service/login/{}?aal=aal2", c.api())),
            ))
            .await;
        if kind != Kind::Browser {
            // The session already has the highest level the identity can reach: nothing to add.
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{body}");
            if status == StatusCode::OK {
                assert!(node(&body, "address").is_none(), "{body}");
            }
        }
    }
}
both!(code_mfa_only_demanded_when_configured);

/// The same code submitted several times at the same instant on the step-up flow steps the
/// session up once.
async fn code_mfa_code_is_used_once_under_concurrency(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut config = mfa_config(&sink);
    // Budgets large enough that every request reaches the code check.
    crate::harness::merge(
        &mut config,
        &json!({"selfservice": {"methods": {"code": {"config": {"max_submissions": 255}}}},
            "latch": {"rate_limits": {"code_attempts_per_address": {"limit": 1000, "window": "1h"}}}}),
    );
    let srv = TestServer::with_config(b, config).await;
    for kind in [Kind::Spa, Kind::Native] {
        let email = format!("race-{kind:?}@example.com").to_lowercase();
        with_password(&srv, &email).await;
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        finish_first_factor(&mut c, res).await;
        let sent = c.init("login", "?aal=aal2").await;
        assert_sent_at_once(&sent, &email);
        let code = code_of(&sink.next_mail_to(&email).await);
        let headers: Vec<(&str, String)> = match &c.token {
            Some(t) => vec![("x-session-token", t.clone())],
            None => vec![],
        };
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let requests = (0..8)
            .map(|_| raw_submit(&c, &sent, json!({"method": "code", "code": code}), &headers))
            .collect();
        let answers = race(&srv.public, requests).await;
        let ok = answers.iter().filter(|r| r.status == 200).count();
        assert_eq!(ok, 1, "{answers:#?}");
        for refused in answers.iter().filter(|r| r.status != 200) {
            assert_eq!(refused.status, 400, "{}", refused.body);
        }
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2");
        let codes = methods(&who).iter().filter(|(m, _)| m == "code").count();
        assert_eq!(codes, 1, "the session was stepped up once: {who}");
    }
}
both!(code_mfa_code_is_used_once_under_concurrency);

/// Beside another second factor (an app), the `aal2` login offers a "Send code to {address}"
/// button; a code is mailed only when it is pressed, and only to the identity's address.
async fn code_mfa_address_buttons_beside_an_app(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut config = mfa_config(&sink);
    crate::harness::merge(
        &mut config,
        &json!({"selfservice": {"methods": {"totp": {"enabled": true}}}}),
    );
    let srv = TestServer::with_config(b, config).await;
    for kind in ALL {
        let email = format!("buttons-{kind:?}@example.com").to_lowercase();
        srv.create_identity(json!({"schema_id": "default", "traits": {"email": email},
            "credentials": {"password": {"config": {"password": PW}},
                "totp": {"config": {"totp_url": "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}}}}))
            .await;
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        finish_first_factor(&mut c, res).await;
        let before = sink.mails().len();
        let flow = c.init("login", "?aal=aal2").await;
        assert_eq!(flow["state"], "choose_method", "{flow}");
        assert!(node(&flow, "totp_code").is_some(), "{flow}");
        assert!(node(&flow, "password").is_none(), "{flow}");
        let button = node(&flow, "address").unwrap();
        assert_eq!(button["group"], "code");
        assert_eq!(button["attributes"]["type"], "submit");
        assert_eq!(button["attributes"]["value"], email);
        assert_eq!(button["meta"]["label"]["id"], 1010023);
        assert_eq!(button["meta"]["label"]["context"]["address"], email);
        assert_eq!(button["meta"]["label"]["context"]["channel"], "email");
        assert_eq!(
            sink.mails().len(),
            before,
            "nothing is mailed before the button is pressed"
        );

        // Another address than the identity's is refused and nothing is mailed there.
        let res = c.submit(&flow, json!({"address": "someone-else@example.com"})).await;
        let (_, refused) = c.flow_after("login", res).await;
        assert_eq!(message_ids(&refused), vec![4000035], "{refused}");
        assert_eq!(sink.mails().len(), before);

        let sent = send_code(&c, &refused, &email).await;
        let code = code_of(&sink.next_mail_to(&email).await);
        let res = c.submit(&sent, json!({"method": "code", "code": code})).await;
        assert!(
            res.status() == StatusCode::OK || res.status() == StatusCode::SEE_OTHER,
            "{}",
            res.status()
        );
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2", "{who}");
        assert_eq!(
            methods(&who),
            vec![("password".into(), "aal1".into()), ("code".into(), "aal2".into())]
        );
    }
}
both!(code_mfa_address_buttons_beside_an_app);

/// Node names, groups, types, values and message ids of the code nodes of an `aal2` flow.
fn shape(flow: &Value) -> Value {
    let nodes: Vec<Value> = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        // Other methods' nodes are pinned by their own tests.
        .filter(|n| n["group"] == "code" || n["group"] == "default")
        .map(|n| {
            let a = &n["attributes"];
            json!({
                "name": a.get("name").cloned().unwrap_or(Value::Null),
                "group": n["group"],
                "type": n["type"],
                "input_type": a.get("type").cloned().unwrap_or(Value::Null),
                "value": if a["name"] == "csrf_token" { Value::Null } else { a.get("value").cloned().unwrap_or(Value::Null) },
                "required": a.get("required").cloned().unwrap_or(Value::Null),
                "autocomplete": a.get("autocomplete").cloned().unwrap_or(Value::Null),
                "label": n["meta"]["label"]["id"],
                "label_context": n["meta"]["label"].get("context").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    json!({
        "state": flow["state"],
        "active": flow.get("active").cloned().unwrap_or(Value::Null),
        "requested_aal": flow["requested_aal"],
        "messages": message_ids(flow),
        "nodes": nodes,
    })
}

/// The `aal2` login flow JSON of code as a second factor, pinned: the address buttons beside
/// another second factor, the form after sending, and the form sent at once when the code is
/// the only second factor.
async fn code_mfa_flow_shapes_snapshot(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut config = mfa_config(&sink);
    crate::harness::merge(
        &mut config,
        &json!({"selfservice": {"methods": {"totp": {"enabled": true}}}}),
    );
    let srv = TestServer::with_config(b, config).await;
    let email = "shape@example.com";
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": email},
        "credentials": {"password": {"config": {"password": PW}},
            "totp": {"config": {"totp_url": "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}}}}))
        .await;
    let mut c = Client::new(&srv, Kind::Native);
    let res = login(&mut c, email, PW).await;
    finish_first_factor(&mut c, res).await;
    let flow = c.init("login", "?aal=aal2").await;
    insta::assert_json_snapshot!("code_mfa_login_aal2_choose", shape(&flow));
    let sent = send_code(&c, &flow, email).await;
    insta::assert_json_snapshot!("code_mfa_login_aal2_sent", shape(&sent));

    let only = "only@example.com";
    with_password(&srv, only).await;
    let mut c = Client::new(&srv, Kind::Native);
    let res = login(&mut c, only, PW).await;
    finish_first_factor(&mut c, res).await;
    let flow = c.init("login", "?aal=aal2").await;
    assert_sent_at_once(&flow, only);
    let mut pinned = shape(&flow);
    pinned["nodes"] = Value::Array(
        pinned["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let mut n = n.clone();
                if n["value"] == only {
                    n["value"] = json!("<address>");
                }
                n
            })
            .collect(),
    );
    insta::assert_json_snapshot!("code_mfa_login_aal2_sent_at_once", pinned);
}
both!(code_mfa_flow_shapes_snapshot);
