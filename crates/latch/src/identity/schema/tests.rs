//! Unit tests for the identity-schema module (unwraps are fine here).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const CODE_SCHEMA: &str = include_str!("testdata/example-identity.code.schema.json");
const PASSKEY_SCHEMA: &str = include_str!("testdata/example-identity.passkey.schema.json");

fn compile(raw: Value) -> IdentitySchema {
    IdentitySchema::compile("test", "base64://", raw).unwrap()
}

fn code_schema() -> IdentitySchema {
    compile(serde_json::from_str(CODE_SCHEMA).unwrap())
}

fn passkey_schema() -> IdentitySchema {
    compile(serde_json::from_str(PASSKEY_SCHEMA).unwrap())
}

fn traits_schema(traits: Value) -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": { "traits": traits }
    })
}

fn b64_entry(id: &str, doc: &str) -> (String, String) {
    (id.to_owned(), format!("base64://{}", STANDARD.encode(doc)))
}

fn addr(via: &str, value: &str) -> Address {
    Address {
        via: via.to_owned(),
        value: value.to_owned(),
    }
}

/// reqwest is built without a bundled crypto provider; the server installs one at startup.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn errors_of(schema: &IdentitySchema, traits: Value) -> Vec<TraitError> {
    schema.validate_traits(&traits).unwrap_err()
}

// ---------------------------------------------------------------- loading

#[tokio::test]
async fn load_file_absolute_and_relative() {
    let dir = std::env::temp_dir().join(format!("latchschema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("identity.schema.json");
    std::fs::write(&path, CODE_SCHEMA).unwrap();

    let entries = vec![
        ("abs".to_owned(), format!("file://{}", path.display())),
        (
            "rel".to_owned(),
            "file://src/identity/schema/testdata/example-identity.passkey.schema.json".to_owned(),
        ),
    ];
    let reg = SchemaRegistry::load(&entries, "rel").await.unwrap();
    assert_eq!(reg.len(), 2);
    assert_eq!(reg.default_id(), "rel");
    assert_eq!(reg.default_schema().unwrap().id, "rel");
    let ids: Vec<&str> = reg.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["abs", "rel"]);
    assert_eq!(reg.get("abs").unwrap().url, entries[0].1);
    assert_eq!(reg.get("abs").unwrap().raw["title"], "Person");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn load_file_missing_names_schema() {
    let entries = vec![("gone".to_owned(), "file:///definitely/not/here.json".to_owned())];
    let err = SchemaRegistry::load(&entries, "gone").await.unwrap_err();
    assert!(matches!(err, SchemaError::Fetch { ref id, .. } if id == "gone"));
    assert!(err.to_string().contains("gone"));
}

#[tokio::test]
async fn load_base64_standard_and_url_safe() {
    let entries = vec![
        b64_entry("std", CODE_SCHEMA),
        (
            "url".to_owned(),
            format!("base64://{}", URL_SAFE_NO_PAD.encode(PASSKEY_SCHEMA)),
        ),
    ];
    let reg = SchemaRegistry::load(&entries, "std").await.unwrap();
    assert!(reg.get("std").is_some());
    assert!(reg.get("url").is_some());
}

#[tokio::test]
async fn load_http() {
    install_crypto();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let request = String::from_utf8_lossy(&buf).to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
            CODE_SCHEMA.len(),
            CODE_SCHEMA
        );
        sock.write_all(response.as_bytes()).await.unwrap();
        sock.shutdown().await.unwrap();
        request
    });
    let entries = vec![(
        "http".to_owned(),
        format!("http://127.0.0.1:{port}/identity.schema.json"),
    )];
    let reg = SchemaRegistry::load(&entries, "http").await.unwrap();
    let request = server.await.unwrap();
    assert!(request.starts_with("GET /identity.schema.json HTTP/1.1"));
    assert!(reg.get("http").is_some());
}

#[tokio::test]
async fn load_http_error_status() {
    install_crypto();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut chunk = [0u8; 1024];
        let _ = sock.read(&mut chunk).await.unwrap();
        sock.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
    });
    let entries = vec![("x".to_owned(), format!("http://127.0.0.1:{port}/s.json"))];
    let err = SchemaRegistry::load(&entries, "x").await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn load_rejects_bad_schemas() {
    // Not JSON.
    let err = SchemaRegistry::load(&[b64_entry("a", "not json {")], "a")
        .await
        .unwrap_err();
    assert!(
        matches!(err, SchemaError::InvalidJson { ref id, .. } if id == "a"),
        "{err}"
    );

    // No traits.
    let doc = r#"{"type":"object","properties":{"foo":{"type":"string"}}}"#;
    let err = SchemaRegistry::load(&[b64_entry("b", doc)], "b").await.unwrap_err();
    assert!(matches!(err, SchemaError::Meta { ref id, .. } if id == "b"), "{err}");
    assert!(err.to_string().contains("traits"), "{err}");

    // Traits without properties.
    let doc = r#"{"properties":{"traits":{"type":"object","properties":{}}}}"#;
    let err = SchemaRegistry::load(&[b64_entry("c", doc)], "c").await.unwrap_err();
    assert!(err.to_string().contains("at least one"), "{err}");

    // Traits of the wrong type.
    let doc = r#"{"properties":{"traits":{"type":"string","properties":{"a":{}}}}}"#;
    let err = SchemaRegistry::load(&[b64_entry("d", doc)], "d").await.unwrap_err();
    assert!(matches!(err, SchemaError::Meta { .. }), "{err}");

    // Root not an object.
    let err = SchemaRegistry::load(&[b64_entry("e", "[]")], "e").await.unwrap_err();
    assert!(matches!(err, SchemaError::Meta { .. }), "{err}");

    // Not a valid JSON Schema.
    let doc = r#"{"properties":{"traits":{"type":"object","properties":{"a":{"type":"nonsense"}}}}}"#;
    let err = SchemaRegistry::load(&[b64_entry("f", doc)], "f").await.unwrap_err();
    assert!(matches!(err, SchemaError::Compile { ref id, .. } if id == "f"), "{err}");

    // Bad extension value.
    let doc = r#"{"properties":{"traits":{"type":"object","properties":{"a":{"type":"string","ory.sh/kratos":{"verification":{"via":"pigeon"}}}}}}}"#;
    let err = SchemaRegistry::load(&[b64_entry("g", doc)], "g").await.unwrap_err();
    assert!(err.to_string().contains("ory.sh/kratos"), "{err}");

    // Unknown extension key.
    let doc = r#"{"properties":{"traits":{"type":"object","properties":{"a":{"type":"string","ory.sh/kratos":{"credentials":{"magic":{}}}}}}}}"#;
    assert!(SchemaRegistry::load(&[b64_entry("h", doc)], "h").await.is_err());

    // Verification with a disallowed format.
    let doc = r#"{"properties":{"traits":{"type":"object","properties":{"a":{"type":"string","format":"uri","ory.sh/kratos":{"verification":{"via":"email"}}}}}}}"#;
    let err = SchemaRegistry::load(&[b64_entry("i", doc)], "i").await.unwrap_err();
    assert!(err.to_string().contains("format"), "{err}");

    // Unsupported scheme.
    let entries = vec![("j".to_owned(), "ftp://example.com/x.json".to_owned())];
    let err = SchemaRegistry::load(&entries, "j").await.unwrap_err();
    assert!(matches!(err, SchemaError::UnsupportedUrl { .. }), "{err}");
}

#[tokio::test]
async fn default_id_rules() {
    let err = SchemaRegistry::load(&[b64_entry("one", CODE_SCHEMA)], "default")
        .await
        .unwrap_err();
    assert!(matches!(err, SchemaError::DefaultMissing { ref id } if id == "default"));

    let reg = SchemaRegistry::load(&[], "default").await.unwrap();
    assert!(reg.is_empty());
    assert!(reg.default_schema().is_none());
    assert_eq!(reg.default_id(), "default");

    let dup = [b64_entry("x", CODE_SCHEMA), b64_entry("x", CODE_SCHEMA)];
    let err = SchemaRegistry::load(&dup, "x").await.unwrap_err();
    assert!(matches!(err, SchemaError::DuplicateId { .. }));
}

#[tokio::test]
async fn schema_id_encoding() {
    assert_eq!(encode_schema_id("default"), "ZGVmYXVsdA");
    assert_eq!(decode_schema_id("ZGVmYXVsdA"), "default");
    assert_eq!(decode_schema_id("default"), "default");
    assert_eq!(decode_schema_id("my schema!"), "my schema!");
    let reg = SchemaRegistry::load(&[b64_entry("default", CODE_SCHEMA)], "default")
        .await
        .unwrap();
    assert_eq!(reg.get("ZGVmYXVsdA").unwrap().id, "default");
    assert_eq!(reg.get("default").unwrap().id, "default");
    assert_eq!(reg.get("").unwrap().id, "default");
    assert!(reg.get("other").is_none());
}

// ---------------------------------------------------------------- extension

#[test]
fn code_example_schema_extracts_everything() {
    let out = code_schema()
        .validate_traits(&json!({"email": "Jane@Example.com", "tos": true}))
        .unwrap();
    assert_eq!(out.identifiers_for("password"), ["jane@example.com"]);
    assert_eq!(out.identifiers_for("code"), ["jane@example.com"]);
    assert!(out.identifiers_for("webauthn").is_empty());
    assert_eq!(out.code_addresses, [addr("email", "jane@example.com")]);
    assert_eq!(out.verifiable_addresses, [addr("email", "jane@example.com")]);
    assert_eq!(out.recovery_addresses, [addr("email", "jane@example.com")]);
    assert_eq!(out.passkey_display_name, None);
}

#[test]
fn passkey_example_schema_extracts_identifiers_and_display_name() {
    let out = passkey_schema()
        .validate_traits(&json!({"email": "Jane@Example.com", "website": "https://example.com"}))
        .unwrap();
    assert_eq!(out.identifiers_for("password"), ["jane@example.com"]);
    assert_eq!(out.identifiers_for("webauthn"), ["jane@example.com"]);
    assert!(!out.identifiers.contains_key("passkey"));
    assert!(!out.identifiers.contains_key("code"));
    assert_eq!(out.passkey_display_name.as_deref(), Some("Jane@Example.com"));
    assert!(out.code_addresses.is_empty());
    assert!(out.verifiable_addresses.is_empty());
    assert!(out.recovery_addresses.is_empty());
}

#[test]
fn normalisation_trims_and_lowercases() {
    let schema = compile(traits_schema(json!({
        "type": "object",
        "properties": {
            "email": {
                "type": "string",
                "ory.sh/kratos": {
                    "credentials": {
                        "password": {"identifier": true},
                        "code": {"identifier": true}
                    },
                    "verification": {"via": "email"},
                    "recovery": {"via": "email"}
                }
            }
        }
    })));
    let out = schema
        .validate_traits(&json!({"email": "  Jane@Example.COM "}))
        .unwrap();
    assert_eq!(out.identifiers_for("password"), ["jane@example.com"]);
    assert_eq!(out.identifiers_for("code"), ["jane@example.com"]);
    assert_eq!(out.code_addresses, [addr("email", "jane@example.com")]);
    assert_eq!(out.verifiable_addresses, [addr("email", "jane@example.com")]);
    assert_eq!(out.recovery_addresses, [addr("email", "jane@example.com")]);

    // Without `format: email` the extension still refuses non-addresses.
    let errs = errors_of(&schema, json!({"email": "not an address"}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].instance_ptr, "#/traits/email");
    assert_eq!(errs[0].message.id, 4000040);
}

#[test]
fn array_traits_each_contribute_and_deduplicate() {
    let schema = compile(traits_schema(json!({
        "type": "object",
        "properties": {
            "emails": {
                "type": "array",
                "items": {
                    "type": "string",
                    "format": "email",
                    "ory.sh/kratos": {
                        "credentials": {"code": {"identifier": true, "via": "email"}},
                        "verification": {"via": "email"}
                    }
                }
            }
        }
    })));
    let out = schema
        .validate_traits(&json!({"emails": ["b@example.com", "A@example.com", "a@example.com"]}))
        .unwrap();
    assert_eq!(out.identifiers_for("code"), ["a@example.com", "b@example.com"]);
    assert_eq!(
        out.code_addresses,
        [addr("email", "a@example.com"), addr("email", "b@example.com")]
    );
    assert_eq!(
        out.verifiable_addresses,
        [addr("email", "b@example.com"), addr("email", "a@example.com")]
    );

    let errs = errors_of(&schema, json!({"emails": ["ok@example.com", "nope"]}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].instance_ptr, "#/traits/emails/1");
    assert_eq!(errs[0].message.id, 4000040);
}

#[test]
fn nested_traits_and_local_refs() {
    let schema = compile(json!({
        "$id": "https://example.com/person.schema.json",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {
            "email": {
                "type": "string",
                "format": "email",
                "ory.sh/kratos": {"credentials": {"webauthn": {"identifier": true}}}
            }
        },
        "type": "object",
        "properties": {
            "traits": {
                "type": "object",
                "properties": {
                    "contact": {"$ref": "#/definitions/email"},
                    "name": {
                        "type": "object",
                        "properties": {
                            "first": {
                                "type": "string",
                                "minLength": 2,
                                "ory.sh/kratos": {"credentials": {"totp": {"account_name": true}}}
                            },
                            "last": {"type": "string"}
                        },
                        "required": ["first"]
                    }
                },
                "required": ["name"]
            }
        }
    }));
    let out = schema
        .validate_traits(&json!({"contact": "Me@Example.com", "name": {"first": "Ada", "last": "L"}}))
        .unwrap();
    assert_eq!(out.identifiers_for("webauthn"), ["me@example.com"]);
    assert_eq!(out.totp_account_name.as_deref(), Some("Ada"));

    let errs = errors_of(&schema, json!({"name": {"last": "L"}}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].instance_ptr, "#/traits/name/first");
    assert_eq!(errs[0].message.text, "Property first is missing.");

    let errs = errors_of(&schema, json!({"name": {"first": "A"}}));
    assert_eq!(errs[0].instance_ptr, "#/traits/name/first");
    assert_eq!(errs[0].message.id, 4000003);
}

#[test]
fn sms_addresses_are_normalised_or_rejected() {
    let schema = compile(traits_schema(json!({
        "type": "object",
        "properties": {
            "phone": {
                "type": "string",
                "format": "tel",
                "ory.sh/kratos": {
                    "credentials": {"code": {"identifier": true, "via": "sms"}},
                    "verification": {"via": "sms"},
                    "recovery": {"via": "sms"}
                }
            },
            "backup": {
                "type": "string",
                "ory.sh/kratos": {"recovery": {"via": "sms"}}
            }
        }
    })));
    let out = schema.validate_traits(&json!({"phone": "+1 (555) 123-4567"})).unwrap();
    assert_eq!(out.identifiers_for("code"), ["+15551234567"]);
    assert_eq!(out.code_addresses, [addr("sms", "+15551234567")]);
    assert_eq!(out.verifiable_addresses, [addr("sms", "+15551234567")]);
    assert_eq!(out.recovery_addresses, [addr("sms", "+15551234567")]);

    // Format check and extension both fail: reported once.
    let errs = errors_of(&schema, json!({"phone": "12345"}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].instance_ptr, "#/traits/phone");
    assert_eq!(errs[0].message.id, 4000041);
    assert_eq!(errs[0].message.text, "Enter a valid phone number");
    assert_eq!(errs[0].message.context["value"], "12345");

    // No format: the extension alone rejects it.
    let errs = errors_of(&schema, json!({"backup": "call me"}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].instance_ptr, "#/traits/backup");
    assert_eq!(errs[0].message.id, 4000041);
}

#[test]
fn normaliser_helpers() {
    assert_eq!(normalize_identifier("  ÄBC@Example.COM "), "äbc@example.com");
    assert_eq!(normalize_email(" A@B.Co ").as_deref(), Some("a@b.co"));
    assert_eq!(normalize_email("a b@c.d"), None);
    assert_eq!(normalize_email("@c.d"), None);
    assert_eq!(normalize_phone("+49 30-1234.5678").as_deref(), Some("+493012345678"));
    assert_eq!(normalize_phone("0301234567"), None);
    assert_eq!(normalize_phone("+1234567"), None);
    assert_eq!(normalize_phone("+1234567890123456"), None);
}

// ---------------------------------------------------------------- validation errors

#[test]
fn required_errors_point_at_missing_property() {
    let errs = errors_of(&code_schema(), json!({}));
    assert_eq!(errs.len(), 2);
    let email = errs.iter().find(|e| e.instance_ptr == "#/traits/email").unwrap();
    assert_eq!(email.message.id, 4000002);
    assert_eq!(email.message.text, "Property email is missing.");
    assert_eq!(email.message.r#type, "error");
    assert_eq!(
        Value::Object(email.message.context.clone()),
        json!({"property": "email"})
    );
    let tos = errs.iter().find(|e| e.instance_ptr == "#/traits/tos").unwrap();
    assert_eq!(tos.message.text, "Property tos is missing.");
}

#[test]
fn email_format_error() {
    let errs = errors_of(&code_schema(), json!({"email": "not-an-email", "tos": true}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].instance_ptr, "#/traits/email");
    assert_eq!(errs[0].message.id, 4000040);
    assert_eq!(errs[0].message.text, "Enter a valid email address");
    assert_eq!(
        Value::Object(errs[0].message.context.clone()),
        json!({"value": "not-an-email"})
    );

    // Like upstream, `format: email` rejects padded input before normalisation.
    let errs = errors_of(&code_schema(), json!({"email": " a@example.com", "tos": true}));
    assert_eq!(errs[0].message.id, 4000040);
}

#[test]
fn min_length_error() {
    let errs = errors_of(
        &passkey_schema(),
        json!({"email": "a@example.com", "website": "http://a"}),
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].instance_ptr, "#/traits/website");
    assert_eq!(errs[0].message.id, 4000003);
    assert_eq!(errs[0].message.text, "length must be >= 10, but got 8");
    assert_eq!(
        Value::Object(errs[0].message.context.clone()),
        json!({"min_length": 10, "actual_length": 8})
    );
}

#[test]
fn additional_properties_error() {
    let errs = errors_of(&passkey_schema(), json!({"email": "a@example.com", "foo": 1}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].instance_ptr, "#/traits");
    assert_eq!(errs[0].message.id, 4000001);
    assert_eq!(errs[0].message.text, r#"additionalProperties "foo" not allowed"#);
    assert_eq!(
        errs[0].message.context["reason"],
        r#"additionalProperties "foo" not allowed"#
    );
}

#[test]
fn type_enum_bounds_pattern_errors() {
    let schema = compile(traits_schema(json!({
        "type": "object",
        "properties": {
            "email": {"type": "string"},
            "plan": {"type": "string", "enum": ["free", "pro"]},
            "age": {"type": "integer", "minimum": 18, "maximum": 130},
            "code": {"type": "string", "pattern": "^[0-9]+$", "maxLength": 4},
            "tags": {"type": "array", "maxItems": 1, "uniqueItems": true},
            "kind": {"const": "person"}
        }
    })));
    let find = |errs: &[TraitError], ptr: &str| -> UiText {
        errs.iter().find(|e| e.instance_ptr == ptr).unwrap().message.clone()
    };

    let errs = errors_of(&schema, json!({"email": 5}));
    let m = find(&errs, "#/traits/email");
    assert_eq!((m.id, m.text.as_str()), (4000026, "expected string, but got number"));
    assert_eq!(m.context["allowed_types"], json!(["string"]));
    assert_eq!(m.context["actual_type"], "number");

    let errs = errors_of(
        &schema,
        json!({"plan": "gold", "age": 12, "code": "12a45", "kind": "bot"}),
    );
    let m = find(&errs, "#/traits/plan");
    assert_eq!(
        (m.id, m.text.as_str()),
        (4000001, r#"value must be one of "free", "pro""#)
    );
    let m = find(&errs, "#/traits/age");
    assert_eq!((m.id, m.text.as_str()), (4000018, "must be >= 18 but found 12"));
    assert_eq!(Value::Object(m.context), json!({"minimum": 18, "actual": 12}));
    let code: Vec<u32> = errs
        .iter()
        .filter(|e| e.instance_ptr == "#/traits/code")
        .map(|e| e.message.id)
        .collect();
    assert!(code.contains(&4000004) && code.contains(&4000017), "{code:?}");
    let m = find(&errs, "#/traits/kind");
    assert_eq!(
        (m.id, m.text.as_str()),
        (4000029, r#"must be equal to constant "person""#)
    );

    let errs = errors_of(&schema, json!({"age": 200, "tags": ["a", "a"]}));
    let m = find(&errs, "#/traits/age");
    assert_eq!((m.id, m.text.as_str()), (4000020, "must be <= 130 but found 200"));
    let tags: Vec<u32> = errs
        .iter()
        .filter(|e| e.instance_ptr == "#/traits/tags")
        .map(|e| e.message.id)
        .collect();
    assert!(tags.contains(&4000023) && tags.contains(&4000025), "{tags:?}");
}

#[test]
fn traits_must_be_an_object() {
    let errs = errors_of(&code_schema(), json!("nope"));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].instance_ptr, "#/traits");
    assert_eq!(errs[0].message.id, 4000026);
    assert_eq!(errs[0].message.text, "expected object, but got string");
}

#[test]
fn ui_text_wire_format() {
    let with = serde_json::to_value(UiText::required("email")).unwrap();
    assert_eq!(
        with,
        json!({"id": 4000002, "text": "Property email is missing.", "type": "error", "context": {"property": "email"}})
    );
    let err = TraitError::new("#/", UiText::constant(&json!({"a": 1})));
    let without = serde_json::to_value(err).unwrap();
    assert_eq!(
        without,
        json!({"instance_ptr": "#/", "message": {"id": 4000030, "text": "const failed", "type": "error"}})
    );
}
