//! Connecting, migrating, and turning database errors into the core's errors.

use std::time::Duration;

use chronos::queue::QueueError;
use chronos::store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

/// How long a pooled connection may sit idle before it is pinged when handed out
/// (see [`connect`]).
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// What went wrong while connecting or migrating.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL does not parse.
    #[error("invalid database URL: {0}")]
    Url(#[source] sqlx::Error),
    /// The server cannot be reached or refused the connection.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Connects a pool with the defaults: 10 connections, 5 s to acquire one.
///
/// A connection idle for [`PING_IDLE_AFTER`] or more is pinged before it is handed
/// out (and replaced when the ping fails), so the pool recovers by itself after a
/// quiet restart of the server. A busy connection is not: pinging before every
/// statement doubled the round trips of each. So a connection the server killed
/// while busy (a restart under load, `pg_terminate_backend`) fails the one statement
/// that finds it dead and is then dropped; the engine tries an outcome write again
/// and hands an attempt that could not start back to the queue, and the HTTP service
/// answers that one request 503.
pub async fn connect(url: &str) -> Result<PgPool, DbError> {
    let options: PgConnectOptions = url.parse().map_err(DbError::Url)?;
    connect_with(options, PgPoolOptions::new().max_connections(10)).await
}

/// Connects a pool with the given options (see [`connect`] for what is added).
///
/// Sessions plan statements generically (`plan_cache_mode=force_generic_plan`) unless
/// the options set `plan_cache_mode` themselves: every statement of the store is a
/// keyed, index-driven lookup whose best plan does not depend on the parameters, and
/// the default re-plans each execution of a prepared statement five times and then
/// whenever an owner's row count skews the estimate; planning was half of the
/// database's time per request in the HTTP benchmark (`GET /api/v1/jobs`: 6,100
/// requests/s instead of 4,700).
pub async fn connect_with(
    options: PgConnectOptions,
    pool: PgPoolOptions,
) -> Result<PgPool, DbError> {
    let options = if options
        .get_options()
        .is_some_and(|o| o.contains("plan_cache_mode"))
    {
        options
    } else {
        options.options([("plan_cache_mode", "force_generic_plan")])
    };
    pool.acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(
                async move { Ok(meta.idle_for < PING_IDLE_AFTER || conn.ping().await.is_ok()) },
            )
        })
        .connect_with(options)
        .await
        .map_err(DbError::Connect)
}

/// Runs the embedded migrations that have not run yet. Running them twice, or from
/// two processes at once, is harmless: the migrator takes an advisory lock and skips
/// what is applied.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .map_err(DbError::Migrate)
}

/// A store error with what the store was doing.
pub(crate) fn store_err(doing: &str, e: sqlx::Error) -> StoreError {
    StoreError::backend(format!("{doing}: {e}"), e)
}

/// A queue error with what the queue was doing.
pub(crate) fn queue_err(doing: &str, e: sqlx::Error) -> QueueError {
    QueueError::backend(format!("{doing}: {e}"), e)
}
