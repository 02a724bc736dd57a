//! Builds the application from configuration and runs its two listeners.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use url::Url;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, Dsn, parse_dsn};
use crate::courier::dispatcher::Dispatcher;
use crate::crypto::password::{HashAlgorithm, PasswordHasher};
use crate::deps::Deps;
use crate::flow::{AppState, Service};
use crate::http;
use crate::identity::schema::SchemaRegistry;
use crate::store::Store;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Invalid configuration.
    #[error("configuration error: {0}")]
    Config(String),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

/// Options that are not configuration.
#[derive(Debug, Default)]
pub struct BuildOptions {
    /// Inject a clock (tests move time forward).
    pub clock: Option<SharedClock>,
    /// Apply pending migrations before serving.
    pub migrate: bool,
}

/// A built application with bound listeners.
#[derive(Debug)]
pub struct App {
    deps: AppState,
    public: TcpListener,
    admin: TcpListener,
}

/// Opens the store for a configuration's DSN.
pub async fn open_store(config: &Config) -> Result<Store, AppError> {
    let dsn = dsn_of(config)?;
    Ok(Store::connect(&dsn).await?)
}

/// Parses the configured DSN, logging the parameters that mean nothing to Latch.
pub fn dsn_of(config: &Config) -> Result<Dsn, AppError> {
    if config.dsn.trim().is_empty() {
        return Err(AppError::Config(
            "no database configured: set `dsn` in the config file or the DSN environment variable \
             (e.g. DSN=sqlite://latch.sqlite?_fk=true&mode=rwc or DSN=postgres://user:pass@host:5432/db)"
                .into(),
        ));
    }
    let dsn = parse_dsn(&config.dsn).map_err(|e| AppError::Config(e.to_string()))?;
    let ignored = match &dsn {
        Dsn::Sqlite { ignored, .. } | Dsn::Postgres { ignored, .. } => ignored,
    };
    for p in ignored {
        tracing::debug!(parameter = %p, "DSN parameter has no meaning for Latch and is ignored");
    }
    Ok(dsn)
}

fn derive_base(configured: Option<&Url>, host: &str, port: u16, dev: bool) -> Result<Url, AppError> {
    if let Some(u) = configured {
        let mut u = u.clone();
        if !u.path().ends_with('/') {
            let p = format!("{}/", u.path());
            u.set_path(&p);
        }
        return Ok(u);
    }
    let scheme = if dev { "http" } else { "https" };
    let host = if host.is_empty() || host == "0.0.0.0" || host == "::" {
        "localhost"
    } else {
        host
    };
    Url::parse(&format!("{scheme}://{host}:{port}/"))
        .map_err(|e| AppError::Config(format!("cannot derive a base URL from host {host:?}: {e}")))
}

fn hasher_of(config: &Config) -> PasswordHasher {
    let h = &config.hashers;
    let algorithm = if h.algorithm == crate::config::HashAlgorithm::Bcrypt {
        HashAlgorithm::Bcrypt { cost: h.bcrypt.cost }
    } else {
        HashAlgorithm::Argon2 {
            memory_kib: u32::try_from(h.argon2.memory / 1024).unwrap_or(19 * 1024).max(8),
            iterations: h.argon2.iterations.max(1),
            parallelism: h.argon2.parallelism.max(1),
        }
    };
    // Bound memory: at most as many concurrent hashes as cores, and never above 256 MiB.
    let per_hash = (h.argon2.memory / (1024 * 1024)).max(1);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) as u64;
    let mut concurrency = cores.min((256 / per_hash).max(1));
    let q = &config.latch.hashing;
    if q.max_concurrent > 0 {
        concurrency = u64::from(q.max_concurrent);
    }
    PasswordHasher::new(algorithm, usize::try_from(concurrency).unwrap_or(1))
        .with_max_queue(usize::try_from(q.max_queue).unwrap_or(usize::MAX))
}

impl App {
    /// Binds both listeners (port 0 picks a free port), opens the store, loads identity
    /// schemas and wires the dependencies.
    pub async fn build(config: Config, opts: BuildOptions) -> Result<App, AppError> {
        // reqwest (identity schemas over https) needs a process-wide TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clock: SharedClock = opts.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let mut store = open_store(&config).await?;
        store.cache = Arc::new(crate::store::cache::SessionCache::new(&config.latch.cache.whoami));
        if opts.migrate {
            let n = store.migrate(clock.as_ref()).await?;
            if n > 0 {
                tracing::info!(applied = n, "applied database migrations");
            }
        } else {
            ensure_migrated(&store).await?;
        }
        let entries: Vec<(String, String)> = config
            .identity
            .schemas
            .iter()
            .map(|s| (s.id.clone(), s.url.clone()))
            .collect();
        let schemas = SchemaRegistry::load(&entries, &config.identity.default_schema_id)
            .await
            .map_err(|e| AppError::Config(e.to_string()))?;

        let mailer = crate::courier::setup(&config).map_err(|e| AppError::Config(e.to_string()))?;
        crate::webhook::outbox::check_config(&config).map_err(AppError::Config)?;

        let public_addr = format!("{}:{}", bind_host(&config.serve.public.host), config.serve.public.port);
        let admin_addr = format!("{}:{}", bind_host(&config.serve.admin.host), config.serve.admin.port);
        let public = TcpListener::bind(&public_addr).await.map_err(|source| AppError::Bind {
            addr: public_addr.clone(),
            source,
        })?;
        let admin = TcpListener::bind(&admin_addr).await.map_err(|source| AppError::Bind {
            addr: admin_addr.clone(),
            source,
        })?;
        let dev = config.dev;
        let public_base = derive_base(
            config.serve.public.base_url.as_ref(),
            &config.serve.public.host,
            public.local_addr()?.port(),
            dev,
        )?;
        let admin_base = derive_base(
            config.serve.admin.base_url.as_ref(),
            &config.serve.admin.host,
            admin.local_addr()?.port(),
            true,
        )?;
        let mut config = config;
        config.set_bound_base_urls(public_base.clone(), admin_base.clone());
        let public_base = config.public_base_url();
        let admin_base = config.admin_base_url();
        if !dev && public_base.scheme() == "http" {
            return Err(AppError::Config(format!(
                "serve.public.base_url is {public_base}, but without --dev cookies are Secure and browsers drop them over http: \
                 use an https base URL (TLS may end at your proxy) or run with --dev for local development"
            )));
        }
        let hasher = hasher_of(&config);
        let mut secrets: Vec<String> = config.cookie_secrets().to_vec();
        if secrets.is_empty() && !dev {
            return Err(AppError::Config(
                "no secrets.cookie or secrets.default configured: Latch seals session cookies and keys stored code hashes \
                 with them. Set secrets.cookie (or the SECRETS_COOKIE_0 environment variable) to a random string of at least \
                 32 characters, or run with --dev for local development"
                    .into(),
            ));
        }
        if secrets.is_empty() {
            tracing::warn!(
                "no secrets.cookie or secrets.default configured: using a random secret, so sessions end when Latch restarts \
                 and do not work across several nodes"
            );
            secrets.push(crate::crypto::hex(&crate::crypto::random_bytes(32)));
        }
        let sealer =
            crate::crypto::seal::Sealer::new(&secrets).map_err(|e| AppError::Config(format!("secrets.cookie: {e}")))?;
        let hash_key = secrets
            .first()
            .and_then(|s| crate::crypto::HashKey::new(s))
            .ok_or_else(|| AppError::Config("secrets.cookie: the first secret is empty".into()))?;
        let csrf_cookie_name = crate::crypto::csrf::cookie_name(public_base.as_str());
        let (strategies, credentials) = crate::strategy::all(&config);
        let deps = Deps {
            env: crate::deps::Env {
                config,
                store,
                clock,
                schemas,
                hasher,
                public_base,
                hash_key,
                credentials,
            },
            sealer,
            csrf_cookie_name,
            mailer,
            metrics: Default::default(),
            admin_base,
        };
        Ok(App {
            deps: Arc::new(Service {
                deps: Arc::new(deps),
                strategies,
            }),
            public,
            admin,
        })
    }

    /// The bound public address.
    pub fn public_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The shared dependencies.
    pub fn deps(&self) -> &Arc<Deps> {
        &self.deps.deps
    }

    /// The handler state (dependencies and strategies).
    pub fn state(&self) -> &AppState {
        &self.deps
    }

    /// Serves both listeners until `shutdown` resolves; in-flight requests then finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), AppError> {
        let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let mut rx_public = tx.subscribe();
        let mut rx_admin = tx.subscribe();
        let public_router = http::public_router(self.deps.clone());
        let admin_router = http::admin_router(self.deps.clone());
        let admin_service = tower::util::MapRequestLayer::new(http::admin_prefix).layer(admin_router);
        let public = http::server::serve(self.public, public_router, async move {
            let _ = rx_public.recv().await;
        });
        let admin = http::server::serve(self.admin, admin_service, async move {
            let _ = rx_admin.recv().await;
        });
        let store = self.deps.store.clone();
        let listener = tokio::spawn(store.clone().listen_for_invalidations());
        let (stop_courier, stop_rx) = tokio::sync::watch::channel(false);
        let dispatcher = Dispatcher::new(
            &self.deps.config,
            store.clone(),
            self.deps.clock.clone(),
            self.deps.mailer.clone(),
        );
        let janitor = self.deps.config.latch.cleanup.enabled.then(|| {
            tokio::spawn(janitor(
                store.clone(),
                self.deps.clock.clone(),
                self.deps.config.latch.cleanup.clone(),
                stop_rx.clone(),
            ))
        });
        let web_hooks =
            crate::webhook::dispatcher::Dispatcher::new(&self.deps.config, store.clone(), self.deps.clock.clone());
        let web_hooks = tokio::spawn(web_hooks.run(stop_rx.clone()));
        let courier = tokio::spawn(dispatcher.run(stop_rx));
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = tx.send(());
        });
        tokio::join!(public, admin);
        listener.abort();
        // Requests may enqueue mail and web hooks until the end; the workers then finish their
        // current round.
        let _ = stop_courier.send(true);
        let _ = courier.await;
        // The web hook round in flight finishes (each attempt has its timeout) and is recorded.
        let _ = web_hooks.await;
        if let Some(j) = janitor {
            let _ = j.await;
        }
        store.close().await;
        Ok(())
    }
}

/// The optional cleanup janitor (`latch.cleanup.enabled`): runs `latch cleanup sql`'s work
/// once after a minute and then every `latch.cleanup.interval`, until `stop` turns `true`.
/// Several nodes may run it at once (see [`crate::store::cleanup`]).
async fn janitor(
    store: Store,
    clock: crate::clock::SharedClock,
    config: crate::config::Cleanup,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let options = crate::store::cleanup::CleanupOptions::from(&config);
    let mut wait = std::time::Duration::from_secs(60).min(config.interval);
    tracing::info!(interval_secs = config.interval.as_secs(), "cleanup janitor started");
    loop {
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            _ = tokio::time::sleep(wait) => {},
        }
        wait = config.interval.max(std::time::Duration::from_secs(1));
        let run = store.cleanup(clock.now(), &options);
        let result = tokio::select! {
            r = run => r,
            _ = stop.changed() => break,
        };
        match result {
            Ok(r) => tracing::info!(
                codes = r.codes,
                flows = r.flows,
                errors = r.errors,
                session_devices = r.session_devices,
                sessions = r.sessions,
                rate_limit_counters = r.rate_limit_counters,
                mail_bodies = r.mail_bodies,
                web_hook_bodies = r.web_hook_bodies,
                "cleanup janitor: run finished"
            ),
            Err(e) => tracing::error!(error = %e, "cleanup janitor: run failed; trying again at the next interval"),
        }
        store.cleanups.runs.send_modify(|n| *n += 1);
    }
}

/// Refuses a database with pending migrations, naming the command that applies them.
async fn ensure_migrated(store: &Store) -> Result<(), AppError> {
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        return Err(AppError::Config(format!(
            "the database has {} pending migration(s): run `latch migrate sql --yes -c <config>` (or `latch migrate sql -e --yes` with DSN set) first",
            pending.len()
        )));
    }
    Ok(())
}

/// Runs only the courier worker until `stop` turns `true`: opens the database, checks the
/// courier configuration and delivers the outbox. Kratos: `kratos courier watch`.
pub async fn watch_courier(
    config: Config,
    clock: SharedClock,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), AppError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = open_store(&config).await?;
    ensure_migrated(&store).await?;
    let mailer = crate::courier::setup(&config).map_err(|e| AppError::Config(e.to_string()))?;
    if mailer.is_none() {
        return Err(AppError::Config(
            "`latch courier watch` delivers mail, but no SMTP server is configured: set courier.smtp.connection_uri \
             (or the COURIER_SMTP_CONNECTION_URI environment variable)"
                .into(),
        ));
    }
    // On PostgreSQL: woken when any node queues mail.
    let listener = tokio::spawn(store.clone().listen_for_invalidations());
    Dispatcher::new(&config, store.clone(), clock, mailer).run(stop).await;
    listener.abort();
    store.close().await;
    Ok(())
}

fn bind_host(h: &str) -> &str {
    if h.is_empty() { "0.0.0.0" } else { h }
}

use tower::Layer as _;
