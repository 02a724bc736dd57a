//! SMTP delivery with lettre. Kratos: `courier/smtp.go`, `courier/smtp_channel.go`.
//!
//! `courier.smtp.connection_uri`:
//! - `smtp://[user:pass@]host[:port]/`: STARTTLS is required (default port 587);
//!   `?disable_starttls=true` sends in clear text (local relays and test sinks only);
//! - `smtps://[user:pass@]host[:port]/`: implicit TLS (default port 465);
//! - `?skip_ssl_verify=true` accepts any certificate; `?server_name=…` sets the TLS name.
//!
//! TLS is at least 1.2 and trusts the Mozilla roots (webpki-roots). Nothing here logs a
//! message body, subject or full address: bodies carry one-time codes.

use std::fmt;
use std::time::{Duration, SystemTime};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{Identity, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use time::OffsetDateTime;

use super::pool::{Connector, Pool};

use super::message::Message;
use crate::config::Smtp;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://…?disable_starttls=true`: clear text.
    None,
    /// `smtp://…`: STARTTLS, mandatory.
    StartTls,
    /// `smtps://…`: TLS from the first byte.
    Implicit,
}

/// A parsed `courier.smtp.connection_uri`. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUri {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub security: Security,
    /// User name for AUTH, if any.
    pub username: Option<String>,
    /// Password for AUTH, if any.
    pub password: Option<String>,
    /// `skip_ssl_verify=true`: accept any certificate.
    pub skip_ssl_verify: bool,
    /// Name checked against the certificate and sent as SNI (`server_name`, else the host).
    pub server_name: String,
}

impl fmt::Debug for SmtpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpUri")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("skip_ssl_verify", &self.skip_ssl_verify)
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// Invalid SMTP settings. Messages never repeat the URI (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[error("courier.smtp: {0}")]
pub struct SmtpConfigError(String);

fn bad(msg: impl Into<String>) -> SmtpConfigError {
    SmtpConfigError(msg.into())
}

/// Go's `strconv.ParseBool`, which Kratos uses for the query flags.
fn parse_bool(key: &str, v: &str) -> Result<bool, SmtpConfigError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(bad(format!(
            "connection_uri parameter {key}={v:?} is not a boolean (use true or false)"
        ))),
    }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Parses `courier.smtp.connection_uri` as Kratos reads it.
pub fn parse_connection_uri(uri: &str) -> Result<SmtpUri, SmtpConfigError> {
    let u = url::Url::parse(uri.trim()).map_err(|e| bad(format!("connection_uri is not a valid URL ({e})")))?;
    let scheme = u.scheme().to_ascii_lowercase();
    if scheme != "smtp" && scheme != "smtps" {
        return Err(bad(format!(
            "connection_uri must start with smtp:// (STARTTLS) or smtps:// (implicit TLS), not {scheme}://"
        )));
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("connection_uri has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut disable_starttls = false;
    let mut skip_ssl_verify = false;
    let mut server_name = None;
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "disable_starttls" => disable_starttls = parse_bool(&k, &v)?,
            "skip_ssl_verify" => skip_ssl_verify = parse_bool(&k, &v)?,
            "server_name" if !v.is_empty() => server_name = Some(v.into_owned()),
            "server_name" => {}
            other => tracing::warn!(parameter = other, "courier.smtp.connection_uri parameter is ignored"),
        }
    }
    let security = match (scheme.as_str(), disable_starttls) {
        ("smtps", _) => Security::Implicit,
        (_, true) => Security::None,
        _ => Security::StartTls,
    };
    let port = u
        .port()
        .unwrap_or(if security == Security::Implicit { 465 } else { 587 });
    let username = Some(decode(u.username())).filter(|s| !s.is_empty());
    let password = u.password().map(decode);
    Ok(SmtpUri {
        server_name: server_name.unwrap_or_else(|| host.clone()),
        host,
        port,
        security,
        username,
        password,
        skip_ssl_verify,
    })
}

/// Headers Latch sets itself; `courier.smtp.headers` may not replace them.
const RESERVED: &[&str] = &[
    "from",
    "to",
    "subject",
    "message-id",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// A failed send. `permanent` means the server refused this message (5xx); anything else
/// (connection, TLS, timeout, 4xx) says nothing about the next message.
#[derive(Debug, Clone)]
pub struct SendError {
    /// What went wrong, for the dispatch record.
    pub message: String,
    /// The server refused this message for good.
    pub permanent: bool,
    /// A coarse class for logs: `connection`, `tls`, `timeout`, `transient`, `permanent`, `message`.
    pub kind: &'static str,
    /// The server could not be used at all: no connection, no TLS, no reply in time, or
    /// `421` (service not available). Says nothing about this message, so the dispatcher
    /// charges no attempt for it and backs off as a whole.
    pub unreachable: bool,
}

/// Sends stored messages over SMTP. Cheap to share; connections are pooled and reused
/// across mails (see [`super::pool`]).
pub struct Mailer {
    pool: Pool,
    from: Mailbox,
    headers: Vec<HeaderValue>,
    id_domain: String,
    target: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.target)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Builds the transport for `courier.smtp`; `None` when no `connection_uri` is set.
    pub fn from_config(smtp: &Smtp) -> Result<Option<Mailer>, SmtpConfigError> {
        let Some(uri) = smtp.connection_uri.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let parsed = parse_connection_uri(uri)?;
        let pool = Pool::new(connector(&parsed, smtp)?, super::dispatcher::CONCURRENCY);
        let address = smtp
            .from_address
            .parse()
            .map_err(|e| bad(format!("from_address is not an email address ({e})")))?;
        let from = Mailbox::new(smtp.from_name.clone().filter(|n| !n.is_empty()), address);
        let mut headers = Vec::new();
        for (name, value) in &smtp.headers {
            if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(bad(format!(
                    "headers.{name} is set by Latch itself and cannot be configured"
                )));
            }
            let hn = HeaderName::new_from_ascii(name.clone())
                .map_err(|_| bad(format!("headers: {name:?} is not a valid header name")))?;
            if value.contains(['\r', '\n']) {
                return Err(bad(format!("headers.{name} contains a line break")));
            }
            headers.push(HeaderValue::new(hn, value.clone()));
        }
        let id_domain = smtp
            .from_address
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| smtp.local_name.clone());
        Ok(Some(Mailer {
            pool,
            from,
            headers,
            id_domain,
            target: format!("{}:{}", parsed.host, parsed.port),
        }))
    }

    /// `host:port` of the server, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Sends one message as multipart plain text + HTML (plain text only without HTML). The
    /// `Message-ID` is derived from the message id, so a repeated delivery is recognisable.
    pub async fn send(&self, m: &Message, now: OffsetDateTime) -> Result<(), SendError> {
        let email = self.build(m, now)?;
        let bytes = email.formatted();
        self.pool.send(email.envelope(), &bytes).await
    }

    fn build(&self, m: &Message, now: OffsetDateTime) -> Result<lettre::Message, SendError> {
        let refuse = |what: String| SendError {
            message: what,
            permanent: true,
            kind: "message",
            unreachable: false,
        };
        let to: Mailbox = m
            .recipient
            .parse()
            .map_err(|e| refuse(format!("the recipient is not a valid email address: {e}")))?;
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<{}@{}>", m.id, self.id_domain)))
            .date(SystemTime::from(now));
        for h in &self.headers {
            b = b.raw_header(h.clone());
        }
        let built = match &m.body_html {
            Some(html) => b.multipart(MultiPart::alternative_plain_html(m.body.clone(), html.clone())),
            None => b.singlepart(SinglePart::plain(m.body.clone())),
        };
        built.map_err(|e| refuse(format!("the message cannot be built: {e}")))
    }
}

fn connector(u: &SmtpUri, smtp: &Smtp) -> Result<Connector, SmtpConfigError> {
    let tls = match u.security {
        Security::None => None,
        Security::StartTls | Security::Implicit => Some(tls_parameters(u, smtp)?),
    };
    let hello = if smtp.local_name.is_empty() {
        ClientId::default()
    } else {
        ClientId::Domain(smtp.local_name.clone())
    };
    Ok(Connector {
        host: u.host.clone(),
        port: u.port,
        security: u.security,
        tls,
        hello,
        credentials: u
            .username
            .as_ref()
            .map(|user| Credentials::new(user.clone(), u.password.clone().unwrap_or_default())),
        mechanisms: DEFAULT_MECHANISMS.to_vec(),
        timeout: Duration::from_secs(10),
    })
}

/// Maps a lettre error to a [`SendError`].
pub(super) fn send_error(e: &lettre::transport::smtp::Error) -> SendError {
    let kind = if e.is_permanent() {
        "permanent"
    } else if e.is_transient() {
        "transient"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_tls() {
        "tls"
    } else {
        "connection"
    };
    let code = e.status().map(u16::from);
    SendError {
        message: e.to_string(),
        permanent: e.is_permanent(),
        kind,
        unreachable: code.is_none_or(|c| c == 421),
    }
}

fn tls_parameters(u: &SmtpUri, smtp: &Smtp) -> Result<TlsParameters, SmtpConfigError> {
    let mut b = TlsParameters::builder(u.server_name.clone())
        .dangerous_accept_invalid_certs(u.skip_ssl_verify)
        .dangerous_accept_invalid_hostnames(u.skip_ssl_verify);
    let cert = smtp.client_cert_path.as_deref().filter(|p| !p.is_empty());
    let key = smtp.client_key_path.as_deref().filter(|p| !p.is_empty());
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let read = |p: &str| std::fs::read(p).map_err(|e| bad(format!("cannot read {p}: {e}")));
            let identity = Identity::from_pem(&read(cert)?, &read(key)?)
                .map_err(|e| bad(format!("client_cert_path/client_key_path: {e}")))?;
            b = b.identify_with(identity);
        }
        (None, None) => {}
        _ => return Err(bad("client_cert_path and client_key_path must be set together")),
    }
    b.build_rustls().map_err(|e| bad(format!("TLS setup failed: {e}")))
}

#[cfg(test)]
#[path = "smtp_tests.rs"]
mod tests;
