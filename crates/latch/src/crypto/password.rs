//! Password hashing: argon2id by default (OWASP parameters, see DECISIONS.md), bcrypt when
//! configured; both verify. Hashing runs on the blocking pool and at most `permits`
//! hashes run at once, so a burst of logins cannot exhaust memory.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

/// Leaves the wait queue when dropped (also when the waiting request is cancelled).
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Which algorithm new hashes use. Kratos: `hashers.algorithm`.
#[derive(Debug, Clone)]
pub enum HashAlgorithm {
    /// argon2id with memory (KiB), iterations and parallelism.
    Argon2 {
        /// Memory in KiB.
        memory_kib: u32,
        /// Iterations.
        iterations: u32,
        /// Lanes.
        parallelism: u32,
    },
    /// bcrypt with a cost.
    Bcrypt {
        /// Cost factor (4..=31).
        cost: u32,
    },
}

/// Hashing failures.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The stored hash is in a format Latch cannot verify.
    #[error(
        "unsupported password hash format (supported: bcrypt, argon2id, argon2i, pbkdf2-sha1/sha256/sha512, scrypt, \
         firescrypt, md5, sha1, sha256, sha512, ssha, ssha256, ssha512, hmac-*, md5-crypt, sha256-crypt, sha512-crypt)"
    )]
    Unsupported,
    /// The hash names a known format but is malformed.
    #[error("malformed password hash: {0}")]
    Invalid(String),
    /// The hash's parameters would cost more than Latch will ever spend on one check.
    #[error("{0}")]
    TooCostly(String),
    /// Parameters were invalid or the worker failed.
    #[error("password hashing failed: {0}")]
    Failed(String),
    /// Every hashing slot is taken and the wait queue is full.
    #[error("the password hashing queue is full")]
    Busy,
}

/// The password hasher shared by all requests.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    algorithm: HashAlgorithm,
    permits: Arc<Semaphore>,
    /// Requests waiting for a permit right now.
    waiting: Arc<AtomicUsize>,
    /// How many may wait; one more is refused with [`HashError::Busy`].
    max_queue: usize,
}

impl PasswordHasher {
    /// A hasher that runs at most `concurrency` hashes at once.
    pub fn new(algorithm: HashAlgorithm, concurrency: usize) -> PasswordHasher {
        PasswordHasher {
            algorithm,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_queue: usize::MAX,
        }
    }

    /// Bounds the queue: at most `max_queue` requests wait for a hashing slot; more fail
    /// fast with [`HashError::Busy`] instead of waiting without bound.
    pub fn with_max_queue(mut self, max_queue: usize) -> PasswordHasher {
        self.max_queue = max_queue;
        self
    }

    /// A hashing slot, waiting in the bounded queue if all are taken.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, HashError> {
        if let Ok(p) = self.permits.try_acquire() {
            return Ok(p);
        }
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _leave = QueueSlot(&self.waiting);
        if queued >= self.max_queue {
            return Err(HashError::Busy);
        }
        self.permits
            .acquire()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// Hashes a password with the configured algorithm (PHC / modular crypt string).
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _permit = self.permit().await?;
        let algorithm = self.algorithm.clone();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || hash_sync(&algorithm, &password))
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?
    }

    /// Verifies a password against a stored hash of any supported format.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        let _permit = self.permit().await?;
        let password = password.to_string();
        let hash = hash.to_string();
        tokio::task::spawn_blocking(move || verify_sync(&password, &hash))
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?
    }

    /// Whether a stored hash should be replaced by one with the current algorithm.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        match &self.algorithm {
            HashAlgorithm::Argon2 {
                memory_kib,
                iterations,
                parallelism,
            } => {
                let want = format!("m={memory_kib},t={iterations},p={parallelism}");
                !(hash.starts_with("$argon2id$") && hash.contains(&want))
            }
            HashAlgorithm::Bcrypt { .. } => !is_bcrypt(hash),
        }
    }
}

/// Largest argon2 memory of a hash Latch evaluates, in KiB (256 MiB, the hashing memory budget).
pub const MAX_ARGON2_MEMORY_KIB: u64 = 256 * 1024;
/// Most argon2 iterations of a hash Latch evaluates.
pub const MAX_ARGON2_ITERATIONS: u64 = 64;
/// Most argon2 lanes of a hash Latch evaluates.
pub const MAX_ARGON2_PARALLELISM: u64 = 16;
/// Largest argon2 memory × iterations (KiB) of a hash Latch evaluates: 1 GiB of memory passes.
pub const MAX_ARGON2_WORK_KIB: u64 = 1024 * 1024;
/// Highest bcrypt cost of a hash Latch evaluates (the format allows 31: days per check).
pub const MAX_BCRYPT_COST: u32 = 16;

/// Longest stored hash Latch accepts at import (the longest real formats, Firebase scrypt
/// with its signer key, stay well below 1 KiB).
pub const MAX_HASH_LEN: usize = 4096;

/// Refuses hashes whose parameters would make one check absurdly expensive (an import of
/// `m=4194304`, bcrypt cost 31, pbkdf2 `i=10^9` or scrypt `N=2^30` would let one login stall
/// a node). Checked at import and again before every verification.
pub fn check_hash_cost(hash: &str) -> Result<(), HashError> {
    if super::imported::is_imported_format(hash) {
        return super::imported::Imported::parse(hash).map(|_| ());
    }
    if is_bcrypt(hash) {
        let cost: u32 = hash.get(4..6).and_then(|c| c.parse().ok()).unwrap_or(u32::MAX);
        if cost > MAX_BCRYPT_COST {
            return Err(HashError::TooCostly(format!(
                "bcrypt cost {cost} is above the largest Latch accepts ({MAX_BCRYPT_COST})"
            )));
        }
        return Ok(());
    }
    if hash.starts_with("$argon2") {
        let params = hash.split('$').find(|seg| seg.contains("m=")).unwrap_or("");
        let get = |name: &str| {
            params
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let (Some(m), Some(t), Some(p)) = (get("m"), get("t"), get("p")) else {
            return Err(HashError::Unsupported);
        };
        if m > MAX_ARGON2_MEMORY_KIB
            || t > MAX_ARGON2_ITERATIONS
            || p > MAX_ARGON2_PARALLELISM
            || m * t > MAX_ARGON2_WORK_KIB
        {
            return Err(HashError::TooCostly(format!(
                "argon2 parameters m={m},t={t},p={p} exceed what Latch accepts (m <= {MAX_ARGON2_MEMORY_KIB} KiB, \
                 t <= {MAX_ARGON2_ITERATIONS}, p <= {MAX_ARGON2_PARALLELISM}, m*t <= {MAX_ARGON2_WORK_KIB})"
            )));
        }
    }
    Ok(())
}

/// Checks that an imported hash is in a format Latch can verify, at a cost it accepts.
pub fn validate_hash_format(hash: &str) -> Result<(), HashError> {
    if hash.len() > MAX_HASH_LEN {
        return Err(HashError::Invalid(format!(
            "the hash is longer than {MAX_HASH_LEN} bytes"
        )));
    }
    if super::imported::is_imported_format(hash) {
        return super::imported::Imported::parse(hash).map(|_| ());
    }
    if is_bcrypt(hash) {
        return check_hash_cost(hash);
    }
    if (hash.starts_with("$argon2id$") || hash.starts_with("$argon2i$")) && argon2::PasswordHash::new(hash).is_ok() {
        return check_hash_cost(hash);
    }
    Err(HashError::Unsupported)
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) && hash.len() == 60
}

fn hash_sync(algorithm: &HashAlgorithm, password: &str) -> Result<String, HashError> {
    match algorithm {
        HashAlgorithm::Argon2 {
            memory_kib,
            iterations,
            parallelism,
        } => {
            let params = Params::new(*memory_kib, *iterations, *parallelism, Some(32))
                .map_err(|e| HashError::Failed(e.to_string()))?;
            let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            a.hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError::Failed(e.to_string()))
        }
        HashAlgorithm::Bcrypt { cost } => bcrypt::hash(password, *cost).map_err(|e| HashError::Failed(e.to_string())),
    }
}

fn verify_sync(password: &str, hash: &str) -> Result<bool, HashError> {
    if let Some(imported) = super::imported::Imported::parse(hash)? {
        return imported.verify(password);
    }
    check_hash_cost(hash)?;
    if is_bcrypt(hash) {
        return bcrypt::verify(password, hash).map_err(|e| HashError::Failed(e.to_string()));
    }
    if hash.starts_with("$argon2") {
        let parsed = argon2::PasswordHash::new(hash).map_err(|_| HashError::Unsupported)?;
        return Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok());
    }
    Err(HashError::Unsupported)
}

/// A hash that takes about as long to check as a real one; verified against when the
/// identifier is unknown so timing does not reveal which accounts exist.
pub async fn dummy_verify(hasher: &PasswordHasher, password: &str) -> Result<(), HashError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = match DUMMY.get() {
        Some(h) => h.clone(),
        None => match hasher.hash("latch-dummy-password").await {
            Ok(h) => {
                let _ = DUMMY.set(h.clone());
                h
            }
            Err(HashError::Busy) => return Err(HashError::Busy),
            Err(_) => return Ok(()),
        },
    };
    match hasher.verify(password, &hash).await {
        Err(HashError::Busy) => Err(HashError::Busy),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_and_bcrypt_round_trip() {
        let h = PasswordHasher::new(
            HashAlgorithm::Argon2 {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            2,
        );
        let hash = h.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(h.verify("correct horse", &hash).await.unwrap());
        assert!(!h.verify("wrong", &hash).await.unwrap());
        let b = bcrypt::hash("pw", 4).unwrap();
        assert!(h.verify("pw", &b).await.unwrap());
        assert!(validate_hash_format(&b).is_ok());
        assert!(validate_hash_format("$pbkdf2$nope").is_err());
        assert!(h.needs_rehash(&b));
    }

    #[tokio::test]
    async fn absurd_hash_parameters_are_refused_and_never_evaluated() {
        let bcrypt31 = format!("$2b$31${}", "a".repeat(53));
        assert!(matches!(validate_hash_format(&bcrypt31), Err(HashError::TooCostly(_))));
        let argon_m = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(matches!(validate_hash_format(argon_m), Err(HashError::TooCostly(_))));
        let argon_t = "$argon2id$v=19$m=65536,t=1000,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(matches!(validate_hash_format(argon_t), Err(HashError::TooCostly(_))));
        let argon_ok = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(validate_hash_format(argon_ok).is_ok());
        let h = PasswordHasher::new(HashAlgorithm::Bcrypt { cost: 4 }, 1);
        assert!(matches!(h.verify("pw", argon_m).await, Err(HashError::TooCostly(_))));
        assert!(matches!(h.verify("pw", &bcrypt31).await, Err(HashError::TooCostly(_))));
    }
}
