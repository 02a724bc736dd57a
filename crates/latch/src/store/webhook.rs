//! The web hook outbox: `webhook_deliveries` (migration 0010). See [`crate::webhook::outbox`].
//!
//! Rows are written inside the transaction of the event they report
//! ([`insert_webhook_delivery!`], used by [`Store::insert_identity_with`],
//! [`Store::update_identity_with`], [`Store::insert_session_with`] and
//! [`Store::update_session_auth_with`]), or right after it by [`Store::enqueue_web_hooks`]. Workers claim due rows with one statement
//! ([`Store::claim_web_hooks`]: `FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the
//! statement is the single writer's lock) for a lease, and record each outcome only while they
//! still hold the claim (`claim_id`), so a worker whose lease ran out cannot overwrite the
//! outcome of the worker that took over.

use std::time::Duration;

use sqlx::types::Json;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::{Store, StoreError, Ts};
use crate::webhook::outbox::{Delivery, DeliveryStatus, NewDelivery};

/// In-process signals between the code that enqueues web hooks and this node's worker.
#[derive(Debug)]
pub struct HookSignals {
    /// Wakes the worker (a stored permit if it is busy, so no wake-up is lost).
    pub wake: Notify,
    /// Counts this node's finished attempts (delivered or failed); tests wait on it.
    pub attempts: watch::Sender<u64>,
}

impl Default for HookSignals {
    fn default() -> Self {
        HookSignals {
            wake: Notify::new(),
            attempts: watch::Sender::new(0),
        }
    }
}

/// One `webhook_deliveries` row ([`COLUMNS`]).
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    event: String,
    hook_id: Option<String>,
    identity_id: Option<Uuid>,
    url: String,
    method: String,
    headers: Json<Vec<(String, String)>>,
    body: Option<String>,
    auth_ref: Option<String>,
    emit_analytics_event: bool,
    status: String,
    attempts: i32,
    next_attempt_at: Ts,
    claim_id: Option<Uuid>,
    last_status: Option<i32>,
    last_error: Option<String>,
    delivered_at: Option<Ts>,
    created_at: Ts,
    updated_at: Ts,
}

const COLUMNS: &str = "id, event, hook_id, identity_id, url, method, headers, body, auth_ref, emit_analytics_event, \
    status, attempts, next_attempt_at, claim_id, last_status, last_error, delivered_at, created_at, updated_at";

fn delivery(r: Row) -> Result<Delivery, StoreError> {
    let status = DeliveryStatus::parse(&r.status)
        .ok_or_else(|| StoreError::Corrupt(format!("web hook delivery status {:?}", r.status)))?;
    Ok(Delivery {
        id: r.id,
        event: r.event,
        hook_id: r.hook_id,
        identity_id: r.identity_id,
        url: r.url,
        method: r.method,
        headers: r.headers.0,
        body: r.body,
        auth_ref: r.auth_ref,
        emit_analytics_event: r.emit_analytics_event,
        status,
        attempts: r.attempts,
        next_attempt_at: r.next_attempt_at.0,
        claim_id: r.claim_id,
        last_status: r.last_status,
        last_error: r.last_error,
        delivered_at: r.delivered_at.map(|t| t.0),
        created_at: r.created_at.0,
        updated_at: r.updated_at.0,
    })
}

/// Which deliveries to list.
#[derive(Debug, Default, Clone)]
pub struct DeliveryFilter {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Keyset pagination, newest first: deliveries after this `(created_at, id)`.
    pub after: Option<(OffsetDateTime, Uuid)>,
    /// Page size.
    pub limit: u32,
}

/// Inserts a [`NewDelivery`] inside an open transaction, so that the event and its web hooks
/// commit together (call [`Store::wake_web_hooks`] after the commit):
///
/// ```ignore
/// crate::with_tx!(store, tx => {
///     /* write the event with `&mut *tx` */
///     crate::store::webhook::insert_webhook_delivery!(tx, &delivery);
///     Ok::<(), StoreError>(())
/// })?;
/// store.wake_web_hooks();
/// ```
macro_rules! insert_webhook_delivery {
    ($tx:expr, $d:expr) => {{
        let d: &$crate::webhook::outbox::NewDelivery = $d;
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, event, hook_id, identity_id, url, method, headers, body, auth_ref, \
             emit_analytics_event, status, attempts, next_attempt_at, claimed_until, claim_id, last_status, \
             last_error, delivered_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued', 0, $11, NULL, NULL, NULL, NULL, NULL, $11, $11)",
        )
        .bind(d.id)
        .bind(&d.event)
        .bind(&d.hook_id)
        .bind(d.identity_id)
        .bind(&d.url)
        .bind(&d.method)
        .bind(sqlx::types::Json(&d.headers))
        .bind(&d.body)
        .bind(&d.auth_ref)
        .bind(d.emit_analytics_event)
        .bind($crate::store::Ts(d.created_at))
        .execute(&mut *$tx)
        .await
        .map_err(|e| $crate::store::StoreError::from_write(e, "web hook delivery id collision"))?;
    }};
}
pub(crate) use insert_webhook_delivery;

/// The claim statement of [`Store::claim_web_hooks`]: `$1` now, `$2` the lease end, `$3` the
/// claim id.
pub(crate) fn claim_sql(dialect: super::Dialect, limit: u32) -> String {
    format!(
        "UPDATE webhook_deliveries SET status = 'processing', attempts = attempts + 1, claimed_until = $2, \
         claim_id = $3, updated_at = $1 \
         WHERE id IN (SELECT id FROM webhook_deliveries \
         WHERE status IN ('queued', 'processing') AND next_attempt_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until <= $1) \
         ORDER BY next_attempt_at, created_at, id LIMIT {}{}) \
         RETURNING {COLUMNS}",
        limit.max(1),
        dialect.claim_suffix()
    )
}

impl Store {
    /// Enqueues deliveries in their own transaction and wakes this node's worker: only for an
    /// event whose write has no transaction to share (prefer the `_with` writes).
    pub async fn enqueue_web_hooks(&self, deliveries: &[NewDelivery]) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        crate::with_tx!(self, tx => {
            for d in deliveries {
                insert_webhook_delivery!(tx, d);
            }
            Ok::<(), StoreError>(())
        })?;
        self.wake_web_hooks();
        Ok(())
    }

    /// Wakes this node's web hook worker (after committing a transaction that inserted
    /// deliveries). Other nodes are woken by PostgreSQL's `NOTIFY latch_webhooks` (migration
    /// 0009) or find the rows on their next poll.
    pub fn wake_web_hooks(&self) {
        self.hooks.wake.notify_one();
    }

    /// Claims up to `limit` due deliveries for `lease` under `claim_id`: `queued` ones whose
    /// `next_attempt_at` has come and `processing` ones whose claim expired (a node that died
    /// mid-delivery). Each claim counts one attempt, so a delivery that kills its worker every
    /// time still runs out of budget. One statement; oldest due first.
    pub async fn claim_web_hooks(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
        claim_id: Uuid,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = claim_sql(self.dialect(), limit);
        let rows: Vec<Row> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(Ts(now))
                .bind(Ts(now + lease))
                .bind(claim_id)
                .fetch_all(p)
                .await?
        });
        let mut out = rows.into_iter().map(delivery).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|d| (d.next_attempt_at, d.created_at, d.id));
        Ok(out)
    }

    /// Dead-letters deliveries whose claim expired after their last budgeted attempt (their
    /// worker stopped before recording the outcome); returns how many.
    pub async fn expire_web_hook_claims(&self, now: OffsetDateTime, max_attempts: i32) -> Result<u64, StoreError> {
        let n = crate::with_pool!(self, p => {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'dead', claimed_until = NULL, claim_id = NULL, \
                 last_error = 'the node delivering it stopped before recording the outcome of its last attempt', \
                 updated_at = $1 \
                 WHERE status = 'processing' AND claimed_until <= $1 AND attempts >= $2",
            )
            .bind(Ts(now))
            .bind(max_attempts)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// Records a delivery the receiver accepted, if `claim_id` still holds it; `false` when
    /// another worker took it over (its lease ran out).
    pub async fn mark_web_hook_delivered(
        &self,
        id: Uuid,
        claim_id: Uuid,
        status: u16,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let n = crate::with_pool!(self, p => {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'delivered', claimed_until = NULL, claim_id = NULL, \
                 last_status = $3, last_error = NULL, delivered_at = $4, updated_at = $4 \
                 WHERE id = $1 AND claim_id = $2 AND status = 'processing'",
            )
            .bind(id)
            .bind(claim_id)
            .bind(i32::from(status))
            .bind(Ts(now))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Records a failed attempt, if `claim_id` still holds the delivery: `queued` again from
    /// `next`, or `dead` when `next` is `None`.
    pub async fn mark_web_hook_failed(
        &self,
        id: Uuid,
        claim_id: Uuid,
        now: OffsetDateTime,
        last_status: Option<u16>,
        error: &str,
        next: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        let (status, at) = match next {
            Some(at) => (DeliveryStatus::Queued, at),
            None => (DeliveryStatus::Dead, now),
        };
        let n = crate::with_pool!(self, p => {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, claimed_until = NULL, \
                 claim_id = NULL, last_status = $5, last_error = $6, updated_at = $7 \
                 WHERE id = $1 AND claim_id = $2 AND status = 'processing'",
            )
            .bind(id)
            .bind(claim_id)
            .bind(status.as_str())
            .bind(Ts(at))
            .bind(last_status.map(i32::from))
            .bind(error)
            .bind(Ts(now))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Puts a `dead` delivery back in the queue with a fresh budget (`attempts` 0, due now).
    /// `Ok(None)`: no such delivery; `Ok(Some(false))`: it is not dead (nothing changed). One
    /// conditional statement, so two admins retrying at once queue it once. The caller wakes
    /// the worker ([`Store::wake_web_hooks`]).
    pub async fn retry_web_hook(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<bool>, StoreError> {
        let (changed, exists) = crate::with_pool!(self, p => {
            let changed = sqlx::query(
                "UPDATE webhook_deliveries SET status = 'queued', attempts = 0, next_attempt_at = $2, \
                 claimed_until = NULL, claim_id = NULL, updated_at = $2 WHERE id = $1 AND status = 'dead'",
            )
            .bind(id)
            .bind(Ts(now))
            .execute(p)
            .await?
            .rows_affected();
            let exists: Option<Uuid> = if changed == 0 {
                sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE id = $1")
                    .bind(id)
                    .fetch_optional(p)
                    .await?
            } else {
                None
            };
            (changed, exists)
        });
        if changed > 0 {
            return Ok(Some(true));
        }
        Ok(exists.map(|_| false))
    }

    /// One delivery.
    pub async fn get_web_hook_delivery(&self, id: Uuid) -> Result<Option<Delivery>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE id = $1");
        let row: Option<Row> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await?
        });
        row.map(delivery).transpose()
    }

    /// Deliveries newest first (`created_at DESC, id`), filtered, with keyset pagination.
    pub async fn list_web_hook_deliveries(&self, f: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE 1 = 1");
        let mut n = 0;
        if f.status.is_some() {
            n += 1;
            sql.push_str(&format!(" AND status = ${n}"));
        }
        if f.after.is_some() {
            sql.push_str(&format!(
                " AND (created_at < ${} OR (created_at = ${} AND id > ${}))",
                n + 1,
                n + 2,
                n + 3
            ));
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, id LIMIT {}", f.limit.max(1)));
        let rows: Vec<Row> = crate::with_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            if let Some(s) = f.status {
                q = q.bind(s.as_str());
            }
            if let Some((at, id)) = f.after {
                q = q.bind(Ts(at)).bind(Ts(at)).bind(id);
            }
            q.fetch_all(p).await?
        });
        rows.into_iter().map(delivery).collect()
    }
}
