//! `GET /health` (public) and the report behind `GET /api/v1/dashboard/health`.
//!
//! Every dependency is probed at once, each bounded by the probe timeout (2 s), so a
//! hung dependency gives a 503 and never a hanging request: PostgreSQL with
//! `SELECT 1` through the pool, Redis with `PING`, the queue with its counts. The
//! in-memory backends of the embedded mode are healthy by definition.
//!
//! 200:
//! ```json
//! {"success": true, "status": "healthy", "timestamp": "2026-11-29T09:09:40.985Z",
//!  "version": "0.1.0", "uptime": 12.5, "environment": "development",
//!  "services": {
//!    "database": {"status": "healthy", "backend": "postgresql", "latency_ms": 0.8},
//!    "redis": {"status": "healthy", "latency_ms": 0.3},
//!    "queue": {"status": "healthy", "backend": "redis", "latency_ms": 0.4,
//!              "metrics": {"waiting": 12, "due": 0, "delayed": 12, "leased": 1,
//!                          "active": 1, "total": 13}}},
//!  "system": {"uptime_seconds": 12, "started_at": "…", "role": "serve",
//!             "worker_id": "…", "environment": "development", "memory": {"rss_mb": 21.4}}}
//! ```
//! 503: the same body with `"success": false`, `"status": "unhealthy"`, the failing
//! services' `status` `"unhealthy"` with an `error`, and the error fields of every
//! error answer: `"error": true`, `"code": "SERVICE_UNAVAILABLE"` and a `message`
//! naming the failing dependencies. A service that is not configured (Redis without
//! `REDIS_URL`) is reported as `"not_configured"` and does not make the service
//! unhealthy.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chronos::queue::QueueCounts;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::error::Code;
use crate::respond::timestamp;
use crate::routes::system::{QueueBackend, System};

/// One probed dependency.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `healthy`, `unhealthy` or `not_configured`.
    pub status: &'static str,
    /// How long the probe took.
    pub latency_ms: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Probe {
    fn healthy(latency: Duration) -> Self {
        Self {
            status: "healthy",
            latency_ms: Some(ms(latency)),
            error: None,
        }
    }

    fn unhealthy(latency: Duration, error: String) -> Self {
        Self {
            status: "unhealthy",
            latency_ms: Some(ms(latency)),
            error: Some(error),
        }
    }

    fn not_configured() -> Self {
        Self {
            status: "not_configured",
            latency_ms: None,
            error: None,
        }
    }

    /// Whether the dependency is down.
    pub fn is_unhealthy(&self) -> bool {
        self.status == "unhealthy"
    }

    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("status".into(), self.status.into());
        if let Some(l) = self.latency_ms {
            m.insert("latency_ms".into(), json!(l));
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), e.clone().into());
        }
        m
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// Runs `probe` with the timeout, timing it.
async fn timed<T, E: std::fmt::Display>(
    timeout: Duration,
    probe: impl Future<Output = Result<T, E>>,
) -> (Probe, Option<T>) {
    let started = Instant::now();
    match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(value)) => (Probe::healthy(started.elapsed()), Some(value)),
        Ok(Err(e)) => (Probe::unhealthy(started.elapsed(), e.to_string()), None),
        Err(_) => (
            Probe::unhealthy(
                started.elapsed(),
                format!("no answer within {} ms", timeout.as_millis()),
            ),
            None,
        ),
    }
}

/// What the health routes report.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// PostgreSQL (or the in-memory store).
    pub database: Probe,
    /// Redis.
    pub redis: Probe,
    /// The queue.
    pub queue: Probe,
    /// The queue's counts, when it answered.
    pub counts: Option<QueueCounts>,
}

impl HealthReport {
    /// The names of the failing dependencies.
    pub fn failing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.database.is_unhealthy() {
            out.push("database");
        }
        if self.redis.is_unhealthy() {
            out.push("redis");
        }
        if self.queue.is_unhealthy() {
            out.push("queue");
        }
        out
    }

    /// Whether every dependency answered.
    pub fn is_healthy(&self) -> bool {
        self.failing().is_empty()
    }
}

/// Probes every dependency of `system`, concurrently.
pub async fn report(system: &System) -> HealthReport {
    let timeout = system.probe_timeout();
    let database = async {
        match system.database() {
            None => Probe::healthy(Duration::ZERO),
            Some(pool) => {
                timed(
                    timeout,
                    sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool),
                )
                .await
                .0
            }
        }
    };
    let redis = async {
        match system.redis() {
            None => Probe::not_configured(),
            Some(conn) => {
                let mut conn = conn.clone();
                timed(timeout, async move {
                    redis::cmd("PING").query_async::<String>(&mut conn).await
                })
                .await
                .0
            }
        }
    };
    let queue = timed(timeout, system.chronos().queue().counts());
    let (database, redis, (queue, counts)) = tokio::join!(database, redis, queue);
    HealthReport {
        database,
        redis,
        queue,
        counts,
    }
}

/// The health answer of `system`: 200 or 503 (see the [module docs](self)).
pub async fn respond(system: &System) -> Response {
    let report = report(system).await;
    let healthy = report.is_healthy();
    let uptime = system.uptime();

    let mut database = report.database.to_json();
    database.insert(
        "backend".into(),
        if system.database().is_some() {
            "postgresql"
        } else {
            "memory"
        }
        .into(),
    );
    let mut queue = report.queue.to_json();
    queue.insert("backend".into(), system.queue_backend().as_str().into());
    if let Some(c) = report.counts {
        queue.insert(
            "metrics".into(),
            json!({
                "waiting": c.scheduled + c.ready,
                "due": c.ready,
                "delayed": c.scheduled,
                "leased": c.leased,
                "active": c.leased,
                "total": c.total(),
            }),
        );
    }
    let mut system_json = json!({
        "uptime_seconds": uptime.as_secs(),
        "started_at": timestamp(system.started_at()),
        "role": system.role(),
        "worker_id": system.chronos().config().worker_id,
        "environment": system.environment(),
    });
    if let Some(rss) = rss_mb()
        && let Some(obj) = system_json.as_object_mut()
    {
        obj.insert("memory".into(), json!({ "rss_mb": rss }));
    }
    let mut body = json!({
        "success": healthy,
        "status": if healthy { "healthy" } else { "unhealthy" },
        "timestamp": timestamp(chrono::Utc::now()),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": (uptime.as_secs_f64() * 1000.0).round() / 1000.0,
        "environment": system.environment(),
        "services": {
            "database": database,
            "redis": report.redis.to_json(),
            "queue": queue,
        },
        "system": system_json,
    });
    if healthy {
        return (StatusCode::OK, Json(body)).into_response();
    }
    let failing = report.failing();
    for name in &failing {
        tracing::warn!(dependency = name, "health check: dependency is unhealthy");
    }
    if let Some(obj) = body.as_object_mut() {
        obj.insert("error".into(), true.into());
        obj.insert("code".into(), "SERVICE_UNAVAILABLE".into());
        obj.insert(
            "message".into(),
            format!("unhealthy: {}", failing.join(", ")).into(),
        );
    }
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

// The description of what `respond` writes (for the document): the body is assembled
// as JSON there. `tests/bin_system_routes.rs` checks real answers against it, strictly.
/// The health report of both health routes.
///
/// A 503 carries the same report, with the fields of every error answer.
#[derive(Debug, ToSchema)]
#[schema(as = Health)]
pub struct HealthBody {
    /// `true`; `false` with a 503.
    pub success: bool,
    /// `healthy`, or `unhealthy` with a 503.
    #[schema(schema_with = overall_status)]
    pub status: String,
    /// When the report was made.
    pub timestamp: DateTime<Utc>,
    /// The service's version.
    pub version: String,
    /// Seconds since the process started (3 decimals).
    pub uptime: f64,
    /// `development` or `production`.
    pub environment: String,
    /// The dependencies.
    pub services: HealthServices,
    /// The process.
    pub system: HealthSystem,
    /// `true` with a 503 (the fields of every error answer); absent otherwise.
    #[schema(nullable = false)]
    pub error: Option<bool>,
    /// `SERVICE_UNAVAILABLE` with a 503; absent otherwise.
    #[schema(nullable = false)]
    pub code: Option<Code>,
    /// With a 503: `unhealthy: ` and the failing dependencies (`database`, `redis`,
    /// `queue`); absent otherwise.
    #[schema(nullable = false)]
    pub message: Option<String>,
}

/// The dependencies of a health report.
#[derive(Debug, ToSchema)]
pub struct HealthServices {
    /// PostgreSQL, or the in-memory store (always healthy).
    pub database: ServiceHealth,
    /// Redis (`not_configured` without `REDIS_URL`; that is not unhealthy).
    pub redis: ServiceHealth,
    /// The queue.
    pub queue: QueueHealth,
}

/// One dependency's probe.
#[derive(Debug, ToSchema)]
pub struct ServiceHealth {
    /// `healthy`, `unhealthy` or `not_configured`.
    #[schema(schema_with = probe_status)]
    pub status: String,
    /// How long the probe took, in ms (absent when not configured).
    #[schema(nullable = false)]
    pub latency_ms: Option<f64>,
    /// Why it is unhealthy (a probe gets 2 s by default).
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// Database and queue only: `postgresql`, `redis` or `memory`.
    #[schema(nullable = false, schema_with = backend)]
    pub backend: Option<String>,
}

/// The queue's probe and depth.
#[derive(Debug, ToSchema)]
pub struct QueueHealth {
    /// The probe.
    #[serde(flatten)]
    pub probe: ServiceHealth,
    /// The queue's depth, when it answered.
    #[schema(nullable = false)]
    pub metrics: Option<QueueDepth>,
}

/// The queue's depth.
#[derive(Debug, ToSchema)]
pub struct QueueDepth {
    /// Entries not yet running (`delayed + due`).
    pub waiting: u64,
    /// Due and not yet taken.
    pub due: u64,
    /// Waiting for their time.
    pub delayed: u64,
    /// Taken by a worker.
    pub leased: u64,
    /// `leased` again (the original API's name).
    pub active: u64,
    /// Every entry.
    pub total: u64,
}

/// The process answering.
#[derive(Debug, ToSchema)]
pub struct HealthSystem {
    /// Whole seconds since start.
    pub uptime_seconds: u64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// `serve`, `api` or `worker`.
    pub role: String,
    /// The engine's worker id.
    pub worker_id: String,
    /// `development` or `production`.
    pub environment: String,
    /// Memory use (Linux only).
    #[schema(nullable = false)]
    pub memory: Option<Memory>,
}

/// Memory use.
#[derive(Debug, ToSchema)]
pub struct Memory {
    /// The resident set size in MiB, 1 decimal.
    pub rss_mb: f64,
}

fn string_enum(description: &str, values: Vec<&'static str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
}

fn overall_status() -> ObjectBuilder {
    string_enum(
        "`healthy`, or `unhealthy` with a 503.",
        vec!["healthy", "unhealthy"],
    )
}

fn probe_status() -> ObjectBuilder {
    string_enum(
        "The probe's outcome; `not_configured` (Redis without `REDIS_URL`) is not unhealthy.",
        vec![
            Probe::healthy(Duration::ZERO).status,
            Probe::unhealthy(Duration::ZERO, String::new()).status,
            Probe::not_configured().status,
        ],
    )
}

fn backend() -> ObjectBuilder {
    string_enum(
        "Database and queue only: the backend that holds them.",
        vec![
            QueueBackend::Postgres.as_str(),
            QueueBackend::Redis.as_str(),
            QueueBackend::Memory.as_str(),
        ],
    )
}

/// The resident set size in MiB (Linux; `None` elsewhere).
fn rss_mb() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some((pages * 4096.0 / (1024.0 * 1024.0) * 10.0).round() / 10.0)
}

/// The service's health (public).
///
/// `GET /health`: 200 when every dependency answers, 503 naming the failing ones.
/// Every probe is bounded (2 s by default), so a hung dependency gives a 503, never a
/// hanging request.
#[utoipa::path(get, path = "/health", tag = "system", operation_id = "health",
    responses(
        (status = 200, description = "Every dependency answered", body = HealthBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: a dependency is down (named in \
            `message`); the report is complete", body = HealthBody),
    )
)]
pub async fn handler(State(system): State<System>) -> Response {
    respond(&system).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_names_the_unhealthy() {
        let ok = Probe::healthy(Duration::from_millis(1));
        let down = Probe::unhealthy(Duration::from_millis(1), "refused".into());
        let r = HealthReport {
            database: down.clone(),
            redis: Probe::not_configured(),
            queue: ok,
            counts: None,
        };
        assert_eq!(r.failing(), vec!["database"]);
        assert!(!r.is_healthy());
    }
}
