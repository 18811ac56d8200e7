//! The notification dispatcher: deliver failure notifications from the store's outbox.
//!
//! It claims due notifications of this process's channels, sends each under
//! [`NotifyPolicy::timeout`], and settles it with a log line. When nothing is due it
//! sleeps until the earliest pending one (a retry, or a claim that lapses because its
//! process died), woken at once when a worker here records a failure, and looks again
//! at least every [`Config::sync_interval`](super::Config::sync_interval) for
//! failures recorded by other processes that died before sending them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;
use tracing::Instrument;
use uuid::Uuid;

use super::{Event, Inner};
use crate::clock::after;
use crate::model::{LogEntry, LogLevel};
use crate::notifier::{Delivery, Failure};
use crate::store::{ClaimedNotification, NotificationOutcome, SettleNotification, StoreError};

/// How failure notifications are delivered.
#[derive(Debug, Clone)]
pub struct NotifyPolicy {
    /// Delivery attempts per notification and channel (default 3).
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles after each (default 30 s).
    pub backoff: Duration,
    /// The longest one attempt may take before it counts as failed (default 30 s).
    pub timeout: Duration,
    /// Attempts in flight at once in this process (default 8).
    pub concurrency: usize,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            concurrency: 8,
        }
    }
}

impl NotifyPolicy {
    /// The wait after failed attempt `attempt` (from 1): `backoff × 2^(attempt-1)`.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.backoff.saturating_mul(factor)
    }
}

/// How long the loop backs off after the store failed.
const STORE_ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// The dispatcher loop (spawned with the workers when a channel is registered).
pub(super) async fn run(inner: Arc<Inner>) {
    let policy = &inner.config.notify;
    let batch = policy.concurrency.max(1) * 4;
    loop {
        let woken = inner.notify_wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if inner.stop.is_cancelled() {
            return;
        }
        let next = match dispatch_due(&inner, batch).await {
            Ok(claimed) if claimed == batch => continue,
            Ok(_) => inner.store.next_notification_due(&inner.channels).await,
            Err(error) => Err(error),
        };
        let now = inner.clock.now();
        let rescan = after(now, inner.config.sync_interval);
        let until = match next {
            Ok(due) => due.map_or(rescan, |due| due.min(rescan)),
            Err(error) => {
                tracing::warn!(%error, "notification outbox unavailable; retrying");
                after(now, STORE_ERROR_BACKOFF)
            }
        };
        tokio::select! {
            () = &mut woken => {}
            () = inner.clock.sleep_until(until) => {}
            () = inner.stop.cancelled() => return,
        }
    }
}

/// Claims and delivers one batch; returns how many were claimed.
async fn dispatch_due(inner: &Arc<Inner>, batch: usize) -> Result<usize, StoreError> {
    let policy = &inner.config.notify;
    let now = inner.clock.now();
    let lease_until = after(after(now, policy.timeout), inner.config.lease);
    let claimed = inner
        .store
        .claim_notifications(&inner.channels, now, lease_until, batch)
        .await?;
    let count = claimed.len();
    futures::stream::iter(claimed)
        .for_each_concurrent(policy.concurrency.max(1), |c| {
            let span = tracing::info_span!(
                "notify",
                channel = %c.notification.channel,
                notification = %c.notification.id,
                attempt = c.notification.attempts,
            );
            deliver(inner, c).instrument(span)
        })
        .await;
    Ok(count)
}

/// Sends one claimed notification and records the outcome.
async fn deliver(inner: &Inner, claimed: ClaimedNotification) {
    let ClaimedNotification {
        notification: mut n,
        job,
        execution,
    } = claimed;
    let policy = &inner.config.notify;
    let Some(notifier) = inner.notifiers.get(&n.channel).cloned() else {
        return; // claimed only for our channels
    };
    let failure = Failure {
        id: n.id,
        attempt: n.attempts,
        job,
        execution,
    };
    let send = tokio::time::timeout(policy.timeout, notifier.job_failed(&failure));
    let sent = tokio::select! {
        sent = send => sent,
        () = shutdown_over(inner) => {
            tracing::warn!("shutdown grace period over: delivery abandoned; its claim lapses and it is tried again");
            return;
        }
    };
    let now = inner.clock.now();
    let attempt = n.attempts;
    let max = policy.max_attempts.max(1);
    let base = json!({"channel": n.channel, "notification_id": n.id, "attempt": attempt});
    let (outcome, level, message, metadata) = match sent {
        Ok(Ok(Delivery::Sent { to })) => (
            NotificationOutcome::Sent,
            LogLevel::Info,
            "Failure notification sent".to_owned(),
            with(base, "to", to.into()),
        ),
        Ok(Ok(Delivery::Skipped { reason })) => (
            NotificationOutcome::Skipped {
                reason: reason.clone(),
            },
            LogLevel::Warn,
            format!("Failure notification not sent: {reason}"),
            base,
        ),
        Ok(Err(error)) => failed(
            policy,
            now,
            attempt,
            max,
            error.is_retryable(),
            error.to_string(),
            base,
        ),
        Err(_) => failed(
            policy,
            now,
            attempt,
            max,
            true,
            format!("timed out after {} s", policy.timeout.as_secs_f64()),
            base,
        ),
    };
    let log = LogEntry {
        id: Uuid::now_v7(),
        execution_id: n.execution_id,
        job_id: n.job_id,
        owner: n.owner,
        level,
        message,
        metadata,
        timestamp: now,
    };
    match &outcome {
        NotificationOutcome::Sent => tracing::info!("failure notification sent"),
        NotificationOutcome::Retry { error, at } => {
            tracing::warn!(%error, retry_at = %at, "failure notification attempt failed");
        }
        NotificationOutcome::Skipped { reason } => {
            tracing::warn!(%reason, "failure notification skipped");
        }
        NotificationOutcome::Failed { error } => {
            tracing::error!(%error, "failure notification not delivered");
        }
    }
    let settle = SettleNotification {
        id: n.id,
        attempt,
        outcome,
        at: now,
        log,
    };
    match inner.store.settle_notification(&settle).await {
        Ok(true) => {
            settle.apply(&mut n);
            inner.emit(|| Event::Notification(n));
        }
        Ok(false) => tracing::warn!("the claim lapsed before the outcome was recorded"),
        Err(error) => {
            tracing::warn!(%error, "could not record the outcome; the claim will lapse and it is tried again");
        }
    }
}

/// Resolves once shutdown began and its grace period is over.
async fn shutdown_over(inner: &Inner) {
    inner.stop.cancelled().await;
    tokio::time::sleep(inner.config.shutdown_grace).await;
}

/// The outcome of a failed attempt: another one later, or give up.
fn failed(
    policy: &NotifyPolicy,
    now: DateTime<Utc>,
    attempt: u32,
    max: u32,
    retryable: bool,
    error: String,
    base: serde_json::Value,
) -> (NotificationOutcome, LogLevel, String, serde_json::Value) {
    let metadata = with(base, "error", error.clone().into());
    if retryable && attempt < max {
        let at = after(now, policy.backoff_after(attempt));
        let message = format!(
            "Failure notification attempt {attempt} of {max} failed: {error}; next attempt at {}",
            at.to_rfc3339()
        );
        (
            NotificationOutcome::Retry { at, error },
            LogLevel::Warn,
            message,
            metadata,
        )
    } else {
        let message = if retryable {
            format!("Failure notification not sent after {attempt} attempts: {error}")
        } else {
            format!("Failure notification not sent: {error}")
        };
        (
            NotificationOutcome::Failed { error },
            LogLevel::Error,
            message,
            metadata,
        )
    }
}

fn with(mut object: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
    object
}
