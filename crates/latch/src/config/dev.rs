//! Zero-configuration development mode (`latch serve --dev` without `-c`): a defaults layer
//! that satisfies Kratos' required keys and turns on a useful setup, with secrets generated
//! once and kept in a file beside the database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Value, json};

/// The built-in identity schema: an email address with code, passkey and password
/// credentials, verified and recovered by email.
pub const DEV_IDENTITY_SCHEMA: &str = include_str!("dev-identity.schema.json");

/// The SQLite file dev mode uses, in the working directory.
pub const DEV_DATABASE: &str = "latch.sqlite";

/// The secrets file dev mode keeps beside the database (mode 0600).
pub const DEV_SECRETS: &str = "latch.secrets.json";

/// Secrets generated for dev mode.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DevSecrets {
    /// `secrets.cookie`.
    pub cookie: Vec<String>,
    /// `secrets.cipher` (32 characters).
    pub cipher: Vec<String>,
    /// `secrets.default`.
    pub default: Vec<String>,
}

fn random_secret(chars: usize) -> String {
    crate::crypto::random_alnum(chars)
}

/// Reads `dir/latch.secrets.json`, creating it (0600) with new random secrets when absent.
pub fn load_or_create_secrets(dir: &Path) -> Result<(DevSecrets, PathBuf, bool), String> {
    let path = dir.join(DEV_SECRETS);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let s: DevSecrets = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{} is not a valid secrets file ({e}); delete it to generate new secrets",
                    path.display()
                )
            })?;
            Ok((s, path, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let s = DevSecrets {
                cookie: vec![random_secret(48)],
                cipher: vec![random_secret(32)],
                default: vec![random_secret(48)],
            };
            let text = serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?;
            write_private(&path, text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((s, path, true))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

fn port_from_env(env: &BTreeMap<String, String>, key: &str, default: u16) -> u16 {
    env.get(key).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// The defaults layer for zero-config dev mode. Ports follow `SERVE_PUBLIC_PORT` /
/// `SERVE_ADMIN_PORT` so the derived `http://localhost:<port>/` base URLs stay right
/// (`SERVE_*_BASE_URL` still override them, as every environment variable does).
pub fn zero_config_layer(env: &BTreeMap<String, String>, secrets: &DevSecrets) -> Value {
    let public_port = port_from_env(env, "SERVE_PUBLIC_PORT", 4433);
    let admin_port = port_from_env(env, "SERVE_ADMIN_PORT", 4434);
    let public = format!("http://localhost:{public_port}/");
    let schema = base64::engine::general_purpose::STANDARD.encode(DEV_IDENTITY_SCHEMA);
    let session = json!({"hooks": [{"hook": "session"}]});
    json!({
        "dsn": format!("sqlite://{DEV_DATABASE}?_fk=true&mode=rwc"),
        "dev": true,
        "serve": {
            "public": {"host": "127.0.0.1", "port": public_port, "base_url": public},
            "admin": {"host": "127.0.0.1", "port": admin_port, "base_url": format!("http://localhost:{admin_port}/")}
        },
        "identity": {
            "default_schema_id": "default",
            "schemas": [{"id": "default", "url": format!("base64://{schema}")}]
        },
        "selfservice": {
            "default_browser_return_url": format!("{public}ui/welcome"),
            "allowed_return_urls": [public],
            "methods": {
                "password": {"enabled": true},
                // Passkeys are on by default in Latch, with the relying party derived from the
                // public base URL (so `SERVE_PUBLIC_BASE_URL` keeps working).
                "code": {"enabled": true, "passwordless_enabled": true}
            },
            "flows": {
                "registration": {"after": {"password": session, "code": session, "passkey": session}},
                "verification": {"enabled": true, "use": "code"},
                "recovery": {"enabled": true, "use": "code"}
            }
        },
        "secrets": {"cookie": secrets.cookie, "cipher": secrets.cipher, "default": secrets.default}
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn zero_config_layer_is_a_valid_config() {
        let dir = tempfile::tempdir().unwrap();
        let (secrets, path, created) = load_or_create_secrets(dir.path()).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (again, _, created) = load_or_create_secrets(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(again.cookie, secrets.cookie, "secrets are generated once");
        let env: BTreeMap<String, String> = [("SERVE_PUBLIC_PORT".to_string(), "5555".to_string())].into();
        let layer = zero_config_layer(&env, &secrets);
        let loaded = super::super::load_values(vec![layer], &env, true).unwrap();
        let c = loaded.config;
        assert_eq!(c.public_base_url().as_str(), "http://localhost:5555/");
        assert_eq!(c.flow_ui_url("login").as_str(), "http://localhost:5555/ui/login");
        assert_eq!(
            c.selfservice.default_browser_return_url.unwrap().as_str(),
            "http://localhost:5555/ui/welcome"
        );
        assert!(c.selfservice.flows.verification.enabled);
        assert!(c.selfservice.flows.recovery.enabled);
        assert!(c.selfservice.methods.code.passwordless_enabled);
        assert!(c.selfservice.methods.passkey.enabled);
        assert_eq!(c.dsn, "sqlite://latch.sqlite?_fk=true&mode=rwc");
    }
}
