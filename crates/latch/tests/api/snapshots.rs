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
    walk(&mut v, &srv.public);
    if let Some(nodes) = v.pointer_mut("/ui/nodes").and_then(Value::as_array_mut) {
        for n in nodes {
            if n["attributes"]["name"] == "csrf_token" && n["attributes"]["value"] != json!("") {
                n["attributes"]["value"] = json!("[csrf]");
            }
        }
    }
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
