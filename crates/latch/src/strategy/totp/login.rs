//! The second factor of an `aal=aal2` login: a code from the app. Kratos:
//! `selfservice/strategy/totp/login.go`.

use crate::strategy::shared::{required_input, second_factor_identity};
use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Totp, accept_once, nodes, stored_key};
use crate::deps::Env;
use crate::identity::{Identity, State};
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, LoginOutcome, LoginStrategy};
use crate::text;

#[async_trait]
impl LoginStrategy for Totp {
    fn id(&self) -> &'static str {
        "totp"
    }

    /// Kratos: `PopulateLoginMethod` — only `aal2` flows of identities that have an app.
    fn populate(&self, _env: &Env, flow: &mut Flow, signed_in: Option<&Identity>) {
        if flow.requested_aal != "aal2" || !signed_in.is_some_and(|i| i.credentials.contains_key("totp")) {
            return;
        }
        flow.ui.upsert(nodes::login_code());
        flow.ui.append(nodes::submit(text::login_totp()));
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError> {
        let env = cx.env;
        let identity = second_factor_identity(env, flow, "totp", text::no_totp_device()).await?;
        let code = required_input(body, "totp_code")?;
        // Counted before the code is compared: six digits are guessable.
        let attempt =
            crate::limits::secret_attempt(env, "totp", &identity.id.to_string(), cx.client.ip.as_deref()).await?;
        let Some(key) = stored_key(&identity) else {
            return Err(FlowError::message(text::no_totp_device()));
        };
        if !accept_once(env, &identity, &key, code).await? {
            flow.ui.set_value("totp_code", json!(""));
            return Err(FlowError::message(text::totp_code_invalid()));
        }
        attempt.succeeded(env).await;
        if identity.state != State::Active {
            return Err(FlowError::message(text::identity_disabled()));
        }
        flow.active = Some("totp".into());
        Ok(LoginOutcome::Authenticated {
            identity: Box::new(identity),
            method: "totp",
            aal: crate::model::Aal::Aal2,
        })
    }
}
