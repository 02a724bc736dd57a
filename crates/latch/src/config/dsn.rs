//! Kratos DSNs (`dsn` key / `DSN` variable) turned into what Latch's storage needs. Kratos
//! mixes pool settings and driver options into the query string; Latch separates them so the
//! URL handed to the driver holds only options the driver understands.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::ConfigError;
use super::duration::parse_duration;

/// A parsed DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dsn {
    /// SQLite, in memory or in a file.
    Sqlite {
        /// Database file; `None` means an in-memory database.
        path: Option<PathBuf>,
        /// Create the file when it does not exist (`mode=rwc`, the default).
        create_if_missing: bool,
        /// How long to wait on a locked database (`_busy_timeout`/`_timeout`, milliseconds).
        busy_timeout: Option<Duration>,
        /// Query parameters Latch does not understand, for the caller to log at debug level.
        ignored: Vec<String>,
    },
    /// PostgreSQL.
    Postgres {
        /// The DSN without Kratos' pool parameters, ready for the driver.
        url: String,
        /// Pool size (`max_conns`).
        max_conns: Option<u32>,
        /// Idle connections kept (`max_idle_conns`).
        max_idle_conns: Option<u32>,
        /// Connection lifetime (`max_conn_lifetime`, Go duration).
        max_conn_lifetime: Option<Duration>,
        /// Idle timeout (`max_conn_idle_time`, Go duration).
        max_conn_idle_time: Option<Duration>,
        /// Query parameters removed because neither Latch nor the driver uses them.
        ignored: Vec<String>,
    },
}

/// SQLite parameters Latch knows and handles itself (foreign keys on, its own journal mode).
const SQLITE_HANDLED: &[&str] = &[
    "_fk",
    "_foreign_keys",
    "_journal_mode",
    "_journal",
    "cache",
    "_txlock",
    "_sync",
    "_synchronous",
    "_loc",
    "_mutex",
];

/// PostgreSQL (libpq) parameters passed through to the driver untouched.
const POSTGRES_KEPT: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "statement-cache-capacity",
];

/// Parses a Kratos DSN. `memory`, `sqlite://…`, `sqlite3://…` and `file:…` are SQLite;
/// `postgres://` and `postgresql://` are PostgreSQL; MySQL and CockroachDB are rejected.
pub fn parse_dsn(dsn: &str) -> Result<Dsn, ConfigError> {
    let dsn = dsn.trim();
    if dsn.is_empty() {
        return Err(ConfigError::Dsn("the DSN is empty; set `dsn` or DSN".into()));
    }
    if dsn == "memory" {
        return Ok(memory(Vec::new()));
    }
    let (scheme, rest) = dsn.split_once(':').unwrap_or((dsn, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" | "sqlite3" => sqlite(rest.strip_prefix("//").unwrap_or(rest)),
        "file" => sqlite(rest),
        "postgres" | "postgresql" => postgres(dsn),
        "mysql" | "cockroach" | "cockroachdb" | "crdb" => Err(ConfigError::Dsn(format!(
            "{scheme} databases are not supported by Latch; use PostgreSQL (postgres://…) or SQLite (sqlite://…)"
        ))),
        _ => Err(ConfigError::Dsn(format!(
            "unrecognised DSN scheme {scheme:?}; use postgres://…, sqlite://… or memory"
        ))),
    }
}

fn memory(ignored: Vec<String>) -> Dsn {
    Dsn::Sqlite {
        path: None,
        create_if_missing: true,
        busy_timeout: None,
        ignored,
    }
}

/// `rest` is what follows `sqlite://` or `file:`: a path (`/abs/x.db`, `rel/x.db`,
/// `///abs/x.db` from `file:///…`) or `:memory:`/`file::memory:` with an optional query.
fn sqlite(rest: &str) -> Result<Dsn, ConfigError> {
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let location = location.strip_prefix("file:").unwrap_or(location);
    let mut in_memory = location.is_empty() || location == ":memory:";
    let mut create_if_missing = true;
    let mut busy_timeout = None;
    let mut ignored = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "mode" => match value.as_ref() {
                "memory" => in_memory = true,
                "rw" | "ro" => create_if_missing = false,
                "rwc" => create_if_missing = true,
                _ => ignored.push(format!("{key}={value}")),
            },
            "_busy_timeout" | "_timeout" => {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| ConfigError::Dsn(format!("DSN parameter {key}={value:?} must be milliseconds")))?;
                busy_timeout = Some(Duration::from_millis(ms));
            }
            k if SQLITE_HANDLED.contains(&k) => {}
            _ => ignored.push(format!("{key}={value}")),
        }
    }
    if in_memory {
        return Ok(memory(ignored));
    }
    // `file:///abs` leaves `///abs`; `sqlite:///abs` leaves `/abs`.
    let path = if location.starts_with("//") {
        format!("/{}", location.trim_start_matches('/'))
    } else {
        location.to_owned()
    };
    let path = percent_decode(&path);
    Ok(Dsn::Sqlite {
        path: Some(PathBuf::from(path)),
        create_if_missing,
        busy_timeout,
        ignored,
    })
}

/// Decodes `%XX` escapes in a path taken from a DSN.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes.get(i), hex) {
            (Some(b'%'), Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (Some(&b), _) => {
                out.push(b);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn postgres(dsn: &str) -> Result<Dsn, ConfigError> {
    let mut url =
        Url::parse(dsn).map_err(|e| ConfigError::Dsn(format!("invalid PostgreSQL DSN {}: {e}", redact_str(dsn))))?;
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut ignored = Vec::new();
    let (mut max_conns, mut max_idle_conns, mut max_conn_lifetime, mut max_conn_idle_time) = (None, None, None, None);
    let count = |key: &str, value: &str| -> Result<u32, ConfigError> {
        value
            .parse()
            .map_err(|_| ConfigError::Dsn(format!("DSN parameter {key}={value:?} must be a whole number")))
    };
    let duration = |key: &str, value: &str| -> Result<Duration, ConfigError> {
        parse_duration(value).map_err(|e| ConfigError::Dsn(format!("DSN parameter {key}: {e}")))
    };
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "max_conns" => max_conns = Some(count(&key, &value)?),
            "max_idle_conns" => max_idle_conns = Some(count(&key, &value)?),
            "max_conn_lifetime" => max_conn_lifetime = Some(duration(&key, &value)?),
            "max_conn_idle_time" => max_conn_idle_time = Some(duration(&key, &value)?),
            k if POSTGRES_KEPT.contains(&k) || k.starts_with("options[") => {
                kept.push((key.into_owned(), value.into_owned()));
            }
            _ => ignored.push(format!("{key}={value}")),
        }
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(Dsn::Postgres {
        url: url.to_string(),
        max_conns,
        max_idle_conns,
        max_conn_lifetime,
        max_conn_idle_time,
        ignored,
    })
}

/// Replaces the password of a URL-shaped DSN with `***`; unparseable input is hidden whole.
fn redact_str(dsn: &str) -> String {
    match Url::parse(dsn) {
        Ok(mut url) => {
            if url.password().is_some() && url.set_password(Some("***")).is_err() {
                return "<redacted>".into();
            }
            url.to_string()
        }
        Err(_) => "<redacted>".into(),
    }
}

impl Dsn {
    /// A form safe for logs: the PostgreSQL password replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Dsn::Sqlite { path: None, .. } => "sqlite (in memory)".into(),
            Dsn::Sqlite { path: Some(path), .. } => format!("sqlite://{}", path.display()),
            Dsn::Postgres { url, .. } => redact_str(url),
        }
    }

    /// Query parameters that were dropped, for the caller to log at debug level.
    pub fn ignored(&self) -> &[String] {
        match self {
            Dsn::Sqlite { ignored, .. } | Dsn::Postgres { ignored, .. } => ignored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_path(dsn: &str) -> (Option<PathBuf>, bool, Option<Duration>, Vec<String>) {
        match parse_dsn(dsn).unwrap() {
            Dsn::Sqlite {
                path,
                create_if_missing,
                busy_timeout,
                ignored,
            } => (path, create_if_missing, busy_timeout, ignored),
            other => panic!("expected sqlite, got {other:?}"),
        }
    }

    #[test]
    fn dsn_memory_forms_are_in_memory_sqlite() {
        for dsn in [
            "memory",
            "sqlite://:memory:",
            "sqlite://file::memory:?cache=shared",
            "sqlite://file::memory:?_fk=true",
            "file::memory:?cache=shared",
            "sqlite://whatever.db?mode=memory",
        ] {
            assert_eq!(sqlite_path(dsn).0, None, "{dsn}");
        }
    }

    #[test]
    fn dsn_sqlite_files_parse() {
        let (path, create, timeout, ignored) = sqlite_path("sqlite:///abs/path.db?_fk=true&mode=rwc");
        assert_eq!(path, Some(PathBuf::from("/abs/path.db")));
        assert!(create);
        assert_eq!(timeout, None);
        assert!(ignored.is_empty());

        let (path, create, timeout, ignored) =
            sqlite_path("sqlite://relative/path.db?mode=rw&_busy_timeout=5000&_journal_mode=WAL&bogus=1");
        assert_eq!(path, Some(PathBuf::from("relative/path.db")));
        assert!(!create);
        assert_eq!(timeout, Some(Duration::from_secs(5)));
        assert_eq!(ignored, vec!["bogus=1".to_string()]);

        assert_eq!(
            sqlite_path("sqlite3:///var/lib/db.sqlite").0,
            Some(PathBuf::from("/var/lib/db.sqlite"))
        );
        assert_eq!(
            sqlite_path("file:/tmp/x.db?_timeout=10").2,
            Some(Duration::from_millis(10))
        );
        assert_eq!(sqlite_path("file:///tmp/y.db").0, Some(PathBuf::from("/tmp/y.db")));
        assert_eq!(sqlite_path("file:rel.db").0, Some(PathBuf::from("rel.db")));
        assert_eq!(
            sqlite_path("sqlite://my%20db.sqlite").0,
            Some(PathBuf::from("my db.sqlite"))
        );
        assert!(parse_dsn("sqlite://x.db?_busy_timeout=soon").is_err());
    }

    #[test]
    fn dsn_postgres_pool_params_are_stripped() {
        let dsn = "postgres://kratos:s3cret@db:5432/kratos?sslmode=disable&max_conns=20&max_idle_conns=4\
                   &max_conn_lifetime=1h&max_conn_idle_time=10m&connect_timeout=5&application_name=latch&foo=bar";
        let Dsn::Postgres {
            url,
            max_conns,
            max_idle_conns,
            max_conn_lifetime,
            max_conn_idle_time,
            ignored,
        } = parse_dsn(dsn).unwrap()
        else {
            panic!("expected postgres");
        };
        assert_eq!(
            url,
            "postgres://kratos:s3cret@db:5432/kratos?sslmode=disable&connect_timeout=5&application_name=latch"
        );
        assert_eq!(max_conns, Some(20));
        assert_eq!(max_idle_conns, Some(4));
        assert_eq!(max_conn_lifetime, Some(Duration::from_secs(3600)));
        assert_eq!(max_conn_idle_time, Some(Duration::from_secs(600)));
        assert_eq!(ignored, vec!["foo=bar".to_string()]);

        let parsed = parse_dsn("postgresql://u:pw@localhost/db?max_conns=2").unwrap();
        assert_eq!(parsed.redacted(), "postgresql://u:***@localhost/db");
        let Dsn::Postgres { url, .. } = parsed else {
            panic!("expected postgres")
        };
        assert_eq!(url, "postgresql://u:pw@localhost/db");
        assert!(parse_dsn("postgres://h/db?max_conns=many").is_err());
        assert!(parse_dsn("postgres://h/db?max_conn_lifetime=forever").is_err());
    }

    #[test]
    fn dsn_unsupported_databases_are_rejected() {
        for dsn in [
            "mysql://u:p@tcp(localhost:3306)/db",
            "cockroach://root@localhost:26257/db",
        ] {
            let err = parse_dsn(dsn).unwrap_err().to_string();
            assert!(err.contains("not supported by Latch"), "{err}");
        }
        assert!(parse_dsn("").is_err());
        assert!(parse_dsn("redis://x").unwrap_err().to_string().contains("unrecognised"));
        assert_eq!(parse_dsn("memory").unwrap().redacted(), "sqlite (in memory)");
    }
}
