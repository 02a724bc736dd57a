//! Schema migrations, one SQL file per dialect with the same number and name.
//!
//! Applied in order inside a transaction each; PostgreSQL serialises concurrent migrators
//! (several nodes starting at once) with an advisory lock. Kratos: `migrate sql`.

use super::{Pool, Store, StoreError};
use crate::clock::Clock;

/// Records an applied migration inside the migration's own transaction.
macro_rules! record {
    ($tx:expr, $m:expr, $clock:expr) => {
        sqlx::query("INSERT INTO latch_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind($m.version)
            .bind($m.name)
            .bind(crate::clock::rfc3339($clock.now()))
            .execute($tx)
            .await?
    };
}

/// One migration in both dialects.
#[derive(Debug)]
pub struct Migration {
    /// Ordering number, the file prefix.
    pub version: i64,
    /// The file name without number and extension.
    pub name: &'static str,
    /// SQLite statements.
    pub sqlite: &'static str,
    /// PostgreSQL statements.
    pub postgres: &'static str,
}

macro_rules! migration {
    ($v:expr, $name:literal) => {
        Migration {
            version: $v,
            name: $name,
            sqlite: include_str!(concat!("../../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../../migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Every migration, oldest first. File names are `NNNN_name.sql` in both folders.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_identities"),
    migration!(2, "0002_sessions_flows"),
    migration!(3, "0003_courier"),
    migration!(4, "0004_codes"),
    migration!(5, "0005_limits"),
    migration!(6, "0006_cleanup_indexes"),
    migration!(7, "0007_drop_code_failures"),
    migration!(8, "0008_perf"),
    migration!(9, "0009_pending_address_changes"),
    migration!(10, "0010_webhook_deliveries"),
    migration!(11, "0011_session_token_exchanges"),
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS latch_migrations (\
    version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL)";

/// Arbitrary constant naming Latch's migration lock.
const PG_LOCK_KEY: i64 = 0x6c61_7463_685f_6d67;

impl Store {
    /// Versions already applied.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let versions: Vec<i64> = crate::with_pool!(self, p => {
            sqlx::query(CREATE_TABLE).execute(p).await?;
            sqlx::query_scalar("SELECT version FROM latch_migrations ORDER BY version").fetch_all(p).await?
        });
        Ok(versions)
    }

    /// Migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<&'static Migration>, StoreError> {
        let applied = self.applied_migrations().await?;
        if let Some(unknown) = applied.iter().find(|v| !MIGRATIONS.iter().any(|m| m.version == **v)) {
            return Err(StoreError::Migration(format!(
                "the database has migration {unknown}, which this Latch build does not know: is it older than the one that migrated it?"
            )));
        }
        Ok(MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)).collect())
    }

    /// Applies every pending migration; returns how many ran. Safe to run repeatedly and
    /// from several processes at once.
    pub async fn migrate(&self, clock: &dyn Clock) -> Result<usize, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query(CREATE_TABLE).execute(p).await?;
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM latch_migrations")
                    .fetch_all(&mut *tx)
                    .await?;
                let mut n = 0;
                for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
                    sqlx::raw_sql(m.sqlite).execute(&mut *tx).await?;
                    record!(&mut *tx, m, clock);
                    n += 1;
                }
                tx.commit().await?;
                Ok(n)
            }
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
                let result = async {
                    sqlx::query(CREATE_TABLE).execute(&mut *conn).await?;
                    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM latch_migrations")
                        .fetch_all(&mut *conn)
                        .await?;
                    let mut n = 0;
                    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        sqlx::raw_sql(m.postgres).execute(&mut *tx).await?;
                        record!(&mut *tx, m, clock);
                        tx.commit().await?;
                        n += 1;
                    }
                    Ok::<usize, StoreError>(n)
                }
                .await;
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
                result
            }
        }
    }
}
