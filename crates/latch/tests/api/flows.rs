//! Login and registration with the password and profile methods, for browser, SPA and
//! native clients: the rows of Kratos' behaviour matrix.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node, node_message_ids};
use crate::harness::{Backend, TestServer};

const PW: &str = "correct horse battery staple";

/// Completes a registration and checks the answer for the client's style.
pub async fn register(c: &mut Client<'_>, email: &str) -> Value {
    let flow = c.init("registration", "").await;
    assert_eq!(flow["state"], "choose_method");
    assert!(node(&flow, "traits.email").is_some());
    // Step 1 (profile_first): traits.
    let res = c
        .submit(&flow, json!({"method": "profile", "traits.email": email}))
        .await;
    let (status, flow) = c.flow_after("registration", res).await;
    if c.kind == Kind::Browser {
        assert_eq!(
            status,
            StatusCode::SEE_OTHER,
            "Kratos redirects the profile step with 303"
        );
    } else {
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "the profile step answers 400 + flow: {flow}"
        );
    }
    assert_eq!(message_ids(&flow), vec![1040009]);
    assert_eq!(node(&flow, "traits.email").unwrap()["attributes"]["type"], "hidden");
    assert!(node(&flow, "password").is_some());
    assert!(
        flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["attributes"]["name"] == "screen")
    );
    // Step 2: the password.
    let res = c
        .submit(
            &flow,
            json!({"method": "password", "traits.email": email, "password": PW}),
        )
        .await;
    finish(c, res).await
}

/// Checks a successful login/registration answer and keeps the session for the client.
pub async fn finish(c: &mut Client<'_>, res: reqwest::Response) -> Value {
    let status = res.status();
    match c.kind {
        Kind::Browser => {
            assert_eq!(status, StatusCode::SEE_OTHER);
            assert_eq!(res.headers()["location"], "http://app.test/welcome");
            assert!(c.jar.get("ory_kratos_session").is_some(), "session cookie set");
            json!({})
        }
        Kind::Spa => {
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["continue_with"][0]["action"], "redirect_browser_to");
            assert_eq!(
                body["continue_with"][0]["redirect_browser_to"],
                "http://app.test/welcome"
            );
            assert!(body["session"]["id"].is_string());
            assert!(body.get("session_token").is_none(), "browsers never see the token");
            assert!(c.jar.get("ory_kratos_session").is_some());
            body
        }
        Kind::Native => {
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
            let token = body["session_token"].as_str().unwrap().to_string();
            assert!(token.starts_with("ory_st_") && token.len() == 39, "{token}");
            assert!(c.jar.names().is_empty(), "native flows set no cookies");
            c.token = Some(token);
            body
        }
    }
}

/// Like [`finish`] for a first-factor login of an identity that has a second factor, under
/// Kratos' default `session.whoami.required_aal: highest_available` (its `PostLoginHook`):
/// the session is issued at `aal1`, but browsers are sent on to the `aal2` login with a 303,
/// SPAs get 422 `browser_location_change_required` pointing there, and native apps get their
/// token with the session's `identity` left out. Returns the answer's body (`{}` for browsers).
pub async fn finish_first_factor(c: &mut Client<'_>, res: reqwest::Response) -> Value {
    let status = res.status();
    // The public base URL of the configuration, which is not the test server's address.
    let aal2 = "/self-service/login/browser?aal=aal2";
    match c.kind {
        Kind::Browser => {
            assert_eq!(status, StatusCode::SEE_OTHER);
            let to = res.headers()["location"].to_str().unwrap().to_string();
            assert!(to.starts_with("http") && to.ends_with(aal2), "{to}");
            assert!(c.jar.get("ory_kratos_session").is_some(), "session cookie set");
            json!({})
        }
        Kind::Spa => {
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["error"]["id"], "browser_location_change_required", "{body}");
            let to = body["redirect_browser_to"].as_str().unwrap();
            assert!(to.starts_with("http") && to.ends_with(aal2), "{body}");
            assert!(body.get("session").is_none(), "{body}");
            assert!(c.jar.get("ory_kratos_session").is_some(), "session cookie set");
            body
        }
        Kind::Native => {
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
            let token = body["session_token"].as_str().unwrap().to_string();
            assert_eq!(body["session"]["authenticator_assurance_level"], "aal1", "{body}");
            assert!(body["session"].get("identity").is_none(), "identity left out: {body}");
            c.token = Some(token);
            body
        }
    }
}

pub async fn login(c: &mut Client<'_>, email: &str, password: &str) -> reqwest::Response {
    let flow = c.init("login", "").await;
    c.submit(
        &flow,
        json!({"method": "password", "identifier": email, "password": password}),
    )
    .await
}

async fn registration_profile_first_then_login_for_every_client(b: Backend) {
    let srv = TestServer::start(b).await;
    for kind in ALL {
        let email = format!("{kind:?}@example.com").to_lowercase();
        let mut c = Client::new(&srv, kind);
        let body = register(&mut c, &email).await;
        if kind != Kind::Browser {
            assert_eq!(body["identity"]["traits"]["email"], email);
            assert_eq!(body["session"]["authentication_methods"][0]["method"], "password");
            assert_eq!(body["session"]["authenticator_assurance_level"], "aal1");
        }
        if kind == Kind::Native {
            assert_eq!(body["continue_with"][0]["action"], "set_ory_session_token");
            assert_eq!(body["continue_with"][0]["ory_session_token"], body["session_token"]);
        }
        let res = c.whoami().await;
        assert_eq!(res.status(), 200);
        let id = res.headers()["x-kratos-authenticated-identity-id"]
            .to_str()
            .unwrap()
            .to_string();
        let who: Value = res.json().await.unwrap();
        assert_eq!(who["identity"]["id"], id);
        assert_eq!(who["identity"]["traits"]["email"], email);
        assert!(who["identity"].get("credentials").is_none());
        assert_eq!(who["active"], true);
        assert!(
            who["devices"][0]["ip_address"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1")
        );

        // A fresh client signs in.
        let mut fresh = Client::new(&srv, kind);
        let res = login(&mut fresh, &email, PW).await;
        let body = finish(&mut fresh, res).await;
        if kind == Kind::Native {
            assert_eq!(body["continue_with"], Value::Null);
            assert_eq!(body["session"]["identity"]["id"], id);
        }
        assert_eq!(fresh.whoami().await.status(), 200);
    }
}
both!(registration_profile_first_then_login_for_every_client);

async fn registration_unified_style_is_one_step(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"registration": {"style": "unified"}}}}),
    )
    .await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        let flow = c.init("registration", "").await;
        assert!(node(&flow, "password").is_some(), "unified shows the password at once");
        assert!(node(&flow, "traits.email").is_some());
        let email = format!("u-{kind:?}@example.com").to_lowercase();
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "traits.email": email, "password": PW}),
            )
            .await;
        finish(&mut c, res).await;
    }
}
both!(registration_unified_style_is_one_step);

async fn registration_without_session_hook_creates_no_session(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"registration": {"style": "unified", "after": {"password": {"hooks": []}}}}}}),
    )
    .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = c.init("registration", "").await;
        let email = format!("nohook-{kind:?}@example.com").to_lowercase();
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "traits.email": email, "password": PW}),
            )
            .await;
        let status = res.status();
        assert!(c.jar.get("ory_kratos_session").is_none());
        match kind {
            Kind::Browser => assert_eq!(status, StatusCode::SEE_OTHER),
            _ => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, 200);
                assert_eq!(body["identity"]["traits"]["email"], email);
                assert!(
                    body.get("session").is_none() && body.get("session_token").is_none(),
                    "{body}"
                );
            }
        }
        assert_eq!(c.whoami().await.status(), 401);
    }
}
both!(registration_without_session_hook_creates_no_session);

async fn registration_validation_errors_are_flow_messages(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"registration": {"style": "unified"}}}}),
    )
    .await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "taken@example.com"}}))
        .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = c.init("registration", "").await;
        // Invalid email → message on traits.email.
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "traits.email": "nope", "password": PW}),
            )
            .await;
        let (status, flow) = c.flow_after("registration", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(node_message_ids(&flow, "traits.email"), vec![4000040], "{flow}");
        assert_eq!(
            node(&flow, "traits.email").unwrap()["attributes"]["value"],
            "nope",
            "input is kept"
        );
        // Short password → message on password.
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "traits.email": "ok@example.com", "password": "short"}),
            )
            .await;
        let (_, flow) = c.flow_after("registration", res).await;
        assert_eq!(node_message_ids(&flow, "password"), vec![4000032], "{flow}");
        assert!(
            node_message_ids(&flow, "traits.email").is_empty(),
            "old messages are cleared"
        );
        // Taken identifier → 4000007.
        let res = c
            .submit(
                &flow,
                json!({"method": "password", "traits.email": "taken@example.com", "password": PW}),
            )
            .await;
        let (_, flow) = c.flow_after("registration", res).await;
        assert_eq!(message_ids(&flow), vec![4000007], "{flow}");
        // Unknown method → 4010003.
        let res = c.submit(&flow, json!({"method": "carrier-pigeon"})).await;
        let (_, flow) = c.flow_after("registration", res).await;
        assert_eq!(message_ids(&flow), vec![4010003]);
    }
    let list: Vec<Value> = srv
        .client()
        .get(srv.admin_url("/admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "nothing was written");
}
both!(registration_validation_errors_are_flow_messages);

async fn login_with_wrong_password_or_unknown_identifier_is_4000006(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "known@example.com"},
        "credentials": {"password": {"config": {"password": PW}}}}))
        .await;
    for kind in ALL {
        for (who, pw) in [("known@example.com", "wrong password!"), ("unknown@example.com", PW)] {
            let c = Client::new(&srv, kind);
            let flow = c.init("login", "").await;
            let res = c
                .submit(&flow, json!({"method": "password", "identifier": who, "password": pw}))
                .await;
            let (status, flow) = c.flow_after("login", res).await;
            if kind == Kind::Browser {
                assert_eq!(status, StatusCode::SEE_OTHER);
            } else {
                assert_eq!(status, StatusCode::BAD_REQUEST);
            }
            assert_eq!(message_ids(&flow), vec![4000006], "{flow}");
            assert_eq!(node(&flow, "identifier").unwrap()["attributes"]["value"], who);
            assert!(c.jar.get("ory_kratos_session").is_none());
        }
        // Case-insensitive identifier works.
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, "KNOWN@example.com", PW).await;
        finish(&mut c, res).await;
    }
}
both!(login_with_wrong_password_or_unknown_identifier_is_4000006);

async fn imported_bcrypt_password_logs_in_and_is_rehashed(b: Backend) {
    let srv = TestServer::start(b).await;
    let hash = bcrypt::hash(PW, 4).unwrap();
    let created = srv
        .create_identity(json!({"schema_id": "default", "traits": {"email": "old@example.com"},
            "credentials": {"password": {"config": {"hashed_password": hash}}}}))
        .await;
    let mut c = Client::new(&srv, Kind::Native);
    let res = login(&mut c, "old@example.com", PW).await;
    finish(&mut c, res).await;
    let got: Value = srv
        .client()
        .get(srv.admin_url(&format!(
            "/admin/identities/{}?include_credential=password",
            created["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        got["credentials"]["password"]["config"]["hashed_password"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$")
    );
}
both!(imported_bcrypt_password_logs_in_and_is_rehashed);

async fn csrf_failures_say_which_reason(b: Backend) {
    let srv = TestServer::start(b).await;
    let cookie_name = srv.app.csrf_cookie_name.clone();
    for kind in [Kind::Browser, Kind::Spa] {
        // 1. No cookies at all.
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let token = crate::client::csrf_of(&flow);
        let action = flow["ui"]["action"].as_str().unwrap().to_string();
        let raw = srv.client();
        let res = raw
            .post(&action)
            .header("accept", "application/json")
            .json(&json!({"method": "password", "identifier": "a@b.co", "password": "x", "csrf_token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(res.headers()["ory-error-id"], "security_csrf_violation");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["id"], "security_csrf_violation");
        let reason = body["error"]["details"]["reject_reason"].as_str().unwrap();
        assert!(
            reason.starts_with("The HTTP Cookie Header is empty or not set."),
            "{reason}"
        );
        assert!(
            reason.contains("credentials: 'include'") && reason.contains("serve.public.base_url"),
            "{reason}"
        );

        // 2. Cookies but not the CSRF one.
        let res = raw
            .post(&action)
            .header("accept", "application/json")
            .header("cookie", "other=1")
            .json(&json!({"method": "password", "identifier": "a@b.co", "password": "x", "csrf_token": token}))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        let reason = body["error"]["details"]["reject_reason"].as_str().unwrap();
        assert!(
            reason.starts_with("The HTTP Cookie Header was set but did not include the anti-CSRF cookie."),
            "{reason}"
        );
        assert!(reason.contains(&cookie_name));

        // 3. Cookie but no token.
        let res = c
            .send(
                c.req(Method::POST, &action)
                    .header("accept", "application/json")
                    .json(&json!({"method": "password"})),
            )
            .await;
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["details"]["latch_failure"], "csrf_token_missing");

        // 4. Token from another browser.
        let other = Client::new(&srv, kind);
        let other_flow = other.init("login", "").await;
        let res = c
            .send(c.req(Method::POST, &action).header("accept", "application/json").json(
                &json!({"method": "password", "identifier": "a@b.co", "password": "x", "csrf_token": crate::client::csrf_of(&other_flow)}),
            ))
            .await;
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"]["details"]["reject_reason"]
                .as_str()
                .unwrap()
                .starts_with("The HTTP Cookie Header was set and a CSRF token was sent but they do not match.")
        );

        // Fetching a browser flow without the cookie is refused too.
        let id = flow["id"].as_str().unwrap();
        let res = raw
            .get(srv.public_url(&format!("/self-service/login/flows?id={id}")))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
    // A server-rendered browser is sent to the error page, which explains itself.
    let c = Client::new(&srv, Kind::Browser);
    let flow = c.init("login", "").await;
    c.jar.remove(&cookie_name);
    c.jar
        .0
        .lock()
        .unwrap()
        .insert("unrelated".into(), ("1".into(), String::new()));
    let res = c
        .submit(
            &flow,
            json!({"method": "password", "identifier": "a@b.co", "password": "x"}),
        )
        .await;
    assert_eq!(res.status(), 303);
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains("/ui/error?id="), "{loc}");
    let id = loc.split("id=").nth(1).unwrap();
    let err: Value = srv
        .client()
        .get(srv.public_url(&format!("/self-service/errors?id={id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(err["error"]["id"], "security_csrf_violation");
    assert_eq!(err["error"]["code"], 403);
}
both!(csrf_failures_say_which_reason);

async fn csrf_cookie_and_masked_tokens_look_like_kratos(b: Backend) {
    let srv = TestServer::start(b).await;
    let c = Client::new(&srv, Kind::Spa);
    let flow = c.init("login", "").await;
    let name = srv.app.csrf_cookie_name.clone();
    assert!(name.starts_with("csrf_token_") && name.len() == "csrf_token_".len() + 64);
    let value = c.jar.get(&name).unwrap();
    assert_eq!(value.len(), 44, "base64 of 32 bytes");
    let raw = c.jar.raw(&name).unwrap();
    assert!(
        raw.contains("HttpOnly")
            && raw.contains("SameSite=Lax")
            && raw.contains("Path=/")
            && raw.contains("Max-Age=31536000"),
        "{raw}"
    );
    assert!(!raw.contains("Secure"), "--dev drops Secure: {raw}");
    let t1 = crate::client::csrf_of(&flow);
    let again = c.fetch("login", flow["id"].as_str().unwrap()).await;
    let t2 = crate::client::csrf_of(&again);
    assert_eq!(t1.len(), 88);
    assert_ne!(t1, t2, "every render masks the token anew");
    let native = Client::new(&srv, Kind::Native);
    let api_flow = native.init("login", "").await;
    assert_eq!(crate::client::csrf_of(&api_flow), "");
    assert!(native.jar.names().is_empty());
}
both!(csrf_cookie_and_masked_tokens_look_like_kratos);

async fn api_flows_refuse_browser_origin_and_cookies(b: Backend) {
    let srv = TestServer::start(b).await;
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("login", "").await;
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    for (h, v) in [("origin", "http://evil.test"), ("cookie", "session=1")] {
        let res = srv
            .client()
            .post(&action)
            .header(h, v)
            .json(&json!({"method": "password", "identifier": "a@b.co", "password": "xxxxxxxx"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(message_ids(&body), vec![4000001], "{body}");
    }
    // Cloudflare cookies are fine.
    let res = srv
        .client()
        .post(&action)
        .header("cookie", "__cf_bm=1")
        .json(&json!({"method": "password", "identifier": "a@b.co", "password": "xxxxxxxx"}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(message_ids(&body), vec![4000006]);
}
both!(api_flows_refuse_browser_origin_and_cookies);

async fn expired_flows_are_replaced(b: Backend) {
    let srv = TestServer::start(b).await;
    for kind in ALL {
        for flow_name in ["login", "registration"] {
            let c = Client::new(&srv, kind);
            let flow = c.init(flow_name, "").await;
            srv.clock.advance(std::time::Duration::from_secs(2 * 3600));
            let res = c
                .submit(
                    &flow,
                    json!({"method": "password", "identifier": "a@b.co", "password": "xxxxxxxx"}),
                )
                .await;
            match kind {
                Kind::Browser => {
                    assert_eq!(res.status(), 303);
                    let loc = res.headers()["location"].to_str().unwrap().to_string();
                    let new_id = loc.split("flow=").nth(1).unwrap();
                    assert_ne!(new_id, flow["id"].as_str().unwrap());
                    let new_flow = c.fetch(flow_name, new_id).await;
                    let expect = if flow_name == "login" { 4010001 } else { 4040001 };
                    assert_eq!(message_ids(&new_flow), vec![expect]);
                }
                _ => {
                    assert_eq!(res.status(), 410);
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["error"]["id"], "self_service_flow_expired");
                    let new_id = body["use_flow_id"].as_str().unwrap();
                    let new_flow = c.fetch(flow_name, new_id).await;
                    assert_eq!(new_flow["state"], "choose_method");
                    assert!(body["expired_at"].is_string());
                }
            }
            // Fetching the expired flow answers 410 as well.
            let res = c
                .send(c.req(
                    Method::GET,
                    &srv.public_url(&format!(
                        "/self-service/{flow_name}/flows?id={}",
                        flow["id"].as_str().unwrap()
                    )),
                ))
                .await;
            assert_eq!(res.status(), 410);
        }
    }
}
both!(expired_flows_are_replaced);

async fn return_to_is_validated(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "r@example.com"},
        "credentials": {"password": {"config": {"password": PW}}}}))
        .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let url = srv.public_url(&format!("/self-service/login/{}?return_to=https://evil.test/", c.api()));
        let res = c.send(c.req(Method::GET, &url)).await;
        match kind {
            Kind::Browser => {
                assert_eq!(res.status(), 303);
                assert!(res.headers()["location"].to_str().unwrap().contains("/ui/error?id="));
            }
            _ => {
                assert_eq!(res.status(), 400);
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"]["id"], "self_service_flow_return_to_forbidden");
            }
        }
    }
    // An allowed return_to is where the browser goes after login.
    let c = Client::new(&srv, Kind::Browser);
    let flow = c.init("login", "?return_to=http://app.test/dashboard").await;
    assert_eq!(flow["return_to"], "http://app.test/dashboard");
    let res = c
        .submit(
            &flow,
            json!({"method": "password", "identifier": "r@example.com", "password": PW}),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "http://app.test/dashboard");
}
both!(return_to_is_validated);

async fn signed_in_clients_get_session_already_available(b: Backend) {
    let srv = TestServer::start(b).await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        register(&mut c, &format!("a-{kind:?}@example.com").to_lowercase()).await;
        for flow in ["login", "registration"] {
            let res = c
                .send(c.req(
                    Method::GET,
                    &srv.public_url(&format!("/self-service/{flow}/{}", c.api())),
                ))
                .await;
            match kind {
                Kind::Browser => {
                    assert_eq!(res.status(), 303);
                    assert_eq!(res.headers()["location"], "http://app.test/welcome");
                }
                _ => {
                    assert_eq!(res.status(), 400);
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["error"]["id"], "session_already_available");
                }
            }
        }
        // refresh=true is allowed and re-authenticates the same session.
        let flow = c.init("login", "?refresh=true").await;
        assert_eq!(flow["refresh"], true);
        let res = c.submit(&flow, json!({"method": "password", "identifier": format!("a-{kind:?}@example.com").to_lowercase(), "password": PW})).await;
        assert!(res.status() == 200 || res.status() == 303, "{}", res.status());
    }
}
both!(signed_in_clients_get_session_already_available);

async fn logout_for_every_client(b: Backend) {
    let srv = TestServer::start(b).await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        register(&mut c, &format!("out-{kind:?}@example.com").to_lowercase()).await;
        match kind {
            Kind::Native => {
                let token = c.token.clone().unwrap();
                let res = srv
                    .client()
                    .delete(srv.public_url("/self-service/logout/api"))
                    .json(&json!({"session_token": token}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 204);
                let res = srv
                    .client()
                    .delete(srv.public_url("/self-service/logout/api"))
                    .json(&json!({"session_token": "ory_st_nope"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 403);
            }
            _ => {
                let res = c
                    .send(
                        c.req(Method::GET, &srv.public_url("/self-service/logout/browser"))
                            .header("accept", "application/json"),
                    )
                    .await;
                assert_eq!(res.status(), 200);
                let body: Value = res.json().await.unwrap();
                let token = body["logout_token"].as_str().unwrap();
                assert!(token.starts_with("ory_lo_"));
                let url = body["logout_url"].as_str().unwrap();
                assert_eq!(url, format!("{}/self-service/logout?token={token}", srv.public));
                let res = c.send(c.req(Method::GET, url)).await;
                if kind == Kind::Spa {
                    assert_eq!(res.status(), 204);
                } else {
                    assert_eq!(res.status(), 303);
                    assert_eq!(res.headers()["location"], "http://app.test/welcome");
                }
                assert!(c.jar.get("ory_kratos_session").is_none(), "session cookie cleared");
                let res = c
                    .send(
                        c.req(Method::GET, &srv.public_url("/self-service/logout/browser"))
                            .header("accept", "application/json"),
                    )
                    .await;
                assert_eq!(res.status(), 401);
            }
        }
        assert_eq!(c.whoami().await.status(), 401);
    }
}
both!(logout_for_every_client);

async fn whoami_accepts_cookie_header_token_and_bearer(b: Backend) {
    let srv = TestServer::start(b).await;
    let mut native = Client::new(&srv, Kind::Native);
    register(&mut native, "who@example.com").await;
    let token = native.token.clone().unwrap();
    let raw = srv.client();
    for (h, v) in [
        ("x-session-token", token.clone()),
        ("authorization", format!("Bearer {token}")),
        ("authorization", format!("bearer {token}")),
    ] {
        let res = raw
            .get(srv.public_url("/sessions/whoami"))
            .header(h, v)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = raw
        .post(srv.public_url("/sessions/whoami"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "any method works");
    let res = raw
        .get(srv.public_url("/sessions/whoami"))
        .header("x-session-token", "ory_st_invalid")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(
        body["error"]["reason"],
        "No valid session credentials found in the request."
    );
    let res = raw
        .get(srv.public_url("/sessions/whoami"))
        .header("cookie", "ory_kratos_session=tampered")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Sessions expire with session.lifespan.
    srv.clock.advance(std::time::Duration::from_secs(25 * 3600));
    let res = raw
        .get(srv.public_url("/sessions/whoami"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
both!(whoami_accepts_cookie_header_token_and_bearer);
