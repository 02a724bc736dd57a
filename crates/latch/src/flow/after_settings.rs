//! What runs after settings stored an identity that `hooks.rs` does not run:
//! `notify_previous_addresses` (Kratos: `hook.NotifyPreviousAddresses`), and the post-persist
//! hooks once a change deferred by `verify_new_address` was applied in the verification flow
//! (`address_change.rs`). The verification flow calls it; it uses only `web_hook.rs` and
//! `revoke.rs`.
//!
//! `notify_previous_addresses`: after an address change is stored (directly, or when a
//! deferred one is applied), the previous addresses get a `verifiable_address_changed` mail.
//! `config.recipients`: `removed` (default: addresses gone after the change), `all_verified`
//! (every address verified before it) or `all` (every address before it). Nobody is mailed when
//! the set of addresses did not change. Mail failures are logged and never fail the flow (as
//! Kratos). Latch's courier sends email only: phone numbers are skipped with a warning.

use serde_json::{Value, json};

use super::request::Request as Req;
use super::{Flow, Service};
use crate::config::Hook;
use crate::identity::Identity;
use crate::strategy::address_change::Applied;

/// Hooks Kratos runs after settings saved the identity (`settings.PostHookPostPersistExecutor`
/// implementations). `verify_new_address` runs before the save, from the profile method's own
/// list only (`address_change.rs`), so it does not make that list the one used here.
pub const SETTINGS_AFTER: &[&str] = &[
    "revoke_active_sessions",
    "show_verification_ui",
    "verification",
    "web_hook",
    "notify_previous_addresses",
];

/// The method whose list `verify_new_address` is read from.
const PROFILE: &str = "profile";

/// The post-persist hooks of a profile change (the profile method's list, else the flow-wide
/// one) once a deferred change was applied by the verification flow `flow` on request `req`:
/// `revoke_active_sessions` (every session but the one that asked), `web_hook` (post-persist
/// ones; `ctx.flow` is the verification flow, `ctx.identity` the identity as stored now;
/// `response.ignore` ones go to the outbox right after the change committed) and
/// `notify_previous_addresses`. Failures are logged: the change is stored.
pub async fn after_applied(deps: &Service, applied: &Applied, flow: &Flow, req: &Req) {
    let hooks = deps
        .config
        .selfservice
        .flows
        .settings
        .after
        .hooks_running(PROFILE, SETTINGS_AFTER);
    if let Err(e) = super::revoke::revoke_active_sessions(deps, hooks, applied.updated.id, applied.session_id).await {
        tracing::warn!(error = %e, "revoke_active_sessions after an address change failed");
    }
    let subject = super::web_hook::Subject {
        flow,
        req,
        body: None,
        session: None,
    };
    let event = super::web_hook::event(super::FlowKind::Settings, "after");
    let outbox = super::web_hook::queue(deps, hooks, &event, &subject, Some(&applied.updated)).await;
    super::web_hook::enqueue_after_commit(deps, &event, &outbox).await;
    if let Err(e) = super::web_hook::run(
        deps,
        hooks,
        super::web_hook::Stage::PostPersist,
        &subject,
        super::web_hook::Who::Shown(&applied.updated),
    )
    .await
    {
        tracing::warn!(error = ?e, "a settings web hook after an address change failed");
    }
    notify_previous_addresses(deps, hooks, &applied.previous, &applied.updated).await;
}

/// `notify_previous_addresses` after `previous` became `updated`: mails the previous
/// addresses [`recipients`] picks. Never fails the flow.
pub async fn notify_previous_addresses(deps: &Service, hooks: &[Hook], previous: &Identity, updated: &Identity) {
    for hook in hooks.iter().filter(|h| h.hook == "notify_previous_addresses") {
        let mode = hook
            .config
            .get("recipients")
            .and_then(Value::as_str)
            .unwrap_or("removed");
        let targets = recipients(mode, previous, updated);
        if targets.is_empty() {
            continue;
        }
        let now = deps.clock.now();
        let identity = updated.to_json(&deps.schema_url(&updated.schema_id), &Default::default());
        for (via, to) in targets {
            if via != "email" {
                // Latch's courier sends email only.
                tracing::warn!(via = %via, "notify_previous_addresses: skipped an address Latch cannot send to");
                continue;
            }
            if let Err(e) = send_notice(deps, &to, &identity, now).await {
                tracing::warn!(error = %e, "notify_previous_addresses: a notice could not be queued");
            }
        }
    }
}

async fn send_notice(
    deps: &Service,
    to: &str,
    identity: &Value,
    now: time::OffsetDateTime,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use crate::courier::message::{NewMessage, TemplateType};
    let kind = TemplateType::VerifiableAddressChanged;
    let data = json!({"to": to, "identity": identity, "changed_at": crate::clock::rfc3339(now)});
    let rendered = crate::courier::templates::render(&deps.config, kind, &data)?;
    let msg = NewMessage::new(to, kind, rendered, data, now);
    deps.store.enqueue_message(&msg).await?;
    Ok(())
}

/// The previous addresses to notify, by `mode` (Kratos: `computeNotifyTargets`): nobody when
/// the set of `(via, value)` did not change (a status or verified flag alone is no change).
pub fn recipients(mode: &str, previous: &Identity, updated: &Identity) -> Vec<(String, String)> {
    let key = |a: &crate::identity::VerifiableAddress| (a.via.clone(), a.value.clone());
    let before: std::collections::BTreeSet<_> = previous.verifiable_addresses.iter().map(key).collect();
    let after: std::collections::BTreeSet<_> = updated.verifiable_addresses.iter().map(key).collect();
    if before == after && previous.verifiable_addresses.len() == updated.verifiable_addresses.len() {
        return vec![];
    }
    match mode {
        "all_verified" => previous
            .verifiable_addresses
            .iter()
            .filter(|a| a.verified)
            .map(key)
            .collect(),
        "all" => previous.verifiable_addresses.iter().map(key).collect(),
        _ => previous
            .verifiable_addresses
            .iter()
            .map(key)
            .filter(|k| !after.contains(k))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SystemClock};
    use crate::identity::VerifiableAddress;
    use crate::identity::manager::new_identity;

    fn with(addresses: &[(&str, bool)]) -> Identity {
        let clock = SystemClock;
        let mut i = new_identity("default", json!({}), &clock);
        i.verifiable_addresses = addresses
            .iter()
            .map(|(value, verified)| VerifiableAddress {
                id: uuid::Uuid::new_v4(),
                via: "email".into(),
                value: (*value).into(),
                verified: *verified,
                verified_at: None,
                status: if *verified { "completed" } else { "sent" }.into(),
                created_at: clock.now(),
                updated_at: clock.now(),
            })
            .collect();
        i
    }

    fn values(v: Vec<(String, String)>) -> Vec<String> {
        v.into_iter().map(|(_, value)| value).collect()
    }

    #[test]
    fn recipients_follow_kratos_modes() {
        let before = with(&[("a@x.test", true), ("b@x.test", false), ("c@x.test", true)]);
        let after = with(&[("a@x.test", true), ("d@x.test", false)]);
        assert_eq!(values(recipients("removed", &before, &after)), ["b@x.test", "c@x.test"]);
        assert_eq!(values(recipients("", &before, &after)), ["b@x.test", "c@x.test"]);
        assert_eq!(
            values(recipients("all_verified", &before, &after)),
            ["a@x.test", "c@x.test"]
        );
        assert_eq!(
            values(recipients("all", &before, &after)),
            ["a@x.test", "b@x.test", "c@x.test"]
        );
        // A verified flag or status alone is no change: nobody is told.
        let flipped = with(&[("a@x.test", true), ("b@x.test", true), ("c@x.test", true)]);
        for mode in ["removed", "all_verified", "all"] {
            assert!(recipients(mode, &before, &flipped).is_empty(), "{mode}");
        }
    }
}
