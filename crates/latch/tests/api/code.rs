//! Passwordless one-time codes: registration, login, resend, bounds, enumeration safety,
//! verification and recovery — for browser, SPA and native clients, reading codes from a real
//! SMTP server started by the test.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids, node, node_message_ids};
use crate::flows::finish;
use crate::harness::{Backend, TestServer};
use crate::smtp_sink::{Mail, SmtpSink};

fn config(sink: &SmtpSink) -> Value {
    json!({
        "courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}},
        "selfservice": {"flows": {
            "registration": {"after": {"code": {"hooks": [{"hook": "session"}]}}},
            "verification": {"enabled": true, "use": "code"},
            "recovery": {"enabled": true, "use": "code"}
        }}
    })
}

/// The 6-digit code in a mail's text.
pub fn code_of(mail: &Mail) -> String {
    let text = mail.text.clone().unwrap_or_default();
    let digits: Vec<char> = text.chars().collect();
    for w in 0..digits.len().saturating_sub(5) {
        let run: String = digits[w..w + 6].iter().collect();
        let before = w == 0 || !digits[w - 1].is_ascii_digit();
        let after = digits.get(w + 6).is_none_or(|c| !c.is_ascii_digit());
        if before && after && run.chars().all(|c| c.is_ascii_digit()) {
            return run;
        }
    }
    panic!("no code in mail: {text}")
}

/// The code in the newest message to `to`, read from the admin courier API (bodies are shown
/// because the test server runs with `--dev`).
pub(crate) async fn code_from_admin_api(srv: &TestServer, to: &str) -> String {
    let url = srv.admin_url(&format!("/admin/courier/messages?recipient={to}"));
    let msgs: Vec<Value> = srv.client().get(url).send().await.unwrap().json().await.unwrap();
    let body = msgs[0]["body"].as_str().unwrap().to_string();
    let mail = Mail {
        mail_from: String::new(),
        rcpt_to: vec![],
        raw: String::new(),
        headers: vec![],
        text: Some(body),
        html: None,
    };
    code_of(&mail)
}

/// Sends the code step and returns the flow in `sent_email`.
pub(crate) async fn send_step(c: &Client<'_>, flow_name: &str, flow: &Value, fields: Value) -> Value {
    let res = c.submit(flow, fields).await;
    let (status, flow) = c.flow_after(flow_name, res).await;
    if c.kind != Kind::Browser {
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "sending a code answers 400 + flow: {flow}"
        );
    }
    assert_eq!(flow["state"], "sent_email", "{flow}");
    assert_eq!(flow["active"], "code");
    let code = node(&flow, "code").unwrap();
    assert_eq!(code["attributes"]["autocomplete"], "one-time-code");
    assert!(
        flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["attributes"]["name"] == "resend")
    );
    flow
}

async fn code_registration_then_code_login_for_every_client(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    for kind in ALL {
        let email = format!("code-{kind:?}@example.com").to_lowercase();
        let mut c = Client::new(&srv, kind);
        let flow = c.init("registration", "").await;
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": email}))
            .await;
        let (_, flow) = c.flow_after("registration", res).await;
        assert!(
            flow["ui"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["attributes"]["value"] == "code" && n["group"] == "code")
        );
        let flow = send_step(
            &c,
            "registration",
            &flow,
            json!({"method": "code", "traits.email": email}),
        )
        .await;
        assert_eq!(message_ids(&flow), vec![1040005]);
        assert_eq!(node(&flow, "traits.email").unwrap()["attributes"]["type"], "hidden");
        let mail = sink.next_mail_to(&email).await;
        let code = code_of(&mail);
        let res = c
            .submit(&flow, json!({"method": "code", "traits.email": email, "code": code}))
            .await;
        let body = finish(&mut c, res).await;
        if kind != Kind::Browser {
            assert_eq!(
                body["identity"]["verifiable_addresses"][0]["verified"], true,
                "the code proved the address"
            );
            assert_eq!(body["session"]["authentication_methods"][0]["method"], "code");
        }
        assert_eq!(c.whoami().await.status(), 200);

        // Sign in again by code with a fresh client.
        let mut fresh = Client::new(&srv, kind);
        let flow = fresh.init("login", "").await;
        let flow = send_step(&fresh, "login", &flow, json!({"method": "code", "identifier": email})).await;
        assert_eq!(message_ids(&flow), vec![1010014]);
        assert_eq!(node(&flow, "identifier").unwrap()["attributes"]["type"], "hidden");
        let code = code_of(&sink.next_mail_to(&email).await);
        assert_eq!(
            code_from_admin_api(&srv, &email).await,
            code,
            "the admin courier API shows the same code"
        );
        let res = fresh
            .submit(&flow, json!({"method": "code", "identifier": email, "code": code}))
            .await;
        let body = finish(&mut fresh, res).await;
        if kind == Kind::Native {
            assert_eq!(body["session"]["authentication_methods"][0]["method"], "code");
        }
        // The code is single-use.
        let again = Client::new(&srv, Kind::Native);
        let _ = again;
    }
    // Codes in the admin courier API (dev mode shows bodies) match what was mailed.
    let msgs: Vec<Value> = srv
        .client()
        .get(srv.admin_url("/admin/courier/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(msgs.len(), 6);
    assert!(msgs.iter().any(|m| m["template_type"] == "registration_code_valid"));
    assert!(msgs.iter().any(|m| m["template_type"] == "login_code_valid"));
}
both!(code_registration_then_code_login_for_every_client);

async fn code_resend_replaces_the_old_code_after_a_cooldown(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "resend@example.com"}}))
        .await;
    for kind in ALL {
        let mut c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let flow = send_step(
            &c,
            "login",
            &flow,
            json!({"method": "code", "identifier": "resend@example.com"}),
        )
        .await;
        let first = code_of(&sink.next_mail_to("resend@example.com").await);
        // Too soon.
        let res = c
            .submit(
                &flow,
                json!({"method": "code", "identifier": "resend@example.com", "resend": "code"}),
            )
            .await;
        let (_, flow) = c.flow_after("login", res).await;
        assert_eq!(message_ids(&flow), vec![4000001], "{flow}");
        assert!(flow["ui"]["messages"][0]["text"].as_str().unwrap().contains("wait"));
        srv.clock.advance(std::time::Duration::from_secs(31));
        let res = c
            .submit(
                &flow,
                json!({"method": "code", "identifier": "resend@example.com", "resend": "code"}),
            )
            .await;
        let (_, flow) = c.flow_after("login", res).await;
        assert_eq!(flow["state"], "sent_email");
        let second = code_of(&sink.next_mail_to("resend@example.com").await);
        if first != second {
            let res = c
                .submit(
                    &flow,
                    json!({"method": "code", "identifier": "resend@example.com", "code": first}),
                )
                .await;
            let (_, flow2) = c.flow_after("login", res).await;
            assert_eq!(message_ids(&flow2), vec![4010008], "the old code no longer works");
        }
        let res = c
            .submit(
                &flow,
                json!({"method": "code", "identifier": "resend@example.com", "code": second}),
            )
            .await;
        finish(&mut c, res).await;
        srv.clock.advance(std::time::Duration::from_secs(31));
    }
}
both!(code_resend_replaces_the_old_code_after_a_cooldown);

async fn code_attempts_are_bounded_per_flow_and_per_address(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "brute@example.com"}}))
        .await;
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("login", "").await;
    let flow = send_step(
        &c,
        "login",
        &flow,
        json!({"method": "code", "identifier": "brute@example.com"}),
    )
    .await;
    let right = code_of(&sink.next_mail_to("brute@example.com").await);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let res = c
            .submit(
                &flow,
                json!({"method": "code", "identifier": "brute@example.com", "code": wrong}),
            )
            .await;
        let body: Value = res.json().await.unwrap();
        assert_eq!(message_ids(&body), vec![4010008]);
    }
    // The sixth attempt is refused even with the right code.
    let res = c
        .submit(
            &flow,
            json!({"method": "code", "identifier": "brute@example.com", "code": right}),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(message_ids(&body), vec![4000001]);
    assert!(
        body["ui"]["messages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("submitted too often")
    );

    // New flows do not reset the budget: after 10 failures per address per hour the address
    // is blocked, whatever the flow.
    let flow = c.init("login", "").await;
    let flow = send_step(
        &c,
        "login",
        &flow,
        json!({"method": "code", "identifier": "brute@example.com"}),
    )
    .await;
    let right = code_of(&sink.next_mail_to("brute@example.com").await);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let res = c
            .submit(
                &flow,
                json!({"method": "code", "identifier": "brute@example.com", "code": wrong}),
            )
            .await;
        let _ = res.bytes().await;
    }
    let flow = c.init("login", "").await;
    let flow = send_step(
        &c,
        "login",
        &flow,
        json!({"method": "code", "identifier": "brute@example.com"}),
    )
    .await;
    let right = code_of(&sink.next_mail_to("brute@example.com").await);
    let res = c
        .submit(
            &flow,
            json!({"method": "code", "identifier": "brute@example.com", "code": right}),
        )
        .await;
    // A native client is told to slow down: 429 in Kratos' error envelope with Retry-After.
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 3600, "{retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["id"], "rate_limit_exceeded", "{body}");
    assert!(body["error"]["reason"].as_str().unwrap().contains("blocked"));
    assert!(body.get("session_token").is_none());
    // An hour later it works again.
    srv.clock.advance(std::time::Duration::from_secs(3601));
    let mut c2 = Client::new(&srv, Kind::Native);
    let flow = c2.init("login", "").await;
    let flow = send_step(
        &c2,
        "login",
        &flow,
        json!({"method": "code", "identifier": "brute@example.com"}),
    )
    .await;
    let right = code_of(&sink.next_mail_to("brute@example.com").await);
    let res = c2
        .submit(
            &flow,
            json!({"method": "code", "identifier": "brute@example.com", "code": right}),
        )
        .await;
    finish(&mut c2, res).await;
}
both!(code_attempts_are_bounded_per_flow_and_per_address);

/// Removes values that legitimately differ between two answers (ids, times, tokens).
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "id" | "expires_at" | "issued_at" | "created_at" | "updated_at" | "action" | "request_url"
                    )
                })
                .map(|(k, v)| (k.clone(), if k == "value" { json!("*") } else { shape(v) }))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        other => other.clone(),
    }
}

async fn code_login_for_an_unknown_address_answers_like_a_known_one(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "known@example.com"}}))
        .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let mut answers = vec![];
        for who in ["known@example.com", "nobody@example.com"] {
            let flow = c.init("login", "").await;
            let res = c.submit(&flow, json!({"method": "code", "identifier": who})).await;
            answers.push(c.flow_after("login", res).await);
        }
        assert_eq!(answers[0].0, answers[1].0);
        assert_eq!(
            shape(&answers[0].1),
            shape(&answers[1].1),
            "same shape for known and unknown addresses"
        );
        sink.next_mail_to("known@example.com").await;
    }
    let msgs: Vec<Value> = srv
        .client()
        .get(srv.admin_url("/admin/courier/messages?recipient=nobody@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(msgs.is_empty(), "nothing is sent to unknown addresses");
}
both!(code_login_for_an_unknown_address_answers_like_a_known_one);

async fn code_registration_with_a_taken_address_reveals_it_only_after_the_code(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "taken@example.com"}}))
        .await;
    for kind in ALL {
        let c = Client::new(&srv, kind);
        let flow = c.init("registration", "").await;
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": "taken@example.com"}))
            .await;
        let (_, flow) = c.flow_after("registration", res).await;
        let flow = send_step(
            &c,
            "registration",
            &flow,
            json!({"method": "code", "traits.email": "taken@example.com"}),
        )
        .await;
        let code = code_of(&sink.next_mail_to("taken@example.com").await);
        let res = c
            .submit(
                &flow,
                json!({"method": "code", "traits.email": "taken@example.com", "code": code}),
            )
            .await;
        let (_, flow) = c.flow_after("registration", res).await;
        assert_eq!(message_ids(&flow), vec![4000007], "{flow}");
        // Wrong registration code → 4040003; invalid email → message on traits.email.
        let flow = c.init("registration", "").await;
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": "not-an-email"}))
            .await;
        let (_, flow) = c.flow_after("registration", res).await;
        assert_eq!(node_message_ids(&flow, "traits.email"), vec![4000040]);
    }
}
both!(code_registration_with_a_taken_address_reveals_it_only_after_the_code);

async fn verification_by_code_and_by_email_link(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    for kind in ALL {
        let email = format!("verify-{kind:?}@example.com").to_lowercase();
        let created = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
            .await;
        assert_eq!(created["verifiable_addresses"][0]["verified"], false);
        let c = Client::new(&srv, kind);
        let flow = c.init("verification", "").await;
        let res = c.submit(&flow, json!({"method": "code", "email": email})).await;
        let (status, flow) = c.flow_after("verification", res).await;
        if kind != Kind::Browser {
            assert_eq!(status, 200, "verification answers 200 while it goes on");
        }
        assert_eq!(flow["state"], "sent_email");
        assert_eq!(message_ids(&flow), vec![1080003]);
        let mail = sink.next_mail_to(&email).await;
        let code = code_of(&mail);
        assert!(
            mail.text
                .as_deref()
                .unwrap_or("")
                .contains("/self-service/verification?flow="),
            "the mail links to the flow"
        );
        let res = c.submit(&flow, json!({"method": "code", "code": "999999"})).await;
        let (_, wrong) = c.flow_after("verification", res).await;
        if code != "999999" {
            assert_eq!(message_ids(&wrong), vec![4070006]);
        }
        let res = c.submit(&wrong, json!({"method": "code", "code": code})).await;
        let (_, done) = c.flow_after("verification", res).await;
        assert_eq!(done["state"], "passed_challenge");
        assert_eq!(message_ids(&done), vec![1080002]);
        let id = created["id"].as_str().unwrap();
        let now: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(now["verifiable_addresses"][0]["verified"], true);
        assert_eq!(now["verifiable_addresses"][0]["status"], "completed");
    }
    // The link in the email works in another browser (no cookies).
    let created = srv
        .create_identity(json!({"schema_id": "default", "traits": {"email": "link@example.com"}}))
        .await;
    let c = Client::new(&srv, Kind::Browser);
    let flow = c.init("verification", "").await;
    let _ = c
        .submit(&flow, json!({"method": "code", "email": "link@example.com"}))
        .await;
    let mail = sink.next_mail_to("link@example.com").await;
    let text = mail.text.unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/self-service/verification?flow="))
        .unwrap()
        .to_string();
    let res = srv.client().get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303, "{link}");
    let id = created["id"].as_str().unwrap();
    let now: Value = srv
        .client()
        .get(srv.admin_url(&format!("/admin/identities/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["verifiable_addresses"][0]["verified"], true);
}
both!(verification_by_code_and_by_email_link);

async fn password_registration_sends_a_verification_code(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    let mut c = Client::new(&srv, Kind::Native);
    crate::flows::register(&mut c, "newbie@example.com").await;
    let mail = sink.next_mail_to("newbie@example.com").await;
    assert!(mail.text.unwrap().contains("/self-service/verification?flow="));
}
both!(password_registration_sends_a_verification_code);

async fn recovery_by_emailed_code_for_every_client(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    for kind in ALL {
        let email = format!("lost-{kind:?}@example.com").to_lowercase();
        srv.create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
            .await;
        let c = Client::new(&srv, kind);
        let flow = c.init("recovery", "").await;
        let res = c.submit(&flow, json!({"method": "code", "email": email})).await;
        let (_, flow) = c.flow_after("recovery", res).await;
        assert_eq!(flow["state"], "sent_email");
        assert_eq!(message_ids(&flow), vec![1060003]);
        let code = code_of(&sink.next_mail_to(&email).await);
        let res = c.submit(&flow, json!({"method": "code", "code": code})).await;
        match kind {
            Kind::Browser => {
                assert_eq!(res.status(), 303);
                assert!(
                    res.headers()["location"]
                        .to_str()
                        .unwrap()
                        .contains("/ui/settings?flow=")
                );
            }
            _ => {
                let body: Value = res.json().await.unwrap();
                let actions: Vec<&str> = body["continue_with"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x["action"].as_str().unwrap())
                    .collect();
                assert!(actions.contains(&"show_settings_ui"), "{body}");
                if kind == Kind::Native {
                    assert!(actions.contains(&"set_ory_session_token"));
                }
            }
        }
    }
    // Unknown addresses get the same answer and no mail.
    let c = Client::new(&srv, Kind::Spa);
    let flow = c.init("recovery", "").await;
    let res = c
        .submit(&flow, json!({"method": "code", "email": "ghost@example.com"}))
        .await;
    assert_eq!(res.status(), 200);
    let msgs: Vec<Value> = srv
        .client()
        .get(srv.admin_url("/admin/courier/messages?recipient=ghost@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(msgs.is_empty());
}
both!(recovery_by_emailed_code_for_every_client);

async fn registrations_during_an_smtp_outage_are_each_mailed_exactly_once(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    sink.stop().await;
    let mut flows = vec![];
    for i in 0..4 {
        let c = Client::new(&srv, Kind::Native);
        let email = format!("outage{i}@example.com");
        let flow = c.init("registration", "").await;
        let res = c
            .submit(&flow, json!({"method": "profile", "traits.email": email}))
            .await;
        let (_, flow) = c.flow_after("registration", res).await;
        let flow = send_step(
            &c,
            "registration",
            &flow,
            json!({"method": "code", "traits.email": email}),
        )
        .await;
        flows.push((email, flow));
    }
    sink.restart().await;
    // Past the backoff (but within the codes' 10-minute lifespan), the worker retries.
    srv.clock.advance(std::time::Duration::from_secs(300));
    srv.app.store.wake_courier();
    let mails = sink.wait_for_count(4).await;
    for (email, _) in &flows {
        assert_eq!(mails.iter().filter(|m| m.rcpt_to.contains(email)).count(), 1, "{email}");
    }
    // And the codes work.
    for (email, flow) in &flows {
        let mut c = Client::new(&srv, Kind::Native);
        let mail = mails.iter().find(|m| m.rcpt_to.contains(email)).unwrap();
        let res = c
            .submit(
                flow,
                json!({"method": "code", "traits.email": email, "code": code_of(mail)}),
            )
            .await;
        finish(&mut c, res).await;
    }
    assert_eq!(sink.mails().len(), 4, "no duplicates");
}
both!(registrations_during_an_smtp_outage_are_each_mailed_exactly_once);

async fn bad_input_is_a_flow_message_and_sends_nothing(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "bad@example.com"}}))
        .await;
    for kind in [Kind::Spa, Kind::Native] {
        let c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let action = flow["ui"]["action"].as_str().unwrap().to_string();
        let csrf = crate::client::csrf_of(&flow);
        // Malformed JSON, an unsupported content type, an unknown method, a missing identifier.
        let cases: Vec<(&str, String)> = vec![
            ("application/json", "{not json".to_string()),
            ("text/plain", "method=code".to_string()),
            (
                "application/json",
                json!({"method": "carrier-pigeon", "csrf_token": csrf}).to_string(),
            ),
            (
                "application/json",
                json!({"method": "code", "csrf_token": csrf}).to_string(),
            ),
        ];
        for (ct, body) in cases {
            let res = c
                .send(
                    c.req(reqwest::Method::POST, &action)
                        .header("content-type", ct)
                        .body(body.clone()),
                )
                .await;
            assert_eq!(res.status(), 400, "{ct} {body}");
            let flow: Value = res.json().await.unwrap();
            let ids: Vec<u64> = message_ids(&flow)
                .into_iter()
                .chain(node_message_ids(&flow, "identifier"))
                .collect();
            assert!(
                ids.iter().any(|i| [4000001, 4010002, 4000002].contains(i)),
                "{ct} {body}: {flow}"
            );
            assert_eq!(flow["state"], "choose_method");
        }
    }
    let msgs: Vec<Value> = srv
        .client()
        .get(srv.admin_url("/admin/courier/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(msgs.is_empty(), "nothing was sent");
}
both!(bad_input_is_a_flow_message_and_sends_nothing);

async fn recovery_session_token_is_only_in_the_completing_response(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, config(&sink)).await;
    let email = "forgetful@example.com";
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
        .await;
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("recovery", "").await;
    let res = c.submit(&flow, json!({"method": "code", "email": email})).await;
    let (_, flow) = c.flow_after("recovery", res).await;
    let code = code_of(&sink.next_mail_to(email).await);
    let res = c.submit(&flow, json!({"method": "code", "code": code})).await;
    assert_eq!(res.status(), 200);
    let done: Value = res.json().await.unwrap();
    let steps = done["continue_with"].as_array().unwrap();
    let token = steps
        .iter()
        .find(|s| s["action"] == "set_ory_session_token")
        .and_then(|s| s["ory_session_token"].as_str())
        .unwrap_or_else(|| panic!("the completing response carries the token: {done}"))
        .to_string();
    assert!(token.starts_with("ory_st_"));
    let settings_id = steps
        .iter()
        .find(|s| s["action"] == "show_settings_ui")
        .and_then(|s| s["flow"]["id"].as_str())
        .unwrap()
        .to_string();
    // Anyone with the flow id can GET the flow: it must not hold the token.
    let again = c.fetch("recovery", flow["id"].as_str().unwrap()).await;
    assert_eq!(again["state"], "passed_challenge");
    assert!(!again.to_string().contains(&token), "{again}");
    let actions: Vec<&str> = again["continue_with"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(actions, vec!["show_settings_ui"]);
    // Nor does the settings flow it continues to (fetched with the new session).
    let mut owner = Client::new(&srv, Kind::Native);
    owner.token = Some(token.clone());
    let settings = owner.fetch("settings", &settings_id).await;
    assert!(!settings.to_string().contains(&token));
    assert_eq!(owner.whoami().await.status(), 200, "the token works");
    // Nor any row of the database.
    let hits = crate::hardening::tables_containing(&srv, &token).await;
    assert!(hits.is_empty(), "the live token is stored in {hits:?}");
    let secret_part = token.trim_start_matches("ory_st_");
    assert!(crate::hardening::tables_containing(&srv, secret_part).await.is_empty());
}
both!(recovery_session_token_is_only_in_the_completing_response);
