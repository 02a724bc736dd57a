//! The set of configured identity schemas, compiled once at startup.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use super::errors::{SchemaError, TraitError, UiText};
use super::extension::{self, EXTENSION_KEY, ExtensionConfig, Extracted};
use super::{source, validate};

/// Formats a trait with `verification` may declare (the upstream meta rule).
const VERIFICATION_FORMATS: [&str; 6] = ["email", "tel", "date", "time", "date-time", "no-validate"];

/// One compiled identity schema; identities reference it by `id`.
#[derive(Debug, Clone)]
pub struct IdentitySchema {
    /// Id from `identity.schemas[].id`.
    pub id: String,
    /// URL exactly as configured (served as `url` by `GET /schemas`).
    pub url: String,
    /// The schema document, served verbatim by `GET /schemas/{id}`.
    pub raw: Value,
    /// Trait paths in document order (`traits.email`, …), for sorting registration forms.
    pub property_order: Vec<String>,
    validator: jsonschema::Validator,
}

impl IdentitySchema {
    /// Checks the identity meta rules and compiles `raw`; exists separately
    /// from [`SchemaRegistry::load`] for callers that already hold the JSON.
    pub fn compile(id: impl Into<String>, url: impl Into<String>, raw: Value) -> Result<Self, SchemaError> {
        let id = id.into();
        check_meta(&raw).map_err(|reason| SchemaError::Meta { id: id.clone(), reason })?;
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .with_format("tel", |s: &str| extension::normalize_phone(s).is_some())
            .with_format("no-validate", |_: &str| true)
            .build(&raw)
            .map_err(|e| SchemaError::Compile {
                id: id.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            id,
            url: url.into(),
            raw,
            property_order: Vec::new(),
            validator,
        })
    }

    /// Validates `traits` (as `{"traits": traits}` against the whole schema)
    /// and applies the `ory.sh/kratos` extension. On failure every problem is
    /// returned, each pointing at the offending field.
    pub fn validate_traits(&self, traits: &Value) -> Result<Extracted, Vec<TraitError>> {
        if !traits.is_object() {
            return Err(vec![TraitError::new(
                "#/traits",
                UiText::wrong_type(&["object"], validate::type_name(traits)),
            )]);
        }
        let document = json!({ "traits": traits });
        let mut errors = validate::collect(&self.validator, &document);
        let (extracted, extension_errors) = extension::extract(&self.raw, &document);
        for error in extension_errors {
            if !errors.iter().any(|e| e.instance_ptr == error.instance_ptr) {
                errors.push(error);
            }
        }
        if errors.is_empty() { Ok(extracted) } else { Err(errors) }
    }
}

/// All configured identity schemas in configuration order plus the default id.
#[derive(Debug, Clone, Default)]
pub struct SchemaRegistry {
    schemas: Vec<IdentitySchema>,
    default_id: String,
}

impl SchemaRegistry {
    /// Fetches, parses, checks and compiles every `(id, url)` entry. The
    /// default id must name one of them unless the list is empty.
    pub async fn load(entries: &[(String, String)], default_id: &str) -> Result<SchemaRegistry, SchemaError> {
        let mut schemas: Vec<IdentitySchema> = Vec::with_capacity(entries.len());
        for (id, url) in entries {
            if schemas.iter().any(|s| &s.id == id) {
                return Err(SchemaError::DuplicateId { id: id.clone() });
            }
            let bytes = source::fetch(id, url).await?;
            let raw: Value = serde_json::from_slice(&bytes).map_err(|e| SchemaError::InvalidJson {
                id: id.clone(),
                reason: e.to_string(),
            })?;
            let mut schema = IdentitySchema::compile(id.clone(), url.clone(), raw)?;
            schema.property_order = crate::ui::traits::property_order(&String::from_utf8_lossy(&bytes));
            schemas.push(schema);
            tracing::info!(schema_id = %id, "identity schema loaded");
        }
        Self::from_schemas(schemas, default_id)
    }

    /// Builds a registry from already compiled schemas (same default-id rule as [`Self::load`]).
    pub fn from_schemas(schemas: Vec<IdentitySchema>, default_id: &str) -> Result<SchemaRegistry, SchemaError> {
        if !schemas.is_empty() && !schemas.iter().any(|s| s.id == default_id) {
            return Err(SchemaError::DefaultMissing {
                id: default_id.to_owned(),
            });
        }
        Ok(Self {
            schemas,
            default_id: default_id.to_owned(),
        })
    }

    /// Looks a schema up by raw id, falling back to the base64url form used in
    /// `schema_url`; an empty id means the default schema.
    pub fn get(&self, id: &str) -> Option<&IdentitySchema> {
        if id.is_empty() {
            return self.default_schema();
        }
        self.find(id).or_else(|| {
            URL_SAFE_NO_PAD
                .decode(id)
                .or_else(|_| URL_SAFE.decode(id))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|decoded| self.find(&decoded))
        })
    }

    fn find(&self, id: &str) -> Option<&IdentitySchema> {
        self.schemas.iter().find(|s| s.id == id)
    }

    /// The schema new identities get when none is requested.
    pub fn default_schema(&self) -> Option<&IdentitySchema> {
        self.find(&self.default_id)
    }

    /// The configured `identity.default_schema_id`.
    pub fn default_id(&self) -> &str {
        &self.default_id
    }

    /// Schemas in configuration order (for `GET /schemas`).
    pub fn iter(&self) -> impl Iterator<Item = &IdentitySchema> {
        self.schemas.iter()
    }

    /// Number of configured schemas.
    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    /// Whether no schema is configured (the caller decides whether that is fatal).
    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }
}

/// Encodes a schema id for use in `schema_url` (base64url, no padding).
pub fn encode_schema_id(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Turns a path segment back into a schema id: the base64url-decoded text if
/// it decodes to UTF-8, otherwise the input unchanged. Prefer
/// [`SchemaRegistry::get`], which tries the raw id first.
pub fn decode_schema_id(s: &str) -> String {
    URL_SAFE_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|decoded| !decoded.chars().any(char::is_control))
        .unwrap_or_else(|| s.to_owned())
}

/// Enforces the identity meta rules: root object, `properties.traits` an
/// object schema with at least one property, valid extension objects and
/// allowed formats for traits with verification.
fn check_meta(raw: &Value) -> Result<(), String> {
    let root = raw.as_object().ok_or("the schema root must be a JSON object")?;
    let properties = root
        .get("properties")
        .ok_or("the schema has no `properties` (expected `properties.traits`)")?
        .as_object()
        .ok_or("`properties` must be an object")?;
    let traits = properties
        .get("traits")
        .ok_or("the schema does not define `properties.traits`")?
        .as_object()
        .ok_or("`properties.traits` must be an object schema")?;
    if let Some(ty) = traits.get("type")
        && ty != "object"
    {
        return Err(format!("`properties.traits.type` must be \"object\", found {ty}"));
    }
    let trait_props = traits
        .get("properties")
        .ok_or("`properties.traits` has no `properties`")?
        .as_object()
        .ok_or("`properties.traits.properties` must be an object")?;
    if trait_props.is_empty() {
        return Err("`properties.traits.properties` must define at least one trait".to_owned());
    }
    for (name, sub) in trait_props {
        let sub = sub
            .as_object()
            .ok_or_else(|| format!("trait `{name}` must be an object schema"))?;
        check_verification_format(name, sub)?;
    }
    check_extensions(raw, &mut String::new())
}

fn check_verification_format(name: &str, sub: &Map<String, Value>) -> Result<(), String> {
    let Some(ext) = sub.get(EXTENSION_KEY) else {
        return Ok(());
    };
    let config =
        ExtensionConfig::parse(ext).map_err(|e| format!("trait `{name}`: invalid `{EXTENSION_KEY}` extension: {e}"))?;
    if !config.has_verification() {
        return Ok(());
    }
    match sub.get("format") {
        None => Ok(()),
        Some(Value::String(f)) if VERIFICATION_FORMATS.contains(&f.as_str()) => Ok(()),
        Some(other) => Err(format!(
            "trait `{name}` uses verification, so `format` must be one of {}, found {other}",
            VERIFICATION_FORMATS.join(", ")
        )),
    }
}

/// Every `ory.sh/kratos` object anywhere in the document must be well-formed.
fn check_extensions(value: &Value, at: &mut String) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let len = at.len();
                at.push('/');
                at.push_str(&extension::escape_segment(key));
                if key == EXTENSION_KEY {
                    ExtensionConfig::parse(child)
                        .map_err(|e| format!("invalid `{EXTENSION_KEY}` extension at #{at}: {e}"))?;
                } else {
                    check_extensions(child, at)?;
                }
                at.truncate(len);
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                check_extensions(child, at)?;
                at.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
