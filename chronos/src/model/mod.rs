//! The domain model: jobs, their executions, the log entries those write and the
//! failure notifications owed when one fails for good.
//!
//! Everything here is plain data shared by the engine, the backends and the
//! HTTP service. Validation of what a user asks for ([`JobSpec`]) lives in
//! [`spec`], so the library and the service reject exactly the same things.

mod execution;
mod job;
mod log;
mod notification;
mod query;
pub mod spec;

pub use execution::{Execution, ExecutionStatus, OccurrenceKey};
pub use job::{Job, JobKind, JobStatus, MissedPolicy, Schedule};
pub use log::{LogEntry, LogLevel};
pub use notification::{Notification, NotificationStatus};
pub use query::{
    ExecutionQuery, ExecutionSummary, JobCounts, JobQuery, JobSort, JobStats, MAX_PAGE_SIZE,
    OwnerStats, Page, SortOrder,
};
pub use spec::{JobSpec, JobUpdate};
