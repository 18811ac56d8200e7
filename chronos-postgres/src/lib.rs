//! PostgreSQL for Chronos: [`PgStore`], the durable source of truth, and [`PgQueue`],
//! the queue of a deployment that runs on PostgreSQL alone.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use chronos_postgres::{connect, migrate};
//!
//! let pool = connect("postgres://postgres@127.0.0.1:5432/chronos").await?;
//! migrate(&pool).await?; // embedded, versioned, forward-only; safe to run concurrently
//! # Ok(()) }
//! ```
//!
//! All SQL of the project lives in this crate.

mod db;
mod store;
pub use store::PgStore;
mod maintenance;
mod queue;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::{DbError, PING_IDLE_AFTER, connect, connect_with, migrate};
pub use maintenance::{
    CreatedPartition, MAINTENANCE_APPLICATION_NAME, MAINTENANCE_LOCK_KEY, Maintenance,
    MaintenanceConfig, MaintenanceError, MaintenanceHandle, MaintenanceReport,
    PARTITION_DDL_LOCK_KEY, PartitionReport, delete_expired_notifications, drop_expired_partitions,
    ensure_partitions,
};
pub use queue::PgQueue;
mod users;
pub use sqlx::PgPool;
pub use users::{PgUsers, UserError, UserRow};
