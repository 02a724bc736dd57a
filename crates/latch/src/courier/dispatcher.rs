//! The background worker that delivers the outbox. Kratos: `courier/courier_dispatcher.go`.
//!
//! Each round claims up to `courier.worker.pull_count` due messages for [`LEASE`] (so several
//! nodes on one PostgreSQL never send the same message at once), sends them, and records each
//! attempt. Two kinds of failure are told apart:
//!
//! - **The server refused this message** (an SMTP reply other than `421`: `5xx`, or a `4xx`
//!   such as a full mailbox): the attempt is charged to that message, which is retried after
//!   [`backoff`] (1 min, 5 min, 15 min, 45 min, 2 h, then every 4 h) and `abandoned` after
//!   `courier.message_retries` charged attempts. With the default 5 the budget spans 66
//!   minutes.
//! - **The server cannot be used** (no connection, TLS failure, no reply in time, `421`):
//!   nothing is charged, not even to the message that was being tried, since the failure
//!   says nothing about it. The round ends, every claimed message goes back to the queue
//!   untouched, and the whole worker waits [`relay_backoff`] (1 s, 2 s, 4 s, … at most
//!   [`MAX_RELAY_BACKOFF`]) before it tries again. A relay outage of any length therefore
//!   costs no mail: it is delivered once the relay is back. (When the server answered other
//!   messages of the same concurrent chunk, it is reachable, and such a failure is charged
//!   to its message: one message that always breaks the connection cannot stall the queue.)
//!
//! Sent messages of one round are recorded together in one write transaction; a claim is
//! one statement. The worker sleeps `courier.worker.pull_wait` between rounds and wakes at
//! once when mail is enqueued: on this node in memory, on every node through PostgreSQL's
//! `NOTIFY latch_courier` (migration 0008). Waits are measured on the injected clock, so tests move time instead
//! of sleeping. At debug level (`LATCH_LOG=latch::courier=debug`) each claim, each mail's wait
//! since it was due, and each record write are logged with their durations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use super::message::{Message, redact_address};
use super::smtp::{Mailer, SendError};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// How long a claim lasts; a worker that dies mid-round loses its messages to others after it.
pub const LEASE: Duration = Duration::from_secs(60);
/// Mails in flight at once (also the SMTP connection pool size).
pub const CONCURRENCY: usize = 16;

/// The pauses after the 1st, 2nd, … charged failure of one message; later failures wait
/// [`MAX_BACKOFF`].
const MESSAGE_BACKOFF_SECS: [u64; 5] = [60, 300, 900, 2700, 7200];

/// The longest pause between two charged attempts of one message.
pub const MAX_BACKOFF: Duration = Duration::from_secs(4 * 3600);

/// The longest pause of the whole worker while the server is unreachable.
pub const MAX_RELAY_BACKOFF: Duration = Duration::from_secs(60);

/// The pause after the `failures`-th charged failure of a message: 1 min, 5 min, 15 min,
/// 45 min, 2 h, then [`MAX_BACKOFF`].
pub fn backoff(failures: i32) -> Duration {
    let i = usize::try_from(failures.saturating_sub(1)).unwrap_or(0);
    MESSAGE_BACKOFF_SECS
        .get(i)
        .map_or(MAX_BACKOFF, |s| Duration::from_secs(*s))
}

/// The worker's pause after the `outages`-th round in a row that found the server
/// unreachable: 1 s, 2 s, 4 s, … capped at [`MAX_RELAY_BACKOFF`].
pub fn relay_backoff(outages: u32) -> Duration {
    let exp = outages.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_RELAY_BACKOFF)
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
    /// Messages claimed (0: the round learnt nothing about the server).
    claimed: usize,
    /// The server could not be used; the error that showed it.
    unreachable: Option<SendError>,
}

/// What one attempt did.
enum Attempt {
    /// Sent; recorded with the rest of its chunk in one write.
    Sent,
    /// Refused and charged to the message.
    Done,
    /// The server could not be used; nothing was recorded.
    Unreachable(SendError),
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
        // Rounds in a row that found the server unreachable, and when to try it again.
        let mut outages: u32 = 0;
        let mut retry_at: Option<OffsetDateTime> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let mut full = false;
            if retry_at.is_none_or(|t| self.clock.now() >= t) {
                match self.round(&mailer, &stop).await {
                    Ok(Round {
                        unreachable: Some(e), ..
                    }) => {
                        outages = outages.saturating_add(1);
                        let wait = relay_backoff(outages);
                        retry_at = Some(self.clock.now() + wait);
                        tracing::warn!(
                            server = mailer.target(),
                            error_kind = e.kind,
                            error = %e.message,
                            retry_in_secs = wait.as_secs(),
                            "courier: the SMTP server cannot be used; queued mail waits (no attempt is charged)"
                        );
                        self.store.outbox.outages.send_modify(|n| *n += 1);
                    }
                    Ok(r) if r.claimed == 0 => {}
                    Ok(r) => {
                        if outages > 0 {
                            tracing::info!(server = mailer.target(), "courier: the SMTP server is reachable again");
                        }
                        outages = 0;
                        retry_at = None;
                        full = r.full;
                    }
                    Err(e) => tracing::error!(error = %e, "courier: cannot work the outbox; retrying"),
                }
            }
            if full {
                continue;
            }
            let mut pause = self.pull_wait;
            if let Some(t) = retry_at {
                let left = Duration::try_from(t - self.clock.now()).unwrap_or(Duration::ZERO);
                pause = pause.min(left).max(Duration::from_millis(10));
            }
            tokio::select! {
                changed = stop.changed() => if changed.is_err() { break },
                _ = self.store.outbox.wake.notified() => {},
                _ = tokio::time::sleep(pause) => {},
            }
        }
        tracing::info!("courier worker stopped");
    }

    async fn round(&self, mailer: &Mailer, stop: &watch::Receiver<bool>) -> Result<Round, StoreError> {
        let started = Instant::now();
        let batch = self
            .store
            .claim_messages(self.clock.now(), LEASE, self.pull_count)
            .await?;
        let full = batch.len() >= self.pull_count as usize;
        if !batch.is_empty() {
            self.store.outbox.rounds.send_modify(|n| *n += 1);
            tracing::debug!(
                claimed = batch.len(),
                claim_ms = millis(started.elapsed()),
                "courier: claimed"
            );
        }
        // Up to CONCURRENCY mails are in flight at once: one SMTP exchange mostly waits on
        // network round trips, so one-by-one sending caps throughput at a few dozen mails/s.
        let mut done = 0;
        while done < batch.len() {
            // On shutdown, hand the rest back unattempted.
            if *stop.borrow() {
                let ids: Vec<Uuid> = batch.iter().skip(done).map(|m| m.id).collect();
                self.store.release_messages(&ids, self.clock.now()).await?;
                return Ok(Round {
                    full: false,
                    claimed: batch.len(),
                    unreachable: None,
                });
            }
            let chunk: Vec<&Message> = batch.iter().skip(done).take(CONCURRENCY).collect();
            let results = futures_util::future::join_all(chunk.iter().map(|m| self.attempt(mailer, m))).await;
            done += chunk.len();
            let mut failed: Vec<(&Message, SendError)> = Vec::new();
            let mut sent: Vec<Uuid> = Vec::new();
            let mut answered = false;
            for (m, r) in chunk.iter().zip(results) {
                match r? {
                    Attempt::Sent => sent.push(m.id),
                    Attempt::Done => answered = true,
                    Attempt::Unreachable(e) => failed.push((m, e)),
                }
            }
            // Every delivery of the chunk in one write transaction.
            if !sent.is_empty() {
                answered = true;
                let started = Instant::now();
                self.store.mark_messages_sent(&sent, self.clock.now()).await?;
                tracing::debug!(
                    mails = sent.len(),
                    write_ms = millis(started.elapsed()),
                    "courier: sent mail recorded"
                );
                self.store.outbox.records.send_modify(|n| *n += 1);
                let n = sent.len() as u64;
                self.store.outbox.attempts.send_modify(|a| *a += n);
            }
            if failed.is_empty() {
                continue;
            }
            if answered {
                // The server handled other messages of this chunk, so it is reachable: these
                // failures belong to their messages (a message that always breaks the
                // connection must not hold up the queue forever).
                for (m, e) in failed {
                    self.charge(m, e).await?;
                }
                continue;
            }
            // Nothing is charged: the tried messages and the rest go back as they were.
            let mut back: Vec<Uuid> = failed.iter().map(|(m, _)| m.id).collect();
            back.extend(batch.iter().skip(done).map(|m| m.id));
            self.store.release_messages(&back, self.clock.now()).await?;
            return Ok(Round {
                full: false,
                claimed: batch.len(),
                unreachable: failed.into_iter().next().map(|(_, e)| e),
            });
        }
        Ok(Round {
            full,
            claimed: batch.len(),
            unreachable: None,
        })
    }

    /// Sends one message and records the outcome, unless the server could not be used.
    async fn attempt(&self, mailer: &Mailer, m: &Message) -> Result<Attempt, StoreError> {
        let span = tracing::info_span!(
            "courier_send",
            message_id = %m.id,
            template_type = %m.template_type,
            recipient = %redact_address(&m.recipient),
            attempt = m.send_count + 1,
        );
        let now = self.clock.now();
        span.in_scope(|| {
            tracing::debug!(
                waited_ms = millis(Duration::try_from(now - m.next_attempt_at).unwrap_or_default()),
                "courier: sending (waited since due)"
            )
        });
        let result = mailer.send(m, now).instrument(span.clone()).await;
        match result {
            Ok(()) => {
                span.in_scope(|| tracing::info!("courier: message sent"));
                Ok(Attempt::Sent)
            }
            Err(e) if e.unreachable => Ok(Attempt::Unreachable(e)),
            Err(e) => self.charge(m, e).instrument(span).await.map(|()| Attempt::Done),
        }
    }

    /// Records a failed attempt charged to `m`: queued again after [`backoff`], or
    /// `abandoned` once `courier.message_retries` attempts failed.
    async fn charge(&self, m: &Message, e: SendError) -> Result<(), StoreError> {
        let now = self.clock.now();
        let failures = m.send_count.saturating_add(1);
        let next = (failures < self.retries).then(|| now + backoff(failures));
        let error = json!({
            "code": 500,
            "status": "Internal Server Error",
            "reason": format!("the SMTP server refused the message ({})", e.kind),
            "message": e.message,
        });
        self.store.mark_message_failed(m.id, now, &error, next).await?;
        match next {
            Some(_) => tracing::warn!(
                message_id = %m.id,
                error_kind = e.kind,
                retry_in_secs = backoff(failures).as_secs(),
                "courier: sending failed; will retry (details in the message's dispatches)"
            ),
            None => tracing::warn!(
                message_id = %m.id,
                error_kind = e.kind,
                failed_attempts = failures,
                "courier: message abandoned after its last failed attempt"
            ),
        }
        self.store.outbox.attempts.send_modify(|n| *n += 1);
        Ok(())
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_backoff_spans_more_than_an_hour_with_the_default_five_retries() {
        assert_eq!(backoff(0), Duration::from_secs(60));
        assert_eq!(backoff(1), Duration::from_secs(60));
        assert_eq!(backoff(2), Duration::from_secs(300));
        assert_eq!(backoff(5), Duration::from_secs(7200));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(i32::MAX), MAX_BACKOFF);
        // Five charged attempts are four pauses apart (the fifth failure abandons).
        let span: Duration = (1..5).map(backoff).sum();
        assert!(span >= Duration::from_secs(3600), "{span:?}");
    }

    #[test]
    fn relay_backoff_doubles_up_to_a_minute() {
        assert_eq!(relay_backoff(0), Duration::from_secs(1));
        assert_eq!(relay_backoff(1), Duration::from_secs(1));
        assert_eq!(relay_backoff(3), Duration::from_secs(4));
        assert_eq!(relay_backoff(7), MAX_RELAY_BACKOFF);
        assert_eq!(relay_backoff(u32::MAX), MAX_RELAY_BACKOFF);
    }
}
