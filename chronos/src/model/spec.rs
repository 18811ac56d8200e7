//! What a user asks for, and the validation both the library and the service apply.
//!
//! ```
//! use chronos::model::JobSpec;
//! use serde_json::json;
//!
//! let spec = JobSpec::cron("nightly report", "30 2 * * *")
//!     .timezone("Europe/Berlin")
//!     .handler("send-report")
//!     .payload(json!({"to": "ops"}))
//!     .max_retries(5);
//! assert_eq!(spec.name, "nightly report");
//! ```

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{JobStatus, MissedPolicy, Schedule};
use crate::cron::{CronError, CronSchedule};

/// Longest job name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Longest handler name, in characters.
pub const MAX_HANDLER_CHARS: usize = 100;
/// Longest timeout of one attempt.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most retries after the first attempt.
pub const MAX_RETRIES: u32 = 10;
/// Longest retry backoff base.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(24 * 3600);
/// Default timeout of one attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default number of retries.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default backoff base: retries wait 1, 2, 4, … minutes.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(60);
/// The handler of a job that names none: the built-in executor that succeeds and
/// returns its payload.
pub const DEFAULT_HANDLER: &str = "echo";

/// A new job, before validation. Build it with [`JobSpec::immediate`],
/// [`JobSpec::at`] or [`JobSpec::cron`] and the setters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The owner (the nil UUID for an embedded app with no users).
    pub owner: Uuid,
    /// 1..=255 characters.
    pub name: String,
    /// Up to 1000 characters.
    pub description: Option<String>,
    /// When it runs.
    pub schedule: Schedule,
    /// IANA time zone name (default `UTC`).
    pub timezone: String,
    /// Registered executor name (default [`DEFAULT_HANDLER`]).
    pub handler: String,
    /// A JSON object (default `{}`).
    pub payload: serde_json::Value,
    /// Per-attempt timeout, 1 s..=1 h (default 5 min).
    pub timeout: Duration,
    /// Retries after the first attempt, 0..=10 (default 3).
    pub max_retries: u32,
    /// Backoff base, up to 24 h (default 1 min).
    pub retry_backoff: Duration,
    /// Missed-occurrence policy (recurring jobs; default coalesce).
    pub missed_policy: MissedPolicy,
}

impl JobSpec {
    fn new(name: impl Into<String>, schedule: Schedule) -> Self {
        Self {
            owner: Uuid::nil(),
            name: name.into(),
            description: None,
            schedule,
            timezone: "UTC".to_owned(),
            handler: DEFAULT_HANDLER.to_owned(),
            payload: serde_json::Value::Object(serde_json::Map::new()),
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            missed_policy: MissedPolicy::default(),
        }
    }

    /// A one-time job that runs as soon as possible.
    pub fn immediate(name: impl Into<String>) -> Self {
        Self::new(name, Schedule::Immediate)
    }

    /// A one-time job that runs at `at` (which must be in the future).
    pub fn at(name: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self::new(name, Schedule::Scheduled { at })
    }

    /// A recurring job on a cron expression.
    pub fn cron(name: impl Into<String>, expression: impl Into<String>) -> Self {
        Self::new(
            name,
            Schedule::Cron {
                expression: expression.into(),
            },
        )
    }

    /// Sets the owner.
    pub fn owner(mut self, owner: Uuid) -> Self {
        self.owner = owner;
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the IANA time zone cron expressions are evaluated in.
    pub fn timezone(mut self, timezone: impl Into<String>) -> Self {
        self.timezone = timezone.into();
        self
    }

    /// Sets the executor by its registered name.
    pub fn handler(mut self, handler: impl Into<String>) -> Self {
        self.handler = handler.into();
        self
    }

    /// Sets the payload (must be a JSON object).
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }

    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the number of retries after the first attempt.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the backoff base: retry n waits `backoff × 2^(n-1)`.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Sets the missed-occurrence policy.
    pub fn missed_policy(mut self, policy: MissedPolicy) -> Self {
        self.missed_policy = policy;
        self
    }

    /// Checks every field. `now` decides whether a scheduled time is in the future;
    /// `handler_known` says whether an executor is registered under a name.
    pub fn validate(
        &self,
        now: DateTime<Utc>,
        handler_known: &dyn Fn(&str) -> bool,
    ) -> Result<ValidSpec, SpecError> {
        let mut fields = Vec::new();
        check_name(&self.name, &mut fields);
        if let Some(d) = &self.description {
            check_description(d, &mut fields);
        }
        check_handler(&self.handler, handler_known, &mut fields);
        check_payload(&self.payload, &mut fields);
        check_timeout(self.timeout, &mut fields);
        check_max_retries(self.max_retries, &mut fields);
        check_backoff(self.retry_backoff, &mut fields);
        if !fields.is_empty() {
            return Err(SpecError::Fields(fields));
        }
        let timezone = parse_timezone(&self.timezone)?;
        let cron = match &self.schedule {
            Schedule::Cron { expression } => Some(parse_cron(expression, timezone, now)?),
            Schedule::Scheduled { at } if *at <= now => {
                return Err(SpecError::ScheduledTimeNotInFuture {
                    scheduled_time: *at,
                });
            }
            _ => None,
        };
        Ok(ValidSpec { timezone, cron })
    }
}

/// What validation of a [`JobSpec`] established.
#[derive(Debug, Clone)]
pub struct ValidSpec {
    /// The parsed time zone.
    pub timezone: Tz,
    /// The parsed cron expression of a recurring job.
    pub cron: Option<CronSchedule>,
}

/// A change to an existing job; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New cron expression (recurring jobs only).
    pub cron_expression: Option<String>,
    /// New time zone.
    pub timezone: Option<String>,
    /// New payload.
    pub payload: Option<serde_json::Value>,
    /// New timeout.
    pub timeout: Option<Duration>,
    /// New retry count.
    pub max_retries: Option<u32>,
    /// New retry backoff base.
    pub retry_backoff: Option<Duration>,
    /// New handler.
    pub handler: Option<String>,
    /// New missed-occurrence policy.
    pub missed_policy: Option<MissedPolicy>,
    /// `Active` or `Paused`: the same as resume or pause.
    pub status: Option<JobStatus>,
}

impl JobUpdate {
    /// Whether the update changes nothing (an error for the service).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Checks the fields the update sets, as [`JobSpec::validate`] does.
    pub fn validate(&self, handler_known: &dyn Fn(&str) -> bool) -> Result<(), SpecError> {
        let mut fields = Vec::new();
        if let Some(n) = &self.name {
            check_name(n, &mut fields);
        }
        if let Some(Some(d)) = &self.description {
            check_description(d, &mut fields);
        }
        if let Some(h) = &self.handler {
            check_handler(h, handler_known, &mut fields);
        }
        if let Some(p) = &self.payload {
            check_payload(p, &mut fields);
        }
        if let Some(t) = self.timeout {
            check_timeout(t, &mut fields);
        }
        if let Some(r) = self.max_retries {
            check_max_retries(r, &mut fields);
        }
        if let Some(b) = self.retry_backoff {
            check_backoff(b, &mut fields);
        }
        if let Some(s) = self.status
            && !matches!(s, JobStatus::Active | JobStatus::Paused)
        {
            fields.push(FieldError::new(
                "status",
                format!("must be active or paused, not {}", s.as_str()),
            ));
        }
        if fields.is_empty() {
            Ok(())
        } else {
            Err(SpecError::Fields(fields))
        }
    }
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name as the API spells it (`name`, `schedule.cron_expression`, …).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a job spec or update was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// One or more fields are invalid.
    #[error("invalid job: {}", join(.0))]
    Fields(Vec<FieldError>),
    /// The time zone is not an IANA name.
    #[error("unknown time zone {0:?}: expected an IANA name such as Europe/Berlin")]
    InvalidTimezone(String),
    /// The cron expression does not parse, or never fires.
    #[error("invalid cron expression {expression:?}: {reason}")]
    InvalidCron {
        /// The expression as given.
        expression: String,
        /// The parser's reason.
        reason: String,
    },
    /// A scheduled job's time is not in the future.
    #[error("scheduled_time {scheduled_time} is not in the future")]
    ScheduledTimeNotInFuture {
        /// The time given.
        scheduled_time: DateTime<Utc>,
    },
}

fn join(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses an IANA time zone name.
pub fn parse_timezone(name: &str) -> Result<Tz, SpecError> {
    name.parse::<Tz>()
        .map_err(|_| SpecError::InvalidTimezone(name.to_owned()))
}

/// Parses a cron expression and checks that it fires at least once after `now` in `tz`.
pub fn parse_cron(expression: &str, tz: Tz, now: DateTime<Utc>) -> Result<CronSchedule, SpecError> {
    let invalid = |reason: String| SpecError::InvalidCron {
        expression: expression.to_owned(),
        reason,
    };
    let cron = CronSchedule::parse(expression).map_err(|e: CronError| invalid(e.to_string()))?;
    if cron.next_after(now, tz).is_none() {
        return Err(invalid("it never fires".to_owned()));
    }
    Ok(cron)
}

fn check_name(name: &str, out: &mut Vec<FieldError>) {
    let n = name.trim().chars().count();
    if n == 0 {
        out.push(FieldError::new("name", "must not be empty"));
    } else if name.chars().count() > MAX_NAME_CHARS {
        out.push(FieldError::new(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
}

fn check_description(d: &str, out: &mut Vec<FieldError>) {
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        out.push(FieldError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
}

fn check_handler(h: &str, known: &dyn Fn(&str) -> bool, out: &mut Vec<FieldError>) {
    if h.is_empty() || h.chars().count() > MAX_HANDLER_CHARS {
        out.push(FieldError::new(
            "handler",
            format!("must be 1 to {MAX_HANDLER_CHARS} characters"),
        ));
    } else if !known(h) {
        out.push(FieldError::new(
            "handler",
            format!("no executor is registered under {h:?}"),
        ));
    }
}

fn check_payload(p: &serde_json::Value, out: &mut Vec<FieldError>) {
    if !p.is_object() {
        out.push(FieldError::new("payload", "must be a JSON object"));
    }
}

fn check_timeout(t: Duration, out: &mut Vec<FieldError>) {
    if t < Duration::from_secs(1) || t > MAX_TIMEOUT {
        out.push(FieldError::new(
            "timeout_seconds",
            format!("must be between 1 and {} seconds", MAX_TIMEOUT.as_secs()),
        ));
    }
}

fn check_max_retries(r: u32, out: &mut Vec<FieldError>) {
    if r > MAX_RETRIES {
        out.push(FieldError::new(
            "max_retries",
            format!("must be between 0 and {MAX_RETRIES}"),
        ));
    }
}

fn check_backoff(b: Duration, out: &mut Vec<FieldError>) {
    if b > MAX_RETRY_BACKOFF {
        out.push(FieldError::new(
            "retry_backoff_ms",
            format!("must be at most {} ms", MAX_RETRY_BACKOFF.as_millis()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn known(h: &str) -> bool {
        h == "echo" || h == "report"
    }

    #[test]
    fn defaults_are_valid() {
        let v = JobSpec::immediate("x").validate(now(), &known).unwrap();
        assert_eq!(v.timezone, Tz::UTC);
        assert!(v.cron.is_none());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let err = JobSpec::immediate("")
            .description("d".repeat(1001))
            .handler("missing")
            .payload(json!([1]))
            .timeout(Duration::from_secs(3601))
            .max_retries(11)
            .retry_backoff(Duration::from_secs(86_401))
            .validate(now(), &known)
            .unwrap_err();
        let SpecError::Fields(fields) = err else {
            panic!("expected field errors, got {err:?}")
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "name",
                "description",
                "handler",
                "payload",
                "timeout_seconds",
                "max_retries",
                "retry_backoff_ms"
            ]
        );
        assert_eq!(
            fields[2].message,
            "no executor is registered under \"missing\""
        );
    }

    #[test]
    fn name_limits_count_characters_not_bytes() {
        assert!(
            JobSpec::immediate("é".repeat(255))
                .validate(now(), &known)
                .is_ok()
        );
        assert!(
            JobSpec::immediate("é".repeat(256))
                .validate(now(), &known)
                .is_err()
        );
        assert!(JobSpec::immediate("   ").validate(now(), &known).is_err());
    }

    #[test]
    fn timezone_must_be_iana() {
        let err = JobSpec::immediate("x")
            .timezone("Mars/Olympus")
            .validate(now(), &known)
            .unwrap_err();
        assert_eq!(err, SpecError::InvalidTimezone("Mars/Olympus".into()));
    }

    #[test]
    fn scheduled_time_must_be_in_the_future() {
        let err = JobSpec::at("x", now()).validate(now(), &known).unwrap_err();
        assert_eq!(
            err,
            SpecError::ScheduledTimeNotInFuture {
                scheduled_time: now()
            }
        );
        let later = now() + chrono::Duration::milliseconds(1);
        assert!(JobSpec::at("x", later).validate(now(), &known).is_ok());
    }

    #[test]
    fn cron_errors_carry_the_parser_reason() {
        let err = JobSpec::cron("x", "61 * * * *")
            .validate(now(), &known)
            .unwrap_err();
        let SpecError::InvalidCron { expression, reason } = err else {
            panic!("expected a cron error, got {err:?}")
        };
        assert_eq!(expression, "61 * * * *");
        assert!(!reason.is_empty());
    }

    #[test]
    fn cron_that_never_fires_is_rejected() {
        let err = JobSpec::cron("x", "0 0 30 2 *")
            .validate(now(), &known)
            .unwrap_err();
        assert!(
            matches!(err, SpecError::InvalidCron { ref reason, .. } if reason == "it never fires"),
            "{err:?}"
        );
    }

    #[test]
    fn update_checks_only_what_it_sets() {
        assert!(JobUpdate::default().is_empty());
        let u = JobUpdate {
            max_retries: Some(3),
            ..Default::default()
        };
        assert!(!u.is_empty());
        assert!(u.validate(&known).is_ok());
        let bad = JobUpdate {
            status: Some(JobStatus::Completed),
            name: Some(String::new()),
            ..Default::default()
        };
        let SpecError::Fields(f) = bad.validate(&known).unwrap_err() else {
            panic!()
        };
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn backoff_doubles_and_saturates() {
        let job = super::super::Job::from_spec(&JobSpec::immediate("x"), Tz::UTC, now());
        assert_eq!(job.backoff_for(1), Duration::from_secs(60));
        assert_eq!(job.backoff_for(2), Duration::from_secs(120));
        assert_eq!(job.backoff_for(3), Duration::from_secs(240));
        assert_eq!(
            job.backoff_for(200),
            Duration::from_secs(60).saturating_mul(u32::MAX)
        );
    }
}
