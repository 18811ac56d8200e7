//! Wiring: from a [`Config`] to a running [`Chronos`] engine on the configured
//! backends, with the built-in executors, the failure notifiers, partition
//! maintenance, the metrics and the [`System`] of the operational routes.
//!
//! | configured | store | queue |
//! |---|---|---|
//! | nothing | in memory | in memory |
//! | `DATABASE_URL` | `PgStore` | `PgQueue` |
//! | `DATABASE_URL`, `REDIS_URL` | `PgStore` | `RedisQueue` |
//!
//! Every Redis key carries `REDIS_PREFIX` (see [`queue_prefix`] and
//! [`services`]), so deployments sharing one Redis do not share a queue.
//!
//! [`connect`] opens the backends (and migrates, unless `RUN_MIGRATIONS=false`);
//! [`build`] builds the engine for a [`Role`] over them. The split lets the caller
//! build the services that share the backends (users, rate limits, revocations)
//! in between, and hand the user lookup to the email notifier.

use std::sync::Arc;
use std::time::Duration;

use chronos::clock::{Clock, SystemClock};
use chronos::notifier::NotifyError;
use chronos::{Chronos, ChronosBuilder};
use chronos_notify::{EmailNotifier, Recipients, SmtpConfig, WebhookConfig, WebhookNotifier};
use chronos_postgres::{
    Maintenance, MaintenanceConfig, MaintenanceHandle, PgPool, PgQueue, PgStore, PgUsers,
};
use chronos_redis::{RedisRateLimiter, RedisRevocationList};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::adapters::{RedisRateLimits, RedisRevocations};
use crate::auth::token::Tokens;
use crate::config::Config;
use crate::executors::{self, HttpExecutorError, HttpExecutorOptions};
use crate::metrics::Metrics;
use crate::ports::{MemoryUsers, UserStore};
use crate::routes::system::{QueueBackend, System};
use crate::state::{AppState, RateLimit, Services, Settings};

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The HTTP API, the scheduler and the workers in one process.
    Serve,
    /// The HTTP API only (no workers, no safety sync).
    Api,
    /// The workers, the safety sync, the notification dispatch and partition
    /// maintenance; no HTTP.
    Worker,
}

impl Role {
    /// `serve`, `api` or `worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Serve => "serve",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }

    /// Whether the process serves HTTP.
    pub fn serves_http(self) -> bool {
        matches!(self, Role::Serve | Role::Api)
    }

    /// Whether the process runs workers, the safety sync and maintenance.
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::Serve | Role::Worker)
    }
}

/// What went wrong while wiring.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// PostgreSQL could not be reached or migrated.
    #[error(transparent)]
    Database(#[from] chronos_postgres::DbError),
    /// The `DATABASE_URL` does not parse as PostgreSQL connect options.
    #[error("DATABASE_URL: {0}")]
    DatabaseUrl(#[source] sqlx::Error),
    /// Redis could not be reached.
    #[error("cannot connect to Redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// The queue could not be opened.
    #[error("cannot open the queue: {0}")]
    Queue(#[source] chronos::queue::QueueError),
    /// A notifier's configuration is unusable.
    #[error("{channel} notifier: {source}")]
    Notifier {
        /// `email` or `webhook`.
        channel: &'static str,
        /// Why.
        #[source]
        source: chronos_notify::ConfigError,
    },
    /// The `http` executor could not be built.
    #[error(transparent)]
    Executor(#[from] HttpExecutorError),
    /// The API's services could not be built.
    #[error("the API could not be set up: {0}")]
    Services(String),
    /// The engine refused to start.
    #[error("the scheduler could not start: {0}")]
    Engine(#[source] chronos::Error),
}

/// The backends a process shares between the engine and the API's services.
#[derive(Clone, Default)]
pub struct Backends {
    /// PostgreSQL (`DATABASE_URL`).
    pub pool: Option<PgPool>,
    /// A managed Redis connection (`REDIS_URL`): rate limits, revocations, health.
    pub redis: Option<redis::aio::ConnectionManager>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("pool", &self.pool.is_some())
            .field("redis", &self.redis.is_some())
            .finish()
    }
}

/// Opens the configured backends: connects to PostgreSQL and runs the migrations
/// (unless `RUN_MIGRATIONS=false`), and connects to Redis. Without either, nothing
/// is opened (the embedded mode).
pub async fn connect(config: &Config) -> Result<Backends, WiringError> {
    let pool = match &config.database_url {
        None => None,
        Some(url) => {
            let pool = connect_pool(url.expose(), config.worker_concurrency).await?;
            tracing::info!(database = %url, "connected to PostgreSQL");
            if config.run_migrations {
                chronos_postgres::migrate(&pool).await?;
                tracing::info!("database migrations are up to date");
            } else {
                tracing::info!("RUN_MIGRATIONS=false: not running the database migrations");
            }
            Some(pool)
        }
    };
    let redis = match &config.redis_url {
        None => None,
        Some(url) => {
            let client = redis::Client::open(url.expose()).map_err(WiringError::Redis)?;
            let manager = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(5)))
                .set_response_timeout(Some(Duration::from_secs(1)))
                .set_number_of_retries(3);
            let conn = client
                .get_connection_manager_with_config(manager)
                .await
                .map_err(WiringError::Redis)?;
            tracing::info!(redis = %url, "connected to Redis");
            Some(conn)
        }
    };
    Ok(Backends { pool, redis })
}

/// A pool sized for the workers: the store, the queue's listener and the API share it.
pub async fn connect_pool(url: &str, concurrency: usize) -> Result<PgPool, WiringError> {
    let options: PgConnectOptions = url.parse().map_err(WiringError::DatabaseUrl)?;
    let size = u32::try_from(concurrency / 2 + 6)
        .unwrap_or(u32::MAX)
        .clamp(10, 64);
    Ok(chronos_postgres::connect_with(options, PgPoolOptions::new().max_connections(size)).await?)
}

/// A running engine and what the routes need.
pub struct Wired {
    /// The engine.
    pub chronos: Chronos,
    /// The backends it runs on.
    pub backends: Backends,
    /// The process's metrics (already counting the engine's events).
    pub metrics: Metrics,
    /// What the operational routes need.
    pub system: System,
    maintenance: Option<MaintenanceHandle>,
}

impl std::fmt::Debug for Wired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wired")
            .field("chronos", &self.chronos)
            .field("backends", &self.backends)
            .field("maintenance", &self.maintenance.is_some())
            .finish_non_exhaustive()
    }
}

impl Wired {
    /// Graceful shutdown of the engine (see [`Chronos::shutdown`]) and of the
    /// maintenance task, then the database pool is closed.
    pub async fn shutdown(self) -> Result<(), chronos::Error> {
        self.shutdown_with(async {}).await
    }

    /// [`Wired::shutdown`] alongside `serving` (the HTTP server finishing the requests
    /// it accepted): the database pool is closed only once both are done, so that a
    /// request accepted before the signal is not refused for want of a connection.
    pub async fn shutdown_with(
        self,
        serving: impl std::future::Future<Output = ()>,
    ) -> Result<(), chronos::Error> {
        let Wired {
            chronos,
            backends,
            maintenance,
            ..
        } = self;
        let engine = async {
            let result = chronos.shutdown().await;
            if let Some(maintenance) = maintenance {
                maintenance.shutdown().await;
            }
            result
        };
        let (result, ()) = tokio::join!(engine, serving);
        if let Some(pool) = &backends.pool {
            pool.close().await;
        }
        result
    }
}

/// The engine's tunables from the configuration, for `role`.
pub fn engine_config(config: &Config, role: Role) -> chronos::Config {
    chronos::Config {
        concurrency: config.worker_concurrency.max(1),
        lease: config.job_lease,
        sync_interval: config.safety_sync_interval,
        shutdown_grace: config.shutdown_grace,
        run_workers: role.runs_workers(),
        run_sync: role.runs_workers(),
        ..chronos::Config::default()
    }
}

/// The options of the `http` executor from the configuration.
pub fn http_executor_options(config: &Config) -> HttpExecutorOptions {
    HttpExecutorOptions {
        allow_private_targets: config.allow_private_targets,
        allowed_addresses: Vec::new(),
        secret: config.http_executor_secret.clone(),
    }
}

/// The SMTP settings of the email notifier, or `None` without `SMTP_HOST`.
pub fn smtp_config(config: &Config) -> Option<SmtpConfig> {
    let smtp = config.smtp.as_ref()?;
    Some(SmtpConfig {
        port: smtp.port,
        username: smtp.username.clone(),
        password: smtp.password.as_ref().map(|p| p.expose().to_owned()),
        logs_url: config.public_url.clone(),
        ..SmtpConfig::new(smtp.host.clone(), smtp.tls, smtp.from.clone())
    })
}

/// Registers the failure notifiers that are configured; `recipients` looks up the
/// address of a job's owner for the email notifier.
pub fn register_notifiers(
    mut builder: ChronosBuilder,
    config: &Config,
    recipients: Arc<dyn Recipients>,
) -> Result<ChronosBuilder, WiringError> {
    match smtp_config(config) {
        Some(smtp) => {
            let server = format!("{}:{}", smtp.host, smtp.port);
            let email =
                EmailNotifier::new(smtp, recipients).map_err(|source| WiringError::Notifier {
                    channel: "email",
                    source,
                })?;
            tracing::info!(server = %server, "failure emails are enabled");
            builder = builder.notifier(email);
        }
        None => {
            tracing::info!("SMTP_HOST is not set: failure emails are disabled");
        }
    }
    if let Some(hook) = &config.webhook {
        let webhook =
            WebhookNotifier::new(WebhookConfig::new(hook.url.expose(), hook.secret.expose()))
                .map_err(|source| WiringError::Notifier {
                    channel: "webhook",
                    source,
                })?;
        tracing::info!(url = %hook.url, "failure webhooks are enabled");
        builder = builder.notifier(webhook);
    }
    Ok(builder)
}

/// Builds and starts the engine for `role` on `backends`: the store and queue, the
/// built-in executors, the notifiers, the engine's configuration; then partition
/// maintenance (workers with PostgreSQL), the metrics and the [`System`].
pub async fn build(
    config: &Config,
    role: Role,
    backends: Backends,
    recipients: Arc<dyn Recipients>,
) -> Result<Wired, WiringError> {
    build_with(config, role, backends, recipients, |builder| builder).await
}

/// [`build`], letting an application that embeds the service change the engine's
/// builder last: register its own executors by handler name (a name the built-ins
/// use already fails the build), add notifiers.
///
/// ```no_run
/// # async fn run(config: chronos_http::config::Config, backends: chronos_http::wiring::Backends,
/// #              recipients: std::sync::Arc<dyn chronos_notify::Recipients>) -> Result<(), Box<dyn std::error::Error>> {
/// use chronos::executor::JobContext;
/// use chronos_http::wiring::{self, Role};
///
/// let wired = wiring::build_with(&config, Role::Serve, backends, recipients, |builder| {
///     builder.executor("invoice", |ctx: JobContext| async move {
///         Ok(serde_json::json!({ "invoiced": ctx.payload()["customer"] }))
///     })
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn build_with(
    config: &Config,
    role: Role,
    backends: Backends,
    recipients: Arc<dyn Recipients>,
    customize: impl FnOnce(ChronosBuilder) -> ChronosBuilder,
) -> Result<Wired, WiringError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut builder = Chronos::builder().clock(clock.clone());
    let queue_backend = match (&backends.pool, &config.redis_url) {
        (_, Some(url)) => {
            let client = redis::Client::open(url.expose()).map_err(WiringError::Redis)?;
            let prefix = queue_prefix(&config.redis_prefix);
            let queue = chronos_redis::RedisQueue::connect(client, &prefix, clock.clone())
                .await
                .map_err(WiringError::Queue)?;
            builder = builder.queue(queue);
            QueueBackend::Redis
        }
        (Some(pool), None) => {
            let queue = PgQueue::new(pool.clone(), clock.clone())
                .await
                .map_err(WiringError::Queue)?;
            builder = builder.queue(queue);
            QueueBackend::Postgres
        }
        (None, None) => QueueBackend::Memory,
    };
    if let Some(pool) = &backends.pool {
        builder = builder.store(PgStore::new(pool.clone()));
    }
    builder = executors::register(builder, http_executor_options(config))?;
    builder = register_notifiers(builder, config, recipients)?;
    builder = customize(builder.config(engine_config(config, role)));
    let chronos = builder.build().await.map_err(WiringError::Engine)?;
    tracing::info!(
        role = role.as_str(),
        store = if backends.pool.is_some() { "postgresql" } else { "memory" },
        queue = queue_backend.as_str(),
        concurrency = chronos.config().concurrency,
        worker_id = %chronos.config().worker_id,
        "scheduler started"
    );

    let maintenance = match (&backends.pool, role.runs_workers()) {
        (Some(pool), true) => Some(Maintenance::spawn(
            pool.clone(),
            clock,
            MaintenanceConfig {
                retention_months: config.retention_months(),
                ..MaintenanceConfig::default()
            },
        )),
        _ => None,
    };

    let metrics = Metrics::new();
    metrics.watch(&chronos);
    let mut system = System::builder(chronos.clone())
        .queue_backend(queue_backend)
        .metrics(metrics.clone())
        .environment(if config.production {
            "production"
        } else {
            "development"
        })
        .role(role.as_str());
    if let Some(pool) = &backends.pool {
        system = system.database(pool.clone());
    }
    if let Some(redis) = &backends.redis {
        system = system.redis(redis.clone());
    }
    Ok(Wired {
        chronos,
        system: system.build(),
        metrics,
        backends,
        maintenance,
    })
}

/// The whole HTTP application: the API over `services` (see [`crate::app`]), the
/// operational routes of [`crate::routes::system`] (public `/health`, `/metrics`,
/// `/openapi.json`, `/docs`; `/api/v1/dashboard/health` behind authentication),
/// and the request metrics.
pub fn router(wired: &Wired, services: Services) -> axum::Router {
    crate::app::router_with(
        AppState::new(services),
        crate::routes::system::routes(wired.system.clone()),
        crate::routes::system::dashboard_routes(wired.system.clone()),
    )
    .layer(axum::middleware::from_fn_with_state(
        wired.metrics.clone(),
        crate::metrics::track,
    ))
}

/// The failure-email [`Recipients`] of the service: the address of the job's owner,
/// looked up in the user store. An owner who is not a user (an embedded
/// application's jobs) has no address, and the email is skipped; a store that is
/// down is a retryable failure.
#[derive(Clone)]
pub struct UserRecipients(pub Arc<dyn UserStore>);

impl std::fmt::Debug for UserRecipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecipients").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Recipients for UserRecipients {
    async fn email_of(&self, owner: uuid::Uuid) -> Result<Option<String>, NotifyError> {
        match self.0.by_id(owner).await {
            Ok(user) => Ok(user.map(|u| u.email)),
            Err(e) => Err(NotifyError::retryable(format!(
                "the owner's email address could not be looked up: {e}"
            ))),
        }
    }
}

/// The default `REDIS_PREFIX`: the key prefix (hash tag) of the rate limits and
/// revocations in Redis when none is configured (see [`Config::redis_prefix`]).
pub const REDIS_PREFIX: &str = crate::config::REDIS_PREFIX_DEFAULT;

/// The prefix of the Redis queue's keys for `REDIS_PREFIX` `prefix`:
/// `<prefix>:{queue}` (its own hash tag, as the rate limits and revocations have
/// theirs, `{<prefix>}`). The default prefix gives [`chronos_redis::DEFAULT_PREFIX`].
pub fn queue_prefix(prefix: &str) -> String {
    format!("{prefix}:{{queue}}")
}

/// The user store: PostgreSQL with a database, else in memory.
pub fn user_store(backends: &Backends) -> Arc<dyn UserStore> {
    match &backends.pool {
        Some(pool) => Arc::new(PgUsers::new(pool.clone())),
        None => Arc::new(MemoryUsers::new()),
    }
}

/// The HTTP layer's settings from the configuration.
pub fn settings(config: &Config) -> Settings {
    Settings {
        user_rate_limit: RateLimit {
            max: config.rate_limit_max,
            window: config.rate_limit_window,
        },
        auth_rate_limit: RateLimit {
            max: config.auth_rate_limit_max,
            window: config.auth_rate_limit_window,
        },
        trust_proxy: config.trust_proxy,
        body_limit: config.body_limit_bytes,
        cors_origin: config.cors_origin.clone(),
        ..Settings::default()
    }
}

/// The API's services over the wired engine: `users` (see [`user_store`]), rate
/// limits and revocations in Redis under `{REDIS_PREFIX}` when configured (else in
/// memory), tokens signed with `JWT_SECRET` living `JWT_EXPIRES_IN`, and the
/// [`settings`].
pub fn services(
    config: &Config,
    wired: &Wired,
    users: Arc<dyn UserStore>,
) -> Result<Services, WiringError> {
    let clock = wired.chronos.clock().clone();
    let tokens = Tokens::new(config.jwt_secret.expose().as_bytes(), config.jwt_expires_in)
        .map_err(|e| WiringError::Services(e.to_string()))?;
    let mut builder = Services::builder(wired.chronos.clone())
        .users(users)
        .tokens(tokens)
        .settings(settings(config));
    if let Some(conn) = &wired.backends.redis {
        builder = builder
            .revocations(Arc::new(RedisRevocations::new(
                RedisRevocationList::new(conn.clone(), config.redis_prefix.clone()),
                clock.clone(),
            )))
            .limiter(Arc::new(RedisRateLimits::new(
                RedisRateLimiter::new(conn.clone(), config.redis_prefix.clone()),
                clock,
            )));
    }
    builder
        .build()
        .map_err(|e| WiringError::Services(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_prefix_keeps_the_queue_where_it_was() {
        assert_eq!(queue_prefix(REDIS_PREFIX), chronos_redis::DEFAULT_PREFIX);
        assert_eq!(
            queue_prefix("chronos-test:0a1b"),
            "chronos-test:0a1b:{queue}"
        );
    }
}
