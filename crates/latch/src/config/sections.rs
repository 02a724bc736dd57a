//! Typed sections of the configuration besides `serve` and `selfservice`: logging, secrets,
//! cookies, sessions, identities, security, courier and hashers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::duration::{de_byte_size, de_duration, de_opt_bool_string, de_opt_duration};

/// `log`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Log {
    /// `trace`, `debug`, `info` (default), `warning`, `error`, `fatal` or `panic`.
    pub level: String,
    /// `json` or `text`; unset lets the binary choose.
    pub format: Option<String>,
    /// Log secrets and personal data (never in production).
    pub leak_sensitive_values: bool,
    /// Replacement text for redacted values.
    pub redaction_text: Option<String>,
}

impl Log {
    /// The `tracing` filter for a Kratos log level: `warning` is `warn`, `fatal` and `panic`
    /// are `error` (the filter would read these words as target names and log nothing);
    /// anything else (`info`, `debug`, or a filter such as `latch=debug`) passes unchanged.
    pub fn filter_directive(level: &str) -> &str {
        match level.trim() {
            l if l.eq_ignore_ascii_case("warning") => "warn",
            l if l.eq_ignore_ascii_case("fatal") || l.eq_ignore_ascii_case("panic") => "error",
            _ => level,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            format: None,
            leak_sensitive_values: false,
            redaction_text: None,
        }
    }
}

/// `secrets`: rotation lists, first entry signs, all verify.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Secrets {
    /// Generic signing secrets.
    pub default: Vec<String>,
    /// Cookie sealing secrets; see [`Config::cookie_secrets`].
    pub cookie: Vec<String>,
    /// 32-character encryption keys for stored credentials.
    pub cipher: Vec<String>,
}

/// `SameSite` cookie attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax` (Kratos' default).
    #[default]
    Lax,
    /// `SameSite=None` (requires `Secure`).
    None,
}

/// `cookies`: defaults shared by the CSRF and session cookies.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Cookies {
    /// Cookie `Domain`; unset means host-only.
    pub domain: Option<String>,
    /// Cookie `Path` (default `/`).
    pub path: String,
    /// Cookie `SameSite` (default `Lax`).
    pub same_site: SameSite,
    /// Force `Secure` on or off; unset means `!dev`. The schema types it as a string.
    #[serde(deserialize_with = "de_opt_bool_string")]
    pub secure: Option<bool>,
}

impl Default for Cookies {
    fn default() -> Self {
        Cookies {
            domain: None,
            path: "/".into(),
            same_site: SameSite::Lax,
            secure: None,
        }
    }
}

/// `session`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Session {
    /// How long a session lives (default 24h).
    #[serde(deserialize_with = "de_duration")]
    pub lifespan: Duration,
    /// How long before expiry a session may be extended; unset means any time (= lifespan).
    #[serde(deserialize_with = "de_opt_duration")]
    pub earliest_possible_extend: Option<Duration>,
    /// The session cookie.
    pub cookie: SessionCookie,
    /// `/sessions/whoami` behaviour.
    pub whoami: Whoami,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            lifespan: Duration::from_secs(24 * 3600),
            earliest_possible_extend: None,
            cookie: SessionCookie::default(),
            whoami: Whoami::default(),
        }
    }
}

/// `session.cookie`; unset fields inherit from [`Cookies`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SessionCookie {
    /// Cookie name (default `ory_kratos_session`, which clients depend on).
    pub name: String,
    /// Cookie `Domain` override.
    pub domain: Option<String>,
    /// Cookie `Path` override.
    pub path: Option<String>,
    /// Cookie `SameSite` override.
    pub same_site: Option<SameSite>,
    /// Send `Max-Age` so the cookie survives browser restarts (default true).
    pub persistent: bool,
    /// Force `Secure`; unset means `!dev` (no inheritance, as in Kratos).
    #[serde(deserialize_with = "de_opt_bool_string")]
    pub secure: Option<bool>,
}

impl Default for SessionCookie {
    fn default() -> Self {
        SessionCookie {
            name: "ory_kratos_session".into(),
            domain: None,
            path: None,
            same_site: None,
            persistent: true,
            secure: None,
        }
    }
}

/// Authenticator assurance level a feature demands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequiredAal {
    /// One factor suffices.
    Aal1,
    /// The highest level the identity has set up (Kratos' default).
    #[default]
    HighestAvailable,
}

/// `session.whoami`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Whoami {
    /// AAL demanded by `/sessions/whoami` (default `highest_available`).
    pub required_aal: RequiredAal,
}

/// `identity`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Identity {
    /// Schema used when a flow or request names none (default `default`).
    pub default_schema_id: String,
    /// The identity schemas on offer.
    pub schemas: Vec<IdentitySchema>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            default_schema_id: "default".into(),
            schemas: Vec::new(),
        }
    }
}

/// One entry of `identity.schemas`.
#[derive(Debug, Clone, Deserialize)]
pub struct IdentitySchema {
    /// Schema id referenced by identities.
    pub id: String,
    /// Where the schema is loaded from (`file://`, `https://`, `base64://`).
    pub url: String,
    /// Whether self-service registration may pick this schema.
    #[serde(default)]
    pub selfservice_selectable: bool,
}

/// `security`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Security {
    /// Account enumeration defences.
    pub account_enumeration: AccountEnumeration,
}

/// `security.account_enumeration`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AccountEnumeration {
    /// Answer identically for unknown identifiers (Latch default true; Kratos false).
    pub mitigate: bool,
}

impl Default for AccountEnumeration {
    fn default() -> Self {
        AccountEnumeration { mitigate: true }
    }
}

/// `courier`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Courier {
    /// SMTP delivery.
    pub smtp: Smtp,
    /// How often a message is retried before it is abandoned (default 5).
    pub message_retries: u32,
    /// Inline template overrides, kept raw (`courier.templates.<kind>.<state>.email…`).
    pub templates: Value,
    /// Directory with template overrides.
    pub template_override_path: Option<String>,
    /// The dispatch worker.
    pub worker: CourierWorker,
}

impl Default for Courier {
    fn default() -> Self {
        Courier {
            smtp: Smtp::default(),
            message_retries: 5,
            templates: Value::Null,
            template_override_path: None,
            worker: CourierWorker::default(),
        }
    }
}

/// `courier.worker`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CourierWorker {
    /// Messages claimed per round (default 10).
    pub pull_count: u32,
    /// Pause between rounds when the outbox is idle (default 1s); enqueueing on the same
    /// node wakes the worker at once.
    #[serde(deserialize_with = "de_duration")]
    pub pull_wait: Duration,
}

impl Default for CourierWorker {
    fn default() -> Self {
        CourierWorker {
            pull_count: 10,
            pull_wait: Duration::from_secs(1),
        }
    }
}

/// `courier.smtp`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Smtp {
    /// `smtp://` or `smtps://` URI with credentials; unset means no SMTP (see DECISIONS.md).
    pub connection_uri: Option<String>,
    /// Sender address (default `no-reply@ory.kratos.sh`, as Kratos).
    pub from_address: String,
    /// Sender display name.
    pub from_name: Option<String>,
    /// Extra headers on every message.
    pub headers: BTreeMap<String, String>,
    /// Name announced in `HELO`/`EHLO` (default `localhost`).
    pub local_name: String,
    /// Client certificate for mutual TLS.
    pub client_cert_path: Option<String>,
    /// Client key for mutual TLS.
    pub client_key_path: Option<String>,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            connection_uri: None,
            from_address: "no-reply@ory.kratos.sh".into(),
            from_name: None,
            headers: BTreeMap::new(),
            local_name: "localhost".into(),
            client_cert_path: None,
            client_key_path: None,
        }
    }
}

/// Password hashing algorithm for new hashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashAlgorithm {
    /// Argon2id (Latch default).
    #[default]
    Argon2,
    /// bcrypt (Kratos default).
    Bcrypt,
}

/// `hashers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Hashers {
    /// Algorithm for new hashes; others still verify and are rehashed on login.
    pub algorithm: HashAlgorithm,
    /// Argon2id parameters.
    pub argon2: Argon2,
    /// bcrypt parameters.
    pub bcrypt: Bcrypt,
}

/// `hashers.argon2`, with Latch's OWASP defaults (m=19 MiB, t=2, p=1).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Argon2 {
    /// Memory in bytes; written like Kratos (`128MB`, where MB means MiB).
    #[serde(deserialize_with = "de_byte_size")]
    pub memory: u64,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Salt bytes.
    pub salt_length: u32,
    /// Hash output bytes.
    pub key_length: u32,
}

impl Default for Argon2 {
    fn default() -> Self {
        Argon2 {
            memory: 19 * 1024 * 1024,
            iterations: 2,
            parallelism: 1,
            salt_length: 16,
            key_length: 32,
        }
    }
}

/// `hashers.bcrypt`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Bcrypt {
    /// Work factor (default 12).
    pub cost: u32,
}

impl Default for Bcrypt {
    fn default() -> Self {
        Bcrypt { cost: 12 }
    }
}
