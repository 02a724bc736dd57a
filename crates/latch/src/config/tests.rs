//! Loading, merging, environment, validation and typed-default tests.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde_json::json;

use super::*;

const MINIMAL_YAML: &str = r#"
dsn: memory
identity:
  schemas:
    - id: default
      url: file:///etc/latch/identity.schema.json
selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
"#;

const QUICKSTART_YAML: &str = r#"
version: v1.3.0
dsn: postgres://kratos:secret@postgresd:5432/kratos?sslmode=disable&max_conns=20&max_idle_conns=4
serve:
  public:
    base_url: http://127.0.0.1:4433/
    cors:
      enabled: true
  admin:
    base_url: http://kratos:4434/
selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
  allowed_return_urls:
    - http://127.0.0.1:4455
  methods:
    password:
      enabled: true
    totp:
      enabled: true
      config:
        issuer: Kratos
    lookup_secret:
      enabled: false
    link:
      enabled: true
    code:
      enabled: true
    oidc:
      enabled: true
      config:
        providers:
          - id: github
            provider: github
            client_id: abc
            client_secret: def
            mapper_url: file:///etc/config/kratos/oidc.github.jsonnet
            scope: [user:email]
  flows:
    error:
      ui_url: http://127.0.0.1:4455/error
    settings:
      ui_url: http://127.0.0.1:4455/settings
      privileged_session_max_age: 15m
      required_aal: highest_available
    recovery:
      enabled: true
      ui_url: http://127.0.0.1:4455/recovery
      use: code
    verification:
      enabled: true
      ui_url: http://127.0.0.1:4455/verification
      use: code
      after:
        default_browser_return_url: http://127.0.0.1:4455/
    logout:
      after:
        default_browser_return_url: http://127.0.0.1:4455/login
    login:
      ui_url: http://127.0.0.1:4455/login
      lifespan: 10m
    registration:
      lifespan: 10m
      ui_url: http://127.0.0.1:4455/registration
      after:
        password:
          hooks:
            - hook: session
            - hook: show_verification_ui
log:
  level: debug
  format: text
  leak_sensitive_values: true
secrets:
  cookie:
    - PLEASE-CHANGE-ME-I-AM-VERY-INSECURE
  cipher:
    - 32-LONG-SECRET-NOT-SECURE-AT-ALL
ciphers:
  algorithm: xchacha20-poly1305
hashers:
  algorithm: bcrypt
  bcrypt:
    cost: 8
identity:
  default_schema_id: default
  schemas:
    - id: default
      url: file:///etc/config/kratos/identity.schema.json
courier:
  smtp:
    connection_uri: smtps://test:test@mailslurper:1025/?skip_ssl_verify=true
feature_flags:
  use_continue_with_transitions: true
"#;

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn errors_of(result: Result<Loaded, ConfigError>) -> Vec<String> {
    match result {
        Err(ConfigError::Invalid(errors)) => errors,
        Err(other) => panic!("expected validation errors, got {other}"),
        Ok(_) => panic!("expected validation errors, got a config"),
    }
}

fn write_file(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    path
}

#[test]
fn config_yaml_file_loads_with_latch_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(&dir, "kratos.yml", MINIMAL_YAML);
    let loaded = load(&[file], &no_env(), false).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.dsn, "memory");
    assert!(!c.dev);
    assert_eq!(c.serve.public.host, "0.0.0.0");
    assert_eq!(c.serve.public.port, 4433);
    assert_eq!(c.serve.admin.port, 4434);
    assert_eq!(c.public_base_url().as_str(), "https://localhost:4433/");
    assert_eq!(c.admin_base_url().as_str(), "https://localhost:4434/");
    assert_eq!(c.session.lifespan, Duration::from_secs(86_400));
    assert_eq!(c.session.cookie.name, "ory_kratos_session");
    assert!(c.session.cookie.persistent);
    assert_eq!(c.cookies.path, "/");
    assert_eq!(c.cookies.same_site, SameSite::Lax);
    assert_eq!(c.identity.default_schema_id, "default");
    assert_eq!(c.identity.schemas.len(), 1);
    let flows = &c.selfservice.flows;
    assert_eq!(flows.login.lifespan, Duration::from_secs(3600));
    assert_eq!(flows.login.style, LoginStyle::Unified);
    assert!(flows.registration.enabled);
    assert_eq!(flows.registration.style, RegistrationStyle::ProfileFirst);
    assert_eq!(flows.settings.privileged_session_max_age, Duration::from_secs(900));
    assert!(!flows.verification.enabled);
    assert_eq!(flows.verification.use_, MessageStrategy::Code);
    let m = &c.selfservice.methods;
    assert!(m.password.enabled);
    assert_eq!(m.password.config.min_password_length, 8);
    assert!(m.profile.enabled);
    assert!(m.code.passwordless_enabled);
    assert_eq!(m.code.config.lifespan, Duration::from_secs(600));
    assert_eq!(m.code.config.max_submissions, 5);
    assert!(m.passkey.enabled);
    assert!(!m.webauthn.enabled);
    assert!(c.security.account_enumeration.mitigate);
    assert_eq!(c.courier.message_retries, 5);
    assert_eq!(c.hashers.algorithm, HashAlgorithm::Argon2);
    assert_eq!(c.hashers.argon2.memory, 19 * 1024 * 1024);
    assert_eq!(c.hashers.argon2.iterations, 2);
    assert_eq!(c.hashers.bcrypt.cost, 12);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.flow_ui_url("login").as_str(), "https://localhost:4433/ui/login");
    assert!(!c.feature_flag("cacheable_sessions"));
}

#[test]
fn config_json_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let doc = json!({
        "dsn": "sqlite:///tmp/latch.db?_fk=true",
        "identity": {"schemas": [{"id": "default", "url": "file:///x.json"}]},
        "selfservice": {"default_browser_return_url": "https://app.example.com/"},
        "serve": {"public": {"base_url": "https://id.example.com/auth"}}
    });
    let file = write_file(&dir, "kratos.json", &doc.to_string());
    let c = load(&[file], &no_env(), true).unwrap().config;
    assert!(c.dev);
    assert_eq!(c.dsn, "sqlite:///tmp/latch.db?_fk=true");
    assert_eq!(c.public_base_url().as_str(), "https://id.example.com/auth/");
    assert_eq!(c.admin_base_url().as_str(), "http://localhost:4434/");
}

#[test]
fn config_json_extension_uses_json_parser() {
    let err = parse_document(std::path::Path::new("x.json"), "dsn: memory").unwrap_err();
    assert!(err.to_string().contains("x.json"), "{err}");
    assert!(parse_document(std::path::Path::new("x.yaml"), "").unwrap().is_object());
    assert!(parse_document(std::path::Path::new("x.yaml"), "- 1").is_err());
}

#[test]
fn config_later_files_deep_merge_over_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_file(&dir, "base.yaml", MINIMAL_YAML);
    let over = write_file(
        &dir,
        "over.yaml",
        r#"
serve:
  public:
    port: 8080
selfservice:
  flows:
    login:
      ui_url: https://ui.example.com/login
identity:
  schemas:
    - id: customer
      url: file:///customer.json
"#,
    );
    let c = load(&[base, over], &no_env(), false).unwrap().config;
    assert_eq!(c.serve.public.port, 8080);
    assert_eq!(c.dsn, "memory", "earlier keys survive");
    assert_eq!(
        c.selfservice.default_browser_return_url.unwrap().as_str(),
        "http://127.0.0.1:4455/"
    );
    assert_eq!(c.identity.schemas.len(), 1, "arrays replace");
    assert_eq!(c.identity.schemas[0].id, "customer");
    assert_eq!(
        c.selfservice.flows.login.ui_url.unwrap().as_str(),
        "https://ui.example.com/login"
    );
}

#[test]
fn config_env_overrides_nested_underscore_keys() {
    let vars = env(&[
        ("SELFSERVICE_FLOWS_LOGIN_UI_URL", "https://ui.example.com/login"),
        ("SERVE_PUBLIC_PORT", "9999"),
        ("SELFSERVICE_METHODS_PASSWORD_ENABLED", "false"),
        ("SESSION_COOKIE_PERSISTENT", "false"),
        ("SELFSERVICE_ALLOWED_RETURN_URLS", "https://a.example,https://b.example"),
        ("DSN", "sqlite://env.db"),
        ("PATH", "/usr/bin"),
        ("HOME", "/root"),
        ("SERVE_PUBLIC_UNKNOWN_THING", "1"),
        ("SESSION", "ubuntu"),
        ("VERSION", "1.2.3"),
    ]);
    let c = load_str(MINIMAL_YAML, &vars, false).unwrap().config;
    assert_eq!(
        c.selfservice.flows.login.ui_url.unwrap().as_str(),
        "https://ui.example.com/login"
    );
    assert_eq!(c.serve.public.port, 9999);
    assert!(!c.selfservice.methods.password.enabled);
    assert!(!c.session.cookie.persistent);
    assert_eq!(
        c.selfservice.allowed_return_urls,
        vec!["https://a.example", "https://b.example"]
    );
    assert_eq!(c.dsn, "sqlite://env.db");
}

#[test]
fn config_env_sets_arrays_as_json_and_by_index() {
    let vars = env(&[
        ("IDENTITY_SCHEMAS", r#"[{"id":"default","url":"file:///x.json"}]"#),
        ("IDENTITY_SCHEMAS_0_SELFSERVICE_SELECTABLE", "true"),
        ("IDENTITY_SCHEMAS_1_ID", "second"),
        ("IDENTITY_SCHEMAS_1_URL", "file:///y.json"),
        ("SELFSERVICE_DEFAULT_BROWSER_RETURN_URL", "https://app.example/"),
    ]);
    let c = load_values(vec![], &vars, true).unwrap().config;
    assert_eq!(c.identity.schemas.len(), 2);
    assert_eq!(c.identity.schemas[0].url, "file:///x.json");
    assert!(c.identity.schemas[0].selfservice_selectable);
    assert_eq!(c.identity.schemas[1].id, "second");
    assert_eq!(c.dsn, "", "a missing DSN is left to the caller");
}

#[test]
fn config_env_file_suffix_reads_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_file(&dir, "cookie", "first-secret-0123456789\nsecond-secret-0123456789\n");
    let vars = env(&[("SECRETS_COOKIE_FILE", secret.to_str().unwrap())]);
    let c = load_str(MINIMAL_YAML, &vars, false).unwrap().config;
    assert_eq!(
        c.cookie_secrets(),
        ["first-secret-0123456789", "second-secret-0123456789"]
    );
}

#[test]
fn config_env_bad_scalar_is_reported_with_its_key() {
    let errors = errors_of(load_str(MINIMAL_YAML, &env(&[("SERVE_PUBLIC_PORT", "abc")]), false));
    assert!(
        errors.iter().any(|e| e.contains("\"serve.public.port\"")),
        "{errors:#?}"
    );
}

#[test]
fn config_unknown_keys_fail_with_full_path() {
    let yaml = format!(
        "{MINIMAL_YAML}\nbogus: 1\nselfservice:\n  default_browser_return_url: http://x/\n  flows:\n    login:\n      ui_urll: http://x/login\n"
    );
    let errors = errors_of(load_str(&yaml, &no_env(), false));
    assert!(
        errors.contains(&"unknown configuration key \"bogus\"".to_string()),
        "{errors:#?}"
    );
    assert!(
        errors.contains(&"unknown configuration key \"selfservice.flows.login.ui_urll\"".to_string()),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 2, "each unknown key once: {errors:#?}");
}

#[test]
fn config_unknown_keys_in_arrays_and_hooks_fail_with_index() {
    let doc = json!({
        "identity": {"schemas": [{"id": "default", "url": "file:///x.json", "urll": "y"}]},
        "courier": {"channels": [{"id": "sms", "request_config": {"url": "https://sms", "method": "POST"}, "typ": "http"}]},
        "selfservice": {
            "default_browser_return_url": "http://x/",
            "flows": {"registration": {"after": {"password": {"hooks": [{"hook": "session", "confg": {}}]}}}}
        }
    });
    let errors = errors_of(load_values(vec![doc], &no_env(), false));
    assert!(
        errors.contains(&"unknown configuration key \"courier.channels[0].typ\"".to_string()),
        "{errors:#?}"
    );
    // Kratos' schema leaves identity schema entries open, so extra keys there are accepted.
    assert!(!errors.iter().any(|e| e.contains("urll")), "{errors:#?}");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors.contains(
            &"unknown configuration key \"selfservice.flows.registration.after.password.hooks[0].confg\"".to_string()
        ),
        "{errors:#?}"
    );
}

#[test]
fn config_wrong_type_fails_with_path() {
    let doc = json!({
        "dsn": "memory",
        "serve": {"public": {"port": "abc"}, "admin": {"port": 70000}},
        "identity": {"schemas": [{"id": "default", "url": "file:///x.json"}]},
        "selfservice": {"default_browser_return_url": "http://x/", "flows": {"login": {"lifespan": "soon"}}},
        "secrets": {"cookie": ["tiny-x"]}
    });
    let errors = errors_of(load_values(vec![doc], &no_env(), false));
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(
        has("invalid value for \"serve.public.port\": \"abc\" is not of type \"integer\""),
        "{errors:#?}"
    );
    assert!(has("invalid value for \"serve.admin.port\""), "{errors:#?}");
    assert!(
        has("invalid value for \"selfservice.flows.login.lifespan\""),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 4, "one error per problem: {errors:#?}");
    assert!(has("invalid value for \"secrets.cookie[0]\""), "{errors:#?}");
    assert!(!has("tiny-x"), "secret values are not echoed: {errors:#?}");
}

#[test]
fn config_missing_required_keys_are_named() {
    let errors = errors_of(load_values(vec![json!({"dsn": "memory"})], &no_env(), false));
    assert!(
        errors.contains(&"missing required configuration key \"identity\"".to_string()),
        "{errors:#?}"
    );
    assert!(
        !errors.iter().any(|e| e.contains("selfservice")),
        "selfservice.default_browser_return_url has a default: {errors:#?}"
    );
}

#[test]
fn config_default_browser_return_url_defaults_to_the_welcome_page() {
    let doc = json!({"dsn": "memory", "identity": {"schemas": [{"id": "default", "url": "file:///x.json"}]}});
    let mut c = load_values(vec![doc], &no_env(), true).unwrap().config;
    assert_eq!(
        c.selfservice.default_browser_return_url.as_ref().unwrap().as_str(),
        "http://localhost:4433/ui/welcome"
    );
    c.set_bound_base_urls(
        url::Url::parse("http://127.0.0.1:5000/").unwrap(),
        url::Url::parse("http://127.0.0.1:5001/").unwrap(),
    );
    assert_eq!(
        c.selfservice.default_browser_return_url.as_ref().unwrap().as_str(),
        "http://127.0.0.1:5000/ui/welcome"
    );
    let mut c = load_str(MINIMAL_YAML, &no_env(), true).unwrap().config;
    c.set_bound_base_urls(
        url::Url::parse("http://127.0.0.1:5000/").unwrap(),
        url::Url::parse("http://127.0.0.1:5001/").unwrap(),
    );
    assert_eq!(
        c.selfservice.default_browser_return_url.as_ref().unwrap().as_str(),
        "http://127.0.0.1:4455/",
        "a configured URL wins"
    );
}

#[test]
fn config_relative_return_url_is_rejected_with_path() {
    let yaml = MINIMAL_YAML.replace("http://127.0.0.1:4455/", "/relative");
    let errors = errors_of(load_str(&yaml, &no_env(), false));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"selfservice.default_browser_return_url\"")),
        "{errors:#?}"
    );
}

#[test]
fn config_quickstart_loads_with_warnings_and_fails_strict() {
    let loaded = load_str(QUICKSTART_YAML, &no_env(), false).unwrap();
    let w = &loaded.warnings;
    let warned = |key: &str| {
        w.iter().any(|m| {
            m == &format!(
                "configuration key \"{key}\" is accepted for Kratos compatibility but not implemented by Latch yet"
            )
        })
    };
    assert!(!warned("selfservice.methods.oidc"), "oidc is implemented: {w:#?}");
    assert!(
        !warned("selfservice.methods.link"),
        "the link method is implemented: {w:#?}"
    );
    assert!(warned("ciphers"), "{w:#?}");
    assert!(
        !warned("selfservice.methods.lookup_secret"),
        "disabled methods are quiet: {w:#?}"
    );
    // TOTP is left out of the count: it warns until the method that honours it exists.
    let others = w.iter().filter(|m| !m.contains("\"selfservice.methods.totp\"")).count();
    assert_eq!(others, 1, "one warning per unimplemented subtree: {w:#?}");
    let err = strict_check(&loaded).unwrap_err().to_string();
    assert!(err.contains("ciphers"), "{err}");

    let c = &loaded.config;
    let oidc = &c.selfservice.methods.oidc;
    assert!(oidc.enabled);
    assert_eq!(oidc.config.providers[0].id, "github");
    assert_eq!(oidc.config.providers[0].scope, vec!["user:email".to_string()]);
    assert!(matches!(
        parse_dsn(&c.dsn).unwrap(),
        Dsn::Postgres {
            max_conns: Some(20),
            ..
        }
    ));
    assert_eq!(c.public_base_url().as_str(), "http://127.0.0.1:4433/");
    assert!(c.serve.public.cors.enabled);
    // Kratos' schema default `["*"]` is not applied: unset means the derived origins only.
    assert!(c.serve.public.cors.allowed_origins.is_empty());
    assert_eq!(c.cookie_secrets(), ["PLEASE-CHANGE-ME-I-AM-VERY-INSECURE"]);
    assert_eq!(c.hashers.algorithm, HashAlgorithm::Bcrypt);
    assert_eq!(c.hashers.bcrypt.cost, 8);
    assert_eq!(c.log.format.as_deref(), Some("text"));
    assert_eq!(
        c.courier.smtp.connection_uri.as_deref(),
        Some("smtps://test:test@mailslurper:1025/?skip_ssl_verify=true")
    );
    let flows = &c.selfservice.flows;
    assert_eq!(flows.login.lifespan, Duration::from_secs(600));
    assert!(flows.recovery.enabled);
    let after = &flows.registration.after;
    let hooks: Vec<&str> = after.hooks_for("password").iter().map(|h| h.hook.as_str()).collect();
    assert_eq!(hooks, ["session", "show_verification_ui"]);
    assert!(after.hooks_for("code").is_empty());
    assert_eq!(
        flows.verification.after.return_url_for("code").unwrap().as_str(),
        "http://127.0.0.1:4455/"
    );
    assert_eq!(
        flows.logout.after.default_browser_return_url.as_ref().unwrap().as_str(),
        "http://127.0.0.1:4455/login"
    );
    assert!(c.feature_flag("use_continue_with_transitions"));
    assert_eq!(c.flow_ui_url("settings").as_str(), "http://127.0.0.1:4455/settings");
}

#[test]
fn config_after_hooks_fall_back_to_flow_hooks() {
    let after: After = serde_json::from_value(json!({
        "default_browser_return_url": "https://app/",
        "hooks": [{"hook": "web_hook", "config": {"url": "https://hook", "method": "POST"}}],
        "password": {"default_browser_return_url": "https://app/pw"},
        "passkey": {"hooks": [{"hook": "session"}]}
    }))
    .unwrap();
    assert_eq!(after.hooks_for("password")[0].hook, "web_hook");
    assert_eq!(after.hooks_for("passkey")[0].hook, "session");
    assert_eq!(after.return_url_for("password").unwrap().as_str(), "https://app/pw");
    assert_eq!(after.return_url_for("code").unwrap().as_str(), "https://app/");
}

#[test]
fn config_cookie_secure_string_and_session_overrides() {
    let doc = json!({
        "cookies": {"secure": "false", "same_site": "Strict", "domain": "example.com"},
        "session": {"cookie": {"secure": "true", "same_site": "None"}, "earliest_possible_extend": "1h"},
        "secrets": {"default": ["default-secret-0123456789"]}
    });
    let c = Config::from_value(doc, false).unwrap();
    assert_eq!(c.cookies.secure, Some(false));
    assert_eq!(c.cookies.same_site, SameSite::Strict);
    assert_eq!(c.session.cookie.secure, Some(true));
    assert_eq!(c.session.cookie.same_site, Some(SameSite::None));
    assert_eq!(c.session.earliest_possible_extend, Some(Duration::from_secs(3600)));
    assert_eq!(c.cookie_secrets(), ["default-secret-0123456789"]);
}

#[test]
fn config_code_mfa_only_turns_off_latch_passwordless_default() {
    let doc = json!({"selfservice": {"methods": {"code": {"mfa_enabled": true}}}});
    let c = Config::from_value(doc, false).unwrap();
    assert!(c.selfservice.methods.code.mfa_enabled);
    assert!(!c.selfservice.methods.code.passwordless_enabled);
}

/// Kratos' schema allows passwordless codes or MFA codes, never both; Latch refuses the mix
/// at load with a message naming both keys (not the schema's `anyOf` wording), whether the
/// keys come from a file, the environment or a typed document.
#[test]
fn config_code_passwordless_and_mfa_together_are_refused() {
    let yaml =
        format!("{MINIMAL_YAML}  methods:\n    code:\n      passwordless_enabled: true\n      mfa_enabled: true\n");
    let errors = errors_of(load_str(&yaml, &no_env(), false));
    assert_eq!(errors, vec![CODE_MODES_CLASH.to_string()], "{errors:?}");
    assert!(errors[0].contains("passwordless_enabled") && errors[0].contains("mfa_enabled"));

    let vars = env(&[
        ("SELFSERVICE_METHODS_CODE_MFA_ENABLED", "true"),
        ("SELFSERVICE_METHODS_CODE_PASSWORDLESS_ENABLED", "true"),
    ]);
    let errors = errors_of(load_str(MINIMAL_YAML, &vars, false));
    assert_eq!(errors, vec![CODE_MODES_CLASH.to_string()], "{errors:?}");

    let doc = json!({"selfservice": {"methods": {"code": {"mfa_enabled": true, "passwordless_enabled": true}}}});
    match Config::from_value(doc, false) {
        Err(ConfigError::Invalid(errors)) => assert_eq!(errors, vec![CODE_MODES_CLASH.to_string()]),
        other => panic!("expected the clash to be refused, got {other:?}"),
    }

    // Each mode alone loads.
    for (passwordless, mfa) in [("true", "false"), ("false", "true"), ("false", "false")] {
        let yaml = format!(
            "{MINIMAL_YAML}  methods:\n    code:\n      passwordless_enabled: {passwordless}\n      mfa_enabled: {mfa}\n"
        );
        let c = load_str(&yaml, &no_env(), false).unwrap().config;
        assert_eq!(c.selfservice.methods.code.mfa_enabled, mfa == "true");
        assert_eq!(c.selfservice.methods.code.passwordless_enabled, passwordless == "true");
    }
}

#[test]
fn config_argon2_memory_accepts_kratos_byte_sizes() {
    let doc = json!({"hashers": {"argon2": {"memory": "128MB", "iterations": 3}}});
    let c = Config::from_value(doc, false).unwrap();
    assert_eq!(c.hashers.argon2.memory, 128 * 1024 * 1024);
    assert_eq!(c.hashers.argon2.iterations, 3);
    assert_eq!(c.hashers.argon2.parallelism, 1);
}

#[test]
fn config_base_url_from_host_and_dev() {
    let doc = json!({"serve": {"public": {"host": "10.0.0.5", "port": 8000}, "admin": {"host": "::1"}}});
    let c = Config::from_value(doc, true).unwrap();
    assert_eq!(c.public_base_url().as_str(), "http://10.0.0.5:8000/");
    assert_eq!(c.admin_base_url().as_str(), "http://[::1]:4434/");
}

#[test]
fn config_web_hooks_that_cannot_work_fail_with_their_path() {
    let doc = json!({"dsn": "memory", "selfservice": {"flows": {"login": {
        "before": {"hooks": [{"hook": "web_hook", "config": {"url": "https://h.test/", "method": "POST"}}]},
        "after": {"password": {"hooks": [{"hook": "web_hook", "config": {
            "url": "https://h.test/", "method": "POST", "response": {"ignore": true, "parse": true}
        }}]}}
    }}}});
    let errors = errors_of(load_values(vec![doc], &no_env(), true));
    // Kratos' schema refuses the combination too (an `anyOf`); Latch's message says why.
    let ours: Vec<&String> = errors.iter().filter(|e| e.contains("web_hook config")).collect();
    assert_eq!(ours.len(), 1, "{errors:#?}");
    assert!(
        ours[0].contains("selfservice.flows.login.after.password.hooks[0].config")
            && ours[0].contains("response.ignore"),
        "{errors:#?}"
    );
    let yaml = format!("{MINIMAL_YAML}latch:\n  web_hooks: {{timeout: 2s, max_retries: 0}}\n");
    let c = load_str(&yaml, &no_env(), false).unwrap().config;
    assert_eq!(c.latch.web_hooks.timeout, Duration::from_secs(2));
    assert_eq!(c.latch.web_hooks.max_retries, 0);
    assert_eq!(c.latch.web_hooks.max_attempts, 15, "outbox defaults");
}

#[test]
fn config_latch_web_hooks_is_the_one_section_for_blocking_and_outbox_hooks() {
    let yaml = format!(
        "{MINIMAL_YAML}latch:\n  web_hooks: {{timeout: 5s, max_retries: 1, max_attempts: 3, initial_backoff: 1s, \
         max_backoff: 1m, concurrency: 2, poll_interval: 20ms}}\n"
    );
    let w = load_str(&yaml, &no_env(), false).unwrap().config.latch.web_hooks;
    assert_eq!(
        (w.timeout, w.max_retries, w.max_attempts, w.concurrency),
        (Duration::from_secs(5), 1, 3, 2)
    );
    assert_eq!(
        (w.initial_backoff, w.max_backoff, w.poll_interval),
        (
            Duration::from_secs(1),
            Duration::from_secs(60),
            Duration::from_millis(20)
        )
    );
    // The outbox's former section and key are refused, not silently ignored.
    for bad in [
        "latch:\n  webhooks: {max_attempts: 3}\n",
        "latch:\n  web_hooks: {attempt_timeout: 5s}\n",
    ] {
        let yaml = format!("{MINIMAL_YAML}{bad}");
        assert!(load_str(&yaml, &no_env(), false).is_err(), "{bad}");
    }
}

#[test]
fn kratos_log_levels_become_tracing_filters() {
    for (level, filter) in [
        ("warning", "warn"),
        ("WARNING", "warn"),
        ("fatal", "error"),
        ("panic", "error"),
        ("info", "info"),
        ("debug", "debug"),
        ("error", "error"),
        ("latch=debug", "latch=debug"),
    ] {
        assert_eq!(super::Log::filter_directive(level), filter, "{level}");
        assert!(tracing_subscriber::EnvFilter::try_new(filter).is_ok(), "{filter}");
    }
}
