//! The router: every route of the contract, the fallbacks and the layers.

use axum::Router;
use axum::routing::{get, post};

use crate::error::{ApiError, Code};
use crate::routes;
use crate::state::AppState;

/// The whole HTTP API over `state`.
pub fn router(state: AppState) -> Router {
    let jobs = Router::new()
        .route("/jobs", post(routes::jobs::create).get(routes::jobs::list))
        .route("/jobs/upcoming", get(routes::jobs::upcoming))
        .route(
            "/jobs/{id}",
            get(routes::jobs::get)
                .patch(routes::jobs::update)
                .delete(routes::jobs::delete),
        )
        .route("/jobs/{id}/pause", post(routes::jobs::pause))
        .route("/jobs/{id}/resume", post(routes::jobs::resume))
        .route("/jobs/{id}/execute", post(routes::jobs::execute))
        .route("/jobs/{id}/executions", get(routes::jobs::executions))
        .route("/executions/{id}", get(routes::executions::get))
        .route("/executions/{id}/logs", get(routes::executions::logs))
        .route("/dashboard/stats", get(routes::dashboard::stats))
        .route("/dashboard/health", get(routes::dashboard::health));
    let api = Router::new()
        .merge(jobs)
        .route("/cron/preview", post(routes::cron::preview))
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .route("/health", get(routes::health::health))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn route_not_found() -> ApiError {
    ApiError::new(Code::RouteNotFound, "route not found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::MethodNotAllowed, "method not allowed on this route")
}
