//! One-time codes: stored as keyed hashes, single-use, one live code per flow.

use time::OffsetDateTime;
use uuid::Uuid;

use super::identity::{ChildrenRow, IDENTITY_COLUMNS, IdentityRow, assemble, children_select};
use super::sql::SqlCache;
use super::{Dialect, Store, StoreError, Ts};
use crate::identity::Identity;
use crate::model::flow::Flow;

/// A stored code (never the code itself).
#[derive(Debug, Clone)]
pub struct CodeRow {
    /// Row id.
    pub id: Uuid,
    /// The flow the code belongs to.
    pub flow_id: Uuid,
    /// The identity it signs in / recovers (None for registration and unknown addresses).
    pub identity_id: Option<Uuid>,
    /// `login`, `registration`, `verification`, `recovery`.
    pub purpose: String,
    /// Where it was sent (normalised).
    pub address: String,
    /// `email` or `sms`.
    pub address_type: String,
    /// Keyed hash of the code.
    pub code_hash: String,
    /// End of validity.
    pub expires_at: OffsetDateTime,
    /// When it was used.
    pub used_at: Option<OffsetDateTime>,
    /// When it was issued.
    pub created_at: OffsetDateTime,
}

/// One `selfservice_codes` row as [`UNUSED_CODES`] reads it.
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    flow_id: Uuid,
    identity_id: Option<Uuid>,
    purpose: String,
    address: String,
    address_type: String,
    code_hash: String,
    expires_at: Ts,
    used_at: Option<Ts>,
    created_at: Ts,
}

fn from_row(r: Row) -> CodeRow {
    CodeRow {
        id: r.id,
        flow_id: r.flow_id,
        identity_id: r.identity_id,
        purpose: r.purpose,
        address: r.address,
        address_type: r.address_type,
        code_hash: r.code_hash,
        expires_at: r.expires_at.0,
        used_at: r.used_at.map(|t| t.0),
        created_at: r.created_at.0,
    }
}

/// Inserts a code after deleting the flow's unused ones; used inside `with_tx!` bodies so the
/// code and its email are written together.
#[macro_export]
macro_rules! replace_code {
    ($tx:expr, $code:expr) => {{
        let code: &$crate::store::code::CodeRow = $code;
        sqlx::query("DELETE FROM selfservice_codes WHERE flow_id = $1 AND used_at IS NULL")
            .bind(code.flow_id)
            .execute(&mut *$tx)
            .await?;
        sqlx::query(
            "INSERT INTO selfservice_codes (id, flow_id, identity_id, purpose, address, address_type, code_hash, expires_at, used_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
        )
        .bind(code.id)
        .bind(code.flow_id)
        .bind(code.identity_id)
        .bind(&code.purpose)
        .bind(&code.address)
        .bind(&code.address_type)
        .bind(&code.code_hash)
        .bind($crate::store::Ts(code.expires_at))
        .bind($crate::store::Ts(code.created_at))
        .execute(&mut *$tx)
        .await?;
    }};
}

/// A flow's unused codes, newest first (every code submission).
pub(crate) const UNUSED_CODES: &str = "SELECT id, flow_id, identity_id, purpose, address, address_type, code_hash, \
    expires_at, used_at, created_at FROM selfservice_codes WHERE flow_id = $1 AND used_at IS NULL ORDER BY created_at DESC";

/// A code to store with [`Store::issue_code`], the mail that carries it, and the flow that
/// records it: all written in one transaction.
#[derive(Debug)]
pub struct Issue<'a> {
    /// The code.
    pub code: &'a CodeRow,
    /// Whether the flow may hold earlier codes: its unused ones are deleted (a new code
    /// replaces the old one). `false` only when the flow had no code yet.
    pub replaces: bool,
    /// A code of the flow created after this instant blocks the new one (the resend cooldown),
    /// checked in the statement that inserts it.
    pub cooldown_since: OffsetDateTime,
    /// The mail with the code.
    pub mail: &'a crate::courier::message::NewMessage,
    /// `false`: the mail is written and deleted again before the commit (unknown addresses
    /// under enumeration protection do the same work as known ones).
    pub deliver: bool,
    /// The flow, as it is after the code was sent, saved in the same transaction.
    pub flow: Option<&'a Flow>,
}

/// A code just used up by [`Store::use_code_by_hash`].
#[derive(sqlx::FromRow)]
struct UsedRow {
    c_id: Uuid,
    flow_id: Uuid,
    identity_id: Option<Uuid>,
    purpose: String,
    address: String,
    address_type: String,
    code_hash: String,
    expires_at: Ts,
    used_at: Option<Ts>,
    c_created_at: Ts,
}

/// [`UsedRow`] with the whole identity of the code.
#[derive(sqlx::FromRow)]
struct UsedIdentityRow {
    #[sqlx(flatten)]
    code: UsedRow,
    #[sqlx(flatten)]
    identity: IdentityRow,
    #[sqlx(flatten)]
    children: ChildrenRow,
}

fn from_used(r: UsedRow) -> CodeRow {
    CodeRow {
        id: r.c_id,
        flow_id: r.flow_id,
        identity_id: r.identity_id,
        purpose: r.purpose,
        address: r.address,
        address_type: r.address_type,
        code_hash: r.code_hash,
        expires_at: r.expires_at.0,
        used_at: r.used_at.map(|t| t.0),
        created_at: r.c_created_at.0,
    }
}

/// Uses up the flow's unused, unexpired code with this keyed hash (`$1` flow, `$2` now, `$3`
/// hash) in one conditional `UPDATE … RETURNING`: of concurrent submissions of one code exactly
/// one gets the row. With `of_identity`, only a code of an identity qualifies; with `identity`
/// too, and the statement also returns that identity whole (a scalar subquery per column, each a primary-key lookup:
/// `RETURNING` cannot join), so signing in reads nothing more.
fn use_code_sql(d: Dialect, of_identity: bool, identity: bool) -> String {
    let mut sql = String::from(
        "UPDATE selfservice_codes SET used_at = $2 WHERE flow_id = $1 AND used_at IS NULL AND code_hash = $3 \
         AND expires_at > $2",
    );
    if of_identity || identity {
        sql.push_str(" AND identity_id IS NOT NULL");
    }
    sql.push_str(
        " RETURNING id AS c_id, flow_id, identity_id, purpose, address, address_type, code_hash, expires_at, used_at, \
         created_at AS c_created_at",
    );
    if identity {
        let of_code = |expr: &str, name: &str| {
            format!(", (SELECT {expr} FROM identities i WHERE i.id = selfservice_codes.identity_id) AS {name}")
        };
        for column in IDENTITY_COLUMNS.split(',').map(str::trim) {
            sql.push_str(&of_code(column, column.trim_start_matches("i.")));
        }
        // `children_select` is `<expr> AS credentials, <expr> AS verifiable_addresses, …`.
        let children = children_select(d);
        let mut rest = children.as_str();
        for name in ["credentials", "verifiable_addresses", "recovery_addresses"] {
            let marker = format!(" AS {name}");
            let at = rest.find(&marker).unwrap_or(rest.len());
            sql.push_str(&of_code(&rest[..at], name));
            rest = rest.get(at + marker.len()..).unwrap_or("").trim_start_matches(", ");
        }
    }
    sql
}

impl Store {
    /// The flow's unused codes, newest first.
    pub async fn unused_codes(&self, flow_id: Uuid) -> Result<Vec<CodeRow>, StoreError> {
        let rows: Vec<Row> = crate::with_pool!(self, p => {
            sqlx::query_as(UNUSED_CODES)
            .bind(flow_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// When the flow's newest code was issued (resend cooldown).
    pub async fn last_code_at(&self, flow_id: Uuid) -> Result<Option<OffsetDateTime>, StoreError> {
        let created_at: Option<Ts> = crate::with_pool!(self, p => {
            sqlx::query_scalar("SELECT created_at FROM selfservice_codes WHERE flow_id = $1 ORDER BY created_at DESC LIMIT 1")
                .bind(flow_id)
                .fetch_optional(p)
                .await?
        });
        Ok(created_at.map(|t| t.0))
    }

    /// Marks a code used; `false` if another request used it first (single use).
    pub async fn use_code(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        let n = crate::with_pool!(self, p => {
            sqlx::query("UPDATE selfservice_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id)
                .bind(Ts(now))
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Stores a new flow and its first code (or link token) in one transaction (admin
    /// recovery links).
    pub async fn insert_flow_with_code(
        &self,
        flow: &crate::model::flow::Flow,
        code: &CodeRow,
    ) -> Result<(), StoreError> {
        crate::with_tx!(self, tx => {
            crate::insert_flow!(&mut *tx, flow);
            crate::replace_code!(tx, code);
            Ok::<(), StoreError>(())
        })
    }

    /// Stores a code without an email (unknown addresses under enumeration protection, so the
    /// work done matches a real send).
    pub async fn insert_code(&self, code: &CodeRow) -> Result<(), StoreError> {
        crate::with_tx!(self, tx => {
            crate::replace_code!(tx, code);
            Ok::<(), StoreError>(())
        })
    }
    /// Uses up the flow's unused, unexpired code whose keyed hash is `code_hash` (see
    /// [`use_code_sql`]); `None` when there is none (a wrong, expired or already used code).
    /// Only a code of an identity qualifies unless `any`.
    pub async fn use_code_by_hash(
        &self,
        flow_id: Uuid,
        code_hash: &str,
        any: bool,
        now: OffsetDateTime,
    ) -> Result<Option<CodeRow>, StoreError> {
        static ANY: SqlCache = SqlCache::new();
        static OF_IDENTITY: SqlCache = SqlCache::new();
        let sql = if any {
            ANY.get(self.dialect(), |d| use_code_sql(d, false, false))
        } else {
            OF_IDENTITY.get(self.dialect(), |d| use_code_sql(d, true, false))
        };
        let row: Option<UsedRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(flow_id)
                .bind(Ts(now))
                .bind(code_hash)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(from_used))
    }

    /// [`Store::use_code_by_hash`] for a code of an identity, returning the identity whole in
    /// the same statement.
    pub async fn use_code_by_hash_with_identity(
        &self,
        flow_id: Uuid,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(CodeRow, Identity)>, StoreError> {
        static SQL: SqlCache = SqlCache::new();
        let sql = SQL.get(self.dialect(), |d| use_code_sql(d, true, true));
        let row: Option<UsedIdentityRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(flow_id)
                .bind(Ts(now))
                .bind(code_hash)
                .fetch_optional(p)
                .await?
        });
        row.map(|r| Ok((from_used(r.code), assemble(r.identity, r.children)?)))
            .transpose()
    }

    /// Stores a code, its mail and the flow in one transaction (see [`Issue`]); `false`, with
    /// nothing written, when a code of the flow was created after `cooldown_since`. Wakes the
    /// courier after the commit when the mail is delivered.
    pub async fn issue_code(&self, i: Issue<'_>) -> Result<bool, StoreError> {
        let code = i.code;
        let issued = crate::with_tx!(self, tx => {
            // The cooldown check and the insert are one statement.
            let inserted = sqlx::query(
                "INSERT INTO selfservice_codes (id, flow_id, identity_id, purpose, address, address_type, code_hash, \
                 expires_at, used_at, created_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, NULL, $9 WHERE NOT EXISTS \
                 (SELECT 1 FROM selfservice_codes WHERE flow_id = $2 AND created_at > $10)",
            )
            .bind(code.id)
            .bind(code.flow_id)
            .bind(code.identity_id)
            .bind(&code.purpose)
            .bind(&code.address)
            .bind(&code.address_type)
            .bind(&code.code_hash)
            .bind(Ts(code.expires_at))
            .bind(Ts(code.created_at))
            .bind(Ts(i.cooldown_since))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                if i.replaces {
                    sqlx::query("DELETE FROM selfservice_codes WHERE flow_id = $1 AND used_at IS NULL AND id <> $2")
                        .bind(code.flow_id)
                        .bind(code.id)
                        .execute(&mut *tx)
                        .await?;
                }
                crate::store::courier::insert_courier_message!(tx, i.mail);
                if !i.deliver {
                    sqlx::query("DELETE FROM courier_messages WHERE id = $1")
                        .bind(i.mail.id)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(f) = i.flow {
                    crate::update_flow!(&mut *tx, f);
                }
            }
            Ok::<bool, StoreError>(inserted)
        })?;
        if issued && i.deliver {
            self.wake_courier();
        }
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn using_a_code_returns_each_identity_column_once_from_its_own_subquery() {
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let sql = use_code_sql(d, true, true);
            let columns = IDENTITY_COLUMNS.split(',').count() + 3;
            assert_eq!(
                sql.matches("FROM identities i WHERE i.id = selfservice_codes.identity_id) AS ")
                    .count(),
                columns,
                "{sql}"
            );
            for name in ["credentials", "verifiable_addresses", "recovery_addresses", "schema_id"] {
                assert_eq!(sql.matches(&format!(" AS {name}")).count(), 1, "{name}: {sql}");
            }
            assert!(!use_code_sql(d, false, false).contains("identity_id IS NOT NULL"));
            assert!(use_code_sql(d, true, false).contains("identity_id IS NOT NULL"));
        }
    }
}
