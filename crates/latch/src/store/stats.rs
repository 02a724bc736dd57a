//! A process-wide count of SQL statements, for measuring what a request costs.
//!
//! sqlx reports every statement it runs as a `tracing` event with target `sqlx::query`
//! (on SQLite from the connection's worker thread, so a per-task counter cannot see them).
//! [`StatementCounter`] is a `tracing` layer that counts those events; `latch serve` installs
//! it when `LATCH_COUNT_SQL_STATEMENTS=1` is set, and `/admin/metrics/prometheus` then shows
//! `latch_sql_statements_total`. Off by default: enabling it makes sqlx build a log record for
//! every statement. Counted are the statements Latch sends (`SELECT`, `INSERT`, …); the
//! `BEGIN`/`COMMIT` of a transaction are counted when sqlx reports them.
//!
//! Per request: read the counter, send one request while nothing else runs, read it again
//! (`bench/code_login.sh` does this for a whole code login).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing_subscriber::layer::{Context, Layer};

static COUNT: AtomicU64 = AtomicU64::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The environment variable that turns counting on in `latch serve`.
pub const ENV: &str = "LATCH_COUNT_SQL_STATEMENTS";

/// Statements counted so far, or `None` when counting is off.
pub fn statements() -> Option<u64> {
    ENABLED.load(Ordering::Relaxed).then(|| COUNT.load(Ordering::Relaxed))
}

/// Counts `sqlx::query` events. Install it with a filter that lets `sqlx::query=debug`
/// through ([`StatementCounter::filter`]).
#[derive(Debug, Default)]
pub struct StatementCounter;

impl StatementCounter {
    /// A counter (marks counting as enabled for the metrics endpoint).
    pub fn new() -> StatementCounter {
        ENABLED.store(true, Ordering::Relaxed);
        StatementCounter
    }

    /// The events this layer needs: sqlx's statement log at every level.
    pub fn filter() -> tracing_subscriber::filter::Targets {
        tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::TRACE)
    }
}

impl<S: tracing::Subscriber> Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
    }
}
