//! # Chronos
//!
//! A job scheduler: run jobs now, at a time, or on a cron schedule in any time
//! zone; retry failures with exponential backoff; keep the history of every
//! attempt and its log; tell the owner once when a job fails for good.
//!
//! The engine is generic over four traits: [`JobStore`] (the source of truth),
//! [`Queue`] (delayed, at-least-once delivery with leases), [`Executor`] (your
//! code, registered under a handler name) and [`Notifier`]. The in-memory backends
//! in [`memory`] are the default, so an application can embed Chronos with nothing
//! else running; `chronos-postgres` and `chronos-redis` provide durable ones.
//!
//! ```
//! use std::time::Duration;
//! use chronos::{Chronos, JobSpec};
//! use chronos::executor::{ExecError, JobContext};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), chronos::Error> {
//! let chronos = Chronos::builder()
//!     .executor("send-report", |ctx: JobContext| async move {
//!         ctx.log().info("sending");
//!         Ok(json!({ "sent_to": ctx.payload()["to"] }))
//!     })
//!     .concurrency(16)
//!     .build()
//!     .await?;
//!
//! let nightly = chronos
//!     .create(
//!         JobSpec::cron("nightly", "30 2 * * *")
//!             .timezone("Europe/Berlin")
//!             .handler("send-report")
//!             .payload(json!({ "to": "ops" })),
//!     )
//!     .await?;
//! let run = chronos.execute_now(nightly.id).await?; // a manual run, now
//! let done = chronos.wait_for(&run, Duration::from_secs(5)).await?;
//! assert_eq!(done.output, Some(json!({ "sent_to": "ops" })));
//! chronos.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub mod clock;
pub mod cron;
mod engine;
mod error;
pub mod executor;
pub mod memory;
pub mod model;
pub mod notifier;
pub mod queue;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use engine::{Chronos, ChronosBuilder, Config, Event, NotifyPolicy, Owned, SyncReport};
pub use error::Error;
pub use executor::{ExecError, Executor, JobContext};
pub use model::{Job, JobSpec, JobStatus};
pub use notifier::Notifier;
pub use queue::Queue;
pub use store::JobStore;
