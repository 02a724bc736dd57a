//! Authenticator apps (the `totp` method) for browser, SPA and native clients: enrolment in
//! settings, the `aal=aal2` step-up login, codes accepted once, wrong codes budgeted before
//! they are compared, admin import by `totp_url`, and unlinking. Codes are computed here
//! (RFC 6238) from the secret the flow shows, on the server's clock.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node, node_message_ids};
use crate::flows::{finish_first_factor, login, register};
use crate::harness::{Backend, TestServer};
use crate::limits::{race, raw_submit};

const PW: &str = "correct horse battery staple";
/// RFC 6238's test secret ("12345678901234567890") in base32.
const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn totp_config() -> Value {
    json!({"selfservice": {"methods": {"totp": {"enabled": true, "config": {"issuer": "Latch Test"}}}}})
}

/// The six-digit code of `secret` (base32) at the server's `offset` steps from now.
fn code_at(srv: &TestServer, secret: &str, offset: i64) -> String {
    use latch::clock::Clock as _;
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build_noncompliant();
    let now = srv.clock.now().unix_timestamp() + offset * 30;
    totp.generate(u64::try_from(now).unwrap()).to_string()
}

fn code(srv: &TestServer, secret: &str) -> String {
    code_at(srv, secret, 0)
}

/// A code that no step near now produces.
fn wrong_code(srv: &TestServer, secret: &str) -> String {
    let near: Vec<String> = (-3..=3).map(|o| code_at(srv, secret, o)).collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// Moves the server's clock past every step a code sent before could still be accepted in.
fn next_window(srv: &TestServer) {
    srv.clock.advance(Duration::from_secs(90));
}

/// A text or image node, found by its `attributes.id`.
fn by_id<'v>(flow: &'v Value, id: &str) -> Option<&'v Value> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["id"] == id)
}

fn methods(who: &Value) -> Vec<String> {
    who["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap().to_string())
        .collect()
}

/// Submits and returns the status and the flow as the client sees it afterwards.
async fn submit_flow(c: &Client<'_>, kind: &str, flow: &Value, fields: Value) -> (StatusCode, Value) {
    let res = c.submit(flow, fields).await;
    c.flow_after(kind, res).await
}

/// Enrols an app in settings for the signed-in client; returns the secret.
async fn enrol(srv: &TestServer, c: &Client<'_>) -> String {
    let flow = c.init("settings", "").await;
    let secret = by_id(&flow, "totp_secret_key").unwrap()["attributes"]["text"]["context"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, after) = submit_flow(
        c,
        "settings",
        &flow,
        json!({"method": "totp", "totp_code": code(srv, &secret)}),
    )
    .await;
    if c.kind != Kind::Browser {
        assert_eq!(status, StatusCode::OK, "{after}");
    }
    assert_eq!(after["state"], "success", "{after}");
    assert!(node(&after, "totp_unlink").is_some(), "{after}");
    secret
}

/// Steps the client's session up with `code`; returns the answer's status and body.
async fn step_up(c: &mut Client<'_>, code: &str) -> reqwest::Response {
    let flow = c.init("login", "?aal=aal2").await;
    assert_eq!(flow["requested_aal"], "aal2");
    c.submit(&flow, json!({"method": "totp", "totp_code": code})).await
}

async fn credential_types(srv: &TestServer, id: &str) -> Vec<String> {
    let who: Value = srv
        .client()
        .get(srv.admin_url(&format!("/admin/identities/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    who["credentials"].as_object().unwrap().keys().cloned().collect()
}

async fn totp_enrol_step_up_replay_and_unlink(b: Backend) {
    let srv = TestServer::with_config(b, totp_config()).await;
    for kind in ALL {
        let email = format!("totp-{kind:?}@example.com").to_lowercase();
        let mut c = Client::new(&srv, kind);
        register(&mut c, &email).await;
        let who: Value = c.whoami().await.json().await.unwrap();
        let id = who["identity"]["id"].as_str().unwrap().to_string();

        // The settings flow offers a new key: QR code, secret, code input, save button.
        let flow = c.init("settings", "").await;
        let qr = by_id(&flow, "totp_qr").unwrap();
        assert_eq!(qr["type"], "img");
        assert!(
            qr["attributes"]["src"]
                .as_str()
                .unwrap()
                .starts_with("data:image/png;base64,iVBORw0KGgo")
        );
        let secret = by_id(&flow, "totp_secret_key").unwrap()["attributes"]["text"]["context"]["secret"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(secret.len(), 32, "160 bits in base32");
        assert!(
            !flow.to_string().contains("otpauth"),
            "the pending key stays internal: {flow}"
        );

        // A missing code is required; a wrong one is Kratos' 4000008 on the input.
        let (_, refused) = submit_flow(&c, "settings", &flow, json!({"method": "totp"})).await;
        assert_eq!(node_message_ids(&refused, "totp_code"), vec![4000002], "{refused}");
        let (status, refused) = submit_flow(
            &c,
            "settings",
            &refused,
            json!({"method": "totp", "totp_code": wrong_code(&srv, &secret)}),
        )
        .await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(node_message_ids(&refused, "totp_code"), vec![4000008], "{refused}");
        assert!(credential_types(&srv, &id).await.iter().all(|t| t != "totp"));
        // The same key is still offered, and the right code links it.
        let same = by_id(&refused, "totp_secret_key").unwrap()["attributes"]["text"]["context"]["secret"].clone();
        assert_eq!(same, json!(secret));
        let (status, linked) = submit_flow(
            &c,
            "settings",
            &refused,
            json!({"method": "totp", "totp_code": code(&srv, &secret)}),
        )
        .await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "{linked}");
        }
        assert_eq!(linked["state"], "success");
        assert_eq!(message_ids(&linked), vec![1050001]);
        assert!(node(&linked, "totp_unlink").is_some());
        assert!(by_id(&linked, "totp_qr").is_none());
        assert!(credential_types(&srv, &id).await.contains(&"totp".to_string()));

        // Linking proves the app: the enrolling session is `aal2` at once, as in Kratos.
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2", "{who}");
        assert_eq!(methods(&who), vec!["password", "totp"]);

        // A new aal1 session of an identity with an app does not satisfy whoami
        // (`highest_available`).
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        finish_first_factor(&mut c, res).await;
        let res = c.whoami().await;
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["id"], "session_aal2_required");
        assert!(
            body["redirect_browser_to"]
                .as_str()
                .unwrap()
                .ends_with("/self-service/login/browser?aal=aal2")
        );

        // Step up: the login offers the code input, refuses a wrong code and accepts the right one.
        next_window(&srv);
        let flow = c.init("login", "?aal=aal2").await;
        assert_eq!(node(&flow, "totp_code").unwrap()["meta"]["label"]["id"], 1010006);
        assert!(node(&flow, "password").is_none(), "only second factors: {flow}");
        let (status, refused) = submit_flow(
            &c,
            "login",
            &flow,
            json!({"method": "totp", "totp_code": wrong_code(&srv, &secret)}),
        )
        .await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(message_ids(&refused), vec![4000008], "{refused}");
        let accepted = code(&srv, &secret);
        let res = c
            .submit(&refused, json!({"method": "totp", "totp_code": accepted}))
            .await;
        match kind {
            Kind::Browser => assert_eq!(res.status(), StatusCode::SEE_OTHER),
            _ => {
                let status = res.status();
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body["session"]["authenticator_assurance_level"], "aal2");
                if kind == Kind::Native {
                    assert_eq!(body["session_token"].as_str(), c.token.as_deref(), "the same session");
                }
            }
        }
        let res = c.whoami().await;
        assert_eq!(res.status(), 200);
        let who: Value = res.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2");
        assert_eq!(methods(&who), vec!["password", "totp"]);

        // Replay: another aal1 session cannot step up with the code just used.
        let mut other = Client::new(&srv, kind);
        let res = login(&mut other, &email, PW).await;
        finish_first_factor(&mut other, res).await;
        let res = step_up(&mut other, &accepted).await;
        let (_, refused) = other.flow_after("login", res).await;
        assert_eq!(
            message_ids(&refused),
            vec![4000008],
            "a used code is refused: {refused}"
        );
        assert_eq!(other.whoami().await.status(), 403);

        // Unlink (the stepped-up session is privileged): the identity is aal1-only again.
        // The button alone selects the method (Kratos; a form per method sends no `method`).
        let flow = c.init("settings", "").await;
        let (status, unlinked) = submit_flow(&c, "settings", &flow, json!({"totp_unlink": true})).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "{unlinked}");
        }
        assert_eq!(unlinked["state"], "success");
        assert!(node(&unlinked, "totp_unlink").is_none());
        assert!(by_id(&unlinked, "totp_qr").is_some(), "a new key is offered");
        assert!(credential_types(&srv, &id).await.iter().all(|t| t != "totp"));
        assert_eq!(other.whoami().await.status(), 200);
    }
}
both!(totp_enrol_step_up_replay_and_unlink);

async fn totp_import_by_url_then_aal2_login(b: Backend) {
    let srv = TestServer::with_config(b, totp_config()).await;
    let http = srv.client();
    // A URL that is not an otpauth TOTP key is refused with a clear reason.
    for bad in [
        "https://example.com/",
        "otpauth://hotp/x?secret=GEZDGNBV&counter=0",
        "otpauth://totp/x",
    ] {
        let res = http
            .post(srv.admin_url("/admin/identities"))
            .json(&json!({"schema_id": "default", "traits": {"email": "bad@example.com"},
                "credentials": {"totp": {"config": {"totp_url": bad}}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert!(body.to_string().contains("totp_url"), "{body}");
    }
    for kind in ALL {
        let email = format!("imported-{kind:?}@example.com").to_lowercase();
        let created = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": email},
            "credentials": {
                "password": {"config": {"password": PW}},
                "totp": {"config": {"totp_url": format!("otpauth://totp/Kratos:{email}?secret={SECRET}&issuer=Kratos")}}
            }}))
            .await;
        let id = created["id"].as_str().unwrap();
        let shown: Value = http
            .get(srv.admin_url(&format!("/admin/identities/{id}?include_credential=totp")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(shown["credentials"]["totp"]["identifiers"], json!([id]));
        assert!(
            shown["credentials"]["totp"]["config"]["totp_url"]
                .as_str()
                .unwrap()
                .contains(SECRET)
        );

        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        finish_first_factor(&mut c, res).await;
        assert_eq!(c.whoami().await.status(), 403);
        // Codes of every client here come from one secret: each client gets its own window.
        next_window(&srv);
        let res = step_up(&mut c, &code(&srv, SECRET)).await;
        assert!(
            res.status() == StatusCode::OK || res.status() == StatusCode::SEE_OTHER,
            "{}",
            res.status()
        );
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2");
        assert_eq!(methods(&who), vec!["password", "totp"]);
    }
}
both!(totp_import_by_url_then_aal2_login);

/// An `aal2` flow of an identity without an app has no TOTP nodes and refuses the method
/// with 4000011; an `aal1` login offers no TOTP nodes at all.
async fn totp_login_needs_an_app_and_aal2(b: Backend) {
    let srv = TestServer::with_config(b, totp_config()).await;
    for kind in [Kind::Spa, Kind::Native] {
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        assert!(node(&flow, "totp_code").is_none(), "{flow}");
        let (status, refused) = submit_flow(&c, "login", &flow, json!({"method": "totp", "totp_code": "123456"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message_ids(&refused), vec![4010002], "{refused}");

        let mut c = Client::new(&srv, kind);
        register(&mut c, &format!("noapp-{kind:?}@example.com").to_lowercase()).await;
        assert_eq!(c.whoami().await.status(), 200, "no second factor, aal1 is the highest");
        let flow = c.init("login", "?aal=aal2").await;
        assert!(node(&flow, "totp_code").is_none(), "{flow}");
        let (status, refused) = submit_flow(&c, "login", &flow, json!({"method": "totp", "totp_code": "123456"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message_ids(&refused), vec![4000011], "{refused}");
    }
}
both!(totp_login_needs_an_app_and_aal2);

/// Wrong codes use up the account's budget before anything is compared: once it is spent,
/// even the right code is refused with 429 until the delay has passed.
async fn totp_wrong_codes_count_against_the_sign_in_budget(b: Backend) {
    let mut config = totp_config();
    crate::harness::merge(
        &mut config,
        &json!({"latch": {"rate_limits": {"password": {"free_failures": 2, "first_delay": "1m"}}}}),
    );
    let srv = TestServer::with_config(b, config).await;
    for kind in [Kind::Spa, Kind::Native] {
        let email = format!("budget-{kind:?}@example.com").to_lowercase();
        srv.create_identity(json!({"schema_id": "default", "traits": {"email": email},
            "credentials": {"password": {"config": {"password": PW}},
                "totp": {"config": {"totp_url": format!("otpauth://totp/x?secret={SECRET}")}}}}))
            .await;
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        finish_first_factor(&mut c, res).await;
        next_window(&srv);
        let mut flow = c.init("login", "?aal=aal2").await;
        for _ in 0..2 {
            let (status, refused) = submit_flow(
                &c,
                "login",
                &flow,
                json!({"method": "totp", "totp_code": wrong_code(&srv, SECRET)}),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(message_ids(&refused), vec![4000008]);
            flow = refused;
        }
        let res = c
            .submit(&flow, json!({"method": "totp", "totp_code": code(&srv, SECRET)}))
            .await;
        assert_eq!(res.status(), 429);
        assert!(res.headers().get("retry-after").is_some());
        assert_eq!(c.whoami().await.status(), 403);
        // After the delay the right code works.
        srv.clock.advance(Duration::from_secs(61));
        let res = c
            .submit(&flow, json!({"method": "totp", "totp_code": code(&srv, SECRET)}))
            .await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        assert_eq!(c.whoami().await.status(), 200);
    }
}
both!(totp_wrong_codes_count_against_the_sign_in_budget);

/// One code released at the same instant to many aal1 sessions of the identity steps up
/// exactly one of them.
async fn totp_code_is_accepted_once_under_concurrency(b: Backend) {
    // A budget large enough that every request reaches the code check.
    let mut config = totp_config();
    crate::harness::merge(
        &mut config,
        &json!({"latch": {"rate_limits": {"password": {"free_failures": 100, "account_free_failures": 100}}}}),
    );
    let srv = TestServer::with_config(b, config).await;
    let email = "race@example.com";
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": email},
        "credentials": {"password": {"config": {"password": PW}},
            "totp": {"config": {"totp_url": format!("otpauth://totp/x?secret={SECRET}")}}}}))
        .await;
    next_window(&srv);
    let code = code(&srv, SECRET);
    let mut requests = vec![];
    for _ in 0..12 {
        let mut c = Client::new(&srv, Kind::Native);
        let res = login(&mut c, email, PW).await;
        finish_first_factor(&mut c, res).await;
        let flow = c.init("login", "?aal=aal2").await;
        let token = c.token.clone().unwrap();
        requests.push(raw_submit(
            &c,
            &flow,
            json!({"method": "totp", "totp_code": code}),
            &[("x-session-token", &token)],
        ));
    }
    let answers = race(&srv.public, requests).await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "{answers:#?}");
    // The others were refused as a used code (4000008), never by the budget: all twelve are
    // within its free attempts, whatever order their clocks reach the counter in.
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(message_ids(&r.json()), vec![4000008]);
    }
}
both!(totp_code_is_accepted_once_under_concurrency);

/// Node names, groups, types and message ids of the method's nodes in settings and aal2
/// login flows.
fn shape(flow: &Value) -> Value {
    let nodes: Vec<Value> = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        // Other methods' nodes are pinned by their own tests.
        .filter(|n| n["group"] == "totp" || n["group"] == "default")
        .map(|n| {
            let a = &n["attributes"];
            json!({
                "name": a.get("name").or_else(|| a.get("id")).cloned().unwrap_or(Value::Null),
                "group": n["group"],
                "type": n["type"],
                "input_type": a.get("type").cloned().unwrap_or(Value::Null),
                "value": if n["group"] == "totp" { a.get("value").cloned().unwrap_or(Value::Null) } else { Value::Null },
                "required": a.get("required").cloned().unwrap_or(Value::Null),
                "label": n["meta"]["label"]["id"],
                "text": a["text"]["id"],
                "size": if n["type"] == "img" { json!([a["width"], a["height"]]) } else { Value::Null },
            })
        })
        .collect();
    json!({"messages": message_ids(flow), "nodes": nodes})
}

async fn totp_flow_shapes_snapshot(b: Backend) {
    let srv = TestServer::with_config(b, totp_config()).await;
    let mut c = Client::new(&srv, Kind::Browser);
    register(&mut c, "shape@example.com").await;
    let flow = c.init("settings", "").await;
    insta::assert_json_snapshot!("totp_settings_without_app", shape(&flow));
    // The built-in settings page shows the QR code as an image and the secret as text.
    let id = flow["id"].as_str().unwrap();
    let res = c
        .send(c.req(Method::GET, &srv.public_url(&format!("/ui/settings?flow={id}"))))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("<img src=\"data:image/png;base64,"), "{page}");
    assert!(page.contains("id=\"totp_qr\" width=\"256\" height=\"256\""), "{page}");
    let secret = by_id(&flow, "totp_secret_key").unwrap()["attributes"]["text"]["text"]
        .as_str()
        .unwrap();
    assert!(page.contains(secret), "{page}");

    enrol(&srv, &c).await;
    let flow = c.init("settings", "").await;
    insta::assert_json_snapshot!("totp_settings_with_app", shape(&flow));
    // The enrolling session is aal2 already; a new password session steps up.
    let mut c = Client::new(&srv, Kind::Browser);
    let res = login(&mut c, "shape@example.com", PW).await;
    finish_first_factor(&mut c, res).await;
    next_window(&srv);
    let flow = c.init("login", "?aal=aal2").await;
    insta::assert_json_snapshot!("totp_login_aal2", shape(&flow));
}
both!(totp_flow_shapes_snapshot);

/// A second factor never signs in alone: an `aal2` flow submitted without the session it
/// was started for (cookie or token dropped) is refused with Kratos' 401
/// `session_aal1_required`, even with the right code, and no session is issued.
async fn totp_step_up_without_the_first_factor_session_is_refused(b: Backend) {
    let srv = TestServer::with_config(b, totp_config()).await;
    for kind in ALL {
        let email = format!("alone-{kind:?}@example.com").to_lowercase();
        srv.create_identity(json!({"schema_id": "default", "traits": {"email": email},
        "credentials": {
            "password": {"config": {"password": PW}},
            "totp": {"config": {"totp_url": format!("otpauth://totp/Latch:{email}?secret={SECRET}")}}
        }}))
        .await;
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        finish_first_factor(&mut c, res).await;
        let flow = c.init("login", "?aal=aal2").await;
        // The attacker holds the flow (and, for browsers, the CSRF cookie) but not the session.
        c.token = None;
        c.jar.remove("ory_kratos_session");
        next_window(&srv);
        let res = c
            .submit(&flow, json!({"method": "totp", "totp_code": code(&srv, SECRET)}))
            .await;
        if kind == Kind::Browser {
            // Forms are sent to the error page carrying the same error.
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let to = res.headers()["location"].to_str().unwrap().to_string();
            assert!(to.contains("error"), "{to}");
            assert!(c.jar.get("ory_kratos_session").is_none());
        } else {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["id"], "session_aal1_required", "{body}");
            assert!(body.get("session_token").is_none());
        }
        assert_eq!(c.whoami().await.status(), 401);
    }
}
both!(totp_step_up_without_the_first_factor_session_is_refused);

/// `selfservice.flows.settings.required_aal: highest_available` (Kratos' default): an `aal1`
/// session of an identity with an app cannot open or submit settings until it steps up —
/// 403 `session_aal2_required` for JSON clients, a redirect to the `aal2` login for browsers;
/// with `aal1` configured, settings open at once.
async fn settings_demand_aal2_from_identities_with_an_app(b: Backend) {
    let srv = TestServer::with_config(b, totp_config()).await;
    let mut relaxed = totp_config();
    crate::harness::merge(
        &mut relaxed,
        &json!({"selfservice": {"flows": {"settings": {"required_aal": "aal1"}}}}),
    );
    let lenient = TestServer::with_config(b, relaxed).await;
    for kind in ALL {
        for (server, demanded) in [(&srv, true), (&lenient, false)] {
            let email = format!("settings-aal-{kind:?}@example.com").to_lowercase();
            server
                .create_identity(json!({"schema_id": "default", "traits": {"email": email},
                "credentials": {
                    "password": {"config": {"password": PW}},
                    "totp": {"config": {"totp_url": format!("otpauth://totp/Latch:{email}?secret={SECRET}")}}
                }}))
                .await;
            let mut c = Client::new(server, kind);
            let res = login(&mut c, &email, PW).await;
            finish_first_factor(&mut c, res).await;
            let init = c
                .send(c.req(Method::GET, &c.url(&format!("/self-service/settings/{}", c.api()))))
                .await;
            if !demanded {
                assert!(init.status() == StatusCode::OK || init.status() == StatusCode::SEE_OTHER);
                if kind != Kind::Browser {
                    let flow: Value = init.json().await.unwrap();
                    assert_eq!(flow["state"], "show_form", "{flow}");
                }
                continue;
            }
            if kind == Kind::Browser {
                assert_eq!(init.status(), StatusCode::SEE_OTHER);
                let to = init.headers()["location"].to_str().unwrap().to_string();
                assert!(to.contains("/self-service/login/browser?aal=aal2&return_to="), "{to}");
            } else {
                assert_eq!(init.status(), StatusCode::FORBIDDEN);
                let body: Value = init.json().await.unwrap();
                assert_eq!(body["error"]["id"], "session_aal2_required", "{body}");
                assert!(
                    body["redirect_browser_to"]
                        .as_str()
                        .unwrap()
                        .contains("aal=aal2&return_to=")
                );
            }
            next_window(server);
            let res = step_up(&mut c, &code(server, SECRET)).await;
            assert!(
                res.status() == StatusCode::OK || res.status() == StatusCode::SEE_OTHER,
                "{}",
                res.status()
            );
            c.jar.absorb(&res);
            let flow = c.init("settings", "").await;
            assert_eq!(flow["state"], "show_form", "{flow}");
            assert!(node(&flow, "totp_unlink").is_some(), "{flow}");
        }
    }
}
both!(settings_demand_aal2_from_identities_with_an_app);
