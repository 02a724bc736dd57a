//! SMTP connections that Latch opens itself and keeps for the next mail.
//!
//! Why not lettre's own transport: it opens sockets without `TCP_NODELAY` and writes a
//! message body and its closing `\r\n.\r\n` separately, so Nagle's algorithm holds the
//! terminator until the server acknowledges the body, which a receiving Linux kernel delays
//! by up to 40 ms: every mail stalled ~43 ms. Here the socket is created by Latch with
//! `TCP_NODELAY` and handed to lettre's SMTP state machine
//! ([`AsyncSmtpConnection::connect_with_transport`]); STARTTLS and implicit TLS run on that
//! same socket. A pooled connection is reused without a `NOOP` round trip; when a reused
//! connection turns out to be dead before the server answered anything, the mail is tried
//! once more on a fresh connection (a closed idle connection is normal, not an outage).
//!
//! lettre does not pipeline (`PIPELINING`): each mail is `MAIL`, `RCPT`, `DATA`, body, four
//! round trips on one connection; throughput comes from several connections in parallel.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::{AsyncNetworkStream, AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::smtp::{Security, SendError, send_error};

/// An idle connection older than this is closed rather than reused (servers drop idle
/// clients after a while; 30 s is below the usual 60–300 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest one mail may take on an open connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How to open one authenticated connection.
pub struct Connector {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Clear text, STARTTLS or implicit TLS.
    pub security: Security,
    /// TLS settings for STARTTLS and implicit TLS.
    pub tls: Option<TlsParameters>,
    /// EHLO name.
    pub hello: ClientId,
    /// AUTH credentials.
    pub credentials: Option<Credentials>,
    /// AUTH mechanisms to offer.
    pub mechanisms: Vec<Mechanism>,
    /// Limit for connecting and greeting (TCP, TLS, EHLO, AUTH).
    pub timeout: Duration,
}

fn unreachable(kind: &'static str, message: String) -> SendError {
    SendError {
        message,
        permanent: false,
        kind,
        unreachable: true,
    }
}

impl Connector {
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        match tokio::time::timeout(self.timeout, self.connect_inner()).await {
            Ok(r) => r,
            Err(_) => Err(unreachable(
                "timeout",
                format!("no connection to the SMTP server within {}s", self.timeout.as_secs()),
            )),
        }
    }

    async fn connect_inner(&self) -> Result<AsyncSmtpConnection, SendError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| unreachable("connection", format!("cannot connect to the SMTP server: {e}")))?;
        // The point of this module: no Nagle delay on the body's terminator.
        tcp.set_nodelay(true)
            .map_err(|e| unreachable("connection", format!("cannot set TCP_NODELAY: {e}")))?;
        let tls = || {
            self.tls
                .clone()
                .ok_or_else(|| unreachable("tls", "TLS parameters are missing".to_string()))
        };
        let mut conn = match self.security {
            Security::None => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(|e| send_error(&e))?,
            Security::StartTls => {
                let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                    .await
                    .map_err(|e| send_error(&e))?;
                if !conn.can_starttls() {
                    conn.abort().await;
                    return Err(unreachable(
                        "tls",
                        "the SMTP server does not offer STARTTLS, which is required (use \
                         ?disable_starttls=true only for a local relay)"
                            .to_string(),
                    ));
                }
                conn.starttls(tls()?, &self.hello).await.map_err(|e| send_error(&e))?;
                conn
            }
            Security::Implicit => {
                let peer = tcp.peer_addr().ok();
                #[allow(deprecated)]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                #[allow(deprecated)]
                stream.upgrade_tls(tls()?).await.map_err(|e| send_error(&e))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(TlsOver { inner: stream, peer }), &self.hello)
                    .await
                    .map_err(|e| send_error(&e))?
            }
        };
        if let Some(c) = &self.credentials
            && let Err(e) = conn.auth(&self.mechanisms, c).await
        {
            conn.abort().await;
            return Err(send_error(&e));
        }
        Ok(conn)
    }
}

/// Connections kept open between mails, at most `max_idle`.
pub struct Pool {
    connector: Connector,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    max_idle: usize,
}

impl Pool {
    /// An empty pool that keeps up to `max_idle` idle connections.
    pub fn new(connector: Connector, max_idle: usize) -> Pool {
        Pool {
            connector,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    fn take(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT {
                return Some(conn);
            }
            // Too old: dropping it closes the socket.
        }
        None
    }

    fn put(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }

    /// Sends one mail on a pooled connection (or a new one).
    pub async fn send(&self, envelope: &Envelope, email: &[u8]) -> Result<(), SendError> {
        if let Some(mut conn) = self.take() {
            match Self::send_on(&mut conn, envelope, email).await {
                Ok(()) => {
                    self.put(conn);
                    return Ok(());
                }
                // The server answered: the outcome belongs to this mail.
                Err(e) if !e.unreachable || e.kind == "transient" => return Err(e),
                // A dead pooled connection: try once on a fresh one.
                Err(_) => {}
            }
        }
        let mut conn = self.connector.connect().await?;
        let r = Self::send_on(&mut conn, envelope, email).await;
        if r.is_ok() {
            self.put(conn);
        }
        r
    }

    async fn send_on(conn: &mut AsyncSmtpConnection, envelope: &Envelope, email: &[u8]) -> Result<(), SendError> {
        match tokio::time::timeout(SEND_TIMEOUT, conn.send(envelope, email)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(send_error(&e)),
            Err(_) => {
                conn.abort().await;
                Err(unreachable(
                    "timeout",
                    format!("the SMTP server did not answer within {}s", SEND_TIMEOUT.as_secs()),
                ))
            }
        }
    }
}

/// A TLS stream (lettre's, over Latch's socket) seen as a plain tokio stream, so that
/// [`AsyncSmtpConnection::connect_with_transport`] can run SMTP over implicit TLS.
#[allow(deprecated)]
struct TlsOver {
    inner: AsyncNetworkStream,
    peer: Option<SocketAddr>,
}

impl std::fmt::Debug for TlsOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOver")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl AsyncTokioStream for TlsOver {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.peer.ok_or_else(|| io::Error::other("no peer address"))
    }
}

impl AsyncRead for TlsOver {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let dst = buf.initialize_unfilled();
        match futures_util::AsyncRead::poll_read(Pin::new(&mut self.inner), cx, dst) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TlsOver {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        futures_util::AsyncWrite::poll_write(Pin::new(&mut self.inner), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_util::AsyncWrite::poll_flush(Pin::new(&mut self.inner), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_util::AsyncWrite::poll_close(Pin::new(&mut self.inner), cx)
    }
}
