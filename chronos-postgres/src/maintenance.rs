//! Partition upkeep and retention for `job_executions` and `job_logs`, retention of
//! settled failure notifications, and the leadership that runs them in one process at
//! a time. See [`Maintenance`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chronos::clock::{Clock, after};
use sqlx::postgres::PgConnection;
// Every statement built with `format!` below names only relations generated here (from
// the fixed table names and a month) and timestamps formatted from integers; nothing
// comes from input. Column lists come from the catalog, quoted with `quote_ident`.
use sqlx::{AssertSqlSafe, Connection, PgPool};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The key of the session-level advisory lock whose holder leads maintenance
/// (`"chronos"` in ASCII followed by 1).
pub const MAINTENANCE_LOCK_KEY: i64 = 0x6368_726f_6e6f_7301;

/// The key of the transaction-level advisory lock that serializes partition DDL
/// (`"chronos"` in ASCII followed by 2).
pub const PARTITION_DDL_LOCK_KEY: i64 = 0x6368_726f_6e6f_7302;

/// The `application_name` of the leader's dedicated connection, as `pg_stat_activity`
/// shows it.
pub const MAINTENANCE_APPLICATION_NAME: &str = "chronos-maintenance";

/// Periods below this are raised to it, so a zero interval cannot spin.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// How long partition DDL keeps trying for its table locks before giving up (and
/// retrying at the next pass). While DDL waits for a lock, the writes queued behind it
/// wait too, so a long transaction on the table must not make maintenance stall the
/// application.
const LOCK_BUDGET: Duration = Duration::from_secs(5);

/// The same for dropping a partition, as a `lock_timeout`. (`DROP TABLE` of a
/// partition locks the parent before the partition, so it waits holding no table lock.)
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";

/// The pause before partition DDL tries its locks again after one of them was busy.
const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// PostgreSQL's `lock_not_available`: a `NOWAIT` lock was busy, or `lock_timeout` hit.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// How long connecting or checking the leader's connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong during maintenance.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// A statement failed (the server is unreachable, a connection was killed, ...).
    #[error("{doing}: {source}")]
    Database {
        /// What maintenance was doing.
        doing: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The server did not answer in time (an unreachable host, a dead connection that
    /// was not closed).
    #[error("{doing}: no answer within {after:?}")]
    Timeout {
        /// What maintenance was doing.
        doing: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// A relation has the name of a monthly partition but is not a partition of the
    /// table, so the month's partition cannot be created.
    #[error("relation {name} exists but is not a partition of {parent}")]
    NameTaken {
        /// The relation's name.
        name: String,
        /// The partitioned table.
        parent: &'static str,
    },
    /// A month outside the years 1 to 9999 (the partition names have four digits).
    #[error("{what} is outside the years 1 to 9999 that partitions can cover")]
    OutOfRange {
        /// The month or computation that is out of range.
        what: String,
    },
}

fn db_err(doing: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MaintenanceError {
    let doing = doing.into();
    move |source| MaintenanceError::Database { doing, source }
}

/// A UTC calendar month, as months since January of year 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Month(i64);

impl Month {
    const FIRST: Month = Month(12); // January of year 1
    const LAST: Month = Month(9999 * 12 + 11); // December 9999

    fn of(t: DateTime<Utc>) -> Month {
        Month(i64::from(t.year()) * 12 + i64::from(t.month0()))
    }

    fn checked(self) -> Result<Month, MaintenanceError> {
        if (Self::FIRST..=Self::LAST).contains(&self) {
            Ok(self)
        } else {
            Err(MaintenanceError::OutOfRange {
                what: format!("the month {} after January of year 0", self.0),
            })
        }
    }

    fn plus(self, months: i64) -> Result<Month, MaintenanceError> {
        self.0
            .checked_add(months)
            .map(Month)
            .ok_or_else(|| MaintenanceError::OutOfRange {
                what: format!("{months} months after {}", self.suffix()),
            })?
            .checked()
    }

    fn year(self) -> i64 {
        self.0.div_euclid(12)
    }

    fn number(self) -> i64 {
        self.0.rem_euclid(12) + 1
    }

    /// `yYYYYmMM`, the suffix of the month's partitions.
    fn suffix(self) -> String {
        format!("y{:04}m{:02}", self.year(), self.number())
    }

    /// Parses [`Month::suffix`]; `None` for anything else.
    fn parse_suffix(s: &str) -> Option<Month> {
        let b = s.as_bytes();
        if b.len() != 8 || b[0] != b'y' || b[5] != b'm' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        let (year, month) = (digits(1..5)?, digits(6..8)?);
        if !(1..=12).contains(&month) {
            return None;
        }
        Month(year * 12 + month - 1).checked().ok()
    }

    /// The first instant of the month.
    fn start(self) -> Result<DateTime<Utc>, MaintenanceError> {
        let out_of_range = || MaintenanceError::OutOfRange {
            what: self.suffix(),
        };
        let year = i32::try_from(self.year()).map_err(|_| out_of_range())?;
        let month = u32::try_from(self.number()).map_err(|_| out_of_range())?;
        NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
            .ok_or_else(out_of_range)
    }

    /// The first instant of the month as a SQL literal, for partition bounds.
    fn literal(self) -> String {
        format!("'{:04}-{:02}-01 00:00:00+00'", self.year(), self.number())
    }
}

/// A partitioned table maintenance looks after.
#[derive(Debug)]
struct Partitioned {
    parent: &'static str,
    default: &'static str,
    /// The partition key, quoted where needed.
    column: &'static str,
}

const TABLES: [Partitioned; 2] = [
    Partitioned {
        parent: "job_executions",
        default: "job_executions_default",
        column: "created_at",
    },
    Partitioned {
        parent: "job_logs",
        default: "job_logs_default",
        column: "\"timestamp\"",
    },
];

impl Partitioned {
    fn partition(&self, month: Month) -> String {
        format!("{}_{}", self.parent, month.suffix())
    }

    /// The month of one of this table's monthly partitions, from its name.
    fn month_of(&self, name: &str) -> Option<Month> {
        Month::parse_suffix(name.strip_prefix(self.parent)?.strip_prefix('_')?)
    }
}

/// What [`ensure_partitions`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionReport {
    /// The partitions it created, in creation order.
    pub created: Vec<CreatedPartition>,
    /// The partitions that existed already.
    pub existing: Vec<String>,
}

/// A partition [`ensure_partitions`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPartition {
    /// Its name, such as `job_executions_y2026m01`.
    pub name: String,
    /// How many rows it took over from the default partition.
    pub moved_rows: u64,
}

/// Creates the monthly partitions of `job_executions` and `job_logs` for the UTC month
/// of `now` and the `months_ahead` months after it, where they do not exist yet.
///
/// Idempotent, and safe when several processes run it at once: each partition is
/// created in a transaction of its own under the advisory lock
/// [`PARTITION_DDL_LOCK_KEY`], after checking again that it is still missing. Rows the
/// default partition holds for the month (written before the partition existed) are
/// moved into it in the same transaction: the partition is created as a plain table,
/// the rows are moved (`DELETE ... RETURNING` from the default partition into it), and
/// it is attached. For the few milliseconds of that transaction (longer only if the
/// default partition holds many rows), writes to the table wait (`SHARE ROW EXCLUSIVE`
/// on the parent) and so do reads that scan the default partition; a write in flight
/// is waited for, so none fails for a partition appearing under it. A month's
/// partition is normally created months before rows for it arrive, so that wait only
/// matters the first time maintenance runs (writes to `jobs`, whose key the new
/// partition's foreign key references, wait too). The DDL tries for its table locks
/// for at most 5 s in all, and otherwise fails with an error, so that a long
/// transaction on the table does not make writers queue behind it; it only ever waits
/// for a lock while it holds none, so it never deadlocks with the application's
/// statements (see `ensure_partition`).
pub async fn ensure_partitions(
    pool: &PgPool,
    now: DateTime<Utc>,
    months_ahead: u32,
) -> Result<PartitionReport, MaintenanceError> {
    let first = Month::of(now).checked()?;
    let mut report = PartitionReport::default();
    for table in &TABLES {
        for ahead in 0..=i64::from(months_ahead) {
            let month = first.plus(ahead)?;
            let name = table.partition(month);
            match ensure_partition(pool, table, month, &name).await? {
                Some(moved_rows) => {
                    tracing::info!(partition = %name, moved_rows, "created partition");
                    report.created.push(CreatedPartition { name, moved_rows });
                }
                None => report.existing.push(name),
            }
        }
    }
    Ok(report)
}

/// Whether a relation named `name` exists, and if so, whether it is a partition of `parent`.
async fn partition_state(
    conn: &mut PgConnection,
    name: &str,
    parent: &'static str,
) -> Result<Option<bool>, MaintenanceError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits i \
                        WHERE i.inhrelid = c.oid AND i.inhparent = to_regclass($2)) \
         FROM pg_class c WHERE c.oid = to_regclass($1)",
    )
    .bind(name)
    .bind(parent)
    .fetch_optional(conn)
    .await
    .map_err(db_err(format!("looking up partition {name}")))
}

/// Creates one partition if it is missing; the number of rows moved into it, or `None`
/// if it existed.
///
/// # Locks, and why no writer can deadlock with them
/// The transaction needs `SHARE ROW EXCLUSIVE` on the parent (ONLY: not its
/// partitions), `ACCESS EXCLUSIVE` on the default partition, and `SHARE ROW
/// EXCLUSIVE` on every table the parent's foreign keys reference (`jobs`: attaching
/// adds the foreign key to the new partition). It waits for the first, holding no
/// table lock yet, and takes the others with `NOWAIT`; if one of them is busy, it rolls
/// back, pauses and tries again, for at most [`LOCK_BUDGET`] in all. Waiting for those
/// while holding the parent would deadlock with ordinary statements: PostgreSQL locks
/// the relations of a statement in the order they appear in it, so `WITH before AS
/// (SELECT … FROM job_executions) UPDATE job_executions …` holds `ACCESS SHARE` on the
/// default partition before it asks for `ROW EXCLUSIVE` on the parent, and a
/// transaction that updated `jobs` before writing an execution holds `jobs` while it
/// waits for the parent. PostgreSQL then aborts one side after `deadlock_timeout`
/// (1 s), and that side was usually the application's write (an attempt's outcome
/// lost, its entry run again after its lease).
async fn ensure_partition(
    pool: &PgPool,
    table: &Partitioned,
    month: Month,
    name: &str,
) -> Result<Option<u64>, MaintenanceError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(db_err("acquiring a connection for partition upkeep"))?;
    // Fast path, without any lock: it is there already.
    match partition_state(&mut conn, name, table.parent).await? {
        Some(true) => return Ok(None),
        Some(false) => {
            return Err(MaintenanceError::NameTaken {
                name: name.to_owned(),
                parent: table.parent,
            });
        }
        None => {}
    }
    let deadline = tokio::time::Instant::now() + LOCK_BUDGET;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match create_partition(&mut conn, table, month, name, left).await {
            Err(e) if is_lock_not_available(&e) && tokio::time::Instant::now() < deadline => {
                tracing::debug!(partition = %name, error = %e, "a table is busy; trying again");
                tokio::time::sleep(LOCK_RETRY_PAUSE).await;
            }
            result => return result,
        }
    }
}

/// Whether `e` is PostgreSQL's `lock_not_available` (a busy `NOWAIT` lock, or a lock
/// wait that ran into `lock_timeout`).
fn is_lock_not_available(e: &MaintenanceError) -> bool {
    match e {
        MaintenanceError::Database { source, .. } => source
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|code| code == LOCK_NOT_AVAILABLE),
        _ => false,
    }
}

/// One try of [`ensure_partition`]: waits at most `wait` for the parent's lock, takes
/// the others without waiting (see there), and creates the partition. Rolls back on
/// any error.
async fn create_partition(
    conn: &mut PgConnection,
    table: &Partitioned,
    month: Month,
    name: &str,
    wait: Duration,
) -> Result<Option<u64>, MaintenanceError> {
    let doing = |what: &str| format!("creating partition {name}: {what}");
    let mut tx = conn
        .begin()
        .await
        .map_err(db_err(doing("beginning a transaction")))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_DDL_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(db_err(doing("taking the DDL lock")))?;
    // Another process may have created it while we waited for the lock.
    match partition_state(&mut tx, name, table.parent).await? {
        Some(true) => return Ok(None),
        Some(false) => {
            return Err(MaintenanceError::NameTaken {
                name: name.to_owned(),
                parent: table.parent,
            });
        }
        None => {}
    }
    // At least 1 ms: 0 would mean no limit.
    let wait_ms = wait.as_millis().clamp(1, u128::from(u32::MAX));
    sqlx::query(AssertSqlSafe(format!(
        "SET LOCAL lock_timeout = '{wait_ms}ms'"
    )))
    .execute(&mut *tx)
    .await
    .map_err(db_err(doing("setting the lock timeout")))?;
    // SHARE ROW EXCLUSIVE on the parent alone (ONLY: not its partitions) waits for the
    // writes in flight and holds off new ones until the partition is attached. A
    // write that had already looked at the partitions and routed a row of this month
    // to the default partition would otherwise fail once the partition is attached
    // (PostgreSQL re-checks the default partition's constraint), and no row may land
    // in the default partition between the move and the attach. Reads of the other
    // partitions go on. This is the one lock waited for: nothing is held yet (but the
    // advisory lock, which only partition DDL takes).
    sqlx::query(AssertSqlSafe(format!(
        "LOCK TABLE ONLY {} IN SHARE ROW EXCLUSIVE MODE",
        table.parent
    )))
    .execute(&mut *tx)
    .await
    .map_err(db_err(doing("locking the parent")))?;
    // The rest without waiting (see `ensure_partition`): the tables the foreign keys
    // reference, then the default partition.
    let referenced: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint \
         WHERE conrelid = to_regclass($1) AND contype = 'f' ORDER BY 1",
    )
    .bind(table.parent)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err(doing("listing the referenced tables")))?;
    for other in &referenced {
        sqlx::query(AssertSqlSafe(format!(
            "LOCK TABLE ONLY {other} IN SHARE ROW EXCLUSIVE MODE NOWAIT"
        )))
        .execute(&mut *tx)
        .await
        .map_err(db_err(doing(&format!(
            "locking {other}, which it references"
        ))))?;
    }
    sqlx::query(AssertSqlSafe(format!(
        "LOCK TABLE ONLY {} IN ACCESS EXCLUSIVE MODE NOWAIT",
        table.default
    )))
    .execute(&mut *tx)
    .await
    .map_err(db_err(doing("locking the default partition")))?;

    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE {name} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        table.parent
    )))
    .execute(&mut *tx)
    .await
    .map_err(db_err(doing("creating the table")))?;

    let (from, to) = (month.start()?, month.plus(1)?.start()?);
    let columns: String = sqlx::query_scalar(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute \
         WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
    )
    .bind(table.parent)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err(doing("listing the columns")))?;
    let moved_rows = sqlx::query(AssertSqlSafe(format!(
        "WITH moved AS (DELETE FROM {default} WHERE {column} >= $1 AND {column} < $2 \
                        RETURNING {columns}) \
         INSERT INTO {name} ({columns}) SELECT {columns} FROM moved",
        default = table.default,
        column = table.column,
    )))
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await
    .map_err(db_err(doing("moving rows out of the default partition")))?
    .rows_affected();

    // Attaching adds the parent's indexes, primary key and foreign keys to the partition.
    sqlx::query(AssertSqlSafe(format!(
        "ALTER TABLE {} ATTACH PARTITION {name} FOR VALUES FROM ({}) TO ({})",
        table.parent,
        month.literal(),
        month.plus(1)?.literal()
    )))
    .execute(&mut *tx)
    .await
    .map_err(db_err(doing("attaching it")))?;
    tx.commit().await.map_err(db_err(doing("committing")))?;
    Ok(Some(moved_rows))
}

/// Drops the monthly partitions of `job_executions` and `job_logs` that lie wholly
/// before the retention cutoff, the start of the UTC month `retention_months` months
/// before the month of `now`, and returns their names. With `retention_months = 12` on
/// 2026-06-15, the cutoff is 2025-06-01: the partitions of May 2025 and earlier go,
/// June 2025 onwards stay. With 0, only the current month and later stay.
///
/// Rows older than the cutoff in the default partitions (written when no monthly
/// partition covered them) are deleted too, so retention holds for every row. The
/// default partitions themselves are never dropped, and neither is any relation that
/// is not named like a monthly partition. Dropping a partition briefly locks the whole
/// table (`ACCESS EXCLUSIVE`, waiting at most 5 s for it, as [`ensure_partitions`]
/// does).
pub async fn drop_expired_partitions(
    pool: &PgPool,
    now: DateTime<Utc>,
    retention_months: u32,
) -> Result<Vec<String>, MaintenanceError> {
    let Some(cutoff_month) = cutoff_month(now, retention_months)? else {
        return Ok(Vec::new());
    };
    let cutoff = cutoff_month.start()?;
    let mut dropped = Vec::new();
    for table in &TABLES {
        let children: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = to_regclass($1) ORDER BY c.relname",
        )
        .bind(table.parent)
        .fetch_all(pool)
        .await
        .map_err(db_err(format!(
            "listing the partitions of {}",
            table.parent
        )))?;
        for child in children {
            let Some(month) = table.month_of(&child) else {
                continue;
            };
            // `month` ends at the start of the next month; expired if that is <= cutoff.
            if month >= cutoff_month {
                continue;
            }
            // The name is generated again from the month, not taken from the catalog.
            let name = table.partition(month);
            drop_partition(pool, &name).await?;
            tracing::info!(partition = %name, %cutoff, "dropped expired partition");
            dropped.push(name);
        }
        let deleted = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE {} < $1",
            table.default, table.column
        )))
        .bind(cutoff)
        .execute(pool)
        .await
        .map_err(db_err(format!(
            "deleting expired rows from {}",
            table.default
        )))?
        .rows_affected();
        if deleted > 0 {
            tracing::info!(
                partition = table.default,
                deleted,
                %cutoff,
                "deleted expired rows from the default partition"
            );
        }
    }
    Ok(dropped)
}

/// The first month retention keeps: `retention_months` before the month of `now`;
/// `None` if that is before year 1 (nothing can be older).
fn cutoff_month(
    now: DateTime<Utc>,
    retention_months: u32,
) -> Result<Option<Month>, MaintenanceError> {
    Ok(Month::of(now)
        .checked()?
        .plus(-i64::from(retention_months))
        .ok())
}

/// Deletes the settled failure notifications (sent, skipped or failed) that were
/// settled before the retention cutoff of [`drop_expired_partitions`] (the start of the
/// UTC month `retention_months` months before the month of `now`), and returns how
/// many. Pending notifications are kept, however old: they are still owed.
pub async fn delete_expired_notifications(
    pool: &PgPool,
    now: DateTime<Utc>,
    retention_months: u32,
) -> Result<u64, MaintenanceError> {
    let Some(cutoff_month) = cutoff_month(now, retention_months)? else {
        return Ok(0);
    };
    let cutoff = cutoff_month.start()?;
    let deleted =
        sqlx::query("DELETE FROM notifications WHERE status <> 'pending' AND finished_at < $1")
            .bind(cutoff)
            .execute(pool)
            .await
            .map_err(db_err("deleting expired notifications"))?
            .rows_affected();
    if deleted > 0 {
        tracing::info!(deleted, %cutoff, "deleted expired notifications");
    }
    Ok(deleted)
}

async fn drop_partition(pool: &PgPool, name: &str) -> Result<(), MaintenanceError> {
    let doing = |what: &str| format!("dropping partition {name}: {what}");
    let mut tx = pool
        .begin()
        .await
        .map_err(db_err(doing("beginning a transaction")))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_DDL_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(db_err(doing("taking the DDL lock")))?;
    sqlx::query(LOCK_TIMEOUT)
        .execute(&mut *tx)
        .await
        .map_err(db_err(doing("setting the lock timeout")))?;
    // IF EXISTS: another process may have dropped it while we waited for the lock.
    sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}")))
        .execute(&mut *tx)
        .await
        .map_err(db_err(doing("dropping it")))?;
    tx.commit().await.map_err(db_err(doing("committing")))
}

/// How the background maintenance of [`Maintenance::spawn`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceConfig {
    /// How many months after the current one have their partitions ready (default 3).
    pub months_ahead: u32,
    /// How many whole months before the current one are kept (default `Some(12)`);
    /// `None` keeps everything forever. See [`drop_expired_partitions`] and
    /// [`delete_expired_notifications`].
    pub retention_months: Option<u32>,
    /// How often the leader runs a pass (default 1 hour). A failed pass is retried
    /// after [`MaintenanceConfig::retry_period`] instead.
    pub interval: Duration,
    /// How often a follower tries to become leader, and how often the leader checks
    /// that its connection (and so its lock) is still there (default 30 s). After a
    /// leader dies, a follower takes over within about this long; a leader whose
    /// connection was killed notices within about this long.
    pub retry_period: Duration,
    /// The key of the session-level advisory lock that elects the leader (default
    /// [`MAINTENANCE_LOCK_KEY`]). Processes with the same key on the same database
    /// elect one leader among them.
    pub lock_key: i64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            months_ahead: 3,
            retention_months: Some(12),
            interval: Duration::from_secs(3600),
            retry_period: Duration::from_secs(30),
            lock_key: MAINTENANCE_LOCK_KEY,
        }
    }
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// What [`ensure_partitions`] did.
    pub partitions: PartitionReport,
    /// The partitions [`drop_expired_partitions`] dropped (none without retention).
    pub dropped: Vec<String>,
    /// How many settled notifications [`delete_expired_notifications`] deleted (none
    /// without retention).
    pub deleted_notifications: u64,
}

/// Partition upkeep and retention for `job_executions` and `job_logs`, retention of
/// settled failure notifications, and the leadership that runs them in one process at
/// a time.
///
/// Both tables are range-partitioned by month (`job_executions` on `created_at`,
/// `job_logs` on `"timestamp"`), with one partition per UTC month named
/// `<table>_yYYYYmMM` (for example `job_executions_y2026m01`) and a `DEFAULT`
/// partition (`<table>_default`) that catches every row no monthly partition covers,
/// so an insert never fails for want of a partition.
///
/// - [`ensure_partitions`] creates the partitions of the current month and of the
///   next months. It is idempotent and safe to run from several processes at once
///   (the DDL runs under a transaction-level advisory lock, [`PARTITION_DDL_LOCK_KEY`]).
///   Where the default partition already holds rows of a month being created (rows
///   written before the month's partition existed), they are moved into the new
///   partition in the same transaction: PostgreSQL refuses to attach a partition
///   whose range the default partition has rows in.
/// - [`drop_expired_partitions`] drops the monthly partitions that lie wholly before
///   the retention cutoff, and deletes the rows older than the cutoff from the
///   default partitions. The default partitions themselves are never dropped.
/// - [`delete_expired_notifications`] deletes the failure notifications settled before
///   the same cutoff; pending ones stay.
/// - [`Maintenance::spawn`] runs both in the background: the process that holds the
///   session-level advisory lock [`MAINTENANCE_LOCK_KEY`] on a dedicated connection is
///   the leader and runs them at once and then every [`MaintenanceConfig::interval`];
///   the others retry taking the lock every [`MaintenanceConfig::retry_period`]. When
///   the leader dies, its connection closes, the server releases the lock, and a
///   follower takes over.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) {
/// use std::sync::Arc;
/// use chronos::clock::SystemClock;
/// use chronos_postgres::{Maintenance, MaintenanceConfig};
///
/// let handle = Maintenance::spawn(pool, Arc::new(SystemClock), MaintenanceConfig::default());
/// // ... run the application ...
/// handle.shutdown().await; // releases the leadership, if this process had it
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Maintenance;

impl Maintenance {
    /// Runs one pass now, whoever leads: [`ensure_partitions`], then
    /// [`drop_expired_partitions`] and [`delete_expired_notifications`] if the
    /// configuration has a retention.
    pub async fn run_once(
        pool: &PgPool,
        now: DateTime<Utc>,
        config: &MaintenanceConfig,
    ) -> Result<MaintenanceReport, MaintenanceError> {
        let partitions = ensure_partitions(pool, now, config.months_ahead).await?;
        let (dropped, deleted_notifications) = match config.retention_months {
            Some(months) => (
                drop_expired_partitions(pool, now, months).await?,
                delete_expired_notifications(pool, now, months).await?,
            ),
            None => (Vec::new(), 0),
        };
        Ok(MaintenanceReport {
            partitions,
            dropped,
            deleted_notifications,
        })
    }

    /// Starts the maintenance task on the current Tokio runtime (it panics outside
    /// one, as [`tokio::spawn`] does).
    ///
    /// The task contends for leadership at once: it opens a dedicated connection with
    /// the pool's connect options (outside the pool, so it takes none of its slots;
    /// `application_name` [`MAINTENANCE_APPLICATION_NAME`]) and tries
    /// `pg_try_advisory_lock(lock_key)` on it. A session-level lock needs a session of
    /// its own: behind a pooler in transaction mode (PgBouncer), point the pool at the
    /// server directly.
    /// Holding it, it runs a pass at once and then every `interval` of `clock`, and
    /// checks its connection every `retry_period`; if the connection breaks, it stops
    /// leading and contends again. Not holding it, it tries again every
    /// `retry_period`. Errors are logged and retried, never returned.
    ///
    /// Two processes may briefly both believe they lead (a leader whose connection
    /// was killed notices within `retry_period`); passes are idempotent and
    /// serialized by [`PARTITION_DDL_LOCK_KEY`], so that is harmless.
    pub fn spawn(
        pool: PgPool,
        clock: Arc<dyn Clock>,
        config: MaintenanceConfig,
    ) -> MaintenanceHandle {
        let cancel = CancellationToken::new();
        let (leader_tx, leader_rx) = watch::channel(false);
        let (passes_tx, passes_rx) = watch::channel(0);
        let span = tracing::info_span!("chronos_maintenance", lock_key = config.lock_key);
        let task = Task {
            pool,
            clock,
            config,
            cancel: cancel.clone(),
            leader: leader_tx,
            passes: passes_tx,
        };
        let join = tokio::spawn(task.run().instrument(span));
        MaintenanceHandle {
            cancel,
            leader: leader_rx,
            passes: passes_rx,
            join: Some(join),
        }
    }
}

/// The running maintenance task of [`Maintenance::spawn`].
///
/// Dropping the handle stops the task too (it releases the leadership in the
/// background); [`MaintenanceHandle::shutdown`] waits for that.
#[derive(Debug)]
pub struct MaintenanceHandle {
    cancel: CancellationToken,
    leader: watch::Receiver<bool>,
    passes: watch::Receiver<u64>,
    join: Option<JoinHandle<()>>,
}

impl MaintenanceHandle {
    /// Whether this process leads maintenance now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Leadership as it changes (`true` while this process leads).
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// The number of passes that completed without error since the start, as it
    /// changes.
    pub fn passes(&self) -> watch::Receiver<u64> {
        self.passes.clone()
    }

    /// Stops the task, waiting for a pass in progress to end, and releases the
    /// leadership if this process had it.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(join) = self.join.take()
            && let Err(e) = join.await
        {
            tracing::error!(error = %e, "the maintenance task failed");
        }
    }
}

impl Drop for MaintenanceHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Task {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    config: MaintenanceConfig,
    cancel: CancellationToken,
    leader: watch::Sender<bool>,
    passes: watch::Sender<u64>,
}

/// Why a term of leadership ended.
enum TermEnd {
    Cancelled,
    ConnectionLost,
}

impl Task {
    fn retry_period(&self) -> Duration {
        self.config.retry_period.max(MIN_PERIOD)
    }

    fn interval(&self) -> Duration {
        self.config.interval.max(MIN_PERIOD)
    }

    /// Sleeps on the clock until `deadline`; `false` if cancelled first.
    async fn sleep_until(&self, deadline: DateTime<Utc>) -> bool {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => false,
            () = self.clock.sleep_until(deadline) => true,
        }
    }

    async fn run(self) {
        tracing::debug!("maintenance started");
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            let contended = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                contended = self.try_lead() => contended,
            };
            match contended {
                Ok(Some(conn)) => {
                    self.leader.send_replace(true);
                    tracing::info!("leading partition maintenance");
                    let end = self.lead(conn).await;
                    self.leader.send_replace(false);
                    match end {
                        TermEnd::Cancelled => break,
                        // Contend again at once: the lock is free unless another took it.
                        TermEnd::ConnectionLost => continue,
                    }
                }
                Ok(None) => tracing::debug!("another process leads partition maintenance"),
                Err(e) => tracing::warn!(error = %e, "cannot contend for maintenance leadership"),
            }
            let retry = after(self.clock.now(), self.retry_period());
            if !self.sleep_until(retry).await {
                break;
            }
        }
        tracing::debug!("maintenance stopped");
    }

    /// A dedicated connection holding the leader's lock, or `None` if another holds it.
    async fn try_lead(&self) -> Result<Option<PgConnection>, MaintenanceError> {
        let options = (*self.pool.connect_options())
            .clone()
            .application_name(MAINTENANCE_APPLICATION_NAME);
        let connect = PgConnection::connect_with(&options);
        let mut conn = match tokio::time::timeout(CONNECTION_TIMEOUT, connect).await {
            Ok(conn) => conn.map_err(db_err("connecting for maintenance leadership"))?,
            Err(_) => {
                return Err(MaintenanceError::Timeout {
                    doing: "connecting for maintenance leadership",
                    after: CONNECTION_TIMEOUT,
                });
            }
        };
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(self.config.lock_key)
            .fetch_one(&mut conn)
            .await
            .map_err(db_err("taking the maintenance leader lock"))?;
        if locked {
            Ok(Some(conn))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Leads until cancelled or until the connection holding the lock breaks.
    async fn lead(&self, mut conn: PgConnection) -> TermEnd {
        let mut next_pass = self.clock.now();
        let mut next_check = after(next_pass, self.retry_period());
        loop {
            let now = self.clock.now();
            if now >= next_check || now >= next_pass {
                // Check before every pass too: no pass after the lock is gone.
                if let Err(e) = check(&mut conn).await {
                    tracing::warn!(error = %e, "lost the maintenance leader connection");
                    return TermEnd::ConnectionLost;
                }
                next_check = after(now, self.retry_period());
            }
            if now >= next_pass {
                next_pass = match Maintenance::run_once(&self.pool, now, &self.config).await {
                    Ok(report) => {
                        tracing::info!(
                            created = report.partitions.created.len(),
                            dropped = report.dropped.len(),
                            deleted_notifications = report.deleted_notifications,
                            "maintenance pass done"
                        );
                        self.passes.send_modify(|n| *n += 1);
                        // Counted from the pass's start, so a clock moved meanwhile counts.
                        after(now, self.interval())
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "maintenance pass failed; retrying");
                        after(now, self.retry_period())
                    }
                };
            }
            if !self.sleep_until(next_pass.min(next_check)).await {
                release(conn, self.config.lock_key).await;
                return TermEnd::Cancelled;
            }
        }
    }
}

/// Checks that the leader's connection (and so its session lock) is still there.
async fn check(conn: &mut PgConnection) -> Result<(), MaintenanceError> {
    let ping = sqlx::query("SELECT 1").execute(&mut *conn);
    match tokio::time::timeout(CONNECTION_TIMEOUT, ping).await {
        Ok(result) => result
            .map(|_| ())
            .map_err(db_err("checking the maintenance leader connection")),
        Err(_) => Err(MaintenanceError::Timeout {
            doing: "checking the maintenance leader connection",
            after: CONNECTION_TIMEOUT,
        }),
    }
}

/// Releases the leader's lock and closes its connection (closing alone would release
/// it too; unlocking first makes it explicit).
async fn release(mut conn: PgConnection, key: i64) {
    match sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .fetch_one(&mut conn)
        .await
    {
        Ok(true) => tracing::info!("released maintenance leadership"),
        Ok(false) => tracing::warn!("the maintenance leader lock was not held at release"),
        Err(e) => tracing::warn!(error = %e, "cannot release the maintenance leader lock"),
    }
    let _ = conn.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn months_name_and_bound_partitions() {
        let jan = Month::of(at("2026-01-31T23:59:59Z"));
        assert_eq!(jan.suffix(), "y2026m01");
        assert_eq!(jan.plus(11).unwrap().suffix(), "y2026m12");
        assert_eq!(jan.plus(12).unwrap().suffix(), "y2027m01");
        assert_eq!(jan.plus(-1).unwrap().suffix(), "y2025m12");
        assert_eq!(jan.start().unwrap(), at("2026-01-01T00:00:00Z"));
        assert_eq!(jan.plus(1).unwrap().literal(), "'2026-02-01 00:00:00+00'");
        assert_eq!(Month::parse_suffix("y2026m01"), Some(jan));
        for bad in [
            "y2026m13", "y2026m00", "y202m011", "x2026m01", "y2026m1", "y+026m01",
        ] {
            assert_eq!(Month::parse_suffix(bad), None, "{bad}");
        }
        assert!(Month::of(at("9999-12-01T00:00:00Z")).plus(1).is_err());
    }

    #[test]
    fn only_monthly_partitions_of_the_table_have_a_month() {
        let t = &TABLES[0];
        assert!(t.month_of("job_executions_y2026m02").is_some());
        assert!(t.month_of("job_executions_default").is_none());
        assert!(t.month_of("job_logs_y2026m02").is_none());
        assert!(t.month_of("job_executions_y2026m02_old").is_none());
    }
}
