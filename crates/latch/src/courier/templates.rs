//! Mail templates: built-in wording, overridable per template type from configuration.
//!
//! Sources, first match wins for each part (subject, plain-text body, HTML body):
//! 1. `courier.templates.<login_code|registration_code|verification_code|recovery_code>.valid.email`,
//!    `courier.templates.<recovery|verification>.<valid|invalid>.email` (the `link` method)
//!    and `courier.templates.verifiable_address_changed.email`
//!    `.subject` / `.body.plaintext` / `.body.html`: a `file://` or `base64://` URI;
//! 2. `courier.template_override_path`: `<dir>/<type>/<valid|invalid>/email.subject.gotmpl`
//!    (`<dir>/verifiable_address_changed/email.subject.gotmpl`),
//!    `email.body.plaintext.gotmpl` and `email.body.gotmpl` (the HTML body), as Kratos lays them out;
//! 3. Latch's built-in templates (`builtin.rs`).
//!
//! Templates are minijinja. Kratos' Go templates work when they use the common subset:
//! field references `{{ .Name }}` / `{{ .Identity.traits.email }}` (with `{{-`/`-}}` trimming),
//! `{{ if .X }}`, `{{ if not .X }}`, `{{ else if .X }}`, `{{ else }}`, `{{ end }}` and
//! `{{/* comments */}}`; they are translated to minijinja before rendering. Each data key is
//! available as written (`code`, `login_code`, `to`, `expires_in_minutes`, …) and in Kratos'
//! Go spelling (`Code`, `LoginCode`, `To`, `ExpiresInMinutes`, `VerificationURL`, …).
//! Kratos: `courier/template`.

use std::path::PathBuf;

use base64::Engine as _;
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value, json};

use super::builtin::{builtin, expand};
use super::message::TemplateType;
use crate::config::Config;

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, no line breaks.
    pub subject: String,
    /// Plain-text body (stored as the message `body`).
    pub body: String,
    /// HTML alternative.
    pub body_html: String,
}

/// Why a template could not be loaded or rendered. Messages never contain template data.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The override could not be read.
    #[error("courier template {kind} {part} from {location}: {reason}")]
    Load {
        /// Template type.
        kind: &'static str,
        /// `subject`, `body.plaintext` or `body.html`.
        part: &'static str,
        /// Where it was loaded from.
        location: String,
        /// What failed.
        reason: String,
    },
    /// The template has a syntax error or failed to render.
    #[error("courier template {kind} {part} from {location} does not render: {reason}")]
    Render {
        /// Template type.
        kind: &'static str,
        /// `subject`, `body.plaintext` or `body.html`.
        part: &'static str,
        /// Where it was loaded from.
        location: String,
        /// What failed.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy)]
enum Part {
    Subject,
    Plaintext,
    Html,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Plaintext => "body.plaintext",
            Part::Html => "body.html",
        }
    }

    fn pointer(self) -> &'static str {
        match self {
            Part::Subject => "/subject",
            Part::Plaintext => "/body/plaintext",
            Part::Html => "/body/html",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Part::Subject => "email.subject.gotmpl",
            Part::Plaintext => "email.body.plaintext.gotmpl",
            Part::Html => "email.body.gotmpl",
        }
    }

    /// The name given to minijinja; `.html` turns on HTML escaping.
    fn template_name(self) -> &'static str {
        match self {
            Part::Subject => "subject.txt",
            Part::Plaintext => "body.txt",
            Part::Html => "body.html",
        }
    }
}

/// Renders the subject and both bodies of `kind` for `data` (an object: `code`, `to`,
/// `expires_in_minutes`, `identity`/`traits`, `verification_url`/`recovery_url`, …).
/// Called before enqueueing, so the outbox stores the final text.
pub fn render(config: &Config, kind: TemplateType, data: &Value) -> Result<Rendered, TemplateError> {
    let ctx = context(kind, data);
    let subject = render_part(config, kind, Part::Subject, &ctx)?;
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Rendered {
        subject,
        body: render_part(config, kind, Part::Plaintext, &ctx)?,
        body_html: render_part(config, kind, Part::Html, &ctx)?,
    })
}

/// Loads and renders every template with sample data, so that a broken override fails at
/// startup rather than when the first mail is due.
pub fn check(config: &Config) -> Result<(), TemplateError> {
    let sample = json!({
        "code": "123456",
        "to": "someone@example.com",
        "expires_in_minutes": 10,
        "identity": {"id": "00000000-0000-0000-0000-000000000000", "traits": {"email": "someone@example.com"}},
        "verification_url": "https://example.com/verify",
        "recovery_url": "https://example.com/recover",
        "request_url": "https://example.com/",
    });
    for kind in TemplateType::ALL {
        render(config, kind, &sample)?;
    }
    Ok(())
}

fn render_part(config: &Config, kind: TemplateType, part: Part, ctx: &Value) -> Result<String, TemplateError> {
    let (source, location) = source(config, kind, part)?;
    let fail = |reason: String| TemplateError::Render {
        kind: kind.as_str(),
        part: part.name(),
        location: location.clone(),
        reason,
    };
    let source = translate_go(&source).map_err(fail)?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    let syntax = SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    env.set_syntax(syntax);
    env.render_named_str(part.template_name(), &source, to_template_value(ctx))
        .map_err(|e| fail(e.to_string()))
}

/// serde_json → minijinja (minijinja's own serde support is an optional feature).
fn to_template_value(v: &Value) -> minijinja::Value {
    use minijinja::Value as T;
    match v {
        Value::Null => T::from(()),
        Value::Bool(b) => T::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => T::from(i),
            (_, Some(u), _) => T::from(u),
            (_, _, f) => T::from(f.unwrap_or_default()),
        },
        Value::String(s) => T::from(s.as_str()),
        Value::Array(a) => T::from(a.iter().map(to_template_value).collect::<Vec<_>>()),
        Value::Object(o) => T::from_pairs(o.iter().map(|(k, v)| (k.as_str(), to_template_value(v)))),
    }
}

/// The template text for one part and a description of where it came from.
fn source(config: &Config, kind: TemplateType, part: Part) -> Result<(String, String), TemplateError> {
    let fail = |location: &str, reason: String| TemplateError::Load {
        kind: kind.as_str(),
        part: part.name(),
        location: location.to_string(),
        reason,
    };
    let pointer = match kind.state() {
        "" => format!("/{}/email{}", kind.config_key(), part.pointer()),
        state => format!("/{}/{state}/email{}", kind.config_key(), part.pointer()),
    };
    if let Some(uri) = config.courier.templates.pointer(&pointer).and_then(Value::as_str) {
        let location = format!("courier.templates{} ({})", pointer.replace('/', "."), short(uri));
        let text = load_uri(uri).map_err(|e| fail(&location, e))?;
        return Ok((text, location));
    }
    if let Some(dir) = config
        .courier
        .template_override_path
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        let path = PathBuf::from(dir)
            .join(kind.config_key())
            .join(kind.state())
            .join(part.file_name());
        if path.is_file() {
            let location = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| fail(&location, e.to_string()))?;
            return Ok((text, location));
        }
    }
    let b = builtin(kind);
    let text = match part {
        Part::Subject => b.subject.to_string(),
        Part::Plaintext => expand(b.plaintext),
        Part::Html => expand(b.html),
    };
    Ok((text, "the built-in template".to_string()))
}

fn short(uri: &str) -> String {
    if uri.len() > 60 {
        format!("{}…", uri.chars().take(60).collect::<String>())
    } else {
        uri.to_string()
    }
}

/// Reads a `file://` or `base64://` template URI.
fn load_uri(uri: &str) -> Result<String, String> {
    let lower = uri.to_ascii_lowercase();
    if let Some(rest) = uri.get("file://".len()..).filter(|_| lower.starts_with("file://")) {
        let path = if rest.starts_with('/') {
            url::Url::parse(uri)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .unwrap_or_else(|| PathBuf::from(rest))
        } else {
            PathBuf::from(rest)
        };
        return std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()));
    }
    if let Some(rest) = uri.get("base64://".len()..).filter(|_| lower.starts_with("base64://")) {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(rest.trim()).ok())
            .ok_or_else(|| "invalid base64 payload".to_string())?;
        return String::from_utf8(bytes).map_err(|_| "the template is not UTF-8".to_string());
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err("http(s) template URLs are not supported by Latch: use file:// or base64://".into());
    }
    Err("unsupported template URL: use file:// or base64://".into())
}

/// The template context: the data plus Kratos' names for the same values.
fn context(kind: TemplateType, data: &Value) -> Value {
    let mut m: Map<String, Value> = data.as_object().cloned().unwrap_or_default();
    alias(&mut m, "code", kind.code_field());
    alias(&mut m, "to", "recipient");
    if !m.contains_key("traits")
        && let Some(t) = m.get("identity").and_then(|i| i.get("traits")).cloned()
    {
        m.insert("traits".into(), t);
    }
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        let go = go_name(&k);
        if !m.contains_key(&go)
            && let Some(v) = m.get(&k).cloned()
        {
            m.insert(go, v);
        }
    }
    Value::Object(m)
}

fn alias(m: &mut Map<String, Value>, a: &str, b: &str) {
    match (m.get(a).cloned(), m.get(b).cloned()) {
        (Some(v), None) => {
            m.insert(b.to_string(), v);
        }
        (None, Some(v)) => {
            m.insert(a.to_string(), v);
        }
        _ => {}
    }
}

/// `verification_url` → `VerificationURL`, as Go exports the field.
fn go_name(key: &str) -> String {
    key.split('_')
        .map(|w| match w {
            "url" | "id" | "uri" | "html" | "api" => w.to_ascii_uppercase(),
            _ => {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }
        })
        .collect()
}

/// Whether a template uses Go field references (`{{ .Code }}`); minijinja never does.
fn looks_like_go(src: &str) -> bool {
    src.match_indices("{{").any(|(i, _)| {
        let after = src.get(i + 2..).unwrap_or("");
        let after = after.strip_prefix('-').unwrap_or(after).trim_start();
        after.starts_with('.') || after.starts_with("if .") || after.starts_with("/*")
    })
}

/// `.Identity.traits.email` → `Identity.traits.email`.
fn field_path(s: &str) -> Option<String> {
    let rest = s.strip_prefix('.')?;
    let ok = rest.split('.').all(|seg| {
        let mut c = seg.chars();
        c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    });
    ok.then(|| rest.to_string())
}

fn condition(s: &str) -> Option<String> {
    match s.strip_prefix("not ") {
        Some(rest) => field_path(rest.trim()).map(|p| format!("not {p}")),
        None => field_path(s),
    }
}

/// Translates the Go template subset described in the module docs into minijinja.
fn translate_go(src: &str) -> Result<String, String> {
    if !looks_like_go(src) {
        return Ok(src.to_string());
    }
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    let mut open_ifs = 0usize;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a `{{` is never closed".into());
        };
        let raw = &after[..end];
        rest = &after[end + 2..];
        let (l, inner) = match raw.strip_prefix('-') {
            Some(r) if r.starts_with(char::is_whitespace) => ("-", r),
            _ => ("", raw),
        };
        let (r, inner) = match inner.strip_suffix('-') {
            Some(x) if x.ends_with(char::is_whitespace) => ("-", x),
            _ => ("", inner),
        };
        let inner = inner.trim();
        let unsupported = || {
            format!(
                "unsupported Go template action `{{{{ {inner} }}}}`: Latch translates `{{{{ .Field }}}}`, \
                 `{{{{ if .Field }}}}`, `{{{{ else }}}}` and `{{{{ end }}}}`; write anything else in minijinja syntax"
            )
        };
        if let Some(path) = field_path(inner) {
            out.push_str(&format!("{{{{{l} {path} {r}}}}}"));
        } else if let Some(cond) = inner.strip_prefix("if ") {
            let c = condition(cond.trim()).ok_or_else(unsupported)?;
            open_ifs += 1;
            out.push_str(&format!("{{%{l} if {c} {r}%}}"));
        } else if let Some(cond) = inner.strip_prefix("else if ") {
            let c = condition(cond.trim()).ok_or_else(unsupported)?;
            out.push_str(&format!("{{%{l} elif {c} {r}%}}"));
        } else if inner == "else" {
            out.push_str(&format!("{{%{l} else {r}%}}"));
        } else if inner == "end" {
            open_ifs = open_ifs.checked_sub(1).ok_or("`{{ end }}` without an `{{ if }}`")?;
            out.push_str(&format!("{{%{l} endif {r}%}}"));
        } else if inner.starts_with("/*") && inner.ends_with("*/") {
            out.push_str(&format!("{{#{l} {r}#}}"));
        } else {
            return Err(unsupported());
        }
    }
    out.push_str(rest);
    if open_ifs > 0 {
        return Err("an `{{ if }}` is never closed with `{{ end }}`".into());
    }
    Ok(out)
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
