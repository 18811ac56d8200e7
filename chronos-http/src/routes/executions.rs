//! `/executions/:id`: one attempt of one of the caller's jobs, and its log. Another
//! user's execution answers exactly like a missing one, 404 `EXECUTION_NOT_FOUND`; so
//! does an execution of a deleted job.

use axum::extract::State;
use axum::response::Response;
use axum::routing;
use axum::{Extension, Router};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::docs::{EXECUTION_ID, RATE_LIMITED, UNAUTHENTICATED};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::json::{ExecutionJson, LogJson};
use crate::respond::{Envelope, ok};
use crate::routes::jobs::method_not_allowed;
use crate::state::{AppState, AuthUser};

/// The execution routes, relative to `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/executions/{id}", routing::get(get))
        .route("/executions/{id}/logs", routing::get(logs))
        .method_not_allowed_fallback(method_not_allowed)
}

/// An execution.
///
/// `GET /executions/:id`: the execution (`id, job_id, job_name, status,
/// scheduled_for, execution_time, finished_at, duration_ms, retry_attempt, output,
/// error_message, worker, manual, created_at`; `execution_time` is when the attempt
/// started, `null` while it is queued).
#[utoipa::path(get, path = "/api/v1/executions/{id}", tag = "executions",
    operation_id = "get_execution",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = EXECUTION_ID)),
    responses(
        (status = 200, description = "The execution", body = Envelope<ExecutionJson>),
        (status = 400, description = "`VALIDATION_ERROR`: a malformed id", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`EXECUTION_NOT_FOUND` (also another user's, or one of \
            a deleted job)", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let execution = state.chronos().owned_by(user.id).execution(id).await?;
    Ok(ok(ExecutionJson::from(&execution)))
}

/// An execution's log.
///
/// `GET /executions/:id/logs`: `data: {execution_id, logs: [{id, level, message,
/// metadata, timestamp}]}`, oldest first. An execution that wrote nothing (yet) has
/// `logs: []`.
#[utoipa::path(get, path = "/api/v1/executions/{id}/logs", tag = "executions",
    operation_id = "get_execution_logs",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = EXECUTION_ID)),
    responses(
        (status = 200, description = "The log, oldest first", body = Envelope<Logs>),
        (status = 400, description = "`VALIDATION_ERROR`: a malformed id", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`EXECUTION_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    )
)]
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

/// An execution's log.
#[derive(Serialize, ToSchema)]
struct Logs {
    /// The execution.
    execution_id: Uuid,
    /// Its lines, oldest first.
    logs: Vec<LogJson>,
}
