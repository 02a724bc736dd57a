//! The second factor of an `aal=aal2` login: one backup code. Kratos:
//! `selfservice/strategy/lookup/login.go`.

use crate::strategy::shared::{required_input, second_factor_identity};
use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Check, LookupSecret, check_and_consume, codes, nodes, stored_codes};
use crate::deps::Env;
use crate::identity::manager::set_credential;
use crate::identity::{Identity, State};
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, LoginOutcome, LoginStrategy};
use crate::text;

#[async_trait]
impl LoginStrategy for LookupSecret {
    fn id(&self) -> &'static str {
        "lookup_secret"
    }

    /// Kratos: `PopulateLoginMethod` — only `aal2` flows of identities that have codes.
    fn populate(&self, _env: &Env, flow: &mut Flow, signed_in: Option<&Identity>) {
        if flow.requested_aal != "aal2" || !signed_in.is_some_and(|i| i.credentials.contains_key("lookup_secret")) {
            return;
        }
        flow.ui.upsert(nodes::login_code());
        flow.ui.append(nodes::submit());
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError> {
        let env = cx.env;
        let identity = second_factor_identity(env, flow, "lookup_secret", text::no_lookup()).await?;
        let code = required_input(body, "lookup_secret")?;
        // Counted before the code is compared: eight characters are guessable.
        let attempt =
            crate::limits::secret_attempt(env, "lookup_secret", &identity.id.to_string(), cx.client.ip.as_deref())
                .await?;
        let mut stored = stored_codes(&identity);
        let i = match check_and_consume(env, &identity, &stored, code).await? {
            Check::Accepted(i) => i,
            Check::Used => {
                flow.ui.set_value("lookup_secret", json!(""));
                return Err(FlowError::message(text::lookup_already_used()));
            }
            Check::Invalid => {
                flow.ui.set_value("lookup_secret", json!(""));
                return Err(FlowError::message(text::lookup_invalid()));
            }
        };
        attempt.succeeded(env).await;
        // The code is spent (consume_once above); record when, for settings and admins, on a
        // fresh read so a concurrent login with another code rarely loses its mark. Such a loss
        // only affects what is shown: the consumed mark is what refuses a second use.
        let spent = stored[i].code_hash.clone();
        let mut updated = env.store.get_identity(identity.id).await?.unwrap_or(identity);
        stored = stored_codes(&updated);
        let now = env.clock.now();
        if let Some(s) = stored.iter_mut().find(|s| s.code_hash == spent) {
            s.used_at = Some(now.replace_nanosecond(0).unwrap_or(now));
        }
        let id = updated.id.to_string();
        set_credential(
            &mut updated,
            "lookup_secret",
            vec![id],
            codes::config_of(&stored),
            1,
            env.clock.as_ref(),
        );
        env.store.update_identity(&updated).await?;
        if updated.state != State::Active {
            return Err(FlowError::message(text::identity_disabled()));
        }
        flow.active = Some("lookup_secret".into());
        Ok(LoginOutcome::Authenticated {
            identity: Box::new(updated),
            method: "lookup_secret",
            aal: crate::model::Aal::Aal2,
        })
    }
}
