//! The built-in UI under `/ui/`: server-rendered flow forms, the CSP, the error page that
//! explains CSRF failures, and the welcome page.

use reqwest::{Method, StatusCode};

use crate::both;
use crate::client::{Client, Kind};
use crate::flows::register;
use crate::harness::{Backend, TestServer};

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

/// `nonce-…` values of a CSP header.
fn csp_nonces(csp: &str) -> Vec<String> {
    csp.split_whitespace()
        .filter_map(|t| t.trim_matches(['\'', ';']).strip_prefix("nonce-").map(str::to_string))
        .collect()
}

/// Follows the browser through `/ui/<flow>` → init → `/ui/<flow>?flow=`; returns the final
/// response.
async fn open_page(c: &Client<'_>, flow: &str) -> reqwest::Response {
    let res = c.send(c.req(Method::GET, &c.url(&format!("/ui/{flow}")))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let init = location(&res);
    assert_eq!(init, c.url(&format!("/self-service/{flow}/browser")));
    let res = c.send(c.req(Method::GET, &init)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = location(&res);
    assert!(
        page.starts_with(&c.url(&format!("/ui/{flow}?flow="))),
        "unset ui_url points at the built-in page: {page}"
    );
    c.send(c.req(Method::GET, &page)).await
}

async fn pages_render_flows_as_forms_with_a_strict_csp(backend: Backend) {
    let srv = TestServer::with_config(
        backend,
        serde_json::json!({"selfservice": {"flows": {"verification": {"enabled": true}, "recovery": {"enabled": true}}}}),
    )
    .await;
    let c = Client::new(&srv, Kind::Browser);
    for flow in ["login", "registration", "verification", "recovery"] {
        let res = open_page(&c, flow).await;
        assert_eq!(res.status(), StatusCode::OK, "{flow}");
        let h = res.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["x-frame-options"], "DENY");
        let csp = h["content-security-policy"].to_str().unwrap().to_string();
        for part in [
            "default-src 'none'",
            "style-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{flow}: {part} in {csp}");
        }
        assert!(
            csp.contains(&format!("form-action 'self' {}/", srv.public)),
            "{flow}: form-action allows the public base URL: {csp}"
        );
        let html = res.text().await.unwrap();
        let action = format!("{}/self-service/{flow}?flow=", srv.public);
        assert!(
            html.contains(&format!("<form class=\"flow\" action=\"{action}")) && html.contains("method=\"post\""),
            "{flow}: form posts to ui.action: {html}"
        );
        assert!(html.contains("name=\"csrf_token\" value=\""), "{flow}: {html}");
        // Every script on the page carries a nonce the CSP names; no inline handlers.
        let nonces = csp_nonces(&csp);
        assert!(!nonces.is_empty(), "{csp}");
        for part in html.split("<script").skip(1) {
            let nonce = part.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap();
            assert!(
                nonces.iter().any(|n| n == nonce),
                "{flow}: script nonce {nonce} in {csp}"
            );
        }
        assert!(!html.contains("onclick=") && !html.contains("onload="), "{flow}");
        assert!(
            !html.contains("<style") && !html.contains("style=\""),
            "{flow}: no inline styles"
        );
        // Labels are tied to their inputs.
        assert!(html.contains("<label for=\"f-"), "{flow}: {html}");
    }
    let res = c
        .send(c.req(Method::GET, &srv.public_url("/ui/assets/latch.css")))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/css; charset=utf-8");
    let res = c.send(c.req(Method::GET, &srv.public_url("/ui/assets/latch.js"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("data-trigger"));
}
both!(pages_render_flows_as_forms_with_a_strict_csp);

async fn pages_show_validation_messages_as_alerts(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = Client::new(&srv, Kind::Browser);
    let flow = c.init("login", "").await;
    let res = c
        .submit(
            &flow,
            serde_json::json!({"method": "password", "identifier": "nobody@example.com", "password": "wrong password 1"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = location(&res);
    assert!(page.contains("/ui/login?flow="), "{page}");
    let html = c.send(c.req(Method::GET, &page)).await.text().await.unwrap();
    assert!(
        html.contains("role=\"alert\" data-message-id=\"4000006\""),
        "invalid credentials are announced: {html}"
    );
}
both!(pages_show_validation_messages_as_alerts);

async fn pages_unknown_flow_starts_a_new_one(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = Client::new(&srv, Kind::Browser);
    let url = srv.public_url("/ui/login?flow=6f0e6a3c-8d51-4b8e-a3a4-2f7a9a0e1c11&return_to=http%3A%2F%2Fapp.test%2Fx");
    let res = c.send(c.req(Method::GET, &url)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res),
        srv.public_url("/self-service/login/browser?return_to=http%3A%2F%2Fapp.test%2Fx")
    );
}
both!(pages_unknown_flow_starts_a_new_one);

async fn pages_error_page_explains_csrf_failures(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let c = Client::new(&srv, Kind::Browser);
    let res = open_page(&c, "login").await;
    assert_eq!(res.status(), StatusCode::OK);
    let flow_url = res.url().to_string();
    // Another browser (no cookies) opens the same flow: the in-process fetch applies the
    // CSRF check and the page sends it to the error page.
    let other = Client::new(&srv, Kind::Browser);
    let res = other.send(other.req(Method::GET, &flow_url)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let err = location(&res);
    assert!(err.starts_with(&srv.public_url("/ui/error?id=")), "{err}");
    let res = other.send(other.req(Method::GET, &err)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("content-security-policy"));
    let html = res.text().await.unwrap();
    assert!(html.contains("security_csrf_violation"), "{html}");
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(
        html.contains("data-testid=\"reject-reason\">The HTTP Cookie Header is empty or not set."),
        "details.reject_reason is shown: {html}"
    );
    let res = other
        .send(other.req(
            Method::GET,
            &srv.public_url("/ui/error?id=6f0e6a3c-8d51-4b8e-a3a4-2f7a9a0e1c11"),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
both!(pages_error_page_explains_csrf_failures);

async fn pages_welcome_shows_the_session_and_signs_out(backend: Backend) {
    let srv = TestServer::start(backend).await;
    let mut c = Client::new(&srv, Kind::Browser);
    let res = c.send(c.req(Method::GET, &srv.public_url("/ui/"))).await;
    assert_eq!(location(&res), srv.public_url("/ui/login"));
    let html = c
        .send(c.req(Method::GET, &srv.public_url("/ui/welcome")))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("You are not signed in"), "{html}");

    register(&mut c, "welcome@example.com").await;
    let res = c.send(c.req(Method::GET, &srv.public_url("/ui/"))).await;
    assert_eq!(location(&res), srv.public_url("/ui/welcome"));
    let html = c
        .send(c.req(Method::GET, &srv.public_url("/ui/welcome")))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-testid=\"who\">welcome@example.com<"), "{html}");
    let token = html
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    assert!(token.starts_with("ory_lo_"), "{token}");
    assert!(html.contains(&format!("action=\"{}/self-service/logout\" method=\"get\"", srv.public)));
    let res = c
        .send(c.req(
            Method::GET,
            &srv.public_url(&format!("/self-service/logout?token={token}")),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(c.whoami().await.status(), StatusCode::UNAUTHORIZED);
}
both!(pages_welcome_shows_the_session_and_signs_out);

async fn dev_mailbox_lists_queued_codes(b: Backend) {
    let srv = TestServer::start(b).await;
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("login", "").await;
    srv.create_identity(serde_json::json!({"schema_id": "default", "traits": {"email": "mbox@example.com"}}))
        .await;
    let res = c
        .submit(
            &flow,
            serde_json::json!({"method": "code", "identifier": "mbox@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let page = srv
        .client()
        .get(srv.public_url("/ui/dev/mailbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("mbox@example.com"), "{html}");
    assert!(html.contains("data-testid=\"mail-body\""));
}
both!(dev_mailbox_lists_queued_codes);
