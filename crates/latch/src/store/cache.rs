//! An in-process cache of rendered `whoami` answers, keyed by session-token hash.
//!
//! - Bounded by bytes, not entries: a [`moka`] cache whose weigher counts each entry's key and
//!   body (`latch.cache.whoami.max_bytes`), with a time to live (`latch.cache.whoami.ttl`) that
//!   bounds staleness if a revocation notice from another node is lost.
//! - Invalidation by identity does not scan: a second (also bounded) cache maps an identity to
//!   the token hashes cached for it. If that index ever evicts an identity for size, its
//!   answers are dropped with it, so an identity can never have answers the index forgot.
//! - A revoke that races a fill cannot re-cache a revoked session: a fill reads the
//!   [`SessionCache::generation`] before it reads the database and inserts only if no
//!   invalidation happened since (checked under the same lock invalidation takes).
//!
//! Every store write that can change a session or its identity invalidates the entries of that
//! identity on this node; on PostgreSQL the write also sends `NOTIFY latch_sessions` so every
//! other node drops them too (see [`super::Store::listen_for_invalidations`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use moka::notification::RemovalCause;
use moka::sync::Cache;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::WhoamiCache;

/// Bytes counted per entry besides its key and body (the entry struct and map overhead).
const ENTRY_OVERHEAD: usize = 96;

/// One cached answer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The session's owner.
    pub identity_id: Uuid,
    /// When the session expires (checked on every hit).
    pub expires_at: OffsetDateTime,
    /// The rendered session JSON.
    pub body: Bytes,
}

type Keys = Arc<Mutex<Vec<String>>>;

#[derive(Debug)]
struct Inner {
    entries: Cache<String, Arc<Entry>>,
    by_identity: Cache<Uuid, Keys>,
    generation: AtomicU64,
    /// Held by fills (check + insert) and invalidations (bump), never across an await.
    fill_lock: Mutex<()>,
}

/// The cache; cheap to share. Disabled (`latch.cache.whoami.enabled: false`) it stores nothing.
#[derive(Debug)]
pub struct SessionCache {
    inner: Option<Inner>,
}

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache::new(&WhoamiCache::default())
    }
}

fn weigh(key_len: usize, value_len: usize) -> u32 {
    u32::try_from(key_len + value_len + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

impl SessionCache {
    /// A cache with the configured byte bound and time to live.
    pub fn new(cfg: &WhoamiCache) -> SessionCache {
        if !cfg.enabled || cfg.max_bytes == 0 {
            return SessionCache { inner: None };
        }
        let ttl = cfg.ttl.max(Duration::from_millis(1));
        // A fifth of the bound for the identity index, the rest for answers: together they
        // never hold more than `max_bytes`.
        let index_bytes = cfg.max_bytes / 5;
        let entries: Cache<String, Arc<Entry>> = Cache::builder()
            .max_capacity(cfg.max_bytes - index_bytes)
            .weigher(|k: &String, v: &Arc<Entry>| weigh(k.len(), v.body.len()))
            .time_to_live(ttl)
            .build();
        let dropped = entries.clone();
        // The index gets a share of the bound too; losing an index record for size drops the
        // answers it pointed to, so invalidation never misses one.
        let by_identity: Cache<Uuid, Keys> = Cache::builder()
            .max_capacity(index_bytes)
            .weigher(|_, keys: &Keys| {
                let n = keys.lock().map(|k| k.iter().map(|s| s.len() + 24).sum()).unwrap_or(0);
                weigh(16, n)
            })
            .time_to_live(ttl)
            .eviction_listener(move |_, keys: Keys, cause| {
                if cause == RemovalCause::Size
                    && let Ok(keys) = keys.lock()
                {
                    for k in keys.iter() {
                        dropped.invalidate(k);
                    }
                }
            })
            .build();
        SessionCache {
            inner: Some(Inner {
                entries,
                by_identity,
                generation: AtomicU64::new(0),
                fill_lock: Mutex::new(()),
            }),
        }
    }

    /// Whether answers are cached at all.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The invalidation generation; read it before loading what [`SessionCache::put`] stores.
    pub fn generation(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.generation.load(Ordering::SeqCst))
    }

    /// A valid entry for a token hash, if any.
    pub fn get(&self, token_hash: &str, now: OffsetDateTime) -> Option<Arc<Entry>> {
        let e = self.inner.as_ref()?.entries.get(token_hash)?;
        (e.expires_at > now).then_some(e)
    }

    /// Stores an answer loaded after [`SessionCache::generation`] returned `generation`,
    /// unless an invalidation happened since (then the answer may already be stale).
    pub fn put(
        &self,
        token_hash: String,
        identity_id: Uuid,
        expires_at: OffsetDateTime,
        body: Bytes,
        generation: u64,
    ) -> bool {
        let Some(inner) = &self.inner else { return false };
        let Ok(_guard) = inner.fill_lock.lock() else {
            return false;
        };
        if inner.generation.load(Ordering::SeqCst) != generation {
            return false;
        }
        let keys = inner.by_identity.get(&identity_id).unwrap_or_default();
        if let Ok(mut k) = keys.lock() {
            // Forget hashes whose answers were evicted or expired, then add this one.
            k.retain(|h| h != &token_hash && inner.entries.contains_key(h));
            k.push(token_hash.clone());
        }
        inner.entries.insert(
            token_hash,
            Arc::new(Entry {
                identity_id,
                expires_at,
                body,
            }),
        );
        // Re-inserting renews the index record's time to live and re-weighs it.
        inner.by_identity.insert(identity_id, keys);
        true
    }

    /// Drops every entry of one identity (no scan: the index names them).
    pub fn invalidate_identity(&self, identity_id: Uuid) {
        let Some(inner) = &self.inner else { return };
        if let Ok(_guard) = inner.fill_lock.lock() {
            inner.generation.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(keys) = inner.by_identity.remove(&identity_id)
            && let Ok(keys) = keys.lock()
        {
            for k in keys.iter() {
                inner.entries.invalidate(k);
            }
        }
    }

    /// Drops everything (lost notifications, bulk changes).
    pub fn clear(&self) {
        let Some(inner) = &self.inner else { return };
        if let Ok(_guard) = inner.fill_lock.lock() {
            inner.generation.fetch_add(1, Ordering::SeqCst);
        }
        inner.entries.invalidate_all();
        inner.by_identity.invalidate_all();
    }

    /// Bytes held (answers plus the identity index) after pending evictions ran; for tests
    /// and metrics.
    pub fn weighted_size(&self) -> u64 {
        let Some(inner) = &self.inner else { return 0 };
        inner.entries.run_pending_tasks();
        inner.by_identity.run_pending_tasks();
        inner.entries.run_pending_tasks();
        inner.entries.weighted_size() + inner.by_identity.weighted_size()
    }

    /// Answers held after pending evictions ran; for tests and metrics.
    pub fn entry_count(&self) -> u64 {
        let Some(inner) = &self.inner else { return 0 };
        inner.entries.run_pending_tasks();
        inner.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_bytes: u64) -> WhoamiCache {
        WhoamiCache {
            enabled: true,
            max_bytes,
            ttl: Duration::from_secs(60),
        }
    }

    /// A fixed "now" (the cache compares expiry with the caller's clock).
    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
    }

    fn far() -> OffsetDateTime {
        now() + time::Duration::hours(1)
    }

    #[test]
    fn revoke_racing_a_fill_leaves_no_entry() {
        let c = SessionCache::new(&cfg(1 << 20));
        let id = Uuid::new_v4();
        // The fill reads the generation, then the database (the session is still valid) ...
        let generation = c.generation();
        // ... meanwhile the session is revoked and the identity invalidated ...
        c.invalidate_identity(id);
        // ... and only then does the fill try to store what it read.
        assert!(!c.put("h1".into(), id, far(), Bytes::from_static(b"{}"), generation));
        assert!(c.get("h1", now()).is_none());
        // A fill that started after the invalidation is stored.
        let generation = c.generation();
        assert!(c.put("h1".into(), id, far(), Bytes::from_static(b"{}"), generation));
        assert!(c.get("h1", now()).is_some());
    }

    #[test]
    fn invalidation_drops_only_that_identity() {
        let c = SessionCache::new(&cfg(1 << 20));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for (k, id) in [("a1", a), ("a2", a), ("b1", b)] {
            let g = c.generation();
            assert!(c.put(k.into(), id, far(), Bytes::from_static(b"{}"), g));
        }
        c.invalidate_identity(a);
        assert!(c.get("a1", now()).is_none());
        assert!(c.get("a2", now()).is_none());
        assert!(c.get("b1", now()).is_some());
    }

    #[test]
    fn stays_under_its_byte_bound() {
        let bound = 1 << 20;
        let c = SessionCache::new(&cfg(bound));
        let body = Bytes::from(vec![b'x'; 100 * 1024]);
        for i in 0..500 {
            let g = c.generation();
            c.put(format!("{i:064}"), Uuid::new_v4(), far(), body.clone(), g);
        }
        let size = c.weighted_size();
        assert!(size <= bound, "{size} > {bound}");
        assert!(c.entry_count() > 0);
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let c = SessionCache::new(&WhoamiCache {
            enabled: false,
            ..cfg(1 << 20)
        });
        assert!(!c.put("h".into(), Uuid::new_v4(), far(), Bytes::new(), 0));
        assert!(c.get("h", now()).is_none());
    }
}
