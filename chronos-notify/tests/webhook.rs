//! `WebhookNotifier` against a real HTTP receiver (axum on an ephemeral port) that
//! checks every request with `verify_signature`: the event, its headers, how answers
//! are classified, and retries through the engine.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use chronos::clock::ManualClock;
use chronos::executor::{ExecError, JobContext};
use chronos::model::NotificationStatus;
use chronos::notifier::{Delivery, Notifier};
use chronos::{Chronos, ChronosBuilder, JobSpec};
use chronos_notify::webhook::{
    DEFAULT_TOLERANCE, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use chronos_notify::{SignatureError, WebhookConfig, WebhookNotifier, verify_signature};
use serde_json::{Value, json};
use support::{failure, finished, free_port, no_notification, notification, t, within};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const SECRET: &str = "whsec_test";

/// One request as the receiver saw it.
#[derive(Debug)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
    verified: Result<(), SignatureError>,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone)]
struct Receiver {
    /// Answers to give, in order; 200 once they run out.
    answers: Arc<Mutex<VecDeque<(u16, &'static str)>>>,
    delay: Option<Duration>,
    hits: mpsc::UnboundedSender<Hit>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let verified = verify_signature(
        SECRET,
        &value(TIMESTAMP_HEADER),
        &body,
        &value(SIGNATURE_HEADER),
        Utc::now(),
        DEFAULT_TOLERANCE,
    );
    let (code, text) = if verified.is_ok() {
        r.answers.lock().unwrap().pop_front().unwrap_or((200, ""))
    } else {
        (401, "bad signature")
    };
    let _ = r.hits.send(Hit {
        headers,
        body,
        verified,
    });
    if let Some(delay) = r.delay {
        tokio::time::sleep(delay).await;
    }
    (StatusCode::from_u16(code).unwrap(), text)
}

/// A webhook receiver on 127.0.0.1, stopped when dropped.
struct Hook {
    port: u16,
    hits: mpsc::UnboundedReceiver<Hit>,
    task: JoinHandle<()>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hook {
    async fn start(answers: &[(u16, &'static str)], delay: Option<Duration>) -> Self {
        let (tx, hits) = mpsc::unbounded_channel();
        let receiver = Receiver {
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            delay,
            hits: tx,
        };
        let app = Router::new()
            .route("/hooks/chronos", post(receive))
            .with_state(receiver);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { port, hits, task }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/chronos", self.port)
    }

    fn notifier(&self) -> WebhookNotifier {
        WebhookNotifier::new(WebhookConfig::new(self.url(), SECRET)).unwrap()
    }

    async fn next(&mut self) -> Hit {
        within("a webhook request", self.hits.recv()).await.unwrap()
    }

    fn try_next(&mut self) -> Option<Hit> {
        self.hits.try_recv().ok()
    }
}

#[tokio::test]
async fn events_are_signed_and_describe_the_failure() {
    let mut hook = Hook::start(&[], None).await;
    // Credentials and a query in the URL are used but never shown.
    let url = format!(
        "http://chronos:pw@127.0.0.1:{}/hooks/chronos?token=abc",
        hook.port
    );
    let notifier = WebhookNotifier::new(WebhookConfig::new(url, SECRET)).unwrap();
    assert_eq!(notifier.channel(), "webhook");
    let f = failure(
        "nightly-report",
        "Europe/Berlin",
        t("2026-01-01T05:30:00Z"),
        "upstream down",
    );

    let before = Utc::now().timestamp();
    let sent = within("the post", notifier.job_failed(&f)).await.unwrap();
    assert_eq!(sent, Delivery::Sent { to: hook.url() });
    let hit = hook.next().await;
    assert_eq!(hit.verified, Ok(()));
    assert_eq!(hit.header("content-type"), "application/json");
    assert_eq!(hit.header(EVENT_ID_HEADER), f.id.to_string());
    let ts: i64 = hit.header(TIMESTAMP_HEADER).parse().unwrap();
    assert!((before..=Utc::now().timestamp()).contains(&ts));
    let signature = hit.header(SIGNATURE_HEADER);
    assert!(signature.starts_with("v1="));
    assert_eq!(signature.len(), 3 + 64);
    assert_eq!(signature, signature.to_ascii_lowercase());
    assert_eq!(
        hit.header("authorization"),
        "Basic Y2hyb25vczpwdw==",
        "URL credentials become basic auth"
    );

    assert_eq!(
        hit.json(),
        json!({
            "type": "job.failed",
            "id": f.id,
            "attempt": 1,
            "job": {
                "id": f.job.id,
                "name": "nightly-report",
                "owner": f.job.owner,
                "handler": "report",
                "timezone": "Europe/Berlin",
                "status": "active",
            },
            "execution": {
                "id": f.execution.id,
                "scheduled_for": "2026-01-01T00:00:00Z",
                "attempt": 2,
                "status": "failed",
                "error": "upstream down",
                "started_at": "2026-01-01T05:30:00Z",
                "finished_at": "2026-01-01T05:30:00Z",
                "manual": false,
            },
            "attempts_made": 3,
        })
    );
}

#[tokio::test]
async fn receivers_detect_a_wrong_secret_a_tampered_body_and_a_replay() {
    let mut hook = Hook::start(&[], None).await;
    let f = failure("signed", "UTC", t("2026-01-01T00:00:00Z"), "boom");
    within("the post", hook.notifier().job_failed(&f))
        .await
        .unwrap();
    let hit = hook.next().await;
    let (ts, sig) = (hit.header(TIMESTAMP_HEADER), hit.header(SIGNATURE_HEADER));
    let now = Utc::now();
    assert_eq!(
        verify_signature(SECRET, ts, &hit.body, sig, now, DEFAULT_TOLERANCE),
        Ok(())
    );
    assert_eq!(
        verify_signature("whsec_other", ts, &hit.body, sig, now, DEFAULT_TOLERANCE),
        Err(SignatureError::Mismatch)
    );
    let mut tampered = hit.json();
    tampered["execution"]["error"] = json!("all good");
    let tampered = serde_json::to_vec(&tampered).unwrap();
    assert_eq!(
        verify_signature(SECRET, ts, &tampered, sig, now, DEFAULT_TOLERANCE),
        Err(SignatureError::Mismatch)
    );
    let later = now + chrono::Duration::minutes(10);
    assert!(matches!(
        verify_signature(SECRET, ts, &hit.body, sig, later, DEFAULT_TOLERANCE),
        Err(SignatureError::Stale { .. })
    ));
    let moved = (ts.parse::<i64>().unwrap() + 600).to_string();
    assert_eq!(
        verify_signature(SECRET, &moved, &hit.body, sig, later, DEFAULT_TOLERANCE),
        Err(SignatureError::Mismatch),
        "a replay cannot move the timestamp"
    );
}

#[tokio::test]
async fn answers_and_failures_are_classified() {
    let f = failure("classified", "UTC", t("2026-01-01T00:00:00Z"), "boom");
    let cases: [(u16, &'static str, bool); 7] = [
        (408, "", true),
        (429, "slow down", true),
        (500, "", true),
        (503, "", true),
        (301, "", false),
        (400, "unknown event", false),
        (404, "", false),
    ];
    let answers: Vec<_> = cases.iter().map(|&(code, text, _)| (code, text)).collect();
    let mut hook = Hook::start(&answers, None).await;
    let notifier = hook.notifier();
    for (code, text, retryable) in cases {
        let err = within("the post", notifier.job_failed(&f))
            .await
            .unwrap_err();
        assert_eq!(err.is_retryable(), retryable, "{code}: {err}");
        assert!(err.to_string().contains(&code.to_string()), "{err}");
        assert!(err.to_string().contains(text), "{err}");
        assert_eq!(hook.next().await.verified, Ok(()));
    }

    let refused = WebhookNotifier::new(WebhookConfig::new(
        format!("http://127.0.0.1:{}/hooks/chronos", free_port()),
        SECRET,
    ))
    .unwrap();
    let err = within("the post", refused.job_failed(&f))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("could not be reached"), "{err}");

    let mut slow = Hook::start(&[], Some(Duration::from_secs(3))).await;
    let impatient = WebhookNotifier::new(WebhookConfig {
        timeout: Duration::from_millis(300),
        ..WebhookConfig::new(slow.url(), SECRET)
    })
    .unwrap();
    let started = std::time::Instant::now();
    let err = within("the post", impatient.job_failed(&f))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("did not answer in time"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    slow.next().await;
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t("2026-01-01T00:00:00Z")))
}

fn engine(clock: &Arc<ManualClock>) -> ChronosBuilder {
    Chronos::builder()
        .clock(clock.clone())
        .configure(|c| c.shutdown_grace = Duration::from_millis(200))
        .executor("bad", |_ctx: JobContext| async {
            Err::<Value, _>(ExecError::fatal("payload is wrong"))
        })
}

async fn log(c: &Chronos, owner: uuid::Uuid, execution: uuid::Uuid) -> Vec<String> {
    c.store()
        .logs(owner, execution)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect()
}

#[tokio::test]
async fn a_503_is_retried_and_delivered_on_the_second_attempt() {
    let clock = clock();
    let mut hook = Hook::start(&[(503, "maintenance")], None).await;
    let c = engine(&clock)
        .notifier(hook.notifier())
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::immediate("flaky-receiver").handler("bad"))
        .await
        .unwrap();
    let failed = finished(&mut rx).await;

    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Pending, 1));
    let first = hook.next().await;
    assert_eq!(first.json()["attempt"], 1);
    let lines = log(&c, job.owner, failed.id).await;
    let expected = format!(
        "Failure notification attempt 1 of 3 failed: the webhook {} answered 503 Service Unavailable: maintenance",
        hook.url()
    );
    assert!(lines.iter().any(|l| l.starts_with(&expected)), "{lines:?}");

    clock.advance(Duration::from_secs(30));
    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Sent, 2));
    let second = hook.next().await;
    assert_eq!(second.verified, Ok(()));
    assert_eq!(second.json()["attempt"], 2);
    assert_eq!(
        first.header(EVENT_ID_HEADER),
        second.header(EVENT_ID_HEADER),
        "the same event id on every attempt"
    );
    assert_eq!(second.json()["execution"]["id"], json!(failed.id));
    let stored = c.store().notifications(failed.id).await.unwrap();
    assert_eq!(
        (stored[0].status, stored[0].attempts),
        (NotificationStatus::Sent, 2)
    );
    assert!(
        log(&c, job.owner, failed.id)
            .await
            .contains(&"Failure notification sent".to_owned())
    );
    clock.advance(Duration::from_secs(3600));
    no_notification(&mut rx).await;
    assert!(hook.try_next().is_none());
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_400_fails_the_notification_after_one_attempt() {
    let clock = clock();
    let mut hook = Hook::start(&[(400, "unknown event type")], None).await;
    let c = engine(&clock)
        .notifier(hook.notifier())
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    let job = c
        .create(JobSpec::immediate("rejected").handler("bad"))
        .await
        .unwrap();
    let failed = finished(&mut rx).await;

    let n = notification(&mut rx).await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Failed, 1));
    hook.next().await;
    let lines = log(&c, job.owner, failed.id).await;
    let expected = format!(
        "Failure notification not sent: the webhook {} answered 400 Bad Request: unknown event type",
        hook.url()
    );
    assert!(lines.contains(&expected), "{lines:?}");
    clock.advance(Duration::from_secs(3600));
    no_notification(&mut rx).await;
    assert!(hook.try_next().is_none(), "no retry");
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_webhooks_each_get_their_own_notification() {
    let clock = clock();
    let mut ops = Hook::start(&[], None).await;
    let mut audit = Hook::start(&[], None).await;
    let second = WebhookNotifier::new(WebhookConfig {
        channel: "webhook-audit".into(),
        ..WebhookConfig::new(audit.url(), SECRET)
    })
    .unwrap();
    let c = engine(&clock)
        .notifier(ops.notifier())
        .notifier(second)
        .build()
        .await
        .unwrap();
    let mut rx = c.subscribe();
    c.create(JobSpec::immediate("both").handler("bad"))
        .await
        .unwrap();
    finished(&mut rx).await;
    let mut channels = vec![
        notification(&mut rx).await.channel,
        notification(&mut rx).await.channel,
    ];
    channels.sort();
    assert_eq!(channels, ["webhook", "webhook-audit"]);
    let (a, b) = (ops.next().await, audit.next().await);
    assert_ne!(
        a.header(EVENT_ID_HEADER),
        b.header(EVENT_ID_HEADER),
        "one notification per channel"
    );
    c.shutdown().await.unwrap();
}
