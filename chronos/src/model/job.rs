use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// When a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "schedule_type", rename_all = "snake_case")]
pub enum Schedule {
    /// Once, as soon as possible after creation.
    Immediate,
    /// Once, at the given instant.
    Scheduled {
        /// The instant to run at.
        at: DateTime<Utc>,
    },
    /// Repeatedly, at the instants a cron expression names in the job's time zone.
    Cron {
        /// The crontab expression (5 fields, or 6 with seconds first, or a macro).
        expression: String,
    },
}

impl Schedule {
    /// Whether a job with this schedule runs once or recurs.
    pub fn kind(&self) -> JobKind {
        match self {
            Schedule::Immediate | Schedule::Scheduled { .. } => JobKind::OneTime,
            Schedule::Cron { .. } => JobKind::Recurring,
        }
    }

    /// The API name of the schedule type: `immediate`, `scheduled` or `cron`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Schedule::Immediate => "immediate",
            Schedule::Scheduled { .. } => "scheduled",
            Schedule::Cron { .. } => "cron",
        }
    }
}

/// One-time or recurring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Runs once (immediate or scheduled).
    OneTime,
    /// Runs on a cron schedule until paused or deleted.
    Recurring,
}

impl JobKind {
    /// The API name: `one-time` or `recurring`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::OneTime => "one-time",
            JobKind::Recurring => "recurring",
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Created but not yet scheduled (kept for compatibility; new jobs are `Active`).
    Pending,
    /// Scheduled: its next occurrence will run.
    Active,
    /// Nothing runs until it is resumed (manual runs excepted).
    Paused,
    /// A one-time job that succeeded.
    Completed,
    /// A one-time job whose last attempt failed for good.
    Failed,
    /// Soft-deleted: invisible, never runs again, history kept.
    Deleted,
}

impl JobStatus {
    /// The lower-case name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Active => "active",
            JobStatus::Paused => "paused",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Deleted => "deleted",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => JobStatus::Pending,
            "active" => JobStatus::Active,
            "paused" => JobStatus::Paused,
            "completed" => JobStatus::Completed,
            "failed" => JobStatus::Failed,
            "deleted" => JobStatus::Deleted,
            _ => return None,
        })
    }

    /// Completed, failed and deleted jobs can no longer be changed or run on schedule.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Deleted
        )
    }
}

/// What a recurring job does with occurrences it missed while nothing was running
/// (downtime, a long pause of the workers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Run once for all missed occurrences, then continue from now (the default).
    #[default]
    Coalesce,
    /// Run every missed occurrence, one after another, until caught up.
    RunAll,
    /// Run none of them: record them as cancelled and continue from now.
    Skip,
}

impl MissedPolicy {
    /// The snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            MissedPolicy::Coalesce => "coalesce",
            MissedPolicy::RunAll => "run_all",
            MissedPolicy::Skip => "skip",
        }
    }

    /// Parses the snake-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "coalesce" => MissedPolicy::Coalesce,
            "run_all" => MissedPolicy::RunAll,
            "skip" => MissedPolicy::Skip,
            _ => return None,
        })
    }
}

/// A job as stored: what to run, when, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique id (UUID v7, so ids sort by creation time).
    pub id: Uuid,
    /// The user who owns it; every store query is scoped by it.
    pub owner: Uuid,
    /// 1..=255 characters.
    pub name: String,
    /// Up to 1000 characters.
    pub description: Option<String>,
    /// When it runs.
    pub schedule: Schedule,
    /// The IANA time zone cron expressions are evaluated in.
    pub timezone: Tz,
    /// The name of the registered executor that runs it.
    pub handler: String,
    /// A JSON object handed to the executor.
    pub payload: serde_json::Value,
    /// How long one attempt may run before it is cancelled and counted as a timeout.
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    /// Retries after the first attempt of an occurrence (0 = none).
    pub max_retries: u32,
    /// Base of the exponential backoff: retry n waits `retry_backoff × 2^(n-1)`.
    #[serde(with = "duration_ms")]
    pub retry_backoff: Duration,
    /// What to do with missed occurrences (recurring jobs).
    pub missed_policy: MissedPolicy,
    /// Lifecycle status.
    pub status: JobStatus,
    /// The next occurrence owed to this job, if any. The queue holds an entry for
    /// it; the safety sync recreates that entry when it is missing.
    pub next_run: Option<DateTime<Utc>>,
    /// When the latest attempt started.
    pub last_executed_at: Option<DateTime<Utc>>,
    /// The retry number of the latest attempt (0 = a first attempt).
    pub retry_count: u32,
    /// When it was last paused.
    pub paused_at: Option<DateTime<Utc>>,
    /// When it was last resumed.
    pub resumed_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency counter: bumped by the store on every write.
    pub revision: u64,
}

impl Job {
    /// One-time or recurring.
    pub fn kind(&self) -> JobKind {
        self.schedule.kind()
    }

    /// The cron expression of a recurring job.
    pub fn cron_expression(&self) -> Option<&str> {
        match &self.schedule {
            Schedule::Cron { expression } => Some(expression),
            _ => None,
        }
    }

    /// The instant a scheduled one-time job was asked to run at.
    pub fn scheduled_time(&self) -> Option<DateTime<Utc>> {
        match &self.schedule {
            Schedule::Scheduled { at } => Some(*at),
            _ => None,
        }
    }

    /// The delay before retry number `retry` (1-based): `retry_backoff × 2^(retry-1)`,
    /// saturating instead of overflowing.
    pub fn backoff_for(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_backoff.saturating_mul(factor)
    }
}

pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl Job {
    /// A new active job from a validated spec, created at `now`. Its first
    /// `next_run` is `now` for an immediate job, the scheduled time for a
    /// scheduled one, and must be set by the caller for a recurring one.
    pub fn from_spec(spec: &super::JobSpec, timezone: Tz, now: DateTime<Utc>) -> Self {
        let next_run = match &spec.schedule {
            Schedule::Immediate => Some(now),
            Schedule::Scheduled { at } => Some(*at),
            Schedule::Cron { .. } => None,
        };
        Self {
            id: Uuid::now_v7(),
            owner: spec.owner,
            name: spec.name.clone(),
            description: spec.description.clone(),
            schedule: spec.schedule.clone(),
            timezone,
            handler: spec.handler.clone(),
            payload: spec.payload.clone(),
            timeout: spec.timeout,
            max_retries: spec.max_retries,
            retry_backoff: spec.retry_backoff,
            missed_policy: spec.missed_policy,
            status: JobStatus::Active,
            next_run,
            last_executed_at: None,
            retry_count: 0,
            paused_at: None,
            resumed_at: None,
            created_at: now,
            updated_at: now,
            revision: 0,
        }
    }
}
