//! [`Notifier`]: a channel that tells a job's owner it failed for good.
//!
//! # Delivery
//! Notifications go through an outbox in the store. When an occurrence fails for
//! good, the same store step that records the failure records one pending
//! [`Notification`](crate::model::Notification) per configured channel (and at most
//! one per occurrence and channel, however often the occurrence was re-delivered). A
//! dispatcher in every worker process claims due notifications of the channels it has,
//! calls [`Notifier::job_failed`] under a timeout, and records the outcome together with
//! a line in the failed execution's log ("Failure notification sent", or why not).
//! A failed attempt that [`NotifyError::is_retryable`] is tried again after a backoff
//! that doubles ([`NotifyPolicy`](crate::NotifyPolicy)); a claim whose process dies
//! lapses and another dispatcher takes it over.
//!
//! So a failure is announced once per channel. The one exception is a crash after the
//! channel accepted the message and before the outcome was recorded: the attempt is
//! then repeated, with the same [`Failure::id`], which receivers can use to deduplicate.
//!
//! ```
//! use async_trait::async_trait;
//! use chronos::notifier::{Delivery, Failure, Notifier, NotifyError};
//!
//! /// Posts failures to a chat room.
//! struct Chat;
//!
//! #[async_trait]
//! impl Notifier for Chat {
//!     fn channel(&self) -> &str {
//!         "chat"
//!     }
//!
//!     async fn job_failed(&self, failure: &Failure) -> Result<Delivery, NotifyError> {
//!         let text = format!("{} failed: {}", failure.job.name, failure.error());
//!         // ... send `text`; a transient error would be `NotifyError::retryable(..)`
//!         # let _ = text;
//!         Ok(Delivery::Sent { to: "#ops".into() })
//!     }
//! }
//! ```

use async_trait::async_trait;
use uuid::Uuid;

use crate::model::{Execution, Job};

/// A failure that exhausted its retries (or was fatal), as handed to a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The notification's id: the same on every delivery attempt (use it as a
    /// message id or idempotency key).
    pub id: Uuid,
    /// This delivery attempt, from 1.
    pub attempt: u32,
    /// The job, as stored when the notification is sent.
    pub job: Job,
    /// The last attempt of the occurrence.
    pub execution: Execution,
}

impl Failure {
    /// The last attempt's error message (empty if it recorded none).
    pub fn error(&self) -> &str {
        self.execution.error.as_deref().unwrap_or("")
    }

    /// How many attempts the occurrence made.
    pub fn attempts_made(&self) -> u32 {
        self.execution.attempt + 1
    }
}

/// What a channel did with a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted for delivery.
    Sent {
        /// Where it went (an address, a URL), for the log.
        to: String,
    },
    /// Deliberately not sent (no address is known for the owner, say).
    Skipped {
        /// Why, for the log.
        reason: String,
    },
}

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    /// What went wrong.
    pub message: String,
    retryable: bool,
    /// The underlying error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl NotifyError {
    /// A transient failure (server down, timeout): worth trying again later.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            source: None,
        }
    }

    /// A failure that trying again cannot fix (a rejected address, bad credentials).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            source: None,
        }
    }

    /// Attaches the underlying error.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// A channel for final failures (email, a webhook, ...). Register channels with
/// [`ChronosBuilder::notifier`](crate::ChronosBuilder::notifier); each gets its own
/// outbox row per failure, so a channel that is down never repeats another's message.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The channel's name, unique in a deployment (`email`, `webhook`): outbox rows
    /// are recorded under it, and only a process that has the channel sends them.
    fn channel(&self) -> &str;

    /// Tells the job's owner that the occurrence failed for good.
    ///
    /// The dispatcher drops the future after [`NotifyPolicy::timeout`](crate::NotifyPolicy::timeout)
    /// (30 s by default) and counts the attempt as a retryable failure, so a channel
    /// should give up on its own a little earlier (and must tolerate cancellation).
    /// Time stamps a channel puts on the wire (a webhook signature's) come from the
    /// system clock, not the engine's: they are for the receiver's replay checks.
    async fn job_failed(&self, failure: &Failure) -> Result<Delivery, NotifyError>;
}
