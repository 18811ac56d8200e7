//! Partition upkeep, retention and maintenance leadership against a real server.

#![allow(clippy::unwrap_used, reason = "test helpers panic on the unexpected")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chronos::clock::{Clock, ManualClock, SystemClock};
use chronos::testkit::run;
use chronos_postgres::testing::TestDb;
use chronos_postgres::{
    MAINTENANCE_LOCK_KEY, Maintenance, MaintenanceConfig, MaintenanceError, MaintenanceHandle,
    PgPool, connect_with, delete_expired_notifications, drop_expired_partitions, ensure_partitions,
};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Waits (in real time, at most [`WAIT`]) until the condition, which may `.await`, holds.
macro_rules! eventually {
    ($what:expr, $cond:expr) => {{
        let deadline = Instant::now() + WAIT;
        loop {
            if $cond {
                break;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {}", $what);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }};
}

async fn second_pool(db: &TestDb) -> PgPool {
    connect_with(db.options.clone(), PgPoolOptions::new().max_connections(4))
        .await
        .unwrap()
}

/// The partitions of `parent`, sorted by name.
async fn partitions(pool: &PgPool, parent: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = to_regclass($1) ORDER BY c.relname",
    )
    .bind(parent)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn names(parent: &str, suffixes: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = suffixes.iter().map(|s| format!("{parent}_{s}")).collect();
    v.sort();
    v
}

async fn insert_job(pool: &PgPool) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO jobs (id, user_id, name, job_type, schedule_type, handler) \
         VALUES ($1, $2, 'partitioned', 'one-time', 'immediate', 'echo')",
    )
    .bind(id)
    .bind(Uuid::nil())
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn insert_execution(pool: &PgPool, job: Uuid, created_at: DateTime<Utc>) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO job_executions (id, job_id, user_id, job_name, scheduled_for, due_at, \
                                     status, created_at) \
         VALUES ($1, $2, $3, 'partitioned', $4, $4, 'success', $4)",
    )
    .bind(id)
    .bind(job)
    .bind(Uuid::nil())
    .bind(created_at)
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn insert_log(pool: &PgPool, job: Uuid, at: DateTime<Utc>) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO job_logs (id, execution_id, job_id, user_id, level, message, \"timestamp\") \
         VALUES ($1, $2, $3, $4, 'info', 'hello', $5)",
    )
    .bind(id)
    .bind(Uuid::now_v7())
    .bind(job)
    .bind(Uuid::nil())
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// The partition a row of `table` with this id lives in.
async fn partition_of(pool: &PgPool, table: &str, id: Uuid) -> String {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT tableoid::regclass::text FROM {table} WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The backends holding the maintenance leader lock on this database.
async fn lock_holders(pool: &PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
    )
    .bind(MAINTENANCE_LOCK_KEY >> 32)
    .bind(MAINTENANCE_LOCK_KEY & 0xffff_ffff)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn wait_passes(handle: &MaintenanceHandle, at_least: u64) {
    let mut passes = handle.passes();
    tokio::time::timeout(WAIT, passes.wait_for(|n| *n >= at_least))
        .await
        .unwrap_or_else(|_| panic!("no maintenance pass number {at_least}"))
        .unwrap();
}

fn leader_count(handles: &[&MaintenanceHandle]) -> usize {
    handles.iter().filter(|h| h.is_leader()).count()
}

#[test]
fn ensure_partitions_is_idempotent_and_follows_the_month() {
    run(async {
        let db = TestDb::create().await;
        let report = ensure_partitions(&db.pool, t("2026-01-31T23:59:59Z"), 2)
            .await
            .unwrap();
        let created: Vec<&str> = report.created.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            created,
            [
                "job_executions_y2026m01",
                "job_executions_y2026m02",
                "job_executions_y2026m03",
                "job_logs_y2026m01",
                "job_logs_y2026m02",
                "job_logs_y2026m03",
            ]
        );
        assert!(report.created.iter().all(|c| c.moved_rows == 0));
        assert!(report.existing.is_empty());

        // Again: nothing to do.
        let again = ensure_partitions(&db.pool, t("2026-01-31T23:59:59Z"), 2)
            .await
            .unwrap();
        assert!(again.created.is_empty());
        assert_eq!(again.existing.len(), 6);

        // One second later it is February: only April is new.
        let feb = ensure_partitions(&db.pool, t("2026-02-01T00:00:00Z"), 2)
            .await
            .unwrap();
        let created: Vec<&str> = feb.created.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(created, ["job_executions_y2026m04", "job_logs_y2026m04"]);

        // Across a year boundary.
        let dec = ensure_partitions(&db.pool, t("2026-12-15T12:00:00Z"), 1)
            .await
            .unwrap();
        let created: Vec<&str> = dec.created.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            created,
            [
                "job_executions_y2026m12",
                "job_executions_y2027m01",
                "job_logs_y2026m12",
                "job_logs_y2027m01",
            ]
        );
        for parent in ["job_executions", "job_logs"] {
            assert_eq!(
                partitions(&db.pool, parent).await,
                names(
                    parent,
                    &[
                        "default", "y2026m01", "y2026m02", "y2026m03", "y2026m04", "y2026m12",
                        "y2027m01"
                    ]
                )
            );
        }
    });
}

#[test]
fn the_maintenance_loop_creates_partitions_across_a_month_boundary() {
    run(async {
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(t("2026-01-31T23:59:59Z")));
        let config = MaintenanceConfig {
            months_ahead: 2,
            interval: Duration::from_secs(3600),
            ..MaintenanceConfig::default()
        };
        let handle = Maintenance::spawn(db.pool.clone(), clock.clone(), config);
        wait_passes(&handle, 1).await;
        assert!(handle.is_leader());
        for parent in ["job_executions", "job_logs"] {
            assert_eq!(
                partitions(&db.pool, parent).await,
                names(parent, &["default", "y2026m01", "y2026m02", "y2026m03"])
            );
        }

        // The next pass is an interval later, in February: April appears.
        clock.advance(Duration::from_secs(3600));
        wait_passes(&handle, 2).await;
        for parent in ["job_executions", "job_logs"] {
            assert_eq!(
                partitions(&db.pool, parent).await,
                names(
                    parent,
                    &["default", "y2026m01", "y2026m02", "y2026m03", "y2026m04"]
                )
            );
        }

        // Rows land in their month's partition; months without one land in the default.
        let job = insert_job(&db.pool).await;
        let cases = [
            ("2026-01-01T00:00:00Z", "y2026m01"),
            ("2026-01-31T23:59:59.999999Z", "y2026m01"),
            ("2026-02-01T00:00:00Z", "y2026m02"),
            ("2026-03-15T08:30:00Z", "y2026m03"),
            ("2026-04-30T23:59:59.999999Z", "y2026m04"),
            ("2026-05-01T00:00:00Z", "default"),
            ("2031-07-01T00:00:00Z", "default"),
            ("2025-12-31T23:59:59.999999Z", "default"),
            ("1999-01-01T00:00:00Z", "default"),
        ];
        for (at, suffix) in cases {
            let execution = insert_execution(&db.pool, job, t(at)).await;
            assert_eq!(
                partition_of(&db.pool, "job_executions", execution).await,
                format!("job_executions_{suffix}"),
                "execution created at {at}"
            );
            let log = insert_log(&db.pool, job, t(at)).await;
            assert_eq!(
                partition_of(&db.pool, "job_logs", log).await,
                format!("job_logs_{suffix}"),
                "log written at {at}"
            );
        }

        handle.shutdown().await;
        assert!(
            lock_holders(&db.pool).await.is_empty(),
            "shutdown releases the lock"
        );
    });
}

#[test]
fn the_maintenance_loop_applies_retention_as_the_clock_moves() {
    run(async {
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(t("2026-01-10T00:00:00Z")));
        let config = MaintenanceConfig {
            months_ahead: 1,
            retention_months: Some(1),
            interval: Duration::from_secs(3600),
            ..MaintenanceConfig::default()
        };
        let handle = Maintenance::spawn(db.pool.clone(), clock.clone(), config);
        wait_passes(&handle, 1).await;
        assert_eq!(
            partitions(&db.pool, "job_logs").await,
            names("job_logs", &["default", "y2026m01", "y2026m02"])
        );

        // Two and a half months later: March and April are created, January is dropped
        // (the cutoff is February 1st), February is kept.
        clock.set(t("2026-03-25T00:00:00Z"));
        wait_passes(&handle, 2).await;
        for parent in ["job_executions", "job_logs"] {
            assert_eq!(
                partitions(&db.pool, parent).await,
                names(parent, &["default", "y2026m02", "y2026m03", "y2026m04"])
            );
        }
        handle.shutdown().await;
    });
}

#[test]
fn rows_in_the_default_partition_move_into_a_new_partition() {
    run(async {
        let db = TestDb::create().await;
        let now = t("2026-03-10T00:00:00Z");
        ensure_partitions(&db.pool, now, 0).await.unwrap(); // March only
        let job = insert_job(&db.pool).await;

        // Written before May's and April's partitions exist: they land in the default.
        let may = [
            "2026-05-01T00:00:00Z",
            "2026-05-17T10:00:00Z",
            "2026-05-31T23:59:59.999999Z",
        ];
        let mut moving = Vec::new();
        for at in may {
            moving.push((
                insert_execution(&db.pool, job, t(at)).await,
                insert_log(&db.pool, job, t(at)).await,
            ));
        }
        let staying = (
            insert_execution(&db.pool, job, t("2026-06-01T00:00:00Z")).await,
            insert_log(&db.pool, job, t("2026-06-01T00:00:00Z")).await,
        );
        for (execution, log) in &moving {
            assert_eq!(
                partition_of(&db.pool, "job_executions", *execution).await,
                "job_executions_default"
            );
            assert_eq!(
                partition_of(&db.pool, "job_logs", *log).await,
                "job_logs_default"
            );
        }
        let (executions, logs) = (
            count(&db.pool, "job_executions").await,
            count(&db.pool, "job_logs").await,
        );

        // Creating April and May moves May's rows out of the default partition.
        let report = ensure_partitions(&db.pool, now, 2).await.unwrap();
        let created: Vec<(&str, u64)> = report
            .created
            .iter()
            .map(|c| (c.name.as_str(), c.moved_rows))
            .collect();
        assert_eq!(
            created,
            [
                ("job_executions_y2026m04", 0),
                ("job_executions_y2026m05", 3),
                ("job_logs_y2026m04", 0),
                ("job_logs_y2026m05", 3),
            ]
        );
        for (execution, log) in &moving {
            assert_eq!(
                partition_of(&db.pool, "job_executions", *execution).await,
                "job_executions_y2026m05"
            );
            assert_eq!(
                partition_of(&db.pool, "job_logs", *log).await,
                "job_logs_y2026m05"
            );
        }
        assert_eq!(
            partition_of(&db.pool, "job_executions", staying.0).await,
            "job_executions_default"
        );
        assert_eq!(
            partition_of(&db.pool, "job_logs", staying.1).await,
            "job_logs_default"
        );
        // Nothing lost, nothing doubled.
        assert_eq!(count(&db.pool, "job_executions").await, executions);
        assert_eq!(count(&db.pool, "job_logs").await, logs);
        assert_eq!(count(&db.pool, "job_executions_y2026m05").await, 3);
        assert_eq!(count(&db.pool, "job_logs_y2026m05").await, 3);

        // The moved-into partition is a full partition: the same indexes as one created
        // empty, the foreign key, and the primary key.
        for parent in ["job_executions", "job_logs"] {
            let indexes = |name: String| {
                let pool = db.pool.clone();
                async move {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_index WHERE indrelid = to_regclass($1)",
                    )
                    .bind(name)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                    n
                }
            };
            let april = indexes(format!("{parent}_y2026m04")).await;
            assert!(
                april >= 2,
                "{parent}: the primary key and at least one index"
            );
            assert_eq!(
                indexes(format!("{parent}_y2026m05")).await,
                april,
                "{parent}"
            );
        }
        let foreign_keys: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_constraint \
             WHERE conrelid = to_regclass('job_executions_y2026m05') AND contype = 'f'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(foreign_keys, 1);
        let orphan = sqlx::query(
            "INSERT INTO job_executions (id, job_id, user_id, job_name, scheduled_for, due_at, \
                                         status, created_at) \
             VALUES ($1, $2, $2, 'x', $3, $3, 'queued', $3)",
        )
        .bind(Uuid::now_v7())
        .bind(Uuid::now_v7())
        .bind(t("2026-05-05T00:00:00Z"))
        .execute(&db.pool)
        .await
        .unwrap_err();
        assert_eq!(
            orphan.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("23503"),
            "foreign key violation: {orphan}"
        );
        let duplicate = sqlx::query(
            "INSERT INTO job_logs (id, execution_id, job_id, user_id, level, message, \"timestamp\") \
             VALUES ($1, $1, $1, $1, 'info', 'again', $2)",
        )
        .bind(moving[0].1)
        .bind(t(may[0]))
        .execute(&db.pool)
        .await
        .unwrap_err();
        assert_eq!(
            duplicate
                .as_database_error()
                .and_then(|e| e.code())
                .as_deref(),
            Some("23505"),
            "unique violation: {duplicate}"
        );
    });
}

#[test]
fn concurrent_upkeep_with_concurrent_inserts_loses_nothing() {
    run(async {
        const PROCESSES: usize = 4;
        const MONTHS_AHEAD: u32 = 5;
        let db = TestDb::create().await;
        let now = t("2026-07-20T00:00:00Z");
        let job = insert_job(&db.pool).await;

        // Inserts into the months being created, while four processes create them.
        let mut inserters = Vec::new();
        for task in 0..4_i64 {
            let pool = second_pool(&db).await;
            inserters.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..150_i64 {
                    // Up to 2026-12-26, always one of the months being created.
                    let at = now + chrono::Duration::days((i * 4 + task) % 160);
                    ids.push((insert_execution(&pool, job, at).await, at));
                }
                ids
            }));
        }
        let mut tasks = Vec::new();
        for _ in 0..PROCESSES {
            let pool = second_pool(&db).await;
            tasks.push(tokio::spawn(async move {
                let mut reports = Vec::new();
                for _ in 0..3 {
                    reports.push(ensure_partitions(&pool, now, MONTHS_AHEAD).await.unwrap());
                }
                reports
            }));
        }
        let mut created = Vec::new();
        for task in tasks {
            for report in task.await.unwrap() {
                created.extend(report.created.into_iter().map(|c| c.name));
            }
        }
        created.sort();
        let expected: Vec<String> = ["job_executions", "job_logs"]
            .iter()
            .flat_map(|p| {
                [
                    "y2026m07", "y2026m08", "y2026m09", "y2026m10", "y2026m11", "y2026m12",
                ]
                .iter()
                .map(move |s| format!("{p}_{s}"))
            })
            .collect();
        assert_eq!(created, expected, "each partition created exactly once");

        let mut rows = Vec::new();
        for inserter in inserters {
            rows.extend(inserter.await.unwrap());
        }
        assert_eq!(count(&db.pool, "job_executions").await, rows.len() as i64);
        for (id, at) in rows {
            let month = format!("job_executions_y{}", at.format("%Ym%m"));
            assert_eq!(partition_of(&db.pool, "job_executions", id).await, month);
        }
        assert_eq!(count(&db.pool, "job_executions_default").await, 0);
    });
}

#[test]
fn retention_drops_old_partitions_and_keeps_recent_ones() {
    run(async {
        let db = TestDb::create().await;
        // 2024-01 .. 2025-12.
        ensure_partitions(&db.pool, t("2024-01-15T00:00:00Z"), 23)
            .await
            .unwrap();
        // A partition maintenance did not create, with another name: never touched.
        sqlx::query(
            "CREATE TABLE job_executions_archive PARTITION OF job_executions \
             FOR VALUES FROM ('2020-01-01 00:00:00+00') TO ('2020-02-01 00:00:00+00')",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let job = insert_job(&db.pool).await;
        let old_in_partition = insert_execution(&db.pool, job, t("2024-03-03T00:00:00Z")).await;
        let old_in_default = insert_execution(&db.pool, job, t("2023-06-01T00:00:00Z")).await;
        let archived = insert_execution(&db.pool, job, t("2020-01-05T00:00:00Z")).await;
        let kept = insert_execution(&db.pool, job, t("2024-06-01T00:00:00Z")).await;
        let future_in_default = insert_execution(&db.pool, job, t("2026-09-01T00:00:00Z")).await;
        let old_log = insert_log(&db.pool, job, t("2022-01-01T00:00:00Z")).await;
        let kept_log = insert_log(&db.pool, job, t("2025-01-01T00:00:00Z")).await;

        // On 2025-06-15 with 12 months: the cutoff is 2024-06-01.
        let now = t("2025-06-15T00:00:00Z");
        let dropped = drop_expired_partitions(&db.pool, now, 12).await.unwrap();
        let mut expected = Vec::new();
        for parent in ["job_executions", "job_logs"] {
            for m in 1..=5 {
                expected.push(format!("{parent}_y2024m{m:02}"));
            }
        }
        assert_eq!(dropped, expected);

        let kept_months: Vec<String> = (6..=12)
            .map(|m| format!("y2024m{m:02}"))
            .chain((1..=12).map(|m| format!("y2025m{m:02}")))
            .collect();
        for parent in ["job_executions", "job_logs"] {
            let mut want: Vec<String> = kept_months
                .iter()
                .map(|s| format!("{parent}_{s}"))
                .collect();
            want.push(format!("{parent}_default"));
            if parent == "job_executions" {
                want.push("job_executions_archive".to_owned());
            }
            want.sort();
            assert_eq!(partitions(&db.pool, parent).await, want);
        }

        let exists = |table: &'static str, id: Uuid| {
            let pool = db.pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM {table} WHERE id = $1"
                )))
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
                n == 1
            }
        };
        assert!(!exists("job_executions", old_in_partition).await);
        assert!(
            !exists("job_executions", old_in_default).await,
            "old rows leave the default too"
        );
        assert!(!exists("job_logs", old_log).await);
        assert!(
            exists("job_executions", archived).await,
            "foreign partitions are left alone"
        );
        assert!(exists("job_executions", kept).await);
        assert!(exists("job_executions", future_in_default).await);
        assert!(exists("job_logs", kept_log).await);

        // Again: nothing more to drop.
        assert!(
            drop_expired_partitions(&db.pool, now, 12)
                .await
                .unwrap()
                .is_empty()
        );

        // Without retention, a pass drops nothing.
        let keep_forever = MaintenanceConfig {
            retention_months: None,
            months_ahead: 0,
            ..MaintenanceConfig::default()
        };
        let report = Maintenance::run_once(&db.pool, t("2040-01-01T00:00:00Z"), &keep_forever)
            .await
            .unwrap();
        assert!(report.dropped.is_empty());
        assert_eq!(
            report
                .partitions
                .created
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["job_executions_y2040m01", "job_logs_y2040m01"]
        );

        // Retention 0 keeps the current month only; the default partition stays.
        let dropped = drop_expired_partitions(&db.pool, t("2040-01-20T00:00:00Z"), 0)
            .await
            .unwrap();
        assert_eq!(dropped.len(), 2 * kept_months.len());
        for parent in ["job_executions", "job_logs"] {
            let mut want = names(parent, &["default", "y2040m01"]);
            if parent == "job_executions" {
                want.push("job_executions_archive".to_owned());
                want.sort();
            }
            assert_eq!(partitions(&db.pool, parent).await, want);
        }
        assert!(exists("job_executions", archived).await);
        assert!(!exists("job_executions", future_in_default).await);
    });
}

/// A failure notification of `execution` (created at `execution_created_at`) with this
/// status, recorded at `created_at` and, unless pending, settled at `finished_at`.
async fn insert_notification(
    pool: &PgPool,
    job: Uuid,
    (execution, execution_created_at): (Uuid, DateTime<Utc>),
    status: &str,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications (id, channel, job_id, user_id, execution_id, \
                                    execution_created_at, scheduled_for, status, attempts, \
                                    due_at, created_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, 1, $8, $8, $9)",
    )
    .bind(id)
    .bind(format!("channel-{id}"))
    .bind(job)
    .bind(Uuid::nil())
    .bind(execution)
    .bind(execution_created_at)
    .bind(status)
    .bind(created_at)
    .bind(finished_at)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// Settled notifications go once settled before the retention cutoff, with the pass
/// that drops the partitions; pending ones stay however old, and so do recent ones.
#[test]
fn retention_deletes_settled_notifications_and_keeps_pending_ones() {
    run(async {
        let db = TestDb::create().await;
        let pool = &db.pool;
        let job = insert_job(pool).await;
        let old_at = t("2024-02-10T00:00:00Z");
        let old = (insert_execution(pool, job, old_at).await, old_at);
        let recent_at = t("2025-05-01T00:00:00Z");
        let recent = (insert_execution(pool, job, recent_at).await, recent_at);
        let settled_at = |s| Some(t(s));

        let sent = insert_notification(
            pool,
            job,
            old,
            "sent",
            old_at,
            settled_at("2024-02-10T00:01:00Z"),
        )
        .await;
        let skipped = insert_notification(
            pool,
            job,
            old,
            "skipped",
            old_at,
            settled_at("2024-05-31T23:59:59Z"),
        )
        .await;
        let failed = insert_notification(
            pool,
            job,
            old,
            "failed",
            old_at,
            settled_at("2024-03-01T00:00:00Z"),
        )
        .await;
        // Settled on the cutoff itself, months after its execution: kept.
        let late = insert_notification(
            pool,
            job,
            old,
            "failed",
            old_at,
            settled_at("2024-06-01T00:00:00Z"),
        )
        .await;
        let owed = insert_notification(pool, job, old, "pending", old_at, None).await;
        let fresh = insert_notification(
            pool,
            job,
            recent,
            "sent",
            recent_at,
            settled_at("2025-05-01T00:00:05Z"),
        )
        .await;
        let ids = || async {
            let mut ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM notifications")
                .fetch_all(pool)
                .await
                .unwrap();
            ids.sort();
            ids
        };
        let sorted = |mut v: Vec<Uuid>| {
            v.sort();
            v
        };

        // Without retention, a pass deletes nothing.
        let now = t("2025-06-15T00:00:00Z");
        let keep_forever = MaintenanceConfig {
            retention_months: None,
            months_ahead: 0,
            ..MaintenanceConfig::default()
        };
        let report = Maintenance::run_once(pool, now, &keep_forever)
            .await
            .unwrap();
        assert_eq!(report.deleted_notifications, 0);
        assert_eq!(ids().await.len(), 6);

        // On 2025-06-15 with 12 months: the cutoff is 2024-06-01.
        let config = MaintenanceConfig {
            retention_months: Some(12),
            months_ahead: 0,
            ..MaintenanceConfig::default()
        };
        let report = Maintenance::run_once(pool, now, &config).await.unwrap();
        assert_eq!(report.deleted_notifications, 3);
        assert_eq!(
            ids().await,
            sorted(vec![late, owed, fresh]),
            "gone: {:?}",
            [sent, skipped, failed]
        );
        assert_eq!(
            delete_expired_notifications(pool, now, 12).await.unwrap(),
            0
        );

        // Years later with retention 0, everything settled goes; the pending one stays.
        let later = t("2031-01-01T00:00:00Z");
        assert_eq!(
            delete_expired_notifications(pool, later, 0).await.unwrap(),
            2
        );
        assert_eq!(ids().await, vec![owed]);
    });
}

#[test]
fn upkeep_gives_up_instead_of_stalling_writers_behind_a_long_transaction() {
    run(async {
        let db = TestDb::create().await;
        let job = insert_job(&db.pool).await;
        // A write transaction on job_executions that stays open.
        let mut long = db.pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO job_executions (id, job_id, user_id, job_name, scheduled_for, due_at, \
                                         status) \
             VALUES ($1, $2, $2, 'long', now(), now(), 'running')",
        )
        .bind(Uuid::now_v7())
        .bind(job)
        .execute(&mut *long)
        .await
        .unwrap();

        let started = Instant::now();
        let e = ensure_partitions(&db.pool, t("2026-03-01T00:00:00Z"), 0)
            .await
            .unwrap_err();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(4) && waited < Duration::from_secs(15),
            "gave up after {waited:?}"
        );
        let MaintenanceError::Database { source, .. } = &e else {
            panic!("expected a database error, got {e:?}");
        };
        assert_eq!(
            source.as_database_error().and_then(|d| d.code()).as_deref(),
            Some("55P03"),
            "lock_not_available: {e}"
        );
        assert!(e.to_string().contains("job_executions_y2026m03"), "{e}");
        // Nothing half-done is left behind.
        assert_eq!(
            partitions(&db.pool, "job_executions").await,
            ["job_executions_default"]
        );

        // Once the transaction ends, the next pass succeeds.
        long.commit().await.unwrap();
        let report = ensure_partitions(&db.pool, t("2026-03-01T00:00:00Z"), 0)
            .await
            .unwrap();
        assert_eq!(report.created.len(), 2);
    });
}

/// Whether some backend holds `mode` on `relation`.
async fn lock_granted(pool: &PgPool, relation: &str, mode: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks \
                        WHERE relation = to_regclass($1) AND mode = $2 AND granted)",
    )
    .bind(relation)
    .bind(mode)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Regression: upkeep used to take the parent's lock, then wait for the default
/// partition while holding it. A statement that reads the table before writing it
/// (the store's `WITH before AS (SELECT … FROM job_executions) UPDATE job_executions
/// …`) locks the default partition first and the parent for writing second, so the two
/// deadlocked and PostgreSQL aborted one of them: on a fresh database, the outcome of
/// an attempt that finished while the first partitions were created was lost (and the
/// job run again after its lease). Now upkeep only waits while it holds no table lock.
#[test]
fn upkeep_never_deadlocks_with_a_statement_that_reads_before_it_writes() {
    run(async {
        let db = TestDb::create().await;
        let job = insert_job(&db.pool).await;
        // No monthly partition yet: the row is in the default partition.
        let id = insert_execution(&db.pool, job, t("2026-03-10T00:00:00Z")).await;
        assert_eq!(
            partition_of(&db.pool, "job_executions", id).await,
            "job_executions_default"
        );

        // The writer reads (ACCESS SHARE on the parent and the default partition)...
        let mut writer = db.pool.begin().await.unwrap();
        sqlx::query("SET LOCAL statement_timeout = '10s'")
            .execute(&mut *writer)
            .await
            .unwrap();
        let status: String = sqlx::query_scalar("SELECT status FROM job_executions WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *writer)
            .await
            .unwrap();
        assert_eq!(status, "success");

        // ... upkeep starts and takes the parent (the old code then waited for the
        // default partition, holding it) ...
        let pool = db.pool.clone();
        let upkeep =
            tokio::spawn(
                async move { ensure_partitions(&pool, t("2026-03-01T00:00:00Z"), 0).await },
            );
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline
            && !lock_granted(&db.pool, "job_executions", "ShareRowExclusiveLock").await
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // ... and the writer writes: neither side may be aborted as a deadlock victim.
        let updated = sqlx::query(
            "WITH before AS (SELECT status FROM job_executions WHERE id = $1) \
             UPDATE job_executions SET status = 'failed' \
             WHERE id = $1 AND (SELECT status FROM before) = 'success'",
        )
        .bind(id)
        .execute(&mut *writer)
        .await;
        let updated = match updated {
            Ok(done) => done.rows_affected(),
            Err(e) => panic!("the writer was aborted: {e}"),
        };
        assert_eq!(updated, 1);
        writer.commit().await.unwrap();

        let report = tokio::time::timeout(WAIT, upkeep)
            .await
            .expect("upkeep finishes once the writer is done")
            .unwrap()
            .unwrap_or_else(|e| panic!("upkeep was aborted: {e}"));
        let created: Vec<(&str, u64)> = report
            .created
            .iter()
            .map(|c| (c.name.as_str(), c.moved_rows))
            .collect();
        assert_eq!(
            created,
            [("job_executions_y2026m03", 1), ("job_logs_y2026m03", 0)]
        );
        assert_eq!(
            partition_of(&db.pool, "job_executions", id).await,
            "job_executions_y2026m03"
        );
        let status: String = sqlx::query_scalar("SELECT status FROM job_executions WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(status, "failed");
    });
}

/// Upkeep keeps trying while a reader holds the default partition, and goes through
/// once it lets go, well within its budget.
#[test]
fn upkeep_waits_out_a_short_reader_of_the_default_partition() {
    run(async {
        let db = TestDb::create().await;
        let mut reader = db.pool.begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM job_executions_default")
            .fetch_one(&mut *reader)
            .await
            .unwrap();
        let pool = db.pool.clone();
        let started = Instant::now();
        let upkeep =
            tokio::spawn(
                async move { ensure_partitions(&pool, t("2026-03-01T00:00:00Z"), 0).await },
            );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!upkeep.is_finished(), "the default partition is busy");
        reader.commit().await.unwrap();
        let report = tokio::time::timeout(WAIT, upkeep)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(report.created.len(), 2);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    });
}

fn fast_config() -> MaintenanceConfig {
    MaintenanceConfig {
        months_ahead: 1,
        retention_months: None,
        interval: Duration::from_secs(3600),
        retry_period: Duration::from_millis(100),
        ..MaintenanceConfig::default()
    }
}

#[test]
fn exactly_one_of_two_processes_leads_and_the_other_takes_over() {
    run(async {
        let db = TestDb::create().await;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let a = Maintenance::spawn(second_pool(&db).await, clock.clone(), fast_config());
        let b = Maintenance::spawn(second_pool(&db).await, clock.clone(), fast_config());
        eventually!("a leader", leader_count(&[&a, &b]) == 1);
        let holders = lock_holders(&db.pool).await;
        assert_eq!(holders.len(), 1);
        // Followers keep retrying; the leadership stays put.
        let first_is_a = a.is_leader();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(leader_count(&[&a, &b]), 1);
        assert_eq!(a.is_leader(), first_is_a);
        assert_eq!(lock_holders(&db.pool).await, holders);

        // The leader's connection is killed: the lock is freed, and one of the two
        // (whichever is first) leads again on a new connection.
        let killed = holders[0];
        let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(killed)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert!(terminated);
        eventually!("a new leader after the kill", {
            let holders = lock_holders(&db.pool).await;
            holders.len() == 1 && holders[0] != killed && leader_count(&[&a, &b]) == 1
        });

        // The leader shuts down: the follower takes over within its retry period.
        let (leader, follower) = if a.is_leader() { (a, b) } else { (b, a) };
        let before = lock_holders(&db.pool).await;
        leader.shutdown().await;
        let stopped = Instant::now();
        eventually!("the follower to take over", follower.is_leader());
        let took = stopped.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "took over after {took:?} with a 100 ms retry period"
        );
        let after = lock_holders(&db.pool).await;
        assert_eq!(after.len(), 1);
        assert_ne!(after, before);

        // Dropping a handle stops it too, and the lock goes with it.
        drop(follower);
        eventually!(
            "the lock to be released",
            lock_holders(&db.pool).await.is_empty()
        );
    });
}

#[test]
fn different_databases_elect_their_own_leaders() {
    run(async {
        let (one, two) = (TestDb::create().await, TestDb::create().await);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let a = Maintenance::spawn(one.pool.clone(), clock.clone(), fast_config());
        let b = Maintenance::spawn(two.pool.clone(), clock.clone(), fast_config());
        eventually!("both to lead", a.is_leader() && b.is_leader());
        a.shutdown().await;
        b.shutdown().await;
    });
}
