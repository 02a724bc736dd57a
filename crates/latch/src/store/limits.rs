//! Counters behind attempt budgets and rate limits, shared by every node through the
//! database. Each check-and-count is ONE statement (an upsert whose update is guarded by the
//! limit), so concurrent requests cannot all read "under the limit" before any of them counts:
//! the database serialises the upserts on the row and each one sees the previous one's count.
//! Times are epoch milliseconds (see migration 0005).

use super::{Store, StoreError};

/// The answer of a counted check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Whether the event was allowed (and counted).
    pub allowed: bool,
    /// Events counted in the current window (or consecutive failures), this one included
    /// when allowed.
    pub hits: i64,
    /// When the window ends / the next attempt is allowed (epoch ms).
    pub reset_at: i64,
}

/// A counter's `hits` and `reset_at` columns.
#[derive(sqlx::FromRow)]
struct Counter {
    hits: i64,
    reset_at: i64,
}

impl Store {
    /// Counts one event against a fixed window of `window_ms` holding at most `limit` events.
    /// Refused (and not counted) when the window is full.
    pub async fn limit_hit(&self, key: &str, limit: i64, window_ms: i64, now_ms: i64) -> Result<Hit, StoreError> {
        let row: Option<Counter> = crate::with_pool!(self, p => {
            sqlx::query_as(
                "INSERT INTO latch_limits (key, hits, delay_ms, reset_at) VALUES ($1, 1, 0, $3 + $4) \
                 ON CONFLICT (key) DO UPDATE SET \
                   hits = CASE WHEN latch_limits.reset_at <= $3 THEN 1 ELSE latch_limits.hits + 1 END, \
                   reset_at = CASE WHEN latch_limits.reset_at <= $3 THEN $3 + $4 ELSE latch_limits.reset_at END \
                 WHERE latch_limits.reset_at <= $3 OR latch_limits.hits < $2 \
                 RETURNING hits, reset_at",
            )
            .bind(key)
            .bind(limit)
            .bind(now_ms)
            .bind(window_ms)
            .fetch_optional(p)
            .await?
        });
        self.answer(key, row).await
    }

    /// Counts one attempt under a progressive delay: the first `free` consecutive attempts
    /// go through at once; the attempt that reaches `free` (and each one after it) makes the
    /// next one wait `first_ms`, doubling up to `max_ms`. Refused (and not counted) while
    /// a delay runs. [`Store::limit_clear`] resets it (a success). Attempts within the free
    /// budget are never refused, whatever order concurrent requests' clocks reach the row in.
    pub async fn limit_backoff(
        &self,
        key: &str,
        free: i64,
        first_ms: i64,
        max_ms: i64,
        now_ms: i64,
    ) -> Result<Hit, StoreError> {
        // The delay after the n-th consecutive attempt (n = hits after this one).
        let first_delay = if free <= 1 { first_ms } else { 0 };
        let row: Option<Counter> = crate::with_pool!(self, p => {
            sqlx::query_as(
                "INSERT INTO latch_limits (key, hits, delay_ms, reset_at) VALUES ($1, 1, $6, $5 + $6) \
                 ON CONFLICT (key) DO UPDATE SET \
                   hits = latch_limits.hits + 1, \
                   delay_ms = CASE WHEN latch_limits.hits + 1 < $2 THEN 0 \
                                   WHEN latch_limits.delay_ms = 0 THEN $3 \
                                   WHEN latch_limits.delay_ms * 2 > $4 THEN $4 \
                                   ELSE latch_limits.delay_ms * 2 END, \
                   reset_at = $5 + CASE WHEN latch_limits.hits + 1 < $2 THEN 0 \
                                   WHEN latch_limits.delay_ms = 0 THEN $3 \
                                   WHEN latch_limits.delay_ms * 2 > $4 THEN $4 \
                                   ELSE latch_limits.delay_ms * 2 END \
                 WHERE latch_limits.hits < $2 OR latch_limits.reset_at <= $5 \
                 RETURNING hits, reset_at",
            )
            .bind(key)
            .bind(free)
            .bind(first_ms)
            .bind(max_ms)
            .bind(now_ms)
            .bind(first_delay)
            .fetch_optional(p)
            .await?
        });
        self.answer(key, row).await
    }

    async fn answer(&self, key: &str, row: Option<Counter>) -> Result<Hit, StoreError> {
        if let Some(c) = row {
            return Ok(Hit {
                allowed: true,
                hits: c.hits,
                reset_at: c.reset_at,
            });
        }
        let current: Option<Counter> = crate::with_pool!(self, p => {
            sqlx::query_as("SELECT hits, reset_at FROM latch_limits WHERE key = $1")
                .bind(key)
                .fetch_optional(p)
                .await?
        });
        let c = current.unwrap_or(Counter { hits: 0, reset_at: 0 });
        Ok(Hit {
            allowed: false,
            hits: c.hits,
            reset_at: c.reset_at,
        })
    }

    /// Gives back one counted event (a correct code should not use up the address' budget).
    pub async fn limit_refund(&self, key: &str) -> Result<(), StoreError> {
        crate::with_pool!(self, p => {
            sqlx::query("UPDATE latch_limits SET hits = hits - 1 WHERE key = $1 AND hits > 0")
                .bind(key)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Forgets counters (a successful sign-in resets its failure delays).
    pub async fn limit_clear(&self, keys: &[&str]) -> Result<(), StoreError> {
        for key in keys {
            crate::with_pool!(self, p => {
                sqlx::query("DELETE FROM latch_limits WHERE key = $1")
                    .bind(*key)
                    .execute(p)
                    .await?;
            });
        }
        Ok(())
    }

    /// Marks `key` as used once; `false` when another request marked it first. The marker
    /// lives until `expires_ms` (then cleanup may remove it).
    pub async fn consume_once(&self, key: &str, expires_ms: i64) -> Result<bool, StoreError> {
        let n = crate::with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO latch_limits (key, hits, delay_ms, reset_at) VALUES ($1, 1, 0, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(expires_ms)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}
