//! Generate, confirm, reveal and disable backup codes in settings. Kratos:
//! `selfservice/strategy/lookup/settings.go`.
//!
//! The settings engine stores the identity a submission returns and shows the flow again, so
//! regenerate and reveal return the identity unchanged and leave their state in the flow's
//! internal context, which [`SettingsStrategy::populate`] renders.

use async_trait::async_trait;
use serde_json::Value;

use super::{LookupSecret, PENDING_KEY, REVEALED_KEY, codes, nodes, stored_codes};
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::set_credential;
use crate::model::flow::Flow;
use crate::strategy::{Cx, FlowError, SettingsStrategy};
use crate::text;
use crate::ui::Group;

const ACTIONS: [&str; 4] = [
    "lookup_secret_confirm",
    "lookup_secret_reveal",
    "lookup_secret_disable",
    "lookup_secret_regenerate",
];

fn truthy(body: &Value, name: &str) -> bool {
    match body.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

fn forget(flow: &mut Flow, keys: &[&str]) {
    if let Some(o) = flow.internal.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
}

/// The codes waiting for confirmation in the flow's internal context.
fn pending(flow: &Flow) -> Vec<String> {
    flow.internal_get(PENDING_KEY)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

#[async_trait]
impl SettingsStrategy for LookupSecret {
    fn id(&self) -> &'static str {
        "lookup_secret"
    }

    /// Kratos: `PopulateSettingsMethod`, plus the screens its reveal and regenerate answers
    /// show (kept in the internal context, see the module documentation).
    fn populate(&self, _env: &Env, flow: &mut Flow, identity: &Identity) {
        flow.ui.remove_group(Group::LookupSecret);
        let new = pending(flow);
        if !new.is_empty() {
            let shown: Vec<_> = new.iter().map(|c| text::settings_lookup_secret(c)).collect();
            flow.ui.upsert(nodes::codes(&shown));
            flow.ui.upsert(nodes::confirm());
            return;
        }
        if !identity.credentials.contains_key("lookup_secret") {
            forget(flow, &[REVEALED_KEY]);
            flow.ui.upsert(nodes::regenerate());
            return;
        }
        if flow.internal_get(REVEALED_KEY) == Some(&Value::Bool(true)) {
            // Codes are stored hashed, so they cannot be shown again: each unused one is
            // masked, each used one says when (1050014), as in Kratos.
            let shown: Vec<_> = stored_codes(identity)
                .iter()
                .map(|s| match s.used_at {
                    Some(at) => text::settings_lookup_secret_used(at),
                    None => text::settings_lookup_secret(&"*".repeat(codes::LEN)),
                })
                .collect();
            flow.ui.upsert(nodes::codes(&shown));
            flow.ui.upsert(nodes::disable());
            flow.ui.upsert(nodes::regenerate());
        } else {
            flow.ui.upsert(nodes::reveal());
            flow.ui.upsert(nodes::disable());
        }
    }

    /// Kratos: any of the four buttons selects this method, `method` or not.
    fn claims(&self, body: &Value) -> bool {
        ACTIONS.iter().any(|a| truthy(body, a))
    }

    /// A submission must press one of the method's buttons.
    fn check(&self, body: &Value) -> Result<(), FlowError> {
        if ACTIONS.iter().any(|a| truthy(body, a)) {
            Ok(())
        } else {
            Err(FlowError::message(text::settings_no_strategy()))
        }
    }

    /// Kratos: `continueSettingsFlowConfirm` / `…Reveal` / `…Disable` / `…Regenerate`, in
    /// that order of precedence.
    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Value,
        identity: &Identity,
    ) -> Result<Identity, FlowError> {
        let env = cx.env;
        let mut updated = identity.clone();
        if truthy(body, "lookup_secret_confirm") {
            let new = pending(flow);
            if new.len() != codes::COUNT {
                return Err(FlowError::message(text::validation_generic(
                    "You must (re-)generate recovery backup codes before you can save them.",
                )));
            }
            let stored: Vec<_> = new
                .iter()
                .map(|c| codes::Stored {
                    code_hash: codes::hash(c),
                    used_at: None,
                })
                .collect();
            forget(flow, &[PENDING_KEY, REVEALED_KEY]);
            set_credential(
                &mut updated,
                "lookup_secret",
                vec![identity.id.to_string()],
                codes::config_of(&stored),
                1,
                env.clock.as_ref(),
            );
        } else if truthy(body, "lookup_secret_reveal") {
            if !identity.credentials.contains_key("lookup_secret") {
                return Err(FlowError::message(text::validation_generic(
                    "Can not reveal lookup codes because you have none.",
                )));
            }
            forget(flow, &[PENDING_KEY]);
            flow.internal_set(REVEALED_KEY, Value::Bool(true));
        } else if truthy(body, "lookup_secret_disable") {
            forget(flow, &[PENDING_KEY, REVEALED_KEY]);
            updated.credentials.remove("lookup_secret");
        } else {
            let new = codes::generate();
            forget(flow, &[REVEALED_KEY]);
            flow.internal_set(PENDING_KEY, Value::from(new));
        }
        Ok(updated)
    }
}
