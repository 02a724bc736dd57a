use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::*;

fn config(courier: Value) -> Config {
    Config::from_value(json!({ "courier": courier }), true).unwrap()
}

fn data() -> Value {
    json!({
        "code": "482913",
        "to": "jane@example.com",
        "expires_in_minutes": 10,
        "identity": {"traits": {"email": "jane@example.com", "name": "Jane <J>"}},
    })
}

fn b64(s: &str) -> String {
    format!("base64://{}", STANDARD.encode(s))
}

#[test]
fn builtin_templates_render_every_type() {
    let c = config(json!({}));
    let codes = TemplateType::ALL.into_iter().filter(|k| k.as_str().contains("_code_"));
    for kind in codes {
        let r = render(&c, kind, &data()).unwrap();
        assert!(r.subject.contains("482913"), "{kind:?}: {}", r.subject);
        assert!(!r.subject.contains('\n'));
        assert!(r.body.contains("    482913\n"), "{kind:?}: {}", r.body);
        assert!(r.body.contains("expires in 10 minutes"), "{kind:?}: {}", r.body);
        assert!(r.body_html.contains(">482913</p>"), "{kind:?}: {}", r.body_html);
        assert!(r.body_html.starts_with("<!doctype html>"));
    }
    check(&c).unwrap();
}

#[test]
fn link_templates_carry_the_link_and_live_under_kratos_keys() {
    let link = "https://id.example.com/self-service/recovery?flow=f&token=t0k3n";
    let d = json!({"to": "a@example.com", "expires_in_minutes": 60, "recovery_url": link, "verification_url": link});
    let c = config(json!({}));
    for kind in [TemplateType::RecoveryValid, TemplateType::VerificationValid] {
        let r = render(&c, kind, &d).unwrap();
        assert!(r.body.contains(&format!("    {link}\n")), "{kind:?}: {}", r.body);
        assert!(r.body.contains("expires in 60 minutes"), "{kind:?}: {}", r.body);
        assert!(r.body_html.contains("token=t0k3n"), "{kind:?}: {}", r.body_html);
        assert!(!r.body.contains("482913"));
    }
    for kind in [TemplateType::RecoveryInvalid, TemplateType::VerificationInvalid] {
        let r = render(&c, kind, &d).unwrap();
        assert!(!r.body.contains("token="), "{kind:?}: {}", r.body);
        assert!(r.body.contains("a@example.com"), "{kind:?}: {}", r.body);
    }
    // Kratos' keys and Go names: courier.templates.recovery.invalid.email, {{ .RecoveryURL }}.
    let c = config(json!({"templates": {
        "recovery": {
            "valid": {"email": {"subject": b64("Go to {{ .RecoveryURL }}")}},
            "invalid": {"email": {"subject": b64("Nobody at {{ .To }}")}}
        },
        "verification": {"valid": {"email": {"body": {"plaintext": b64("Open {{ .VerificationURL }}")}}}}
    }}));
    assert_eq!(
        render(&c, TemplateType::RecoveryValid, &d).unwrap().subject,
        format!("Go to {link}")
    );
    assert_eq!(
        render(&c, TemplateType::RecoveryInvalid, &d).unwrap().subject,
        "Nobody at a@example.com"
    );
    assert_eq!(
        render(&c, TemplateType::VerificationValid, &d).unwrap().body,
        format!("Open {link}")
    );
    // The code templates keep their own keys.
    assert!(
        render(&c, TemplateType::RecoveryCodeValid, &data())
            .unwrap()
            .subject
            .contains("482913")
    );
}

#[test]
fn builtin_verification_shows_the_link_only_when_given() {
    let c = config(json!({}));
    let without = render(&c, TemplateType::VerificationCodeValid, &data()).unwrap();
    assert!(!without.body.contains("link"), "{}", without.body);
    assert!(
        without.body.contains("    482913\n\nThe code expires"),
        "{}",
        without.body
    );
    let mut d = data();
    d["verification_url"] = json!("https://app.test/verify?flow=1&code=2");
    let with = render(&c, TemplateType::VerificationCodeValid, &d).unwrap();
    assert!(
        with.body
            .contains("\n    https://app.test/verify?flow=1&code=2\n\nThe code"),
        "{}",
        with.body
    );
    assert!(
        with.body_html
            .contains("href=\"https:&#x2f;&#x2f;app.test&#x2f;verify?flow=1&amp;code=2\""),
        "{}",
        with.body_html
    );
}

#[test]
fn expiry_sentence_is_left_out_without_a_lifetime() {
    let c = config(json!({}));
    let r = render(&c, TemplateType::LoginCodeValid, &json!({"code": "1", "to": "a@b.c"})).unwrap();
    assert!(r.body.contains("The code works only once."), "{}", r.body);
}

#[test]
fn config_uris_override_parts_and_keep_the_rest() {
    let c = config(json!({"templates": {"login_code": {"valid": {"email": {
        "subject": b64("Sign in with {{ code }}\n"),
        "body": {"html": b64("<b>{{ traits.name }}</b>")}
    }}}}}));
    let r = render(&c, TemplateType::LoginCodeValid, &data()).unwrap();
    assert_eq!(r.subject, "Sign in with 482913");
    assert_eq!(r.body_html, "<b>Jane &lt;J&gt;</b>");
    assert!(
        r.body.contains("Enter this code"),
        "plaintext stays built in: {}",
        r.body
    );
    let other = render(&c, TemplateType::RegistrationCodeValid, &data()).unwrap();
    assert!(other.subject.contains("finish signing up"));
}

#[test]
fn kratos_go_templates_are_translated() {
    let go = "Hi {{ .Identity.traits.email }}, use {{ .LoginCode }} ({{- .ExpiresInMinutes -}} min)\n\
              {{ if .RequestURL }}from {{ .RequestURL }}{{ else }}no url{{ end }}{{/* note */}}\n\
              {{ if not .Missing }}ok{{ end }}";
    let c = config(json!({"templates": {"login_code": {"valid": {"email": {"body": {"plaintext": b64(go)}}}}}}));
    let r = render(&c, TemplateType::LoginCodeValid, &data()).unwrap();
    assert_eq!(r.body, "Hi jane@example.com, use 482913 (10min)\nno url\nok");
    let mut d = data();
    d["request_url"] = json!("https://app.test/login");
    let r = render(&c, TemplateType::LoginCodeValid, &d).unwrap();
    assert!(r.body.contains("from https://app.test/login"), "{}", r.body);
}

#[test]
fn go_names_follow_kratos_models() {
    assert_eq!(go_name("verification_url"), "VerificationURL");
    assert_eq!(go_name("expires_in_minutes"), "ExpiresInMinutes");
    assert_eq!(go_name("registration_code"), "RegistrationCode");
    assert_eq!(go_name("to"), "To");
    let ctx = context(
        TemplateType::RecoveryCodeValid,
        &json!({"recovery_code": "9", "recipient": "a@b.c"}),
    );
    assert_eq!(ctx["code"], "9");
    assert_eq!(ctx["Code"], "9");
    assert_eq!(ctx["RecoveryCode"], "9");
    assert_eq!(ctx["to"], "a@b.c");
    assert_eq!(ctx["To"], "a@b.c");
}

#[test]
fn unsupported_go_actions_fail_with_a_hint() {
    let c = config(json!({"templates": {"login_code": {"valid": {"email": {
        "subject": b64("{{ template \"en\" . }} {{ .LoginCode }}")
    }}}}}));
    let e = render(&c, TemplateType::LoginCodeValid, &data())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unsupported Go template action"), "{e}");
    assert!(e.contains("courier.templates.login_code.valid.email.subject"), "{e}");
    assert!(check(&c).is_err());
}

#[test]
fn minijinja_syntax_errors_and_http_uris_fail() {
    let c = config(json!({"templates": {"recovery_code": {"valid": {"email": {"subject": b64("{% if %}")}}}}}));
    assert!(matches!(
        render(&c, TemplateType::RecoveryCodeValid, &data()),
        Err(TemplateError::Render { .. })
    ));
    let c = config(json!({"templates": {"recovery_code": {"valid": {"email": {"subject": "https://x.test/s"}}}}}));
    let e = render(&c, TemplateType::RecoveryCodeValid, &data())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not supported"), "{e}");
}

#[test]
fn override_directory_and_file_uris_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("verification_code").join("valid");
    std::fs::create_dir_all(&valid).unwrap();
    std::fs::write(valid.join("email.subject.gotmpl"), "Verify: {{ .VerificationCode }}").unwrap();
    std::fs::write(valid.join("email.body.gotmpl"), "<p>{{ .VerificationCode }}</p>").unwrap();
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, "code={{ code }}").unwrap();
    let c = config(json!({
        "template_override_path": dir.path().display().to_string(),
        "templates": {"verification_code": {"valid": {"email": {"body": {"plaintext": format!("file://{}", plain.display())}}}}}
    }));
    let r = render(&c, TemplateType::VerificationCodeValid, &data()).unwrap();
    assert_eq!(r.subject, "Verify: 482913");
    assert_eq!(r.body_html, "<p>482913</p>");
    assert_eq!(r.body, "code=482913");
    let login = render(&c, TemplateType::LoginCodeValid, &data()).unwrap();
    assert!(
        login.subject.contains("sign-in code"),
        "missing files fall back to built-ins"
    );
    let missing =
        config(json!({"templates": {"login_code": {"valid": {"email": {"subject": "file:///does/not/exist"}}}}}));
    assert!(matches!(
        render(&missing, TemplateType::LoginCodeValid, &data()),
        Err(TemplateError::Load { .. })
    ));
}
