//! The mail outbox: `courier_messages` and their delivery attempts,
//! `courier_message_dispatches`. Kratos: `persistence/sql/persister_courier.go`.
//!
//! Messages are enqueued in the caller's transaction ([`insert_courier_message!`]) or on their
//! own ([`Store::enqueue_message`]); workers claim due messages with
//! [`Store::claim_messages`] (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so each message is sent
//! by one node at a time.

use std::time::Duration;

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::sql::placeholders;
use super::{Store, StoreError, Ts};
use crate::courier::message::{Dispatch, Message, MessageStatus};

/// In-process signals between the code that enqueues mail and this node's courier worker.
#[derive(Debug)]
pub struct OutboxSignals {
    /// Wakes the worker (a stored permit if it is busy, so no wake-up is lost).
    pub wake: Notify,
    /// Counts finished delivery attempts on this node (success or failure); tests and
    /// operators can wait on it instead of sleeping.
    pub attempts: watch::Sender<u64>,
    /// Counts this node's rounds that found the SMTP server unreachable (no attempt charged).
    pub outages: watch::Sender<u64>,
    /// Counts this node's claims that returned mail (rounds that had something to send).
    pub rounds: watch::Sender<u64>,
    /// Counts this node's write transactions that recorded sent mail.
    pub records: watch::Sender<u64>,
}

impl Default for OutboxSignals {
    fn default() -> Self {
        OutboxSignals {
            wake: Notify::new(),
            attempts: watch::Sender::new(0),
            outages: watch::Sender::new(0),
            rounds: watch::Sender::new(0),
            records: watch::Sender::new(0),
        }
    }
}

/// One `courier_messages` row ([`MESSAGE_COLUMNS`]).
#[derive(sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    status: String,
    recipient: String,
    subject: String,
    body: String,
    body_html: Option<String>,
    template_type: String,
    template_data: Json<Value>,
    send_count: i32,
    next_attempt_at: Ts,
    created_at: Ts,
    updated_at: Ts,
}

/// One `courier_message_dispatches` row.
#[derive(sqlx::FromRow)]
struct DispatchRow {
    id: Uuid,
    message_id: Uuid,
    status: String,
    error: Option<Json<Value>>,
    created_at: Ts,
    updated_at: Ts,
}

const MESSAGE_COLUMNS: &str = "id, status, recipient, subject, body, body_html, template_type, template_data, \
    send_count, next_attempt_at, created_at, updated_at";

/// Which messages to list. Kratos: `ListCourierMessagesParameters`.
#[derive(Debug, Default, Clone)]
pub struct MessageFilter {
    /// Only messages in this state.
    pub status: Option<MessageStatus>,
    /// Only messages to this address (exact).
    pub recipient: Option<String>,
    /// Keyset pagination, newest first: messages after this `(created_at, id)`.
    pub after: Option<(OffsetDateTime, Uuid)>,
    /// Page size.
    pub limit: u32,
}

/// Inserts a [`crate::courier::message::NewMessage`] inside an open transaction, so that a
/// one-time code and the mail carrying it commit together:
///
/// ```ignore
/// crate::with_tx!(store, tx => {
///     /* insert the code row with `&mut *tx` */
///     crate::store::courier::insert_courier_message!(tx, &message);
///     Ok::<(), StoreError>(())
/// })?;
/// store.wake_courier(); // after the commit, so the worker sees the row
/// ```
macro_rules! insert_courier_message {
    ($tx:expr, $msg:expr) => {{
        let m: &$crate::courier::message::NewMessage = $msg;
        sqlx::query(
            "INSERT INTO courier_messages (id, type, status, recipient, subject, body, body_html, template_type, \
             template_data, send_count, next_attempt_at, claimed_until, created_at, updated_at) \
             VALUES ($1, 'email', 'queued', $2, $3, $4, $5, $6, $7, 0, $8, NULL, $8, $8)",
        )
        .bind(m.id)
        .bind(&m.recipient)
        .bind(&m.subject)
        .bind(&m.body)
        .bind(&m.body_html)
        .bind(m.template_type.as_str())
        .bind(sqlx::types::Json(&m.template_data))
        .bind($crate::store::Ts(m.created_at))
        .execute(&mut *$tx)
        .await
        .map_err(|e| $crate::store::StoreError::from_write(e, "courier message id collision"))?;
    }};
}
pub(crate) use insert_courier_message;

/// Records one attempt inside an open transaction.
macro_rules! insert_dispatch {
    ($tx:expr, $message_id:expr, $status:expr, $error:expr, $now:expr) => {{
        let error: Option<&Value> = $error;
        sqlx::query(
            "INSERT INTO courier_message_dispatches (id, message_id, status, error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(Uuid::new_v4())
        .bind($message_id)
        .bind($status)
        .bind(error.map(Json))
        .bind(Ts($now))
        .execute(&mut *$tx)
        .await?;
    }};
}

fn message(r: MessageRow) -> Result<Message, StoreError> {
    let status =
        MessageStatus::parse(&r.status).ok_or_else(|| StoreError::Corrupt(format!("message status {:?}", r.status)))?;
    Ok(Message {
        id: r.id,
        status,
        recipient: r.recipient,
        subject: r.subject,
        body: r.body,
        body_html: r.body_html,
        template_type: r.template_type,
        template_data: r.template_data.0,
        send_count: r.send_count,
        next_attempt_at: r.next_attempt_at.0,
        created_at: r.created_at.0,
        updated_at: r.updated_at.0,
        dispatches: vec![],
    })
}

/// The claim statement of [`Store::claim_messages`]: `$1` now, `$2` now, `$3` the lease end.
pub(crate) fn claim_sql(dialect: super::Dialect, limit: u32) -> String {
    format!(
        "UPDATE courier_messages SET status = 'processing', claimed_until = $3, updated_at = $1 \
         WHERE id IN (SELECT id FROM courier_messages \
         WHERE status IN ('queued', 'processing') AND next_attempt_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until <= $2) \
         ORDER BY next_attempt_at, created_at, id LIMIT {}{}) \
         RETURNING {MESSAGE_COLUMNS}",
        limit.max(1),
        dialect.claim_suffix()
    )
}

impl Store {
    /// Enqueues one message in its own transaction and wakes this node's worker.
    pub async fn enqueue_message(&self, m: &crate::courier::message::NewMessage) -> Result<(), StoreError> {
        crate::with_tx!(self, tx => {
            crate::store::courier::insert_courier_message!(tx, m);
            Ok::<(), StoreError>(())
        })?;
        self.wake_courier();
        Ok(())
    }

    /// Wakes this node's courier worker (call after committing a transaction that used
    /// [`insert_courier_message!`]). Other nodes find the message on their next poll.
    pub fn wake_courier(&self) {
        self.outbox.wake.notify_one();
    }

    /// Claims up to `limit` due messages for `lease`: `queued` ones whose `next_attempt_at`
    /// has come, and `processing` ones whose claim expired (a worker that died mid-send).
    /// One statement (`UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`; on PostgreSQL
    /// the inner select skips rows another node has locked), so an empty poll is one
    /// round trip. Oldest due first.
    pub async fn claim_messages(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let sql = claim_sql(self.dialect(), limit);
        let until = now + lease;
        let rows: Vec<MessageRow> = crate::with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(Ts(now))
                .bind(Ts(now))
                .bind(Ts(until))
                .fetch_all(p)
                .await?
        });
        let mut out = rows
            .into_iter()
            .map(message)
            .collect::<Result<Vec<Message>, StoreError>>()?;
        // RETURNING has no order; deliver oldest first. (The returned `updated_at` is now.)
        out.sort_by_key(|a| (a.next_attempt_at, a.created_at, a.id));
        Ok(out)
    }

    /// Records successful attempts, in one transaction whatever their number: each message
    /// `sent` with one more `send_count`, and a `success` dispatch each.
    pub async fn mark_messages_sent(&self, ids: &[Uuid], now: OffsetDateTime) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let update = format!(
            "UPDATE courier_messages SET status = 'sent', send_count = send_count + 1, claimed_until = NULL, \
             updated_at = $1 WHERE id IN ({})",
            placeholders(2, ids.len())
        );
        let values: Vec<String> = (0..ids.len())
            .map(|i| format!("(${}, ${}, 'success', NULL, $1, $1)", 2 * i + 2, 2 * i + 3))
            .collect();
        let insert = format!(
            "INSERT INTO courier_message_dispatches (id, message_id, status, error, created_at, updated_at) VALUES {}",
            values.join(", ")
        );
        crate::with_tx!(self, tx => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(update)).bind(Ts(now));
            for id in ids {
                q = q.bind(*id);
            }
            q.execute(&mut *tx).await?;
            let mut q = sqlx::query(sqlx::AssertSqlSafe(insert)).bind(Ts(now));
            for id in ids {
                q = q.bind(Uuid::new_v4()).bind(*id);
            }
            q.execute(&mut *tx).await?;
            Ok::<(), StoreError>(())
        })
    }

    /// Records a failed attempt: one more `send_count`, a `failed` dispatch with `error`, and
    /// either `queued` again from `next_attempt_at` or `abandoned`.
    pub async fn mark_message_failed(
        &self,
        id: Uuid,
        now: OffsetDateTime,
        error: &Value,
        next: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let (status, at) = match next {
            Some(at) => (MessageStatus::Queued, at),
            None => (MessageStatus::Abandoned, now),
        };
        crate::with_tx!(self, tx => {
            sqlx::query(
                "UPDATE courier_messages SET status = $2, send_count = send_count + 1, next_attempt_at = $3, \
                 claimed_until = NULL, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(Ts(at))
            .bind(Ts(now))
            .execute(&mut *tx)
            .await?;
            insert_dispatch!(tx, id, "failed", Some(error), now);
            Ok::<(), StoreError>(())
        })
    }

    /// Hands claimed messages back without counting an attempt (shutdown, or the server
    /// went away before their turn).
    pub async fn release_messages(&self, ids: &[Uuid], now: OffsetDateTime) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE courier_messages SET status = 'queued', claimed_until = NULL, updated_at = $1 \
             WHERE status = 'processing' AND id IN ({})",
            placeholders(2, ids.len())
        );
        crate::with_pool!(self, p => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(Ts(now));
            for id in ids {
                q = q.bind(*id);
            }
            q.execute(p).await?;
        });
        Ok(())
    }

    /// Puts an `abandoned` message back in the queue with a fresh retry budget (`send_count`
    /// 0, due now); its earlier attempts stay in its dispatches. `Ok(None)` when no message
    /// has this id; `Ok(Some(false))` when it exists but is not abandoned (nothing changed).
    /// One conditional statement, so two admins retrying at once queue it once. Does not
    /// wake the worker: call [`Store::wake_courier`] afterwards.
    pub async fn requeue_message(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<bool>, StoreError> {
        let (changed, exists) = crate::with_pool!(self, p => {
            let changed = sqlx::query(
                "UPDATE courier_messages SET status = 'queued', send_count = 0, next_attempt_at = $2, \
                 claimed_until = NULL, updated_at = $2 WHERE id = $1 AND status = 'abandoned'",
            )
            .bind(id)
            .bind(Ts(now))
            .execute(p)
            .await?
            .rows_affected();
            let exists: Option<Uuid> = if changed == 0 {
                sqlx::query_scalar("SELECT id FROM courier_messages WHERE id = $1")
                    .bind(id)
                    .fetch_optional(p)
                    .await?
            } else {
                None
            };
            (changed, exists)
        });
        if changed > 0 {
            // The caller wakes the worker (`wake_courier`) once it has read what it answers.
            return Ok(Some(true));
        }
        Ok(exists.map(|_| false))
    }

    /// One message with its attempts (newest first). Kratos: `FetchMessage`.
    pub async fn get_message(&self, id: Uuid) -> Result<Option<Message>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM courier_messages WHERE id = $1");
        let (row, dispatches): (Option<MessageRow>, Vec<DispatchRow>) = crate::with_pool!(self, p => {
            let row = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await?;
            let d = sqlx::query_as(
                "SELECT id, message_id, status, error, created_at, updated_at FROM courier_message_dispatches \
                 WHERE message_id = $1 ORDER BY created_at DESC, id",
            )
            .bind(id)
            .fetch_all(p)
            .await?;
            (row, d)
        });
        let Some(row) = row else { return Ok(None) };
        let mut m = message(row)?;
        m.dispatches = dispatches
            .into_iter()
            .map(|d| Dispatch {
                id: d.id,
                message_id: d.message_id,
                status: d.status,
                error: d.error.map(|j| j.0),
                created_at: d.created_at.0,
                updated_at: d.updated_at.0,
            })
            .collect();
        Ok(Some(m))
    }

    /// Messages newest first (`created_at DESC, id`), filtered, with keyset pagination.
    /// Kratos: `ListMessages`.
    pub async fn list_messages(&self, f: &MessageFilter) -> Result<Vec<Message>, StoreError> {
        let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM courier_messages WHERE 1 = 1");
        let mut n = 0;
        if f.status.is_some() {
            n += 1;
            sql.push_str(&format!(" AND status = ${n}"));
        }
        if f.recipient.is_some() {
            n += 1;
            sql.push_str(&format!(" AND recipient = ${n}"));
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
        let rows: Vec<MessageRow> = crate::with_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            if let Some(s) = f.status {
                q = q.bind(s.as_str());
            }
            if let Some(r) = &f.recipient {
                q = q.bind(r.clone());
            }
            if let Some((at, id)) = f.after {
                q = q.bind(Ts(at)).bind(Ts(at)).bind(id);
            }
            q.fetch_all(p).await?
        });
        rows.into_iter().map(message).collect()
    }
}
