//! Test parts shared by the notifier tests: failures to notify about, event waits
//! and time limits. The SMTP server and certificates are
//! `chronos_notify::testing` (feature `testing`, enabled for these tests).

#![allow(dead_code, reason = "each test file uses a different part of the kit")]

use std::time::Duration;

use chrono::{DateTime, Utc};
use chronos::Event;
use chronos::JobSpec;
use chronos::model::{Execution, ExecutionStatus, Job, Notification};
use chronos::notifier::Failure;
use tokio::sync::broadcast;
use uuid::Uuid;

/// The longest any test waits for something that should happen.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Awaits `f` for at most [`WAIT`].
pub(crate) async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("a timestamp")
}

/// A port on 127.0.0.1 where nothing listens (it was free a moment ago).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A failure of a job named `name` in `tz` whose third attempt ended at `finished`.
pub(crate) fn failure(name: &str, tz: &str, finished: DateTime<Utc>, error: &str) -> Failure {
    let created = t("2026-01-01T00:00:00Z");
    let spec = JobSpec::immediate(name)
        .handler("report")
        .owner(Uuid::now_v7());
    let job = Job::from_spec(&spec, tz.parse().expect("a time zone"), created);
    let execution = Execution {
        id: Uuid::now_v7(),
        job_id: job.id,
        owner: job.owner,
        job_name: job.name.clone(),
        scheduled_for: created,
        due_at: finished,
        attempt: 2,
        status: ExecutionStatus::Failed,
        started_at: Some(finished),
        finished_at: Some(finished),
        duration_ms: Some(0),
        output: None,
        error: Some(error.to_owned()),
        worker: Some("test".to_owned()),
        manual: false,
        manual_run: None,
        created_at: finished,
    };
    Failure {
        id: Uuid::now_v7(),
        attempt: 1,
        job,
        execution,
    }
}

/// The next settled notification attempt.
pub(crate) async fn notification(rx: &mut broadcast::Receiver<Event>) -> Notification {
    within("a notification attempt", async {
        loop {
            if let Event::Notification(n) = rx.recv().await.expect("events") {
                return n;
            }
        }
    })
    .await
}

/// The next attempt that finishes.
pub(crate) async fn finished(rx: &mut broadcast::Receiver<Event>) -> Execution {
    within("an attempt to finish", async {
        loop {
            if let Event::Finished(e) = rx.recv().await.expect("events") {
                return e;
            }
        }
    })
    .await
}

/// Asserts that no notification attempt settles for a short while (the manual clock
/// stands still, so nothing is due).
pub(crate) async fn no_notification(rx: &mut broadcast::Receiver<Event>) {
    let got = tokio::time::timeout(Duration::from_millis(150), async {
        loop {
            if let Event::Notification(n) = rx.recv().await.expect("events") {
                return n;
            }
        }
    })
    .await;
    assert!(
        got.is_err(),
        "expected no notification attempt, got {got:?}"
    );
}
