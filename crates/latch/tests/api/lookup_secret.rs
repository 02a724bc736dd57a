//! Backup codes (the `lookup_secret` method) for browser, SPA and native clients: generation
//! and confirmation in settings, the `aal=aal2` step-up login, each code used once (also under
//! concurrency), wrong codes budgeted, reveal (which shows only which codes are used: they are
//! stored hashed), disabling, and admin import of Kratos' plain-text codes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node};
use crate::flows::{finish_first_factor, login, register};
use crate::harness::{Backend, TestServer};
use crate::limits::{race, raw_submit};

const PW: &str = "correct horse battery staple";

fn config() -> Value {
    json!({"selfservice": {"methods": {"lookup_secret": {"enabled": true}}}})
}

/// A text node, found by its `attributes.id`.
fn by_id<'v>(flow: &'v Value, id: &str) -> Option<&'v Value> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["id"] == id)
}

/// The entries of the `lookup_secret_codes` node: (message id, text).
fn shown_codes(flow: &Value) -> Vec<(u64, String)> {
    by_id(flow, "lookup_secret_codes").unwrap()["attributes"]["text"]["context"]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_u64().unwrap(), s["text"].as_str().unwrap().to_string()))
        .collect()
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

/// Presses `button` in a settings flow; the flow shown afterwards.
async fn press(c: &Client<'_>, flow: &Value, button: &str) -> Value {
    let (status, after) = submit_flow(c, "settings", flow, json!({"method": "lookup_secret", button: "true"})).await;
    if c.kind != Kind::Browser {
        assert_eq!(status, StatusCode::OK, "{after}");
    }
    after
}

/// Steps the client's session up with `code`.
async fn step_up(c: &mut Client<'_>, code: &str) -> reqwest::Response {
    let flow = c.init("login", "?aal=aal2").await;
    assert_eq!(flow["requested_aal"], "aal2");
    c.submit(&flow, json!({"method": "lookup_secret", "lookup_secret": code}))
        .await
}

async fn stored_config(srv: &TestServer, id: &str) -> Option<Value> {
    let who: Value = srv
        .client()
        .get(srv.admin_url(&format!("/admin/identities/{id}?include_credential=lookup_secret")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    who["credentials"].get("lookup_secret").map(|c| c["config"].clone())
}

fn assert_stepped_up(kind: Kind, status: StatusCode) {
    match kind {
        Kind::Browser => assert_eq!(status, StatusCode::SEE_OTHER),
        _ => assert_eq!(status, StatusCode::OK),
    }
}

async fn lookup_secret_enrol_step_up_reuse_reveal_and_disable(b: Backend) {
    let srv = TestServer::with_config(b, config()).await;
    for kind in ALL {
        let email = format!("lookup-{kind:?}@example.com").to_lowercase();
        let mut c = Client::new(&srv, kind);
        register(&mut c, &email).await;
        let who: Value = c.whoami().await.json().await.unwrap();
        let id = who["identity"]["id"].as_str().unwrap().to_string();

        // Confirming before generating is refused.
        let flow = c.init("settings", "").await;
        let (_, refused) = submit_flow(
            &c,
            "settings",
            &flow,
            json!({"method": "lookup_secret", "lookup_secret_confirm": true}),
        )
        .await;
        assert_eq!(message_ids(&refused), vec![4000001], "{refused}");

        // Regenerate shows twelve codes; nothing is stored until they are confirmed. The
        // button alone selects the method (Kratos; a form per method sends no `method`).
        let (status, shown) = submit_flow(&c, "settings", &flow, json!({"lookup_secret_regenerate": "true"})).await;
        if c.kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "{shown}");
        }
        let codes: Vec<String> = shown_codes(&shown).into_iter().map(|(_, t)| t).collect();
        assert_eq!(codes.len(), 12);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 16 && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        );
        assert!(stored_config(&srv, &id).await.is_none());
        let confirmed = press(&c, &shown, "lookup_secret_confirm").await;
        assert_eq!(confirmed["state"], "success");
        assert!(node(&confirmed, "lookup_secret_reveal").is_some(), "{confirmed}");
        assert!(
            by_id(&confirmed, "lookup_secret_codes").is_none(),
            "shown once: {confirmed}"
        );
        // Stored hashed: no code appears in what the admin API holds.
        let stored = stored_config(&srv, &id).await.unwrap();
        assert_eq!(stored["recovery_codes"].as_array().unwrap().len(), 12);
        for code in &codes {
            assert!(!stored.to_string().contains(code.as_str()), "{stored}");
        }

        // Confirming proves the codes: the enrolling session is aal2 at once, as in Kratos.
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2", "{who}");
        assert_eq!(methods(&who), vec!["password", "lookup_secret"]);

        // The identity now has a second factor: a new aal1 session does not satisfy whoami.
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        finish_first_factor(&mut c, res).await;
        assert_eq!(c.whoami().await.status(), 403);

        // Step up: a wrong code is 4000016, a right one gives aal2.
        let flow = c.init("login", "?aal=aal2").await;
        assert_eq!(node(&flow, "lookup_secret").unwrap()["meta"]["label"]["id"], 1010007);
        assert!(node(&flow, "password").is_none(), "only second factors: {flow}");
        let (status, refused) = submit_flow(
            &c,
            "login",
            &flow,
            json!({"method": "lookup_secret", "lookup_secret": "zzzzzzzz"}),
        )
        .await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(message_ids(&refused), vec![4000016], "{refused}");
        let res = c
            .submit(
                &refused,
                json!({"method": "lookup_secret", "lookup_secret": codes[3].to_uppercase()}),
            )
            .await;
        assert_stepped_up(kind, res.status());
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2");
        assert_eq!(methods(&who), vec!["password", "lookup_secret"]);

        // Reuse: another session cannot step up with the code just used (4000012).
        let mut other = Client::new(&srv, kind);
        let res = login(&mut other, &email, PW).await;
        finish_first_factor(&mut other, res).await;
        let res = step_up(&mut other, &codes[3]).await;
        let (_, refused) = other.flow_after("login", res).await;
        assert_eq!(message_ids(&refused), vec![4000012], "{refused}");
        assert_eq!(other.whoami().await.status(), 403);

        // Reveal shows which codes are used, never their values.
        let flow = c.init("settings", "").await;
        let revealed = press(&c, &flow, "lookup_secret_reveal").await;
        let entries = shown_codes(&revealed);
        assert_eq!(entries.len(), 12);
        assert_eq!(entries[3].0, 1050014, "{revealed}");
        assert!(
            entries
                .iter()
                .enumerate()
                .all(|(i, e)| i == 3 || (e.0 == 1050009 && e.1 == "*".repeat(16)))
        );
        for code in &codes {
            assert!(!revealed.to_string().contains(code.as_str()));
        }
        assert!(node(&revealed, "lookup_secret_disable").is_some());
        assert!(node(&revealed, "lookup_secret_regenerate").is_some());

        // Disable: the credential is gone and the other session satisfies whoami again.
        let disabled = press(&c, &revealed, "lookup_secret_disable").await;
        assert!(node(&disabled, "lookup_secret_regenerate").is_some(), "{disabled}");
        assert!(stored_config(&srv, &id).await.is_none());
        assert_eq!(other.whoami().await.status(), 200);
    }
}
both!(lookup_secret_enrol_step_up_reuse_reveal_and_disable);

async fn lookup_secret_import_then_aal2_login(b: Backend) {
    let srv = TestServer::with_config(b, config()).await;
    let http = srv.client();
    for bad in [
        json!({"recovery_codes": []}),
        json!({"recovery_codes": [{"code": ""}]}),
        json!({}),
    ] {
        let res = http
            .post(srv.admin_url("/admin/identities"))
            .json(&json!({"schema_id": "default", "traits": {"email": "bad@example.com"},
                "credentials": {"lookup_secret": {"config": bad}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
    }
    for kind in ALL {
        let email = format!("imported-{kind:?}@example.com").to_lowercase();
        // As Kratos exports them: plain codes, one of them used.
        let created = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": email},
            "credentials": {
                "password": {"config": {"password": PW}},
                "lookup_secret": {"config": {"recovery_codes": [
                    {"code": "abcd1234", "used_at": "2024-01-02T03:04:05Z"},
                    {"code": "efgh5678", "used_at": null},
                    {"code": "ijkl9012"}
                ]}}
            }}))
            .await;
        let id = created["id"].as_str().unwrap();
        let stored = stored_config(&srv, id).await.unwrap();
        for code in ["abcd1234", "efgh5678", "ijkl9012"] {
            assert!(!stored.to_string().contains(code), "{stored}");
        }

        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &email, PW).await;
        finish_first_factor(&mut c, res).await;
        assert_eq!(c.whoami().await.status(), 403);
        let res = step_up(&mut c, "abcd1234").await;
        let (_, refused) = c.flow_after("login", res).await;
        assert_eq!(message_ids(&refused), vec![4000012], "used in Kratos: {refused}");
        let res = step_up(&mut c, "efgh5678").await;
        assert_stepped_up(kind, res.status());
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2");
        assert_eq!(methods(&who), vec!["password", "lookup_secret"]);
        let stored = stored_config(&srv, id).await.unwrap();
        assert!(stored["recovery_codes"][1]["used_at"].is_string(), "{stored}");
    }
}
both!(lookup_secret_import_then_aal2_login);

/// An `aal2` flow of an identity without codes has no lookup nodes and refuses the method
/// with 4000014; an `aal1` login offers no lookup nodes at all.
async fn lookup_secret_login_needs_codes_and_aal2(b: Backend) {
    let srv = TestServer::with_config(b, config()).await;
    for kind in [Kind::Spa, Kind::Native] {
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        assert!(node(&flow, "lookup_secret").is_none(), "{flow}");
        let (status, refused) = submit_flow(
            &c,
            "login",
            &flow,
            json!({"method": "lookup_secret", "lookup_secret": "abcd1234"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message_ids(&refused), vec![4010002], "{refused}");

        let mut c = Client::new(&srv, kind);
        register(&mut c, &format!("nocodes-{kind:?}@example.com").to_lowercase()).await;
        assert_eq!(c.whoami().await.status(), 200);
        let flow = c.init("login", "?aal=aal2").await;
        assert!(node(&flow, "lookup_secret").is_none(), "{flow}");
        let (status, refused) = submit_flow(
            &c,
            "login",
            &flow,
            json!({"method": "lookup_secret", "lookup_secret": "abcd1234"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message_ids(&refused), vec![4000014], "{refused}");
    }
}
both!(lookup_secret_login_needs_codes_and_aal2);

/// Wrong codes use up the account's budget before anything is compared.
async fn lookup_secret_wrong_codes_count_against_the_sign_in_budget(b: Backend) {
    let mut config = config();
    crate::harness::merge(
        &mut config,
        &json!({"latch": {"rate_limits": {"password": {"free_failures": 2, "first_delay": "1m"}}}}),
    );
    let srv = TestServer::with_config(b, config).await;
    let email = "budget@example.com";
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": email},
        "credentials": {"password": {"config": {"password": PW}},
            "lookup_secret": {"config": {"recovery_codes": [{"code": "right123"}]}}}}))
        .await;
    let mut c = Client::new(&srv, Kind::Native);
    let res = login(&mut c, email, PW).await;
    finish_first_factor(&mut c, res).await;
    let mut flow = c.init("login", "?aal=aal2").await;
    for _ in 0..2 {
        let (status, refused) = submit_flow(
            &c,
            "login",
            &flow,
            json!({"method": "lookup_secret", "lookup_secret": "wrong123"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message_ids(&refused), vec![4000016]);
        flow = refused;
    }
    let res = c
        .submit(&flow, json!({"method": "lookup_secret", "lookup_secret": "right123"}))
        .await;
    assert_eq!(res.status(), 429);
    assert_eq!(c.whoami().await.status(), 403);
    srv.clock.advance(std::time::Duration::from_secs(61));
    let res = c
        .submit(&flow, json!({"method": "lookup_secret", "lookup_secret": "right123"}))
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(c.whoami().await.status(), 200);
}
both!(lookup_secret_wrong_codes_count_against_the_sign_in_budget);

/// One code released at the same instant to twelve aal1 sessions steps up exactly one.
async fn lookup_secret_code_is_accepted_once_under_concurrency(b: Backend) {
    let mut config = config();
    crate::harness::merge(
        &mut config,
        &json!({"latch": {"rate_limits": {"password": {"free_failures": 100, "account_free_failures": 100}}}}),
    );
    let srv = TestServer::with_config(b, config).await;
    let email = "race@example.com";
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": email},
        "credentials": {"password": {"config": {"password": PW}},
            "lookup_secret": {"config": {"recovery_codes": [{"code": "race1234"}, {"code": "race5678"}]}}}}))
        .await;
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
            json!({"method": "lookup_secret", "lookup_secret": "race1234"}),
            &[("x-session-token", &token)],
        ));
    }
    let answers = race(&srv.public, requests).await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "{answers:#?}");
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(message_ids(&r.json()), vec![4000012]);
    }
}
both!(lookup_secret_code_is_accepted_once_under_concurrency);

/// Node names, groups, types, values and message ids of the method's own nodes.
fn shape(flow: &Value) -> Value {
    let nodes: Vec<Value> = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["group"] == "lookup_secret")
        .map(|n| {
            let a = &n["attributes"];
            json!({
                "name": a.get("name").or_else(|| a.get("id")).cloned().unwrap_or(Value::Null),
                "type": n["type"],
                "input_type": a.get("type").cloned().unwrap_or(Value::Null),
                "value": a.get("value").cloned().unwrap_or(Value::Null),
                "required": a.get("required").cloned().unwrap_or(Value::Null),
                "label": n["meta"]["label"]["id"],
                "text": a["text"]["id"],
                "entries": a["text"]["context"]["secrets"].as_array().map(|s| s.iter().map(|e| e["id"].clone()).collect::<Vec<_>>()),
            })
        })
        .collect();
    json!({"state": flow["state"], "nodes": nodes})
}

async fn lookup_secret_flow_shapes_snapshot(b: Backend) {
    let srv = TestServer::with_config(b, config()).await;
    let mut c = Client::new(&srv, Kind::Spa);
    register(&mut c, "shape@example.com").await;
    let flow = c.init("settings", "").await;
    insta::assert_json_snapshot!("lookup_secret_settings_without_codes", shape(&flow));
    let shown = press(&c, &flow, "lookup_secret_regenerate").await;
    insta::assert_json_snapshot!("lookup_secret_settings_regenerated", shape(&shown));
    let codes: Vec<String> = shown_codes(&shown).into_iter().map(|(_, t)| t).collect();
    press(&c, &shown, "lookup_secret_confirm").await;
    // The enrolling session is aal2 already; a new password session steps up.
    let mut c = Client::new(&srv, Kind::Spa);
    let res = login(&mut c, "shape@example.com", PW).await;
    finish_first_factor(&mut c, res).await;
    let flow = c.init("login", "?aal=aal2").await;
    insta::assert_json_snapshot!("lookup_secret_login_aal2", shape(&flow));
    let res = step_up(&mut c, &codes[0]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let flow = c.init("settings", "").await;
    insta::assert_json_snapshot!("lookup_secret_settings_with_codes", shape(&flow));
    let revealed = press(&c, &flow, "lookup_secret_reveal").await;
    insta::assert_json_snapshot!("lookup_secret_settings_revealed", shape(&revealed));
}
both!(lookup_secret_flow_shapes_snapshot);
