//! [`Metrics`]: what `GET /metrics` reports, in the Prometheus (OpenMetrics) text
//! format, with the official `prometheus-client`.
//!
//! - `chronos_http_requests_total{method, route, status}` and
//!   `chronos_http_request_duration_seconds{method, route}`: every request, by the
//!   route's template (`/api/v1/jobs/{id}`, never the raw path; `unmatched` for
//!   requests no route took), counted by [`track`];
//! - `chronos_job_executions_total{status}`, `chronos_job_executions_started_total`
//!   and `chronos_job_execution_duration_seconds{status}`: the attempts that this
//!   process's workers ran (from [`Chronos::subscribe`]);
//! - `chronos_queue_entries{state}` (`scheduled`, `ready`, `leased`) and
//!   `chronos_queue_up`: the queue's depth, read at scrape time;
//! - `chronos_uptime_seconds` and `chronos_build_info{version}`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chronos::{Chronos, Event};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::broadcast::error::RecvError;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a scrape waits for the queue's counts.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

fn execution_histogram() -> Histogram {
    Histogram::new([
        0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    ])
}

/// The process's metrics. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    started: Instant,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    executions: Family<StatusLabels, Counter>,
    executions_started: Counter,
    execution_duration: HistogramFamily<StatusLabels>,
    events_missed: Counter,
    queue_entries: Family<StateLabels, Gauge>,
    queue_up: Gauge,
    uptime: Gauge<f64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("chronos");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        let request_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(request_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            request_duration.clone(),
        );
        let executions = Family::<StatusLabels, Counter>::default();
        registry.register(
            "job_executions",
            "Attempts finished by this process's workers, by final status",
            executions.clone(),
        );
        let executions_started = Counter::default();
        registry.register(
            "job_executions_started",
            "Attempts started by this process's workers",
            executions_started.clone(),
        );
        let execution_duration: HistogramFamily<StatusLabels> =
            Family::new_with_constructor(execution_histogram);
        registry.register(
            "job_execution_duration_seconds",
            "Duration of finished attempts by status",
            execution_duration.clone(),
        );
        let events_missed = Counter::default();
        registry.register(
            "metrics_events_missed",
            "Execution events the metrics fell too far behind to count",
            events_missed.clone(),
        );
        let queue_entries = Family::<StateLabels, Gauge>::default();
        registry.register(
            "queue_entries",
            "Queue entries by state (scheduled: waiting for their time; ready: due; leased: running), read at scrape time",
            queue_entries.clone(),
        );
        let queue_up = Gauge::default();
        registry.register(
            "queue_up",
            "1 if the queue answered the last scrape's count, else 0",
            queue_up.clone(),
        );
        let uptime = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "uptime_seconds",
            "Seconds since the process started",
            uptime.clone(),
        );
        let build = Family::<VersionLabels, Gauge>::default();
        build
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The running version", build);
        Self {
            inner: Arc::new(Inner {
                registry,
                started: Instant::now(),
                requests,
                request_duration,
                executions,
                executions_started,
                execution_duration,
                events_missed,
                queue_entries,
                queue_up,
                uptime,
            }),
        }
    }

    /// Counts one HTTP request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let i = &self.inner;
        i.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        i.request_duration
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one execution event.
    pub fn observe_event(&self, event: &Event) {
        let i = &self.inner;
        match event {
            Event::Started(_) => {
                i.executions_started.inc();
            }
            Event::Finished(execution) => {
                let labels = StatusLabels {
                    status: execution.status.as_str().to_owned(),
                };
                i.executions.get_or_create(&labels).inc();
                if let Some(ms) = execution.duration_ms {
                    i.execution_duration
                        .get_or_create(&labels)
                        .observe(ms as f64 / 1000.0);
                }
            }
            Event::Notification(_) => {}
        }
    }

    /// Counts `chronos`'s execution events from now on, in a background task that
    /// ends when the engine is dropped.
    pub fn watch(&self, chronos: &Chronos) {
        let mut events = chronos.subscribe();
        let metrics = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => metrics.observe_event(&event),
                    Err(RecvError::Lagged(n)) => {
                        metrics.inner.events_missed.inc_by(n);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }

    /// Reads the queue's depth into the gauges (bounded by a short timeout).
    pub async fn refresh_queue(&self, chronos: &Chronos) {
        let i = &self.inner;
        match tokio::time::timeout(QUEUE_TIMEOUT, chronos.queue().counts()).await {
            Ok(Ok(counts)) => {
                for (state, n) in [
                    ("scheduled", counts.scheduled),
                    ("ready", counts.ready),
                    ("leased", counts.leased),
                ] {
                    i.queue_entries
                        .get_or_create(&StateLabels { state })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                i.queue_up.set(1);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: the queue's counts failed");
                i.queue_up.set(0);
            }
            Err(_) => {
                tracing::warn!("metrics: the queue's counts timed out");
                i.queue_up.set(0);
            }
        }
    }

    /// The metrics in the OpenMetrics text format (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let i = &self.inner;
        i.uptime.set(i.started.elapsed().as_secs_f64());
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &i.registry) {
            // Writing into a String does not fail; keep what was written.
            let _ = writeln!(out, "# encoding failed: {e}");
        }
        out
    }
}

/// The middleware that counts requests: add it to the final router with
/// `router.layer(axum::middleware::from_fn_with_state(metrics, chronos_http::metrics::track))`
/// (with `Router::layer`, so the route's template is known).
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.observe_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
