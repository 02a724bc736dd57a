//! Spawns the real app in-process on 127.0.0.1:0 with its own fresh database and talks HTTP.
#![allow(dead_code)]

use std::sync::Arc;

use latch::app::{App, BuildOptions};
use latch::clock::OffsetClock;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one test body on SQLite and on PostgreSQL (ignored without `LATCH_TEST_POSTGRES_URL`).
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(latch_pg),
                ignore = "set LATCH_TEST_POSTGRES_URL to run the PostgreSQL suite"
            )]
            async fn postgres() {
                super::$name($crate::harness::Backend::Postgres).await
            }
        }
    };
}

pub const SCHEMA: &str = include_str!("fixtures/identity.schema.json");

/// A fresh database for one test; removed when dropped.
pub struct TestDb {
    pub dsn: String,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let dsn = format!("sqlite://{}/latch.sqlite?_fk=true&mode=rwc", dir.path().display());
                TestDb {
                    dsn,
                    _dir: Some(dir),
                    pg_schema: None,
                }
            }
            Backend::Postgres => {
                let base = std::env::var("LATCH_TEST_POSTGRES_URL")
                    .expect("LATCH_TEST_POSTGRES_URL must be set for PostgreSQL tests");
                let schema = format!("latch_test_{}", uuid::Uuid::new_v4().simple());
                let pool = sqlx::PgPool::connect(&base).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let dsn = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                TestDb {
                    dsn,
                    _dir: None,
                    pg_schema: Some((base, schema)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg_schema.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(pool) = sqlx::PgPool::connect(&base).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                            .execute(&pool)
                            .await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Deep-merges `b` into `a` (objects merge, everything else replaces).
pub fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// The config every test starts from.
pub fn base_config(dsn: &str) -> Value {
    use base64::Engine;
    let schema = base64::engine::general_purpose::STANDARD.encode(SCHEMA);
    json!({
        "dsn": dsn,
        "serve": {
            "public": {"host": "127.0.0.1"},
            "admin": {"host": "127.0.0.1"}
        },
        "identity": {
            "default_schema_id": "default",
            "schemas": [{"id": "default", "url": format!("base64://{schema}")}]
        },
        "selfservice": {
            "default_browser_return_url": "http://app.test/welcome",
            "allowed_return_urls": ["http://app.test/"],
            "flows": {"registration": {"after": {"password": {"hooks": [{"hook": "session"}]}}}},
            // Tests listen on 127.0.0.1, which WebAuthn does not accept as RP id.
            "methods": {
                "passkey": {"config": {"rp": {
                    "id": "latch.test", "display_name": "Latch", "origins": ["https://latch.test"]
                }}},
                // Tests never ask the internet; the breach-check tests run a local range API.
                "password": {"config": {"haveibeenpwned_enabled": false}}
            }
        },
        "secrets": {"cookie": ["a-test-cookie-secret-of-32-chars!"]},
        "hashers": {"argon2": {"memory": "8MB", "iterations": 1, "parallelism": 1}},
        // Every test client comes from 127.0.0.1 and many tests mail one address several
        // times: the per-IP and per-address mail budgets are relaxed here; the limit tests
        // (`limits.rs`) set the defaults back explicitly.
        "latch": {"rate_limits": {
            "flow_creation_per_ip": {"limit": 100000, "window": "1m"},
            "submission_per_ip": {"limit": 100000, "window": "1m"},
            "code_mail_per_address": {"limit": 1000, "window": "1m"},
            "code_mail_per_address_long": {"limit": 1000, "window": "1h"}
        }}
    })
}

/// A running server.
pub struct TestServer {
    pub public: String,
    pub admin: String,
    pub clock: OffsetClock,
    pub app: Arc<latch::deps::Deps>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _db: TestDb,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::with_config(backend, json!({})).await
    }

    pub async fn with_config(backend: Backend, overrides: Value) -> TestServer {
        let db = TestDb::new(backend).await;
        TestServer::on_db(db, overrides).await
    }

    /// A second node on the same database (the first server keeps ownership of it).
    pub async fn sharing_db(other: &TestServer, overrides: Value) -> TestServer {
        let db = TestDb {
            dsn: other._db.dsn.clone(),
            _dir: None,
            pg_schema: None,
        };
        TestServer::on_db(db, overrides).await
    }

    async fn on_db(db: TestDb, overrides: Value) -> TestServer {
        let mut config = base_config(&db.dsn);
        merge(&mut config, &overrides);
        let mut loaded = latch::config::load_values(vec![config], &Default::default(), true)
            .unwrap_or_else(|e| panic!("test config invalid: {e}"));
        // The schema requires ports >= 1; tests listen on free ports.
        loaded.config.serve.public.port = 0;
        loaded.config.serve.admin.port = 0;
        let clock = OffsetClock::default();
        let app = App::build(
            loaded.config,
            BuildOptions {
                clock: Some(Arc::new(clock.clone())),
                migrate: true,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("app failed to start: {e}"));
        let public = format!("http://{}", app.public_addr());
        let admin = format!("http://{}", app.admin_addr());
        let deps = app.deps().clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            app.run(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            public,
            admin,
            clock,
            app: deps,
            shutdown: Some(tx),
            task: Some(task),
            _db: db,
        }
    }

    pub fn client(&self) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// The DSN of this server's database (for the `latch` binary in CLI tests).
    pub fn dsn(&self) -> &str {
        &self._db.dsn
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{}", self.admin, path)
    }

    pub fn public_url(&self, path: &str) -> String {
        format!("{}{}", self.public, path)
    }

    /// Creates an identity through the admin API and returns its JSON.
    pub async fn create_identity(&self, body: Value) -> Value {
        let res = self
            .client()
            .post(self.admin_url("/admin/identities"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            201,
            "create identity failed: {}",
            res.text().await.unwrap()
        );
        res.json().await.unwrap()
    }

    /// Stops this server (gracefully, as `stop`) and starts a new one on the same database with
    /// `overrides`: a restart of the node. The new server has its own clock and signals.
    pub async fn restart(mut self, overrides: Value) -> TestServer {
        let placeholder = TestDb {
            dsn: String::new(),
            _dir: None,
            pg_schema: None,
        };
        let db = std::mem::replace(&mut self._db, placeholder);
        self.stop().await;
        TestServer::on_db(db, overrides).await
    }

    /// Stops the server and waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
