//! Which Kratos keys Latch acts on. Everything else in the schema is accepted so Kratos
//! configs load unchanged, but produces a warning (an error under `--strict`).

use serde_json::Value;

/// Key path prefixes Latch implements: a key equal to or below one of these is honoured.
/// Kratos keys outside this list load with a warning naming them.
pub const IMPLEMENTED: &[&str] = &[
    "dsn",
    "dev",
    "version",
    "serve.public.host",
    "serve.public.port",
    "serve.public.base_url",
    "serve.public.cors",
    "serve.public.trusted_proxies",
    "serve.public.request_log",
    "serve.admin.host",
    "serve.admin.port",
    "serve.admin.base_url",
    "serve.admin.request_log",
    "log",
    "secrets",
    "cookies",
    "session.cookie",
    "session.lifespan",
    "session.earliest_possible_extend",
    "session.whoami.required_aal",
    "identity.default_schema_id",
    "identity.schemas",
    "selfservice.default_browser_return_url",
    "selfservice.allowed_return_urls",
    "selfservice.flows.login",
    "selfservice.flows.registration",
    "selfservice.flows.logout",
    "selfservice.flows.error",
    "selfservice.flows.settings",
    "selfservice.flows.verification",
    "selfservice.flows.recovery",
    "selfservice.methods.password",
    "selfservice.methods.profile",
    "selfservice.methods.code",
    "selfservice.methods.passkey",
    "selfservice.methods.webauthn",
    "security.account_enumeration",
    "courier.smtp",
    "courier.templates",
    "courier.message_retries",
    "courier.template_override_path",
    "courier.worker",
    "hashers.argon2",
    "hashers.bcrypt",
    "hashers.algorithm",
    "feature_flags",
    "latch",
];

/// Warnings for keys present in `doc` that Latch does not implement, one per top-most
/// unimplemented key (`selfservice.methods.oidc`, not each leaf below it).
pub(super) fn unimplemented_warnings(doc: &Value) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Value::Object(map) = doc {
        for (key, value) in map {
            visit(key, value, &mut warnings);
        }
    }
    warnings
}

fn visit(path: &str, value: &Value, warnings: &mut Vec<String>) {
    if IMPLEMENTED.iter().any(|p| is_at_or_below(path, p)) {
        return;
    }
    let ancestor = IMPLEMENTED
        .iter()
        .any(|p| p.len() > path.len() && p.starts_with(path) && p.as_bytes().get(path.len()) == Some(&b'.'));
    match value {
        Value::Object(map) if ancestor => {
            for (key, child) in map {
                visit(&format!("{path}.{key}"), child, warnings);
            }
        }
        _ if is_disabled(value) => {}
        _ => warnings.push(format!(
            "configuration key \"{path}\" is accepted for Kratos compatibility but not implemented by Latch yet"
        )),
    }
}

fn is_at_or_below(path: &str, prefix: &str) -> bool {
    path == prefix
        || (path.len() > prefix.len()
            && path.starts_with(prefix)
            && matches!(path.as_bytes().get(prefix.len()), Some(b'.' | b'[')))
}

/// `{enabled: false}` (or an empty object) asks for exactly what Latch does anyway: nothing.
fn is_disabled(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.get("enabled") == Some(&Value::Bool(false)) && map.keys().all(|k| k == "enabled" || k == "config")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn warnings_stop_at_the_unimplemented_boundary() {
        let doc = json!({
            "dsn": "memory",
            "selfservice": {
                "flows": {"login": {"ui_url": "http://x/login"}},
                "methods": {
                    "password": {"enabled": true},
                    "oidc": {"enabled": true, "config": {"providers": [{"id": "g"}]}},
                    "totp": {"enabled": false}
                }
            },
            "ciphers": {"algorithm": "xchacha20-poly1305"},
            "session": {"lifespan": "1h", "whoami": {"tokenizer": {"templates": {}}}}
        });
        let mut warnings = unimplemented_warnings(&doc);
        // Object key order depends on serde_json's `preserve_order` feature.
        warnings.sort();
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings[0].contains("\"ciphers\""));
        assert!(warnings[1].contains("\"selfservice.methods.oidc\""));
        assert!(warnings[2].contains("\"session.whoami.tokenizer\""));
    }
}
