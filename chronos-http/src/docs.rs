//! The OpenAPI document of the service (`GET /openapi.json`, rendered at `/docs`).
//!
//! Generated with utoipa from the code: each route of the contract is described by
//! a `#[utoipa::path]` on a documentation-only function below (the handlers live
//! in the resource modules), and each body by a `ToSchema` type that mirrors the
//! JSON the handlers write (`crate::json`, the routes' data types). A test checks
//! that every route of the router is documented.

#![allow(
    dead_code,
    reason = "the types and functions here exist for the document only"
)]

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

/// The OpenAPI document of the service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chronos",
        description = "A job scheduler: run jobs now, at a time, or on a cron schedule in any \
time zone, with retries, history and logs. Every route under `/api/v1` answers JSON; \
success bodies are `{success: true, message?, data}`, error bodies \
`{error: true, message, code, timestamp, errors?}`. Authenticated routes take \
`Authorization: Bearer <token>` from register or login and are rate-limited per user \
(`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` on every answer; \
429 `RATE_LIMIT_EXCEEDED` with `Retry-After`). Instants are RFC 3339 UTC with \
milliseconds and `Z`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        register, login, logout, me, refresh,
        create_job, list_jobs, upcoming_jobs, get_job, update_job, delete_job,
        pause_job, resume_job, execute_job, job_executions,
        get_execution, execution_logs,
        dashboard_stats, dashboard_health,
        cron_preview,
        health, metrics, openapi_json, docs,
    ),
    components(schemas(ErrorBody, ErrorCode, FieldIssueDoc)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "jobs", description = "Creating, changing and running jobs"),
        (name = "executions", description = "Attempts and their logs"),
        (name = "dashboard", description = "Figures and health for signed-in users"),
        (name = "cron", description = "Cron expression tools"),
        (name = "system", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// Adds the bearer-token security scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The token of `POST /auth/register` or `POST /auth/login` (HS256, 24 h).",
                    ))
                    .build(),
            ),
        );
    }
}

// ---------------------------------------------------------------- errors

/// Every error answer.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": true, "message": "job not found", "code": "JOB_NOT_FOUND", "timestamp": "2026-11-29T09:09:40.985Z"}))]
struct ErrorBody {
    /// Always `true`.
    error: bool,
    /// What went wrong, for people.
    message: String,
    /// What went wrong, for programs.
    code: ErrorCode,
    /// When (RFC 3339 UTC, milliseconds).
    timestamp: String,
    /// The invalid fields of a `VALIDATION_ERROR`.
    #[schema(nullable = false)]
    errors: Option<Vec<FieldIssueDoc>>,
}

/// One invalid field.
#[derive(Serialize, ToSchema)]
#[schema(as = FieldIssue)]
struct FieldIssueDoc {
    /// The field (`schedule.cron_expression`, `limit`, `body`).
    field: String,
    /// What is wrong with it.
    message: String,
}

/// The error codes and their statuses.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum ErrorCode {
    /// 400: a field is missing, malformed or out of range.
    ValidationError,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 401: no or an ill-formed `Authorization` header.
    Unauthorized,
    /// 401: the token's signature, algorithm or claims are wrong.
    InvalidToken,
    /// 401: the token has expired.
    TokenExpired,
    /// 401: the token was revoked (logout, refresh).
    TokenRevoked,
    /// 401: unknown email or wrong password.
    InvalidCredentials,
    /// 409: the email is registered already.
    EmailExists,
    /// 404: no such job for this user.
    JobNotFound,
    /// 404: no such execution for this user.
    ExecutionNotFound,
    /// 400: `scheduled_time` is not in the future.
    InvalidScheduledTime,
    /// 422: the cron expression does not parse.
    InvalidCronExpression,
    /// 400: not an IANA time zone.
    InvalidTimezone,
    /// 400: the job's status forbids the change.
    InvalidJobStatus,
    /// 400: the operation does not apply to the job as it is.
    InvalidOperation,
    /// 429: too many requests in the window.
    RateLimitExceeded,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 404: no such route.
    RouteNotFound,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 503: a dependency is down or the service is shutting down.
    ServiceUnavailable,
    /// 500: a bug, logged with the request id.
    InternalError,
}

/// A message-only success.
#[derive(Serialize, ToSchema)]
struct MessageEnvelope {
    /// `true`.
    success: bool,
    /// What was done.
    message: String,
}

// ---------------------------------------------------------------- auth

/// Email and password.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"email": "user@example.com", "password": "SecurePass123"}))]
struct Credentials {
    /// A valid address; stored trimmed and lower-cased, unique case-insensitively.
    email: String,
    /// 8 to 128 characters with a lower-case letter, an upper-case letter and a digit.
    password: String,
}

/// A user as register and login show them.
#[derive(Serialize, ToSchema)]
struct UserBrief {
    id: Uuid,
    email: String,
    created_at: String,
}

/// A session.
#[derive(Serialize, ToSchema)]
struct Session {
    user: UserBrief,
    /// The bearer token.
    token: String,
    /// Its lifetime in seconds (86400).
    expires_in: u64,
    /// `user.id` (read by the original frontend).
    user_id: Uuid,
    /// `user.email` (read by the original frontend).
    email: String,
}

/// `{success, message, data: session}`.
#[derive(Serialize, ToSchema)]
struct SessionEnvelope {
    success: bool,
    /// "User registered successfully" or "Login successful".
    message: String,
    data: Session,
}

/// The caller.
#[derive(Serialize, ToSchema)]
struct Me {
    id: Uuid,
    email: String,
    created_at: String,
    updated_at: String,
}

/// `{success, data: me}`.
#[derive(Serialize, ToSchema)]
struct MeEnvelope {
    success: bool,
    data: Me,
}

/// A new token.
#[derive(Serialize, ToSchema)]
struct Refreshed {
    token: String,
    expires_in: u64,
}

/// `{success, message?, data: {token, expires_in}}`.
#[derive(Serialize, ToSchema)]
struct RefreshEnvelope {
    success: bool,
    #[schema(nullable = false)]
    message: Option<String>,
    data: Refreshed,
}

/// `POST /api/v1/auth/register`.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 201, description = "Registered; the body carries a token", body = SessionEnvelope),
        (status = 400, description = "`VALIDATION_ERROR` (bad email or weak password) or `INVALID_JSON`", body = ErrorBody),
        (status = 409, description = "`EMAIL_EXISTS`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`: 10 per 15 minutes per client IP (register and login together)", body = ErrorBody),
    )
)]
fn register() {}

/// `POST /api/v1/auth/login`.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = SessionEnvelope),
        (status = 400, description = "`VALIDATION_ERROR` or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`INVALID_CREDENTIALS`: unknown email or wrong password, alike", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED` (per client IP)", body = ErrorBody),
    )
)]
fn login() {}

/// `POST /api/v1/auth/logout`: revokes the token for the rest of its life. No body.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "\"Logged out successfully\"", body = MessageEnvelope),
        (status = 401, description = "`UNAUTHORIZED`, `INVALID_TOKEN`, `TOKEN_EXPIRED` or `TOKEN_REVOKED`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the revocation could not be recorded", body = ErrorBody),
    )
)]
fn logout() {}

/// `GET /api/v1/auth/me`.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = MeEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
fn me() {}

/// `POST /api/v1/auth/refresh`: a new token; the old one is revoked. No body.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "A new token", body = RefreshEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED` (per user)", body = ErrorBody),
    )
)]
fn refresh() {}

// ---------------------------------------------------------------- jobs

/// `one-time` or `recurring`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
enum JobType {
    OneTime,
    Recurring,
}

/// `immediate`, `scheduled` (with `scheduled_time`) or `cron` (with `cron_expression`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum ScheduleType {
    Immediate,
    Scheduled,
    Cron,
}

/// A job's status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum JobStatus {
    Pending,
    Active,
    Paused,
    Completed,
    Failed,
}

/// The statuses a `PATCH` may set.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum SettableStatus {
    Active,
    Paused,
}

/// An execution's status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum ExecutionStatus {
    Queued,
    Running,
    Success,
    Failed,
    Timeout,
    Cancelled,
}

/// `POST /jobs`. `one-time` pairs with `immediate` or `scheduled`, `recurring` with
/// `cron`; a field that does not belong to the schedule is a `VALIDATION_ERROR`, as
/// is any unknown field. `null` counts as absent.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "nightly report", "job_type": "recurring", "schedule_type": "cron",
    "cron_expression": "30 2 * * *", "timezone": "Europe/Berlin", "handler": "http",
    "payload": {"url": "https://example.com/report", "method": "POST"}, "max_retries": 3}))]
struct CreateJob {
    /// 1 to 255 characters.
    name: String,
    /// At most 1000 characters.
    #[schema(nullable = false)]
    description: Option<String>,
    job_type: JobType,
    schedule_type: ScheduleType,
    /// For `scheduled`: RFC 3339 with `Z` or an offset, in the future.
    #[schema(nullable = false)]
    scheduled_time: Option<String>,
    /// For `cron`: 5 fields, or 6 with seconds first; names, ranges, lists, steps,
    /// macros, `L`, `W`, `#`.
    #[schema(nullable = false)]
    cron_expression: Option<String>,
    /// An IANA zone (default `UTC`).
    #[schema(nullable = false)]
    timezone: Option<String>,
    /// A registered executor: `echo` (default: succeeds, returns the payload),
    /// `http` (`{url, method?, headers?, body?}`), `sleep` (`{ms}`), `fail`
    /// (`{message?, fatal?}`).
    #[schema(nullable = false)]
    handler: Option<String>,
    /// A JSON object handed to the executor (default `{}`).
    #[schema(value_type = Option<Object>, nullable = false)]
    payload: Option<Value>,
    /// 1 to 3600 (default 300).
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    timeout_seconds: Option<u32>,
    /// 0 to 10 (default 3; 0: no retry).
    #[schema(nullable = false, minimum = 0, maximum = 10)]
    max_retries: Option<u32>,
    /// Retry n waits `retry_backoff_ms × 2^(n-1)`: 0 to 86 400 000 (default 60 000).
    #[schema(nullable = false, minimum = 0, maximum = 86_400_000)]
    retry_backoff_ms: Option<u64>,
}

/// `PATCH /jobs/{id}`: at least one field. A new cron expression or time zone
/// recomputes `next_run`; `status` pauses or resumes.
#[derive(Serialize, ToSchema)]
struct UpdateJob {
    #[schema(nullable = false)]
    name: Option<String>,
    #[schema(nullable = false)]
    description: Option<String>,
    #[schema(nullable = false)]
    cron_expression: Option<String>,
    #[schema(nullable = false)]
    timezone: Option<String>,
    #[schema(value_type = Option<Object>, nullable = false)]
    payload: Option<Value>,
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    timeout_seconds: Option<u32>,
    #[schema(nullable = false, minimum = 0, maximum = 10)]
    max_retries: Option<u32>,
    #[schema(nullable = false)]
    retry_backoff_ms: Option<u64>,
    #[schema(nullable = false)]
    handler: Option<String>,
    #[schema(nullable = false)]
    status: Option<SettableStatus>,
}

/// A job.
#[derive(Serialize, ToSchema)]
struct Job {
    id: Uuid,
    /// `id` again (read by the original frontend).
    job_id: Uuid,
    user_id: Uuid,
    name: String,
    description: Option<String>,
    job_type: JobType,
    schedule_type: ScheduleType,
    scheduled_time: Option<String>,
    cron_expression: Option<String>,
    timezone: String,
    handler: String,
    #[schema(value_type = Object)]
    payload: Value,
    timeout_seconds: u64,
    max_retries: u32,
    retry_count: u32,
    retry_backoff_ms: u64,
    status: JobStatus,
    /// The next occurrence owed.
    next_run: Option<String>,
    last_executed_at: Option<String>,
    paused_at: Option<String>,
    resumed_at: Option<String>,
    created_at: String,
    updated_at: String,
}

/// A job's execution figures.
#[derive(Serialize, ToSchema)]
struct Statistics {
    total_executions: u64,
    successful_executions: u64,
    /// Failures and timeouts.
    failed_executions: u64,
    average_duration_ms: f64,
    last_execution_time: Option<String>,
}

/// A job with its figures.
#[derive(Serialize, ToSchema)]
struct JobDetail {
    #[serde(flatten)]
    job: Job,
    statistics: Statistics,
    /// `statistics.total_executions` (original frontend).
    execution_count: u64,
    /// `statistics.successful_executions` (original frontend).
    success_count: u64,
    /// `statistics.failed_executions` (original frontend).
    failure_count: u64,
}

/// A page's position.
#[derive(Serialize, ToSchema)]
struct Pagination {
    total: u64,
    page: u32,
    limit: u32,
    total_pages: u64,
}

/// `{success, message?, data: job}`.
#[derive(Serialize, ToSchema)]
struct JobEnvelope {
    success: bool,
    #[schema(nullable = false)]
    message: Option<String>,
    data: Job,
}

/// `{success, data: job with statistics}`.
#[derive(Serialize, ToSchema)]
struct JobDetailEnvelope {
    success: bool,
    data: JobDetail,
}

/// A page of jobs.
#[derive(Serialize, ToSchema)]
struct JobPage {
    jobs: Vec<Job>,
    pagination: Pagination,
}

/// `{success, data: {jobs, pagination}}`.
#[derive(Serialize, ToSchema)]
struct JobPageEnvelope {
    success: bool,
    data: JobPage,
}

/// The jobs due soon.
#[derive(Serialize, ToSchema)]
struct Upcoming {
    jobs: Vec<Job>,
    count: u64,
}

/// `{success, data: {jobs, count}}`.
#[derive(Serialize, ToSchema)]
struct UpcomingEnvelope {
    success: bool,
    data: Upcoming,
}

/// A queued manual run.
#[derive(Serialize, ToSchema)]
struct Triggered {
    #[serde(rename = "jobId")]
    job_id: Uuid,
    execution_id: Uuid,
    /// `queued`.
    status: ExecutionStatus,
    message: String,
}

/// `{success, message: "Job execution triggered", data}`.
#[derive(Serialize, ToSchema)]
struct TriggeredEnvelope {
    success: bool,
    message: String,
    data: Triggered,
}

const ID_PARAM: &str = "The job's id (a UUID; malformed → 400 `VALIDATION_ERROR`)";

/// `POST /api/v1/jobs`.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", security(("bearer" = [])),
    request_body = CreateJob,
    responses(
        (status = 201, description = "\"Job created successfully\"; new jobs are `active`", body = JobEnvelope),
        (status = 400, description = "`VALIDATION_ERROR` (every bad field at once), `INVALID_JSON`, `INVALID_SCHEDULED_TIME` or `INVALID_TIMEZONE`", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE` (over 1 MiB)", body = ErrorBody),
        (status = 422, description = "`INVALID_CRON_EXPRESSION` with the parser's reason", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn create_job() {}

/// `GET /api/v1/jobs`: the caller's jobs, one page. Deleted jobs never appear.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", security(("bearer" = [])),
    params(
        ("status" = Option<JobStatus>, Query, description = "Only jobs with this status"),
        ("job_type" = Option<JobType>, Query, description = "Only jobs of this type"),
        ("page" = Option<u32>, Query, description = "The page, from 1 (default 1)", minimum = 1),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 100 (default 20); out of range → 400", minimum = 1, maximum = 100),
        ("sort_by" = Option<String>, Query, description = "`created_at` (default), `next_run`, `name` or `updated_at`"),
        ("sort_order" = Option<String>, Query, description = "`asc` or `desc` (default)"),
    ),
    responses(
        (status = 200, description = "A page of jobs", body = JobPageEnvelope),
        (status = 400, description = "`VALIDATION_ERROR` naming the parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn list_jobs() {}

/// `GET /api/v1/jobs/upcoming`: the caller's active jobs due in the next 24 hours,
/// soonest first.
#[utoipa::path(get, path = "/api/v1/jobs/upcoming", tag = "jobs", security(("bearer" = [])),
    responses(
        (status = 200, description = "The jobs due soon", body = UpcomingEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn upcoming_jobs() {}

/// `GET /api/v1/jobs/{id}`: the job with its execution figures.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = ID_PARAM)),
    responses(
        (status = 200, description = "The job", body = JobDetailEnvelope),
        (status = 400, description = "`VALIDATION_ERROR`: malformed id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND` (also another user's or a deleted job)", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn get_job() {}

/// `PATCH /api/v1/jobs/{id}`.
#[utoipa::path(patch, path = "/api/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = ID_PARAM)),
    request_body = UpdateJob,
    responses(
        (status = 200, description = "\"Job updated successfully\"", body = JobEnvelope),
        (status = 400, description = "`VALIDATION_ERROR` (empty body, unknown or read-only field), `INVALID_JSON`, `INVALID_TIMEZONE`, or `INVALID_JOB_STATUS` (completed or failed job)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 422, description = "`INVALID_CRON_EXPRESSION`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn update_job() {}

/// `DELETE /api/v1/jobs/{id}`: a soft delete; the history is kept and nothing of the
/// job runs again.
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = ID_PARAM)),
    responses(
        (status = 200, description = "\"Job deleted successfully\"", body = MessageEnvelope),
        (status = 400, description = "`VALIDATION_ERROR`: malformed id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn delete_job() {}

/// `POST /api/v1/jobs/{id}/pause`: active recurring jobs only; nothing runs while
/// paused, including occurrences already queued. No body.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/pause", tag = "jobs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = ID_PARAM)),
    responses(
        (status = 200, description = "\"Job paused successfully\"; `data` carries `paused_at`", body = JobEnvelope),
        (status = 400, description = "`INVALID_OPERATION`: not an active recurring job", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn pause_job() {}

/// `POST /api/v1/jobs/{id}/resume`: paused jobs only; schedules from now. No body.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/resume", tag = "jobs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = ID_PARAM)),
    responses(
        (status = 200, description = "\"Job resumed successfully\"; `data` carries `resumed_at`", body = JobEnvelope),
        (status = 400, description = "`INVALID_OPERATION`: the job is not paused", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn resume_job() {}

/// `POST /api/v1/jobs/{id}/execute`: runs the job once more, now, whatever is
/// queued (also a paused job). No body.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/execute", tag = "jobs", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = ID_PARAM)),
    responses(
        (status = 202, description = "Queued", body = TriggeredEnvelope),
        (status = 400, description = "`VALIDATION_ERROR`: malformed id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND` (also a deleted job)", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn execute_job() {}

// ---------------------------------------------------------------- executions

/// One attempt.
#[derive(Serialize, ToSchema)]
struct Execution {
    id: Uuid,
    job_id: Uuid,
    job_name: String,
    status: ExecutionStatus,
    /// When the occurrence was due.
    scheduled_for: String,
    /// When the attempt started (`null` while queued).
    execution_time: Option<String>,
    finished_at: Option<String>,
    duration_ms: Option<u64>,
    /// 0 for a first attempt, n for the n-th retry.
    retry_attempt: u32,
    /// What the executor returned.
    #[schema(value_type = Option<Object>)]
    output: Option<Value>,
    error_message: Option<String>,
    worker: Option<String>,
    /// Whether a user asked for this run.
    manual: bool,
    created_at: String,
}

/// A page of executions.
#[derive(Serialize, ToSchema)]
struct ExecutionPage {
    executions: Vec<Execution>,
    pagination: Pagination,
}

/// `{success, data: {executions, pagination}}`.
#[derive(Serialize, ToSchema)]
struct ExecutionPageEnvelope {
    success: bool,
    data: ExecutionPage,
}

/// `{success, data: execution}`.
#[derive(Serialize, ToSchema)]
struct ExecutionEnvelope {
    success: bool,
    data: Execution,
}

/// A log level.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// One line of an execution's log.
#[derive(Serialize, ToSchema)]
struct LogLine {
    id: Uuid,
    level: LogLevel,
    message: String,
    #[schema(value_type = Object)]
    metadata: Value,
    timestamp: String,
}

/// An execution's log.
#[derive(Serialize, ToSchema)]
struct Logs {
    execution_id: Uuid,
    /// Oldest first.
    logs: Vec<LogLine>,
}

/// `{success, data: {execution_id, logs}}`.
#[derive(Serialize, ToSchema)]
struct LogsEnvelope {
    success: bool,
    data: Logs,
}

/// `GET /api/v1/jobs/{id}/executions`: newest first.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/executions", tag = "executions", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = ID_PARAM),
        ("status" = Option<ExecutionStatus>, Query, description = "Only executions with this status"),
        ("page" = Option<u32>, Query, description = "The page, from 1", minimum = 1),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
    ),
    responses(
        (status = 200, description = "A page of executions", body = ExecutionPageEnvelope),
        (status = 400, description = "`VALIDATION_ERROR` naming the parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn job_executions() {}

/// `GET /api/v1/executions/{id}`.
#[utoipa::path(get, path = "/api/v1/executions/{id}", tag = "executions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The execution", body = ExecutionEnvelope),
        (status = 400, description = "`VALIDATION_ERROR`: malformed id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`EXECUTION_NOT_FOUND` (also another user's)", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn get_execution() {}

/// `GET /api/v1/executions/{id}/logs`.
#[utoipa::path(get, path = "/api/v1/executions/{id}/logs", tag = "executions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The log, oldest first", body = LogsEnvelope),
        (status = 400, description = "`VALIDATION_ERROR`: malformed id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "`EXECUTION_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn execution_logs() {}

// ---------------------------------------------------------------- dashboard

/// Job counts.
#[derive(Serialize, ToSchema)]
struct JobFigures {
    total: u64,
    active: u64,
    completed: u64,
    paused: u64,
    failed: u64,
    onetime: u64,
    recurring: u64,
}

/// Execution figures.
#[derive(Serialize, ToSchema)]
struct ExecutionFigures {
    total: u64,
    successful: u64,
    failed: u64,
    /// Percent of finished attempts that succeeded.
    success_rate: f64,
    avg_duration_seconds: f64,
    max_duration_seconds: f64,
    min_duration_seconds: f64,
}

/// A job due soon.
#[derive(Serialize, ToSchema)]
struct UpcomingJob {
    id: Uuid,
    job_id: Uuid,
    name: String,
    next_run: Option<String>,
    job_type: JobType,
}

/// A recent attempt.
#[derive(Serialize, ToSchema)]
struct RecentExecution {
    id: Uuid,
    job_id: Uuid,
    job_name: String,
    status: ExecutionStatus,
    execution_time: Option<String>,
    duration_ms: Option<u64>,
}

/// The caller's figures.
#[derive(Serialize, ToSchema)]
struct Stats {
    jobs: JobFigures,
    executions: ExecutionFigures,
    upcoming_jobs: Vec<UpcomingJob>,
    recent_executions: Vec<RecentExecution>,
}

/// `{success, data: stats}`.
#[derive(Serialize, ToSchema)]
struct StatsEnvelope {
    success: bool,
    data: Stats,
}

/// `GET /api/v1/dashboard/stats`: the caller's jobs only.
#[utoipa::path(get, path = "/api/v1/dashboard/stats", tag = "dashboard", security(("bearer" = [])),
    responses(
        (status = 200, description = "The figures", body = StatsEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
fn dashboard_stats() {}

/// One dependency's health.
#[derive(Serialize, ToSchema)]
struct ServiceHealth {
    /// `healthy`, `unhealthy` or `not_configured`.
    status: String,
    #[schema(nullable = false)]
    latency_ms: Option<f64>,
    /// Why it is unhealthy.
    #[schema(nullable = false)]
    error: Option<String>,
    /// `postgresql`, `redis` or `memory` (database and queue).
    #[schema(nullable = false)]
    backend: Option<String>,
}

/// The queue's depth.
#[derive(Serialize, ToSchema)]
struct QueueFigures {
    /// Entries not yet running (`delayed + due`).
    waiting: u64,
    /// Due and not yet taken.
    due: u64,
    /// Waiting for their time.
    delayed: u64,
    /// Taken by a worker.
    leased: u64,
    /// `leased` again (the original API's name).
    active: u64,
    total: u64,
}

/// The queue's health.
#[derive(Serialize, ToSchema)]
struct QueueHealth {
    #[serde(flatten)]
    service: ServiceHealth,
    #[schema(nullable = false)]
    metrics: Option<QueueFigures>,
}

/// The dependencies.
#[derive(Serialize, ToSchema)]
struct Services {
    database: ServiceHealth,
    redis: ServiceHealth,
    queue: QueueHealth,
}

/// The process.
#[derive(Serialize, ToSchema)]
struct SystemInfo {
    uptime_seconds: u64,
    started_at: String,
    /// `serve` or `api`.
    role: String,
    worker_id: String,
    environment: String,
    #[schema(value_type = Option<Object>, nullable = false)]
    memory: Option<Value>,
}

/// The health report. A 503 adds `error: true`, `code: "SERVICE_UNAVAILABLE"` and a
/// `message` naming the failing dependencies.
#[derive(Serialize, ToSchema)]
struct Health {
    /// `false` when unhealthy.
    success: bool,
    /// `healthy` or `unhealthy`.
    status: String,
    timestamp: String,
    version: String,
    /// Seconds since start.
    uptime: f64,
    environment: String,
    services: Services,
    system: SystemInfo,
    #[schema(nullable = false)]
    error: Option<bool>,
    #[schema(nullable = false)]
    code: Option<ErrorCode>,
    #[schema(nullable = false)]
    message: Option<String>,
}

/// `GET /api/v1/dashboard/health`: the health report, for signed-in users.
#[utoipa::path(get, path = "/api/v1/dashboard/health", tag = "dashboard", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every dependency answered", body = Health),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`", body = ErrorBody),
        (status = 503, description = "A dependency is down (named in `message`)", body = Health),
    )
)]
fn dashboard_health() {}

// ---------------------------------------------------------------- cron

/// `POST /cron/preview`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"cron_expression": "30 2 * * *", "timezone": "Europe/Berlin", "count": 3}))]
struct CronPreview {
    cron_expression: String,
    /// IANA zone (default `UTC`).
    #[schema(nullable = false)]
    timezone: Option<String>,
    /// Start after this instant (RFC 3339; default now).
    #[schema(nullable = false)]
    after: Option<String>,
    /// 1 to 100 (default 5).
    #[schema(nullable = false, minimum = 1, maximum = 100)]
    count: Option<u32>,
}

/// The fire times.
#[derive(Serialize, ToSchema)]
struct NextRuns {
    /// RFC 3339 UTC instants.
    next_runs: Vec<String>,
}

/// `{success, data: {next_runs}}`.
#[derive(Serialize, ToSchema)]
struct NextRunsEnvelope {
    success: bool,
    data: NextRuns,
}

/// `POST /api/v1/cron/preview`: the next fire times, with the rules of jobs.
#[utoipa::path(post, path = "/api/v1/cron/preview", tag = "cron", security(("bearer" = [])),
    request_body = CronPreview,
    responses(
        (status = 200, description = "The next fire times", body = NextRunsEnvelope),
        (status = 400, description = "`VALIDATION_ERROR`, `INVALID_JSON` or `INVALID_TIMEZONE`", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 422, description = "`INVALID_CRON_EXPRESSION`", body = ErrorBody),
    )
)]
fn cron_preview() {}

// ---------------------------------------------------------------- system

/// `GET /health`: public; 200 when every dependency answers, else 503 naming the
/// failing ones. Probes are bounded (2 s), so a hung dependency gives 503.
#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "A dependency is down", body = Health),
    )
)]
fn health() {}

/// `GET /metrics`: Prometheus metrics (OpenMetrics text): HTTP requests by route
/// template, method and status with latencies, job executions by status, queue
/// depth.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "The metrics", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"))
)]
fn metrics() {}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
fn openapi_json() {}

/// `GET /docs`: interactive documentation of this document (Scalar).
#[utoipa::path(get, path = "/docs", tag = "system",
    responses((status = 200, description = "An HTML page", body = String, content_type = "text/html"))
)]
fn docs() {}
