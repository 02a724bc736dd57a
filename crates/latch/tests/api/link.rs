//! The `link` method: recovery and verification by emailed links, for browser, SPA and
//! native clients, reading the links from a real SMTP server started by the test.

use std::time::Duration;

use latch::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node, node_message_ids};
use crate::harness::{Backend, TestServer};
use crate::smtp_sink::{Mail, SmtpSink};

fn config(sink: &SmtpSink) -> Value {
    json!({
        "courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}},
        "selfservice": {
            "methods": {"link": {"enabled": true}},
            "flows": {
                "verification": {"enabled": true, "use": "link"},
                "recovery": {"enabled": true, "use": "link"}
            }
        }
    })
}

/// The first link to `/self-service/<flow>` in a mail's text.
fn link_of(mail: &Mail, flow: &str) -> String {
    let text = mail.text.clone().unwrap_or_default();
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(&format!("/self-service/{flow}?")) && w.contains("token="))
        .unwrap_or_else(|| panic!("no {flow} link in mail: {text}"))
        .to_string()
}

/// A browser that opens a link: no JSON, its own cookies, redirects not followed.
fn opener(srv: &TestServer) -> Client<'_> {
    Client::new(srv, Kind::Browser)
}

async fn open(c: &Client<'_>, link: &str) -> reqwest::Response {
    c.send(c.req(Method::GET, link)).await
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn flow_id_in(loc: &str) -> String {
    loc.split("flow=")
        .nth(1)
        .unwrap_or_else(|| panic!("no flow in {loc}"))
        .to_string()
}

/// Requests a link for `email` in a new flow of `flow_name` and checks the `sent_email` answer.
async fn request_link(c: &Client<'_>, flow_name: &str, email: &str, sent_message: u64) -> Value {
    let flow = c.init(flow_name, "").await;
    assert_eq!(flow["active"], "link", "{flow}");
    let method = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "method")
        .unwrap();
    assert_eq!(method["group"], "link");
    assert_eq!(method["attributes"]["value"], "link");
    assert_eq!(method["attributes"]["type"], "submit");
    assert_eq!(method["meta"]["label"]["id"], 1070009);
    let email_node = node(&flow, "email").unwrap();
    assert_eq!(email_node["group"], "link");
    assert_eq!(email_node["attributes"]["type"], "email");
    assert_eq!(email_node["attributes"]["required"], true);
    assert_eq!(email_node["meta"]["label"]["id"], 1070007);
    let res = c.submit(&flow, json!({"method": "link", "email": email})).await;
    let (status, flow) = c.flow_after(flow_name, res).await;
    if c.kind == Kind::Browser {
        assert_eq!(status, StatusCode::SEE_OTHER);
    } else {
        assert_eq!(status, StatusCode::OK, "{flow}");
    }
    assert_eq!(flow["state"], "sent_email", "{flow}");
    assert_eq!(flow["active"], "link");
    assert_eq!(message_ids(&flow), vec![sent_message]);
    assert_eq!(node(&flow, "email").unwrap()["attributes"]["value"], email);
    flow
}

/// After a refused link: the browser is sent to a NEW flow of `flow_name` showing `message`.
async fn assert_retry(c: &Client<'_>, res: reqwest::Response, flow_name: &str, old: &str, message: u64) {
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let loc = location(&res);
    assert!(loc.contains(&format!("/ui/{flow_name}?flow=")), "{loc}");
    let id = flow_id_in(&loc);
    assert_ne!(id, old, "a new flow");
    let f = c.fetch(flow_name, &id).await;
    assert_eq!(message_ids(&f), vec![message], "{f}");
    assert_eq!(f["type"], "browser");
    assert!(node(&f, "email").is_some());
}

async fn recovery_by_link_for_every_client(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    for kind in ALL {
        let email = format!("lost-link-{kind:?}@example.com").to_lowercase();
        srv.create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
            .await;
        let c = Client::new(&srv, kind);
        let flow = request_link(&c, "recovery", &email, 1060002).await;
        let link = link_of(&sink.next_mail_to(&email).await, "recovery");
        let flow_id = flow["id"].as_str().unwrap();
        assert!(
            link.starts_with(&format!("{}/self-service/recovery?flow={flow_id}&token=", srv.public)),
            "{link}"
        );
        // Browsers and SPAs open the link in the browser that asked; native apps' users open
        // it in some browser.
        let browser = opener(&srv);
        let by = if kind == Kind::Native { &browser } else { &c };
        let res = open(by, &link).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{kind:?}");
        let loc = location(&res);
        assert!(loc.contains("/ui/settings?flow="), "{loc}");
        assert!(by.jar.get("ory_kratos_session").is_some(), "session cookie");
        let who: Value = by.whoami().await.json().await.unwrap();
        assert_eq!(who["identity"]["traits"]["email"], email, "{who}");
        assert_eq!(who["authentication_methods"][0]["method"], "link_recovery", "{who}");
        let settings = by.fetch("settings", &flow_id_in(&loc)).await;
        assert_eq!(settings["type"], "browser");
        assert_eq!(message_ids(&settings), vec![1060001], "{settings}");
        // The settings flow belongs to the opening browser: it can change the password there.
        let res = by
            .submit(
                &settings,
                json!({"method": "password", "password": "a-new-secret-Passw0rd-9"}),
            )
            .await;
        if by.kind == Kind::Spa {
            assert_eq!(res.status(), StatusCode::OK);
        } else {
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            assert!(location(&res).contains("/ui/settings?flow="), "{}", location(&res));
        }
        // The recovery flow is completed.
        let done = c.fetch("recovery", flow_id).await;
        assert_eq!(done["state"], "passed_challenge");
        // The address is verified by the recovery.
        let id = who["identity"]["id"].as_str().unwrap();
        let i: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(i["verifiable_addresses"][0]["verified"], true, "{i}");
        // A link works once.
        let again = opener(&srv);
        let res = open(&again, &link).await;
        assert_retry(&again, res, "recovery", flow_id, 4060004).await;
        assert!(again.jar.get("ory_kratos_session").is_none());
    }
}
both!(recovery_by_link_for_every_client);

async fn recovery_link_for_unknown_addresses_sends_nothing_or_the_invalid_mail(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "known@example.com"}}))
        .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let ghost = format!("ghost-{kind:?}@example.com").to_lowercase();
        let flow = request_link(&c, "recovery", &ghost, 1060002).await;
        let known = request_link(&c, "recovery", "known@example.com", 1060002).await;
        // The same answer for both: only the values differ.
        assert_eq!(
            flow["ui"]["nodes"].as_array().unwrap().len(),
            known["ui"]["nodes"].as_array().unwrap().len()
        );
        let msgs: Vec<Value> = srv
            .client()
            .get(srv.admin_url(&format!("/admin/courier/messages?recipient={ghost}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(msgs.is_empty(), "{msgs:?}");
        sink.next_mail_to("known@example.com").await;
    }
    // With `notify_unknown_recipients`, Kratos' `recovery_invalid` mail goes out (no link).
    let mut cfg = config(&sink);
    cfg["selfservice"]["flows"]["recovery"]["notify_unknown_recipients"] = json!(true);
    cfg["selfservice"]["flows"]["verification"]["notify_unknown_recipients"] = json!(true);
    let srv2 = TestServer::with_config(b, cfg).await;
    let c = Client::new(&srv2, Kind::Spa);
    request_link(&c, "recovery", "nobody@example.com", 1060002).await;
    let mail = sink.next_mail_to("nobody@example.com").await;
    let text = mail.text.unwrap();
    assert!(!text.contains("token="), "{text}");
    assert!(text.contains("no account uses it"), "{text}");
    request_link(&c, "verification", "nobody2@example.com", 1080001).await;
    let text = sink.next_mail_to("nobody2@example.com").await.text.unwrap();
    assert!(!text.contains("token="), "{text}");
}
both!(recovery_link_for_unknown_addresses_sends_nothing_or_the_invalid_mail);

async fn an_expired_recovery_link_is_refused(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = config(&sink);
    cfg["selfservice"]["methods"]["link"]["config"] = json!({"lifespan": "5m"});
    let srv = TestServer::with_config(b, cfg).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "late@example.com"}}))
        .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = request_link(&c, "recovery", "late@example.com", 1060002).await;
        let mail = sink.next_mail_to("late@example.com").await;
        assert!(mail.text.clone().unwrap().contains("expires in 5 minutes"));
        let link = link_of(&mail, "recovery");
        // Past the link's lifespan, within the flow's (1h).
        srv.clock.advance(Duration::from_secs(6 * 60));
        let b = opener(&srv);
        let res = open(&b, &link).await;
        assert_retry(&b, res, "recovery", flow["id"].as_str().unwrap(), 4060005).await;
        assert!(b.jar.get("ory_kratos_session").is_none());
    }
}
both!(an_expired_recovery_link_is_refused);

async fn a_recovery_link_opened_concurrently_signs_in_exactly_once(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "race@example.com"}}))
        .await;
    let c = Client::new(&srv, Kind::Spa);
    request_link(&c, "recovery", "race@example.com", 1060002).await;
    let link = link_of(&sink.next_mail_to("race@example.com").await, "recovery");
    let browsers: Vec<Client<'_>> = (0..6).map(|_| opener(&srv)).collect();
    let answers = futures_util::future::join_all(browsers.iter().map(|b| open(b, &link))).await;
    let settings = answers
        .iter()
        .filter(|r| location(r).contains("/ui/settings?flow="))
        .count();
    let refused = answers
        .iter()
        .filter(|r| location(r).contains("/ui/recovery?flow="))
        .count();
    assert_eq!((settings, refused), (1, 5));
    let sessions = browsers
        .iter()
        .filter(|b| b.jar.get("ory_kratos_session").is_some())
        .count();
    assert_eq!(sessions, 1);
}
both!(a_recovery_link_opened_concurrently_signs_in_exactly_once);

async fn a_wrong_or_foreign_token_is_refused(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "a@example.com"}}))
        .await;
    let c = Client::new(&srv, Kind::Browser);
    let f1 = request_link(&c, "recovery", "a@example.com", 1060002).await;
    let link = link_of(&sink.next_mail_to("a@example.com").await, "recovery");
    let token = link.split("token=").nth(1).unwrap().to_string();
    // The token of one flow does not work on another.
    let f2 = c.init("recovery", "").await;
    let other = srv.public_url(&format!(
        "/self-service/recovery?flow={}&token={token}",
        f2["id"].as_str().unwrap()
    ));
    let b1 = opener(&srv);
    let res = open(&b1, &other).await;
    assert_retry(&b1, res, "recovery", f2["id"].as_str().unwrap(), 4060004).await;
    // A guessed token does not work either.
    let guessed = srv.public_url(&format!(
        "/self-service/recovery?flow={}&token={}",
        f1["id"].as_str().unwrap(),
        "A".repeat(32)
    ));
    let res = open(&b1, &guessed).await;
    assert_retry(&b1, res, "recovery", f1["id"].as_str().unwrap(), 4060004).await;
    // The real one still does.
    let res = open(&b1, &link).await;
    assert!(location(&res).contains("/ui/settings?flow="), "{}", location(&res));
}
both!(a_wrong_or_foreign_token_is_refused);

async fn recovery_link_form_errors(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = c.init("recovery", "").await;
        let res = c.submit(&flow, json!({"method": "link", "email": ""})).await;
        let (_, f) = c.flow_after("recovery", res).await;
        assert_eq!(node_message_ids(&f, "email"), vec![4000002], "{f}");
        let res = c
            .submit(&flow, json!({"method": "link", "email": "not-an-email"}))
            .await;
        let (_, f) = c.flow_after("recovery", res).await;
        assert_eq!(node_message_ids(&f, "email").len(), 1, "{f}");
        assert_eq!(f["state"], "choose_method");
    }
}
both!(recovery_link_form_errors);

async fn verification_by_link_for_every_client(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    for kind in ALL {
        let email = format!("confirm-{kind:?}@example.com").to_lowercase();
        let i = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
            .await;
        assert_eq!(i["verifiable_addresses"][0]["verified"], false);
        let c = Client::new(&srv, kind);
        let flow = request_link(&c, "verification", &email, 1080001).await;
        let flow_id = flow["id"].as_str().unwrap();
        let link = link_of(&sink.next_mail_to(&email).await, "verification");
        assert!(
            link.starts_with(&format!(
                "{}/self-service/verification?flow={flow_id}&token=",
                srv.public
            )),
            "{link}"
        );
        // Opened from the email in a browser (any browser: no CSRF cookie needed).
        let b2 = opener(&srv);
        let res = open(&b2, &link).await;
        let done = if kind == Kind::Native {
            // An API flow answers with the flow (Kratos).
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()
        } else {
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let loc = location(&res);
            assert!(loc.contains(&format!("/ui/verification?flow={flow_id}")), "{loc}");
            c.fetch("verification", flow_id).await
        };
        assert_eq!(done["state"], "passed_challenge", "{done}");
        assert_eq!(message_ids(&done), vec![1080002]);
        let cont = done["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["attributes"]["id"] == "continue")
            .unwrap_or_else(|| panic!("a continue link: {done}"));
        assert_eq!(cont["group"], "link");
        let id = i["id"].as_str().unwrap();
        let after: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(after["verifiable_addresses"][0]["verified"], true, "{after}");
        assert!(
            b2.jar.get("ory_kratos_session").is_none(),
            "verification signs nobody in"
        );
        // Once only.
        let b3 = opener(&srv);
        let res = open(&b3, &link).await;
        assert_retry(&b3, res, "verification", flow_id, 4070001).await;
    }
}
both!(verification_by_link_for_every_client);

async fn registration_sends_a_verification_link(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    let mut c = Client::new(&srv, Kind::Native);
    crate::flows::register(&mut c, "fresh-link@example.com").await;
    let mail = sink.next_mail_to("fresh-link@example.com").await;
    let link = link_of(&mail, "verification");
    let res = open(&opener(&srv), &link).await;
    assert_eq!(res.status(), StatusCode::OK);
    let f: Value = res.json().await.unwrap();
    assert_eq!(f["state"], "passed_challenge", "{f}");
}
both!(registration_sends_a_verification_link);

async fn admin_recovery_link(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    let i = srv
        .create_identity(json!({"schema_id": "default", "traits": {"email": "adm@example.com"}}))
        .await;
    let id = i["id"].as_str().unwrap();
    let admin = srv.client();
    let res = admin
        .post(srv.admin_url("/admin/recovery/link?return_to=http://app.test/after"))
        .json(&json!({"identity_id": id, "expires_in": "10m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let link = body["recovery_link"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!("{}/self-service/recovery?flow=", srv.public)),
        "{link}"
    );
    assert!(link.contains("&token="));
    let expires = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - srv.clock.now();
    assert!(
        left > time::Duration::minutes(9) && left <= time::Duration::minutes(10),
        "{left}"
    );
    // No mail for admin links.
    let msgs: Vec<Value> = admin
        .get(srv.admin_url("/admin/courier/messages?recipient=adm@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(msgs.is_empty());
    let b1 = opener(&srv);
    let res = open(&b1, &link).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).contains("/ui/settings?flow="), "{}", location(&res));
    let who: Value = b1.whoami().await.json().await.unwrap();
    assert_eq!(who["identity"]["id"], id);
    assert_eq!(who["authentication_methods"][0]["method"], "link_recovery");
    // Once only.
    let b2 = opener(&srv);
    let res = open(&b2, &link).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).contains("/ui/recovery?flow="));
    // Unknown identity, bad durations, a forbidden return_to.
    let res = admin
        .post(srv.admin_url("/admin/recovery/link"))
        .json(&json!({"identity_id": uuid::Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    for bad in ["soon", "0s"] {
        let res = admin
            .post(srv.admin_url("/admin/recovery/link"))
            .json(&json!({"identity_id": id, "expires_in": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let res = admin
        .post(srv.admin_url("/admin/recovery/link?return_to=https://evil.test/"))
        .json(&json!({"identity_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Default lifespan: `selfservice.methods.link.config.lifespan` (1h).
    let res = admin
        .post(srv.admin_url("/admin/recovery/link"))
        .json(&json!({"identity_id": id}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let expires = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires - srv.clock.now() > time::Duration::minutes(59));
}
both!(admin_recovery_link);

async fn admin_recovery_link_is_off_without_the_method(b: Backend) {
    let srv = TestServer::start(b).await;
    let i = srv
        .create_identity(json!({"schema_id": "default", "traits": {"email": "off@example.com"}}))
        .await;
    let res = srv
        .client()
        .post(srv.admin_url("/admin/recovery/link"))
        .json(&json!({"identity_id": i["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["reason"].as_str().unwrap_or("").contains("disabled"),
        "{body}"
    );
}
both!(admin_recovery_link_is_off_without_the_method);

#[test]
fn using_link_requires_the_link_method() {
    let doc = json!({
        "dsn": "memory",
        "identity": {"schemas": [{"id": "default", "url": "file:///dev/null"}]},
        "selfservice": {
            "default_browser_return_url": "http://app.test/",
            "flows": {"recovery": {"enabled": true, "use": "link"}}
        }
    });
    let e = latch::config::Config::from_value(doc.clone(), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("selfservice.methods.link.enabled"), "{e}");
    let mut ok = doc;
    ok["selfservice"]["methods"] = json!({"link": {"enabled": true}});
    assert!(latch::config::Config::from_value(ok, true).is_ok());
}

async fn sdk_create_recovery_link_for_identity(b: Backend) {
    use ory_kratos_client::apis::identity_api;
    use ory_kratos_client::models::CreateRecoveryLinkForIdentityBody;
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    let i = srv
        .create_identity(json!({"schema_id": "default", "traits": {"email": "sdk-link@example.com"}}))
        .await;
    let admin = crate::sdk::sdk(&srv.admin);
    let mut body = CreateRecoveryLinkForIdentityBody::new(i["id"].as_str().unwrap().to_string());
    body.expires_in = Some("15m".into());
    let made = crate::sdk::ok(
        "create_recovery_link_for_identity",
        identity_api::create_recovery_link_for_identity(&admin, Some("http://app.test/back"), Some(body)).await,
    );
    assert!(made.recovery_link.contains("token="), "{made:?}");
    assert!(made.expires_at.is_some());
    let res = open(&opener(&srv), &made.recovery_link).await;
    assert!(location(&res).contains("/ui/settings?flow="), "{}", location(&res));
    let unknown = CreateRecoveryLinkForIdentityBody::new(uuid::Uuid::new_v4().to_string());
    crate::sdk::failed(
        "create_recovery_link_for_identity (unknown identity)",
        404,
        identity_api::create_recovery_link_for_identity(&admin, None, Some(unknown)).await,
    );
}
both!(sdk_create_recovery_link_for_identity);
