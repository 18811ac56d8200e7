//! [`System`]: what the operational routes need (the engine, the backends to probe,
//! the metrics), and those routes: `GET /health` (public), the handler of
//! `GET /api/v1/dashboard/health` (authenticated), `GET /metrics`,
//! `GET /openapi.json` and `GET /docs`.
//!
//! Each router here carries its own state, so it merges into a router of any state:
//! `app.merge(routes::system::routes(system))` for the public routes, and
//! `api.merge(routes::system::dashboard_routes(system))` behind authentication (the
//! path is relative to `/api/v1`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use chronos::Chronos;
use chronos_postgres::PgPool;
use utoipa_scalar::{Scalar, Servable};

use crate::docs::{DOCS_PATH, RATE_LIMITED, UNAUTHENTICATED};
use crate::error::ErrorBody;
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::routes::health::{self, HealthBody};

/// Which backend holds what, as reported by the health routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueBackend {
    /// The in-memory queue.
    Memory,
    /// `PgQueue`.
    Postgres,
    /// `RedisQueue`.
    Redis,
}

impl QueueBackend {
    /// The name in health answers.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueBackend::Memory => "memory",
            QueueBackend::Postgres => "postgresql",
            QueueBackend::Redis => "redis",
        }
    }
}

/// Everything the operational routes need. Cheap to clone.
#[derive(Clone)]
pub struct System {
    inner: Arc<Inner>,
}

struct Inner {
    chronos: Chronos,
    database: Option<PgPool>,
    redis: Option<redis::aio::ConnectionManager>,
    queue_backend: QueueBackend,
    metrics: Metrics,
    started: Instant,
    started_at: DateTime<Utc>,
    environment: &'static str,
    role: &'static str,
    probe_timeout: Duration,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("database", &self.inner.database.is_some())
            .field("redis", &self.inner.redis.is_some())
            .field("queue", &self.inner.queue_backend)
            .field("environment", &self.inner.environment)
            .field("role", &self.inner.role)
            .finish_non_exhaustive()
    }
}

/// Builds a [`System`].
#[derive(Debug)]
pub struct SystemBuilder {
    chronos: Chronos,
    database: Option<PgPool>,
    redis: Option<redis::aio::ConnectionManager>,
    queue_backend: QueueBackend,
    metrics: Option<Metrics>,
    environment: &'static str,
    role: &'static str,
    probe_timeout: Duration,
}

impl SystemBuilder {
    /// Probes this PostgreSQL pool.
    pub fn database(mut self, pool: PgPool) -> Self {
        self.database = Some(pool);
        self
    }

    /// Probes this Redis connection.
    pub fn redis(mut self, conn: redis::aio::ConnectionManager) -> Self {
        self.redis = Some(conn);
        self
    }

    /// Names the queue's backend.
    pub fn queue_backend(mut self, backend: QueueBackend) -> Self {
        self.queue_backend = backend;
        self
    }

    /// Uses these metrics (default: fresh ones).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// `production` or `development`.
    pub fn environment(mut self, environment: &'static str) -> Self {
        self.environment = environment;
        self
    }

    /// `serve`, `api` or `worker`.
    pub fn role(mut self, role: &'static str) -> Self {
        self.role = role;
        self
    }

    /// How long each probe may take before its dependency counts as down (default 2 s).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// The system.
    pub fn build(self) -> System {
        System {
            inner: Arc::new(Inner {
                chronos: self.chronos,
                database: self.database,
                redis: self.redis,
                queue_backend: self.queue_backend,
                metrics: self.metrics.unwrap_or_default(),
                started: Instant::now(),
                started_at: Utc::now(),
                environment: self.environment,
                role: self.role,
                probe_timeout: self.probe_timeout,
            }),
        }
    }
}

impl System {
    /// A builder over `chronos`; without more, the embedded in-memory setup.
    pub fn builder(chronos: Chronos) -> SystemBuilder {
        SystemBuilder {
            chronos,
            database: None,
            redis: None,
            queue_backend: QueueBackend::Memory,
            metrics: None,
            environment: "development",
            role: "serve",
            probe_timeout: Duration::from_secs(2),
        }
    }

    /// The engine.
    pub fn chronos(&self) -> &Chronos {
        &self.inner.chronos
    }

    /// The PostgreSQL pool, if any.
    pub fn database(&self) -> Option<&PgPool> {
        self.inner.database.as_ref()
    }

    /// The Redis connection, if any.
    pub fn redis(&self) -> Option<&redis::aio::ConnectionManager> {
        self.inner.redis.as_ref()
    }

    /// The queue's backend.
    pub fn queue_backend(&self) -> QueueBackend {
        self.inner.queue_backend
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Time since the system was built.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// When the system was built.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.inner.started_at
    }

    /// `production` or `development`.
    pub fn environment(&self) -> &'static str {
        self.inner.environment
    }

    /// `serve`, `api` or `worker`.
    pub fn role(&self) -> &'static str {
        self.inner.role
    }

    /// The probes' timeout.
    pub fn probe_timeout(&self) -> Duration {
        self.inner.probe_timeout
    }
}

/// The public operational routes: `GET /health`, `GET /metrics`,
/// `GET /openapi.json` and `GET /docs`.
pub fn routes<S: Clone + Send + Sync + 'static>(system: System) -> Router<S> {
    Router::new()
        .route("/health", get(health::handler))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .with_state(system)
        .merge(Scalar::with_url(DOCS_PATH, crate::docs::openapi()))
}

/// `GET /dashboard/health` (relative: nest or merge it under `/api/v1`, behind
/// authentication).
pub fn dashboard_routes<S: Clone + Send + Sync + 'static>(system: System) -> Router<S> {
    Router::new()
        .route("/dashboard/health", get(dashboard_health))
        .with_state(system)
}

/// The service's health, for signed-in users.
///
/// `GET /api/v1/dashboard/health`: the same report as `GET /health`, for signed-in
/// users (the router puts authentication in front).
#[utoipa::path(get, path = "/api/v1/dashboard/health", tag = "dashboard",
    operation_id = "dashboard_health",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every dependency answered", body = HealthBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: a dependency is down (named in \
            `message`); the report is complete", body = HealthBody),
    )
)]
pub async fn dashboard_health(State(system): State<System>) -> Response {
    health::respond(&system).await
}

/// Prometheus metrics (public).
///
/// `GET /metrics`: the metrics in the OpenMetrics text format: HTTP requests by route
/// template, method and status with their latencies, job executions by status, the
/// queue's depth.
#[utoipa::path(get, path = "/metrics", tag = "system", operation_id = "metrics",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = CONTENT_TYPE),
    )
)]
pub async fn metrics(State(system): State<System>) -> Response {
    system.metrics().refresh_queue(system.chronos()).await;
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        system.metrics().render(),
    )
        .into_response()
}

/// This document (public).
///
/// `GET /openapi.json`: the OpenAPI document, generated from the handlers and the
/// types they answer with.
#[utoipa::path(get, path = "/openapi.json", tag = "system", operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object),
    )
)]
pub async fn openapi() -> Response {
    axum::Json(crate::docs::openapi()).into_response()
}
