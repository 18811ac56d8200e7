//! [`PgStore`]: the [`JobStore`] on PostgreSQL, the durable source of truth.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use chronos::store::JobStore;
//! use chronos_postgres::{PgStore, connect, migrate};
//!
//! let pool = connect("postgres://postgres@127.0.0.1:5432/chronos").await?;
//! migrate(&pool).await?;
//! let store = PgStore::new(pool);
//! let job = store.get_job(uuid::Uuid::nil()).await?;
//! assert!(job.is_none());
//! # Ok(()) }
//! ```
//!
//! See [`PgStore`] for how the contract maps to SQL.

mod rows;

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos::model::{
    Execution, ExecutionQuery, ExecutionSummary, Job, JobCounts, JobQuery, JobSort, JobStats,
    JobStatus, LogEntry, MAX_PAGE_SIZE, Notification, NotificationStatus, OwnerStats, Page,
    SortOrder,
};
use chronos::store::{
    ABANDONED, ClaimedNotification, FinishExecution, JobStore, NotificationOutcome,
    SettleNotification, SkipReason, StartExecution, StartOutcome, StoreError,
};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};
use uuid::Uuid;

use self::rows::{
    aliased, bad_data, bind_execution, bind_job, col, db_instant, execution_columns, job_columns,
    to_i32,
};
use crate::db::store_err;

/// The [`JobStore`] on PostgreSQL, the durable source of truth.
///
/// Clones share the pool. The schema is the crate's migrations ([`crate::migrate`]).
///
/// # How the contract maps to SQL
/// - Every read a user can reach filters on `user_id` and joins (or checks) the job,
///   so deleted jobs and their executions and logs are invisible.
/// - [`JobStore::update_job`] is one `UPDATE … WHERE id = $1 AND revision = $2`.
/// - [`JobStore::start_execution`] is one transaction of two statements: the job row is
///   locked (`FOR NO KEY UPDATE`, which serializes the starts of a job and the writes to
///   it, yet lets executions referencing it be inserted), then one statement of
///   data-modifying CTEs abandons running attempts of the occurrence, claims it, starts
///   or inserts the execution and records the attempt on the job. With `BEGIN` and
///   `COMMIT` that is four round trips. As in the memory store, a start that gives
///   `Skipped(AlreadyFinished)` keeps what step 2 abandoned; a `Stale` or refused one
///   changes nothing.
/// - [`JobStore::finish_execution`] is one statement (an implicit transaction): the
///   `UPDATE … WHERE status = 'running'` that fences off a worker that lost its lease,
///   the insert of the next attempt, the job's new status, and the failure
///   notifications (`INSERT … SELECT … FROM` the finished row, so only a finish that
///   finished something records them, `ON CONFLICT DO NOTHING` against the unique index
///   on occurrence and channel, which dedupes them). When it changes the
///   job's status it first locks the job, in a transaction, so it takes its locks in
///   the same order as `start_execution` (job, then executions) and the two cannot
///   deadlock.
/// - Lists sort in SQL with the tie on id in the same direction, jobs without a
///   `next_run` last in both directions, and names in byte order (`COLLATE "C"`, as
///   Rust compares strings). A page of job ids is read from the owner's index for
///   the sort (an index-only scan) before the page's rows are fetched, so the rows a
///   deep page skips cost index entries, not heap rows. The total is a `count(*)`
///   in the same statement, so it is right for a page past the end too.
/// - The primary key of `job_executions` is `(id, created_at)`, as partitioning by
///   `created_at` requires, so it alone would accept an id recorded under another
///   `created_at`: [`JobStore::insert_execution`] and the next attempt of
///   [`JobStore::finish_execution`] also check that the id is new.
/// - [`JobStore::append_logs`] is one `INSERT … SELECT FROM UNNEST(…)`; an entry
///   already stored (same id and timestamp) is skipped, so a retried batch adds nothing.
/// - The notification outbox is the table `notifications`. A notification row keeps
///   its execution's `created_at`, the partition key, so reading the execution back
///   touches one partition. [`JobStore::claim_notifications`] is one
///   `UPDATE … FROM (SELECT … ORDER BY due_at, id LIMIT n FOR UPDATE SKIP LOCKED)`:
///   concurrent dispatchers skip each other's rows instead of waiting, and a row another
///   claim took meanwhile fails the re-check of `due_at <= now` and is left out.
///   [`JobStore::settle_notification`] is one statement: the update fenced on `status`
///   and `attempts`, and the log line inserted from its `RETURNING`, so only when it
///   applied. A pending notification whose execution is gone (its partition dropped
///   by retention) is neither claimed nor reported as due.
///
/// Instants are stored with PostgreSQL's precision, the microsecond: an instant read
/// back is the one written truncated to the microsecond.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// A store on `pool`, whose database has been migrated.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Whether `e` is a unique violation (SQLSTATE 23505).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// The constraint `e` violates, if the server named one.
fn constraint_of(e: &sqlx::Error) -> Option<&str> {
    e.as_database_error().and_then(|d| d.constraint())
}

/// The `LIMIT` of a page: 1..=[`MAX_PAGE_SIZE`].
fn clamp_limit(limit: u32) -> u32 {
    limit.clamp(1, MAX_PAGE_SIZE)
}

/// A caller's `usize` limit as a `LIMIT` value.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The `OFFSET` of a page.
fn sql_offset(page: u32, limit: u32) -> i64 {
    i64::try_from(Page::<()>::offset(page, limit)).unwrap_or(i64::MAX)
}

/// `duration_ms` of an execution ending at `$end`: whole milliseconds since it
/// started, never negative, `NULL` if it never started (as the memory store computes it).
macro_rules! duration_since_start {
    ($end:literal) => {
        concat!(
            "CASE WHEN e.execution_time IS NULL THEN NULL ELSE GREATEST(0, trunc(extract(epoch FROM ",
            $end,
            " - e.execution_time) * 1000))::bigint END"
        )
    };
}

// ---------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------

const INSERT_JOB: &str = concat!(
    "INSERT INTO jobs (",
    job_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20, $21, $22, $23, $24)"
);

const UPDATE_JOB: &str = "UPDATE jobs SET user_id = $2, name = $3, description = $4, \
     job_type = $5, schedule_type = $6, scheduled_time = $7, cron_expression = $8, \
     timezone = $9, handler = $10, payload = $11, timeout_ms = $12, max_retries = $13, \
     retry_count = $14, retry_backoff_ms = $15, missed_policy = $16, status = $17, \
     next_run = $18, last_executed_at = $19, paused_at = $20, resumed_at = $21, \
     created_at = $22, updated_at = $23, revision = revision + 1 \
     WHERE id = $1 AND revision = $24 RETURNING *";

const INSERT_EXECUTION: &str = concat!(
    "INSERT INTO job_executions (",
    execution_columns!(),
    ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 \
     WHERE NOT EXISTS (SELECT 1 FROM job_executions WHERE id = $1)"
);

/// Step 1 of `start_execution`: the job, locked until the transaction ends.
const LOCK_JOB: &str = "SELECT * FROM jobs WHERE id = $1 FOR NO KEY UPDATE";

/// Step 1, not runnable: a queued execution it would have started is cancelled.
/// `$1` execution, `$2` job, `$3` now.
const CANCEL_QUEUED: &str = "UPDATE job_executions SET status = 'cancelled', finished_at = $3 \
     WHERE id = $1 AND job_id = $2 AND status = 'queued'";

/// Steps 2 to 5 of `start_execution`, after the job is locked. All sub-statements see
/// the same snapshot (taken after the lock was granted); they talk through `RETURNING`.
///
/// `$1` job, `$2` scheduled_for, `$3` manual, `$4` execution id, `$5` now, `$6` worker,
/// `$7` attempt, `$8` a fresh id for a replacement row, `$9` whether the start is stale
/// unless it abandons something (a claim whose `next_run` moved on), `$10` whether the
/// claim succeeded, `$11` the advanced `next_run`, `$12` owner, `$13` job name, `$14`
/// `due_at` of a new row, `$15` the abandoned message.
const START: &str = concat!(
    "WITH target AS (
        SELECT id, job_id, scheduled_for, manual_run, status, due_at
        FROM job_executions WHERE id = $4
        ORDER BY created_at DESC LIMIT 1
    ),
    mixup AS (
        SELECT EXISTS (
            SELECT 1 FROM target
            WHERE status = 'running'
              AND (job_id, scheduled_for, manual_run) IS DISTINCT FROM ($1, $2, $3)
        ) AS found
    ),
    abandoned AS (
        UPDATE job_executions e
        SET status = 'failed', error_message = $15, finished_at = $5, duration_ms = ",
    duration_since_start!("$5"),
    "
        WHERE e.job_id = $1 AND e.scheduled_for = $2 AND e.manual_run IS NOT DISTINCT FROM $3
          AND e.status = 'running' AND NOT (SELECT found FROM mixup)
        RETURNING e.id
    ),
    go AS (
        SELECT NOT (SELECT found FROM mixup)
           AND (NOT $9 OR EXISTS (SELECT 1 FROM abandoned)) AS ok
    ),
    started AS (
        UPDATE job_executions e
        SET status = 'running', execution_time = $5, worker = $6
        WHERE e.id = $4 AND e.status = 'queued' AND (SELECT ok FROM go)
        RETURNING e.*
    ),
    inserted AS (
        INSERT INTO job_executions (",
    execution_columns!(),
    ")
        SELECT CASE WHEN t.id IS NULL THEN $4 ELSE $8 END, $1, $12, $13, $2,
               COALESCE(t.due_at, $14), $7, 'running', $5, NULL, NULL, NULL, NULL, $6,
               $3 IS NOT NULL, $3, $5
        FROM (SELECT 1) AS one LEFT JOIN target t ON true
        WHERE (SELECT ok FROM go) AND (t.id IS NULL OR t.id IN (SELECT id FROM abandoned))
        RETURNING *
    ),
    execution AS (
        SELECT * FROM started UNION ALL SELECT * FROM inserted
    ),
    job AS (
        UPDATE jobs
        SET next_run = CASE WHEN $10 THEN $11 ELSE next_run END, last_executed_at = $5,
            retry_count = $7, revision = revision + 1, updated_at = $5
        WHERE id = $1 AND EXISTS (SELECT 1 FROM execution)
        RETURNING next_run, last_executed_at, retry_count, revision, updated_at
    )
    SELECT (SELECT count(*) FROM abandoned) AS abandoned_count,
           (SELECT found FROM mixup) AS mixup,
           (SELECT status FROM target) AS target_status,
           job.next_run AS job_next_run, job.last_executed_at AS job_last_executed_at,
           job.retry_count AS job_retry_count, job.revision AS job_revision,
           job.updated_at AS job_updated_at,
           x.*
    FROM (SELECT 1) AS one LEFT JOIN execution x ON true LEFT JOIN job ON true"
);

/// `finish_execution` when it changes the job's status: lock the job first.
const LOCK_JOB_OF_EXECUTION: &str = "SELECT id FROM jobs \
     WHERE id = (SELECT job_id FROM job_executions WHERE id = $1 LIMIT 1) FOR NO KEY UPDATE";

/// The columns of `notifications` a finish inserts.
macro_rules! notification_columns {
    () => {
        "id, channel, job_id, user_id, execution_id, execution_created_at, scheduled_for, \
         manual_run, status, attempts, due_at, last_error, created_at, finished_at"
    };
}

/// The manual run of a notification's occurrence, `NULL` (a scheduled occurrence) as
/// the nil UUID: the expression of the unique index `notifications_occurrence_channel_key`.
macro_rules! no_manual_run {
    () => {
        "COALESCE(manual_run, '00000000-0000-0000-0000-000000000000'::uuid)"
    };
}

/// `finish_execution`. `$1` execution, `$2` status, `$3` finished_at, `$4` output,
/// `$5` error, `$6` the job's new status, `$7`…`$23` the next attempt (all `NULL` if none),
/// `$24` and `$25` the ids and channels of the notifications to record (empty if none).
const FINISH: &str = concat!(
    "WITH before AS (
        SELECT status FROM job_executions WHERE id = $1
    ),
    duplicate AS (
        SELECT EXISTS (SELECT 1 FROM job_executions WHERE id = $7) AS found
    ),
    done AS (
        UPDATE job_executions e
        SET status = $2, finished_at = $3, duration_ms = ",
    duration_since_start!("$3"),
    ", output = $4, error_message = $5
        WHERE e.id = $1 AND e.status = 'running' AND NOT (SELECT found FROM duplicate)
        RETURNING e.*
    ),
    next_attempt AS (
        INSERT INTO job_executions (",
    execution_columns!(),
    ")
        SELECT $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23
        FROM done WHERE $7 IS NOT NULL
        RETURNING id
    ),
    job AS (
        UPDATE jobs j SET status = $6, revision = j.revision + 1, updated_at = $3
        FROM done
        WHERE $6 IS NOT NULL AND j.id = done.job_id AND j.status <> 'deleted'
        RETURNING j.id
    ),
    notified AS (
        INSERT INTO notifications (",
    notification_columns!(),
    ")
        SELECT n.id, n.channel, d.job_id, d.user_id, d.id, d.created_at, d.scheduled_for,
               d.manual_run, 'pending', 0, $3, NULL, $3, NULL
        FROM done d CROSS JOIN UNNEST($24::uuid[], $25::text[]) AS n (id, channel)
        ON CONFLICT (job_id, scheduled_for, ",
    no_manual_run!(),
    ", channel) DO NOTHING
    )
    SELECT (SELECT found FROM duplicate) AS duplicate,
           EXISTS (SELECT 1 FROM before WHERE status = 'running') AS was_running,
           d.*
    FROM (SELECT 1) AS one LEFT JOIN done d ON true"
);

/// The owner's job is visible: `$1` owner, `$2` job.
macro_rules! visible_job {
    () => {
        "EXISTS (SELECT 1 FROM jobs WHERE id = $2 AND user_id = $1 AND status <> 'deleted')"
    };
}

/// `$1` owner, `$2` execution.
const GET_EXECUTION: &str = "SELECT e.* FROM job_executions e JOIN jobs j ON j.id = e.job_id \
     WHERE e.id = $2 AND e.user_id = $1 AND j.user_id = $1 AND j.status <> 'deleted' \
     ORDER BY e.created_at DESC LIMIT 1";

/// `$1` owner, `$2` job, `$3` limit, `$4` offset; with a status filter, `$5` the status.
/// Without one, the count is an index-only scan of the job's executions.
macro_rules! list_executions {
    ($filter:literal) => {
        concat!(
            "SELECT c.total, x.* FROM (
                SELECT count(*) AS total FROM job_executions
                WHERE job_id = $2",
            $filter,
            " AND ",
            visible_job!(),
            "
            ) AS c LEFT JOIN (
                SELECT * FROM job_executions
                WHERE job_id = $2",
            $filter,
            " AND ",
            visible_job!(),
            "
                ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4
            ) AS x ON true
            ORDER BY x.created_at DESC, x.id DESC"
        )
    };
}
const LIST_EXECUTIONS: &str = list_executions!("");
const LIST_EXECUTIONS_BY_STATUS: &str = list_executions!(" AND status = $5");

/// `$1` limit, `$2` the cutoff of running executions; with `_AFTER`, `$3` the id to start after.
macro_rules! pending_executions {
    ($after:literal) => {
        concat!(
            "SELECT * FROM job_executions
             WHERE status IN ('queued', 'running')
               AND (status = 'queued' OR execution_time IS NULL OR execution_time < $2)",
            $after,
            " ORDER BY id LIMIT $1"
        )
    };
}
const PENDING_EXECUTIONS: &str = pending_executions!("");
const PENDING_EXECUTIONS_AFTER: &str = pending_executions!(" AND id > $3");

/// `$1` limit; with `_AFTER`, `$2` the id to start after.
const SCHEDULED_JOBS: &str = "SELECT id, next_run FROM jobs \
     WHERE status = 'active' AND next_run IS NOT NULL ORDER BY id LIMIT $1";
const SCHEDULED_JOBS_AFTER: &str = "SELECT id, next_run FROM jobs \
     WHERE status = 'active' AND next_run IS NOT NULL AND id > $2 ORDER BY id LIMIT $1";

/// `$1` owner, `$2` from, `$3` to, `$4` limit.
const UPCOMING_JOBS: &str = "SELECT * FROM jobs \
     WHERE user_id = $1 AND status = 'active' AND next_run >= $2 AND next_run <= $3 \
     ORDER BY next_run, id LIMIT $4";

/// `$1` owner, `$2` job.
const JOB_STATS: &str = concat!(
    "SELECT count(*) AS total,
            count(*) FILTER (WHERE status = 'success') AS successful,
            count(*) FILTER (WHERE status IN ('failed', 'timeout')) AS failed,
            avg(duration_ms)::float8 AS average_ms,
            max(execution_time) AS last_started
     FROM job_executions WHERE job_id = $2 AND ",
    visible_job!()
);

/// `$1` owner, `$2` job: the job when it is the owner's and not deleted, with the
/// columns of [`JOB_STATS`] over its executions.
const JOB_WITH_STATS: &str = "SELECT j.*, s.* FROM jobs j, LATERAL (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE e.status = 'success') AS successful,
               count(*) FILTER (WHERE e.status IN ('failed', 'timeout')) AS failed,
               avg(e.duration_ms)::float8 AS average_ms,
               max(e.execution_time) AS last_started
        FROM job_executions e WHERE e.job_id = j.id
    ) AS s
    WHERE j.id = $2 AND j.user_id = $1 AND j.status <> 'deleted'";

/// `$1` owner: one row of job counts and execution totals over the owner's jobs that are
/// not deleted (each job's executions read from its index).
const OWNER_STATS: &str = "WITH owned AS (
        SELECT id, status, job_type FROM jobs WHERE user_id = $1 AND status <> 'deleted'
    )
    SELECT j.*, x.* FROM (
        SELECT count(*) AS jobs_total,
               count(*) FILTER (WHERE status = 'active') AS jobs_active,
               count(*) FILTER (WHERE status = 'paused') AS jobs_paused,
               count(*) FILTER (WHERE status = 'completed') AS jobs_completed,
               count(*) FILTER (WHERE status = 'failed') AS jobs_failed,
               count(*) FILTER (WHERE job_type = 'one-time') AS jobs_one_time,
               count(*) FILTER (WHERE job_type = 'recurring') AS jobs_recurring
        FROM owned
    ) AS j, (
        SELECT count(*) AS runs_total,
               count(*) FILTER (WHERE e.status = 'success') AS runs_successful,
               count(*) FILTER (WHERE e.status IN ('failed', 'timeout')) AS runs_failed,
               avg(e.duration_ms)::float8 AS runs_average_ms,
               max(e.duration_ms) AS runs_max_ms,
               min(e.duration_ms) AS runs_min_ms
        FROM owned o JOIN job_executions e ON e.job_id = o.id
    ) AS x";

/// `$1` owner, `$2` limit: the newest `$2` executions of each of the owner's jobs that are
/// not deleted (from the job's index, newest first), then the newest `$2` of those.
const RECENT_EXECUTIONS: &str = "SELECT x.* FROM jobs j
    CROSS JOIN LATERAL (
        SELECT * FROM job_executions e WHERE e.job_id = j.id
        ORDER BY e.created_at DESC, e.id DESC LIMIT $2
    ) AS x
    WHERE j.user_id = $1 AND j.status <> 'deleted'
    ORDER BY x.created_at DESC, x.id DESC LIMIT $2";

const APPEND_LOGS: &str = "INSERT INTO job_logs \
     (id, execution_id, job_id, user_id, level, message, metadata, \"timestamp\") \
     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], \
     $6::text[], $7::jsonb[], $8::timestamptz[]) \
     ON CONFLICT DO NOTHING";

/// `$1` owner, `$2` execution.
const LOGS: &str = "SELECT l.* FROM job_logs l \
     WHERE l.execution_id = $2 AND l.user_id = $1 AND EXISTS (\
         SELECT 1 FROM jobs j WHERE j.id = l.job_id AND j.user_id = $1 AND j.status <> 'deleted') \
     ORDER BY l.\"timestamp\", l.id";

/// The pending notifications of `$1` (channels) whose execution is still stored
/// (retention may have dropped its partition), as `n`.
macro_rules! claimable {
    () => {
        "n.status = 'pending' AND n.channel = ANY($1) AND EXISTS (
            SELECT 1 FROM job_executions e
            WHERE e.id = n.execution_id AND e.created_at = n.execution_created_at)"
    };
}

/// `claim_notifications`: `$1` channels, `$2` now, `$3` lease_until, `$4` limit. The
/// rows are picked and locked by the first step (`SKIP LOCKED`: rows another claim has
/// locked are passed over; a row another claim took and committed after this statement
/// began is re-checked under its new `due_at` and left out), then claimed. The result is
/// in claim order (earliest due first; `due_at` is the lease afterwards, so the old one
/// is carried along), each row with its job (whatever its status) and its execution,
/// their columns prefixed with `j_` and `e_`.
static CLAIM_NOTIFICATIONS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH due AS (
            SELECT n.id, n.due_at FROM notifications n
            WHERE {claimable} AND n.due_at <= $2
            ORDER BY n.due_at, n.id
            LIMIT $4
            FOR UPDATE OF n SKIP LOCKED
        ),
        claimed AS (
            UPDATE notifications n SET attempts = n.attempts + 1, due_at = $3
            FROM due WHERE n.id = due.id
            RETURNING n.*, due.due_at AS claimed_due_at
        )
        SELECT c.*, {job}, {execution}
        FROM claimed c
        JOIN jobs j ON j.id = c.job_id
        JOIN job_executions e ON e.id = c.execution_id AND e.created_at = c.execution_created_at
        ORDER BY c.claimed_due_at, c.id",
        claimable = claimable!(),
        job = aliased(job_columns!(), "j", "j_"),
        execution = aliased(execution_columns!(), "e", "e_"),
    )
});

/// `settle_notification`: the outcome, fenced on the claimed attempt, and the log line
/// only if the outcome was recorded. `$1` id, `$2` attempt, `$3` status, `$4` the new
/// `due_at` (`NULL`: unchanged), `$5` the new `last_error` (`NULL`: unchanged), `$6`
/// `finished_at`, `$7`…`$14` the log entry.
const SETTLE_NOTIFICATION: &str = "WITH settled AS (
        UPDATE notifications
        SET status = $3, due_at = COALESCE($4, due_at), last_error = COALESCE($5, last_error),
            finished_at = $6
        WHERE id = $1 AND status = 'pending' AND attempts = $2
        RETURNING id
    ),
    logged AS (
        INSERT INTO job_logs
            (id, execution_id, job_id, user_id, level, message, metadata, \"timestamp\")
        SELECT $7, $8, $9, $10, $11, $12, $13, $14 FROM settled
        ON CONFLICT DO NOTHING
    )
    SELECT EXISTS (SELECT 1 FROM settled)";

/// `next_notification_due`: `$1` channels.
const NEXT_NOTIFICATION_DUE: &str = concat!(
    "SELECT n.due_at FROM notifications n WHERE ",
    claimable!(),
    " ORDER BY n.due_at, n.id LIMIT 1"
);

/// `notifications`: `$1` execution. Channels in byte order, as Rust compares strings.
const NOTIFICATIONS: &str =
    "SELECT * FROM notifications WHERE execution_id = $1 ORDER BY channel COLLATE \"C\", id";

/// The `ORDER BY` list of a job list, columns prefixed with `t` (`""` or `"j."`).
fn job_order(sort: JobSort, order: SortOrder, t: &str) -> String {
    let dir = match order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    };
    match sort {
        JobSort::CreatedAt => format!("{t}created_at {dir}, {t}id {dir}"),
        JobSort::UpdatedAt => format!("{t}updated_at {dir}, {t}id {dir}"),
        JobSort::Name => format!("{t}name COLLATE \"C\" {dir}, {t}id {dir}"),
        JobSort::NextRun => format!("{t}next_run {dir} NULLS LAST, {t}id {dir}"),
    }
}

/// The two statements of `list_jobs`, the page and the count: `$1` owner, then the
/// status and the kind when the query filters on them, then (the page) the limit and
/// the offset. Made of fixed fragments only.
///
/// Two simple statements rather than one: PostgreSQL plans each in a few
/// microseconds, while one statement joining the count to the page cost it three
/// times as much (measured with pgbench: 37k/s each against 13k/s together).
fn list_jobs_sql(query: &JobQuery) -> (String, String) {
    let mut filter = String::from("user_id = $1 AND status <> 'deleted'");
    let mut n = 1;
    if query.status.is_some() {
        n += 1;
        filter.push_str(&format!(" AND status = ${n}"));
    }
    if query.kind.is_some() {
        n += 1;
        filter.push_str(&format!(" AND job_type = ${n}"));
    }
    let page = format!(
        "SELECT * FROM jobs WHERE {filter} ORDER BY {order} LIMIT ${limit} OFFSET ${offset}",
        order = job_order(query.sort, query.order, ""),
        limit = n + 1,
        offset = n + 2,
    );
    (page, format!("SELECT count(*) FROM jobs WHERE {filter}"))
}

/// The total of a page query (every row carries it).
fn page_total(row: Option<&PgRow>) -> Result<u64, StoreError> {
    let Some(row) = row else { return Ok(0) };
    let total: i64 = col(row, "total")?;
    u64::try_from(total).map_err(|_| bad_data(format!("a negative count {total}")))
}

/// A page from the rows of a paged query: every row carries the total, and a page past
/// the end is one row with the total and a null id.
fn page_of<T>(
    rows: &[PgRow],
    page: u32,
    limit: u32,
    item: impl Fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Page<T>, StoreError> {
    let total = page_total(rows.first())?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        if col::<Option<Uuid>>(row, "id")?.is_some() {
            items.push(item(row)?);
        }
    }
    Ok(Page {
        items,
        total,
        page,
        limit,
    })
}

/// Rolls back, reporting a failure as a store error.
async fn rollback(tx: Transaction<'_, Postgres>, doing: &str) -> Result<(), StoreError> {
    tx.rollback().await.map_err(|e| store_err(doing, e))
}

async fn commit(tx: Transaction<'_, Postgres>, doing: &str) -> Result<(), StoreError> {
    tx.commit().await.map_err(|e| store_err(doing, e))
}

#[async_trait]
impl JobStore for PgStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        let result = bind_job(sqlx::query(INSERT_JOB), job)?
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate {
                what: "job",
                id: job.id,
            }),
            Err(e) => Err(store_err(&format!("inserting job {}", job.id), e)),
        }
    }

    async fn get_job(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_err(&format!("reading job {id}"), e))?
            .as_ref()
            .map(rows::job)
            .transpose()
    }

    async fn find_job(&self, owner: Uuid, id: Uuid) -> Result<Option<Job>, StoreError> {
        sqlx::query("SELECT * FROM jobs WHERE id = $1 AND user_id = $2 AND status <> 'deleted'")
            .bind(id)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_err(&format!("reading job {id}"), e))?
            .as_ref()
            .map(rows::job)
            .transpose()
    }

    async fn list_jobs(&self, owner: Uuid, query: &JobQuery) -> Result<Page<Job>, StoreError> {
        let limit = clamp_limit(query.limit);
        let page = query.page.max(1);
        let (page_sql, count_sql) = list_jobs_sql(query);
        let filtered = |sql: String| {
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(owner);
            if let Some(status) = query.status {
                q = q.bind(status.as_str());
            }
            if let Some(kind) = query.kind {
                q = q.bind(kind.as_str());
            }
            q
        };
        // Two connections at once: one round trip of latency. The count and the page
        // are separate snapshots, as successive pages are anyway.
        let items = filtered(page_sql)
            .bind(i64::from(limit))
            .bind(sql_offset(page, limit))
            .fetch_all(&self.pool);
        let total = filtered(count_sql).fetch_one(&self.pool);
        let (items, total) =
            tokio::try_join!(items, total).map_err(|e| store_err("listing jobs", e))?;
        let total: i64 = col(&total, "count")?;
        Ok(Page {
            items: items.iter().map(rows::job).collect::<Result<_, _>>()?,
            total: u64::try_from(total)
                .map_err(|_| bad_data(format!("a negative count {total}")))?,
            page,
            limit,
        })
    }

    async fn upcoming_jobs(
        &self,
        owner: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        sqlx::query(UPCOMING_JOBS)
            .bind(owner)
            .bind(from)
            .bind(to)
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_err("listing upcoming jobs", e))?
            .iter()
            .map(rows::job)
            .collect()
    }

    async fn update_job(&self, job: &Job) -> Result<Job, StoreError> {
        let doing = || format!("updating job {}", job.id);
        let row = bind_job(sqlx::query(UPDATE_JOB), job)?
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_err(&doing(), e))?;
        if let Some(row) = row {
            return rows::job(&row);
        }
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1)")
            .bind(job.id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_err(&doing(), e))?;
        Err(if exists {
            StoreError::Conflict {
                id: job.id,
                expected: job.revision,
            }
        } else {
            StoreError::NotFound {
                what: "job",
                id: job.id,
            }
        })
    }

    async fn scheduled_jobs(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        let q = match after {
            None => sqlx::query_as(SCHEDULED_JOBS).bind(sql_limit(limit)),
            Some(after) => sqlx::query_as(SCHEDULED_JOBS_AFTER)
                .bind(sql_limit(limit))
                .bind(after),
        };
        q.fetch_all(&self.pool)
            .await
            .map_err(|e| store_err("listing scheduled jobs", e))
    }

    async fn insert_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        let duplicate = || StoreError::Duplicate {
            what: "execution",
            id: execution.id,
        };
        // The primary key is (id, created_at), as partitioning requires: the NOT EXISTS
        // of the statement catches an id recorded under another created_at.
        let result = bind_execution(sqlx::query(INSERT_EXECUTION), execution)?
            .execute(&self.pool)
            .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => Err(duplicate()),
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(duplicate()),
            Err(e) => Err(store_err(
                &format!("inserting execution {}", execution.id),
                e,
            )),
        }
    }

    async fn start_execution(&self, start: &StartExecution) -> Result<StartOutcome, StoreError> {
        let key = start.key;
        let now = start.started_at;
        let doing = || format!("starting execution {} of {key}", start.execution_id);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| store_err(&doing(), e))?;

        // 1. The job, locked: starts of one job run one after another.
        let row = sqlx::query(LOCK_JOB)
            .bind(key.job_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| store_err(&doing(), e))?;
        let Some(row) = row else {
            rollback(tx, &doing()).await?;
            return Ok(StartOutcome::Skipped(SkipReason::JobMissing));
        };
        let job = rows::job(&row)?;
        let runnable = if key.manual.is_some() {
            job.status != JobStatus::Deleted
        } else {
            job.status == JobStatus::Active
        };
        if !runnable {
            sqlx::query(CANCEL_QUEUED)
                .bind(start.execution_id)
                .bind(key.job_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| store_err(&doing(), e))?;
            commit(tx, &doing()).await?;
            return Ok(StartOutcome::Skipped(SkipReason::NotRunnable(job.status)));
        }

        // 2.–5. in one statement.
        let claimed =
            start.advance.is_some() && job.next_run == Some(db_instant(key.scheduled_for));
        let stale_unless_abandoned = start.advance.is_some() && !claimed;
        let due_at = if start.attempt == 0 {
            key.scheduled_for.min(now)
        } else {
            now
        };
        let row = sqlx::query(START)
            .bind(key.job_id)
            .bind(key.scheduled_for)
            .bind(key.manual)
            .bind(start.execution_id)
            .bind(now)
            .bind(start.worker.as_str())
            .bind(to_i32("attempt", start.attempt)?)
            .bind(Uuid::now_v7())
            .bind(stale_unless_abandoned)
            .bind(claimed)
            .bind(start.advance.and_then(|a| a.next_run))
            .bind(job.owner)
            .bind(job.name.as_str())
            .bind(due_at)
            .bind(ABANDONED)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| store_err(&doing(), e))?;

        if col::<bool>(&row, "mixup")? {
            // Running for another occurrence: a caller's mix-up of ids. Nothing changed.
            rollback(tx, &doing()).await?;
            return Err(StoreError::Duplicate {
                what: "execution",
                id: start.execution_id,
            });
        }
        let abandoned: i64 = col(&row, "abandoned_count")?;
        if stale_unless_abandoned && abandoned == 0 {
            rollback(tx, &doing()).await?;
            return Ok(StartOutcome::Skipped(SkipReason::Stale));
        }
        if col::<Option<Uuid>>(&row, "id")?.is_none() {
            // The execution had finished. What step 2 abandoned stays abandoned.
            let target: Option<&str> = col(&row, "target_status")?;
            if target.is_none() {
                return Err(bad_data(format!("{}: no execution was recorded", doing())));
            }
            commit(tx, &doing()).await?;
            return Ok(StartOutcome::Skipped(SkipReason::AlreadyFinished));
        }
        let execution = rows::execution(&row)?;
        let retry_count: i32 = col(&row, "job_retry_count")?;
        let revision: i64 = col(&row, "job_revision")?;
        let job = Job {
            next_run: col(&row, "job_next_run")?,
            last_executed_at: col(&row, "job_last_executed_at")?,
            retry_count: u32::try_from(retry_count)
                .map_err(|_| bad_data(format!("retry_count {retry_count} of job {}", job.id)))?,
            revision: u64::try_from(revision)
                .map_err(|_| bad_data(format!("revision {revision} of job {}", job.id)))?,
            updated_at: col(&row, "job_updated_at")?,
            ..job
        };
        commit(tx, &doing()).await?;
        Ok(StartOutcome::Started {
            job,
            execution,
            abandoned: u32::try_from(abandoned).unwrap_or(u32::MAX),
        })
    }

    async fn finish_execution(
        &self,
        finish: &FinishExecution,
    ) -> Result<Option<Execution>, StoreError> {
        let doing = || format!("finishing execution {}", finish.execution_id);
        let next = finish.next_attempt.as_ref();
        let mut q = sqlx::query(FINISH)
            .bind(finish.execution_id)
            .bind(finish.status.as_str())
            .bind(finish.finished_at)
            .bind(&finish.output)
            .bind(finish.error.as_deref())
            .bind(finish.job_status.map(JobStatus::as_str));
        q = match next {
            Some(next) => bind_execution(q, next)?,
            None => q
                .bind(None::<Uuid>)
                .bind(None::<Uuid>)
                .bind(None::<Uuid>)
                .bind(None::<&str>)
                .bind(None::<DateTime<Utc>>)
                .bind(None::<DateTime<Utc>>)
                .bind(None::<i32>)
                .bind(None::<&str>)
                .bind(None::<DateTime<Utc>>)
                .bind(None::<DateTime<Utc>>)
                .bind(None::<i64>)
                .bind(None::<serde_json::Value>)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<bool>)
                .bind(None::<Uuid>)
                .bind(None::<DateTime<Utc>>),
        };
        let (ids, channels): (Vec<Uuid>, Vec<&str>) = finish
            .notifications
            .iter()
            .map(|n| (n.id, n.channel.as_str()))
            .unzip();
        let q = q.bind(ids).bind(channels);
        let result = if finish.job_status.is_some() {
            // Lock the job before the execution, as start_execution does.
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(|e| store_err(&doing(), e))?;
            sqlx::query(LOCK_JOB_OF_EXECUTION)
                .bind(finish.execution_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| store_err(&doing(), e))?;
            let result = q.fetch_one(&mut *tx).await;
            if result.is_ok() {
                commit(tx, &doing()).await?;
            }
            result
        } else {
            q.fetch_one(&self.pool).await
        };
        let duplicate = || StoreError::Duplicate {
            what: "execution",
            id: next.map_or(finish.execution_id, |n| n.id),
        };
        let row = match result {
            Ok(row) => row,
            Err(e) if constraint_of(&e) == Some("notifications_pkey") => {
                // A notification id recorded before (for another occurrence, or the same
                // occurrence and channel would have been skipped).
                return Err(store_err(
                    &format!("{}: a notification id is taken", doing()),
                    e,
                ));
            }
            Err(e) if is_unique_violation(&e) => return Err(duplicate()),
            Err(e) => return Err(store_err(&doing(), e)),
        };
        if col::<Option<Uuid>>(&row, "id")?.is_some() {
            return rows::execution(&row).map(Some);
        }
        if col::<bool>(&row, "duplicate")? && col::<bool>(&row, "was_running")? {
            return Err(duplicate());
        }
        Ok(None)
    }

    async fn get_execution(&self, owner: Uuid, id: Uuid) -> Result<Option<Execution>, StoreError> {
        sqlx::query(GET_EXECUTION)
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_err(&format!("reading execution {id}"), e))?
            .as_ref()
            .map(rows::execution)
            .transpose()
    }

    async fn list_executions(
        &self,
        owner: Uuid,
        job_id: Uuid,
        query: &ExecutionQuery,
    ) -> Result<Page<Execution>, StoreError> {
        let limit = clamp_limit(query.limit);
        let page = query.page.max(1);
        let q = match query.status {
            None => sqlx::query(LIST_EXECUTIONS),
            Some(_) => sqlx::query(LIST_EXECUTIONS_BY_STATUS),
        };
        let mut q = q
            .bind(owner)
            .bind(job_id)
            .bind(i64::from(limit))
            .bind(sql_offset(page, limit));
        if let Some(status) = query.status {
            q = q.bind(status.as_str());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_err(&format!("listing executions of job {job_id}"), e))?;
        page_of(&rows, page, limit, rows::execution)
    }

    async fn pending_executions(
        &self,
        after: Option<Uuid>,
        limit: usize,
        running_started_before: DateTime<Utc>,
    ) -> Result<Vec<Execution>, StoreError> {
        let q = match after {
            None => sqlx::query(PENDING_EXECUTIONS)
                .bind(sql_limit(limit))
                .bind(running_started_before),
            Some(after) => sqlx::query(PENDING_EXECUTIONS_AFTER)
                .bind(sql_limit(limit))
                .bind(running_started_before)
                .bind(after),
        };
        q.fetch_all(&self.pool)
            .await
            .map_err(|e| store_err("listing pending executions", e))?
            .iter()
            .map(rows::execution)
            .collect()
    }

    async fn job_stats(&self, owner: Uuid, job_id: Uuid) -> Result<JobStats, StoreError> {
        let row = sqlx::query(JOB_STATS)
            .bind(owner)
            .bind(job_id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_err(&format!("computing statistics of job {job_id}"), e))?;
        rows::job_stats(&row)
    }

    async fn find_job_with_stats(
        &self,
        owner: Uuid,
        id: Uuid,
    ) -> Result<Option<(Job, JobStats)>, StoreError> {
        sqlx::query(JOB_WITH_STATS)
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_err(&format!("reading job {id} and its statistics"), e))?
            .map(|row| Ok((rows::job(&row)?, rows::job_stats(&row)?)))
            .transpose()
    }

    async fn owner_stats(&self, owner: Uuid) -> Result<OwnerStats, StoreError> {
        let row = sqlx::query(OWNER_STATS)
            .bind(owner)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_err(&format!("computing the statistics of owner {owner}"), e))?;
        let count = |name: &str| -> Result<u64, StoreError> {
            let n: i64 = col(&row, name)?;
            u64::try_from(n).map_err(|_| bad_data(format!("a negative count {n}")))
        };
        let ms = |name: &str| -> Result<Option<u64>, StoreError> {
            col::<Option<i64>>(&row, name)?
                .map(|n| u64::try_from(n).map_err(|_| bad_data(format!("a negative duration {n}"))))
                .transpose()
        };
        Ok(OwnerStats {
            jobs: JobCounts {
                total: count("jobs_total")?,
                active: count("jobs_active")?,
                paused: count("jobs_paused")?,
                completed: count("jobs_completed")?,
                failed: count("jobs_failed")?,
                one_time: count("jobs_one_time")?,
                recurring: count("jobs_recurring")?,
            },
            executions: ExecutionSummary {
                total: count("runs_total")?,
                successful: count("runs_successful")?,
                failed: count("runs_failed")?,
                average_duration_ms: col(&row, "runs_average_ms")?,
                max_duration_ms: ms("runs_max_ms")?,
                min_duration_ms: ms("runs_min_ms")?,
            },
        })
    }

    async fn recent_executions(
        &self,
        owner: Uuid,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        sqlx::query(RECENT_EXECUTIONS)
            .bind(owner)
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_err(&format!("listing recent executions of owner {owner}"), e))?
            .iter()
            .map(rows::execution)
            .collect()
    }

    async fn append_logs(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let n = entries.len();
        let (mut ids, mut executions, mut jobs, mut owners) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut levels, mut messages, mut metadata, mut timestamps) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in entries {
            ids.push(e.id);
            executions.push(e.execution_id);
            jobs.push(e.job_id);
            owners.push(e.owner);
            levels.push(e.level.as_str());
            messages.push(e.message.as_str());
            metadata.push(&e.metadata);
            timestamps.push(e.timestamp);
        }
        sqlx::query(APPEND_LOGS)
            .bind(ids)
            .bind(executions)
            .bind(jobs)
            .bind(owners)
            .bind(levels)
            .bind(messages)
            .bind(metadata)
            .bind(timestamps)
            .execute(&self.pool)
            .await
            .map_err(|e| store_err(&format!("appending {n} log entries"), e))?;
        Ok(())
    }

    async fn logs(&self, owner: Uuid, execution_id: Uuid) -> Result<Vec<LogEntry>, StoreError> {
        sqlx::query(LOGS)
            .bind(owner)
            .bind(execution_id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_err(&format!("reading the log of execution {execution_id}"), e))?
            .iter()
            .map(rows::log_entry)
            .collect()
    }

    async fn claim_notifications(
        &self,
        channels: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedNotification>, StoreError> {
        if channels.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // Built once from the fixed column lists; nothing comes from input.
        sqlx::query(AssertSqlSafe(CLAIM_NOTIFICATIONS.as_str()))
            .bind(channels)
            .bind(now)
            .bind(lease_until)
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_err("claiming notifications", e))?
            .iter()
            .map(|row| {
                Ok(ClaimedNotification {
                    notification: rows::notification(row)?,
                    job: rows::job_prefixed(row, "j_")?,
                    execution: rows::execution_prefixed(row, "e_")?,
                })
            })
            .collect()
    }

    async fn settle_notification(&self, settle: &SettleNotification) -> Result<bool, StoreError> {
        // As `SettleNotification::apply` changes the claimed row.
        let (status, due_at, last_error) = match &settle.outcome {
            NotificationOutcome::Sent => (NotificationStatus::Sent, None, None),
            NotificationOutcome::Skipped { reason } => {
                (NotificationStatus::Skipped, None, Some(reason.as_str()))
            }
            NotificationOutcome::Failed { error } => {
                (NotificationStatus::Failed, None, Some(error.as_str()))
            }
            NotificationOutcome::Retry { at, error } => {
                (NotificationStatus::Pending, Some(*at), Some(error.as_str()))
            }
        };
        let finished_at = (status != NotificationStatus::Pending).then_some(settle.at);
        let log = &settle.log;
        sqlx::query_scalar(SETTLE_NOTIFICATION)
            .bind(settle.id)
            .bind(to_i32("attempt", settle.attempt)?)
            .bind(status.as_str())
            .bind(due_at)
            .bind(last_error)
            .bind(finished_at)
            .bind(log.id)
            .bind(log.execution_id)
            .bind(log.job_id)
            .bind(log.owner)
            .bind(log.level.as_str())
            .bind(log.message.as_str())
            .bind(&log.metadata)
            .bind(log.timestamp)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_err(&format!("settling notification {}", settle.id), e))
    }

    async fn next_notification_due(
        &self,
        channels: &[String],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        if channels.is_empty() {
            return Ok(None);
        }
        sqlx::query_scalar(NEXT_NOTIFICATION_DUE)
            .bind(channels)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_err("reading when the next notification is due", e))
    }

    async fn notifications(&self, execution_id: Uuid) -> Result<Vec<Notification>, StoreError> {
        sqlx::query(NOTIFICATIONS)
            .bind(execution_id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| {
                store_err(
                    &format!("reading the notifications of execution {execution_id}"),
                    e,
                )
            })?
            .iter()
            .map(rows::notification)
            .collect()
    }
}
