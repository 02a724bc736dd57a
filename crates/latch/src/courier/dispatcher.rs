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
//! A claim is one statement. Sent messages are recorded in the background by a
//! [`Recorder`], one write transaction at a time, so the next round claims and sends while the
//! previous round's write waits for the database (on SQLite behind the request handlers'
//! writes, which take turns with it): whatever was sent while a write was in flight is
//! recorded by the next one. A sent message stays claimed until its record commits, so no
//! round (on any node) claims it again meanwhile; at most [`UNRECORDED_ROUNDS`] rounds' worth
//! of mail waits for its record, and no claim starts while a waiting record is older than half
//! the [`LEASE`]. A node that dies before the record commits leaves those messages to be sent
//! again once their claim expires (at least once, as before). Refusals charged to a message
//! are recorded at once, as are messages handed back.
//!
//! The worker sleeps `courier.worker.pull_wait` between rounds and wakes at once when mail is
//! enqueued: on this node in memory, on every node through PostgreSQL's `NOTIFY
//! latch_courier` (migration 0008); after a full round it claims again at once. Waits are
//! measured on the injected clock, so tests move time instead of sleeping. At debug level
//! (`LATCH_LOG=latch::courier=debug`) each claim, each mail's wait since it was due, and each
//! record write are logged with their durations.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
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

/// Sent mail that may wait for its record at once, in rounds of the larger of
/// `courier.worker.pull_count` and [`CONCURRENCY`]; past it no claim starts until the write
/// in flight ends.
pub const UNRECORDED_ROUNDS: usize = 4;

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
        let mut recorder = Recorder::start(self.store.clone(), self.clock.clone());
        let cap = UNRECORDED_ROUNDS * (self.pull_count as usize).max(CONCURRENCY);
        // Rounds in a row that found the server unreachable, and when to try it again.
        let mut outages: u32 = 0;
        let mut retry_at: Option<OffsetDateTime> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let mut full = false;
            if retry_at.is_none_or(|t| self.clock.now() >= t) {
                recorder.wait_room(cap, &self.clock).await;
                match self.round(&mailer, &stop, &mut recorder).await {
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
        // Sent mail is recorded before the worker reports that it stopped.
        recorder.finish().await;
        tracing::info!("courier worker stopped");
    }

    async fn round(
        &self,
        mailer: &Mailer,
        stop: &watch::Receiver<bool>,
        recorder: &mut Recorder,
    ) -> Result<Round, StoreError> {
        let claimed_at = self.clock.now();
        let started = Instant::now();
        let batch = self.store.claim_messages(claimed_at, LEASE, self.pull_count).await?;
        let full = batch.len() >= self.pull_count as usize;
        if !batch.is_empty() {
            self.store.outbox.rounds.send_modify(|n| *n += 1);
            tracing::debug!(
                claimed = batch.len(),
                claim_ms = millis(started.elapsed()),
                unrecorded = recorder.unrecorded(),
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
            let mut error = None;
            for (m, r) in chunk.iter().zip(results) {
                match r {
                    Ok(Attempt::Sent) => sent.push(m.id),
                    Ok(Attempt::Done) => answered = true,
                    Ok(Attempt::Unreachable(e)) => failed.push((m, e)),
                    Err(e) => error = Some(e),
                }
            }
            // Recorded in the background (one write with whatever else is sent meanwhile); the
            // messages stay claimed until then. Handed even when recording a refusal of the
            // same chunk failed.
            if !sent.is_empty() {
                answered = true;
                recorder.hand(sent, claimed_at);
            }
            if let Some(e) = error {
                return Err(e);
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

/// Sent mail of one round, handed to the [`Recorder`].
struct Sent {
    seq: u64,
    ids: Vec<Uuid>,
}

/// Records sent mail in the background, one write transaction at a time: the rounds handed
/// while a write is in flight go into the next one. Sent messages stay claimed (`processing`,
/// under the claim that sent them) until their write commits.
struct Recorder {
    queue: Option<mpsc::UnboundedSender<Sent>>,
    /// The `seq` of the last handed round whose write ended (committed, or failed and logged).
    ended: watch::Receiver<u64>,
    task: JoinHandle<()>,
    /// Handed rounds whose write has not ended: `(seq, claimed at, mails)`, oldest first.
    waiting: VecDeque<(u64, OffsetDateTime, usize)>,
    next_seq: u64,
}

impl Recorder {
    fn start(store: Store, clock: SharedClock) -> Recorder {
        let (queue, rx) = mpsc::unbounded_channel();
        let (ended_tx, ended) = watch::channel(0);
        let task = tokio::spawn(record_loop(store, clock, rx, ended_tx));
        Recorder {
            queue: Some(queue),
            ended,
            task,
            waiting: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// Queues the record of `ids`, sent under the claim made at `claimed_at`.
    fn hand(&mut self, ids: Vec<Uuid>, claimed_at: OffsetDateTime) {
        if ids.is_empty() {
            return;
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        self.waiting.push_back((seq, claimed_at, ids.len()));
        if let Some(q) = &self.queue {
            // The receiver lives until `finish` drops this sender.
            let _ = q.send(Sent { seq, ids });
        }
    }

    fn settle(&mut self) {
        let ended = *self.ended.borrow_and_update();
        while self.waiting.front().is_some_and(|(seq, _, _)| *seq <= ended) {
            self.waiting.pop_front();
        }
    }

    /// Sent mails whose record has not ended.
    fn unrecorded(&self) -> usize {
        self.waiting.iter().map(|(_, _, n)| n).sum()
    }

    /// Waits until fewer than `cap` sent mails wait for their record and none of them was
    /// claimed half a [`LEASE`] ago or earlier (so no claim can take back a sent message).
    async fn wait_room(&mut self, cap: usize, clock: &SharedClock) {
        loop {
            self.settle();
            let now = clock.now();
            let fresh = self.waiting.front().is_none_or(|(_, at, _)| now - *at < LEASE / 2);
            if self.unrecorded() < cap && fresh {
                return;
            }
            tracing::debug!(
                unrecorded = self.unrecorded(),
                "courier: waiting for the record of sent mail"
            );
            if self.ended.changed().await.is_err() {
                // The recorder is gone (it only ends after `finish`); nothing to wait for.
                self.waiting.clear();
                return;
            }
        }
    }

    /// Records everything handed so far, then stops.
    async fn finish(mut self) {
        self.queue = None;
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "courier: the recorder of sent mail failed");
        }
    }
}

async fn record_loop(
    store: Store,
    clock: SharedClock,
    mut queue: mpsc::UnboundedReceiver<Sent>,
    ended: watch::Sender<u64>,
) {
    while let Some(first) = queue.recv().await {
        let mut last = first.seq;
        let mut ids = first.ids;
        let mut rounds = 1usize;
        while let Ok(more) = queue.try_recv() {
            last = more.seq;
            ids.extend(more.ids);
            rounds += 1;
        }
        let started = Instant::now();
        match store.mark_messages_sent(&ids, clock.now()).await {
            Ok(()) => {
                tracing::debug!(
                    mails = ids.len(),
                    rounds,
                    write_ms = millis(started.elapsed()),
                    "courier: sent mail recorded"
                );
                store.outbox.records.send_modify(|n| *n += 1);
                let n = ids.len() as u64;
                store.outbox.attempts.send_modify(|a| *a += n);
            }
            Err(e) => tracing::error!(
                error = %e,
                mails = ids.len(),
                "courier: cannot record sent mail; it stays claimed and is sent again when the claim expires"
            ),
        }
        ended.send_replace(last);
    }
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
