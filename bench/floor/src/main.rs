//! The floor of `bench/whoami.sh`: the least an axum server can do per request, answering
//! `GET /health/alive` with Latch's body on a multi-threaded tokio runtime, no middleware.
//! Usage: `latch-bench-floor <port>` (listens on 127.0.0.1).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

async fn alive() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], "{\"status\":\"ok\"}")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(4499);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, Router::new().route("/health/alive", get(alive))).await
}
