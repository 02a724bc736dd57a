//! Social sign-in for native apps and the callback variants, against the real OpenID provider
//! of `oidc.rs`: ID tokens the app got itself (`id_token` + `id_token_nonce`), the session
//! token exchange (`return_session_token_exchange_code`, `/sessions/token-exchange`), the
//! shared callback of `pkce: force` providers and a form-POSTed callback.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind};
use crate::harness::{Backend, TestServer};
use crate::oidc::{Idp, callback, import_linked, leaves_for, provider, query_param, session_after, through_provider};

fn config(issuer: &str) -> Value {
    let mut google = provider("google", issuer, "auto");
    google["provider"] = json!("google");
    // The app's own client id (as an iOS client of the same Google project) is accepted too.
    google["client_id"] = json!("latch-local");
    google["client_secret"] = json!("secret-local");
    google["additional_id_token_audiences"] = json!(["latch-nopkce"]);
    json!({"selfservice": {
        "allowed_return_urls": ["http://app.test/", "myapp://callback"],
        "methods": {"oidc": {"enabled": true, "config": {"providers": [
            provider("local", issuer, "auto"),
            google,
            provider("forced", issuer, "force"),
        ]}}},
        "flows": {"registration": {"after": {"oidc": {"hooks": [{"hook": "session"}]}}}}
    }})
}

async fn setup(backend: Backend) -> Option<(Idp, TestServer)> {
    let idp = Idp::start().await?;
    let srv = TestServer::with_config(backend, config(&idp.issuer)).await;
    Some((idp, srv))
}

/// What a phone's SDK does: a code flow of its own at the provider as client `latch-{client}`
/// (with `nonce` when given), returning the ID token.
async fn id_token_from(idp: &Idp, client: &str, sub: &str, nonce: Option<&str>) -> String {
    idp.next_login(sub).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let disc: Value = http
        .get(format!("{}/.well-known/openid-configuration", idp.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A loopback redirect URI on a port nobody listens on: the code is read from it.
    let redirect = format!("http://127.0.0.1:9/self-service/methods/oidc/callback/{client}");
    let mut auth = url::Url::parse(disc["authorization_endpoint"].as_str().unwrap()).unwrap();
    auth.query_pairs_mut()
        .append_pair("client_id", &format!("latch-{client}"))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile")
        .append_pair("redirect_uri", &redirect)
        .append_pair("state", "app-state");
    if let Some(n) = nonce {
        auth.query_pairs_mut().append_pair("nonce", n);
    }
    let mut url = auth.to_string();
    let code = loop {
        let res = http.get(&url).send().await.unwrap();
        assert!(
            res.status().is_redirection(),
            "provider answered {} at {url}",
            res.status()
        );
        let loc = res.headers()["location"].to_str().unwrap().to_string();
        let next = url::Url::parse(&url).unwrap().join(&loc).unwrap().to_string();
        if next.starts_with("http://127.0.0.1:9/") {
            break query_param(&next, "code");
        }
        url = next;
    };
    let res = http
        .post(disc["token_endpoint"].as_str().unwrap())
        .basic_auth(format!("latch-{client}"), Some(format!("secret-{client}")))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["id_token"].as_str().unwrap().to_string()
}

fn with_token(token: &str, nonce: &str) -> Value {
    json!({"method": "oidc", "provider": "google", "id_token": token, "id_token_nonce": nonce})
}

/// The session a successful ID-token submission gave the client, checked with whoami.
async fn signed_in(c: &mut Client<'_>, res: reqwest::Response) -> Value {
    let status = res.status();
    match c.kind {
        Kind::Browser => assert_eq!(status, StatusCode::SEE_OTHER, "{:?}", res.text().await),
        _ => {
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
            if c.kind == Kind::Native {
                c.token = Some(body["session_token"].as_str().unwrap().to_string());
            }
        }
    }
    let res = c.whoami().await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn oidc_id_token_signs_up_then_signs_in(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("phone-{kind:?}").to_lowercase();
        // Unknown subject on a login flow: signed up from the token's claims.
        let mut c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let token = id_token_from(&idp, "local", &sub, Some("n-1")).await;
        let res = c.submit(&flow, with_token(&token, "n-1")).await;
        let session = signed_in(&mut c, res).await;
        let identity = &session["identity"];
        assert_eq!(
            identity["traits"],
            json!({"email": format!("{sub}@example.com")}),
            "{kind:?}"
        );
        assert_eq!(session["authentication_methods"][0]["method"], "oidc");
        assert_eq!(session["authentication_methods"][0]["provider"], "google");

        // The same subject on a registration flow: signed in as that identity.
        let mut again = Client::new(&srv, kind);
        let flow = again.init("registration", "").await;
        let token = id_token_from(&idp, "local", &sub, Some("n-2")).await;
        let res = again.submit(&flow, with_token(&token, "n-2")).await;
        let session = signed_in(&mut again, res).await;
        assert_eq!(session["identity"]["id"], identity["id"], "{kind:?}: same identity");
    }
    srv.stop().await;
}
both!(oidc_id_token_signs_up_then_signs_in);

/// A refused submission: Kratos' error status and reason, and nobody signed in.
async fn refused(c: &Client<'_>, flow: &Value, body: Value, status: StatusCode, reason: &str) {
    let res = c.submit(flow, body).await;
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["reason"], reason, "{body}");
    assert!(body.get("session_token").is_none(), "{body}");
}

async fn oidc_id_token_refusals(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    srv.create_identity(json!({
        "schema_id": "default",
        "traits": {"email": "known@example.com"},
        "credentials": {"oidc": {"config": {"providers": [{"provider": "google", "subject": "known"}]}}}
    }))
    .await;
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("login", "").await;
    let token = id_token_from(&idp, "local", "known", Some("right")).await;

    let upstream = StatusCode::BAD_GATEWAY;
    refused(
        &c,
        &flow,
        with_token(&token, "wrong"),
        upstream,
        "The supplied nonce does not match the nonce from the id_token",
    )
    .await;
    refused(
        &c,
        &flow,
        with_token(&token, ""),
        upstream,
        "No nonce was provided but is required by the provider",
    )
    .await;
    let mut generic = with_token(&token, "right");
    generic["provider"] = json!("local");
    refused(
        &c,
        &flow,
        generic,
        upstream,
        "The provider generic does not support id_token verification",
    )
    .await;
    // A token for another client of the provider.
    let other = id_token_from(&idp, "other", "known", Some("right")).await;
    refused(
        &c,
        &flow,
        with_token(&other, "right"),
        StatusCode::FORBIDDEN,
        "Could not verify id_token",
    )
    .await;
    // A forged signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[2] = parts[2].chars().rev().collect();
    refused(
        &c,
        &flow,
        with_token(&parts.join("."), "right"),
        StatusCode::FORBIDDEN,
        "Could not verify id_token",
    )
    .await;
    refused(
        &c,
        &flow,
        with_token("not-a-jwt", "right"),
        StatusCode::FORBIDDEN,
        "Could not verify id_token",
    )
    .await;

    // The genuine token signs in once; the same token again is refused.
    let res = c.submit(&flow, with_token(&token, "right")).await;
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
    let replay = c.init("login", "").await;
    refused(
        &c,
        &replay,
        with_token(&token, "right"),
        StatusCode::FORBIDDEN,
        "Could not verify id_token",
    )
    .await;

    // `additional_id_token_audiences`; Google tokens without a nonce (Kratos lets them pass).
    let flow = c.init("login", "").await;
    let extra = id_token_from(&idp, "nopkce", "known", None).await;
    let res = c.submit(&flow, with_token(&extra, "")).await;
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);

    // An expired token (the provider's last one hour).
    let stale = id_token_from(&idp, "local", "known", Some("late")).await;
    srv.clock.advance(Duration::from_secs(2 * 3600));
    let flow = c.init("login", "").await;
    refused(
        &c,
        &flow,
        with_token(&stale, "late"),
        StatusCode::FORBIDDEN,
        "Could not verify id_token",
    )
    .await;
    srv.stop().await;
}
both!(oidc_id_token_refusals);

fn exchange_url(srv: &TestServer, init: &str, ret: &str) -> String {
    let mut u = url::Url::parse(&srv.public_url("/sessions/token-exchange")).unwrap();
    u.query_pairs_mut()
        .append_pair("init_code", init)
        .append_pair("return_to_code", ret);
    u.to_string()
}

/// A native flow with the exchange through the provider: returns the init code and the
/// `return_to` URL the browser ends on.
async fn hand_off(srv: &TestServer, idp: &Idp, kind: &str, sub: &str) -> (String, String) {
    let c = Client::new(srv, Kind::Native);
    let flow = c
        .init(
            kind,
            "?return_session_token_exchange_code=true&return_to=myapp%3A%2F%2Fcallback",
        )
        .await;
    let init = flow["session_token_exchange_code"].as_str().unwrap().to_string();
    assert_eq!(init.len(), 64);
    let shown = c.fetch(kind, flow["id"].as_str().unwrap()).await;
    assert!(
        shown.get("session_token_exchange_code").is_none(),
        "shown on creation only"
    );
    idp.next_login(sub).await;
    let to = leaves_for(
        &c,
        c.submit(&flow, json!({"method": "oidc", "provider": "local"})).await,
    )
    .await;
    let back = through_provider(srv, &to).await;
    // The app's system browser: no cookies, not asking for JSON.
    let browser = Client::new(srv, Kind::Browser);
    let res = callback(srv, &browser, &back).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("myapp://callback?code="), "{loc}");
    assert!(res.headers().get("set-cookie").is_none(), "nothing for the browser");
    (init, loc)
}

async fn oidc_token_exchange_end_to_end(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    let http = srv.client();
    // A login with an unknown subject (it becomes a registration), then a registration with
    // the known one (it becomes a login): both hand the session over through the exchange.
    let mut identity = Value::Null;
    for kind in ["login", "registration"] {
        let (init, back) = hand_off(&srv, &idp, kind, "exchanged").await;
        let code = query_param(&back, "code");
        assert_eq!(code.len(), 64);
        let res = http.get(exchange_url(&srv, &init, "wrong")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = http.get(exchange_url(&srv, &code, &init)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "codes swapped");
        // Two simultaneous exchanges: one token.
        let answers =
            futures_util::future::join_all((0..2).map(|_| http.get(exchange_url(&srv, &init, &code)).send())).await;
        let mut tokens = vec![];
        for res in answers {
            let res = res.unwrap();
            if res.status() == StatusCode::OK {
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["session"]["identity"]["traits"]["email"], "exchanged@example.com");
                tokens.push(body["session_token"].as_str().unwrap().to_string());
            } else {
                assert_eq!(res.status(), StatusCode::NOT_FOUND);
            }
        }
        assert_eq!(tokens.len(), 1, "{kind}: exactly one exchange succeeds");
        let mut c = Client::new(&srv, Kind::Native);
        c.token = Some(tokens[0].clone());
        let res = c.whoami().await;
        assert_eq!(res.status(), StatusCode::OK);
        let session: Value = res.json().await.unwrap();
        if identity.is_null() {
            identity = session["identity"]["id"].clone();
        }
        assert_eq!(session["identity"]["id"], identity, "{kind}: same identity");
        assert_eq!(session["authentication_methods"][0]["provider"], "local");
        let res = http.get(exchange_url(&srv, &init, &code)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{kind}: used");
    }
    // Both codes are required.
    let res = http
        .get(srv.public_url("/sessions/token-exchange?init_code=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // The exchange window closes.
    let (init, back) = hand_off(&srv, &idp, "login", "exchanged").await;
    srv.clock.advance(Duration::from_secs(11 * 60));
    let res = http
        .get(exchange_url(&srv, &init, &query_param(&back, "code")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "expired");
    srv.stop().await;
}
both!(oidc_token_exchange_end_to_end);

async fn oidc_pkce_force_uses_the_shared_callback(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("forced-{kind:?}").to_lowercase();
        // The credential is the `forced` provider's.
        let id = srv
            .create_identity(json!({
                "schema_id": "default",
                "traits": {"email": format!("{sub}-f@example.com")},
                "credentials": {"oidc": {"config": {"providers": [{"provider": "forced", "subject": sub}]}}}
            }))
            .await["id"]
            .clone();
        let mut c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        idp.next_login(&sub).await;
        let body = json!({"method": "oidc", "provider": "forced"});
        let to = leaves_for(&c, c.submit(&flow, body).await).await;
        assert_eq!(
            query_param(&to, "redirect_uri"),
            srv.public_url("/self-service/methods/oidc/callback")
        );
        assert_eq!(query_param(&to, "code_challenge_method"), "S256");
        let back = through_provider(&srv, &to).await;
        assert!(
            back.starts_with(&srv.public_url("/self-service/methods/oidc/callback?")),
            "{back}"
        );
        let res = callback(&srv, &c, &back).await;
        let session = session_after(&mut c, res).await;
        assert_eq!(session["identity"]["id"], id, "{kind:?}");
        assert_eq!(session["authentication_methods"][0]["provider"], "forced");
    }
    srv.stop().await;
}
both!(oidc_pkce_force_uses_the_shared_callback);

/// The provider answers with an auto-submitting form (`response_mode=form_post`): its
/// action and fields.
async fn form_post_from_provider(url: &str) -> (String, Vec<(String, String)>) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let mut url = url.to_string();
    for _ in 0..10 {
        let res = browser.get(&url).send().await.unwrap();
        if res.status().is_redirection() {
            let loc = res.headers()["location"].to_str().unwrap().to_string();
            url = url::Url::parse(&url).unwrap().join(&loc).unwrap().to_string();
            continue;
        }
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.text().await.unwrap();
        let attr = |tag: &str, name: &str| -> String {
            let at = tag
                .find(&format!("{name}=\""))
                .unwrap_or_else(|| panic!("{name} in {tag}"))
                + name.len()
                + 2;
            let v = &tag[at..];
            v[..v.find('"').unwrap()]
                .replace("&amp;", "&")
                .replace("&#x2F;", "/")
                .replace("&#x3D;", "=")
        };
        let form = &html[html.find("<form").expect("a form")..];
        let action = attr(&form[..form.find('>').unwrap()], "action");
        let fields = form
            .split("<input")
            .skip(1)
            .map(|i| {
                let tag = &i[..i.find('>').unwrap()];
                (attr(tag, "name"), attr(tag, "value"))
            })
            .collect();
        return (action, fields);
    }
    panic!("the provider never answered with a form");
}

async fn oidc_form_post_callback_goes_on_as_get(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    import_linked(&srv, "posted@example.com", "posted").await;
    let mut c = Client::new(&srv, Kind::Browser);
    let flow = c.init("login", "").await;
    idp.next_login("posted").await;
    let to = leaves_for(&c, c.submit(&flow, json!({"provider": "local"})).await).await;
    let (action, fields) = form_post_from_provider(&format!("{to}&response_mode=form_post")).await;
    assert_eq!(action, srv.public_url("/self-service/methods/oidc/callback/local"));
    // The cross-site POST carries none of the browser's SameSite=Lax cookies.
    let res = srv.client().post(&action).form(&fields).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(res.headers().get("set-cookie").is_none());
    let get = res.headers()["location"].to_str().unwrap().to_string();
    assert!(get.starts_with(&format!("{action}?")), "{get}");
    for (k, v) in &fields {
        assert_eq!(&query_param(&get, k), v, "{k} carried over");
    }
    // The GET it turns into is a top-level navigation: the cookies come along.
    let res = callback(&srv, &c, &get).await;
    let session = session_after(&mut c, res).await;
    assert_eq!(session["identity"]["traits"]["email"], "posted@example.com");
    // A POST to the shared callback goes on as a GET of it too.
    let res = srv
        .client()
        .request(Method::POST, srv.public_url("/self-service/methods/oidc/callback?a=1"))
        .form(&[("state", "s")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(
        res.headers()["location"],
        srv.public_url("/self-service/methods/oidc/callback?a=1&state=s")
            .as_str()
    );
    srv.stop().await;
}
both!(oidc_form_post_callback_goes_on_as_get);

/// A native flow's sign-in that fails in the browser still goes back to the app, whose
/// exchange answers 422 with the flow and its message (Kratos); the flow may be retried.
async fn oidc_token_exchange_reports_a_failed_sign_in(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    let http = srv.client();
    let c = Client::new(&srv, Kind::Native);
    let flow = c
        .init(
            "login",
            "?return_session_token_exchange_code=true&return_to=myapp%3A%2F%2Fcallback",
        )
        .await;
    let init = flow["session_token_exchange_code"].as_str().unwrap().to_string();
    let to = leaves_for(
        &c,
        c.submit(&flow, json!({"method": "oidc", "provider": "local"})).await,
    )
    .await;
    // The person refuses at the provider.
    let mut denied = url::Url::parse(&srv.public_url("/self-service/methods/oidc/callback/local")).unwrap();
    denied
        .query_pairs_mut()
        .append_pair("state", &query_param(&to, "state"))
        .append_pair("error", "access_denied")
        .append_pair("error_description", "the person said no");
    let browser = Client::new(&srv, Kind::Browser);
    let res = callback(&srv, &browser, denied.as_str()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = res.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with("myapp://callback?code="), "{back}");
    let failed = query_param(&back, "code");
    let res = http.get(exchange_url(&srv, &init, &failed)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let shown: Value = res.json().await.unwrap();
    assert_eq!(shown["id"], flow["id"]);
    assert_eq!(crate::client::message_ids(&shown), vec![4000001], "{shown}");
    assert!(shown.to_string().contains("access_denied"), "{shown}");
    assert!(shown.get("session_token").is_none());

    // The app retries the same flow and succeeds; the failure's code is spent.
    idp.next_login("retried").await;
    let to = leaves_for(
        &c,
        c.submit(&flow, json!({"method": "oidc", "provider": "local"})).await,
    )
    .await;
    let res = callback(&srv, &browser, &through_provider(&srv, &to).await).await;
    let back = res.headers()["location"].to_str().unwrap().to_string();
    let res = http
        .get(exchange_url(&srv, &init, &query_param(&back, "code")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = http.get(exchange_url(&srv, &init, &failed)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    srv.stop().await;
}
both!(oidc_token_exchange_reports_a_failed_sign_in);
