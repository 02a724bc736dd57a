//! The `latch` binary: a thin clap layer over the library. Commands mirror Kratos' CLI so
//! existing scripts keep working.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod cli_identities;

/// mimalloc returns freed memory to the OS: each argon2id hash allocates 19 MiB, and glibc's
/// malloc keeps such buffers in its arenas, which would leave an idle server at ~200 MB RSS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "latch",
    version,
    about = "A passwordless-first identity server that speaks the Ory Kratos API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the public and admin HTTP servers (Kratos: `kratos serve`).
    Serve(ServeArgs),
    /// Database migrations (Kratos: `kratos migrate sql`).
    Migrate {
        #[command(subcommand)]
        what: MigrateCommand,
    },
    /// Delete expired data (Kratos: `kratos cleanup`).
    Cleanup {
        #[command(subcommand)]
        what: CleanupCommand,
    },
    /// The mail worker (Kratos: `kratos courier`).
    Courier {
        #[command(subcommand)]
        what: CourierCommand,
    },
    /// Import resources (Kratos: `kratos import identities`).
    Import {
        #[command(subcommand)]
        what: cli_identities::ImportCommand,
    },
    /// List resources (Kratos: `kratos list identities`).
    #[command(alias = "ls")]
    List {
        #[command(subcommand)]
        what: cli_identities::ListCommand,
    },
    /// Get resources (Kratos: `kratos get identity`).
    Get {
        #[command(subcommand)]
        what: cli_identities::GetCommand,
    },
    /// Delete resources (Kratos: `kratos delete identity`).
    Delete {
        #[command(subcommand)]
        what: cli_identities::DeleteCommand,
    },
    /// Check a configuration file and exit (non-zero on errors).
    ValidateConfig {
        /// The configuration files (YAML or JSON), later ones override earlier ones.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also fail on Kratos keys that Latch accepts but does not implement yet.
        #[arg(long)]
        strict: bool,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Configuration files (YAML or JSON); repeatable, later ones override earlier ones.
    #[arg(short = 'c', long = "config")]
    config: Vec<PathBuf>,
    /// Development mode: cookies without `Secure`, http base URLs allowed.
    #[arg(long)]
    dev: bool,
    /// Accepted for Kratos compatibility; the courier worker always runs inside `serve`.
    #[arg(long = "watch-courier")]
    watch_courier: bool,
    /// Accepted for Kratos compatibility (Latch sends no telemetry).
    #[arg(long = "sqa-opt-out")]
    sqa_opt_out: bool,
}

#[derive(Debug, Subcommand)]
enum CourierCommand {
    /// Deliver queued mail until stopped (Kratos: `kratos courier watch`). `serve` runs the
    /// same worker; run this too (on any number of nodes) to add delivery capacity.
    Watch {
        /// Configuration files (YAML or JSON); repeatable, later ones override earlier ones.
        #[arg(short = 'c', long = "config")]
        config: Vec<PathBuf>,
        /// Accepted for Kratos compatibility; Latch serves metrics on the admin port only.
        #[arg(long = "expose-metrics-port")]
        expose_metrics_port: Option<u16>,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Apply pending SQL migrations; safe to run repeatedly.
    Sql {
        /// The database DSN (otherwise from the config file or `-e`).
        dsn: Option<String>,
        /// Read the DSN from the DSN environment variable.
        #[arg(short = 'e', long = "read-from-env")]
        read_from_env: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Configuration files.
        #[arg(short = 'c', long = "config")]
        config: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CleanupCommand {
    /// Delete expired flows, codes, failures, stored errors, sessions and rate-limit counters,
    /// and blank the bodies of old sent mail, in batches (Kratos: `kratos cleanup sql`).
    /// Safe to run on several nodes at once; prints the rows touched per kind.
    Sql {
        /// The database DSN (otherwise from the config file or `-e`).
        dsn: Option<String>,
        /// Read the DSN from the DSN environment variable.
        #[arg(short = 'e', long = "read-from-env")]
        read_from_env: bool,
        /// Configuration files; `latch.cleanup` there gives the defaults of the flags below.
        #[arg(short = 'c', long = "config")]
        config: Vec<PathBuf>,
        /// Keep rows for this long after they expired (default `latch.cleanup.keep_last`, 6h).
        #[arg(long = "keep-last")]
        keep_last: Option<String>,
        /// Rows per statement (default `latch.cleanup.batch_size`, 100).
        #[arg(long = "batch-size")]
        batch_size: Option<u32>,
        /// Pause between batches (default `latch.cleanup.sleep_between_batches`, 1s).
        #[arg(long = "sleep-between-batches")]
        sleep_between_batches: Option<String>,
        /// Blank sent mail bodies (and delivered web hook bodies) this long after sending
        /// (default `latch.cleanup.mail_body_retention`, 24h).
        #[arg(long = "mail-body-retention")]
        mail_body_retention: Option<String>,
    },
}

fn env_map() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

fn init_logging(level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCH_LOG")
        .or_else(|_| {
            tracing_subscriber::EnvFilter::try_new(latch::config::Log::filter_directive(level.unwrap_or("info")))
        })
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // Debug measurement only (see `store::stats`): counts SQL statements for the metrics.
    let counter = std::env::var(latch::store::stats::ENV)
        .is_ok_and(|v| v == "1" || v == "true")
        .then(|| {
            latch::store::stats::StatementCounter::new().with_filter(latch::store::stats::StatementCounter::filter())
        });
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if std::io::stderr().is_terminal() {
        fmt.boxed()
    } else {
        fmt.json().flatten_event(true).boxed()
    };
    // No `Option` layer when the counter is off: a `None` layer makes every span and event
    // callsite "sometimes" interesting, so each request's span would be built even when the
    // log level filters it out.
    let registry = tracing_subscriber::registry().with(fmt.with_filter(filter));
    match counter {
        Some(counter) => registry.with(counter).init(),
        None => registry.init(),
    }
}

fn out(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn fail(msg: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(async move {
        match cli.command {
            Command::Version => {
                out(concat!("Version: v", env!("CARGO_PKG_VERSION")));
                ExitCode::SUCCESS
            }
            Command::ValidateConfig { files, strict } => validate(&files, strict),
            Command::Migrate {
                what:
                    MigrateCommand::Sql {
                        dsn,
                        read_from_env,
                        yes,
                        config,
                    },
            } => migrate(dsn, read_from_env, yes, &config).await,
            Command::Cleanup {
                what:
                    CleanupCommand::Sql {
                        dsn,
                        read_from_env,
                        config,
                        keep_last,
                        batch_size,
                        sleep_between_batches,
                        mail_body_retention,
                    },
            } => {
                let flags = CleanupFlags {
                    keep_last,
                    batch_size,
                    sleep_between_batches,
                    mail_body_retention,
                };
                cleanup(dsn, read_from_env, &config, flags).await
            }
            Command::Serve(args) => serve(args).await,
            Command::Import {
                what:
                    cli_identities::ImportCommand::Identities {
                        files,
                        client,
                        dry_run,
                        batch_size,
                    },
            } => cli_identities::import(client, files, dry_run, batch_size).await,
            Command::List {
                what:
                    cli_identities::ListCommand::Identities {
                        legacy,
                        client,
                        page_size,
                        page_token,
                        consistency,
                    },
            } => cli_identities::list(client, legacy, page_size, page_token, consistency).await,
            Command::Get {
                what:
                    cli_identities::GetCommand::Identity {
                        ids,
                        client,
                        include_credentials,
                        external_id,
                    },
            } => cli_identities::get(client, ids, include_credentials, external_id).await,
            Command::Delete {
                what: cli_identities::DeleteCommand::Identity { ids, client },
            } => cli_identities::delete(client, ids).await,
            Command::Courier {
                what:
                    CourierCommand::Watch {
                        config,
                        expose_metrics_port,
                    },
            } => courier_watch(&config, expose_metrics_port).await,
        }
    })
}

fn validate(files: &[PathBuf], strict: bool) -> ExitCode {
    match latch::config::load(files, &env_map(), false) {
        Ok(loaded) => {
            for w in loaded.warnings.iter().chain(&loaded.notices) {
                let _ = writeln!(std::io::stderr(), "warning: {w}");
            }
            if strict && let Err(e) = latch::config::strict_check(&loaded) {
                return fail(&e.to_string());
            }
            out("The configuration is valid.");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

async fn migrate(dsn: Option<String>, from_env: bool, yes: bool, files: &[PathBuf]) -> ExitCode {
    let mut env = env_map();
    if let Some(d) = dsn {
        env.insert("DSN".into(), d);
    } else if !from_env && files.is_empty() {
        return fail("give a DSN, `-e` to read it from the DSN environment variable, or `-c <config file>`");
    }
    init_logging(Some("warn"));
    let clock = latch::clock::SystemClock;
    let store = match open_for_command(&env, files).await {
        Ok((s, _)) => s,
        Err(e) => return fail(&e),
    };
    let pending = match store.pending_migrations().await {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    if pending.is_empty() {
        out("The database is up to date: no migrations to apply.");
        return ExitCode::SUCCESS;
    }
    for m in &pending {
        out(&format!("pending: {}", m.name));
    }
    if !yes {
        out("Apply these migrations? [y/N]");
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_err() || !answer.trim().eq_ignore_ascii_case("y") {
            return fail("aborted (pass --yes to apply without asking)");
        }
    }
    match store.migrate(&clock).await {
        Ok(n) => {
            out(&format!("Applied {n} migration(s)."));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Opens the store for `migrate` / `cleanup`: from the config files when given (also
/// returning the config), otherwise from the `DSN` variable alone, so that these commands do
/// not ask for a whole Kratos config.
async fn open_for_command(
    env: &BTreeMap<String, String>,
    files: &[PathBuf],
) -> Result<(latch::store::Store, Option<latch::config::Config>), String> {
    if files.is_empty() {
        let d = env
            .get("DSN")
            .filter(|d| !d.trim().is_empty())
            .ok_or("the DSN environment variable is not set")?;
        let dsn = latch::config::parse_dsn(d).map_err(|e| e.to_string())?;
        let store = latch::store::Store::connect(&dsn).await.map_err(|e| e.to_string())?;
        Ok((store, None))
    } else {
        let loaded = latch::config::load(files, env, false).map_err(|e| e.to_string())?;
        let store = latch::app::open_store(&loaded.config)
            .await
            .map_err(|e| e.to_string())?;
        Ok((store, Some(loaded.config)))
    }
}

/// `latch cleanup sql` flags that override `latch.cleanup`.
struct CleanupFlags {
    keep_last: Option<String>,
    batch_size: Option<u32>,
    sleep_between_batches: Option<String>,
    mail_body_retention: Option<String>,
}

fn duration_flag(name: &str, v: Option<&str>, default: std::time::Duration) -> Result<std::time::Duration, String> {
    match v {
        Some(v) => latch::config::parse_duration(v).map_err(|e| format!("--{name}: {e}")),
        None => Ok(default),
    }
}

async fn cleanup(dsn: Option<String>, from_env: bool, files: &[PathBuf], flags: CleanupFlags) -> ExitCode {
    let mut env = env_map();
    if let Some(d) = dsn {
        env.insert("DSN".into(), d);
    } else if !from_env && files.is_empty() {
        return fail("give a DSN, `-e` to read it from the DSN environment variable, or `-c <config file>`");
    }
    init_logging(Some("warn"));
    let (store, config) = match open_for_command(&env, files).await {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let defaults = config.map(|c| c.latch.cleanup).unwrap_or_default();
    let options = (|| -> Result<latch::store::cleanup::CleanupOptions, String> {
        Ok(latch::store::cleanup::CleanupOptions {
            keep_last: duration_flag("keep-last", flags.keep_last.as_deref(), defaults.keep_last)?,
            batch_size: match flags.batch_size {
                Some(0) => return Err("--batch-size must be at least 1".into()),
                Some(n) => n,
                None => defaults.batch_size,
            },
            sleep_between_batches: duration_flag(
                "sleep-between-batches",
                flags.sleep_between_batches.as_deref(),
                defaults.sleep_between_batches,
            )?,
            mail_body_retention: duration_flag(
                "mail-body-retention",
                flags.mail_body_retention.as_deref(),
                defaults.mail_body_retention,
            )?,
        })
    })();
    let options = match options {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    match store.pending_migrations().await {
        Ok(p) if p.is_empty() => {}
        Ok(p) => {
            return fail(&format!(
                "the database has {} pending migration(s): run `latch migrate sql` first",
                p.len()
            ));
        }
        Err(e) => return fail(&e.to_string()),
    }
    let now = latch::clock::Clock::now(&latch::clock::SystemClock);
    let result = store.cleanup(now, &options).await;
    store.close().await;
    match result {
        Ok(report) => {
            for (kind, n) in report.rows() {
                out(&format!("{kind}: {n}"));
            }
            out(&format!("Cleaned up {} row(s).", report.total()));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let _ = (args.watch_courier, args.sqa_opt_out);
    let env = env_map();
    let zero_config = args.config.is_empty();
    let loaded = if zero_config {
        if !args.dev {
            return fail(
                "no configuration given. Either pass a Kratos-style config file with `-c FILE` (it needs at least \
                 `dsn` and `identity.schemas`, and usually `serve.public.base_url`; see docs/configuration.md and examples/latch.yml), \
                 or run `latch serve --dev` for a zero-configuration development server (SQLite file latch.sqlite in the \
                 working directory, built-in identity schema and UI on http://localhost:4433/).",
            );
        }
        let dir = match std::env::current_dir() {
            Ok(d) => d,
            Err(e) => return fail(&format!("cannot read the working directory: {e}")),
        };
        let (secrets, path, created) = match latch::config::dev::load_or_create_secrets(&dir) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
        let layer = latch::config::dev::zero_config_layer(&env, &secrets);
        match latch::config::load_values(vec![layer], &env, true) {
            Ok(l) => {
                init_logging(Some(l.config.log.level.as_str()).filter(|l| !l.is_empty()));
                if created {
                    tracing::info!(file = %path.display(), "generated development secrets (kept for the next start)");
                }
                l
            }
            Err(e) => return fail(&e.to_string()),
        }
    } else {
        match latch::config::load(&args.config, &env, args.dev) {
            Ok(l) => {
                init_logging(Some(l.config.log.level.as_str()).filter(|l| !l.is_empty()));
                l
            }
            Err(e) => return fail(&e.to_string()),
        }
    };
    for w in loaded.warnings.iter().chain(&loaded.notices) {
        tracing::warn!("{w}");
    }
    let memory = loaded.config.dsn.trim() == "memory";
    let opts = latch::app::BuildOptions {
        clock: None,
        migrate: memory || zero_config,
    };
    let app = match latch::app::App::build(loaded.config, opts).await {
        Ok(a) => a,
        Err(e) => return fail(&e.to_string()),
    };
    let deps = app.deps();
    tracing::info!(
        public = %deps.public_base,
        admin = %deps.admin_base,
        public_listen = %app.public_addr(),
        admin_listen = %app.admin_addr(),
        "Latch is serving"
    );
    let builtin_ui = deps.config.flow_ui_url("registration").as_str() == deps.public_url("ui/registration");
    if zero_config || builtin_ui {
        tracing::info!(
            sign_up = %deps.public_url("ui/registration"),
            sign_in = %deps.public_url("ui/login"),
            welcome = %deps.public_url("ui/welcome"),
            admin_api = %deps.admin_base,
            "open {} to create an account, {} to sign in",
            deps.public_url("ui/registration"),
            deps.public_url("ui/login")
        );
    }
    match app.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

async fn courier_watch(files: &[PathBuf], metrics_port: Option<u16>) -> ExitCode {
    let loaded = match latch::config::load(files, &env_map(), false) {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    init_logging(Some(loaded.config.log.level.as_str()).filter(|l| !l.is_empty()));
    for w in loaded.warnings.iter().chain(&loaded.notices) {
        tracing::warn!("{w}");
    }
    if let Some(port) = metrics_port {
        tracing::warn!(
            port,
            "--expose-metrics-port is accepted for Kratos compatibility and ignored"
        );
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let clock = std::sync::Arc::new(latch::clock::SystemClock);
    match latch::app::watch_courier(loaded.config, clock, stopped).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
