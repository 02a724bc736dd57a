//! The `latch` binary as users run it: validate-config, migrate sql, serve with a Kratos config.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::SCHEMA;

pub(crate) fn latch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_latch"));
    // The tests must not pick up Kratos variables from the developer's shell.
    for (k, _) in std::env::vars() {
        if k == "DSN" || k.starts_with("SERVE_") || k.starts_with("SELFSERVICE_") || k.starts_with("SECRETS_") {
            c.env_remove(k);
        }
    }
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Kratos quickstart-style config, including methods that later Latch versions implement.
fn kratos_yaml(dir: &std::path::Path, public: u16, admin: u16) -> std::path::PathBuf {
    std::fs::write(dir.join("identity.schema.json"), SCHEMA).unwrap();
    let yaml = format!(
        r#"version: v1.3.0
dsn: sqlite://{dir}/db.sqlite?_fk=true&mode=rwc
serve:
  public:
    base_url: http://127.0.0.1:{public}/
    host: 127.0.0.1
    port: {public}
    cors:
      enabled: true
  admin:
    base_url: http://127.0.0.1:{admin}/
    host: 127.0.0.1
    port: {admin}
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
        issuer: Kratos Example
    lookup_secret:
      enabled: true
    code:
      enabled: true
      passwordless_enabled: true
    passkey:
      enabled: true
      config:
        rp:
          display_name: Your Application name
          id: localhost
          origins:
            - http://localhost:4455
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
      url: file://{dir}/identity.schema.json
courier:
  smtp:
    connection_uri: smtps://test:test@127.0.0.1:1025/?skip_ssl_verify=true
feature_flags:
  use_continue_with_transitions: true
"#,
        dir = dir.display()
    );
    let path = dir.join("kratos.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn cli_version_prints_version() {
    let out = latch().arg("version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn cli_validate_config_names_the_bad_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let good = kratos_yaml(dir.path(), 4433, 4434);
    let out = latch().args(["validate-config"]).arg(&good).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("\"ciphers\""),
        "unimplemented keys are warned about: {stderr}"
    );
    let out = latch()
        .args(["validate-config", "--strict"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(!out.status.success(), "--strict fails on unimplemented keys");

    let bad = dir.path().join("bad.yml");
    let text = std::fs::read_to_string(&good)
        .unwrap()
        .replace("      ui_url: http://127.0.0.1:4455/login", "      ui_urll: x");
    std::fs::write(&bad, text).unwrap();
    let out = latch().args(["validate-config"]).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("selfservice.flows.login.ui_urll"), "{stderr}");

    let bad = dir.path().join("bad2.json");
    std::fs::write(&bad, r#"{"dsn":"memory","serve":{"public":{"port":"abc"}},"identity":{"schemas":[]},"selfservice":{"default_browser_return_url":"http://a/"}}"#).unwrap();
    let out = latch().args(["validate-config"]).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("serve.public.port"), "{stderr}");
}

#[test]
fn cli_migrate_then_serve_with_kratos_config_and_stop_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let cfg = kratos_yaml(dir.path(), public, admin);

    // serve refuses an unmigrated database with a hint.
    let out = latch().args(["serve", "--dev", "-c"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("migrate sql"));

    for expected in ["Applied", "up to date"] {
        let out = latch()
            .args(["migrate", "sql", "--yes", "-c"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(expected),
            "migrate is idempotent"
        );
    }

    let child = latch()
        .args(["serve", "--dev", "--watch-courier", "-c"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{public}/health/ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ready = false;
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", public)) {
            let _ = s.write_all(format!("GET /health/ready HTTP/1.0\r\nHost: 127.0.0.1:{public}\r\n\r\n").as_bytes());
            let mut buf = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut buf);
            if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                ready = true;
                break;
            }
        }
        // Waiting for a child process to bind its port; bounded by the deadline.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready, "server did not become ready at {url}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "graceful shutdown exits 0: {stderr}");
    assert!(
        stderr.contains("key \\\"ciphers\\\" is accepted"),
        "unimplemented keys warn at startup (JSON logs escape the quotes): {stderr}"
    );
    assert!(!stderr.contains("PLEASE-CHANGE-ME"), "secrets are never logged");
}

#[test]
fn cli_migrate_sql_needs_only_a_dsn() {
    let dir = tempfile::tempdir().unwrap();
    let dsn = format!("sqlite://{}/env.sqlite?_fk=true&mode=rwc", dir.path().display());
    let out = latch()
        .args(["migrate", "sql", "-e", "--yes"])
        .env("DSN", &dsn)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Applied"));
    let dsn2 = format!("sqlite://{}/arg.sqlite?mode=rwc", dir.path().display());
    let out = latch().args(["migrate", "sql", &dsn2, "--yes"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = latch().args(["migrate", "sql", "-e", "--yes"]).output().unwrap();
    assert!(!out.status.success(), "no DSN is an error");
}

/// A minimal valid config plus `extra` YAML lines under `selfservice:`.
fn config_with(dir: &std::path::Path, name: &str, selfservice: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("identity.schema.json"), SCHEMA).unwrap();
    let yaml = format!(
        "dsn: memory\nidentity:\n  default_schema_id: default\n  schemas:\n    - id: default\n      url: file://{}/identity.schema.json\n\
         selfservice:\n  default_browser_return_url: http://127.0.0.1:4455/\n{selfservice}",
        dir.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

fn validate(path: &std::path::Path, strict: bool) -> (bool, String) {
    let mut c = latch();
    c.arg("validate-config");
    if strict {
        c.arg("--strict");
    }
    let out = c.arg(path).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn cli_validate_config_refuses_hooks_latch_does_not_run_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let hibp_off = "  methods:\n    password:\n      config:\n        haveibeenpwned_enabled: false\n";
    // Only hooks Latch runs, breach check acknowledged: clean even under --strict.
    let ok = config_with(
        dir.path(),
        "ok.yml",
        &format!(
            "{hibp_off}  flows:\n    registration:\n      after:\n        \
             password:\n          hooks:\n            - hook: session\n            - hook: show_verification_ui\n    \
             settings:\n      after:\n        password:\n          hooks:\n            - hook: revoke_active_sessions\n        \
             profile:\n          hooks:\n            - hook: verify_new_address\n            \
             - hook: notify_previous_addresses\n    \
             recovery:\n      after:\n        hooks:\n          - hook: revoke_active_sessions\n    \
             login:\n      after:\n        hooks:\n          - hook: revoke_active_sessions\n        \
             code:\n          hooks:\n            - hook: require_verified_address\n"
        ),
    );
    let (success, stderr) = validate(&ok, true);
    assert!(success, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    let hooks = config_with(
        dir.path(),
        "hooks.yml",
        &format!(
            "{hibp_off}  flows:\n    settings:\n      after:\n        profile:\n          hooks:\n            \
             - hook: b2b_sso\n    \
             registration:\n      after:\n        password:\n          hooks:\n            - hook: session\n            \
             - hook: web_hook\n              config:\n                url: http://hooks.test/\n                method: POST\n"
        ),
    );
    let (success, stderr) = validate(&hooks, false);
    assert!(success, "without --strict the config loads: {stderr}");
    let (hook, path) = ("b2b_sso", "selfservice.flows.settings.after.profile.hooks[0]");
    assert!(
        stderr.contains(&format!("hook \"{hook}\" at \"{path}\"")),
        "{hook} is named with its path: {stderr}"
    );
    assert!(!stderr.contains("hook \"session\""), "{stderr}");
    assert!(!stderr.contains("hook \"web_hook\""), "web_hook runs: {stderr}");
    let (success, stderr) = validate(&hooks, true);
    assert!(!success, "--strict fails on hooks Latch does not run: {stderr}");
    assert!(stderr.contains("b2b_sso"), "{stderr}");
}

#[test]
fn cli_validate_config_is_quiet_about_haveibeenpwned_now_that_it_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    // Kratos' implicit default (true) and an explicit true are both honoured: no warning.
    for (name, body) in [
        ("implicit.yml", ""),
        (
            "explicit.yml",
            "  methods:\n    password:\n      config:\n        haveibeenpwned_enabled: true\n        max_breaches: 2\n",
        ),
    ] {
        let file = config_with(dir.path(), name, body);
        let (success, stderr) = validate(&file, true);
        assert!(success, "{name}: {stderr}");
        assert!(!stderr.contains("haveibeenpwned"), "{name}: {stderr}");
    }
}
