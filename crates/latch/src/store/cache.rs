//! An in-process cache of rendered `whoami` answers, keyed by session-token hash.
//!
//! Every store write that can change a session or its identity invalidates the entries of
//! that identity on this node; on PostgreSQL the write also sends `NOTIFY latch_sessions`
//! so every other node drops them too (see [`super::Store::listen_for_invalidations`]).
//! Entries also expire after [`TTL`], which bounds staleness if a notification is lost.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest time an entry is trusted without a database read.
pub const TTL: Duration = Duration::from_secs(10);
/// Upper bound on entries; the cache is cleared when it is reached.
const MAX_ENTRIES: usize = 100_000;

/// One cached answer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The session's owner.
    pub identity_id: Uuid,
    /// When the session expires (checked on every hit).
    pub expires_at: OffsetDateTime,
    /// The rendered session JSON.
    pub body: Bytes,
    cached_at: Instant,
}

/// The cache; cheap to share.
#[derive(Debug, Default)]
pub struct SessionCache {
    map: RwLock<HashMap<String, Entry>>,
}

impl SessionCache {
    /// A valid entry for a token hash, if any.
    pub fn get(&self, token_hash: &str, now: OffsetDateTime) -> Option<Entry> {
        let map = self.map.read().ok()?;
        let e = map.get(token_hash)?;
        (e.cached_at.elapsed() < TTL && e.expires_at > now).then(|| e.clone())
    }

    /// Stores an answer.
    pub fn put(&self, token_hash: String, identity_id: Uuid, expires_at: OffsetDateTime, body: Bytes) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(
                token_hash,
                Entry {
                    identity_id,
                    expires_at,
                    body,
                    cached_at: Instant::now(),
                },
            );
        }
    }

    /// Drops every entry of one identity.
    pub fn invalidate_identity(&self, identity_id: Uuid) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|_, e| e.identity_id != identity_id);
        }
    }

    /// Drops everything (lost notifications, bulk changes).
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }
}
