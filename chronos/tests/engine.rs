//! The engine end to end on the in-memory backends, with a manual clock: what a user
//! sees (fire times, statuses, history, notifications) for every capability.

#![allow(clippy::unwrap_used, reason = "test helpers panic on the unexpected")]

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos::Event;
use chronos::clock::{Clock, ManualClock};
use chronos::executor::{ExecError, JobContext};
use chronos::memory::{MemoryQueue, MemoryStore};
use chronos::model::{
    ExecutionQuery, ExecutionStatus, JobStatus, JobUpdate, LogLevel, MissedPolicy,
};
use chronos::notifier::{Delivery, Failure, Notifier, NotifyError};
use chronos::queue::Queue;
use chronos::store::{JobStore, StartExecution, StartOutcome};
use chronos::{Chronos, ChronosBuilder, Error, JobSpec};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t("2026-01-01T00:00:00Z")))
}

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<Failure>>>);

#[async_trait]
impl Notifier for Recorder {
    fn channel(&self) -> &str {
        "recorder"
    }

    async fn job_failed(&self, failure: &Failure) -> Result<Delivery, NotifyError> {
        self.0.lock().unwrap().push(failure.clone());
        Ok(Delivery::Sent { to: "owner".into() })
    }
}

/// The next failure notification this process's dispatcher settles.
async fn notified(rx: &mut broadcast::Receiver<Event>) -> chronos::model::Notification {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Notification(n) = rx.recv().await.unwrap() {
                return n;
            }
        }
    })
    .await
    .expect("a notification was settled")
}

fn builder(clock: &Arc<ManualClock>) -> ChronosBuilder {
    Chronos::builder()
        .clock(clock.clone())
        .configure(|c| c.shutdown_grace = Duration::from_millis(200))
}

/// The next attempt that finishes, as the user would see it in the history.
async fn finished(rx: &mut broadcast::Receiver<Event>) -> chronos::model::Execution {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Finished(e) = rx.recv().await.unwrap() {
                return e;
            }
        }
    })
    .await
    .expect("an attempt finished")
}

async fn started(rx: &mut broadcast::Receiver<Event>) -> chronos::model::Execution {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Started(e) = rx.recv().await.unwrap() {
                return e;
            }
        }
    })
    .await
    .expect("an attempt started")
}

/// Asserts nothing finishes for a short while (real time: the clock stands still).
async fn quiet(rx: &mut broadcast::Receiver<Event>) {
    let got = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await;
    assert!(got.is_err(), "expected nothing to run, got {got:?}");
}

async fn history(c: &Chronos, job: &chronos::Job) -> Vec<chronos::model::Execution> {
    let mut page = c
        .owned_by(job.owner)
        .executions(
            job.id,
            &ExecutionQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
    page.reverse(); // oldest first
    page
}

#[tokio::test]
async fn immediate_job_runs_once_and_completes() {
    let clock = clock();
    let c = builder(&clock).build().await.unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::immediate("hello").payload(json!({"a": 1})))
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Active);
    assert_eq!(job.next_run, Some(clock.now()));
    let e = finished(&mut rx).await;
    assert_eq!(e.status, ExecutionStatus::Success);
    assert_eq!(e.output, Some(json!({"a": 1})), "echo returns the payload");
    assert_eq!(e.scheduled_for, job.created_at);
    assert_eq!(e.attempt, 0);
    let job = c.job(job.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.next_run, None);
    assert_eq!(job.last_executed_at, Some(clock.now()));
    assert_eq!(history(&c, &job).await.len(), 1);
    quiet(&mut rx).await;
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn scheduled_job_fires_at_its_instant_not_before() {
    let clock = clock();
    let c = builder(&clock).build().await.unwrap();
    let mut rx = c.subscribe();
    let at = t("2026-01-01T00:00:30Z");
    let job = c.create(JobSpec::at("later", at)).await.unwrap();
    clock.advance(Duration::from_secs(29));
    quiet(&mut rx).await;
    clock.advance(Duration::from_secs(1));
    let e = finished(&mut rx).await;
    assert_eq!((e.scheduled_for, e.started_at), (at, Some(at)));
    assert_eq!(c.job(job.id).await.unwrap().status, JobStatus::Completed);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn cron_job_fires_on_schedule_in_its_time_zone_without_drift() {
    let clock = clock();
    // 2026-01-01T00:00Z is 01:00 in Berlin (CET, +01:00).
    let c = builder(&clock).build().await.unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(
            JobSpec::cron("every 15 min at :05 local 01h", "5,20,35,50 1 * * *")
                .timezone("Europe/Berlin"),
        )
        .await
        .unwrap();
    assert_eq!(job.next_run, Some(t("2026-01-01T00:05:00Z")));
    let mut fired = Vec::new();
    for _ in 0..4 {
        // Overshoot each time: the next occurrence still counts from the scheduled instant.
        clock.advance(Duration::from_secs(15 * 60 + 7));
        fired.push(finished(&mut rx).await.scheduled_for);
    }
    assert_eq!(
        fired,
        ["00:05", "00:20", "00:35", "00:50"].map(|hm| t(&format!("2026-01-01T{hm}:00Z")))
    );
    // After 01:50 local the next is tomorrow 01:05 local.
    assert_eq!(
        c.job(job.id).await.unwrap().next_run,
        Some(t("2026-01-02T00:05:00Z"))
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn failures_retry_with_exponential_backoff_then_succeed() {
    let clock = clock();
    let calls = Arc::new(AtomicU32::new(0));
    let n = calls.clone();
    let c = builder(&clock)
        .executor("flaky", move |ctx: JobContext| {
            let n = n.clone();
            async move {
                ctx.log().info(format!("attempt {}", ctx.attempt()));
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(ExecError::retryable("upstream down"))
                } else {
                    Ok(json!("ok"))
                }
            }
        })
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(
            JobSpec::immediate("flaky")
                .handler("flaky")
                .retry_backoff(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let t0 = clock.now();
    let first = finished(&mut rx).await;
    assert_eq!((first.attempt, first.status), (0, ExecutionStatus::Failed));
    assert_eq!(first.error.as_deref(), Some("upstream down"));
    // The retry lives in the queue, not in a sleeping task.
    let counts = c.queue().counts().await.unwrap();
    assert_eq!((counts.scheduled, counts.ready, counts.leased), (1, 0, 0));
    clock.advance(Duration::from_secs(9));
    quiet(&mut rx).await;
    clock.advance(Duration::from_secs(1));
    let second = finished(&mut rx).await;
    assert_eq!(
        (second.attempt, second.started_at),
        (1, Some(t0 + chrono::Duration::seconds(10)))
    );
    clock.advance(Duration::from_secs(20));
    let third = finished(&mut rx).await;
    assert_eq!((third.attempt, third.status), (2, ExecutionStatus::Success));
    assert_eq!(
        third.started_at,
        Some(t0 + chrono::Duration::seconds(30)),
        "backoff 10 s then 20 s"
    );
    let h = history(&c, &job).await;
    assert_eq!(
        h.iter().map(|e| (e.attempt, e.status)).collect::<Vec<_>>(),
        [
            (0, ExecutionStatus::Failed),
            (1, ExecutionStatus::Failed),
            (2, ExecutionStatus::Success)
        ]
    );
    assert_eq!(h[1].due_at, t0 + chrono::Duration::seconds(10));
    let job = c.job(job.id).await.unwrap();
    assert_eq!((job.status, job.retry_count), (JobStatus::Completed, 2));
    let logs = c.owned_by(job.owner).logs(h[0].id).await.unwrap();
    let lines: Vec<_> = logs.iter().map(|l| (l.level, l.message.as_str())).collect();
    assert_eq!(lines[0], (LogLevel::Info, "attempt 0"));
    assert_eq!(lines[1].0, LogLevel::Warn);
    assert!(
        lines[1]
            .1
            .starts_with("attempt 0 failed; retry 1 of 3 at 2026-01-01T00:00:10"),
        "{lines:?}"
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_time_job_fails_for_good_with_exactly_one_notification() {
    let clock = clock();
    let notes = Recorder::default();
    let c = builder(&clock)
        .notifier(notes.clone())
        .executor("broken", |_ctx: JobContext| async {
            Err::<Value, _>(ExecError::retryable("boom"))
        })
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(
            JobSpec::immediate("broken")
                .handler("broken")
                .max_retries(2)
                .retry_backoff(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    finished(&mut rx).await;
    clock.advance(Duration::from_secs(1));
    finished(&mut rx).await;
    clock.advance(Duration::from_secs(2));
    let last = finished(&mut rx).await;
    assert_eq!((last.attempt, last.status), (2, ExecutionStatus::Failed));
    let sent = notified(&mut rx).await;
    assert_eq!(
        (sent.execution_id, sent.status, sent.attempts),
        (last.id, chronos::model::NotificationStatus::Sent, 1)
    );
    clock.advance(Duration::from_secs(3600));
    quiet(&mut rx).await;
    let job = c.job(job.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let notes = notes.0.lock().unwrap().clone();
    assert_eq!(notes.len(), 1, "exactly one notification");
    assert_eq!(
        (notes[0].job.id, notes[0].job.status),
        (job.id, JobStatus::Failed)
    );
    assert_eq!(notes[0].execution.id, last.id);
    let logs = c.owned_by(job.owner).logs(last.id).await.unwrap();
    let tail: Vec<_> = logs[logs.len() - 2..]
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    assert_eq!(
        tail,
        vec![
            (LogLevel::Error, "failed for good after 3 attempts"),
            (LogLevel::Info, "Failure notification sent")
        ]
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn fatal_errors_do_not_retry_and_recurring_jobs_keep_their_schedule() {
    let clock = clock();
    let notes = Recorder::default();
    let c = builder(&clock)
        .notifier(notes.clone())
        .executor("bad-input", |_ctx: JobContext| async {
            Err::<Value, _>(ExecError::fatal("payload is wrong"))
        })
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::cron("minutely", "* * * * *").handler("bad-input"))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let e = finished(&mut rx).await;
    assert_eq!((e.status, e.attempt), (ExecutionStatus::Failed, 0));
    assert_eq!(notified(&mut rx).await.execution_id, e.id);
    assert_eq!(notes.0.lock().unwrap().len(), 1);
    let job = c.job(job.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Active,
        "a recurring job keeps its schedule"
    );
    assert_eq!(job.next_run, Some(t("2026-01-01T00:02:00Z")));
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        finished(&mut rx).await.scheduled_for,
        t("2026-01-01T00:02:00Z")
    );
    assert_eq!(
        notified(&mut rx).await.scheduled_for,
        t("2026-01-01T00:02:00Z")
    );
    assert_eq!(
        notes.0.lock().unwrap().len(),
        2,
        "one notification per failed occurrence"
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_timeout_cancels_the_handler_and_counts_as_a_failed_attempt() {
    let clock = clock();
    let saw_cancel = Arc::new(AtomicU32::new(0));
    let s = saw_cancel.clone();
    let c = builder(&clock)
        .executor("hang", move |ctx: JobContext| {
            let s = s.clone();
            async move {
                ctx.cancelled().await;
                s.fetch_add(1, Ordering::SeqCst);
                Ok(Value::Null)
            }
        })
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    c.create(
        JobSpec::immediate("hang")
            .handler("hang")
            .timeout(Duration::from_secs(5))
            .max_retries(0),
    )
    .await
    .unwrap();
    started(&mut rx).await;
    clock.advance(Duration::from_secs(5));
    let e = finished(&mut rx).await;
    assert_eq!(e.status, ExecutionStatus::Timeout);
    assert_eq!(e.error.as_deref(), Some("timed out after 5 s"));
    assert_eq!(e.duration_ms, Some(5000));
    assert!(saw_cancel.load(Ordering::SeqCst) <= 1);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn pause_stops_queued_occurrences_and_resume_continues_from_now() {
    let clock = clock();
    let c = builder(&clock).build().await.unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::cron("minutely", "* * * * *"))
        .await
        .unwrap();
    let paused = c.pause(job.id).await.unwrap();
    assert_eq!(
        (paused.status, paused.next_run, paused.paused_at),
        (JobStatus::Paused, None, Some(clock.now()))
    );
    assert!(matches!(
        c.pause(job.id).await,
        Err(Error::InvalidOperation(_))
    ));
    clock.advance(Duration::from_secs(600));
    quiet(&mut rx).await;
    let resumed = c.resume(job.id).await.unwrap();
    assert_eq!(
        resumed.next_run,
        Some(t("2026-01-01T00:11:00Z")),
        "next occurrence after now"
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        finished(&mut rx).await.scheduled_for,
        t("2026-01-01T00:11:00Z")
    );
    assert_eq!(history(&c, &job).await.len(), 1);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pause_that_races_a_queued_entry_still_wins() {
    // The entry stays in the queue (as if removing it had failed): the worker must
    // still run nothing, because the store says the job is paused.
    let clock = clock();
    let store = MemoryStore::new();
    let queue = MemoryQueue::new(clock.clone());
    let api = builder(&clock)
        .store(store.clone())
        .queue(queue.clone())
        .workers(false)
        .build()
        .await
        .unwrap();
    let job = api
        .create(JobSpec::cron("minutely", "* * * * *"))
        .await
        .unwrap();
    let mut paused = store.get_job(job.id).await.unwrap().unwrap();
    paused.status = JobStatus::Paused;
    store.update_job(&paused).await.unwrap();
    assert_eq!(
        queue.counts().await.unwrap().total(),
        1,
        "the entry is still queued"
    );
    let worker = builder(&clock)
        .store(store.clone())
        .queue(queue.clone())
        .sync(false)
        .build()
        .await
        .unwrap();
    let mut rx = worker.subscribe();
    clock.advance(Duration::from_secs(60));
    quiet(&mut rx).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        queue.counts().await.unwrap().total(),
        0,
        "the stale entry was dropped"
    );
    assert!(history(&api, &job).await.is_empty());
    worker.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleted_jobs_never_run_and_disappear() {
    let clock = clock();
    let c = builder(&clock).build().await.unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::at("later", t("2026-01-01T00:01:00Z")))
        .await
        .unwrap();
    c.delete(job.id).await.unwrap();
    clock.advance(Duration::from_secs(120));
    quiet(&mut rx).await;
    assert!(matches!(c.job(job.id).await, Err(Error::JobNotFound(id)) if id == job.id));
    assert!(matches!(
        c.execute_now(job.id).await,
        Err(Error::JobNotFound(_))
    ));
    assert!(matches!(c.delete(job.id).await, Err(Error::JobNotFound(_))));
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn execute_now_runs_once_more_whatever_is_queued() {
    let clock = clock();
    let c = builder(&clock).build().await.unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::cron("hourly", "0 * * * *"))
        .await
        .unwrap();
    c.pause(job.id).await.unwrap();
    let run = c.execute_now(job.id).await.unwrap();
    assert_eq!((run.status, run.manual), (ExecutionStatus::Queued, true));
    let done = c.wait_for(&run, WAIT).await.unwrap();
    assert_eq!(
        (done.id, done.status, done.manual),
        (run.id, ExecutionStatus::Success, true)
    );
    // Twice in a row: two runs, not deduped.
    let a = c.execute_now(job.id).await.unwrap();
    let b = c.execute_now(job.id).await.unwrap();
    c.wait_for(&a, WAIT).await.unwrap();
    c.wait_for(&b, WAIT).await.unwrap();
    assert_eq!(history(&c, &job).await.len(), 3);
    assert_eq!(
        c.job(job.id).await.unwrap().status,
        JobStatus::Paused,
        "manual runs leave the status alone"
    );
    let _ = rx.try_recv();
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn missed_occurrences_are_coalesced_into_one_run_by_default() {
    let clock = clock();
    let store = MemoryStore::new();
    let queue = MemoryQueue::new(clock.clone());
    // The API process creates the job; no worker runs for 3.5 hours.
    let api = builder(&clock)
        .store(store.clone())
        .queue(queue.clone())
        .workers(false)
        .build()
        .await
        .unwrap();
    let coalesce = api
        .create(JobSpec::cron("hourly", "0 * * * *"))
        .await
        .unwrap();
    let run_all = api
        .create(JobSpec::cron("hourly all", "0 * * * *").missed_policy(MissedPolicy::RunAll))
        .await
        .unwrap();
    let skip = api
        .create(JobSpec::cron("hourly skip", "0 * * * *").missed_policy(MissedPolicy::Skip))
        .await
        .unwrap();
    clock.set(t("2026-01-01T03:30:00Z"));
    let worker = builder(&clock)
        .store(store.clone())
        .queue(queue.clone())
        .build()
        .await
        .unwrap();
    let mut rx = worker.subscribe();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let e = finished(&mut rx).await;
        seen.push((e.job_id, e.scheduled_for, e.status));
    }
    quiet(&mut rx).await;
    let of = |id: Uuid| {
        seen.iter()
            .filter(|s| s.0 == id)
            .map(|s| (s.1, s.2))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(coalesce.id),
        [(t("2026-01-01T01:00:00Z"), ExecutionStatus::Success)]
    );
    assert_eq!(
        of(run_all.id),
        ["01", "02", "03"].map(|h| (
            t(&format!("2026-01-01T{h}:00:00Z")),
            ExecutionStatus::Success
        ))
    );
    assert_eq!(
        of(skip.id),
        [(t("2026-01-01T01:00:00Z"), ExecutionStatus::Cancelled)]
    );
    for id in [coalesce.id, run_all.id, skip.id] {
        assert_eq!(
            api.job(id).await.unwrap().next_run,
            Some(t("2026-01-01T04:00:00Z"))
        );
    }
    worker.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_safety_sync_rebuilds_a_lost_queue_from_the_store() {
    let clock = clock();
    let store = MemoryStore::new();
    let api = builder(&clock)
        .store(store.clone())
        .workers(false)
        .sync(false)
        .build()
        .await
        .unwrap();
    let cron = api
        .create(JobSpec::cron("minutely", "* * * * *"))
        .await
        .unwrap();
    let once = api
        .create(JobSpec::at("once", t("2026-01-01T00:00:30Z")))
        .await
        .unwrap();
    let manual = api.execute_now(cron.id).await.unwrap();
    // A new process with an empty queue (Redis lost everything): the sync at start repairs it.
    let fresh = MemoryQueue::new(clock.clone());
    let worker = builder(&clock)
        .store(store.clone())
        .queue(fresh.clone())
        .build()
        .await
        .unwrap();
    let report = worker.sync().await.unwrap();
    assert_eq!(
        report.enqueued, 0,
        "the sync at start already repaired everything"
    );
    let mut rx = worker.subscribe();
    let m = worker.wait_for(&manual, WAIT).await.unwrap();
    assert_eq!(m.status, ExecutionStatus::Success);
    clock.advance(Duration::from_secs(60));
    let mut got = vec![
        finished(&mut rx).await.job_id,
        finished(&mut rx).await.job_id,
    ];
    got.sort();
    let mut want = vec![cron.id, once.id];
    want.sort();
    assert_eq!(got, want);
    worker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_worker_that_vanishes_mid_run_is_replaced_and_the_history_shows_it() {
    let clock = clock();
    let store = MemoryStore::new();
    let queue = MemoryQueue::new(clock.clone());
    let api = builder(&clock)
        .store(store.clone())
        .queue(queue.clone())
        .workers(false)
        .sync(false)
        .build()
        .await
        .unwrap();
    let job = api.create(JobSpec::immediate("important")).await.unwrap();
    // A worker reserves the entry, records the attempt as running, then dies.
    let lease = Duration::from_secs(30);
    let dead = queue
        .reserve("dead-worker", 1, lease)
        .await
        .unwrap()
        .remove(0);
    let claimed = store
        .start_execution(&StartExecution {
            key: dead.entry.key,
            attempt: 0,
            execution_id: Uuid::now_v7(),
            advance: Some(chronos::store::Advance { next_run: None }),
            worker: "dead-worker".into(),
            started_at: clock.now(),
        })
        .await
        .unwrap();
    assert!(matches!(claimed, StartOutcome::Started { .. }));
    let worker = builder(&clock)
        .store(store.clone())
        .queue(queue.clone())
        .sync(false)
        .build()
        .await
        .unwrap();
    let mut rx = worker.subscribe();
    quiet(&mut rx).await;
    clock.advance(lease);
    let e = finished(&mut rx).await;
    assert_eq!((e.status, e.attempt), (ExecutionStatus::Success, 0));
    let h = history(&api, &job).await;
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].status, h[0].worker.as_deref()),
        (ExecutionStatus::Failed, Some("dead-worker"))
    );
    assert_eq!(h[0].error.as_deref(), Some(chronos::store::ABANDONED));
    assert_eq!(h[1].id, e.id);
    assert_eq!(api.job(job.id).await.unwrap().status, JobStatus::Completed);
    worker.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_running_attempts_finish_within_the_grace_period() {
    let clock = clock();
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let c = builder(&clock)
        .configure(|cfg| cfg.shutdown_grace = Duration::from_secs(10))
        .executor("slow", move |_ctx: JobContext| {
            let g = g.clone();
            async move {
                g.notified().await;
                Ok(json!("done"))
            }
        })
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::immediate("slow").handler("slow"))
        .await
        .unwrap();
    started(&mut rx).await;
    let stopping = tokio::spawn({
        let c = c.clone();
        async move { c.shutdown().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown waits for the running attempt"
    );
    // Work created now is not taken any more.
    let late = c.create(JobSpec::immediate("late")).await.unwrap();
    gate.notify_one();
    stopping.await.unwrap().unwrap();
    assert_eq!(finished(&mut rx).await.status, ExecutionStatus::Success);
    assert_eq!(c.job(job.id).await.unwrap().status, JobStatus::Completed);
    assert_eq!(c.job(late.id).await.unwrap().status, JobStatus::Active);
}

#[tokio::test]
async fn shutdown_cancels_and_requeues_what_outlives_the_grace_period() {
    for handler in ["stuck", "stops-with-an-error-when-cancelled"] {
        shutdown_cancels_and_requeues(handler).await;
    }
}

/// Whether the handler ignores cancellation or returns an error when cancelled, the
/// attempt is recorded cancelled and put back: never failed or retried.
async fn shutdown_cancels_and_requeues(handler: &str) {
    let clock = clock();
    let store = MemoryStore::new();
    let queue = MemoryQueue::new(clock.clone());
    let c = builder(&clock)
        .store(store.clone())
        .queue(queue.clone())
        .executor("stuck", |_ctx: JobContext| async {
            std::future::pending::<()>().await;
            Ok(Value::Null)
        })
        .executor(
            "stops-with-an-error-when-cancelled",
            |ctx: JobContext| async move {
                ctx.cancelled().await;
                Err::<Value, _>(ExecError::retryable("interrupted"))
            },
        )
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::immediate(handler).handler(handler))
        .await
        .unwrap();
    started(&mut rx).await;
    c.shutdown().await.unwrap();
    let e = finished(&mut rx).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled);
    assert_eq!(e.error.as_deref(), Some("cancelled: the worker shut down"));
    // Put back for the next process: a queued attempt in the store and an entry in the queue.
    let h = history(&c, &job).await;
    assert_eq!(
        h.iter().map(|e| e.status).collect::<Vec<_>>(),
        [ExecutionStatus::Cancelled, ExecutionStatus::Queued]
    );
    assert_eq!(queue.counts().await.unwrap().ready, 1);
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let clock = clock();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let c = builder(&clock)
        .concurrency(3)
        .executor("busy", move |_ctx: JobContext| {
            let (r, p) = (r.clone(), p.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                Ok(Value::Null)
            }
        })
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    for i in 0..12 {
        c.create(JobSpec::immediate(format!("busy {i}")).handler("busy"))
            .await
            .unwrap();
    }
    for _ in 0..12 {
        assert_eq!(finished(&mut rx).await.status, ExecutionStatus::Success);
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_new_cron_expression_reschedules_and_the_old_occurrence_never_runs() {
    let clock = clock();
    let c = builder(&clock).build().await.unwrap();
    let mut rx = c.subscribe();
    let job = c.create(JobSpec::cron("x", "0 * * * *")).await.unwrap();
    assert_eq!(job.next_run, Some(t("2026-01-01T01:00:00Z")));
    let updated = c
        .update(
            job.id,
            JobUpdate {
                cron_expression: Some("30 1 * * *".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.next_run, Some(t("2026-01-01T01:30:00Z")));
    clock.advance(Duration::from_secs(3600));
    quiet(&mut rx).await;
    clock.advance(Duration::from_secs(1800));
    assert_eq!(
        finished(&mut rx).await.scheduled_for,
        t("2026-01-01T01:30:00Z")
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_precise_errors() {
    let clock = clock();
    let c = builder(&clock).build().await.unwrap();
    let err = c
        .create(JobSpec::immediate("x").handler("nope"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid job: handler: no executor is registered under \"nope\""
    );
    let err = c.create(JobSpec::cron("x", "not cron")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Spec(chronos::model::spec::SpecError::InvalidCron { .. })
        ),
        "{err:?}"
    );
    let once = c
        .create(JobSpec::at("x", t("2026-02-01T00:00:00Z")))
        .await
        .unwrap();
    assert!(matches!(
        c.pause(once.id).await,
        Err(Error::InvalidOperation(_))
    ));
    let err = c.update(once.id, JobUpdate::default()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid job: body: at least one field must be given"
    );
    let dup = Chronos::builder()
        .executor("a", chronos::executor::Echo)
        .executor("a", chronos::executor::Echo)
        .build()
        .await;
    assert!(matches!(dup, Err(Error::DuplicateExecutor(n)) if n == "a"));
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn owners_see_only_their_own_jobs() {
    let clock = clock();
    let c = builder(&clock).workers(false).build().await.unwrap();
    let (alice, bob) = (c.owned_by(Uuid::now_v7()), c.owned_by(Uuid::now_v7()));
    let job = alice
        .create(JobSpec::cron("mine", "0 * * * *"))
        .await
        .unwrap();
    assert_eq!(job.owner, alice.owner());
    assert_eq!(alice.job(job.id).await.unwrap().id, job.id);
    for result in [
        bob.job(job.id).await.map(|_| ()),
        bob.pause(job.id).await.map(|_| ()),
        bob.delete(job.id).await.map(|_| ()),
        bob.execute_now(job.id).await.map(|_| ()),
        bob.stats(job.id).await.map(|_| ()),
    ] {
        assert!(matches!(result, Err(Error::JobNotFound(id)) if id == job.id));
    }
    let run = alice.execute_now(job.id).await.unwrap();
    assert!(matches!(
        bob.execution(run.id).await,
        Err(Error::ExecutionNotFound(_))
    ));
    assert_eq!(bob.list_jobs(&Default::default()).await.unwrap().total, 0);
    assert_eq!(alice.list_jobs(&Default::default()).await.unwrap().total, 1);
    // A window past the end of time is the same as "forever", not a panic.
    let upcoming = alice.upcoming_jobs(Duration::MAX, 10).await.unwrap();
    assert_eq!(upcoming.iter().map(|j| j.id).collect::<Vec<_>>(), [job.id]);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_safety_sync_runs_again_every_interval() {
    let clock = clock();
    let queue = MemoryQueue::new(clock.clone());
    let c = builder(&clock)
        .queue(queue.clone())
        .configure(|cfg| cfg.sync_interval = Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let job = c
        .create(JobSpec::cron("hourly", "0 * * * *"))
        .await
        .unwrap();
    let key = chronos::model::OccurrenceKey::scheduled(job.id, t("2026-01-01T01:00:00Z"));
    assert!(queue.remove(&key).await.unwrap(), "the entry is lost");
    clock.advance(Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        queue.counts().await.unwrap().total(),
        0,
        "not repaired before the interval"
    );
    clock.advance(Duration::from_secs(1));
    let repaired = tokio::time::timeout(WAIT, async {
        while queue.counts().await.unwrap().total() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        repaired.is_ok(),
        "the periodic sync re-queued the occurrence"
    );
    let mut rx = c.subscribe();
    clock.set(t("2026-01-01T01:00:00Z"));
    assert_eq!(
        finished(&mut rx).await.scheduled_for,
        t("2026-01-01T01:00:00Z")
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn typed_tasks_get_their_payload_deserialized() {
    use chronos::executor::Task;

    #[derive(serde::Deserialize)]
    struct Add {
        a: i64,
        b: i64,
    }

    struct Adder;

    #[async_trait]
    impl Task for Adder {
        type Input = Add;
        type Output = i64;

        async fn run(&self, input: Add, _ctx: &JobContext) -> Result<i64, ExecError> {
            Ok(input.a + input.b)
        }
    }

    let clock = clock();
    let c = builder(&clock).task("add", Adder).build().await.unwrap();
    let mut rx = c.subscribe();
    c.create(
        JobSpec::immediate("sum")
            .handler("add")
            .payload(json!({"a": 2, "b": 40})),
    )
    .await
    .unwrap();
    assert_eq!(finished(&mut rx).await.output, Some(json!(42)));
    // A payload that does not fit fails for good at once: no retries.
    let bad = c
        .create(
            JobSpec::immediate("bad sum")
                .handler("add")
                .payload(json!({"a": "two"})),
        )
        .await
        .unwrap();
    let e = finished(&mut rx).await;
    assert_eq!(
        (e.job_id, e.status, e.attempt),
        (bad.id, ExecutionStatus::Failed, 0)
    );
    assert!(
        e.error
            .unwrap()
            .starts_with("the payload does not fit the task: invalid type")
    );
    assert_eq!(c.job(bad.id).await.unwrap().status, JobStatus::Failed);
    c.shutdown().await.unwrap();
}

/// A queue whose `enqueue` waits for a permit, to stop a write between its store step
/// and its queue step.
struct GatedQueue {
    inner: MemoryQueue,
    gate: Arc<tokio::sync::Semaphore>,
    entered: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Queue for GatedQueue {
    async fn enqueue(
        &self,
        entries: &[chronos::queue::QueueEntry],
    ) -> Result<usize, chronos::queue::QueueError> {
        self.entered.notify_one();
        self.gate.acquire().await.unwrap().forget();
        self.inner.enqueue(entries).await
    }

    async fn reserve(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<chronos::queue::Reservation>, chronos::queue::QueueError> {
        self.inner.reserve(worker, max, lease).await
    }

    async fn wait(&self) -> Result<(), chronos::queue::QueueError> {
        self.inner.wait().await
    }

    async fn extend(
        &self,
        lease: &chronos::queue::Lease,
        by: Duration,
    ) -> Result<chronos::queue::Lease, chronos::queue::QueueError> {
        self.inner.extend(lease, by).await
    }

    async fn ack(&self, lease: &chronos::queue::Lease) -> Result<(), chronos::queue::QueueError> {
        self.inner.ack(lease).await
    }

    async fn retry(
        &self,
        lease: &chronos::queue::Lease,
        run_at: DateTime<Utc>,
        attempt: u32,
        execution_id: Option<Uuid>,
    ) -> Result<(), chronos::queue::QueueError> {
        self.inner.retry(lease, run_at, attempt, execution_id).await
    }

    async fn remove(
        &self,
        key: &chronos::model::OccurrenceKey,
    ) -> Result<bool, chronos::queue::QueueError> {
        self.inner.remove(key).await
    }

    async fn counts(&self) -> Result<chronos::queue::QueueCounts, chronos::queue::QueueError> {
        self.inner.counts().await
    }
}

#[tokio::test]
async fn a_caller_that_stops_waiting_cannot_split_a_create_from_its_enqueue() {
    let clock = clock();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(tokio::sync::Notify::new());
    let c = builder(&clock)
        .queue(GatedQueue {
            inner: MemoryQueue::new(clock.clone()),
            gate: gate.clone(),
            entered: entered.clone(),
        })
        .sync(false)
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    // The client gives up (an HTTP handler dropped) after the job is stored, while its
    // first occurrence is being queued.
    let create = c.create(JobSpec::immediate("abandoned request"));
    tokio::select! {
        _ = create => panic!("the enqueue is gated"),
        () = entered.notified() => {}
    }
    gate.add_permits(1);
    let e = finished(&mut rx).await;
    assert_eq!(
        (e.job_name.as_str(), e.status),
        ("abandoned request", ExecutionStatus::Success),
        "the occurrence was queued and ran, without waiting for the safety sync"
    );
    c.shutdown().await.unwrap();
}
