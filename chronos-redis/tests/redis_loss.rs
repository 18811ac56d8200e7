//! Losing Redis's data is survivable: with `PgStore` and `RedisQueue` together, after
//! every key of the queue is gone (a `FLUSHALL` or a restart without persistence,
//! simulated by deleting the queue's keys only, as the server is shared), a new
//! engine's start sync rebuilds the queue from the store and every due occurrence
//! runs exactly once.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chronos::clock::{Clock, SystemClock};
use chronos::model::{ExecutionQuery, ExecutionStatus, Job};
use chronos::{Chronos, ChronosBuilder, JobSpec};
use chronos_postgres::PgStore;
use chronos_postgres::testing::TestDb;
use chronos_redis::testing::TestRedis;

const WAIT: Duration = Duration::from_secs(30);

async fn engine(db: &TestDb, redis: &TestRedis) -> ChronosBuilder {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue = redis.queue("q", clock).await;
    Chronos::builder()
        .store(PgStore::new(db.pool.clone()))
        .queue(queue)
        .configure(|c| c.shutdown_grace = Duration::from_secs(2))
}

/// How many executions each occurrence `(scheduled_for, manual_run)` of `job` has,
/// and how many of them succeeded, from PostgreSQL.
async fn runs(c: &Chronos, job: &Job) -> HashMap<String, (usize, usize)> {
    let page = c
        .store()
        .list_executions(
            job.owner,
            job.id,
            &ExecutionQuery {
                status: None,
                page: 1,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let mut out: HashMap<String, (usize, usize)> = HashMap::new();
    for e in page.items {
        let slot = out
            .entry(format!(
                "{}/{:?}",
                e.scheduled_for.timestamp_micros(),
                e.manual_run
            ))
            .or_default();
        slot.0 += 1;
        if e.status == ExecutionStatus::Success {
            slot.1 += 1;
        }
    }
    out
}

#[test]
fn after_the_queue_keys_are_lost_every_due_occurrence_runs_once() {
    chronos::testkit::run(async {
        let redis = TestRedis::connect().await;
        let db = TestDb::create().await;
        let api = engine(&db, &redis)
            .await
            .workers(false)
            .sync(false)
            .build()
            .await
            .unwrap();
        let now = Utc::now();
        let mut immediate = Vec::new();
        for i in 0..10 {
            immediate.push(
                api.create(JobSpec::immediate(format!("immediate {i:02}")))
                    .await
                    .unwrap(),
            );
        }
        let mut scheduled = Vec::new();
        for i in 0..5 {
            let at = now + chrono::Duration::milliseconds(1_500 + 100 * i);
            scheduled.push(
                api.create(JobSpec::at(format!("scheduled {i}"), at))
                    .await
                    .unwrap(),
            );
        }
        let overdue = api
            .create(JobSpec::at(
                "overdue",
                now + chrono::Duration::milliseconds(300),
            ))
            .await
            .unwrap();
        let cron = api
            .create(JobSpec::cron("every second", "* * * * * *"))
            .await
            .unwrap();
        let hourly = api
            .create(JobSpec::cron("hourly", "0 * * * *"))
            .await
            .unwrap();
        let manual = api.execute_now(hourly.id).await.unwrap();
        let queued = api.queue().counts().await.unwrap().total();
        assert_eq!(
            queued,
            10 + 5 + 1 + 1 + 1 + 1,
            "every occurrence is in Redis"
        );

        // The loss: every key of the queue is gone (FLUSHALL, restart without AOF/RDB).
        let deleted = redis.clean().await.unwrap();
        assert!(deleted >= 2, "deleted {deleted} keys");
        assert_eq!(api.queue().counts().await.unwrap().total(), 0);

        // Redis stays empty for a second: "overdue" (and a cron tick) fall due meanwhile.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(api.queue().counts().await.unwrap().total(), 0);
        // A new engine (workers + sync): its start sync rebuilds the queue from the store.
        let worker = engine(&db, &redis).await.build().await.unwrap();
        assert_eq!(
            worker.wait_for(&manual, WAIT).await.unwrap().status,
            ExecutionStatus::Success
        );
        let one_shots: Vec<&Job> = immediate
            .iter()
            .chain(&scheduled)
            .chain([&overdue])
            .collect();
        tokio::time::timeout(WAIT, async {
            loop {
                let mut done = 0;
                for j in &one_shots {
                    if runs(&worker, j).await.values().any(|(_, ok)| *ok == 1) {
                        done += 1;
                    }
                }
                if done == one_shots.len() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("every one-time occurrence ran after the loss");
        // Let the cron job tick a few times, then stop and count.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        worker.shutdown().await.unwrap();
        api.shutdown().await.unwrap();

        for j in &one_shots {
            let r = runs(&worker, j).await;
            assert_eq!(r.len(), 1, "{}: one occurrence: {r:?}", j.name);
            assert!(
                r.values().all(|&(n, ok)| n == 1 && ok == 1),
                "{}: ran once: {r:?}",
                j.name
            );
        }
        let r = runs(&worker, &hourly).await;
        assert_eq!(r.len(), 1, "the manual run only: {r:?}");
        assert!(
            r.values().all(|&(n, ok)| n == 1 && ok == 1),
            "manual ran once: {r:?}"
        );
        let r = runs(&worker, &cron).await;
        assert!(r.len() >= 2, "the cron job kept ticking: {r:?}");
        assert!(
            r.values().all(|&(n, _)| n == 1),
            "each cron occurrence ran once: {r:?}"
        );
        assert!(r.values().filter(|&&(_, ok)| ok == 1).count() >= 2);
    });
}
