//! Social sign-in (`oidc`) against a real OpenID provider: panva's `oidc-provider` (npm,
//! `tests/oidc-provider/`) started on a free loopback port for each test. Without `node` on
//! PATH these tests say so and pass without running; `.ci/run` installs node, so CI always
//! runs them.

use std::process::Stdio;
use std::sync::OnceLock;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids};
use crate::harness::{Backend, TestServer};

/// A running provider; killed when dropped.
pub(crate) struct Idp {
    pub(crate) issuer: String,
    /// The GitHub-shaped OAuth 2.0 server beside it.
    pub(crate) github: String,
    _child: tokio::process::Child,
    /// Kept open: the provider must never write to a closed pipe.
    _stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
}

fn provider_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// `npm ci` once per test run when the provider's packages are missing.
fn installed() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = provider_dir();
        if dir.join("node_modules/oidc-provider").is_dir() {
            return Ok(());
        }
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("npm: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    })
    .clone()
}

impl Idp {
    /// Starts the provider, or `None` (with a message) when node is not installed.
    pub(crate) async fn start() -> Option<Idp> {
        if std::process::Command::new("node").arg("--version").output().is_err() {
            assert!(
                std::env::var_os("LATCH_TEST_REQUIRE_NODE").is_none(),
                "LATCH_TEST_REQUIRE_NODE is set but node is not on PATH"
            );
            eprintln!("SKIPPED: node is not on PATH, so the oidc tests cannot start their OpenID provider");
            return None;
        }
        installed().unwrap_or_else(|e| panic!("npm ci in tests/oidc-provider failed: {e}"));
        let mut child = tokio::process::Command::new("node")
            .arg("server.mjs")
            .current_dir(provider_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let mut stdout = tokio::io::BufReader::new(stdout);
        stdout.read_line(&mut line).await.unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("provider said {line:?}: {e}"));
        Some(Idp {
            issuer: v["issuer"].as_str().unwrap().to_string(),
            github: v["github"].as_str().unwrap().to_string(),
            _child: child,
            _stdout: stdout,
        })
    }

    /// The account the next sign-in at the provider logs in.
    pub(crate) async fn next_login(&self, sub: &str) {
        let res = reqwest::Client::new()
            .post(format!("{}/test/next-login", self.issuer))
            .json(&json!({"sub": sub}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
}

pub(crate) const MAPPER: &str = r#"local claims = std.extVar('claims');
{
  identity: {
    traits: { email: claims.email },
    verified_addresses: [{ via: 'email', value: claims.email }],
    metadata_public: { provider_name: claims.name },
  },
}
"#;

pub(crate) fn provider(id: &str, issuer: &str, pkce: &str) -> Value {
    use base64::Engine;
    json!({
        "id": id,
        "provider": "generic",
        "client_id": format!("latch-{id}"),
        "client_secret": format!("secret-{id}"),
        "issuer_url": issuer,
        "mapper_url": format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(MAPPER)),
        "scope": ["email", "profile"],
        "pkce": pkce,
    })
}

/// The provider uses the mapper from Kratos' documentation (`fixtures/kratos-docs-oidc.jsonnet`).
fn docs_mapper(mut p: Value) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/kratos-docs-oidc.jsonnet");
    p["mapper_url"] = json!(format!("file://{}", path.display()));
    p
}

/// A mapper that fails, to see how its error is reported.
const FAILING_MAPPER: &str = "error 'the mapper refuses on purpose'";

fn config(issuer: &str) -> Value {
    use base64::Engine;
    let mut failing = provider("other", issuer, "auto");
    failing["mapper_url"] = json!(format!(
        "base64://{}",
        base64::engine::general_purpose::STANDARD.encode(FAILING_MAPPER)
    ));
    json!({"selfservice": {
        "methods": {"oidc": {"enabled": true, "config": {"providers": [
            provider("local", issuer, "auto"),
            docs_mapper(provider("nopkce", issuer, "never")),
            failing,
        ]}}},
        "flows": {"registration": {"after": {"oidc": {"hooks": [{"hook": "session"}]}}}}
    }})
}

async fn setup(backend: Backend) -> Option<(Idp, TestServer)> {
    let idp = Idp::start().await?;
    let srv = TestServer::with_config(backend, config(&idp.issuer)).await;
    Some((idp, srv))
}

/// Where a submission sends the browser: the `Location` of a 303 (browser) or
/// `redirect_browser_to` of Kratos' 422 (SPA, native).
pub(crate) async fn leaves_for(c: &Client<'_>, res: reqwest::Response) -> String {
    match c.kind {
        Kind::Browser => {
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            res.headers()["location"].to_str().unwrap().to_string()
        }
        _ => {
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["id"], "browser_location_change_required", "{body}");
            body["redirect_browser_to"].as_str().unwrap().to_string()
        }
    }
}

/// The browser at the provider: follows its redirects (with the provider's cookies) until it
/// is sent back to Latch; returns that callback URL.
pub(crate) async fn through_provider(srv: &TestServer, url: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let mut url = url.to_string();
    for _ in 0..10 {
        if url.starts_with(&srv.public) {
            return url;
        }
        let res = browser.get(&url).send().await.unwrap();
        assert!(
            res.status().is_redirection(),
            "provider answered {} at {url}",
            res.status()
        );
        let loc = res.headers()["location"].to_str().unwrap().to_string();
        url = if loc.starts_with('/') {
            let base = url::Url::parse(&url).unwrap();
            base.join(&loc).unwrap().to_string()
        } else {
            loc
        };
    }
    panic!("the provider never sent the browser back");
}

/// The browser arrives on the callback: a top-level navigation with Latch's cookies (none
/// for a native app's system browser).
pub(crate) async fn callback(srv: &TestServer, c: &Client<'_>, url: &str) -> reqwest::Response {
    if c.kind == Kind::Spa {
        // A navigation, not a fetch: the SPA's browser does not ask for JSON here.
        let mut nav = Client::new(srv, Kind::Browser);
        nav.jar = c.jar.clone();
        return nav.send(nav.req(Method::GET, url)).await;
    }
    c.send(c.req(Method::GET, url)).await
}

pub(crate) fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

pub(crate) async fn import_linked(srv: &TestServer, email: &str, subject: &str) -> String {
    let created = srv
        .create_identity(json!({
            "schema_id": "default",
            "traits": {"email": email},
            "credentials": {"oidc": {"config": {"providers": [{"provider": "local", "subject": subject}]}}}
        }))
        .await;
    created["id"].as_str().unwrap().to_string()
}

/// Signs in at the provider as `sub` through the flow `flow` and returns the callback answer.
pub(crate) async fn sign_in_via(
    c: &Client<'_>,
    srv: &TestServer,
    idp: &Idp,
    flow: &Value,
    provider: &str,
    sub: &str,
) -> reqwest::Response {
    idp.next_login(sub).await;
    // Kratos' buttons post `provider` alone (the reference UI, the built-in pages); SDK
    // clients add `method`. Both start the sign-in.
    let body = if c.kind == Kind::Browser {
        json!({"provider": provider})
    } else {
        json!({"method": "oidc", "provider": provider})
    };
    let res = c.submit(flow, body).await;
    let to = leaves_for(c, res).await;
    assert!(to.starts_with(&idp.issuer), "{to}");
    let back = through_provider(srv, &to).await;
    callback(srv, c, &back).await
}

/// The session the callback answer gave the client, checked with whoami.
pub(crate) async fn session_after(c: &mut Client<'_>, res: reqwest::Response) -> Value {
    match c.kind {
        Kind::Native => {
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
            c.token = Some(body["session_token"].as_str().unwrap().to_string());
        }
        _ => {
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{:?}", res.text().await);
        }
    }
    let res = c.whoami().await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn oidc_known_subject_signs_in(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("known-{kind:?}");
        let id = import_linked(&srv, &format!("{sub}@example.com"), &sub).await;
        let mut c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let buttons: Vec<&Value> = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["group"] == "oidc")
            .collect();
        assert_eq!(buttons.len(), 3, "{flow}");
        assert_eq!(buttons[0]["attributes"]["name"], "provider");
        assert_eq!(buttons[0]["attributes"]["type"], "submit");
        assert_eq!(buttons[0]["attributes"]["value"], "local");
        assert_eq!(buttons[0]["meta"]["label"]["id"], 1010002);
        assert_eq!(
            buttons[0]["meta"]["label"]["context"],
            json!({"provider": "local", "provider_id": "local"})
        );
        let res = sign_in_via(&c, &srv, &idp, &flow, "local", &sub).await;
        let session = session_after(&mut c, res).await;
        assert_eq!(session["identity"]["id"], json!(id), "{kind:?}");
        assert_eq!(session["authentication_methods"][0]["method"], "oidc");
        assert_eq!(session["authentication_methods"][0]["provider"], "local");
    }
    srv.stop().await;
}
both!(oidc_known_subject_signs_in);

async fn oidc_authorization_request_carries_state_nonce_and_pkce(backend: Backend) {
    let Some((_idp, srv)) = setup(backend).await else {
        return;
    };
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("login", "").await;
    let to = leaves_for(
        &c,
        c.submit(&flow, json!({"method": "oidc", "provider": "local"})).await,
    )
    .await;
    let state = query_param(&to, "state");
    assert!(
        state.starts_with(&flow["id"].as_str().unwrap().replace('-', "")),
        "{state}"
    );
    assert!(state.len() > 70, "state carries a secret: {state}");
    assert!(query_param(&to, "nonce").len() >= 40);
    assert_eq!(
        query_param(&to, "code_challenge_method"),
        "S256",
        "pkce auto: the provider lists S256"
    );
    assert_eq!(
        query_param(&to, "redirect_uri"),
        srv.public_url("/self-service/methods/oidc/callback/local")
    );
    assert!(query_param(&to, "scope").split(' ').any(|s| s == "openid"));
    let flow = c.init("login", "").await;
    let to = leaves_for(
        &c,
        c.submit(&flow, json!({"method": "oidc", "provider": "nopkce"})).await,
    )
    .await;
    assert_eq!(query_param(&to, "code_challenge"), "", "pkce never");
    // The flow, fetched by the client, shows nothing of it.
    let shown = c.fetch("login", flow["id"].as_str().unwrap()).await;
    assert!(!shown.to_string().contains(&query_param(&to, "nonce")));
    srv.stop().await;
}
both!(oidc_authorization_request_carries_state_nonce_and_pkce);

async fn oidc_tampered_or_replayed_state_is_refused(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("state-{kind:?}");
        import_linked(&srv, &format!("{sub}@example.com"), &sub).await;
        let mut c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        idp.next_login(&sub).await;
        let to = leaves_for(
            &c,
            c.submit(&flow, json!({"method": "oidc", "provider": "local"})).await,
        )
        .await;
        let back = through_provider(&srv, &to).await;
        let state = query_param(&back, "state");
        let mut tampered = state.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let res = callback(&srv, &c, &back.replace(&state, &tampered)).await;
        assert_ne!(res.status(), StatusCode::OK, "{kind:?}");
        assert_eq!(c.whoami().await.status(), StatusCode::UNAUTHORIZED, "{kind:?}");
        // The genuine answer still works once, and never again.
        let res = callback(&srv, &c, &back).await;
        session_after(&mut c, res).await;
        let mut other = Client::new(&srv, kind);
        other.jar = c.jar.clone();
        other.token = None;
        let res = callback(&srv, &other, &back).await;
        assert_ne!(res.status(), StatusCode::OK, "{kind:?}: replay");
        if kind == Kind::Native {
            let body: Value = res.json().await.unwrap();
            assert!(body.get("session_token").is_none(), "{body}");
            assert_eq!(message_ids(&body), vec![4010007], "the flow is done: {body}");
        }
    }
    srv.stop().await;
}
both!(oidc_tampered_or_replayed_state_is_refused);

async fn oidc_nonce_mismatch_is_refused(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    import_linked(&srv, "nonce@example.com", "nonce").await;
    let c = Client::new(&srv, Kind::Native);
    // Two flows; the code issued for the first (its nonce) is brought to the second.
    let first = c.init("login", "").await;
    let second = c.init("login", "").await;
    idp.next_login("nonce").await;
    let to_first = leaves_for(
        &c,
        c.submit(&first, json!({"method": "oidc", "provider": "nopkce"})).await,
    )
    .await;
    let to_second = leaves_for(
        &c,
        c.submit(&second, json!({"method": "oidc", "provider": "nopkce"})).await,
    )
    .await;
    let back = through_provider(&srv, &to_first).await;
    let swapped = back.replace(&query_param(&back, "state"), &query_param(&to_second, "state"));
    let res = callback(&srv, &c, &swapped).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(message_ids(&body), vec![4000001], "{body}");
    assert!(body.to_string().contains("could not be verified"), "{body}");
    assert!(body.get("session_token").is_none());
    srv.stop().await;
}
both!(oidc_nonce_mismatch_is_refused);

async fn oidc_provider_down_is_a_clear_flow_error(backend: Backend) {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let srv = TestServer::with_config(backend, config(&dead)).await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let res = c.submit(&flow, json!({"method": "oidc", "provider": "local"})).await;
        let (_, shown) = c.flow_after("login", res).await;
        assert_eq!(message_ids(&shown), vec![4000001], "{kind:?}: {shown}");
        assert!(shown.to_string().contains("could not be reached"), "{shown}");
    }
    srv.stop().await;
}
both!(oidc_provider_down_is_a_clear_flow_error);

/// The flow a failed callback shows: the JSON answer (native), or the flow the browser is
/// redirected to (browser, SPA).
pub(crate) async fn shown_after(c: &Client<'_>, kind: &str, res: reqwest::Response) -> Value {
    if c.kind == Kind::Native {
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        return res.json().await.unwrap();
    }
    assert!(res.status().is_redirection(), "{}", res.status());
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let id = query_param(&loc, "flow");
    assert!(!id.is_empty(), "redirect to the flow UI: {loc}");
    c.fetch(kind, &id).await
}

async fn oidc_unknown_subject_registers_then_signs_in(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("new-{kind:?}").to_lowercase();
        // A login with an unknown subject becomes a registration (Kratos).
        let mut c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let res = sign_in_via(&c, &srv, &idp, &flow, "local", &sub).await;
        let session = session_after(&mut c, res).await;
        let identity = &session["identity"];
        assert_eq!(
            identity["traits"],
            json!({"email": format!("{sub}@example.com")}),
            "{kind:?}"
        );
        assert_eq!(
            identity["metadata_public"],
            json!({"provider_name": format!("User {sub}")})
        );
        assert_eq!(
            identity["verifiable_addresses"][0]["verified"], true,
            "mapper's verified_addresses"
        );
        assert_eq!(identity["verifiable_addresses"][0]["status"], "completed");
        assert_eq!(session["authentication_methods"][0]["method"], "oidc");
        assert_eq!(session["authentication_methods"][0]["provider"], "local");
        let id = identity["id"].as_str().unwrap().to_string();
        let shown: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}?include_credential=oidc")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            shown["credentials"]["oidc"]["identifiers"],
            json!([format!("local:{sub}")])
        );
        assert_eq!(
            shown["credentials"]["oidc"]["config"]["providers"],
            json!([{"subject": sub, "provider": "local"}])
        );

        // A registration with the same subject becomes a login of that identity.
        let mut again = Client::new(&srv, kind);
        let flow = again.init("registration", "").await;
        let button = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["group"] == "oidc")
            .unwrap();
        assert_eq!(button["meta"]["label"]["id"], 1040002);
        let res = sign_in_via(&again, &srv, &idp, &flow, "local", &sub).await;
        let session = session_after(&mut again, res).await;
        assert_eq!(session["identity"]["id"], json!(id), "{kind:?}: same identity");
        assert_eq!(session["authentication_methods"][0]["provider"], "local");
    }
    srv.stop().await;
}
both!(oidc_unknown_subject_registers_then_signs_in);

async fn oidc_mapper_error_is_reported_and_nothing_is_written(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = c.init("registration", "").await;
        let res = sign_in_via(&c, &srv, &idp, &flow, "other", &format!("mapper-{kind:?}")).await;
        let shown = shown_after(&c, "registration", res).await;
        assert_eq!(message_ids(&shown), vec![4000001], "{kind:?}: {shown}");
        let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
        assert!(
            text.starts_with("The claims mapper of provider \"other\" failed"),
            "{kind:?}: {text}"
        );
        assert!(text.contains("refuses on purpose"), "{text}");
        assert_eq!(c.whoami().await.status(), StatusCode::UNAUTHORIZED);
    }
    let all: Value = srv
        .client()
        .get(srv.admin_url("/admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all, json!([]), "no identity was created");
    srv.stop().await;
}
both!(oidc_mapper_error_is_reported_and_nothing_is_written);

async fn oidc_email_of_another_identity_is_never_linked(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    for kind in ALL {
        let sub = format!("taken-{kind:?}").to_lowercase();
        let owner = srv
            .create_identity(json!({
                "schema_id": "default",
                "traits": {"email": format!("{sub}@example.com")},
                "credentials": {"password": {"config": {"password": "a long enough password"}}}
            }))
            .await;
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let res = sign_in_via(&c, &srv, &idp, &flow, "local", &sub).await;
        let shown = shown_after(&c, "login", res).await;
        assert_eq!(message_ids(&shown), vec![4000007], "{kind:?}: {shown}");
        assert_eq!(c.whoami().await.status(), StatusCode::UNAUTHORIZED);
        let kept: Value = srv
            .client()
            .get(srv.admin_url(&format!(
                "/admin/identities/{}?include_credential=oidc",
                owner["id"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(kept["credentials"].get("oidc").is_none(), "not linked: {kept}");
    }
    srv.stop().await;
}
both!(oidc_email_of_another_identity_is_never_linked);

async fn oidc_kratos_docs_mapper_registers(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    let mut c = Client::new(&srv, Kind::Native);
    let flow = c.init("registration", "").await;
    let res = sign_in_via(&c, &srv, &idp, &flow, "nopkce", "docs").await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["identity"]["traits"], json!({"email": "docs@example.com"}));
    // Kratos' mapper lists no verified addresses: the provider's `email_verified` alone
    // verifies nothing.
    assert_eq!(body["identity"]["verifiable_addresses"][0]["verified"], false);
    c.token = body["session_token"].as_str().map(str::to_string);
    assert_eq!(c.whoami().await.status(), StatusCode::OK);
    srv.stop().await;
}
both!(oidc_kratos_docs_mapper_registers);

/// The `oidc` nodes of new login and registration flows, pinned (names, types, values, label
/// ids and contexts as Kratos). Rendering the buttons asks nothing of the provider.
async fn oidc_flow_shapes_snapshot(backend: Backend) {
    let srv = TestServer::with_config(backend, config("http://127.0.0.1:9/unused")).await;
    let c = Client::new(&srv, Kind::Native);
    let shape = |flow: &Value| -> Value {
        let nodes: Vec<Value> = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["group"] == "oidc")
            .map(|n| {
                let a = &n["attributes"];
                json!({
                    "name": a["name"],
                    "type": n["type"],
                    "input_type": a["type"],
                    "value": a["value"],
                    "label": n["meta"]["label"]["id"],
                    "label_text": n["meta"]["label"]["text"],
                    "label_context": n["meta"]["label"].get("context").cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        json!({"messages": message_ids(flow), "nodes": nodes})
    };
    let login = c.init("login", "").await;
    insta::assert_json_snapshot!("oidc_login_buttons", shape(&login));
    let registration = c.init("registration", "").await;
    insta::assert_json_snapshot!("oidc_registration_buttons", shape(&registration));
}
both!(oidc_flow_shapes_snapshot);

/// One provider answer brought back several times at once (a double-clicked or replayed
/// callback): the state is consumed atomically, so exactly one request signs in.
async fn oidc_concurrent_callbacks_sign_in_once(backend: Backend) {
    let Some((idp, srv)) = setup(backend).await else { return };
    let sub = "race";
    import_linked(&srv, "race@example.com", sub).await;
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("login", "").await;
    idp.next_login(sub).await;
    let to = leaves_for(
        &c,
        c.submit(&flow, json!({"method": "oidc", "provider": "local"})).await,
    )
    .await;
    let back = through_provider(&srv, &to).await;
    let answers = futures_util::future::join_all((0..6).map(|_| callback(&srv, &c, &back))).await;
    let mut signed_in = 0;
    for res in answers {
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if body.get("session_token").is_some() {
            signed_in += 1;
        }
    }
    assert_eq!(signed_in, 1, "exactly one callback signs in");
    srv.stop().await;
}
both!(oidc_concurrent_callbacks_sign_in_once);
