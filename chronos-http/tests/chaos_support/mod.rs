//! The parts of the chaos suite (`tests/chaos.rs`) that every scenario shares:
//!
//! - [`Proc`]: a child process (a `chronos` process, a private `redis-server`) whose
//!   output is collected, killed when dropped, with its last log lines printed when the
//!   test fails;
//! - [`Api`]: an HTTP client of one API process;
//! - [`Stream`]: a steady stream of immediate and delayed jobs created over HTTP, and
//!   [`create_cron`] for every-second cron jobs, both recorded in a [`Ledger`];
//! - [`reconcile`] and [`settle`]: the one reconciliation of what was scheduled with the
//!   rows of `job_executions`, as a readable [`Report`];
//! - [`PrivateRedis`] and [`PrivatePg`]: servers a scenario owns and may break (the
//!   shared ones are used by other tests in parallel).

#![allow(unreachable_pub, reason = "a test support module")]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use chronos::cron::CronSchedule;
use chronos::model::MissedPolicy;
use chronos::store::ABANDONED;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_chronos");
const JWT_SECRET: &str = "chaos-test-secret-0123456789abcdef-0123456789";
const PASSWORD: &str = "Chaos-tests-1";
/// `SHUTDOWN_GRACE_SECS` of every process.
pub const GRACE_SECS: u64 = 2;
/// How long a process may take to exit after SIGTERM: its grace period, the second
/// the runtime may take to wind down, and two seconds of slack for a loaded machine.
pub const STOP_WITHIN: Duration = Duration::from_secs(GRACE_SECS + 3);
/// How long a process or server may take to start answering.
pub const START_WITHIN: Duration = Duration::from_secs(30);
/// How long the owed occurrences may take to settle after the stream stops.
pub const SETTLE_WITHIN: Duration = Duration::from_secs(30);
/// The interval of every poll.
pub const POLL: Duration = Duration::from_millis(50);
/// How many lines of a process's log a failing test shows.
const LOG_TAIL: usize = 30;
/// How many entries of each list a [`Report`] shows.
const REPORT_LINES: usize = 25;

// ---------------------------------------------------------------------------------
// Processes

/// A child process whose stdout and stderr are collected; killed when dropped (so a
/// failing test leaves nothing running), with its last lines printed if the test failed.
pub struct Proc {
    /// The name in messages.
    pub name: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    /// Spawns `cmd` (stdin closed, stdout and stderr collected).
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for pipe in [stdout, stderr] {
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Proc {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// Starts `chronos <args>` with none of the test's own configuration, in an empty
    /// directory (no `.env`), with `env` set.
    pub fn chronos(name: &str, args: &[&str], env: &[(String, String)]) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(std::env::temp_dir());
        for var in chronos_http::config::VARIABLES {
            cmd.env_remove(var);
        }
        cmd.env(
            "LOG_LEVEL",
            std::env::var("CHAOS_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc::spawn(name, cmd)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it has written so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    /// Polls `probe` every [`POLL`] until it gives a value; panics (with the log),
    /// saying `"<name>: <not_yet> within <within>"`, if the process exits or `within`
    /// passes first.
    pub async fn poll<T>(
        &mut self,
        within: Duration,
        not_yet: &str,
        mut probe: impl AsyncFnMut(&Proc) -> Option<T>,
    ) -> T {
        poll_until(within, async || {
            if let Some(value) = probe(self).await {
                return Ok(value);
            }
            self.assert_running();
            Err(format!(
                "{}: {not_yet} within {within:?}:\n{}",
                self.name,
                self.log()
            ))
        })
        .await
    }

    /// Waits until the log holds `needle`.
    pub async fn wait_for_log(&mut self, needle: &str, within: Duration) {
        let not_yet = format!("no {needle:?}");
        self.poll(within, &not_yet, async |p: &Proc| {
            p.log().contains(needle).then_some(())
        })
        .await;
    }

    /// Waits until `GET /health` of `api` answers 200; the body.
    pub async fn wait_healthy(&mut self, api: &Api) -> Value {
        self.poll(START_WITHIN, "not healthy", async |_: &Proc| {
            api.health()
                .await
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| r.body)
        })
        .await
    }

    /// Sends `signal` (`TERM`, `KILL`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// SIGKILL, then waits for the process to be gone.
    pub async fn kill9(&mut self) {
        self.signal("KILL");
        let status = self.exited(Duration::from_secs(5)).await.0;
        assert_eq!(status, None, "{} was killed by a signal", self.name);
    }

    /// Waits (bounded) for the process to exit; its exit code (`None` when a signal
    /// ended it) and log.
    pub async fn exited(&mut self, within: Duration) -> (Option<i32>, String) {
        let status = poll_until(within, async || match self.child.try_wait().unwrap() {
            Some(status) => Ok(status),
            None => Err(format!(
                "{} still running after {within:?}:\n{}",
                self.name,
                self.log()
            )),
        })
        .await;
        // Let the reader threads drain the pipes.
        tokio::time::sleep(POLL).await;
        (status.code(), self.log())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            print_tail(&self.name, &log);
            if let Ok(dir) = std::env::var("CHAOS_LOG_DIR") {
                let _ = std::fs::write(format!("{dir}/{}.log", self.name), &log);
            }
        }
    }
}

/// Calls `probe` every [`POLL`] until it gives `Ok`; panics with what its last `Err`
/// says once `within` has passed.
pub async fn poll_until<T>(
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(Instant::now() < deadline, "{last}"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Prints the last [`LOG_TAIL`] lines of `log` under `title`.
fn print_tail(title: &str, log: &str) {
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
    eprintln!(
        "--- {title} (last {} lines):\n{}",
        tail.len(),
        tail.join("\n")
    );
}

/// SIGTERM to each, then each must exit 0 within [`STOP_WITHIN`], saying so.
pub async fn stop_all(procs: &mut [&mut Proc]) {
    let started = Instant::now();
    for p in procs.iter() {
        p.signal("TERM");
    }
    for p in procs.iter_mut() {
        let within = STOP_WITHIN.saturating_sub(started.elapsed());
        let (code, log) = p.exited(within).await;
        assert_eq!(code, Some(0), "{} after SIGTERM:\n{log}", p.name);
        assert!(log.contains("stopped"), "{}:\n{log}", p.name);
    }
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The configuration every `chronos` process of a scenario shares: short leases (2 s)
/// and safety-sync period (1 s), so that re-deliveries and repairs happen within the
/// test, and limits no test reaches.
pub fn chronos_env(database_url: &str, redis_url: &str, prefix: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("REDIS_PREFIX", prefix.to_owned()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("RUN_MIGRATIONS", "true".to_owned()),
        ("SAFETY_SYNC_INTERVAL_SECS", "1".to_owned()),
        ("JOB_LEASE_SECS", "2".to_owned()),
        ("SHUTDOWN_GRACE_SECS", GRACE_SECS.to_string()),
        ("WORKER_CONCURRENCY", "8".to_owned()),
        ("RATE_LIMIT_MAX", "1000000".to_owned()),
        ("AUTH_RATE_LIMIT_MAX", "1000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// [`chronos_env`] on the shared Redis server, under the fresh prefix of `redis`.
pub fn shared_redis_env(
    database_url: &str,
    redis: &chronos_redis::testing::TestRedis,
) -> Vec<(String, String)> {
    let prefix = redis.prefix.trim_end_matches(':');
    chronos_env(database_url, &chronos_redis::testing::redis_url(), prefix)
}

/// `env` plus `extra` (later values win).
pub fn with(env: &[(String, String)], extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut all = env.to_vec();
    all.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    all
}

/// The URL of the shared test server's database `name`.
pub fn shared_database_url(name: &str) -> String {
    let base = std::env::var("CHRONOS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| chronos_postgres::testing::DEFAULT_TEST_URL.to_owned());
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(name);
    url.to_string()
}

// ---------------------------------------------------------------------------------
// HTTP

/// One API process's base URL and a client with a per-request timeout.
#[derive(Clone)]
pub struct Api {
    /// The name in messages.
    pub name: String,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    http: reqwest::Client,
}

/// An answer: status and JSON body (`null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

/// Why a request did not give the expected answer.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Another status (with the body).
    Status(u16, Value),
    /// No complete answer: refused, reset, timed out, or a body that is not JSON.
    Transport(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(status, body) => write!(f, "{status} {body}"),
            Failure::Transport(e) => write!(f, "no answer: {e}"),
        }
    }
}

impl Api {
    /// The API at `127.0.0.1:port`.
    pub fn new(name: &str, port: u16) -> Api {
        Api {
            name: name.to_owned(),
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    /// `method path` (from the root: `/health`, `/api/v1/jobs`) with a bearer token
    /// (unless empty) and a JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{} {method} {path}: {e:?}", self.name))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{} {method} {path}: body: {e:?}", self.name))?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|e| format!("{} {method} {path}: {status}: {e}: {text}", self.name))?
        };
        Ok(Reply { status, body })
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Reply, String> {
        self.call(Method::GET, "/health", "", None).await
    }

    /// Registers a fresh user and logs in; the token.
    pub async fn register_and_login(&self) -> String {
        let email = format!("chaos-{}@example.com", Uuid::new_v4().simple());
        let credentials = json!({"email": email, "password": PASSWORD});
        let r = self
            .call(
                Method::POST,
                "/api/v1/auth/register",
                "",
                Some(&credentials),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "register: {}", r.body);
        let r = self
            .call(Method::POST, "/api/v1/auth/login", "", Some(&credentials))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "login: {}", r.body);
        r.body["data"]["token"].as_str().unwrap().to_owned()
    }

    /// `POST /api/v1/jobs`; the created job's JSON on a 201.
    pub async fn create(&self, token: &str, job: &Value) -> Result<Value, Failure> {
        match self
            .call(Method::POST, "/api/v1/jobs", token, Some(job))
            .await
        {
            Ok(r) if r.status == 201 => Ok(r.body["data"].clone()),
            Ok(r) => Err(Failure::Status(r.status, r.body)),
            Err(e) => Err(Failure::Transport(e)),
        }
    }
}

/// An RFC 3339 instant with milliseconds, as the API takes it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn instant(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|s| s.parse().ok())
}

// ---------------------------------------------------------------------------------
// What was scheduled

/// A one-time job the API acknowledged (201).
#[derive(Debug, Clone)]
pub struct OneTime {
    /// Its name.
    pub name: String,
    /// Its scheduled time; `None` for an immediate job.
    pub at: Option<DateTime<Utc>>,
}

/// A recurring job, owed its occurrences from `first` on, per its missed policy.
#[derive(Debug, Clone)]
pub struct CronPlan {
    /// The job.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its expression (evaluated in UTC).
    pub expression: String,
    /// Its first occurrence (the `next_run` it was created with).
    pub first: DateTime<Utc>,
    /// What it does with missed occurrences.
    pub policy: MissedPolicy,
}

/// Everything a scenario scheduled, and the requests that failed.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// One-time jobs by id.
    pub one_time: BTreeMap<Uuid, OneTime>,
    /// Recurring jobs.
    pub cron: Vec<CronPlan>,
    /// Requests that failed during an outage (allowed).
    pub refused: Vec<String>,
    /// Requests that failed outside any outage (a test failure).
    pub failures: Vec<String>,
}

/// The windows during which a scenario has broken something: a request that fails
/// while one is open is expected to.
#[derive(Debug, Default)]
pub struct Outages(Mutex<Vec<(Instant, Option<Instant>)>>);

impl Outages {
    /// An outage begins now.
    pub fn begin(&self) {
        self.0.lock().unwrap().push((Instant::now(), None));
    }

    /// The open outage ends now.
    pub fn end(&self) {
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.1 = Some(Instant::now());
        }
    }

    /// Whether `[from, to]` meets an outage.
    pub fn overlaps(&self, from: Instant, to: Instant) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|(begin, end)| *begin <= to && end.is_none_or(|end| end >= from))
    }
}

/// Records the outcome of a create that failed: refused during an outage, a failure
/// otherwise.
fn record_failure(
    ledger: &Mutex<Ledger>,
    outages: &Outages,
    from: Instant,
    what: &str,
    failure: &Failure,
) {
    let line = format!("{what}: {failure}");
    let allowed = outages.overlaps(from, Instant::now())
        && match failure {
            Failure::Status(status, _) => *status == 503,
            Failure::Transport(_) => true,
        };
    let mut ledger = ledger.lock().unwrap();
    if allowed {
        ledger.refused.push(line);
    } else {
        ledger.failures.push(line);
    }
}

/// Creates a recurring job over HTTP (default missed policy: coalesce) and records it.
pub async fn create_cron(
    api: &Api,
    token: &str,
    ledger: &Mutex<Ledger>,
    name: &str,
    expression: &str,
    handler: &str,
    payload: Value,
) -> Uuid {
    let job = api
        .create(
            token,
            &json!({
                "name": name,
                "job_type": "recurring",
                "schedule_type": "cron",
                "cron_expression": expression,
                "timezone": "UTC",
                "handler": handler,
                "payload": payload,
                "max_retries": 3,
                "retry_backoff_ms": 100,
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
    let id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
    let first = instant(&job["next_run"]).unwrap_or_else(|| panic!("{name}: {job}"));
    ledger.lock().unwrap().cron.push(CronPlan {
        id,
        name: name.to_owned(),
        expression: expression.to_owned(),
        first,
        policy: MissedPolicy::Coalesce,
    });
    id
}

/// What a [`Stream`] creates.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Job names start with it.
    pub tag: &'static str,
    /// The executor of every job.
    pub handler: &'static str,
    /// Its payload.
    pub payload: Value,
    /// The pause between two creates.
    pub every: Duration,
    /// Delayed jobs are scheduled this far ahead, in ms (cycling through the range).
    pub delay_ms: (i64, i64),
}

/// A steady stream of jobs created over HTTP, alternately immediate and delayed, each
/// recorded in the ledger when acknowledged (a failure is recorded as refused during
/// an outage, as a failure otherwise). Stops when told to.
pub struct Stream {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Stream {
    /// Starts creating.
    pub fn start(
        api: Api,
        token: String,
        ledger: Arc<Mutex<Ledger>>,
        outages: Arc<Outages>,
        spec: StreamSpec,
    ) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut n = 0usize;
            let span = (spec.delay_ms.1 - spec.delay_ms.0).max(1);
            while !stopped.load(Ordering::SeqCst) {
                let name = format!("{}-{n}", spec.tag);
                let mut job = json!({
                    "name": name,
                    "job_type": "one-time",
                    "handler": spec.handler,
                    "payload": spec.payload,
                    "max_retries": 3,
                    "retry_backoff_ms": 100,
                });
                let at = if n.is_multiple_of(2) {
                    job["schedule_type"] = "immediate".into();
                    None
                } else {
                    let delay = spec.delay_ms.0 + (n as i64 * 137) % span;
                    let at = Utc::now() + chrono::Duration::milliseconds(delay);
                    job["schedule_type"] = "scheduled".into();
                    job["scheduled_time"] = rfc3339(at).into();
                    Some(at)
                };
                let from = Instant::now();
                match api.create(&token, &job).await {
                    Ok(created) => {
                        let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
                        let at = at.map(|_| instant(&created["scheduled_time"]).unwrap());
                        ledger
                            .lock()
                            .unwrap()
                            .one_time
                            .insert(id, OneTime { name, at });
                    }
                    Err(failure) => {
                        record_failure(&ledger, &outages, from, &format!("create {name}"), &failure)
                    }
                }
                n += 1;
                tokio::time::sleep(spec.every).await;
            }
            n
        });
        Stream { stop, task }
    }

    /// Stops creating (bounded by the client's timeout); how many creates were tried.
    pub async fn stop(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the stream stops")
            .unwrap()
    }
}

/// Two every-second cron jobs of `handler`.
pub async fn two_crons(
    api: &Api,
    token: &str,
    ledger: &Mutex<Ledger>,
    handler: &str,
    payload: Value,
) {
    for i in 0..2 {
        create_cron(
            api,
            token,
            ledger,
            &format!("every-second-{i}"),
            "*/1 * * * * *",
            handler,
            payload.clone(),
        )
        .await;
    }
}

/// Fails with the requests that failed outside any outage; prints the refused ones.
pub fn assert_no_stream_failures(ledger: &Mutex<Ledger>) {
    let ledger = ledger.lock().unwrap();
    eprintln!(
        "{} one-time jobs acknowledged, {} requests refused during outages",
        ledger.one_time.len(),
        ledger.refused.len()
    );
    for line in ledger.refused.iter().take(10) {
        eprintln!("  refused: {line}");
    }
    assert!(
        ledger.failures.is_empty(),
        "requests failed outside any outage:\n{}",
        ledger.failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------
// A running cluster

/// An `api` process and `worker` processes on one configuration, healthy and
/// scheduling, with a logged-in user, two every-second cron jobs and a [`Stream`],
/// everything they schedule recorded in one ledger.
pub struct Cluster {
    /// The configuration every process shares.
    pub env: Vec<(String, String)>,
    /// The client of the API process.
    pub api: Api,
    /// The API process.
    pub api_proc: Proc,
    /// The workers (`worker-<n>`, `HOSTNAME=chaos-w<n>`), in the order they started.
    pub workers: Vec<Proc>,
    /// What was scheduled.
    pub ledger: Arc<Mutex<Ledger>>,
    /// When the scenario broke something.
    pub outages: Arc<Outages>,
    stream: Option<Stream>,
}

impl Cluster {
    /// Starts `api` (on a free port) and `workers` workers on `env`, waits until the
    /// API is healthy and each worker's scheduler has started, registers and logs in,
    /// creates [`two_crons`] of `cron = (handler, payload)`, and starts the `stream`.
    pub async fn start(
        env: Vec<(String, String)>,
        workers: u32,
        cron: (&str, Value),
        stream: StreamSpec,
    ) -> Cluster {
        let port = free_port();
        let api = Api::new("api", port);
        let mut api_proc =
            Proc::chronos("api", &["api"], &with(&env, &[("PORT", port.to_string())]));
        let mut procs: Vec<Proc> = (1..=workers).map(|n| worker(&env, n)).collect();
        api_proc.wait_healthy(&api).await;
        for w in &mut procs {
            w.wait_for_log("scheduler started", START_WITHIN).await;
        }
        let token = api.register_and_login().await;
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let outages = Arc::new(Outages::default());
        two_crons(&api, &token, &ledger, cron.0, cron.1).await;
        let stream = Stream::start(api.clone(), token, ledger.clone(), outages.clone(), stream);
        Cluster {
            env,
            api,
            api_proc,
            workers: procs,
            ledger,
            outages,
            stream: Some(stream),
        }
    }

    /// Starts worker `n` and waits until its scheduler has started.
    pub async fn add_worker(&mut self, n: u32) {
        let mut w = worker(&self.env, n);
        w.wait_for_log("scheduler started", START_WITHIN).await;
        self.workers.push(w);
    }

    /// The API process, then the workers.
    pub fn procs(&mut self) -> Vec<&mut Proc> {
        std::iter::once(&mut self.api_proc)
            .chain(&mut self.workers)
            .collect()
    }

    /// Polls `GET /health` until `accept` takes the answer (every process must keep
    /// running meanwhile); the answer.
    pub async fn until_health(
        &mut self,
        within: Duration,
        what: &str,
        accept: impl Fn(u16, &Value) -> bool,
    ) -> Value {
        poll_until(within, async || {
            let last = match self.api.health().await {
                Ok(r) if accept(r.status, &r.body) => return Ok(r.body),
                Ok(r) => format!("{} {}", r.status, r.body),
                Err(e) => e,
            };
            for p in self.procs() {
                p.assert_running();
            }
            Err(format!(
                "/health: not {what} within {within:?}; last answer: {last}"
            ))
        })
        .await
    }

    /// Stops the stream, then waits (up to [`SETTLE_WITHIN`]) for what is owed up to
    /// now to settle in `pool`: the reconciliation must be clean, and no request may
    /// have failed outside an outage. Prints the times since `began`.
    pub async fn settle_clean(&mut self, pool: &PgPool, began: Instant) {
        let stream = self.stream.take().expect("the stream runs");
        let tried = stream.stop().await;
        let cutoff = Utc::now();
        eprintln!(
            "{:?}: stream stopped after {tried} creates",
            began.elapsed()
        );
        let report = settle(pool, &self.ledger, cutoff, SETTLE_WITHIN).await;
        eprintln!("{:?}: settled", began.elapsed());
        report.assert_clean();
        assert_no_stream_failures(&self.ledger);
    }

    /// [`stop_all`] of the API process and the workers.
    pub async fn stop(&mut self) {
        stop_all(&mut self.procs()).await;
    }
}

/// Starts `worker-<n>` (`HOSTNAME=chaos-w<n>`) on `env`.
fn worker(env: &[(String, String)], n: u32) -> Proc {
    Proc::chronos(
        &format!("worker-{n}"),
        &["worker"],
        &with(env, &[("HOSTNAME", format!("chaos-w{n}"))]),
    )
}

// ---------------------------------------------------------------------------------
// Reconciliation

/// One row of `job_executions`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// Its job.
    pub job_id: Uuid,
    /// The occurrence.
    pub scheduled_for: DateTime<Utc>,
    /// `queued`, `running`, `success`, `failed`, `timeout`, `cancelled`.
    pub status: String,
    /// 0 for the first attempt.
    pub retry_attempt: i32,
    /// Why it failed or was cancelled.
    pub error_message: Option<String>,
    /// When it started (the instant its worker planned the occurrence with).
    pub execution_time: Option<DateTime<Utc>>,
    /// Who ran it.
    pub worker: Option<String>,
    /// A manual run.
    pub manual: bool,
}

impl Row {
    /// Whether the attempt ended because its worker vanished or shut down.
    pub fn interrupted(&self) -> bool {
        let error = self.error_message.as_deref().unwrap_or_default();
        (self.status == "failed" && error == ABANDONED)
            || (self.status == "cancelled" && error.starts_with("cancelled"))
    }

    fn open(&self) -> bool {
        self.status == "queued" || self.status == "running"
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.status, self.retry_attempt)?;
        if let Some(w) = &self.worker {
            write!(f, "@{w}")?;
        }
        if let Some(t) = self.execution_time {
            write!(f, " started {}", t.format("%H:%M:%S%.3f"))?;
        }
        if let Some(e) = &self.error_message {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
}

/// One row of `jobs`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DbJob {
    /// The job.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// `one-time` or `recurring`.
    pub job_type: String,
    /// Its status.
    pub status: String,
    /// A scheduled job's time.
    pub scheduled_time: Option<DateTime<Utc>>,
}

/// Every execution and job in the database.
pub async fn load(pool: &PgPool) -> Result<(Vec<Row>, Vec<DbJob>), sqlx::Error> {
    let rows = sqlx::query_as(
        "SELECT job_id, scheduled_for, status::text AS status, retry_attempt, \
         error_message, execution_time, worker, manual \
         FROM job_executions ORDER BY job_id, scheduled_for, created_at, id",
    )
    .fetch_all(pool)
    .await?;
    let jobs = sqlx::query_as(
        "SELECT id, name::text AS name, job_type::text AS job_type, status::text AS status, \
         scheduled_time FROM jobs ORDER BY created_at, id",
    )
    .fetch_all(pool)
    .await?;
    Ok((rows, jobs))
}

/// What an owed occurrence must end as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exactly one successful execution.
    Success,
    /// None: recorded as cancelled by the `skip` policy.
    Skipped,
}

/// The reconciliation of what was scheduled with `job_executions`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Occurrences up to this instant are owed by recurring jobs.
    pub cutoff: Option<DateTime<Utc>>,
    /// Owed occurrences of one-time jobs.
    pub one_time: usize,
    /// Owed occurrences of recurring jobs.
    pub cron: usize,
    /// Execution rows of owed occurrences.
    pub rows: usize,
    /// Owed occurrences without their successful execution (or, under `skip`, without
    /// their cancelled record).
    pub missing: Vec<String>,
    /// Occurrences with more than one successful execution.
    pub duplicated: Vec<String>,
    /// Executions that are owed nothing: a one-time job run for another instant, a
    /// recurring job run for an occurrence its missed policy says it skips (coalesced),
    /// a skipped occurrence that ran, a manual run.
    pub unexpected: Vec<String>,
    /// Owed occurrences with a queued or running execution.
    pub open: Vec<String>,
    /// Occurrences delivered more than once: an attempt abandoned by a vanished worker
    /// or cancelled by a shutdown, or several execution rows.
    pub redeliveries: Vec<String>,
    /// One-time jobs in the database whose create got no 201 (they are owed too).
    pub unacknowledged: Vec<String>,
}

impl Report {
    /// Whether everything owed has run and nothing is still open.
    pub fn settled(&self) -> bool {
        self.missing.is_empty() && self.open.is_empty()
    }

    /// Whether nothing was lost, doubled or run unowed, and nothing is open.
    pub fn clean(&self) -> bool {
        self.settled() && self.duplicated.is_empty() && self.unexpected.is_empty()
    }

    /// Panics with the report unless [`Report::clean`]; prints it (with the
    /// re-deliveries) either way.
    #[track_caller]
    pub fn assert_clean(&self) {
        eprintln!("{self}");
        assert!(self.clean(), "reconciliation failed:\n{self}");
    }
}

fn list(f: &mut fmt::Formatter<'_>, title: &str, items: &[String]) -> fmt::Result {
    writeln!(f, "  {title}: {}", items.len())?;
    for item in items.iter().take(REPORT_LINES) {
        writeln!(f, "    - {item}")?;
    }
    if items.len() > REPORT_LINES {
        writeln!(f, "    … and {} more", items.len() - REPORT_LINES)?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cutoff = self.cutoff.map(rfc3339).unwrap_or_default();
        writeln!(
            f,
            "reconciliation (recurring occurrences up to {cutoff}): {} owed occurrences \
             ({} one-time, {} recurring), {} execution rows",
            self.one_time + self.cron,
            self.one_time,
            self.cron,
            self.rows
        )?;
        list(f, "missing", &self.missing)?;
        list(f, "duplicated", &self.duplicated)?;
        list(f, "unexpected", &self.unexpected)?;
        list(f, "still queued or running", &self.open)?;
        list(f, "re-deliveries (allowed)", &self.redeliveries)?;
        list(
            f,
            "jobs stored without a 201 (owed too)",
            &self.unacknowledged,
        )
    }
}

fn describe(rows: &[&Row]) -> String {
    if rows.is_empty() {
        return "no execution".to_owned();
    }
    let parts: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// The occurrences a recurring job owes up to `cutoff`, with what each must end as.
///
/// - `run_all`: every occurrence of the expression from `first` on.
/// - `coalesce` and `skip`: the chain the engine builds. An occurrence is claimed by a
///   worker at an instant `t` (the `execution_time` of its first execution row, the
///   very `now` the worker planned with); the next one owed is the following
///   occurrence unless that was already due at `t` (missed): then the first occurrence
///   after `t`, the missed ones being coalesced into the late run (`coalesce`), or the
///   late occurrence recorded as cancelled instead of run (`skip`). The walk stops at
///   an occurrence not claimed yet (owed, not run: missing until it runs).
fn cron_owed(
    plan: &CronPlan,
    occurrences: &BTreeMap<DateTime<Utc>, Vec<&Row>>,
    cutoff: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Expect)> {
    let cron = CronSchedule::parse(&plan.expression).unwrap();
    let next = |t: DateTime<Utc>| cron.next_after(t, Tz::UTC);
    let mut owed = Vec::new();
    let mut s = plan.first;
    while s <= cutoff {
        let Some(n) = next(s) else {
            owed.push((s, Expect::Success));
            break;
        };
        if plan.policy == MissedPolicy::RunAll {
            owed.push((s, Expect::Success));
            s = n;
            continue;
        }
        let claimed = occurrences
            .get(&s)
            .and_then(|rows| rows.iter().filter_map(|r| r.execution_time).min());
        let Some(t) = claimed else {
            owed.push((s, Expect::Success));
            break;
        };
        // A claim within 2 ms of the next occurrence may have been rounded either way
        // on its way to the database: follow what happened.
        let late = if (t - n).num_milliseconds().abs() < 2 {
            !occurrences.contains_key(&n)
        } else {
            n <= t
        };
        let expect = if late && plan.policy == MissedPolicy::Skip {
            Expect::Skipped
        } else {
            Expect::Success
        };
        owed.push((s, expect));
        s = if late { next(t).unwrap_or(n) } else { n };
    }
    owed
}

/// Reconciles `ledger` with the database's `rows` and `jobs`: per owed occurrence
/// `(job, scheduled_for)`, the number of successful executions must be exactly one.
///
/// What is owed: every one-time job acknowledged by the API and every one-time job
/// in the database (one occurrence each, at its scheduled time if it has one), and
/// the occurrences of each recurring job up to `cutoff` under its missed policy (see
/// `cron_owed`).
pub fn reconcile(ledger: &Ledger, rows: &[Row], jobs: &[DbJob], cutoff: DateTime<Utc>) -> Report {
    let mut report = Report {
        cutoff: Some(cutoff),
        ..Report::default()
    };
    let mut by_job: BTreeMap<Uuid, BTreeMap<DateTime<Utc>, Vec<&Row>>> = BTreeMap::new();
    for row in rows {
        by_job
            .entry(row.job_id)
            .or_default()
            .entry(row.scheduled_for)
            .or_default()
            .push(row);
    }
    let empty = BTreeMap::new();
    let mut owed: Vec<(String, Uuid, DateTime<Utc>, Expect)> = Vec::new();

    // One-time jobs: those acknowledged, and those the database holds.
    let in_db: BTreeMap<Uuid, &DbJob> = jobs.iter().map(|j| (j.id, j)).collect();
    let mut one_time: BTreeMap<Uuid, (String, Option<DateTime<Utc>>)> = ledger
        .one_time
        .iter()
        .map(|(id, j)| (*id, (j.name.clone(), j.at)))
        .collect();
    for job in jobs.iter().filter(|j| j.job_type == "one-time") {
        if !ledger.one_time.contains_key(&job.id) {
            report
                .unacknowledged
                .push(format!("{} {} ({})", job.name, job.id, job.status));
            one_time.insert(job.id, (job.name.clone(), job.scheduled_time));
        }
    }
    for (id, (name, at)) in &one_time {
        let label = format!("one-time {name} {id}");
        if !in_db.contains_key(id) {
            report
                .missing
                .push(format!("{label}: acknowledged, but not in the database"));
            continue;
        }
        let occurrences = by_job.get(id).unwrap_or(&empty);
        let instants: Vec<DateTime<Utc>> = occurrences.keys().copied().collect();
        let at = match (at, instants.as_slice()) {
            (Some(at), _) => *at,
            (None, [only]) => *only,
            (None, []) => {
                report.one_time += 1;
                report.missing.push(format!("{label}: never ran"));
                continue;
            }
            (None, [first, ..]) => *first,
        };
        for other in instants.iter().filter(|t| **t != at) {
            report.unexpected.push(format!(
                "{label}: ran for {} (owed only {}): {}",
                rfc3339(*other),
                rfc3339(at),
                describe(&occurrences[other])
            ));
        }
        owed.push((label, *id, at, Expect::Success));
    }
    report.one_time += owed.len();

    // Recurring jobs: the occurrences up to the cutoff.
    for plan in &ledger.cron {
        let occurrences = by_job.get(&plan.id).unwrap_or(&empty);
        let chain = cron_owed(plan, occurrences, cutoff);
        let chained: BTreeSet<DateTime<Utc>> = chain.iter().map(|(s, _)| *s).collect();
        for (s, rows) in occurrences.range(..=cutoff) {
            if !chained.contains(s) && s >= &plan.first {
                report.unexpected.push(format!(
                    "{} {} at {}: not owed (the {} chain passes over it): {}",
                    plan.name,
                    plan.id,
                    rfc3339(*s),
                    plan.policy.as_str(),
                    describe(rows)
                ));
            }
        }
        report.cron += chain.len();
        for (s, expect) in chain {
            owed.push((format!("{} {}", plan.name, plan.id), plan.id, s, expect));
        }
    }

    for (label, id, at, expect) in &owed {
        let rows: &[&Row] = by_job
            .get(id)
            .and_then(|o| o.get(at))
            .map_or(&[], Vec::as_slice);
        report.rows += rows.len();
        let what = format!("{label} at {}", rfc3339(*at));
        let successes = rows.iter().filter(|r| r.status == "success").count();
        match expect {
            Expect::Success if successes == 0 => {
                report.missing.push(format!("{what}: {}", describe(rows)));
            }
            Expect::Success if successes > 1 => {
                report
                    .duplicated
                    .push(format!("{what}: {successes} successes {}", describe(rows)));
            }
            Expect::Success => {}
            Expect::Skipped => {
                if successes > 0 {
                    report.unexpected.push(format!(
                        "{what}: ran though its missed policy skips it: {}",
                        describe(rows)
                    ));
                } else if !rows.iter().any(|r| r.status == "cancelled") {
                    report
                        .missing
                        .push(format!("{what}: no cancelled record: {}", describe(rows)));
                }
            }
        }
        if rows.iter().any(|r| r.open()) {
            report.open.push(format!("{what}: {}", describe(rows)));
        }
        if rows.iter().any(|r| r.manual) {
            report
                .unexpected
                .push(format!("{what}: a manual run: {}", describe(rows)));
        }
        if rows.len() > 1 || rows.iter().any(|r| r.interrupted()) {
            report
                .redeliveries
                .push(format!("{what}: {}", describe(rows)));
        }
    }
    report
}

/// Polls the database until every occurrence owed up to `cutoff` has settled (or
/// `within` has passed); the reconciliation.
pub async fn settle(
    pool: &PgPool,
    ledger: &Mutex<Ledger>,
    cutoff: DateTime<Utc>,
    within: Duration,
) -> Report {
    let deadline = Instant::now() + within;
    let ledger = ledger.lock().unwrap().clone();
    loop {
        match load(pool).await {
            Ok((rows, jobs)) => {
                let report = reconcile(&ledger, &rows, &jobs, cutoff);
                if report.settled() || Instant::now() >= deadline {
                    return report;
                }
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "the database did not answer within {within:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------
// Servers a scenario owns

/// The uid this test runs as (`id -u`).
fn uid() -> Option<u32> {
    let out = Command::new("id").arg("-u").output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// A private `redis-server` (no persistence) on a free port, a child of the test:
/// it can be flushed, killed and started again on the same port. Killed when dropped.
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    server: Option<Proc>,
    starts: u32,
}

impl PrivateRedis {
    /// Starts one, or skips the test when `redis-server` is not installed.
    pub async fn start() -> PrivateRedis {
        if let Err(e) = Command::new("redis-server").arg("--version").output() {
            chronos::testkit::skip("redis-server (the binary)", &e);
        }
        let mut redis = PrivateRedis {
            port: free_port(),
            server: None,
            starts: 0,
        };
        redis.restart().await;
        redis
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers PING.
    pub async fn restart(&mut self) {
        assert!(self.server.is_none(), "redis-server is running");
        self.starts += 1;
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ])
        .current_dir(std::env::temp_dir());
        let mut server = Proc::spawn(&format!("redis-server-{}", self.starts), cmd);
        server
            .poll(START_WITHIN, "did not answer", async |_: &Proc| {
                self.ping().await.ok()
            })
            .await;
        self.server = Some(server);
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        client.get_multiplexed_async_connection().await
    }

    async fn ping(&self) -> redis::RedisResult<String> {
        let mut conn = self.connection().await?;
        redis::cmd("PING").query_async(&mut conn).await
    }

    /// `FLUSHALL`: every key is gone.
    pub async fn flushall(&self) {
        let mut conn = self.connection().await.unwrap();
        let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    }

    /// How many keys it holds.
    pub async fn dbsize(&self) -> u64 {
        let mut conn = self.connection().await.unwrap();
        redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap()
    }

    /// SIGKILL: the server is gone, with whatever it held.
    pub async fn kill(&mut self) {
        let mut server = self.server.take().expect("redis-server is running");
        server.kill9().await;
    }
}

/// A private PostgreSQL cluster (`initdb` in a temporary directory, trust auth, on a
/// free port, no fsync), so a scenario can stop and restart it without touching the
/// shared server. Stopped and deleted when dropped, also when the test fails.
pub struct PrivatePg {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

impl PrivatePg {
    /// `initdb` and start, or skips the test when PostgreSQL's server binaries are not
    /// installed (`/usr/lib/postgresql/<version>/bin`, or `pg_ctl` on the `PATH`).
    pub async fn create() -> PrivatePg {
        let Some(bin) = Self::find_bin() else {
            chronos::testkit::skip(
                "PostgreSQL's server binaries (initdb, pg_ctl)",
                &"not in /usr/lib/postgresql/*/bin nor next to pg_ctl on the PATH",
            );
        };
        let as_postgres = uid() == Some(0);
        let dir =
            std::env::temp_dir().join(format!("chronos-chaos-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        let pg = PrivatePg {
            port: free_port(),
            dir,
            bin,
            as_postgres,
        };
        if as_postgres {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            pg.run("chown", &["-R", "postgres:postgres", &pg.dir_str()], false);
        }
        let data = pg.data();
        let initdb = pg.bin.join("initdb").to_string_lossy().into_owned();
        pg.run(
            &initdb,
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            true,
        );
        pg.start();
        pg
    }

    fn find_bin() -> Option<PathBuf> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Some(bin);
        }
        let out = Command::new("sh")
            .args(["-c", "command -v pg_ctl"])
            .output()
            .ok()?;
        let pg_ctl = std::fs::canonicalize(String::from_utf8(out.stdout).ok()?.trim()).ok()?;
        let bin = pg_ctl.parent()?.to_path_buf();
        bin.join("initdb").exists().then_some(bin)
    }

    fn dir_str(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn log_file(&self) -> String {
        self.dir.join("server.log").to_string_lossy().into_owned()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Runs `program args` (as `postgres` when `as_postgres` and this test is root);
    /// panics with its output when it fails.
    fn run(&self, program: &str, args: &[&str], as_postgres: bool) {
        let out = self
            .command(program, as_postgres)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// `program`, run as `postgres` when `as_postgres` and this test is root.
    fn command(&self, program: impl AsRef<OsStr>, as_postgres: bool) -> Command {
        if as_postgres && self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl").to_string_lossy().into_owned();
        let data = self.data();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        self.run(&pg_ctl, &all, true);
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir_str()
        );
        let log = self.log_file();
        self.pg_ctl(&["-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
    }

    /// Stops the server at once (`-m immediate`: no shutdown checkpoint, connections cut).
    pub fn stop_immediate(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_tail("private PostgreSQL", &self.log());
        }
        let _ = self
            .command(self.bin.join("pg_ctl"), true)
            .args(["-D", self.data().as_str(), "-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
