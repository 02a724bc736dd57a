//! The typed configuration Latch runs on: the validated Kratos document deserialised with
//! Latch's defaults filled in (see `shared/design/DECISIONS.md` for where they differ).

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::ConfigError;
use super::duration::de_opt_url;
use super::latch::Latch;
use super::sections::{Cookies, Courier, Hashers, Identity, Log, Secrets, Security, Session};
use super::selfservice::SelfService;

/// Everything Latch reads from configuration. Built by [`super::load`] (validated) or
/// [`Config::from_value`] (not validated, for tests).
#[derive(Debug, Clone)]
pub struct Config {
    /// Database DSN; empty when not configured (the caller decides, e.g. `memory` in dev).
    pub dsn: String,
    /// Development mode: the `--dev` flag or the `dev` key. Relaxes cookie security and
    /// derives `http://` base URLs.
    pub dev: bool,
    /// Config file version marker Kratos configs carry (`version: v1.1.0`).
    pub version: Option<String>,
    /// Listeners and their public URLs. Kratos: `serve`.
    pub serve: Serve,
    /// Log level and format. Kratos: `log`.
    pub log: Log,
    /// Signing and encryption secrets. Kratos: `secrets`.
    pub secrets: Secrets,
    /// Defaults for every cookie Latch sets. Kratos: `cookies`.
    pub cookies: Cookies,
    /// Session lifetime and cookie. Kratos: `session`.
    pub session: Session,
    /// Identity schemas. Kratos: `identity`.
    pub identity: Identity,
    /// Self-service flows and methods. Kratos: `selfservice`.
    pub selfservice: SelfService,
    /// Security switches. Kratos: `security`.
    pub security: Security,
    /// Outgoing mail. Kratos: `courier`.
    pub courier: Courier,
    /// Password hashing. Kratos: `hashers`.
    pub hashers: Hashers,
    /// Kratos feature flags, kept raw; read them with [`Config::feature_flag`].
    pub feature_flags: Value,
    /// Latch-only settings (`latch:`), which Kratos does not have.
    pub latch: Latch,
    public_base_url: Url,
    admin_base_url: Url,
    /// `selfservice.default_browser_return_url` was unset and points at the built-in
    /// welcome page (follows the public base URL once the listener is bound).
    default_return_derived: bool,
}

/// The serde image of [`Config`] before derived values are computed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Document {
    dsn: String,
    dev: bool,
    version: Option<String>,
    serve: Serve,
    log: Log,
    secrets: Secrets,
    cookies: Cookies,
    session: Session,
    identity: Identity,
    selfservice: SelfService,
    security: Security,
    courier: Courier,
    hashers: Hashers,
    feature_flags: Value,
    latch: Latch,
}

impl Config {
    /// Builds a config from an already merged document without schema validation; for tests
    /// and for callers that validated the document themselves. `dev` ORs with the `dev` key.
    pub fn from_value(doc: Value, dev: bool) -> Result<Config, ConfigError> {
        let code_mfa_only = doc.pointer("/selfservice/methods/code/passwordless_enabled").is_none()
            && doc.pointer("/selfservice/methods/code/mfa_enabled") == Some(&Value::Bool(true));
        let mut d: Document = serde_json::from_value(doc).map_err(|e| ConfigError::Typed(e.to_string()))?;
        if code_mfa_only {
            // Latch enables passwordless codes by default, but Kratos forbids both modes at
            // once; a config that only asks for MFA codes gets MFA codes.
            d.selfservice.methods.code.passwordless_enabled = false;
        }
        let code = &d.selfservice.methods.code;
        if code.passwordless_enabled && code.mfa_enabled {
            return Err(ConfigError::Invalid(vec![super::CODE_MODES_CLASH.to_string()]));
        }
        let dev = dev || d.dev;
        super::methods::check_link_use(&d.selfservice).map_err(|e| ConfigError::Invalid(vec![e]))?;
        let public_base_url = base_url(
            d.serve.public.base_url.as_ref(),
            &d.serve.public.host,
            d.serve.public.port,
            dev,
            "serve.public",
        )?;
        let admin_base_url = base_url(
            d.serve.admin.base_url.as_ref(),
            &d.serve.admin.host,
            d.serve.admin.port,
            dev,
            "serve.admin",
        )?;
        let default_return_derived = d.selfservice.default_browser_return_url.is_none();
        if default_return_derived {
            d.selfservice.default_browser_return_url = Some(welcome_url(&public_base_url));
        }
        Ok(Config {
            default_return_derived,
            dsn: d.dsn,
            dev,
            version: d.version,
            serve: d.serve,
            log: d.log,
            secrets: d.secrets,
            cookies: d.cookies,
            session: d.session,
            identity: d.identity,
            selfservice: d.selfservice,
            security: d.security,
            courier: d.courier,
            hashers: d.hashers,
            feature_flags: d.feature_flags,
            latch: d.latch,
            public_base_url,
            admin_base_url,
        })
    }

    /// The public base URL, always ending in `/`: `serve.public.base_url` when set, else
    /// derived from host and port (`http` in dev, `https` otherwise; `0.0.0.0` → `localhost`).
    pub fn public_base_url(&self) -> Url {
        self.public_base_url.clone()
    }

    /// Replaces the derived base URLs once the listeners are bound (port 0 picks the port at
    /// bind time). Configured `base_url`s are kept.
    pub fn set_bound_base_urls(&mut self, public: Url, admin: Url) {
        if self.serve.public.base_url.is_none() {
            self.public_base_url = public;
            if self.default_return_derived {
                self.selfservice.default_browser_return_url = Some(welcome_url(&self.public_base_url));
            }
        }
        if self.serve.admin.base_url.is_none() {
            self.admin_base_url = admin;
        }
    }

    /// The admin base URL, always ending in `/`, derived like [`Config::public_base_url`].
    pub fn admin_base_url(&self) -> Url {
        self.admin_base_url.clone()
    }

    /// Secrets for sealing cookies: `secrets.cookie`, falling back to `secrets.default` as
    /// Kratos does. Empty when neither is configured (the caller must generate one).
    pub fn cookie_secrets(&self) -> &[String] {
        if self.secrets.cookie.is_empty() {
            &self.secrets.default
        } else {
            &self.secrets.cookie
        }
    }

    /// Where the browser is sent for a flow's UI: `selfservice.flows.<flow>.ui_url` when set,
    /// else Latch's built-in UI at `<public base URL>ui/<flow>` (a Latch decision).
    pub fn flow_ui_url(&self, flow: &str) -> Url {
        let flows = &self.selfservice.flows;
        let configured = match flow {
            "login" => flows.login.ui_url.as_ref(),
            "registration" => flows.registration.ui_url.as_ref(),
            "settings" => flows.settings.ui_url.as_ref(),
            "verification" => flows.verification.ui_url.as_ref(),
            "recovery" => flows.recovery.ui_url.as_ref(),
            "error" => flows.error.ui_url.as_ref(),
            _ => None,
        };
        if let Some(url) = configured {
            return url.clone();
        }
        let base = self.public_base_url();
        base.join(&format!("ui/{flow}")).unwrap_or(base)
    }

    /// Reads a boolean feature flag (`feature_flags.<name>`); unset means `false`.
    pub fn feature_flag(&self, name: &str) -> bool {
        self.feature_flags.get(name).and_then(Value::as_bool).unwrap_or(false)
    }
}

/// Latch's built-in welcome page, the default `selfservice.default_browser_return_url`.
fn welcome_url(public_base: &Url) -> Url {
    public_base.join("ui/welcome").unwrap_or_else(|_| public_base.clone())
}

fn base_url(configured: Option<&Url>, host: &str, port: u16, dev: bool, key: &str) -> Result<Url, ConfigError> {
    let mut url = match configured {
        Some(url) => url.clone(),
        None => {
            let scheme = if dev { "http" } else { "https" };
            let host = match host.trim() {
                "" | "0.0.0.0" | "::" | "[::]" => "localhost".to_owned(),
                h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
                h => h.to_owned(),
            };
            Url::parse(&format!("{scheme}://{host}:{port}/")).map_err(|e| {
                ConfigError::Invalid(vec![format!(
                    "invalid value for \"{key}.host\": cannot derive a base URL from {host:?} ({e})"
                )])
            })?
        }
    };
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `serve`: the public and admin listeners.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Serve {
    /// Browser- and app-facing API. Kratos: `serve.public`.
    pub public: ServePublic,
    /// Operator API. Kratos: `serve.admin`.
    pub admin: ServeAdmin,
}

/// `serve.public`: where the public API listens and how it is reached.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServePublic {
    /// Bind address (default `0.0.0.0`).
    pub host: String,
    /// Bind port (default 4433).
    pub port: u16,
    /// Externally visible URL as configured; prefer [`Config::public_base_url`].
    #[serde(deserialize_with = "de_opt_url")]
    pub base_url: Option<Url>,
    /// CORS for browser apps on other origins.
    pub cors: Cors,
    /// Request logging switches.
    pub request_log: RequestLog,
    /// Latch extension: proxies (IPs or CIDR ranges) whose forwarded-for headers are trusted.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServePublic {
    fn default() -> Self {
        ServePublic {
            host: "0.0.0.0".into(),
            port: 4433,
            base_url: None,
            cors: Cors::default(),
            request_log: RequestLog::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// `serve.admin`: where the admin API listens and how it is reached.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServeAdmin {
    /// Bind address (default `0.0.0.0`).
    pub host: String,
    /// Bind port (default 4434).
    pub port: u16,
    /// Externally visible URL as configured; prefer [`Config::admin_base_url`].
    #[serde(deserialize_with = "de_opt_url")]
    pub base_url: Option<Url>,
    /// Request logging switches.
    pub request_log: RequestLog,
}

impl Default for ServeAdmin {
    fn default() -> Self {
        ServeAdmin {
            host: "0.0.0.0".into(),
            port: 4434,
            base_url: None,
            request_log: RequestLog::default(),
        }
    }
}

/// `serve.*.request_log`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RequestLog {
    /// Skip logging health-check requests.
    pub disable_for_health: bool,
}

/// `serve.public.cors`, with Kratos' schema defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Cors {
    /// Whether CORS headers are sent at all (default false).
    pub enabled: bool,
    /// Origins allowed in addition to those Latch derives from its own configuration; `*` and
    /// one-wildcard patterns as in Kratos. Kratos' default is `["*"]`; Latch's is empty (only
    /// the derived origins), and `*` is answered without credentials (`http::cors`).
    pub allowed_origins: Vec<String>,
    /// Allowed methods.
    pub allowed_methods: Vec<String>,
    /// Allowed request headers.
    pub allowed_headers: Vec<String>,
    /// Response headers exposed to scripts.
    pub exposed_headers: Vec<String>,
    /// Whether credentials (cookies) may be sent (default true).
    pub allow_credentials: bool,
    /// Pass preflight requests on to handlers instead of answering them.
    pub options_passthrough: bool,
    /// Preflight cache time in seconds (0 = header not sent).
    pub max_age: u64,
    /// Log CORS decisions.
    pub debug: bool,
}

impl Default for Cors {
    fn default() -> Self {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Cors {
            enabled: false,
            allowed_origins: Vec::new(),
            allowed_methods: strings(&["POST", "GET", "PUT", "PATCH", "DELETE"]),
            allowed_headers: strings(&[
                "Authorization",
                "Content-Type",
                "Max-Age",
                "X-Session-Token",
                "X-XSRF-TOKEN",
                "X-CSRF-TOKEN",
            ]),
            exposed_headers: strings(&["Content-Type"]),
            allow_credentials: true,
            options_passthrough: false,
            max_age: 0,
            debug: false,
        }
    }
}
