//! The breach check: how often a password appears in the Have I Been Pwned corpus, asked
//! with k-anonymity (only the first five hex digits of the password's SHA-1 leave Latch).
//! Kratos: `password.DefaultPasswordValidator.fetch`.

use std::time::Duration;

use sha1::{Digest as _, Sha1};

use crate::config::PasswordConfig;

/// How long connecting to the range API may take (Kratos: one second).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the whole request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The range API could not be asked (network failure or an unexpected status).
#[derive(Debug, thiserror::Error)]
#[error("the password breach check could not reach its server: {0}")]
pub struct Unreachable(String);

/// The range URL for `prefix`: `https://<host>/range/<prefix>`, as Kratos builds it. A host
/// written with a scheme (`http://127.0.0.1:8080`) is used as the base URL instead (a Latch
/// extension for self-hosted mirrors and tests).
pub fn range_url(host: &str, prefix: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let lower = host.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        format!("{host}/range/{prefix}")
    } else {
        format!("https://{host}/range/{prefix}")
    }
}

/// How many breaches list `password`. Lines are `SUFFIX:COUNT`; a line without a count
/// counts once (as Kratos does).
pub async fn breaches(cfg: &PasswordConfig, password: &str) -> Result<u64, Unreachable> {
    let digest = crate::crypto::hex(Sha1::digest(password.as_bytes()).as_slice()).to_ascii_uppercase();
    let (prefix, suffix) = digest.split_at(5);
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| Unreachable(e.to_string()))?;
    let res = client
        .get(range_url(&cfg.haveibeenpwned_host, prefix))
        .header("user-agent", "latch")
        .send()
        .await
        .map_err(|e| Unreachable(e.to_string()))?;
    if res.status() != reqwest::StatusCode::OK {
        return Err(Unreachable(format!("status {}", res.status())));
    }
    let body = res.text().await.map_err(|e| Unreachable(e.to_string()))?;
    Ok(count_in(&body, suffix))
}

/// The count on the line of `suffix` in a range answer, 0 when it is not listed.
fn count_in(body: &str, suffix: &str) -> u64 {
    for line in body.lines() {
        let mut parts = line.trim().splitn(2, ':');
        let listed = parts.next().unwrap_or("");
        if !listed.eq_ignore_ascii_case(suffix) {
            continue;
        }
        return match parts.next() {
            Some(n) => n.trim().replace(',', "").parse().unwrap_or(1),
            None => 1,
        };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_answers_are_read_as_kratos_reads_them() {
        let body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2,345\r\nABCDEF\r\n";
        assert_eq!(count_in(body, "00d4f6e8fa6eecad2a3aa415eec418d38ec"), 2345);
        assert_eq!(count_in(body, "0018A45C4D1DEF81644B54AB7F969B88D65"), 1);
        assert_eq!(count_in(body, "ABCDEF"), 1);
        assert_eq!(count_in(body, "FFFF"), 0);
    }

    #[test]
    fn hosts_without_a_scheme_are_asked_over_https() {
        assert_eq!(
            range_url("api.pwnedpasswords.com", "ABCDE"),
            "https://api.pwnedpasswords.com/range/ABCDE"
        );
        assert_eq!(
            range_url("http://127.0.0.1:9/", "ABCDE"),
            "http://127.0.0.1:9/range/ABCDE"
        );
    }
}
