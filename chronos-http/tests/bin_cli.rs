#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]
//! The real `chronos` binary: `cron next`, `--help`, configuration errors, `serve`
//! on the embedded default and on PostgreSQL + Redis with a graceful SIGTERM,
//! `worker`, and `migrate` against a fresh database.

use std::borrow::BorrowMut;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chronos_postgres::testing::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_chronos");

/// A command with none of the configuration of the test's own environment, run in
/// an empty directory (no `.env`).
fn chronos(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(std::env::temp_dir());
    for var in chronos_http::config::VARIABLES {
        cmd.env_remove(var);
    }
    cmd.env("LOG_LEVEL", "info");
    cmd
}

fn output(mut cmd: impl BorrowMut<Command>) -> Output {
    cmd.borrow_mut().stdin(Stdio::null()).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn lines(o: &Output) -> Vec<String> {
    stdout(o).lines().map(str::to_owned).collect()
}

#[test]
fn cron_next_in_utc_and_zones() {
    let o = output(chronos(&[
        "cron",
        "next",
        "0 9 * * 1-5",
        "--after",
        "2026-11-27T10:00:00Z",
        "--count",
        "3",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lines(&o),
        [
            "2026-11-30T09:00:00Z",
            "2026-12-01T09:00:00Z",
            "2026-12-02T09:00:00Z"
        ]
    );

    let o = output(chronos(&[
        "cron",
        "next",
        "@daily",
        "--tz",
        "America/New_York",
        "--after",
        "2026-01-01T00:00:00Z",
        "--count",
        "2",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lines(&o),
        ["2026-01-01T00:00:00-05:00", "2026-01-02T00:00:00-05:00"]
    );

    // Six fields, seconds first; the default count is 5.
    let o = output(chronos(&[
        "cron",
        "next",
        "*/15 * * * * *",
        "--after",
        "2026-01-01T00:00:00+00:00",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lines(&o),
        [
            "2026-01-01T00:00:15Z",
            "2026-01-01T00:00:30Z",
            "2026-01-01T00:00:45Z",
            "2026-01-01T00:01:00Z",
            "2026-01-01T00:01:15Z"
        ]
    );
}

#[test]
fn cron_next_on_dst_days() {
    // Berlin springs forward on 2026-03-29 (02:00 → 03:00): a fixed-time job at 02:30
    // fires once, at 03:00.
    let o = output(chronos(&[
        "cron",
        "next",
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-03-28T12:00:00Z",
        "--count",
        "3",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lines(&o),
        [
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00"
        ]
    );

    // Berlin falls back on 2026-10-25 (03:00 → 02:00): the fixed-time job fires in the
    // first pass only; one that follows absolute time fires in both.
    let o = output(chronos(&[
        "cron",
        "next",
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-10-24T23:00:00Z",
        "--count",
        "2",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lines(&o),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
    let o = output(chronos(&[
        "cron",
        "next",
        "*/30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-10-24T23:00:00Z",
        "--count",
        "4",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lines(&o),
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:30:00+01:00"
        ]
    );
}

#[test]
fn cron_next_refuses_bad_input_with_the_reason() {
    for (args, reason) in [
        (vec!["61 * * * *"], "minute"),
        (vec!["* * *"], "invalid cron expression"),
        (vec!["0 9 * * *", "--tz", "Mars/Olympus"], "time zone"),
        (vec!["0 9 * * *", "--after", "yesterday"], "--after"),
        (vec!["0 9 * * *", "--count", "0"], "--count"),
    ] {
        let mut all = vec!["cron", "next"];
        all.extend(args.iter().copied());
        let o = output(chronos(&all));
        assert!(!o.status.success(), "{all:?}");
        assert_eq!(o.status.code(), Some(2), "{all:?}");
        assert!(stdout(&o).is_empty(), "{all:?}");
        let err = stderr(&o);
        assert!(err.contains(reason), "{all:?}: {err}");
    }
}

#[test]
fn help_for_every_command() {
    for (args, expect) in [
        (vec!["--help"], "serve"),
        (
            vec!["serve", "--help"],
            "API, the scheduler and the workers",
        ),
        (vec!["api", "--help"], "HTTP API only"),
        (vec!["worker", "--help"], "no HTTP"),
        (vec!["migrate", "--help"], "migrations"),
        (vec!["cron", "--help"], "next"),
        (vec!["cron", "next", "--help"], "--tz"),
    ] {
        let o = output(chronos(&args));
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains(expect), "{args:?}: {}", stdout(&o));
    }
    let o = output(chronos(&["--version"]));
    assert!(stdout(&o).contains(env!("CARGO_PKG_VERSION")));
    let o = output(chronos(&["frobnicate"]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    for (var, value) in [
        ("PORT", "eighty"),
        ("WORKER_CONCURRENCY", "0"),
        ("LOG_FORMAT", "yaml"),
        ("DATABASE_URL", "mysql://x/y"),
        ("JWT_SECRET", "too-short"),
    ] {
        let o = output(chronos(&["serve"]).env(var, value));
        assert_eq!(o.status.code(), Some(2), "{var}={value}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(var), "{var}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let o = output(chronos(&["serve"]).env("CHRONOS_ENV", "production"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("JWT_SECRET"), "{}", stderr(&o));
}

#[test]
fn api_worker_and_migrate_need_a_database() {
    for cmd in ["api", "worker", "migrate"] {
        let o = output(chronos(&[cmd]));
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = stderr(&o);
        assert!(err.contains("DATABASE_URL"), "{cmd}: {err}");
    }
}

/// A running `chronos` process whose stderr is collected.
struct Running {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Running {
    fn start(cmd: &mut Command) -> Running {
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
        Running { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait_for_log(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "exited ({status}) before logging {needle:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no {needle:?} within {within:?}:\n{}", self.log());
    }

    /// SIGTERM, then the exit code (bounded).
    fn terminate(mut self, within: Duration) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the pipe.
                std::thread::sleep(Duration::from_millis(50));
                return (status.code(), self.log());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("still running {within:?} after SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_healthy(base: &str, within: Duration) -> serde_json::Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = client.get(format!("{base}/health")).send().await
            && r.status() == 200
        {
            return r.json().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no healthy answer within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_embedded_answers_and_stops_on_sigterm() {
    let port = free_port();
    let running = Running::start(
        chronos(&[])
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("SHUTDOWN_GRACE_SECS", "2"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let health = wait_healthy(&base, Duration::from_secs(30)).await;
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["services"]["database"]["backend"], "memory");
    assert_eq!(health["services"]["queue"]["backend"], "memory");
    assert_eq!(health["services"]["redis"]["status"], "not_configured");
    assert_eq!(health["system"]["role"], "serve");

    let client = reqwest::Client::new();
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("chronos_http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/health""#), "{text}");
    assert!(text.contains("chronos_queue_entries"), "{text}");

    let doc: serde_json::Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/jobs"].is_object());
    let docs = client.get(format!("{base}/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("/openapi.json"));

    // The API itself is mounted: unauthenticated → 401 in the documented shape.
    let r = client
        .get(format!("{base}/api/v1/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let log = running.log();
    assert!(log.contains("IN-MEMORY"), "{log}");
    assert!(log.contains("JWT_SECRET is not set"), "{log}");
    assert!(log.contains("failure emails are disabled"), "{log}");

    let (code, log) = running.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn serve_refuses_a_taken_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let o = output(
        chronos(&["serve"])
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot listen"), "{}", stderr(&o));
}

/// The URL of a test database.
fn database_url(db: &TestDb) -> String {
    let base = std::env::var("CHRONOS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| chronos_postgres::testing::DEFAULT_TEST_URL.to_owned());
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&db.name);
    url.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_runs_the_migrations_and_exits() {
    let db = TestDb::create_empty().await;
    let url = database_url(&db);
    let o = output(chronos(&["migrate"]).env("DATABASE_URL", &url));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("migrations applied"));
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(applied >= 1);
    // Twice is harmless.
    let o = output(chronos(&["migrate"]).env("DATABASE_URL", &url));
    assert!(o.status.success(), "{}", stderr(&o));
    // A database that cannot be reached: exit 1, the reason on stderr, no password.
    let o = output(chronos(&["migrate"]).env("DATABASE_URL", "postgres://u:hunter2@127.0.0.1:1/x"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("PostgreSQL"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_on_postgres_and_redis_then_worker() {
    let db = TestDb::create_empty().await;
    let redis_url = chronos_redis::testing::redis_url();
    if redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .is_err()
    {
        chronos::testkit::skip("Redis", &"unreachable");
    }
    let url = database_url(&db);
    let port = free_port();
    let running = Running::start(
        chronos(&["serve"])
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("DATABASE_URL", &url)
            .env("REDIS_URL", &redis_url)
            .env("LOG_FORMAT", "json")
            .env("JWT_SECRET", "a-test-secret-of-at-least-32-bytes!!"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let health = wait_healthy(&base, Duration::from_secs(30)).await;
    assert_eq!(health["services"]["database"]["status"], "healthy");
    assert_eq!(health["services"]["database"]["backend"], "postgresql");
    assert_eq!(health["services"]["redis"]["status"], "healthy");
    assert_eq!(health["services"]["queue"]["backend"], "redis");
    assert!(health["services"]["database"]["latency_ms"].is_number());
    assert!(health["services"]["queue"]["metrics"]["total"].is_number());
    let log = running.log();
    assert!(!log.contains("IN-MEMORY"), "{log}");
    assert!(log.lines().any(|l| l.starts_with('{')), "json logs: {log}");
    let (code, log) = running.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{log}");

    // The serve process migrated the database; a worker runs on it without HTTP.
    let mut worker = Running::start(
        chronos(&["worker"])
            .env("DATABASE_URL", &url)
            .env("RUN_MIGRATIONS", "false"),
    );
    worker.wait_for_log("scheduler started", Duration::from_secs(30));
    let (code, log) = worker.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("role=worker") || log.contains("worker"),
        "{log}"
    );
    db.drop_now().await;
}
