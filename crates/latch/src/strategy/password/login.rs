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
        let hash = identity
            .credentials
            .get("password")
            .and_then(|c| c.config.get("hashed_password"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if hash.is_empty() {
            dummy_verify(&env.hasher, password).await.map_err(busy)?;
            return Err(FlowError::message(text::invalid_credentials()));
        }
        let ok = match env.hasher.verify(password, &hash).await {
            Ok(ok) => ok,
            Err(e @ HashError::Busy) => return Err(busy(e)),
            Err(e) => {
                tracing::warn!(error = %e, "stored password hash could not be checked");
                false
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
        if env.hasher.needs_rehash(&hash)
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

/// A full hashing queue: `503` with `Retry-After` for JSON clients, a message for forms.
fn busy(_: HashError) -> FlowError {
    FlowError::Limited(crate::limits::Limited {
        kind: crate::limits::LimitKind::HashingQueue,
        retry_after: std::time::Duration::from_secs(1),
        limit: None,
    })
}
