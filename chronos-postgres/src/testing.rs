//! A fresh, migrated database per test, dropped when the test ends.
//!
//! Tests connect to `CHRONOS_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), create a database with a random
//! name from there, migrate it, and drop it (`WITH (FORCE)`) when the [`TestDb`] is
//! dropped. Where the server is unreachable, [`TestDb::create`] skips the test loudly,
//! or fails it under `CHRONOS_REQUIRE_SERVICES=1` (see [`chronos::testkit::skip`]).

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
// The database name is generated here (a UUID), never taken from input.
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};
use uuid::Uuid;

/// The server tests use, unless `CHRONOS_TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A temporary database. Dropping it drops the database.
#[derive(Debug)]
pub struct TestDb {
    /// A pool on the new database.
    pub pool: PgPool,
    /// The database's name.
    pub name: String,
    /// Options that connect to it (for extra pools, as a second process would).
    pub options: PgConnectOptions,
    admin: PgConnectOptions,
    dropped: AtomicBool,
}

fn admin_options() -> Result<PgConnectOptions, sqlx::Error> {
    let url =
        std::env::var("CHRONOS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_owned());
    Ok(url
        .parse::<PgConnectOptions>()?
        .log_statements(tracing::log::LevelFilter::Off))
}

impl TestDb {
    /// Creates and migrates a fresh database (skipping the test if PostgreSQL is unreachable).
    pub async fn create() -> TestDb {
        match Self::try_create(true).await {
            Ok(db) => db,
            Err(e) => chronos::testkit::skip("PostgreSQL", &e),
        }
    }

    /// Creates a fresh database without running the migrations.
    pub async fn create_empty() -> TestDb {
        match Self::try_create(false).await {
            Ok(db) => db,
            Err(e) => chronos::testkit::skip("PostgreSQL", &e),
        }
    }

    async fn try_create(migrate: bool) -> Result<TestDb, Box<dyn std::error::Error + Send + Sync>> {
        let admin = admin_options()?;
        let name = format!("chronos_test_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect_with(&admin).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let options = admin.clone().database(&name);
        // The pool the service uses (see `connect_with`).
        let pool =
            crate::connect_with(options.clone(), PgPoolOptions::new().max_connections(10)).await?;
        let db = TestDb {
            pool,
            name,
            options,
            admin,
            dropped: AtomicBool::new(false),
        };
        if migrate {
            crate::migrate(&db.pool).await?;
        }
        Ok(db)
    }

    /// Drops the database now (also done on drop).
    pub async fn drop_now(&self) {
        if self.dropped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.pool.close().await;
        if let Ok(mut conn) = sqlx::PgConnection::connect_with(&self.admin).await {
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped.load(Ordering::SeqCst) {
            return;
        }
        // Drop runs inside or outside a runtime: do the async cleanup on a thread of its
        // own. The pool's connections belong to the test's runtime, which this thread may
        // be blocking (a current-thread runtime): leave them be; `WITH (FORCE)` ends them
        // on the server side.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect_with(&admin).await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
