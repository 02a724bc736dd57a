//! Translation of JSON-Schema validation failures into Kratos-compatible UI
//! messages, so self-service forms show the same ids and texts.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::errors::{TraitError, UiText, quote};
use super::extension::escape_segment;

/// Validates `document` and returns one [`TraitError`] per failure.
pub(super) fn collect(validator: &Validator, document: &Value) -> Vec<TraitError> {
    let mut out = Vec::new();
    for error in validator.iter_errors(document) {
        map_error(&error, &mut out);
    }
    out
}

/// `#`-prefixed pointer for a location; the document root becomes `#/`.
fn pointer(path: &str) -> String {
    if path.is_empty() {
        "#/".to_owned()
    } else {
        format!("#{path}")
    }
}

/// JSON type name as Kratos reports it (all numbers are "number").
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn as_f64(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

fn str_len(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

fn array_len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

/// First pair of equal items, scanning like the reference implementation (earlier index first).
fn duplicate_pair(value: &Value) -> (usize, usize) {
    if let Some(items) = value.as_array() {
        for i in 1..items.len() {
            for j in 0..i {
                if items.get(i) == items.get(j) {
                    return (j, i);
                }
            }
        }
    }
    (0, 0)
}

fn primitive(value: &Value) -> String {
    match value {
        Value::String(s) => quote(s),
        other => other.to_string(),
    }
}

fn enum_message(options: &Value) -> String {
    let Some(list) = options.as_array() else {
        return "enum failed".to_owned();
    };
    if list.iter().any(|v| v.is_object() || v.is_array()) {
        return "enum failed".to_owned();
    }
    match list.as_slice() {
        [single] => format!("value must be {}", primitive(single)),
        many => format!(
            "value must be one of {}",
            many.iter().map(primitive).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn map_error(error: &ValidationError<'_>, out: &mut Vec<TraitError>) {
    let path = error.instance_path().as_str();
    let instance: &Value = error.instance();
    let message = match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            let ptr = format!("#{path}/{}", escape_segment(&name));
            out.push(TraitError::new(ptr, UiText::required(&name)));
            return;
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            for branch in context {
                for nested in branch {
                    map_error(nested, out);
                }
            }
            return;
        }
        ValidationErrorKind::MinLength { limit } => UiText::min_length(*limit, str_len(instance)),
        ValidationErrorKind::MaxLength { limit } => UiText::max_length(*limit, str_len(instance)),
        ValidationErrorKind::Pattern { pattern } => UiText::pattern(pattern),
        ValidationErrorKind::Minimum { limit } => UiText::bound(">=", as_f64(limit), as_f64(instance)),
        ValidationErrorKind::ExclusiveMinimum { limit } => UiText::bound(">", as_f64(limit), as_f64(instance)),
        ValidationErrorKind::Maximum { limit } => UiText::bound("<=", as_f64(limit), as_f64(instance)),
        ValidationErrorKind::ExclusiveMaximum { limit } => UiText::bound("<", as_f64(limit), as_f64(instance)),
        ValidationErrorKind::MultipleOf { multiple_of } => UiText::multiple_of(*multiple_of, as_f64(instance)),
        ValidationErrorKind::MaxItems { limit } => UiText::max_items(*limit, array_len(instance)),
        ValidationErrorKind::MinItems { limit } => UiText::min_items(*limit, array_len(instance)),
        ValidationErrorKind::UniqueItems => {
            let (a, b) = duplicate_pair(instance);
            UiText::unique_items(a, b)
        }
        ValidationErrorKind::Type { kind } => {
            let allowed: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![t.as_str()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect(),
            };
            UiText::wrong_type(&allowed, type_name(instance))
        }
        ValidationErrorKind::Constant { expected_value } => UiText::constant(expected_value),
        ValidationErrorKind::Enum { options } => UiText::generic(enum_message(options)),
        ValidationErrorKind::AdditionalProperties { unexpected } => UiText::generic(format!(
            "additionalProperties {} not allowed",
            unexpected.iter().map(|p| quote(p)).collect::<Vec<_>>().join(", ")
        )),
        ValidationErrorKind::MinProperties { limit } => UiText::generic(format!(
            "minimum {limit} properties allowed, but found {} properties",
            instance.as_object().map_or(0, serde_json::Map::len)
        )),
        ValidationErrorKind::MaxProperties { limit } => UiText::generic(format!(
            "maximum {limit} properties allowed, but found {} properties",
            instance.as_object().map_or(0, serde_json::Map::len)
        )),
        ValidationErrorKind::Format { format } => {
            let value = instance.as_str().map_or_else(|| instance.to_string(), str::to_owned);
            match format.as_str() {
                "email" | "idn-email" => UiText::invalid_email(&value),
                "tel" => UiText::invalid_phone(&value),
                other => UiText::generic(format!("{} is not valid {}", quote(&value), quote(other))),
            }
        }
        ValidationErrorKind::Not { .. } => UiText::generic("not failed"),
        ValidationErrorKind::FalseSchema => UiText::generic("always fail"),
        _ => UiText::generic(error.to_string()),
    };
    out.push(TraitError::new(pointer(path), message));
}
