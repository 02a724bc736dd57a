//! Configuration: Kratos-compatible files and environment variables, validated against
//! Kratos' schema, reported with full key paths, and turned into a typed [`Config`] with
//! Latch's defaults.
//!
//! Order of precedence: files in the order given (later files deep-merge over earlier ones,
//! arrays replace), then environment variables, then built-in defaults for what is left unset.

pub mod dev;
mod dsn;
mod duration;
mod env;
mod implemented;
mod keys;
mod latch;
mod methods;
mod sections;
mod selfservice;
mod typed;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use self::dsn::{Dsn, parse_dsn};
pub use self::duration::{parse_byte_size, parse_duration};
pub use self::implemented::IMPLEMENTED;
pub use self::latch::{
    Budget, Cache as LatchCache, Cleanup, Hashing, Latch, PasswordLimits, RateLimits, WebHooks, WhoamiCache,
};
pub use self::methods::{
    ClaimsSource, CodeConfig, CodeMethod, Methods, OidcConfig, OidcMethod, OidcProvider, PasskeyConfig, PasskeyMethod,
    PasswordConfig, PasswordMethod, Pkce, RelyingParty, Toggle, UpdateOnLogin, WebauthnConfig, WebauthnMethod,
};
pub use self::methods::{HookAuth, MigrateHook, MigrateHookConfig};
pub use self::sections::{
    AccountEnumeration, Argon2, Bcrypt, Cookies, Courier, CourierWorker, HashAlgorithm, Hashers, Identity,
    IdentitySchema, Log, RequiredAal, SameSite, Secrets, Security, Session, SessionCookie, Smtp, Whoami,
};
pub use self::selfservice::{
    After, AfterMethod, Before, ErrorFlow, Flows, Hook, LoginFlow, LoginStyle, LogoutAfter, LogoutFlow, MessageFlow,
    MessageStrategy, RegistrationFlow, RegistrationStyle, SelfService, SettingsFlow,
};
pub use self::typed::{Config, Cors, RequestLog, Serve, ServeAdmin, ServePublic};

/// Why configuration could not be loaded; every message names the file or key involved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A configuration file (or a `*_FILE` secret) could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Io {
        /// The file, as given.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid YAML/JSON or not a mapping.
    #[error("cannot parse configuration file {path}: {message}")]
    Parse {
        /// The file, as given.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// The merged configuration breaks the schema; one entry per problem, each naming its key.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
    /// Keys Latch does not implement were used and strict checking was requested.
    #[error("configuration uses keys Latch does not implement:\n  - {}", .0.join("\n  - "))]
    Unimplemented(Vec<String>),
    /// The validated document could not be turned into typed settings.
    #[error("invalid configuration: {0}")]
    Typed(String),
    /// The DSN is malformed or names an unsupported database.
    #[error("invalid DSN: {0}")]
    Dsn(String),
    /// The embedded schema is broken (a build problem, not a user one).
    #[error("configuration schema unavailable: {0}")]
    Schema(String),
}

/// The result of loading: the typed config plus warnings for the caller to log.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The settings Latch runs on.
    pub config: Config,
    /// Kratos keys and hooks that were set but are not implemented by Latch, one message
    /// each; `validate-config --strict` fails on them.
    pub warnings: Vec<String>,
    /// Defaults Latch does not act on yet (none at present; the breach check was one):
    /// logged like warnings, but `--strict` does not fail on them, since nobody asked.
    pub notices: Vec<String>,
}

/// Loads configuration files (YAML, or JSON for `.json`), applies environment overrides and
/// validates the result. `env` is the process environment; unrelated variables are ignored.
pub fn load(files: &[PathBuf], env: &BTreeMap<String, String>, dev: bool) -> Result<Loaded, ConfigError> {
    let mut layers = Vec::with_capacity(files.len());
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
            path: file.display().to_string(),
            source,
        })?;
        layers.push(parse_document(file, &text)?);
    }
    load_values(layers, env, dev)
}

/// Like [`load`] for one in-memory YAML or JSON document; for tests and `validate-config -`.
pub fn load_str(text: &str, env: &BTreeMap<String, String>, dev: bool) -> Result<Loaded, ConfigError> {
    let doc = parse_document(Path::new("<inline>.yaml"), text)?;
    load_values(vec![doc], env, dev)
}

/// Like [`load`] for already parsed layers, merged in order.
pub fn load_values(layers: Vec<Value>, env: &BTreeMap<String, String>, dev: bool) -> Result<Loaded, ConfigError> {
    let keys = keys::keys().map_err(ConfigError::Schema)?;
    let mut doc = Value::Object(serde_json::Map::new());
    for layer in layers {
        merge(&mut doc, layer);
    }
    env::apply(keys, env, &mut doc)?;
    validate(keys, &doc)?;
    let mut warnings = implemented::unimplemented_warnings(&doc);
    warnings.extend(implemented::hook_warnings(&doc));
    let notices = Vec::new();
    let config = Config::from_value(doc, dev)?;
    Ok(Loaded {
        config,
        warnings,
        notices,
    })
}

/// Fails when loading produced warnings; backs `latch validate-config --strict`.
pub fn strict_check(loaded: &Loaded) -> Result<(), ConfigError> {
    if loaded.warnings.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Unimplemented(loaded.warnings.clone()))
    }
}

/// Parses one configuration document: JSON when the name ends in `.json`, YAML otherwise.
/// An empty document is an empty mapping.
pub fn parse_document(name: &Path, text: &str) -> Result<Value, ConfigError> {
    let is_json = name.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
    let parsed = if is_json {
        serde_json::from_str::<Value>(text).map_err(|e| e.to_string())
    } else {
        yaml_serde::from_str::<Value>(text).map_err(|e| e.to_string())
    };
    let parse_error = |message: String| ConfigError::Parse {
        path: name.display().to_string(),
        message,
    };
    match parsed.map_err(parse_error)? {
        Value::Null => Ok(Value::Object(serde_json::Map::new())),
        doc @ Value::Object(_) => Ok(doc),
        other => Err(parse_error(format!(
            "the top level must be a mapping of keys, not {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Deep-merges `over` into `base`: mappings merge key by key, everything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// The error for a configuration that turns on codes both as a first and as a second factor.
pub(crate) const CODE_MODES_CLASH: &str = "invalid value for \"selfservice.methods.code\": \
     passwordless_enabled and mfa_enabled cannot both be true (as in Kratos, a code is either a first factor \
     or a second factor); set one of them to false";

/// Whether the document sets `passwordless_enabled` and `mfa_enabled` of the code method both
/// to `true`.
fn code_modes_clash(doc: &Value) -> bool {
    let on = |key: &str| doc.pointer(&format!("/selfservice/methods/code/{key}")) == Some(&Value::Bool(true));
    on("passwordless_enabled") && on("mfa_enabled")
}

/// Runs the unknown-key walk, the schema and Latch's own value checks; collects every error.
fn validate(keys: &keys::Keys, doc: &Value) -> Result<(), ConfigError> {
    let findings = keys.check(doc);
    let mut errors: Vec<String> = Vec::new();
    let mut push = |message: String| {
        if !errors.contains(&message) {
            errors.push(message);
        }
    };
    for path in &findings.unknown {
        push(format!("unknown configuration key \"{path}\""));
    }
    // Schema errors on the object holding an unknown key (failed `anyOf` over hook kinds, …)
    // only repeat what the unknown-key message says more precisely.
    let unknown_parents: Vec<keys::KeyPath> = findings.unknown.iter().map(|p| p.parent()).collect();
    // Kratos' schema words this as a failed `anyOf` on the section; say what is wrong instead.
    let code_modes_clash = code_modes_clash(doc);
    if code_modes_clash {
        push(CODE_MODES_CLASH.to_string());
    }
    let mut schema_paths: Vec<keys::KeyPath> = Vec::new();
    for error in keys.validate(doc) {
        schema_paths.push(error.path.clone());
        if code_modes_clash
            && error.path.to_string() == "selfservice.methods.code"
            && matches!(error.kind, keys::SchemaErrorKind::Other(_))
        {
            continue;
        }
        match error.kind {
            keys::SchemaErrorKind::Required(property) => {
                // Latch decides on a missing DSN itself (e.g. in-memory SQLite with --dev).
                if error.path.0.is_empty() && property == "dsn" {
                    continue;
                }
                // Unset, it points at the built-in welcome page (a Latch default).
                let path_text = error.path.to_string();
                if (error.path.0.is_empty() && property == "selfservice")
                    || (path_text == "selfservice" && property == "default_browser_return_url")
                {
                    continue;
                }
                let mut path = error.path.clone();
                path.0.push(keys::Seg::Key(property));
                push(format!("missing required configuration key \"{path}\""));
            }
            keys::SchemaErrorKind::Unexpected(names) => {
                for name in names {
                    let mut path = error.path.clone();
                    path.0.push(keys::Seg::Key(name));
                    push(format!("unknown configuration key \"{path}\""));
                }
            }
            keys::SchemaErrorKind::Other(_) if unknown_parents.contains(&error.path) => {}
            keys::SchemaErrorKind::Other(message) if error.path.0.is_empty() => {
                push(format!("invalid configuration: {message}"));
            }
            keys::SchemaErrorKind::Other(message) => {
                push(format!("invalid value for \"{}\": {message}", error.path));
            }
        }
    }
    // Latch's own checks only add something where the schema had nothing to say.
    for (path, message) in findings.invalid {
        if !schema_paths.contains(&path) {
            push(message);
        }
    }
    // A `web_hook` that could never be sent fails at startup rather than on a user's request.
    for message in web_hook_errors(doc) {
        push(message);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(errors))
    }
}

/// Every `web_hook` under `selfservice.flows.<flow>.(before|after)[.<method>].hooks` whose
/// `config` [`crate::webhook::WebHookConfig::from_value`] refuses, with its path.
fn web_hook_errors(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(Value::Object(flows)) = doc.pointer("/selfservice/flows") else {
        return out;
    };
    for (flow, cfg) in flows {
        for position in ["before", "after"] {
            let Some(Value::Object(section)) = cfg.get(position) else {
                continue;
            };
            let mut lists = vec![(
                format!("selfservice.flows.{flow}.{position}.hooks"),
                section.get("hooks"),
            )];
            for (method, m) in section {
                if let Value::Object(m) = m {
                    lists.push((
                        format!("selfservice.flows.{flow}.{position}.{method}.hooks"),
                        m.get("hooks"),
                    ));
                }
            }
            for (path, list) in lists {
                let Some(Value::Array(hooks)) = list else { continue };
                for (i, h) in hooks.iter().enumerate() {
                    if h.get("hook").and_then(Value::as_str) != Some("web_hook") {
                        continue;
                    }
                    let config = h.get("config").cloned().unwrap_or(Value::Null);
                    if let Err(e) = crate::webhook::WebHookConfig::from_value(&config) {
                        out.push(format!("invalid value for \"{path}[{i}].config\": {e}"));
                    }
                }
            }
        }
    }
    out
}
