//! Shared by the `jobs_*` tests: the whole service, as `chronos serve` wires it
//! (`app::router_with` with the operational routes and the request metrics: real
//! register and login, JWT, the auth and rate-limit middleware, every layer), over
//! one Chronos on a manual clock, served over real HTTP on a loopback port, on either
//! deployment ([`Backend`]). Every simulated user registers and logs in over HTTP and
//! sends `Authorization: Bearer <token>`.
//!
//! Each test is an `async fn name(backend: Backend)`; [`on_both_backends!`] turns it
//! into the tests `name::memory` and `name::pg_redis`, each on a runtime of its own
//! ([`chronos::testkit::run`]). Where PostgreSQL or Redis is unreachable, the
//! `pg_redis` variants are skipped loudly, or fail under `CHRONOS_REQUIRE_SERVICES=1`.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the support"
)]
#![allow(unreachable_pub, reason = "a test support module")]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::middleware::from_fn_with_state;
use chrono::{DateTime, Utc};
use chronos::Chronos;
use chronos::Event;
use chronos::clock::{Clock, ManualClock};
use chronos::executor::{ExecError, JobContext};
use chronos::model::{Execution, LogLevel};
use chronos_http::adapters::{RedisRateLimits, RedisRevocations};
use chronos_http::app;
use chronos_http::auth::Passwords;
use chronos_http::metrics::{self, Metrics};
use chronos_http::routes::system::{self, QueueBackend, System};
use chronos_http::state::{AppState, RateLimit, Services, Settings};
use chronos_postgres::testing::TestDb;
use chronos_postgres::{PgStore, PgUsers};
use chronos_redis::testing::TestRedis;
use chronos_redis::{RedisQueue, RedisRateLimiter, RedisRevocationList};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use uuid::Uuid;

/// Where the manual clock starts: a Monday, 10:00 UTC.
pub const START: &str = "2026-03-02T10:00:00Z";

/// The password of every simulated user.
pub const PASSWORD: &str = "SecurePass123!";

/// The per-user limit of the worlds of [`world`]: high enough to stay out of the way.
pub const ROOMY: u32 = 100_000;

/// Which deployment a world runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded defaults: in-memory store, queue, users, rate limits and
    /// revocations.
    Memory,
    /// PostgreSQL (`PgStore`, `PgUsers`: a fresh database per world) and Redis
    /// (`RedisQueue`, the rate limiter and the revocation list: a key prefix per world).
    PgRedis,
}

/// Turns each `async fn case(backend: Backend)` named into a module of two tests,
/// `case::memory` and `case::pg_redis`.
macro_rules! on_both_backends {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                use $crate::jobs_support::{Backend, run_case};

                #[test]
                fn memory() {
                    run_case(super::$case, Backend::Memory);
                }

                #[test]
                fn pg_redis() {
                    run_case(super::$case, Backend::PgRedis);
                }
            }
        )+
    };
}
pub(crate) use on_both_backends;

/// Runs `case` on `backend`, on a runtime of its own; a `pg_redis` case whose
/// services are unreachable is reported as skipped (see the module docs).
pub fn run_case<F, Fut>(case: F, backend: Backend)
where
    F: FnOnce(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    chronos::testkit::run(case(backend));
}

/// The engine, its clock and the served app.
///
/// Dropping it stops the server and the engine, then (on PostgreSQL + Redis) deletes
/// the world's Redis keys and drops its database.
pub struct World {
    pub chronos: Chronos,
    pub clock: ManualClock,
    pub backend: Backend,
    /// The per-user limit of the `/jobs`, `/executions` and `/dashboard` routes.
    pub user_limit: RateLimit,
    /// On PostgreSQL + Redis: where the world's data is.
    pub shared: Option<Shared>,
    base: String,
    http: reqwest::Client,
    server: AbortHandle,
    /// Dropped after the engine has stopped (see `Drop`).
    services: Option<SharedServices>,
}

/// Where a world on PostgreSQL + Redis keeps its data.
#[derive(Clone)]
pub struct Shared {
    /// A pool on the world's database.
    pub pool: sqlx::PgPool,
    /// A connection to Redis.
    pub redis: redis::aio::ConnectionManager,
    /// The prefix of the queue's keys (with its hash tag).
    pub queue_prefix: String,
    /// The prefix given to the rate limiter and the revocation list (their keys
    /// start with `{<prefix>}`).
    pub http_prefix: String,
}

/// The PostgreSQL and Redis of a world, cleaned up in field order when dropped.
struct SharedServices {
    /// The queue's, rate limiter's and revocation list's keys (under the test's prefix).
    _redis: TestRedis,
    _db: TestDb,
}

impl Drop for World {
    fn drop(&mut self) {
        self.server.abort();
        // Stop the engine before its database and keys go, so nothing writes them
        // back. `run_case` runs on a multi-threaded runtime, where this may block.
        if let Ok(handle) = tokio::runtime::Handle::try_current()
            && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            let chronos = self.chronos.clone();
            tokio::task::block_in_place(|| {
                handle.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(10), chronos.shutdown()).await;
                });
            });
        }
        self.services.take();
    }
}

/// Settings with every limit out of the way.
pub fn roomy() -> Settings {
    let mut s = Settings::default();
    s.user_rate_limit.max = ROOMY;
    s.auth_rate_limit.max = ROOMY;
    s
}

/// A world on `backend` with limits out of the way; see [`world_with`].
pub async fn world(backend: Backend) -> World {
    world_with(backend, roomy()).await
}

/// The test executors on `builder`:
/// - `echo` (built in): succeeds with its payload;
/// - `boom`: fails for good with "boom";
/// - `flaky`: fails retryably with "try again";
/// - `chatty`: logs two lines (one with metadata) and succeeds with `{"logged": 2}`;
/// - `takes`: advances the manual clock by `payload.ms` milliseconds, then succeeds,
///   so the attempt lasts exactly that long.
fn executors(builder: chronos::ChronosBuilder, clock: &ManualClock) -> chronos::ChronosBuilder {
    let for_takes = clock.clone();
    builder
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
}

/// The whole service on `backend` with `settings`, on a manual clock standing at
/// [`START`] (the engine's, the queue's and the HTTP layer's: token times and
/// rate-limit windows), with the test executors (see [`executors`]) and fast
/// password hashing.
pub async fn world_with(backend: Backend, settings: Settings) -> World {
    let clock = ManualClock::new(START.parse().unwrap());
    let shared_clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let user_limit = settings.user_rate_limit;
    let mut engine = executors(Chronos::builder(), &clock)
        .clock(shared_clock.clone())
        .configure(|c| c.shutdown_grace = Duration::from_secs(2));
    let backends = match backend {
        Backend::Memory => None,
        Backend::PgRedis => {
            let redis = TestRedis::connect().await;
            let db = TestDb::create().await;
            let queue = RedisQueue::connect(
                redis.client.clone(),
                &redis.queue_prefix("queue"),
                shared_clock.clone(),
            )
            .await
            .unwrap();
            assert_eq!(queue.prefix(), redis.queue_prefix("queue"));
            engine = engine.store(PgStore::new(db.pool.clone())).queue(queue);
            Some((redis, db))
        }
    };
    let chronos = engine.build().await.unwrap();

    let mut services = Services::builder(chronos.clone())
        .passwords(Passwords::with_params(64, 1, 1).unwrap())
        .settings(settings);
    let metrics = Metrics::new();
    metrics.watch(&chronos);
    let mut system = System::builder(chronos.clone())
        .metrics(metrics.clone())
        .role("serve");
    let mut shared = None;
    let services_guard = match backends {
        None => {
            system = system.queue_backend(QueueBackend::Memory);
            None
        }
        Some((redis, db)) => {
            // As `wiring::services` does, under a prefix of this world's own.
            let prefix = format!("{}http", redis.prefix);
            let conn = redis.conn.clone();
            services = services
                .users(Arc::new(PgUsers::new(db.pool.clone())))
                .revocations(Arc::new(RedisRevocations::new(
                    RedisRevocationList::new(conn.clone(), prefix.clone()),
                    shared_clock.clone(),
                )))
                .limiter(Arc::new(RedisRateLimits::new(
                    RedisRateLimiter::new(conn.clone(), prefix.clone()),
                    shared_clock.clone(),
                )));
            system = system
                .queue_backend(QueueBackend::Redis)
                .database(db.pool.clone())
                .redis(conn.clone());
            shared = Some(Shared {
                pool: db.pool.clone(),
                redis: conn,
                queue_prefix: redis.queue_prefix("queue"),
                http_prefix: prefix.clone(),
            });
            Some(SharedServices {
                _redis: redis,
                _db: db,
            })
        }
    };
    let system = system.build();
    let state = AppState::new(services.build().unwrap());
    let router = app::router_with(
        state,
        system::routes(system.clone()),
        system::dashboard_routes(system),
    )
    .layer(from_fn_with_state(metrics, metrics::track));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    })
    .abort_handle();
    World {
        chronos,
        clock,
        backend,
        user_limit,
        shared,
        base: format!("http://{addr}/api/v1"),
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        server,
        services: services_guard,
    }
}

/// One user's view of the API: a client sending their `Authorization` header.
pub struct User {
    /// Their id (from registration; nil for [`World::anonymous`]).
    pub id: Uuid,
    /// Their email address.
    pub email: String,
    authorization: Option<String>,
    limit: u32,
    base: String,
    http: reqwest::Client,
}

/// An answer: status, headers and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// `data` of a success body (asserting the envelope).
    pub fn data(&self) -> &Value {
        assert_eq!(self.body["success"], json!(true), "{self:?}");
        &self.body["data"]
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
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

    /// `(limit, remaining, reset)` of the `X-RateLimit-*` headers, all present.
    pub fn rate_limit(&self) -> (u32, u32, i64) {
        let get = |name: &str| {
            self.header(name)
                .unwrap_or_else(|| panic!("no {name} header: {self:#?}"))
                .to_owned()
        };
        (
            get("x-ratelimit-limit").parse().unwrap(),
            get("x-ratelimit-remaining").parse().unwrap(),
            get("x-ratelimit-reset").parse().unwrap(),
        )
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

impl World {
    /// A client with no `Authorization` header.
    pub fn anonymous(&self) -> User {
        User {
            id: Uuid::nil(),
            email: String::new(),
            authorization: None,
            limit: self.user_limit.max,
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    /// A new user: registers with a fresh address and logs in over HTTP, and sends
    /// the login's token from then on.
    pub async fn user(&self) -> User {
        let email = format!("user-{}@example.com", Uuid::new_v4().simple());
        let anonymous = self.anonymous();
        let credentials = json!({"email": email, "password": PASSWORD});
        let registered = anonymous.post("/auth/register", credentials.clone()).await;
        assert_eq!(registered.status, StatusCode::CREATED, "{registered:#?}");
        let user = registered.data()["user"].clone();
        assert_eq!(user["email"], json!(email));
        assert_eq!(registered.data()["user_id"], user["id"]);
        let logged_in = anonymous.post("/auth/login", credentials).await;
        assert_eq!(logged_in.status, StatusCode::OK, "{logged_in:#?}");
        assert_eq!(logged_in.data()["user"], user);
        let token = logged_in.data()["token"].as_str().unwrap();
        assert_ne!(token, registered.data()["token"].as_str().unwrap());
        User {
            id: user["id"].as_str().unwrap().parse().unwrap(),
            email,
            authorization: Some(format!("Bearer {token}")),
            ..anonymous
        }
    }

    /// A new session of `user`: logs in over HTTP again and sends the new token.
    pub async fn user_session(&self, user: &User) -> User {
        let r = self
            .anonymous()
            .post(
                "/auth/login",
                json!({"email": user.email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:#?}");
        assert_eq!(r.data()["user_id"], json!(user.id));
        let token = r.data()["token"].as_str().unwrap();
        user.with_authorization(Some(&format!("Bearer {token}")))
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
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

/// Whether `path` (under `/api/v1`) is behind the per-user limit.
fn limited_route(path: &str) -> bool {
    ["/jobs", "/executions/", "/dashboard/"]
        .iter()
        .any(|p| path.starts_with(p))
}

impl User {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The bearer token (panics for an anonymous client).
    pub fn token(&self) -> &str {
        self.authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .expect("a signed-in user")
    }

    /// The same client sending `Authorization: <authorization>`, or none.
    pub fn with_authorization(&self, authorization: Option<&str>) -> User {
        User {
            id: self.id,
            email: self.email.clone(),
            authorization: authorization.map(str::to_owned),
            limit: self.limit,
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match &self.authorization {
            Some(a) => req.header("authorization", a),
            None => req,
        }
    }

    /// Sends `req` and reads the answer. Every answer of a rate-limited route that
    /// got past authentication carries the `X-RateLimit-*` headers of this world's
    /// limit.
    async fn send(&self, path: &str, req: reqwest::RequestBuilder) -> Answer {
        let a = answer(req.send().await.unwrap()).await;
        let code = a.body["code"].as_str().unwrap_or("");
        let authenticated = a.status != StatusCode::UNAUTHORIZED
            && !matches!(code, "ROUTE_NOT_FOUND" | "METHOD_NOT_ALLOWED");
        if self.authorization.is_some() && authenticated && limited_route(path) {
            let (limit, remaining, reset) = a.rate_limit();
            assert_eq!(limit, self.limit, "{path}: {a:#?}");
            assert!(remaining < limit, "{path}: {a:#?}");
            assert!(reset > 0, "{path}: {a:#?}");
        }
        a
    }

    /// A request with a JSON body (or none).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(path, req).await
    }

    /// A request with these raw body bytes and an optional `Content-Type`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Answer {
        let mut req = self.request(method, path).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        self.send(path, req).await
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
    let headers = r.headers().clone();
    let ct = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    assert_eq!(
        ct.as_deref(),
        Some("application/json"),
        "every answer is JSON: {status} {text}"
    );
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    Answer {
        status,
        headers,
        body,
    }
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
