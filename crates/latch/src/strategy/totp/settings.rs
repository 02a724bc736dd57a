//! Add and remove an authenticator app in settings. Kratos:
//! `selfservice/strategy/totp/settings.go`.

use async_trait::async_trait;
use serde_json::Value;

use super::credentials::{self, Key};
use super::{PENDING_KEY, Totp, accept_once, nodes};
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::set_credential;
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, SettingsStrategy, field};
use crate::text;
use crate::ui::Group;

impl Totp {
    /// The app's account name: the trait the schema marks `totp.account_name`, else the
    /// identity id (Kratos: `NewSchemaExtension(id)`).
    fn account_name(env: &Env, identity: &Identity) -> String {
        env.schemas
            .get(&identity.schema_id)
            .and_then(|s| s.validate_traits(&identity.traits).ok())
            .and_then(|x| x.totp_account_name)
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| identity.id.to_string())
    }

    /// A new key for `identity`: kept in the flow's internal context and shown as QR code
    /// and secret, with the code input that confirms it.
    fn offer_new_key(&self, env: &Env, flow: &mut Flow, identity: &Identity) {
        let (key, url) = match Key::generate(&self.issuer, &Self::account_name(env, identity)) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "could not generate a TOTP key");
                return;
            }
        };
        let qr = match credentials::qr_data_url(&url) {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(error = %e, "could not draw the TOTP QR code");
                return;
            }
        };
        flow.internal_set(PENDING_KEY, Value::String(url));
        flow.ui.upsert(nodes::qr(qr));
        flow.ui.upsert(nodes::secret(&key.secret_base32()));
        flow.ui.upsert(nodes::verify_code());
        flow.ui.append(nodes::submit(text::label_save()));
    }
}

fn truthy(body: &Value, name: &str) -> bool {
    match body.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

#[async_trait]
impl SettingsStrategy for Totp {
    fn id(&self) -> &'static str {
        "totp"
    }

    /// Kratos: `PopulateSettingsMethod`.
    fn populate(&self, env: &Env, flow: &mut Flow, identity: &Identity) {
        flow.ui.remove_group(Group::Totp);
        if identity.credentials.contains_key("totp") {
            if let Some(o) = flow.internal.as_object_mut() {
                o.remove(PENDING_KEY);
            }
            flow.ui.upsert(nodes::unlink());
        } else {
            self.offer_new_key(env, flow, identity);
        }
    }

    /// Kratos: the unlink button selects this method, `method` or not.
    fn claims(&self, body: &Value) -> bool {
        truthy(body, "totp_unlink")
    }

    /// Kratos: `continueSettingsFlowAddTOTP` / `continueSettingsFlowRemoveTOTP`.
    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Value,
        identity: &Identity,
    ) -> Result<Identity, FlowError> {
        let env = cx.env;
        let mut updated = identity.clone();
        if identity.credentials.contains_key("totp") {
            if truthy(body, "totp_unlink") {
                updated.credentials.remove("totp");
            }
            return Ok(updated);
        }
        let Some(url) = flow
            .internal_get(PENDING_KEY)
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(FlowError::Internal(
                "the settings flow holds no pending TOTP key".into(),
            ));
        };
        let key = Key::parse(&url).map_err(|e| FlowError::Internal(format!("pending TOTP key: {e}")))?;
        let code = field(body, "totp_code").unwrap_or("").trim();
        if code.is_empty() {
            return Err(FlowError::on_node("totp_code", text::required("totp_code")));
        }
        if !accept_once(env, identity, &key, code).await? {
            return Err(FlowError::on_node("totp_code", text::totp_code_invalid()));
        }
        if let Some(o) = flow.internal.as_object_mut() {
            o.remove(PENDING_KEY);
        }
        set_credential(
            &mut updated,
            "totp",
            vec![identity.id.to_string()],
            credentials::config_of(&url),
            1,
            env.clock.as_ref(),
        );
        Ok(updated)
    }
}
