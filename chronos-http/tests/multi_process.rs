#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]
//! The service as deployed: real `chronos` processes on one PostgreSQL database and
//! one Redis key prefix, driven over HTTP.
//!
//! - Two `api` and two `worker` processes (plus a pair of `api` processes with a low
//!   rate limit): a user registered on one API logs in on the other; immediate,
//!   scheduled and every-second cron jobs created through both APIs each run exactly
//!   once per occurrence, on the two workers (checked in `job_executions`); a token
//!   revoked on one API is refused by the other; one user's rate limit is counted
//!   across API processes; SIGTERM stops every process with exit code 0.
//! - `serve` with a real SMTP server (`chronos_notify::testing`): a job that fails
//!   for good after its retries sends its owner exactly one email, and the last
//!   execution's log says so.
//!
//! Each test has its own database (`TestDb`) and Redis prefix (`REDIS_PREFIX`, keys
//! deleted afterwards). Without PostgreSQL or Redis the tests skip loudly, and fail
//! under `CHRONOS_REQUIRE_SERVICES=1`. Every wait has a deadline; every process is
//! killed if the test fails, and its last log lines are printed. To debug, set
//! `MP_LOG_LEVEL` (the processes' `LOG_LEVEL`, e.g. `info,chronos=debug`) and
//! `MP_LOG_DIR` (a directory that receives each failed run's full process logs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use chronos_notify::testing::{ServerOptions, SmtpServer};
use chronos_postgres::testing::TestDb;
use chronos_redis::testing::TestRedis;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_chronos");
const JWT_SECRET: &str = "multi-process-test-secret-0123456789abcdef";
const PASSWORD: &str = "Multi-process-1";
/// `SHUTDOWN_GRACE_SECS` of every process.
const GRACE_SECS: u64 = 5;
/// How long a process may take to exit after SIGTERM: its grace period, plus the
/// second the runtime may take to wind down, plus a second of slack.
const STOP_WITHIN: Duration = Duration::from_secs(GRACE_SECS + 2);
/// How long a process may take to start answering.
const START_WITHIN: Duration = Duration::from_secs(30);
/// How long jobs may take to run.
const RUN_WITHIN: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// How many lines of a process's log a failing test shows.
const LOG_TAIL: usize = 40;

// ---------------------------------------------------------------------------------
// Processes

/// A running `chronos` process whose stderr is collected; killed when dropped (so a
/// failing test leaves nothing running).
struct Proc {
    name: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `chronos <args>` with none of the test's own configuration, in an empty
    /// directory (no `.env`), with `env` set.
    fn start(name: &str, args: &[&str], env: &[(String, String)]) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(std::env::temp_dir());
        for var in chronos_http::config::VARIABLES {
            cmd.env_remove(var);
        }
        cmd.env(
            "LOG_LEVEL",
            std::env::var("MP_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Proc {
            name: name.to_owned(),
            child,
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Panics (with the log) if the process has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    async fn wait_for_log(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.log().contains(needle) {
                return;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "{}: no {needle:?} within {within:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `GET /health` answers 200.
    async fn wait_healthy(&mut self, api: &Api) -> Value {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(r) = api.http.get(format!("{}/health", api.base)).send().await
                && r.status() == 200
            {
                return r.json().await.unwrap();
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "{}: not healthy within {START_WITHIN:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.name);
    }

    /// Waits (bounded) for the exit after [`Proc::sigterm`]; the exit code and log.
    async fn exited(&mut self, within: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the pipe.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return (status.code(), self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} still running {within:?} after SIGTERM:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // The test failed: show what the process said last.
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
            eprintln!(
                "--- {} (last {} lines):\n{}",
                self.name,
                tail.len(),
                tail.join("\n")
            );
            if let Ok(dir) = std::env::var("MP_LOG_DIR") {
                let _ = std::fs::write(format!("{dir}/{}.log", self.name), &log);
            }
        }
    }
}

/// SIGTERM to all at once, then each must exit 0 within the grace period.
async fn stop_all(procs: &mut [Proc]) {
    let started = Instant::now();
    for p in procs.iter() {
        p.sigterm();
    }
    for p in procs.iter_mut() {
        let within = STOP_WITHIN.saturating_sub(started.elapsed());
        let (code, log) = p.exited(within).await;
        assert_eq!(code, Some(0), "{} after SIGTERM:\n{log}", p.name);
        assert!(log.contains("SIGTERM"), "{}:\n{log}", p.name);
        assert!(log.contains("stopped"), "{}:\n{log}", p.name);
    }
    eprintln!(
        "{} processes stopped in {:?}",
        procs.len(),
        started.elapsed()
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------
// Backends

/// A fresh database and a Redis key prefix for one test. Dropping it deletes the
/// prefix's keys (the queue's, `<prefix>:{queue}:…`, and the rate limits' and
/// revocations', `{<prefix>}:…`, through [`TestRedis`]) and drops the database. Declare it
/// before the processes, so they are killed first.
struct Backends {
    db: TestDb,
    redis: TestRedis,
    /// `REDIS_PREFIX` of the processes: [`TestRedis::prefix`] without its final `:`.
    prefix: String,
}

impl Backends {
    /// A database (migrated, or `empty` for the processes to migrate) and a prefix;
    /// skips the test when PostgreSQL or Redis is unreachable.
    async fn new(empty: bool) -> Backends {
        let redis = TestRedis::connect().await;
        let db = if empty {
            TestDb::create_empty().await
        } else {
            TestDb::create().await
        };
        let prefix = redis.prefix.trim_end_matches(':').to_owned();
        Backends { db, redis, prefix }
    }

    fn database_url(&self) -> String {
        let base = std::env::var("CHRONOS_TEST_DATABASE_URL")
            .unwrap_or_else(|_| chronos_postgres::testing::DEFAULT_TEST_URL.to_owned());
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path(&self.db.name);
        url.to_string()
    }

    /// The configuration every process of the test shares.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("DATABASE_URL", self.database_url()),
            ("REDIS_URL", chronos_redis::testing::redis_url()),
            ("REDIS_PREFIX", self.prefix.clone()),
            ("JWT_SECRET", JWT_SECRET.to_owned()),
            ("HOST", "127.0.0.1".to_owned()),
            ("RUN_MIGRATIONS", "true".to_owned()),
            ("SAFETY_SYNC_INTERVAL_SECS", "2".to_owned()),
            ("SHUTDOWN_GRACE_SECS", GRACE_SECS.to_string()),
            ("WORKER_CONCURRENCY", "8".to_owned()),
            ("RATE_LIMIT_MAX", "100000".to_owned()),
            ("AUTH_RATE_LIMIT_MAX", "1000".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The keys matching `pattern` (a Redis glob).
    async fn keys(&self, pattern: &str) -> Vec<String> {
        let mut conn = self.redis.conn.clone();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }
}

// ---------------------------------------------------------------------------------
// HTTP

/// One API process's base URL and a client with a per-request timeout.
#[derive(Clone)]
struct Api {
    name: &'static str,
    base: String,
    http: reqwest::Client,
}

/// An answer: status, headers, JSON body (`null` when there is none).
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "{:?}", self.body);
        self.body
    }
}

impl Api {
    fn new(name: &'static str, port: u16) -> Api {
        Api {
            name,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method.clone(), format!("{}/api/v1{path}", self.base));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {method} {path}: {e}", self.name));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} {method} {path}: {e}: {text}", self.name))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// A POST without a body (as the original frontend sends pause and logout).
    async fn post_empty(&self, path: &str, token: &str) -> Reply {
        self.call(Method::POST, path, token, None).await
    }

    /// Registers `email`; the user's id.
    async fn register(&self, email: &str) -> String {
        let data = self
            .post(
                "/auth/register",
                "",
                json!({"email": email, "password": PASSWORD}),
            )
            .await
            .expect(201);
        data["data"]["user"]["id"].as_str().unwrap().to_owned()
    }

    /// Logs `email` in; the user's id and the token.
    async fn login(&self, email: &str) -> (String, String) {
        let data = self
            .post(
                "/auth/login",
                "",
                json!({"email": email, "password": PASSWORD}),
            )
            .await
            .expect(200);
        (
            data["data"]["user"]["id"].as_str().unwrap().to_owned(),
            data["data"]["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a job; its JSON.
    async fn create(&self, token: &str, job: Value) -> Value {
        let data = self.post("/jobs", token, job).await.expect(201);
        data["data"].clone()
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------
// The tests

/// One row of `job_executions`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    job_id: Uuid,
    scheduled_for: DateTime<Utc>,
    status: String,
    retry_attempt: i32,
    worker: Option<String>,
    manual: bool,
}

async fn executions(db: &TestDb) -> Vec<Row> {
    sqlx::query_as(
        "SELECT job_id, scheduled_for, status, retry_attempt, worker, manual \
         FROM job_executions ORDER BY scheduled_for, created_at",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[test]
fn two_apis_and_two_workers_share_jobs_tokens_and_limits() {
    chronos::testkit::run(async {
        let began = Instant::now();
        let backends = Backends::new(true).await;
        let env = backends.env();
        let with = |extra: &[(&str, String)]| -> Vec<(String, String)> {
            let mut all = env.clone();
            all.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            all
        };

        // Six processes at once, every one migrating the empty database: two APIs,
        // two workers, and two APIs with a rate limit of LIMIT per user.
        const LIMIT: u32 = 6;
        let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
        let apis = [
            Api::new("api-1", ports[0]),
            Api::new("api-2", ports[1]),
            Api::new("api-3", ports[2]),
            Api::new("api-4", ports[3]),
        ];
        let mut procs = Vec::new();
        for (i, api) in apis.iter().enumerate() {
            let mut extra = vec![("PORT", ports[i].to_string())];
            if i >= 2 {
                extra.push(("RATE_LIMIT_MAX", LIMIT.to_string()));
                // A window no test run crosses (windows are aligned on the epoch).
                extra.push(("RATE_LIMIT_WINDOW_SECS", (365 * 86_400).to_string()));
            }
            procs.push(Proc::start(api.name, &["api"], &with(&extra)));
        }
        for w in 1..=2 {
            procs.push(Proc::start(
                &format!("worker-{w}"),
                &["worker"],
                &with(&[("HOSTNAME", format!("mp-worker-{w}"))]),
            ));
        }
        for (i, api) in apis.iter().enumerate() {
            let health = procs[i].wait_healthy(api).await;
            assert_eq!(health["system"]["role"], "api", "{health}");
            assert_eq!(health["services"]["queue"]["backend"], "redis", "{health}");
            assert_eq!(health["services"]["database"]["backend"], "postgresql");
        }
        for p in &mut procs[4..] {
            p.wait_for_log("scheduler started", START_WITHIN).await;
        }
        // Each worker records executions as `<HOSTNAME>-<pid>-<random>`.
        let worker_ids: Vec<String> = procs[4..]
            .iter()
            .enumerate()
            .map(|(i, p)| format!("mp-worker-{}-{}-", i + 1, p.pid()))
            .collect();
        eprintln!("{:?}: six processes up", began.elapsed());

        // Register on api-1, log in on api-2.
        let (api1, api2) = (&apis[0], &apis[1]);
        let email = format!("mp-{}@example.com", Uuid::new_v4().simple());
        let user_id = api1.register(&email).await;
        let (login_id, token) = api2.login(&email).await;
        assert_eq!(login_id, user_id);
        let me = api1.get("/auth/me", &token).await.expect(200);
        assert_eq!(me["data"]["email"], email.as_str());

        // An every-second cron job, then 40 immediate and 10 scheduled jobs, through
        // both APIs in turn.
        let cron = api2
            .create(
                &token,
                json!({
                    "name": "every-second",
                    "job_type": "recurring",
                    "schedule_type": "cron",
                    "cron_expression": "*/1 * * * * *",
                }),
            )
            .await;
        let cron_id: Uuid = cron["id"].as_str().unwrap().parse().unwrap();
        let cron_created = Instant::now();
        let mut one_time: HashMap<Uuid, Option<DateTime<Utc>>> = HashMap::new();
        for i in 0..50 {
            let api = &apis[i % 2];
            let job = if i < 40 {
                api.create(
                    &token,
                    json!({
                        "name": format!("immediate-{i}"),
                        "job_type": "one-time",
                        "schedule_type": "immediate",
                        "payload": {"i": i},
                    }),
                )
                .await
            } else {
                let at = Utc::now() + chrono::Duration::milliseconds(1000 + 100 * (i as i64 - 40));
                api.create(
                    &token,
                    json!({
                        "name": format!("scheduled-{i}"),
                        "job_type": "one-time",
                        "schedule_type": "scheduled",
                        "scheduled_time": rfc3339(at),
                        "payload": {"i": i},
                    }),
                )
                .await
            };
            let id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
            let at = job["scheduled_time"]
                .as_str()
                .map(|s| s.parse::<DateTime<Utc>>().unwrap());
            one_time.insert(id, at);
        }
        eprintln!("{:?}: 51 jobs created", began.elapsed());

        // Wait until every one-time job is completed; pause the cron job after ~3 s.
        let deadline = Instant::now() + RUN_WITHIN;
        let mut paused = false;
        loop {
            if !paused && cron_created.elapsed() >= Duration::from_secs(3) {
                api1.post_empty(&format!("/jobs/{cron_id}/pause"), &token)
                    .await
                    .expect(200);
                paused = true;
            }
            let done = api2
                .get("/jobs?status=completed&job_type=one-time&limit=100", &token)
                .await
                .expect(200);
            let completed = done["data"]["pagination"]["total"].as_u64().unwrap();
            if paused && completed == 50 {
                break;
            }
            for p in &mut procs {
                p.assert_running();
            }
            assert!(
                Instant::now() < deadline,
                "{completed} of 50 one-time jobs completed within {RUN_WITHIN:?}"
            );
            tokio::time::sleep(POLL).await;
        }
        // The cron occurrence that may have been running when it was paused settles.
        let deadline = Instant::now() + RUN_WITHIN;
        loop {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM job_executions WHERE status IN ('queued', 'running')",
            )
            .fetch_one(&backends.db.pool)
            .await
            .unwrap();
            if open == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{open} executions still open");
            tokio::time::sleep(POLL).await;
        }
        eprintln!("{:?}: every job ran", began.elapsed());

        // Through the API: each one-time job has one successful execution.
        for (n, (id, _)) in one_time.iter().enumerate() {
            let list = apis[n % 2]
                .get(&format!("/jobs/{id}/executions"), &token)
                .await
                .expect(200);
            let executions = list["data"]["executions"].as_array().unwrap();
            assert_eq!(executions.len(), 1, "{id}: {executions:?}");
            assert_eq!(executions[0]["status"], "success", "{executions:?}");
            assert_eq!(executions[0]["retry_attempt"], 0);
        }

        // In PostgreSQL: exactly one execution per occurrence, successful, on one of
        // the two workers.
        let rows = executions(&backends.db).await;
        let mut by_occurrence: BTreeMap<(Uuid, DateTime<Utc>), Vec<&Row>> = BTreeMap::new();
        for row in &rows {
            by_occurrence
                .entry((row.job_id, row.scheduled_for))
                .or_default()
                .push(row);
        }
        let mut per_worker: BTreeMap<String, usize> = BTreeMap::new();
        for row in &rows {
            assert!(!row.manual, "{row:?}");
            let worker = row.worker.as_deref().unwrap_or_default();
            let Some(which) = worker_ids.iter().find(|w| worker.starts_with(w.as_str())) else {
                panic!("{row:?}: not one of the workers {worker_ids:?}");
            };
            *per_worker.entry(which.clone()).or_default() += 1;
        }
        for ((job, at), rows) in &by_occurrence {
            assert_eq!(rows.len(), 1, "{job} at {at}: {rows:?}");
            assert_eq!(rows[0].status, "success", "{rows:?}");
            assert_eq!(rows[0].retry_attempt, 0, "{rows:?}");
        }
        let jobs_run: HashSet<Uuid> = rows.iter().map(|r| r.job_id).collect();
        for (id, at) in &one_time {
            assert!(jobs_run.contains(id), "{id} never ran");
            let occurrences: Vec<_> = by_occurrence.keys().filter(|(j, _)| j == id).collect();
            assert_eq!(occurrences.len(), 1, "{id}: {occurrences:?}");
            if let Some(at) = at {
                assert_eq!(occurrences[0].1, *at, "a scheduled job runs for its time");
            }
        }
        let cron_runs: Vec<DateTime<Utc>> = by_occurrence
            .keys()
            .filter(|(j, _)| *j == cron_id)
            .map(|(_, at)| *at)
            .collect();
        assert!(cron_runs.len() >= 2, "every second for ~3 s: {cron_runs:?}");
        // Whole seconds, each once (missed seconds may be coalesced under load).
        for at in &cron_runs {
            assert_eq!(at.timestamp_subsec_micros(), 0, "{cron_runs:?}");
        }
        assert_eq!(jobs_run.len(), 51);
        eprintln!(
            "{} executions ({} cron occurrences), per worker: {per_worker:?}",
            rows.len(),
            cron_runs.len()
        );

        // Both kinds of keys are under the prefix: the queue's and the tagged ones.
        let queue_keys = backends
            .keys(&format!("{}:{{queue}}:*", backends.prefix))
            .await;
        assert!(!queue_keys.is_empty(), "the queue uses REDIS_PREFIX");
        let limit_keys = backends
            .keys(&format!("{{{}}}:rl:*", backends.prefix))
            .await;
        assert!(!limit_keys.is_empty(), "the rate limits use REDIS_PREFIX");

        // Log out on api-1: the token is refused on api-2 (and api-1).
        api1.post_empty("/auth/logout", &token).await.expect(200);
        for api in [api2, api1] {
            let r = api.get("/auth/me", &token).await;
            assert_eq!(r.status, 401, "{}: {:?}", api.name, r.body);
            assert_eq!(
                r.body["code"], "TOKEN_REVOKED",
                "{}: {:?}",
                api.name, r.body
            );
            let r = api.get("/jobs", &token).await;
            assert_eq!(
                r.body["code"], "TOKEN_REVOKED",
                "{}: {:?}",
                api.name, r.body
            );
        }
        let revoked = backends
            .keys(&format!("{{{}}}:revoked:*", backends.prefix))
            .await;
        assert_eq!(revoked.len(), 1, "{revoked:?}");

        // One user's limit is counted across api-3 and api-4.
        let (api3, api4) = (&apis[2], &apis[3]);
        let email = format!("mp-limited-{}@example.com", Uuid::new_v4().simple());
        api3.register(&email).await;
        let (_, limited) = api4.login(&email).await;
        for i in 0..LIMIT {
            let api = if i % 2 == 0 { api3 } else { api4 };
            let r = api.get("/jobs", &limited).await;
            assert_eq!(
                r.status,
                200,
                "request {} on {}: {:?}",
                i + 1,
                api.name,
                r.body
            );
            assert_eq!(
                r.header("x-ratelimit-limit"),
                Some(LIMIT.to_string().as_str())
            );
            assert_eq!(
                r.header("x-ratelimit-remaining"),
                Some((LIMIT - 1 - i).to_string().as_str()),
                "request {} on {}",
                i + 1,
                api.name
            );
        }
        for api in [api3, api4] {
            let r = api.get("/jobs", &limited).await;
            assert_eq!(r.status, 429, "{}: {:?}", api.name, r.body);
            assert_eq!(r.body["code"], "RATE_LIMIT_EXCEEDED");
            let retry_after: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!(retry_after >= 1, "{retry_after}");
            assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        }

        // SIGTERM: every process exits 0 within the grace period.
        stop_all(&mut procs).await;
        eprintln!("{:?}: all stopped", began.elapsed());
    });
}

#[test]
fn a_final_failure_sends_one_email_through_a_real_smtp_server() {
    chronos::testkit::run(async {
        let began = Instant::now();
        let backends = Backends::new(false).await;
        let mut smtp = SmtpServer::start(ServerOptions::default()).await.unwrap();
        let port = free_port();
        let api = Api::new("serve", port);
        let mut env = backends.env();
        env.extend(
            [
                ("PORT", port.to_string()),
                ("SMTP_HOST", "127.0.0.1".to_owned()),
                ("SMTP_PORT", smtp.port().to_string()),
                ("SMTP_TLS", "none".to_owned()),
                ("SMTP_FROM", "Chronos <chronos@example.com>".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        let mut serve = Proc::start("serve", &["serve"], &env);
        let health = serve.wait_healthy(&api).await;
        assert_eq!(health["system"]["role"], "serve", "{health}");
        assert!(serve.log().contains("failure emails are enabled"));

        let email = "owner@example.com";
        api.register(email).await;
        let (_, token) = api.login(email).await;
        let name = format!("disk-check-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let job = api
            .create(
                &token,
                json!({
                    "name": name,
                    "job_type": "one-time",
                    "schedule_type": "immediate",
                    "handler": "fail",
                    "payload": {"message": "disk full"},
                    "max_retries": 2,
                    "retry_backoff_ms": 100,
                }),
            )
            .await;
        let job_id = job["id"].as_str().unwrap().to_owned();

        // The job fails for good after three attempts.
        let deadline = Instant::now() + RUN_WITHIN;
        loop {
            let got = api
                .get(&format!("/jobs/{job_id}"), &token)
                .await
                .expect(200);
            if got["data"]["status"] == "failed" {
                break;
            }
            serve.assert_running();
            assert!(Instant::now() < deadline, "not failed: {got}");
            tokio::time::sleep(POLL).await;
        }
        let list = api
            .get(&format!("/jobs/{job_id}/executions"), &token)
            .await
            .expect(200);
        let mut executions = list["data"]["executions"].as_array().unwrap().clone();
        executions.sort_by_key(|e| e["retry_attempt"].as_u64());
        let attempts: Vec<_> = executions
            .iter()
            .map(|e| {
                (
                    e["retry_attempt"].as_u64().unwrap(),
                    e["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            attempts,
            [(0, "failed"), (1, "failed"), (2, "failed")],
            "{executions:?}"
        );
        for e in &executions {
            assert_eq!(e["error_message"], "disk full", "{e}");
        }

        // Exactly one email, to the owner, naming the job, its id and the error.
        let mail = smtp
            .next_mail(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no email within 10 s:\n{}", serve.log()));
        assert_eq!(mail.to, [email]);
        assert_eq!(mail.from, "chronos@example.com");
        let message = mail.parsed().unwrap();
        assert_eq!(
            message.subject(),
            Some(format!("Job Failed: {name}").as_str())
        );
        let text = message.body_text(0).unwrap();
        assert!(text.contains("disk full"), "{text}");
        assert!(text.contains(&job_id), "{text}");

        // The last execution's log says the notification was sent.
        let last = executions[2]["id"].as_str().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs = api
                .get(&format!("/executions/{last}/logs"), &token)
                .await
                .expect(200);
            let lines: Vec<&str> = logs["data"]["logs"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|l| l["message"].as_str())
                .collect();
            if lines
                .iter()
                .any(|l| l.contains("Failure notification sent"))
            {
                break;
            }
            assert!(Instant::now() < deadline, "no notice in the log: {lines:?}");
            tokio::time::sleep(POLL).await;
        }

        // And no second email.
        if let Some(again) = smtp.next_mail(Duration::from_secs(2)).await {
            panic!("a second email: {}", again.text());
        }
        assert_eq!(smtp.rcpt_commands(), 1);

        stop_all(std::slice::from_mut(&mut serve)).await;
        eprintln!("{:?}: done", began.elapsed());
    });
}
