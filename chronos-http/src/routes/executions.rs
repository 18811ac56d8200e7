//! `/executions/:id`: one attempt of one of the caller's jobs, and its log. Another
//! user's execution answers exactly like a missing one, 404 `EXECUTION_NOT_FOUND`; so
//! does an execution of a deleted job.

use axum::extract::State;
use axum::response::Response;
use axum::routing;
use axum::{Extension, Router};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::json::{ExecutionJson, LogJson};
use crate::respond::ok;
use crate::routes::jobs::method_not_allowed;
use crate::state::{AppState, AuthUser};

/// The execution routes, relative to `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/executions/{id}", routing::get(get))
        .route("/executions/{id}/logs", routing::get(logs))
        .method_not_allowed_fallback(method_not_allowed)
}

/// `GET /executions/:id`: the execution (`id, job_id, job_name, status,
/// scheduled_for, execution_time, finished_at, duration_ms, retry_attempt, output,
/// error_message, worker, manual, created_at`; `execution_time` is when the attempt
/// started, `null` while it is queued).
pub async fn get(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let execution = state.chronos().owned_by(user.id).execution(id).await?;
    Ok(ok(ExecutionJson::from(&execution)))
}

/// `GET /executions/:id/logs`: `data: {execution_id, logs: [{id, level, message,
/// metadata, timestamp}]}`, oldest first. An execution that wrote nothing (yet) has
/// `logs: []`.
pub async fn logs(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let entries = state.chronos().owned_by(user.id).logs(id).await?;
    Ok(ok(Logs {
        execution_id: id,
        logs: entries.iter().map(LogJson::from).collect(),
    }))
}

#[derive(Serialize)]
struct Logs {
    execution_id: Uuid,
    logs: Vec<LogJson>,
}
