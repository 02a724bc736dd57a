//! Account linking, the `oidc` side: a sign-up through a provider whose mapped identifiers
//! (an email) belong to another identity becomes a login of that identity that links the
//! provider once its owner proves an existing credential. Nothing is linked by the email
//! alone. Kratos: `identity.Manager.ConflictingIdentity`, `registration/hook.go`
//! (`SetDuplicateCredentials`), `strategy_settings.go` (`Link`, `linkCredentials`).

use serde_json::{Value, json};

use super::{ID, linked};
use crate::config::OidcProvider;
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::set_credential;
use crate::strategy::{FlowError, LinkExisting};

/// The identity another identity's identifiers or addresses collide with, and the colliding
/// value: credential identifiers first (by type), then verifiable addresses, then recovery
/// addresses, as Kratos orders them.
pub(super) async fn conflicting(env: &Env, new: &Identity) -> Result<Option<(Identity, String)>, FlowError> {
    for (kind, c) in &new.credentials {
        if kind.as_str() == ID {
            continue;
        }
        for identifier in &c.identifiers {
            if let Some(found) = env.store.find_identity_by_identifier(kind.as_str(), identifier).await? {
                return Ok(Some((found, identifier.clone())));
            }
        }
    }
    for a in &new.verifiable_addresses {
        if let Some(found) = env.store.find_identity_by_address(true, &a.via, &a.value).await? {
            return Ok(Some((found, a.value.clone())));
        }
    }
    for a in &new.recovery_addresses {
        if let Some(found) = env.store.find_identity_by_address(false, &a.via, &a.value).await? {
            return Ok(Some((found, a.value.clone())));
        }
    }
    Ok(None)
}

/// What the linking login needs when `new` (signed up through `p` as `subject`) collides
/// with an existing identity, or `None` when it does not.
pub(super) async fn pending(
    env: &Env,
    p: &OidcProvider,
    subject: &str,
    new: &Identity,
) -> Result<Option<LinkExisting>, FlowError> {
    let Some((existing, duplicate)) = conflicting(env, new).await? else {
        return Ok(None);
    };
    // Kratos lists the existing account's ways in only with `login_hints` on.
    let hints = env.config.selfservice.flows.registration.login_hints;
    let mut types = vec![];
    let mut providers = vec![];
    if hints {
        for kind in existing.credentials.keys() {
            if env
                .credentials
                .get(kind.as_str())
                .is_some_and(|c| c.signs_in_alone(&env.config, &existing))
            {
                types.push(kind.as_str().to_string());
            }
        }
        if let Some(c) = existing.credentials.get(ID) {
            providers = c
                .config
                .get("providers")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p.get("provider").and_then(Value::as_str).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
        }
        types.sort();
        providers.sort();
    }
    Ok(Some(LinkExisting {
        credentials_type: ID,
        credentials_config: json!({"providers": [{"subject": subject, "provider": p.id}]}),
        duplicate_identifier: duplicate,
        provider_id: p.id.clone(),
        // Kratos names the provider by its label, else by its kind.
        provider_label: p
            .label
            .clone()
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| p.provider.clone()),
        available_credential_types: types,
        available_providers: providers,
    }))
}

/// Adds `provider:subject` to the identity's `oidc` credential (created when missing).
/// Refuses a provider the identity already has linked (Kratos'
/// `ConnectionExistValidationError`).
pub(super) fn add_provider(env: &Env, identity: &mut Identity, provider: &str, subject: &str) -> Result<(), FlowError> {
    let mut config = identity
        .credentials
        .get(ID)
        .map(|c| c.config.clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"providers": []}));
    let mut providers = config
        .get("providers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if providers
        .iter()
        .any(|p| p.get("provider").and_then(Value::as_str) == Some(provider))
    {
        return Err(FlowError::message(crate::text::validation_generic(
            "can not link unknown or already existing OpenID Connect connection",
        )));
    }
    providers.push(json!({"subject": subject, "provider": provider}));
    config["providers"] = Value::Array(providers);
    let mut identifiers = linked(&config);
    identifiers.sort();
    identifiers.dedup();
    set_credential(identity, ID, identifiers, config, 1, env.clock.as_ref());
    Ok(())
}

/// `LoginStrategy::link`: the pending credential's one provider, added to `identity`.
pub(super) fn link(env: &Env, identity: &mut Identity, config: &Value) -> Result<Option<String>, FlowError> {
    let one = config
        .get("providers")
        .and_then(Value::as_array)
        .filter(|ps| ps.len() == 1)
        .and_then(|ps| ps.first())
        .ok_or_else(|| FlowError::Internal("the pending oidc credential names no provider".into()))?;
    let provider = one.get("provider").and_then(Value::as_str).unwrap_or("");
    let subject = one.get("subject").and_then(Value::as_str).unwrap_or("");
    if provider.is_empty() || subject.is_empty() {
        return Err(FlowError::Internal("the pending oidc credential is incomplete".into()));
    }
    add_provider(env, identity, provider, subject)?;
    Ok(Some(provider.to_string()))
}
