//! [`Error`]: what the engine's operations can fail with.

use uuid::Uuid;

use crate::model::JobStatus;
use crate::model::spec::SpecError;
use crate::queue::QueueError;
use crate::store::StoreError;

/// The error of every [`Chronos`](crate::Chronos) operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job spec or update is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// No such job (or not the caller's, or deleted).
    #[error("job {0} not found")]
    JobNotFound(Uuid),
    /// No such execution (or not the caller's).
    #[error("execution {0} not found")]
    ExecutionNotFound(Uuid),
    /// The job's status forbids the change (completed, failed or deleted jobs).
    #[error("job {id} is {} and can no longer be changed", status.as_str())]
    InvalidJobStatus {
        /// The job.
        id: Uuid,
        /// Its status.
        status: JobStatus,
    },
    /// The operation does not apply to the job as it is (pause a paused job, …).
    #[error("{0}")]
    InvalidOperation(String),
    /// An executor is already registered under this name.
    #[error("an executor is already registered under {0:?}")]
    DuplicateExecutor(String),
    /// A notifier is already registered under this channel name.
    #[error("a notifier is already registered for the channel {0:?}")]
    DuplicateNotifier(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// [`Chronos::wait_for`](crate::Chronos::wait_for) gave up before the attempt ended.
    #[error("execution {0} did not finish in time")]
    WaitTimedOut(Uuid),
    /// The engine is shutting down or has shut down.
    #[error("chronos is shutting down")]
    ShuttingDown,
    /// A background task of the engine panicked.
    #[error("an engine task failed: {0}")]
    Task(String),
}
