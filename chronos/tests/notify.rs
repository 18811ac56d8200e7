//! Failure notifications end to end on the in-memory backends, with a manual clock:
//! the outbox, retries with doubling backoff, give-up, skips, independent channels,
//! take-over of a dead dispatcher's claim, and what the execution's log says.

#![allow(clippy::unwrap_used, reason = "test helpers panic on the unexpected")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos::clock::ManualClock;
use chronos::executor::{ExecError, JobContext};
use chronos::memory::{MemoryQueue, MemoryStore};
use chronos::model::{Execution, LogLevel, Notification, NotificationStatus};
use chronos::notifier::{Delivery, Failure, Notifier, NotifyError};
use chronos::{Chronos, ChronosBuilder, Error, Event, JobSpec, JobStore};
use serde_json::Value;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(10);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t("2026-01-01T00:00:00Z")))
}

/// What a scripted channel answers to one attempt.
enum Answer {
    Sent,
    Skip(&'static str),
    Transient(&'static str),
    Permanent(&'static str),
    /// Blocks until the gate opens, then answers `Sent`.
    Hang(Arc<tokio::sync::Notify>),
}

/// A channel that answers from a script (then `Sent`) and records every call.
#[derive(Clone)]
struct Scripted {
    channel: &'static str,
    script: Arc<Mutex<VecDeque<Answer>>>,
    calls: Arc<Mutex<Vec<Failure>>>,
}

impl Scripted {
    fn new(channel: &'static str, script: Vec<Answer>) -> Self {
        Self {
            channel,
            script: Arc::new(Mutex::new(script.into())),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<(u32, uuid::Uuid)> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|f| (f.attempt, f.id))
            .collect()
    }
}

#[async_trait]
impl Notifier for Scripted {
    fn channel(&self) -> &str {
        self.channel
    }

    async fn job_failed(&self, failure: &Failure) -> Result<Delivery, NotifyError> {
        self.calls.lock().unwrap().push(failure.clone());
        let answer = self.script.lock().unwrap().pop_front();
        match answer {
            None | Some(Answer::Sent) => Ok(Delivery::Sent {
                to: "owner@example.com".into(),
            }),
            Some(Answer::Skip(reason)) => Ok(Delivery::Skipped {
                reason: reason.into(),
            }),
            Some(Answer::Transient(e)) => Err(NotifyError::retryable(e)),
            Some(Answer::Permanent(e)) => Err(NotifyError::permanent(e)),
            Some(Answer::Hang(gate)) => {
                gate.notified().await;
                Ok(Delivery::Sent {
                    to: "owner@example.com".into(),
                })
            }
        }
    }
}

fn builder(clock: &Arc<ManualClock>) -> ChronosBuilder {
    Chronos::builder()
        .clock(clock.clone())
        .configure(|c| c.shutdown_grace = Duration::from_millis(200))
        .executor("broken", |_ctx: JobContext| async {
            Err::<Value, _>(ExecError::fatal("disk full"))
        })
}

async fn next_event<T>(
    rx: &mut broadcast::Receiver<Event>,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(x) = pick(rx.recv().await.unwrap()) {
                return x;
            }
        }
    })
    .await
    .expect("the event came")
}

async fn finished(rx: &mut broadcast::Receiver<Event>) -> Execution {
    next_event(rx, |e| match e {
        Event::Finished(x) => Some(x),
        _ => None,
    })
    .await
}

async fn notified(rx: &mut broadcast::Receiver<Event>) -> Notification {
    next_event(rx, |e| match e {
        Event::Notification(n) => Some(n),
        _ => None,
    })
    .await
}

/// Asserts no notification is settled for a short while (the clock stands still).
async fn no_notification(rx: &mut broadcast::Receiver<Event>) {
    let got = tokio::time::timeout(Duration::from_millis(100), async {
        loop {
            if let Event::Notification(n) = rx.recv().await.unwrap() {
                return n;
            }
        }
    })
    .await;
    assert!(got.is_err(), "expected no notification, got {got:?}");
}

/// The lines of an execution's log, as `(level, message)`.
async fn log_lines(c: &Chronos, x: &Execution) -> Vec<(LogLevel, String)> {
    c.owned_by(x.owner)
        .logs(x.id)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.level, l.message))
        .collect()
}

/// Creates an immediate job that fails for good at once; returns its failed execution.
async fn fail_one(c: &Chronos, rx: &mut broadcast::Receiver<Event>) -> Execution {
    c.create(JobSpec::immediate("nightly export").handler("broken"))
        .await
        .unwrap();
    let x = finished(rx).await;
    assert_eq!(x.error.as_deref(), Some("disk full"));
    x
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_doubling_backoff_until_it_is_sent() {
    let clock = clock();
    let email = Scripted::new(
        "email",
        vec![
            Answer::Transient("connection refused"),
            Answer::Transient("421 try later"),
        ],
    );
    let c = builder(&clock)
        .notifier(email.clone())
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let x = fail_one(&c, &mut rx).await;
    let failed_at = x.finished_at.unwrap();

    let n = notified(&mut rx).await;
    assert_eq!(
        (n.status, n.attempts, n.due_at, n.last_error.as_deref()),
        (
            NotificationStatus::Pending,
            1,
            failed_at + Duration::from_secs(30),
            Some("connection refused")
        )
    );
    no_notification(&mut rx).await;
    clock.advance(Duration::from_secs(29));
    no_notification(&mut rx).await;
    clock.advance(Duration::from_secs(1));
    let n = notified(&mut rx).await;
    assert_eq!(
        (n.status, n.attempts, n.due_at),
        (
            NotificationStatus::Pending,
            2,
            failed_at + Duration::from_secs(90)
        ),
        "the second wait doubles to 60 s"
    );
    clock.advance(Duration::from_secs(60));
    let n = notified(&mut rx).await;
    assert_eq!(
        (n.status, n.attempts, n.finished_at),
        (
            NotificationStatus::Sent,
            3,
            Some(failed_at + Duration::from_secs(90))
        )
    );
    assert_eq!(
        c.store().notifications(x.id).await.unwrap(),
        vec![n.clone()]
    );
    assert_eq!(
        email.calls(),
        vec![(1, n.id), (2, n.id), (3, n.id)],
        "the same id on every attempt"
    );
    let lines = log_lines(&c, &x).await;
    assert_eq!(
        lines[lines.len() - 3..],
        [
            (
                LogLevel::Warn,
                "Failure notification attempt 1 of 3 failed: connection refused; next attempt at 2026-01-01T00:00:30+00:00".to_owned()
            ),
            (
                LogLevel::Warn,
                "Failure notification attempt 2 of 3 failed: 421 try later; next attempt at 2026-01-01T00:01:30+00:00".to_owned()
            ),
            (LogLevel::Info, "Failure notification sent".to_owned()),
        ]
    );
    clock.advance(Duration::from_secs(3600));
    no_notification(&mut rx).await;
    assert_eq!(email.calls().len(), 3, "nothing more once sent");
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn delivery_gives_up_after_the_last_attempt_and_at_once_on_a_permanent_error() {
    let clock = clock();
    let email = Scripted::new(
        "email",
        vec![
            Answer::Transient("down"),
            Answer::Transient("down"),
            Answer::Transient("still down"),
            Answer::Permanent("550 mailbox unavailable"),
        ],
    );
    let c = builder(&clock)
        .notifier(email.clone())
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let x = fail_one(&c, &mut rx).await;
    assert_eq!(notified(&mut rx).await.attempts, 1);
    clock.advance(Duration::from_secs(30));
    assert_eq!(notified(&mut rx).await.attempts, 2);
    clock.advance(Duration::from_secs(60));
    let n = notified(&mut rx).await;
    assert_eq!(
        (n.status, n.attempts, n.last_error.as_deref()),
        (NotificationStatus::Failed, 3, Some("still down"))
    );
    assert_eq!(
        log_lines(&c, &x).await.last().unwrap(),
        &(
            LogLevel::Error,
            "Failure notification not sent after 3 attempts: still down".to_owned()
        )
    );
    clock.advance(Duration::from_secs(3600));
    no_notification(&mut rx).await;

    let y = fail_one(&c, &mut rx).await;
    let n = notified(&mut rx).await;
    assert_eq!(
        (n.execution_id, n.status, n.attempts),
        (y.id, NotificationStatus::Failed, 1),
        "a permanent error is not retried"
    );
    assert_eq!(
        log_lines(&c, &y).await.last().unwrap(),
        &(
            LogLevel::Error,
            "Failure notification not sent: 550 mailbox unavailable".to_owned()
        )
    );
    assert_eq!(email.calls().len(), 4);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slow_channel_times_out_and_counts_as_a_failed_attempt() {
    let clock = clock();
    let gate = Arc::new(tokio::sync::Notify::new());
    let email = Scripted::new("email", vec![Answer::Hang(gate)]);
    let c = builder(&clock)
        .notifier(email.clone())
        .configure(|c| c.notify.timeout = Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let x = fail_one(&c, &mut rx).await;
    let n = notified(&mut rx).await;
    assert_eq!(
        (n.status, n.attempts, n.last_error.as_deref()),
        (
            NotificationStatus::Pending,
            1,
            Some("timed out after 0.05 s")
        )
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(notified(&mut rx).await.status, NotificationStatus::Sent);
    assert_eq!(
        log_lines(&c, &x).await.last().unwrap().1,
        "Failure notification sent"
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn channels_are_independent_and_a_skip_is_logged() {
    let clock = clock();
    let email = Scripted::new("email", vec![Answer::Transient("smtp down")]);
    let webhook = Scripted::new("webhook", vec![Answer::Sent]);
    let chat = Scripted::new("chat", vec![Answer::Skip("the owner has no chat handle")]);
    let c = builder(&clock)
        .notifier(email.clone())
        .notifier(webhook.clone())
        .notifier(chat.clone())
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let x = fail_one(&c, &mut rx).await;
    let mut first = Vec::new();
    for _ in 0..3 {
        let n = notified(&mut rx).await;
        first.push((n.channel, n.status));
    }
    first.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        first,
        vec![
            ("chat".to_owned(), NotificationStatus::Skipped),
            ("email".to_owned(), NotificationStatus::Pending),
            ("webhook".to_owned(), NotificationStatus::Sent),
        ]
    );
    clock.advance(Duration::from_secs(30));
    let n = notified(&mut rx).await;
    assert_eq!(
        (n.channel.as_str(), n.status),
        ("email", NotificationStatus::Sent)
    );
    assert_eq!(
        (
            email.calls().len(),
            webhook.calls().len(),
            chat.calls().len()
        ),
        (2, 1, 1),
        "the email retry never repeats the webhook"
    );
    let lines = log_lines(&c, &x).await;
    assert!(
        lines.contains(&(
            LogLevel::Warn,
            "Failure notification not sent: the owner has no chat handle".to_owned()
        )),
        "{lines:?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|(_, m)| m == "Failure notification sent")
            .count(),
        2
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_notifier_the_log_says_none_is_configured() {
    let clock = clock();
    let c = builder(&clock).build().await.unwrap();
    let mut rx = c.subscribe();
    let x = fail_one(&c, &mut rx).await;
    let lines = log_lines(&c, &x).await;
    assert_eq!(
        lines,
        vec![
            (
                LogLevel::Error,
                "failed for good: the error is not retryable".to_owned()
            ),
            (
                LogLevel::Warn,
                "Failure notification not sent: no notifier is configured".to_owned()
            ),
        ]
    );
    assert_eq!(c.store().notifications(x.id).await.unwrap(), Vec::new());
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_channel_registered_twice_fails_the_build() {
    let err = Chronos::builder()
        .notifier(Scripted::new("email", vec![]))
        .notifier(Scripted::new("email", vec![]))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DuplicateNotifier(ref c) if c == "email"),
        "{err}"
    );
}

#[tokio::test]
async fn a_claim_left_by_a_dead_dispatcher_is_taken_over_once() {
    let clock = clock();
    let store = MemoryStore::new();
    let queue = MemoryQueue::new(clock.clone());
    let gate = Arc::new(tokio::sync::Notify::new());
    let stuck = Scripted::new("email", vec![Answer::Hang(gate.clone())]);
    let a = builder(&clock)
        .store(store.clone())
        .queue(queue.clone())
        .notifier(stuck.clone())
        .build()
        .await
        .unwrap();
    let mut rx_a = a.subscribe();
    let x = fail_one(&a, &mut rx_a).await;
    // Process A has claimed the notification and hangs in the channel.
    tokio::time::timeout(WAIT, async {
        while stuck.calls().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    let claimed = store.notifications(x.id).await.unwrap().remove(0);
    assert_eq!(
        (claimed.attempts, claimed.due_at),
        (1, x.finished_at.unwrap() + Duration::from_secs(60)),
        "claimed for the send timeout plus a lease"
    );

    let healthy = Scripted::new("email", vec![]);
    let b = builder(&clock)
        .store(store.clone())
        .queue(queue.clone())
        .notifier(healthy.clone())
        .build()
        .await
        .unwrap();
    let mut rx_b = b.subscribe();
    no_notification(&mut rx_b).await;
    clock.advance(Duration::from_secs(60));
    let n = notified(&mut rx_b).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Sent, 2));
    assert_eq!(healthy.calls(), vec![(2, n.id)]);

    // A wakes up late: its outcome is refused and writes nothing.
    gate.notify_one();
    no_notification(&mut rx_a).await;
    let lines = log_lines(&b, &x).await;
    assert_eq!(
        lines
            .iter()
            .filter(|(_, m)| m.starts_with("Failure notification"))
            .collect::<Vec<_>>(),
        vec![&(LogLevel::Info, "Failure notification sent".to_owned())]
    );
    assert_eq!(store.notifications(x.id).await.unwrap(), vec![n]);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_does_not_wait_on_a_hung_channel_past_the_grace_period() {
    let clock = clock();
    let gate = Arc::new(tokio::sync::Notify::new());
    let stuck = Scripted::new("email", vec![Answer::Hang(gate)]);
    let c = builder(&clock)
        .notifier(stuck.clone())
        .configure(|c| c.notify.timeout = Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let x = fail_one(&c, &mut rx).await;
    tokio::time::timeout(WAIT, async {
        while stuck.calls().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), c.shutdown())
        .await
        .expect("shutdown is bounded by the grace period")
        .unwrap();
    let n = c.store().notifications(x.id).await.unwrap().remove(0);
    assert_eq!(
        (n.status, n.attempts),
        (NotificationStatus::Pending, 1),
        "left pending: its claim lapses and another process sends it"
    );
}
