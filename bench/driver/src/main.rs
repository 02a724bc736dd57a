//! Load driver for `bench/code_login.sh`: passwordless code logins against one running Latch,
//! with the mail delivered over real SMTP to a sink inside this process.
//!
//! One login is the native Kratos code flow, step by step:
//! 1. `GET /self-service/login/api` creates a flow;
//! 2. `{"method":"code","identifier":…}` to `ui.action` answers 400 with the flow in state
//!    `sent_email` (that is success: the code was stored and its mail queued);
//! 3. Latch's courier sends the mail over SMTP to the sink below, which reads the 6-digit code
//!    from the text part and hands it to the login waiting for that recipient (a map of
//!    oneshot channels keyed by address; each worker owns its own users, so an address has at
//!    most one login in flight);
//! 4. `{"method":"code","identifier":…,"code":…}` answers 200 with a `session_token`.
//!
//! The driver creates the users through the admin API, logs every user in once (the first
//! code login of an identity also marks its address verified, which rewrites the identity),
//! then runs each concurrency level for a fixed time and prints one markdown table row per
//! phase on stdout. Progress and errors go to stderr. It exits with status 1 when any login
//! failed or any mail could not be routed. Only 127.0.0.1 is contacted; every phase is bounded
//! in time and in count.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: latch-bench-driver --public URL --admin URL --smtp-listen 127.0.0.1:PORT \
[--label NAME] [--users N] [--levels 16,64] [--duration SECS] [--max-logins N] [--timeout SECS] \
[--server-pid PID] [--first-pass true|false] [--sink-quickack true|false] [--count-statements N]";

/// A pause between two mails longer than this is an idle courier, not bookkeeping.
const IDLE_PAUSE: Duration = Duration::from_millis(50);

/// Largest mail the sink accepts.
const MAX_MAIL: usize = 4 << 20;

// ------------------------------------------------------------------------------------ options

#[derive(Debug, Clone)]
struct Options {
    public: String,
    admin: String,
    smtp_listen: SocketAddr,
    label: String,
    users: usize,
    levels: Vec<usize>,
    duration: Duration,
    max_logins: u64,
    timeout: Duration,
    server_pid: Option<u32>,
    first_pass: bool,
    /// Diagnostic: the sink acknowledges every segment at once (TCP_QUICKACK) instead of
    /// delaying ACKs as Linux (and so every ordinary SMTP server) does.
    sink_quickack: bool,
    /// Instead of the load phases: N logins one after another, reading the server's
    /// `latch_sql_statements_total` around every step (the server must run with
    /// `LATCH_COUNT_SQL_STATEMENTS=1` and a long `courier.worker.pull_wait`).
    count_statements: u64,
}

fn parse_options() -> Result<Options, Error> {
    let mut kv: HashMap<String, String> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(k) = args.next() {
        let Some(key) = k.strip_prefix("--") else {
            return Err(format!("unexpected argument {k:?}\n{USAGE}").into());
        };
        let v = args.next().ok_or_else(|| format!("{k} needs a value\n{USAGE}"))?;
        kv.insert(key.to_string(), v);
    }
    let take = |k: &str| kv.get(k).cloned();
    let need = |k: &str| take(k).ok_or_else(|| format!("--{k} is required\n{USAGE}"));
    let num = |k: &str, d: u64| -> Result<u64, Error> {
        match take(k) {
            Some(v) => v.parse().map_err(|_| format!("--{k} {v:?} is not a number").into()),
            None => Ok(d),
        }
    };
    let levels = take("levels")
        .unwrap_or_else(|| "16,64".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("--levels: {s:?} is not a number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if levels.is_empty() || levels.contains(&0) {
        return Err("--levels needs positive numbers".into());
    }
    let max_level = levels.iter().copied().max().unwrap_or(1);
    let smtp_listen: SocketAddr = need("smtp-listen")?.parse()?;
    if !smtp_listen.ip().is_loopback() {
        return Err("--smtp-listen must be a loopback address".into());
    }
    let o = Options {
        public: need("public")?.trim_end_matches('/').to_string(),
        admin: need("admin")?.trim_end_matches('/').to_string(),
        smtp_listen,
        label: take("label").unwrap_or_else(|| "latch".into()),
        users: usize::try_from(num("users", 1024)?)?.max(max_level),
        levels,
        duration: Duration::from_secs(num("duration", 10)?.clamp(1, 600)),
        max_logins: num("max-logins", 200_000)?.max(1),
        timeout: Duration::from_secs(num("timeout", 15)?.clamp(1, 120)),
        server_pid: take("server-pid").map(|p| p.parse()).transpose()?,
        first_pass: take("first-pass").is_none_or(|v| v != "false"),
        sink_quickack: take("sink-quickack").is_some_and(|v| v == "true" || v == "1"),
        count_statements: num("count-statements", 0)?,
    };
    for url in [&o.public, &o.admin] {
        let host = url
            .strip_prefix("http://")
            .and_then(|r| r.split(['/', ':']).next())
            .unwrap_or("");
        if host != "127.0.0.1" {
            return Err(format!("{url}: only http://127.0.0.1 is allowed").into());
        }
    }
    Ok(o)
}

// ------------------------------------------------------------------------------------ SMTP sink

/// A code read from a received mail, and when it arrived.
#[derive(Debug)]
struct Mail {
    code: String,
    at: Instant,
}

/// Routes received mail to the login waiting for its recipient.
#[derive(Debug, Default)]
struct Sink {
    waiting: Mutex<HashMap<String, oneshot::Sender<Mail>>>,
    received: AtomicU64,
    unrouted: AtomicU64,
    without_code: AtomicU64,
    connections: AtomicU64,
    quickack: bool,
    /// Courier pacing seen from the sink, in microseconds: how long each mail's SMTP
    /// transaction took (first command to the answer after DATA), and the pause between the
    /// answer to one DATA and the next command on the same connection.
    pacing: Mutex<Pacing>,
}

#[derive(Debug, Default)]
struct Pacing {
    transaction: Vec<u64>,
    between: Vec<u64>,
}

impl Sink {
    fn waiting(&self) -> MutexGuard<'_, HashMap<String, oneshot::Sender<Mail>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pacing(&self) -> MutexGuard<'_, Pacing> {
        self.pacing.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deliver(&self, recipients: &[String], data: &[u8]) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let at = Instant::now();
        let Some(code) = extract_code(&String::from_utf8_lossy(data)) else {
            self.without_code.fetch_add(1, Ordering::Relaxed);
            return;
        };
        for r in recipients {
            let waiter = self.waiting().remove(r);
            let sent = waiter.is_some_and(|tx| tx.send(Mail { code: code.clone(), at }).is_ok());
            if !sent {
                self.unrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn serve_smtp(listener: TcpListener, sink: Arc<Sink>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                sink.connections.fetch_add(1, Ordering::Relaxed);
                let sink = sink.clone();
                tokio::spawn(async move {
                    if let Err(e) = smtp_session(stream, &sink).await {
                        eprintln!("[driver] smtp session ended with an error: {e}");
                    }
                });
            }
            Err(e) => {
                eprintln!("[driver] smtp accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// `<a@b>` (with or without angle brackets and parameters) → `a@b`, lower-cased.
fn mailbox(arg: &str) -> String {
    let arg = arg.trim();
    let inner = match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => &arg[a + 1..b],
        _ => arg.split_whitespace().next().unwrap_or(""),
    };
    inner.trim().to_ascii_lowercase()
}

/// One SMTP conversation: greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
async fn smtp_session(stream: TcpStream, sink: &Sink) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 127.0.0.1 latch-bench sink ESMTP\r\n").await?;
    let mut line = Vec::with_capacity(512);
    let mut recipients: Vec<String> = Vec::new();
    let mut have_sender = false;
    let mut transaction_start: Option<Instant> = None;
    let mut answered_data: Option<Instant> = None;
    loop {
        line.clear();
        if read_line(&mut r, &mut line, sink.quickack).await? == 0 {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(t) = answered_data.take() {
            // Longer pauses are an idle courier (between phases), not its work per mail.
            let pause = now - t;
            if pause < IDLE_PAUSE {
                sink.pacing().between.push(us(pause));
            }
        }
        let started = *transaction_start.get_or_insert(now);
        let text = String::from_utf8_lossy(&line);
        let cmd = text.trim_end_matches(['\r', '\n']);
        let verb = cmd.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-127.0.0.1 hello\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 4194304\r\n",
            "HELO" => b"250 127.0.0.1 hello\r\n",
            "MAIL" => {
                recipients.clear();
                have_sender = true;
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if !have_sender => b"503 5.5.1 MAIL first\r\n",
            "RCPT" => {
                let arg = cmd.split_once(':').map(|(_, a)| a).unwrap_or("");
                recipients.push(mailbox(arg));
                b"250 2.1.5 OK\r\n"
            }
            "DATA" if recipients.is_empty() => b"503 5.5.1 RCPT first\r\n",
            "DATA" => {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let data = read_data(&mut r, sink.quickack).await?;
                sink.deliver(&recipients, &data);
                recipients.clear();
                have_sender = false;
                w.write_all(b"250 2.0.0 OK\r\n").await?;
                let done = Instant::now();
                sink.pacing().transaction.push(us(done - started));
                transaction_start = None;
                answered_data = Some(done);
                continue;
            }
            "RSET" => {
                recipients.clear();
                have_sender = false;
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                w.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        w.write_all(reply).await?;
    }
}

/// Reads one line (up to and including `\n`), refusing absurdly long ones.
async fn read_line(r: &mut BufReader<OwnedReadHalf>, line: &mut Vec<u8>, quickack: bool) -> std::io::Result<usize> {
    if quickack && r.buffer().is_empty() {
        // Not sticky: the kernel may fall back to delayed ACKs, so set it before every read.
        socket2::SockRef::from(r.get_ref().as_ref()).set_tcp_quickack(true)?;
    }
    let n = r.read_until(b'\n', line).await?;
    if line.len() > MAX_MAIL {
        return Err(std::io::Error::other("line too long"));
    }
    Ok(n)
}

/// The DATA section up to the lone `.` line, dot-unstuffed, with CRLF line ends.
async fn read_data(r: &mut BufReader<OwnedReadHalf>, quickack: bool) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(4096);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if read_line(r, &mut line, quickack).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        }
        let content = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(&line);
        if content == b"." {
            return Ok(data);
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if data.len() + content.len() > MAX_MAIL {
            return Err(std::io::Error::other("mail too large"));
        }
        data.extend_from_slice(content);
        data.extend_from_slice(b"\r\n");
    }
}

// ------------------------------------------------------------------------------------ MIME

/// Headers (names lower-cased, folded lines joined) and the body.
fn split_head(s: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = if s.starts_with("\r\n") || s.starts_with('\n') {
        ("", s.trim_start_matches(['\r', '\n']))
    } else if let Some(i) = s.find("\r\n\r\n") {
        (&s[..i], &s[i + 4..])
    } else if let Some(i) = s.find("\n\n") {
        (&s[..i], &s[i + 2..])
    } else {
        (s, "")
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A `key=value` parameter of a header value (`boundary` of a `Content-Type`).
fn parameter(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn decode_body(encoding: &str, body: &str) -> String {
    match encoding.trim().to_ascii_lowercase().as_str() {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        }
        "quoted-printable" => {
            let b = body.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'=' {
                    if b[i + 1..].starts_with(b"\r\n") {
                        i += 3;
                        continue;
                    }
                    if b[i + 1..].starts_with(b"\n") {
                        i += 2;
                        continue;
                    }
                    if let Some(hex) = b.get(i + 1..i + 3)
                        && let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(hex), 16)
                    {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                }
                out.push(b[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        _ => body.to_string(),
    }
}

/// The decoded `text/plain` part of a (possibly multipart) entity.
fn plain_text(headers: &[(String, String)], body: &str, depth: u8) -> Option<String> {
    let ctype = header(headers, "content-type").unwrap_or("text/plain");
    let lower = ctype.to_ascii_lowercase();
    if lower.starts_with("multipart/") {
        if depth > 4 {
            return None;
        }
        let delimiter = format!("--{}", parameter(ctype, "boundary")?);
        for part in body.split(delimiter.as_str()).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let (h, b) = split_head(part.strip_prefix("\r\n").unwrap_or(part));
            if let Some(text) = plain_text(&h, b, depth + 1) {
                return Some(text);
            }
        }
        None
    } else if lower.starts_with("text/plain") {
        Some(decode_body(
            header(headers, "content-transfer-encoding").unwrap_or("7bit"),
            body,
        ))
    } else {
        None
    }
}

/// The first run of exactly six ASCII digits.
fn six_digits(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return Some(text[start..i].to_string());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The one-time code in a mail's text (not its subject).
fn extract_code(raw: &str) -> Option<String> {
    let (headers, body) = split_head(raw);
    six_digits(&plain_text(&headers, body, 0)?)
}

// ------------------------------------------------------------------------------------ logins

/// Per-step durations of one completed login, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Sample {
    create: u64,
    send: u64,
    wait: u64,
    verify: u64,
    total: u64,
    /// From submitting the identifier until the mail reached the sink.
    mail: u64,
}

struct Ctx {
    client: reqwest::Client,
    opts: Options,
    sink: Arc<Sink>,
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn email(i: usize) -> String {
    format!("u{i}@bench.test")
}

fn snippet(body: &str) -> String {
    body.chars().take(300).collect()
}

/// One login; on failure the step and what went wrong.
async fn login(ctx: &Ctx, who: &str) -> Result<Sample, (String, String)> {
    login_counted(ctx, who, None).await
}

/// The server's SQL statement counter (`latch_sql_statements_total`).
async fn statements(ctx: &Ctx) -> Result<u64, (String, String)> {
    let fail = |what: String| ("statement count".to_string(), what);
    let body = ctx
        .client
        .get(format!("{}/admin/metrics/prometheus", ctx.opts.admin))
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?
        .text()
        .await
        .map_err(|e| fail(e.to_string()))?;
    body.lines()
        .find_map(|l| l.strip_prefix("latch_sql_statements_total "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| fail("no latch_sql_statements_total (start latch with LATCH_COUNT_SQL_STATEMENTS=1)".into()))
}

/// Reads the statement counter into `marks` when counting.
async fn mark(ctx: &Ctx, marks: &mut Option<&mut Vec<u64>>) -> Result<(), (String, String)> {
    if let Some(m) = marks {
        // Let the courier finish what this step started (counting runs are not timed).
        tokio::time::sleep(Duration::from_millis(30)).await;
        m.push(statements(ctx).await?);
    }
    Ok(())
}

/// One login; with `marks`, the statement counter is read before and after each step.
async fn login_counted(ctx: &Ctx, who: &str, mut marks: Option<&mut Vec<u64>>) -> Result<Sample, (String, String)> {
    let fail = |step: &str, what: String| (step.to_string(), what);
    mark(ctx, &mut marks).await?;
    let t0 = Instant::now();
    let res = ctx
        .client
        .get(format!("{}/self-service/login/api", ctx.opts.public))
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| fail("create flow", format!("request failed: {e}")))?;
    let status = res.status();
    let body = res.text().await.map_err(|e| fail("create flow", e.to_string()))?;
    if status != 200 {
        return Err(fail("create flow", format!("HTTP {status}: {}", snippet(&body))));
    }
    let flow: Value = serde_json::from_str(&body).map_err(|e| fail("create flow", e.to_string()))?;
    let action = flow
        .pointer("/ui/action")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("create flow", "no ui.action".into()))?
        .to_string();
    mark(ctx, &mut marks).await?;

    let t1 = Instant::now();
    let (tx, rx) = oneshot::channel();
    ctx.sink.waiting().insert(who.to_string(), tx);
    let sent = async {
        let res = ctx
            .client
            .post(&action)
            .header("Accept", "application/json")
            .json(&json!({"method": "code", "identifier": who}))
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = res.status();
        let body = res.text().await.map_err(|e| e.to_string())?;
        let state = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("state").and_then(Value::as_str).map(str::to_string));
        if status != 400 || state.as_deref() != Some("sent_email") {
            return Err(format!("HTTP {status}, state {state:?}: {}", snippet(&body)));
        }
        Ok(())
    }
    .await;
    if let Err(e) = sent {
        ctx.sink.waiting().remove(who);
        return Err(fail("send code", e));
    }
    // The send-code step ends with its answer; the courier's share is counted after the mail.
    if let Some(m) = &mut marks {
        m.push(statements(ctx).await?);
    }

    let t2 = Instant::now();
    let mail = match tokio::time::timeout(ctx.opts.timeout, rx).await {
        Ok(Ok(m)) => m,
        Ok(Err(_)) => return Err(fail("code by SMTP", "waiter replaced".into())),
        Err(_) => {
            ctx.sink.waiting().remove(who);
            return Err(fail(
                "code by SMTP",
                format!("no mail within {} s", ctx.opts.timeout.as_secs()),
            ));
        }
    };

    mark(ctx, &mut marks).await?;
    let t3 = Instant::now();
    let res = ctx
        .client
        .post(&action)
        .header("Accept", "application/json")
        .json(&json!({"method": "code", "identifier": who, "code": mail.code}))
        .send()
        .await
        .map_err(|e| fail("verify", format!("request failed: {e}")))?;
    let status = res.status();
    let body = res.text().await.map_err(|e| fail("verify", e.to_string()))?;
    let token_ok = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("session_token")
                .and_then(Value::as_str)
                .map(|t| t.starts_with("ory_st_"))
        })
        .unwrap_or(false);
    if status != 200 || !token_ok {
        return Err(fail("verify", format!("HTTP {status}: {}", snippet(&body))));
    }
    let t4 = Instant::now();
    mark(ctx, &mut marks).await?;
    Ok(Sample {
        create: us(t1 - t0),
        send: us(t2 - t1),
        wait: us(t3 - t2),
        verify: us(t4 - t3),
        total: us(t4 - t0),
        mail: us(mail.at.saturating_duration_since(t1)),
    })
}

// ------------------------------------------------------------------------------------ phases

/// CPU seconds (user + system) and memory of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
struct ProcStat {
    cpu_ticks: u64,
    rss_kib: u64,
    hwm_kib: u64,
}

fn proc_stat(pid: &str) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let cpu_ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcStat {
        cpu_ticks,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// Linux reports CPU times in clock ticks of 1/100 s (USER_HZ) on every common platform.
const TICKS_PER_SEC: f64 = 100.0;

struct Phase {
    name: String,
    concurrency: usize,
    samples: Vec<Sample>,
    errors: HashMap<String, u64>,
    elapsed: Duration,
    server_cpu: Option<f64>,
    driver_cpu: Option<f64>,
    server_after: Option<ProcStat>,
    pacing: Pacing,
}

async fn run_phase(ctx: &Arc<Ctx>, name: &str, concurrency: usize, once: bool) -> Phase {
    let users = ctx.opts.users;
    let deadline = (!once).then(|| Instant::now() + ctx.opts.duration);
    let limit = if once { users as u64 } else { ctx.opts.max_logins };
    let server_pid = ctx.opts.server_pid.map(|p| p.to_string());
    let server_before = server_pid.as_deref().and_then(proc_stat);
    let driver_before = proc_stat("self");
    let issued = Arc::new(AtomicU64::new(0));
    *ctx.sink.pacing() = Pacing::default();
    let started = Instant::now();
    let mut handles = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let ctx = ctx.clone();
        let issued = issued.clone();
        handles.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut errors: HashMap<String, u64> = HashMap::new();
            let mut i = w;
            loop {
                if i >= users {
                    if once {
                        break;
                    }
                    i = w;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) || issued.fetch_add(1, Ordering::Relaxed) >= limit {
                    break;
                }
                match login(&ctx, &email(i)).await {
                    Ok(s) => samples.push(s),
                    Err((step, what)) => {
                        let n = errors.entry(step.clone()).or_default();
                        if *n < 3 {
                            eprintln!("[driver] login of {} failed at {step}: {what}", email(i));
                        }
                        *n += 1;
                    }
                }
                i += concurrency;
            }
            (samples, errors)
        }));
    }
    let mut samples = Vec::new();
    let mut errors: HashMap<String, u64> = HashMap::new();
    for h in handles {
        match h.await {
            Ok((s, e)) => {
                samples.extend(s);
                for (k, v) in e {
                    *errors.entry(k).or_default() += v;
                }
            }
            Err(e) => *errors.entry(format!("worker panicked: {e}")).or_default() += 1,
        }
    }
    let elapsed = started.elapsed();
    let pacing = std::mem::take(&mut *ctx.sink.pacing());
    let server_after = server_pid.as_deref().and_then(proc_stat);
    let driver_after = proc_stat("self");
    let share = |a: Option<ProcStat>, b: Option<ProcStat>| {
        Some((b?.cpu_ticks.saturating_sub(a?.cpu_ticks)) as f64 / TICKS_PER_SEC / elapsed.as_secs_f64())
    };
    Phase {
        name: name.to_string(),
        concurrency,
        samples,
        errors,
        elapsed,
        server_cpu: share(server_before, server_after),
        driver_cpu: share(driver_before, driver_after),
        server_after,
        pacing,
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(v: u64) -> String {
    let m = v as f64 / 1000.0;
    if m < 10.0 { format!("{m:.2}") } else { format!("{m:.1}") }
}

fn p50_p99(samples: &[Sample], f: impl Fn(&Sample) -> u64) -> String {
    let mut v: Vec<u64> = samples.iter().map(f).collect();
    v.sort_unstable();
    format!("{} / {}", ms(percentile(&v, 0.50)), ms(percentile(&v, 0.99)))
}

fn mean(v: &[u64]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    ms(v.iter().sum::<u64>() / v.len() as u64)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn row(label: &str, p: &Phase) -> String {
    let n = p.samples.len();
    let rate = n as f64 / p.elapsed.as_secs_f64();
    let pct = |c: Option<f64>| c.map_or("n/a".to_string(), |c| format!("{:.0} %", c * 100.0));
    let mem = p.server_after.map_or("n/a".to_string(), |s| {
        format!("{} / {}", mib(s.rss_kib), mib(s.hwm_kib))
    });
    let mut errors: Vec<String> = p.errors.iter().map(|(k, v)| format!("{v} at {k}")).collect();
    errors.sort();
    let errors = if errors.is_empty() {
        "0".to_string()
    } else {
        errors.join(", ")
    };
    format!(
        "| {label} | {} | {} | {n} in {:.1} s | **{rate:.0}** | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {mem} | {errors} |",
        p.name,
        p.concurrency,
        p.elapsed.as_secs_f64(),
        p50_p99(&p.samples, |s| s.create),
        p50_p99(&p.samples, |s| s.send),
        p50_p99(&p.samples, |s| s.wait),
        p50_p99(&p.samples, |s| s.verify),
        p50_p99(&p.samples, |s| s.total),
        p50_p99(&p.samples, |s| s.mail),
        mean(&p.pacing.transaction),
        mean(&p.pacing.between),
        pct(p.server_cpu),
        pct(p.driver_cpu),
    )
}

// ------------------------------------------------------------------------------------ setup

async fn create_users(ctx: &Arc<Ctx>) -> Result<(), Error> {
    let next = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..16 {
        let ctx = ctx.clone();
        let next = next.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed))?;
                if i >= ctx.opts.users {
                    return Ok::<(), Error>(());
                }
                let res = ctx
                    .client
                    .post(format!("{}/admin/identities", ctx.opts.admin))
                    .json(&json!({"schema_id": "default", "traits": {"email": email(i)}}))
                    .send()
                    .await?;
                let status = res.status();
                if status != 201 && status != 409 {
                    let body = res.text().await.unwrap_or_default();
                    return Err(format!("creating {} answered {status}: {}", email(i), snippet(&body)).into());
                }
            }
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(())
}

async fn run(opts: Options) -> Result<bool, Error> {
    let listener = TcpListener::bind(opts.smtp_listen).await?;
    let sink = Arc::new(Sink {
        quickack: opts.sink_quickack,
        ..Sink::default()
    });
    tokio::spawn(serve_smtp(listener, sink.clone()));
    let client = reqwest::Client::builder()
        .timeout(opts.timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?;
    let ctx = Arc::new(Ctx {
        client,
        opts: opts.clone(),
        sink: sink.clone(),
    });

    let t = Instant::now();
    create_users(&ctx).await?;
    eprintln!(
        "[driver] {}: created {} identities in {:.1} s",
        opts.label,
        opts.users,
        t.elapsed().as_secs_f64()
    );

    let mut phases = Vec::new();
    let max_level = opts.levels.iter().copied().max().unwrap_or(1);
    if opts.first_pass {
        eprintln!(
            "[driver] {}: first login of every user ({} users, {max_level} at a time)",
            opts.label, opts.users
        );
        phases.push(run_phase(&ctx, "first login", max_level, true).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if opts.count_statements > 0 {
        return count_statements(&ctx).await;
    }
    for &c in &opts.levels {
        eprintln!(
            "[driver] {}: {c} concurrent users for {} s",
            opts.label,
            opts.duration.as_secs()
        );
        phases.push(run_phase(&ctx, "returning user", c, false).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let mut out = std::io::stdout().lock();
    let mut ok = true;
    for p in &phases {
        writeln!(out, "{}", row(&opts.label, p))?;
        eprintln!("[driver] {}", row(&opts.label, p));
        ok &= p.errors.is_empty() && !p.samples.is_empty();
    }
    let unrouted = sink.unrouted.load(Ordering::Relaxed);
    let without_code = sink.without_code.load(Ordering::Relaxed);
    eprintln!(
        "[driver] {}: sink received {} mails on {} SMTP connections; {unrouted} unrouted, {without_code} without a code",
        opts.label,
        sink.received.load(Ordering::Relaxed),
        sink.connections.load(Ordering::Relaxed),
    );
    ok &= unrouted == 0 && without_code == 0;
    Ok(ok)
}

/// Statements per step of a returning user's code login, averaged over N sequential logins;
/// prints one markdown row.
async fn count_statements(ctx: &Arc<Ctx>) -> Result<bool, Error> {
    let n = ctx.opts.count_statements;
    // [create, send, courier, verify]
    let mut sums = [0u64; 4];
    for i in 0..n {
        let who = email(usize::try_from(i).unwrap_or(0) % ctx.opts.users);
        let mut marks = Vec::new();
        login_counted(ctx, &who, Some(&mut marks))
            .await
            .map_err(|(step, what)| format!("counting login {i}: {step}: {what}"))?;
        // Marks: before, after create, after send's answer, after the mail (+courier), after verify.
        if marks.len() != 5 {
            return Err(format!("expected 5 counter readings, got {}", marks.len()).into());
        }
        // Each reading is itself one HTTP request that runs no SQL.
        for (k, sum) in sums.iter_mut().enumerate() {
            *sum += marks[k + 1].saturating_sub(marks[k]);
        }
    }
    let avg = |k: usize| sums[k] as f64 / n as f64;
    let total: f64 = (0..4).map(avg).sum();
    let requests = avg(0) + avg(1) + avg(3);
    let row = format!(
        "| {} | {n} | {:.1} | {:.1} | {:.1} | {:.1} | **{requests:.1}** (target ≤ 12) | {total:.1} |",
        ctx.opts.label,
        avg(0),
        avg(1),
        avg(2),
        avg(3)
    );
    writeln!(std::io::stdout().lock(), "{row}")?;
    eprintln!("[driver] statements: {row}");
    Ok(true)
}

fn main() -> ExitCode {
    let opts = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("[driver] {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("[driver] cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(opts)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("[driver] FAIL: some logins failed or some mail could not be routed (see above)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("[driver] FAIL: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncRead;

    use super::*;

    #[test]
    fn reads_the_code_from_the_plain_text_part() {
        let mail = "From: a@b\r\nSubject: 999999 is not it\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/alternative;\r\n boundary=\"XyZ\"\r\n\r\n\
            --XyZ\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
            Hello,=0D\r\nEnter this code to conti=\r\nnue:\r\n\r\n    123456\r\n\r\n--XyZ\r\n\
            Content-Type: text/html\r\n\r\n<p>654321</p>\r\n--XyZ--\r\n";
        assert_eq!(extract_code(mail).as_deref(), Some("123456"));
    }

    #[test]
    fn reads_base64_and_single_part_bodies() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("code: 042042 (valid 10 minutes)");
        let mail = format!("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n");
        assert_eq!(extract_code(&mail).as_deref(), Some("042042"));
        assert_eq!(
            extract_code("Subject: x\r\n\r\nyear 2026, code 777777\r\n").as_deref(),
            Some("777777")
        );
        assert_eq!(extract_code("Subject: x\r\n\r\nno code 12345 here 1234567\r\n"), None);
    }

    #[test]
    fn parses_mailboxes() {
        assert_eq!(mailbox(" <U1@Bench.Test> SIZE=100"), "u1@bench.test");
        assert_eq!(mailbox("u2@bench.test"), "u2@bench.test");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    async fn expect<R: AsyncRead + Unpin>(r: &mut BufReader<R>, prefix: &str) {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            assert!(line.starts_with(prefix), "{line:?} does not start with {prefix:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    }

    #[tokio::test]
    async fn the_sink_speaks_smtp_and_routes_by_recipient() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Arc::new(Sink::default());
        tokio::spawn(serve_smtp(listener, sink.clone()));
        let (tx, rx) = oneshot::channel();
        sink.waiting().insert("u7@bench.test".into(), tx);

        let stream = TcpStream::connect(addr).await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        expect(&mut r, "220").await;
        for (cmd, reply) in [
            ("EHLO test", "250"),
            ("MAIL FROM:<no-reply@x>", "250"),
            ("RCPT TO:<U7@bench.test>", "250"),
            ("DATA", "354"),
        ] {
            w.write_all(format!("{cmd}\r\n").as_bytes()).await.unwrap();
            expect(&mut r, reply).await;
        }
        w.write_all(b"Subject: hi\r\n\r\n..leading dot\r\nyour code: 314159\r\n.\r\n")
            .await
            .unwrap();
        expect(&mut r, "250").await;
        w.write_all(b"QUIT\r\n").await.unwrap();
        expect(&mut r, "221").await;
        let mail = rx.await.unwrap();
        assert_eq!(mail.code, "314159");
        assert_eq!(sink.unrouted.load(Ordering::Relaxed), 0);
    }
}
