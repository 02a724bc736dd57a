//! The SQL store: SQLite (embedded default) or PostgreSQL, chosen by the DSN at runtime.
//!
//! Queries are written once and run on either pool through [`with_pool!`] and
//! [`with_tx!`], which expand the same code for each backend. Dialect differences live in
//! [`sql`]. See `docs/adr/0001-storage.md`.

pub mod cache;
pub mod cleanup;
pub mod code;
pub mod courier;
pub mod flow;
pub mod identity;
pub mod limits;
pub mod migrate;
pub mod pending;
pub mod plans;
pub mod session;
pub mod sql;
pub mod stats;
pub mod token_exchange;
pub mod webhook;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::Dsn;
pub use sql::{Dialect, Ts};

/// A connection pool for one of the supported databases.
#[derive(Clone, Debug)]
pub enum Pool {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store has: `with_pool!(store, p => expr)`.
#[macro_export]
macro_rules! with_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}

/// Runs the body inside one transaction on either backend and commits it when the body
/// returns `Ok`; an `Err` (or `?`) rolls back. SQLite transactions start `IMMEDIATE` so
/// that concurrent writers wait for the lock instead of failing on upgrade, and they queue
/// for [`Store::sqlite_writer`] first: SQLite has one writer at a time, and a writer that
/// finds the lock taken sleeps in SQLite's busy handler (1, 2, 5, … 50 ms steps), so
/// waiting in a FIFO queue in the process instead hands the lock on without sleeping.
#[macro_export]
macro_rules! with_tx {
    ($store:expr, $tx:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite(p) => {
                // Bounded like SQLite's own wait: past it, BEGIN waits in the busy handler
                // (and fails after the busy timeout) as it would without the queue.
                let _writer = tokio::time::timeout($crate::store::WRITER_QUEUE_WAIT, $store.sqlite_writer.lock())
                    .await
                    .ok();
                let mut $tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                if out.is_ok() {
                    $tx.commit().await?;
                }
                out
            }
            $crate::store::Pool::Postgres(p) => {
                let mut $tx = p.begin().await?;
                let out = $body;
                if out.is_ok() {
                    $tx.commit().await?;
                }
                out
            }
        }
    };
}

/// The longest a SQLite write transaction waits in the in-process writer queue.
pub const WRITER_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Store failures. Constraint violations are mapped where the query runs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint rejected the write (e.g. an identifier that another identity holds).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored value could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Migrations are missing or unknown.
    #[error("{0}")]
    Migration(String),
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`]; other errors pass through.
    pub fn from_write(e: sqlx::Error, what: &str) -> StoreError {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Conflict(what.to_string());
        }
        StoreError::Db(e)
    }
}

/// The store handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// The pool; public so the `with_pool!` macros can reach it.
    pub pool: Pool,
    /// Cached `whoami` answers, invalidated by the writes in this module.
    pub cache: std::sync::Arc<cache::SessionCache>,
    /// Wakes this node's courier worker when mail is enqueued; counts its attempts.
    pub outbox: std::sync::Arc<courier::OutboxSignals>,
    /// Wakes this node's web hook worker when deliveries are enqueued; counts its attempts.
    pub hooks: std::sync::Arc<webhook::HookSignals>,
    /// Counts this node's finished cleanup janitor runs (tests wait on it).
    pub cleanups: std::sync::Arc<cleanup::CleanupSignals>,
    /// SQLite: write transactions of this process take turns here (see [`with_tx!`]).
    pub sqlite_writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Opens a pool for the DSN. SQLite gets WAL, a busy timeout and foreign keys.
    pub async fn connect(dsn: &Dsn) -> Result<Store, StoreError> {
        match dsn {
            Dsn::Sqlite {
                path,
                create_if_missing,
                busy_timeout,
                ..
            } => {
                let mut opts = SqliteConnectOptions::new()
                    .foreign_keys(true)
                    .busy_timeout(busy_timeout.unwrap_or(Duration::from_secs(10)))
                    .synchronous(SqliteSynchronous::Normal);
                let pool_opts;
                match path {
                    Some(path) => {
                        opts = opts
                            .filename(path)
                            .create_if_missing(*create_if_missing)
                            .journal_mode(SqliteJournalMode::Wal);
                        pool_opts = SqlitePoolOptions::new().max_connections(8).min_connections(1);
                    }
                    None => {
                        // One shared in-memory database: a single connection that never expires.
                        opts = opts.in_memory(true);
                        pool_opts = SqlitePoolOptions::new()
                            .max_connections(1)
                            .min_connections(1)
                            .idle_timeout(None)
                            .max_lifetime(None);
                    }
                }
                let pool = pool_opts.connect_with(opts).await?;
                Ok(Store {
                    pool: Pool::Sqlite(pool),
                    cache: Default::default(),
                    outbox: Default::default(),
                    hooks: Default::default(),
                    cleanups: Default::default(),
                    sqlite_writer: Default::default(),
                })
            }
            Dsn::Postgres {
                url,
                max_conns,
                max_idle_conns,
                max_conn_lifetime,
                max_conn_idle_time,
                ..
            } => {
                let opts: PgConnectOptions = url.parse()?;
                let mut pool_opts = PgPoolOptions::new().max_connections(max_conns.unwrap_or(16));
                if let Some(idle) = max_idle_conns {
                    pool_opts = pool_opts.min_connections((*idle).min(max_conns.unwrap_or(16)));
                }
                if let Some(l) = max_conn_lifetime {
                    pool_opts = pool_opts.max_lifetime(*l);
                }
                if let Some(l) = max_conn_idle_time {
                    pool_opts = pool_opts.idle_timeout(*l);
                }
                let pool = pool_opts.connect_with(opts).await?;
                Ok(Store {
                    pool: Pool::Postgres(pool),
                    cache: Default::default(),
                    outbox: Default::default(),
                    hooks: Default::default(),
                    cleanups: Default::default(),
                    sqlite_writer: Default::default(),
                })
            }
        }
    }

    /// Which dialect this store speaks.
    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Checks that the database answers (readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, p => {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    /// Drops cached sessions of an identity here and, on PostgreSQL, on every other node.
    pub async fn invalidate_sessions(&self, identity_id: uuid::Uuid) {
        self.cache.invalidate_identity(identity_id);
        if let Pool::Postgres(p) = &self.pool
            && let Err(e) = sqlx::query("SELECT pg_notify('latch_sessions', $1)")
                .bind(identity_id.to_string())
                .execute(p)
                .await
        {
            tracing::warn!(error = %e, "could not notify other nodes of a session change; their caches expire within the TTL");
        }
    }

    /// On PostgreSQL, listens for other nodes' session changes and drops the affected cache
    /// entries, for queued mail (`latch_courier`, sent by a trigger on `courier_messages`) and
    /// wakes this node's courier worker, and for queued web hooks (`latch_webhooks`, a trigger
    /// on `webhook_deliveries`) and wakes this node's web hook worker; runs until the pool
    /// closes. Clears the whole cache whenever the listening connection is re-established,
    /// since notifications may have been missed.
    pub async fn listen_for_invalidations(self) {
        let Pool::Postgres(pool) = &self.pool else { return };
        loop {
            if pool.is_closed() {
                return;
            }
            let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "session cache listener cannot connect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener
                .listen_all(["latch_sessions", "latch_courier", "latch_webhooks"])
                .await
            {
                tracing::warn!(error = %e, "session cache listener cannot LISTEN; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            self.cache.clear();
            // Mail and web hooks may have been queued while nobody listened.
            self.wake_courier();
            self.wake_web_hooks();
            loop {
                match listener.recv().await {
                    // Another node (or this one) queued mail: migration 0008's trigger.
                    Ok(n) if n.channel() == "latch_courier" => self.wake_courier(),
                    // Another node (or this one) queued a web hook: migration 0010's trigger.
                    Ok(n) if n.channel() == "latch_webhooks" => self.wake_web_hooks(),
                    Ok(n) => match uuid::Uuid::parse_str(n.payload()) {
                        Ok(id) => self.cache.invalidate_identity(id),
                        Err(_) => self.cache.clear(),
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "session cache listener lost its connection");
                        self.cache.clear();
                        break;
                    }
                }
            }
        }
    }

    /// Closes the pool (graceful shutdown).
    pub async fn close(&self) {
        with_pool!(self, p => p.close().await);
    }
}
