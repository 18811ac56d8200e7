use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where one attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Waiting in the queue (manual runs and retries are recorded before they start).
    Queued,
    /// A worker is running it.
    Running,
    /// The executor returned output.
    Success,
    /// The executor returned an error, or the worker running it vanished.
    Failed,
    /// The attempt ran past the job's timeout and was cancelled.
    Timeout,
    /// It never ran to an end: the job was paused or deleted, the occurrence was
    /// skipped by the missed-occurrence policy, or shutdown cancelled it.
    Cancelled,
}

impl ExecutionStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "queued",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Success => "success",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Timeout => "timeout",
            ExecutionStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => ExecutionStatus::Queued,
            "running" => ExecutionStatus::Running,
            "success" => ExecutionStatus::Success,
            "failed" => ExecutionStatus::Failed,
            "timeout" => ExecutionStatus::Timeout,
            "cancelled" => ExecutionStatus::Cancelled,
            _ => return None,
        })
    }

    /// Whether the attempt has ended.
    pub fn is_finished(self) -> bool {
        !matches!(self, ExecutionStatus::Queued | ExecutionStatus::Running)
    }
}

/// Identifies one occurrence of a job: the queue holds at most one entry per key,
/// so enqueueing the same occurrence twice is harmless.
///
/// A scheduled occurrence is `(job_id, scheduled_for)`; a manual run adds the id
/// of its first execution, so each request to run now is its own occurrence.
/// Retries of an occurrence keep its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OccurrenceKey {
    /// The job.
    pub job_id: Uuid,
    /// The instant the occurrence was due (for manual runs: when it was requested).
    pub scheduled_for: DateTime<Utc>,
    /// For a manual run, the id of its first execution.
    pub manual: Option<Uuid>,
}

impl OccurrenceKey {
    /// The key of a scheduled occurrence.
    pub fn scheduled(job_id: Uuid, scheduled_for: DateTime<Utc>) -> Self {
        Self {
            job_id,
            scheduled_for,
            manual: None,
        }
    }
}

impl fmt::Display for OccurrenceKey {
    /// `job_id@micros` or `job_id@micros!manual_id`: stable, usable as a Redis or SQL key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}",
            self.job_id,
            self.scheduled_for.timestamp_micros()
        )?;
        if let Some(m) = self.manual {
            write!(f, "!{m}")?;
        }
        Ok(())
    }
}

/// One attempt at running an occurrence of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Unique id (UUID v7).
    pub id: Uuid,
    /// The job.
    pub job_id: Uuid,
    /// The job's owner.
    pub owner: Uuid,
    /// The job's name when the attempt was recorded.
    pub job_name: String,
    /// The occurrence this attempt belongs to.
    pub scheduled_for: DateTime<Utc>,
    /// When this attempt is (or was) due to start: `scheduled_for` for a first
    /// attempt, later for retries.
    pub due_at: DateTime<Utc>,
    /// 0 for the first attempt of an occurrence, n for its n-th retry.
    pub attempt: u32,
    /// Where it stands.
    pub status: ExecutionStatus,
    /// When it started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// `finished_at - started_at` in milliseconds.
    pub duration_ms: Option<u64>,
    /// What the executor returned.
    pub output: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The worker that ran it.
    pub worker: Option<String>,
    /// Whether a user asked for this run (`execute now`).
    pub manual: bool,
    /// For a manual run, the id of the occurrence's first execution (see [`OccurrenceKey`]).
    pub manual_run: Option<Uuid>,
    /// When the record was made.
    pub created_at: DateTime<Utc>,
}

impl Execution {
    /// The occurrence this attempt belongs to.
    pub fn occurrence(&self) -> OccurrenceKey {
        OccurrenceKey {
            job_id: self.job_id,
            scheduled_for: self.scheduled_for,
            manual: self.manual_run,
        }
    }
}
