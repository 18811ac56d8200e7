//! Migrations against a real server: a fresh database, a re-run, and concurrent runs.

#![allow(clippy::unwrap_used, reason = "test helpers panic on the unexpected")]

use std::sync::Arc;

use chronos::testkit::run;
use chronos_postgres::testing::TestDb;
use chronos_postgres::{PgPool, connect_with, migrate};
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Barrier;

/// Every relation the migrations create, with its `pg_class.relkind`: r table,
/// p partitioned table, i index, I partitioned index, v view, S sequence.
const EXPECTED: &[(&str, &str)] = &[
    ("users", "r"),
    ("users_pkey", "i"),
    ("users_email_key", "i"),
    ("jobs", "r"),
    ("jobs_pkey", "i"),
    ("jobs_due_idx", "i"),
    ("jobs_scheduled_id_idx", "i"),
    ("jobs_owner_created_idx", "i"),
    ("jobs_owner_next_run_idx", "i"),
    ("jobs_owner_name_idx", "i"),
    ("jobs_owner_updated_idx", "i"),
    ("jobs_owner_status_idx", "i"),
    ("jobs_owner_upcoming_idx", "i"),
    ("job_executions", "p"),
    ("job_executions_pkey", "I"),
    ("job_executions_default", "r"),
    ("job_executions_id_idx", "I"),
    ("job_executions_job_idx", "I"),
    ("job_executions_running_idx", "I"),
    ("job_executions_pending_idx", "I"),
    ("job_logs", "p"),
    ("job_logs_pkey", "I"),
    ("job_logs_default", "r"),
    ("job_logs_execution_idx", "I"),
    ("queue_entries", "r"),
    ("queue_entries_pkey", "i"),
    ("queue_entries_ready_idx", "i"),
    ("queue_entries_leased_idx", "i"),
    ("queue_lease_token_seq", "S"),
    ("jobs_due_for_execution", "v"),
    ("job_execution_stats", "v"),
    // 0002
    ("notifications", "r"),
    ("notifications_pkey", "i"),
    ("notifications_occurrence_channel_key", "i"),
    ("notifications_due_idx", "i"),
    ("notifications_execution_idx", "i"),
    ("notifications_settled_idx", "i"),
];

/// The versions of the migration files shipped with the crate.
fn migration_versions() -> Vec<i64> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".sql"))
        .map(|name| name.split('_').next().unwrap().parse().unwrap())
        .collect();
    versions.sort_unstable();
    assert!(!versions.is_empty());
    versions
}

async fn relkind(pool: &PgPool, name: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relname = $1",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn assert_schema(pool: &PgPool) {
    for (name, kind) in EXPECTED {
        assert_eq!(
            relkind(pool, name).await,
            [kind.to_string()],
            "relation {name} should exist once with relkind {kind}"
        );
    }
    // The default partitions are attached as DEFAULT partitions of their parents.
    for (child, parent) in [
        ("job_executions_default", "job_executions"),
        ("job_logs_default", "job_logs"),
    ] {
        let bound: String = sqlx::query_scalar(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c \
             JOIN pg_inherits i ON i.inhrelid = c.oid \
             WHERE c.relname = $1 AND i.inhparent = to_regclass($2)",
        )
        .bind(child)
        .bind(parent)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(bound, "DEFAULT");
    }
    // Both views can be queried.
    for view in ["jobs_due_for_execution", "job_execution_stats"] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {view}")))
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(n, 0);
    }
}

async fn assert_migrations_recorded(pool: &PgPool) {
    let rows: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap();
    let expected: Vec<(i64, bool)> = migration_versions()
        .into_iter()
        .map(|v| (v, true))
        .collect();
    assert_eq!(rows, expected, "one successful row per migration");
}

#[test]
fn fresh_migration_creates_the_schema() {
    run(async {
        let db = TestDb::create_empty().await;
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(tables, 0, "an empty database to start from");

        migrate(&db.pool).await.unwrap();
        assert_schema(&db.pool).await;
        assert_migrations_recorded(&db.pool).await;

        // information_schema agrees on the tables and views.
        let mut names: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, table_type::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' \
             ORDER BY table_name",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        names.sort();
        let mut expected: Vec<(String, String)> = EXPECTED
            .iter()
            .filter_map(|(name, kind)| {
                let ty = match *kind {
                    "r" | "p" => "BASE TABLE",
                    "v" => "VIEW",
                    _ => return None,
                };
                Some((name.to_string(), ty.to_owned()))
            })
            .collect();
        expected.sort();
        assert_eq!(names, expected);
    });
}

#[test]
fn running_the_migrations_again_is_a_no_op() {
    run(async {
        let db = TestDb::create().await; // migrated once
        let before: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        migrate(&db.pool).await.unwrap();
        migrate(&db.pool).await.unwrap();
        let after: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        assert_eq!(before, after);
        assert_migrations_recorded(&db.pool).await;
        assert_schema(&db.pool).await;
    });
}

#[test]
fn concurrent_migrations_from_separate_pools_apply_once() {
    run(async {
        const PROCESSES: usize = 4;
        let db = TestDb::create_empty().await;
        let barrier = Arc::new(Barrier::new(PROCESSES));
        let mut tasks = Vec::new();
        for _ in 0..PROCESSES {
            let options = db.options.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                // Each task is a process of its own: its own pool.
                let pool = connect_with(options, PgPoolOptions::new().max_connections(2))
                    .await
                    .unwrap();
                barrier.wait().await;
                let result = migrate(&pool).await;
                pool.close().await;
                result
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_schema(&db.pool).await;
        assert_migrations_recorded(&db.pool).await;
    });
}
