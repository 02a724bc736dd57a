//! Social sign-in beyond the generic provider, against real servers on loopback (started by
//! `tests/oidc-provider/server.mjs`, see `oidc.rs`): the `github` preset (plain OAuth 2.0, no
//! ID token; claims from the REST API), ID tokens that must be refused (a signature by a key
//! outside the provider's JWKS, a wrong audience), a callback after the flow expired, and
//! `update_identity_on_login`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids};
use crate::harness::{Backend, TestServer};
use crate::oidc::{
    Idp, callback, import_linked, leaves_for, provider, query_param, session_after, shown_after, sign_in_via,
    through_provider,
};

fn b64(s: &str) -> String {
    use base64::Engine;
    format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(s))
}

/// Maps GitHub's claims: the primary email (verified when GitHub says so) and the profile.
const GITHUB_MAPPER: &str = r#"local claims = std.extVar('claims');
{
  identity: {
    traits: { email: claims.email },
    verified_addresses: if std.objectHas(claims, 'email_verified') && claims.email_verified
      then [{ via: 'email', value: claims.email }] else [],
    metadata_public: {
      login: claims.nickname,
      sub: claims.sub,
      iss: claims.iss,
      updated_at: claims.updated_at,
      picture: claims.picture,
    },
  },
}
"#;

/// Sees the stored identity (`std.extVar('identity')`) when re-run at login.
const UPDATE_MAPPER: &str = r#"local claims = std.extVar('claims');
local identity = std.extVar('identity');
{
  identity: {
    traits: { email: claims.email },
    metadata_public: {
      provider_name: claims.name,
      previous_email: if std.objectHas(identity.traits, 'email') then identity.traits.email else null,
    },
  },
}
"#;

fn github(idp: &Idp) -> Value {
    json!({
        "id": "gh",
        "provider": "github",
        "client_id": "latch-gh",
        "client_secret": "secret-gh",
        // GitHub Enterprise Server's layout: the test server stands in for it.
        "issuer_url": idp.github,
        "mapper_url": b64(GITHUB_MAPPER),
        "scope": ["user:email"],
    })
}

fn config(idp: &Idp) -> Value {
    let mut update = provider("update", &idp.issuer, "auto");
    update["mapper_url"] = json!(b64(UPDATE_MAPPER));
    update["update_identity_on_login"] = json!("automatic");
    let mut local = provider("local", &idp.issuer, "auto");
    local["mapper_url"] = json!(b64(UPDATE_MAPPER));
    json!({"selfservice": {
        "methods": {"oidc": {"enabled": true, "config": {"providers": [local, update, github(idp)]}}},
        "flows": {"registration": {"after": {"oidc": {"hooks": [{"hook": "session"}]}}}}
    }})
}

async fn setup(backend: Backend) -> Option<(Idp, TestServer)> {
    let idp = Idp::start().await?;
    let srv = TestServer::with_config(backend, config(&idp)).await;
    Some((idp, srv))
}

async fn post(url: String, body: Value) {
    let res = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 204);
}

async fn identities(srv: &TestServer) -> Value {
    srv.client()
        .get(srv.admin_url("/admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

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

/// Through the GitHub-shaped server: start at `flow`, come back to Latch.
async fn via_github(c: &Client<'_>, srv: &TestServer, idp: &Idp, flow: &Value) -> reqwest::Response {
    let res = c.submit(flow, json!({"method": "oidc", "provider": "gh"})).await;
    let to = leaves_for(c, res).await;
    assert!(to.starts_with(&format!("{}/login/oauth/authorize", idp.github)), "{to}");
    // Plain OAuth 2.0: no nonce, no `openid`, no PKCE without discovery.
    assert_eq!(query_param(&to, "scope"), "user:email");
    assert_eq!(query_param(&to, "nonce"), "");
    assert_eq!(query_param(&to, "code_challenge"), "");
    let back = through_provider(srv, &to).await;
    callback(srv, c, &back).await
}

async fn oidc_github_preset_signs_up_and_in_without_an_id_token(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for (n, kind) in ALL.into_iter().enumerate() {
        let gh_id = 1000 + n as u64;
        let login = format!("octo-{kind:?}").to_lowercase();
        let email = format!("{login}@example.com");
        post(
            format!("{}/test/next-login", idp.github),
            json!({"id": gh_id, "login": login, "email": email, "verified": true}),
        )
        .await;
        let mut c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let res = via_github(&c, &srv, &idp, &flow).await;
        let session = session_after(&mut c, res).await;
        let identity = &session["identity"];
        assert_eq!(identity["traits"], json!({"email": email}), "{kind:?}: primary email");
        assert_eq!(identity["verifiable_addresses"][0]["verified"], true);
        assert_eq!(
            identity["metadata_public"],
            json!({
                "login": login,
                "sub": gh_id.to_string(),
                "iss": format!("{}/login/oauth/access_token", idp.github),
                "updated_at": 1767323045,
                "picture": format!("https://avatars.example/{gh_id}"),
            }),
            "{kind:?}: Kratos' GitHub claims"
        );
        assert_eq!(session["authentication_methods"][0]["provider"], "gh");
        let id = identity["id"].as_str().unwrap().to_string();
        let shown = admin_identity(&srv, &id).await;
        assert_eq!(
            shown["credentials"]["oidc"]["identifiers"],
            json!([format!("gh:{gh_id}")])
        );

        // The same GitHub account signs in to the same identity.
        post(
            format!("{}/test/next-login", idp.github),
            json!({"id": gh_id, "login": login, "email": email}),
        )
        .await;
        let mut again = Client::new(&srv, kind);
        let flow = again.init("login", "").await;
        let res = via_github(&again, &srv, &idp, &flow).await;
        let session = session_after(&mut again, res).await;
        assert_eq!(session["identity"]["id"], json!(id), "{kind:?}");
    }
    srv.stop().await;
}
both!(oidc_github_preset_signs_up_and_in_without_an_id_token);

/// The GitLab, Discord and Slack presets, each against the same server standing in for it
/// (`issuer_url` as the base): the claims each yields, as the mapper sees them.
async fn oidc_gitlab_discord_slack_presets_map_their_user_apis(backend: Backend) {
    let Some(idp) = Idp::start().await else { return };
    const SEE_ALL: &str = r#"local claims = std.extVar('claims');
{ identity: { traits: { email: claims.email }, metadata_public: claims } }
"#;
    let preset = |id: &str, issuer: String, scope: &[&str]| {
        json!({
            "id": id, "provider": id, "client_id": "latch-gh", "client_secret": "secret-gh",
            "issuer_url": issuer, "mapper_url": b64(SEE_ALL), "scope": scope,
        })
    };
    let providers = json!([
        preset("gitlab", idp.github.clone(), &["openid", "email"]),
        preset("discord", idp.github.clone(), &["identify", "email"]),
        preset(
            "slack",
            format!("{}/", idp.github),
            &["identity.basic", "identity.email"]
        ),
    ]);
    let srv = TestServer::with_config(
        backend,
        json!({"selfservice": {
            "methods": {"oidc": {"enabled": true, "config": {"providers": providers}}},
            "flows": {"registration": {"after": {"oidc": {"hooks": [{"hook": "session"}]}}}}
        }}),
    )
    .await;
    let base = &idp.github;
    let cases = [
        (
            "gitlab",
            json!({"iss": base, "sub": "501", "name": "Git Lab", "nickname": "gl",
                   "email": "gl@example.com", "email_verified": true}),
        ),
        (
            "discord",
            json!({"iss": format!("{base}/oauth2/"), "sub": "502", "name": "dc#0", "nickname": "dc",
                   "preferred_username": "dc", "email": "dc@example.com", "email_verified": true,
                   "locale": "en-GB",
                   // No avatar: Discord's default one, chosen by the id ((502 >> 22) % 6).
                   "picture": "https://cdn.discordapp.com/embed/avatars/0.png"}),
        ),
        (
            "slack",
            json!({"iss": format!("{base}/oauth/"), "sub": "U503", "name": "Sl Ack", "nickname": "Sl Ack",
                   "preferred_username": "Sl Ack", "email": "sl@example.com", "email_verified": true,
                   "picture": "https://slack.example/503.png", "team": "T1"}),
        ),
    ];
    for (n, (id, want)) in cases.into_iter().enumerate() {
        let login = ["gl", "dc", "sl"][n];
        let name = ["Git Lab", "dc", "Sl Ack"][n];
        for kind in ALL {
            let user_id = 501 + n as u64;
            post(
                format!("{base}/test/next-login"),
                json!({"id": user_id, "login": login, "name": name, "email": format!("{login}@example.com")}),
            )
            .await;
            let mut c = Client::new(&srv, kind);
            let flow = c.init("login", "").await;
            let to = leaves_for(&c, c.submit(&flow, json!({"method": "oidc", "provider": id})).await).await;
            assert!(to.starts_with(base.as_str()), "{id}: {to}");
            let back = through_provider(&srv, &to).await;
            let res = callback(&srv, &c, &back).await;
            let session = session_after(&mut c, res).await;
            let mut seen = session["identity"]["metadata_public"].clone();
            let raw = seen.as_object_mut().unwrap().remove("raw_claims");
            assert!(raw.is_some(), "{id}: raw_claims present");
            assert_eq!(seen, want, "{id} {kind:?}: the claims the mapper sees");
            assert_eq!(session["authentication_methods"][0]["provider"], id);
        }
    }
    srv.stop().await;
}
both!(oidc_gitlab_discord_slack_presets_map_their_user_apis);

async fn oidc_github_scope_not_granted_is_refused(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        // The person unticks the email permission at GitHub.
        post(
            format!("{}/test/next-login", idp.github),
            json!({"id": 7, "login": "shy", "scope": ""}),
        )
        .await;
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let res = via_github(&c, &srv, &idp, &flow).await;
        let shown = shown_after(&c, "login", res).await;
        assert_eq!(message_ids(&shown), vec![4000001], "{kind:?}: {shown}");
        assert!(
            shown.to_string().contains("one or more permissions were not granted"),
            "{shown}"
        );
        assert_eq!(c.whoami().await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(identities(&srv).await, json!([]), "nothing written");
    srv.stop().await;
}
both!(oidc_github_scope_not_granted_is_refused);

/// The provider's token answer carries an ID token changed as `tamper` says; the callback is
/// refused for every client style and nothing is written.
async fn refused_id_token(backend: Backend, tamper: Value) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        post(format!("{}/test/next-token", idp.issuer), tamper.clone()).await;
        let res = sign_in_via(&c, &srv, &idp, &flow, "local", &format!("tampered-{kind:?}")).await;
        let shown = shown_after(&c, "login", res).await;
        assert_eq!(message_ids(&shown), vec![4000001], "{kind:?}: {shown}");
        assert!(shown.to_string().contains("could not be verified"), "{shown}");
        assert_eq!(c.whoami().await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(identities(&srv).await, json!([]), "nothing written");
    srv.stop().await;
}

async fn oidc_id_token_signed_with_a_key_outside_the_jwks_is_refused(backend: Backend) {
    refused_id_token(backend, json!({"foreign_key": true})).await;
}
both!(oidc_id_token_signed_with_a_key_outside_the_jwks_is_refused);

async fn oidc_id_token_for_another_audience_is_refused(backend: Backend) {
    // Correctly signed by the provider, but issued to another client.
    refused_id_token(backend, json!({"claims": {"aud": "latch-other"}})).await;
}
both!(oidc_id_token_for_another_audience_is_refused);

async fn oidc_callback_after_the_flow_expired_is_refused(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        idp.next_login(&format!("late-{kind:?}").to_lowercase()).await;
        let to = leaves_for(
            &c,
            c.submit(&flow, json!({"method": "oidc", "provider": "local"})).await,
        )
        .await;
        let back = through_provider(&srv, &to).await;
        // The person comes back after the login flow's lifespan (1 h).
        srv.clock.advance(std::time::Duration::from_secs(2 * 3600));
        let res = callback(&srv, &c, &back).await;
        if kind == Kind::Native {
            assert_eq!(res.status(), StatusCode::GONE);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["id"], "self_service_flow_expired", "{body}");
            assert!(body.get("session_token").is_none());
            assert_ne!(body["use_flow_id"], flow["id"], "a new flow: {body}");
        } else {
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{kind:?}");
            let loc = res.headers()["location"].to_str().unwrap().to_string();
            let id = query_param(&loc, "flow");
            assert_ne!(json!(id), flow["id"], "{kind:?}: a new flow");
            let shown = c.fetch("login", &id).await;
            assert_eq!(message_ids(&shown), vec![4010001], "{kind:?}: {shown}");
        }
        assert_eq!(c.whoami().await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(identities(&srv).await, json!([]), "nothing written");
    srv.stop().await;
}
both!(oidc_callback_after_the_flow_expired_is_refused);

async fn next_login_with(idp: &Idp, sub: &str, claims: Value) {
    post(
        format!("{}/test/next-login", idp.issuer),
        json!({"sub": sub, "claims": claims}),
    )
    .await;
}

/// Signs in through `provider` as `sub` (the provider's next login set before).
async fn sign_in(srv: &TestServer, idp: &Idp, kind: Kind, provider: &str) -> Value {
    let mut c = Client::new(srv, kind);
    let flow = c.init("login", "").await;
    let res = c.submit(&flow, json!({"method": "oidc", "provider": provider})).await;
    let to = leaves_for(&c, res).await;
    assert!(to.starts_with(&idp.issuer));
    let back = through_provider(srv, &to).await;
    let res = callback(srv, &c, &back).await;
    session_after(&mut c, res).await
}

async fn oidc_update_identity_on_login_automatic_rewrites_traits(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("upd-{kind:?}").to_lowercase();
        next_login_with(&idp, &sub, json!({})).await;
        let first = sign_in(&srv, &idp, kind, "update").await;
        let id = first["identity"]["id"].clone();
        assert_eq!(first["identity"]["traits"]["email"], format!("{sub}@example.com"));
        assert_eq!(
            first["identity"]["metadata_public"],
            json!({"provider_name": format!("User {sub}"), "previous_email": null}),
            "registration: empty std.extVar('identity')"
        );

        // The email and name changed at the provider.
        let new_email = format!("{sub}-new@example.com");
        next_login_with(&idp, &sub, json!({"email": new_email, "name": "Renamed"})).await;
        let second = sign_in(&srv, &idp, kind, "update").await;
        assert_eq!(second["identity"]["id"], id, "{kind:?}: the same identity");
        assert_eq!(second["identity"]["traits"], json!({"email": new_email}), "{kind:?}");
        assert_eq!(
            second["identity"]["metadata_public"],
            json!({"provider_name": "Renamed", "previous_email": format!("{sub}@example.com")}),
            "the mapper saw the stored identity"
        );
        let stored = admin_identity(&srv, id.as_str().unwrap()).await;
        assert_eq!(stored["traits"], json!({"email": new_email}), "stored");
        assert_eq!(stored["verifiable_addresses"][0]["value"], json!(new_email));
    }
    srv.stop().await;
}
both!(oidc_update_identity_on_login_automatic_rewrites_traits);

async fn oidc_update_identity_on_login_never_keeps_traits(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("keep-{kind:?}").to_lowercase();
        let id = import_linked(&srv, &format!("{sub}@example.com"), &sub).await;
        next_login_with(&idp, &sub, json!({"email": format!("{sub}-new@example.com")})).await;
        let session = sign_in(&srv, &idp, kind, "local").await;
        assert_eq!(session["identity"]["id"], json!(id));
        assert_eq!(
            session["identity"]["traits"],
            json!({"email": format!("{sub}@example.com")}),
            "{kind:?}: `never` (the default) leaves traits alone"
        );
    }
    srv.stop().await;
}
both!(oidc_update_identity_on_login_never_keeps_traits);
