//! [`Notifier`]: told once when a job fails for good.

use async_trait::async_trait;

use crate::model::{Execution, Job};

/// A failure that exhausted its retries (or was fatal).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The job, after the failure was recorded.
    pub job: Job,
    /// The last attempt.
    pub execution: Execution,
}

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("notification failed: {message}")]
pub struct NotifyError {
    /// What went wrong.
    pub message: String,
    /// The underlying error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Receives final failures. The engine calls it once per occurrence that fails for good.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Tells the job's owner that it failed for good.
    async fn job_failed(&self, failure: &Failure) -> Result<(), NotifyError>;
}

/// The default notifier: writes a warning through `tracing`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingNotifier;

#[async_trait]
impl Notifier for TracingNotifier {
    async fn job_failed(&self, failure: &Failure) -> Result<(), NotifyError> {
        tracing::warn!(
            job_id = %failure.job.id,
            job_name = %failure.job.name,
            execution_id = %failure.execution.id,
            attempt = failure.execution.attempt,
            error = failure.execution.error.as_deref().unwrap_or(""),
            "job failed for good"
        );
        Ok(())
    }
}
