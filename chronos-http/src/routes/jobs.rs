//! `/jobs`: create, list, read, change, pause, resume, delete and run jobs, and list
//! a job's executions. Every operation is scoped to the caller
//! ([`chronos::Chronos::owned_by`]): another user's job answers exactly like a missing
//! one, 404 `JOB_NOT_FOUND`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{self, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use chronos::Chronos;
use chronos::model::spec::{self, SpecError};
use chronos::model::{
    ExecutionQuery, ExecutionStatus, JobKind, JobQuery, JobSort, JobSpec, JobStatus, JobUpdate,
    MAX_PAGE_SIZE, SortOrder,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use uuid::Uuid;

use crate::docs::{JOB_ID, RATE_LIMITED, UNAUTHENTICATED};
use crate::error::{ApiError, Code, ErrorBody, FieldIssue};
use crate::extract::{ApiJson, ApiPath, ApiQuery, body_rejection, parse_json};
use crate::json::{ExecutionJson, Fields, JobDetailJson, JobJson, PaginationJson, schema};
use crate::respond::{Envelope, Message, ok, ok_message, ok_with, with};
use crate::state::{AppState, AuthUser};

/// How far ahead `GET /jobs/upcoming` looks.
pub const UPCOMING_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Most jobs `GET /jobs/upcoming` returns.
pub const UPCOMING_LIMIT: usize = 100;
/// Page size of lists when the client names none.
pub const DEFAULT_LIMIT: u32 = 20;

/// The job routes, relative to `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/jobs", post(create).get(list))
        .route("/jobs/upcoming", routing::get(upcoming))
        .route("/jobs/{id}", routing::get(get).patch(update).delete(delete))
        .route("/jobs/{id}/pause", post(pause))
        .route("/jobs/{id}/resume", post(resume))
        .route("/jobs/{id}/execute", post(execute))
        .route("/jobs/{id}/executions", routing::get(executions))
        .method_not_allowed_fallback(method_not_allowed)
}

/// 405 `METHOD_NOT_ALLOWED` in the documented error shape (the routers of this crate's
/// resource modules set it on their own routes, so they answer it however they are
/// mounted).
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::MethodNotAllowed, "method not allowed on this route")
}

/// The fields `POST /jobs` accepts.
const CREATE_FIELDS: &[&str] = &[
    "name",
    "description",
    "job_type",
    "schedule_type",
    "scheduled_time",
    "cron_expression",
    "timezone",
    "handler",
    "payload",
    "timeout_seconds",
    "max_retries",
    "retry_backoff_ms",
];

/// The fields `PATCH /jobs/:id` accepts.
const UPDATE_FIELDS: &[&str] = &[
    "name",
    "description",
    "cron_expression",
    "timezone",
    "payload",
    "timeout_seconds",
    "max_retries",
    "retry_backoff_ms",
    "handler",
    "status",
];

/// Fields of the job JSON that no request can change.
const FIXED_FIELDS: &[&str] = &[
    "id",
    "job_id",
    "user_id",
    "job_type",
    "schedule_type",
    "scheduled_time",
    "retry_count",
    "next_run",
    "last_executed_at",
    "paused_at",
    "resumed_at",
    "created_at",
    "updated_at",
    "statistics",
    "execution_count",
    "success_count",
    "failure_count",
];

// The single description of the body of `POST /jobs` (for the document): `create`
// reads it field by field with `Fields`, so that every problem is reported at once.
// A unit test checks that it lists exactly `CREATE_FIELDS`, with the core's limits.
/// The body of `POST /jobs`.
///
/// Every problem with it is reported at once, in one `VALIDATION_ERROR` naming each
/// field. `null` counts as absent; any other field is an "unknown field".
#[derive(Debug, ToSchema)]
#[schema(example = json!({"name": "nightly report", "job_type": "recurring",
    "schedule_type": "cron", "cron_expression": "30 2 * * *", "timezone": "Europe/Berlin",
    "handler": "http", "payload": {"url": "https://example.com/report", "method": "POST"},
    "max_retries": 3}))]
pub struct CreateJob {
    /// 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// At most 1000 characters.
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// `one-time` pairs with `immediate` or `scheduled`, `recurring` with `cron`.
    #[schema(value_type = schema::JobType)]
    pub job_type: String,
    /// `scheduled` needs `scheduled_time`, `cron` needs `cron_expression`.
    #[schema(value_type = schema::ScheduleType)]
    pub schedule_type: String,
    /// For a `scheduled` job only (required there): RFC 3339 with `Z` or an offset, in
    /// the future (else 400 `INVALID_SCHEDULED_TIME`).
    pub scheduled_time: Option<DateTime<Utc>>,
    /// For a `cron` job only (required there): 5 fields, or 6 with seconds first;
    /// names, ranges, lists, steps, `@hourly`-style macros, `L`, `W`, `#` (bad: 422
    /// `INVALID_CRON_EXPRESSION`).
    pub cron_expression: Option<String>,
    /// An IANA time zone (default `UTC`; bad: 400 `INVALID_TIMEZONE`). Any schedule may
    /// name one; only cron schedules are evaluated in it.
    #[schema(default = "UTC")]
    pub timezone: Option<String>,
    /// A registered executor (default `echo`: succeeds and returns its payload; also
    /// `http` `{url, method?, headers?, body?}`, `sleep` `{ms}`, `fail`
    /// `{message?, fatal?}`); an unknown one is a `VALIDATION_ERROR`.
    #[schema(default = json!(spec::DEFAULT_HANDLER), min_length = 1, max_length = 100)]
    pub handler: Option<String>,
    /// A JSON object handed to the executor (default `{}`).
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    /// Seconds an attempt may run: 1 to 3600 (a whole number).
    #[schema(minimum = 1, maximum = 3600, default = json!(spec::DEFAULT_TIMEOUT.as_secs()))]
    pub timeout_seconds: Option<u64>,
    /// Retries after the first attempt: 0 to 10 (0: no retry).
    #[schema(minimum = 0, maximum = 10, default = json!(spec::DEFAULT_MAX_RETRIES))]
    pub max_retries: Option<u32>,
    /// Retry n waits `retry_backoff_ms × 2^(n-1)`: 0 to 86 400 000 ms.
    #[schema(
        minimum = 0,
        maximum = 86_400_000,
        default = json!(spec::DEFAULT_RETRY_BACKOFF.as_millis())
    )]
    pub retry_backoff_ms: Option<u64>,
}

/// Create a job.
///
/// `POST /jobs`: 201 "Job created successfully" with the new job.
///
/// The body is read strictly, and every problem with it is reported at once in one
/// 400 `VALIDATION_ERROR`, each naming its field:
/// - fields other than `name, description, job_type, schedule_type, scheduled_time,
///   cron_expression, timezone, handler, payload, timeout_seconds, max_retries,
///   retry_backoff_ms` ("unknown field"), and values of the wrong JSON type;
/// - `name`, `job_type` and `schedule_type` are required; `one-time` pairs with
///   `immediate` or `scheduled`, `recurring` with `cron`; `scheduled` needs
///   `scheduled_time` (RFC 3339 with `Z` or an offset) and `cron` needs
///   `cron_expression`; `scheduled_time` on a non-scheduled job or `cron_expression`
///   on a non-cron job does not belong;
/// - the ranges of the core (`name` 1..255 characters, `description` ≤ 1000,
///   `payload` a JSON object, `timeout_seconds` 1..3600, `max_retries` 0..10,
///   `retry_backoff_ms` 0..86 400 000, `handler` a registered executor).
///
/// Decisions where the contract is silent: a field sent as `null` counts as absent
/// (clients that send every field of a form with `null` for the unused ones keep
/// working); `timezone` belongs to every schedule (it is part of every job and only
/// matters for cron); numbers must be JSON integers (`300`, not `300.5` or `"300"`).
/// Once the body is well-formed: a bad time zone is 400 `INVALID_TIMEZONE`, a bad cron
/// expression 422 `INVALID_CRON_EXPRESSION` with the parser's reason, a
/// `scheduled_time` not in the future 400 `INVALID_SCHEDULED_TIME`.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", operation_id = "create_job",
    security(("bearer" = [])),
    request_body = CreateJob,
    responses(
        (status = 201, description = "\"Job created successfully\" with the new job (`active`)",
            body = Envelope<JobJson>),
        (status = 400, description = "`VALIDATION_ERROR` (every field problem at once, in \
            `errors`), `INVALID_JSON`, `INVALID_SCHEDULED_TIME` or `INVALID_TIMEZONE`",
            body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: the body is over the limit \
            (1 MiB by default)", body = ErrorBody),
        (status = 422, description = "`INVALID_CRON_EXPRESSION` with the parser's reason",
            body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let chronos = state.chronos();
    let spec = read_create(body, chronos)?;
    let job = chronos.owned_by(user.id).create(spec).await?;
    tracing::debug!(job_id = %job.id, user_id = %user.id, "job created");
    Ok(with(
        StatusCode::CREATED,
        Some("Job created successfully"),
        JobJson::from(&job),
    ))
}

/// The three schedule types of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScheduleType {
    Immediate,
    Scheduled,
    Cron,
}

impl ScheduleType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "immediate" => Self::Immediate,
            "scheduled" => Self::Scheduled,
            "cron" => Self::Cron,
            _ => return None,
        })
    }

    fn kind(self) -> JobKind {
        match self {
            Self::Immediate | Self::Scheduled => JobKind::OneTime,
            Self::Cron => JobKind::Recurring,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Scheduled => "scheduled",
            Self::Cron => "cron",
        }
    }

    /// "an immediate job", "a scheduled job", "a cron job".
    fn a_job(self) -> &'static str {
        match self {
            Self::Immediate => "an immediate job",
            Self::Scheduled => "a scheduled job",
            Self::Cron => "a cron job",
        }
    }
}

fn parse_kind(s: &str) -> Option<JobKind> {
    match s {
        "one-time" => Some(JobKind::OneTime),
        "recurring" => Some(JobKind::Recurring),
        _ => None,
    }
}

/// Reads a create request into a spec, or the `VALIDATION_ERROR` listing every
/// field problem (the core's range checks included).
fn read_create(body: Value, chronos: &Chronos) -> Result<JobSpec, ApiError> {
    let mut f = Fields::of(body)?;
    f.reject_unknown(CREATE_FIELDS, |_| "unknown field".to_owned());

    let name = f.string("name");
    if name.is_none() && !f.has_issue("name") {
        f.issue("name", "is required");
    }
    let description = f.string("description");

    let kind = match f.string("job_type") {
        Some(s) => parse_kind(&s).or_else(|| {
            f.issue("job_type", "must be one-time or recurring");
            None
        }),
        None => {
            if !f.has_issue("job_type") {
                f.issue("job_type", "is required: one-time or recurring");
            }
            None
        }
    };
    let schedule_type = match f.string("schedule_type") {
        Some(s) => ScheduleType::parse(&s).or_else(|| {
            f.issue("schedule_type", "must be immediate, scheduled or cron");
            None
        }),
        None => {
            if !f.has_issue("schedule_type") {
                f.issue("schedule_type", "is required: immediate, scheduled or cron");
            }
            None
        }
    };
    if let (Some(kind), Some(st)) = (kind, schedule_type)
        && st.kind() != kind
    {
        let message = match kind {
            JobKind::OneTime => format!(
                "a one-time job is immediate or scheduled, not {}",
                st.as_str()
            ),
            JobKind::Recurring => format!("a recurring job is cron, not {}", st.as_str()),
        };
        f.issue("schedule_type", message);
    }

    // A schedule field is read only where it belongs (one problem per field).
    let scheduled_time = match (schedule_type, f.given("scheduled_time")) {
        (Some(ScheduleType::Scheduled), false) => {
            f.issue("scheduled_time", "is required for a scheduled job");
            None
        }
        (Some(st), true) if st != ScheduleType::Scheduled => {
            f.value("scheduled_time");
            f.issue(
                "scheduled_time",
                format!("does not belong to {}", st.a_job()),
            );
            None
        }
        _ => f.instant("scheduled_time"),
    };
    let cron_expression = match (schedule_type, f.given("cron_expression")) {
        (Some(ScheduleType::Cron), false) => {
            f.issue("cron_expression", "is required for a cron job");
            None
        }
        (Some(st), true) if st != ScheduleType::Cron => {
            f.value("cron_expression");
            f.issue(
                "cron_expression",
                format!("does not belong to {}", st.a_job()),
            );
            None
        }
        _ => f.string("cron_expression"),
    };

    let timezone = f.string("timezone");
    let handler = f.string("handler");
    let payload = f.any("payload");
    let timeout = f.integer(
        "timeout_seconds",
        1,
        spec::MAX_TIMEOUT.as_secs(),
        &format!("between 1 and {} seconds", spec::MAX_TIMEOUT.as_secs()),
    );
    let max_retries = f.integer(
        "max_retries",
        0,
        u64::from(spec::MAX_RETRIES),
        &format!("between 0 and {}", spec::MAX_RETRIES),
    );
    let backoff_max = u64::try_from(spec::MAX_RETRY_BACKOFF.as_millis()).unwrap_or(u64::MAX);
    let backoff = f.integer(
        "retry_backoff_ms",
        0,
        backoff_max,
        &format!("between 0 and {backoff_max} ms"),
    );

    // Build the spec; fields that failed above keep a default (their issue is
    // reported, and the core's check of the placeholder is dropped below).
    let name = name.unwrap_or_default();
    let mut spec = match (schedule_type, scheduled_time, cron_expression) {
        (Some(ScheduleType::Scheduled), Some(at), _) => JobSpec::at(name, at),
        (Some(ScheduleType::Cron), _, Some(expression)) => JobSpec::cron(name, expression),
        _ => JobSpec::immediate(name),
    };
    if let Some(d) = description {
        spec = spec.description(d);
    }
    if let Some(tz) = timezone {
        spec = spec.timezone(tz);
    }
    if let Some(h) = handler {
        spec = spec.handler(h);
    }
    if let Some(p) = payload {
        spec = spec.payload(p);
    }
    if let Some(t) = timeout {
        spec = spec.timeout(Duration::from_secs(t));
    }
    if let Some(r) = max_retries.and_then(|r| u32::try_from(r).ok()) {
        spec = spec.max_retries(r);
    }
    if let Some(b) = backoff {
        spec = spec.retry_backoff(Duration::from_millis(b));
    }

    let mut issues = f.take_issues();
    if issues.is_empty() {
        // The core validates again on create and maps every error to its code.
        return Ok(spec);
    }
    let now = chronos.clock().now();
    if let Err(SpecError::Fields(core)) = spec.validate(now, &|h| chronos.has_executor(h)) {
        merge(&mut issues, core);
    }
    Err(ApiError::fields(issues))
}

/// Adds the core's field errors about fields not reported already.
fn merge(issues: &mut Vec<FieldIssue>, core: Vec<spec::FieldError>) {
    for e in core {
        if !issues.iter().any(|i| i.field == e.field) {
            issues.push(FieldIssue {
                field: e.field,
                message: e.message,
            });
        }
    }
}

/// The query of `GET /jobs` (the handler reads it as pairs, to name every bad
/// parameter; this is its description for the document).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    /// Only jobs with this status.
    #[param(value_type = Option<schema::JobStatus>)]
    pub status: Option<String>,
    /// Only jobs of this type.
    #[param(value_type = Option<schema::JobType>)]
    pub job_type: Option<String>,
    /// The page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The order of the jobs (default `created_at`; jobs without a `next_run` sort
    /// last under `next_run`).
    #[param(value_type = Option<SortBySchema>)]
    pub sort_by: Option<String>,
    /// `asc` or `desc` (default `desc`).
    #[param(value_type = Option<SortOrderSchema>)]
    pub sort_order: Option<String>,
}

/// The values of `sort_by`: the core's [`JobSort`], by their serde names (the
/// schema `JobSort`).
#[derive(Debug)]
pub enum SortBySchema {}

/// The values of `sort_order`: the core's [`SortOrder`], by their serde names (the
/// schema `SortOrder`).
#[derive(Debug)]
pub enum SortOrderSchema {}

/// A string schema of the serde names of `values`, with the default's.
fn serde_names<T: Serialize + Default>(description: &str, values: &[T]) -> RefOr<Schema> {
    let name = |v: &T| serde_json::to_value(v).unwrap_or_default();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().map(name)))
        .default(Some(name(&T::default())))
        .description(Some(description))
        .build()
        .into()
}

impl PartialSchema for SortBySchema {
    fn schema() -> RefOr<Schema> {
        let _exhaustive = |s: JobSort| match s {
            JobSort::CreatedAt | JobSort::NextRun | JobSort::Name | JobSort::UpdatedAt => (),
        };
        serde_names(
            "What a job list is sorted by.",
            &[
                JobSort::CreatedAt,
                JobSort::NextRun,
                JobSort::Name,
                JobSort::UpdatedAt,
            ],
        )
    }
}

impl ToSchema for SortBySchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("JobSort")
    }
}

impl PartialSchema for SortOrderSchema {
    fn schema() -> RefOr<Schema> {
        let _exhaustive = |s: SortOrder| match s {
            SortOrder::Asc | SortOrder::Desc => (),
        };
        serde_names(
            "Ascending or descending.",
            &[SortOrder::Asc, SortOrder::Desc],
        )
    }
}

impl ToSchema for SortOrderSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SortOrder")
    }
}

/// List the caller's jobs.
///
/// `GET /jobs`: one page of the caller's jobs (deleted ones never appear),
/// `data: {jobs, pagination: {total, page, limit, total_pages}}`.
///
/// Query: `status` (pending|active|paused|completed|failed), `job_type`
/// (one-time|recurring), `page` (≥ 1, default 1), `limit` (1..100, default 20),
/// `sort_by` (created_at|next_run|name|updated_at, default created_at), `sort_order`
/// (asc|desc, default desc). Any other value, or a parameter given twice, is a 400
/// `VALIDATION_ERROR` naming the parameter.
///
/// Decisions: a parameter with an empty value (`?status=`) counts as absent (what a
/// form's "all" choice sends); parameters other than these are ignored (cache
/// busters and the like); values are case-sensitive, as documented. Jobs without a
/// `next_run` sort last under `sort_by=next_run` in either order.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", operation_id = "list_jobs",
    security(("bearer" = [])),
    params(JobListQuery),
    responses(
        (status = 200, description = "One page of jobs", body = Envelope<JobList>),
        (status = 400, description = "`VALIDATION_ERROR` naming each bad parameter",
            body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut p = Params::new(pairs);
    let status = p.choice(
        "status",
        |s| JobStatus::parse(s).filter(|s| *s != JobStatus::Deleted),
        "pending, active, paused, completed or failed",
    );
    let kind = p.choice("job_type", parse_kind, "one-time or recurring");
    let sort = p.choice(
        "sort_by",
        |s| match s {
            "created_at" => Some(JobSort::CreatedAt),
            "next_run" => Some(JobSort::NextRun),
            "name" => Some(JobSort::Name),
            "updated_at" => Some(JobSort::UpdatedAt),
            _ => None,
        },
        "created_at, next_run, name or updated_at",
    );
    let order = p.choice(
        "sort_order",
        |s| match s {
            "asc" => Some(SortOrder::Asc),
            "desc" => Some(SortOrder::Desc),
            _ => None,
        },
        "asc or desc",
    );
    let (page, limit) = p.page_and_limit();
    p.finish()?;
    let query = JobQuery {
        status,
        kind,
        page,
        limit,
        sort: sort.unwrap_or_default(),
        order: order.unwrap_or_default(),
    };
    let found = state.chronos().owned_by(user.id).list_jobs(&query).await?;
    Ok(ok(JobList {
        jobs: found.items.iter().map(JobJson::from).collect(),
        pagination: PaginationJson::from(&found),
    }))
}

/// One page of jobs.
#[derive(Serialize, ToSchema)]
struct JobList {
    /// The jobs of the page.
    jobs: Vec<JobJson>,
    /// Where the page is.
    pagination: PaginationJson,
}

/// The caller's jobs due soon.
///
/// `GET /jobs/upcoming`: the caller's active jobs due within the next 24 hours,
/// soonest first, `data: {jobs, count}`.
///
/// Decisions: at most 100 jobs (`count` is the number returned); each is the full
/// job JSON (a superset of the README's `{id, name, next_run, job_type}`); query
/// parameters are ignored.
#[utoipa::path(get, path = "/api/v1/jobs/upcoming", tag = "jobs", operation_id = "upcoming_jobs",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The jobs due in the next 24 hours, soonest first",
            body = Envelope<Upcoming>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn upcoming(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
) -> Result<Response, ApiError> {
    let jobs = state
        .chronos()
        .owned_by(user.id)
        .upcoming_jobs(UPCOMING_WINDOW, UPCOMING_LIMIT)
        .await?;
    let jobs: Vec<JobJson> = jobs.iter().map(JobJson::from).collect();
    Ok(ok(Upcoming {
        count: jobs.len(),
        jobs,
    }))
}

/// The jobs due soon.
#[derive(Serialize, ToSchema)]
struct Upcoming {
    /// Soonest first, at most 100.
    jobs: Vec<JobJson>,
    /// The number of `jobs`.
    count: usize,
}

/// A job with its statistics.
///
/// `GET /jobs/:id`: the job with `statistics {total_executions,
/// successful_executions, failed_executions, average_duration_ms,
/// last_execution_time}`, repeated as `execution_count`, `success_count` and
/// `failure_count` for the original frontend.
///
/// Decisions: `average_duration_ms` is a number rounded to 2 decimals, 0 while no
/// attempt has a duration; `last_execution_time` is `null` until an attempt starts;
/// `total_executions` counts every recorded attempt (queued and cancelled ones too),
/// `failed_executions` counts failures and timeouts.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", operation_id = "get_job",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = JOB_ID)),
    responses(
        (status = 200, description = "The job with its statistics", body = Envelope<JobDetailJson>),
        (status = 400, description = "`VALIDATION_ERROR`: a malformed id", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`: no such job of the caller's (also a \
            deleted one)", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let owned = state.chronos().owned_by(user.id);
    let (job, stats) = owned.job_with_stats(id).await?;
    Ok(ok(JobDetailJson::new(&job, &stats)))
}

// The single description of the body of `PATCH /jobs/{id}` (for the document):
// `update` reads it field by field with `Fields`. A unit test checks that it lists
// exactly `UPDATE_FIELDS`, with the core's limits.
/// The body of `PATCH /jobs/{id}`: at least one field.
///
/// `null` clears `description` and is a `VALIDATION_ERROR` for every other field; the
/// job JSON's other fields "cannot be changed", any other field is unknown.
#[derive(Debug, ToSchema)]
#[schema(min_properties = 1, example = json!({"cron_expression": "0 3 * * *", "status": "paused"}))]
pub struct UpdateJob {
    /// 1 to 255 characters.
    #[schema(nullable = false, min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// At most 1000 characters; `null` clears it.
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// A recurring job's new schedule (recomputes `next_run`).
    #[schema(nullable = false)]
    pub cron_expression: Option<String>,
    /// A new IANA time zone (recomputes `next_run`).
    #[schema(nullable = false)]
    pub timezone: Option<String>,
    /// A JSON object.
    #[schema(nullable = false, value_type = Option<Object>)]
    pub payload: Option<Value>,
    /// 1 to 3600.
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    pub timeout_seconds: Option<u64>,
    /// 0 to 10.
    #[schema(nullable = false, minimum = 0, maximum = 10)]
    pub max_retries: Option<u32>,
    /// 0 to 86 400 000 ms.
    #[schema(nullable = false, minimum = 0, maximum = 86_400_000)]
    pub retry_backoff_ms: Option<u64>,
    /// A registered executor.
    #[schema(nullable = false, min_length = 1, max_length = 100)]
    pub handler: Option<String>,
    /// `active` or `paused`: exactly like resume or pause.
    #[schema(nullable = false, schema_with = settable_status_schema)]
    pub status: Option<String>,
}

fn settable_status_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([
            JobStatus::Active.as_str(),
            JobStatus::Paused.as_str(),
        ]))
        .description(Some("`active` (resume) or `paused` (pause)."))
}

/// Change a job.
///
/// `PATCH /jobs/:id`: 200 "Job updated successfully" with the job as it now is.
///
/// Accepts any of `name, description, cron_expression, timezone, payload,
/// timeout_seconds, max_retries, retry_backoff_ms, handler, status`. An empty body or
/// `{}` is a 400 `VALIDATION_ERROR` (`body`); other fields are a `VALIDATION_ERROR`
/// naming each (the job JSON's read-only fields "cannot be changed": a job's type and
/// schedule type are fixed, as is a scheduled job's time: create a new job instead).
/// `status` is `active` or `paused` and behaves exactly like resume or pause
/// (pausing a one-time job or resuming an active one is 400 `INVALID_OPERATION`;
/// setting the status a job already has changes nothing); a new `cron_expression`
/// (recurring jobs only) or `timezone` recomputes `next_run`. Completed and failed
/// jobs are 400 `INVALID_JOB_STATUS`.
///
/// Decisions: `description: null` clears the description; `null` for any other field
/// is a `VALIDATION_ERROR` (it cannot be removed). The body is validated before the
/// job is looked up, so a bad body is 400 even for a job that does not exist.
#[utoipa::path(patch, path = "/api/v1/jobs/{id}", tag = "jobs", operation_id = "update_job",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = JOB_ID)),
    request_body = UpdateJob,
    responses(
        (status = 200, description = "\"Job updated successfully\" with the job as it now is",
            body = Envelope<JobJson>),
        (status = 400, description = "`VALIDATION_ERROR` (empty body, unknown, read-only or \
            `null` field, malformed id), `INVALID_JSON`, `INVALID_TIMEZONE`, \
            `INVALID_JOB_STATUS` (a completed or failed job) or `INVALID_OPERATION` (a \
            `status` change that pause or resume refuses)", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`INVALID_CRON_EXPRESSION` with the parser's reason",
            body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(body_rejection)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(at_least_one_field());
    }
    let chronos = state.chronos();
    let update = read_update(parse_json(&bytes)?, chronos)?;
    let job = chronos.owned_by(user.id).update(id, &update).await?;
    tracing::debug!(job_id = %job.id, user_id = %user.id, "job updated");
    Ok(ok_with("Job updated successfully", JobJson::from(&job)))
}

fn at_least_one_field() -> ApiError {
    ApiError::field(
        "body",
        format!(
            "at least one field must be given: {}",
            UPDATE_FIELDS.join(", ")
        ),
    )
}

fn read_update(body: Value, chronos: &Chronos) -> Result<JobUpdate, ApiError> {
    let mut f = Fields::of(body)?;
    if f.is_empty() {
        return Err(at_least_one_field());
    }
    f.reject_unknown(UPDATE_FIELDS, |field| {
        if FIXED_FIELDS.contains(&field) {
            "cannot be changed".to_owned()
        } else {
            "unknown field".to_owned()
        }
    });
    for field in UPDATE_FIELDS {
        if *field != "description" && f.contains(field) && !f.given(field) {
            f.issue(*field, "must not be null");
        }
    }
    let description = if f.contains("description") {
        Some(f.string("description"))
    } else {
        None
    };
    let status = f.string("status").and_then(|s| match s.as_str() {
        "active" => Some(JobStatus::Active),
        "paused" => Some(JobStatus::Paused),
        _ => {
            f.issue("status", "must be active or paused");
            None
        }
    });
    let backoff_max = u64::try_from(spec::MAX_RETRY_BACKOFF.as_millis()).unwrap_or(u64::MAX);
    let update = JobUpdate {
        name: f.string("name"),
        description,
        cron_expression: f.string("cron_expression"),
        timezone: f.string("timezone"),
        payload: f.any("payload"),
        timeout: f
            .integer(
                "timeout_seconds",
                1,
                spec::MAX_TIMEOUT.as_secs(),
                &format!("between 1 and {} seconds", spec::MAX_TIMEOUT.as_secs()),
            )
            .map(Duration::from_secs),
        max_retries: f
            .integer(
                "max_retries",
                0,
                u64::from(spec::MAX_RETRIES),
                &format!("between 0 and {}", spec::MAX_RETRIES),
            )
            .and_then(|r| u32::try_from(r).ok()),
        retry_backoff: f
            .integer(
                "retry_backoff_ms",
                0,
                backoff_max,
                &format!("between 0 and {backoff_max} ms"),
            )
            .map(Duration::from_millis),
        handler: f.string("handler"),
        missed_policy: None,
        status,
    };
    let mut issues = f.take_issues();
    if issues.is_empty() {
        return Ok(update);
    }
    if let Err(SpecError::Fields(core)) = update.validate(&|h| chronos.has_executor(h)) {
        merge(&mut issues, core);
    }
    Err(ApiError::fields(issues))
}

/// Delete a job.
///
/// `DELETE /jobs/:id`: 200 "Job deleted successfully" (no `data`). A soft delete: the
/// history is kept, nothing of the job runs again, and afterwards every route
/// answers 404 `JOB_NOT_FOUND` for it (and `EXECUTION_NOT_FOUND` for its executions),
/// a second delete included.
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", tag = "jobs", operation_id = "delete_job",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = JOB_ID)),
    responses(
        (status = 200, description = "\"Job deleted successfully\"", body = Message),
        (status = 400, description = "`VALIDATION_ERROR`: a malformed id", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND` (also a job deleted already)",
            body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    state.chronos().owned_by(user.id).delete(id).await?;
    tracing::debug!(job_id = %id, user_id = %user.id, "job deleted");
    Ok(ok_message("Job deleted successfully"))
}

/// Pause a recurring job.
///
/// `POST /jobs/:id/pause`: 200 "Job paused successfully" with the job (`status:
/// paused`, `paused_at`, `next_run: null`). Only active recurring jobs can be
/// paused; otherwise 400 `INVALID_OPERATION`. Any body and `Content-Type` are
/// accepted and ignored (the original frontend sends none).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/pause", tag = "jobs", operation_id = "pause_job",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = JOB_ID)),
    responses(
        (status = 200, description = "\"Job paused successfully\" with the job (`paused_at` set)",
            body = Envelope<JobJson>),
        (status = 400, description = "`INVALID_OPERATION` (not an active recurring job) or \
            `VALIDATION_ERROR` (a malformed id)", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn pause(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let job = state.chronos().owned_by(user.id).pause(id).await?;
    Ok(ok_with("Job paused successfully", JobJson::from(&job)))
}

/// Resume a paused job.
///
/// `POST /jobs/:id/resume`: 200 "Job resumed successfully" with the job (`status:
/// active`, `resumed_at`, `next_run` computed from now). Only paused jobs can be
/// resumed; otherwise 400 `INVALID_OPERATION`. Any body is accepted and ignored.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/resume", tag = "jobs", operation_id = "resume_job",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = JOB_ID)),
    responses(
        (status = 200, description = "\"Job resumed successfully\" with the job (`resumed_at` \
            set, `next_run` from now)", body = Envelope<JobJson>),
        (status = 400, description = "`INVALID_OPERATION` (the job is not paused) or \
            `VALIDATION_ERROR` (a malformed id)", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let job = state.chronos().owned_by(user.id).resume(id).await?;
    Ok(ok_with("Job resumed successfully", JobJson::from(&job)))
}

/// Run a job now.
///
/// `POST /jobs/:id/execute`: 202 "Job execution triggered", `data: {jobId,
/// execution_id, status: "queued", message: "Job queued for immediate execution"}`.
///
/// Runs the job once more, now, whatever is queued already: also a paused job (an
/// explicit request) and a completed or failed one-time job (a re-run, which does
/// not change its status). Any body is accepted and ignored.
///
/// Decision: a deleted job is 404 `JOB_NOT_FOUND` like on every other route (the
/// contract's "deleted jobs → 400 `INVALID_OPERATION`" contradicts its "afterwards
/// every route answers 404"; a deleted job is gone, so 404).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/execute", tag = "jobs", operation_id = "execute_job",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = JOB_ID)),
    responses(
        (status = 202, description = "\"Job execution triggered\": the run is queued",
            body = Envelope<Triggered>),
        (status = 400, description = "`VALIDATION_ERROR`: a malformed id", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND` (also a deleted job)", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn execute(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let execution = state.chronos().owned_by(user.id).execute_now(id).await?;
    tracing::debug!(job_id = %id, execution_id = %execution.id, "manual run queued");
    Ok(with(
        StatusCode::ACCEPTED,
        Some("Job execution triggered"),
        Triggered {
            job_id: id,
            execution_id: execution.id,
            status: execution.status.as_str(),
            message: "Job queued for immediate execution",
        },
    ))
}

/// A queued manual run.
#[derive(Serialize, ToSchema)]
struct Triggered {
    /// The job (this name: the original API's).
    #[serde(rename = "jobId")]
    job_id: Uuid,
    /// The execution recorded for the run.
    execution_id: Uuid,
    /// `queued`.
    #[schema(value_type = schema::ExecutionStatus)]
    status: &'static str,
    /// "Job queued for immediate execution".
    message: &'static str,
}

/// The query of `GET /jobs/:id/executions` (read as pairs like the job list's; this
/// is its description for the document).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExecutionListQuery {
    /// Only executions with this status.
    #[param(value_type = Option<schema::ExecutionStatus>)]
    pub status: Option<String>,
    /// The page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// A job's executions.
///
/// `GET /jobs/:id/executions`: one page of the job's executions, newest first,
/// `data: {executions, pagination}`.
///
/// Query: `status` (queued|running|success|failed|timeout|cancelled), `page`,
/// `limit`, read like the job list's (empty values count as absent, other
/// parameters are ignored, bad values are a `VALIDATION_ERROR` naming them).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/executions", tag = "executions",
    operation_id = "list_job_executions",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = JOB_ID), ExecutionListQuery),
    responses(
        (status = 200, description = "One page of executions, newest first",
            body = Envelope<ExecutionList>),
        (status = 400, description = "`VALIDATION_ERROR` naming each bad parameter (or a \
            malformed id)", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn executions(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut p = Params::new(pairs);
    let status = p.choice(
        "status",
        ExecutionStatus::parse,
        "queued, running, success, failed, timeout or cancelled",
    );
    let (page, limit) = p.page_and_limit();
    p.finish()?;
    let query = ExecutionQuery {
        status,
        page,
        limit,
    };
    let found = state
        .chronos()
        .owned_by(user.id)
        .executions(id, &query)
        .await?;
    Ok(ok(ExecutionList {
        executions: found.items.iter().map(ExecutionJson::from).collect(),
        pagination: PaginationJson::from(&found),
    }))
}

/// One page of executions.
#[derive(Serialize, ToSchema)]
struct ExecutionList {
    /// The executions of the page, newest first.
    executions: Vec<ExecutionJson>,
    /// Where the page is.
    pagination: PaginationJson,
}

/// Query parameters of a list, read with the documented errors.
struct Params {
    values: HashMap<String, String>,
    issues: Vec<FieldIssue>,
}

impl Params {
    fn new(pairs: Vec<(String, String)>) -> Self {
        let mut values = HashMap::new();
        let mut issues = Vec::new();
        for (key, value) in pairs {
            if value.trim().is_empty() {
                continue;
            }
            match values.entry(key) {
                Entry::Vacant(v) => {
                    v.insert(value);
                }
                Entry::Occupied(o) => {
                    let field = o.key().clone();
                    if !issues.iter().any(|i: &FieldIssue| i.field == field) {
                        issues.push(FieldIssue {
                            field,
                            message: "must be given at most once".to_owned(),
                        });
                    }
                }
            }
        }
        Self { values, issues }
    }

    fn issue(&mut self, field: &str, message: String) {
        if !self.issues.iter().any(|i| i.field == field) {
            self.issues.push(FieldIssue {
                field: field.to_owned(),
                message,
            });
        }
    }

    /// One of a fixed set of values.
    fn choice<T>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &str,
    ) -> Option<T> {
        let value = self.values.get(key)?;
        match parse(value) {
            Some(v) => Some(v),
            None => {
                self.issue(key, format!("must be {allowed}"));
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    fn number(&mut self, key: &str, min: u32, max: u32, default: u32) -> u32 {
        let Some(value) = self.values.get(key) else {
            return default;
        };
        let parsed = Some(value.as_str())
            .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| (min..=max).contains(n));
        parsed.unwrap_or_else(|| {
            self.issue(key, format!("must be a whole number from {min} to {max}"));
            default
        })
    }

    fn page_and_limit(&mut self) -> (u32, u32) {
        let page = self.number("page", 1, u32::MAX, 1);
        let limit = self.number("limit", 1, MAX_PAGE_SIZE, DEFAULT_LIMIT);
        (page, limit)
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self.issues))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use utoipa::openapi::path::ParameterIn;

    use super::*;

    fn schema_of<T: PartialSchema>() -> Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    fn keys(schema: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    fn sorted(fields: &[&'static str]) -> Vec<&'static str> {
        let mut fields = fields.to_vec();
        fields.sort_unstable();
        fields
    }

    fn number(schema: &Value, field: &str, bound: &str) -> f64 {
        schema["properties"][field][bound]
            .as_f64()
            .unwrap_or_else(|| panic!("{field}.{bound}"))
    }

    /// The request types describe exactly the fields the handlers accept, with the
    /// core's limits.
    #[test]
    fn the_documented_bodies_are_the_accepted_ones() {
        let max_backoff = spec::MAX_RETRY_BACKOFF.as_millis() as f64;
        let create = schema_of::<CreateJob>();
        assert_eq!(keys(&create), sorted(CREATE_FIELDS));
        assert_eq!(
            create["required"],
            serde_json::json!(["name", "job_type", "schedule_type"])
        );
        let update = schema_of::<UpdateJob>();
        assert_eq!(keys(&update), sorted(UPDATE_FIELDS));
        for body in [&create, &update] {
            let max_timeout = spec::MAX_TIMEOUT.as_secs() as f64;
            assert_eq!(number(body, "timeout_seconds", "maximum"), max_timeout);
            let max_retries = f64::from(spec::MAX_RETRIES);
            assert_eq!(number(body, "max_retries", "maximum"), max_retries);
            assert_eq!(number(body, "retry_backoff_ms", "maximum"), max_backoff);
            let max_name = spec::MAX_NAME_CHARS as f64;
            assert_eq!(number(body, "name", "maxLength"), max_name);
            let max_description = spec::MAX_DESCRIPTION_CHARS as f64;
            assert_eq!(number(body, "description", "maxLength"), max_description);
            let max_handler = spec::MAX_HANDLER_CHARS as f64;
            assert_eq!(number(body, "handler", "maxLength"), max_handler);
        }
        // The fields that "cannot be changed" are fields of the job JSON.
        let job = format!("{}{}", schema_of::<JobJson>(), schema_of::<JobDetailJson>());
        for field in FIXED_FIELDS {
            assert!(job.contains(&format!("\"{field}\"")), "{field}");
        }
    }

    #[test]
    fn the_documented_page_size_is_the_accepted_one() {
        for params in [
            JobListQuery::into_params(|| Some(ParameterIn::Query)),
            ExecutionListQuery::into_params(|| Some(ParameterIn::Query)),
        ] {
            let params = serde_json::to_value(params).unwrap();
            let limit = params
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "limit")
                .unwrap();
            assert_eq!(
                limit["schema"]["maximum"].as_f64(),
                Some(f64::from(MAX_PAGE_SIZE))
            );
        }
    }
}
