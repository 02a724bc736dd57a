//! The verification side of `verify_new_address`: a settings change of an address waits in
//! [`PendingChange`] until the code or link sent to the new address is redeemed in the
//! verification flow the hook started; then the proposed traits are stored with the new address
//! already verified, atomically ([`crate::store::Store::apply_pending_change`]). Kratos:
//! `settings.HookExecutor.ApplyPendingTraitsChange`, called from the code and link
//! verification strategies.

use uuid::Uuid;

use super::{FlowError, VerificationOutcome};
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::apply_traits;
use crate::store::StoreError;
use crate::store::pending::{PendingChange, Refusal};

/// A change that was applied: the identity before and after, for the hooks that run next.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The identity before the change.
    pub previous: Identity,
    /// The identity as stored now.
    pub updated: Identity,
    /// The session that asked for the change.
    pub session_id: Uuid,
    /// The settings flow that asked for it.
    pub settings_flow_id: Uuid,
}

/// Why a proven change was not applied (the verification flow shows "invalid or already used"
/// for the first two, as Kratos, and "already exists" for the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotApplied {
    /// Gone, the session is no longer active, or the identity changed meanwhile.
    Refused,
    /// The proof is for another address or identity than the change.
    Mismatch,
    /// Another identity holds the new address now.
    Taken,
}

/// The pending change of a verification flow, if any.
pub async fn for_flow(env: &Env, verification_flow_id: Uuid) -> Result<Option<PendingChange>, FlowError> {
    Ok(env.store.pending_change_for_flow(verification_flow_id).await?)
}

/// Applies `change` after the proof for `address` (sent for `identity_id`) was redeemed.
pub async fn apply(
    env: &Env,
    change: &PendingChange,
    identity_id: Option<Uuid>,
    address: &str,
) -> Result<Result<Applied, NotApplied>, FlowError> {
    if identity_id != Some(change.identity_id) || address != change.address {
        return Ok(Err(NotApplied::Mismatch));
    }
    let Some(previous) = env.store.get_identity(change.identity_id).await? else {
        return Ok(Err(NotApplied::Refused));
    };
    let now = env.clock.now();
    let mut updated = previous.clone();
    updated.traits = change.proposed_traits.clone();
    if let Err(e) = apply_traits(&mut updated, &env.schemas, env.clock.as_ref()) {
        // The schema changed since the change was asked for.
        tracing::warn!(error = %e, "a pending address change no longer fits the identity schema");
        return Ok(Err(NotApplied::Refused));
    }
    if !updated.mark_address_verified(&change.address, now) {
        tracing::warn!("a pending address change does not hold the address it proves");
        return Ok(Err(NotApplied::Refused));
    }
    updated.updated_at = now;
    match env.store.apply_pending_change(change, &previous, &updated, now).await {
        Ok(Ok(())) => Ok(Ok(Applied {
            previous,
            updated,
            session_id: change.session_id,
            settings_flow_id: change.settings_flow_id,
        })),
        Ok(Err(refusal)) => {
            let why = match refusal {
                Refusal::Gone => "gone",
                Refusal::SessionInvalid => "the session that asked for it is no longer active",
                Refusal::Modified => "the identity changed meanwhile",
            };
            tracing::info!(reason = why, "a pending address change was refused");
            Ok(Err(NotApplied::Refused))
        }
        Err(StoreError::Conflict(_)) => Ok(Err(NotApplied::Taken)),
        Err(e) => Err(e.into()),
    }
}

/// What a verification strategy answers once the proof for a flow with a pending change was
/// redeemed: the applied change, or `invalid` (the strategy's "invalid or already used").
pub async fn outcome(
    env: &Env,
    change: &PendingChange,
    identity_id: Option<Uuid>,
    address: &str,
    invalid: crate::text::UiText,
) -> Result<VerificationOutcome, FlowError> {
    Ok(match apply(env, change, identity_id, address).await? {
        Ok(applied) => VerificationOutcome::AddressChanged(Box::new(applied)),
        Err(NotApplied::Taken) => VerificationOutcome::Refused(crate::text::duplicate_credentials()),
        Err(NotApplied::Refused | NotApplied::Mismatch) => VerificationOutcome::Refused(invalid),
    })
}

/// Who a proof for `address` in this verification flow is for: with a pending change, its
/// identity with the proposed traits (and the change's address, whatever was typed, as Kratos
/// resends to it); else the identity holding the address. A pending change whose address
/// another identity took meanwhile is refused with "already exists".
pub async fn recipient(env: &Env, flow_id: Uuid, address: &str) -> Result<(String, Option<Identity>), FlowError> {
    let Some(change) = for_flow(env, flow_id).await? else {
        let owner = env.store.find_identity_by_address(true, "email", address).await?;
        return Ok((address.to_string(), owner));
    };
    if let Some(other) = env
        .store
        .find_identity_by_address(true, &change.via, &change.address)
        .await?
        && other.id != change.identity_id
    {
        return Err(FlowError::message(crate::text::duplicate_credentials()));
    }
    let owner = env.store.get_identity(change.identity_id).await?.map(|mut i| {
        i.traits = change.proposed_traits.clone();
        i
    });
    Ok((change.address, owner))
}
