//! Health, version, metrics, schemas, port redirects, error envelope.

use serde_json::Value;

use crate::both;
use crate::harness::{Backend, TestServer};

async fn health_endpoints_answer_on_both_ports(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    for url in [
        s.public_url("/health/alive"),
        s.public_url("/health/ready"),
        s.admin_url("/admin/health/alive"),
        s.admin_url("/admin/health/ready"),
        s.admin_url("/health/ready"),
    ] {
        let res = c.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok", "{url}");
    }
    let v: Value = c
        .get(s.admin_url("/admin/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["version"].as_str().unwrap().starts_with('v'));
    let v2: Value = c
        .get(s.admin_url("/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, v2, "admin routes also answer without the /admin prefix");
}
both!(health_endpoints_answer_on_both_ports);

async fn metrics_count_requests_by_route(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    for _ in 0..3 {
        c.get(s.public_url("/health/alive")).send().await.unwrap();
    }
    let text = c
        .get(s.admin_url("/admin/metrics/prometheus"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"latch_http_requests_total{listener="public",method="GET",route="/health/alive",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains("latch_http_request_duration_seconds_bucket{listener=\"public\""));
}
both!(metrics_count_requests_by_route);

async fn schemas_are_listed_and_served(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let list: Value = c
        .get(s.public_url("/schemas"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], "default");
    assert_eq!(list[0]["schema"]["title"], "Person");
    // Raw id and base64url id both work.
    for id in ["default", "ZGVmYXVsdA"] {
        let res = c.get(s.public_url(&format!("/schemas/{id}"))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["title"], "Person");
    }
    let res = c.get(s.public_url("/schemas/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 404);
    assert_eq!(body["error"]["status"], "Not Found");
}
both!(schemas_are_listed_and_served);

async fn unknown_paths_answer_kratos_errors_and_redirect_across_ports(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let res = c.get(s.public_url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/json");
    let res = c.get(s.public_url("/admin/identities")).send().await.unwrap();
    assert_eq!(res.status(), 307);
    assert!(res.headers()["location"].to_str().unwrap().starts_with(&s.admin));
    let res = c.get(s.admin_url("/self-service/login/browser")).send().await.unwrap();
    assert_eq!(res.status(), 307);
    assert!(res.headers()["location"].to_str().unwrap().starts_with(&s.public));
    for path in ["/schemas", "/schemas/default", "/admin/schemas/default"] {
        let res = c.get(s.admin_url(path)).send().await.unwrap();
        assert_eq!(res.status(), 307, "{path}");
        let to = path.trim_start_matches("/admin");
        assert_eq!(res.headers()["location"], format!("{}{to}", s.public).as_str());
    }
}
both!(unknown_paths_answer_kratos_errors_and_redirect_across_ports);

async fn get_requests_on_public_port_are_not_cacheable(b: Backend) {
    let s = TestServer::start(b).await;
    let res = s
        .client()
        .get(s.public_url("/schemas"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["cache-control"],
        "private, no-cache, no-store, must-revalidate"
    );
    assert_eq!(res.headers()["x-request-id"], "abc-123");
}
both!(get_requests_on_public_port_are_not_cacheable);

async fn cors_allows_configured_origins_with_credentials(b: Backend) {
    let s = TestServer::with_config(
        b,
        serde_json::json!({"serve": {"public": {"cors": {"enabled": true, "allowed_origins": ["https://app.example.com", "https://*.example.org"]}}}}),
    )
    .await;
    let c = s.client();
    for origin in ["https://app.example.com", "https://x.example.org"] {
        let res = c
            .request(reqwest::Method::OPTIONS, s.public_url("/self-service/login/browser"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        assert_eq!(res.headers()["access-control-allow-origin"], origin);
        assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    }
    let res = c
        .get(s.public_url("/health/alive"))
        .header("origin", "https://evil.test")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
both!(cors_allows_configured_origins_with_credentials);
