//! Load driver for `bench/passkey_login.sh`: complete passkey logins against one running Latch,
//! with a software authenticator (1Password's passkey-rs: ES256 keys, user presence and
//! verification always granted) inside this process.
//!
//! Setup: every user registers through the native registration flow (traits, then the
//! `passkey` method with a credential the authenticator creates; the server's registration
//! `session` hook signs them in). One login is then the native Kratos passkey flow:
//! 1. `GET /self-service/login/api` creates a flow carrying `passkey_challenge`;
//! 2. the authenticator answers the challenge for the configured origin (discoverable
//!    credential, no identifier);
//! 3. `{"method":"passkey","passkey_login":…}` to `ui.action` answers 200 with a
//!    `session_token`.
//!
//! Each concurrency level of `--levels` runs for `--duration` seconds; every worker owns its
//! users (one authenticator each) and logs them in round-robin. Prints one markdown row per
//! level on stdout and `--statements N` counts SQL statements per login instead (the server
//! must run with `LATCH_COUNT_SQL_STATEMENTS=1`). Exits 1 when any login failed. Only
//! 127.0.0.1 is contacted.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client as WebClient, DefaultClientData};
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use serde_json::{Value, json};
use tokio::sync::Mutex;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A line on stdout (the table); progress and errors go to stderr.
macro_rules! out {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

const USAGE: &str = "usage: latch-bench-passkey --public URL [--origin https://latch.test] [--label NAME] \
[--users N] [--levels 16,64] [--duration SECS] [--server-pid PID] [--statements N --admin URL] \
[--password P --identifiers FILE]";

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

/// One user: an address and an authenticator holding that user's one passkey.
struct User {
    email: String,
    key: Option<Passkey>,
}

impl User {
    async fn create(&mut self, origin: &url::Url, options: &Value) -> Result<Value, Error> {
        let opts: CredentialCreationOptions = serde_json::from_value(options.clone())?;
        let mut client = WebClient::new(Authenticator::new(
            Aaguid::new_empty(),
            self.key.take(),
            Approve,
            RustCryptoBackend,
        ));
        let created = client
            .register(origin, opts, DefaultClientData)
            .await
            .map_err(|e| format!("authenticator refused to register: {e:?}"))?;
        self.key = client.authenticator().store().clone();
        Ok(serde_json::to_value(&created)?)
    }

    async fn get(&mut self, origin: &url::Url, options: &Value) -> Result<Value, Error> {
        let opts: CredentialRequestOptions = serde_json::from_value(options.clone())?;
        let mut client = WebClient::new(Authenticator::new(
            Aaguid::new_empty(),
            self.key.take(),
            Approve,
            RustCryptoBackend,
        ));
        let got = client.authenticate(origin, opts, DefaultClientData).await;
        self.key = client.authenticator().store().clone();
        let got = got.map_err(|e| format!("authenticator refused to sign: {e:?}"))?;
        Ok(serde_json::to_value(&got)?)
    }
}

struct Opts {
    public: String,
    origin: url::Url,
    label: String,
    users: usize,
    levels: Vec<usize>,
    duration: Duration,
    server_pid: Option<String>,
    statements: u64,
    admin: Option<String>,
    /// `--password P --identifiers FILE`: password logins of existing identities instead
    /// (bench/scale.sh), no registration.
    password: Option<(String, Vec<String>)>,
}

fn parse() -> Result<Opts, Error> {
    let mut kv: HashMap<String, String> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(k) = args.next() {
        let key = k
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected {k:?}\n{USAGE}"))?;
        let v = args.next().ok_or_else(|| format!("{k} needs a value\n{USAGE}"))?;
        kv.insert(key.to_string(), v);
    }
    let num = |k: &str, d: u64| -> Result<u64, Error> {
        kv.get(k).map_or(Ok(d), |v| {
            v.parse().map_err(|_| format!("--{k} {v:?} is not a number").into())
        })
    };
    let levels = kv
        .get("levels")
        .map_or("16,64", String::as_str)
        .split(',')
        .map(|s| s.trim().parse::<usize>().map_err(|_| format!("--levels: {s:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    if levels.is_empty() || levels.contains(&0) {
        return Err("--levels needs positive numbers".into());
    }
    let max = levels.iter().copied().max().unwrap_or(1);
    let public = kv.get("public").ok_or(USAGE)?.trim_end_matches('/').to_string();
    let admin = kv.get("admin").map(|a| a.trim_end_matches('/').to_string());
    for u in std::iter::once(&public).chain(admin.as_ref()) {
        if !u.starts_with("http://127.0.0.1:") {
            return Err(format!("{u}: only http://127.0.0.1 is allowed").into());
        }
    }
    let password = match (kv.get("password"), kv.get("identifiers")) {
        (Some(p), Some(f)) => Some((
            p.clone(),
            std::fs::read_to_string(f)?
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>(),
        )),
        (None, None) => None,
        _ => return Err("--password and --identifiers go together".into()),
    };
    Ok(Opts {
        password,
        public,
        origin: url::Url::parse(kv.get("origin").map_or("https://latch.test", String::as_str))?,
        label: kv.get("label").cloned().unwrap_or_else(|| "latch".into()),
        users: usize::try_from(num("users", 256)?)?.max(max),
        levels,
        duration: Duration::from_secs(num("duration", 10)?.clamp(1, 600)),
        server_pid: kv.get("server-pid").cloned(),
        statements: num("statements", 0)?,
        admin,
    })
}

/// The JSON value of a UI node's `attributes.value` that itself holds JSON.
fn node_json(flow: &Value, name: &str) -> Result<Value, Error> {
    let raw = flow["ui"]["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["attributes"]["name"] == name))
        .and_then(|n| n["attributes"]["value"].as_str())
        .ok_or_else(|| format!("no {name} node in the flow"))?;
    Ok(serde_json::from_str(raw)?)
}

async fn json_of(res: reqwest::Response, want: u16, what: &str) -> Result<Value, Error> {
    let status = res.status().as_u16();
    let body = res.text().await?;
    if status != want {
        let cut: String = body.chars().take(300).collect();
        return Err(format!("{what}: {status} (wanted {want}): {cut}").into());
    }
    Ok(serde_json::from_str(&body)?)
}

/// Registers a user with a new passkey through the native registration flow.
async fn register(http: &reqwest::Client, o: &Opts, u: &mut User) -> Result<(), Error> {
    let flow = json_of(
        http.get(format!("{}/self-service/registration/api", o.public))
            .send()
            .await?,
        200,
        "create registration flow",
    )
    .await?;
    let action = flow["ui"]["action"].as_str().ok_or("no ui.action")?.to_string();
    let res = http
        .post(&action)
        .json(&json!({"method": "profile", "traits.email": u.email}))
        .send()
        .await?;
    let flow = json_of(res, 400, "registration traits").await?;
    let data = node_json(&flow, "passkey_create_data")?;
    let mut options = data["credentialOptions"].clone();
    options["publicKey"]["user"]["name"] = json!(u.email);
    options["publicKey"]["user"]["displayName"] = json!(u.email);
    let credential = u.create(&o.origin, &options).await?;
    let action = flow["ui"]["action"].as_str().ok_or("no ui.action")?.to_string();
    let res = http
        .post(&action)
        .json(&json!({"method": "passkey", "traits.email": u.email, "passkey_register": credential.to_string()}))
        .send()
        .await?;
    json_of(res, 200, "registration with passkey").await?;
    Ok(())
}

/// One complete passkey login; returns the time of each step in microseconds.
async fn login(http: &reqwest::Client, o: &Opts, u: &mut User) -> Result<[u64; 3], Error> {
    let t0 = Instant::now();
    let flow = json_of(
        http.get(format!("{}/self-service/login/api", o.public)).send().await?,
        200,
        "create login flow",
    )
    .await?;
    let t1 = Instant::now();
    let body = match &o.password {
        Some((password, _)) => json!({"method": "password", "identifier": u.email, "password": password}),
        None => {
            let challenge = node_json(&flow, "passkey_challenge")?;
            let credential = u.get(&o.origin, &challenge).await?;
            json!({"method": "passkey", "passkey_login": credential.to_string()})
        }
    };
    let t2 = Instant::now();
    let action = flow["ui"]["action"].as_str().ok_or("no ui.action")?;
    let res = http.post(action).json(&body).send().await?;
    let body = json_of(res, 200, "login").await?;
    if !body["session_token"].as_str().is_some_and(|t| t.starts_with("ory_st_")) {
        return Err("login answered without a session token".into());
    }
    let t3 = Instant::now();
    let us = |a: Instant, b: Instant| u64::try_from((b - a).as_micros()).unwrap_or(u64::MAX);
    Ok([us(t0, t1), us(t1, t2), us(t2, t3)])
}

fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn self_ticks() -> Option<u64> {
    cpu_ticks("self")
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[allow(clippy::cast_precision_loss)]
fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

async fn statements(http: &reqwest::Client, admin: &str) -> Result<u64, Error> {
    let text = http
        .get(format!("{admin}/admin/metrics/prometheus"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("latch_sql_statements_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = v as u64;
            n
        })
        .ok_or_else(|| "no latch_sql_statements_total (start latch with LATCH_COUNT_SQL_STATEMENTS=1)".into())
}

#[allow(clippy::cast_precision_loss)]
async fn run() -> Result<bool, Error> {
    let o = Arc::new(parse()?);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()?;
    // Distinct addresses per run (the database is normally fresh anyway).
    let stamp = std::process::id();
    let emails: Vec<String> = match &o.password {
        Some((_, ids)) => ids.clone(),
        None => (0..o.users).map(|i| format!("pk{stamp}-{i}@bench.test")).collect(),
    };
    if emails.len() < o.levels.iter().copied().max().unwrap_or(1) {
        return Err("fewer users than the largest level".into());
    }
    let users: Vec<Arc<Mutex<User>>> = emails
        .into_iter()
        .map(|email| Arc::new(Mutex::new(User { email, key: None })))
        .collect();
    let registered = if o.password.is_some() { 0 } else { users.len() };
    eprintln!("[passkey] registering {registered} users with a passkey each");
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for chunk in users[..registered].chunks(registered.div_ceil(16).max(1)) {
        let (http, o, chunk) = (http.clone(), o.clone(), chunk.to_vec());
        set.spawn(async move {
            for u in chunk {
                register(&http, &o, &mut *u.lock().await).await?;
            }
            Ok::<(), Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    eprintln!("[passkey] registered in {:.1} s", t.elapsed().as_secs_f64());

    if o.statements > 0 {
        let admin = o.admin.clone().ok_or("--statements needs --admin")?;
        let (mut create, mut total) = (0u64, 0u64);
        for i in 0..o.statements {
            let u = &users[usize::try_from(i)? % users.len()];
            let mut u = u.lock().await;
            let a = statements(&http, &admin).await?;
            let flow = json_of(
                http.get(format!("{}/self-service/login/api", o.public)).send().await?,
                200,
                "create login flow",
            )
            .await?;
            let b = statements(&http, &admin).await?;
            let challenge = node_json(&flow, "passkey_challenge")?;
            let credential = u.get(&o.origin, &challenge).await?;
            let action = flow["ui"]["action"].as_str().ok_or("no ui.action")?;
            let res = http
                .post(action)
                .json(&json!({"method": "passkey", "passkey_login": credential.to_string()}))
                .send()
                .await?;
            json_of(res, 200, "passkey login").await?;
            let c = statements(&http, &admin).await?;
            create += b - a;
            total += c - a;
        }
        let n = o.statements as f64;
        out!(
            "| {} | {:.1} | {:.1} | {:.1} |",
            o.label,
            create as f64 / n,
            (total - create) as f64 / n,
            total as f64 / n
        );
        return Ok(true);
    }

    out!(
        "| database | concurrency | logins | logins/s | create flow p50/p99 ms | authenticator (driver) p50 ms | submit p50/p99 ms | total p50/p99 ms | server CPU per login ms | driver CPU | errors |"
    );
    out!("|---|---:|---:|---:|---|---:|---|---|---:|---:|---:|");
    let mut ok = true;
    for &level in &o.levels {
        let deadline = Instant::now() + o.duration;
        let server0 = o.server_pid.as_deref().and_then(cpu_ticks);
        let self0 = self_ticks();
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for w in 0..level {
            let mine: Vec<Arc<Mutex<User>>> = users.iter().skip(w).step_by(level).cloned().collect();
            let (http, o) = (http.clone(), o.clone());
            set.spawn(async move {
                let mut samples = Vec::new();
                let mut errors: HashMap<String, u64> = HashMap::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let u = &mine[i % mine.len()];
                    i += 1;
                    match login(&http, &o, &mut *u.lock().await).await {
                        Ok(s) => samples.push(s),
                        Err(e) => *errors.entry(e.to_string().chars().take(160).collect()).or_default() += 1,
                    }
                }
                (samples, errors)
            });
        }
        let mut samples = Vec::new();
        let mut errors: HashMap<String, u64> = HashMap::new();
        while let Some(r) = set.join_next().await {
            let (s, e) = r?;
            samples.extend(s);
            for (k, v) in e {
                *errors.entry(k).or_default() += v;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let server1 = o.server_pid.as_deref().and_then(cpu_ticks);
        let self1 = self_ticks();
        let n = samples.len();
        let col = |k: usize| {
            let mut v: Vec<u64> = samples.iter().map(|s| s[k]).collect();
            v.sort_unstable();
            v
        };
        let (create, auth, submit) = (col(0), col(1), col(2));
        let mut total: Vec<u64> = samples.iter().map(|s| s.iter().sum()).collect();
        total.sort_unstable();
        let server_ms = match (server0, server1) {
            (Some(a), Some(b)) if n > 0 => format!("{:.2}", (b - a) as f64 * 10.0 / n as f64),
            _ => "–".into(),
        };
        let driver = match (self0, self1) {
            (Some(a), Some(b)) => format!("{:.0} %", (b - a) as f64 / elapsed),
            _ => "–".into(),
        };
        let nerr: u64 = errors.values().sum();
        out!(
            "| {} | {level} | {n} | **{:.0}** | {} / {} | {} | {} / {} | {} / {} | {server_ms} | {driver} | {nerr} |",
            o.label,
            n as f64 / elapsed,
            ms(percentile(&create, 0.5)),
            ms(percentile(&create, 0.99)),
            ms(percentile(&auth, 0.5)),
            ms(percentile(&submit, 0.5)),
            ms(percentile(&submit, 0.99)),
            ms(percentile(&total, 0.5)),
            ms(percentile(&total, 0.99)),
        );
        let _ = std::io::stdout().flush();
        for (e, k) in &errors {
            eprintln!("[passkey] {k} × {e}");
        }
        if nerr > 0 || n == 0 {
            ok = false;
        }
    }
    Ok(ok)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("[passkey] FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}
