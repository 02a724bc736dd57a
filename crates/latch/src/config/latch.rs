//! Latch-only settings: the top-level `latch:` key, which Kratos does not have. Rate limits,
//! the password-hashing queue, the cleanup janitor, the whoami cache and the web hook outbox
//! live here. A Kratos
//! file without the key loads unchanged; unknown keys under it fail with their path like every
//! other key. Documented in `docs/configuration.md` and `docs/security.md`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::duration::{de_byte_size, de_duration};

/// `latch:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Latch {
    /// `latch.rate_limits`.
    pub rate_limits: RateLimits,
    /// `latch.hashing`.
    pub hashing: Hashing,
    /// `latch.cleanup`.
    pub cleanup: Cleanup,
    /// `latch.cache`.
    pub cache: Cache,
    /// `latch.client_ip_headers`: single-value client-IP headers (`CF-Connecting-IP`,
    /// `True-Client-IP`, `X-Real-IP`) believed from `serve.public.trusted_proxies`; by
    /// default only `X-Forwarded-For` is.
    pub client_ip_headers: Vec<String>,
    /// `latch.web_hooks`.
    pub web_hooks: WebHooks,
}

/// `latch.web_hooks`: how `web_hook` hooks are sent. `timeout` applies to every attempt;
/// `max_retries` to the hooks a flow waits for (Kratos' HTTP client by default); the other keys
/// to the durable outbox that delivers `response.ignore: true` hooks.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct WebHooks {
    /// Deadline of one attempt: connecting, sending and reading the answer (Kratos: 30s).
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Blocking hooks: attempts after the first one on a timeout, an unreachable receiver,
    /// `429` or a `5xx` other than `501` (Kratos: 2), all within the request.
    pub max_retries: u32,
    /// Outbox: attempts per delivery (the retry budget) before it is dead-lettered.
    pub max_attempts: u32,
    /// Outbox: the pause after the first failed attempt; it doubles after each further one.
    #[serde(deserialize_with = "de_duration")]
    pub initial_backoff: Duration,
    /// Outbox: the longest pause between two attempts.
    #[serde(deserialize_with = "de_duration")]
    pub max_backoff: Duration,
    /// Outbox: deliveries in flight at once on each node.
    pub concurrency: u32,
    /// Outbox: how often each node looks for due deliveries when nothing woke it.
    #[serde(deserialize_with = "de_duration")]
    pub poll_interval: Duration,
}

impl Default for WebHooks {
    fn default() -> Self {
        WebHooks {
            timeout: Duration::from_secs(30),
            max_retries: 2,
            max_attempts: 15,
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            concurrency: 8,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// A fixed-window budget: at most `limit` events per `window`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct Budget {
    /// Events allowed per window.
    pub limit: u32,
    /// The window.
    #[serde(deserialize_with = "de_duration")]
    pub window: Duration,
}

impl Budget {
    /// `limit` per `window` seconds.
    pub const fn new(limit: u32, window_secs: u64) -> Budget {
        Budget {
            limit,
            window: Duration::from_secs(window_secs),
        }
    }
}

/// `latch.rate_limits`: limits shared by every node (counters live in the database).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Master switch for the per-IP, per-address and per-account limits below. The per-flow
    /// code budget (`selfservice.methods.code.config.max_submissions`) always applies.
    pub enabled: bool,
    /// Password (and other first-factor secret) failures per account.
    pub password: PasswordLimits,
    /// Wrong codes per address across flows.
    pub code_attempts_per_address: Budget,
    /// Code mails per address: a short budget (cooldown) and a long one.
    pub code_mail_per_address: Budget,
    /// Code mails per address over the long window.
    pub code_mail_per_address_long: Budget,
    /// Flows created per client IP.
    pub flow_creation_per_ip: Budget,
    /// Flow submissions per client IP.
    pub submission_per_ip: Budget,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            enabled: true,
            password: PasswordLimits::default(),
            code_attempts_per_address: Budget::new(10, 3600),
            code_mail_per_address: Budget::new(3, 60),
            code_mail_per_address_long: Budget::new(10, 3600),
            flow_creation_per_ip: Budget::new(300, 60),
            submission_per_ip: Budget::new(120, 60),
        }
    }
}

/// `latch.rate_limits.password`: progressive delays after failed sign-ins.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PasswordLimits {
    /// Consecutive failures for one account from one client before delays start.
    pub free_failures: u32,
    /// The first delay; each further failure doubles it.
    #[serde(deserialize_with = "de_duration")]
    pub first_delay: Duration,
    /// The longest delay.
    #[serde(deserialize_with = "de_duration")]
    pub max_delay: Duration,
    /// Consecutive failures for one account from all clients together before delays apply
    /// to every client (NIST 800-63B: at most 100).
    pub account_free_failures: u32,
}

impl Default for PasswordLimits {
    fn default() -> Self {
        PasswordLimits {
            free_failures: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            account_free_failures: 100,
        }
    }
}

/// `latch.hashing`: the bounded password-hashing queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Hashing {
    /// Hashes computed at once; 0 derives it from the number of CPUs.
    pub max_concurrent: u32,
    /// Requests allowed to wait for a hashing slot; more answer `503` with `Retry-After`.
    pub max_queue: u32,
}

impl Default for Hashing {
    fn default() -> Self {
        Hashing {
            max_concurrent: 0,
            max_queue: 64,
        }
    }
}

/// `latch.cleanup`: the optional janitor inside `serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Cleanup {
    /// Run the janitor inside `serve`.
    pub enabled: bool,
    /// Time between janitor runs.
    #[serde(deserialize_with = "de_duration")]
    pub interval: Duration,
    /// Keep expired rows this long after they expire.
    #[serde(deserialize_with = "de_duration")]
    pub keep_last: Duration,
    /// Rows deleted per statement.
    pub batch_size: u32,
    /// Pause between batches.
    #[serde(deserialize_with = "de_duration")]
    pub sleep_between_batches: Duration,
    /// Blank the bodies of sent mail (and of delivered web hooks) this long after sending.
    #[serde(deserialize_with = "de_duration")]
    pub mail_body_retention: Duration,
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup {
            enabled: false,
            interval: Duration::from_secs(3600),
            keep_last: Duration::from_secs(6 * 3600),
            batch_size: 100,
            sleep_between_batches: Duration::from_secs(1),
            mail_body_retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// `latch.cache`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Cache {
    /// `latch.cache.whoami`.
    pub whoami: WhoamiCache,
}

/// `latch.cache.whoami`: the in-process whoami cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WhoamiCache {
    /// Use the cache.
    pub enabled: bool,
    /// Upper bound of the cache's size in bytes (entries weighed by their serialized size).
    #[serde(deserialize_with = "de_byte_size")]
    pub max_bytes: u64,
    /// Entries expire after this long (bounds staleness if a revocation notice is lost).
    #[serde(deserialize_with = "de_duration")]
    pub ttl: Duration,
}

impl Default for WhoamiCache {
    fn default() -> Self {
        WhoamiCache {
            enabled: true,
            max_bytes: 16 * 1024 * 1024,
            ttl: Duration::from_secs(10),
        }
    }
}

const DURATION: &str = "^([0-9]+(ns|us|ms|s|m|h))+$|^0$";
const BYTES: &str = "^[0-9]+(B|KB|MB|GB|KiB|MiB|GiB)?$";

fn strict(props: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": props})
}

fn duration() -> Value {
    json!({"type": "string", "pattern": DURATION})
}

fn budget() -> Value {
    strict(json!({
        "limit": {"type": "integer", "minimum": 1},
        "window": duration(),
    }))
}

/// The JSON schema of `latch:`, added to Kratos' key schema at load time.
pub(super) fn schema() -> Value {
    strict(json!({
        "rate_limits": strict(json!({
            "enabled": {"type": "boolean"},
            "password": strict(json!({
                "free_failures": {"type": "integer", "minimum": 1},
                "first_delay": duration(),
                "max_delay": duration(),
                "account_free_failures": {"type": "integer", "minimum": 1, "maximum": 100},
            })),
            "code_attempts_per_address": budget(),
            "code_mail_per_address": budget(),
            "code_mail_per_address_long": budget(),
            "flow_creation_per_ip": budget(),
            "submission_per_ip": budget(),
        })),
        "hashing": strict(json!({
            "max_concurrent": {"type": "integer", "minimum": 0},
            "max_queue": {"type": "integer", "minimum": 0},
        })),
        "cleanup": strict(json!({
            "enabled": {"type": "boolean"},
            "interval": duration(),
            "keep_last": duration(),
            "batch_size": {"type": "integer", "minimum": 1},
            "sleep_between_batches": duration(),
            "mail_body_retention": duration(),
        })),
        "client_ip_headers": {"type": "array", "items": {"type": "string"}},
        "web_hooks": strict(json!({
            "timeout": duration(),
            "max_retries": {"type": "integer", "minimum": 0, "maximum": 10},
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100},
            "initial_backoff": duration(),
            "max_backoff": duration(),
            "concurrency": {"type": "integer", "minimum": 1, "maximum": 256},
            "poll_interval": duration(),
        })),
        "cache": strict(json!({
            "whoami": strict(json!({
                "enabled": {"type": "boolean"},
                "max_bytes": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": BYTES}]},
                "ttl": duration(),
            })),
        })),
    }))
}
