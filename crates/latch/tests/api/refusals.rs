//! Refusals made before Latch's handlers run (body too large, headers too large, method not
//! allowed, unsupported content type, unknown path) answer in Kratos' error envelope, over
//! real HTTP on both ports.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::harness::{Backend, TestServer};

/// Asserts Kratos' envelope with `code` and returns the `error` object.
async fn envelope(res: Response, code: u16, status: &str) -> Value {
    assert_eq!(res.status().as_u16(), code);
    assert_eq!(
        res.headers().get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "{code} is JSON"
    );
    let body: Value = res.json().await.unwrap();
    let e = body["error"].clone();
    assert_eq!(e["code"], code, "{body}");
    assert_eq!(e["status"], status, "{body}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    e
}

async fn framework_refusals_answer_in_kratos_envelope(b: Backend) {
    let srv = TestServer::start(b).await;
    let c = srv.client();

    // A 6 MB JSON body to a flow submission (public) and to identity creation (admin).
    let big = json!({"method": "password", "identifier": "x".repeat(6 * 1024 * 1024)}).to_string();
    let flow: Value = c
        .get(srv.public_url("/self-service/login/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = flow["id"].as_str().unwrap();
    let res = c
        .post(srv.public_url(&format!("/self-service/login?flow={id}")))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let e = envelope(res, 413, "Payload Too Large").await;
    assert!(e["reason"].as_str().unwrap().contains("at most 5242880"), "{e}");
    let res = c
        .post(srv.admin_url("/admin/identities"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    envelope(res, 413, "Payload Too Large").await;

    // A 2 MB Cookie header (public and admin).
    let cookie = format!("ory_kratos_session={}", "c".repeat(2 * 1024 * 1024));
    let res = c
        .get(srv.public_url("/sessions/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let e = envelope(res, 431, "Request Header Fields Too Large").await;
    assert!(e["reason"].as_str().unwrap().contains("headers"), "{e}");
    let res = c
        .get(srv.admin_url("/admin/identities"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    envelope(res, 431, "Request Header Fields Too Large").await;
    // Ordinary large-but-sane headers still pass.
    let res = c
        .get(srv.public_url("/health/alive"))
        .header("cookie", format!("a={}", "c".repeat(64 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // 405 keeps its Allow header.
    let res = c
        .request(Method::DELETE, srv.public_url("/health/alive"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("allow").is_some(), "{:?}", res.headers());
    envelope(res, 405, "Method Not Allowed").await;
    let res = c
        .request(Method::PUT, srv.admin_url("/admin/courier/messages"))
        .send()
        .await
        .unwrap();
    envelope(res, 405, "Method Not Allowed").await;

    // A JSON endpoint sent text.
    let res = c
        .post(srv.admin_url("/admin/identities"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    envelope(res, 400, "Bad Request").await;
    // A chunked body (no Content-Length) over the limit is cut by the extractor: still JSON.
    let (status, head, body) = chunked_post(&srv.public, &format!("/self-service/login?flow={id}"), 6).await;
    assert_eq!(status, 413, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-type: application/json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], 413);
    assert_eq!(body["error"]["status"], "Payload Too Large");
    // 400 from a JSON body that does not parse.
    let res = c
        .post(srv.admin_url("/admin/identities"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    envelope(res, 400, "Bad Request").await;

    // 404 of unknown routes, on both ports.
    let res = c.get(srv.public_url("/no/such/path")).send().await.unwrap();
    envelope(res, 404, "Not Found").await;
    let res = c.get(srv.admin_url("/admin/no/such/path")).send().await.unwrap();
    envelope(res, 404, "Not Found").await;
    srv.stop().await;
}
both!(framework_refusals_answer_in_kratos_envelope);

/// POSTs `mib` MiB of JSON-ish spaces with `Transfer-Encoding: chunked` (no length) over a raw
/// connection; returns the status, the response head and body.
async fn chunked_post(base: &str, path: &str, mib: usize) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        w.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..mib {
            w.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            w.write_all(&chunk).await?;
            w.write_all(b"\r\n").await?;
        }
        w.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(())
    });
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(crate::smtp_sink::WAIT, r.read_to_end(&mut raw)).await;
    let _ = writer.await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}
