//! Flow JSON pinned with insta snapshots (ids, times, ports and tokens redacted), so any
//! change to the wire shape of login and registration flows is a visible diff.

use serde_json::{Value, json};

use crate::both;
use crate::client::{Client, Kind};
use crate::harness::{Backend, TestServer};

/// Replaces values that differ between runs.
fn redact(mut v: Value, srv: &TestServer) -> Value {
    fn walk(v: &mut Value, base: &str) {
        match v {
            Value::String(s) => {
                if s.starts_with(base) {
                    *s = s.replacen(base, "http://latch.test", 1);
                }
                if uuid::Uuid::parse_str(s).is_ok() {
                    *s = "[uuid]".into();
                } else if time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok() {
                    *s = "[time]".into();
                } else if let Some((a, _)) = s.split_once("flow=") {
                    *s = format!("{a}flow=[uuid]");
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, base)),
            Value::Object(o) => o.values_mut().for_each(|x| walk(x, base)),
            _ => {}
        }
    }
    /// Sorted keys: test builds get serde_json's `preserve_order` (a dev-dependency enables
    /// it), release builds do not; the snapshots must not depend on it.
    fn sort_keys(v: &mut Value) {
        match v {
            Value::Array(a) => a.iter_mut().for_each(sort_keys),
            Value::Object(o) => {
                let mut entries: Vec<(String, Value)> = std::mem::take(o).into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, mut x) in entries {
                    sort_keys(&mut x);
                    o.insert(k, x);
                }
            }
            _ => {}
        }
    }
    walk(&mut v, &srv.public);
    if let Some(nodes) = v.pointer_mut("/ui/nodes").and_then(Value::as_array_mut) {
        for n in nodes {
            if n["attributes"]["name"] == "csrf_token" && n["attributes"]["value"] != json!("") {
                n["attributes"]["value"] = json!("[csrf]");
            }
            // WebAuthn options carry a random challenge and user handle.
            let name = n["attributes"]["name"].as_str().unwrap_or("").to_string();
            if name == "passkey_challenge" || name == "passkey_create_data" {
                let mut options: Value = serde_json::from_str(n["attributes"]["value"].as_str().unwrap()).unwrap();
                for ptr in ["/publicKey", "/credentialOptions/publicKey"] {
                    if let Some(pk) = options.pointer_mut(ptr) {
                        pk["challenge"] = json!("[challenge]");
                        if pk.get("user").is_some() {
                            pk["user"]["id"] = json!("[user handle]");
                        }
                    }
                }
                sort_keys(&mut options);
                n["attributes"]["value"] = json!(options.to_string());
            }
            if n["type"] == "script" {
                n["attributes"]["integrity"] = json!("[sha512]");
            }
        }
    }
    sort_keys(&mut v);
    v
}

async fn flow_json_snapshots(b: Backend) {
    let srv = TestServer::start(b).await;
    for (kind, tag) in [(Kind::Spa, "browser"), (Kind::Native, "api")] {
        let c = Client::new(&srv, kind);
        let login = c.init("login", "").await;
        insta::assert_json_snapshot!(format!("login_{tag}"), redact(login, &srv));
        let reg = c.init("registration", "").await;
        insta::assert_json_snapshot!(format!("registration_{tag}"), redact(reg.clone(), &srv));
        // The credential-selection step of profile_first.
        let res = c
            .submit(&reg, json!({"method": "profile", "traits.email": "snap@example.com"}))
            .await;
        let (_, step2) = c.flow_after("registration", res).await;
        insta::assert_json_snapshot!(format!("registration_{tag}_credential_selection"), redact(step2, &srv));
    }
    // A failed login with messages.
    let c = Client::new(&srv, Kind::Spa);
    let login = c.init("login", "").await;
    let res = c
        .submit(
            &login,
            json!({"method": "password", "identifier": "nobody@example.com", "password": "x"}),
        )
        .await;
    let (_, failed) = c.flow_after("login", res).await;
    insta::assert_json_snapshot!("login_browser_invalid_credentials", redact(failed, &srv));
}
both!(flow_json_snapshots);
