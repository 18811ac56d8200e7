//! Shared by the `jobs_*` tests: one in-memory Chronos on a manual clock, served over
//! real HTTP by the job, execution, dashboard and cron routers, one server per
//! simulated user (an `Extension<AuthUser>` layer stands in for the auth middleware).

#![allow(
    dead_code,
    reason = "each test file uses a different part of the support"
)]
#![allow(unreachable_pub, reason = "a test support module")]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use chronos::Chronos;
use chronos::Event;
use chronos::clock::ManualClock;
use chronos::executor::{ExecError, JobContext};
use chronos::model::{Execution, LogLevel};
use chronos_http::error::{ApiError, Code};
use chronos_http::routes::{cron, dashboard, executions, jobs};
use chronos_http::state::{AppState, AuthUser, Services};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Where the manual clock starts: a Monday, 10:00 UTC.
pub const START: &str = "2026-03-02T10:00:00Z";

/// The engine and its clock, shared by every user's server.
pub struct World {
    pub chronos: Chronos,
    pub clock: ManualClock,
    state: AppState,
}

/// Executors of the tests:
/// - `echo` (built in): succeeds with its payload;
/// - `boom`: fails for good with "boom";
/// - `flaky`: fails retryably with "try again";
/// - `chatty`: logs two lines (one with metadata) and succeeds with `{"logged": 2}`;
/// - `takes`: advances the manual clock by `payload.ms` milliseconds, then succeeds,
///   so the attempt lasts exactly that long.
pub async fn world() -> World {
    let clock = ManualClock::new(START.parse().unwrap());
    let for_takes = clock.clone();
    let chronos = Chronos::builder()
        .clock(Arc::new(clock.clone()))
        .executor("boom", |_ctx: JobContext| async move {
            Err::<Value, _>(ExecError::fatal("boom"))
        })
        .executor("flaky", |_ctx: JobContext| async move {
            Err::<Value, _>(ExecError::retryable("try again"))
        })
        .executor("chatty", |ctx: JobContext| async move {
            ctx.log().info("first line");
            ctx.log().write(
                LogLevel::Warn,
                "second line",
                json!({"step": 2, "ok": true}),
            );
            Ok(json!({"logged": 2}))
        })
        .executor("takes", move |ctx: JobContext| {
            let clock = for_takes.clone();
            async move {
                let ms = ctx.payload()["ms"].as_u64().unwrap_or(0);
                clock.advance(Duration::from_millis(ms));
                Ok(json!({"took_ms": ms}))
            }
        })
        .build()
        .await
        .unwrap();
    let state = AppState::new(Services::builder(chronos.clone()).build().unwrap());
    World {
        chronos,
        clock,
        state,
    }
}

/// One user's view of the API.
pub struct User {
    pub id: Uuid,
    base: String,
    http: reqwest::Client,
}

/// An answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// `data` of a success body (asserting the envelope).
    pub fn data(&self) -> &Value {
        assert_eq!(self.body["success"], json!(true), "{self:?}");
        &self.body["data"]
    }

    /// Asserts the documented error body and returns the field names of `errors`.
    pub fn error(&self, status: u16, code: &str) -> Vec<String> {
        assert_eq!(self.status.as_u16(), status, "{self:#?}");
        let b = self.body.as_object().unwrap();
        assert_eq!(b["error"], json!(true), "{self:?}");
        assert_eq!(b["code"], json!(code), "{self:?}");
        assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_timestamp(&b["timestamp"]);
        let mut keys: Vec<&str> = b.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let fields = match b.get("errors") {
            Some(errors) => {
                assert_eq!(keys, ["code", "error", "errors", "message", "timestamp"]);
                errors
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        let e = e.as_object().unwrap();
                        assert_eq!(e.len(), 2, "{e:?}");
                        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
                        e["field"].as_str().unwrap().to_owned()
                    })
                    .collect()
            }
            None => {
                assert_eq!(keys, ["code", "error", "message", "timestamp"]);
                Vec::new()
            }
        };
        if code == "VALIDATION_ERROR" {
            assert!(!fields.is_empty(), "a validation error names its fields");
        }
        fields
    }

    /// The message of an error about `field`.
    pub fn field_message(&self, field: &str) -> String {
        self.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == field)
            .unwrap_or_else(|| panic!("no error about {field}: {:#}", self.body))["message"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Asserts an instant as the API writes it: RFC 3339 UTC, milliseconds, `Z`.
pub fn assert_timestamp(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    let b = s.as_bytes();
    assert_eq!(b.len(), 24, "{s}");
    for (i, c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        };
        assert!(ok, "not RFC 3339 UTC with milliseconds: {s}");
    }
}

/// An instant as the API writes it.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A fresh uuid.
pub fn uuid() -> Uuid {
    Uuid::now_v7()
}

async fn route_not_found() -> ApiError {
    ApiError::new(Code::RouteNotFound, "route not found")
}

impl World {
    /// Serves the routers for a new user on an ephemeral port.
    pub async fn user(&self) -> User {
        let id = Uuid::now_v7();
        let api = Router::new()
            .merge(jobs::routes())
            .merge(executions::routes())
            .merge(dashboard::routes())
            .merge(cron::routes());
        let app = Router::new()
            .nest("/api/v1", api)
            .fallback(route_not_found)
            .layer(Extension(AuthUser {
                id,
                email: format!("{id}@example.com"),
            }))
            .layer(DefaultBodyLimit::max(1024 * 1024))
            .with_state(self.state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        User {
            id,
            base: format!("http://{addr}/api/v1"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        use chronos::clock::Clock as _;
        self.clock.now()
    }

    /// Events of the engine (subscribe before causing what you wait for).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.chronos.subscribe()
    }

    /// Waits for an execution to finish (by its id, as a user of `owner` sees it).
    pub async fn finished(&self, owner: Uuid, execution_id: Uuid) -> Execution {
        let e = self
            .chronos
            .owned_by(owner)
            .execution(execution_id)
            .await
            .unwrap();
        self.chronos
            .wait_for(&e, Duration::from_secs(10))
            .await
            .unwrap()
    }
}

/// Waits for the next attempt of `job_id` to finish.
pub async fn next_finished(events: &mut broadcast::Receiver<Event>, job_id: &Value) -> Execution {
    let job_id: Uuid = job_id.as_str().unwrap().parse().unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await.unwrap() {
                Event::Finished(e) if e.job_id == job_id => return e,
                _ => continue,
            }
        }
    })
    .await
    .expect("the attempt finished in time")
}

impl User {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with a JSON body (or none).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        answer(req.send().await.unwrap()).await
    }

    /// A request with these raw body bytes and an optional `Content-Type`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        answer(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A POST with no body and no `Content-Type`, as the original frontend sends.
    pub async fn post_empty(&self, path: &str) -> Answer {
        self.call(Method::POST, path, None).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a job (asserting 201) and returns its JSON.
    pub async fn create(&self, body: Value) -> Value {
        let a = self.post("/jobs", body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{a:#?}");
        a.data().clone()
    }

    /// Creates a recurring job on a far-away cron (the 1st of January, 00:00 UTC).
    pub async fn create_cron(&self, name: &str) -> Value {
        self.create(json!({
            "name": name,
            "job_type": "recurring",
            "schedule_type": "cron",
            "cron_expression": "0 0 1 1 *",
        }))
        .await
    }
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    assert_eq!(
        ct.as_deref(),
        Some("application/json"),
        "every answer is JSON: {status} {text}"
    );
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    Answer { status, body }
}

/// The keys of a JSON object, sorted.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort_unstable();
    k
}

/// The keys of every job JSON, sorted.
pub const JOB_KEYS: &[&str] = &[
    "created_at",
    "cron_expression",
    "description",
    "handler",
    "id",
    "job_id",
    "job_type",
    "last_executed_at",
    "max_retries",
    "name",
    "next_run",
    "paused_at",
    "payload",
    "resumed_at",
    "retry_backoff_ms",
    "retry_count",
    "schedule_type",
    "scheduled_time",
    "status",
    "timeout_seconds",
    "timezone",
    "updated_at",
    "user_id",
];

/// The keys of every execution JSON, sorted.
pub const EXECUTION_KEYS: &[&str] = &[
    "created_at",
    "duration_ms",
    "error_message",
    "execution_time",
    "finished_at",
    "id",
    "job_id",
    "job_name",
    "manual",
    "output",
    "retry_attempt",
    "scheduled_for",
    "status",
    "worker",
];
