//! Fetching identity schema documents from the locations allowed in the
//! `identity.schemas[].url` configuration: `file://`, `base64://` and `http(s)://`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use super::errors::SchemaError;

/// How long an HTTP fetch of a schema may take before we give up.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the raw bytes of the schema at `url`; `id` is only used for error messages.
/// HTTP(S) fetching needs a rustls crypto provider installed process-wide
/// beforehand (reqwest is built without one).
pub(super) async fn fetch(id: &str, url: &str) -> Result<Vec<u8>, SchemaError> {
    let fail = |reason: String| SchemaError::Fetch {
        id: id.to_owned(),
        url: url.to_owned(),
        reason,
    };
    let lower = url.to_ascii_lowercase();

    if lower.starts_with("file://") {
        let path = file_path(url).ok_or_else(|| fail("malformed file URL".to_owned()))?;
        tracing::debug!(schema_id = id, path = %path.display(), "loading identity schema from file");
        return tokio::fs::read(&path)
            .await
            .map_err(|e| fail(format!("{}: {e}", path.display())));
    }

    if lower.starts_with("base64://") {
        let encoded = url.get("base64://".len()..).unwrap_or_default().trim();
        return decode_base64(encoded).ok_or_else(|| fail("invalid base64 payload".to_owned()));
    }

    if lower.starts_with("http://") || lower.starts_with("https://") {
        tracing::debug!(schema_id = id, url, "loading identity schema over HTTP");
        let client = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| fail(format!("cannot build HTTP client: {e}")))?;
        let response = client.get(url).send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP status {status}")));
        }
        let body = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        return Ok(body.to_vec());
    }

    Err(SchemaError::UnsupportedUrl {
        id: id.to_owned(),
        url: url.to_owned(),
    })
}

/// Turns `file:///abs/path` into `/abs/path` and `file://rel/path` into the
/// cwd-relative `rel/path`; percent-escapes in absolute URLs are decoded.
fn file_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.get("file://".len()..)?;
    if rest.is_empty() {
        return None;
    }
    if rest.starts_with('/') {
        if let Some(path) = url::Url::parse(url).ok().and_then(|u| u.to_file_path().ok()) {
            return Some(path);
        }
        return Some(std::path::PathBuf::from(rest));
    }
    Some(std::path::PathBuf::from(rest))
}

/// Accepts standard or URL-safe base64, padded or not.
fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(encoded).ok())
}
