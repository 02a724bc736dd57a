//! The `ory.sh/kratos` identity-schema extension: which trait values are login
//! identifiers, which are verifiable / recovery / code addresses, and which
//! name a passkey or TOTP account.
//!
//! The schema is walked together with the submitted document so that only
//! trait values that are actually present contribute, including values
//! inside arrays and behind local `$ref`s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::{TraitError, UiText};

/// Key under which the extension lives in a trait's schema.
pub const EXTENSION_KEY: &str = "ory.sh/kratos";

/// How deep the schema walk may nest (guards against `$ref` cycles).
const MAX_DEPTH: usize = 64;

/// A contact address derived from traits; `via` says which channel reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address {
    /// `"email"` or `"sms"`.
    pub via: String,
    /// Normalised address (lower-cased email or E.164 phone number).
    pub value: String,
}

/// The credential types whose identifiers the `ory.sh/kratos` extension takes from traits
/// (`credentials.password.identifier`, `credentials.webauthn.identifier`,
/// `credentials.code.identifier`): a property of the extension format, not of Latch's methods.
pub const IDENTIFIER_TYPES: &[&str] = &["password", "webauthn", "code"];

/// Everything the extension derives from one identity's traits; the caller
/// turns it into credentials and verifiable/recovery addresses.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extracted {
    /// Credential type (`password`, `code`, `webauthn`) → normalised identifiers, de-duplicated.
    pub identifiers: BTreeMap<String, Vec<String>>,
    /// Addresses a one-time code can be sent to (`credentials.code`), sorted by value then via.
    pub code_addresses: Vec<Address>,
    /// Addresses that take part in verification (`verification.via`).
    pub verifiable_addresses: Vec<Address>,
    /// Addresses usable for account recovery (`recovery.via`).
    pub recovery_addresses: Vec<Address>,
    /// Value of the first trait marked `passkey.display_name`.
    pub passkey_display_name: Option<String>,
    /// Value of the first trait marked `totp.account_name`.
    pub totp_account_name: Option<String>,
}

impl Extracted {
    /// Identifiers of one credential type (empty if none); saves callers a map lookup dance.
    pub fn identifiers_for(&self, credential_type: &str) -> &[String] {
        self.identifiers.get(credential_type).map_or(&[], Vec::as_slice)
    }

    fn add_identifier(&mut self, credential_type: &str, value: String) {
        let list = self.identifiers.entry(credential_type.to_owned()).or_default();
        if !list.contains(&value) {
            list.push(value);
        }
    }
}

fn push_unique(list: &mut Vec<Address>, address: Address) {
    if !list.contains(&address) {
        list.push(address);
    }
}

/// Delivery channel named by `via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Channel {
    Email,
    Sms,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// Parsed `"ory.sh/kratos"` object. Unknown keys are rejected at load time,
/// mirroring the strictness of the upstream extension meta-schema.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExtensionConfig {
    #[serde(default)]
    credentials: CredentialsConfig,
    #[serde(default)]
    verification: Option<ViaConfig>,
    #[serde(default)]
    recovery: Option<ViaConfig>,
    #[serde(default)]
    #[allow(dead_code)]
    organizations: Option<OrganizationsConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsConfig {
    #[serde(default)]
    password: Option<IdentifierFlag>,
    #[serde(default)]
    webauthn: Option<IdentifierFlag>,
    #[serde(default)]
    passkey: Option<PasskeyConfig>,
    #[serde(default)]
    totp: Option<TotpConfig>,
    #[serde(default)]
    code: Option<CodeConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifierFlag {
    #[serde(default)]
    identifier: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasskeyConfig {
    #[serde(default)]
    display_name: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpConfig {
    #[serde(default)]
    account_name: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeConfig {
    #[serde(default)]
    identifier: bool,
    #[serde(default)]
    via: Option<Channel>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViaConfig {
    #[serde(default)]
    via: Option<Channel>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganizationsConfig {
    #[serde(default)]
    #[allow(dead_code)]
    matcher: Option<OrganizationMatcher>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OrganizationMatcher {
    EmailDomain,
}

impl ExtensionConfig {
    /// Parses one extension object; the error text explains what is wrong.
    pub(super) fn parse(value: &Value) -> Result<Self, String> {
        Self::deserialize(value).map_err(|e| e.to_string())
    }

    /// Whether the trait takes part in verification (used by the meta rules).
    pub(super) fn has_verification(&self) -> bool {
        self.verification.is_some()
    }
}

/// Normalises a login identifier: trimmed and lower-cased.
pub fn normalize_identifier(value: &str) -> String {
    value.trim().to_lowercase()
}

/// Normalises an email address: trimmed and lower-cased; `Err` if it does not
/// look like `local@domain` (`None` then).
pub fn normalize_email(value: &str) -> Option<String> {
    let v = value.trim().to_lowercase();
    looks_like_email(&v).then_some(v)
}

fn looks_like_email(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control();
    !local.is_empty()
        && local.len() <= 64
        && v.len() <= 254
        && !domain.is_empty()
        && !v.chars().any(bad_char)
        && !domain.contains('@')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
}

/// Normalises a phone number to E.164-ish form: spaces, dashes, dots and
/// parentheses are dropped; the rest must be `+` followed by 8–15 digits
/// (`None` otherwise).
pub fn normalize_phone(value: &str) -> Option<String> {
    let compact: String = value
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '\u{a0}'))
        .collect();
    let digits = compact.strip_prefix('+')?;
    let ok = (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
    ok.then_some(compact)
}

/// Walks `schema` alongside `document` and applies every extension object
/// found on a present value. Returns what was extracted plus per-field
/// errors for addresses that cannot be normalised.
pub(super) fn extract(schema: &Value, document: &Value) -> (Extracted, Vec<TraitError>) {
    let mut walker = Walker {
        root: schema,
        root_id: schema.get("$id").and_then(Value::as_str),
        out: Extracted::default(),
        errors: Vec::new(),
    };
    walker.walk(schema, document, "#", 0);
    let mut out = walker.out;
    out.code_addresses
        .sort_by(|a, b| a.value.cmp(&b.value).then_with(|| a.via.cmp(&b.via)));
    if !out.code_addresses.is_empty() {
        let mut values: Vec<String> = Vec::new();
        for address in &out.code_addresses {
            if !values.contains(&address.value) {
                values.push(address.value.clone());
            }
        }
        out.identifiers.insert("code".to_owned(), values);
    }
    (out, walker.errors)
}

struct Walker<'a> {
    root: &'a Value,
    root_id: Option<&'a str>,
    out: Extracted,
    errors: Vec<TraitError>,
}

/// Escapes one JSON-pointer segment (`~` → `~0`, `/` → `~1`).
pub(super) fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

impl<'a> Walker<'a> {
    fn walk(&mut self, schema: &'a Value, value: &Value, ptr: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(obj) = schema.as_object() else {
            return;
        };

        if let Some(ext) = obj.get(EXTENSION_KEY)
            && let Ok(config) = ExtensionConfig::parse(ext)
        {
            let format = obj.get("format").and_then(Value::as_str);
            self.apply(&config, format, value, ptr);
        }

        if let Some(target) = obj.get("$ref").and_then(Value::as_str).and_then(|r| self.resolve(r)) {
            self.walk(target, value, ptr, depth + 1);
        }

        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(branches) = obj.get(key).and_then(Value::as_array) {
                for branch in branches {
                    self.walk(branch, value, ptr, depth + 1);
                }
            }
        }

        match value {
            Value::Object(map) => {
                let props = obj.get("properties").and_then(Value::as_object);
                if let Some(props) = props {
                    for (name, sub) in props {
                        if let Some(v) = map.get(name) {
                            let child = format!("{ptr}/{}", escape_segment(name));
                            self.walk(sub, v, &child, depth + 1);
                        }
                    }
                }
                if let Some(extra) = obj.get("additionalProperties").filter(|s| s.is_object()) {
                    for (name, v) in map {
                        if props.is_some_and(|p| p.contains_key(name)) {
                            continue;
                        }
                        let child = format!("{ptr}/{}", escape_segment(name));
                        self.walk(extra, v, &child, depth + 1);
                    }
                }
            }
            Value::Array(items) => {
                let prefix = obj.get("prefixItems").and_then(Value::as_array);
                let positional = prefix.or_else(|| obj.get("items").and_then(Value::as_array));
                let rest = obj.get("items").filter(|s| s.is_object());
                for (i, item) in items.iter().enumerate() {
                    let child = format!("{ptr}/{i}");
                    if let Some(sub) = positional.and_then(|p| p.get(i)) {
                        self.walk(sub, item, &child, depth + 1);
                    } else if let Some(sub) = rest {
                        self.walk(sub, item, &child, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }

    /// Resolves a document-local `$ref` (`#/definitions/x`, or the root `$id` plus a fragment).
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let fragment = match reference.split_once('#') {
            Some(("", frag)) => frag,
            Some((base, frag)) if Some(base) == self.root_id.map(|id| id.trim_end_matches('#')) => frag,
            _ => return None,
        };
        if fragment.is_empty() {
            return Some(self.root);
        }
        let decoded = percent_decode(fragment);
        self.root.pointer(&decoded)
    }

    fn error(&mut self, ptr: &str, message: UiText) {
        if !self.errors.iter().any(|e| e.instance_ptr == ptr) {
            self.errors.push(TraitError::new(ptr, message));
        }
    }

    /// Normalises `raw` for `channel`, recording an error on failure.
    /// `strict_email` is false when the schema opts out of the email format check.
    fn address(&mut self, channel: Channel, raw: &str, strict_email: bool, ptr: &str) -> Option<Address> {
        let value = match channel {
            Channel::Email if strict_email => match normalize_email(raw) {
                Some(v) => v,
                None => {
                    self.error(ptr, UiText::invalid_email(raw));
                    return None;
                }
            },
            Channel::Email => normalize_identifier(raw),
            Channel::Sms => match normalize_phone(raw) {
                Some(v) => v,
                None => {
                    self.error(ptr, UiText::invalid_phone(raw));
                    return None;
                }
            },
        };
        Some(Address {
            via: channel.as_str().to_owned(),
            value,
        })
    }

    fn apply(&mut self, config: &ExtensionConfig, format: Option<&str>, value: &Value, ptr: &str) {
        let raw = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        let strict_email = matches!(format, None | Some("email"));
        let creds = &config.credentials;

        for (ty, flag) in [
            (IDENTIFIER_TYPES[0], &creds.password),
            (IDENTIFIER_TYPES[1], &creds.webauthn),
        ] {
            if flag.as_ref().is_some_and(|f| f.identifier) {
                self.out.add_identifier(ty, normalize_identifier(&raw));
            }
        }

        if let Some(code) = creds.code.as_ref().filter(|c| c.identifier) {
            let channel = code.via.unwrap_or(Channel::Email);
            if let Some(address) = self.address(channel, &raw, strict_email, ptr) {
                push_unique(&mut self.out.code_addresses, address);
            }
        }

        if creds.passkey.as_ref().is_some_and(|p| p.display_name) && self.out.passkey_display_name.is_none() {
            self.out.passkey_display_name = Some(raw.clone());
        }
        if creds.totp.as_ref().is_some_and(|t| t.account_name) && self.out.totp_account_name.is_none() {
            self.out.totp_account_name = Some(raw.clone());
        }

        if let Some(channel) = config.verification.as_ref().and_then(|v| v.via)
            && let Some(address) = self.address(channel, &raw, strict_email, ptr)
        {
            push_unique(&mut self.out.verifiable_addresses, address);
        }
        if let Some(channel) = config.recovery.as_ref().and_then(|v| v.via)
            && let Some(address) = self.address(channel, &raw, strict_email, ptr)
        {
            push_unique(&mut self.out.recovery_addresses, address);
        }
    }
}

/// Decodes `%XX` escapes in a `$ref` fragment; invalid escapes are kept verbatim.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}
