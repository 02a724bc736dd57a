//! Error types of the identity-schema module and the UI messages that trait
//! validation failures turn into.
//!
//! Message ids follow the numbering of Kratos' validation messages
//! (`4000000 + n`) so that clients keyed on ids keep working.

use serde::Serialize;
use serde_json::{Map, Value};

/// Why loading the configured identity schemas failed; every variant names
/// the schema id so an operator can find the bad config entry.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema URL uses a scheme we cannot load from.
    #[error("identity schema `{id}`: unsupported URL `{url}` (use file://, base64:// or http(s)://)")]
    UnsupportedUrl {
        /// Schema id from the configuration.
        id: String,
        /// The URL as configured.
        url: String,
    },
    /// Reading the file, decoding base64 or the HTTP request failed.
    #[error("identity schema `{id}`: could not fetch `{url}`: {reason}")]
    Fetch {
        /// Schema id from the configuration.
        id: String,
        /// The URL as configured.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The fetched document is not JSON.
    #[error("identity schema `{id}`: not valid JSON: {reason}")]
    InvalidJson {
        /// Schema id from the configuration.
        id: String,
        /// Parser message.
        reason: String,
    },
    /// The document is JSON but not a usable JSON Schema.
    #[error("identity schema `{id}`: not a valid JSON Schema: {reason}")]
    Compile {
        /// Schema id from the configuration.
        id: String,
        /// Compiler message.
        reason: String,
    },
    /// The schema violates the identity meta rules (traits shape, `ory.sh/kratos` extension).
    #[error("identity schema `{id}`: {reason}")]
    Meta {
        /// Schema id from the configuration.
        id: String,
        /// Which rule is broken.
        reason: String,
    },
    /// Two configuration entries use the same id.
    #[error("identity schema id `{id}` is configured more than once")]
    DuplicateId {
        /// The repeated id.
        id: String,
    },
    /// `identity.default_schema_id` names no configured schema.
    #[error("default identity schema `{id}` is not among the configured identity schemas")]
    DefaultMissing {
        /// The configured default id.
        id: String,
    },
}

/// Trait validation failures are messages of the one catalogue (`crate::text`), attached to
/// nodes; the constructors below add the JSON Schema keyword messages to it.
pub use crate::text::UiText;

/// One failed check on the submitted traits, attached to the field it concerns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraitError {
    /// JSON pointer with `#` prefix, e.g. `#/traits/email`; `#/` for the whole document.
    pub instance_ptr: String,
    /// What is wrong, as a UI message.
    pub message: UiText,
}

impl TraitError {
    /// Pairs a pointer with a message; exists to keep call sites short.
    pub fn new(instance_ptr: impl Into<String>, message: UiText) -> Self {
        Self {
            instance_ptr: instance_ptr.into(),
            message,
        }
    }
}

/// Message ids of the validation range, named so callers need no magic numbers.
pub mod ids {
    /// Generic validation failure; the text is the reason.
    pub const GENERIC: u32 = 4_000_001;
    /// A required property is missing.
    pub const REQUIRED: u32 = 4_000_002;
    /// String shorter than `minLength`.
    pub const MIN_LENGTH: u32 = 4_000_003;
    /// String does not match `pattern`.
    pub const INVALID_FORMAT: u32 = 4_000_004;
    /// String longer than `maxLength`.
    pub const MAX_LENGTH: u32 = 4_000_017;
    /// Number below `minimum`.
    pub const MINIMUM: u32 = 4_000_018;
    /// Number not above `exclusiveMinimum`.
    pub const EXCLUSIVE_MINIMUM: u32 = 4_000_019;
    /// Number above `maximum`.
    pub const MAXIMUM: u32 = 4_000_020;
    /// Number not below `exclusiveMaximum`.
    pub const EXCLUSIVE_MAXIMUM: u32 = 4_000_021;
    /// Number not a multiple of `multipleOf`.
    pub const MULTIPLE_OF: u32 = 4_000_022;
    /// Array longer than `maxItems`.
    pub const MAX_ITEMS: u32 = 4_000_023;
    /// Array shorter than `minItems`.
    pub const MIN_ITEMS: u32 = 4_000_024;
    /// Array items not unique.
    pub const UNIQUE_ITEMS: u32 = 4_000_025;
    /// JSON type mismatch.
    pub const WRONG_TYPE: u32 = 4_000_026;
    /// Primitive `const` mismatch.
    pub const CONST: u32 = 4_000_029;
    /// Object/array `const` mismatch.
    pub const CONST_GENERIC: u32 = 4_000_030;
    /// Not a valid email address.
    pub const EMAIL: u32 = 4_000_040;
    /// Not a valid phone number.
    pub const PHONE: u32 = 4_000_041;
}

fn ctx<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Renders a number like Go's `%v` of a float64 for integral values ("5", not "5.0").
pub(super) fn fmt_number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i128)
    } else {
        format!("{n}")
    }
}

/// JSON number for a context value; integral floats become integers like Go's encoder does.
fn json_number(n: f64) -> Value {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

impl UiText {
    fn error(id: u32, text: String, context: Map<String, Value>) -> Self {
        let mut m = UiText::new(id, crate::text::TextType::Error, text);
        m.context = context;
        m
    }

    /// 4000001: catch-all for failures without a dedicated message.
    pub fn generic(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::error(ids::GENERIC, reason.clone(), ctx([("reason", Value::String(reason))]))
    }

    /// 4000002: a required property is absent.
    pub fn required(property: &str) -> Self {
        Self::error(
            ids::REQUIRED,
            format!("Property {property} is missing."),
            ctx([("property", Value::String(property.to_owned()))]),
        )
    }

    /// 4000003: string too short.
    pub fn min_length(min: u64, actual: usize) -> Self {
        Self::error(
            ids::MIN_LENGTH,
            format!("length must be >= {min}, but got {actual}"),
            ctx([("min_length", Value::from(min)), ("actual_length", Value::from(actual))]),
        )
    }

    /// 4000017: string too long.
    pub fn max_length(max: u64, actual: usize) -> Self {
        Self::error(
            ids::MAX_LENGTH,
            format!("length must be <= {max}, but got {actual}"),
            ctx([("max_length", Value::from(max)), ("actual_length", Value::from(actual))]),
        )
    }

    /// 4000004: string does not match the schema `pattern`.
    pub fn pattern(pattern: &str) -> Self {
        Self::error(
            ids::INVALID_FORMAT,
            format!("does not match pattern {}", quote(pattern)),
            ctx([("pattern", Value::String(pattern.to_owned()))]),
        )
    }

    /// 4000018 / 4000019 / 4000020 / 4000021: numeric bound violated.
    /// `op` is one of `>=`, `>`, `<=`, `<`.
    pub fn bound(op: &str, limit: f64, actual: f64) -> Self {
        let (id, key) = match op {
            ">=" => (ids::MINIMUM, "minimum"),
            ">" => (ids::EXCLUSIVE_MINIMUM, "minimum"),
            "<=" => (ids::MAXIMUM, "maximum"),
            _ => (ids::EXCLUSIVE_MAXIMUM, "maximum"),
        };
        Self::error(
            id,
            format!("must be {op} {} but found {}", fmt_number(limit), fmt_number(actual)),
            ctx([(key, json_number(limit)), ("actual", json_number(actual))]),
        )
    }

    /// 4000022: number is not a multiple of `base`.
    pub fn multiple_of(base: f64, actual: f64) -> Self {
        Self::error(
            ids::MULTIPLE_OF,
            format!("{} not multipleOf {}", fmt_number(actual), fmt_number(base)),
            ctx([("base", json_number(base)), ("actual", json_number(actual))]),
        )
    }

    /// 4000023: too many array items.
    pub fn max_items(max: u64, actual: usize) -> Self {
        Self::error(
            ids::MAX_ITEMS,
            format!("maximum {max} items allowed, but found {actual} items"),
            ctx([("max_items", Value::from(max)), ("actual_items", Value::from(actual))]),
        )
    }

    /// 4000024: too few array items.
    pub fn min_items(min: u64, actual: usize) -> Self {
        Self::error(
            ids::MIN_ITEMS,
            format!("minimum {min} items allowed, but found {actual} items"),
            ctx([("min_items", Value::from(min)), ("actual_items", Value::from(actual))]),
        )
    }

    /// 4000025: two array items are equal although `uniqueItems` is set.
    pub fn unique_items(index_a: usize, index_b: usize) -> Self {
        Self::error(
            ids::UNIQUE_ITEMS,
            format!("items at index {index_a} and {index_b} are equal"),
            ctx([("index_a", Value::from(index_a)), ("index_b", Value::from(index_b))]),
        )
    }

    /// 4000026: value has the wrong JSON type.
    pub fn wrong_type(allowed: &[&str], actual: &str) -> Self {
        Self::error(
            ids::WRONG_TYPE,
            format!("expected {}, but got {actual}", allowed.join(" or ")),
            ctx([
                (
                    "allowed_types",
                    Value::Array(allowed.iter().map(|t| Value::String((*t).to_owned())).collect()),
                ),
                ("actual_type", Value::String(actual.to_owned())),
            ]),
        )
    }

    /// 4000029 (primitive constant) or 4000030 (object/array constant).
    pub fn constant(expected: &Value) -> Self {
        match expected {
            Value::Object(_) | Value::Array(_) => {
                Self::error(ids::CONST_GENERIC, "const failed".to_owned(), Map::new())
            }
            other => {
                let shown = match other {
                    Value::String(s) => quote(s),
                    v => v.to_string(),
                };
                Self::error(
                    ids::CONST,
                    format!("must be equal to constant {shown}"),
                    ctx([("expected", Value::String(shown))]),
                )
            }
        }
    }

    /// 4000040: value is not an email address.
    pub fn invalid_email(value: &str) -> Self {
        Self::error(
            ids::EMAIL,
            "Enter a valid email address".to_owned(),
            ctx([("value", Value::String(value.to_owned()))]),
        )
    }

    /// 4000041: value is not a phone number.
    pub fn invalid_phone(value: &str) -> Self {
        Self::error(
            ids::PHONE,
            "Enter a valid phone number".to_owned(),
            ctx([("value", Value::String(value.to_owned()))]),
        )
    }
}

/// Double-quotes a string with JSON escaping (close to Go's `%q` for common input).
pub(super) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}
