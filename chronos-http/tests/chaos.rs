#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]
//! The chaos suite: the real `chronos` binary on PostgreSQL and Redis, broken on
//! purpose while a steady stream of immediate, delayed (a few seconds ahead) and
//! every-second cron jobs is created over HTTP. Each scenario ends with the same
//! reconciliation ([`chaos_support::reconcile`]): from what was scheduled (the one-time
//! jobs the API acknowledged or the database holds, and the occurrences each cron job
//! owes up to a cutoff under its missed policy) and the rows of `job_executions`, the
//! number of successful executions per occurrence `(job_id, scheduled_for)` must be
//! exactly one: nothing `missing`, nothing `duplicated`. Re-deliveries (attempts
//! abandoned by a vanished worker or cancelled by a shutdown, occurrences with several
//! rows) are allowed and listed.
//!
//! 1. `kill -9` of one of two workers while jobs run: its attempts are abandoned when
//!    their 2 s leases lapse and run again on the other worker (and a replacement).
//! 2. A private Redis flushed (`FLUSHALL`), then killed and started again, empty: the
//!    safety sync (every second) rebuilds the queue from PostgreSQL.
//! 3. A private PostgreSQL cluster stopped (`-m immediate`) and started again: `/health`
//!    answers 503 naming the database meanwhile and 200 afterwards, without restarting
//!    any `chronos` process.
//! 4. SIGTERM to `serve` under a load of concurrent requests and running jobs: every
//!    answer is complete and valid, the process exits 0 within its grace period,
//!    running attempts finish or are recorded `cancelled` and queued again, and a new
//!    `serve` on the same database runs what is owed.
//! 5. A clock jump of three hours (in process: the engine on `PgStore` and
//!    `RedisQueue` with a `ManualClock`): each missed policy, exactly.
//!
//! A last test, without services, checks that the reconciliation itself finds a lost
//! one-time job, a doubled run, a lost cron occurrence and an unowed one.
//!
//! Recurring occurrences under the default `coalesce` policy: an occurrence claimed
//! late (after the next one was due) stands for the ones it passed, so what is owed
//! is the chain the engine builds from each claim's instant; see `cron_owed` in the
//! support module.
//!
//! Scenarios 1, 4 and 5 use the shared servers (a fresh database with `TestDb`, a
//! fresh Redis prefix with `TestRedis`); 2 and 3 own the server they break (a
//! `redis-server` child on a free port; a cluster made with `initdb` in a temporary
//! directory, as user `postgres` when the test runs as root). Without a service or
//! binary the tests skip loudly, and fail under `CHRONOS_REQUIRE_SERVICES=1`. Every
//! wait has a deadline; every process and private server is stopped when a test
//! fails, and the last lines of its log are printed. To debug, set `CHAOS_LOG_LEVEL`
//! (the processes' `LOG_LEVEL`) and `CHAOS_LOG_DIR` (receives the full logs of a
//! failed run). Run alone: `cargo test -p chronos-http --test chaos`.

mod chaos_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chronos::clock::{Clock, ManualClock};
use chronos::model::MissedPolicy;
use chronos::{Chronos, JobSpec};
use chronos_postgres::PgStore;
use chronos_postgres::testing::TestDb;
use chronos_redis::testing::TestRedis;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use chaos_support::{
    Api, Cluster, CronPlan, Ledger, OneTime, PrivatePg, PrivateRedis, Proc, Row, SETTLE_WITHIN,
    STOP_WITHIN, StreamSpec, chronos_env, free_port, load as load_rows, poll_until, reconcile,
    rfc3339, settle, shared_database_url, shared_redis_env, two_crons, with,
};

/// Polls `sql` (a `SELECT count(*)` with `$1`) until it reaches `want`.
async fn until_count(pool: &PgPool, sql: &'static str, bind: &str, want: i64, within: Duration) {
    poll_until(within, async || {
        let n: i64 = sqlx::query_scalar(sql)
            .bind(bind)
            .fetch_one(pool)
            .await
            .unwrap();
        if n >= want {
            return Ok(());
        }
        Err(format!("{sql} [{bind}]: {n} of {want} within {within:?}"))
    })
    .await;
}

// ---------------------------------------------------------------------------------
// 1. kill -9

#[test]
fn kill_9_of_a_worker_mid_jobs_loses_and_doubles_nothing() {
    chronos::testkit::run(async {
        let began = Instant::now();
        let redis = TestRedis::connect().await;
        let db = TestDb::create().await;
        let env = shared_redis_env(&shared_database_url(&db.name), &redis);
        let sleep_300 = json!({"ms": 300});
        let spec = StreamSpec {
            tag: "kill9",
            handler: "sleep",
            payload: sleep_300.clone(),
            every: Duration::from_millis(100),
            delay_ms: (1500, 3000),
        };
        let mut cluster = Cluster::start(env, 2, ("sleep", sleep_300), spec).await;
        eprintln!("{:?}: 3 processes up, stream started", began.elapsed());
        tokio::time::sleep(Duration::from_secs(2)).await;

        // SIGKILL worker-1 while an attempt it started less than 100 ms ago runs (a
        // 300 ms sleep: it is surely still running when the signal lands).
        let mut w1 = cluster.workers.remove(0);
        let w1_id = format!("chaos-w1-{}-%", w1.pid());
        until_count(
            &db.pool,
            "SELECT count(*) FROM job_executions WHERE status = 'running' AND worker LIKE $1 \
             AND execution_time > now() - interval '100 milliseconds'",
            &w1_id,
            1,
            Duration::from_secs(15),
        )
        .await;
        w1.kill9().await;
        let killed_at = Utc::now();
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_executions WHERE status = 'running' AND worker LIKE $1",
        )
        .bind(&w1_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        eprintln!(
            "{:?}: worker-1 killed at {} with {running} attempts running",
            began.elapsed(),
            rfc3339(killed_at)
        );

        // The stream goes on; a replacement worker joins after 2 s.
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.add_worker(3).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.settle_clean(&db.pool, began).await;

        // What worker-1 was running when it died was abandoned, and ran again elsewhere
        // (each such occurrence has its one success: the report is clean).
        let (rows, _) = load_rows(&db.pool).await.unwrap();
        let of_w1: Vec<&Row> = rows
            .iter()
            .filter(|r| {
                r.worker
                    .as_deref()
                    .is_some_and(|w| w.starts_with(&w1_id[..w1_id.len() - 1]))
            })
            .collect();
        let abandoned: Vec<&&Row> = of_w1.iter().filter(|r| r.interrupted()).collect();
        assert!(
            of_w1.iter().all(|r| r.status != "running"),
            "worker-1's attempts left running: {of_w1:?}"
        );
        assert!(
            !abandoned.is_empty() && abandoned.len() as i64 >= running,
            "{running} attempts were running on worker-1 when it died; abandoned: {abandoned:?}"
        );
        let redelivered: BTreeSet<(Uuid, DateTime<Utc>)> = abandoned
            .iter()
            .map(|r| (r.job_id, r.scheduled_for))
            .collect();
        for (job, at) in &redelivered {
            let again = rows.iter().any(|r| {
                r.job_id == *job
                    && r.scheduled_for == *at
                    && r.status == "success"
                    && !r
                        .worker
                        .as_deref()
                        .unwrap_or_default()
                        .starts_with("chaos-w1-")
            });
            assert!(
                again,
                "{job} at {at}: abandoned on worker-1, never run again"
            );
        }
        eprintln!(
            "{} attempts of worker-1 abandoned and delivered again",
            abandoned.len()
        );

        cluster.stop().await;
        eprintln!("{:?}: done", began.elapsed());
    });
}

// ---------------------------------------------------------------------------------
// 2. Redis flushed and restarted

/// The stream of scenarios 2 and 3 (their `tag` aside): 200 ms `sleep` jobs every
/// 100 ms, the delayed ones 1.5–4 s ahead.
fn pg_or_redis_stream() -> StreamSpec {
    StreamSpec {
        tag: "",
        handler: "sleep",
        payload: json!({"ms": 200}),
        every: Duration::from_millis(100),
        delay_ms: (1500, 4000),
    }
}

#[test]
fn redis_flushed_and_restarted_mid_run_loses_and_doubles_nothing() {
    chronos::testkit::run(async {
        let began = Instant::now();
        let db = TestDb::create().await;
        let mut redis = PrivateRedis::start().await;
        let env = chronos_env(&shared_database_url(&db.name), &redis.url(), "chaos");
        let spec = StreamSpec {
            tag: "redis",
            ..pg_or_redis_stream()
        };
        let mut cluster = Cluster::start(env, 2, ("echo", json!({})), spec).await;
        tokio::time::sleep(Duration::from_secs(3)).await;

        // Everything Redis holds is lost, then Redis itself, for a second.
        cluster.outages.begin();
        let keys = redis.dbsize().await;
        redis.flushall().await;
        eprintln!(
            "{:?}: FLUSHALL ({keys} keys, delayed entries among them)",
            began.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        redis.kill().await;
        eprintln!("{:?}: redis-server killed", began.elapsed());
        tokio::time::sleep(Duration::from_secs(1)).await;
        redis.restart().await;
        eprintln!("{:?}: redis-server started again, empty", began.elapsed());
        cluster
            .until_health(Duration::from_secs(20), "200 again", |status, _| {
                status == 200
            })
            .await;
        cluster.outages.end();
        eprintln!("{:?}: healthy again", began.elapsed());

        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.settle_clean(&db.pool, began).await;

        // The queue was rebuilt from the store by the safety sync.
        let repaired = cluster
            .workers
            .iter()
            .any(|w| w.log().contains("safety sync repaired the queue"));
        assert!(repaired, "no safety sync repaired the queue");

        cluster.stop().await;
        eprintln!("{:?}: done", began.elapsed());
    });
}

// ---------------------------------------------------------------------------------
// 3. PostgreSQL restarted

#[test]
fn postgres_restarted_mid_run_is_reported_and_loses_and_doubles_nothing() {
    chronos::testkit::run(async {
        let began = Instant::now();
        let redis = TestRedis::connect().await;
        let pg = PrivatePg::create().await;
        eprintln!(
            "{:?}: private PostgreSQL on port {}",
            began.elapsed(),
            pg.port
        );
        let env = shared_redis_env(&pg.url(), &redis);
        let spec = StreamSpec {
            tag: "pg",
            ..pg_or_redis_stream()
        };
        let mut cluster = Cluster::start(env, 1, ("echo", json!({})), spec).await;
        let pids = |c: &Cluster| (c.api_proc.pid(), c.workers[0].pid());
        let started_as = pids(&cluster);
        tokio::time::sleep(Duration::from_secs(3)).await;

        // PostgreSQL goes away at once: /health says so, naming the database.
        cluster.outages.begin();
        pg.stop_immediate();
        eprintln!("{:?}: PostgreSQL stopped (immediate)", began.elapsed());
        let down = cluster
            .until_health(
                Duration::from_secs(10),
                "503 naming the database",
                |status, _| status == 503,
            )
            .await;
        assert_eq!(down["success"], false, "{down}");
        assert_eq!(down["status"], "unhealthy", "{down}");
        assert_eq!(down["error"], true, "{down}");
        assert_eq!(down["code"], "SERVICE_UNAVAILABLE", "{down}");
        let message = down["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("unhealthy: ") && message.contains("database"),
            "{down}"
        );
        assert_eq!(
            down["services"]["database"]["status"], "unhealthy",
            "{down}"
        );
        assert!(down["services"]["database"]["error"].is_string(), "{down}");
        assert_eq!(down["services"]["redis"]["status"], "healthy", "{down}");
        eprintln!("{:?}: /health 503: {message}", began.elapsed());
        // The outage lasts longer than a lease (2 s): workers and API meet it.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        pg.start();
        eprintln!("{:?}: PostgreSQL started again", began.elapsed());
        let up = cluster
            .until_health(Duration::from_secs(30), "200 again", |status, _| {
                status == 200
            })
            .await;
        assert_eq!(up["services"]["database"]["status"], "healthy", "{up}");
        cluster.outages.end();
        eprintln!("{:?}: /health 200 again", began.elapsed());

        tokio::time::sleep(Duration::from_secs(3)).await;
        let pool = chronos_postgres::connect(&pg.url()).await.unwrap();
        cluster.settle_clean(&pool, began).await;
        pool.close().await;

        // The same processes throughout: none was restarted.
        for p in cluster.procs() {
            p.assert_running();
        }
        assert_eq!(pids(&cluster), started_as);
        cluster.stop().await;
        eprintln!("{:?}: done", began.elapsed());
    });
}

// ---------------------------------------------------------------------------------
// 4. SIGTERM under load

/// How one request of the load ended.
#[derive(Debug)]
enum Outcome {
    /// A complete answer: status, and whether the body is what the route promises.
    Answered { status: u16, valid: bool },
    /// The connection was refused: nothing listens any more.
    Refused,
    /// No answer at all: the connection closed or failed before the status line.
    NoAnswer(String),
    /// The status line came, then the body broke off or was not JSON.
    Incomplete(String),
}

/// One request of the load.
#[derive(Debug)]
struct Request {
    /// The job a create asked for (its name); `None` for a list.
    create: Option<String>,
    started: Instant,
    ended: Instant,
    outcome: Outcome,
}

/// What a load request does.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Creates an immediate job running `sleep` 500 ms.
    Sleep,
    /// Creates an immediate `echo` job.
    Immediate,
    /// Creates an `echo` job 2–4 s ahead.
    Delayed,
    /// Lists jobs.
    List,
}

/// A client that opens a fresh connection per request (so that a request is never
/// sent on a connection the server is closing).
fn load_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Sends one request of the load; a create answered 201 goes into the ledger.
async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    kind: Kind,
    name: String,
    ledger: &Mutex<Ledger>,
) -> Request {
    let mut at = None;
    let (request, create) = if let Kind::List = kind {
        let url = format!("{base}/api/v1/jobs?limit=20&sort_by=created_at&sort_order=desc");
        (http.get(url).bearer_auth(token), None)
    } else {
        let mut job = json!({
            "name": name,
            "job_type": "one-time",
            "schedule_type": "immediate",
            "handler": "echo",
            "payload": {},
        });
        if let Kind::Sleep = kind {
            job["handler"] = "sleep".into();
            job["payload"] = json!({"ms": 500});
        }
        if let Kind::Delayed = kind {
            let ahead = 2000 + i64::from(Uuid::new_v4().as_bytes()[0]) * 8;
            let t = Utc::now() + chrono::Duration::milliseconds(ahead);
            job["schedule_type"] = "scheduled".into();
            job["scheduled_time"] = rfc3339(t).into();
            at = Some(t);
        }
        let url = format!("{base}/api/v1/jobs");
        (http.post(url).bearer_auth(token).json(&job), Some(name))
    };
    let started = Instant::now();
    let outcome = match request.send().await {
        Err(e) if e.is_connect() => Outcome::Refused,
        Err(e) => Outcome::NoAnswer(format!("{e:?}")),
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Err(e) => Outcome::Incomplete(format!("{status}: {e:?}")),
                Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                    Err(e) => Outcome::Incomplete(format!(
                        "{status}: {e}: {}",
                        String::from_utf8_lossy(&bytes)
                    )),
                    Ok(body) => {
                        let valid = match &create {
                            None => status == 200 && body["data"]["jobs"].is_array(),
                            Some(name) => {
                                let id = body["data"]["id"]
                                    .as_str()
                                    .and_then(|s| s.parse::<Uuid>().ok());
                                let scheduled = body["data"]["scheduled_time"]
                                    .as_str()
                                    .and_then(|s| s.parse::<DateTime<Utc>>().ok());
                                match (status, id) {
                                    (201, Some(id)) if at.is_none() || scheduled.is_some() => {
                                        let job = OneTime {
                                            name: name.clone(),
                                            at: at.and(scheduled),
                                        };
                                        ledger.lock().unwrap().one_time.insert(id, job);
                                        true
                                    }
                                    _ => false,
                                }
                            }
                        };
                        if !valid {
                            eprintln!("invalid answer {status}: {body}");
                        }
                        Outcome::Answered { status, valid }
                    }
                },
            }
        }
    };
    Request {
        create,
        started,
        ended: Instant::now(),
        outcome,
    }
}

/// Eight tasks sending requests in a loop until `stop`: one creating immediate 500 ms
/// `sleep` jobs (`echo` jobs unless `sleepers`), three immediate `echo` jobs, two
/// delayed `echo` jobs, two listing.
fn start_load(
    base: &str,
    token: &str,
    tag: &'static str,
    sleepers: bool,
    ledger: &Arc<Mutex<Ledger>>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Request>>> {
    (0..8)
        .map(|task| {
            let (base, token, ledger, stop) = (
                base.to_owned(),
                token.to_owned(),
                ledger.clone(),
                stop.clone(),
            );
            let kind = match task {
                0 if sleepers => Kind::Sleep,
                0..=3 => Kind::Immediate,
                4 | 5 => Kind::Delayed,
                _ => Kind::List,
            };
            tokio::spawn(async move {
                let http = load_client();
                let mut done = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let name = format!("{tag}-{task}-{n}");
                    let request = send(&http, &base, &token, kind, name, &ledger).await;
                    let refused = matches!(request.outcome, Outcome::Refused);
                    done.push(request);
                    n += 1;
                    let pause = if refused || task == 0 { 100 } else { 30 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                done
            })
        })
        .collect()
}

/// How many requests are sent at once just before a SIGTERM: more than the database
/// pool of `serve` holds (10), so that some of them wait for a connection when the
/// signal lands.
const BURST: usize = 40;

/// SIGTERM to `serve` while the load runs and a burst of [`BURST`] more requests is on
/// its way: `serve` must exit 0 within its grace period. Then the load stops; every
/// request made, and when the signal was sent.
async fn sigterm_under_load(
    serve: &mut Proc,
    api: &Api,
    token: &str,
    tag: &'static str,
    ledger: &Arc<Mutex<Ledger>>,
    load: Vec<tokio::task::JoinHandle<Vec<Request>>>,
    stop: &AtomicBool,
) -> (Vec<Request>, Instant) {
    let burst: Vec<_> = (0..BURST)
        .map(|i| {
            let (base, token, ledger) = (api.base.clone(), token.to_owned(), ledger.clone());
            let kind = if i % 4 == 3 {
                Kind::List
            } else {
                Kind::Immediate
            };
            tokio::spawn(async move {
                let name = format!("{tag}-burst-{i}");
                send(&load_client(), &base, &token, kind, name, &ledger).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(3)).await;
    let signalled = Instant::now();
    serve.signal("TERM");
    let (code, log) = serve.exited(STOP_WITHIN).await;
    assert_eq!(code, Some(0), "{} after SIGTERM:\n{log}", serve.name);
    assert!(log.contains("SIGTERM") && log.contains("stopped"), "{log}");
    eprintln!(
        "{} exited 0, {:?} after SIGTERM",
        serve.name,
        signalled.elapsed()
    );
    // Until the load has met the closed door.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut requests = Vec::new();
    for task in burst {
        requests.push(task.await.unwrap());
    }
    for task in load {
        let done = tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("the load stops")
            .unwrap();
        requests.extend(done);
    }
    (requests, signalled)
}

/// The HTTP side of a SIGTERM: every answer complete and valid, nothing failed before
/// the signal, and every create that took effect (a job of that name exists) was
/// answered 201. Panics with the problems.
async fn check_answers(requests: &[Request], signalled: Instant, pool: &PgPool, tag: &str) {
    // When a request started and ended, relative to the signal.
    let when = |r: &Request| {
        let at = |t: Instant| {
            if t < signalled {
                format!("{:?} before", signalled - t)
            } else {
                format!("{:?} after", t - signalled)
            }
        };
        format!(
            "started {}, ended {} the signal",
            at(r.started),
            at(r.ended)
        )
    };
    let mut problems = Vec::new();
    let (mut before, mut after, mut refused, mut no_answer) = (0, 0, 0, 0);
    let mut acknowledged = BTreeSet::new();
    for r in requests {
        let what = r.create.as_deref().unwrap_or("list");
        match &r.outcome {
            Outcome::Answered { status, valid } => {
                if r.ended < signalled {
                    before += 1;
                } else {
                    after += 1;
                }
                if !valid {
                    problems.push(format!("{what} ({}): invalid answer {status}", when(r)));
                } else if let Some(name) = &r.create {
                    acknowledged.insert(name.clone());
                }
            }
            Outcome::Incomplete(e) => {
                problems.push(format!("{what} ({}): incomplete answer: {e}", when(r)));
            }
            outcome if r.ended < signalled => {
                problems.push(format!("{what} ({}): {outcome:?}", when(r)));
            }
            Outcome::Refused => refused += 1,
            Outcome::NoAnswer(e) => {
                no_answer += 1;
                eprintln!("no answer ({}): {what}: {e}", when(r));
            }
        }
    }
    let names: Vec<String> = sqlx::query_scalar("SELECT name::text FROM jobs WHERE name LIKE $1")
        .bind(format!("{tag}-%"))
        .fetch_all(pool)
        .await
        .unwrap();
    for name in names {
        if !acknowledged.contains(&name) {
            let outcome = requests
                .iter()
                .find(|r| r.create.as_deref() == Some(name.as_str()))
                .map(|r| &r.outcome);
            problems.push(format!("{name}: stored, but its create got {outcome:?}"));
        }
    }
    eprintln!(
        "{} requests: {before} answered before the signal, {after} after it, {refused} \
         refused, {no_answer} without an answer (and without effect: never accepted)",
        requests.len()
    );
    assert!(
        problems.is_empty(),
        "HTTP under SIGTERM:\n{}",
        problems.join("\n")
    );
}

#[test]
fn sigterm_under_load_answers_every_accepted_request_and_loses_nothing() {
    chronos::testkit::run(async {
        let began = Instant::now();
        let redis = TestRedis::connect().await;
        let db = TestDb::create().await;
        let port = free_port();
        let env = with(
            &shared_redis_env(&shared_database_url(&db.name), &redis),
            &[
                ("PORT", port.to_string()),
                ("HOSTNAME", "chaos-serve".into()),
            ],
        );
        let api = Api::new("serve", port);
        let mut serve = Proc::chronos("serve-1", &["serve"], &env);
        serve.wait_healthy(&api).await;
        let token = api.register_and_login().await;
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        two_crons(&api, &token, &ledger, "echo", json!({})).await;
        let stop = Arc::new(AtomicBool::new(false));
        let load = start_load(&api.base, &token, "load", true, &ledger, &stop);
        tokio::time::sleep(Duration::from_secs(2)).await;

        // Three jobs too long for the grace period, running when the signal comes.
        let mut long = Vec::new();
        for i in 0..3 {
            let job = api
                .create(
                    &token,
                    &json!({
                        "name": format!("long-{i}"),
                        "job_type": "one-time",
                        "schedule_type": "immediate",
                        "handler": "sleep",
                        "payload": {"ms": 4000},
                        "timeout_seconds": 60,
                    }),
                )
                .await
                .unwrap();
            let id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
            let name = format!("long-{i}");
            ledger
                .lock()
                .unwrap()
                .one_time
                .insert(id, OneTime { name, at: None });
            long.push(id);
        }
        let long_ids: Vec<String> = long.iter().map(Uuid::to_string).collect();
        until_count(
            &db.pool,
            "SELECT count(*) FROM job_executions WHERE status = 'running' \
             AND job_id::text = ANY(string_to_array($1, ','))",
            &long_ids.join(","),
            3,
            Duration::from_secs(15),
        )
        .await;

        // SIGTERM under load, with attempts running.
        let (requests, signalled) =
            sigterm_under_load(&mut serve, &api, &token, "load", &ledger, load, &stop).await;
        eprintln!("{:?}: serve-1 stopped", began.elapsed());
        check_answers(&requests, signalled, &db.pool, "load").await;

        // Running attempts either finished or were recorded cancelled and queued again.
        let (rows, _) = load_rows(&db.pool).await.unwrap();
        let mut bad = Vec::new();
        let mut cancelled = 0;
        for r in &rows {
            match r.status.as_str() {
                "success" | "queued" => {}
                "cancelled" if r.interrupted() => {
                    cancelled += 1;
                    let queued_again = rows.iter().any(|q| {
                        q.job_id == r.job_id
                            && q.scheduled_for == r.scheduled_for
                            && q.status == "queued"
                            && q.retry_attempt == r.retry_attempt
                    });
                    if !queued_again {
                        bad.push(format!("cancelled, not queued again: {r}"));
                    }
                }
                _ => bad.push(format!("{} at {}: {r}", r.job_id, rfc3339(r.scheduled_for))),
            }
        }
        for id in &long {
            let of: Vec<&str> = rows
                .iter()
                .filter(|r| r.job_id == *id)
                .map(|r| r.status.as_str())
                .collect();
            if of != ["cancelled", "queued"] {
                bad.push(format!(
                    "long job {id}: {of:?}, not cancelled and queued again"
                ));
            }
        }
        assert!(bad.is_empty(), "after the shutdown:\n{}", bad.join("\n"));
        eprintln!("{cancelled} attempts cancelled by the shutdown and queued again");

        // A new serve on the same database runs what is owed.
        let mut serve = Proc::chronos("serve-2", &["serve"], &env);
        serve.wait_healthy(&api).await;
        eprintln!("{:?}: serve-2 started", began.elapsed());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let cutoff = Utc::now();
        let report = settle(&db.pool, &ledger, cutoff, SETTLE_WITHIN).await;
        eprintln!("{:?}: settled", began.elapsed());
        report.assert_clean();
        let (rows, _) = load_rows(&db.pool).await.unwrap();
        for id in &long {
            let of: Vec<&str> = rows
                .iter()
                .filter(|r| r.job_id == *id)
                .map(|r| r.status.as_str())
                .collect();
            assert_eq!(of, ["cancelled", "success"], "long job {id}");
        }

        // SIGTERM under load again, now with nothing running: the engine stops at
        // once, the requests in flight must still be answered.
        let stop = Arc::new(AtomicBool::new(false));
        let load = start_load(&api.base, &token, "idle", false, &ledger, &stop);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (requests, signalled) =
            sigterm_under_load(&mut serve, &api, &token, "idle", &ledger, load, &stop).await;
        check_answers(&requests, signalled, &db.pool, "idle").await;
        eprintln!("{:?}: done", began.elapsed());
    });
}

// ---------------------------------------------------------------------------------
// 5. Clock jump (in process, injected clock)

fn at(hms: &str) -> DateTime<Utc> {
    format!("2026-01-01T{hms}Z").parse().unwrap()
}

/// Waits until each job has `want[i]` executions, none of them queued or running.
async fn until_settled(pool: &PgPool, jobs: &[Uuid], want: &[usize]) -> Vec<Row> {
    poll_until(Duration::from_secs(30), async || {
        let (rows, _) = load_rows(pool).await.unwrap();
        let counts: Vec<usize> = jobs
            .iter()
            .map(|id| rows.iter().filter(|r| r.job_id == *id).count())
            .collect();
        let open = rows
            .iter()
            .filter(|r| r.status == "queued" || r.status == "running")
            .count();
        if counts == want && open == 0 {
            return Ok(rows);
        }
        Err(format!(
            "executions per job {counts:?} (want {want:?}), {open} open"
        ))
    })
    .await
}

#[test]
fn a_clock_jump_of_three_hours_follows_each_missed_policy_exactly() {
    chronos::testkit::run(async {
        let began = Instant::now();
        let redis = TestRedis::connect().await;
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(at("00:00:30")));
        let queue = redis.queue("chaos-clock", clock.clone()).await;
        let engine = Chronos::builder()
            .clock(clock.clone())
            .store(PgStore::new(db.pool.clone()))
            .queue(queue)
            .configure(|c| c.shutdown_grace = Duration::from_secs(1))
            .build()
            .await
            .unwrap();
        let policies = [
            ("coalesce", MissedPolicy::Coalesce),
            ("run_all", MissedPolicy::RunAll),
            ("skip", MissedPolicy::Skip),
        ];
        let mut ledger = Ledger::default();
        let mut ids = Vec::new();
        for (name, policy) in policies {
            let job = engine
                .create(
                    JobSpec::cron(format!("every-minute-{name}"), "* * * * *")
                        .missed_policy(policy),
                )
                .await
                .unwrap();
            assert_eq!(job.next_run, Some(at("00:01:00")));
            ledger.cron.push(CronPlan {
                id: job.id,
                name: format!("every-minute-{name}"),
                expression: "* * * * *".into(),
                first: at("00:01:00"),
                policy,
            });
            ids.push(job.id);
        }
        let next_runs = async |want: DateTime<Utc>| {
            for id in &ids {
                assert_eq!(engine.job(*id).await.unwrap().next_run, Some(want), "{id}");
            }
        };

        // On time: 00:01 fires once for each.
        clock.advance(Duration::from_secs(30));
        until_settled(&db.pool, &ids, &[1, 1, 1]).await;
        next_runs(at("00:02:00")).await;

        // The clock jumps three hours at once, to 03:01:00: 180 occurrences (00:02 to
        // 03:01) are due together.
        clock.advance(Duration::from_secs(3 * 3600));
        until_settled(&db.pool, &ids, &[2, 181, 2]).await;
        next_runs(at("03:02:00")).await;
        eprintln!("{:?}: the jump is caught up", began.elapsed());

        // The schedule goes on: 03:02 fires once for each.
        clock.advance(Duration::from_secs(60));
        let rows = until_settled(&db.pool, &ids, &[3, 182, 3]).await;
        next_runs(at("03:03:00")).await;
        // And nothing else runs while the clock stands still.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (again, _) = load_rows(&db.pool).await.unwrap();
        assert_eq!(again.len(), rows.len(), "ran with the clock standing still");

        let history = |id: Uuid| -> Vec<(DateTime<Utc>, String, Option<String>)> {
            let mut of: Vec<_> = rows
                .iter()
                .filter(|r| r.job_id == id)
                .map(|r| (r.scheduled_for, r.status.clone(), r.error_message.clone()))
                .collect();
            of.sort();
            of
        };
        let success = |hms: &str| (at(hms), "success".to_owned(), None);
        // coalesce: the missed occurrences are one run (recorded for the first of them,
        // 00:02, started at 03:01), then 03:02.
        assert_eq!(
            history(ids[0]),
            [
                success("00:01:00"),
                success("00:02:00"),
                success("03:02:00")
            ]
        );
        let late = rows
            .iter()
            .find(|r| r.job_id == ids[0] && r.scheduled_for == at("00:02:00"))
            .unwrap();
        assert_eq!(late.execution_time, Some(at("03:01:00")));
        // run_all: each of the 180 missed occurrences runs once, in order, then 03:02.
        let mut every_minute = Vec::new();
        let mut t = at("00:01:00");
        while t <= at("03:02:00") {
            every_minute.push((t, "success".to_owned(), None));
            t += chrono::Duration::minutes(1);
        }
        assert_eq!(every_minute.len(), 182);
        assert_eq!(history(ids[1]), every_minute);
        // skip: none of them runs; the one that was owed (00:02) is recorded cancelled,
        // and the schedule continues from now (03:02).
        assert_eq!(
            history(ids[2]),
            [
                success("00:01:00"),
                (
                    at("00:02:00"),
                    "cancelled".to_owned(),
                    Some("missed occurrence skipped".to_owned())
                ),
                success("03:02:00"),
            ]
        );

        // The same reconciliation as the other scenarios, the owed set per policy:
        // coalesce 00:01, 00:02 (standing for 00:02–03:01), 03:02; run_all every
        // minute from 00:01 to 03:02; skip 00:01 and 03:02 run, 00:02 cancelled.
        let (rows, jobs) = load_rows(&db.pool).await.unwrap();
        let report = reconcile(&ledger, &rows, &jobs, clock.now());
        report.assert_clean();
        assert_eq!(report.cron, 3 + 182 + 3, "{report}");
        assert!(report.redeliveries.is_empty(), "{report}");

        engine.shutdown().await.unwrap();
        eprintln!("{:?}: done", began.elapsed());
    });
}

// ---------------------------------------------------------------------------------
// The reconciliation itself (no services)

#[test]
fn the_reconciliation_finds_what_is_missing_doubled_or_unowed() {
    let t = |s: &str| -> DateTime<Utc> { format!("2026-01-01T00:00:{s}Z").parse().unwrap() };
    let row = |job: Uuid, at: &str, status: &str, started: &str, error: Option<&str>| Row {
        job_id: job,
        scheduled_for: t(at),
        status: status.to_owned(),
        retry_attempt: 0,
        error_message: error.map(str::to_owned),
        execution_time: Some(t(started)),
        worker: Some("w".to_owned()),
        manual: false,
    };
    let (once, twice, never, cron) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let mut ledger = Ledger::default();
    for (id, name) in [(once, "once"), (twice, "twice"), (never, "never")] {
        let job = OneTime {
            name: name.to_owned(),
            at: None,
        };
        ledger.one_time.insert(id, job);
    }
    ledger.cron.push(CronPlan {
        id: cron,
        name: "every-second".to_owned(),
        expression: "* * * * * *".to_owned(),
        first: t("10"),
        policy: MissedPolicy::Coalesce,
    });
    let abandoned = Some(chronos::store::ABANDONED);
    let rows = vec![
        row(once, "00", "failed", "00.001", abandoned),
        row(once, "00", "success", "02.500", None),
        row(twice, "00", "success", "00.001", None),
        row(twice, "00", "success", "00.002", None),
        // On time; then 11 claimed late, at 12.5: 12 is coalesced into it, 13 is next.
        row(cron, "10", "success", "10.001", None),
        row(cron, "11", "success", "12.500", None),
        row(cron, "13", "success", "13.001", None),
        // 14 is lost: 15 ran though 14 never did.
        row(cron, "15", "success", "15.001", None),
    ];
    let jobs: Vec<_> = [once, twice, never, cron]
        .into_iter()
        .map(|id| chaos_support::DbJob {
            id,
            name: "x".to_owned(),
            job_type: if id == cron { "recurring" } else { "one-time" }.to_owned(),
            status: "active".to_owned(),
            scheduled_time: None,
        })
        .collect();
    let report = reconcile(&ledger, &rows, &jobs, t("16"));
    eprintln!("{report}");
    assert!(!report.clean());
    assert_eq!(report.duplicated.len(), 1, "{report}");
    assert!(report.duplicated[0].contains("twice"), "{report}");
    assert_eq!(report.missing.len(), 2, "{report}");
    assert!(report.missing[0].contains("never"), "{report}");
    assert!(report.missing[1].contains("00:00:14"), "{report}");
    assert_eq!(report.unexpected.len(), 1, "{report}");
    assert!(report.unexpected[0].contains("00:00:15"), "{report}");
    assert_eq!(report.redeliveries.len(), 2, "{report}");
    // Owed: 3 one-time occurrences; 10, 11, 13, 14 of the cron job.
    assert_eq!((report.one_time, report.cron), (3, 4), "{report}");

    // Without the loss it is clean.
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| r.job_id != twice && r.job_id != never && r.scheduled_for != t("15"))
        .chain([
            row(twice, "00", "success", "00.001", None),
            row(never, "00", "success", "00.001", None),
            row(cron, "14", "success", "14.001", None),
        ])
        .collect();
    let report = reconcile(&ledger, &rows, &jobs, t("14"));
    assert!(report.clean(), "{report}");
    assert_eq!(report.redeliveries.len(), 1, "{report}");
}
