//! Kratos' `security_csrf_violation` error, with an explanation of what failed and what to
//! check (the most common Kratos support topic).

use http::StatusCode;
use serde_json::json;

use crate::deps::Deps;
use crate::error::ApiError;

/// Why a browser request failed the CSRF check; each says what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfFailure {
    /// No `Cookie` header at all.
    NoCookies,
    /// Cookies, but not the CSRF cookie.
    NoCsrfCookie,
    /// The cookie is there but the body has no `csrf_token`.
    TokenMissing,
    /// Cookie and token (or flow) do not belong together.
    Mismatch,
}

/// Kratos' 403 `security_csrf_violation`, with a `details.reject_reason` that explains the
/// failure and what to check.
pub fn csrf_error(deps: &Deps, ajax: bool, failure: CsrfFailure) -> ApiError {
    let base = deps.public_base.as_str();
    let c = &deps.config.cookies;
    let name = &deps.csrf_cookie_name;
    let domain = c.domain.clone().unwrap_or_else(|| "unset (host-only)".into());
    let reject_reason = match failure {
        CsrfFailure::NoCookies => format!(
            "The HTTP Cookie Header is empty or not set. The request carried no cookies at all, so the anti-CSRF cookie {name} \
             set when the flow was created did not come back. Check that: the browser uses the same host as serve.public.base_url \
             ({base}) (cookies for localhost are not sent to 127.0.0.1 and vice versa); single-page apps send requests with \
             credentials: 'include' (fetch) or withCredentials: true (axios) and CORS allows credentials; a backend or proxy in \
             front of Latch forwards the browser's Cookie header and returns Latch's Set-Cookie headers; the cookie was not \
             dropped because it is Secure and the page uses plain http (run Latch with --dev locally)."
        ),
        CsrfFailure::NoCsrfCookie => format!(
            "The HTTP Cookie Header was set but did not include the anti-CSRF cookie. Latch expected a cookie named {name} \
             (derived from serve.public.base_url = {base}). Check that the flow was created through that same base URL, that \
             cookies.domain ({domain}) covers the host the browser uses, that cookies.path ({}) covers /self-service/, and that \
             a proxy in front of Latch forwards every cookie.",
            c.path
        ),
        CsrfFailure::TokenMissing => "The anti-CSRF cookie was found but the CSRF token was not included in the HTTP request body \
             (csrf_token) nor in the HTTP Header (X-CSRF-Token). Submit the value of the csrf_token node from the flow's ui.nodes \
             with the form."
            .to_string(),
        CsrfFailure::Mismatch => "The HTTP Cookie Header was set and a CSRF token was sent but they do not match. We recommend \
             deleting all cookies for this domain and retrying the flow. This usually means the flow was created or fetched with \
             another anti-CSRF cookie (another browser, or the cookie was renewed by signing in or out): fetch the flow again and \
             submit its current csrf_token."
            .to_string(),
    };
    let hint = if ajax {
        "We detected an AJAX call, please ensure that CORS is enabled and configured correctly, and that your AJAX code sends \
         cookies and has credentials enabled. For further debugging, check your Browser's Network Tab to see what cookies are \
         included or excluded."
    } else {
        "We detected a regular browser or API request. If this request was made by a server (for example a backend rendering \
         the UI), forward the browser's Cookie header to Latch and the Set-Cookie headers back to the browser."
    };
    let failure_id = match failure {
        CsrfFailure::NoCookies => "cookie_header_missing",
        CsrfFailure::NoCsrfCookie => "csrf_cookie_missing",
        CsrfFailure::TokenMissing => "csrf_token_missing",
        CsrfFailure::Mismatch => "csrf_token_mismatch",
    };
    ApiError::new(StatusCode::FORBIDDEN)
        .id("security_csrf_violation")
        .reason(
            "Please retry the flow and optionally clear your cookies. The request was rejected to protect you from \
             Cross-Site-Request-Forgery (CSRF) which could cause account takeover, leaking personal information, and other \
             serious security issues.",
        )
        .message("the request was rejected to protect you from Cross-Site-Request-Forgery")
        .details(json!({
            "docs": "https://www.ory.com/docs/troubleshooting/csrf",
            "hint": hint,
            "reject_reason": reject_reason,
            "latch_failure": failure_id,
            "expected_cookie": {
                "name": name,
                "domain": c.domain,
                "path": c.path,
                "secure": c.secure.unwrap_or(!deps.config.dev),
            },
            "public_base_url": base,
        }))
}
