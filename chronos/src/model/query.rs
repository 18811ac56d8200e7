use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ExecutionStatus, JobKind, JobStatus};

/// The largest page a store returns.
pub const MAX_PAGE_SIZE: u32 = 100;

/// What to sort a job list by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobSort {
    /// Creation time (the default).
    #[default]
    CreatedAt,
    /// Next occurrence; jobs with none sort last.
    NextRun,
    /// Name, then id.
    Name,
    /// Last change.
    UpdatedAt,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Largest first (the default).
    #[default]
    Desc,
}

/// Filters, sort and page of an owner's job list. Deleted jobs never appear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobQuery {
    /// Only jobs with this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this kind.
    pub kind: Option<JobKind>,
    /// 1-based page number.
    pub page: u32,
    /// Page size, 1..=[`MAX_PAGE_SIZE`].
    pub limit: u32,
    /// Sort key; ties are broken by id in the same order.
    pub sort: JobSort,
    /// Sort direction.
    pub order: SortOrder,
}

impl Default for JobQuery {
    fn default() -> Self {
        Self {
            status: None,
            kind: None,
            page: 1,
            limit: 20,
            sort: JobSort::default(),
            order: SortOrder::default(),
        }
    }
}

/// Filter and page of a job's executions, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionQuery {
    /// Only executions with this status.
    pub status: Option<ExecutionStatus>,
    /// 1-based page number.
    pub page: u32,
    /// Page size, 1..=[`MAX_PAGE_SIZE`].
    pub limit: u32,
}

impl Default for ExecutionQuery {
    fn default() -> Self {
        Self {
            status: None,
            page: 1,
            limit: 20,
        }
    }
}

/// One page of a list, with the total the filter matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items match the filter across all pages.
    pub total: u64,
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub limit: u32,
}

impl<T> Page<T> {
    /// Number of pages (0 when nothing matches).
    pub fn total_pages(&self) -> u64 {
        if self.limit == 0 {
            0
        } else {
            self.total.div_ceil(u64::from(self.limit))
        }
    }

    /// The index of the first item of the page in the whole list.
    pub fn offset(page: u32, limit: u32) -> u64 {
        u64::from(page.max(1) - 1) * u64::from(limit)
    }
}

/// Execution statistics of one job.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JobStats {
    /// All recorded attempts.
    pub total_executions: u64,
    /// Attempts with status `success`.
    pub successful_executions: u64,
    /// Attempts with status `failed` or `timeout`.
    pub failed_executions: u64,
    /// Mean duration of finished attempts, in milliseconds.
    pub average_duration_ms: Option<f64>,
    /// Start of the latest attempt.
    pub last_execution_time: Option<DateTime<Utc>>,
}

/// One owner's figures for the dashboard. Deleted jobs and their executions are left out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OwnerStats {
    /// The owner's jobs by status and kind.
    pub jobs: JobCounts,
    /// Their executions.
    pub executions: ExecutionSummary,
}

/// Counts of an owner's jobs (deleted ones left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobCounts {
    /// All of them.
    pub total: u64,
    /// Status `active`.
    pub active: u64,
    /// Status `paused`.
    pub paused: u64,
    /// Status `completed`.
    pub completed: u64,
    /// Status `failed`.
    pub failed: u64,
    /// One-time jobs (immediate or scheduled).
    pub one_time: u64,
    /// Recurring (cron) jobs.
    pub recurring: u64,
}

/// Totals over an owner's executions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecutionSummary {
    /// All recorded attempts (queued, running and cancelled ones included).
    pub total: u64,
    /// Attempts with status `success`.
    pub successful: u64,
    /// Attempts with status `failed` or `timeout`.
    pub failed: u64,
    /// Mean duration of attempts that recorded one, in milliseconds.
    pub average_duration_ms: Option<f64>,
    /// Longest duration, in milliseconds.
    pub max_duration_ms: Option<u64>,
    /// Shortest duration, in milliseconds.
    pub min_duration_ms: Option<u64>,
}
