//! Deleting what nobody needs any more. Kratos: `persistence/sql/persister_cleanup.go`
//! (`kratos cleanup sql`), plus the Latch-only blanking of delivered mail bodies.
//!
//! Every kind is removed in batches of `batch_size` rows, each batch one short statement
//! (never one long transaction that holds locks for minutes), with a pause between batches.
//! A batch picks rows by primary key and re-checks the expiry condition in the same
//! statement, so two nodes (or a node and `latch cleanup sql`) may clean at once: a row
//! another node deleted first is simply not counted, and on PostgreSQL rows another node
//! holds are skipped (`FOR UPDATE SKIP LOCKED`).
//!
//! Never touched: identities, their credentials and addresses, unexpired flows, codes and
//! sessions, and mail that is not `sent` (queued, processing and abandoned mail keep their
//! bodies, so they can still be delivered or retried).

use std::time::Duration;

use time::OffsetDateTime;

use super::{Store, StoreError, Ts};

/// Signals from this node's cleanup janitor.
#[derive(Debug)]
pub struct CleanupSignals {
    /// Finished janitor runs (successful or not).
    pub runs: tokio::sync::watch::Sender<u64>,
}

impl Default for CleanupSignals {
    fn default() -> Self {
        CleanupSignals {
            runs: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// What to clean and how fast. Kratos: `kratos cleanup sql` flags; `latch.cleanup` config.
#[derive(Debug, Clone, Copy)]
pub struct CleanupOptions {
    /// Keep rows this long after they expired (or were created, for stored errors).
    pub keep_last: Duration,
    /// Rows per statement (at least 1).
    pub batch_size: u32,
    /// Pause between two batches of one kind.
    pub sleep_between_batches: Duration,
    /// Blank subjects and bodies of sent mail (and bodies and headers of delivered web hooks)
    /// this long after sending.
    pub mail_body_retention: Duration,
}

impl From<&crate::config::Cleanup> for CleanupOptions {
    fn from(c: &crate::config::Cleanup) -> CleanupOptions {
        CleanupOptions {
            keep_last: c.keep_last,
            batch_size: c.batch_size,
            sleep_between_batches: c.sleep_between_batches,
            mail_body_retention: c.mail_body_retention,
        }
    }
}

/// Rows removed (or, for mail, blanked) per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// One-time codes that were used or expired, or whose flow expired.
    pub codes: u64,
    /// Self-service flows of every kind past their expiry.
    pub flows: u64,
    /// Stored browser errors (`/self-service/errors`) older than `keep_last`.
    pub errors: u64,
    /// Devices of expired sessions.
    pub session_devices: u64,
    /// Expired sessions.
    pub sessions: u64,
    /// Rate-limit counters whose window ended (`latch_limits`).
    pub rate_limit_counters: u64,
    /// Sent mail whose subject and body were blanked.
    pub mail_bodies: u64,
    /// Delivered web hooks whose body and headers were blanked.
    pub web_hook_bodies: u64,
}

impl CleanupReport {
    /// `(name, count)` pairs in a stable order, for printing.
    pub fn rows(&self) -> [(&'static str, u64); 8] {
        [
            ("codes", self.codes),
            ("flows", self.flows),
            ("errors", self.errors),
            ("session_devices", self.session_devices),
            ("sessions", self.sessions),
            ("rate_limit_counters", self.rate_limit_counters),
            ("mail_bodies", self.mail_bodies),
            ("web_hook_bodies", self.web_hook_bodies),
        ]
    }

    /// All rows touched.
    pub fn total(&self) -> u64 {
        self.rows().iter().map(|(_, n)| n).sum()
    }
}

/// `now - d`, saturating far in the past.
fn before(now: OffsetDateTime, d: Duration) -> OffsetDateTime {
    now.checked_sub(time::Duration::try_from(d).unwrap_or(time::Duration::MAX))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A bound value of a cleanup statement: a timestamp or an integer.
#[derive(Clone, Copy)]
enum Bind {
    At(OffsetDateTime),
    Int(i64),
}

impl Store {
    /// Runs every kind once, in an order that keeps the counts exact (codes before the flows
    /// that would cascade them, devices before their sessions).
    pub async fn cleanup(&self, now: OffsetDateTime, o: &CleanupOptions) -> Result<CleanupReport, StoreError> {
        Ok(CleanupReport {
            codes: self.cleanup_codes(now, o).await?,
            flows: self.cleanup_flows(now, o).await?,
            errors: self.cleanup_errors(now, o).await?,
            session_devices: self.cleanup_session_devices(now, o).await?,
            sessions: self.cleanup_sessions(now, o).await?,
            rate_limit_counters: self.cleanup_rate_limit_counters(now, o).await?,
            mail_bodies: self.cleanup_mail_bodies(now, o).await?,
            web_hook_bodies: self.cleanup_web_hook_bodies(now, o).await?,
        })
    }

    /// Codes that were used or expired more than `keep_last` ago, and codes of flows that
    /// expired more than `keep_last` ago.
    pub async fn cleanup_codes(&self, now: OffsetDateTime, o: &CleanupOptions) -> Result<u64, StoreError> {
        let cut = before(now, o.keep_last);
        self.in_batches(
            "DELETE FROM selfservice_codes WHERE id IN (SELECT id FROM selfservice_codes \
             WHERE expires_at < $1 OR (used_at IS NOT NULL AND used_at < $2) \
             OR flow_id IN (SELECT id FROM selfservice_flows WHERE expires_at < $3) LIMIT {n}{lock})",
            &[Bind::At(cut), Bind::At(cut), Bind::At(cut)],
            o,
        )
        .await
    }

    /// Flows of every kind that expired more than `keep_last` ago.
    pub async fn cleanup_flows(&self, now: OffsetDateTime, o: &CleanupOptions) -> Result<u64, StoreError> {
        self.in_batches(
            "DELETE FROM selfservice_flows WHERE id IN (SELECT id FROM selfservice_flows \
             WHERE expires_at < $1 LIMIT {n}{lock})",
            &[Bind::At(before(now, o.keep_last))],
            o,
        )
        .await
    }

    /// Stored browser errors created more than `keep_last` ago.
    pub async fn cleanup_errors(&self, now: OffsetDateTime, o: &CleanupOptions) -> Result<u64, StoreError> {
        self.in_batches(
            "DELETE FROM selfservice_errors WHERE id IN (SELECT id FROM selfservice_errors \
             WHERE created_at < $1 LIMIT {n}{lock})",
            &[Bind::At(before(now, o.keep_last))],
            o,
        )
        .await
    }

    /// Devices of sessions that expired more than `keep_last` ago.
    pub async fn cleanup_session_devices(&self, now: OffsetDateTime, o: &CleanupOptions) -> Result<u64, StoreError> {
        self.in_batches(
            "DELETE FROM session_devices WHERE id IN (SELECT id FROM session_devices \
             WHERE session_id IN (SELECT id FROM sessions WHERE expires_at < $1) LIMIT {n}{lock})",
            &[Bind::At(before(now, o.keep_last))],
            o,
        )
        .await
    }

    /// Sessions that expired more than `keep_last` ago (revoked but unexpired ones stay, as
    /// in Kratos, for the admin listing).
    pub async fn cleanup_sessions(&self, now: OffsetDateTime, o: &CleanupOptions) -> Result<u64, StoreError> {
        self.in_batches(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
             WHERE expires_at < $1 LIMIT {n}{lock})",
            &[Bind::At(before(now, o.keep_last))],
            o,
        )
        .await
    }

    /// Rate-limit counters and single-use markers (`latch_limits`, epoch milliseconds) whose
    /// window ended more than `keep_last` ago.
    pub async fn cleanup_rate_limit_counters(
        &self,
        now: OffsetDateTime,
        o: &CleanupOptions,
    ) -> Result<u64, StoreError> {
        let cut_ms = i64::try_from(before(now, o.keep_last).unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        self.in_batches(
            "DELETE FROM latch_limits WHERE key IN (SELECT key FROM latch_limits \
             WHERE reset_at < $1 LIMIT {n}{lock})",
            &[Bind::Int(cut_ms)],
            o,
        )
        .await
    }

    /// Blanks subject, bodies and template data (which carry one-time codes) of mail sent more
    /// than `mail_body_retention` ago; the row stays for the admin listing.
    pub async fn cleanup_mail_bodies(&self, now: OffsetDateTime, o: &CleanupOptions) -> Result<u64, StoreError> {
        self.in_batches(
            "UPDATE courier_messages SET subject = '', body = '', body_html = NULL, template_data = '{}' \
             WHERE id IN (SELECT id FROM courier_messages WHERE status = 'sent' AND updated_at < $1 \
             AND (body <> '' OR subject <> '' OR body_html IS NOT NULL) LIMIT {n}{lock})",
            &[Bind::At(before(now, o.mail_body_retention))],
            o,
        )
        .await
    }

    /// Blanks the body and headers (personal data, keys in headers) of web hooks delivered
    /// more than `mail_body_retention` ago; the row stays for the admin listing.
    pub async fn cleanup_web_hook_bodies(&self, now: OffsetDateTime, o: &CleanupOptions) -> Result<u64, StoreError> {
        self.in_batches(
            "UPDATE webhook_deliveries SET body = NULL, headers = '[]' \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'delivered' AND updated_at < $1 \
             AND body IS NOT NULL LIMIT {n}{lock})",
            &[Bind::At(before(now, o.mail_body_retention))],
            o,
        )
        .await
    }

    /// Runs `template` (with `{n}` = batch size and `{lock}` = the dialect's skip-locked
    /// suffix) until a batch touches fewer rows than a full batch; returns the rows touched.
    /// (A short batch may also mean another node took some rows; that node goes on.)
    async fn in_batches(&self, template: &str, binds: &[Bind], o: &CleanupOptions) -> Result<u64, StoreError> {
        let sql = template
            .replace("{n}", &o.batch_size.max(1).to_string())
            .replace("{lock}", self.dialect().claim_suffix());
        let mut total = 0u64;
        loop {
            let n = crate::with_pool!(self, p => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for b in binds {
                    q = match *b {
                        Bind::At(t) => q.bind(Ts(t)),
                        Bind::Int(i) => q.bind(i),
                    };
                }
                q.execute(p).await?.rows_affected()
            });
            total += n;
            if n < u64::from(o.batch_size.max(1)) {
                return Ok(total);
            }
            if !o.sleep_between_batches.is_zero() {
                tokio::time::sleep(o.sleep_between_batches).await;
            }
        }
    }
}
