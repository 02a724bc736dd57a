//! The worker that delivers the web hook outbox ([`super::outbox`]); one runs inside every
//! `latch serve`.
//!
//! Each round first dead-letters deliveries whose claim expired after their last budgeted
//! attempt, then claims up to `latch.web_hooks.concurrency` due deliveries for a lease of
//! `timeout + 30 s` (one statement: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes
//! sharing a database never claim the same row; SQLite has one writer) and sends them at once,
//! one HTTP attempt each (no retries inside an attempt). A claim counts one attempt. The outcome
//! is recorded only under the claim that sent it:
//!
//! - an answer below 400: `delivered`;
//! - anything else (no connection, timeout, an answer `>= 400`): `queued` again after
//!   [`backoff`] (`initial_backoff` doubling up to `max_backoff`, with jitter: between half and
//!   all of it), or `dead` once `max_attempts` attempts failed;
//! - a delivery whose `auth` can no longer be found in the configuration (the hook was removed
//!   or its URL, method, id or key name changed): `dead` at once, since no later attempt could
//!   succeed; an admin retry after restoring the hook sends it.
//!
//! **Exactly once per row, at least once on the wire**: a row is sent by one worker at a time,
//! and once recorded `delivered` it is never sent again. If a node stops (crash, kill) after the
//! receiver answered but before the outcome was recorded, the row is sent again once its lease
//! expires: receivers that must not act twice deduplicate on `Ory-Webhook-Trigger-ID`, which is
//! the row's id on every attempt.
//!
//! On shutdown the round in flight finishes (each attempt is bounded by `timeout`) and
//! its outcomes are recorded; nothing new is claimed.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use super::outbox::{AuthIndex, Delivery};
use super::{Transport, WebHookError};
use crate::clock::SharedClock;
use crate::config::{Config, WebHooks};
use crate::store::{Store, StoreError};

/// How much longer a claim lasts than one attempt may take.
pub const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The pause before the attempt after the `failures`-th failed one: `initial` × 2^(failures−1),
/// at most `max`, of which a random part (up to half) is taken off so that deliveries that
/// failed together do not all come back at the same instant.
pub fn backoff(cfg: &WebHooks, failures: i32, random: u64) -> Duration {
    let exp = u32::try_from(failures.saturating_sub(1)).unwrap_or(0).min(32);
    let full = cfg
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(exp))
        .min(cfg.max_backoff);
    let half = full / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let off = if jitter_ms == 0 { 0 } else { random % (jitter_ms + 1) };
    full.saturating_sub(Duration::from_millis(off))
}

/// Delivers the web hook outbox until stopped.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    clock: SharedClock,
    cfg: WebHooks,
    auth: Arc<AuthIndex>,
}

impl Dispatcher {
    /// A worker for this configuration.
    pub fn new(config: &Config, store: Store, clock: SharedClock) -> Dispatcher {
        let mut cfg = config.latch.web_hooks;
        cfg.max_attempts = cfg.max_attempts.max(1);
        cfg.concurrency = cfg.concurrency.clamp(1, 256);
        cfg.poll_interval = cfg
            .poll_interval
            .clamp(Duration::from_millis(10), Duration::from_secs(3600));
        cfg.timeout = cfg.timeout.max(Duration::from_millis(10));
        Dispatcher {
            store,
            clock,
            cfg,
            auth: Arc::new(AuthIndex::from_config(config)),
        }
    }

    fn transport(&self) -> Transport {
        Transport {
            attempt_timeout: self.cfg.timeout,
            max_retries: 0,
            retry_wait_min: Duration::ZERO,
            retry_wait_max: Duration::ZERO,
            // The answer of an ignored hook is not read beyond its first chunk.
            max_response_bytes: 0,
        }
    }

    fn lease(&self) -> Duration {
        self.cfg.timeout + LEASE_MARGIN
    }

    /// Runs until `stop` turns `true` (or its sender goes away).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::debug!("web hook worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            let full = match self.round().await {
                Ok(full) => full,
                Err(e) => {
                    tracing::error!(error = %e, "web hooks: cannot work the outbox; retrying");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                changed = stop.changed() => if changed.is_err() { break },
                _ = self.store.hooks.wake.notified() => {},
                _ = tokio::time::sleep(self.cfg.poll_interval) => {},
            }
        }
        tracing::debug!("web hook worker stopped");
    }

    /// One round; `true` when it claimed a full batch (more may be due).
    async fn round(&self) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let max = i32::try_from(self.cfg.max_attempts).unwrap_or(i32::MAX);
        let expired = self.store.expire_web_hook_claims(now, max).await?;
        if expired > 0 {
            tracing::warn!(
                deliveries = expired,
                "web hooks: dead-lettered deliveries whose worker stopped during their last attempt"
            );
        }
        let claim_id = Uuid::new_v4();
        let batch = self
            .store
            .claim_web_hooks(now, self.lease(), self.cfg.concurrency, claim_id)
            .await?;
        if batch.is_empty() {
            return Ok(false);
        }
        let full = batch.len() >= self.cfg.concurrency as usize;
        let results = futures_util::future::join_all(batch.iter().map(|d| self.attempt(d, claim_id))).await;
        for r in results {
            r?;
        }
        Ok(full)
    }

    /// Sends one claimed delivery and records the outcome.
    async fn attempt(&self, d: &Delivery, claim_id: Uuid) -> Result<(), StoreError> {
        let auth = match &d.auth_ref {
            None => Ok(None),
            Some(r) => self.auth.get(r).cloned().map(Some).ok_or_else(|| {
                "the hook's `auth` is no longer configured (hook removed, or its url, method, id or key name \
                 changed): restore it and retry the delivery"
                    .to_owned()
            }),
        };
        let result = match auth.and_then(|a| d.config(a)) {
            Err(reason) => Err((None, reason, true)),
            Ok(cfg) => {
                let body = d.body.clone().map(String::into_bytes);
                super::send_once(&cfg, body, &self.transport(), d.id)
                    .await
                    .map_err(|e| {
                        let status = match &e {
                            WebHookError::Status { status, .. } => Some(*status),
                            _ => None,
                        };
                        (status, e.to_string(), false)
                    })
            }
        };
        let now = self.clock.now();
        let recorded = match result {
            Ok(status) => {
                let ok = self.store.mark_web_hook_delivered(d.id, claim_id, status, now).await?;
                if ok {
                    tracing::info!(delivery_id = %d.id, event = %d.event, hook = d.hook_id.as_deref().unwrap_or(""),
                        status, attempts = d.attempts, "web hook delivered");
                }
                ok
            }
            Err((status, error, permanent)) => {
                let spent = d.attempts >= i32::try_from(self.cfg.max_attempts).unwrap_or(i32::MAX);
                let next = (!permanent && !spent).then(|| now + backoff(&self.cfg, d.attempts, random()));
                let ok = self
                    .store
                    .mark_web_hook_failed(d.id, claim_id, now, status, &error, next)
                    .await?;
                if ok {
                    log_failure(d, &error, next, now);
                }
                ok
            }
        };
        if !recorded {
            tracing::warn!(
                delivery_id = %d.id,
                "web hooks: the claim on a delivery ran out before its outcome was recorded; another node owns it now"
            );
        }
        self.store.hooks.attempts.send_modify(|n| *n += 1);
        Ok(())
    }
}

fn log_failure(d: &Delivery, error: &str, next: Option<OffsetDateTime>, now: OffsetDateTime) {
    match next {
        Some(at) => tracing::warn!(
            delivery_id = %d.id,
            event = %d.event,
            hook = d.hook_id.as_deref().unwrap_or(""),
            attempts = d.attempts,
            retry_in_secs = (at - now).whole_seconds(),
            error,
            "web hook attempt failed; will retry"
        ),
        None => tracing::error!(
            delivery_id = %d.id,
            event = %d.event,
            hook = d.hook_id.as_deref().unwrap_or(""),
            attempts = d.attempts,
            error,
            "web hook dead-lettered: GET /admin/webhooks/deliveries?status=dead lists it, \
             POST /admin/webhooks/deliveries/{{id}}/retry sends it again"
        ),
    }
}

fn random() -> u64 {
    let b = crate::crypto::random_bytes(8);
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let cfg = WebHooks::default();
        // No jitter taken off (random 0): the full value.
        assert_eq!(backoff(&cfg, 1, 0), Duration::from_secs(5));
        assert_eq!(backoff(&cfg, 2, 0), Duration::from_secs(10));
        assert_eq!(backoff(&cfg, 0, 0), Duration::from_secs(5));
        assert_eq!(backoff(&cfg, 11, 0), Duration::from_secs(3600));
        assert_eq!(backoff(&cfg, i32::MAX, 0), Duration::from_secs(3600));
        // The most jitter takes off half.
        assert_eq!(backoff(&cfg, 2, 5_000), Duration::from_secs(5));
        for r in [1, 77, 4_999, u64::MAX] {
            let b = backoff(&cfg, 3, r);
            assert!(b >= Duration::from_secs(10) && b <= Duration::from_secs(20), "{b:?}");
        }
        // The default budget: 14 pauses between 15 attempts span hours, not seconds.
        let span: Duration = (1..15).map(|n| backoff(&cfg, n, 0)).sum();
        assert!(span > Duration::from_secs(5 * 3600), "{span:?}");
    }
}
