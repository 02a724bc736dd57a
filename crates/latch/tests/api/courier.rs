//! The courier: outbox, SMTP delivery with retries, and the admin courier API
//! (Kratos operations listCourierMessages, getCourierMessage).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use latch::app::{App, BuildOptions};
use latch::courier::message::{NewMessage, TemplateType};
use latch::courier::templates::render;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both;
use crate::harness::{Backend, TestDb, TestServer, base_config, merge};
use crate::smtp_sink::{SmtpSink, WAIT};

fn smtp_config(sink: &SmtpSink, retries: u32) -> Value {
    json!({"courier": {
        "smtp": {
            "connection_uri": sink.uri(),
            "from_address": "no-reply@latch.test",
            "from_name": "Latch Test",
            "headers": {"X-Latch-Test": "courier"},
            "local_name": "node.latch.test"
        },
        "message_retries": retries
    }})
}

/// Renders and enqueues a login-code mail the way the code strategy will.
async fn enqueue(srv: &TestServer, to: &str, code: &str) -> Uuid {
    enqueue_at(srv, to, code, srv.app.clock.now()).await
}

/// [`enqueue`] with the message created (and due) at `at`.
async fn enqueue_at(srv: &TestServer, to: &str, code: &str, at: time::OffsetDateTime) -> Uuid {
    let data = json!({"code": code, "to": to, "expires_in_minutes": 10});
    let rendered = render(&srv.app.config, TemplateType::LoginCodeValid, &data).unwrap();
    let m = NewMessage::new(to, TemplateType::LoginCodeValid, rendered, data, at);
    srv.app.store.enqueue_message(&m).await.unwrap();
    m.id
}

async fn get_message(srv: &TestServer, id: Uuid) -> Value {
    let res = srv
        .client()
        .get(srv.admin_url(&format!("/admin/courier/messages/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Waits (on the worker's attempt counter, no sleeping) until the message has `status`.
async fn wait_status(srv: &TestServer, id: Uuid, status: &str) -> Value {
    let mut attempts = srv.app.store.outbox.attempts.subscribe();
    tokio::time::timeout(WAIT, async {
        loop {
            let m = get_message(srv, id).await;
            if m["status"] == status {
                return m;
            }
            attempts.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("message {id} never became {status}"))
}

/// Waits until this node's worker finished at least `n` attempts.
async fn wait_attempts(srv: &TestServer, n: u64) {
    let mut attempts = srv.app.store.outbox.attempts.subscribe();
    tokio::time::timeout(WAIT, attempts.wait_for(|a| *a >= n))
        .await
        .unwrap_or_else(|_| panic!("the worker never made {n} attempts"))
        .unwrap();
}

async fn courier_sends_multipart_mail_and_records_success(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(b, smtp_config(&sink, 5)).await;
    let id = enqueue(&srv, "jane@example.com", "482913").await;

    let mail = sink.next_mail_to("jane@example.com").await;
    assert_eq!(mail.mail_from, "no-reply@latch.test");
    assert_eq!(mail.header("From"), Some("\"Latch Test\" <no-reply@latch.test>"));
    assert_eq!(mail.header("To"), Some("jane@example.com"));
    assert_eq!(mail.header("Subject"), Some("482913 is your sign-in code"));
    assert_eq!(mail.header("X-Latch-Test"), Some("courier"));
    assert_eq!(mail.message_id(), format!("<{id}@latch.test>"));
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative"),
        "{:?}",
        mail.headers
    );
    let text = mail.text.as_deref().unwrap();
    assert!(text.contains("    482913\n"), "{text}");
    assert!(text.contains("expires in 10 minutes"), "{text}");
    let html = mail.html.as_deref().unwrap();
    assert!(html.contains(">482913</p>"), "{html}");

    let m = wait_status(&srv, id, "sent").await;
    assert_eq!(m["id"], id.to_string());
    assert_eq!(m["type"], "email");
    assert_eq!(m["channel"], "email");
    assert_eq!(m["recipient"], "jane@example.com");
    assert_eq!(m["template_type"], "login_code_valid");
    assert_eq!(m["subject"], "482913 is your sign-in code");
    assert_eq!(m["body"], text.replace("\r\n", "\n"));
    assert_eq!(m["send_count"], 1);
    let d = m["dispatches"].as_array().unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["status"], "success");
    assert_eq!(d[0]["message_id"], id.to_string());
    assert!(d[0].get("error").is_none());
    for key in ["created_at", "updated_at"] {
        time::OffsetDateTime::parse(m[key].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
    }
    let keys: HashSet<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: HashSet<&str> = [
        "id",
        "status",
        "type",
        "recipient",
        "body",
        "subject",
        "template_type",
        "channel",
        "send_count",
        "dispatches",
        "created_at",
        "updated_at",
    ]
    .into();
    assert_eq!(keys, expected, "Kratos' message JSON, nothing more (no template_data)");
    srv.stop().await;
}
both!(courier_sends_multipart_mail_and_records_success);

/// Waits until this node's worker found the server unreachable at least `n` times.
async fn wait_outages(srv: &TestServer, n: u64) {
    let mut outages = srv.app.store.outbox.outages.subscribe();
    tokio::time::timeout(WAIT, outages.wait_for(|a| *a >= n))
        .await
        .unwrap_or_else(|_| panic!("the worker never found the server unreachable {n} times"))
        .unwrap();
}

/// Every message is still owed: queued (or being claimed), no attempt charged, no dispatch.
async fn assert_uncharged(srv: &TestServer, ids: &[Uuid]) {
    for id in ids {
        let m = get_message(srv, *id).await;
        assert!(
            m["status"] == "queued" || m["status"] == "processing",
            "an unreachable server costs no message: {m}"
        );
        assert_eq!(m["send_count"], 0, "{m}");
        assert_eq!(m["dispatches"].as_array().map_or(0, Vec::len), 0, "{m}");
    }
}

async fn courier_smtp_outage_charges_no_attempt_and_delivers_each_message_once(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = smtp_config(&sink, 10);
    // Only wake-ups start a round, so the test decides when retries happen.
    merge(&mut cfg, &json!({"courier": {"worker": {"pull_wait": "1h"}}}));
    let srv = TestServer::with_config(b, cfg).await;
    sink.stop().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(enqueue(&srv, &format!("user{i}@example.com"), &format!("10000{i}")).await);
    }
    wait_outages(&srv, 1).await;
    assert_uncharged(&srv, &ids).await;
    assert_eq!(*srv.app.store.outbox.attempts.borrow(), 0, "no attempt was counted");
    assert!(sink.mails().is_empty());

    sink.restart().await;
    srv.clock.advance(Duration::from_secs(61));
    srv.app.store.wake_courier();
    let mails = sink.wait_for_count(5).await;
    for id in &ids {
        let m = wait_status(&srv, *id, "sent").await;
        assert_eq!(m["send_count"], 1, "the first charged attempt succeeded: {m}");
    }
    let mails_after = sink.mails();
    assert_eq!(mails_after.len(), 5, "no duplicates: {:?}", mails.len());
    let message_ids: HashSet<String> = mails_after.iter().map(|m| m.message_id()).collect();
    let expected: HashSet<String> = ids.iter().map(|id| format!("<{id}@latch.test>")).collect();
    assert_eq!(message_ids, expected, "every message exactly once");
    srv.stop().await;
}
both!(courier_smtp_outage_charges_no_attempt_and_delivers_each_message_once);

/// The hardening issue's scenario: with the DEFAULT courier settings (5 retries, 1 s pull
/// wait) the relay stays down for two minutes of (injected) time while mail is queued. No
/// message is charged or abandoned, and each is delivered exactly once afterwards.
async fn courier_relay_down_two_minutes_with_default_settings_delivers_every_message_once(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(
        b,
        json!({"courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}}}),
    )
    .await;
    sink.stop().await;
    // More than one round's worth (pull_count 10) and more than one concurrent chunk.
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(enqueue(&srv, &format!("outage{i}@example.com"), &format!("3{i:05}")).await);
    }
    wait_outages(&srv, 1).await;
    // Two minutes of outage in steps of 10 s; the worker keeps probing (1 s, 2 s, 4 s, …).
    for _ in 0..12 {
        srv.clock.advance(Duration::from_secs(10));
        srv.app.store.wake_courier();
    }
    // One step past the longest relay backoff: a probe surely runs while the relay is down.
    let before = *srv.app.store.outbox.outages.borrow();
    srv.clock.advance(Duration::from_secs(61));
    srv.app.store.wake_courier();
    wait_outages(&srv, before + 1).await;
    let probes = *srv.app.store.outbox.outages.borrow();
    assert!(
        probes >= 2,
        "the worker probed the relay during the outage ({probes} probes)"
    );
    assert_uncharged(&srv, &ids).await;

    sink.restart().await;
    srv.clock.advance(Duration::from_secs(61));
    srv.app.store.wake_courier();
    sink.wait_for_count(ids.len()).await;
    for id in &ids {
        let m = wait_status(&srv, *id, "sent").await;
        assert_eq!(m["send_count"], 1, "{m}");
    }
    let abandoned: Vec<Value> = srv
        .client()
        .get(srv.admin_url("/admin/courier/messages?status=abandoned"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(abandoned.is_empty(), "{abandoned:?}");
    let mails = sink.mails();
    assert_eq!(mails.len(), ids.len(), "each message exactly once");
    let message_ids: HashSet<String> = mails.iter().map(|m| m.message_id()).collect();
    let expected: HashSet<String> = ids.iter().map(|id| format!("<{id}@latch.test>")).collect();
    assert_eq!(message_ids, expected);
    srv.stop().await;
}
both!(courier_relay_down_two_minutes_with_default_settings_delivers_every_message_once);

async fn courier_abandons_a_message_after_message_retries_refusals(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = smtp_config(&sink, 3);
    merge(&mut cfg, &json!({"courier": {"worker": {"pull_wait": "1h"}}}));
    let srv = TestServer::with_config(b, cfg).await;
    // The sink answers 450 (mailbox busy) for this recipient: charged to the message.
    let id = enqueue(&srv, "busy@example.com", "777777").await;
    let other = enqueue(&srv, "fine@example.com", "777778").await;
    for attempt in 1..=3u64 {
        wait_attempts(&srv, attempt + 1).await;
        let m = get_message(&srv, id).await;
        assert_eq!(m["send_count"], attempt);
        if attempt < 3 {
            assert_eq!(m["status"], "queued");
            // Not retried before its backoff (1 min, then 5 min).
            srv.app.store.wake_courier();
            assert_eq!(get_message(&srv, id).await["send_count"], attempt);
            srv.clock
                .advance(Duration::from_secs(if attempt == 1 { 61 } else { 301 }));
            srv.app.store.wake_courier();
        }
    }
    let m = wait_status(&srv, id, "abandoned").await;
    assert_eq!(m["send_count"], 3);
    let d = m["dispatches"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    assert!(
        d.iter()
            .all(|d| d["status"] == "failed" && d["error"]["message"].as_str().unwrap().contains("450"))
    );
    // A refusal of one recipient does not hold up the others.
    assert_eq!(wait_status(&srv, other, "sent").await["send_count"], 1);
    // Abandoned messages are never attempted again.
    srv.clock.advance(Duration::from_secs(5 * 3600));
    srv.app.store.wake_courier();
    let again = get_message(&srv, id).await;
    assert_eq!(again["status"], "abandoned");
    srv.stop().await;
}
both!(courier_abandons_a_message_after_message_retries_refusals);

async fn courier_admin_retry_requeues_an_abandoned_message(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = smtp_config(&sink, 1);
    merge(&mut cfg, &json!({"courier": {"worker": {"pull_wait": "1h"}}}));
    let srv = TestServer::with_config(b, cfg).await;
    sink.reject_all(true);
    let id = enqueue(&srv, "late@example.com", "555123").await;
    let m = wait_status(&srv, id, "abandoned").await;
    assert_eq!(m["send_count"], 1);
    assert!(sink.mails().is_empty());

    let c = srv.client();
    let retry = |id: String| {
        c.post(srv.admin_url(&format!("/admin/courier/messages/{id}/retry")))
            .send()
    };
    sink.reject_all(false);
    let res = retry(id.to_string()).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["status"], "queued");
    assert_eq!(body["send_count"], 0);
    assert_eq!(
        body["dispatches"].as_array().unwrap().len(),
        1,
        "the old attempt stays visible"
    );

    let mail = sink.next_mail_to("late@example.com").await;
    assert_eq!(mail.message_id(), format!("<{id}@latch.test>"));
    let m = wait_status(&srv, id, "sent").await;
    assert_eq!(m["send_count"], 1);

    // Not abandoned (sent): 409 in Kratos' envelope; nothing changes.
    let res = retry(id.to_string()).await.unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(res.headers()["content-type"], "application/json");
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["code"], 409);
    assert_eq!(e["error"]["status"], "Conflict");
    assert!(e["error"]["reason"].as_str().unwrap().contains("abandoned"), "{e}");
    assert_eq!(get_message(&srv, id).await["status"], "sent");

    let res = retry(Uuid::new_v4().to_string()).await.unwrap();
    assert_eq!(res.status(), 404);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["code"], 404);

    let res = retry("not-a-uuid".into()).await.unwrap();
    assert_eq!(res.status(), 400);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["code"], 400);
    assert_eq!(sink.mails().len(), 1, "delivered exactly once");
    srv.stop().await;
}
both!(courier_admin_retry_requeues_an_abandoned_message);

async fn courier_admin_list_filters_paginates_and_rejects_bad_input(b: Backend) {
    // No SMTP in dev mode: mail stays queued in the outbox.
    let srv = TestServer::start(b).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(enqueue(&srv, &format!("p{}@example.com", i % 2), &format!("20000{i}")).await);
        srv.clock.advance(Duration::from_millis(5));
    }
    let c = srv.client();
    let list = |q: &str| c.get(srv.admin_url(&format!("/admin/courier/messages{q}"))).send();

    let all: Vec<Value> = list("").await.unwrap().json().await.unwrap();
    assert_eq!(all.len(), 5);
    let newest_first: Vec<String> = ids.iter().rev().map(Uuid::to_string).collect();
    let got: Vec<String> = all.iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, newest_first, "newest first, as Kratos");
    assert!(
        all.iter()
            .all(|m| m["status"] == "queued" && m.get("dispatches").is_none())
    );
    assert!(
        all[0]["body"].as_str().unwrap().contains("200004"),
        "dev mode shows bodies"
    );

    let queued: Vec<Value> = list("?status=queued").await.unwrap().json().await.unwrap();
    assert_eq!(queued.len(), 5);
    let sent: Vec<Value> = list("?status=sent").await.unwrap().json().await.unwrap();
    assert!(sent.is_empty());
    let p1: Vec<Value> = list("?recipient=p1%40example.com").await.unwrap().json().await.unwrap();
    assert_eq!(p1.len(), 2);
    assert!(p1.iter().all(|m| m["recipient"] == "p1@example.com"));

    // Keyset pagination through the Link header, filters kept.
    let mut seen = Vec::new();
    let mut url = srv.admin_url("/admin/courier/messages?page_size=2&status=queued");
    loop {
        let res = c.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let link = res.headers()["link"].to_str().unwrap().to_string();
        assert!(link.contains("rel=\"first\""), "{link}");
        let page: Vec<Value> = res.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|m| m["id"].as_str().unwrap().to_string()));
        let next = link
            .split(',')
            .find(|l| l.contains("rel=\"next\""))
            .map(|l| l.trim().trim_start_matches('<').split('>').next().unwrap().to_string());
        match next {
            Some(n) => {
                assert!(n.contains("status=queued"), "{n}");
                url = n;
            }
            None => break,
        }
    }
    assert_eq!(seen, newest_first);

    for (q, what) in [
        ("?status=delivered", "Message status is not valid"),
        ("?page_size=0", "page_size"),
        ("?page_token=garbage", "page_token"),
    ] {
        let res = list(q).await.unwrap();
        assert_eq!(res.status(), 400, "{q}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"]["reason"].as_str().unwrap().contains(what), "{q}: {body}");
    }

    let res = c
        .get(srv.admin_url("/admin/courier/messages/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = c
        .get(srv.admin_url(&format!("/admin/courier/messages/{}", Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 404);
    assert_eq!(body["error"]["message"], "Unable to locate the resource");
    // Without the /admin prefix too, as Kratos.
    let res = c
        .get(srv.admin_url(&format!("/courier/messages/{}", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let one: Value = res.json().await.unwrap();
    assert_eq!(one["status"], "queued");
    assert_eq!(one["send_count"], 0);
    assert!(one.get("dispatches").is_none(), "no attempts yet: omitted, as Kratos");
    assert_eq!(*srv.app.store.outbox.attempts.borrow(), 0, "no SMTP: nothing attempted");
    srv.stop().await;
}
both!(courier_admin_list_filters_paginates_and_rejects_bad_input);

async fn courier_two_nodes_on_one_database_deliver_each_message_once(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = smtp_config(&sink, 10);
    merge(
        &mut cfg,
        &json!({"courier": {"worker": {"pull_count": 3, "pull_wait": "50ms"}}}),
    );
    let a = TestServer::with_config(b, cfg.clone()).await;
    let b_node = TestServer::sharing_db(&a, cfg).await;
    let n = 30;
    let mut ids = Vec::new();
    for i in 0..n {
        let node = if i % 2 == 0 { &a } else { &b_node };
        ids.push(enqueue(node, &format!("many{i}@example.com"), &format!("3{i:05}")).await);
    }
    sink.wait_for_count(n).await;
    let total = || *a.app.store.outbox.attempts.borrow() + *b_node.app.store.outbox.attempts.borrow();
    let mut ra = a.app.store.outbox.attempts.subscribe();
    let mut rb = b_node.app.store.outbox.attempts.subscribe();
    tokio::time::timeout(WAIT, async {
        while total() < n as u64 {
            tokio::select! {
                r = ra.changed() => r.unwrap(),
                r = rb.changed() => r.unwrap(),
            }
        }
    })
    .await
    .expect("every message attempted");
    assert_eq!(total(), n as u64, "one attempt per message across both nodes");
    let mails = sink.mails();
    assert_eq!(mails.len(), n, "no duplicates");
    let message_ids: HashSet<String> = mails.iter().map(|m| m.message_id()).collect();
    assert_eq!(message_ids.len(), n);
    for id in &ids {
        let m = get_message(&a, *id).await;
        assert_eq!(m["status"], "sent");
        assert_eq!(m["send_count"], 1);
        assert_eq!(m["dispatches"].as_array().unwrap().len(), 1);
    }
    b_node.stop().await;
    a.stop().await;
}
both!(courier_two_nodes_on_one_database_deliver_each_message_once);

async fn courier_without_smtp_outside_dev_refuses_to_start(b: Backend) {
    let db = TestDb::new(b).await;
    let mut cfg = base_config(&db.dsn);
    merge(
        &mut cfg,
        &json!({"serve": {"public": {"base_url": "https://auth.latch.test/"}}}),
    );
    let mut loaded = latch::config::load_values(vec![cfg.clone()], &Default::default(), false).unwrap();
    loaded.config.serve.public.port = 0;
    loaded.config.serve.admin.port = 0;
    let opts = || BuildOptions {
        clock: Some(Arc::new(latch::clock::SystemClock)),
        migrate: true,
    };
    let err = App::build(loaded.config, opts()).await.unwrap_err().to_string();
    assert!(err.contains("courier.smtp.connection_uri"), "{err}");
    assert!(err.contains("--dev"), "{err}");

    // With the code method (the only mail sender here) off, no SMTP is needed.
    merge(
        &mut cfg,
        &json!({"selfservice": {"methods": {"code": {"enabled": false}}}}),
    );
    let mut loaded = latch::config::load_values(vec![cfg], &Default::default(), false).unwrap();
    loaded.config.serve.public.port = 0;
    loaded.config.serve.admin.port = 0;
    App::build(loaded.config, opts()).await.unwrap();
}
both!(courier_without_smtp_outside_dev_refuses_to_start);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courier_watch_cli_delivers_the_outbox_and_stops_on_sigterm() {
    let sink = SmtpSink::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut cfg = base_config(&db.dsn);
    merge(&mut cfg, &smtp_config(&sink, 5));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latch.json");
    std::fs::write(&file, cfg.to_string()).unwrap();

    let loaded = latch::config::load_values(vec![cfg], &Default::default(), false).unwrap();
    let store = latch::app::open_store(&loaded.config).await.unwrap();
    store.migrate(&latch::clock::SystemClock).await.unwrap();
    let data = json!({"code": "654321", "to": "cli@example.com", "expires_in_minutes": 10});
    let rendered = render(&loaded.config, TemplateType::RegistrationCodeValid, &data).unwrap();
    let now = latch::clock::Clock::now(&latch::clock::SystemClock);
    let m = NewMessage::new(
        "cli@example.com",
        TemplateType::RegistrationCodeValid,
        rendered,
        data,
        now,
    );
    store.enqueue_message(&m).await.unwrap();
    store.close().await;

    let child = crate::cli::latch()
        .args(["courier", "watch", "-c"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mail = sink.next_mail_to("cli@example.com").await;
    assert_eq!(mail.message_id(), format!("<{}@latch.test>", m.id));
    assert!(mail.header("Subject").unwrap().contains("654321"));
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "graceful shutdown exits 0: {stderr}");
    assert!(stderr.contains("courier worker started"), "{stderr}");
    assert!(stderr.contains("message sent"), "{stderr}");
    assert!(
        !stderr.contains("654321"),
        "codes, subjects and bodies are never logged: {stderr}"
    );
    assert!(
        !stderr.contains("cli@example.com"),
        "addresses are redacted in logs: {stderr}"
    );
}

/// PostgreSQL only (a SQLite file has one node): mail queued on one node wakes the worker of
/// another node through `NOTIFY latch_courier` (migration 0009), long before its poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(latch_pg), ignore = "set LATCH_TEST_POSTGRES_URL to run the PostgreSQL suite")]
async fn courier_mail_queued_on_one_node_wakes_the_worker_of_another_postgres() {
    let sink = SmtpSink::start().await;
    // Node A has no SMTP server (dev mode keeps its mail queued) and never sends.
    let a = TestServer::with_config(Backend::Postgres, json!({"courier": {"worker": {"pull_wait": "1h"}}})).await;
    assert!(a.app.mailer.is_none());
    let mut cfg = smtp_config(&sink, 5);
    merge(&mut cfg, &json!({"courier": {"worker": {"pull_wait": "1h"}}}));
    let b_node = TestServer::sharing_db(&a, cfg).await;
    // The first mail may be found by B's first round; once it is sent, B sleeps for an hour.
    enqueue(&a, "first@example.com", "100001").await;
    sink.next_mail_to("first@example.com").await;
    wait_attempts(&b_node, 1).await;
    let id = enqueue(&a, "second@example.com", "100002").await;
    let mail = sink.next_mail_to("second@example.com").await;
    assert_eq!(mail.message_id(), format!("<{id}@latch.test>"));
    wait_attempts(&b_node, 2).await;
    assert_eq!(get_message(&a, id).await["status"], "sent");
    assert_eq!(sink.mails().len(), 2);
    b_node.stop().await;
    a.stop().await;
}

/// Holds the database so that the courier's record of sent mail waits, as it does behind busy
/// request handlers. SQLite: the process's writer queue (claims are single statements outside
/// it); PostgreSQL: an exclusive lock on the dispatch table (reads and claims go on).
enum RecordBlock {
    Sqlite(tokio::sync::OwnedMutexGuard<()>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

async fn block_records(srv: &TestServer) -> RecordBlock {
    match &srv.app.store.pool {
        latch::store::Pool::Sqlite(_) => RecordBlock::Sqlite(srv.app.store.sqlite_writer.clone().lock_owned().await),
        latch::store::Pool::Postgres(p) => {
            let mut tx = p.begin().await.unwrap();
            sqlx::query("LOCK TABLE courier_message_dispatches IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .unwrap();
            RecordBlock::Postgres(tx)
        }
    }
}

async fn release_records(block: RecordBlock) {
    match block {
        RecordBlock::Sqlite(guard) => drop(guard),
        RecordBlock::Postgres(tx) => tx.rollback().await.unwrap(),
    }
}

/// Enqueues `n` mails due one hour from now (so no round takes them yet).
async fn enqueue_burst(srv: &TestServer, prefix: &str, n: usize) -> Vec<Uuid> {
    let due = srv.app.clock.now() + Duration::from_secs(3600);
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(enqueue_at(srv, &format!("{prefix}{i}@example.com"), &format!("4{i:05}"), due).await);
    }
    ids
}

/// Every message sent once and recorded once, and the sink got each exactly once.
async fn assert_each_sent_once(srv: &TestServer, sink: &SmtpSink, ids: &[Uuid]) {
    for id in ids {
        let m = wait_status(srv, *id, "sent").await;
        assert_eq!(m["send_count"], 1, "{m}");
        assert_eq!(m["dispatches"].as_array().unwrap().len(), 1, "{m}");
    }
    let mails = sink.mails();
    assert_eq!(mails.len(), ids.len(), "no duplicates");
    let message_ids: HashSet<String> = mails.iter().map(|m| m.message_id()).collect();
    let expected: HashSet<String> = ids.iter().map(|id| format!("<{id}@latch.test>")).collect();
    assert_eq!(message_ids, expected, "every message exactly once");
}

/// The record of sent mail does not hold up the next rounds: while the database keeps the
/// first record waiting, the worker claims and sends the whole burst (nothing is recorded
/// yet, every message stays claimed); once the database is free, every message is recorded
/// exactly once, in fewer writes than rounds, and nothing is sent twice.
async fn courier_sends_the_next_rounds_while_the_record_of_sent_mail_waits(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = smtp_config(&sink, 5);
    merge(
        &mut cfg,
        &json!({"courier": {"worker": {"pull_count": 4, "pull_wait": "1h"}}}),
    );
    let srv = TestServer::with_config(b, cfg).await;
    let n = 24;
    let ids = enqueue_burst(&srv, "burst", n).await;
    let block = block_records(&srv).await;
    srv.clock.advance(Duration::from_secs(3600));
    srv.app.store.wake_courier();

    let mails = sink.wait_for_count(n).await;
    assert_eq!(mails.len(), n);
    let rounds = *srv.app.store.outbox.rounds.borrow();
    assert_eq!(rounds, 6, "{n} mails in rounds of pull_count 4");
    assert_eq!(
        *srv.app.store.outbox.records.borrow(),
        0,
        "the first record still waits"
    );
    for id in &ids {
        let m = get_message(&srv, *id).await;
        assert_eq!(m["status"], "processing", "sent, claimed until recorded: {m}");
        assert_eq!(m["send_count"], 0, "{m}");
    }

    release_records(block).await;
    assert_each_sent_once(&srv, &sink, &ids).await;
    wait_attempts(&srv, n as u64).await;
    let records = *srv.app.store.outbox.records.borrow();
    assert!(
        (1..=3).contains(&records),
        "the rounds sent while a record waited share the next write: {records} writes for {rounds} rounds"
    );
    assert_eq!(*srv.app.store.outbox.attempts.borrow(), n as u64, "one attempt each");
    // Nothing is claimed again once the claims would have expired.
    srv.clock.advance(Duration::from_secs(120));
    srv.app.store.wake_courier();
    enqueue(&srv, "after@example.com", "499999").await;
    sink.next_mail_to("after@example.com").await;
    assert_eq!(sink.mails().len(), n + 1);
    srv.stop().await;
}
both!(courier_sends_the_next_rounds_while_the_record_of_sent_mail_waits);

/// A node that stops while the record of sent mail waits records it before the worker ends:
/// the node after it (same database, claims long expired) sends nothing again.
async fn courier_records_sent_mail_before_it_stops(b: Backend) {
    let sink = SmtpSink::start().await;
    let mut cfg = smtp_config(&sink, 5);
    merge(
        &mut cfg,
        &json!({"courier": {"worker": {"pull_count": 4, "pull_wait": "1h"}}}),
    );
    let srv = TestServer::with_config(b, cfg.clone()).await;
    let n = 10;
    let ids = enqueue_burst(&srv, "stopping", n).await;
    let block = block_records(&srv).await;
    srv.clock.advance(Duration::from_secs(3600));
    srv.app.store.wake_courier();
    sink.wait_for_count(n).await;

    let admin = srv.admin_url("/health/alive");
    let client = srv.client();
    let restart = tokio::spawn(srv.restart(cfg));
    // The node is shutting down once its admin port is closed; then the database frees up.
    tokio::time::timeout(WAIT, async {
        while client.get(&admin).send().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the node stops serving");
    release_records(block).await;
    let srv = restart.await.unwrap();

    // The new node's clock is past every claim of the old one.
    srv.clock.advance(Duration::from_secs(2 * 3600));
    srv.app.store.wake_courier();
    enqueue(&srv, "after@example.com", "499998").await;
    sink.next_mail_to("after@example.com").await;
    for id in &ids {
        let m = get_message(&srv, *id).await;
        assert_eq!(m["status"], "sent", "{m}");
        assert_eq!(m["send_count"], 1, "{m}");
        assert_eq!(m["dispatches"].as_array().unwrap().len(), 1, "{m}");
    }
    assert_eq!(sink.mails().len(), n + 1, "nothing sent twice");
    srv.stop().await;
}
both!(courier_records_sent_mail_before_it_stops);
