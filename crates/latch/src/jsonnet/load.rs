//! Fetches Jsonnet programs from `file://`, `base64://` and `https://` URLs (Kratos' fetcher
//! schemes for `mapper_url` and webhook `body`). Kratos caches fetched programs for an hour; the
//! caller decides whether and how long to keep a [`Program`].

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use super::{JsonnetError, Program};

/// Largest program accepted from any source.
pub(super) const MAX_SOURCE_BYTES: usize = 1024 * 1024;
/// Whole-request deadline for `https://` programs.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a `base64://` payload an origin shows.
const BASE64_SHOWN: usize = 16;

/// Loads `file://path`, `base64://<standard or URL-safe base64>` or `https://…` (`http://` only
/// for `127.0.0.1`, `[::1]` and `localhost`, for tests and sidecars). Programs over 1 MiB and
/// non-UTF-8 text are refused; an HTTP fetch has 10 s and must answer 2xx.
pub async fn load(url: &str) -> Result<Program, JsonnetError> {
    let origin = origin_of(url);
    let fail = |reason: String| JsonnetError::Load {
        origin: origin.clone(),
        reason,
    };
    let lower = url.get(..10).unwrap_or(url).to_ascii_lowercase();
    let bytes = if lower.starts_with("file://") {
        read_file(url).await.map_err(fail)?
    } else if lower.starts_with("base64://") {
        let payload = url.get("base64://".len()..).unwrap_or_default().trim();
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(payload).ok())
            .ok_or_else(|| fail("the payload is not valid base64".to_owned()))?
    } else if lower.starts_with("https://") || lower.starts_with("http://") {
        fetch(url).await.map_err(fail)?
    } else {
        return Err(fail(
            "unsupported scheme; use file://, base64:// or https://".to_owned(),
        ));
    };
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(fail("the program is larger than 1 MiB".to_owned()));
    }
    let source = String::from_utf8(bytes).map_err(|_| fail("the program is not UTF-8 text".to_owned()))?;
    Ok(Program { source, origin })
}

/// What errors show of `url`: no credentials, query or fragment of an HTTP URL (they may hold
/// tokens), and only the start of a base64 payload.
fn origin_of(url: &str) -> String {
    let lower = url.get(..10).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("base64://") {
        let payload = url.get("base64://".len()..).unwrap_or_default();
        if payload.chars().count() <= BASE64_SHOWN {
            return url.to_owned();
        }
        let shown: String = payload.chars().take(BASE64_SHOWN).collect();
        return format!("base64://{shown}…");
    }
    if lower.starts_with("http")
        && let Ok(mut parsed) = url::Url::parse(url)
    {
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        parsed.set_query(None);
        parsed.set_fragment(None);
        return parsed.to_string();
    }
    url.to_owned()
}

/// `file:///abs/path` or `file://relative/path` (relative to the working directory).
async fn read_file(url: &str) -> Result<Vec<u8>, String> {
    let rest = url.get("file://".len()..).unwrap_or_default();
    if rest.is_empty() {
        return Err("the file URL has no path".to_owned());
    }
    let path = if rest.starts_with('/') {
        url::Url::parse(url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .unwrap_or_else(|| std::path::PathBuf::from(rest))
    } else {
        std::path::PathBuf::from(rest)
    };
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_SOURCE_BYTES as u64 {
        return Err("the program is larger than 1 MiB".to_owned());
    }
    tokio::fs::read(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether `url` may be fetched: any `https://`, `http://` only on the loopback interface.
fn allowed(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("malformed URL: {e}"))?;
    if !allowed(&parsed) {
        return Err("plain http:// is only allowed for localhost; use https://".to_owned());
    }
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 || !allowed(attempt.url()) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .redirect(policy)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut response = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    if response.content_length().is_some_and(|n| n > MAX_SOURCE_BYTES as u64) {
        return Err("the program is larger than 1 MiB".to_owned());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the body failed: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_SOURCE_BYTES {
            return Err("the program is larger than 1 MiB".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
