//! Parsers for the value syntaxes Kratos configs use: Go durations (`1h30m`) and byte sizes
//! (`128MB`), plus the serde adapters the typed config uses for them and for URLs.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

const NANOS_PER: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go duration string (`300ms`, `1h30m`, `1.5h`, `0`) so configs written for Kratos
/// keep their meaning. Negative durations are rejected: no Latch setting accepts them.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("duration {input:?} must not be negative"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(format!(
            "empty duration {input:?}; use Go syntax like \"10m\" or \"1h30m\""
        ));
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(bad_duration(input));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let Some(&(_, nanos)) = NANOS_PER.iter().find(|(name, _)| *name == unit) else {
            return Err(bad_duration(input));
        };
        total = total
            .checked_add(scaled(number, nanos).ok_or_else(|| too_large(input))?)
            .ok_or_else(|| too_large(input))?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| too_large(input))?;
    // The remainder is below 10^9 and always fits.
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| too_large(input))?;
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits with at most one dot) times `unit` nanoseconds; fractions are truncated
/// to whole nanoseconds like Go does.
fn scaled(number: &str, unit: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int.checked_mul(unit)?;
    let frac = &frac[..frac.len().min(18)];
    if !frac.is_empty() {
        let digits: u128 = frac.parse().ok()?;
        let scale = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        value = value.checked_add(digits.checked_mul(unit)? / scale)?;
    }
    Some(value)
}

fn bad_duration(input: &str) -> String {
    format!("invalid duration {input:?}; use Go syntax like \"500ms\", \"10m\" or \"1h30m\"")
}

fn too_large(input: &str) -> String {
    format!("duration {input:?} is too large")
}

/// Parses a byte size as Kratos writes it (`128MB`, `1GB`; like Kratos, `KB`/`MB`/… are
/// powers of 1024). `KiB`/`MiB`/… and plain integers (bytes) are accepted as well.
pub fn parse_byte_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let number_len = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(number_len);
    let unit = unit.trim().to_ascii_uppercase();
    let shift = match unit.as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        "P" | "PB" | "PIB" => 50,
        "E" | "EB" | "EIB" => 60,
        _ => return Err(bad_size(input)),
    };
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(bad_size(input));
    }
    let bytes = scaled(number, 1u128 << shift).ok_or_else(|| bad_size(input))?;
    u64::try_from(bytes).map_err(|_| format!("byte size {input:?} is too large"))
}

fn bad_size(input: &str) -> String {
    format!("invalid byte size {input:?}; use a number with a unit like \"64MB\" or \"1GB\"")
}

/// A duration, a byte size or a URL as it may appear in a document: strings are parsed,
/// integers are taken as-is (nanoseconds for durations, bytes for sizes).
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrInt {
    Int(u64),
    Str(String),
}

/// serde adapter: a required Go duration.
pub(super) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match StringOrInt::deserialize(d)? {
        StringOrInt::Int(nanos) => Ok(Duration::from_nanos(nanos)),
        StringOrInt::Str(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

/// serde adapter: an optional Go duration (`null` or absent means unset).
pub(super) fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<StringOrInt>::deserialize(d)? {
        None => Ok(None),
        Some(StringOrInt::Int(nanos)) => Ok(Some(Duration::from_nanos(nanos))),
        Some(StringOrInt::Str(s)) => parse_duration(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// serde adapter: a byte size.
pub(super) fn de_byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match StringOrInt::deserialize(d)? {
        StringOrInt::Int(bytes) => Ok(bytes),
        StringOrInt::Str(s) => parse_byte_size(&s).map_err(serde::de::Error::custom),
    }
}

/// serde adapter: an optional absolute URL (`url` is used without its serde feature).
pub(super) fn de_opt_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => url::Url::parse(s.trim())
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("invalid URL {s:?}: {e}"))),
    }
}

/// serde adapter: an optional boolean that the Kratos schema types as a string
/// (`cookies.secure`, `session.cookie.secure`); real booleans are accepted too.
pub(super) fn de_opt_bool_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrString {
        Bool(bool),
        Str(String),
    }
    match Option::<BoolOrString>::deserialize(d)? {
        None => Ok(None),
        Some(BoolOrString::Bool(b)) => Ok(Some(b)),
        Some(BoolOrString::Str(s)) => parse_bool(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("expected \"true\" or \"false\", got {s:?}"))),
    }
}

/// Parses a boolean the way Go's `strconv.ParseBool` does, which is what Kratos applies to
/// environment variables.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_go_syntax_parses() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2us").unwrap(), Duration::from_micros(2));
        assert_eq!(parse_duration("3µs").unwrap(), Duration::from_micros(3));
        assert_eq!(parse_duration("7ns").unwrap(), Duration::from_nanos(7));
        assert_eq!(parse_duration("1m1s1ms").unwrap(), Duration::from_millis(61_001));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn duration_invalid_is_rejected() {
        for bad in ["", "10", "h", "10x", "1h-5m", "-1h", "1..5h", "1d", "ms10"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert!(
            parse_duration("99999999999999999999999h")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn byte_size_units_parse() {
        assert_eq!(parse_byte_size("128MB").unwrap(), 128 << 20);
        assert_eq!(parse_byte_size("19MiB").unwrap(), 19 << 20);
        assert_eq!(parse_byte_size("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_byte_size("64KB").unwrap(), 64 << 10);
        assert_eq!(parse_byte_size("512B").unwrap(), 512);
        assert_eq!(parse_byte_size("4096").unwrap(), 4096);
        assert!(parse_byte_size("12XB").is_err());
        assert!(parse_byte_size("MB").is_err());
        assert!(parse_byte_size("99999EB").is_err());
    }

    #[test]
    fn go_bools_parse() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("F"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
