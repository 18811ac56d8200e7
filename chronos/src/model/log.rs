use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Severity of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Fine-grained detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that did not stop the attempt.
    Warn,
    /// A failure.
    Error,
}

impl LogLevel {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => return None,
        })
    }
}

/// One line of an execution's log, written by the executor or by the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Unique id (UUID v7: sorts by time of writing).
    pub id: Uuid,
    /// The execution it belongs to.
    pub execution_id: Uuid,
    /// The job of that execution.
    pub job_id: Uuid,
    /// The owner of that job.
    pub owner: Uuid,
    /// Severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
    /// Structured detail (a JSON object, `{}` when there is none).
    pub metadata: serde_json::Value,
    /// When it was written.
    pub timestamp: DateTime<Utc>,
}
