//! The `password` method: identifier + password login, password registration, and
//! changing or adding the password in settings. Kratos: `selfservice/strategy/password`.

pub mod breach;
mod login;
pub mod migrate;
mod registration;
mod settings;

use super::FlowError;
use crate::deps::Env;
use crate::text::{self, UiText};
use crate::ui::{Autocomplete, Group, InputType, Node};

/// The password strategy (stateless; configuration comes from `Env`).
#[derive(Debug, Clone, Copy)]
pub struct Password;

impl super::Strategy for Password {
    fn id(&self) -> &'static str {
        "password"
    }
    fn login(&self) -> Option<&dyn super::LoginStrategy> {
        Some(self)
    }
    fn registration(&self) -> Option<&dyn super::RegistrationStrategy> {
        Some(self)
    }
    fn settings(&self) -> Option<&dyn super::SettingsStrategy> {
        Some(self)
    }
}

/// The `password` credential: a hash, imported as a hash Latch verifies or as plain text.
#[derive(Debug)]
struct PasswordCredential;

#[async_trait::async_trait]
impl super::CredentialType for PasswordCredential {
    fn id(&self) -> &'static str {
        "password"
    }
    fn signs_in_alone(&self, _config: &crate::config::Config, identity: &crate::identity::Identity) -> bool {
        identity
            .credentials
            .get("password")
            .and_then(|c| c.config.get("hashed_password"))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|h| !h.is_empty())
    }
    fn identifiers_from_traits(&self) -> bool {
        true
    }
    async fn import(
        &self,
        cx: &super::ImportCx<'_>,
        identity: &crate::identity::Identity,
        config: serde_json::Value,
    ) -> Result<Option<super::Imported>, super::ImportError> {
        use super::ImportError;
        use crate::crypto::password::{HashError, validate_hash_format};
        let migrate = config
            .get("use_password_migration_hook")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        // As Kratos (`ImportPasswordCredentials`): a credential for the migration hook keeps
        // no hash, whatever else the import carries; the first login asks the old system.
        let hashed = if migrate {
            String::new()
        } else if let Some(h) = config.get("hashed_password").and_then(serde_json::Value::as_str) {
            validate_hash_format(h)
                .map_err(|e| ImportError::Invalid(format!("credentials.password.config.hashed_password: {e}")))?;
            h.to_string()
        } else if let Some(p) = config.get("password").and_then(serde_json::Value::as_str) {
            if cx.dry_run {
                String::new()
            } else {
                cx.hasher.hash(p).await.map_err(|e| match e {
                    HashError::Busy => ImportError::Busy,
                    e => ImportError::Internal(format!("hashing an imported password failed: {e}")),
                })?
            }
        } else {
            return Ok(None);
        };
        Ok(Some(super::Imported {
            identifiers: identity
                .credentials
                .get("password")
                .map(|c| c.identifiers.clone())
                .unwrap_or_default(),
            config: serde_json::json!({"hashed_password": hashed, "use_password_migration_hook": migrate}),
            version: 0,
        }))
    }
}

static PASSWORD: PasswordCredential = PasswordCredential;

/// Registers the password method.
pub fn register(r: &mut super::Registry<'_>) {
    r.credential(&PASSWORD);
    if r.config().selfservice.methods.password.enabled {
        r.strategy(std::sync::Arc::new(Password));
    }
}

/// The password input node.
fn password_node(autocomplete: Autocomplete) -> Node {
    Node::input("password", InputType::Password, Group::Password)
        .required()
        .autocomplete(autocomplete)
        .label(text::label_password())
}

/// Checks a new password against the policy: length and similarity to the identifiers.
/// Kratos: `password.DefaultPasswordValidator` (minus the online breach check).
pub fn check_policy(env: &Env, password: &str, identifiers: &[String]) -> Result<(), UiText> {
    let cfg = &env.config.selfservice.methods.password.config;
    let len = password.chars().count();
    if len < cfg.min_password_length as usize {
        return Err(text::password_min_length(
            i64::from(cfg.min_password_length),
            len as i64,
        ));
    }
    if len > 4096 {
        return Err(text::password_policy_violation(
            "the password must be at most 4096 characters long",
        ));
    }
    if cfg.identifier_similarity_check_enabled {
        let pw = password.to_lowercase();
        for id in identifiers {
            let id = id.to_lowercase();
            if id.is_empty() {
                continue;
            }
            let local = id.split('@').next().unwrap_or(&id).to_string();
            let common = longest_common_substring(&pw, &id).max(longest_common_substring(&pw, &local));
            let similar = pw.contains(&id)
                || id.contains(&pw)
                || (local.len() >= 4 && pw.contains(&local))
                || common as f64 / (pw.chars().count().max(1) as f64) > 0.5;
            if similar {
                return Err(text::password_too_similar());
            }
        }
    }
    Ok(())
}

/// Checks a new password as Kratos' `DefaultPasswordValidator` does: the policy
/// ([`check_policy`]), then, when `haveibeenpwned_enabled`, the breach corpus (more than
/// `max_breaches` listings refuse it). When the range API cannot be asked the password
/// passes with `ignore_network_errors` (the default) and is refused on the field otherwise.
pub async fn validate_new_password(env: &Env, password: &str, identifiers: &[String]) -> Result<(), FlowError> {
    check_policy(env, password, identifiers).map_err(|m| FlowError::on_node("password", m))?;
    let cfg = &env.config.selfservice.methods.password.config;
    if !cfg.haveibeenpwned_enabled {
        return Ok(());
    }
    match breach::breaches(cfg, password).await {
        Ok(n) if n > u64::from(cfg.max_breaches) => Err(FlowError::on_node(
            "password",
            text::password_breached(i64::try_from(n).unwrap_or(i64::MAX)),
        )),
        Ok(_) => Ok(()),
        Err(e) if cfg.ignore_network_errors => {
            tracing::warn!(error = %e, "password breach check skipped (ignore_network_errors)");
            Ok(())
        }
        // Kratos wraps its network failure in a policy violation (4000005) on the field, so
        // the person is told the password could not be checked rather than shown a 500.
        Err(e) => {
            tracing::warn!(error = %e, "password breach check failed (ignore_network_errors is off)");
            Err(FlowError::on_node(
                "password",
                text::password_policy_violation(
                    "unable to check if password has been leaked because an unexpected network error occurred",
                ),
            ))
        }
    }
}

/// Hashes a new password: a full hashing queue is `Limited` (503 + `Retry-After` for JSON
/// clients), anything else an internal failure.
pub(crate) async fn hash_new(env: &Env, password: &str) -> Result<String, FlowError> {
    env.hasher.hash(password).await.map_err(|e| match e {
        crate::crypto::password::HashError::Busy => hashing_busy(),
        e => FlowError::Internal(format!("password hashing failed: {e}")),
    })
}

/// A full hashing queue: `503` with `Retry-After` for JSON clients, a message for forms.
pub(crate) fn hashing_busy() -> FlowError {
    FlowError::Limited(crate::limits::Limited {
        kind: crate::limits::LimitKind::HashingQueue,
        retry_after: std::time::Duration::from_secs(1),
        limit: None,
    })
}

fn longest_common_substring(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut best = 0;
    let mut prev = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        let mut cur = vec![0usize; b.len() + 1];
        for j in 1..=b.len() {
            if a[i - 1] == b[j - 1] {
                cur[j] = prev[j - 1] + 1;
                best = best.max(cur[j]);
            }
        }
        prev = cur;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs() {
        assert_eq!(longest_common_substring("abcdef", "zcdez"), 3);
        assert_eq!(longest_common_substring("", "x"), 0);
    }
}
