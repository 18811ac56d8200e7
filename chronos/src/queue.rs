//! [`Queue`]: the delayed, at-least-once work queue.
//!
//! # Contract
//! - One entry per [`OccurrenceKey`]: enqueueing a key that is present (waiting or
//!   leased) leaves the present entry as it is, so enqueueing twice is harmless.
//! - [`Queue::reserve`] leases entries whose `run_at` has come, earliest `run_at` first
//!   (ties by key), and never waits; an entry is held by at most one lease at a time.
//! - A lease that is not extended, acked or retried before it expires lapses: the
//!   entry is delivered again, with [`Reservation::deliveries`] one higher and a new
//!   fencing token. Calls with the old lease then fail with [`QueueError::LeaseLost`].
//! - [`Queue::wait`] resolves when [`Queue::reserve`] may have something: at the
//!   exact instant the earliest entry becomes due or a lease lapses, or as soon as an
//!   entry is added or released. No polling interval. It may resolve spuriously.
//! - Time comes from the [`Clock`](crate::clock::Clock) the queue was built with.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::OccurrenceKey;

/// What went wrong in a queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The lease is no longer held: it expired and the entry was delivered again,
    /// or the entry was removed.
    #[error("lease on {key} lost")]
    LeaseLost {
        /// The entry's key.
        key: OccurrenceKey,
    },
    /// The backend failed.
    #[error("queue backend error: {message}")]
    Backend {
        /// What the queue was doing, and the backend's reason.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl QueueError {
    /// A backend error with context.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        QueueError::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// An entry: one attempt of one occurrence, waiting for its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The occurrence (the dedupe key).
    pub key: OccurrenceKey,
    /// When it becomes due.
    pub run_at: DateTime<Utc>,
    /// The attempt number (0 = first).
    pub attempt: u32,
    /// The queued execution this attempt starts, when one was recorded in advance
    /// (manual runs and retries).
    pub execution_id: Option<Uuid>,
}

/// A held lease: proof that this worker may ack, extend or retry the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The entry's key.
    pub key: OccurrenceKey,
    /// Fencing token: unique per delivery of the entry, increasing.
    pub token: u64,
    /// When the lease lapses unless extended.
    pub expires_at: DateTime<Utc>,
}

/// An entry handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The entry.
    pub entry: QueueEntry,
    /// The lease on it.
    pub lease: Lease,
    /// How many times this entry has been delivered since it was enqueued or retried
    /// (1 on a first delivery; more after leases lapsed).
    pub deliveries: u32,
}

/// How many entries a queue holds, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Waiting for their `run_at`.
    pub scheduled: u64,
    /// Due and not leased.
    pub ready: u64,
    /// Leased by a worker (including leases that have lapsed but not been re-delivered).
    pub leased: u64,
}

impl QueueCounts {
    /// All entries.
    pub fn total(&self) -> u64 {
        self.scheduled + self.ready + self.leased
    }
}

/// The delayed work queue. See the [module docs](self) for the contract; the
/// test kit (`chronos::testkit`, feature `testkit`) checks it.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Adds entries whose keys are absent; returns how many were added.
    async fn enqueue(&self, entries: &[QueueEntry]) -> Result<usize, QueueError>;

    /// Leases up to `max` due entries (including entries whose lease lapsed) for
    /// `lease`, earliest `run_at` first. Never waits.
    async fn reserve(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError>;

    /// Resolves when `reserve` may find something (see the module docs). Cancel-safe.
    async fn wait(&self) -> Result<(), QueueError>;

    /// Extends a held lease to `by` from now; returns the new lease.
    async fn extend(&self, lease: &Lease, by: Duration) -> Result<Lease, QueueError>;

    /// Removes the entry: its attempt is done.
    async fn ack(&self, lease: &Lease) -> Result<(), QueueError>;

    /// Releases the entry to run again at `run_at` as attempt `attempt`, starting the
    /// queued execution `execution_id`; its delivery count starts over.
    async fn retry(
        &self,
        lease: &Lease,
        run_at: DateTime<Utc>,
        attempt: u32,
        execution_id: Option<Uuid>,
    ) -> Result<(), QueueError>;

    /// Removes the entry with this key, waiting or leased; returns whether there was one.
    async fn remove(&self, key: &OccurrenceKey) -> Result<bool, QueueError>;

    /// Counts entries by state.
    async fn counts(&self) -> Result<QueueCounts, QueueError>;
}

/// The wake-up logic of [`Queue::wait`], shared by every backend: register with
/// `wake` first (so a change signalled after the look is not missed), then look up
/// the earliest instant anything becomes deliverable (`earliest`: the first `run_at`
/// of a waiting entry or lease expiry, `None` when the queue is empty), and resolve at
/// once if it has come, else at that instant on `clock` or when `wake` is notified,
/// whichever is first. Cancel-safe.
pub async fn wait_until_due(
    wake: &tokio::sync::Notify,
    clock: &dyn crate::clock::Clock,
    earliest: impl std::future::Future<Output = Result<Option<DateTime<Utc>>, QueueError>>,
) -> Result<(), QueueError> {
    let mut woken = std::pin::pin!(wake.notified());
    woken.as_mut().enable();
    match earliest.await? {
        Some(deadline) if deadline <= clock.now() => {}
        Some(deadline) => {
            let sleep = clock.sleep_until(deadline);
            tokio::select! {
                () = woken => {}
                () = sleep => {}
            }
        }
        None => woken.await,
    }
    Ok(())
}
