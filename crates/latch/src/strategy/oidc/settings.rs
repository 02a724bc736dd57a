//! The `oidc` method in settings: a `link` button per provider the identity has not linked,
//! an `unlink` button per linked one (only while another first-factor credential remains).
//! `link` leaves for the provider; its callback completes the settings flow. Kratos:
//! `strategy_settings.go`, `nodes.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{ID, Oidc, is_callback, linked};
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::set_credential;
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, SettingsStrategy, field};
use crate::text;
use crate::ui::{Group, InputType, Node};

const UNKNOWN_CONNECTION: &str = "can not unlink non-existing OpenID Connect connection";
const CONNECTION_EXISTS: &str = "can not link unknown or already existing OpenID Connect connection";
const LAST_FIRST_FACTOR: &str =
    "can not unlink OpenID Connect connection because it is the last remaining first factor credential";

/// The providers in the identity's `oidc` credential, in its order.
fn linked_providers(identity: &Identity) -> Vec<String> {
    identity
        .credentials
        .get(ID)
        .and_then(|c| c.config.get("providers"))
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("provider").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn non_empty<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    field(body, name).filter(|v| !v.is_empty())
}

impl Oidc {
    /// Linked providers that are still configured.
    fn linked_configured(&self, identity: &Identity) -> Vec<String> {
        linked_providers(identity)
            .into_iter()
            .filter(|id| self.provider(id).is_some())
            .collect()
    }

    /// Whether removing one linked provider would still leave a way to sign in: another
    /// linked provider, or another first-factor method. Kratos:
    /// `CountActiveFirstFactorCredentials` > 1.
    fn can_unlink(env: &Env, identity: &Identity) -> bool {
        let providers = identity
            .credentials
            .get(ID)
            .map(|c| linked(&c.config).len())
            .unwrap_or(0);
        providers >= 2 || (providers == 1 && env.credentials.has_first_factor_besides(&env.config, identity, ID))
    }

    /// The provider `id`, if configured and not yet linked (Kratos' `isLinkable`).
    fn linkable(&self, identity: &Identity, id: &str) -> Result<&crate::config::OidcProvider, FlowError> {
        match self.provider(id) {
            Some(p) if !linked_providers(identity).iter().any(|l| l == id) => Ok(p),
            _ => Err(FlowError::message(text::validation_generic(CONNECTION_EXISTS))),
        }
    }
}

#[async_trait]
impl SettingsStrategy for Oidc {
    fn id(&self) -> &'static str {
        ID
    }

    /// Kratos: `PopulateSettingsMethod` — `link` nodes first, then `unlink` nodes.
    fn populate(&self, env: &Env, flow: &mut Flow, identity: &Identity) {
        flow.ui.remove_in_group(Group::Oidc, &["link", "unlink"]);
        let linked = self.linked_configured(identity);
        for p in self.providers.iter().filter(|p| !linked.contains(&p.id)) {
            flow.ui.append(
                Node::input("link", InputType::Submit, Group::Oidc)
                    .value(p.id.clone())
                    .label(text::settings_link_oidc(p.label())),
            );
        }
        if Self::can_unlink(env, identity) {
            for id in &linked {
                if let Some(p) = self.provider(id) {
                    flow.ui.append(
                        Node::input("unlink", InputType::Submit, Group::Oidc)
                            .value(p.id.clone())
                            .label(text::settings_unlink_oidc(p.label())),
                    );
                }
            }
        }
    }

    /// Kratos' buttons post `link=<id>` or `unlink=<id>` alone.
    fn claims(&self, body: &Value) -> bool {
        non_empty(body, "link").is_some() || non_empty(body, "unlink").is_some()
    }

    fn check(&self, body: &Value) -> Result<(), FlowError> {
        if non_empty(body, "link").is_some() && non_empty(body, "unlink").is_some() {
            return Err(FlowError::message(text::validation_generic(
                "it is not possible to link and unlink providers in the same request",
            )));
        }
        Ok(())
    }

    /// `link`: remember state, nonce and PKCE on the settings flow and leave for the
    /// provider. Kratos: `initLinkProvider`.
    async fn leaves_for(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Value,
        identity: &Identity,
    ) -> Result<Option<String>, FlowError> {
        let Some(id) = non_empty(body, "link").filter(|_| !is_callback(body)) else {
            return Ok(None);
        };
        let p = self.linkable(identity, id)?;
        let start = json!({
            "provider": p.id,
            "upstream_parameters": body.get("upstream_parameters").cloned().unwrap_or(Value::Null),
        });
        Ok(Some(self.start(cx.env, flow, &start).await?))
    }

    /// The provider's callback (`link`) or `unlink`. Kratos: `linkProvider`, `unlinkProvider`.
    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Value,
        identity: &Identity,
    ) -> Result<Identity, FlowError> {
        let env = cx.env;
        let mut updated = identity.clone();
        if is_callback(body) {
            let (p, claims) = self.finish(env, flow, body).await?;
            // The session's method entry is not the flow's business here.
            if let Some(o) = flow.internal.as_object_mut() {
                o.remove(crate::model::flow::AMR_PROVIDER);
            }
            flow.active = Some(ID.to_string());
            self.linkable(identity, &p.id)?;
            let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("");
            super::link::add_provider(env, &mut updated, &p.id, subject)?;
            return Ok(updated);
        }
        let Some(id) = non_empty(body, "unlink") else {
            return Err(FlowError::message(text::settings_no_strategy()));
        };
        if !Self::can_unlink(env, identity) {
            return Err(FlowError::message(text::validation_generic(LAST_FIRST_FACTOR)));
        }
        if !self.linked_configured(identity).iter().any(|l| l == id) {
            return Err(FlowError::message(text::validation_generic(UNKNOWN_CONNECTION)));
        }
        let Some(cred) = identity.credentials.get(ID) else {
            return Err(FlowError::message(text::validation_generic(UNKNOWN_CONNECTION)));
        };
        let mut config = cred.config.clone();
        let kept: Vec<Value> = config
            .get("providers")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter(|p| p.get("provider").and_then(Value::as_str) != Some(id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        config["providers"] = Value::Array(kept);
        let identifiers = linked(&config);
        set_credential(&mut updated, ID, identifiers, config, cred.version, env.clock.as_ref());
        Ok(updated)
    }
}
