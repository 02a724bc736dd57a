//! Time comes from here, never from `OffsetDateTime::now_utc()` elsewhere, so tests can move
//! time forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time in UTC, truncated to microseconds (what PostgreSQL keeps).
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> OffsetDateTime {
        truncate(OffsetDateTime::now_utc())
    }
}

/// A clock for tests: the real time plus an offset that tests advance.
#[derive(Debug, Default, Clone)]
pub struct OffsetClock {
    offset_micros: Arc<AtomicI64>,
}

impl OffsetClock {
    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: std::time::Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::SeqCst);
    }

    /// Moves this clock (and every clone of it) back, e.g. to create rows that are already
    /// old by the real time a separate process (the `latch` binary) sees.
    pub fn rewind(&self, by: std::time::Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.offset_micros.fetch_sub(micros, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        let offset = time::Duration::microseconds(self.offset_micros.load(Ordering::SeqCst));
        SystemClock.now() + offset
    }
}

fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    let micros = t.microsecond();
    t.replace_microsecond(micros).unwrap_or(t)
}

/// RFC 3339 as Kratos prints timestamps. Formatting a valid UTC time cannot fail; the
/// fallback keeps the signature infallible.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Serializes a time as [`rfc3339`] does, without a `String` per timestamp (for answers
/// written straight to bytes).
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339Str(pub OffsetDateTime);

impl serde::Serialize for Rfc3339Str {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The longest RFC 3339 form time writes is 35 bytes (nanoseconds and an offset).
        let mut buf = [0u8; 64];
        let mut rest: &mut [u8] = &mut buf;
        // The length comes from what is left of the buffer: `format_into`'s own count leaves
        // out the fractional seconds (time 0.3.55).
        let written = self.0.format_into(&mut rest, &Rfc3339).map(|_| 64 - rest.len());
        let text = match written {
            Ok(n) => std::str::from_utf8(&buf[..n]).unwrap_or_default(),
            Err(_) => "",
        };
        s.serialize_str(text)
    }
}
