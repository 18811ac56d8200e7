//! [`Executor`]: the code that runs a job, registered under a handler name.
//!
//! An executor gets a [`JobContext`] (the job, its payload, the attempt, the
//! scheduled instant, a cancellation token and a [`JobLogger`]) and returns JSON
//! output, or an [`ExecError`] that says whether another attempt may help.
//!
//! A [`Task`] is the typed form: its payload is deserialized into `Task::Input` (a
//! payload that does not fit fails the attempt for good, without retries) and its
//! output serialized from `Task::Output`; register it with
//! [`ChronosBuilder::task`](crate::ChronosBuilder::task).
//!
//! Any `async` closure taking a [`JobContext`] is an executor:
//!
//! ```
//! use chronos::executor::{ExecError, JobContext};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let chronos = chronos::Chronos::builder()
//!     .executor("greet", |ctx: JobContext| async move {
//!         let who = ctx.payload()["who"].as_str().ok_or_else(|| ExecError::fatal("no `who`"))?;
//!         ctx.log().info(format!("greeting {who}"));
//!         Ok(json!({ "greeting": format!("hello, {who}") }))
//!     })
//!     .build()
//!     .await?;
//! # chronos.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::clock::Clock;
use crate::model::{Job, LogEntry, LogLevel};

/// Runs jobs of one handler name.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Runs one attempt. Should return soon after `ctx.cancelled()` fires (timeout or
    /// shutdown); the engine stops waiting for it then anyway.
    async fn execute(&self, ctx: JobContext) -> Result<Value, ExecError>;
}

#[async_trait]
impl<F, Fut> Executor for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, ExecError>> + Send + 'static,
{
    async fn execute(&self, ctx: JobContext) -> Result<Value, ExecError> {
        self(ctx).await
    }
}

/// A typed executor: the payload arrives deserialized, the output leaves serialized.
///
/// ```
/// use chronos::executor::{ExecError, JobContext, Task};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize)]
/// struct Report { to: String }
///
/// #[derive(Serialize)]
/// struct Sent { recipients: usize }
///
/// struct SendReport;
///
/// #[async_trait::async_trait]
/// impl Task for SendReport {
///     type Input = Report;
///     type Output = Sent;
///
///     async fn run(&self, input: Report, ctx: &JobContext) -> Result<Sent, ExecError> {
///         ctx.log().info(format!("sending to {}", input.to));
///         Ok(Sent { recipients: 1 })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), chronos::Error> {
/// let chronos = chronos::Chronos::builder().task("send-report", SendReport).build().await?;
/// # chronos.shutdown().await
/// # }
/// ```
#[async_trait]
pub trait Task: Send + Sync + 'static {
    /// What the job's payload deserializes into.
    type Input: DeserializeOwned + Send;
    /// What the attempt returns (stored as the execution's output).
    type Output: Serialize + Send;

    /// Runs one attempt.
    async fn run(&self, input: Self::Input, ctx: &JobContext) -> Result<Self::Output, ExecError>;
}

/// Adapts a [`Task`] to an [`Executor`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Typed<T>(pub T);

#[async_trait]
impl<T: Task> Executor for Typed<T> {
    async fn execute(&self, ctx: JobContext) -> Result<Value, ExecError> {
        let input = T::Input::deserialize(ctx.payload())
            .map_err(|e| ExecError::fatal(format!("the payload does not fit the task: {e}")))?;
        let output = self.0.run(input, &ctx).await?;
        serde_json::to_value(output)
            .map_err(|e| ExecError::fatal(format!("the task's output does not serialize: {e}")))
    }
}

/// The built-in executor of jobs that name no handler: succeeds, returning the payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

#[async_trait]
impl Executor for Echo {
    async fn execute(&self, ctx: JobContext) -> Result<Value, ExecError> {
        Ok(ctx.payload().clone())
    }
}

/// Why an attempt failed, and whether to try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// A transient failure: retried while the job has retries left.
    #[error("{0}")]
    Retryable(String),
    /// A permanent failure: the occurrence fails for good at once.
    #[error("{0}")]
    Fatal(String),
}

impl ExecError {
    /// A transient failure.
    pub fn retryable(reason: impl fmt::Display) -> Self {
        ExecError::Retryable(reason.to_string())
    }

    /// A permanent failure.
    pub fn fatal(reason: impl fmt::Display) -> Self {
        ExecError::Fatal(reason.to_string())
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ExecError::Retryable(_))
    }
}

/// Everything an executor knows about the attempt it runs.
#[derive(Clone)]
pub struct JobContext {
    pub(crate) job: Arc<Job>,
    pub(crate) execution_id: Uuid,
    pub(crate) attempt: u32,
    pub(crate) scheduled_for: DateTime<Utc>,
    pub(crate) manual: bool,
    pub(crate) cancel: CancellationToken,
    pub(crate) logger: JobLogger,
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("job_id", &self.job.id)
            .field("execution_id", &self.execution_id)
            .field("attempt", &self.attempt)
            .field("scheduled_for", &self.scheduled_for)
            .field("manual", &self.manual)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    /// The job (as it was when the attempt started).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The job's payload.
    pub fn payload(&self) -> &Value {
        &self.job.payload
    }

    /// The id of this attempt's execution record.
    pub fn execution_id(&self) -> Uuid {
        self.execution_id
    }

    /// 0 for a first attempt, n for the n-th retry.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The instant the occurrence was due.
    pub fn scheduled_for(&self) -> DateTime<Utc> {
        self.scheduled_for
    }

    /// Whether a user asked for this run.
    pub fn is_manual(&self) -> bool {
        self.manual
    }

    /// Fires when the attempt must stop: its timeout passed, or the engine is shutting down.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Resolves when the attempt must stop (see [`JobContext::cancellation`]).
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The execution's log.
    pub fn log(&self) -> &JobLogger {
        &self.logger
    }
}

/// Writes an execution's log. Entries are kept in memory and stored in batches:
/// when the attempt ends and while it runs, each time its lease is renewed.
#[derive(Clone)]
pub struct JobLogger {
    inner: Arc<LoggerInner>,
}

struct LoggerInner {
    execution_id: Uuid,
    job_id: Uuid,
    owner: Uuid,
    clock: Arc<dyn Clock>,
    buffer: Mutex<Vec<LogEntry>>,
}

impl JobLogger {
    pub(crate) fn new(
        execution_id: Uuid,
        job_id: Uuid,
        owner: Uuid,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(LoggerInner {
                execution_id,
                job_id,
                owner,
                clock,
                buffer: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Writes an entry with structured metadata (a JSON object).
    pub fn write(&self, level: LogLevel, message: impl Into<String>, metadata: Value) {
        let i = &self.inner;
        let entry = LogEntry {
            id: Uuid::now_v7(),
            execution_id: i.execution_id,
            job_id: i.job_id,
            owner: i.owner,
            level,
            message: message.into(),
            metadata,
            timestamp: i.clock.now(),
        };
        i.buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry);
    }

    /// Writes a debug entry.
    pub fn debug(&self, message: impl Into<String>) {
        self.write(LogLevel::Debug, message, empty())
    }

    /// Writes an info entry.
    pub fn info(&self, message: impl Into<String>) {
        self.write(LogLevel::Info, message, empty())
    }

    /// Writes a warning.
    pub fn warn(&self, message: impl Into<String>) {
        self.write(LogLevel::Warn, message, empty())
    }

    /// Writes an error entry.
    pub fn error(&self, message: impl Into<String>) {
        self.write(LogLevel::Error, message, empty())
    }

    /// Takes the entries written since the last call.
    pub(crate) fn drain(&self) -> Vec<LogEntry> {
        std::mem::take(
            &mut *self
                .inner
                .buffer
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

fn empty() -> Value {
    Value::Object(serde_json::Map::new())
}
