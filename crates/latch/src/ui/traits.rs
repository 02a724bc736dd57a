//! Form nodes generated from an identity JSON schema, and the schema's
//! property order used to sort registration forms.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::node::{Autocomplete, Group, InputType, Node};
use crate::text;

/// Kratos caps the options generated from an `enum` at this many.
const MAX_ENUM_OPTIONS: usize = 500;

/// Bound on schema nesting and `$ref` hops (Kratos rejects cycles; we stop).
const MAX_DEPTH: usize = 32;

/// Input nodes for every scalar property of an identity schema's traits.
///
/// Exists because registration and settings forms show one input per trait.
/// `schema` is the whole identity schema; nodes are generated for
/// `properties.<prefix>` (following a local `$ref`), or for `schema` itself
/// when it has no such property. Names are `<prefix>.<path>` (nested objects
/// flatten to `traits.name.first`), nodes come sorted by name, and `values`
/// (the identity's traits object, optional) pre-fills matching inputs.
///
/// Mirrors Kratos: objects and arrays of objects yield no node, other arrays
/// a `text` input; type from the JSON type (`number`/`integer` → `number`,
/// `boolean` → `checkbox`, else `text`) refined by `format` (`email`,
/// `tel`, `date-time`, `date`, `uri`); `required` from the enclosing
/// object's `required` (lost behind a `$ref`, as in Kratos); `pattern`;
/// `enum` → `options`; label 1070002 when `title` is set; a node named
/// exactly `password` / `csrf_token` becomes a password / hidden input. Like Kratos, no
/// `maxlength` is derived from `maxLength`.
/// Kratos: `container.NodesFromJSONSchema` + `node.NewInputFieldFromSchema`
/// over `jsonschemax.ListPaths`.
pub fn trait_nodes(schema: &Value, group: Group, prefix: &str, values: Option<&Value>) -> Vec<Node> {
    let start = schema
        .get("properties")
        .and_then(|p| p.get(prefix))
        .map(|s| resolve_refs(schema, s))
        .unwrap_or(schema);

    let mut paths: Vec<SchemaPath> = Vec::new();
    let mut parents: Vec<String> = Vec::new();
    walk(schema, start, None, &mut parents, 0, &mut paths);

    // Kratos sorts by name (stably) and keeps one path per name: the first,
    // replaced by a later one while the kept one has no default.
    paths.sort_by(|a, b| a.name.cmp(&b.name));
    let mut unique: Vec<SchemaPath> = Vec::with_capacity(paths.len());
    for p in paths {
        match unique.last_mut() {
            Some(last) if last.name == p.name => {
                if !last.has_default {
                    *last = p;
                }
            }
            _ => unique.push(p),
        }
    }

    unique
        .into_iter()
        .filter(|p| p.kind != Kind::Json)
        .map(|p| {
            let name = if prefix.is_empty() {
                p.name.clone()
            } else {
                format!("{prefix}.{}", p.name)
            };
            let value = values.and_then(|v| lookup_path(v, &p.segments)).cloned();
            p.into_node(name, group, value)
        })
        .collect()
}

/// The identity schema's property paths in document order, as used by the
/// registration sort (`traits.email`, `traits.name.first`, …; dots inside a
/// key are escaped `\.`; a property without `"type": "object"` — e.g. a bare
/// `$ref` — is a leaf).
///
/// Takes the raw schema text because key order is lost once parsed into a
/// `serde_json::Value`. Returns an empty list for invalid JSON.
/// Kratos: `schema.GetKeysInOrder`.
pub fn property_order(raw_schema: &str) -> Vec<String> {
    let Ok(root) = serde_json::from_str::<Ordered>(raw_schema) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut parents = Vec::new();
    key_positions(&root, &mut parents, &mut out, 0);
    out
}

fn key_positions(schema: &Ordered, parents: &mut Vec<String>, out: &mut Vec<String>, depth: usize) {
    let is_object = matches!(schema.get("type"), Some(Ordered::Str(t)) if t == "object");
    if !is_object || depth > MAX_DEPTH {
        out.push(parents.join("."));
        return;
    }
    if let Some(Ordered::Object(props)) = schema.get("properties") {
        for (key, sub) in props {
            parents.push(key.replace('.', "\\."));
            key_positions(sub, parents, out, depth + 1);
            parents.pop();
        }
    }
}

/// A JSON value that remembers object key order (serde_json's `Value` does
/// not without the `preserve_order` feature).
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Str(String),
    Other,
}

impl Ordered {
    fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Self::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
                Ok(Ordered::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Ordered, E> {
                Ok(Ordered::Str(s))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_none<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                while seq.next_element::<Ordered>()?.is_some() {}
                Ok(Ordered::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    entries.push((k, v));
                }
                Ok(Ordered::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Bool,
    /// Arrays of scalars, untyped properties with a default, etc.: plain text.
    Other,
    /// Objects, arrays of objects, multi-typed values: no form node.
    Json,
}

struct SchemaPath {
    name: String,
    segments: Vec<String>,
    kind: Kind,
    has_default: bool,
    required: bool,
    format: Option<String>,
    pattern: Option<String>,
    enum_values: Vec<Value>,
    title: Option<String>,
}

impl SchemaPath {
    fn into_node(self, name: String, group: Group, value: Option<Value>) -> Node {
        let mut input_type = match (name.as_str(), self.kind) {
            (super::node::CSRF_TOKEN_NAME, _) => InputType::Hidden,
            ("password", _) => InputType::Password,
            (_, Kind::Number) => InputType::Number,
            (_, Kind::Bool) => InputType::Checkbox,
            _ => InputType::Text,
        };
        let mut autocomplete = None;
        match self.format.as_deref() {
            Some("date-time") => input_type = InputType::DatetimeLocal,
            Some("email") => {
                input_type = InputType::Email;
                autocomplete = Some(Autocomplete::Email);
            }
            Some("tel") => {
                input_type = InputType::Tel;
                autocomplete = Some(Autocomplete::Tel);
            }
            Some("date") => input_type = InputType::Date,
            Some("uri") => {
                input_type = InputType::Url;
                autocomplete = Some(Autocomplete::Url);
            }
            Some("regex") => input_type = InputType::Text,
            _ => {}
        }

        let mut node = Node::input(name.clone(), input_type, group);
        if let Some(a) = node.input_attributes_mut() {
            a.required = self.required;
            a.autocomplete = autocomplete;
            a.pattern = self.pattern.unwrap_or_default();
            a.value = value.filter(|v| !v.is_null());
        }
        if !self.enum_values.is_empty() {
            node = node.options(self.enum_values.into_iter().take(MAX_ENUM_OPTIONS));
        }
        if let Some(title) = self.title.filter(|t| !t.is_empty()) {
            node = node.label(text::label_generated(&title, &name));
        }
        node
    }
}

/// Follows `$ref`s from `schema` until a schema without one (bounded).
fn resolve_refs<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match resolve_pointer(root, r) {
                Some(target) => schema = target,
                None => return schema,
            },
            None => return schema,
        }
    }
    schema
}

/// Resolves a document-local `$ref` (`#`, `#/definitions/x`, `#/$defs/x`, …).
fn resolve_pointer<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let fragment = reference.strip_prefix('#')?;
    if fragment.is_empty() {
        return Some(root);
    }
    let pointer = percent_decode(fragment);
    root.pointer(&pointer)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match (bytes.get(i), bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'%'), Some(h), Some(l)) => hex_val(*h).zip(hex_val(*l)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes.get(i).copied().unwrap_or_default());
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn lookup_path<'a>(values: &'a Value, segments: &[String]) -> Option<&'a Value> {
    segments.iter().try_fold(values, |v, s| v.get(s.as_str()))
}

fn type_kind(root: &Value, schema: &Value) -> Option<Kind> {
    if let Some(c) = schema.get("const") {
        return Some(match c {
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Bool(_) => Kind::Bool,
            Value::Null => return None,
            _ => Kind::Json,
        });
    }
    let single = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => match ts.len() {
            1 => ts.first().and_then(Value::as_str),
            2 => return None,
            n if n > 2 => return Some(Kind::Json),
            _ => return None,
        },
        _ => None,
    }?;
    match single {
        "boolean" => Some(Kind::Bool),
        "number" | "integer" => Some(Kind::Number),
        "string" => Some(Kind::String),
        "object" => Some(Kind::Json),
        "array" => Some(array_kind(root, schema)),
        _ => None,
    }
}

fn array_kind(root: &Value, schema: &Value) -> Kind {
    let items: Vec<&Value> = match schema.get("items") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => return Kind::Other,
    };
    let mut types: Vec<&str> = Vec::new();
    for item in items {
        let item = resolve_refs(root, item);
        match item.get("type") {
            Some(Value::String(t)) => types.push(t),
            Some(Value::Array(ts)) => types.extend(ts.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    types.dedup();
    match types.as_slice() {
        [one] if matches!(*one, "boolean" | "number" | "integer" | "string") => Kind::Other,
        [_] => Kind::Json,
        _ => Kind::Other,
    }
}

/// Collects the paths below `schema` the way `jsonschemax.ListPaths` does:
/// a path per property with a usable type (or a default), recursing into
/// `$ref` (siblings ignored, draft-07), `not`, `if`/`then`/`else`,
/// `allOf`/`anyOf`/`oneOf` and `properties`.
fn walk(
    root: &Value,
    schema: &Value,
    parent: Option<&Value>,
    parents: &mut Vec<String>,
    depth: usize,
    out: &mut Vec<SchemaPath>,
) {
    if depth > MAX_DEPTH || !schema.is_object() {
        return;
    }

    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        if let Some(target) = resolve_pointer(root, reference) {
            walk(root, target, Some(schema), parents, depth + 1, out);
        }
        return;
    }

    let kind = type_kind(root, schema);
    let has_default = schema.get("default").is_some_and(|d| !d.is_null());
    if let Some(last) = parents.last()
        && (kind.is_some() || has_default)
    {
        let required = parent
            .and_then(|p| p.get("required"))
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|n| n.as_str() == Some(last.as_str())));
        let string = |key: &str| schema.get(key).and_then(Value::as_str).map(str::to_owned);
        out.push(SchemaPath {
            name: parents.join("."),
            segments: parents.clone(),
            kind: kind.unwrap_or(Kind::Other),
            has_default,
            required,
            format: string("format"),
            pattern: string("pattern"),
            enum_values: schema
                .get("enum")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            title: string("title"),
        });
    }

    for key in ["not", "if", "then", "else"] {
        if let Some(sub) = schema.get(key) {
            walk(root, sub, Some(schema), parents, depth + 1, out);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(subs)) = schema.get(key) {
            for sub in subs {
                walk(root, sub, Some(schema), parents, depth + 1, out);
            }
        }
    }
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (name, sub) in props {
            parents.push(name.clone());
            walk(root, sub, Some(schema), parents, depth + 1, out);
            parents.pop();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    const CODE_SCHEMA: &str = r#"{
      "$id": "https://example.com/code.schema.json",
      "$schema": "http://json-schema.org/draft-07/schema#",
      "title": "Person",
      "type": "object",
      "properties": {
        "traits": {
          "type": "object",
          "properties": {
            "email": {
              "type": "string",
              "format": "email",
              "title": "Your E-Mail",
              "minLength": 3,
              "ory.sh/kratos": {
                "credentials": {"code": {"identifier": true, "via": "email"}},
                "verification": {"via": "email"}
              }
            },
            "tos": {"type": "boolean", "title": "Accept Terms of Service"}
          },
          "required": ["email", "tos"]
        }
      }
    }"#;

    const RICH_SCHEMA: &str = r##"{
      "type": "object",
      "definitions": {
        "tel": {"type": "string", "format": "tel", "title": "Phone"}
      },
      "properties": {
        "traits": {
          "type": "object",
          "required": ["username", "name", "phone"],
          "properties": {
            "username": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 20},
            "name": {
              "type": "object",
              "required": ["first"],
              "properties": {
                "last": {"type": "string", "title": "Last name"},
                "first": {"type": "string", "title": "First name"}
              }
            },
            "age": {"type": "integer", "title": "Age"},
            "score": {"type": "number"},
            "newsletter": {"type": "boolean"},
            "plan": {"type": "string", "enum": ["free", "pro"], "title": "Plan"},
            "website": {"type": "string", "format": "uri"},
            "born": {"type": "string", "format": "date"},
            "seen": {"type": "string", "format": "date-time"},
            "phone": {"$ref": "#/definitions/tel"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "addresses": {"type": "array", "items": {"type": "object"}},
            "nick": {"type": ["string", "null"]},
            "meta": {"type": "object"}
          }
        }
      }
    }"##;

    fn attrs(n: &Node) -> Value {
        serde_json::to_value(n).unwrap()["attributes"].clone()
    }

    #[test]
    fn code_schema_nodes() {
        let schema: Value = serde_json::from_str(CODE_SCHEMA).unwrap();
        let values = json!({"email": "jane@example.com"});
        let nodes = trait_nodes(&schema, Group::Default, "traits", Some(&values));
        let json = serde_json::to_value(&nodes).unwrap();
        assert_eq!(
            json,
            json!([
                {"type":"input","group":"default","attributes":{"name":"traits.email","type":"email",
                  "value":"jane@example.com","required":true,"autocomplete":"email","disabled":false,"node_type":"input"},
                 "messages":[],"meta":{"label":{"id":1070002,"text":"Your E-Mail","type":"info",
                  "context":{"name":"traits.email","title":"Your E-Mail"}}}},
                {"type":"input","group":"default","attributes":{"name":"traits.tos","type":"checkbox",
                  "required":true,"disabled":false,"node_type":"input"},
                 "messages":[],"meta":{"label":{"id":1070002,"text":"Accept Terms of Service","type":"info",
                  "context":{"name":"traits.tos","title":"Accept Terms of Service"}}}}
            ])
        );
    }

    #[test]
    fn shared_reference_schema_if_present() {
        let path = "/work/shared/reference/example-identity.code.schema.json";
        let Ok(raw) = std::fs::read_to_string(path) else {
            return;
        };
        let schema: Value = serde_json::from_str(&raw).unwrap();
        let nodes = trait_nodes(&schema, Group::Default, "traits", None);
        let names: Vec<&str> = nodes.iter().map(Node::id).collect();
        assert_eq!(names, ["traits.email", "traits.tos"]);
        assert_eq!(property_order(&raw), ["traits.email", "traits.tos"]);
    }

    #[test]
    fn rich_schema_nodes() {
        let schema: Value = serde_json::from_str(RICH_SCHEMA).unwrap();
        let values = json!({"name": {"first": "Jane"}, "age": 41, "tags": ["a"]});
        let nodes = trait_nodes(&schema, Group::Profile, "traits", Some(&values));
        let names: Vec<&str> = nodes.iter().map(Node::id).collect();
        assert_eq!(
            names,
            [
                "traits.age",
                "traits.born",
                "traits.name.first",
                "traits.name.last",
                "traits.newsletter",
                "traits.phone",
                "traits.plan",
                "traits.score",
                "traits.seen",
                "traits.tags",
                "traits.username",
                "traits.website",
            ]
        );
        assert!(nodes.iter().all(|n| n.group == Group::Profile));
        let by = |name: &str| nodes.iter().find(|n| n.id() == name).unwrap();

        assert_eq!(
            attrs(by("traits.age")),
            json!({"name":"traits.age","type":"number","value":41,"disabled":false,"node_type":"input"})
        );
        assert_eq!(attrs(by("traits.score"))["type"], "number");
        assert_eq!(attrs(by("traits.newsletter"))["type"], "checkbox");
        assert_eq!(attrs(by("traits.born"))["type"], "date");
        assert_eq!(attrs(by("traits.seen"))["type"], "datetime-local");
        assert_eq!(
            attrs(by("traits.website")),
            json!({"name":"traits.website","type":"url","autocomplete":"url","disabled":false,"node_type":"input"})
        );
        assert_eq!(
            attrs(by("traits.username")),
            json!({"name":"traits.username","type":"text","required":true,"pattern":"^[a-z]+$","disabled":false,"node_type":"input"})
        );
        assert_eq!(
            attrs(by("traits.plan"))["options"],
            json!([{"value":"free"},{"value":"pro"}])
        );
        assert_eq!(
            attrs(by("traits.name.first")),
            json!({"name":"traits.name.first","type":"text","value":"Jane","required":true,"disabled":false,"node_type":"input"})
        );
        assert_eq!(
            by("traits.name.first").meta.label,
            Some(text::label_generated("First name", "traits.name.first"))
        );
        assert!(!by("traits.name.last").input_attributes().unwrap().required);
        // $ref: resolved, labelled from the target, `required` lost (as in Kratos).
        let phone = attrs(by("traits.phone"));
        assert_eq!(phone["type"], "tel");
        assert_eq!(phone["autocomplete"], "tel");
        assert!(phone.get("required").is_none());
        assert_eq!(attrs(by("traits.tags"))["type"], "text");
        assert_eq!(attrs(by("traits.tags"))["value"], json!(["a"]));
    }

    #[test]
    fn cyclic_refs_terminate() {
        let schema = json!({"type":"object","properties":{"traits":{"$ref":"#/definitions/n"}},
            "definitions":{"n":{"type":"object","properties":{"child":{"$ref":"#/definitions/n"},
            "v":{"type":"string"}}}}});
        let nodes = trait_nodes(&schema, Group::Default, "traits", None);
        assert!(nodes.len() > 1 && nodes.len() < 40);
        assert!(nodes.iter().all(|n| n.id().ends_with(".v")));
        assert!(nodes.iter().any(|n| n.id() == "traits.v"));
    }

    #[test]
    fn allof_and_defaults() {
        let schema = json!({"type":"object","properties":{"traits":{"type":"object",
            "allOf":[{"required":["a"],"properties":{"a":{"type":"string"}}}],
            "properties":{"b":{"default":"x"},"c":{}}}}});
        let nodes = trait_nodes(&schema, Group::Default, "traits", None);
        let names: Vec<&str> = nodes.iter().map(Node::id).collect();
        assert_eq!(names, ["traits.a", "traits.b"]);
        assert!(nodes.first().unwrap().input_attributes().unwrap().required);
    }

    #[test]
    fn unprefixed_schema_special_names() {
        let schema = json!({"type":"object","properties":{
            "password":{"type":"string"},"csrf_token":{"type":"string"},
            "rx":{"type":"string","format":"regex"}}});
        let nodes = trait_nodes(&schema, Group::Password, "", None);
        let types: Vec<(String, Value)> = nodes
            .iter()
            .map(|n| (n.id().to_owned(), attrs(n)["type"].clone()))
            .collect();
        assert_eq!(
            types,
            [
                ("csrf_token".to_owned(), json!("hidden")),
                ("password".to_owned(), json!("password")),
                ("rx".to_owned(), json!("text")),
            ]
        );
    }

    #[test]
    fn order_of_properties() {
        let raw = r##"{"type":"object","properties":{"traits":{"type":"object","properties":{
            "zeta":{"type":"string"},
            "name":{"type":"object","properties":{"last":{"type":"string"},"first":{"type":"string"}}},
            "a.b":{"type":"string"},
            "ref":{"$ref":"#/definitions/x"},
            "alpha":{"type":"number"}}}}}"##;
        assert_eq!(
            property_order(raw),
            [
                "traits.zeta",
                "traits.name.last",
                "traits.name.first",
                "traits.a\\.b",
                "traits.ref",
                "traits.alpha"
            ]
        );
        assert!(property_order("not json").is_empty());
    }

    #[test]
    fn registration_sort_with_schema_order() {
        use crate::ui::container::Container;
        let schema: Value = serde_json::from_str(RICH_SCHEMA).unwrap();
        let mut c = Container::new("a");
        for n in trait_nodes(&schema, Group::Default, "traits", None) {
            c.append(n);
        }
        c.set_csrf("t");
        c.append(Node::input("method", InputType::Submit, Group::Code).value("code"));
        c.sort_registration(&property_order(RICH_SCHEMA));
        let names: Vec<&str> = c.nodes.iter().map(Node::id).collect();
        assert_eq!(
            names,
            [
                "csrf_token",
                "traits.username",
                "traits.name.last",
                "traits.name.first",
                "traits.age",
                "traits.score",
                "traits.newsletter",
                "traits.plan",
                "traits.website",
                "traits.born",
                "traits.seen",
                "traits.phone",
                "traits.tags",
                "method",
            ]
        );
    }
}
