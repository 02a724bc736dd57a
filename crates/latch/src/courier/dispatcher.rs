//! The background worker that delivers the outbox. Kratos: `courier/courier_dispatcher.go`.
//!
//! Each round claims up to `courier.worker.pull_count` due messages for [`LEASE`] (so several
//! nodes on one PostgreSQL never send the same message at once), sends them one by one, and
//! records each attempt. A failed attempt is retried after an exponential backoff (1s, 2s,
//! 4s, … at most [`MAX_BACKOFF`]); after `courier.message_retries` failed attempts the message
//! is `abandoned`. When the server cannot be reached, the rest of the round is handed back
//! untouched instead of burning everyone's attempts. The worker sleeps
//! `courier.worker.pull_wait` between rounds and wakes at once when this node enqueues mail.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tracing::Instrument;

use super::message::{Message, redact_address};
use super::smtp::Mailer;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// How long a claim lasts; a worker that dies mid-round loses its messages to others after it.
pub const LEASE: Duration = Duration::from_secs(60);
/// Mails in flight at once (also the SMTP connection pool size).
pub const CONCURRENCY: usize = 16;

/// The longest pause between two attempts of one message.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The pause after the `failures`-th failed attempt: 1s, 2s, 4s, … capped at [`MAX_BACKOFF`].
pub fn backoff(failures: i32) -> Duration {
    let exp = u32::try_from(failures.saturating_sub(1)).unwrap_or(0).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// Delivers the outbox until stopped.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    clock: SharedClock,
    mailer: Option<Arc<Mailer>>,
    retries: i32,
    pull_count: u32,
    pull_wait: Duration,
}

/// What one round did.
struct Round {
    /// Claimed a full batch and finished it: more may be waiting.
    full: bool,
}

impl Dispatcher {
    /// A worker for this configuration; `mailer` is `None` when no SMTP server is configured.
    pub fn new(config: &Config, store: Store, clock: SharedClock, mailer: Option<Arc<Mailer>>) -> Dispatcher {
        Dispatcher {
            store,
            clock,
            mailer,
            retries: i32::try_from(config.courier.message_retries.max(1)).unwrap_or(i32::MAX),
            pull_count: config.courier.worker.pull_count.clamp(1, 1000),
            pull_wait: config
                .courier
                .worker
                .pull_wait
                .clamp(Duration::from_millis(10), Duration::from_secs(3600)),
        }
    }

    /// Runs until `stop` turns `true` (or its sender goes away). Without SMTP it logs once
    /// and returns: mail then stays `queued` in the outbox.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some(mailer) = self.mailer.clone() else {
            tracing::warn!(
                "courier: no SMTP server configured (courier.smtp.connection_uri); in --dev mode mail stays queued \
                 in the outbox and is not sent"
            );
            return;
        };
        tracing::info!(server = mailer.target(), "courier worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            let full = match self.round(&mailer, &stop).await {
                Ok(r) => r.full,
                Err(e) => {
                    tracing::error!(error = %e, "courier: cannot work the outbox; retrying");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                changed = stop.changed() => if changed.is_err() { break },
                _ = self.store.outbox.wake.notified() => {},
                _ = tokio::time::sleep(self.pull_wait) => {},
            }
        }
        tracing::info!("courier worker stopped");
    }

    async fn round(&self, mailer: &Mailer, stop: &watch::Receiver<bool>) -> Result<Round, StoreError> {
        let batch = self
            .store
            .claim_messages(self.clock.now(), LEASE, self.pull_count)
            .await?;
        let full = batch.len() >= self.pull_count as usize;
        // Up to CONCURRENCY mails are in flight at once: one SMTP exchange mostly waits on
        // network round trips, so one-by-one sending caps throughput at a few dozen mails/s.
        let mut done = 0;
        while done < batch.len() {
            let size = CONCURRENCY;
            let chunk: Vec<&Message> = batch.iter().skip(done).take(size).collect();
            // On shutdown, or once the server proved unusable, hand the rest back unattempted.
            if *stop.borrow() {
                let ids: Vec<_> = batch.iter().skip(done).map(|m| m.id).collect();
                self.store.release_messages(&ids, self.clock.now()).await?;
                return Ok(Round { full: false });
            }
            let results = futures_util::future::join_all(chunk.iter().map(|m| self.attempt(mailer, m))).await;
            done += chunk.len();
            let mut usable = true;
            for r in results {
                usable &= r?;
            }
            if !usable {
                let ids: Vec<_> = batch.iter().skip(done).map(|m| m.id).collect();
                self.store.release_messages(&ids, self.clock.now()).await?;
                return Ok(Round { full: false });
            }
        }
        Ok(Round { full })
    }

    /// Sends one message and records the outcome; `false` when the server is unusable for
    /// the rest of the round (anything but a permanent refusal of this one message).
    async fn attempt(&self, mailer: &Mailer, m: &Message) -> Result<bool, StoreError> {
        let span = tracing::info_span!(
            "courier_send",
            message_id = %m.id,
            template_type = %m.template_type,
            recipient = %redact_address(&m.recipient),
            attempt = m.send_count + 1,
        );
        let result = mailer.send(m, self.clock.now()).instrument(span.clone()).await;
        let now = self.clock.now();
        let carry_on = match result {
            Ok(()) => {
                self.store.mark_message_sent(m.id, now).await?;
                span.in_scope(|| tracing::info!("courier: message sent"));
                true
            }
            Err(e) => {
                let failures = m.send_count.saturating_add(1);
                let next = (failures < self.retries).then(|| now + backoff(failures));
                let error = json!({
                    "code": 500,
                    "status": "Internal Server Error",
                    "reason": format!("sending the message over SMTP failed ({})", e.kind),
                    "message": e.message,
                });
                self.store.mark_message_failed(m.id, now, &error, next).await?;
                span.in_scope(|| match next {
                    Some(_) => tracing::warn!(
                        error_kind = e.kind,
                        retry_in_secs = backoff(failures).as_secs(),
                        "courier: sending failed; will retry (details in the message's dispatches)"
                    ),
                    None => tracing::warn!(
                        error_kind = e.kind,
                        failed_attempts = failures,
                        "courier: message abandoned after its last failed attempt"
                    ),
                });
                e.permanent
            }
        };
        self.store.outbox.attempts.send_modify(|n| *n += 1);
        Ok(carry_on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(9), Duration::from_secs(256));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
        assert_eq!(backoff(0), Duration::from_secs(1));
    }
}
