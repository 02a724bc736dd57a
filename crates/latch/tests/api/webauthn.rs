//! Security keys (the `webauthn` method): second factor added in settings and used by an
//! `aal=aal2` login, and passwordless sign up and two-step sign in. Browser flows only.

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::client::{Client, Kind, message_ids, node};
use crate::flows::{finish, finish_first_factor, login, register};
use crate::harness::{Backend, TestServer};
use crate::passkey::{Device, ORIGIN};

const PW: &str = "correct horse battery staple";

fn webauthn_config(passwordless: bool) -> Value {
    json!({"selfservice": {
        "methods": {"webauthn": {"enabled": true, "config": {
            "passwordless": passwordless,
            "rp": {"id": "latch.test", "display_name": "Latch", "origins": ["https://latch.test"]}
        }}},
        "flows": {"registration": {"after": {"webauthn": {"hooks": [{"hook": "session"}]}}}}
    }})
}

fn value_of(flow: &Value, name: &str) -> Value {
    let raw = node(flow, name).unwrap_or_else(|| panic!("no {name} node in {flow}"))["attributes"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_str(&raw).unwrap()
}

async fn webauthn_second_factor_raises_the_session_to_aal2(b: Backend) {
    let srv = TestServer::with_config(b, webauthn_config(false)).await;
    let email = "mfa@example.com";
    let mut c = Client::new(&srv, Kind::Spa);
    register(&mut c, email).await;

    // Add a security key in settings.
    let flow = c.init("settings", "").await;
    let trigger = node(&flow, "webauthn_register_trigger").unwrap();
    assert_eq!(trigger["attributes"]["onclickTrigger"], "oryWebAuthnRegistration");
    assert_eq!(trigger["meta"]["label"]["id"], 1050012);
    let mut key = Device::default();
    let created = key.create(ORIGIN, &value_of(&flow, "webauthn_register_trigger")).await;
    let res = c
        .submit(
            &flow,
            json!({"method": "webauthn", "webauthn_register": created.to_string(), "webauthn_register_displayname": "Blue key"}),
        )
        .await;
    let (status, flow) = c.flow_after("settings", res).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let remove = node(&flow, "webauthn_remove").unwrap();
    assert_eq!(remove["meta"]["label"]["id"], 1050018);
    assert_eq!(remove["meta"]["label"]["context"]["display_name"], "Blue key");

    // A password login is aal1 only; whoami (highest_available) wants aal2 now.
    let mut c = Client::new(&srv, Kind::Spa);
    let res = login(&mut c, email, PW).await;
    // Kratos' post-login AAL check: the SPA is told to go on to the aal2 login.
    finish_first_factor(&mut c, res).await;
    let who = c.whoami().await;
    assert_eq!(who.status(), 403);
    let body: Value = who.json().await.unwrap();
    assert_eq!(body["error"]["id"], "session_aal2_required");
    // Settings (security keys included) demand aal2 too (`required_aal: highest_available`).
    let res = c
        .send(c.req(Method::GET, &c.url("/self-service/settings/browser")))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["id"], "session_aal2_required", "{body}");

    // Step up with the key.
    let flow = c.init("login", "?aal=aal2").await;
    assert_eq!(flow["requested_aal"], "aal2");
    let options = value_of(&flow, "webauthn_login_trigger");
    assert_eq!(options["publicKey"]["allowCredentials"].as_array().unwrap().len(), 1);
    let assertion = key.get(ORIGIN, &options).await;
    // A tampered signature is refused with a message and a fresh challenge.
    let mut bad = assertion.clone();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut sig = engine.decode(bad["response"]["signature"].as_str().unwrap()).unwrap();
    sig[10] ^= 0x01;
    bad["response"]["signature"] = json!(engine.encode(&sig));
    let res = c
        .submit(&flow, json!({"method": "webauthn", "webauthn_login": bad.to_string()}))
        .await;
    let (status, refused) = c.flow_after("login", res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message_ids(&refused), vec![4000043]);
    let assertion = key.get(ORIGIN, &value_of(&refused, "webauthn_login_trigger")).await;
    let res = c
        .submit(
            &refused,
            json!({"method": "webauthn", "webauthn_login": assertion.to_string()}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let who: Value = c.whoami().await.json().await.unwrap();
    assert_eq!(who["authenticator_assurance_level"], "aal2");
    let methods: Vec<&str> = who["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, vec!["password", "webauthn"]);
    // Stepped up, the security-key settings open and offer to remove the key.
    let flow = c.init("settings", "").await;
    assert!(node(&flow, "webauthn_remove").is_some(), "{flow}");

    // Native apps are not offered security keys.
    let n = Client::new(&srv, Kind::Native);
    let flow = n.init("login", "").await;
    assert!(
        flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["group"] != "webauthn")
    );
}
both!(webauthn_second_factor_raises_the_session_to_aal2);

const WEBAUTHN_SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {"traits": {"type": "object", "properties": {"email": {
    "type": "string", "format": "email", "title": "E-Mail",
    "ory.sh/kratos": {"credentials": {"webauthn": {"identifier": true}, "password": {"identifier": true}}}
  }}, "required": ["email"], "additionalProperties": false}}
}"#;

async fn webauthn_passwordless_sign_up_and_two_step_sign_in(b: Backend) {
    let mut cfg = webauthn_config(true);
    let schema = base64::engine::general_purpose::STANDARD.encode(WEBAUTHN_SCHEMA);
    crate::harness::merge(
        &mut cfg,
        &json!({"identity": {"schemas": [{"id": "default", "url": format!("base64://{schema}")}]}}),
    );
    let srv = TestServer::with_config(b, cfg).await;
    let email = "key@example.com";
    let mut key = Device::default();
    let mut c = Client::new(&srv, Kind::Spa);
    let flow = c.init("registration", "").await;
    let res = c
        .submit(&flow, json!({"method": "profile", "traits.email": email}))
        .await;
    let (_, flow) = c.flow_after("registration", res).await;
    let created = key.create(ORIGIN, &value_of(&flow, "webauthn_register_trigger")).await;
    let res = c
        .submit(
            &flow,
            json!({"method": "webauthn", "traits.email": email, "webauthn_register": created.to_string(), "webauthn_register_displayname": "Key"}),
        )
        .await;
    let body = finish(&mut c, res).await;
    assert_eq!(body["session"]["authentication_methods"][0]["method"], "webauthn");

    let c = Client::new(&srv, Kind::Spa);
    let flow = c.init("login", "").await;
    assert_eq!(
        node(&flow, "identifier").unwrap()["attributes"]["autocomplete"],
        "username webauthn"
    );
    // Unknown identifiers get the same answer as known ones (a decoy challenge).
    let res = c
        .submit(&flow, json!({"method": "webauthn", "identifier": "nobody@example.com"}))
        .await;
    let (_, after) = c.flow_after("login", res).await;
    assert_eq!(message_ids(&after), vec![1010012]);
    assert!(node(&after, "webauthn_login_trigger").is_some());
    let res = c
        .submit(&after, json!({"method": "webauthn", "identifier": email}))
        .await;
    let (status, flow) = c.flow_after("login", res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message_ids(&flow), vec![1010012]);
    let assertion = key.get(ORIGIN, &value_of(&flow, "webauthn_login_trigger")).await;
    let mut c = c;
    let res = c
        .submit(
            &flow,
            json!({"method": "webauthn", "identifier": email, "webauthn_login": assertion.to_string()}),
        )
        .await;
    let body = finish(&mut c, res).await;
    assert_eq!(body["session"]["authenticator_assurance_level"], "aal1");
    assert_eq!(body["session"]["authentication_methods"][0]["method"], "webauthn");
}
both!(webauthn_passwordless_sign_up_and_two_step_sign_in);

/// Registers a passwordless security key for `email` and returns the server.
async fn server_with_a_key(b: Backend, email: &str, extra: Value) -> TestServer {
    let mut cfg = webauthn_config(true);
    let schema = base64::engine::general_purpose::STANDARD.encode(WEBAUTHN_SCHEMA);
    crate::harness::merge(
        &mut cfg,
        &json!({"identity": {"schemas": [{"id": "default", "url": format!("base64://{schema}")}]}}),
    );
    crate::harness::merge(&mut cfg, &extra);
    let srv = TestServer::with_config(b, cfg).await;
    {
        let mut key = Device::default();
        let mut c = Client::new(&srv, Kind::Spa);
        let flow = c.init("registration", "").await;
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": email}))
            .await;
        let (_, flow) = c.flow_after("registration", res).await;
        let created = key.create(ORIGIN, &value_of(&flow, "webauthn_register_trigger")).await;
        let res = c
            .submit(
                &flow,
                json!({"method": "webauthn", "traits.email": email, "webauthn_register": created.to_string(), "webauthn_register_displayname": "Key"}),
            )
            .await;
        finish(&mut c, res).await;
    }
    srv
}

/// A flow's shape (see `code::shape`) without the per-render script nonce and the options
/// inlined in `onclick` (compared separately by [`options_shape`]).
fn flow_shape(v: &Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("nonce");
                o.remove("onclick");
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut s = crate::code::shape(v);
    strip(&mut s);
    s
}

/// The options' structure: keys and array lengths, every leaf value replaced.
fn options_shape(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), options_shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(options_shape).collect()),
        Value::String(_) => json!("*"),
        other => other.clone(),
    }
}

async fn webauthn_identifier_step_answers_alike_for_unknown_users(b: Backend) {
    let email = "holder@example.com";
    let srv = server_with_a_key(b, email, json!({})).await;
    // Security keys are a browser-flow method: browsers and SPAs.
    for kind in [Kind::Browser, Kind::Spa] {
        let c = Client::new(&srv, kind);
        let mut answers = vec![];
        for who in [email, "nobody@example.com", "nobody@example.com"] {
            let flow = c.init("login", "").await;
            let res = c.submit(&flow, json!({"method": "webauthn", "identifier": who})).await;
            let (status, flow) = c.flow_after("login", res).await;
            let options = value_of(&flow, "webauthn_login_trigger");
            answers.push((status, flow, options));
        }
        let (known, unknown) = (&answers[0], &answers[1]);
        assert_eq!(known.0, unknown.0, "{kind:?}: same status");
        assert_eq!(message_ids(&known.1), vec![1010012]);
        assert_eq!(
            flow_shape(&known.1),
            flow_shape(&unknown.1),
            "{kind:?}: same flow shape"
        );
        assert_eq!(
            options_shape(&known.2),
            options_shape(&unknown.2),
            "{kind:?}: same WebAuthn options shape"
        );
        let cred_id = |o: &Value| o["publicKey"]["allowCredentials"][0]["id"].clone();
        assert_eq!(
            cred_id(&unknown.2),
            cred_id(&answers[2].2),
            "an unknown identifier shows a stable key id, as a real one would"
        );
        assert_ne!(
            unknown.2["publicKey"]["challenge"],
            answers[2].2["publicKey"]["challenge"]
        );
    }
    // A wrong assertion fails alike for the decoy and for a real user's keys.
    let mut refusals = vec![];
    for who in [email, "nobody@example.com"] {
        let c = Client::new(&srv, Kind::Spa);
        let flow = c.init("login", "").await;
        let res = c.submit(&flow, json!({"method": "webauthn", "identifier": who})).await;
        let (_, flow) = c.flow_after("login", res).await;
        // A key of another site answering this challenge.
        let mut stranger = Device::default();
        let reg = json!({"publicKey": {
            "rp": {"id": "latch.test", "name": "Latch"},
            "user": {"id": "AAAAAAAAAAAAAAAAAAAAAA", "name": who, "displayName": who},
            "challenge": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}]
        }});
        let _ = stranger.create(ORIGIN, &reg).await;
        let mut options = value_of(&flow, "webauthn_login_trigger");
        options["publicKey"]["allowCredentials"] = json!([]);
        let assertion = stranger.get(ORIGIN, &options).await;
        let res = c
            .submit(
                &flow,
                json!({"method": "webauthn", "identifier": who, "webauthn_login": assertion.to_string()}),
            )
            .await;
        let (status, after) = c.flow_after("login", res).await;
        refusals.push((status, message_ids(&after), flow_shape(&after)));
    }
    assert_eq!(refusals[0].0, StatusCode::BAD_REQUEST);
    assert_eq!(refusals[0], refusals[1], "same refusal for the decoy and a real user");
}
both!(webauthn_identifier_step_answers_alike_for_unknown_users);

async fn webauthn_identifier_step_reveals_unknown_users_only_without_mitigation(b: Backend) {
    let srv = server_with_a_key(
        b,
        "holder@example.com",
        json!({"security": {"account_enumeration": {"mitigate": false}}}),
    )
    .await;
    let c = Client::new(&srv, Kind::Spa);
    let flow = c.init("login", "").await;
    let res = c
        .submit(&flow, json!({"method": "webauthn", "identifier": "nobody@example.com"}))
        .await;
    let (_, after) = c.flow_after("login", res).await;
    assert_eq!(message_ids(&after), vec![4000015]);
}
both!(webauthn_identifier_step_reveals_unknown_users_only_without_mitigation);
