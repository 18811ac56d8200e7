//! The engine end to end on PostgreSQL alone (PgStore + PgQueue), in real time with
//! short intervals: jobs of every kind run, the queue is rebuilt from the store after
//! it is lost, two worker processes never run an occurrence twice nor announce a
//! failure twice, and a failure notification a dead dispatcher had claimed is
//! delivered once its claim lapses.

#![allow(clippy::unwrap_used, reason = "test helpers panic on the unexpected")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos::clock::SystemClock;
use chronos::executor::{ExecError, JobContext};
use chronos::model::{
    Execution, ExecutionStatus, Job, JobStatus, NotificationStatus, OccurrenceKey,
};
use chronos::notifier::{Delivery, Failure, Notifier, NotifyError};
use chronos::store::{Advance, FinishExecution, NewNotification, StartExecution, StartOutcome};
use chronos::{Chronos, ChronosBuilder, Event, JobSpec, JobStore};
use chronos_postgres::testing::TestDb;
use chronos_postgres::{PgQueue, PgStore};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

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

/// A call to a channel: when, and with what.
type Call = (DateTime<Utc>, Failure);

/// A channel `email` that accepts everything and records each call, and when.
#[derive(Clone, Default)]
struct Recording {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Recording {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Notifier for Recording {
    fn channel(&self) -> &str {
        "email"
    }

    async fn job_failed(&self, f: &Failure) -> Result<Delivery, NotifyError> {
        self.calls.lock().unwrap().push((Utc::now(), f.clone()));
        Ok(Delivery::Sent {
            to: "owner@example.com".into(),
        })
    }
}

/// `(status, attempts)` of every notification in the database.
async fn outbox(pool: &PgPool) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT status::text, attempts FROM notifications ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Waits until `n` notifications are sent.
async fn sent(pool: &PgPool, n: usize) {
    tokio::time::timeout(WAIT, async {
        loop {
            let done = outbox(pool)
                .await
                .iter()
                .filter(|(s, _)| s == "sent")
                .count();
            if done >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the notifications were sent in time");
}

/// How many lines of the execution's log say its failure notification was sent.
async fn sent_lines(c: &Chronos, x: &Execution) -> usize {
    c.owned_by(x.owner)
        .logs(x.id)
        .await
        .unwrap()
        .iter()
        .filter(|l| l.message == "Failure notification sent")
        .count()
}

#[test]
fn two_processes_announce_each_final_failure_once() {
    chronos::testkit::run(async {
        let db = TestDb::create().await;
        let second = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect_with(db.options.clone())
            .await
            .unwrap();
        let broken = |_ctx: JobContext| async { Err::<Value, _>(ExecError::fatal("disk full")) };
        let (email_a, email_b) = (Recording::default(), Recording::default());
        let a = engine(&db.pool)
            .await
            .executor("broken", broken)
            .notifier(email_a.clone())
            .build()
            .await
            .unwrap();
        let b = engine(&second)
            .await
            .executor("broken", broken)
            .notifier(email_b.clone())
            .build()
            .await
            .unwrap();
        let mut jobs = Vec::new();
        for i in 0..20 {
            let job = a
                .create(JobSpec::immediate(format!("job {i:02}")).handler("broken"))
                .await
                .unwrap();
            jobs.push(job.id);
        }
        sent(&db.pool, 20).await;
        // Long enough for a duplicate delivery to show.
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();

        let calls: Vec<Failure> = email_a
            .calls()
            .into_iter()
            .chain(email_b.calls())
            .map(|(_, f)| f)
            .collect();
        assert_eq!(calls.len(), 20, "one delivery per failure in total");
        let mut announced: Vec<Uuid> = calls.iter().map(|f| f.job.id).collect();
        announced.sort_unstable();
        jobs.sort_unstable();
        assert_eq!(announced, jobs, "one per job");
        assert!(
            calls
                .iter()
                .all(|f| f.attempt == 1 && f.error() == "disk full")
        );
        assert_eq!(outbox(&db.pool).await, vec![("sent".to_owned(), 1); 20]);
        let store = PgStore::new(db.pool.clone());
        for f in &calls {
            assert_eq!(f.execution.status, ExecutionStatus::Failed);
            assert_eq!(
                sent_lines(&a, &f.execution).await,
                1,
                "the log says so once"
            );
            let notes = store.notifications(f.execution.id).await.unwrap();
            assert_eq!(notes.len(), 1);
            assert_eq!(notes[0].id, f.id);
        }
    });
}

/// Records a job that failed for good with a notification on `email`, as a worker
/// does, straight through the store. Returns the failed execution.
async fn failed_for_good(store: &PgStore) -> Execution {
    let now = Utc::now();
    let job = Job::from_spec(
        &JobSpec::immediate("crashed")
            .owner(Uuid::new_v4())
            .handler("broken"),
        chrono_tz::Tz::UTC,
        now,
    );
    store.insert_job(&job).await.unwrap();
    let start = StartExecution {
        key: OccurrenceKey::scheduled(job.id, now),
        attempt: 0,
        execution_id: Uuid::now_v7(),
        advance: Some(Advance { next_run: None }),
        worker: "dead-worker".to_owned(),
        started_at: now,
    };
    let StartOutcome::Started { execution, .. } = store.start_execution(&start).await.unwrap()
    else {
        panic!("the occurrence starts");
    };
    let finish = FinishExecution {
        execution_id: execution.id,
        status: ExecutionStatus::Failed,
        finished_at: Utc::now(),
        output: None,
        error: Some("disk full".to_owned()),
        next_attempt: None,
        job_status: Some(JobStatus::Failed),
        notifications: vec![NewNotification {
            id: Uuid::now_v7(),
            channel: "email".to_owned(),
        }],
    };
    store.finish_execution(&finish).await.unwrap().unwrap()
}

#[test]
fn a_notification_claimed_by_a_dead_dispatcher_is_sent_once_its_claim_lapses() {
    chronos::testkit::run(async {
        let db = TestDb::create().await;
        let store = PgStore::new(db.pool.clone());
        let x = failed_for_good(&store).await;
        // A dispatcher claims it for a second, then dies without settling.
        let lease_until = Utc::now() + Duration::from_secs(1);
        let claimed = store
            .claim_notifications(&["email".to_owned()], Utc::now(), lease_until, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].notification.attempts, 1);

        let email = Recording::default();
        let c = engine(&db.pool)
            .await
            .notifier(email.clone())
            .configure(|c| {
                c.notify.timeout = Duration::from_millis(500);
                c.lease = Duration::from_secs(1);
            })
            .build()
            .await
            .unwrap();
        sent(&db.pool, 1).await;
        c.shutdown().await.unwrap();

        let calls = email.calls();
        assert_eq!(calls.len(), 1, "delivered once");
        let (when, failure) = &calls[0];
        assert!(
            *when >= lease_until - Duration::from_millis(1),
            "not before the claim lapsed: {when} < {lease_until}"
        );
        assert_eq!(
            (failure.id, failure.attempt, failure.execution.id),
            (claimed[0].notification.id, 2, x.id)
        );
        let n = store.notifications(x.id).await.unwrap().remove(0);
        assert_eq!((n.status, n.attempts), (NotificationStatus::Sent, 2));
        assert_eq!(sent_lines(&c, &x).await, 1);
    });
}
