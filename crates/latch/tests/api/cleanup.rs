//! Cleanup (`latch cleanup sql` and the janitor): expired rows of every kind go, live rows
//! and identities stay, `keep_last` and the mail body retention are honoured.

use std::time::Duration;

use latch::clock::Clock;
use latch::store::cleanup::{CleanupOptions, CleanupReport};
use serde_json::{Value, json};

use crate::both;
use crate::client::{Client, Kind};
use crate::code::code_of;
use crate::harness::{Backend, TestServer};
use crate::smtp_sink::SmtpSink;

const TABLES: [&str; 10] = [
    "identities",
    "identity_credentials",
    "selfservice_flows",
    "selfservice_codes",
    "selfservice_errors",
    "sessions",
    "session_devices",
    "courier_messages",
    "courier_message_dispatches",
    "latch_limits",
];

async fn count(srv: &TestServer, sql: &str) -> i64 {
    let (n,): (i64,) = latch::with_pool!(srv.app.store, p => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(p).await.unwrap()
    });
    n
}

async fn exec(srv: &TestServer, sql: &str) {
    latch::with_pool!(srv.app.store, p => {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(p).await.unwrap();
    });
}

async fn counts(srv: &TestServer) -> Vec<i64> {
    let mut out = Vec::new();
    for t in TABLES {
        out.push(count(srv, &format!("SELECT COUNT(*) FROM {t}")).await);
    }
    out
}

/// Sent mail that still carries its subject and body.
async fn mail_with_body(srv: &TestServer) -> i64 {
    count(
        srv,
        "SELECT COUNT(*) FROM courier_messages WHERE status = 'sent' AND body <> '' AND subject <> ''",
    )
    .await
}

fn now_ms(srv: &TestServer) -> i64 {
    i64::try_from(srv.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// One of everything: an unused flow, a code login with one wrong attempt (flow, used code,
/// its attempt counter, sent mail, session with its device), a stored browser error, a rate-limit counter.
async fn make_rows(srv: &TestServer, sink: &SmtpSink, email: &str) {
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": email}}))
        .await;
    let c = Client::new(srv, Kind::Native);
    let _unused = c.init("registration", "").await;
    let flow = c.init("login", "").await;
    let res = c.submit(&flow, json!({"method": "code", "identifier": email})).await;
    assert_eq!(res.status(), 400, "code sent: {}", res.text().await.unwrap());
    let code = code_of(&sink.next_mail_to(email).await);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = c
        .submit(&flow, json!({"method": "code", "identifier": email, "code": wrong}))
        .await;
    assert_eq!(res.status(), 400);
    let res = c
        .submit(&flow, json!({"method": "code", "identifier": email, "code": code}))
        .await;
    let body: Value = res.json().await.unwrap();
    assert!(body["session_token"].is_string(), "{body}");
    // A browser error is stored for the error UI.
    let res = srv
        .client()
        .get(srv.public_url("/self-service/login/browser?return_to=https://evil.test/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().contains("id="));
    // A rate-limit counter whose window ends an hour from now.
    let reset = now_ms(srv) + 3_600_000;
    exec(
        srv,
        &format!("INSERT INTO latch_limits (key, hits, delay_ms, reset_at) VALUES ('{email}', 1, 0, {reset})"),
    )
    .await;
    // Wait until the mail is recorded as sent.
    let mut attempts = srv.app.store.outbox.attempts.subscribe();
    tokio::time::timeout(crate::smtp_sink::WAIT, async {
        while count(
            srv,
            &format!("SELECT COUNT(*) FROM courier_messages WHERE recipient = '{email}' AND status = 'sent'"),
        )
        .await
            == 0
        {
            attempts.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
}

fn options(keep_last: Duration, retention: Duration) -> CleanupOptions {
    CleanupOptions {
        keep_last,
        batch_size: 2,
        sleep_between_batches: Duration::ZERO,
        mail_body_retention: retention,
    }
}

async fn cleanup_removes_expired_rows_of_every_kind_and_keeps_live_ones(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(
        b,
        // Per-IP and per-address counters are shared by both rounds; the per-flow code budget
        // (always on) leaves one counter per round.
        json!({
            "courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}},
            "latch": {"rate_limits": {"enabled": false}}
        }),
    )
    .await;
    // Two rounds of the same rows, three days apart (flows live 1 h, sessions 24 h).
    make_rows(&srv, &sink, "old@example.com").await;
    let old = counts(&srv).await;
    srv.clock.advance(Duration::from_secs(3 * 24 * 3600));
    make_rows(&srv, &sink, "new@example.com").await;
    let before = counts(&srv).await;
    for (i, t) in TABLES.iter().enumerate() {
        assert!(old[i] > 0, "the test made no {t} rows");
        assert_eq!(before[i], 2 * old[i], "{t}: both rounds made the same rows");
    }
    assert_eq!(mail_with_body(&srv).await, 2);

    // keep_last (and the retention) longer than the rows' age: nothing goes.
    let keep_all = options(Duration::from_secs(4 * 24 * 3600), Duration::from_secs(4 * 24 * 3600));
    let report = srv.app.store.cleanup(srv.clock.now(), &keep_all).await.unwrap();
    assert_eq!(report, CleanupReport::default(), "keep_last is honoured");
    assert_eq!(counts(&srv).await, before);

    let opts = options(Duration::from_secs(6 * 3600), Duration::from_secs(24 * 3600));
    let report = srv.app.store.cleanup(srv.clock.now(), &opts).await.unwrap();
    let after = counts(&srv).await;
    let idx = |t: &str| TABLES.iter().position(|x| *x == t).unwrap();
    let gone = |t: &str| u64::try_from(before[idx(t)] - after[idx(t)]).unwrap();
    assert_eq!(report.flows, gone("selfservice_flows"));
    assert_eq!(report.codes, gone("selfservice_codes"));
    assert_eq!(report.errors, gone("selfservice_errors"));
    assert_eq!(report.sessions, gone("sessions"));
    assert_eq!(report.session_devices, gone("session_devices"));
    assert_eq!(report.rate_limit_counters, gone("latch_limits"));
    assert_eq!(report.mail_bodies, 1, "the old sent mail is blanked");
    for t in [
        "selfservice_flows",
        "selfservice_codes",
        "selfservice_errors",
        "sessions",
        "session_devices",
        "latch_limits",
    ] {
        assert_eq!(after[idx(t)], old[idx(t)], "{t}: exactly the old rows are gone");
    }
    for t in [
        "identities",
        "identity_credentials",
        "courier_messages",
        "courier_message_dispatches",
    ] {
        assert_eq!(after[idx(t)], before[idx(t)], "{t} is never deleted");
    }
    // The old mail keeps its row (for the admin listing) without the code.
    assert_eq!(mail_with_body(&srv).await, 1);
    assert_eq!(
        count(&srv, "SELECT COUNT(*) FROM courier_messages WHERE recipient = 'old@example.com' AND body = '' AND subject = '' AND body_html IS NULL").await,
        1
    );
    // What is left is the live round: the new session still works.
    assert_eq!(
        count(&srv, "SELECT COUNT(*) FROM sessions WHERE active = true").await,
        1
    );
    // A second run (or another node) finds nothing more.
    let again = srv.app.store.cleanup(srv.clock.now(), &opts).await.unwrap();
    assert_eq!(again, CleanupReport::default());
    srv.stop().await;
}
both!(cleanup_removes_expired_rows_of_every_kind_and_keeps_live_ones);

/// `latch cleanup sql DSN` as operators run it (real time: the old rows are made with the
/// server's clock three days back).
async fn cleanup_cli_deletes_expired_rows_and_prints_counts(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(
        b,
        // Per-IP and per-address counters are shared by both rounds; the per-flow code budget
        // (always on) leaves one counter per round.
        json!({
            "courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}},
            "latch": {"rate_limits": {"enabled": false}}
        }),
    )
    .await;
    srv.clock.rewind(Duration::from_secs(3 * 24 * 3600));
    make_rows(&srv, &sink, "old@example.com").await;
    let old = counts(&srv).await;
    srv.clock.advance(Duration::from_secs(3 * 24 * 3600));
    make_rows(&srv, &sink, "new@example.com").await;
    let before = counts(&srv).await;

    let run = |args: Vec<String>| {
        let out = crate::cli::latch().args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.success(), stdout, stderr)
    };
    let base = |keep: &str| {
        vec![
            "cleanup".to_string(),
            "sql".into(),
            srv.dsn().to_string(),
            "--keep-last".into(),
            keep.into(),
            "--batch-size".into(),
            "2".into(),
            "--sleep-between-batches".into(),
            "0s".into(),
            "--mail-body-retention".into(),
            if keep == "6h" { "24h".into() } else { keep.into() },
        ]
    };
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| run(base("96h")));
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("Cleaned up 0 row(s)."), "{stdout}");
    assert_eq!(counts(&srv).await, before, "keep_last 96h keeps rows that are 72h old");
    assert_eq!(mail_with_body(&srv).await, 2);

    let (ok, stdout, stderr) = tokio::task::block_in_place(|| run(base("6h")));
    assert!(ok, "{stdout}{stderr}");
    let after = counts(&srv).await;
    let idx = |t: &str| TABLES.iter().position(|x| *x == t).unwrap();
    for (t, line) in [
        ("selfservice_flows", "flows"),
        ("selfservice_codes", "codes"),
        ("selfservice_errors", "errors"),
        ("sessions", "sessions"),
        ("session_devices", "session_devices"),
        ("latch_limits", "rate_limit_counters"),
    ] {
        assert_eq!(after[idx(t)], old[idx(t)], "{t}");
        let n = before[idx(t)] - after[idx(t)];
        assert!(
            stdout.contains(&format!("\n{line}: {n}\n")) || stdout.starts_with(&format!("{line}: {n}\n")),
            "{line}: {n} in {stdout}"
        );
    }
    assert!(stdout.contains("mail_bodies: 1\n"), "{stdout}");
    assert_eq!(after[idx("identities")], 2);

    // Bad flags are refused with a message.
    let mut bad = base("6h");
    bad[4] = "six hours".into();
    let (ok, _, stderr) = tokio::task::block_in_place(|| run(bad));
    assert!(!ok);
    assert!(stderr.contains("--keep-last"), "{stderr}");
    srv.stop().await;
}
both!(cleanup_cli_deletes_expired_rows_and_prints_counts);

/// The janitor inside `serve` (`latch.cleanup.enabled`) does the same work on its interval.
async fn cleanup_janitor_in_serve_removes_expired_rows(b: Backend) {
    let sink = SmtpSink::start().await;
    let srv = TestServer::with_config(
        b,
        json!({
            "courier": {"smtp": {"connection_uri": sink.uri(), "from_address": "no-reply@latch.test"}},
            "latch": {"rate_limits": {"enabled": false}, "cleanup": {"enabled": true, "interval": "1s", "batch_size": 3, "sleep_between_batches": "0s"}}
        }),
    )
    .await;
    make_rows(&srv, &sink, "old@example.com").await;
    let old = counts(&srv).await;
    srv.clock.advance(Duration::from_secs(3 * 24 * 3600));
    make_rows(&srv, &sink, "new@example.com").await;
    // Wait for a run that started after the new rows were made.
    let mut runs = srv.app.store.cleanups.runs.subscribe();
    let seen = *runs.borrow_and_update();
    tokio::time::timeout(crate::smtp_sink::WAIT, runs.wait_for(|n| *n >= seen + 2))
        .await
        .expect("the janitor runs every second")
        .unwrap();
    let after = counts(&srv).await;
    let idx = |t: &str| TABLES.iter().position(|x| *x == t).unwrap();
    for t in [
        "selfservice_flows",
        "selfservice_codes",
        "sessions",
        "session_devices",
        "selfservice_errors",
    ] {
        assert_eq!(after[idx(t)], old[idx(t)], "{t}: only the live rows are left");
    }
    assert_eq!(after[idx("identities")], 2);
    assert_eq!(mail_with_body(&srv).await, 1);
    srv.stop().await;
}
both!(cleanup_janitor_in_serve_removes_expired_rows);
