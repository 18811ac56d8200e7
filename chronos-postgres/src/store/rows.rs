//! Rows ↔ model values: column names, value conversions, and the checks that turn
//! bad data in the database into [`StoreError::Backend`] instead of a panic.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use chronos::model::{
    Execution, ExecutionStatus, Job, JobStats, JobStatus, LogEntry, LogLevel, MissedPolicy,
    Notification, NotificationStatus, Schedule,
};
use chronos::store::StoreError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Decode, Postgres, Row, Type};
use uuid::Uuid;

use crate::db::store_err;

/// A query with PostgreSQL arguments.
pub(super) type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

/// Bad data: a value the model cannot hold.
pub(super) fn bad_data(message: String) -> StoreError {
    StoreError::Backend {
        message,
        source: None,
    }
}

/// Column `name` of `row`, read as `T`.
pub(super) fn col<'r, T>(row: &'r PgRow, name: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(name)
        .map_err(|e| store_err(&format!("reading column {name}"), e))
}

/// The columns of a row whose names carry a prefix (`""` for none): a statement that
/// returns a job and an execution side by side aliases them apart (`j_id`, `e_id`).
#[derive(Clone, Copy)]
struct Cols<'r> {
    row: &'r PgRow,
    prefix: &'static str,
}

impl<'r> Cols<'r> {
    fn get<T>(self, name: &str) -> Result<T, StoreError>
    where
        T: Decode<'r, Postgres> + Type<Postgres>,
    {
        if self.prefix.is_empty() {
            col(self.row, name)
        } else {
            col(self.row, &format!("{}{name}", self.prefix))
        }
    }
}

/// `columns` (a list such as `job_columns!()`) as `{table}.{column} AS {prefix}{column}`,
/// for a select list that holds several tables' rows side by side (read them with
/// [`job_prefixed`] and [`execution_prefixed`]).
pub(super) fn aliased(columns: &str, table: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(str::trim)
        .map(|c| format!("{table}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The instant as PostgreSQL stores it: truncated to the microsecond.
pub(super) fn db_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A count or number of milliseconds as a `bigint`.
pub(super) fn to_i64(what: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| bad_data(format!("{what} {n} does not fit a bigint")))
}

/// A small count as an `integer`.
pub(super) fn to_i32(what: &str, n: u32) -> Result<i32, StoreError> {
    i32::try_from(n).map_err(|_| bad_data(format!("{what} {n} does not fit an integer")))
}

/// A duration as whole milliseconds.
pub(super) fn millis(what: &str, d: Duration) -> Result<i64, StoreError> {
    i64::try_from(d.as_millis()).map_err(|_| {
        bad_data(format!(
            "{what} {d:?} does not fit a bigint of milliseconds"
        ))
    })
}

fn from_i64(what: &str, id: Uuid, n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| bad_data(format!("{what} {n} of {id} is negative")))
}

fn from_i32(what: &str, id: Uuid, n: i32) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| bad_data(format!("{what} {n} of {id} is negative")))
}

/// Binds the 24 columns of `jobs` in the order of [`JOB_COLUMNS`] (`$1` = id … `$24` = revision).
pub(super) fn bind_job<'q>(q: PgQuery<'q>, job: &Job) -> Result<PgQuery<'q>, StoreError> {
    Ok(q.bind(job.id)
        .bind(job.owner)
        .bind(job.name.as_str())
        .bind(job.description.as_deref())
        .bind(job.kind().as_str())
        .bind(job.schedule.type_name())
        .bind(job.scheduled_time())
        .bind(job.cron_expression())
        .bind(job.timezone.name())
        .bind(job.handler.as_str())
        .bind(&job.payload)
        .bind(millis("timeout", job.timeout)?)
        .bind(to_i32("max_retries", job.max_retries)?)
        .bind(to_i32("retry_count", job.retry_count)?)
        .bind(millis("retry_backoff", job.retry_backoff)?)
        .bind(job.missed_policy.as_str())
        .bind(job.status.as_str())
        .bind(job.next_run)
        .bind(job.last_executed_at)
        .bind(job.paused_at)
        .bind(job.resumed_at)
        .bind(job.created_at)
        .bind(job.updated_at)
        .bind(to_i64("revision", job.revision)?))
}

/// The columns [`bind_job`] binds, in its order.
macro_rules! job_columns {
    () => {
        "id, user_id, name, description, job_type, schedule_type, scheduled_time, \
         cron_expression, timezone, handler, payload, timeout_ms, max_retries, retry_count, \
         retry_backoff_ms, missed_policy, status, next_run, last_executed_at, paused_at, \
         resumed_at, created_at, updated_at, revision"
    };
}
pub(super) use job_columns;

/// A job from a row of `jobs` (read by column name).
pub(super) fn job(row: &PgRow) -> Result<Job, StoreError> {
    job_prefixed(row, "")
}

/// A job from columns named `{prefix}{column}` (see [`aliased`]).
pub(super) fn job_prefixed(row: &PgRow, prefix: &'static str) -> Result<Job, StoreError> {
    let row = Cols { row, prefix };
    let id: Uuid = row.get("id")?;
    let schedule = match row.get::<&str>("schedule_type")? {
        "immediate" => Schedule::Immediate,
        "scheduled" => Schedule::Scheduled {
            at: row
                .get::<Option<DateTime<Utc>>>("scheduled_time")?
                .ok_or_else(|| bad_data(format!("scheduled job {id} has no scheduled_time")))?,
        },
        "cron" => Schedule::Cron {
            expression: row
                .get::<Option<String>>("cron_expression")?
                .ok_or_else(|| bad_data(format!("cron job {id} has no cron_expression")))?,
        },
        other => return Err(bad_data(format!("job {id} has schedule_type {other:?}"))),
    };
    let tz: &str = row.get("timezone")?;
    let timezone: Tz = tz.parse().map_err(|_| {
        bad_data(format!(
            "job {id} has time zone {tz:?}, which is not an IANA name"
        ))
    })?;
    let policy: &str = row.get("missed_policy")?;
    let missed_policy = MissedPolicy::parse(policy)
        .ok_or_else(|| bad_data(format!("job {id} has missed_policy {policy:?}")))?;
    let status: &str = row.get("status")?;
    let status = JobStatus::parse(status)
        .ok_or_else(|| bad_data(format!("job {id} has status {status:?}")))?;
    let ms = |name: &str| -> Result<Duration, StoreError> {
        Ok(Duration::from_millis(from_i64(name, id, row.get(name)?)?))
    };
    Ok(Job {
        id,
        owner: row.get("user_id")?,
        name: row.get("name")?,
        description: row.get("description")?,
        schedule,
        timezone,
        handler: row.get("handler")?,
        payload: row.get("payload")?,
        timeout: ms("timeout_ms")?,
        max_retries: from_i32("max_retries", id, row.get("max_retries")?)?,
        retry_backoff: ms("retry_backoff_ms")?,
        missed_policy,
        status,
        next_run: row.get("next_run")?,
        last_executed_at: row.get("last_executed_at")?,
        retry_count: from_i32("retry_count", id, row.get("retry_count")?)?,
        paused_at: row.get("paused_at")?,
        resumed_at: row.get("resumed_at")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        revision: from_i64("revision", id, row.get("revision")?)?,
    })
}

/// Binds the 17 columns of `job_executions` in the order of [`execution_columns`]
/// (`$n` = id … `$n+16` = created_at).
/// The statistics columns of a job (`total`, `successful`, `failed`, `average_ms`,
/// `last_started`).
pub(super) fn job_stats(row: &PgRow) -> Result<JobStats, StoreError> {
    let count = |name: &str| -> Result<u64, StoreError> {
        let n: i64 = col(row, name)?;
        u64::try_from(n).map_err(|_| bad_data(format!("a negative count {n}")))
    };
    Ok(JobStats {
        total_executions: count("total")?,
        successful_executions: count("successful")?,
        failed_executions: count("failed")?,
        average_duration_ms: col(row, "average_ms")?,
        last_execution_time: col(row, "last_started")?,
    })
}

pub(super) fn bind_execution<'q>(q: PgQuery<'q>, e: &Execution) -> Result<PgQuery<'q>, StoreError> {
    Ok(q.bind(e.id)
        .bind(e.job_id)
        .bind(e.owner)
        .bind(e.job_name.as_str())
        .bind(e.scheduled_for)
        .bind(e.due_at)
        .bind(to_i32("attempt", e.attempt)?)
        .bind(e.status.as_str())
        .bind(e.started_at)
        .bind(e.finished_at)
        .bind(
            e.duration_ms
                .map(|d| to_i64("duration_ms", d))
                .transpose()?,
        )
        .bind(&e.output)
        .bind(e.error.as_deref())
        .bind(e.worker.as_deref())
        .bind(e.manual)
        .bind(e.manual_run)
        .bind(e.created_at))
}

/// The columns [`bind_execution`] binds, in its order.
macro_rules! execution_columns {
    () => {
        "id, job_id, user_id, job_name, scheduled_for, due_at, retry_attempt, status, \
         execution_time, finished_at, duration_ms, output, error_message, worker, manual, \
         manual_run, created_at"
    };
}
pub(super) use execution_columns;

/// An execution from a row of `job_executions` (read by column name).
pub(super) fn execution(row: &PgRow) -> Result<Execution, StoreError> {
    execution_prefixed(row, "")
}

/// An execution from columns named `{prefix}{column}` (see [`aliased`]).
pub(super) fn execution_prefixed(
    row: &PgRow,
    prefix: &'static str,
) -> Result<Execution, StoreError> {
    let row = Cols { row, prefix };
    let id: Uuid = row.get("id")?;
    let status: &str = row.get("status")?;
    let status = ExecutionStatus::parse(status)
        .ok_or_else(|| bad_data(format!("execution {id} has status {status:?}")))?;
    Ok(Execution {
        id,
        job_id: row.get("job_id")?,
        owner: row.get("user_id")?,
        job_name: row.get("job_name")?,
        scheduled_for: row.get("scheduled_for")?,
        due_at: row.get("due_at")?,
        attempt: from_i32("retry_attempt", id, row.get("retry_attempt")?)?,
        status,
        started_at: row.get("execution_time")?,
        finished_at: row.get("finished_at")?,
        duration_ms: row
            .get::<Option<i64>>("duration_ms")?
            .map(|d| from_i64("duration_ms", id, d))
            .transpose()?,
        output: row.get("output")?,
        error: row.get("error_message")?,
        worker: row.get("worker")?,
        manual: row.get("manual")?,
        manual_run: row.get("manual_run")?,
        created_at: row.get("created_at")?,
    })
}

/// A log entry from a row of `job_logs`.
pub(super) fn log_entry(row: &PgRow) -> Result<LogEntry, StoreError> {
    let id: Uuid = col(row, "id")?;
    let level: &str = col(row, "level")?;
    let level = LogLevel::parse(level)
        .ok_or_else(|| bad_data(format!("log entry {id} has level {level:?}")))?;
    Ok(LogEntry {
        id,
        execution_id: col(row, "execution_id")?,
        job_id: col(row, "job_id")?,
        owner: col(row, "user_id")?,
        level,
        message: col(row, "message")?,
        metadata: col(row, "metadata")?,
        timestamp: col(row, "timestamp")?,
    })
}

/// A notification from a row of `notifications` (read by column name).
pub(super) fn notification(row: &PgRow) -> Result<Notification, StoreError> {
    let id: Uuid = col(row, "id")?;
    let status: &str = col(row, "status")?;
    let status = NotificationStatus::parse(status)
        .ok_or_else(|| bad_data(format!("notification {id} has status {status:?}")))?;
    Ok(Notification {
        id,
        channel: col(row, "channel")?,
        job_id: col(row, "job_id")?,
        owner: col(row, "user_id")?,
        execution_id: col(row, "execution_id")?,
        scheduled_for: col(row, "scheduled_for")?,
        manual_run: col(row, "manual_run")?,
        status,
        attempts: from_i32("attempts", id, col(row, "attempts")?)?,
        due_at: col(row, "due_at")?,
        last_error: col(row, "last_error")?,
        created_at: col(row, "created_at")?,
        finished_at: col(row, "finished_at")?,
    })
}
