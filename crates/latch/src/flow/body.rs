//! Decoding a submission body: JSON (nested or with dotted keys) or an HTML form, with form
//! values converted to the identity schema's types. Kratos: `decoderx.HTTP`.

use serde_json::{Map, Value};

use super::request::is_json_content_type;
use crate::deps::Deps;

/// Decodes a submission: JSON (nested or with dotted keys) or an HTML form.
/// Kratos: `decoderx.HTTP`.
pub fn decode_body(deps: &Deps, content_type: &str, bytes: &[u8]) -> Result<Value, String> {
    let ct = content_type.to_string();
    if bytes.is_empty() {
        return Err("Unable to decode HTTP Request Body because its HTTP Header \"Content-Length\" is zero.".into());
    }
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let flat: Vec<(String, Value)> = if is_json_content_type(&ct) {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("Unable to decode the JSON request body: {e}"))?;
        let Value::Object(map) = v else {
            return Err("The JSON request body must be an object.".into());
        };
        map.into_iter().collect()
    } else if essence == "application/x-www-form-urlencoded" {
        let schema = deps.schemas.default_schema().map(|s| &s.raw);
        url::form_urlencoded::parse(bytes)
            .map(|(k, v)| {
                let value = coerce_form_value(schema, &k, &v);
                (k.into_owned(), value)
            })
            .collect()
    } else {
        return Err(format!(
            "HTTP POST Request used unknown HTTP Header \"Content-Type: {ct}\", only [application/x-www-form-urlencoded application/json] are supported."
        ));
    };
    let mut out = Value::Object(Map::new());
    for (k, v) in flat {
        insert_path(&mut out, &k, v);
    }
    Ok(out)
}

/// Form values are strings; trait values are converted to the schema's type.
fn coerce_form_value(schema: Option<&Value>, key: &str, raw: &str) -> Value {
    let Some(rest) = key.strip_prefix("traits.") else {
        return Value::String(raw.to_string());
    };
    let mut node = schema.and_then(|s| s.pointer("/properties/traits"));
    for part in rest.split('.') {
        node = node.and_then(|n| n.get("properties")).and_then(|p| p.get(part));
    }
    let ty = node
        .and_then(|n| n.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("string");
    match ty {
        "boolean" => match raw {
            "true" | "on" | "1" => Value::Bool(true),
            "false" | "off" | "0" | "" => Value::Bool(false),
            _ => Value::String(raw.to_string()),
        },
        "number" | "integer" => raw
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| raw.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(raw.to_string())),
        _ => Value::String(raw.to_string()),
    }
}

fn insert_path(root: &mut Value, key: &str, value: Value) {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = root;
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(obj) = cur.as_object_mut() else { return };
        if i + 1 == parts.len() {
            match (obj.get_mut(*p), value) {
                (Some(existing @ Value::Object(_)), Value::Object(new)) => {
                    for (k, v) in new {
                        insert_path(existing, &k, v);
                    }
                }
                (_, value) => {
                    obj.insert((*p).to_string(), value);
                }
            }
            return;
        }
        cur = obj.entry((*p).to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
}
