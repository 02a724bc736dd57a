//! Environment variable overrides, named the way Kratos names them: the key path upper-cased
//! with `.` replaced by `_` (`SELFSERVICE_FLOWS_LOGIN_UI_URL`). Key names contain underscores
//! themselves, so names are resolved against the schema rather than split blindly.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ConfigError;
use super::duration::parse_bool;
use super::keys::{KeyPath, Keys, Seg};

/// Variables that match a schema key but are too generic to be meant for Latch (and that set
/// nothing Latch uses): `VERSION=1.2` from a base image must not break startup.
const NOT_CONFIG: &[&str] = &["VERSION", "HELP", "CONFIG", "REVISION"];

/// Applies every environment variable that names a known key to `doc`; all others are ignored.
/// `NAME_FILE=/path` sets `NAME` from the file's contents (for secrets) unless `NAME` is set.
pub(super) fn apply(keys: &Keys, env: &BTreeMap<String, String>, doc: &mut Value) -> Result<(), ConfigError> {
    // Sorted order: `IDENTITY_SCHEMAS` (whole array) lands before `IDENTITY_SCHEMAS_0_URL`.
    for (name, raw) in env {
        if raw.is_empty() || NOT_CONFIG.contains(&name.as_str()) {
            continue;
        }
        if let Some((path, schemas)) = keys.env_key(name) {
            match coerce(keys, &schemas, raw, false) {
                Some(value) => {
                    tracing::debug!(env = %name, key = %path, "configuration key set from the environment");
                    set(doc, &path, value);
                }
                None => tracing::debug!(env = %name, key = %path, "ignoring variable: not a JSON object"),
            }
            continue;
        }
        let Some(target) = name.strip_suffix("_FILE") else {
            continue;
        };
        if env.get(target).is_some_and(|v| !v.is_empty()) {
            continue;
        }
        if let Some((path, schemas)) = keys.env_key(target) {
            let contents = std::fs::read_to_string(raw).map_err(|source| ConfigError::Io {
                path: format!("{raw} (from {name})"),
                source,
            })?;
            let contents = contents.trim_end_matches(['\r', '\n']);
            let value = coerce(keys, &schemas, contents, true).unwrap_or_else(|| Value::String(contents.to_owned()));
            tracing::debug!(env = %name, key = %path, "configuration key set from a file");
            set(doc, &path, value);
        }
    }
    Ok(())
}

/// Turns the text of an environment variable into the JSON value the schema expects. Scalars
/// that do not fit are kept as strings so validation reports them with their key; a
/// non-JSON value for an object key (`SESSION=ubuntu` from a desktop login) gives `None`.
fn coerce(keys: &Keys, schemas: &[&Value], raw: &str, from_file: bool) -> Option<Value> {
    let types = keys.types_of(schemas);
    let has = |t: &str| types.iter().any(|have| have == t);
    if has("string") {
        return Some(Value::String(raw.to_owned()));
    }
    if has("boolean")
        && let Some(b) = parse_bool(raw)
    {
        return Some(Value::Bool(b));
    }
    if has("integer")
        && let Ok(n) = raw.trim().parse::<i64>()
    {
        return Some(Value::from(n));
    }
    if has("number")
        && let Ok(n) = raw.trim().parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(n)
    {
        return Some(Value::Number(n));
    }
    let parsed = serde_json::from_str::<Value>(raw.trim()).ok();
    if has("array") {
        if let Some(array @ Value::Array(_)) = parsed {
            return Some(array);
        }
        // A plain list: one item per line from a file, comma-separated from a variable.
        let items = keys.items_of(schemas);
        let parts: Vec<&str> = if from_file {
            raw.lines().filter(|l| !l.trim().is_empty()).collect()
        } else {
            raw.split(',').collect()
        };
        return Some(Value::Array(
            parts
                .into_iter()
                .filter_map(|p| coerce(keys, &items, p.trim(), false))
                .collect(),
        ));
    }
    if has("object") {
        if let Some(object @ Value::Object(_)) = parsed {
            return Some(object);
        }
        return None;
    }
    if types.is_empty()
        && raw.trim_start().starts_with(['{', '['])
        && let Some(value) = parsed
    {
        return Some(value);
    }
    Some(Value::String(raw.to_owned()))
}

/// Sets `value` at `path`, creating (or replacing non-container) intermediate values.
pub(super) fn set(doc: &mut Value, path: &KeyPath, value: Value) {
    let mut slot = doc;
    for seg in &path.0 {
        slot = match seg {
            Seg::Key(key) => {
                if !slot.is_object() {
                    *slot = Value::Object(serde_json::Map::new());
                }
                match slot {
                    Value::Object(map) => map.entry(key.clone()).or_insert(Value::Null),
                    _ => return,
                }
            }
            Seg::Index(index) => {
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                match slot {
                    Value::Array(items) => {
                        if items.len() <= *index {
                            items.resize(*index + 1, Value::Null);
                        }
                        match items.get_mut(*index) {
                            Some(item) => item,
                            None => return,
                        }
                    }
                    _ => return,
                }
            }
        };
    }
    *slot = value;
}
