//! The embedded Kratos key schema and the walks Latch does over it: unknown-key detection with
//! full paths, value checks for the syntaxes Latch parses itself, resolving environment variable
//! names to key paths, and the final JSON Schema validation.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use super::duration::{parse_byte_size, parse_duration};

/// Slim copy of Kratos' configuration schema, produced by `gen-config-keys.py`.
const KEYS_JSON: &str = include_str!("kratos-config.keys.json");

/// How deep `$ref`/combinator chains are followed before giving up (the schema is acyclic,
/// this only guards against a future edit introducing a loop).
const MAX_DEPTH: usize = 24;

/// Highest array index an environment variable may address (`IDENTITY_SCHEMAS_99_URL`); keeps
/// a stray variable from allocating a huge array.
const MAX_ENV_INDEX: usize = 255;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// A key path such as `identity.schemas[0].url`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeyPath(pub(super) Vec<Seg>);

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl KeyPath {
    /// The path one level up (empty for top-level keys).
    pub(super) fn parent(&self) -> KeyPath {
        let mut segs = self.0.clone();
        segs.pop();
        KeyPath(segs)
    }

    fn child_key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        KeyPath(segs)
    }

    fn child_index(&self, index: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        KeyPath(segs)
    }

    fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

/// The parsed key schema plus its compiled validator, built once per process.
pub(super) struct Keys {
    root: Value,
    validator: jsonschema::Validator,
}

/// Keys Latch adds beyond Kratos' schema, documented in `docs/configuration.md`.
/// `serve.public.trusted_proxies`: addresses or CIDR ranges of reverse proxies whose
/// `X-Forwarded-For` / `X-Real-IP` / `True-Client-IP` headers are believed.
fn add_latch_keys(root: &mut Value) {
    if let Some(props) = root
        .pointer_mut("/properties/serve/properties/public/properties")
        .and_then(Value::as_object_mut)
    {
        props.insert(
            "trusted_proxies".into(),
            serde_json::json!({"type": "array", "items": {"type": "string"}, "default": []}),
        );
    }
    if let Some(props) = root.pointer_mut("/properties").and_then(Value::as_object_mut) {
        props.insert("latch".into(), super::latch::schema());
    }
}

static KEYS: OnceLock<Result<Keys, String>> = OnceLock::new();

/// Returns the shared key schema, parsing and compiling it on first use.
pub(super) fn keys() -> Result<&'static Keys, String> {
    KEYS.get_or_init(|| {
        let mut root: Value =
            serde_json::from_str(KEYS_JSON).map_err(|e| format!("embedded configuration schema is not JSON: {e}"))?;
        add_latch_keys(&mut root);
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(false)
            .build(&root)
            .map_err(|e| format!("embedded configuration schema does not compile: {e}"))?;
        Ok(Keys { root, validator })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Findings of [`Keys::check`], in document order.
#[derive(Debug, Default)]
pub(super) struct Findings {
    /// Paths of keys the schema does not know.
    pub(super) unknown: Vec<KeyPath>,
    /// Values Latch cannot parse (bad durations, relative URLs), with their path.
    pub(super) invalid: Vec<(KeyPath, String)>,
}

impl Keys {
    /// Follows `$ref` (only `#/definitions/...` pointers exist in the slim schema).
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..MAX_DEPTH {
            let Some(target) = node.get("$ref").and_then(Value::as_str) else {
                return node;
            };
            let Some(pointer) = target.strip_prefix('#') else {
                return node;
            };
            match self.root.pointer(pointer) {
                Some(next) => node = next,
                None => return node,
            }
        }
        node
    }

    /// The nodes that apply at one location: each node with its combinator branches, all
    /// resolved. Used for "does any branch know this key" questions. With an instance value,
    /// `anyOf`/`oneOf` branches whose `const`/`enum` properties contradict it are left out,
    /// so `{hook: session}` is checked against the session hook only.
    fn expand<'a>(&'a self, nodes: &[&'a Value], value: Option<&Value>) -> Vec<&'a Value> {
        let mut out = Vec::new();
        for node in nodes {
            self.expand_into(node, value, &mut out, 0);
        }
        out
    }

    fn expand_into<'a>(&'a self, node: &'a Value, value: Option<&Value>, out: &mut Vec<&'a Value>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let node = self.resolve(node);
        out.push(node);
        for keyword in ["allOf", "anyOf", "oneOf"] {
            if let Some(branches) = node.get(keyword).and_then(Value::as_array) {
                for branch in branches {
                    if keyword == "allOf" || self.compatible(branch, value) {
                        self.expand_into(branch, value, out, depth + 1);
                    }
                }
            }
        }
        for keyword in ["then", "else"] {
            if let Some(branch) = node.get(keyword) {
                self.expand_into(branch, value, out, depth + 1);
            }
        }
    }

    /// Whether a branch could match `value` as far as its `const`/`enum` properties tell.
    fn compatible(&self, branch: &Value, value: Option<&Value>) -> bool {
        let (Some(Value::Object(instance)), Some(Value::Object(props))) =
            (value, self.resolve(branch).get("properties"))
        else {
            return true;
        };
        props.iter().all(|(key, schema)| {
            let Some(actual) = instance.get(key) else {
                return true;
            };
            let schema = self.resolve(schema);
            let const_ok = schema.get("const").is_none_or(|c| c == actual);
            let enum_ok = schema
                .get("enum")
                .and_then(Value::as_array)
                .is_none_or(|options| options.contains(actual));
            const_ok && enum_ok
        })
    }

    /// Whether a node forbids keys it does not list: `additionalProperties: false` on the node
    /// or an `allOf` member, or on every (compatible) branch of its `anyOf`/`oneOf`.
    fn is_strict(&self, node: &Value, value: Option<&Value>, depth: usize) -> bool {
        let node = self.resolve(node);
        if depth > MAX_DEPTH {
            return false;
        }
        if node == &Value::Bool(false) || node.get("additionalProperties") == Some(&Value::Bool(false)) {
            return true;
        }
        if let Some(all) = node.get("allOf").and_then(Value::as_array)
            && all.iter().any(|b| self.is_strict(b, value, depth + 1))
        {
            return true;
        }
        ["anyOf", "oneOf"].iter().any(|kw| {
            let branches: Vec<&Value> = node
                .get(*kw)
                .and_then(Value::as_array)
                .map(|bs| bs.iter().filter(|b| self.compatible(b, value)).collect())
                .unwrap_or_default();
            !branches.is_empty() && branches.iter().all(|b| self.is_strict(b, value, depth + 1))
        })
    }

    /// Schemas that apply to `key` inside an object at this location.
    fn property_schemas<'a>(&'a self, flat: &[&'a Value], key: &str) -> Vec<&'a Value> {
        flat.iter()
            .filter_map(|n| n.get("properties").and_then(|p| p.get(key)))
            .collect()
    }

    fn item_schemas<'a>(&'a self, flat: &[&'a Value], index: usize) -> Vec<&'a Value> {
        flat.iter()
            .filter_map(|n| match n.get("items") {
                Some(Value::Array(tuple)) => tuple.get(index),
                Some(items @ Value::Object(_)) => Some(items),
                _ => None,
            })
            .collect()
    }

    /// Walks the merged document: reports unknown keys with their full path and values Latch
    /// parses itself but cannot understand.
    pub(super) fn check(&self, doc: &Value) -> Findings {
        let mut findings = Findings::default();
        self.walk(doc, &[&self.root], &KeyPath::default(), &mut findings, 0);
        findings
    }

    fn walk(&self, value: &Value, nodes: &[&Value], path: &KeyPath, out: &mut Findings, depth: usize) {
        if nodes.is_empty() || depth > 64 {
            return;
        }
        let flat = self.expand(nodes, Some(value));
        match value {
            Value::Object(map) => {
                let strict = nodes.iter().any(|n| self.is_strict(n, Some(value), 0));
                let patterned = flat.iter().any(|n| n.get("patternProperties").is_some());
                for (key, child) in map {
                    let child_path = path.child_key(key);
                    let mut schemas = self.property_schemas(&flat, key);
                    if schemas.is_empty() {
                        if strict && !patterned {
                            out.unknown.push(child_path);
                            continue;
                        }
                        schemas = flat
                            .iter()
                            .filter_map(|n| n.get("additionalProperties"))
                            .filter(|s| s.is_object())
                            .collect();
                    }
                    self.walk(child, &schemas, &child_path, out, depth + 1);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let schemas = self.item_schemas(&flat, i);
                    self.walk(item, &schemas, &path.child_index(i), out, depth + 1);
                }
            }
            Value::String(s) => check_string(s, &flat, path, out),
            _ => {}
        }
    }

    /// Resolves an environment variable name (`SELFSERVICE_FLOWS_LOGIN_UI_URL`) to the key path
    /// it sets and the schemas of that key, by matching key names level by level. Array
    /// elements are addressed by index (`IDENTITY_SCHEMAS_0_URL`).
    pub(super) fn env_key(&self, name: &str) -> Option<(KeyPath, Vec<&Value>)> {
        let mut path = KeyPath::default();
        let leaf = self.match_env(&[&self.root], name, &mut path, 0)?;
        Some((path, leaf))
    }

    fn match_env<'a>(
        &'a self,
        nodes: &[&'a Value],
        rest: &str,
        path: &mut KeyPath,
        depth: usize,
    ) -> Option<Vec<&'a Value>> {
        if depth > MAX_DEPTH || rest.is_empty() {
            return None;
        }
        let flat = self.expand(nodes, None);
        let mut by_env: BTreeMap<String, &str> = BTreeMap::new();
        for node in &flat {
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                for key in props.keys() {
                    by_env.insert(env_form(key), key);
                }
            }
        }
        if let Some(key) = by_env.get(rest) {
            path.0.push(Seg::Key((*key).to_owned()));
            return Some(self.property_schemas(&flat, key));
        }
        // Longer key names first so `A_B` wins over `A` followed by `B`.
        let mut candidates: Vec<(&String, &&str)> = by_env
            .iter()
            .filter(|(env, _)| rest.len() > env.len() + 1 && rest.starts_with(env.as_str()))
            .filter(|(env, _)| rest.as_bytes().get(env.len()) == Some(&b'_'))
            .collect();
        candidates.sort_by_key(|(env, _)| std::cmp::Reverse(env.len()));
        for (env, key) in candidates {
            path.0.push(Seg::Key((*key).to_owned()));
            let schemas = self.property_schemas(&flat, key);
            if let Some(leaf) = self.match_env(&schemas, &rest[env.len() + 1..], path, depth + 1) {
                return Some(leaf);
            }
            path.0.pop();
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && flat.iter().any(|n| n.get("items").is_some()) {
            let index: usize = rest[..digits].parse().ok()?;
            if index > MAX_ENV_INDEX {
                return None;
            }
            let items = self.item_schemas(&flat, index);
            path.0.push(Seg::Index(index));
            if digits == rest.len() {
                return Some(items);
            }
            if rest.as_bytes().get(digits) == Some(&b'_')
                && let Some(leaf) = self.match_env(&items, &rest[digits + 1..], path, depth + 1)
            {
                return Some(leaf);
            }
            path.0.pop();
        }
        None
    }

    /// The JSON types (`"string"`, `"integer"`, …) the given schemas allow, in schema order.
    pub(super) fn types_of(&self, nodes: &[&Value]) -> Vec<String> {
        let mut types: Vec<String> = Vec::new();
        for node in self.expand(nodes, None) {
            let found: Vec<&str> = match node.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for t in found {
                if !types.iter().any(|have| have == t) {
                    types.push(t.to_owned());
                }
            }
        }
        types
    }

    /// The schemas of array items at this location (for splitting list-valued env vars).
    pub(super) fn items_of<'a>(&'a self, nodes: &[&'a Value]) -> Vec<&'a Value> {
        self.item_schemas(&self.expand(nodes, None), 0)
    }

    /// Validates the document against the full schema; every error names the key path.
    pub(super) fn validate(&self, doc: &Value) -> Vec<SchemaError> {
        self.validator
            .iter_errors(doc)
            .map(|error| {
                let path = KeyPath(
                    error
                        .instance_path()
                        .iter()
                        .map(|seg| match seg {
                            jsonschema::paths::LocationSegment::Property(p) => Seg::Key(p.into_owned()),
                            jsonschema::paths::LocationSegment::Index(i) => Seg::Index(i),
                        })
                        .collect(),
                );
                let kind = match error.kind() {
                    jsonschema::error::ValidationErrorKind::Required { property } => {
                        SchemaErrorKind::Required(property.as_str().unwrap_or_default().to_owned())
                    }
                    jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                        SchemaErrorKind::Unexpected(unexpected.clone())
                    }
                    _ if is_sensitive(&path) => SchemaErrorKind::Other(error.masked().to_string()),
                    _ => SchemaErrorKind::Other(error.to_string()),
                };
                SchemaError { path, kind }
            })
            .collect()
    }
}

/// One JSON Schema violation, reduced to what Latch reports.
pub(super) struct SchemaError {
    pub(super) path: KeyPath,
    pub(super) kind: SchemaErrorKind,
}

/// The violation kinds Latch words specially.
pub(super) enum SchemaErrorKind {
    Required(String),
    Unexpected(Vec<String>),
    Other(String),
}

/// Whether values at this path must not be echoed in error messages.
fn is_sensitive(path: &KeyPath) -> bool {
    let text = path.to_string();
    ["secret", "dsn", "password", "connection_uri", "token", "key", "auth"]
        .iter()
        .any(|word| text.contains(word))
}

/// Kratos' environment form of one key: upper case, separators as underscores.
fn env_form(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Checks strings Latch parses itself (durations, byte sizes, absolute URLs) so the error can
/// name the key instead of surfacing later as an anonymous serde error.
fn check_string(s: &str, flat: &[&Value], path: &KeyPath, out: &mut Findings) {
    let patterns: Vec<&str> = flat
        .iter()
        .filter_map(|n| n.get("pattern").and_then(Value::as_str))
        .collect();
    if patterns.iter().any(|p| p.contains("(ns|us|ms|s|m|h)"))
        && let Err(e) = parse_duration(s)
    {
        out.invalid
            .push((path.clone(), format!("invalid value for \"{path}\": {e}")));
    }
    if patterns.iter().any(|p| p.contains("(B|KB|MB"))
        && let Err(e) = parse_byte_size(s)
    {
        out.invalid
            .push((path.clone(), format!("invalid value for \"{path}\": {e}")));
    }
    if is_url_key(path)
        && !s.trim().is_empty()
        && let Err(e) = url::Url::parse(s.trim())
    {
        out.invalid.push((
            path.clone(),
            format!("invalid value for \"{path}\": {s:?} is not an absolute URL ({e})"),
        ));
    }
}

/// Keys Latch types as absolute URLs.
fn is_url_key(path: &KeyPath) -> bool {
    let text = path.to_string();
    text == "serve.public.base_url"
        || text == "serve.admin.base_url"
        || (text.starts_with("selfservice.")
            && matches!(path.last_key(), Some("ui_url" | "default_browser_return_url")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(name: &str) -> Option<String> {
        keys().unwrap().env_key(name).map(|(path, _)| path.to_string())
    }

    #[test]
    fn env_names_resolve_through_underscored_keys() {
        let cases = [
            ("DSN", "dsn"),
            ("SELFSERVICE_FLOWS_LOGIN_UI_URL", "selfservice.flows.login.ui_url"),
            (
                "SELFSERVICE_FLOWS_LOGIN_AFTER_DEFAULT_BROWSER_RETURN_URL",
                "selfservice.flows.login.after.default_browser_return_url",
            ),
            (
                "SELFSERVICE_FLOWS_REGISTRATION_AFTER_PASSWORD_HOOKS",
                "selfservice.flows.registration.after.password.hooks",
            ),
            (
                "SELFSERVICE_FLOWS_REGISTRATION_AFTER_PASSWORD_HOOKS_0_HOOK",
                "selfservice.flows.registration.after.password.hooks[0].hook",
            ),
            (
                "SELFSERVICE_METHODS_CODE_PASSWORDLESS_ENABLED",
                "selfservice.methods.code.passwordless_enabled",
            ),
            (
                "SELFSERVICE_METHODS_WEBAUTHN_CONFIG_RP_ORIGINS",
                "selfservice.methods.webauthn.config.rp.origins",
            ),
            ("SESSION_WHOAMI_REQUIRED_AAL", "session.whoami.required_aal"),
            ("HASHERS_ARGON2_MEMORY", "hashers.argon2.memory"),
            ("SQA_OPT_OUT", "sqa-opt-out"),
            ("IDENTITY_SCHEMAS_12_URL", "identity.schemas[12].url"),
        ];
        for (name, path) in cases {
            assert_eq!(path_of(name).as_deref(), Some(path), "{name}");
        }
        for unrelated in ["PATH", "HOME", "SERVE_PUBLIC_PORTS", "SELFSERVICE_FLOWS_LOGIN_", "_DSN"] {
            assert_eq!(path_of(unrelated), None, "{unrelated}");
        }
    }

    #[test]
    fn env_leaf_types_come_from_the_schema() {
        let k = keys().unwrap();
        let (_, port) = k.env_key("SERVE_PUBLIC_PORT").unwrap();
        assert_eq!(k.types_of(&port), ["integer"]);
        let (_, schemas) = k.env_key("IDENTITY_SCHEMAS").unwrap();
        assert_eq!(k.types_of(&schemas), ["array"]);
    }
}
