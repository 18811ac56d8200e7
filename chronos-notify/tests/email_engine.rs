//! The engine end to end with an `EmailNotifier` and a real SMTP server: one email per
//! failed occurrence, retries through a mail outage, and no retry after a refusal.
//! Time is a `ManualClock`, so backoffs take no real time.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chronos::clock::{Clock, ManualClock};
use chronos::executor::{ExecError, JobContext};
use chronos::model::{ExecutionStatus, NotificationStatus};
use chronos::notifier::NotifyError;
use chronos::{Chronos, ChronosBuilder, JobSpec};
use chronos_notify::testing::{ServerOptions, SmtpServer};
use chronos_notify::{EmailNotifier, FixedRecipient, Recipients, SmtpConfig, TlsMode};
use serde_json::Value;
use support::{WAIT, finished, free_port, no_notification, notification, t};
use uuid::Uuid;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t("2026-01-01T00:00:00Z")))
}

fn email(port: u16) -> EmailNotifier {
    let cfg = SmtpConfig {
        port,
        timeout: Duration::from_secs(5),
        logs_url: Some("https://chronos.example.com".into()),
        ..SmtpConfig::new("127.0.0.1", TlsMode::None, "chronos@example.com")
    };
    EmailNotifier::new(cfg, FixedRecipient::new("ops@example.com").unwrap()).unwrap()
}

/// An engine whose `broken` handler always fails (retryably) and `bad` fails fatally.
fn engine(clock: &Arc<ManualClock>) -> ChronosBuilder {
    Chronos::builder()
        .clock(clock.clone())
        .configure(|c| c.shutdown_grace = Duration::from_millis(200))
        .executor("broken", |_ctx: JobContext| async {
            Err::<Value, _>(ExecError::retryable("upstream down"))
        })
        .executor("bad", |_ctx: JobContext| async {
            Err::<Value, _>(ExecError::fatal("payload is wrong"))
        })
}

/// The log lines of an execution.
async fn log(c: &Chronos, owner: Uuid, execution: Uuid) -> Vec<String> {
    c.store()
        .logs(owner, execution)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect()
}

fn has_line(lines: &[String], start: &str) -> bool {
    lines.iter().any(|l| l.starts_with(start))
}

#[tokio::test]
async fn a_job_that_fails_for_good_sends_exactly_one_email() {
    let clock = clock();
    let mut server = SmtpServer::start(ServerOptions::default()).await.unwrap();
    let c = engine(&clock)
        .notifier(email(server.port()))
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(
            JobSpec::immediate("nightly-report")
                .handler("broken")
                .timezone("Europe/Berlin")
                .max_retries(1)
                .retry_backoff(Duration::from_secs(1)),
        )
        .await
        .unwrap();

    let first = finished(&mut rx).await;
    assert_eq!((first.attempt, first.status), (0, ExecutionStatus::Failed));
    no_notification(&mut rx).await;
    assert!(
        server.try_next().is_none(),
        "no email for a failure that will be retried"
    );

    clock.advance(Duration::from_secs(1));
    let last = finished(&mut rx).await;
    assert_eq!((last.attempt, last.status), (1, ExecutionStatus::Failed));
    let n = notification(&mut rx).await;
    assert_eq!(
        (n.status, n.attempts, n.execution_id, n.channel.as_str()),
        (NotificationStatus::Sent, 1, last.id, "email")
    );

    let mail = server.next_mail(WAIT).await.unwrap();
    let m = mail.parsed().unwrap();
    assert_eq!(m.subject(), Some("Job Failed: nightly-report"));
    assert_eq!(m.message_id(), Some(format!("{}@chronos", n.id).as_str()));
    let text = m.body_text(0).unwrap();
    assert!(text.contains(&job.id.to_string()));
    assert!(text.contains("2026-01-01 00:00:01 UTC"), "{text}");
    assert!(
        text.contains("2026-01-01 01:00:01 CET (Europe/Berlin)"),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "Attempts:   2"), "{text}");
    assert!(text.contains("upstream down"));
    assert!(text.contains(&format!(
        "https://chronos.example.com/api/v1/executions/{}/logs",
        last.id
    )));

    let lines = log(&c, job.owner, last.id).await;
    assert!(has_line(&lines, "Failure notification sent"), "{lines:?}");
    assert!(!has_line(
        &log(&c, job.owner, first.id).await,
        "Failure notification"
    ));

    clock.advance(Duration::from_secs(3600));
    no_notification(&mut rx).await;
    assert!(server.try_next().is_none(), "exactly one email");
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_recurring_job_sends_one_email_per_failed_occurrence() {
    let clock = clock();
    let mut server = SmtpServer::start(ServerOptions::default()).await.unwrap();
    let c = engine(&clock)
        .notifier(email(server.port()))
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    c.create(JobSpec::cron("minutely", "* * * * *").handler("bad"))
        .await
        .unwrap();

    let mut ids = Vec::new();
    for minute in 1..=2 {
        clock.advance(Duration::from_secs(60));
        let e = finished(&mut rx).await;
        assert_eq!(e.status, ExecutionStatus::Failed);
        let n = notification(&mut rx).await;
        assert_eq!((n.status, n.execution_id), (NotificationStatus::Sent, e.id));
        let mail = server.next_mail(WAIT).await.unwrap();
        let m = mail.parsed().unwrap();
        let text = m.body_text(0).unwrap();
        assert!(
            text.contains(&format!("2026-01-01 00:0{minute}:00 UTC")),
            "{text}"
        );
        ids.push(m.message_id().unwrap().to_owned());
    }
    assert_ne!(ids[0], ids[1], "each occurrence is its own notification");
    assert!(server.try_next().is_none());
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_mail_outage_is_bridged_by_the_next_attempt() {
    let clock = clock();
    let port = free_port();
    let c = engine(&clock).notifier(email(port)).build().await.unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::immediate("outage").handler("bad"))
        .await
        .unwrap();
    let failed = finished(&mut rx).await;

    // Nothing listens: attempt 1 fails and is retried after the backoff (30 s).
    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Pending, 1));
    assert_eq!(n.due_at, clock.now() + chrono::Duration::seconds(30));
    let lines = log(&c, job.owner, failed.id).await;
    assert!(
        has_line(&lines, "Failure notification attempt 1 of 3 failed"),
        "{lines:?}"
    );

    // The mail server comes back on that very port; the next attempt delivers.
    let mut server = SmtpServer::start_on(port, ServerOptions::default())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(30));
    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Sent, 2));
    assert_eq!(
        server
            .next_mail(WAIT)
            .await
            .unwrap()
            .parsed()
            .unwrap()
            .subject(),
        Some("Job Failed: outage")
    );

    let stored = c.store().notifications(failed.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].status, stored[0].attempts),
        (NotificationStatus::Sent, 2)
    );
    assert!(has_line(
        &log(&c, job.owner, failed.id).await,
        "Failure notification sent"
    ));
    clock.advance(Duration::from_secs(3600));
    no_notification(&mut rx).await;
    assert!(server.try_next().is_none(), "exactly one email");
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_outage_through_every_attempt_fails_the_notification() {
    let clock = clock();
    let port = free_port();
    let c = engine(&clock)
        .configure(|c| c.notify.backoff = Duration::from_secs(5))
        .notifier(email(port))
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::immediate("down").handler("bad"))
        .await
        .unwrap();
    let failed = finished(&mut rx).await;

    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Pending, 1));
    clock.advance(Duration::from_secs(5));
    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Pending, 2));
    clock.advance(Duration::from_secs(10)); // the backoff doubles
    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Failed, 3));

    let lines = log(&c, job.owner, failed.id).await;
    assert!(has_line(
        &lines,
        "Failure notification attempt 1 of 3 failed"
    ));
    assert!(has_line(
        &lines,
        "Failure notification attempt 2 of 3 failed"
    ));
    assert!(
        has_line(&lines, "Failure notification not sent after 3 attempts"),
        "{lines:?}"
    );
    let stored = c.store().notifications(failed.id).await.unwrap();
    assert_eq!(
        (stored[0].status, stored[0].attempts),
        (NotificationStatus::Failed, 3)
    );
    clock.advance(Duration::from_secs(3600));
    no_notification(&mut rx).await;
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retried() {
    let clock = clock();
    let mut server = SmtpServer::start(ServerOptions {
        reject_rcpt: Some((550, "5.1.1 Mailbox unavailable".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = engine(&clock)
        .notifier(email(server.port()))
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::immediate("refused").handler("bad"))
        .await
        .unwrap();
    let failed = finished(&mut rx).await;

    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Failed, 1));
    assert!(
        n.last_error.as_deref().unwrap().contains("550"),
        "{:?}",
        n.last_error
    );
    let lines = log(&c, job.owner, failed.id).await;
    assert!(
        has_line(
            &lines,
            &format!(
                "Failure notification not sent: the SMTP server 127.0.0.1:{} refused: \
                 permanent error (550): 5.1.1 Mailbox unavailable",
                server.port()
            )
        ),
        "{lines:?}"
    );

    clock.advance(Duration::from_secs(3600));
    no_notification(&mut rx).await;
    assert_eq!(server.rcpt_commands(), 1, "one attempt, no retry");
    assert!(server.try_next().is_none());
    c.shutdown().await.unwrap();
}

/// Knows nobody's address.
struct Nobody;

#[async_trait]
impl Recipients for Nobody {
    async fn email_of(&self, _owner: Uuid) -> Result<Option<String>, NotifyError> {
        Ok(None)
    }
}

#[tokio::test]
async fn an_owner_without_an_address_is_skipped_and_the_log_says_why() {
    let clock = clock();
    let mut server = SmtpServer::start(ServerOptions::default()).await.unwrap();
    let cfg = SmtpConfig {
        port: server.port(),
        ..SmtpConfig::new("127.0.0.1", TlsMode::None, "chronos@example.com")
    };
    let c = engine(&clock)
        .notifier(EmailNotifier::new(cfg, Nobody).unwrap())
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::immediate("orphan").handler("bad"))
        .await
        .unwrap();
    let failed = finished(&mut rx).await;
    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Skipped, 1));
    let lines = log(&c, job.owner, failed.id).await;
    assert!(
        lines.contains(
            &"Failure notification not sent: no email address is known for the job's owner"
                .to_owned()
        ),
        "{lines:?}"
    );
    assert!(server.try_next().is_none());
    c.shutdown().await.unwrap();
}
