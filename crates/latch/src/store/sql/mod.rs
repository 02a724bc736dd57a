//! The only place where SQLite and PostgreSQL differ.
//!
//! Every query in the store is written once, with `$1`-style placeholders that both
//! drivers understand, and runs unchanged on either backend (see `docs/adr/0001-storage.md`).
//! What cannot be written portably lives here: the timestamp column codec and the few
//! statements that need dialect-specific syntax.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A timestamp column value.
///
/// PostgreSQL stores it as `TIMESTAMPTZ`. SQLite has no time type, so it is stored as
/// fixed-width UTC text (`2026-01-02T03:04:05.123456Z`) that sorts and compares correctly
/// as a string; `time`'s RFC 3339 output trims trailing zeros and would not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts(pub OffsetDateTime);

const SQLITE_TS: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        let utc = self.0.to_offset(time::UtcOffset::UTC);
        Encode::<Sqlite>::encode(utc.format(SQLITE_TS)?, buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <String as Decode<Sqlite>>::decode(value)?;
        Ok(Ts(OffsetDateTime::parse(&s, &Rfc3339)?))
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts(<OffsetDateTime as Decode<Postgres>>::decode(value)?))
    }
}

/// `IN ($k, $k+1, …)` for `n` values starting at placeholder `start`.
///
/// Both dialects accept numbered placeholders, so a list filter stays one portable string.
pub fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which SQL dialect a pool speaks; used only by code in this module and by migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded default.
    Sqlite,
    /// For several stateless Latch nodes.
    Postgres,
}

impl Dialect {
    /// Appended to a `SELECT` that claims rows for one worker: PostgreSQL skips rows that
    /// another node holds; SQLite has a single writer, so its write transaction is the lock.
    pub fn claim_suffix(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// `SELECT COUNT(*)` of tables named `$1` in the current schema (0 or 1).
    pub fn table_exists_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
            Dialect::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_timestamps_sort_as_text() {
        let a = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_500_000_000).unwrap();
        let b = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_000).unwrap();
        let fa = a.format(SQLITE_TS).unwrap();
        let fb = b.format(SQLITE_TS).unwrap();
        assert!(fb < fa, "{fb} < {fa}");
        assert_eq!(OffsetDateTime::parse(&fa, &Rfc3339).unwrap(), a);
    }

    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(placeholders(3, 2), "$3, $4");
    }
}
