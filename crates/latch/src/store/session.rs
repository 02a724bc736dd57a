//! Session persistence. Tokens are stored only as SHA-256 hashes.

use std::collections::HashMap;
use std::sync::LazyLock;

use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::identity::{ChildrenRow, IDENTITY_COLUMNS, IdentityRow, assemble, children_select};
use super::sql::{SqlCache, placeholders};
use super::{Dialect, Store, StoreError, Ts};
use crate::identity::Identity;
use crate::model::session::{AuthMethod, Device, Session};

/// One `sessions` row ([`SESSION_COLUMNS`]).
#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    identity_id: Uuid,
    active: bool,
    aal: String,
    authentication_methods: Json<Vec<AuthMethod>>,
    authenticated_at: Ts,
    issued_at: Ts,
    expires_at: Ts,
    created_at: Ts,
    updated_at: Ts,
}

/// One `session_devices` row (the columns a session shows).
#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: Uuid,
    session_id: Uuid,
    ip_address: Option<String>,
    user_agent: Option<String>,
    location: Option<String>,
}

/// A device inside the `devices` JSON of [`session_with_identity_sql`].
#[derive(serde::Deserialize)]
struct DeviceJson {
    id: Uuid,
    ip_address: Option<String>,
    user_agent: Option<String>,
    location: Option<String>,
}

/// A session, its devices, its identity and everything the identity owns, in one row.
#[derive(sqlx::FromRow)]
struct SessionIdentityRow {
    s_id: Uuid,
    identity_id: Uuid,
    active: bool,
    aal: String,
    authentication_methods: Json<Vec<AuthMethod>>,
    authenticated_at: Ts,
    issued_at: Ts,
    expires_at: Ts,
    s_created_at: Ts,
    s_updated_at: Ts,
    devices: Json<Vec<DeviceJson>>,
    #[sqlx(flatten)]
    identity: IdentityRow,
    #[sqlx(flatten)]
    children: ChildrenRow,
}

/// The session with this token hash, its devices and its whole identity: one statement
/// (a join plus correlated JSON subqueries, each an index lookup). Every request that
/// presents a session runs it; `whoami` on a cache miss too.
pub(crate) fn session_with_identity_sql(d: Dialect) -> String {
    let devices = d.json_list(
        &d.json_object(&[
            ("id", d.json_uuid("sd.id")),
            ("ip_address", "sd.ip_address".into()),
            ("user_agent", "sd.user_agent".into()),
            ("location", "sd.location".into()),
        ]),
        "session_devices sd WHERE sd.session_id = s.id",
        "sd.created_at, sd.id",
    );
    format!(
        "SELECT s.id AS s_id, s.identity_id, s.active, s.aal, s.authentication_methods, s.authenticated_at, \
         s.issued_at, s.expires_at, s.created_at AS s_created_at, s.updated_at AS s_updated_at, {devices} AS devices, \
         {IDENTITY_COLUMNS}, {} FROM sessions s JOIN identities i ON i.id = s.identity_id WHERE s.token_hash = $1",
        children_select(d)
    )
}

/// Inserts a session row (`$1` … `$12`).
const SESSION_INSERT: &str = "INSERT INTO sessions (id, identity_id, token_hash, logout_token_hash, active, aal, \
    authentication_methods, authenticated_at, issued_at, expires_at, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

pub(crate) const SESSION_COLUMNS: &str = "id, identity_id, active, aal, authentication_methods, authenticated_at, issued_at, expires_at, created_at, updated_at";

/// Which sessions to list.
#[derive(Debug, Default, Clone)]
pub struct SessionFilter {
    /// Only this identity's sessions.
    pub identity_id: Option<Uuid>,
    /// Only active (`true`) or inactive (`false`) sessions, judged at `now`.
    pub active: Option<bool>,
    /// Leave this session out (the caller's own, for `GET /sessions`).
    pub except: Option<Uuid>,
    /// Keyset pagination: ids greater than this.
    pub after: Option<Uuid>,
    /// Page size.
    pub limit: u32,
}

impl Store {
    /// Stores a new session with its hashed tokens and first device.
    pub async fn insert_session(&self, s: &Session, token_hash: &str, logout_hash: &str) -> Result<(), StoreError> {
        self.insert_session_with(s, token_hash, logout_hash, &[]).await
    }

    /// [`Store::insert_session`] that also queues web hook deliveries in the same transaction
    /// (a login and its `response.ignore` web hooks commit together), then wakes this node's
    /// web hook worker.
    pub async fn insert_session_with(
        &self,
        s: &Session,
        token_hash: &str,
        logout_hash: &str,
        deliveries: &[crate::webhook::outbox::NewDelivery],
    ) -> Result<(), StoreError> {
        self.insert_session_saving(s, token_hash, logout_hash, deliveries, None)
            .await
    }

    /// [`Store::insert_session_with`] that also saves `flow` (the flow the session completes)
    /// in the same transaction.
    pub async fn insert_session_saving(
        &self,
        s: &Session,
        token_hash: &str,
        logout_hash: &str,
        deliveries: &[crate::webhook::outbox::NewDelivery],
        flow: Option<&crate::model::flow::Flow>,
    ) -> Result<(), StoreError> {
        // PostgreSQL: a session with its one device (and the flow) is one statement (a
        // data-modifying CTE), atomic without BEGIN/COMMIT round trips. SQLite has no such CTE:
        // a transaction. Only without web hooks to queue beside it.
        if let (super::Pool::Postgres(p), [d], []) = (&self.pool, s.devices.as_slice(), deliveries) {
            static ALONE: LazyLock<String> =
                LazyLock::new(|| format!("WITH s AS ({SESSION_INSERT} RETURNING id) {DEVICE}"));
            static WITH_FLOW: LazyLock<String> = LazyLock::new(|| {
                format!(
                    "WITH s AS ({SESSION_INSERT} RETURNING id), d AS ({DEVICE}) UPDATE selfservice_flows SET state = $18, \
                     active = $19, ui = $20, internal = $21, identity_id = $22, session_id = $23, csrf_hash = $24, \
                     updated_at = $25 WHERE id = $17"
                )
            });
            const DEVICE: &str = "INSERT INTO session_devices (id, session_id, ip_address, user_agent, location, \
                                  created_at, updated_at) SELECT $13, s.id, $14, $15, $16, $11, $11 FROM s";
            let sql: &'static str = if flow.is_some() { &WITH_FLOW } else { &ALONE };
            let q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(s.id)
                .bind(s.identity_id)
                .bind(token_hash)
                .bind(logout_hash)
                .bind(s.active)
                .bind(s.aal.as_str())
                .bind(Json(&s.methods))
                .bind(Ts(s.authenticated_at))
                .bind(Ts(s.issued_at))
                .bind(Ts(s.expires_at))
                .bind(Ts(s.created_at))
                .bind(Ts(s.updated_at))
                .bind(d.id)
                .bind(&d.ip_address)
                .bind(&d.user_agent)
                .bind(&d.location);
            let q = match flow {
                Some(f) => {
                    let ui = serde_json::to_value(&f.ui).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    q.bind(f.id)
                        .bind(f.state.as_str())
                        .bind(&f.active)
                        .bind(Json(ui))
                        .bind(Json(&f.internal))
                        .bind(f.identity_id)
                        .bind(f.session_id)
                        .bind(&f.csrf_hash)
                        .bind(Ts(f.updated_at))
                }
                None => q,
            };
            q.execute(p)
                .await
                .map_err(|e| StoreError::from_write(e, "session token collision"))?;
            return Ok(());
        }
        crate::with_tx!(self, tx => {
            sqlx::query(SESSION_INSERT)
            .bind(s.id)
            .bind(s.identity_id)
            .bind(token_hash)
            .bind(logout_hash)
            .bind(s.active)
            .bind(s.aal.as_str())
            .bind(Json(&s.methods))
            .bind(Ts(s.authenticated_at))
            .bind(Ts(s.issued_at))
            .bind(Ts(s.expires_at))
            .bind(Ts(s.created_at))
            .bind(Ts(s.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, "session token collision"))?;
            for d in &s.devices {
                sqlx::query(
                    "INSERT INTO session_devices (id, session_id, ip_address, user_agent, location, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(d.id)
                .bind(s.id)
                .bind(&d.ip_address)
                .bind(&d.user_agent)
                .bind(&d.location)
                .bind(Ts(s.created_at))
                .bind(Ts(s.created_at))
                .execute(&mut *tx)
                .await?;
            }
            for d in deliveries {
                crate::store::webhook::insert_webhook_delivery!(tx, d);
            }
            if let Some(f) = flow {
                crate::update_flow!(&mut *tx, f);
            }
            Ok::<(), StoreError>(())
        })?;
        if !deliveries.is_empty() {
            self.wake_web_hooks();
        }
        Ok(())
    }

    /// Finds a session by the hash of its session token.
    pub async fn session_by_token_hash(&self, hash: &str) -> Result<Option<Session>, StoreError> {
        self.session_where("token_hash = $1", hash).await
    }

    /// The session with this token hash and its owner, both whole, in one statement.
    pub async fn session_with_identity_by_token_hash(
        &self,
        hash: &str,
    ) -> Result<Option<(Session, Identity)>, StoreError> {
        static SQL: SqlCache = SqlCache::new();
        let sql = SQL.get(self.dialect(), session_with_identity_sql);
        let row: Option<SessionIdentityRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(hash).fetch_optional(p).await?
        });
        let Some(r) = row else { return Ok(None) };
        let identity = assemble(r.identity, r.children)?;
        let session = Session {
            id: r.s_id,
            identity_id: r.identity_id,
            active: r.active,
            aal: crate::model::Aal::from(r.aal.as_str()),
            methods: r.authentication_methods.0,
            authenticated_at: r.authenticated_at.0,
            issued_at: r.issued_at.0,
            expires_at: r.expires_at.0,
            devices: r
                .devices
                .0
                .into_iter()
                .map(|d| Device {
                    id: d.id,
                    ip_address: d.ip_address,
                    user_agent: d.user_agent,
                    location: d.location,
                })
                .collect(),
            created_at: r.s_created_at.0,
            updated_at: r.s_updated_at.0,
        };
        Ok(Some((session, identity)))
    }

    /// Finds a session by the hash of its logout token.
    pub async fn session_by_logout_hash(&self, hash: &str) -> Result<Option<Session>, StoreError> {
        self.session_where("logout_token_hash = $1", hash).await
    }

    /// Loads one session by id.
    pub async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        let rows: Vec<SessionRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_all(p).await?
        });
        Ok(self.attach_devices(rows).await?.into_iter().next())
    }

    async fn session_where(&self, cond: &str, value: &str) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE {cond}");
        let rows: Vec<SessionRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(value).fetch_all(p).await?
        });
        Ok(self.attach_devices(rows).await?.into_iter().next())
    }

    /// Lists sessions newest first... by id for stable keyset pagination.
    pub async fn list_sessions(&self, f: &SessionFilter, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let mut sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE 1 = 1");
        let mut n = 0;
        if f.identity_id.is_some() {
            n += 1;
            sql.push_str(&format!(" AND identity_id = ${n}"));
        }
        if f.except.is_some() {
            n += 1;
            sql.push_str(&format!(" AND id <> ${n}"));
        }
        if f.after.is_some() {
            n += 1;
            sql.push_str(&format!(" AND id > ${n}"));
        }
        match f.active {
            Some(true) => {
                n += 1;
                sql.push_str(&format!(" AND active = TRUE AND expires_at > ${n}"));
            }
            Some(false) => {
                n += 1;
                sql.push_str(&format!(" AND (active = FALSE OR expires_at <= ${n})"));
            }
            None => {}
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", f.limit.max(1)));
        let rows: Vec<SessionRow> = crate::with_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            if let Some(i) = f.identity_id {
                q = q.bind(i);
            }
            if let Some(e) = f.except {
                q = q.bind(e);
            }
            if let Some(a) = f.after {
                q = q.bind(a);
            }
            if f.active.is_some() {
                q = q.bind(Ts(now));
            }
            q.fetch_all(p).await?
        });
        self.attach_devices(rows).await
    }

    async fn attach_devices(&self, rows: Vec<SessionRow>) -> Result<Vec<Session>, StoreError> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let sql = format!(
            "SELECT id, session_id, ip_address, user_agent, location FROM session_devices WHERE session_id IN ({}) ORDER BY created_at, id",
            placeholders(1, ids.len())
        );
        let devices: Vec<DeviceRow> = crate::with_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for id in &ids {
                q = q.bind(*id);
            }
            q.fetch_all(p).await?
        });
        let mut by_session: HashMap<Uuid, Vec<Device>> = HashMap::new();
        for d in devices {
            by_session.entry(d.session_id).or_default().push(Device {
                id: d.id,
                ip_address: d.ip_address,
                user_agent: d.user_agent,
                location: d.location,
            });
        }
        Ok(rows
            .into_iter()
            .map(|r| Session {
                id: r.id,
                identity_id: r.identity_id,
                active: r.active,
                aal: crate::model::Aal::from(r.aal.as_str()),
                methods: r.authentication_methods.0,
                authenticated_at: r.authenticated_at.0,
                issued_at: r.issued_at.0,
                expires_at: r.expires_at.0,
                devices: by_session.remove(&r.id).unwrap_or_default(),
                created_at: r.created_at.0,
                updated_at: r.updated_at.0,
            })
            .collect())
    }

    /// Revokes one session. `false` if it did not exist.
    pub async fn revoke_session(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        let owner: Option<Uuid> = crate::with_pool!(self, p => {
            sqlx::query_scalar("UPDATE sessions SET active = FALSE, updated_at = $2 WHERE id = $1 RETURNING identity_id")
                .bind(id)
                .bind(Ts(now))
                .fetch_optional(p)
                .await?
        });
        if let Some(identity_id) = owner {
            self.invalidate_sessions(identity_id).await;
        }
        Ok(owner.is_some())
    }

    /// Revokes every active session of an identity except `except`; returns how many.
    pub async fn revoke_identity_sessions(
        &self,
        identity_id: Uuid,
        except: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = crate::with_pool!(self, p => {
            sqlx::query(
                "UPDATE sessions SET active = FALSE, updated_at = $3 \
                 WHERE identity_id = $1 AND active = TRUE AND expires_at > $3 AND id <> $2",
            )
            .bind(identity_id)
            .bind(except.unwrap_or(Uuid::nil()))
            .bind(Ts(now))
            .execute(p)
            .await?
            .rows_affected()
        });
        self.invalidate_sessions(identity_id).await;
        Ok(done)
    }

    /// Deletes every session of an identity (admin `DELETE /admin/identities/{id}/sessions`).
    pub async fn delete_identity_sessions(&self, identity_id: Uuid) -> Result<u64, StoreError> {
        let n = crate::with_tx!(self, tx => {
            sqlx::query("DELETE FROM session_devices WHERE session_id IN (SELECT id FROM sessions WHERE identity_id = $1)")
                .bind(identity_id)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM sessions WHERE identity_id = $1").bind(identity_id).execute(&mut *tx).await?;
            Ok::<u64, StoreError>(done.rows_affected())
        })?;
        self.invalidate_sessions(identity_id).await;
        Ok(n)
    }

    /// Sets a session's expiry (admin extend).
    pub async fn set_session_expiry(
        &self,
        id: Uuid,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let owner: Option<Uuid> = crate::with_pool!(self, p => {
            sqlx::query_scalar("UPDATE sessions SET expires_at = $2, updated_at = $3 WHERE id = $1 RETURNING identity_id")
                .bind(id)
                .bind(Ts(expires_at))
                .bind(Ts(now))
                .fetch_optional(p)
                .await?
        });
        if let Some(identity_id) = owner {
            self.invalidate_sessions(identity_id).await;
        }
        Ok(owner.is_some())
    }

    /// Records a re-authentication (refresh login): methods, AAL, authenticated and expiry times.
    pub async fn update_session_auth(&self, s: &Session, now: OffsetDateTime) -> Result<(), StoreError> {
        self.update_session_auth_with(s, now, &[]).await
    }

    /// [`Store::update_session_auth`] that also queues web hook deliveries in the same
    /// transaction (a refresh or step-up login and its `response.ignore` web hooks).
    pub async fn update_session_auth_with(
        &self,
        s: &Session,
        now: OffsetDateTime,
        deliveries: &[crate::webhook::outbox::NewDelivery],
    ) -> Result<(), StoreError> {
        crate::with_tx!(self, tx => {
            sqlx::query(
                "UPDATE sessions SET authentication_methods = $2, aal = $3, authenticated_at = $4, expires_at = $5, \
                 updated_at = $6 WHERE id = $1",
            )
            .bind(s.id)
            .bind(Json(&s.methods))
            .bind(s.aal.as_str())
            .bind(Ts(s.authenticated_at))
            .bind(Ts(s.expires_at))
            .bind(Ts(now))
            .execute(&mut *tx)
            .await?;
            for d in deliveries {
                crate::store::webhook::insert_webhook_delivery!(tx, d);
            }
            Ok::<(), StoreError>(())
        })?;
        if !deliveries.is_empty() {
            self.wake_web_hooks();
        }
        self.invalidate_sessions(s.identity_id).await;
        Ok(())
    }
}
