//! In-memory backends: [`MemoryStore`] (a [`JobStore`](crate::JobStore)) and
//! [`MemoryQueue`] (a [`Queue`](crate::Queue)).
//!
//! They are the default of an embedded engine and of tests: nothing to run, nothing
//! to configure, and everything is lost when the process ends. Both are cheap to
//! clone; clones share the same state. Both pass the contract test kit
//! (`chronos::testkit`, feature `testkit`).
//!
//! The queue takes its notion of "now" from the [`Clock`](crate::clock::Clock) it is
//! built with, so a [`ManualClock`](crate::clock::ManualClock) drives it in tests.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use chronos::clock::{Clock, ManualClock};
//! use chronos::memory::MemoryQueue;
//! use chronos::model::OccurrenceKey;
//! use chronos::queue::{Queue, QueueEntry};
//! use uuid::Uuid;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), chronos::queue::QueueError> {
//! let clock = Arc::new(ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap()));
//! let queue = MemoryQueue::new(clock.clone());
//!
//! let run_at = clock.now() + chrono::Duration::minutes(5);
//! let key = OccurrenceKey::scheduled(Uuid::now_v7(), run_at);
//! let entry = QueueEntry { key, run_at, attempt: 0, execution_id: None };
//! assert_eq!(queue.enqueue(&[entry.clone(), entry.clone()]).await?, 1); // one per key
//!
//! // Not due yet.
//! assert!(queue.reserve("worker-1", 10, Duration::from_secs(30)).await?.is_empty());
//!
//! clock.advance(Duration::from_secs(300));
//! queue.wait().await?; // something is due: resolves at once
//! let got = queue.reserve("worker-1", 10, Duration::from_secs(30)).await?;
//! assert_eq!(got.len(), 1);
//! assert_eq!(got[0].entry, entry);
//! assert_eq!(got[0].deliveries, 1);
//! queue.ack(&got[0].lease).await?;
//! assert_eq!(queue.counts().await?.total(), 0);
//! # Ok(())
//! # }
//! ```

mod queue;
mod store;

pub use queue::MemoryQueue;
pub use store::MemoryStore;
