use super::*;

#[test]
fn smtp_uri_with_credentials_requires_starttls() {
    let u = parse_connection_uri("smtp://us%40er:p%2Fss@mail.example.com:2525/").unwrap();
    assert_eq!(u.host, "mail.example.com");
    assert_eq!(u.port, 2525);
    assert_eq!(u.security, Security::StartTls);
    assert_eq!(u.username.as_deref(), Some("us@er"));
    assert_eq!(u.password.as_deref(), Some("p/ss"));
    assert!(!u.skip_ssl_verify);
    assert_eq!(u.server_name, "mail.example.com");
    assert!(!format!("{u:?}").contains("p/ss"), "Debug hides the password");
}

#[test]
fn smtp_uri_flags_and_defaults() {
    let u = parse_connection_uri("smtp://127.0.0.1:1025/?disable_starttls=true").unwrap();
    assert_eq!(u.security, Security::None);
    assert_eq!(u.username, None);
    let u = parse_connection_uri("smtps://mail.example.com/?skip_ssl_verify=true&server_name=example.com").unwrap();
    assert_eq!(u.security, Security::Implicit);
    assert_eq!(u.port, 465);
    assert!(u.skip_ssl_verify);
    assert_eq!(u.server_name, "example.com");
    let u = parse_connection_uri("smtps://mail.example.com/?disable_starttls=true").unwrap();
    assert_eq!(u.security, Security::Implicit, "smtps stays implicit TLS");
    let u = parse_connection_uri("smtp://mail.example.com?disable_starttls=false").unwrap();
    assert_eq!((u.security, u.port), (Security::StartTls, 587));
    let u = parse_connection_uri("smtp://[::1]:25/").unwrap();
    assert_eq!(u.host, "::1");
}

#[test]
fn bad_smtp_uris_are_refused_without_echoing_secrets() {
    for bad in [
        "http://mail.example.com/",
        "smtp:///nohost",
        "not a url",
        "smtp://u:secret@h/?disable_starttls=yes",
    ] {
        let e = parse_connection_uri(bad).unwrap_err().to_string();
        assert!(e.starts_with("courier.smtp: "), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }
}

#[tokio::test]
async fn mailer_checks_from_address_and_headers() {
    let mut smtp = Smtp {
        connection_uri: Some("smtp://127.0.0.1:2525/?disable_starttls=true".into()),
        ..Smtp::default()
    };
    assert!(Mailer::from_config(&smtp).unwrap().is_some());
    smtp.headers.insert("Subject".into(), "x".into());
    assert!(
        Mailer::from_config(&smtp)
            .unwrap_err()
            .to_string()
            .contains("headers.Subject")
    );
    smtp.headers.clear();
    smtp.headers.insert("X-Bad".into(), "a\r\nBcc: evil@example.com".into());
    assert!(Mailer::from_config(&smtp).is_err());
    smtp.headers.clear();
    smtp.from_address = "not-an-address".into();
    assert!(
        Mailer::from_config(&smtp)
            .unwrap_err()
            .to_string()
            .contains("from_address")
    );
    smtp.connection_uri = None;
    assert!(Mailer::from_config(&smtp).unwrap().is_none());
}
