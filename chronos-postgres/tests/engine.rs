//! The engine end to end on PostgreSQL alone (PgStore + PgQueue), in real time with
//! short intervals: jobs of every kind run, the queue is rebuilt from the store after
//! it is lost, and two worker processes never run an occurrence twice.

#![allow(clippy::unwrap_used, reason = "test helpers panic on the unexpected")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::Utc;
use chronos::clock::SystemClock;
use chronos::executor::{ExecError, JobContext};
use chronos::model::{ExecutionStatus, JobStatus};
use chronos::{Chronos, ChronosBuilder, Event, JobSpec};
use chronos_postgres::testing::TestDb;
use chronos_postgres::{PgQueue, PgStore};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(20);

async fn engine(pool: &PgPool) -> ChronosBuilder {
    let queue = PgQueue::new(pool.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    Chronos::builder()
        .store(PgStore::new(pool.clone()))
        .queue(queue)
        .configure(|c| c.shutdown_grace = Duration::from_secs(2))
}

async fn finished(rx: &mut broadcast::Receiver<Event>, n: usize) -> Vec<chronos::model::Execution> {
    tokio::time::timeout(WAIT, async {
        let mut done = Vec::new();
        while done.len() < n {
            if let Event::Finished(e) = rx.recv().await.unwrap() {
                done.push(e);
            }
        }
        done
    })
    .await
    .expect("attempts finished in time")
}

/// `(job name, attempt, status)` of every execution in the database, sorted.
async fn history(pool: &PgPool) -> Vec<(String, i32, String)> {
    sqlx::query_as("SELECT job_name::text, retry_attempt, status::text FROM job_executions ORDER BY job_name, retry_attempt, created_at")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[test]
fn every_kind_of_job_runs_on_postgres() {
    chronos::testkit::run(async {
        let db = TestDb::create().await;
        let failures = Arc::new(AtomicU32::new(1));
        let c = engine(&db.pool)
            .await
            .executor("flaky", move |_ctx: JobContext| {
                let f = failures.clone();
                async move {
                    if f.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        Err(ExecError::retryable("once"))
                    } else {
                        Ok(json!("ok"))
                    }
                }
            })
            .build()
            .await
            .unwrap();
        let mut rx = c.subscribe();
        let now = Utc::now();
        c.create(JobSpec::immediate("a immediate")).await.unwrap();
        let later = c
            .create(JobSpec::at(
                "b scheduled",
                now + chrono::Duration::milliseconds(300),
            ))
            .await
            .unwrap();
        let cron = c
            .create(JobSpec::cron("c every second", "* * * * * *"))
            .await
            .unwrap();
        c.create(
            JobSpec::immediate("d flaky")
                .handler("flaky")
                .retry_backoff(Duration::from_millis(100)),
        )
        .await
        .unwrap();
        let done = finished(&mut rx, 6).await;
        c.pause(cron.id).await.unwrap();
        let scheduled = done.iter().find(|e| e.job_id == later.id).unwrap();
        assert!(scheduled.started_at.unwrap() >= later.scheduled_time().unwrap());
        c.shutdown().await.unwrap();
        let h = history(&db.pool).await;
        let of = |name: &str| {
            h.iter()
                .filter(|r| r.0 == name)
                .map(|r| (r.1, r.2.as_str()))
                .collect::<Vec<_>>()
        };
        assert_eq!(of("a immediate"), [(0, "success")]);
        assert_eq!(of("b scheduled"), [(0, "success")]);
        assert_eq!(of("d flaky"), [(0, "failed"), (1, "success")]);
        assert!(of("c every second").iter().all(|r| *r == (0, "success")));
        assert!(!of("c every second").is_empty());
        assert_eq!(c.job(later.id).await.unwrap().status, JobStatus::Completed);
    });
}

#[test]
fn a_lost_queue_is_rebuilt_from_the_store_and_each_occurrence_runs_once() {
    chronos::testkit::run(async {
        let db = TestDb::create().await;
        let api = engine(&db.pool)
            .await
            .workers(false)
            .sync(false)
            .build()
            .await
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(
                api.create(JobSpec::immediate(format!("job {i:02}")))
                    .await
                    .unwrap()
                    .id,
            );
        }
        let manual_target = api
            .create(JobSpec::cron("hourly", "0 * * * *"))
            .await
            .unwrap();
        let manual = api.execute_now(manual_target.id).await.unwrap();
        // The queue is lost (as if its storage were wiped).
        let lost = sqlx::query("DELETE FROM queue_entries")
            .execute(&db.pool)
            .await
            .unwrap();
        assert_eq!(lost.rows_affected(), 22);
        let worker = engine(&db.pool).await.build().await.unwrap();
        assert_eq!(
            worker.wait_for(&manual, WAIT).await.unwrap().status,
            ExecutionStatus::Success
        );
        let mut rx = worker.subscribe();
        // Some may have finished before we subscribed: count in the database instead.
        tokio::time::timeout(WAIT, async {
            loop {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM job_executions WHERE status = 'success'",
                )
                .fetch_one(&db.pool)
                .await
                .unwrap();
                if n >= 21 {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
            }
        })
        .await
        .unwrap();
        worker.shutdown().await.unwrap();
        let per_job: Vec<(i64,)> = sqlx::query_as(
            "SELECT count(*) FROM job_executions GROUP BY job_id, scheduled_for, manual_run",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert_eq!(per_job.len(), 21);
        assert!(
            per_job.iter().all(|(n,)| *n == 1),
            "no occurrence ran twice: {per_job:?}"
        );
        let hourly = worker.job(manual_target.id).await.unwrap();
        assert_eq!(hourly.status, JobStatus::Active);
        let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM queue_entries")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(queued, 1, "only the hourly job's next occurrence is left");
    });
}

#[test]
fn two_worker_processes_run_each_occurrence_once() {
    chronos::testkit::run(async {
        let db = TestDb::create().await;
        let second = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect_with(db.options.clone())
            .await
            .unwrap();
        let a = engine(&db.pool)
            .await
            .concurrency(32)
            .build()
            .await
            .unwrap();
        let b = engine(&second).await.concurrency(32).build().await.unwrap();
        let n: i64 = 400;
        for i in 0..n {
            a.create(JobSpec::immediate(format!("job {i}")))
                .await
                .unwrap();
        }
        let done = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM job_executions WHERE status = 'success'",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap()
        };
        let mut events = a.subscribe();
        tokio::time::timeout(WAIT, async {
            while done().await < n {
                let _ = tokio::time::timeout(Duration::from_millis(100), events.recv()).await;
            }
        })
        .await
        .expect("all jobs ran");
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        let (runs, jobs): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(DISTINCT job_id) FROM job_executions")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!((runs, jobs), (n, n), "each job ran exactly once");
        let workers: Vec<(String, i64)> = sqlx::query_as(
            "SELECT worker, count(*) FROM job_executions GROUP BY worker ORDER BY worker",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert_eq!(workers.len(), 2, "both processes took work: {workers:?}");
    });
}
