//! Account linking and the `oidc` settings (`link`/`unlink`) against the real OpenID provider
//! of `oidc.rs`: a social sign-up whose email belongs to another identity becomes Kratos'
//! linking login (1010016), which links the provider only after that identity's password;
//! settings link a provider through the provider's callback and unlink it, never the last
//! way in. Browser, SPA and native clients, SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node};
use crate::harness::{Backend, TestServer};
use crate::oidc::{
    callback, import_linked, leaves_for, query_param, session_after, setup, shown_after, sign_in_via, through_provider,
};

const PW: &str = "a long enough password";

async fn with_password(srv: &TestServer, email: &str) -> String {
    let created = srv
        .create_identity(json!({
            "schema_id": "default",
            "traits": {"email": email},
            "credentials": {"password": {"config": {"password": PW}}}
        }))
        .await;
    created["id"].as_str().unwrap().to_string()
}

/// The identity with its `oidc` credential, from the admin API.
async fn admin_identity(srv: &TestServer, id: &str) -> Value {
    srv.client()
        .get(srv.admin_url(&format!("/admin/identities/{id}?include_credential=oidc")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn oidc_identifiers(identity: &Value) -> Value {
    identity["credentials"]["oidc"]["identifiers"].clone()
}

fn nodes_named<'v>(flow: &'v Value, name: &str) -> Vec<&'v Value> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["attributes"]["name"] == name)
        .collect()
}

/// Submits a password on the linking login flow.
async fn password(c: &Client<'_>, flow: &Value, email: &str, pw: &str) -> reqwest::Response {
    c.submit(flow, json!({"method": "password", "identifier": email, "password": pw}))
        .await
}

/// The callback of a sign-up with a taken email, from a login or a registration flow:
/// the linking login flow as the client sees it (303 to the login UI with
/// `no_org_ui=true`, or 400 with the flow for native apps).
async fn linking_flow(c: &Client<'_>, srv: &TestServer, idp: &crate::oidc::Idp, start: &str, sub: &str) -> Value {
    let flow = c.init(start, "").await;
    let res = sign_in_via(c, srv, idp, &flow, "local", sub).await;
    if c.kind != Kind::Native {
        let loc = res.headers()["location"].to_str().unwrap().to_string();
        assert!(loc.contains("/login?flow="), "{loc}");
        assert_eq!(query_param(&loc, "no_org_ui"), "true", "{loc}");
    }
    let shown = shown_after(c, "login", res).await;
    assert_ne!(shown["id"], flow["id"], "a new login flow");
    shown
}

async fn oidc_taken_email_links_after_the_password(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        for start in ["login", "registration"] {
            let sub = format!("link-{kind:?}-{start}").to_lowercase();
            let email = format!("{sub}@example.com");
            let owner = with_password(&srv, &email).await;
            let mut c = Client::new(&srv, kind);
            let shown = linking_flow(&c, &srv, &idp, start, &sub).await;
            assert_eq!(message_ids(&shown), vec![1010016], "{kind:?}: {shown}");
            let m = &shown["ui"]["messages"][0];
            assert_eq!(
                m["text"],
                format!(
                    "You tried to sign in with \"{email}\", but that email is already used by another account. Sign in to \
                     your account with one of the options below to add your account \"{email}\" at \"generic\" as another \
                     way to sign in."
                )
            );
            assert_eq!(m["context"]["duplicateIdentifier"], json!(email));
            assert_eq!(m["context"]["duplicate_identifier"], json!(email));
            assert_eq!(m["context"]["provider"], "generic");
            assert_eq!(m["context"]["available_credential_types"], json!([]));
            assert_eq!(shown["state"], "choose_method");
            assert_eq!(shown["active"], "oidc");
            let identifier = node(&shown, "identifier").unwrap();
            assert_eq!(identifier["attributes"]["type"], "hidden");
            assert_eq!(identifier["attributes"]["value"], json!(email));
            let providers: Vec<&Value> = nodes_named(&shown, "provider");
            assert!(
                providers.iter().all(|n| n["attributes"]["value"] != "local"),
                "the provider just used is hidden: {shown}"
            );
            assert!(providers.iter().all(|n| n["meta"]["label"]["id"] == 1010018), "{shown}");
            // Nothing is signed in or linked yet; the flow shows nothing of the pending link.
            assert_eq!(c.whoami().await.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(oidc_identifiers(&admin_identity(&srv, &owner).await), Value::Null);
            assert!(!shown.to_string().contains(&format!("local:{sub}")), "{shown}");

            // A wrong password links nothing.
            let res = password(&c, &shown, &email, "not the password at all").await;
            let (_, again) = c.flow_after("login", res).await;
            assert_eq!(message_ids(&again), vec![4000006], "{kind:?}: {again}");
            assert_eq!(oidc_identifiers(&admin_identity(&srv, &owner).await), Value::Null);

            // The right one signs in and links the provider.
            let res = password(&c, &again, &email, PW).await;
            crate::flows::finish(&mut c, res).await;
            let session: Value = c.whoami().await.json().await.unwrap();
            assert_eq!(session["identity"]["id"], json!(owner), "{kind:?}");
            let methods: Vec<(&str, &str)> = session["authentication_methods"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["method"].as_str().unwrap(), m["provider"].as_str().unwrap_or("")))
                .collect();
            assert_eq!(methods, vec![("password", ""), ("oidc", "local")], "{session}");
            let linked = admin_identity(&srv, &owner).await;
            assert_eq!(oidc_identifiers(&linked), json!([format!("local:{sub}")]));
            assert_eq!(
                linked["credentials"]["oidc"]["config"]["providers"],
                json!([{"subject": sub, "provider": "local"}])
            );

            // From now on the provider signs straight in.
            let mut later = Client::new(&srv, kind);
            let flow = later.init("login", "").await;
            let res = sign_in_via(&later, &srv, &idp, &flow, "local", &sub).await;
            let session = session_after(&mut later, res).await;
            assert_eq!(session["identity"]["id"], json!(owner), "{kind:?}");
        }
    }
    srv.stop().await;
}
both!(oidc_taken_email_links_after_the_password);

/// Another account's password on the linking flow does not link (4010009), and the account
/// the email belongs to stays unlinked.
async fn oidc_linking_needs_the_account_of_the_taken_email(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("mismatch-{kind:?}").to_lowercase();
        let owner = with_password(&srv, &format!("{sub}@example.com")).await;
        let other_email = format!("other-{sub}@example.com");
        let other = with_password(&srv, &other_email).await;
        let c = Client::new(&srv, kind);
        let shown = linking_flow(&c, &srv, &idp, "registration", &sub).await;
        let res = password(&c, &shown, &other_email, PW).await;
        let (_, after) = c.flow_after("login", res).await;
        assert_eq!(message_ids(&after), vec![4010009], "{kind:?}: {after}");
        assert_eq!(c.whoami().await.status(), StatusCode::UNAUTHORIZED);
        for id in [&owner, &other] {
            assert_eq!(oidc_identifiers(&admin_identity(&srv, id).await), Value::Null);
        }
    }
    srv.stop().await;
}
both!(oidc_linking_needs_the_account_of_the_taken_email);

/// Eight right passwords released at once on one linking flow: no server error, and the
/// provider is linked exactly once (one identifier, one provider entry).
async fn oidc_linking_under_simultaneous_logins_links_once(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("race-{kind:?}").to_lowercase();
        let email = format!("{sub}@example.com");
        let owner = with_password(&srv, &email).await;
        let c = Client::new(&srv, kind);
        let shown = linking_flow(&c, &srv, &idp, "login", &sub).await;
        let reqs = (0..8)
            .map(|_| {
                crate::limits::raw_submit(
                    &c,
                    &shown,
                    json!({"method": "password", "identifier": email, "password": PW}),
                    &[],
                )
            })
            .collect();
        let answers = crate::limits::race(&srv.public, reqs).await;
        assert!(
            answers.iter().all(|r| r.status < 500),
            "{kind:?}: {:?}",
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        assert!(
            answers.iter().any(|r| r.status == 200 || r.status == 303),
            "{kind:?}: one of them signs in"
        );
        let linked = admin_identity(&srv, &owner).await;
        assert_eq!(oidc_identifiers(&linked), json!([format!("local:{sub}")]), "{kind:?}");
        assert_eq!(
            linked["credentials"]["oidc"]["config"]["providers"],
            json!([{"subject": sub, "provider": "local"}]),
            "{kind:?}"
        );
    }
    srv.stop().await;
}
both!(oidc_linking_under_simultaneous_logins_links_once);

/// The linking login flow, pinned (messages with contexts, nodes with labels).
async fn oidc_linking_flow_snapshot(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    with_password(&srv, "snap@example.com").await;
    let c = Client::new(&srv, Kind::Native);
    let shown = linking_flow(&c, &srv, &idp, "registration", "snap").await;
    let nodes: Vec<Value> = shown["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            json!({
                "group": n["group"],
                "name": n["attributes"]["name"],
                "type": n["attributes"]["type"],
                "value": if n["attributes"]["name"] == "passkey_challenge" {
                    json!("<random challenge>")
                } else {
                    n["attributes"].get("value").cloned().unwrap_or(Value::Null)
                },
                "label": n["meta"].get("label").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let mut messages = shown["ui"]["messages"].clone();
    messages[0]["context"]["newLoginUrl"] = json!("<login ui>");
    messages[0]["context"]["new_login_url"] = json!("<login ui>");
    insta::assert_json_snapshot!(
        "oidc_linking_login_flow",
        json!({"type": shown["type"], "active": shown["active"], "messages": messages, "nodes": nodes})
    );
    srv.stop().await;
}
both!(oidc_linking_flow_snapshot);

/// The `oidc` nodes of a settings flow: (name, value, label id).
fn oidc_settings_nodes(flow: &Value) -> Vec<(String, String, u64)> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["group"] == "oidc")
        .map(|n| {
            (
                n["attributes"]["name"].as_str().unwrap().to_string(),
                n["attributes"]["value"].as_str().unwrap().to_string(),
                n["meta"]["label"]["id"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(name: &str, value: &str, label: u64) -> (String, String, u64) {
    (name.to_string(), value.to_string(), label)
}

/// Signs in with the password (a fresh, privileged session).
async fn password_session(c: &mut Client<'_>, email: &str) {
    let flow = c.init("login", "").await;
    let res = password(c, &flow, email, PW).await;
    crate::flows::finish(c, res).await;
}

async fn oidc_settings_link_then_sign_in_then_unlink(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("settings-{kind:?}").to_lowercase();
        let email = format!("{sub}@example.com");
        let id = with_password(&srv, &email).await;
        let mut c = Client::new(&srv, kind);
        password_session(&mut c, &email).await;
        let flow = c.init("settings", "").await;
        assert_eq!(
            oidc_settings_nodes(&flow),
            vec![
                row("link", "local", 1050002),
                row("link", "nopkce", 1050002),
                row("link", "other", 1050002)
            ],
            "{kind:?}: {flow}"
        );
        let link = nodes_named(&flow, "link")[0];
        assert_eq!(link["meta"]["label"]["text"], "Link local");
        assert_eq!(link["meta"]["label"]["context"], json!({"provider": "local"}));
        assert_eq!(link["attributes"]["type"], "submit");

        idp.next_login(&sub).await;
        let to = leaves_for(&c, c.submit(&flow, json!({"link": "local"})).await).await;
        assert!(to.starts_with(&idp.issuer), "{to}");
        if kind == Kind::Native {
            // A native app's system browser has no session to finish the link with (as in
            // Kratos): the native path is the redirect alone.
            continue;
        }
        let back = through_provider(&srv, &to).await;
        let res = callback(&srv, &c, &back).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let loc = res.headers()["location"].to_str().unwrap().to_string();
        assert!(
            loc.contains(&format!("settings?flow={}", flow["id"].as_str().unwrap())),
            "{loc}"
        );
        let after = c.fetch("settings", flow["id"].as_str().unwrap()).await;
        assert_eq!(after["state"], "success", "{after}");
        assert_eq!(after["active"], "oidc");
        assert_eq!(message_ids(&after), vec![1050001]);
        assert_eq!(
            oidc_settings_nodes(&after),
            vec![
                row("link", "nopkce", 1050002),
                row("link", "other", 1050002),
                row("unlink", "local", 1050003)
            ]
        );
        assert_eq!(
            oidc_identifiers(&admin_identity(&srv, &id).await),
            json!([format!("local:{sub}")])
        );

        // The same provider answer brought back again changes nothing.
        let res = callback(&srv, &c, &back).await;
        assert_ne!(res.status(), StatusCode::OK);
        let kept = admin_identity(&srv, &id).await;
        assert_eq!(oidc_identifiers(&kept), json!([format!("local:{sub}")]));
        assert_eq!(
            kept["credentials"]["oidc"]["config"]["providers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // The provider now signs into this account.
        let mut other = Client::new(&srv, kind);
        let lf = other.init("login", "").await;
        let res = sign_in_via(&other, &srv, &idp, &lf, "local", &sub).await;
        let session = session_after(&mut other, res).await;
        assert_eq!(session["identity"]["id"], json!(id));

        // Unlink: gone, and the provider no longer signs in (its email is taken: linking).
        let flow = c.init("settings", "").await;
        let res = c.submit(&flow, json!({"unlink": "local"})).await;
        let (status, after) = c.flow_after("settings", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "{after}");
        }
        assert_eq!(after["state"], "success", "{after}");
        assert!(oidc_settings_nodes(&after).contains(&row("link", "local", 1050002)));
        assert_eq!(oidc_identifiers(&admin_identity(&srv, &id).await), json!([]));
        let fresh = Client::new(&srv, kind);
        let shown = linking_flow(&fresh, &srv, &idp, "login", &sub).await;
        assert_eq!(message_ids(&shown), vec![1010016]);
    }
    srv.stop().await;
}
both!(oidc_settings_link_then_sign_in_then_unlink);

/// Unlink in every client style (the provider linked by import), the last way in refused,
/// and link/unlink need a privileged session.
async fn oidc_settings_unlink_rules(backend: Backend) {
    // Codes would be a way in for every identity with an email: off here.
    let Some(idp) = crate::oidc::Idp::start().await else {
        return;
    };
    let mut cfg = crate::oidc::config(&idp.issuer);
    crate::harness::merge(
        &mut cfg,
        &json!({"selfservice": {"methods": {"code": {"passwordless_enabled": false}}}}),
    );
    let srv = TestServer::with_config(backend, cfg).await;
    for kind in ALL {
        // Only the provider: no unlink button, and unlinking it is refused.
        let sub = format!("only-{kind:?}").to_lowercase();
        let id = import_linked(&srv, &format!("{sub}@example.com"), &sub).await;
        let mut c = Client::new(&srv, kind);
        let lf = c.init("login", "").await;
        let res = sign_in_via(&c, &srv, &idp, &lf, "local", &sub).await;
        session_after(&mut c, res).await;
        let flow = c.init("settings", "").await;
        assert_eq!(
            oidc_settings_nodes(&flow),
            vec![row("link", "nopkce", 1050002), row("link", "other", 1050002)],
            "{kind:?}: no unlink for the last way in"
        );
        let res = c.submit(&flow, json!({"unlink": "local"})).await;
        let (status, after) = c.flow_after("settings", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(message_ids(&after), vec![4000001], "{after}");
        assert_eq!(
            after["ui"]["messages"][0]["text"],
            "can not unlink OpenID Connect connection because it is the last remaining first factor credential"
        );
        assert_eq!(
            oidc_identifiers(&admin_identity(&srv, &id).await),
            json!([format!("local:{sub}")])
        );
        // Unknown or unlinked providers.
        let res = c.submit(&after, json!({"unlink": "nopkce"})).await;
        let (_, after) = c.flow_after("settings", res).await;
        assert_eq!(message_ids(&after), vec![4000001]);
        let res = c.submit(&after, json!({"link": "nope"})).await;
        let (_, after) = c.flow_after("settings", res).await;
        assert_eq!(
            after["ui"]["messages"][0]["text"],
            "can not link unknown or already existing OpenID Connect connection"
        );
        let res = c.submit(&after, json!({"link": "local"})).await;
        let (_, after) = c.flow_after("settings", res).await;
        assert_eq!(message_ids(&after), vec![4000001], "already linked: {after}");

        // Password and provider: unlink is offered and works.
        let sub = format!("both-{kind:?}").to_lowercase();
        let email = format!("{sub}@example.com");
        let created = srv
            .create_identity(json!({
                "schema_id": "default",
                "traits": {"email": email},
                "credentials": {
                    "password": {"config": {"password": PW}},
                    "oidc": {"config": {"providers": [{"provider": "local", "subject": sub}]}}
                }
            }))
            .await;
        let id = created["id"].as_str().unwrap().to_string();
        let mut c = Client::new(&srv, kind);
        password_session(&mut c, &email).await;
        let flow = c.init("settings", "").await;
        assert!(oidc_settings_nodes(&flow).contains(&row("unlink", "local", 1050003)));
        // An old session must re-authenticate first.
        srv.clock.advance(std::time::Duration::from_secs(16 * 60));
        for body in [json!({"unlink": "local"}), json!({"link": "nopkce"})] {
            let res = c.submit(&flow, body).await;
            match kind {
                Kind::Browser => {
                    assert_eq!(res.status(), StatusCode::SEE_OTHER);
                    let loc = res.headers()["location"].to_str().unwrap();
                    assert!(loc.contains("refresh=true"), "{loc}");
                }
                _ => {
                    assert_eq!(res.status(), StatusCode::FORBIDDEN);
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["error"]["id"], "session_refresh_required");
                }
            }
        }
        assert_eq!(
            oidc_identifiers(&admin_identity(&srv, &id).await),
            json!([format!("local:{sub}")])
        );
        let mut c = Client::new(&srv, kind);
        password_session(&mut c, &email).await;
        let flow = c.init("settings", "").await;
        let res = c.submit(&flow, json!({"unlink": "local"})).await;
        let (_, after) = c.flow_after("settings", res).await;
        assert_eq!(after["state"], "success", "{kind:?}: {after}");
        assert_eq!(message_ids(&after), vec![1050001]);
        assert_eq!(oidc_identifiers(&admin_identity(&srv, &id).await), json!([]));
        // Both at once is refused.
        let res = c.submit(&after, json!({"link": "local", "unlink": "nopkce"})).await;
        let (_, after) = c.flow_after("settings", res).await;
        assert_eq!(
            after["ui"]["messages"][0]["text"],
            "it is not possible to link and unlink providers in the same request"
        );
    }
    srv.stop().await;
}
both!(oidc_settings_unlink_rules);
