//! The API's JSON representations of jobs, executions, log entries and pages, and
//! the strict reading of request bodies that the job routes share.
//!
//! Instants are written with [`crate::respond::timestamp`] (RFC 3339 UTC, milliseconds,
//! `Z`); absent values are `null`, never left out, so every representation has the
//! same keys whatever the state of what it shows.
//!
//! Each representation derives [`ToSchema`]: the OpenAPI document describes these
//! types, and the enumerations of [`schema`] are built from the core's enums.

use chrono::{DateTime, Utc};
use chronos::model::{Execution, Job, JobStats, LogEntry, Page};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, FieldIssue};

/// A job as every route shows it.
///
/// `job_id` repeats `id` for the original web frontend, which reads `job_id`.
/// Absent values are `null`: every key is always there.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = Job)]
pub struct JobJson {
    /// The job's id.
    pub id: Uuid,
    /// The same id (the original frontend reads this name).
    pub job_id: Uuid,
    /// The owner.
    pub user_id: Uuid,
    /// The name.
    pub name: String,
    /// The description, `null` when none.
    #[schema(required = true)]
    pub description: Option<String>,
    /// `one-time` or `recurring`.
    #[schema(value_type = schema::JobType)]
    pub job_type: &'static str,
    /// `immediate`, `scheduled` or `cron`.
    #[schema(value_type = schema::ScheduleType)]
    pub schedule_type: &'static str,
    /// The instant a scheduled job runs at; `null` for other schedules.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    pub scheduled_time: Option<DateTime<Utc>>,
    /// The cron expression of a recurring job; `null` for one-time jobs.
    #[schema(required = true)]
    pub cron_expression: Option<String>,
    /// The IANA time zone.
    pub timezone: &'static str,
    /// The executor's name.
    pub handler: String,
    /// The payload handed to the executor (a JSON object).
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Per-attempt timeout in seconds.
    pub timeout_seconds: u64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The retry number of the latest attempt (0: a first attempt).
    pub retry_count: u32,
    /// The backoff base in milliseconds (retry n waits `retry_backoff_ms × 2^(n-1)`).
    pub retry_backoff_ms: u64,
    /// `pending`, `active`, `paused`, `completed` or `failed`.
    #[schema(value_type = schema::JobStatus)]
    pub status: &'static str,
    /// The next occurrence owed, `null` when none.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    pub next_run: Option<DateTime<Utc>>,
    /// When the latest attempt started.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    pub last_executed_at: Option<DateTime<Utc>>,
    /// When it was last paused.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    pub paused_at: Option<DateTime<Utc>>,
    /// When it was last resumed.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    pub resumed_at: Option<DateTime<Utc>>,
    /// Creation time.
    #[serde(with = "crate::respond::instant")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "crate::respond::instant")]
    pub updated_at: DateTime<Utc>,
}

impl From<&Job> for JobJson {
    fn from(job: &Job) -> Self {
        Self {
            id: job.id,
            job_id: job.id,
            user_id: job.owner,
            name: job.name.clone(),
            description: job.description.clone(),
            job_type: job.kind().as_str(),
            schedule_type: job.schedule.type_name(),
            scheduled_time: job.scheduled_time(),
            cron_expression: job.cron_expression().map(str::to_owned),
            timezone: job.timezone.name(),
            handler: job.handler.clone(),
            payload: job.payload.clone(),
            timeout_seconds: job.timeout.as_secs(),
            max_retries: job.max_retries,
            retry_count: job.retry_count,
            retry_backoff_ms: millis(job.retry_backoff),
            status: job.status.as_str(),
            next_run: job.next_run,
            last_executed_at: job.last_executed_at,
            paused_at: job.paused_at,
            resumed_at: job.resumed_at,
            created_at: job.created_at,
            updated_at: job.updated_at,
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A job's execution statistics, as `GET /jobs/:id` shows them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = Statistics)]
pub struct StatisticsJson {
    /// Every recorded attempt (queued, running and cancelled ones included).
    pub total_executions: u64,
    /// Attempts that succeeded.
    pub successful_executions: u64,
    /// Attempts that failed or timed out.
    pub failed_executions: u64,
    /// Mean duration of the attempts that recorded one, in milliseconds, rounded to
    /// 2 decimals; 0 when none did.
    pub average_duration_ms: f64,
    /// When the latest attempt started, `null` when none has.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    pub last_execution_time: Option<DateTime<Utc>>,
}

impl From<&JobStats> for StatisticsJson {
    fn from(s: &JobStats) -> Self {
        Self {
            total_executions: s.total_executions,
            successful_executions: s.successful_executions,
            failed_executions: s.failed_executions,
            average_duration_ms: round2(s.average_duration_ms.unwrap_or(0.0)),
            last_execution_time: s.last_execution_time,
        }
    }
}

/// A job with its statistics (`GET /jobs/:id`). `execution_count`, `success_count`
/// and `failure_count` repeat the statistics for the original web frontend.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = JobDetail)]
pub struct JobDetailJson {
    /// The job.
    #[serde(flatten)]
    pub job: JobJson,
    /// Its statistics.
    pub statistics: StatisticsJson,
    /// `statistics.total_executions`.
    pub execution_count: u64,
    /// `statistics.successful_executions`.
    pub success_count: u64,
    /// `statistics.failed_executions`.
    pub failure_count: u64,
}

impl JobDetailJson {
    /// The job and its statistics.
    pub fn new(job: &Job, stats: &JobStats) -> Self {
        Self {
            job: job.into(),
            statistics: stats.into(),
            execution_count: stats.total_executions,
            success_count: stats.successful_executions,
            failure_count: stats.failed_executions,
        }
    }
}

/// One attempt at running a job. Absent values are `null`: every key is always there.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = Execution)]
pub struct ExecutionJson {
    /// The execution's id.
    pub id: Uuid,
    /// The job.
    pub job_id: Uuid,
    /// The job's name when the attempt was recorded.
    pub job_name: String,
    /// `queued`, `running`, `success`, `failed`, `timeout` or `cancelled`.
    #[schema(value_type = schema::ExecutionStatus)]
    pub status: &'static str,
    /// The instant the occurrence was due (for a manual run: when it was asked for).
    #[serde(with = "crate::respond::instant")]
    pub scheduled_for: DateTime<Utc>,
    /// When the attempt started; `null` while queued.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    pub execution_time: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it ran, in milliseconds.
    #[schema(required = true)]
    pub duration_ms: Option<u64>,
    /// 0 for a first attempt, n for the n-th retry.
    pub retry_attempt: u32,
    /// What the executor returned (any JSON value).
    #[schema(required = true, value_type = Option<Value>)]
    pub output: Option<Value>,
    /// Why it failed.
    #[schema(required = true)]
    pub error_message: Option<String>,
    /// The worker that ran it.
    #[schema(required = true)]
    pub worker: Option<String>,
    /// Whether a user asked for this run (`POST /jobs/:id/execute`).
    pub manual: bool,
    /// When the record was made.
    #[serde(with = "crate::respond::instant")]
    pub created_at: DateTime<Utc>,
}

impl From<&Execution> for ExecutionJson {
    fn from(e: &Execution) -> Self {
        Self {
            id: e.id,
            job_id: e.job_id,
            job_name: e.job_name.clone(),
            status: e.status.as_str(),
            scheduled_for: e.scheduled_for,
            execution_time: e.started_at,
            finished_at: e.finished_at,
            duration_ms: e.duration_ms,
            retry_attempt: e.attempt,
            output: e.output.clone(),
            error_message: e.error.clone(),
            worker: e.worker.clone(),
            manual: e.manual,
            created_at: e.created_at,
        }
    }
}

/// One line of an execution's log.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = LogEntry)]
pub struct LogJson {
    /// The entry's id.
    pub id: Uuid,
    /// `debug`, `info`, `warn` or `error`.
    #[schema(value_type = schema::LogLevel)]
    pub level: &'static str,
    /// The text.
    pub message: String,
    /// Structured detail (`{}` when none).
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// When it was written.
    #[serde(with = "crate::respond::instant")]
    pub timestamp: DateTime<Utc>,
}

impl From<&LogEntry> for LogJson {
    fn from(l: &LogEntry) -> Self {
        Self {
            id: l.id,
            level: l.level.as_str(),
            message: l.message.clone(),
            metadata: l.metadata.clone(),
            timestamp: l.timestamp,
        }
    }
}

/// The `pagination` object of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Pagination)]
pub struct PaginationJson {
    /// Items matching the filter across all pages.
    pub total: u64,
    /// This page (1-based).
    pub page: u32,
    /// Page size.
    pub limit: u32,
    /// Number of pages (0 when nothing matches).
    pub total_pages: u64,
}

impl<T> From<&Page<T>> for PaginationJson {
    fn from(p: &Page<T>) -> Self {
        Self {
            total: p.total,
            page: p.page,
            limit: p.limit,
            total_pages: p.total_pages(),
        }
    }
}

/// The API's enumerations as named OpenAPI schemas, their values taken from the
/// core's enums (`as_str`), so the document cannot drift from what the API writes
/// and reads.
///
/// Each is an uninhabited type that only implements [`ToSchema`]: the
/// representations name it with `#[schema(value_type = ...)]` on their `&str` fields,
/// the query types with `#[param(value_type = ...)]`.
pub mod schema {
    use std::borrow::Cow;

    use chrono::DateTime;
    use chronos::model;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema as OpenApiSchema, Type};
    use utoipa::{PartialSchema, ToSchema};

    /// Lists the API names of the variants of a core enum; the `match` is exhaustive,
    /// so a new variant does not compile until it is listed (or hidden).
    macro_rules! names {
        ($ty:ident { $($shown:ident),+ } $(hidden { $($hidden:ident),+ })?) => {{
            let _exhaustive = |v: model::$ty| match v {
                $(model::$ty::$shown)|+ => true,
                $($(model::$ty::$hidden)|+ => false,)?
            };
            vec![$(model::$ty::$shown.as_str()),+]
        }};
    }

    /// A string schema with these values.
    pub fn string_enum(description: &str, values: Vec<&'static str>) -> RefOr<OpenApiSchema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values))
            .description(Some(description))
            .build()
            .into()
    }

    /// Declares an uninhabited schema type named like itself.
    macro_rules! named {
        ($(#[$doc:meta])* $name:ident => $schema:expr) => {
            $(#[$doc])*
            #[derive(Debug)]
            pub enum $name {}

            impl PartialSchema for $name {
                fn schema() -> RefOr<OpenApiSchema> {
                    $schema
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        };
    }

    named! {
        /// `one-time` or `recurring`.
        JobType => string_enum(
            "`one-time` (an `immediate` or `scheduled` job) or `recurring` (a `cron` job).",
            names!(JobKind { OneTime, Recurring }),
        )
    }

    named! {
        /// `immediate`, `scheduled` or `cron`.
        ScheduleType => string_enum(
            "`immediate` (runs once, now), `scheduled` (once, at `scheduled_time`) or `cron` \
             (on `cron_expression`).",
            schedule_types(),
        )
    }

    named! {
        /// The statuses a job is shown with (deleted jobs are never shown).
        JobStatus => string_enum(
            "A job's status. New jobs are `active`; `completed` and `failed` are the final \
             states of one-time jobs. Deleted jobs are never shown.",
            names!(JobStatus { Pending, Active, Paused, Completed, Failed } hidden { Deleted }),
        )
    }

    named! {
        /// An execution's status.
        ExecutionStatus => string_enum(
            "An attempt's status; `timeout` is a failed attempt that ran past the job's \
             timeout.",
            names!(ExecutionStatus { Queued, Running, Success, Failed, Timeout, Cancelled }),
        )
    }

    named! {
        /// A log line's severity.
        LogLevel => string_enum(
            "A log line's severity.",
            names!(LogLevel { Debug, Info, Warn, Error }),
        )
    }

    /// The API names of the schedule types.
    fn schedule_types() -> Vec<&'static str> {
        use model::Schedule;
        let schedules = [
            Schedule::Immediate,
            Schedule::Scheduled {
                at: DateTime::UNIX_EPOCH,
            },
            Schedule::Cron {
                expression: String::new(),
            },
        ];
        let _exhaustive = |s: &Schedule| match s {
            Schedule::Immediate | Schedule::Scheduled { .. } | Schedule::Cron { .. } => (),
        };
        schedules.iter().map(Schedule::type_name).collect()
    }

    /// Every named enumeration, for the document's components (most are reached
    /// through the bodies anyway; query parameters are not).
    pub fn all() -> Vec<(Cow<'static, str>, RefOr<OpenApiSchema>)> {
        vec![
            (JobType::name(), JobType::schema()),
            (ScheduleType::name(), ScheduleType::schema()),
            (JobStatus::name(), JobStatus::schema()),
            (ExecutionStatus::name(), ExecutionStatus::schema()),
            (LogLevel::name(), LogLevel::schema()),
        ]
    }
}

/// Rounds to 2 decimals (figures shown to people: rates, averages).
pub fn round2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// A JSON request body taken apart field by field, so that every problem with it is
/// reported at once, each naming its field. `null` counts as absent.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    issues: Vec<FieldIssue>,
}

impl Fields {
    /// The fields of a body that must be a JSON object; anything else is a
    /// `VALIDATION_ERROR` on `body`.
    pub fn of(body: Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(map) => Ok(Self {
                map,
                issues: Vec::new(),
            }),
            other => Err(ApiError::field(
                "body",
                format!("must be a JSON object, not {}", kind(&other)),
            )),
        }
    }

    /// Whether the body has no fields at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether the field is present (`null` included).
    pub fn contains(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// Whether the field is present and not `null`.
    pub fn given(&self, field: &str) -> bool {
        self.map.get(field).is_some_and(|v| !v.is_null())
    }

    /// Reports every field not in `known` (in the order they came); `describe`
    /// says what is wrong with one.
    pub fn reject_unknown(&mut self, known: &[&str], describe: impl Fn(&str) -> String) {
        let unknown: Vec<String> = self
            .map
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for field in unknown {
            let message = describe(&field);
            self.issue(field, message);
        }
    }

    /// Records a problem with a field.
    pub fn issue(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.issues.push(FieldIssue {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Whether a problem with `field` was recorded.
    pub fn has_issue(&self, field: &str) -> bool {
        self.issues.iter().any(|i| i.field == field)
    }

    /// The problems recorded so far.
    pub fn issues(&self) -> &[FieldIssue] {
        &self.issues
    }

    /// Takes the problems recorded so far.
    pub fn take_issues(&mut self) -> Vec<FieldIssue> {
        std::mem::take(&mut self.issues)
    }

    /// The raw value of a field (`None` when absent or `null`).
    pub fn value(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field).filter(|v| !v.is_null())
    }

    /// A string field. The NUL character is refused (PostgreSQL cannot store it).
    pub fn string(&mut self, field: &str) -> Option<String> {
        match self.value(field)? {
            Value::String(s) if s.contains('\0') => {
                self.issue(field, NUL_MESSAGE);
                None
            }
            Value::String(s) => Some(s),
            other => {
                self.issue(field, format!("must be a string, not {}", kind(&other)));
                None
            }
        }
    }

    /// A field of any JSON type, whose strings and keys hold no NUL character.
    pub fn any(&mut self, field: &str) -> Option<Value> {
        let value = self.value(field)?;
        if has_nul(&value) {
            self.issue(field, NUL_MESSAGE);
            return None;
        }
        Some(value)
    }

    /// An integer field within `min..=max`; `range` is how the error message names
    /// the range ("between 1 and 3600 seconds").
    pub fn integer(&mut self, field: &str, min: u64, max: u64, range: &str) -> Option<u64> {
        let value = self.value(field)?;
        let n = match &value {
            Value::Number(n) => n,
            other => {
                self.issue(field, format!("must be an integer, not {}", kind(other)));
                return None;
            }
        };
        match n.as_u64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(_) => {
                self.issue(field, format!("must be {range}"));
                None
            }
            None if n.is_i64() => {
                self.issue(field, format!("must be {range}"));
                None
            }
            None => {
                // A fraction, or a number beyond 64 bits (read as a float).
                let whole = n.as_f64().is_some_and(|f| f.fract() == 0.0);
                let message = if whole {
                    format!("must be {range}")
                } else {
                    format!("must be a whole number {range}")
                };
                self.issue(field, message);
                None
            }
        }
    }

    /// An RFC 3339 instant (`Z` or an offset).
    pub fn instant(&mut self, field: &str) -> Option<DateTime<Utc>> {
        let s = self.string(field)?;
        match parse_instant(&s) {
            Some(at) => Some(at),
            None => {
                self.issue(
                    field,
                    "must be an RFC 3339 date-time with Z or an offset, such as 2026-11-29T09:00:00Z",
                );
                None
            }
        }
    }
}

const NUL_MESSAGE: &str = "must not contain the NUL character (\\u0000)";

/// Whether a string or key anywhere in `v` holds the NUL character.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Parses an RFC 3339 instant with `Z` or an offset.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The JSON type of a value, as error messages name it.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use serde_json::json;

    #[test]
    fn integers_are_checked_for_type_sign_size_and_range() {
        let mut f = Fields::of(json!({
            "a": 5, "b": -1, "c": 1.5, "d": 1e30, "e": "5", "f": 99_999_999_999_u64, "g": null
        }))
        .unwrap();
        assert_eq!(f.integer("a", 1, 10, "between 1 and 10"), Some(5));
        assert_eq!(f.integer("b", 1, 10, "between 1 and 10"), None);
        assert_eq!(f.integer("c", 1, 10, "between 1 and 10"), None);
        assert_eq!(f.integer("d", 1, 10, "between 1 and 10"), None);
        assert_eq!(f.integer("e", 1, 10, "between 1 and 10"), None);
        assert_eq!(f.integer("f", 1, 10, "between 1 and 10"), None);
        assert_eq!(f.integer("g", 1, 10, "between 1 and 10"), None);
        assert_eq!(f.integer("missing", 1, 10, "between 1 and 10"), None);
        let fields: Vec<_> = f.issues().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["b", "c", "d", "e", "f"]);
        assert_eq!(f.issues()[0].message, "must be between 1 and 10");
        assert_eq!(
            f.issues()[1].message,
            "must be a whole number between 1 and 10"
        );
        assert_eq!(f.issues()[3].message, "must be an integer, not a string");
    }

    #[test]
    fn nul_characters_are_refused_anywhere() {
        let mut f = Fields::of(json!({
            "a": "x\u{0000}", "b": {"k": ["ok", "n\u{0000}"]}, "c": {"\u{0000}": 1}, "d": {"k": "ok"}
        }))
        .unwrap();
        assert_eq!(f.string("a"), None);
        assert_eq!(f.any("b"), None);
        assert_eq!(f.any("c"), None);
        assert_eq!(f.any("d"), Some(json!({"k": "ok"})));
        let fields: Vec<_> = f.issues().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["a", "b", "c"]);
    }

    #[test]
    fn instants_take_z_or_an_offset() {
        assert_eq!(
            parse_instant("2026-01-01T10:00:00+02:00"),
            parse_instant("2026-01-01T08:00:00Z")
        );
        assert!(parse_instant("2026-01-01T08:00:00").is_none());
        assert!(parse_instant("tomorrow").is_none());
    }

    #[test]
    fn rounding_keeps_two_decimals() {
        assert!((round2(66.666_666) - 66.67).abs() < 1e-9);
        assert!((round2(f64::NAN)).abs() < 1e-9);
    }
}
