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
    "selfservice.methods.totp",
    "selfservice.methods.lookup_secret",
    "selfservice.methods.link",
    "selfservice.methods.oidc",
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

/// Hooks Latch runs: `(flow, position, hook)` (`flow::hooks`, `flow::revoke`,
/// `flow::address_change`, `flow::web_hook`).
/// `verification` after registration asks for what Latch does anyway when the verification
/// flow is enabled (mail a code to the first unverified address, as Kratos);
/// `two_step_registration` is the name Kratos gives its internal `profile_first` step, which
/// `selfservice.flows.registration.style` already decides: accepted and ignored.
const IMPLEMENTED_HOOKS: &[(&str, &str, &str)] = &[
    ("registration", "after", "session"),
    ("registration", "after", "show_verification_ui"),
    ("registration", "after", "verification"),
    ("registration", "before", "two_step_registration"),
    ("login", "after", "require_verified_address"),
    ("login", "after", "revoke_active_sessions"),
    ("login", "after", "verification"),
    ("login", "after", "show_verification_ui"),
    ("settings", "after", "revoke_active_sessions"),
    ("settings", "after", "show_verification_ui"),
    ("settings", "after", "verification"),
    ("settings", "after", "verify_new_address"),
    ("settings", "after", "notify_previous_addresses"),
    ("recovery", "after", "revoke_active_sessions"),
    ("login", "before", "web_hook"),
    ("login", "after", "web_hook"),
    ("registration", "before", "web_hook"),
    ("registration", "after", "web_hook"),
    ("settings", "before", "web_hook"),
    ("settings", "after", "web_hook"),
    ("recovery", "before", "web_hook"),
    ("recovery", "after", "web_hook"),
    ("verification", "before", "web_hook"),
    ("verification", "after", "web_hook"),
];

/// Warnings for configured hooks Latch does not run (`verify_new_address`, a `before` hook
/// other than `web_hook`, …), naming the hook and its
/// path: a config that asks for a security hook must not start silently without it.
pub(super) fn hook_warnings(doc: &Value) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(Value::Object(flows)) = doc.pointer("/selfservice/flows") else {
        return warnings;
    };
    for (flow, cfg) in flows {
        for position in ["before", "after"] {
            let Some(Value::Object(section)) = cfg.get(position) else {
                continue;
            };
            let mut lists = vec![(
                format!("selfservice.flows.{flow}.{position}.hooks"),
                section.get("hooks"),
            )];
            for (method, m) in section {
                if let Value::Object(m) = m {
                    lists.push((
                        format!("selfservice.flows.{flow}.{position}.{method}.hooks"),
                        m.get("hooks"),
                    ));
                }
            }
            for (path, list) in lists {
                let Some(Value::Array(hooks)) = list else { continue };
                for (i, h) in hooks.iter().enumerate() {
                    let name = h.get("hook").and_then(Value::as_str).unwrap_or("");
                    // Kratos runs `verify_new_address` (a pre-persist hook) from the profile
                    // method's own list only.
                    if name == "verify_new_address"
                        && flow == "settings"
                        && position == "after"
                        && path != "selfservice.flows.settings.after.profile.hooks"
                    {
                        warnings.push(format!(
                            "hook \"{name}\" at \"{path}[{i}]\" is NOT run: it only runs from \
                             selfservice.flows.settings.after.profile.hooks (as in Kratos)"
                        ));
                        continue;
                    }
                    if !IMPLEMENTED_HOOKS.contains(&(flow.as_str(), position, name)) {
                        warnings.push(format!(
                            "hook \"{name}\" at \"{path}[{i}]\" is accepted for Kratos compatibility but not implemented \
                             by Latch yet: it is NOT run"
                        ));
                    }
                }
            }
        }
    }
    warnings
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
                    "saml": {"enabled": true, "config": {"providers": [{"id": "g"}]}},
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
        assert!(warnings[1].contains("\"selfservice.methods.saml\""));
        assert!(warnings[2].contains("\"session.whoami.tokenizer\""));
    }

    #[test]
    fn hooks_latch_does_not_run_are_named_with_their_path() {
        let doc = json!({"selfservice": {"flows": {
            "registration": {"after": {
                "hooks": [{"hook": "session"}, {"hook": "show_verification_ui"}],
                "password": {"hooks": [{"hook": "session"}, {"hook": "web_hook", "config": {}},
                    {"hook": "web_hook", "config": {"url": "https://h", "method": "POST", "response": {"ignore": true}}}]}
            }, "before": {"hooks": [{"hook": "two_step_registration"}]}},
            "login": {"after": {"hooks": [{"hook": "revoke_active_sessions"}, {"hook": "show_verification_ui"}],
                                "code": {"hooks": [{"hook": "require_verified_address"}, {"hook": "verification"}]}},
                      "before": {"hooks": [{"hook": "web_hook"}]}},
            "settings": {"after": {"hooks": [{"hook": "verify_new_address"}],
                                   "profile": {"hooks": [{"hook": "verify_new_address"}, {"hook": "notify_previous_addresses"}]}}}
        }, "methods": {"password": {"config": {"migrate_hook": {"config": {"body": "base64://e30="}}}}}}});
        let mut w = hook_warnings(&doc);
        w.sort();
        assert_eq!(w.len(), 1, "{w:#?}");
        let joined = w.join("\n");
        assert!(!joined.contains("web_hook"), "web_hook runs everywhere: {joined}");
        assert!(
            !joined.contains("migrate_hook"),
            "the Jsonnet body is implemented: {joined}"
        );
        assert!(!joined.contains("notify_previous_addresses"), "{joined}");
        let (hook, path) = ("verify_new_address", "selfservice.flows.settings.after.hooks[0]");
        assert!(
            joined.contains(&format!("hook \"{hook}\" at \"{path}\"")),
            "{hook} {path}: {joined}"
        );
    }
}
