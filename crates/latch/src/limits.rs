//! Attempt budgets and rate limits (`latch.rate_limits`, ADR 0003). Every check counts the
//! attempt in the same atomic statement that compares it with the limit
//! ([`crate::store::limits`]), BEFORE the secret is evaluated, so requests released at the
//! same instant cannot all pass a "read, compare, record" gap. Counters live in the database,
//! shared by every node.
//!
//! Keys never hold identifiers in the clear: addresses and identifiers are hashed.

use std::time::Duration;

use time::OffsetDateTime;

use crate::crypto::sha256_hex;
use crate::deps::Env;
use crate::store::StoreError;
use crate::store::limits::Hit;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Flows created per client IP.
    FlowCreation,
    /// Flow submissions per client IP.
    Submission,
    /// Code mails per address.
    CodeMail,
    /// Wrong codes per address across flows.
    CodeAttempts,
    /// Failed sign-ins per account (per client, or for the whole account).
    Password,
    /// The password-hashing queue is full (answered `503`, not `429`).
    HashingQueue,
}

/// A refusal: which limit, for how long, and the numbers for `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The limit that refused.
    pub kind: LimitKind,
    /// Time until the next attempt can succeed (at least one second).
    pub retry_after: Duration,
    /// The budget of the window (`RateLimit-Limit`), when it has one.
    pub limit: Option<u32>,
}

impl Limited {
    /// `Retry-After` in whole seconds, never 0.
    pub fn retry_after_secs(&self) -> u64 {
        let s = self.retry_after.as_secs();
        if self.retry_after.subsec_nanos() > 0 { s + 1 } else { s }.max(1)
    }

    /// An explanation for people, naming what to do.
    pub fn explain(&self) -> String {
        let wait = self.retry_after_secs();
        let when = if wait < 120 {
            format!("{wait} seconds")
        } else {
            format!("{} minutes", wait.div_ceil(60))
        };
        match self.kind {
            LimitKind::FlowCreation | LimitKind::Submission => {
                format!("Too many requests were sent from your network. Please try again in {when}.")
            }
            LimitKind::CodeMail => format!(
                "Too many codes were requested for this address. Please wait {when} before requesting another one."
            ),
            LimitKind::CodeAttempts => format!(
                "Too many wrong codes were entered for this address. For your protection, codes for it are blocked; please try again in {when}."
            ),
            LimitKind::Password => {
                format!(
                    "Too many failed sign-in attempts. For your protection, please wait {when} before trying again."
                )
            }
            LimitKind::HashingQueue => {
                format!("The server is busy. Please try again in {when}.")
            }
        }
    }
}

/// Failures of a limit check: refused, or the database failed.
#[derive(Debug)]
pub enum LimitError {
    /// Over the limit.
    Limited(Limited),
    /// The counter could not be read or written.
    Store(StoreError),
}

impl From<StoreError> for LimitError {
    fn from(e: StoreError) -> LimitError {
        LimitError::Store(e)
    }
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn refused(kind: LimitKind, hit: Hit, now_ms: i64, limit: Option<u32>) -> LimitError {
    let wait = u64::try_from(hit.reset_at.saturating_sub(now_ms)).unwrap_or(0);
    LimitError::Limited(Limited {
        kind,
        retry_after: Duration::from_millis(wait.max(1)),
        limit,
    })
}

/// A stable, non-reversible key part for an address or identifier.
fn digest(value: &str) -> String {
    let h = sha256_hex(value.trim().to_lowercase().as_bytes());
    h.chars().take(32).collect()
}

fn enabled(env: &Env) -> bool {
    env.config.latch.rate_limits.enabled
}

async fn window(env: &Env, kind: LimitKind, key: &str, budget: crate::config::Budget) -> Result<(), LimitError> {
    let now = ms(env.clock.now());
    let hit = env
        .store
        .limit_hit(key, i64::from(budget.limit), dur_ms(budget.window), now)
        .await?;
    if hit.allowed {
        Ok(())
    } else {
        Err(refused(kind, hit, now, Some(budget.limit)))
    }
}

/// Counts a new flow for the client IP.
pub async fn flow_creation(env: &Env, ip: Option<&str>) -> Result<(), LimitError> {
    if !enabled(env) {
        return Ok(());
    }
    let key = format!("ip:flows:{}", ip.unwrap_or("unknown"));
    window(
        env,
        LimitKind::FlowCreation,
        &key,
        env.config.latch.rate_limits.flow_creation_per_ip,
    )
    .await
}

/// Counts a flow submission for the client IP.
pub async fn submission(env: &Env, ip: Option<&str>) -> Result<(), LimitError> {
    if !enabled(env) {
        return Ok(());
    }
    let key = format!("ip:submit:{}", ip.unwrap_or("unknown"));
    window(
        env,
        LimitKind::Submission,
        &key,
        env.config.latch.rate_limits.submission_per_ip,
    )
    .await
}

/// Counts a code mail for an address (known or not, so answers do not tell them apart):
/// a short budget (one per minute by default) and a long one (ten per hour).
pub async fn code_mail(env: &Env, address: &str) -> Result<(), LimitError> {
    if !enabled(env) {
        return Ok(());
    }
    let d = digest(address);
    let rl = &env.config.latch.rate_limits;
    window(
        env,
        LimitKind::CodeMail,
        &format!("mail:short:{d}"),
        rl.code_mail_per_address,
    )
    .await?;
    window(
        env,
        LimitKind::CodeMail,
        &format!("mail:long:{d}"),
        rl.code_mail_per_address_long,
    )
    .await
}

/// A reserved code attempt; give it back with [`CodeAttempt::succeeded`] when the code was
/// right, so signing in does not use up the address' budget.
#[derive(Debug)]
pub struct CodeAttempt {
    address_key: Option<String>,
}

impl CodeAttempt {
    /// The code was right: the attempt does not count against the address.
    pub async fn succeeded(self, env: &Env) {
        if let Some(key) = self.address_key
            && let Err(e) = env.store.limit_refund(&key).await
        {
            tracing::warn!(error = %e, "could not refund a code attempt");
        }
    }
}

/// Why a code attempt was refused before the code was looked at.
#[derive(Debug)]
pub enum CodeAttemptError {
    /// The flow used up `max_submissions` (shown as Kratos' flow message).
    FlowExhausted,
    /// The address' budget across flows is used up.
    Limited(Limited),
    /// The database failed.
    Store(StoreError),
}

/// Reserves one code attempt for a flow (`max_submissions`, always on) and for an address
/// across flows (`latch.rate_limits.code_attempts_per_address`).
pub async fn code_attempt(
    env: &Env,
    flow_id: uuid::Uuid,
    flow_expires_at: OffsetDateTime,
    address: &str,
) -> Result<CodeAttempt, CodeAttemptError> {
    let now = ms(env.clock.now());
    let max = i64::from(env.config.selfservice.methods.code.config.max_submissions.max(1));
    // The window only has to outlast the flow (then cleanup may remove the counter).
    let flow_key = format!("code:flow:{flow_id}");
    let window = (ms(flow_expires_at) - now).max(0) + 60_000;
    let hit = env
        .store
        .limit_hit(&flow_key, max, window, now)
        .await
        .map_err(CodeAttemptError::Store)?;
    if !hit.allowed {
        return Err(CodeAttemptError::FlowExhausted);
    }
    if !enabled(env) {
        return Ok(CodeAttempt { address_key: None });
    }
    let budget = env.config.latch.rate_limits.code_attempts_per_address;
    let key = format!("code:addr:{}", digest(address));
    let hit = env
        .store
        .limit_hit(&key, i64::from(budget.limit), dur_ms(budget.window), now)
        .await
        .map_err(CodeAttemptError::Store)?;
    if !hit.allowed {
        return match refused(LimitKind::CodeAttempts, hit, now, Some(budget.limit)) {
            LimitError::Limited(l) => Err(CodeAttemptError::Limited(l)),
            LimitError::Store(e) => Err(CodeAttemptError::Store(e)),
        };
    }
    Ok(CodeAttempt { address_key: Some(key) })
}

/// A reserved sign-in attempt for an account; clear it with [`SecretAttempt::succeeded`].
#[derive(Debug)]
pub struct SecretAttempt {
    keys: Vec<String>,
}

impl SecretAttempt {
    /// The secret was right: the account's failure delays start over.
    pub async fn succeeded(self, env: &Env) {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        if let Err(e) = env.store.limit_clear(&keys).await {
            tracing::warn!(error = %e, "could not reset sign-in failure counters");
        }
    }
}

/// Reserves a sign-in attempt with a secret (password, later TOTP / recovery codes) for the
/// account named by `identifier`, from the client at `ip`. Two progressive delays: per
/// account and client (free `free_failures`, then 1 s doubling to 15 min), so an attacker's
/// client is slowed without locking the owner out elsewhere; and per account over all
/// clients (free `account_free_failures`, NIST 800-63B's at most 100).
pub async fn secret_attempt(
    env: &Env,
    method: &str,
    identifier: &str,
    ip: Option<&str>,
) -> Result<SecretAttempt, LimitError> {
    if !enabled(env) {
        return Ok(SecretAttempt { keys: vec![] });
    }
    let cfg = &env.config.latch.rate_limits.password;
    let now = ms(env.clock.now());
    let account = digest(identifier);
    let client_key = format!("secret:{method}:{account}:{}", ip.unwrap_or("unknown"));
    let account_key = format!("secret:{method}:{account}");
    let first = dur_ms(cfg.first_delay).max(1);
    let max = dur_ms(cfg.max_delay).max(first);
    for (key, free) in [
        (&client_key, cfg.free_failures),
        (&account_key, cfg.account_free_failures),
    ] {
        let hit = env
            .store
            .limit_backoff(key, i64::from(free.max(1)), first, max, now)
            .await?;
        if !hit.allowed {
            return Err(refused(LimitKind::Password, hit, now, None));
        }
    }
    Ok(SecretAttempt {
        keys: vec![client_key, account_key],
    })
}

/// Marks a one-time value (an issued WebAuthn challenge, …) as used; `false` when another
/// request used it first. Kept until `until`.
pub async fn consume_once(env: &Env, what: &str, value: &[u8], until: OffsetDateTime) -> Result<bool, StoreError> {
    let key = format!("once:{what}:{}", sha256_hex(value));
    env.store.consume_once(&key, ms(until)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let l = |ms| Limited {
            kind: LimitKind::Submission,
            retry_after: Duration::from_millis(ms),
            limit: None,
        };
        assert_eq!(l(1).retry_after_secs(), 1);
        assert_eq!(l(1000).retry_after_secs(), 1);
        assert_eq!(l(1001).retry_after_secs(), 2);
        assert_eq!(l(0).retry_after_secs(), 1);
        assert!(l(600_000).explain().contains("10 minutes"));
    }
}
