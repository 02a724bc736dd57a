//! Settings (profile) and recovery by an admin-created code, for browser, SPA and native clients.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node};
use crate::flows::register;
use crate::harness::{Backend, TestServer};

async fn settings_profile_update_needs_a_privileged_session(b: Backend) {
    let srv = TestServer::start(b).await;
    for kind in ALL {
        // Without a session: 401 for JSON clients, a redirect to login for browsers.
        let anon = Client::new(&srv, kind);
        let res = anon
            .send(anon.req(
                Method::GET,
                &srv.public_url(&format!("/self-service/settings/{}", anon.api())),
            ))
            .await;
        match kind {
            Kind::Browser => {
                assert_eq!(res.status(), 303);
                assert!(
                    res.headers()["location"]
                        .to_str()
                        .unwrap()
                        .contains("/self-service/login/browser?return_to=")
                );
            }
            _ => assert_eq!(res.status(), 401),
        }
        let mut c = Client::new(&srv, kind);
        let email = format!("set-{kind:?}@example.com").to_lowercase();
        register(&mut c, &email).await;
        let flow = c.init("settings", "").await;
        assert_eq!(flow["state"], "show_form");
        assert_eq!(flow["identity"]["traits"]["email"], email);
        assert_eq!(node(&flow, "traits.email").unwrap()["attributes"]["value"], email);
        let res = c
            .submit(
                &flow,
                json!({"method": "profile", "traits.email": email, "traits.name.first": "Ada"}),
            )
            .await;
        let (status, after) = c.flow_after("settings", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK);
        }
        assert_eq!(after["state"], "success");
        assert_eq!(message_ids(&after), vec![1050001]);
        // Kratos tells SPAs where to go (the settings UI with this flow, no return_to or
        // after-URL being configured); native apps get the flow alone.
        match kind {
            Kind::Spa => {
                assert_eq!(after["continue_with"][0]["action"], "redirect_browser_to", "{after}");
                let to = after["continue_with"][0]["redirect_browser_to"].as_str().unwrap();
                assert!(
                    to.ends_with(&format!("/ui/settings?flow={}", flow["id"].as_str().unwrap())),
                    "{to}"
                );
            }
            Kind::Native => assert!(after.get("continue_with").is_none(), "{after}"),
            Kind::Browser => {}
        }
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["identity"]["traits"]["name"]["first"], "Ada");
        // Invalid traits are node messages and change nothing.
        let res = c
            .submit(&after, json!({"method": "profile", "traits.email": "not-an-email"}))
            .await;
        let (_, bad) = c.flow_after("settings", res).await;
        assert_eq!(crate::client::node_message_ids(&bad, "traits.email"), vec![4000040]);
        // After privileged_session_max_age (15m) a refresh login is required.
        srv.clock.advance(std::time::Duration::from_secs(16 * 60));
        let flow = c.init("settings", "").await;
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": email}))
            .await;
        match kind {
            Kind::Browser => {
                assert_eq!(res.status(), 303);
                assert!(res.headers()["location"].to_str().unwrap().contains("refresh=true"));
            }
            _ => {
                assert_eq!(res.status(), 403);
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"]["id"], "session_refresh_required");
                assert!(
                    body["redirect_browser_to"]
                        .as_str()
                        .unwrap()
                        .contains("/self-service/login/browser?refresh=true")
                );
            }
        }
    }
}
both!(settings_profile_update_needs_a_privileged_session);

async fn recovery_by_admin_code_signs_in_and_continues_to_settings(b: Backend) {
    let srv = TestServer::with_config(
        b,
        json!({"selfservice": {"flows": {"recovery": {"enabled": true, "use": "code"}}},
        "courier": {"smtp": {"connection_uri": "smtp://127.0.0.1:1/?disable_starttls=true"}}}),
    )
    .await;
    let http = srv.client();
    for kind in ALL {
        let email = format!("rec-{kind:?}@example.com").to_lowercase();
        let created = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
            .await;
        let flow_type = if kind == Kind::Native { "api" } else { "browser" };
        let res = http
            .post(srv.admin_url("/admin/recovery/code"))
            .json(&json!({"identity_id": created["id"], "expires_in": "15m", "flow_type": flow_type}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        let code = body["recovery_code"].as_str().unwrap();
        assert_eq!(code.len(), 6);
        let link = body["recovery_link"].as_str().unwrap();
        let c = Client::new(&srv, kind);
        let flow = if kind == Kind::Native {
            let id = link.split("flow=").nth(1).unwrap();
            c.fetch("recovery", id).await
        } else {
            // Opening the link binds the flow to this browser.
            let res = c.send(c.req(Method::GET, link)).await;
            if kind == Kind::Browser {
                assert_eq!(res.status(), 303);
                let id = link.split("flow=").nth(1).unwrap();
                c.fetch("recovery", id).await
            } else {
                res.json().await.unwrap()
            }
        };
        assert_eq!(flow["state"], "sent_email");
        // A wrong code is a message; the right one signs in.
        let res = c.submit(&flow, json!({"method": "code", "code": "000000"})).await;
        let (_, again) = c.flow_after("recovery", res).await;
        assert_eq!(message_ids(&again), vec![4060006], "{again}");
        let res = c.submit(&again, json!({"method": "code", "code": code})).await;
        let status = res.status();
        match kind {
            Kind::Browser => {
                assert_eq!(status, 303);
                assert!(
                    res.headers()["location"]
                        .to_str()
                        .unwrap()
                        .contains("/ui/settings?flow=")
                );
                assert!(c.jar.get("ory_kratos_session").is_some());
            }
            Kind::Spa => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["continue_with"][0]["action"], "show_settings_ui");
                assert!(c.jar.get("ory_kratos_session").is_some());
            }
            Kind::Native => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["continue_with"][0]["action"], "set_ory_session_token");
                assert_eq!(body["continue_with"][1]["action"], "show_settings_ui");
                let token = body["continue_with"][0]["ory_session_token"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let res = http
                    .get(srv.public_url("/sessions/whoami"))
                    .header("x-session-token", token)
                    .send()
                    .await
                    .unwrap();
                let who: Value = res.json().await.unwrap();
                assert_eq!(who["authentication_methods"][0]["method"], "code_recovery");
                continue;
            }
        }
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["identity"]["traits"]["email"], email);
    }
}
both!(recovery_by_admin_code_signs_in_and_continues_to_settings);
