//! `latch import identities`, `latch list identities`, `latch get identity`,
//! `latch delete identity`: Kratos' admin CLI (`cmd/identities`) over the admin HTTP API.
//! Unlike Kratos, the import sends the identities in chunks through `PATCH /admin/identities`
//! (one request per 1,000 identities, or per 200 with plaintext passwords) instead of one
//! request per identity, shows progress, and ends with a summary of what failed and why.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Kratos' `BatchPatchIdentitiesLimit`.
const MAX_CHUNK: usize = 1000;
/// Kratos' `BatchPatchIdentitiesWithPasswordLimit`.
const MAX_PLAINTEXT_PER_CHUNK: usize = 200;
/// Attempts per chunk when the server is unreachable or busy (503/429).
const ATTEMPTS: u32 = 5;

/// How the CLI reaches the admin API and prints results (Kratos: `cliclient` + `cmdx` flags).
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The URL of the admin API. Alternatively set the KRATOS_ADMIN_URL environment variable.
    #[arg(short = 'e', long = "endpoint", env = "KRATOS_ADMIN_URL")]
    endpoint: Option<String>,
    /// Latch: take the admin URL from these configuration files (`serve.admin`) when no
    /// endpoint is given.
    #[arg(short = 'c', long = "config")]
    config: Vec<PathBuf>,
    /// Output format: table, json, json-pretty, yaml or jsonpointer=<pointer>.
    #[arg(long = "format", default_value = "table")]
    format: String,
    /// Be quiet with output printing (only identity ids).
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
}

/// `latch import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import identities from JSON files (each holds one identity or an array) or from
    /// standard input (`-` or no file), through the batch endpoint.
    Identities {
        /// Files to import; `-` (or none) reads standard input.
        files: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
        /// Validate every identity (schema, traits, credentials, hash formats and costs,
        /// identifier conflicts) without creating any.
        #[arg(long = "dry-run")]
        dry_run: bool,
        /// Identities per request (at most 1,000; chunks close earlier at 200 plaintext
        /// passwords, Kratos' limit).
        #[arg(long = "batch-size", default_value_t = MAX_CHUNK)]
        batch_size: usize,
    },
}

/// `latch list …`.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// List identities, one page at a time.
    Identities {
        /// Legacy page arguments (`<page> <per-page>`), accepted as Kratos does.
        legacy: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
        /// Maximum number of identities to return.
        #[arg(long = "page-size", default_value_t = 100)]
        page_size: u32,
        /// The page token from a previous response.
        #[arg(long = "page-token", default_value = "")]
        page_token: String,
        /// Accepted for Kratos compatibility (Latch reads are always strongly consistent).
        #[arg(long = "consistency", default_value = "eventual")]
        consistency: String,
    },
}

/// `latch get …`.
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// Get one or more identities by their ID(s).
    Identity {
        /// Identity ids (or external ids with `--external-id`).
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
        /// Include credentials of this type (repeatable).
        #[arg(short = 'i', long = "include-credentials")]
        include_credentials: Vec<String>,
        /// Treat the ids as external ids.
        #[arg(long = "external-id")]
        external_id: bool,
    },
}

/// `latch delete …`.
#[derive(Debug, Subcommand)]
pub enum DeleteCommand {
    /// Delete one or more identities by their ID(s).
    Identity {
        /// Identity ids.
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn out(s: &str) {
    let _ = writeln!(std::io::stdout(), "{s}");
}

fn err(s: &str) {
    let _ = writeln!(std::io::stderr(), "{s}");
}

fn fail(msg: &str) -> ExitCode {
    err(&format!("error: {msg}"));
    ExitCode::FAILURE
}

/// The admin base URL: `--endpoint` / `KRATOS_ADMIN_URL`, else the configuration files.
fn endpoint(args: &ClientArgs) -> Result<String, String> {
    if let Some(e) = args.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
        let u = url::Url::parse(e).map_err(|x| format!("could not parse the endpoint URL \"{e}\": {x}"))?;
        return Ok(u.as_str().trim_end_matches('/').to_string());
    }
    if !args.config.is_empty() {
        let env = std::env::vars().collect();
        let loaded = latch::config::load(&args.config, &env, false).map_err(|e| e.to_string())?;
        return Ok(loaded
            .config
            .admin_base_url()
            .as_str()
            .trim_end_matches('/')
            .to_string());
    }
    Err(
        "you have to set the remote endpoint (--endpoint, KRATOS_ADMIN_URL or -c <config>), try --help for details"
            .into(),
    )
}

/// The admin URL and an HTTP client for it, as every command needs them.
fn connect(args: &ClientArgs) -> Result<(String, reqwest::Client), String> {
    Ok((endpoint(args)?, http()?))
}

fn http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| e.to_string())
}

/// `message (reason)` of a Kratos error object (or of its `{"error": …}` envelope).
fn reason(body: &Value) -> String {
    let e = body.get("error").unwrap_or(body);
    let message = e.get("message").and_then(Value::as_str).unwrap_or("");
    let mut s = match e.get("code").and_then(Value::as_u64) {
        Some(code) => format!("{code} {message}"),
        None => message.to_string(),
    };
    if let Some(r) = e.get("reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        s.push_str(&format!(": {r}"));
    }
    if s.trim().is_empty() { body.to_string() } else { s }
}

// ---- output (Kratos' cmdx formats) ----

const NONE: &str = "<none>";
const HEADER: [&str; 6] = [
    "ID",
    "EXTERNAL ID",
    "VERIFIED ADDRESSES",
    "RECOVERY ADDRESSES",
    "SCHEMA ID",
    "SCHEMA URL",
];

fn columns(i: &Value) -> Vec<String> {
    let s = |k: &str| {
        i.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .unwrap_or(NONE)
            .to_string()
    };
    let addrs = |k: &str| {
        let v: Vec<&str> = i
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.get("value")?.as_str()).collect())
            .unwrap_or_default();
        if v.is_empty() { NONE.to_string() } else { v.join(", ") }
    };
    vec![
        s("id"),
        s("external_id"),
        addrs("verifiable_addresses"),
        addrs("recovery_addresses"),
        s("schema_id"),
        s("schema_url"),
    ]
}

fn aligned(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; n];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints structured output in a machine format; `Ok(false)` for `table`.
fn print_machine(format: &str, value: &Value) -> Result<bool, String> {
    let text = match format {
        "table" | "default" | "" => return Ok(false),
        "json" => serde_json::to_string(value).map_err(|e| e.to_string())?,
        "json-pretty" => serde_json::to_string_pretty(value).map_err(|e| e.to_string())?,
        "yaml" => yaml_serde::to_string(value).map_err(|e| e.to_string())?,
        f if f.starts_with("jsonpointer") => {
            let ptr = f
                .strip_prefix("jsonpointer=")
                .ok_or("--format jsonpointer needs a pointer, e.g. --format jsonpointer=/0/id")?;
            let got = value.pointer(ptr).cloned().unwrap_or(Value::Null);
            serde_json::to_string_pretty(&got).map_err(|e| e.to_string())?
        }
        f if f.starts_with("jsonpath") => {
            return Err(
                "--format jsonpath is not supported by Latch; use jsonpointer=<pointer> or json with jq".into(),
            );
        }
        f => {
            return Err(format!(
                "unknown format {f:?}: use table, json, json-pretty, yaml or jsonpointer=<pointer>"
            ));
        }
    };
    out(&text);
    Ok(true)
}

/// One identity: vertical table (header, value) or the JSON object.
fn print_identity(args: &ClientArgs, ident: &Value) -> Result<(), String> {
    if args.quiet {
        out(ident.get("id").and_then(Value::as_str).unwrap_or(""));
        return Ok(());
    }
    if !print_machine(&args.format, ident)? {
        let rows: Vec<Vec<String>> = HEADER
            .iter()
            .zip(columns(ident))
            .map(|(h, c)| vec![h.to_string(), c])
            .collect();
        out(aligned(&rows).trim_end_matches('\n'));
    }
    Ok(())
}

/// Several identities: a table, or JSON (`json` is the array or, for `list`, the page object).
fn print_identities(args: &ClientArgs, idents: &[Value], page_token: Option<&str>) -> Result<(), String> {
    if args.quiet {
        for i in idents {
            out(i.get("id").and_then(Value::as_str).unwrap_or(""));
        }
        return Ok(());
    }
    let value = match page_token {
        Some(t) => json!({"identities": idents, "next_page_token": t}),
        None => Value::Array(idents.to_vec()),
    };
    if !print_machine(&args.format, &value)? {
        let mut rows = vec![HEADER.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
        rows.extend(idents.iter().map(columns));
        out(aligned(&rows).trim_end_matches('\n'));
        if let Some(t) = page_token {
            out("");
            out(&format!("NEXT PAGE TOKEN  {t}"));
        }
    }
    Ok(())
}

async fn send_json(
    rb: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Value), String> {
    let res = rb.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.map_err(|e| e.to_string())?;
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, headers, body))
}

// ---- list / get / delete ----

/// `latch list identities`.
pub async fn list(
    client: ClientArgs,
    legacy: Vec<String>,
    page_size: u32,
    page_token: String,
    consistency: String,
) -> ExitCode {
    let _ = consistency;
    if !legacy.is_empty() && legacy.len() != 2 {
        return fail(&format!("expected zero or two args, got {}: {legacy:?}", legacy.len()));
    }
    let (base, http) = match connect(&client) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let mut url = format!("{base}/admin/identities?page_size={page_size}");
    if !page_token.is_empty() {
        url.push_str(&format!("&page_token={page_token}"));
    }
    let (status, headers, body) = match send_json(http.get(&url)).await {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    if !status.is_success() {
        return fail(&reason(&body));
    }
    let next = headers
        .get(reqwest::header::LINK)
        .and_then(|v| v.to_str().ok())
        .and_then(next_token)
        .unwrap_or_default();
    let idents = body.as_array().cloned().unwrap_or_default();
    match print_identities(&client, &idents, Some(&next)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// The `page_token` of the `rel="next"` link.
fn next_token(link: &str) -> Option<String> {
    link.split(',')
        .find(|l| l.contains("rel=\"next\""))
        .and_then(|l| l.split("page_token=").nth(1))
        .map(|t| t.split(['>', '&']).next().unwrap_or("").to_string())
}

/// `latch get identity`.
pub async fn get(client: ClientArgs, ids: Vec<String>, include: Vec<String>, external: bool) -> ExitCode {
    let (base, http) = match connect(&client) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let mut found = Vec::new();
    let mut failed = 0;
    for id in &ids {
        let path = if external {
            format!("{base}/admin/identities/by/external/{}", urlencode(id))
        } else {
            format!("{base}/admin/identities/{}", urlencode(id))
        };
        let query: Vec<String> = include
            .iter()
            .map(|c| format!("include_credential={}", urlencode(c)))
            .collect();
        let url = if query.is_empty() {
            path
        } else {
            format!("{path}?{}", query.join("&"))
        };
        match send_json(http.get(&url)).await {
            Ok((s, _, body)) if s.is_success() => found.push(body),
            Ok((_, _, body)) => {
                failed += 1;
                err(&format!("{id}: {}", reason(&body)));
            }
            Err(e) => {
                failed += 1;
                err(&format!("{id}: {e}"));
            }
        }
    }
    let printed = match found.len() {
        0 => Ok(()),
        1 => print_identity(&client, &found[0]),
        _ => print_identities(&client, &found, None),
    };
    if let Err(e) = printed {
        return fail(&e);
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `latch delete identity`.
pub async fn delete(client: ClientArgs, ids: Vec<String>) -> ExitCode {
    let (base, http) = match connect(&client) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let mut deleted = Vec::new();
    let mut failed = 0;
    for id in &ids {
        match send_json(http.delete(format!("{base}/admin/identities/{}", urlencode(id)))).await {
            Ok((s, _, _)) if s.is_success() => deleted.push(id.clone()),
            Ok((_, _, body)) => {
                failed += 1;
                err(&format!("{id}: {}", reason(&body)));
            }
            Err(e) => {
                failed += 1;
                err(&format!("{id}: {e}"));
            }
        }
    }
    let value = if deleted.len() == 1 {
        json!(deleted[0])
    } else {
        json!(deleted)
    };
    match print_machine(if client.quiet { "table" } else { &client.format }, &value) {
        Ok(true) => {}
        Ok(false) => {
            for d in &deleted {
                out(d);
            }
        }
        Err(e) => return fail(&e),
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---- import ----

/// One identity read from an input, with where it came from (`file.json[3]`).
struct Record {
    source: String,
    body: Value,
}

fn read_inputs(files: &[String]) -> (Vec<Record>, Vec<(String, String)>) {
    let mut records = Vec::new();
    let mut unreadable = Vec::new();
    let inputs: Vec<String> = if files.is_empty() {
        vec!["-".into()]
    } else {
        files.to_vec()
    };
    for f in inputs {
        let (name, text) = if f == "-" {
            let mut s = String::new();
            match std::io::stdin().read_to_string(&mut s) {
                Ok(_) => ("STD_IN".to_string(), s),
                Err(e) => {
                    unreadable.push(("STD_IN".into(), e.to_string()));
                    continue;
                }
            }
        } else {
            match std::fs::read_to_string(&f) {
                Ok(s) => (f.clone(), s),
                Err(e) => {
                    unreadable.push((f.clone(), format!("could not read the file: {e}")));
                    continue;
                }
            }
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => {
                for (i, body) in items.into_iter().enumerate() {
                    records.push(Record {
                        source: format!("{name}[{i}]"),
                        body,
                    });
                }
            }
            Ok(body) => records.push(Record { source: name, body }),
            Err(e) => unreadable.push((name, format!("could not parse the identity JSON: {e}"))),
        }
    }
    (records, unreadable)
}

fn has_plaintext(body: &Value) -> bool {
    body.pointer("/credentials/password/config/password")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty())
}

/// Splits records into chunks of at most `size`, closing a chunk at 200 plaintext passwords.
fn chunks(records: &[Record], size: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut plain = 0;
    for (i, r) in records.iter().enumerate() {
        let p = usize::from(has_plaintext(&r.body));
        if i > start && (i - start == size || plain + p > MAX_PLAINTEXT_PER_CHUNK) {
            out.push(start..i);
            start = i;
            plain = 0;
        }
        plain += p;
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

enum Progress {
    Bar(indicatif::ProgressBar),
    Lines { total: u64 },
    Silent,
}

impl Progress {
    fn new(total: u64, quiet: bool) -> Progress {
        if quiet {
            Progress::Silent
        } else if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} identities (eta {eta}) {msg}",
            ) {
                bar.set_style(style);
            }
            Progress::Bar(bar)
        } else {
            Progress::Lines { total }
        }
    }

    fn update(&self, done: u64, created: u64, failed: u64) {
        match self {
            Progress::Bar(b) => {
                b.set_position(done);
                let rate = done as f64 / b.elapsed().as_secs_f64().max(0.001);
                b.set_message(format!("{created} created, {failed} failed, {rate:.0}/s"));
            }
            Progress::Lines { total } => {
                err(&format!(
                    "progress: {done}/{total} identities processed, {created} created, {failed} failed"
                ));
            }
            Progress::Silent => {}
        }
    }

    fn finish(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

/// Sends one chunk; retries while the server is unreachable or busy. Returns one result per
/// record: the new identity id, or the reason it failed.
async fn send_chunk(http: &reqwest::Client, url: &str, records: &[Record]) -> Vec<Result<String, String>> {
    let body = json!({
        "identities": records.iter().map(|r| json!({"create": r.body})).collect::<Vec<_>>()
    });
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt - 1))).await;
        }
        match send_json(http.patch(url).json(&body)).await {
            Ok((status, _, resp)) if status.is_success() => {
                let items = resp
                    .get("identities")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                return (0..records.len())
                    .map(|i| match items.get(i) {
                        Some(item) if item.get("action").and_then(Value::as_str) == Some("create") => {
                            Ok(item.get("identity").and_then(Value::as_str).unwrap_or("").to_string())
                        }
                        Some(item) => Err(reason(item.get("error").unwrap_or(item))),
                        None => Err("the server gave no result for this identity".into()),
                    })
                    .collect();
            }
            Ok((status, _, resp)) => {
                last = reason(&resp);
                if status != reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                {
                    break;
                }
            }
            Err(e) => last = e,
        }
    }
    records.iter().map(|_| Err(last.clone())).collect()
}

/// `latch import identities`.
pub async fn import(client: ClientArgs, files: Vec<String>, dry_run: bool, batch_size: usize) -> ExitCode {
    if batch_size == 0 || batch_size > MAX_CHUNK {
        return fail(&format!("--batch-size must be from 1 to {MAX_CHUNK}"));
    }
    let (base, http) = match connect(&client) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let (records, unreadable) = read_inputs(&files);
    let url = if dry_run {
        format!("{base}/admin/identities?dry_run=true")
    } else {
        format!("{base}/admin/identities")
    };
    let started = std::time::Instant::now();
    let progress = Progress::new(records.len() as u64, client.quiet);
    let mut created: Vec<String> = Vec::new();
    let mut failures: Vec<(String, String)> = unreadable;
    let mut done = 0u64;
    for range in chunks(&records, batch_size) {
        let chunk = &records[range];
        for (r, result) in chunk.iter().zip(send_chunk(&http, &url, chunk).await) {
            match result {
                Ok(id) => created.push(id),
                Err(e) => failures.push((r.source.clone(), e)),
            }
        }
        done += chunk.len() as u64;
        progress.update(done, created.len() as u64, failures.len() as u64);
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    for (source, why) in &failures {
        err(&format!("{source}: {why}"));
    }
    let summary = json!({
        "dry_run": dry_run,
        "created": if dry_run { 0 } else { created.len() },
        "valid": if dry_run { created.len() } else { 0 },
        "failed": failures.len(),
        "seconds": (secs * 1000.0).round() / 1000.0,
        "identities": if dry_run { json!([]) } else { json!(created) },
        "errors": failures.iter().map(|(s, e)| json!({"source": s, "reason": e})).collect::<Vec<_>>(),
    });
    if client.quiet {
        if !dry_run {
            for id in &created {
                out(id);
            }
        }
    } else {
        match print_machine(&client.format, &summary) {
            Ok(true) => {}
            Ok(false) => {
                if dry_run {
                    out(&format!(
                        "Dry run: {} identities are valid, {} failed; nothing was written.",
                        created.len(),
                        failures.len()
                    ));
                } else {
                    out(&format!(
                        "Imported {} identities, {} failed ({:.1}s).",
                        created.len(),
                        failures.len(),
                        secs
                    ));
                }
            }
            Err(e) => return fail(&e),
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(plain: bool) -> Record {
        let body = if plain {
            json!({"credentials": {"password": {"config": {"password": "x"}}}})
        } else {
            json!({})
        };
        Record {
            source: String::new(),
            body,
        }
    }

    #[test]
    fn chunks_respect_size_and_plaintext_limit() {
        let records: Vec<Record> = (0..2500).map(|_| rec(false)).collect();
        let c = chunks(&records, 1000);
        assert_eq!(c, vec![0..1000, 1000..2000, 2000..2500]);
        let records: Vec<Record> = (0..450).map(|i| rec(i % 2 == 0)).collect();
        let c = chunks(&records, 1000);
        // 200 plaintext passwords per chunk: the 201st (index 400) opens a new one.
        assert_eq!(c, vec![0..400, 400..450]);
    }

    #[test]
    fn next_token_is_read_from_the_link_header() {
        let link = "<http://a/admin/identities?page_size=2&page_token=>; rel=\"first\",<http://a/admin/identities?page_size=2&page_token=abc>; rel=\"next\"";
        assert_eq!(next_token(link).as_deref(), Some("abc"));
        assert_eq!(next_token("<x>; rel=\"first\""), None);
    }
}
