//! The `chronos` command line: `serve` (the default), `api`, `worker`, `migrate`
//! and `cron next`.
//!
//! Exit codes: 0 on success (also after a graceful shutdown on SIGTERM or SIGINT),
//! 1 when something fails at run time (a database that cannot be reached, a port
//! that is taken), 2 for a usage or configuration error (the message names the
//! variable or argument and the expected form).

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use chronos::cron::CronSchedule;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat};
use crate::wiring::{self, Role};

/// Chronos: a job scheduler with a REST API.
///
/// Configuration comes from environment variables and an optional `.env` file in
/// the working directory (see the README for the table). Without `DATABASE_URL`,
/// everything runs in memory in one process.
#[derive(Debug, Parser)]
#[command(name = "chronos", version, about, long_about)]
pub struct Cli {
    /// What to run (default: `serve`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API, the scheduler and the workers in one process (the default).
    Serve,
    /// Run the HTTP API only (no workers, no safety sync). Needs DATABASE_URL.
    Api,
    /// Run the scheduler: workers, safety sync, failure notifications and partition
    /// maintenance; no HTTP. Needs DATABASE_URL.
    Worker,
    /// Run the PostgreSQL migrations and exit. Needs DATABASE_URL.
    Migrate,
    /// Cron expression tools.
    #[command(subcommand)]
    Cron(CronCommand),
}

/// `chronos cron …`.
#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Print the next fire times of a cron expression, one RFC 3339 instant per line,
    /// in the zone's offset.
    Next(CronNext),
}

/// `chronos cron next`.
#[derive(Debug, Args)]
pub struct CronNext {
    /// The expression: 5 fields, or 6 with seconds first; names, ranges, lists,
    /// steps, macros (@daily…), L, W, #. Quote it.
    pub expression: String,
    /// The IANA time zone it is evaluated in.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Start after this instant (RFC 3339, with Z or an offset; default: now).
    #[arg(long)]
    pub after: Option<String>,
    /// How many instants to print (1 to 1000).
    #[arg(long, default_value_t = 5)]
    pub count: usize,
}

/// Why `cron next` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronNextError {
    /// The expression does not parse.
    #[error("invalid cron expression {expression:?}: {reason}")]
    Expression {
        /// The expression.
        expression: String,
        /// The parser's reason.
        reason: String,
    },
    /// Not an IANA zone.
    #[error("invalid time zone {0:?}: expected an IANA name such as Europe/Berlin or UTC")]
    Zone(String),
    /// `--after` does not parse.
    #[error("invalid --after {0:?}: expected an RFC 3339 instant such as 2026-03-29T00:00:00Z")]
    After(String),
    /// `--count` out of range.
    #[error("invalid --count {0}: expected 1 to 1000")]
    Count(usize),
}

/// The next `count` fire times of `expression` in `tz` after `after`, formatted in
/// the zone's offset (fewer if the expression stops firing).
pub fn cron_next(
    expression: &str,
    tz: &str,
    after: Option<&str>,
    count: usize,
    now: DateTime<Utc>,
) -> Result<Vec<String>, CronNextError> {
    if !(1..=1000).contains(&count) {
        return Err(CronNextError::Count(count));
    }
    let zone: Tz = tz
        .trim()
        .parse()
        .map_err(|_| CronNextError::Zone(tz.to_owned()))?;
    let after = match after {
        None => now,
        Some(s) => DateTime::parse_from_rfc3339(s.trim())
            .map_err(|_| CronNextError::After(s.to_owned()))?
            .with_timezone(&Utc),
    };
    let schedule = CronSchedule::parse(expression).map_err(|e| CronNextError::Expression {
        expression: expression.to_owned(),
        reason: e.message().to_owned(),
    })?;
    Ok(schedule
        .iter_after(after, zone)
        .take(count)
        .map(|t| {
            t.with_timezone(&zone)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        })
        .collect())
}

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Cron(CronCommand::Next(args))) => run_cron_next(&args),
        Some(Command::Migrate) => run_async(Mode::Migrate),
        Some(Command::Api) => run_async(Mode::Run(Role::Api)),
        Some(Command::Worker) => run_async(Mode::Run(Role::Worker)),
        Some(Command::Serve) | None => run_async(Mode::Run(Role::Serve)),
    }
}

fn run_cron_next(args: &CronNext) -> ExitCode {
    match cron_next(
        &args.expression,
        &args.tz,
        args.after.as_deref(),
        args.count,
        Utc::now(),
    ) {
        Ok(lines) => {
            let mut out = std::io::stdout().lock();
            for line in lines {
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chronos: {e}");
            ExitCode::from(2)
        }
    }
}

enum Mode {
    Migrate,
    Run(Role),
}

/// Reads `.env` and the environment; exits 2 on a bad value.
fn load_config() -> Result<Config, ExitCode> {
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => {
            eprintln!("chronos: invalid configuration: .env: {e}");
            return Err(ExitCode::from(2));
        }
    }
    Config::from_env().map_err(|e| {
        eprintln!("chronos: {e}");
        ExitCode::from(2)
    })
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(&config.log_level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("chronos: logging could not be set up: {e}");
    }
}

fn run_async(mode: Mode) -> ExitCode {
    let config = match load_config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let needs_db = match mode {
        Mode::Migrate => Some("migrate runs the PostgreSQL migrations"),
        Mode::Run(Role::Api) => Some(
            "an `api` process without a database would keep jobs that no worker ever sees; use `serve` for the all-in-one in-memory mode",
        ),
        Mode::Run(Role::Worker) => Some(
            "a `worker` process without a database would run only jobs that no API can create; use `serve` for the all-in-one in-memory mode",
        ),
        Mode::Run(Role::Serve) => None,
    };
    if let (Some(why), None) = (needs_db, &config.database_url) {
        eprintln!(
            "chronos: invalid configuration: DATABASE_URL: required here ({why}); expected a URL like postgres://user:password@host:5432/database"
        );
        return ExitCode::from(2);
    }
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chronos: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match mode {
            Mode::Migrate => migrate(&config).await,
            Mode::Run(role) => run(&config, role).await,
        }
    });
    // Background tasks (listeners, pools) are not waited for beyond this.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "chronos stopped with an error");
            eprintln!("chronos: {e}");
            ExitCode::from(1)
        }
    }
}

/// What stops a command at run time.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Wiring failed.
    #[error(transparent)]
    Wiring(#[from] wiring::WiringError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `HOST:PORT`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed.
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The signal handlers could not be installed.
    #[error("cannot listen for signals: {0}")]
    Signals(#[source] std::io::Error),
    /// The engine failed to shut down.
    #[error("shutdown failed: {0}")]
    Shutdown(#[source] chronos::Error),
}

async fn migrate(config: &Config) -> Result<(), RunError> {
    let Some(url) = &config.database_url else {
        return Ok(());
    };
    let pool = wiring::connect_pool(url.expose(), 1).await?;
    chronos_postgres::migrate(&pool)
        .await
        .map_err(wiring::WiringError::from)?;
    pool.close().await;
    tracing::info!(database = %url, "migrations applied");
    let _ = writeln!(std::io::stdout().lock(), "migrations applied");
    Ok(())
}

fn warn_about(config: &Config) {
    if config.jwt_secret_generated {
        tracing::warn!(
            "JWT_SECRET is not set: using a random secret for this process only. Tokens \
             stop working on restart and are not accepted by other processes. Set \
             JWT_SECRET (at least 32 random bytes) — it is required with CHRONOS_ENV=production"
        );
    }
    if config.is_embedded() {
        tracing::warn!(
            "DATABASE_URL is not set: running on IN-MEMORY backends. Every user, job and \
             execution is LOST when this process stops. Set DATABASE_URL for a durable service"
        );
    }
    if config.is_embedded() && config.redis_url.is_some() {
        tracing::warn!(
            "REDIS_URL without DATABASE_URL: the queue lives in Redis but jobs live in \
             memory; the queue's entries for jobs lost in a restart are discarded"
        );
    }
    if config.allow_private_targets {
        tracing::warn!(
            "ALLOW_PRIVATE_TARGETS is on: the http executor may call loopback, private and \
             link-local addresses (cloud metadata included)"
        );
    }
}

/// The process's stop signal: SIGTERM or SIGINT.
async fn stop_signal() -> Result<impl std::future::Future<Output = &'static str>, RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

async fn run(config: &Config, role: Role) -> Result<(), RunError> {
    warn_about(config);
    let stop = stop_signal().await?;
    let backends = wiring::connect(config).await?;
    let users = wiring::user_store(&backends);
    let recipients = Arc::new(wiring::UserRecipients(users.clone()));
    let wired = wiring::build(config, role, backends, recipients).await?;

    if !role.serves_http() {
        let signal = stop.await;
        tracing::info!(signal, "stopping: finishing running attempts");
        wired.shutdown().await.map_err(RunError::Shutdown)?;
        tracing::info!("stopped");
        return Ok(());
    }

    let services = wiring::services(config, &wired, users)?;
    let addr = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|source| RunError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(RunError::Serve)?;
    let app = wiring::router(&wired, services);
    tracing::info!(address = %local, role = role.as_str(), "listening");

    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stopping_rx.wait_for(|s| *s).await;
    });
    let mut server = std::pin::pin!(server.into_future());
    let signal = tokio::select! {
        result = &mut server => {
            // The server ended by itself: an error.
            wired.shutdown().await.map_err(RunError::Shutdown)?;
            return match result {
                Ok(()) => Ok(()),
                Err(e) => Err(RunError::Serve(e)),
            };
        }
        signal = stop => signal,
    };
    tracing::info!(
        signal,
        grace_secs = config.shutdown_grace.as_secs(),
        "stopping: no new connections, finishing requests and running attempts"
    );
    let _ = stopping_tx.send(true);
    let drain = async {
        match tokio::time::timeout(config.shutdown_grace + Duration::from_secs(1), &mut server)
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the HTTP server failed while stopping"),
            Err(_) => tracing::warn!("requests still open after the grace period: closing them"),
        }
    };
    wired
        .shutdown_with(drain)
        .await
        .map_err(RunError::Shutdown)?;
    tracing::info!("stopped");
    Ok(())
}
