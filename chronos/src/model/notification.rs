use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a failure notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Recorded and not yet delivered: due at [`Notification::due_at`] (or being sent
    /// by a dispatcher whose claim runs until then).
    Pending,
    /// The channel accepted it.
    Sent,
    /// The channel chose not to send it (no address for the owner, say).
    Skipped,
    /// Every attempt failed, or the channel refused it for good.
    Failed,
}

impl NotificationStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Pending => "pending",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Skipped => "skipped",
            NotificationStatus::Failed => "failed",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => NotificationStatus::Pending,
            "sent" => NotificationStatus::Sent,
            "skipped" => NotificationStatus::Skipped,
            "failed" => NotificationStatus::Failed,
            _ => return None,
        })
    }
}

/// A failure notification owed on one channel: the outbox row recorded in the same
/// store step as the final failure, so a crash can neither lose it nor, for one
/// failed occurrence, double it (the store keeps one per occurrence and channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique id: the same on every delivery attempt, so receivers can deduplicate.
    pub id: Uuid,
    /// The channel that sends it ([`Notifier::channel`](crate::Notifier::channel)).
    pub channel: String,
    /// The job that failed.
    pub job_id: Uuid,
    /// Its owner.
    pub owner: Uuid,
    /// The last, failed attempt.
    pub execution_id: Uuid,
    /// The occurrence that failed for good.
    pub scheduled_for: DateTime<Utc>,
    /// The manual run that failed, if it was one.
    pub manual_run: Option<Uuid>,
    /// Where it stands.
    pub status: NotificationStatus,
    /// Delivery attempts claimed so far.
    pub attempts: u32,
    /// While pending: when the next attempt is due, or when the claim of the attempt
    /// in flight lapses.
    pub due_at: DateTime<Utc>,
    /// Why the last attempt failed or was skipped.
    pub last_error: Option<String>,
    /// When the failure was recorded.
    pub created_at: DateTime<Utc>,
    /// When it was sent, skipped or given up.
    pub finished_at: Option<DateTime<Utc>>,
}
