//! The second factor of an `aal=aal2` login: a code from the app. Kratos:
//! `selfservice/strategy/totp/login.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Totp, accept_once, nodes, stored_key};
use crate::deps::Env;
use crate::identity::{Identity, State};
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, LoginOutcome, LoginStrategy, field};
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
        if flow.requested_aal != "aal2" {
            return Err(FlowError::message(text::login_no_strategy()));
        }
        let identity = match flow.identity_id {
            Some(id) => env.store.get_identity(id).await?,
            None => None,
        };
        let Some(identity) = identity.filter(|i| i.credentials.contains_key("totp")) else {
            return Err(FlowError::message(text::no_totp_device()));
        };
        let code = field(body, "totp_code").unwrap_or("").trim();
        if code.is_empty() {
            return Err(FlowError::on_node("totp_code", text::required("totp_code")));
        }
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
