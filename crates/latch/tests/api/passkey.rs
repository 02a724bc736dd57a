//! Passkeys with a software authenticator (1Password's passkey-rs): sign up, sign in,
//! refused assertions and settings, for browser, SPA and native clients.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client as WebClient, DefaultClientData};
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::both;
use crate::client::{Client, Kind, message_ids, node};
use crate::flows::finish;
use crate::harness::{Backend, TestServer};

pub const ORIGIN: &str = "https://latch.test";

/// Passkeys for the relying party `latch.test` (two web origins), and sessions after
/// passkey registration.
pub fn passkey_config() -> Value {
    json!({"selfservice": {
        "methods": {"passkey": {"config": {"rp": {
            "id": "latch.test",
            "display_name": "Latch",
            "origins": ["https://latch.test", "https://app.latch.test"]
        }}}},
        "flows": {"registration": {"after": {"passkey": {"hooks": [{"hook": "session"}]}}}}
    }})
}

/// A person who always approves and is always verified.
struct Approve;

#[async_trait::async_trait]
impl UserValidationMethod for Approve {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        _presence: bool,
        _verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence: true,
            verification: true,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// One authenticator holding at most one passkey (answers discoverable requests).
#[derive(Default)]
pub struct Device {
    store: Option<Passkey>,
}

impl Device {
    /// `navigator.credentials.create` from `origin` with `{"publicKey": …}`; the JSON a browser posts.
    pub async fn create(&mut self, origin: &str, options: &Value) -> Value {
        let opts: CredentialCreationOptions = serde_json::from_value(options.clone()).unwrap();
        let mut client = WebClient::new(Authenticator::new(
            Aaguid::new_empty(),
            self.store.take(),
            Approve,
            RustCryptoBackend,
        ));
        let created = client
            .register(&Url::parse(origin).unwrap(), opts, DefaultClientData)
            .await
            .unwrap();
        self.store = client.authenticator().store().clone();
        serde_json::to_value(&created).unwrap()
    }

    /// `navigator.credentials.get` from `origin` with `{"publicKey": …}`.
    pub async fn get(&mut self, origin: &str, options: &Value) -> Value {
        let opts: CredentialRequestOptions = serde_json::from_value(options.clone()).unwrap();
        let mut client = WebClient::new(Authenticator::new(
            Aaguid::new_empty(),
            self.store.take(),
            Approve,
            RustCryptoBackend,
        ));
        let got = client
            .authenticate(&Url::parse(origin).unwrap(), opts, DefaultClientData)
            .await
            .unwrap();
        self.store = client.authenticator().store().clone();
        serde_json::to_value(&got).unwrap()
    }
}

fn value_of(flow: &Value, name: &str) -> Value {
    let raw = node(flow, name).unwrap_or_else(|| panic!("no {name} node in {flow}"))["attributes"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_str(&raw).unwrap()
}

/// Registers `email` with a new passkey on `device` and keeps the session.
pub async fn register_with_passkey(c: &mut Client<'_>, device: &mut Device, email: &str) -> Value {
    let flow = c.init("registration", "").await;
    let res = c
        .submit(&flow, json!({"method": "profile", "traits.email": email}))
        .await;
    let (_, flow) = c.flow_after("registration", res).await;
    let data = value_of(&flow, "passkey_create_data");
    assert_eq!(data["displayNameFieldName"], "traits.email");
    let mut options = data["credentialOptions"].clone();
    let handle = URL_SAFE_NO_PAD
        .decode(options["publicKey"]["user"]["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(handle.len(), 64);
    assert!(handle.iter().all(u8::is_ascii_alphanumeric));
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let algs: Vec<i64> = options["publicKey"]["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alg"].as_i64().unwrap())
        .collect();
    assert_eq!(algs, vec![-7, -257]);
    // What webauthn.js does: the display name from the form field.
    options["publicKey"]["user"]["name"] = json!(email);
    options["publicKey"]["user"]["displayName"] = json!(email);
    let credential = device.create(ORIGIN, &options).await;
    let res = c
        .submit(
            &flow,
            json!({"method": "passkey", "traits.email": email, "passkey_register": credential.to_string()}),
        )
        .await;
    finish(c, res).await
}

/// Runs the passkey sign-in ceremony against a fresh login flow; returns the flow and the
/// credential JSON (not yet submitted).
async fn assertion(c: &Client<'_>, device: &mut Device, origin: &str) -> (Value, Value) {
    let flow = c.init("login", "").await;
    let challenge = value_of(&flow, "passkey_challenge");
    assert!(challenge["publicKey"].get("allowCredentials").is_none());
    let credential = device.get(origin, &challenge).await;
    (flow, credential)
}

async fn submit_login(c: &Client<'_>, flow: &Value, credential: &Value) -> reqwest::Response {
    c.submit(
        flow,
        json!({"method": "passkey", "passkey_login": credential.to_string()}),
    )
    .await
}

/// The flow after a refused submission (400 + flow for JSON clients).
async fn refused(c: &Client<'_>, res: reqwest::Response) -> Value {
    let (status, flow) = c.flow_after("login", res).await;
    if c.kind != Kind::Browser {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{flow}");
    }
    flow
}

fn identity_of(session_or_body: &Value) -> Value {
    session_or_body
        .get("session")
        .map(|s| s["identity"].clone())
        .unwrap_or_else(|| session_or_body["identity"].clone())
}

async fn passkey_register_then_login(b: Backend) {
    let srv = TestServer::with_config(b, passkey_config()).await;
    for kind in [Kind::Spa, Kind::Native, Kind::Browser] {
        let email = format!("pk-{kind:?}@example.com").to_lowercase();
        let mut device = Device::default();
        let mut c = Client::new(&srv, kind);
        let body = register_with_passkey(&mut c, &mut device, &email).await;
        if kind != Kind::Browser {
            assert_eq!(identity_of(&body)["traits"]["email"], email);
        }
        // The stored credential has Kratos' shape.
        let who: Value = c.whoami().await.json().await.unwrap();
        let id = who["identity"]["id"].as_str().unwrap().to_string();
        let admin: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}?include_credential=passkey")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cred = &admin["credentials"]["passkey"];
        assert_eq!(cred["identifiers"][0].as_str().unwrap().len(), 64);
        let stored = &cred["config"]["credentials"][0];
        assert_eq!(stored["is_passwordless"], true);
        assert_eq!(stored["flags"]["user_verified"], true);
        assert!(stored["public_key"].as_str().unwrap().len() > 40);

        // Sign in with a new client (no session).
        let mut c = Client::new(&srv, kind);
        let (flow, credential) = assertion(&c, &mut device, ORIGIN).await;
        if kind == Kind::Native {
            assert!(
                flow["ui"]["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|n| n["type"] != "script")
            );
            let trigger = node(&flow, "passkey_login_trigger").unwrap();
            assert_eq!(trigger["attributes"]["onclickTrigger"], "oryPasskeyLogin");
            assert!(trigger["attributes"].get("onclick").is_none_or(|v| v == ""));
        } else {
            let script = flow["ui"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["type"] == "script")
                .unwrap();
            assert!(
                script["attributes"]["integrity"]
                    .as_str()
                    .unwrap()
                    .starts_with("sha512-")
            );
        }
        assert_eq!(
            node(&flow, "identifier").unwrap()["attributes"]["autocomplete"],
            "username webauthn"
        );
        let res = submit_login(&c, &flow, &credential).await;
        let body = finish(&mut c, res).await;
        let who: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who["identity"]["id"], id);
        assert_eq!(who["authentication_methods"][0]["method"], "passkey");
        assert_eq!(who["authenticator_assurance_level"], "aal1");
        if kind != Kind::Browser {
            assert_eq!(body["session"]["identity"]["id"], id);
        }
    }
}
both!(passkey_register_then_login);

async fn passkey_login_refuses_bad_assertions(b: Backend) {
    let srv = TestServer::with_config(b, passkey_config()).await;
    for kind in [Kind::Spa, Kind::Native] {
        let email = format!("bad-{kind:?}@example.com").to_lowercase();
        let mut device = Device::default();
        let mut c = Client::new(&srv, kind);
        register_with_passkey(&mut c, &mut device, &email).await;
        // Replay: an assertion answered once does not answer another flow's challenge.
        let mut first = Client::new(&srv, kind);
        let (flow, credential) = assertion(&first, &mut device, ORIGIN).await;
        let res = submit_login(&first, &flow, &credential).await;
        finish(&mut first, res).await;
        let c = Client::new(&srv, kind);
        let other = c.init("login", "").await;
        let flow = refused(&c, submit_login(&c, &other, &credential).await).await;
        assert_eq!(message_ids(&flow), vec![4000043], "replayed assertion");

        // A challenge answers once: a failed try uses it up.
        let mut once = Client::new(&srv, kind);
        let (flow, credential) = assertion(&once, &mut device, ORIGIN).await;
        let mut tampered = credential.clone();
        let mut sig = URL_SAFE_NO_PAD
            .decode(tampered["response"]["signature"].as_str().unwrap())
            .unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 0x01;
        tampered["response"]["signature"] = json!(URL_SAFE_NO_PAD.encode(&sig));
        let after = refused(&once, submit_login(&once, &flow, &tampered).await).await;
        assert_eq!(message_ids(&after), vec![4000043], "tampered signature");
        let again = refused(&once, submit_login(&once, &flow, &credential).await).await;
        assert_eq!(message_ids(&again), vec![4000043], "used-up challenge");
        // The refused flow carries a fresh challenge that works.
        let challenge = value_of(&again, "passkey_challenge");
        let fresh = device.get(ORIGIN, &challenge).await;
        let res = submit_login(&once, &again, &fresh).await;
        finish(&mut once, res).await;

        // Wrong origin (allowed RP id, origin not configured).
        let (flow, credential) = assertion(&c, &mut device, "https://evil.latch.test").await;
        let flow = refused(&c, submit_login(&c, &flow, &credential).await).await;
        assert_eq!(message_ids(&flow), vec![4000043], "wrong origin");

        // Wrong RP id (allowed origin, but the authenticator signed for another RP id).
        let flow = c.init("login", "").await;
        let mut challenge = value_of(&flow, "passkey_challenge");
        challenge["publicKey"]["rpId"] = json!("app.latch.test");
        let credential = device.get("https://app.latch.test", &challenge).await;
        let flow = refused(&c, submit_login(&c, &flow, &credential).await).await;
        assert_eq!(message_ids(&flow), vec![4000043], "wrong rp id");

        // Unknown credential: created in a registration that was never completed.
        let reg = c.init("registration", "").await;
        let res = c
            .submit(&reg, json!({"method": "profile", "traits.email": "ghost@example.com"}))
            .await;
        let (_, reg) = c.flow_after("registration", res).await;
        let mut ghost = Device::default();
        ghost
            .create(ORIGIN, &value_of(&reg, "passkey_create_data")["credentialOptions"])
            .await;
        let (flow, credential) = assertion(&c, &mut ghost, ORIGIN).await;
        let flow = refused(&c, submit_login(&c, &flow, &credential).await).await;
        assert_eq!(message_ids(&flow), vec![4000015], "unknown user");
        // … and claiming a known user's handle does not help.
        let (flow, known) = assertion(&c, &mut device, ORIGIN).await;
        let (_, mut unknown) = assertion(&c, &mut ghost, ORIGIN).await;
        unknown["response"]["userHandle"] = known["response"]["userHandle"].clone();
        let flow2 = refused(&c, submit_login(&c, &flow, &unknown).await).await;
        assert_eq!(message_ids(&flow2), vec![4000015], "unknown credential");

        // Garbage is a message, not a 500.
        let flow = c.init("login", "").await;
        let res = c
            .submit(&flow, json!({"method": "passkey", "passkey_login": "{not json"}))
            .await;
        let flow = refused(&c, res).await;
        assert_eq!(message_ids(&flow), vec![4000001]);
    }
}
both!(passkey_login_refuses_bad_assertions);

async fn passkey_settings_add_and_remove(b: Backend) {
    let mut cfg = passkey_config();
    crate::harness::merge(
        &mut cfg,
        &json!({"selfservice": {"methods": {"code": {"passwordless_enabled": false}}}}),
    );
    let srv = TestServer::with_config(b, cfg).await;
    for kind in [Kind::Spa, Kind::Native, Kind::Browser] {
        let email = format!("set-{kind:?}@example.com").to_lowercase();
        let mut first = Device::default();
        let mut c = Client::new(&srv, kind);
        register_with_passkey(&mut c, &mut first, &email).await;

        // Add a second passkey.
        let flow = c.init("settings", "").await;
        let removes: Vec<&Value> = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["attributes"]["name"] == "passkey_remove")
            .collect();
        assert_eq!(removes.len(), 1);
        assert_eq!(removes[0]["meta"]["label"]["id"], 1050020);
        let options = value_of(&flow, "passkey_create_data");
        assert_eq!(options["publicKey"]["excludeCredentials"].as_array().unwrap().len(), 1);
        assert_eq!(
            node(&flow, "passkey_register_trigger").unwrap()["attributes"]["onclickTrigger"],
            "oryPasskeySettingsRegistration"
        );
        let mut second = Device::default();
        let created = second.create(ORIGIN, &options).await;
        let res = c
            .submit(
                &flow,
                json!({"method": "passkey", "passkey_settings_register": created.to_string()}),
            )
            .await;
        let (status, flow) = c.flow_after("settings", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "{flow}");
        }
        assert_eq!(flow["state"], "success");
        let removes: Vec<String> = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["attributes"]["name"] == "passkey_remove")
            .map(|n| n["attributes"]["value"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(removes.len(), 2);

        // Both passkeys sign in.
        for device in [&mut first, &mut second] {
            let mut other = Client::new(&srv, kind);
            let (flow, credential) = assertion(&other, device, ORIGIN).await;
            let res = submit_login(&other, &flow, &credential).await;
            finish(&mut other, res).await;
        }

        // Remove one; the last one cannot be removed (no password, codes off).
        let flow = c.init("settings", "").await;
        let res = c
            .submit(&flow, json!({"method": "passkey", "passkey_remove": removes[0]}))
            .await;
        let (_, flow) = c.flow_after("settings", res).await;
        assert_eq!(flow["state"], "success");
        let left: Vec<&Value> = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["attributes"]["name"] == "passkey_remove")
            .collect();
        assert_eq!(left.len(), 1);
        let res = c
            .submit(&flow, json!({"method": "passkey", "passkey_remove": removes[1]}))
            .await;
        let (status, flow) = c.flow_after("settings", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{flow}");
        }
        assert_eq!(message_ids(&flow), vec![4000001], "{flow}");
        // The removed passkey no longer signs in; the other one does.
        let mut other = Client::new(&srv, kind);
        let (flow, credential) = assertion(&other, &mut first, ORIGIN).await;
        let flow = refused(&other, submit_login(&other, &flow, &credential).await).await;
        assert_eq!(message_ids(&flow), vec![4000015]);
        let (flow, credential) = assertion(&other, &mut second, ORIGIN).await;
        let res = submit_login(&other, &flow, &credential).await;
        finish(&mut other, res).await;
    }
}
both!(passkey_settings_add_and_remove);

async fn passkey_settings_needs_privileged_session(b: Backend) {
    let srv = TestServer::with_config(b, passkey_config()).await;
    let mut device = Device::default();
    let mut c = Client::new(&srv, Kind::Spa);
    register_with_passkey(&mut c, &mut device, "priv@example.com").await;
    srv.clock.advance(std::time::Duration::from_secs(16 * 60));
    let flow = c.init("settings", "").await;
    let created = Device::default()
        .create(ORIGIN, &value_of(&flow, "passkey_create_data"))
        .await;
    let res = c
        .submit(
            &flow,
            json!({"method": "passkey", "passkey_settings_register": created.to_string()}),
        )
        .await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["id"], "session_refresh_required");
}
both!(passkey_settings_needs_privileged_session);

async fn passkey_well_known_script_and_origins(b: Backend) {
    let srv = TestServer::with_config(b, passkey_config()).await;
    let http = srv.client();
    let res = http
        .get(srv.public_url("/.well-known/ory/webauthn.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/javascript; charset=UTF-8");
    let js = res.bytes().await.unwrap();
    for f in [
        "oryPasskeyLogin",
        "oryPasskeyLoginAutocompleteInit",
        "oryPasskeyRegistration",
        "oryPasskeySettingsRegistration",
        "oryWebAuthnLogin",
        "oryWebAuthnRegistration",
    ] {
        assert!(String::from_utf8_lossy(&js).contains(f), "{f}");
    }
    // The integrity of the script node is the hash of these exact bytes.
    let c = Client::new(&srv, Kind::Spa);
    let flow = c.init("login", "").await;
    let script = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "script")
        .unwrap()
        .clone();
    use sha2::Digest;
    let want = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&js))
    );
    assert_eq!(script["attributes"]["integrity"], want);
    assert_eq!(
        script["attributes"]["src"],
        srv.public_url("/.well-known/ory/webauthn.js")
    );
    let flow2 = c.init("login", "").await;
    let nonce = |f: &Value| {
        f["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "script")
            .unwrap()["attributes"]["nonce"]
            .clone()
    };
    assert_ne!(nonce(&flow), nonce(&flow2));
    let origins: Value = http
        .request(Method::GET, srv.public_url("/.well-known/webauthn"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        origins,
        json!({"origins": ["https://latch.test", "https://app.latch.test"]})
    );
}
both!(passkey_well_known_script_and_origins);

/// Kratos' matrix row "needs browser redirect": a passkey submission without the WebAuthn
/// answer sends SPAs a 422 `browser_location_change_required` and form posts a 303 to the
/// flow's page; native apps get the flow back with fresh options (400).
async fn passkey_login_without_credential_asks_for_a_browser_location_change(b: Backend) {
    let srv = TestServer::with_config(b, passkey_config()).await;
    for kind in [Kind::Browser, Kind::Spa, Kind::Native] {
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let ui = format!("/ui/login?flow={}", flow["id"].as_str().unwrap());
        let res = c.submit(&flow, json!({"method": "passkey"})).await;
        match kind {
            Kind::Browser => {
                assert_eq!(res.status(), StatusCode::SEE_OTHER);
                assert!(res.headers()["location"].to_str().unwrap().ends_with(&ui));
            }
            Kind::Spa => {
                assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"]["id"], "browser_location_change_required");
                assert!(body["redirect_browser_to"].as_str().unwrap().ends_with(&ui), "{body}");
            }
            Kind::Native => {
                assert_eq!(res.status(), StatusCode::BAD_REQUEST);
                let body: Value = res.json().await.unwrap();
                assert!(node(&body, "passkey_challenge").is_some(), "{body}");
            }
        }
    }
}
both!(passkey_login_without_credential_asks_for_a_browser_location_change);

/// One assertion submitted 20 times at once (every request released together) signs in
/// exactly once: the challenge is claimed in the database, not only taken out of the flow.
async fn passkey_assertion_races_sign_in_once(b: Backend) {
    let srv = TestServer::with_config(b, passkey_config()).await;
    for kind in [Kind::Spa, Kind::Native] {
        let email = format!("race-{kind:?}@example.com").to_lowercase();
        let mut device = Device::default();
        let mut c = Client::new(&srv, kind);
        register_with_passkey(&mut c, &mut device, &email).await;
        let fresh = Client::new(&srv, kind);
        let (flow, credential) = assertion(&fresh, &mut device, ORIGIN).await;
        let fields = json!({"method": "passkey", "passkey_login": credential.to_string()});
        let reqs = (0..20)
            .map(|_| crate::limits::raw_submit(&fresh, &flow, fields.clone(), &[]))
            .collect();
        let answers = crate::limits::race(&srv.public, reqs).await;
        let signed_in = answers
            .iter()
            .filter(|r| r.status == 200 && r.json().get("session").is_some())
            .count();
        assert_eq!(
            signed_in,
            1,
            "{kind:?}: {:?}",
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        for r in answers.iter().filter(|r| r.status != 200) {
            assert_eq!(r.status, 400, "{}", r.body);
            assert_eq!(message_ids(&r.json()), vec![4000043], "{}", r.body);
        }
    }
}
both!(passkey_assertion_races_sign_in_once);

/// A sign in stores the authenticator's signature counter (and a counter that went back as a
/// clone warning) in the passkey credential, and leaves the rest of the identity as it was.
async fn passkey_login_stores_the_sign_counter(b: Backend) {
    let srv = TestServer::with_config(b, passkey_config()).await;
    let admin = |id: String| {
        let srv = &srv;
        async move {
            srv.client()
                .get(srv.admin_url(&format!("/admin/identities/{id}?include_credential=passkey")))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let sign_in = async |device: &mut Device, counter: u32| {
        device.store.as_mut().unwrap().counter = Some(counter);
        let c = Client::new(&srv, Kind::Native);
        let (flow, credential) = assertion(&c, device, ORIGIN).await;
        submit_login(&c, &flow, &credential).await.status()
    };
    let mut device = Device::default();
    let mut c = Client::new(&srv, Kind::Native);
    let body = register_with_passkey(&mut c, &mut device, "counter@example.com").await;
    let id = identity_of(&body)["id"].as_str().unwrap().to_string();
    let before = admin(id.clone()).await;
    let stored = |v: &Value| v["credentials"]["passkey"]["config"]["credentials"][0].clone();

    // The authenticator signs with counter 42: stored.
    assert_eq!(sign_in(&mut device, 41).await, StatusCode::OK);
    let after = admin(id.clone()).await;
    assert_eq!(stored(&after)["authenticator"]["sign_count"], 42, "{after}");
    assert_eq!(stored(&after)["authenticator"]["clone_warning"], false);
    assert_eq!(stored(&after)["public_key"], stored(&before)["public_key"]);
    assert_eq!(
        after["credentials"]["passkey"]["identifiers"],
        before["credentials"]["passkey"]["identifiers"]
    );
    for unchanged in ["traits", "updated_at", "verifiable_addresses", "recovery_addresses"] {
        assert_eq!(after[unchanged], before[unchanged], "{unchanged}");
    }
    for (kind, cred) in before["credentials"].as_object().unwrap() {
        if kind != "passkey" {
            assert_eq!(after["credentials"][kind], *cred, "{kind}");
        }
    }

    // A counter that went back (10 after 42) is refused and flagged.
    assert_eq!(sign_in(&mut device, 9).await, StatusCode::BAD_REQUEST);
    let flagged = admin(id.clone()).await;
    assert_eq!(stored(&flagged)["authenticator"]["sign_count"], 42, "{flagged}");
    assert_eq!(stored(&flagged)["authenticator"]["clone_warning"], true);

    // Counting on from there signs in again; the warning stays.
    assert_eq!(sign_in(&mut device, 50).await, StatusCode::OK);
    let last = admin(id).await;
    assert_eq!(stored(&last)["authenticator"]["sign_count"], 51, "{last}");
    assert_eq!(stored(&last)["authenticator"]["clone_warning"], true);
}
both!(passkey_login_stores_the_sign_counter);

/// A UI kit that keeps its own copy of the hidden inputs (Ory Elements) still holds the
/// `passkey_create_data` of the first render after the profile was saved in the same flow:
/// the pending registration keeps its challenge across re-renders, and is single use.
async fn passkey_settings_challenge_survives_a_profile_save(b: Backend) {
    let srv = TestServer::with_config(b, passkey_config()).await;
    for kind in [Kind::Browser, Kind::Spa, Kind::Native] {
        let email = format!("keep-{kind:?}@example.com").to_lowercase();
        let mut c = Client::new(&srv, kind);
        crate::flows::register(&mut c, &email).await;
        let flow = c.init("settings", "").await;
        let options = value_of(&flow, "passkey_create_data");
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": email}))
            .await;
        let (_, saved) = c.flow_after("settings", res).await;
        assert_eq!(saved["state"], "success");
        assert_eq!(
            value_of(&saved, "passkey_create_data"),
            options,
            "the same challenge is shown"
        );
        let mut device = Device::default();
        let created = device.create(ORIGIN, &options).await;
        let res = c
            .submit(
                &saved,
                json!({"method": "passkey", "passkey_settings_register": created.to_string()}),
            )
            .await;
        let (status, added) = c.flow_after("settings", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, StatusCode::OK, "{added}");
        }
        assert_eq!(message_ids(&added), vec![1050001], "{added}");
        // Used once: the next form carries a new challenge.
        assert_ne!(
            value_of(&added, "passkey_create_data")["publicKey"]["challenge"],
            options["publicKey"]["challenge"]
        );
        let mut other = Client::new(&srv, kind);
        let (flow, credential) = assertion(&other, &mut device, ORIGIN).await;
        let res = submit_login(&other, &flow, &credential).await;
        finish(&mut other, res).await;
    }
}
both!(passkey_settings_challenge_survives_a_profile_save);

/// As in Kratos, the registration form shows the same passkey options on every re-render
/// while the ceremony is pending (back and forth, another method's error), so an answer to
/// the first render's challenge is accepted (Ory Elements keeps its first hidden inputs).
async fn passkey_registration_options_survive_re_renders(b: Backend) {
    let srv = TestServer::with_config(b, passkey_config()).await;
    for kind in [Kind::Browser, Kind::Spa, Kind::Native] {
        let email = format!("rerender-{kind:?}@example.com").to_lowercase();
        let mut c = Client::new(&srv, kind);
        let flow = c.init("registration", "").await;
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": email}))
            .await;
        let (_, first) = c.flow_after("registration", res).await;
        let data = value_of(&first, "passkey_create_data");
        let res = c
            .submit(&first, json!({"screen": "previous", "traits.email": email}))
            .await;
        let (_, back) = c.flow_after("registration", res).await;
        let res = c
            .submit(&back, json!({"method": "profile", "traits.email": email}))
            .await;
        let (_, again) = c.flow_after("registration", res).await;
        assert_eq!(
            value_of(&again, "passkey_create_data"),
            data,
            "same options after back and forth"
        );
        let res = c
            .submit(
                &again,
                json!({"method": "password", "traits.email": email, "password": "short"}),
            )
            .await;
        let (_, failed) = c.flow_after("registration", res).await;
        assert_eq!(
            value_of(&failed, "passkey_create_data"),
            data,
            "same options after a password error"
        );
        let mut options = data["credentialOptions"].clone();
        options["publicKey"]["user"]["name"] = json!(email);
        options["publicKey"]["user"]["displayName"] = json!(email);
        let mut device = Device::default();
        let credential = device.create(ORIGIN, &options).await;
        let res = c
            .submit(
                &failed,
                json!({"method": "passkey", "traits.email": email, "passkey_register": credential.to_string()}),
            )
            .await;
        finish(&mut c, res).await;
    }
}
both!(passkey_registration_options_survive_re_renders);
