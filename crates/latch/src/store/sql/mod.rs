//! The only place where SQLite and PostgreSQL differ.
//!
//! Every query in the store is written once, with `$1`-style placeholders that both
//! drivers understand, and runs unchanged on either backend (see `docs/adr/0001-storage.md`).
//! What cannot be written portably lives here: the timestamp column codec and the few
//! statements that need dialect-specific syntax.

use serde::Deserialize as _;
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
}

impl Dialect {
    /// A timestamp column as JSON: fixed-width UTC text (`2026-01-02T03:04:05.123456Z`) on
    /// both databases, read back by [`JsonTs`].
    pub fn json_ts(self, col: &str) -> String {
        match self {
            Dialect::Sqlite => col.to_string(),
            Dialect::Postgres => format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
        }
    }

    /// A UUID column as a JSON string (SQLite keeps UUIDs as 16-byte blobs, which JSON
    /// cannot hold: 32 hex digits, which [`uuid::Uuid`] parses).
    pub fn json_uuid(self, col: &str) -> String {
        match self {
            Dialect::Sqlite => format!("lower(hex({col}))"),
            Dialect::Postgres => col.to_string(),
        }
    }

    /// A JSON column embedded as JSON (not as a string holding JSON).
    pub fn json_value(self, col: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json({col})"),
            Dialect::Postgres => col.to_string(),
        }
    }

    /// A JSON object from `(key, SQL expression)` pairs.
    pub fn json_object(self, pairs: &[(&str, String)]) -> String {
        let f = match self {
            Dialect::Sqlite => "json_object",
            Dialect::Postgres => "json_build_object",
        };
        let args: Vec<String> = pairs.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
        format!("{f}({})", args.join(", "))
    }

    /// A scalar subquery: the JSON array of `expr` over the rows of `from_where`, ordered by
    /// `order_by`; `[]` when there are none.
    pub fn json_list(self, expr: &str, from_where: &str, order_by: &str) -> String {
        let order = if order_by.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {order_by}")
        };
        match self {
            // `json()` around the subquery: a JSON value nested in another JSON function
            // through a subquery would otherwise be embedded as a string.
            Dialect::Sqlite => format!("json((SELECT json_group_array({expr}{order}) FROM {from_where}))"),
            Dialect::Postgres => format!("COALESCE((SELECT json_agg({expr}{order}) FROM {from_where}), '[]'::json)"),
        }
    }
}

/// A statement built once per dialect (the hot queries are assembled from the helpers
/// above; this keeps them from being formatted again on every request).
pub struct SqlCache([std::sync::OnceLock<String>; 2]);

impl SqlCache {
    /// An empty cache, for a `static`.
    pub const fn new() -> SqlCache {
        SqlCache([std::sync::OnceLock::new(), std::sync::OnceLock::new()])
    }

    /// The statement for `d`, built by `build` the first time.
    pub fn get(&'static self, d: Dialect, build: impl FnOnce(Dialect) -> String) -> &'static str {
        let i = match d {
            Dialect::Sqlite => 0,
            Dialect::Postgres => 1,
        };
        self.0[i].get_or_init(|| build(d))
    }
}

impl Default for SqlCache {
    fn default() -> Self {
        SqlCache::new()
    }
}

/// A timestamp inside JSON built by [`Dialect::json_ts`].
#[derive(Debug, Clone, Copy)]
pub struct JsonTs(pub OffsetDateTime);

impl<'de> serde::Deserialize<'de> for JsonTs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339)
            .map(JsonTs)
            .map_err(serde::de::Error::custom)
    }
}

/// A boolean column inside JSON: SQLite stores booleans as 0 and 1.
pub fn json_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => Ok(b),
        serde_json::Value::Number(n) => Ok(n.as_i64().is_some_and(|n| n != 0)),
        other => Err(serde::de::Error::custom(format!("not a boolean: {other}"))),
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
