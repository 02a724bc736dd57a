//! An SMTP server for tests: plain SMTP on 127.0.0.1 (greeting, EHLO/HELO, MAIL FROM, RCPT TO,
//! DATA with dot-unstuffing, RSET, NOOP, QUIT) that keeps every mail it accepts. Tests await
//! "the next mail to X" instead of sleeping; the sink can stop (closing every connection) and
//! start again on the same port.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// How long a test waits for mail before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// One accepted mail, decoded enough for assertions.
#[derive(Debug, Clone)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: String,
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Mail {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn message_id(&self) -> String {
        self.header("Message-ID").unwrap_or_default().to_string()
    }
}

#[derive(Default)]
struct Shared {
    /// Refuse every recipient with `550` (a permanent, per-message rejection).
    reject: std::sync::atomic::AtomicBool,
    mails: Mutex<Vec<Mail>>,
    taken: Mutex<Vec<usize>>,
    arrived: Notify,
}

/// The sink; `stop`/`start` keep the port.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    running: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<tokio::sync::Mutex<JoinSet<()>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = SmtpSink {
            port,
            shared: Arc::default(),
            running: Mutex::new(None),
            conns: Arc::default(),
        };
        sink.serve(listener);
        sink
    }

    /// `smtp://127.0.0.1:<port>/?disable_starttls=true`.
    pub fn uri(&self) -> String {
        format!("smtp://127.0.0.1:{}/?disable_starttls=true", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let conns = self.conns.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let mut set = conns.lock().await;
                set.spawn(session(stream, shared.clone()));
                while set.try_join_next().is_some() {}
            }
        });
        *self.running.lock().unwrap() = Some(task);
    }

    /// Stops listening and closes every open connection.
    pub async fn stop(&self) {
        let task = self.running.lock().unwrap().take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
        self.conns.lock().await.shutdown().await;
    }

    /// Listens again on the same port.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }

    /// From now on refuse (`550`) or accept every recipient. Recipients whose local part
    /// starts with `busy` are always refused with `450` (a temporary, per-message refusal).
    pub fn reject_all(&self, reject: bool) {
        self.shared.reject.store(reject, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every mail accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// Waits until `pick` finds something in the mails received so far.
    async fn wait<T>(&self, what: &str, mut pick: impl FnMut(&[Mail], &mut Vec<usize>) -> Option<T>) -> T {
        let shared = self.shared.clone();
        let found = tokio::time::timeout(WAIT, async move {
            loop {
                let arrived = shared.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                {
                    let mails = shared.mails.lock().unwrap();
                    let mut taken = shared.taken.lock().unwrap();
                    if let Some(t) = pick(&mails, &mut taken) {
                        return t;
                    }
                }
                arrived.await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// The next mail to `rcpt` that no earlier call returned.
    pub async fn next_mail_to(&self, rcpt: &str) -> Mail {
        let rcpt = rcpt.to_string();
        self.wait(&format!("a mail to {rcpt}"), |mails, taken| {
            let i = (0..mails.len()).find(|i| !taken.contains(i) && mails[*i].rcpt_to.contains(&rcpt))?;
            taken.push(i);
            Some(mails[i].clone())
        })
        .await
    }

    /// Waits until at least `n` mails arrived; returns all of them.
    pub async fn wait_for_count(&self, n: usize) -> Vec<Mail> {
        self.wait(&format!("{n} mails"), |mails, _| {
            (mails.len() >= n).then(|| mails.to_vec())
        })
        .await
    }
}

async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if !reply(&mut write, "220 sink.test ESMTP test sink\r\n").await {
        return;
    }
    let (mut from, mut rcpt) = (String::new(), Vec::<String>::new());
    loop {
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cmd = line.trim_end_matches(['\r', '\n']);
        let upper = cmd.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") {
            "250-sink.test greets you\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".to_string()
        } else if upper.starts_with("HELO") {
            "250 sink.test\r\n".to_string()
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&cmd[10..]);
            rcpt.clear();
            "250 OK\r\n".to_string()
        } else if upper.starts_with("RCPT TO:") {
            let to = address(&cmd[8..]);
            if to.starts_with("busy") {
                "450 4.2.1 Mailbox busy, try later\r\n".to_string()
            } else if shared.reject.load(std::sync::atomic::Ordering::SeqCst) {
                "550 5.1.1 No such user\r\n".to_string()
            } else {
                rcpt.push(to);
                "250 OK\r\n".to_string()
            }
        } else if upper == "DATA" {
            if !reply(&mut write, "354 End data with <CR><LF>.<CR><LF>\r\n").await {
                return;
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                match lines.read_line(&mut l).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            let mail = parse(std::mem::take(&mut from), std::mem::take(&mut rcpt), data);
            shared.mails.lock().unwrap().push(mail);
            shared.arrived.notify_waiters();
            "250 OK queued\r\n".to_string()
        } else if upper == "RSET" {
            from.clear();
            rcpt.clear();
            "250 OK\r\n".to_string()
        } else if upper == "NOOP" {
            "250 OK\r\n".to_string()
        } else if upper == "QUIT" {
            let _ = reply(&mut write, "221 Bye\r\n").await;
            return;
        } else {
            "502 Command not implemented\r\n".to_string()
        };
        if !reply(&mut write, &answer).await {
            return;
        }
    }
}

async fn reply(w: &mut tokio::net::tcp::OwnedWriteHalf, s: &str) -> bool {
    w.write_all(s.as_bytes()).await.is_ok()
}

fn address(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or("");
    s.trim_start_matches('<').trim_end_matches('>').to_string()
}

/// Header block (unfolded) and body of a MIME entity.
fn split_entity(raw: &str) -> (Vec<(String, String)>, String) {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn decode(headers: &[(String, String)], body: &str) -> String {
    match get(headers, "Content-Transfer-Encoding").map(|e| e.to_ascii_lowercase()) {
        Some(e) if e == "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).unwrap()
        }
        Some(e) if e == "quoted-printable" => quoted_printable(body),
        _ => body.to_string(),
    }
}

fn quoted_printable(s: &str) -> String {
    let bytes = s.replace("=\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn boundary(content_type: &str) -> Option<String> {
    let b = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?;
    Some(b.trim_matches('"').to_string())
}

fn parse(mail_from: String, rcpt_to: Vec<String>, raw: String) -> Mail {
    let (headers, body) = split_entity(&raw);
    let (mut text, mut html) = (None, None);
    let ct = get(&headers, "Content-Type").unwrap_or("text/plain").to_string();
    if let Some(b) = boundary(&ct) {
        for part in body.split(&format!("--{b}")).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let (h, content) = split_entity(part.trim_start_matches('\n'));
            let decoded = decode(&h, content.strip_suffix('\n').unwrap_or(&content));
            let pct = get(&h, "Content-Type").unwrap_or("").to_ascii_lowercase();
            if pct.starts_with("text/html") {
                html = Some(decoded);
            } else if pct.starts_with("text/plain") {
                text = Some(decoded);
            }
        }
    } else {
        text = Some(decode(&headers, &body));
    }
    Mail {
        mail_from,
        rcpt_to,
        raw,
        headers,
        text,
        html,
    }
}
