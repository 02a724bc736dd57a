//! The `active` / `state` table of every flow step (docs/flow-states.md), pinned with insta
//! for browser (form posts), SPA and native clients. UI kits derive their screen from these
//! fields (Ory Elements React: `active` picks the method form, recovery and verification need
//! `active` from creation on), so each row is what Kratos answers at that step.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids};
use crate::code::code_of;
use crate::flows::{finish, register};
use crate::harness::{Backend, TestServer};
use crate::smtp_sink::SmtpSink;

/// One table row: the step, the HTTP status the client saw and what the flow says.
fn row(step: &str, status: StatusCode, flow: &Value) -> Value {
    let mut groups: Vec<String> = vec![];
    for n in flow["ui"]["nodes"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let g = n["group"].as_str().unwrap_or("").to_string();
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    json!({
        "step": step,
        "status": status.as_u16(),
        // `null` means absent: the field is omitted from the flow JSON.
        "active": flow.get("active").cloned().unwrap_or(Value::Null),
        "state": flow["state"],
        "messages": message_ids(flow),
        "groups": groups,
    })
}

/// A row for a step that completes the flow (no flow is shown any more).
fn done(step: &str, status: StatusCode) -> Value {
    json!({"step": step, "status": status.as_u16(), "completed": true})
}

/// The code of the newest mail to `to` that passes `pick`, waiting for the courier.
async fn newest_code(sink: &SmtpSink, to: &str, pick: impl Fn(usize, &str) -> bool) -> String {
    for _ in 0..400 {
        let mails: Vec<_> = sink
            .mails()
            .into_iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r == to))
            .collect();
        if let Some((_, m)) = mails
            .iter()
            .enumerate()
            .rev()
            .find(|(i, m)| pick(*i, m.text.as_deref().unwrap_or("")))
        {
            return code_of(m);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no new mail to {to}")
}

/// How many mails reached `to` so far.
fn mail_count(sink: &SmtpSink, to: &str) -> usize {
    sink.mails()
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == to))
        .count()
}

/// Moves the clock past the per-address resend pause before another code is sent.
fn cool_down(srv: &TestServer) {
    srv.clock.advance(std::time::Duration::from_secs(61));
}

/// Submits and returns the row plus the flow as the client sees it afterwards.
async fn step(c: &Client<'_>, kind: &str, name: &str, flow: &Value, fields: Value) -> (Value, Value) {
    let res = c.submit(flow, fields).await;
    let (status, after) = c.flow_after(kind, res).await;
    (row(name, status, &after), after)
}

async fn walk(srv: &TestServer, sink: &SmtpSink, kind: Kind) -> Vec<Value> {
    let tag = format!("{kind:?}").to_lowercase();
    let mut rows = vec![];

    // Registration (profile_first), code branch.
    let c = Client::new(srv, kind);
    let email = format!("states-code-{tag}@example.com");
    let flow = c.init("registration", "").await;
    rows.push(row("registration: created", StatusCode::OK, &flow));
    let (r, flow) = step(
        &c,
        "registration",
        "registration: profile step (method=profile)",
        &flow,
        json!({"method": "profile", "traits.email": email}),
    )
    .await;
    rows.push(r);
    let (r, flow) = step(
        &c,
        "registration",
        "registration: back to the profile form (screen=previous)",
        &flow,
        json!({"screen": "previous", "traits.email": email}),
    )
    .await;
    rows.push(r);
    let (_, flow) = step(
        &c,
        "registration",
        "",
        &flow,
        json!({"method": "profile", "traits.email": email}),
    )
    .await;
    let (r, flow) = step(
        &c,
        "registration",
        "registration: password too short",
        &flow,
        json!({"method": "password", "traits.email": email, "password": "short"}),
    )
    .await;
    rows.push(r);
    let (r, flow) = step(
        &c,
        "registration",
        "registration: code sent (method=code)",
        &flow,
        json!({"method": "code", "traits.email": email}),
    )
    .await;
    rows.push(r);
    let code = code_of(&sink.next_mail_to(&email).await);
    let (r, flow) = step(
        &c,
        "registration",
        "registration: wrong code",
        &flow,
        json!({"method": "code", "traits.email": email, "code": "000000"}),
    )
    .await;
    rows.push(r);
    let (r, flow) = step(
        &c,
        "registration",
        "registration: back to the methods (screen=credential-selection)",
        &flow,
        json!({"screen": "credential-selection", "traits.email": email}),
    )
    .await;
    rows.push(r);
    cool_down(srv);
    let (r, flow) = step(
        &c,
        "registration",
        "registration: code sent again",
        &flow,
        json!({"method": "code", "traits.email": email}),
    )
    .await;
    rows.push(r);
    let newer = code_of(&sink.next_mail_to(&email).await);
    assert_ne!(code, "", "a code was mailed");
    let mut c = c;
    let res = c
        .submit(&flow, json!({"method": "code", "traits.email": email, "code": newer}))
        .await;
    let status = res.status();
    finish(&mut c, res).await;
    rows.push(done("registration: right code", status));

    // Login: password and passkey failures keep `active` as it was; a sent code sets it.
    let anon = Client::new(srv, kind);
    let flow = anon.init("login", "").await;
    rows.push(row("login: created", StatusCode::OK, &flow));
    let (r, flow) = step(
        &anon,
        "login",
        "login: wrong password",
        &flow,
        json!({"method": "password", "identifier": email, "password": "not the password"}),
    )
    .await;
    rows.push(r);
    let (r, flow) = step(
        &anon,
        "login",
        "login: code sent (method=code)",
        &flow,
        json!({"method": "code", "identifier": email}),
    )
    .await;
    rows.push(r);
    let _ = sink.next_mail_to(&email).await;
    let (r, flow) = step(
        &anon,
        "login",
        "login: wrong code",
        &flow,
        json!({"method": "code", "identifier": email, "code": "000000"}),
    )
    .await;
    rows.push(r);
    cool_down(srv);
    let (r, flow) = step(
        &anon,
        "login",
        "login: code resent (resend=code)",
        &flow,
        json!({"method": "code", "identifier": email, "resend": "code"}),
    )
    .await;
    rows.push(r);
    let code = code_of(&sink.next_mail_to(&email).await);
    let mut anon = anon;
    let res = anon
        .submit(&flow, json!({"method": "code", "identifier": email, "code": code}))
        .await;
    let status = res.status();
    finish(&mut anon, res).await;
    rows.push(done("login: right code", status));

    // Settings: Kratos never sets `active` here.
    let mut c = Client::new(srv, kind);
    let pw_email = format!("states-pw-{tag}@example.com");
    register(&mut c, &pw_email).await;
    let flow = c.init("settings", "").await;
    rows.push(row("settings: created", StatusCode::OK, &flow));
    let (r, flow) = step(
        &c,
        "settings",
        "settings: profile saved",
        &flow,
        json!({"method": "profile", "traits.email": pw_email, "traits.name.first": "Ada"}),
    )
    .await;
    rows.push(r);
    let (r, _) = step(
        &c,
        "settings",
        "settings: invalid traits",
        &flow,
        json!({"method": "profile", "traits.email": "not-an-email"}),
    )
    .await;
    rows.push(r);

    // Verification and recovery: `active` is the strategy from creation on.
    let anon = Client::new(srv, kind);
    let flow = anon.init("verification", "").await;
    rows.push(row("verification: created", StatusCode::OK, &flow));
    cool_down(srv);
    let (r, flow) = step(
        &anon,
        "verification",
        "verification: code sent",
        &flow,
        json!({"method": "code", "email": pw_email}),
    )
    .await;
    rows.push(r);
    // The mail links to this flow (a verification mail from the registration came earlier).
    let id = flow["id"].as_str().unwrap().to_string();
    let code = newest_code(sink, &pw_email, |_, text| text.contains(&id)).await;
    let (r, flow) = step(
        &anon,
        "verification",
        "verification: wrong code",
        &flow,
        json!({"method": "code", "code": "000000"}),
    )
    .await;
    rows.push(r);
    let res = anon.submit(&flow, json!({"method": "code", "code": code})).await;
    let status = res.status();
    let (_, after) = anon.flow_after("verification", res).await;
    rows.push(row("verification: right code", status, &after));

    let anon = Client::new(srv, kind);
    let flow = anon.init("recovery", "").await;
    rows.push(row("recovery: created", StatusCode::OK, &flow));
    let seen = mail_count(sink, &pw_email);
    cool_down(srv);
    let (r, flow) = step(
        &anon,
        "recovery",
        "recovery: code sent",
        &flow,
        json!({"method": "code", "email": pw_email}),
    )
    .await;
    rows.push(r);
    let code = newest_code(sink, &pw_email, |i, _| i >= seen).await;
    let (r, flow) = step(
        &anon,
        "recovery",
        "recovery: wrong code",
        &flow,
        json!({"method": "code", "code": "000000"}),
    )
    .await;
    rows.push(r);
    let res = anon.submit(&flow, json!({"method": "code", "code": code})).await;
    let status = res.status();
    // Browsers are sent on to the settings flow; the recovery flow itself is then fetched.
    let after = if kind == Kind::Browser {
        assert_eq!(status, StatusCode::SEE_OTHER);
        anon.fetch("recovery", flow["id"].as_str().unwrap()).await
    } else {
        res.json().await.unwrap()
    };
    rows.push(row("recovery: right code", status, &after));
    rows
}

async fn flow_states(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(
        b,
        json!({
            "courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}},
            "selfservice": {"flows": {
                "registration": {"after": {"code": {"hooks": [{"hook": "session"}]}}},
                "verification": {"enabled": true, "use": "code"},
                "recovery": {"enabled": true, "use": "code"}
            }}
        }),
    )
    .await;
    let mut tables = vec![];
    for kind in ALL {
        let rows = walk(&srv, &sink, kind).await;
        insta::assert_json_snapshot!(format!("flow_states_{kind:?}").to_lowercase(), rows);
        tables.push(rows);
    }
    // The three client styles see the same `active` and `state` at every step.
    let strip = |rows: &Vec<Value>| -> Vec<Value> {
        rows.iter()
            .map(|r| json!([r["step"], r["active"], r["state"], r["messages"]]))
            .collect()
    };
    assert_eq!(strip(&tables[0]), strip(&tables[1]));
    assert_eq!(strip(&tables[1]), strip(&tables[2]));
}
both!(flow_states);

/// `transient_payload` comes back on the flow answering the submission that carried it, for
/// the steps where Kratos keeps it (profile step, code strategy, recovery, verification), and
/// is not stored (a later fetch does not show it).
async fn transient_payload_is_echoed_like_kratos(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(
        b,
        json!({
            "courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}},
            "selfservice": {"flows": {"recovery": {"enabled": true, "use": "code"}}}
        }),
    )
    .await;
    let tp = json!({"campaign": "spring", "n": 1});
    for kind in [Kind::Spa, Kind::Native] {
        let c = Client::new(&srv, kind);
        let email = format!("tp-{kind:?}@example.com").to_lowercase();
        let flow = c.init("registration", "").await;
        let res = c
            .submit(
                &flow,
                json!({"method": "profile", "traits": {"email": email}, "transient_payload": tp}),
            )
            .await;
        let (_, step2) = c.flow_after("registration", res).await;
        assert_eq!(step2["transient_payload"], tp, "{step2}");
        assert!(
            c.fetch("registration", flow["id"].as_str().unwrap())
                .await
                .get("transient_payload")
                .is_none()
        );
        let res = c
            .submit(
                &step2,
                json!({"method": "code", "traits": {"email": email}, "transient_payload": tp}),
            )
            .await;
        let (_, sent) = c.flow_after("registration", res).await;
        assert_eq!(sent["transient_payload"], tp, "{sent}");

        let login = c.init("login", "").await;
        let res = c
            .submit(
                &login,
                json!({"method": "password", "identifier": email, "password": "nope", "transient_payload": tp}),
            )
            .await;
        let (_, failed) = c.flow_after("login", res).await;
        assert!(
            failed.get("transient_payload").is_none(),
            "password login leaves it out: {failed}"
        );

        let rec = c.init("recovery", "").await;
        let res = c
            .submit(&rec, json!({"method": "code", "email": email, "transient_payload": tp}))
            .await;
        let (_, sent) = c.flow_after("recovery", res).await;
        assert_eq!(sent["transient_payload"], tp, "{sent}");
    }
}
both!(transient_payload_is_echoed_like_kratos);
