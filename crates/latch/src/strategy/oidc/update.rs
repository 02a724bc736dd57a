//! `update_identity_on_login: automatic`: at every sign-in the provider's mapper runs again
//! (with the stored identity as `std.extVar('identity')`); its traits win over the stored
//! ones, traits it does not output are kept, metadata it outputs replaces the stored, and
//! addresses it lists as verified become verified. The identity is written only when
//! something changed. Kratos: `UpdateIdentityFromClaims` in `strategy_login.go`.

use serde_json::{Value, json};

use super::{claims, registration::merge};
use crate::config::{OidcProvider, UpdateOnLogin};
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::{TraitsError, apply_traits};
use crate::strategy::FlowError;
use crate::text;

/// The identity signing in with `claims` at `p`, updated (and stored) when `p` says so.
pub(super) async fn on_login(
    env: &Env,
    p: &OidcProvider,
    claims: &Value,
    mut identity: Identity,
) -> Result<Identity, FlowError> {
    if p.update_identity_on_login != UpdateOnLogin::Automatic {
        return Ok(identity);
    }
    let context = json!({
        "traits": identity.traits,
        "metadata_public": identity.metadata_public.clone().unwrap_or_else(|| json!({})),
        "metadata_admin": identity.metadata_admin.clone().unwrap_or_else(|| json!({})),
    });
    let mapped = claims::map_for(p, claims, context).await?;
    let before = identity.clone();
    identity.traits = merge(&mapped.traits, &identity.traits);
    if mapped.metadata_public.is_some() {
        identity.metadata_public = mapped.metadata_public;
    }
    if mapped.metadata_admin.is_some() {
        identity.metadata_admin = mapped.metadata_admin;
    }
    // Invalid mapper output is refused; nothing is written.
    if let Err(e) = apply_traits(&mut identity, &env.schemas, env.clock.as_ref()) {
        return Err(match e {
            TraitsError::Invalid(errs) => crate::strategy::traits_invalid(&errs),
            other => FlowError::message(text::system_generic(&other.to_string())),
        });
    }
    let now = env.clock.now();
    for a in identity.verifiable_addresses.iter_mut() {
        if !a.verified && a.via == "email" && mapped.verified_emails.contains(&a.value.trim().to_lowercase()) {
            a.verified = true;
            a.verified_at = Some(now);
            a.status = "completed".into();
            a.updated_at = now;
        }
    }
    let mut compare = identity.clone();
    compare.updated_at = before.updated_at;
    if compare != before {
        env.store.update_identity(&identity).await?;
    } else {
        identity.updated_at = before.updated_at;
    }
    Ok(identity)
}
