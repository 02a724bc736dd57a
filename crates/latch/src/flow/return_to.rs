//! `return_to` validation. Kratos: `x/redir/secure_redirect.go`.
//!
//! A return URL is allowed when its scheme and host match an entry of
//! `selfservice.allowed_return_urls` (hosts may be `*.example.com` wildcards) and its path
//! starts with the entry's path, or when it points under the public base URL.

use url::Url;

/// Resolves and validates a requested `return_to` against the allow-list. Relative URLs are
/// resolved against `default_return`. `Err` carries the rejected URL.
pub fn validate(
    requested: &str,
    allowed: &[String],
    public_base: &Url,
    default_return: Option<&Url>,
) -> Result<Url, String> {
    let parsed = match Url::parse(requested) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let base = default_return.unwrap_or(public_base);
            base.join(requested).map_err(|_| requested.to_string())?
        }
        Err(_) => return Err(requested.to_string()),
    };
    let mut candidates: Vec<Url> = allowed.iter().filter_map(|a| Url::parse(a).ok()).collect();
    candidates.push(public_base.clone());
    if candidates.iter().any(|a| matches(&parsed, a)) {
        Ok(parsed)
    } else {
        Err(requested.to_string())
    }
}

fn matches(u: &Url, allowed: &Url) -> bool {
    if !u.scheme().eq_ignore_ascii_case(allowed.scheme()) {
        return false;
    }
    let host = u.host_str().unwrap_or("").to_ascii_lowercase();
    let ahost = allowed.host_str().unwrap_or("").to_ascii_lowercase();
    let host_ok = match ahost.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => host == ahost,
    };
    if !host_ok || u.port_or_known_default() != allowed.port_or_known_default() {
        return false;
    }
    u.path().starts_with(allowed.path().trim_end_matches('/')) || allowed.path() == "/"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://auth.example.com/").unwrap()
    }

    #[test]
    fn allow_list_rules() {
        let allowed = vec![
            "https://app.example.com/dashboard".to_string(),
            "https://*.example.org".to_string(),
        ];
        assert!(validate("https://app.example.com/dashboard/x", &allowed, &base(), None).is_ok());
        assert!(validate("https://app.example.com/other", &allowed, &base(), None).is_err());
        assert!(validate("http://app.example.com/dashboard", &allowed, &base(), None).is_err());
        assert!(validate("https://a.example.org/", &allowed, &base(), None).is_ok());
        assert!(validate("https://example.org/", &allowed, &base(), None).is_err());
        assert!(validate("https://evil.com/", &allowed, &base(), None).is_err());
        assert!(validate("https://auth.example.com/self-service/x", &[], &base(), None).is_ok());
        let d = Url::parse("https://app.example.com/").unwrap();
        assert_eq!(
            validate("/dashboard/y", &allowed, &base(), Some(&d)).unwrap().as_str(),
            "https://app.example.com/dashboard/y"
        );
    }
}
