//! The HTTP/1.1 server loop (what axum's `serve` does, as Latch built it: HTTP/1 only), with
//! two changes axum's `serve` cannot be configured for.
//!
//! - hyper refuses a request whose head does not fit its read buffer with an empty `431`
//!   before any Latch code runs. The buffer is raised to [`MAX_HEAD_BUFFER`], and Latch's
//!   own limit ([`MAX_HEADER_BYTES`], checked by [`super::limit_headers`]) answers `431` in
//!   Kratos' error envelope. Heads beyond the buffer still get hyper's bare `431`.
//! - Each request carries `ConnectInfo<SocketAddr>` like `into_make_service_with_connect_info`.
//!
//! Graceful shutdown works like axum's: stop accepting, let open connections finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Service, ServiceExt};

/// hyper's read buffer per connection: the largest request head that reaches Latch at all.
pub const MAX_HEAD_BUFFER: usize = 4 * 1024 * 1024;

/// The largest request head (request line and headers) Latch accepts; larger ones are
/// answered `431` in Kratos' error envelope. Go's (and so Kratos') default is 1 MiB.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// Serves `service` on `listener` until `shutdown` resolves, then waits for open connections.
pub async fn serve<S>(listener: TcpListener, service: S, shutdown: impl Future<Output = ()> + Send + 'static)
where
    S: Service<axum::extract::Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signal_tx.closed() => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = service.clone();
        let hyper_service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(remote));
            svc.clone().oneshot(req)
        });
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .max_buf_size(MAX_HEAD_BUFFER)
                .serve_connection(TokioIo::new(stream), hyper_service)
                .with_upgrades();
            tokio::pin!(conn);
            let signal = signal_tx.closed();
            tokio::pin!(signal);
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = &mut signal, if !shutting_down => {
                        shutting_down = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
}
