//! Identity persistence: one identity row plus its credentials, credential identifiers and
//! addresses, always written together in one transaction.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::sql::placeholders;
use super::{Store, StoreError, Ts};
use crate::identity::{Credential, CredentialsType, Identity, RecoveryAddress, State, VerifiableAddress};

/// One `identities` row ([`IDENTITY_COLUMNS`]).
#[derive(sqlx::FromRow)]
struct IdentityRow {
    id: Uuid,
    schema_id: String,
    traits: Json<Value>,
    state: String,
    state_changed_at: Option<Ts>,
    metadata_public: Option<Json<Value>>,
    metadata_admin: Option<Json<Value>>,
    external_id: Option<String>,
    organization_id: Option<Uuid>,
    created_at: Ts,
    updated_at: Ts,
}

/// One `identity_credentials` row.
#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: Uuid,
    identity_id: Uuid,
    #[sqlx(rename = "type")]
    kind: String,
    config: Json<Value>,
    version: i32,
    created_at: Ts,
    updated_at: Ts,
}

/// One `identity_credential_identifiers` row (the columns hydration needs).
#[derive(sqlx::FromRow)]
struct IdentifierRow {
    credential_id: Uuid,
    identifier: String,
}

/// One `identity_verifiable_addresses` row.
#[derive(sqlx::FromRow)]
struct VerifiableRow {
    id: Uuid,
    identity_id: Uuid,
    via: String,
    value: String,
    verified: bool,
    verified_at: Option<Ts>,
    status: String,
    created_at: Ts,
    updated_at: Ts,
}

/// One `identity_recovery_addresses` row.
#[derive(sqlx::FromRow)]
struct RecoveryRow {
    id: Uuid,
    identity_id: Uuid,
    via: String,
    value: String,
    created_at: Ts,
    updated_at: Ts,
}

const IDENTITY_COLUMNS: &str = "id, schema_id, traits, state, state_changed_at, metadata_public, \
    metadata_admin, external_id, organization_id, created_at, updated_at";

/// Which identities to list. Kratos: `listIdentities` filters (one at a time).
#[derive(Debug, Default, Clone)]
pub struct IdentityFilter {
    /// Only these ids.
    pub ids: Vec<Uuid>,
    /// Only the identity holding this credential identifier (any credential type).
    pub credentials_identifier: Option<String>,
    /// Keyset pagination: ids strictly greater than this one.
    pub after: Option<Uuid>,
    /// Page size.
    pub limit: u32,
}

/// What an identifier conflict is about, for the 409 message.
pub const CONFLICT: &str = "This identity conflicts with another identity that already exists.";

/// Inserts the identity and everything it owns; fails with [`StoreError::Conflict`] when an
/// identifier, address or external id is taken.
macro_rules! insert_children {
    ($tx:expr, $ident:expr) => {{
        let ident: &Identity = $ident;
        for c in ident.credentials.values() {
            sqlx::query(
                "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(c.id)
            .bind(ident.id)
            .bind(c.kind.as_str())
            .bind(Json(&c.config))
            .bind(c.version)
            .bind(Ts(c.created_at))
            .bind(Ts(c.updated_at))
            .execute(&mut *$tx)
            .await
            .map_err(|e| StoreError::from_write(e, CONFLICT))?;
            for identifier in &c.identifiers {
                sqlx::query(
                    "INSERT INTO identity_credential_identifiers (id, identity_id, credential_id, type, identifier, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(Uuid::new_v4())
                .bind(ident.id)
                .bind(c.id)
                .bind(c.kind.as_str())
                .bind(identifier)
                .bind(Ts(c.updated_at))
                .execute(&mut *$tx)
                .await
                .map_err(|e| StoreError::from_write(e, CONFLICT))?;
            }
        }
        for a in &ident.verifiable_addresses {
            sqlx::query(
                "INSERT INTO identity_verifiable_addresses (id, identity_id, via, value, verified, verified_at, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(a.id)
            .bind(ident.id)
            .bind(&a.via)
            .bind(&a.value)
            .bind(a.verified)
            .bind(a.verified_at.map(Ts))
            .bind(&a.status)
            .bind(Ts(a.created_at))
            .bind(Ts(a.updated_at))
            .execute(&mut *$tx)
            .await
            .map_err(|e| StoreError::from_write(e, CONFLICT))?;
        }
        for a in &ident.recovery_addresses {
            sqlx::query(
                "INSERT INTO identity_recovery_addresses (id, identity_id, via, value, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(a.id)
            .bind(ident.id)
            .bind(&a.via)
            .bind(&a.value)
            .bind(Ts(a.created_at))
            .bind(Ts(a.updated_at))
            .execute(&mut *$tx)
            .await
            .map_err(|e| StoreError::from_write(e, CONFLICT))?;
        }
    }};
}

/// Inserts the `identities` row.
macro_rules! insert_identity_row {
    ($tx:expr, $ident:expr) => {{
        let ident: &Identity = $ident;
        sqlx::query(
            "INSERT INTO identities (id, schema_id, traits, state, state_changed_at, metadata_public, \
             metadata_admin, external_id, organization_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(ident.id)
        .bind(&ident.schema_id)
        .bind(Json(&ident.traits))
        .bind(ident.state.as_str())
        .bind(ident.state_changed_at.map(Ts))
        .bind(ident.metadata_public.as_ref().map(Json))
        .bind(ident.metadata_admin.as_ref().map(Json))
        .bind(&ident.external_id)
        .bind(ident.organization_id)
        .bind(Ts(ident.created_at))
        .bind(Ts(ident.updated_at))
        .execute(&mut *$tx)
        .await
        .map_err(|e| StoreError::from_write(e, CONFLICT))?;
    }};
}

/// Deletes everything an identity owns (not the identity row).
macro_rules! delete_children {
    ($tx:expr, $id:expr) => {{
        for table in [
            "identity_credential_identifiers",
            "identity_credentials",
            "identity_verifiable_addresses",
            "identity_recovery_addresses",
        ] {
            let sql = format!("DELETE FROM {table} WHERE identity_id = $1");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind($id)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// The SQL of [`Store::list_identities`] for this filter.
pub(crate) fn list_identities_sql(f: &IdentityFilter) -> String {
    let mut sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE 1 = 1");
    let mut n = 0;
    if !f.ids.is_empty() {
        sql.push_str(&format!(" AND id IN ({})", placeholders(n + 1, f.ids.len())));
        n += f.ids.len();
    }
    if f.credentials_identifier.is_some() {
        n += 1;
        sql.push_str(&format!(
            " AND id IN (SELECT identity_id FROM identity_credential_identifiers WHERE identifier = ${n})"
        ));
    }
    if f.after.is_some() {
        n += 1;
        sql.push_str(&format!(" AND id > ${n}"));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", f.limit.max(1)));
    sql
}

/// Finds the identity id holding an identifier of one credential type (every login).
pub(crate) const IDENTITY_BY_IDENTIFIER: &str =
    "SELECT identity_id FROM identity_credential_identifiers WHERE type = $1 AND identifier = $2";

/// The four queries that load credentials and addresses for identities (`list` is the
/// placeholder list of their ids).
pub(crate) fn hydrate_sql(list: &str) -> [String; 4] {
    [
        format!(
            "SELECT id, identity_id, type, config, version, created_at, updated_at FROM identity_credentials WHERE identity_id IN ({list})"
        ),
        format!(
            "SELECT credential_id, identifier FROM identity_credential_identifiers WHERE identity_id IN ({list}) ORDER BY identifier"
        ),
        format!(
            "SELECT id, identity_id, via, value, verified, verified_at, status, created_at, updated_at \
             FROM identity_verifiable_addresses WHERE identity_id IN ({list}) ORDER BY created_at, value"
        ),
        format!(
            "SELECT id, identity_id, via, value, created_at, updated_at \
             FROM identity_recovery_addresses WHERE identity_id IN ({list}) ORDER BY created_at, value"
        ),
    ]
}

impl Store {
    /// Creates an identity with its credentials and addresses in one transaction.
    pub async fn insert_identity(&self, ident: &Identity) -> Result<(), StoreError> {
        self.insert_identity_with(ident, &[]).await
    }

    /// [`Store::insert_identity`] that also queues web hook deliveries in the same transaction
    /// (a registration and its `response.ignore` web hooks commit together), then wakes this
    /// node's web hook worker.
    pub async fn insert_identity_with(
        &self,
        ident: &Identity,
        deliveries: &[crate::webhook::outbox::NewDelivery],
    ) -> Result<(), StoreError> {
        crate::with_tx!(self, tx => {
            insert_identity_row!(tx, ident);
            insert_children!(tx, ident);
            for d in deliveries {
                crate::store::webhook::insert_webhook_delivery!(tx, d);
            }
            Ok::<(), StoreError>(())
        })?;
        if !deliveries.is_empty() {
            self.wake_web_hooks();
        }
        Ok(())
    }

    /// Creates many identities in one transaction (the admin batch endpoint and the import
    /// CLI). Each identity sits behind its own savepoint: one that conflicts with an existing
    /// identity (or an earlier one of the batch) is rolled back alone and reported at its
    /// index, the others are committed together. Other database errors fail the whole batch.
    pub async fn insert_identities(&self, idents: &[Identity]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        crate::with_tx!(self, tx => {
            let mut results = Vec::with_capacity(idents.len());
            for ident in idents {
                sqlx::query("SAVEPOINT latch_import").execute(&mut *tx).await?;
                let one: Result<(), StoreError> = async {
                    insert_identity_row!(tx, ident);
                    insert_children!(tx, ident);
                    Ok(())
                }
                .await;
                match one {
                    Ok(()) => {
                        sqlx::query("RELEASE SAVEPOINT latch_import").execute(&mut *tx).await?;
                        results.push(Ok(()));
                    }
                    Err(e @ StoreError::Conflict(_)) => {
                        sqlx::query("ROLLBACK TO SAVEPOINT latch_import").execute(&mut *tx).await?;
                        sqlx::query("RELEASE SAVEPOINT latch_import").execute(&mut *tx).await?;
                        results.push(Err(e));
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, StoreError>(results)
        })
    }

    /// Replaces an identity's row and everything it owns in one transaction.
    pub async fn update_identity(&self, ident: &Identity) -> Result<(), StoreError> {
        self.update_identity_with(ident, &[]).await
    }

    /// [`Store::update_identity`] that also queues web hook deliveries in the same transaction
    /// (a settings change and its `response.ignore` web hooks commit together), then wakes this
    /// node's web hook worker.
    pub async fn update_identity_with(
        &self,
        ident: &Identity,
        deliveries: &[crate::webhook::outbox::NewDelivery],
    ) -> Result<(), StoreError> {
        crate::with_tx!(self, tx => {
            let done = sqlx::query(
                "UPDATE identities SET schema_id = $2, traits = $3, state = $4, state_changed_at = $5, \
                 metadata_public = $6, metadata_admin = $7, external_id = $8, organization_id = $9, \
                 updated_at = $10 WHERE id = $1",
            )
            .bind(ident.id)
            .bind(&ident.schema_id)
            .bind(Json(&ident.traits))
            .bind(ident.state.as_str())
            .bind(ident.state_changed_at.map(Ts))
            .bind(ident.metadata_public.as_ref().map(Json))
            .bind(ident.metadata_admin.as_ref().map(Json))
            .bind(&ident.external_id)
            .bind(ident.organization_id)
            .bind(Ts(ident.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, CONFLICT))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            delete_children!(tx, ident.id);
            insert_children!(tx, ident);
            for d in deliveries {
                crate::store::webhook::insert_webhook_delivery!(tx, d);
            }
            Ok::<(), StoreError>(())
        })?;
        self.invalidate_sessions(ident.id).await;
        if !deliveries.is_empty() {
            self.wake_web_hooks();
        }
        Ok(())
    }

    /// Applies a pending address change in ONE transaction: the change is consumed, the
    /// session that asked must still be active (not revoked, not expired, same identity, identity
    /// active), the identity must be unchanged since `previous` was read (same `updated_at`,
    /// traits matching the change's hash), and `updated` (the proposed traits with the new
    /// address verified) replaces it. A refusal writes nothing. A new address that another
    /// identity took meanwhile is [`StoreError::Conflict`].
    pub async fn apply_pending_change(
        &self,
        change: &super::pending::PendingChange,
        previous: &Identity,
        updated: &Identity,
        now: time::OffsetDateTime,
    ) -> Result<Result<(), super::pending::Refusal>, StoreError> {
        use super::pending::Refusal;
        let lock = match self.dialect() {
            super::Dialect::Postgres => " FOR UPDATE",
            super::Dialect::Sqlite => "",
        };
        let outcome = crate::with_tx!(self, tx => {
            // Reads first (locking the rows on PostgreSQL; SQLite's IMMEDIATE transaction holds
            // the write lock already), then writes only if everything holds.
            let pending: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM identity_pending_address_changes WHERE id = $1{lock}"
            )))
            .bind(change.id)
            .fetch_optional(&mut *tx)
            .await?;
            if pending.is_none() {
                return Ok::<_, StoreError>(Err(Refusal::Gone));
            }
            let session: Option<(Uuid, bool, Ts)> =
                sqlx::query_as("SELECT identity_id, active, expires_at FROM sessions WHERE id = $1")
                    .bind(change.session_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match session {
                Some((owner, true, expires)) if owner == change.identity_id && expires.0 > now => {}
                _ => return Ok(Err(Refusal::SessionInvalid)),
            }
            let current: Option<(Json<Value>, String, Ts)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT traits, state, updated_at FROM identities WHERE id = $1{lock}"
            )))
            .bind(change.identity_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((traits, state, updated_at)) = current else {
                return Ok(Err(Refusal::Gone));
            };
            if state != State::Active.as_str() {
                return Ok(Err(Refusal::SessionInvalid));
            }
            if super::pending::traits_hash(&traits.0) != change.original_traits_hash
                || updated_at.0 != previous.updated_at
            {
                return Ok(Err(Refusal::Modified));
            }
            sqlx::query("DELETE FROM identity_pending_address_changes WHERE id = $1")
                .bind(change.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE identities SET traits = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(updated.id)
            .bind(Json(&updated.traits))
            .bind(Ts(updated.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, CONFLICT))?;
            delete_children!(tx, updated.id);
            insert_children!(tx, updated);
            Ok::<_, StoreError>(Ok(()))
        })?;
        if outcome.is_ok() {
            self.invalidate_sessions(updated.id).await;
        }
        Ok(outcome)
    }

    /// Marks a still-`pending` verifiable address `sent` once a verification code went out
    /// (Kratos' `hook.Verifier`), so a later settings save does not mail it again.
    pub async fn mark_address_sent(
        &self,
        identity_id: Uuid,
        via: &str,
        value: &str,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        crate::with_pool!(self, p => {
            sqlx::query(
                "UPDATE identity_verifiable_addresses SET status = 'sent', updated_at = $4 \
                 WHERE identity_id = $1 AND via = $2 AND value = $3 AND status = 'pending'",
            )
            .bind(identity_id)
            .bind(via)
            .bind(value)
            .bind(Ts(now))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Replaces one credential's configuration if the row was not changed since it was read
    /// (`updated_at` equal to `read_at`): one statement, so a password-migration hash and the
    /// cleared `use_password_migration_hook` flag land together or not at all, and of two
    /// concurrent first logins only one writes. `false` when the row changed or is gone.
    pub async fn replace_credential_config(
        &self,
        credential_id: Uuid,
        read_at: time::OffsetDateTime,
        config: &Value,
        now: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = crate::with_pool!(self, p => {
            sqlx::query(
                "UPDATE identity_credentials SET config = $3, updated_at = $4 WHERE id = $1 AND updated_at = $2",
            )
            .bind(credential_id)
            .bind(Ts(read_at))
            .bind(Json(config))
            .bind(Ts(now))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Deletes an identity and (by cascade) everything it owns. `false` if it did not exist.
    pub async fn delete_identity(&self, id: Uuid) -> Result<bool, StoreError> {
        let deleted = crate::with_tx!(self, tx => {
            delete_children!(tx, id);
            let done = sqlx::query("DELETE FROM identities WHERE id = $1").bind(id).execute(&mut *tx).await?;
            Ok::<bool, StoreError>(done.rows_affected() > 0)
        })?;
        self.invalidate_sessions(id).await;
        Ok(deleted)
    }

    /// Loads one identity with everything it owns.
    pub async fn get_identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError> {
        let filter = IdentityFilter {
            ids: vec![id],
            limit: 1,
            ..Default::default()
        };
        Ok(self.list_identities(&filter).await?.into_iter().next())
    }

    /// Finds the identity with this external id.
    pub async fn find_identity_by_external_id(&self, external_id: &str) -> Result<Option<Identity>, StoreError> {
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE external_id = $1");
        let rows: Vec<IdentityRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(external_id).fetch_all(p).await?
        });
        Ok(self.hydrate(rows).await?.into_iter().next())
    }

    /// Finds the identity holding `identifier` for credential type `kind`.
    pub async fn find_identity_by_identifier(
        &self,
        kind: &str,
        identifier: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let id: Option<Uuid> = crate::with_pool!(self, p => {
            sqlx::query_scalar(IDENTITY_BY_IDENTIFIER)
                .bind(kind)
                .bind(identifier)
                .fetch_optional(p)
                .await?
        });
        match id {
            Some(id) => self.get_identity(id).await,
            None => Ok(None),
        }
    }

    /// Finds the identity owning a verifiable (`verifiable = true`) or recovery address.
    pub async fn find_identity_by_address(
        &self,
        verifiable: bool,
        via: &str,
        value: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let table = if verifiable {
            "identity_verifiable_addresses"
        } else {
            "identity_recovery_addresses"
        };
        let sql = format!("SELECT identity_id FROM {table} WHERE via = $1 AND value = $2");
        let id: Option<Uuid> = crate::with_pool!(self, p => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(via).bind(value).fetch_optional(p).await?
        });
        match id {
            Some(id) => self.get_identity(id).await,
            None => Ok(None),
        }
    }

    /// Lists identities ordered by id, with keyset pagination.
    pub async fn list_identities(&self, f: &IdentityFilter) -> Result<Vec<Identity>, StoreError> {
        let sql = list_identities_sql(f);
        let rows: Vec<IdentityRow> = crate::with_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for id in &f.ids {
                q = q.bind(*id);
            }
            if let Some(ci) = &f.credentials_identifier {
                q = q.bind(ci.clone());
            }
            if let Some(a) = f.after {
                q = q.bind(a);
            }
            q.fetch_all(p).await?
        });
        self.hydrate(rows).await
    }

    /// Loads credentials and addresses for identity rows (four queries, whatever the count).
    async fn hydrate(&self, rows: Vec<IdentityRow>) -> Result<Vec<Identity>, StoreError> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let list = placeholders(1, ids.len());
        let [q_creds, q_idents, q_ver, q_rec] = hydrate_sql(&list);
        let (creds, idents, vers, recs): (
            Vec<CredentialRow>,
            Vec<IdentifierRow>,
            Vec<VerifiableRow>,
            Vec<RecoveryRow>,
        ) = crate::with_pool!(self, p => {
            let mut a = sqlx::query_as(sqlx::AssertSqlSafe(q_creds));
            let mut b = sqlx::query_as(sqlx::AssertSqlSafe(q_idents));
            let mut c = sqlx::query_as(sqlx::AssertSqlSafe(q_ver));
            let mut d = sqlx::query_as(sqlx::AssertSqlSafe(q_rec));
            for id in &ids {
                a = a.bind(*id);
                b = b.bind(*id);
                c = c.bind(*id);
                d = d.bind(*id);
            }
            (a.fetch_all(p).await?, b.fetch_all(p).await?, c.fetch_all(p).await?, d.fetch_all(p).await?)
        });
        let mut identifiers: HashMap<Uuid, Vec<String>> = HashMap::new();
        for i in idents {
            identifiers.entry(i.credential_id).or_default().push(i.identifier);
        }
        let mut out: Vec<Identity> = Vec::with_capacity(rows.len());
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        for r in rows {
            let state =
                State::parse(&r.state).ok_or_else(|| StoreError::Corrupt(format!("identity state {:?}", r.state)))?;
            index.insert(r.id, out.len());
            out.push(Identity {
                id: r.id,
                schema_id: r.schema_id,
                traits: r.traits.0,
                state,
                state_changed_at: r.state_changed_at.map(|t| t.0),
                metadata_public: r.metadata_public.map(|j| j.0),
                metadata_admin: r.metadata_admin.map(|j| j.0),
                external_id: r.external_id,
                organization_id: r.organization_id,
                credentials: BTreeMap::new(),
                verifiable_addresses: vec![],
                recovery_addresses: vec![],
                created_at: r.created_at.0,
                updated_at: r.updated_at.0,
            });
        }
        for c in creds {
            if let Some(i) = index.get(&c.identity_id) {
                let kind = CredentialsType::parse(&c.kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("credential type {:?}", c.kind)))?;
                out[*i].credentials.insert(
                    kind.clone(),
                    Credential {
                        id: c.id,
                        kind,
                        identifiers: identifiers.remove(&c.id).unwrap_or_default(),
                        config: c.config.0,
                        version: c.version,
                        created_at: c.created_at.0,
                        updated_at: c.updated_at.0,
                    },
                );
            }
        }
        for v in vers {
            if let Some(i) = index.get(&v.identity_id) {
                out[*i].verifiable_addresses.push(VerifiableAddress {
                    id: v.id,
                    via: v.via,
                    value: v.value,
                    verified: v.verified,
                    verified_at: v.verified_at.map(|t| t.0),
                    status: v.status,
                    created_at: v.created_at.0,
                    updated_at: v.updated_at.0,
                });
            }
        }
        for r in recs {
            if let Some(i) = index.get(&r.identity_id) {
                out[*i].recovery_addresses.push(RecoveryAddress {
                    id: r.id,
                    via: r.via,
                    value: r.value,
                    created_at: r.created_at.0,
                    updated_at: r.updated_at.0,
                });
            }
        }
        Ok(out)
    }
}
