//! Password login. Kratos: `selfservice/strategy/password/login.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Password, password_node};
use crate::crypto::password::{HashError, dummy_verify};
use crate::deps::Env;
use crate::identity::State;
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, LoginOutcome, LoginStrategy, field};
use crate::text;
use crate::ui::{Autocomplete, Group, InputType, Node};

#[async_trait]
impl LoginStrategy for Password {
    fn id(&self) -> &'static str {
        "password"
    }

    fn populate(&self, env: &Env, flow: &mut Flow, _signed_in: Option<&crate::identity::Identity>) {
        if flow.requested_aal != "aal1" {
            return;
        }
        flow.ui.upsert(crate::strategy::shared::identifier_node(env));
        flow.ui.upsert(password_node(Autocomplete::CurrentPassword));
        flow.ui.append(
            Node::input("method", InputType::Submit, Group::Password)
                .value("password")
                .label(text::login()),
        );
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError> {
        let identifier = field(body, "identifier")
            .or_else(|| field(body, "password_identifier"))
            .unwrap_or("")
            .trim();
        let password = field(body, "password").unwrap_or("");
        flow.ui.set_value("identifier", json!(identifier));
        let mut missing = vec![];
        if identifier.is_empty() {
            missing.push(("identifier".to_string(), text::required("identifier")));
        }
        if password.is_empty() {
            missing.push(("password".to_string(), text::required("password")));
        }
        if !missing.is_empty() {
            return Err(FlowError::Invalid {
                messages: vec![],
                node_messages: missing,
            });
        }
        let env = cx.env;
        let normalized = crate::identity::schema::normalize_identifier(identifier);
        // Counted before anything is compared, for known and unknown identifiers alike.
        let attempt = crate::limits::secret_attempt(env, "password", &normalized, cx.client.ip.as_deref()).await?;
        let Some(identity) = env.store.find_identity_by_identifier("password", &normalized).await? else {
            dummy_verify(&env.hasher, password).await.map_err(busy)?;
            return Err(FlowError::message(text::invalid_credentials()));
        };
        let config = identity
            .credentials
            .get("password")
            .map(|c| c.config.clone())
            .unwrap_or(Value::Null);
        let hash = config
            .get("hashed_password")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // An imported credential without a hash asks the old system (the attempt is already
        // counted, so it cannot be used as an oracle faster than the password budget allows).
        let migrating = super::migrate::wanted(&config);
        let ok = if migrating {
            let attempt = super::migrate::Attempt {
                flow,
                identity: &identity,
                identifier,
                password,
                user_agent: cx.client.user_agent.as_deref(),
            };
            super::migrate::ask(env, attempt).await? == super::migrate::Verdict::Match
        } else if hash.is_empty() {
            dummy_verify(&env.hasher, password).await.map_err(busy)?;
            false
        } else {
            match env.hasher.verify(password, &hash).await {
                Ok(ok) => ok,
                Err(e @ HashError::Busy) => return Err(busy(e)),
                Err(e) => {
                    tracing::warn!(error = %e, "stored password hash could not be checked");
                    false
                }
            }
        };
        if !ok {
            return Err(FlowError::message(text::invalid_credentials()));
        }
        attempt.succeeded(env).await;
        if identity.state != State::Active {
            return Err(FlowError::message(text::identity_disabled()));
        }
        let mut identity = identity;
        if migrating {
            store_migrated(env, &mut identity, password).await?;
        } else if env.hasher.needs_rehash(&hash)
            && let Ok(new_hash) = env.hasher.hash(password).await
        {
            if let Some(c) = identity.credentials.get_mut("password")
                && let Some(o) = c.config.as_object_mut()
            {
                o.insert("hashed_password".into(), json!(new_hash));
                c.updated_at = env.clock.now();
            }
            if let Err(e) = env.store.update_identity(&identity).await {
                tracing::warn!(error = %e, "could not upgrade a password hash");
            }
        }
        flow.active = Some("password".into());
        Ok(LoginOutcome::Authenticated {
            identity: Box::new(identity),
            method: "password",
            aal: crate::model::Aal::Aal1,
        })
    }
}

/// Stores the hash of a password the migration hook confirmed, clearing the
/// `use_password_migration_hook` flag in the same write. Of concurrent first logins only the
/// first writes; the others sign in all the same (the old system confirmed their password).
async fn store_migrated(env: &Env, identity: &mut crate::identity::Identity, password: &str) -> Result<(), FlowError> {
    let new_hash = env.hasher.hash(password).await.map_err(busy)?;
    let now = env.clock.now();
    let Some(c) = identity.credentials.get_mut("password") else {
        return Ok(());
    };
    let mut config = c.config.clone();
    if let Some(o) = config.as_object_mut() {
        o.insert("hashed_password".into(), json!(new_hash));
        o.insert("use_password_migration_hook".into(), json!(false));
    }
    if env
        .store
        .replace_credential_config(c.id, c.updated_at, &config, now)
        .await?
    {
        c.config = config;
        c.updated_at = now;
    } else {
        tracing::info!("a concurrent login stored the migrated password first");
    }
    Ok(())
}

/// A full hashing queue: `503` with `Retry-After` for JSON clients, a message for forms.
fn busy(_: HashError) -> FlowError {
    FlowError::Limited(crate::limits::Limited {
        kind: crate::limits::LimitKind::HashingQueue,
        retry_after: std::time::Duration::from_secs(1),
        limit: None,
    })
}
