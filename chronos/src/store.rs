//! [`JobStore`]: the source of truth for jobs, their executions and logs.
//!
//! # Contract
//! - Every read a user can reach is scoped by owner: [`JobStore::find_job`],
//!   [`JobStore::list_jobs`], [`JobStore::get_execution`], [`JobStore::list_executions`],
//!   [`JobStore::logs`], [`JobStore::job_stats`] and [`JobStore::upcoming_jobs`] never
//!   return another owner's rows, and treat deleted jobs (and their executions) as missing.
//!   [`JobStore::get_job`] is the engine's unscoped read.
//! - Writes of a whole job are compare-and-set on [`Job::revision`]
//!   ([`JobStore::update_job`]); every write that changes a job bumps it.
//! - [`JobStore::start_execution`] and [`JobStore::finish_execution`] are each one
//!   atomic step (one transaction in SQL). Together with the queue's leases they make an
//!   occurrence run once, unless a crash forces a re-delivery, which the history shows.
//! - Nothing here waits on the queue: the queue can be rebuilt from the store alone
//!   (see [`JobStore::scheduled_jobs`] and [`JobStore::pending_executions`]).
//! - Failure notifications are an outbox: recorded by [`JobStore::finish_execution`]
//!   with the final failure, claimed with a lease ([`JobStore::claim_notifications`])
//!   and settled with a fence ([`JobStore::settle_notification`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{
    Execution, ExecutionQuery, ExecutionStatus, Job, JobQuery, JobStats, JobStatus, LogEntry,
    Notification, NotificationStatus, OccurrenceKey, OwnerStats, Page,
};

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// [`JobStore::update_job`] lost a race: the stored revision is not the one read.
    #[error("job {id} was changed concurrently (expected revision {expected})")]
    Conflict {
        /// The job.
        id: Uuid,
        /// The revision the writer had read.
        expected: u64,
    },
    /// The row to change does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// `job` or `execution`.
        what: &'static str,
        /// Its id.
        id: Uuid,
    },
    /// A row with the same id exists already.
    #[error("{what} {id} already exists")]
    Duplicate {
        /// `job` or `execution`.
        what: &'static str,
        /// Its id.
        id: Uuid,
    },
    /// The backend failed (connection lost, server down, bad data).
    #[error("store backend error: {message}")]
    Backend {
        /// What the store was doing, and the backend's reason.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A backend error with context.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// Ask the store to begin an attempt (see [`JobStore::start_execution`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StartExecution {
    /// The occurrence.
    pub key: OccurrenceKey,
    /// The attempt number (0 = first).
    pub attempt: u32,
    /// The id of the execution: a queued row to start, or the id of a new row.
    pub execution_id: Uuid,
    /// Present for the first attempt of a scheduled occurrence: claims the occurrence
    /// by moving the job's `next_run` from `key.scheduled_for` to this value.
    pub advance: Option<Advance>,
    /// The worker running it.
    pub worker: String,
    /// Now.
    pub started_at: DateTime<Utc>,
}

/// The compare-and-set that claims a scheduled occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// The job's next occurrence after this one (`None` for a one-time job).
    pub next_run: Option<DateTime<Utc>>,
}

/// Why [`JobStore::start_execution`] started nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The job does not exist.
    JobMissing,
    /// The job is not in a status that runs this occurrence (paused, deleted,
    /// completed, failed). A queued row for it has been marked cancelled.
    NotRunnable(JobStatus),
    /// The occurrence is no longer owed: the job's `next_run` moved on (an update,
    /// a resume, or another worker claimed it) and nothing of it is running.
    Stale,
    /// The execution to start has already finished (a re-delivery after the attempt ended).
    AlreadyFinished,
}

/// The result of [`JobStore::start_execution`].
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per attempt and matched at once; boxing would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq)]
pub enum StartOutcome {
    /// The attempt is recorded as running.
    Started {
        /// The job after the step (with `next_run` advanced, if it was claimed).
        job: Job,
        /// The running execution.
        execution: Execution,
        /// Running executions of the same occurrence that were marked failed as
        /// abandoned: a worker holding them lost its lease.
        abandoned: u32,
    },
    /// Nothing was started.
    Skipped(SkipReason),
}

/// The error message of an execution abandoned by a vanished worker.
pub const ABANDONED: &str = "abandoned: the worker's lease expired before the attempt finished";

/// Ask the store to end an attempt (see [`JobStore::finish_execution`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FinishExecution {
    /// The running execution.
    pub execution_id: Uuid,
    /// Success, failed, timeout or cancelled.
    pub status: ExecutionStatus,
    /// Now.
    pub finished_at: DateTime<Utc>,
    /// What the executor returned.
    pub output: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The queued execution of the next attempt, recorded in the same step.
    pub next_attempt: Option<Execution>,
    /// The job's new status (a one-time job that completed or failed for good);
    /// not applied to a deleted job.
    pub job_status: Option<JobStatus>,
    /// Failure notifications owed (the occurrence failed for good), recorded pending
    /// and due at `finished_at`, unless the occurrence already has one on that channel.
    pub notifications: Vec<NewNotification>,
}

/// A failure notification to record with [`FinishExecution`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// Its id.
    pub id: Uuid,
    /// The channel that will send it.
    pub channel: String,
}

/// A notification a dispatcher has claimed (see [`JobStore::claim_notifications`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedNotification {
    /// The notification after the claim (`attempts` counts this one).
    pub notification: Notification,
    /// Its job, whatever its status now (deleted jobs included).
    pub job: Job,
    /// The failed execution.
    pub execution: Execution,
}

/// How a delivery attempt ended (see [`JobStore::settle_notification`]).
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationOutcome {
    /// Sent: the notification is done.
    Sent,
    /// The channel chose not to send it: done.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Failed, to be tried again at `at`.
    Retry {
        /// When the next attempt is due.
        at: DateTime<Utc>,
        /// Why this one failed.
        error: String,
    },
    /// Failed for good.
    Failed {
        /// Why.
        error: String,
    },
}

/// Ask the store to record a delivery attempt's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct SettleNotification {
    /// The notification.
    pub id: Uuid,
    /// The attempt settled: [`Notification::attempts`] as claimed (the fence).
    pub attempt: u32,
    /// How it ended.
    pub outcome: NotificationOutcome,
    /// Now.
    pub at: DateTime<Utc>,
    /// The line for the failed execution's log, written in the same step.
    pub log: LogEntry,
}

impl SettleNotification {
    /// Applies the outcome to the claimed notification, as the store records it.
    pub fn apply(&self, n: &mut Notification) {
        match &self.outcome {
            NotificationOutcome::Sent => n.status = NotificationStatus::Sent,
            NotificationOutcome::Skipped { reason } => {
                n.status = NotificationStatus::Skipped;
                n.last_error = Some(reason.clone());
            }
            NotificationOutcome::Failed { error } => {
                n.status = NotificationStatus::Failed;
                n.last_error = Some(error.clone());
            }
            NotificationOutcome::Retry { at, error } => {
                n.due_at = *at;
                n.last_error = Some(error.clone());
            }
        }
        if n.status != NotificationStatus::Pending {
            n.finished_at = Some(self.at);
        }
    }
}

/// The source of truth. See the [module docs](self) for the contract; the
/// test kit (`chronos::testkit`, feature `testkit`) checks it.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Stores a new job. [`StoreError::Duplicate`] if its id exists.
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError>;

    /// The job with this id, whoever owns it and whatever its status (the engine's read).
    async fn get_job(&self, id: Uuid) -> Result<Option<Job>, StoreError>;

    /// The owner's job with this id; `None` if missing, another owner's, or deleted.
    async fn find_job(&self, owner: Uuid, id: Uuid) -> Result<Option<Job>, StoreError>;

    /// One page of the owner's jobs, filtered and sorted (ties broken by id), without deleted ones.
    async fn list_jobs(&self, owner: Uuid, query: &JobQuery) -> Result<Page<Job>, StoreError>;

    /// The owner's active jobs whose `next_run` is in `from..=to`, soonest first, at most `limit`.
    async fn upcoming_jobs(
        &self,
        owner: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError>;

    /// Replaces a job if the stored revision equals `job.revision`, storing it with
    /// `revision + 1` and returning what was stored. [`StoreError::Conflict`] when the
    /// revision differs, [`StoreError::NotFound`] when the job is missing.
    async fn update_job(&self, job: &Job) -> Result<Job, StoreError>;

    /// Active jobs that have a `next_run`, as `(id, next_run)`, ordered by id, after
    /// the id `after`, at most `limit`: the safety sync walks these.
    async fn scheduled_jobs(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError>;

    /// Records an execution as given (a queued manual run, a cancelled skip).
    async fn insert_execution(&self, execution: &Execution) -> Result<(), StoreError>;

    /// Begins an attempt, atomically:
    /// 1. loads the job: missing → `Skipped(JobMissing)`. A manual occurrence runs
    ///    unless the job is deleted; any other runs only while it is active; otherwise
    ///    a queued row with `execution_id` is marked cancelled and the result is
    ///    `Skipped(NotRunnable(status))`;
    /// 2. marks every *running* execution of the same occurrence (same job,
    ///    `scheduled_for` and manual run) failed with [`ABANDONED`] and counts them;
    /// 3. with `advance`: if the job's `next_run` equals `key.scheduled_for`, sets it to
    ///    `advance.next_run`; otherwise, unless step 2 abandoned something (a re-delivery
    ///    after a crash), returns `Skipped(Stale)`;
    /// 4. starts the execution `execution_id`: a queued row becomes running; a row that
    ///    step 2 just abandoned is replaced by a new running row with a fresh id (the
    ///    safety sync re-queues executions left running by dead workers under their own
    ///    id); any other finished row gives `Skipped(AlreadyFinished)`; a missing one is
    ///    inserted as running
    ///    (with the job's name, `due_at = started_at` unless the key says earlier);
    /// 5. sets the job's `last_executed_at` and `retry_count`, bumps its revision.
    async fn start_execution(&self, start: &StartExecution) -> Result<StartOutcome, StoreError>;

    /// Ends a running attempt, atomically: sets its status, `finished_at`, `duration_ms`,
    /// output and error, inserts `next_attempt`, applies `job_status` and records the
    /// `notifications` (skipping a channel on which the occurrence, identified by job,
    /// `scheduled_for` and manual run, already has one). Does nothing and
    /// returns `None` if the execution is not running (another worker abandoned it: the
    /// fence against a worker that lost its lease). Returns the finished execution.
    async fn finish_execution(
        &self,
        finish: &FinishExecution,
    ) -> Result<Option<Execution>, StoreError>;

    /// The owner's execution with this id; `None` if missing, another owner's, or its job deleted.
    async fn get_execution(&self, owner: Uuid, id: Uuid) -> Result<Option<Execution>, StoreError>;

    /// One page of a job's executions, newest first (by creation, then id).
    /// An empty page if the job is not the owner's.
    async fn list_executions(
        &self,
        owner: Uuid,
        job_id: Uuid,
        query: &ExecutionQuery,
    ) -> Result<Page<Execution>, StoreError>;

    /// Executions the queue must hold an entry for: every `queued` one, and every
    /// `running` one that started before `running_started_before` (its worker is
    /// presumed dead), ordered by id, after the id `after`, at most `limit`.
    async fn pending_executions(
        &self,
        after: Option<Uuid>,
        limit: usize,
        running_started_before: DateTime<Utc>,
    ) -> Result<Vec<Execution>, StoreError>;

    /// Statistics of the owner's job (zeros if it is not the owner's).
    async fn job_stats(&self, owner: Uuid, job_id: Uuid) -> Result<JobStats, StoreError>;

    /// The owner's job (not deleted) and its statistics, read together; `None` when
    /// it is not the owner's. The default reads one after the other; a backend whose
    /// reads are round trips does both in one.
    async fn find_job_with_stats(
        &self,
        owner: Uuid,
        id: Uuid,
    ) -> Result<Option<(Job, JobStats)>, StoreError> {
        let Some(job) = self.find_job(owner, id).await? else {
            return Ok(None);
        };
        Ok(Some((job, self.job_stats(owner, id).await?)))
    }

    /// The owner's dashboard figures, over jobs that are not deleted and their executions.
    async fn owner_stats(&self, owner: Uuid) -> Result<OwnerStats, StoreError>;

    /// The owner's latest executions across jobs that are not deleted, newest first (by
    /// creation, then id), at most `limit`.
    async fn recent_executions(
        &self,
        owner: Uuid,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError>;

    /// Appends log entries.
    async fn append_logs(&self, entries: &[LogEntry]) -> Result<(), StoreError>;

    /// The log of the owner's execution, oldest first (by timestamp, then id).
    async fn logs(&self, owner: Uuid, execution_id: Uuid) -> Result<Vec<LogEntry>, StoreError>;

    /// Claims up to `limit` pending notifications of these channels that are due
    /// (`due_at <= now`), earliest due first, atomically: each gets `attempts + 1` and
    /// `due_at = lease_until`, so no other dispatcher takes it before that. Returns them
    /// with their job and failed execution.
    async fn claim_notifications(
        &self,
        channels: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedNotification>, StoreError>;

    /// Records the outcome of a claimed delivery attempt and appends `settle.log`, in
    /// one step, if the notification is still pending with `attempts == settle.attempt`;
    /// otherwise (its claim lapsed and another dispatcher took it) changes nothing and
    /// returns `false`. `Sent`, `Skipped` and `Failed` set the status and `finished_at`;
    /// `Retry` keeps it pending with `due_at = at`; all but `Sent` set `last_error`.
    async fn settle_notification(&self, settle: &SettleNotification) -> Result<bool, StoreError>;

    /// When the earliest pending notification of these channels is due (or its claim lapses).
    async fn next_notification_due(
        &self,
        channels: &[String],
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// The notifications recorded for an execution, by channel (the engine's read,
    /// unscoped; for tests and operators).
    async fn notifications(&self, execution_id: Uuid) -> Result<Vec<Notification>, StoreError>;
}
