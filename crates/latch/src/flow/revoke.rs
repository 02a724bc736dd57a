//! The `revoke_active_sessions` hook after settings and recovery: every other session of
//! the identity is revoked, the one in use is kept. Kratos: `hook.SessionDestroyer`
//! (`ExecuteSettingsPostPersistHook`, `ExecutePostRecoveryHook`).

use uuid::Uuid;

use super::Service;
use crate::config::Hook;
use crate::store::StoreError;

/// The hook's name in `selfservice.flows.*.after[.<method>].hooks`.
pub const HOOK: &str = "revoke_active_sessions";

/// Revokes the other sessions of `identity_id` when `hooks` list the hook.
pub async fn revoke_active_sessions(
    deps: &Service,
    hooks: &[Hook],
    identity_id: Uuid,
    keep: Uuid,
) -> Result<(), StoreError> {
    if !hooks.iter().any(|h| h.hook == HOOK) {
        return Ok(());
    }
    let n = deps
        .store
        .revoke_identity_sessions(identity_id, Some(keep), deps.clock.now())
        .await?;
    tracing::info!(
        revoked = n,
        "revoke_active_sessions: revoked the identity's other sessions"
    );
    Ok(())
}
