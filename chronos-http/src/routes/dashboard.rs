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
use uuid::Uuid;

use crate::error::ApiError;
use crate::json::round2;
use crate::respond::ok;
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

#[derive(Serialize)]
struct Stats {
    jobs: JobFigures,
    executions: ExecutionFigures,
    upcoming_jobs: Vec<UpcomingJob>,
    recent_executions: Vec<RecentExecution>,
}

#[derive(Serialize)]
struct JobFigures {
    total: u64,
    active: u64,
    completed: u64,
    paused: u64,
    failed: u64,
    onetime: u64,
    recurring: u64,
}

#[derive(Serialize)]
struct ExecutionFigures {
    total: u64,
    successful: u64,
    failed: u64,
    success_rate: f64,
    avg_duration_seconds: f64,
    max_duration_seconds: f64,
    min_duration_seconds: f64,
}

#[derive(Serialize)]
struct UpcomingJob {
    id: Uuid,
    job_id: Uuid,
    name: String,
    #[serde(with = "crate::respond::instant::option")]
    next_run: Option<DateTime<Utc>>,
    job_type: &'static str,
}

#[derive(Serialize)]
struct RecentExecution {
    id: Uuid,
    job_id: Uuid,
    job_name: String,
    status: &'static str,
    #[serde(with = "crate::respond::instant::option")]
    execution_time: Option<DateTime<Utc>>,
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
