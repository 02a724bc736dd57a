//! Address changes waiting for the new address to be verified (the `verify_new_address`
//! settings hook). Kratos: `identity.PendingTraitsChange`, `persister_pending_traits_change.go`.
//! Applying one is [`Store::apply_pending_change`] (in `identity.rs`, next to the identity
//! writes it shares).

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, Ts};

/// A deferred change: the traits to store once `address` is proven in the verification flow.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingChange {
    /// Row id.
    pub id: Uuid,
    /// Whose traits change.
    pub identity_id: Uuid,
    /// The session that asked; the change is refused once it is no longer active.
    pub session_id: Uuid,
    /// The settings flow that asked.
    pub settings_flow_id: Uuid,
    /// The verification flow that proves the new address.
    pub verification_flow_id: Uuid,
    /// `email` (or `sms`).
    pub via: String,
    /// The new address.
    pub address: String,
    /// [`traits_hash`] of the traits when the change was asked for: the change is refused when
    /// they changed meanwhile.
    pub original_traits_hash: String,
    /// The traits to store.
    pub proposed_traits: Value,
    /// When it was asked for.
    pub created_at: OffsetDateTime,
}

/// Why a pending change was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It is gone: applied already, replaced by a newer change, or removed with its flows.
    Gone,
    /// The session that asked was revoked, expired or deleted, or the identity is no longer
    /// active.
    SessionInvalid,
    /// The identity changed since the change was asked for.
    Modified,
}

/// A digest of traits, to notice that they changed (Kratos: `identity.HashTraits`).
pub fn traits_hash(traits: &Value) -> String {
    crate::crypto::sha256_hex(traits.to_string().as_bytes())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    identity_id: Uuid,
    session_id: Uuid,
    settings_flow_id: Uuid,
    verification_flow_id: Uuid,
    via: String,
    address: String,
    original_traits_hash: String,
    proposed_traits: Json<Value>,
    created_at: Ts,
}

pub(crate) const PENDING_COLUMNS: &str = "id, identity_id, session_id, settings_flow_id, verification_flow_id, \
    via, address, original_traits_hash, proposed_traits, created_at";

impl From<Row> for PendingChange {
    fn from(r: Row) -> Self {
        PendingChange {
            id: r.id,
            identity_id: r.identity_id,
            session_id: r.session_id,
            settings_flow_id: r.settings_flow_id,
            verification_flow_id: r.verification_flow_id,
            via: r.via,
            address: r.address,
            original_traits_hash: r.original_traits_hash,
            proposed_traits: r.proposed_traits.0,
            created_at: r.created_at.0,
        }
    }
}

impl Store {
    /// Stores `change` in place of any earlier pending change of the same identity (one
    /// transaction: an older verification flow can no longer apply its change).
    pub async fn replace_pending_change(&self, change: &PendingChange) -> Result<(), StoreError> {
        crate::with_tx!(self, tx => {
            sqlx::query("DELETE FROM identity_pending_address_changes WHERE identity_id = $1")
                .bind(change.identity_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO identity_pending_address_changes (id, identity_id, session_id, settings_flow_id, \
                 verification_flow_id, via, address, original_traits_hash, proposed_traits, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(change.id)
            .bind(change.identity_id)
            .bind(change.session_id)
            .bind(change.settings_flow_id)
            .bind(change.verification_flow_id)
            .bind(&change.via)
            .bind(&change.address)
            .bind(&change.original_traits_hash)
            .bind(Json(&change.proposed_traits))
            .bind(Ts(change.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, "a pending address change"))?;
            Ok::<(), StoreError>(())
        })
    }

    /// The pending change a verification flow proves, if any.
    pub async fn pending_change_for_flow(
        &self,
        verification_flow_id: Uuid,
    ) -> Result<Option<PendingChange>, StoreError> {
        let sql =
            format!("SELECT {PENDING_COLUMNS} FROM identity_pending_address_changes WHERE verification_flow_id = $1");
        let row: Option<Row> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(verification_flow_id).fetch_optional(p).await?
        });
        Ok(row.map(PendingChange::from))
    }

    /// The pending change of an identity, if any.
    pub async fn pending_change_of(&self, identity_id: Uuid) -> Result<Option<PendingChange>, StoreError> {
        let sql = format!("SELECT {PENDING_COLUMNS} FROM identity_pending_address_changes WHERE identity_id = $1");
        let row: Option<Row> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(identity_id).fetch_optional(p).await?
        });
        Ok(row.map(PendingChange::from))
    }
}
