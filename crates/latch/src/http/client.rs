//! What kind of client sent a request and what it carries: content negotiation (browser vs
//! SPA), cookies, session credentials and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

use crate::deps::Deps;
use crate::flow::request::Request;
use crate::session::Presented;
use crate::session::manager::{self, ClientInfo};

/// Kratos' negotiation between `text/html` and `application/json`
/// (`x/isjsonrequest.go`): exact matches beat `type/*` beats `*/*`; ties prefer HTML.
pub fn negotiates_json(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim().is_empty() {
        return false;
    }
    score(accept, "application/json") > score(accept, "text/html")
}

/// The (quality, specificity) an Accept header gives one media type.
fn score(accept: &str, offer: &str) -> (u32, u8) {
    let (otype, _) = offer.split_once('/').unwrap_or((offer, ""));
    let mut best: (u32, u8) = (0, 0);
    for part in accept.split(',') {
        let mut it = part.split(';');
        let range = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1000u32;
        for p in it {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v
                    .trim()
                    .parse::<f32>()
                    .map(|f| (f.clamp(0.0, 1.0) * 1000.0) as u32)
                    .unwrap_or(0);
            }
        }
        let spec = if range == offer {
            3
        } else if range.strip_suffix("/*").is_some_and(|t| t == otype) {
            2
        } else if range == "*/*" {
            1
        } else {
            0
        };
        if spec > best.1 || (spec == best.1 && spec > 0 && q > best.0) {
            best = (q, spec);
        }
    }
    if best.1 == 0 { (0, 0) } else { best }
}

/// Kratos' `IsJSONRequest`: negotiated JSON, or a JSON body.
pub fn is_json_request(headers: &HeaderMap) -> bool {
    negotiates_json(headers)
        || headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(super::extract::is_json_content_type)
}

/// All cookies of a request by name (first wins).
pub fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        if let Ok(s) = v.to_str() {
            for pair in s.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=') {
                    out.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
                }
            }
        }
    }
    out
}

/// One cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie_str(headers, name).map(str::to_string)
}

/// One cookie's value, borrowed from the request (as [`cookies`] reads them: first wins,
/// surrounding quotes dropped), without collecting the others.
pub fn cookie_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// Whether any `Cookie` header is present and non-empty.
pub fn has_cookie_header(headers: &HeaderMap) -> bool {
    headers.get_all(header::COOKIE).iter().any(|v| !v.as_bytes().is_empty())
}

/// The session credentials a request presents: `X-Session-Token`, then the session cookie,
/// then `Authorization: Bearer`. Kratos: `session.extractToken`.
pub fn presented_session(deps: &Deps, headers: &HeaderMap) -> Option<Presented> {
    if let Some(t) = headers
        .get("x-session-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(Presented {
            token: t.to_string(),
            from_cookie: false,
        });
    }
    if let Some(c) = cookie_str(headers, &deps.config.session.cookie.name)
        && let Some(t) = manager::open_cookie(deps, c)
    {
        return Some(Presented {
            token: t,
            from_cookie: true,
        });
    }
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    let mut parts = auth.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(scheme), Some(t), None) if scheme.eq_ignore_ascii_case("bearer") && !t.is_empty() => Some(Presented {
            token: t.to_string(),
            from_cookie: false,
        }),
        _ => None,
    }
}

/// Reads everything the flow engine needs from a request, once (see [`Request`]).
pub fn flow_request(
    deps: &Deps,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    path_and_query: String,
    query: Option<String>,
) -> Request {
    let sent = cookies(headers);
    Request {
        path_and_query,
        query,
        get_submission: false,
        accept_json: negotiates_json(headers),
        json_request: is_json_request(headers),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        ajax: headers
            .get("sec-fetch-mode")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| m == "cors" || m == "same-origin"),
        has_origin: headers.contains_key(header::ORIGIN),
        has_cookies: has_cookie_header(headers),
        foreign_cookies: sent
            .iter()
            .any(|(k, _)| !(k.starts_with("__cf") || k.starts_with("_cf") || k.starts_with("cf_"))),
        csrf_cookie: csrf_cookie_token(deps, headers),
        session: presented_session(deps, headers),
        client: client_info(deps, headers, peer),
        hook: hook_request(headers),
    }
}

/// What a `web_hook` may see of a request: allow-listed headers and cookies. The method is
/// `GET` until the caller says otherwise (submissions).
fn hook_request(headers: &HeaderMap) -> crate::flow::request::HookRequest {
    let headers = headers
        .iter()
        .filter_map(|(name, value)| {
            let canonical = crate::webhook::canonical_header(name.as_str());
            let kept = canonical == "Cookie" || crate::webhook::HEADER_ALLOW_LIST.contains(&canonical.as_str());
            let value = value.to_str().ok().filter(|_| kept)?;
            Some((canonical, value.to_string()))
        })
        .collect();
    crate::flow::request::HookRequest {
        method: "GET".into(),
        headers,
    }
}

/// The CSRF cookie's real token on a request, if it carries a valid one.
pub fn csrf_cookie_token(deps: &Deps, headers: &HeaderMap) -> Option<[u8; 32]> {
    cookie(headers, &deps.csrf_cookie_name).and_then(|v| crate::crypto::csrf::decode_cookie(&v))
}

/// Where a request came from, for session devices and rate limits.
pub fn client_info(deps: &Deps, headers: &HeaderMap, peer: Option<SocketAddr>) -> ClientInfo {
    let h = |n: &str| {
        headers
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let location = match (h("cf-ipcity"), h("cf-ipcountry")) {
        (Some(c), Some(k)) => Some(format!("{c}, {k}")),
        (Some(c), None) => Some(c),
        (None, Some(k)) => Some(k),
        (None, None) => None,
    };
    ClientInfo {
        ip: client_ip(
            headers,
            peer,
            &deps.config.serve.public.trusted_proxies,
            &deps.config.latch.client_ip_headers,
        ),
        user_agent: h("user-agent"),
        location,
    }
}

/// The client's IP: the peer address, or, when the peer is a configured trusted proxy
/// (`serve.public.trusted_proxies`), the right-most `X-Forwarded-For` entry that is not itself
/// a trusted proxy. Single-value headers such as `CF-Connecting-IP`, `True-Client-IP` or
/// `X-Real-IP` are believed only when listed in `latch.client_ip_headers` (and only from a
/// trusted proxy): anyone can send them, and rate limits are keyed on this address.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted: &[String],
    ip_headers: &[String],
) -> Option<String> {
    let peer_ip = peer.map(|p| p.ip());
    let from_trusted = peer_ip.is_some_and(|ip| trusted.iter().any(|t| ip_matches(ip, t)));
    if from_trusted {
        for h in ip_headers {
            if let Some(ip) = headers
                .get(h.trim().to_ascii_lowercase().as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
            {
                return Some(ip.to_string());
            }
        }
        if let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            // The right-most address that is not itself a trusted proxy.
            for part in xff.split(',').rev() {
                let Ok(ip) = part.trim().parse::<IpAddr>() else {
                    // Garbage in the chain: stop believing it and use the peer.
                    break;
                };
                if !trusted.iter().any(|t| ip_matches(ip, t)) {
                    return Some(ip.to_string());
                }
            }
        }
    }
    peer_ip.map(|ip| ip.to_string())
}

/// `ip` equals an address or lies in a CIDR range.
pub fn ip_matches(ip: IpAddr, rule: &str) -> bool {
    let rule = rule.trim();
    match rule.split_once('/') {
        None => rule.parse::<IpAddr>().is_ok_and(|r| r == ip),
        Some((net, bits)) => {
            let Ok(bits) = bits.parse::<u32>() else { return false };
            match (net.parse::<IpAddr>(), ip) {
                (Ok(IpAddr::V4(n)), IpAddr::V4(i)) if bits <= 32 => {
                    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                    (u32::from(n) & mask) == (u32::from(i) & mask)
                }
                (Ok(IpAddr::V6(n)), IpAddr::V6(i)) if bits <= 128 => {
                    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                    (u128::from(n) & mask) == (u128::from(i) & mask)
                }
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(accept: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        m
    }

    #[test]
    fn one_cookie_is_read_like_all_cookies() {
        let mut m = HeaderMap::new();
        m.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; b = \"two\" ;c=3=3; junk; a=9"),
        );
        m.append(header::COOKIE, HeaderValue::from_static("d=4; b=late"));
        for name in ["a", "b", "c", "d", "junk", "x", ""] {
            let from_all = cookies(&m).into_iter().find(|(k, _)| k == name).map(|(_, v)| v);
            assert_eq!(cookie_str(&m, name).map(str::to_string), from_all, "{name}");
            assert_eq!(cookie(&m, name), from_all, "{name}");
        }
        assert_eq!(cookie_str(&m, "b"), Some("two"));
        assert_eq!(cookie_str(&m, "c"), Some("3=3"));
    }

    #[test]
    fn negotiation_matches_kratos() {
        assert!(!negotiates_json(&h("*/*")), "fetch() default gets redirects");
        assert!(negotiates_json(&h("application/json")));
        assert!(negotiates_json(&h("application/json, text/plain, */*")), "axios");
        assert!(!negotiates_json(&h(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(negotiates_json(&h("text/html;q=0.5, application/json")));
        assert!(!negotiates_json(&HeaderMap::new()));
    }

    #[test]
    fn cidr_matching() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(ip_matches(ip, "10.0.0.0/8"));
        assert!(!ip_matches(ip, "192.168.0.0/16"));
        assert!(ip_matches(ip, "10.1.2.3"));
        assert!(ip_matches("::1".parse().unwrap(), "::1/128"));
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let mut m = HeaderMap::new();
        m.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.0.0.2"));
        let peer: SocketAddr = "10.0.0.1:1234".parse().unwrap();
        m.insert("cf-connecting-ip", HeaderValue::from_static("198.51.100.7"));
        assert_eq!(client_ip(&m, Some(peer), &[], &[]), Some("10.0.0.1".into()));
        assert_eq!(
            client_ip(&m, Some(peer), &["10.0.0.0/8".into()], &[]),
            Some("203.0.113.9".into()),
            "CF-Connecting-IP is ignored unless configured"
        );
        assert_eq!(
            client_ip(&m, Some(peer), &["10.0.0.0/8".into()], &["CF-Connecting-IP".into()]),
            Some("198.51.100.7".into())
        );
        let untrusted: SocketAddr = "192.0.2.1:1".parse().unwrap();
        assert_eq!(
            client_ip(
                &m,
                Some(untrusted),
                &["10.0.0.0/8".into()],
                &["cf-connecting-ip".into()]
            ),
            Some("192.0.2.1".into()),
            "headers from an untrusted peer are never believed"
        );
    }
}
