//! `/jobs`: create, list, read, change, pause, resume, delete and run jobs, and list
//! a job's executions. Every operation is scoped to the caller
//! ([`chronos::Chronos::owned_by`]): another user's job answers exactly like a missing
//! one, 404 `JOB_NOT_FOUND`.

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
use chronos::Chronos;
use chronos::model::spec::{self, SpecError};
use chronos::model::{
    ExecutionQuery, ExecutionStatus, JobKind, JobQuery, JobSort, JobSpec, JobStatus, JobUpdate,
    MAX_PAGE_SIZE, SortOrder,
};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ApiError, Code, FieldIssue};
use crate::extract::{ApiJson, ApiPath, ApiQuery, body_rejection, parse_json};
use crate::json::{ExecutionJson, Fields, JobDetailJson, JobJson, PaginationJson};
use crate::respond::{ok, ok_message, ok_with, with};
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
        Some(JobJson::from(&job)),
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

#[derive(Serialize)]
struct JobList {
    jobs: Vec<JobJson>,
    pagination: PaginationJson,
}

/// `GET /jobs/upcoming`: the caller's active jobs due within the next 24 hours,
/// soonest first, `data: {jobs, count}`.
///
/// Decisions: at most 100 jobs (`count` is the number returned); each is the full
/// job JSON (a superset of the README's `{id, name, next_run, job_type}`); query
/// parameters are ignored.
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

#[derive(Serialize)]
struct Upcoming {
    jobs: Vec<JobJson>,
    count: usize,
}

/// `GET /jobs/:id`: the job with `statistics {total_executions,
/// successful_executions, failed_executions, average_duration_ms,
/// last_execution_time}`, repeated as `execution_count`, `success_count` and
/// `failure_count` for the original frontend.
///
/// Decisions: `average_duration_ms` is a number rounded to 2 decimals, 0 while no
/// attempt has a duration; `last_execution_time` is `null` until an attempt starts;
/// `total_executions` counts every recorded attempt (queued and cancelled ones too),
/// `failed_executions` counts failures and timeouts.
pub async fn get(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let owned = state.chronos().owned_by(user.id);
    let job = owned.job(id).await?;
    let stats = owned.stats(id).await?;
    Ok(ok(JobDetailJson::new(&job, &stats)))
}

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

/// `DELETE /jobs/:id`: 200 "Job deleted successfully" (no `data`). A soft delete: the
/// history is kept, nothing of the job runs again, and afterwards every route
/// answers 404 `JOB_NOT_FOUND` for it (and `EXECUTION_NOT_FOUND` for its executions),
/// a second delete included.
pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    state.chronos().owned_by(user.id).delete(id).await?;
    tracing::debug!(job_id = %id, user_id = %user.id, "job deleted");
    Ok(ok_message("Job deleted successfully"))
}

/// `POST /jobs/:id/pause`: 200 "Job paused successfully" with the job (`status:
/// paused`, `paused_at`, `next_run: null`). Only active recurring jobs can be
/// paused; otherwise 400 `INVALID_OPERATION`. Any body and `Content-Type` are
/// accepted and ignored (the original frontend sends none).
pub async fn pause(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let job = state.chronos().owned_by(user.id).pause(id).await?;
    Ok(ok_with("Job paused successfully", JobJson::from(&job)))
}

/// `POST /jobs/:id/resume`: 200 "Job resumed successfully" with the job (`status:
/// active`, `resumed_at`, `next_run` computed from now). Only paused jobs can be
/// resumed; otherwise 400 `INVALID_OPERATION`. Any body is accepted and ignored.
pub async fn resume(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let job = state.chronos().owned_by(user.id).resume(id).await?;
    Ok(ok_with("Job resumed successfully", JobJson::from(&job)))
}

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
        Some(Triggered {
            job_id: id,
            execution_id: execution.id,
            status: execution.status.as_str(),
            message: "Job queued for immediate execution",
        }),
    ))
}

#[derive(Serialize)]
struct Triggered {
    #[serde(rename = "jobId")]
    job_id: Uuid,
    execution_id: Uuid,
    status: &'static str,
    message: &'static str,
}

/// `GET /jobs/:id/executions`: one page of the job's executions, newest first,
/// `data: {executions, pagination}`.
///
/// Query: `status` (queued|running|success|failed|timeout|cancelled), `page`,
/// `limit`, read like the job list's (empty values count as absent, other
/// parameters are ignored, bad values are a `VALIDATION_ERROR` naming them).
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

#[derive(Serialize)]
struct ExecutionList {
    executions: Vec<ExecutionJson>,
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
