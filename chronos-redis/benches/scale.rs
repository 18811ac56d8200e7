//! Scale benchmarks on the real backends (release build; PostgreSQL and Redis on
//! loopback): a million delayed jobs, a hundred thousand cron jobs firing every
//! minute. One JSON line per measurement on stdout (progress on stderr), labelled
//! `chronos.scale.<test>.<variant>` like the other benches.
//!
//! ```text
//! cargo bench -p chronos-redis --bench scale > scale.jsonl
//! ONLY=cron N_CRON=10000 MINUTES=2 cargo bench -p chronos-redis --bench scale
//! ```
//!
//! - **delayed** (label `chronos.scale.delayed.queue`), the queue layer: `N_DELAYED`
//!   (1,000,000) delayed entries enqueued into a [`RedisQueue`] in chunks of 1,000,
//!   due evenly over `SPREAD_S` (30 s) starting `GAP_S` (60 s) after the enqueueing
//!   ends (planned from the rate of a calibration run of 1 % of them, so the gap
//!   achieved is reported as `due_after_enqueue_s`). `QUEUE_WORKERS` (2) worker loops
//!   of this process × 50 handler slots wait in the queue from the start, reserve,
//!   run a no-op and ack. Reports the enqueue rate, Redis `used_memory` delta per
//!   entry (and the server's RSS delta), this process's RSS, and the lateness (handler
//!   start − `run_at`, ms) of every entry as they come due.
//! - **engine** (label `chronos.scale.delayed.engine`), the user-facing unit: one
//!   [`Chronos`] with `PgStore` + `RedisQueue` and its workers on (`CONCURRENCY`, 64),
//!   `N_ENGINE` (100,000) one-time jobs created with `Chronos::create` (`CREATORS`
//!   calls in flight, 32; there is no bulk create), due the same way. Reports the
//!   create rate, PostgreSQL sizes (`jobs` and `job_executions`, tables + indexes)
//!   and the Redis delta per job, this process's RSS and CPU, and the lateness
//!   (executor start − the job's scheduled time). The full engine is measured at a
//!   smaller N than the queue layer because every job costs PostgreSQL commits
//!   (insert; claim + execution; outcome) where a queue entry costs a sorted-set member.
//! - **cron** (labels `chronos.scale.cron.create`, `chronos.scale.cron.minute` per
//!   minute boundary, `chronos.scale.cron` overall): the same engine, `N_CRON`
//!   (100,000) jobs `* * * * *` created with `Chronos::create` while the workers run;
//!   then `MINUTES` (2) minute boundaries after the creation ended are watched: for
//!   each, how late every occurrence started after the minute (p50/p99/max), how many
//!   jobs ran it (`fired`), folded it into a late run of the previous occurrence that
//!   started after it (`folded`: the default missed-occurrence policy, coalesce), did
//!   neither (`missing`) or ran it twice (`duplicates`), when the last one started, and
//!   the CPU cores used by this process, PostgreSQL and Redis over the minute and this
//!   process's RSS. After the last minute it waits (two minutes at most) until every
//!   job has run or folded that minute's occurrence, so a backlog counts as late, not
//!   as missing.
//! - **retry** (label `chronos.scale.retry.engine`): the engine's own retry on the same
//!   backends, as BullMQ's anchor measures it: a job with `max_retries` 2 and
//!   `retry_backoff` 100 ms whose executor fails twice; the gaps between its attempt
//!   starts (expected 100 and 200 ms plus the bookkeeping in between), `REPEAT` (3)
//!   times.
//!
//! Environment: `ONLY` (space-separated subset of `delayed engine cron retry`, default
//! all), the sizes above, `PGURL` (the admin connection, default
//! `postgres://postgres@127.0.0.1:5432/postgres`: each test drops and re-creates the
//! database `chronos_bench_scale` and drops it at the end, `KEEP_DB=1` keeps it) and
//! `CHRONOS_REDIS_URL` (default `redis://127.0.0.1:6379/`; every key is under a prefix
//! `chronos-bench:{scale-<uuid>}`, deleted at the end).

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark harness"
)]
#![allow(missing_docs)]

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use chronos::clock::SystemClock;
use chronos::executor::{ExecError, JobContext};
use chronos::model::OccurrenceKey;
use chronos::queue::{Queue, QueueEntry};
use chronos::{Chronos, JobSpec};
use chronos_postgres::PgStore;
use chronos_redis::RedisQueue;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The database each engine test creates.
const DB: &str = "chronos_bench_scale";
/// Handler slots per queue-layer worker loop (as the queue benches).
const SLOTS: usize = 50;
const LEASE: Duration = Duration::from_secs(60);
const CHUNK: usize = 1_000;

fn env<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn log(message: &str) {
    eprintln!("[{}] scale: {message}", Utc::now().format("%H:%M:%S%.3f"));
}

fn emit(line: &Value) {
    println!("{line}");
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn ms(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// min, nearest-rank p50/p95/p99, max and mean, as the anchors' `lib.js`.
fn stats(values: &[f64], prefix: &str, out: &mut serde_json::Map<String, Value>) {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let pick = |p: f64| -> Value {
        if s.is_empty() {
            return Value::Null;
        }
        let i = ((p / 100.0 * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
        json!(r3(s[i]))
    };
    out.insert(
        format!("{prefix}min"),
        s.first().map_or(Value::Null, |v| json!(r3(*v))),
    );
    out.insert(format!("{prefix}p50"), pick(50.0));
    out.insert(format!("{prefix}p95"), pick(95.0));
    out.insert(format!("{prefix}p99"), pick(99.0));
    out.insert(
        format!("{prefix}max"),
        s.last().map_or(Value::Null, |v| json!(r3(*v))),
    );
    let mean = s.iter().sum::<f64>() / s.len().max(1) as f64;
    out.insert(format!("{prefix}mean"), json!(r3(mean)));
}

// ---------------------------------------------------------------------------------
// Resource probes: this process, the PostgreSQL server, the Redis server.

/// `(comm, fields after comm)` of `/proc/<pid>/stat`.
fn proc_stat(pid: &str) -> Option<(String, Vec<String>)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (s.find('(')?, s.rfind(')')?);
    let comm = s.get(open + 1..close)?.to_owned();
    let fields = s.get(close + 2..)?.split(' ').map(str::to_owned).collect();
    Some((comm, fields))
}

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux).
fn ticks() -> f64 {
    100.0
}

/// CPU seconds this process has used.
fn own_cpu_s() -> f64 {
    proc_stat("self").map_or(0.0, |(_, f)| {
        let v = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (v(11) + v(12)) as f64 / ticks()
    })
}

/// CPU seconds used so far by the PostgreSQL server processes (the postmaster with
/// its reaped children, and every live backend), as the anchors' `lib.js` counts them.
fn pg_cpu_s() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0u64;
    for d in dir.flatten() {
        let name = d.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Some((comm, fields)) = proc_stat(pid) else {
            continue;
        };
        if !comm.starts_with("postgres") {
            continue;
        }
        let f = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let parent_is_pg = fields
            .get(1)
            .and_then(|ppid| proc_stat(ppid))
            .is_some_and(|(c, _)| c.starts_with("postgres"));
        total += f(11) + f(12) + if parent_is_pg { 0 } else { f(13) + f(14) };
    }
    total as f64 / ticks()
}

/// `VmRSS` and `VmHWM` (peak) of this process, MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kib| r2(kib / 1024.0))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn admin() -> redis::aio::MultiplexedConnection {
    redis::Client::open(chronos_redis::testing::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn redis_info(
    conn: &mut redis::aio::MultiplexedConnection,
    section: &str,
) -> HashMap<String, f64> {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .filter_map(|(k, v)| v.trim().parse().ok().map(|v| (k.to_owned(), v)))
        .collect()
}

/// Redis `used_memory` and `used_memory_rss`, bytes.
async fn redis_memory(conn: &mut redis::aio::MultiplexedConnection) -> (f64, f64) {
    let m = redis_info(conn, "memory").await;
    (m["used_memory"], m["used_memory_rss"])
}

/// CPU seconds the Redis server has used.
async fn redis_cpu_s(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let m = redis_info(conn, "cpu").await;
    m["used_cpu_sys"] + m["used_cpu_user"]
}

async fn delete_prefix(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(conn)
        .await
        .unwrap();
    for chunk in keys.chunks(1_000) {
        let _: i64 = redis::cmd("DEL")
            .arg(chunk)
            .query_async(conn)
            .await
            .unwrap();
    }
}

fn new_prefix(what: &str) -> String {
    format!("chronos-bench:{{scale-{what}-{}}}", Uuid::new_v4().simple())
}

async fn open_queue(prefix: &str) -> RedisQueue {
    let client = redis::Client::open(chronos_redis::testing::redis_url()).unwrap();
    RedisQueue::connect(client, prefix, Arc::new(SystemClock))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------
// The database of the engine tests.

fn admin_url() -> String {
    std::env::var("PGURL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn db_url() -> String {
    let url = admin_url();
    let (server, _) = url.rsplit_once('/').unwrap();
    format!("{server}/{DB}")
}

async fn admin_exec(sql: String) {
    let options: PgConnectOptions = admin_url().parse().unwrap();
    let mut admin =
        sqlx::PgConnection::connect_with(&options.log_statements(tracing::log::LevelFilter::Off))
            .await
            .unwrap();
    sqlx::query(AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
}

/// Drops and creates the database, migrates it, and returns a pool sized as the
/// service sizes it for `concurrency` workers (`concurrency / 2 + 6`, 10 to 64).
async fn recreate_db(concurrency: usize) -> PgPool {
    admin_exec(format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).await;
    admin_exec(format!("CREATE DATABASE {DB}")).await;
    let options: PgConnectOptions = db_url().parse().unwrap();
    let size = u32::try_from(concurrency / 2 + 6).unwrap().clamp(10, 64);
    let pool = chronos_postgres::connect_with(
        options.log_statements(tracing::log::LevelFilter::Off),
        PgPoolOptions::new().max_connections(size),
    )
    .await
    .unwrap();
    chronos_postgres::migrate(&pool).await.unwrap();
    pool
}

async fn drop_db(pool: PgPool) {
    pool.close().await;
    if env("KEEP_DB", 0) != 1 {
        admin_exec(format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).await;
    }
}

/// Total bytes (heap + indexes + TOAST) of a table and its partitions.
async fn table_bytes(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>(
        "SELECT coalesce(sum(pg_total_relation_size(relid)), pg_total_relation_size($1::regclass))::bigint
         FROM pg_partition_tree($1::regclass)",
    )
    .bind(table)
    .fetch_one(pool)
    .await
    .unwrap()
    .unwrap_or(0)
}

async fn engine(
    pool: &PgPool,
    queue: RedisQueue,
    concurrency: usize,
    recorder: Arc<Recorder>,
) -> Chronos {
    let stamp = recorder.clone();
    Chronos::builder()
        .store(PgStore::new(pool.clone()))
        .queue(queue)
        .concurrency(concurrency)
        .configure(|c| c.shutdown_grace = Duration::from_secs(10))
        .executor("stamp", move |ctx: JobContext| {
            let stamp = stamp.clone();
            async move {
                stamp.record(ctx.job().id, ctx.scheduled_for(), Utc::now());
                Ok(Value::Null)
            }
        })
        .build()
        .await
        .unwrap()
}

/// Creates `n` jobs with `Chronos::create`, `CREATORS` calls in flight; returns the
/// ids in creation order and the seconds it took.
async fn create_all(
    chronos: &Chronos,
    n: usize,
    spec: impl Fn(usize) -> JobSpec + Send + Sync + 'static,
) -> (Vec<Uuid>, f64) {
    let creators: usize = env("CREATORS", 32);
    let spec = Arc::new(spec);
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(Mutex::new(vec![Uuid::nil(); n]));
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..creators {
        let (chronos, spec, next, ids) = (chronos.clone(), spec.clone(), next.clone(), ids.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let job = chronos.create(spec(i)).await.unwrap();
                ids.lock().unwrap()[i] = job.id;
                if (i + 1) % 50_000 == 0 {
                    log(&format!("created {}", i + 1));
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let ids = std::mem::take(&mut *ids.lock().unwrap());
    (ids, t.elapsed().as_secs_f64())
}

/// One attempt an executor saw: `(job, scheduled_for, started_at)`.
type Seen = (Uuid, DateTime<Utc>, DateTime<Utc>);

/// What the executors saw.
struct Recorder {
    seen: Mutex<Vec<Seen>>,
    count: AtomicUsize,
    target: AtomicUsize,
    reached: Notify,
}

impl Recorder {
    fn new(target: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            seen: Mutex::new(Vec::with_capacity(target.min(1 << 20))),
            count: AtomicUsize::new(0),
            target: AtomicUsize::new(target),
            reached: Notify::new(),
        })
    }

    fn record(&self, job: Uuid, scheduled_for: DateTime<Utc>, started: DateTime<Utc>) {
        self.seen
            .lock()
            .unwrap()
            .push((job, scheduled_for, started));
        self.tick();
    }

    /// Counts one attempt without recording it.
    fn tick(&self) {
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.target.load(Ordering::SeqCst) {
            self.reached.notify_one();
        }
    }

    /// Waits until `target` attempts were recorded, or `deadline`; returns whether it
    /// got there.
    async fn wait(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let reached = self.reached.notified();
            if self.count.load(Ordering::SeqCst) >= self.target.load(Ordering::SeqCst) {
                return true;
            }
            if tokio::time::timeout_at(deadline, reached).await.is_err() {
                return self.count.load(Ordering::SeqCst) >= self.target.load(Ordering::SeqCst);
            }
        }
    }
}

/// The instant the first due time is planned for: after the estimated time to add
/// `n` at `rate`/s (× 1.5, for a rate that falls as the data grows) plus `GAP_S`.
fn plan_base(n: usize, rate: f64) -> DateTime<Utc> {
    let gap: f64 = env("GAP_S", 60.0);
    let est = n as f64 / rate.max(1.0) * 1.5;
    Utc::now() + chrono::Duration::milliseconds(((est + gap) * 1000.0) as i64)
}

/// The due time of the `i`-th of `n`, evenly over `SPREAD_S` from `base`.
fn due(base: DateTime<Utc>, i: usize, n: usize) -> DateTime<Utc> {
    let spread_us = env("SPREAD_S", 30.0) * 1e6;
    base + chrono::Duration::microseconds(((i as f64 + 0.5) * spread_us / n as f64) as i64)
}

// ---------------------------------------------------------------------------------
// delayed: the queue layer.

/// A queue-layer worker loop: reserve up to the free slots, run a no-op that records
/// its lateness, ack.
async fn queue_worker(
    q: RedisQueue,
    late: Arc<Mutex<Vec<f64>>>,
    done: Arc<Recorder>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(SLOTS));
    loop {
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => p.unwrap(),
            () = stop.cancelled() => break,
        };
        let want = slots.available_permits() + 1;
        let batch = q.reserve("scale", want, LEASE).await.unwrap();
        if batch.is_empty() {
            drop(first);
            tokio::select! {
                w = q.wait() => w.unwrap(),
                () = stop.cancelled() => break,
            }
            continue;
        }
        let mut first = Some(first);
        for r in batch {
            let permit = first
                .take()
                .or_else(|| slots.clone().try_acquire_owned().ok())
                .unwrap();
            let (q, late, done) = (q.clone(), late.clone(), done.clone());
            tokio::spawn(async move {
                let now = Utc::now();
                late.lock().unwrap().push(ms(now - r.entry.run_at));
                q.ack(&r.lease).await.unwrap();
                // Counted once acked (the no-op "job" is done).
                done.tick();
                drop(permit);
            });
        }
    }
    drop(slots.acquire_many(SLOTS as u32).await.unwrap());
}

fn entry(run_at: DateTime<Utc>) -> QueueEntry {
    QueueEntry {
        key: OccurrenceKey::scheduled(Uuid::new_v4(), run_at),
        run_at,
        attempt: 0,
        execution_id: None,
    }
}

async fn delayed_queue() {
    let n: usize = env("N_DELAYED", 1_000_000);
    let workers: usize = env("QUEUE_WORKERS", 2);
    let mut conn = admin().await;

    // Calibration: 1 % of N (1,000 to 10,000) far in the future, in a prefix of its own.
    let cal_n = (n / 100).clamp(1_000, 10_000);
    let cal_prefix = new_prefix("cal");
    let cal = open_queue(&cal_prefix).await;
    let later = Utc::now() + chrono::Duration::days(1);
    let t = Instant::now();
    for c in (0..cal_n).collect::<Vec<_>>().chunks(CHUNK) {
        let entries: Vec<QueueEntry> = c.iter().map(|_| entry(later)).collect();
        cal.enqueue(&entries).await.unwrap();
    }
    let cal_rate = cal_n as f64 / t.elapsed().as_secs_f64();
    drop(cal);
    delete_prefix(&mut conn, &cal_prefix).await;

    let prefix = new_prefix("delayed");
    let q = open_queue(&prefix).await;
    let late = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let done = Recorder::new(n);
    let stop = CancellationToken::new();
    let mut loops = Vec::new();
    for _ in 0..workers {
        loops.push(tokio::spawn(queue_worker(
            open_queue(&prefix).await,
            late.clone(),
            done.clone(),
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (m0, rss0) = redis_memory(&mut conn).await;
    let base = plan_base(n, cal_rate);
    log(&format!(
        "delayed: enqueueing {n} entries (calibrated {cal_rate:.0}/s), due from {} over {} s",
        base.format("%H:%M:%S"),
        env("SPREAD_S", 30.0)
    ));
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let entries: Vec<QueueEntry> = (i..n.min(i + CHUNK))
            .map(|k| entry(due(base, k, n)))
            .collect();
        q.enqueue(&entries).await.unwrap();
        i += CHUNK;
    }
    let enqueue_s = t.elapsed().as_secs_f64();
    let due_after = ms(base - Utc::now()) / 1000.0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (m1, rss1) = redis_memory(&mut conn).await;
    let (own_rss, _) = rss_mib();
    log(&format!(
        "delayed: enqueued in {enqueue_s:.1} s ({:.0}/s), {:.0} Redis bytes each; first due in {due_after:.1} s",
        n as f64 / enqueue_s,
        (m1 - m0) / n as f64
    ));
    let spread: f64 = env("SPREAD_S", 30.0);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs_f64(due_after.max(0.0) + spread + 300.0);
    // CPU from the first due time to the last ack.
    tokio::time::sleep(Duration::from_secs_f64(due_after.max(0.0))).await;
    let (cpu0, rc0) = (own_cpu_s(), redis_cpu_s(&mut conn).await);
    let t_due = Instant::now();
    let all = done.wait(deadline).await;
    let drain_s = t_due.elapsed().as_secs_f64();
    let (cpu1, rc1) = (own_cpu_s(), redis_cpu_s(&mut conn).await);
    stop.cancel();
    for l in loops {
        l.await.unwrap();
    }
    let (_, own_peak) = rss_mib();
    let late = std::mem::take(&mut *late.lock().unwrap());
    let mut out = serde_json::Map::new();
    out.insert("label".into(), json!("chronos.scale.delayed.queue"));
    out.insert(
        "cfg".into(),
        json!({"n": n, "chunk": CHUNK, "spread_s": spread, "gap_s": env("GAP_S", 60.0),
               "workers": workers, "slots": SLOTS, "unit": "RedisQueue"}),
    );
    out.insert("enqueue_s".into(), json!(r3(enqueue_s)));
    out.insert(
        "enqueue_jobs_per_s".into(),
        json!((n as f64 / enqueue_s).round()),
    );
    out.insert("due_after_enqueue_s".into(), json!(r2(due_after)));
    out.insert("redis_used_memory_delta".into(), json!(m1 - m0));
    out.insert(
        "redis_bytes_per_delayed_job".into(),
        json!(((m1 - m0) / n as f64).round()),
    );
    out.insert("redis_rss_delta".into(), json!(rss1 - rss0));
    out.insert("process_rss_mib".into(), json!(own_rss));
    out.insert("process_peak_rss_mib".into(), json!(own_peak));
    out.insert("completed".into(), json!(late.len()));
    out.insert("timed_out".into(), json!(i32::from(!all)));
    out.insert(
        "early_jobs".into(),
        json!(late.iter().filter(|l| **l < 0.0).count()),
    );
    stats(&late, "lateness_", &mut out);
    out.insert(
        "drain_process_cores".into(),
        json!(r2((cpu1 - cpu0) / drain_s)),
    );
    out.insert("drain_redis_cores".into(), json!(r2((rc1 - rc0) / drain_s)));
    log(&format!(
        "delayed: {} done; lateness p50={} p99={} max={} ms",
        late.len(),
        out["lateness_p50"],
        out["lateness_p99"],
        out["lateness_max"]
    ));
    emit(&Value::Object(out));
    drop(q);
    delete_prefix(&mut conn, &prefix).await;
}

// ---------------------------------------------------------------------------------
// engine: delayed jobs through the whole engine.

async fn delayed_engine() {
    let n: usize = env("N_ENGINE", 100_000);
    let concurrency: usize = env("CONCURRENCY", 64);
    let mut conn = admin().await;
    let pool = recreate_db(concurrency).await;
    let prefix = new_prefix("engine");
    let recorder = Recorder::new(n);
    let chronos = engine(
        &pool,
        open_queue(&prefix).await,
        concurrency,
        recorder.clone(),
    )
    .await;

    // Calibration: twice 1 % of N (500 to 2,000) jobs due in a day, which stay (never
    // due); the first round warms the pool's connections and statements up, the
    // second gives the rate.
    let cal_n = (n / 100).clamp(500, 2_000);
    let later = Utc::now() + chrono::Duration::days(1);
    let mut cal_rate = 0.0;
    for _ in 0..2 {
        let (_, cal_s) = create_all(&chronos, cal_n, move |i| {
            JobSpec::at(format!("calibration {i}"), later).handler("stamp")
        })
        .await;
        cal_rate = cal_n as f64 / cal_s;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (m0, _) = redis_memory(&mut conn).await;
    let (jobs0, ex0) = (
        table_bytes(&pool, "jobs").await,
        table_bytes(&pool, "job_executions").await,
    );
    let base = plan_base(n, cal_rate);
    log(&format!(
        "engine: creating {n} jobs (calibrated {cal_rate:.0}/s), due from {} over {} s",
        base.format("%H:%M:%S"),
        env("SPREAD_S", 30.0)
    ));
    let (pg0, rc0, cpu0) = (pg_cpu_s(), redis_cpu_s(&mut conn).await, own_cpu_s());
    let (_, create_s) = create_all(&chronos, n, move |i| {
        JobSpec::at(format!("delayed {i}"), due(base, i, n)).handler("stamp")
    })
    .await;
    let (pg1, rc1, cpu1) = (pg_cpu_s(), redis_cpu_s(&mut conn).await, own_cpu_s());
    let due_after = ms(base - Utc::now()) / 1000.0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (m1, _) = redis_memory(&mut conn).await;
    let jobs1 = table_bytes(&pool, "jobs").await;
    let (own_rss, _) = rss_mib();
    log(&format!(
        "engine: created in {create_s:.1} s ({:.0}/s); first due in {due_after:.1} s",
        n as f64 / create_s
    ));
    let spread: f64 = env("SPREAD_S", 30.0);
    let wait_s = due_after.max(0.0) + spread + 600.0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(wait_s);
    // CPU from the first due time to the last start.
    tokio::time::sleep(Duration::from_secs_f64(due_after.max(0.0))).await;
    let (pg2, rc2, cpu2) = (pg_cpu_s(), redis_cpu_s(&mut conn).await, own_cpu_s());
    let t_due = Instant::now();
    let all = recorder.wait(deadline).await;
    let drain_s = t_due.elapsed().as_secs_f64();
    let (pg3, rc3, cpu3) = (pg_cpu_s(), redis_cpu_s(&mut conn).await, own_cpu_s());
    chronos.shutdown().await.unwrap();
    let ex1 = table_bytes(&pool, "job_executions").await;
    let (_, own_peak) = rss_mib();
    let seen = std::mem::take(&mut *recorder.seen.lock().unwrap());
    let late: Vec<f64> = seen
        .iter()
        .map(|(_, at, started)| ms(*started - *at))
        .collect();
    let distinct = seen
        .iter()
        .map(|s| s.0)
        .collect::<std::collections::HashSet<_>>()
        .len();
    let mut out = serde_json::Map::new();
    out.insert("label".into(), json!("chronos.scale.delayed.engine"));
    out.insert(
        "cfg".into(),
        json!({"n": n, "spread_s": spread, "gap_s": env("GAP_S", 60.0), "concurrency": concurrency,
               "creators": env("CREATORS", 32), "unit": "Chronos (PgStore + RedisQueue), one process"}),
    );
    out.insert("create_s".into(), json!(r3(create_s)));
    out.insert(
        "create_jobs_per_s".into(),
        json!((n as f64 / create_s).round()),
    );
    out.insert(
        "create_process_cores".into(),
        json!(r2((cpu1 - cpu0) / create_s)),
    );
    out.insert("create_pg_cores".into(), json!(r2((pg1 - pg0) / create_s)));
    out.insert(
        "create_redis_cores".into(),
        json!(r2((rc1 - rc0) / create_s)),
    );
    out.insert("due_after_create_s".into(), json!(r2(due_after)));
    out.insert(
        "pg_jobs_bytes_per_job".into(),
        json!(((jobs1 - jobs0) as f64 / n as f64).round()),
    );
    out.insert(
        "pg_executions_bytes_per_job".into(),
        json!(((ex1 - ex0) as f64 / n as f64).round()),
    );
    out.insert(
        "redis_bytes_per_delayed_job".into(),
        json!(((m1 - m0) / n as f64).round()),
    );
    out.insert("process_rss_mib".into(), json!(own_rss));
    out.insert("process_peak_rss_mib".into(), json!(own_peak));
    out.insert("completed".into(), json!(distinct));
    out.insert("duplicates".into(), json!(seen.len() - distinct));
    out.insert("timed_out".into(), json!(i32::from(!all)));
    out.insert(
        "early_jobs".into(),
        json!(late.iter().filter(|l| **l < 0.0).count()),
    );
    stats(&late, "lateness_", &mut out);
    out.insert("drain_s".into(), json!(r3(drain_s)));
    out.insert(
        "drain_jobs_per_s".into(),
        json!((seen.len() as f64 / drain_s).round()),
    );
    out.insert(
        "drain_process_cores".into(),
        json!(r2((cpu3 - cpu2) / drain_s)),
    );
    out.insert("drain_pg_cores".into(), json!(r2((pg3 - pg2) / drain_s)));
    out.insert("drain_redis_cores".into(), json!(r2((rc3 - rc2) / drain_s)));
    log(&format!(
        "engine: {distinct} done in {drain_s:.1} s after the first was due; lateness p50={} p99={} max={} ms",
        out["lateness_p50"], out["lateness_p99"], out["lateness_max"]
    ));
    emit(&Value::Object(out));
    drop(chronos);
    delete_prefix(&mut conn, &prefix).await;
    drop_db(pool).await;
}

// ---------------------------------------------------------------------------------
// cron: N jobs firing every minute.

fn next_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = t.with_nanosecond(0).unwrap().with_second(0).unwrap();
    floor + chrono::Duration::minutes(1)
}

async fn sleep_until(t: DateTime<Utc>) {
    if let Ok(d) = (t - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

async fn cron() {
    let n: usize = env("N_CRON", 100_000);
    let minutes: usize = env("MINUTES", 2);
    let concurrency: usize = env("CONCURRENCY", 64);
    let mut conn = admin().await;
    let pool = recreate_db(concurrency).await;
    let prefix = new_prefix("cron");
    let recorder = Recorder::new(usize::MAX);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (m0, _) = redis_memory(&mut conn).await;
    let chronos = engine(
        &pool,
        open_queue(&prefix).await,
        concurrency,
        recorder.clone(),
    )
    .await;
    log(&format!("cron: creating {n} jobs `* * * * *`"));
    let (pg0, rc0, cpu0) = (pg_cpu_s(), redis_cpu_s(&mut conn).await, own_cpu_s());
    let (ids, create_s) = create_all(&chronos, n, |i| {
        JobSpec::cron(format!("every minute {i}"), "* * * * *").handler("stamp")
    })
    .await;
    let (pg1, rc1, cpu1) = (pg_cpu_s(), redis_cpu_s(&mut conn).await, own_cpu_s());
    let jobs_bytes = table_bytes(&pool, "jobs").await;
    let (m1, _) = redis_memory(&mut conn).await;
    emit(&json!({
        "label": "chronos.scale.cron.create",
        "cfg": {"n": n, "concurrency": concurrency, "creators": env("CREATORS", 32), "expression": "* * * * *"},
        "create_s": r3(create_s),
        "create_jobs_per_s": (n as f64 / create_s).round(),
        "create_process_cores": r2((cpu1 - cpu0) / create_s),
        "create_pg_cores": r2((pg1 - pg0) / create_s),
        "create_redis_cores": r2((rc1 - rc0) / create_s),
        "pg_jobs_bytes_per_job": (jobs_bytes as f64 / n as f64).round(),
        "redis_bytes_per_job": ((m1 - m0) / n as f64).round(),
    }));
    let first = next_minute(Utc::now());
    log(&format!(
        "cron: created in {create_s:.1} s ({:.0}/s); watching {minutes} minute(s) from {}",
        n as f64 / create_s,
        first.format("%H:%M:%S")
    ));
    let ids: std::collections::HashSet<Uuid> = ids.into_iter().collect();

    // At each boundary (and one minute after the last): CPU counters and RSS.
    let mut marks = Vec::new();
    for k in 0..=minutes {
        let b = first + chrono::Duration::minutes(k as i64);
        sleep_until(b).await;
        marks.push((
            own_cpu_s(),
            pg_cpu_s(),
            redis_cpu_s(&mut conn).await,
            rss_mib().0,
            Instant::now(),
        ));
        if k == minutes {
            break;
        }
    }
    // Then, beyond the last minute, until every job has run (or folded) its
    // occurrence of the last minute, two minutes at most: one still waiting in the
    // backlog is late, not lost.
    let last = first + chrono::Duration::minutes(minutes as i64 - 1);
    while Utc::now() < last + chrono::Duration::minutes(2) {
        let o = outcome(&recorder.seen.lock().unwrap(), &ids, last);
        if o.fired + o.folded >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ex_bytes = table_bytes(&pool, "job_executions").await;
    chronos.shutdown().await.unwrap();
    let (_, own_peak) = rss_mib();
    let seen = std::mem::take(&mut *recorder.seen.lock().unwrap());
    let mut all_late = Vec::new();
    let (mut missing_total, mut dup_total, mut folded_total, mut fired_total) =
        (0usize, 0usize, 0usize, 0usize);
    for k in 0..minutes {
        let b = first + chrono::Duration::minutes(k as i64);
        let Outcome {
            fired,
            folded,
            duplicates,
            late,
            last_start,
        } = outcome(&seen, &ids, b);
        let missing = n - fired - folded;
        folded_total += folded;
        fired_total += fired;
        let (c0, p0, r0, _, i0) = marks[k];
        let (c1, p1, r1, rss, i1) = marks[k + 1];
        let wall = i1.duration_since(i0).as_secs_f64();
        let mut out = serde_json::Map::new();
        out.insert("label".into(), json!("chronos.scale.cron.minute"));
        out.insert(
            "cfg".into(),
            json!({"n": n, "minute": k, "boundary": b.to_rfc3339()}),
        );
        out.insert("fired".into(), json!(fired));
        out.insert("folded".into(), json!(folded));
        out.insert("missing".into(), json!(missing));
        out.insert("duplicates".into(), json!(duplicates));
        stats(&late, "lateness_", &mut out);
        out.insert(
            "last_start_after_s".into(),
            json!(r3(ms(last_start - b) / 1000.0)),
        );
        out.insert("process_cores".into(), json!(r2((c1 - c0) / wall)));
        out.insert("pg_cores".into(), json!(r2((p1 - p0) / wall)));
        out.insert("redis_cores".into(), json!(r2((r1 - r0) / wall)));
        out.insert("process_rss_mib".into(), json!(rss));
        log(&format!(
            "cron: minute {k}: fired {fired}/{n}, folded {folded}, missing {missing}, duplicates {duplicates}, lateness p50={} p99={} max={} ms",
            out["lateness_p50"], out["lateness_p99"], out["lateness_max"]
        ));
        emit(&Value::Object(out));
        all_late.extend(late);
        missing_total += missing;
        dup_total += duplicates;
    }
    let (c0, p0, r0, _, i0) = marks[0];
    let (c1, p1, r1, rss, i1) = marks[minutes];
    let wall = i1.duration_since(i0).as_secs_f64();
    let mut out = serde_json::Map::new();
    out.insert("label".into(), json!("chronos.scale.cron"));
    out.insert(
        "cfg".into(),
        json!({"n": n, "minutes": minutes, "concurrency": concurrency,
               "unit": "Chronos (PgStore + RedisQueue), one process"}),
    );
    out.insert("occurrences".into(), json!(n * minutes));
    out.insert("fired".into(), json!(fired_total));
    out.insert("folded".into(), json!(folded_total));
    out.insert("missing".into(), json!(missing_total));
    out.insert("duplicates".into(), json!(dup_total));
    stats(&all_late, "lateness_", &mut out);
    out.insert("process_cores".into(), json!(r2((c1 - c0) / wall)));
    out.insert("pg_cores".into(), json!(r2((p1 - p0) / wall)));
    out.insert("redis_cores".into(), json!(r2((r1 - r0) / wall)));
    out.insert("process_rss_mib".into(), json!(rss));
    out.insert("process_peak_rss_mib".into(), json!(own_peak));
    out.insert(
        "pg_jobs_bytes_per_job".into(),
        json!((jobs_bytes as f64 / n as f64).round()),
    );
    out.insert(
        "pg_executions_bytes_per_occurrence".into(),
        json!((ex_bytes as f64 / seen.len().max(1) as f64).round()),
    );
    emit(&Value::Object(out));
    drop(chronos);
    delete_prefix(&mut conn, &prefix).await;
    drop_db(pool).await;
}

/// What became of the occurrence at minute `b` of each job.
struct Outcome {
    /// Jobs that ran it.
    fired: usize,
    /// Jobs that did not, because a late run of an earlier occurrence started after
    /// `b` and the missed-occurrence policy (coalesce, the default) folded `b` into it.
    folded: usize,
    /// Runs of it beyond the first.
    duplicates: usize,
    /// Start − `b` of each run, ms.
    late: Vec<f64>,
    /// The last start.
    last_start: DateTime<Utc>,
}

fn outcome(seen: &[Seen], ids: &std::collections::HashSet<Uuid>, b: DateTime<Utc>) -> Outcome {
    let mut per_job: HashMap<Uuid, usize> = HashMap::new();
    let mut late_earlier = std::collections::HashSet::new();
    let mut late = Vec::new();
    let mut last_start = b;
    for (job, at, started) in seen {
        if !ids.contains(job) {
            continue;
        }
        if *at == b {
            *per_job.entry(*job).or_default() += 1;
            late.push(ms(*started - b));
            last_start = last_start.max(*started);
        } else if *at < b && *started >= b {
            late_earlier.insert(*job);
        }
    }
    let folded = late_earlier
        .iter()
        .filter(|j| !per_job.contains_key(j))
        .count();
    Outcome {
        fired: per_job.len(),
        folded,
        duplicates: per_job.values().map(|c| c - 1).sum(),
        late,
        last_start,
    }
}

// ---------------------------------------------------------------------------------
// retry: the engine's retry with backoff.

async fn retry() {
    let repeat: usize = env("REPEAT", 3);
    let (backoff_ms, fails) = (100i64, 2u32);
    let mut conn = admin().await;
    let pool = recreate_db(16).await;
    let prefix = new_prefix("retry");
    let recorder = Recorder::new(usize::MAX);
    let stamp = recorder.clone();
    let chronos = Chronos::builder()
        .store(PgStore::new(pool.clone()))
        .queue(open_queue(&prefix).await)
        .executor("flaky", move |ctx: JobContext| {
            let stamp = stamp.clone();
            async move {
                stamp.record(ctx.job().id, ctx.scheduled_for(), Utc::now());
                if ctx.attempt() < 2 {
                    Err(ExecError::retryable("fails twice"))
                } else {
                    Ok(Value::Null)
                }
            }
        })
        .build()
        .await
        .unwrap();
    for rep in 0..repeat {
        let before = recorder.count.load(Ordering::SeqCst);
        recorder
            .target
            .store(before + fails as usize + 1, Ordering::SeqCst);
        let job = chronos
            .create(
                JobSpec::immediate(format!("retry {rep}"))
                    .handler("flaky")
                    .max_retries(fails)
                    .retry_backoff(Duration::from_millis(backoff_ms as u64)),
            )
            .await
            .unwrap();
        let ok = recorder
            .wait(tokio::time::Instant::now() + Duration::from_secs(30))
            .await;
        let starts: Vec<DateTime<Utc>> = recorder
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.0 == job.id)
            .map(|s| s.2)
            .collect();
        let mut row = serde_json::Map::new();
        row.insert("label".into(), json!("chronos.scale.retry.engine"));
        row.insert(
            "cfg".into(),
            json!({"rep": rep, "backoff_ms": backoff_ms, "fails": fails,
                   "unit": "Chronos (PgStore + RedisQueue)"}),
        );
        row.insert("attempts_seen".into(), json!(starts.len()));
        row.insert("timed_out".into(), json!(i32::from(!ok)));
        for (i, w) in starts.windows(2).enumerate() {
            let gap = ms(w[1] - w[0]);
            let expected = (backoff_ms * (1 << i)) as f64;
            row.insert(format!("gap{}_ms", i + 1), json!(r3(gap)));
            row.insert(
                format!("gap{}_over_expected_ms", i + 1),
                json!(r3(gap - expected)),
            );
        }
        emit(&Value::Object(row));
    }
    chronos.shutdown().await.unwrap();
    drop(chronos);
    delete_prefix(&mut conn, &prefix).await;
    drop_db(pool).await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("ONLY").unwrap_or_else(|_| "delayed engine cron retry".into());
    runtime.block_on(async {
        for what in only.split_whitespace() {
            match what {
                "delayed" => delayed_queue().await,
                "engine" => delayed_engine().await,
                "cron" => cron().await,
                "retry" => retry().await,
                other => eprintln!("unknown benchmark {other}"),
            }
        }
    });
}
