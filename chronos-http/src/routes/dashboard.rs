//! `/dashboard`: the caller's figures (`stats`), and the health placeholder that the
//! health module's owner replaces.

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use chronos::model::{Execution, Job, OwnerStats};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::docs::{RATE_LIMITED, UNAUTHENTICATED};
use crate::error::{ApiError, ErrorBody};
use crate::json::{round2, schema};
use crate::respond::{Envelope, ok};
use crate::routes::jobs::method_not_allowed;
use crate::state::{AppState, AuthUser};

/// How far ahead the dashboard's `upcoming_jobs` look.
pub const UPCOMING_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Most entries of `upcoming_jobs` and of `recent_executions`.
pub const DASHBOARD_LIST_LIMIT: usize = 10;

/// The dashboard routes this module serves, relative to `/api/v1`
/// (`/dashboard/stats`; `/dashboard/health` is mounted by its owner).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/stats", get(stats))
        .method_not_allowed_fallback(method_not_allowed)
}

/// The caller's figures.
///
/// `GET /dashboard/stats`: the caller's figures, deleted jobs and their executions
/// left out; every figure is a JSON number.
///
/// `data: {jobs: {total, active, completed, paused, failed, onetime, recurring},
/// executions: {total, successful, failed, success_rate, avg_duration_seconds,
/// max_duration_seconds, min_duration_seconds}, upcoming_jobs: [{id, job_id, name,
/// next_run, job_type}], recent_executions: [{id, job_id, job_name, status,
/// execution_time, duration_ms}]}`.
///
/// Decisions: `executions.total` counts every recorded attempt (queued, running and
/// cancelled ones too) and `failed` counts failures and timeouts; `success_rate` is
/// the percentage of successes among finished successes and failures (`successful /
/// (successful + failed) × 100`), rounded to 2 decimals, 0 when there are none; the
/// durations are in seconds over the attempts that recorded one, rounded to 2
/// decimals, 0 when none did. `upcoming_jobs` are the active jobs due in the next 24
/// hours, soonest first, at most 10 (each carries `job_id` like every job JSON);
/// `recent_executions` the 10 latest recorded attempts, newest first
/// (`execution_time` is when the attempt started, `null` while queued).
#[utoipa::path(get, path = "/api/v1/dashboard/stats", tag = "dashboard",
    operation_id = "dashboard_stats",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's figures", body = Envelope<Stats>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn stats(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
) -> Result<Response, ApiError> {
    let owned = state.chronos().owned_by(user.id);
    let overview = owned.overview().await?;
    let upcoming = owned
        .upcoming_jobs(UPCOMING_WINDOW, DASHBOARD_LIST_LIMIT)
        .await?;
    let recent = owned.recent_executions(DASHBOARD_LIST_LIMIT).await?;
    Ok(ok(Stats::new(&overview, &upcoming, &recent)))
}

/// The caller's figures (deleted jobs and their executions left out).
#[derive(Serialize, ToSchema)]
struct Stats {
    /// Job counts.
    jobs: JobFigures,
    /// Execution figures.
    executions: ExecutionFigures,
    /// The active jobs due in the next 24 hours, soonest first, at most 10.
    upcoming_jobs: Vec<UpcomingJob>,
    /// The 10 latest recorded attempts, newest first.
    recent_executions: Vec<RecentExecution>,
}

/// Job counts by status and type.
#[derive(Serialize, ToSchema)]
struct JobFigures {
    /// Every job.
    total: u64,
    /// Active jobs.
    active: u64,
    /// Completed one-time jobs.
    completed: u64,
    /// Paused jobs.
    paused: u64,
    /// Failed one-time jobs.
    failed: u64,
    /// One-time jobs.
    onetime: u64,
    /// Recurring jobs.
    recurring: u64,
}

/// Execution figures.
#[derive(Serialize, ToSchema)]
struct ExecutionFigures {
    /// Every recorded attempt (queued, running and cancelled ones too).
    total: u64,
    /// Attempts that succeeded.
    successful: u64,
    /// Attempts that failed or timed out.
    failed: u64,
    /// `successful / (successful + failed) × 100`, rounded to 2 decimals; 0 when
    /// there are none.
    success_rate: f64,
    /// Mean duration in seconds over the attempts that recorded one (2 decimals; 0
    /// when none did).
    avg_duration_seconds: f64,
    /// Longest duration in seconds (0 when none).
    max_duration_seconds: f64,
    /// Shortest duration in seconds (0 when none).
    min_duration_seconds: f64,
}

/// A job due soon.
#[derive(Serialize, ToSchema)]
struct UpcomingJob {
    /// The job's id.
    id: Uuid,
    /// The same id (the original frontend reads this name).
    job_id: Uuid,
    /// The name.
    name: String,
    /// When it runs next.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    next_run: Option<DateTime<Utc>>,
    /// `one-time` or `recurring`.
    #[schema(value_type = schema::JobType)]
    job_type: &'static str,
}

/// A recent attempt.
#[derive(Serialize, ToSchema)]
struct RecentExecution {
    /// The execution's id.
    id: Uuid,
    /// The job.
    job_id: Uuid,
    /// The job's name when the attempt was recorded.
    job_name: String,
    /// Its status.
    #[schema(value_type = schema::ExecutionStatus)]
    status: &'static str,
    /// When it started; `null` while queued.
    #[serde(with = "crate::respond::instant::option")]
    #[schema(required = true)]
    execution_time: Option<DateTime<Utc>>,
    /// How long it ran, in milliseconds.
    #[schema(required = true)]
    duration_ms: Option<u64>,
}

/// Milliseconds to seconds, rounded to 2 decimals.
fn seconds(ms: f64) -> f64 {
    round2(ms / 1000.0)
}

impl Stats {
    fn new(overview: &OwnerStats, upcoming: &[Job], recent: &[Execution]) -> Self {
        let (j, e) = (&overview.jobs, &overview.executions);
        let finished = e.successful + e.failed;
        let success_rate = if finished == 0 {
            0.0
        } else {
            round2(e.successful as f64 * 100.0 / finished as f64)
        };
        Self {
            jobs: JobFigures {
                total: j.total,
                active: j.active,
                completed: j.completed,
                paused: j.paused,
                failed: j.failed,
                onetime: j.one_time,
                recurring: j.recurring,
            },
            executions: ExecutionFigures {
                total: e.total,
                successful: e.successful,
                failed: e.failed,
                success_rate,
                avg_duration_seconds: seconds(e.average_duration_ms.unwrap_or(0.0)),
                max_duration_seconds: seconds(e.max_duration_ms.unwrap_or(0) as f64),
                min_duration_seconds: seconds(e.min_duration_ms.unwrap_or(0) as f64),
            },
            upcoming_jobs: upcoming
                .iter()
                .map(|job| UpcomingJob {
                    id: job.id,
                    job_id: job.id,
                    name: job.name.clone(),
                    next_run: job.next_run,
                    job_type: job.kind().as_str(),
                })
                .collect(),
            recent_executions: recent
                .iter()
                .map(|x| RecentExecution {
                    id: x.id,
                    job_id: x.job_id,
                    job_name: x.job_name.clone(),
                    status: x.status.as_str(),
                    execution_time: x.started_at,
                    duration_ms: x.duration_ms,
                })
                .collect(),
        }
    }
}
