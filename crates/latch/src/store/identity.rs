//! Identity persistence: one identity row plus its credentials, credential identifiers and
//! addresses, always written together in one transaction.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::sql::{JsonTs, SqlCache, json_bool, placeholders};
use super::{Dialect, Store, StoreError, Ts};
use crate::identity::{Credential, CredentialsType, Identity, RecoveryAddress, State, VerifiableAddress};

/// One `identities` row ([`IDENTITY_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(crate) struct IdentityRow {
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

/// One credential inside an identity row's `credentials` JSON ([`identity_select`]).
#[derive(serde::Deserialize)]
struct CredentialJson {
    id: Uuid,
    #[serde(rename = "type")]
    kind: String,
    config: Value,
    version: i32,
    created_at: JsonTs,
    updated_at: JsonTs,
    identifiers: Vec<String>,
}

/// One verifiable address inside an identity row's `verifiable_addresses` JSON.
#[derive(serde::Deserialize)]
struct VerifiableJson {
    id: Uuid,
    via: String,
    value: String,
    #[serde(deserialize_with = "json_bool")]
    verified: bool,
    verified_at: Option<JsonTs>,
    status: String,
    created_at: JsonTs,
    updated_at: JsonTs,
}

/// One recovery address inside an identity row's `recovery_addresses` JSON.
#[derive(serde::Deserialize)]
struct RecoveryJson {
    id: Uuid,
    via: String,
    value: String,
    created_at: JsonTs,
    updated_at: JsonTs,
}

/// What an identity owns, as the JSON columns of [`identity_select`] carry it.
#[derive(sqlx::FromRow)]
pub(crate) struct ChildrenRow {
    credentials: Json<Vec<CredentialJson>>,
    verifiable_addresses: Json<Vec<VerifiableJson>>,
    recovery_addresses: Json<Vec<RecoveryJson>>,
}

/// One identity with everything it owns, in one row.
#[derive(sqlx::FromRow)]
struct FullIdentityRow {
    #[sqlx(flatten)]
    identity: IdentityRow,
    #[sqlx(flatten)]
    children: ChildrenRow,
}

/// The `identities` columns, of the table aliased `i`.
pub(crate) const IDENTITY_COLUMNS: &str = "i.id, i.schema_id, i.traits, i.state, i.state_changed_at, \
    i.metadata_public, i.metadata_admin, i.external_id, i.organization_id, i.created_at, i.updated_at";

/// The three JSON columns (`credentials` with their identifiers, `verifiable_addresses`,
/// `recovery_addresses`) that carry what the identity `i` owns: correlated subqueries, each
/// an index lookup, so that loading an identity is one statement on both databases.
pub(crate) fn children_select(d: Dialect) -> String {
    let creds = d.json_list(
        &d.json_object(&[
            ("id", d.json_uuid("c.id")),
            ("type", "c.type".into()),
            ("config", d.json_value("c.config")),
            ("version", "c.version".into()),
            ("created_at", d.json_ts("c.created_at")),
            ("updated_at", d.json_ts("c.updated_at")),
            (
                "identifiers",
                d.json_list(
                    "x.identifier",
                    "identity_credential_identifiers x WHERE x.credential_id = c.id",
                    "x.identifier",
                ),
            ),
        ]),
        "identity_credentials c WHERE c.identity_id = i.id",
        "",
    );
    let verifiable = d.json_list(
        &d.json_object(&[
            ("id", d.json_uuid("a.id")),
            ("via", "a.via".into()),
            ("value", "a.value".into()),
            ("verified", "a.verified".into()),
            ("verified_at", d.json_ts("a.verified_at")),
            ("status", "a.status".into()),
            ("created_at", d.json_ts("a.created_at")),
            ("updated_at", d.json_ts("a.updated_at")),
        ]),
        "identity_verifiable_addresses a WHERE a.identity_id = i.id",
        "a.created_at, a.value",
    );
    let recovery = d.json_list(
        &d.json_object(&[
            ("id", d.json_uuid("a.id")),
            ("via", "a.via".into()),
            ("value", "a.value".into()),
            ("created_at", d.json_ts("a.created_at")),
            ("updated_at", d.json_ts("a.updated_at")),
        ]),
        "identity_recovery_addresses a WHERE a.identity_id = i.id",
        "a.created_at, a.value",
    );
    format!("{creds} AS credentials, {verifiable} AS verifiable_addresses, {recovery} AS recovery_addresses")
}

/// `SELECT` of whole identities from `identities i` (append `WHERE …`).
pub(crate) fn identity_select(d: Dialect) -> String {
    format!("SELECT {IDENTITY_COLUMNS}, {} FROM identities i", children_select(d))
}

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
pub(crate) fn list_identities_sql(d: Dialect, f: &IdentityFilter) -> String {
    let mut sql = format!("{} WHERE 1 = 1", identity_select(d));
    let mut n = 0;
    if !f.ids.is_empty() {
        sql.push_str(&format!(" AND i.id IN ({})", placeholders(n + 1, f.ids.len())));
        n += f.ids.len();
    }
    if f.credentials_identifier.is_some() {
        n += 1;
        sql.push_str(&format!(
            " AND i.id IN (SELECT identity_id FROM identity_credential_identifiers WHERE identifier = ${n})"
        ));
    }
    if f.after.is_some() {
        n += 1;
        sql.push_str(&format!(" AND i.id > ${n}"));
    }
    sql.push_str(&format!(" ORDER BY i.id LIMIT {}", f.limit.max(1)));
    sql
}

/// One identity by id, whole.
pub(crate) fn identity_by_id_sql(d: Dialect) -> String {
    format!("{} WHERE i.id = $1", identity_select(d))
}

/// The identity holding an identifier of one credential type, whole (every login).
pub(crate) fn identity_by_identifier_sql(d: Dialect) -> String {
    format!(
        "{} WHERE i.id = (SELECT identity_id FROM identity_credential_identifiers WHERE type = $1 AND identifier = $2)",
        identity_select(d)
    )
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
        static SQL: SqlCache = SqlCache::new();
        let sql = SQL.get(self.dialect(), identity_by_id_sql);
        let rows: Vec<FullIdentityRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_all(p).await?
        });
        Ok(assemble_all(rows)?.into_iter().next())
    }

    /// Finds the identity with this external id.
    pub async fn find_identity_by_external_id(&self, external_id: &str) -> Result<Option<Identity>, StoreError> {
        static SQL: SqlCache = SqlCache::new();
        let sql = SQL.get(self.dialect(), |d| {
            format!("{} WHERE i.external_id = $1", identity_select(d))
        });
        let rows: Vec<FullIdentityRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(external_id).fetch_all(p).await?
        });
        Ok(assemble_all(rows)?.into_iter().next())
    }

    /// Finds the identity holding `identifier` for credential type `kind` (one statement).
    pub async fn find_identity_by_identifier(
        &self,
        kind: &str,
        identifier: &str,
    ) -> Result<Option<Identity>, StoreError> {
        static SQL: SqlCache = SqlCache::new();
        let sql = SQL.get(self.dialect(), identity_by_identifier_sql);
        let rows: Vec<FullIdentityRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(kind).bind(identifier).fetch_all(p).await?
        });
        Ok(assemble_all(rows)?.into_iter().next())
    }

    /// Takes the single-use marker `once_key` (as [`Store::consume_once`]: `true` when this
    /// call inserted it, valid until `expires_ms`) and finds the identity holding `identifier`
    /// for credential type `kind` (as [`Store::find_identity_by_identifier`]). One statement on
    /// PostgreSQL (the insert in a `WITH`), two on SQLite. The marker is taken whether or not
    /// the identity exists; when it does not, whether this call took it is not reported.
    pub async fn consume_once_and_find_identity_by_identifier(
        &self,
        once_key: &str,
        expires_ms: i64,
        kind: &str,
        identifier: &str,
    ) -> Result<(bool, Option<Identity>), StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            claimed: bool,
            #[sqlx(flatten)]
            full: FullIdentityRow,
        }
        match &self.pool {
            super::Pool::Sqlite(_) => {
                let claimed = self.consume_once(once_key, expires_ms).await?;
                Ok((claimed, self.find_identity_by_identifier(kind, identifier).await?))
            }
            super::Pool::Postgres(p) => {
                static SQL: SqlCache = SqlCache::new();
                let sql = SQL.get(self.dialect(), |d| {
                    format!(
                        "WITH once AS (INSERT INTO latch_limits (key, hits, delay_ms, reset_at) VALUES ($3, 1, 0, $4) \
                         ON CONFLICT (key) DO NOTHING RETURNING 1) \
                         SELECT EXISTS (SELECT 1 FROM once) AS claimed, {IDENTITY_COLUMNS}, {} FROM identities i \
                         WHERE i.id = (SELECT identity_id FROM identity_credential_identifiers WHERE type = $1 AND identifier = $2)",
                        children_select(d)
                    )
                });
                let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(kind)
                    .bind(identifier)
                    .bind(once_key)
                    .bind(expires_ms)
                    .fetch_optional(p)
                    .await?;
                match row {
                    Some(r) => Ok((r.claimed, Some(assemble(r.full.identity, r.full.children)?))),
                    None => Ok((false, None)),
                }
            }
        }
    }

    /// Finds the identity owning a verifiable (`verifiable = true`) or recovery address.
    pub async fn find_identity_by_address(
        &self,
        verifiable: bool,
        via: &str,
        value: &str,
    ) -> Result<Option<Identity>, StoreError> {
        static VERIFIABLE: SqlCache = SqlCache::new();
        static RECOVERY: SqlCache = SqlCache::new();
        let (cache, table) = if verifiable {
            (&VERIFIABLE, "identity_verifiable_addresses")
        } else {
            (&RECOVERY, "identity_recovery_addresses")
        };
        let sql = cache.get(self.dialect(), |d| {
            format!(
                "{} WHERE i.id = (SELECT identity_id FROM {table} WHERE via = $1 AND value = $2)",
                identity_select(d)
            )
        });
        let rows: Vec<FullIdentityRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(via).bind(value).fetch_all(p).await?
        });
        Ok(assemble_all(rows)?.into_iter().next())
    }

    /// Lists identities ordered by id, with keyset pagination (one statement).
    pub async fn list_identities(&self, f: &IdentityFilter) -> Result<Vec<Identity>, StoreError> {
        let sql = list_identities_sql(self.dialect(), f);
        let rows: Vec<FullIdentityRow> = crate::with_pool!(self, p => {
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
        assemble_all(rows)
    }
}

fn assemble_all(rows: Vec<FullIdentityRow>) -> Result<Vec<Identity>, StoreError> {
    rows.into_iter().map(|r| assemble(r.identity, r.children)).collect()
}

/// An identity from its row and the JSON of what it owns.
pub(crate) fn assemble(r: IdentityRow, children: ChildrenRow) -> Result<Identity, StoreError> {
    let state = State::parse(&r.state).ok_or_else(|| StoreError::Corrupt(format!("identity state {:?}", r.state)))?;
    let mut credentials = BTreeMap::new();
    for c in children.credentials.0 {
        let kind = CredentialsType::parse(&c.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("credential type {:?}", c.kind)))?;
        credentials.insert(
            kind.clone(),
            Credential {
                id: c.id,
                kind,
                identifiers: c.identifiers,
                config: c.config,
                version: c.version,
                created_at: c.created_at.0,
                updated_at: c.updated_at.0,
            },
        );
    }
    Ok(Identity {
        id: r.id,
        schema_id: r.schema_id,
        traits: r.traits.0,
        state,
        state_changed_at: r.state_changed_at.map(|t| t.0),
        metadata_public: r.metadata_public.map(|j| j.0),
        metadata_admin: r.metadata_admin.map(|j| j.0),
        external_id: r.external_id,
        organization_id: r.organization_id,
        credentials,
        verifiable_addresses: children
            .verifiable_addresses
            .0
            .into_iter()
            .map(|v| VerifiableAddress {
                id: v.id,
                via: v.via,
                value: v.value,
                verified: v.verified,
                verified_at: v.verified_at.map(|t| t.0),
                status: v.status,
                created_at: v.created_at.0,
                updated_at: v.updated_at.0,
            })
            .collect(),
        recovery_addresses: children
            .recovery_addresses
            .0
            .into_iter()
            .map(|a| RecoveryAddress {
                id: a.id,
                via: a.via,
                value: a.value,
                created_at: a.created_at.0,
                updated_at: a.updated_at.0,
            })
            .collect(),
        created_at: r.created_at.0,
        updated_at: r.updated_at.0,
    })
}
