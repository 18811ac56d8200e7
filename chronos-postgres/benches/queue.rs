//! [`PgQueue`] benchmarks, by the definitions of the graphile-worker anchors
//! (`anchors/graphile/README.md`), so the JSON lines compare side by side with them:
//! `node anchors/lib/compare.js graphile=graphile.jsonl chronos=chronos.jsonl`.
//!
//! ```text
//! cargo bench -p chronos-postgres --bench queue > chronos.jsonl   # JSON lines on stdout, log on stderr
//! ```
//!
//! - **throughput** (label `chronos-pgqueue.throughput.w<W>.c<C>.batch`): a fresh
//!   database; `N` no-op entries enqueued with one `enqueue` (one statement) per `CHUNK`,
//!   no worker running (`enqueue_jobs_per_s`); then `W` worker processes (this binary,
//!   started again as children) each run a worker loop: reserve a batch (one
//!   `reserve` of up to `RESERVE_BATCH` = 500 entries, keeping at most `WINDOW` = 500
//!   reserved and not yet handled: graphile-worker's batched mode, whose local queue of
//!   500 is filled by one query), run each entry's no-op handler on one of `C` handler
//!   slots, and ack it, all acks of a batch concurrently, so the queue's group commit
//!   batches them; `ack` returns after the commit that deleted the entry. Timed from
//!   the start signal until the table is empty (`process_jobs_per_s`), as
//!   graphile-worker's harness does; `handler_jobs_per_s` uses the last ack instead.
//!   A handler slot and its window place are freed when the handler returns, and the
//!   ack is awaited beside them, as graphile-worker's batched completion does;
//!   `HOLD=1` keeps the handler slot until the ack returns, as the engine does (label
//!   suffix `.hold`). When a reserve returns fewer entries than asked for, the loop
//!   `wait()`s (which returns at once if something is due by then).
//! - **latency** (label `chronos-pgqueue.latency.w<W>.c<C>`): workers started and idle
//!   in `wait()` first; then `N` entries due at (time of their chunk's enqueue) + a delay,
//!   delays spread evenly over `SPREAD_MS`, enqueued in chunks of `CHUNK`; lateness = the
//!   handler's start - the entry's `run_at`, in ms.
//!
//! Environment (defaults as the anchors): `RUNS=3 ONLY="throughput latency"
//! TP_WORKERS="1 2" TP_CONC="10 24" N=50000 CHUNK=1000 LAT_N=2000 LAT_CHUNK=100
//! SPREAD_MS=10000 LAT_WORKERS=1 LAT_CONC=50 RESERVE_BATCH=500 WINDOW=500 HOLD=0`,
//! `POOL` (each worker's pool size; default max(10, C + 2), graphile-worker's
//! `maxPoolSize`), and `PGURL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), the admin connection: each run drops
//! and re-creates its own database (`chronos_bench_queue`) and drops it at the end.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use chronos::clock::SystemClock;
use chronos::model::OccurrenceKey;
use chronos::queue::{Queue, QueueEntry};
use chronos_postgres::PgQueue;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Set in the environment of the worker processes the benchmark starts.
const CHILD: &str = "CHRONOS_QUEUE_BENCH_CHILD";
/// The database each run creates.
const DB: &str = "chronos_bench_queue";
/// The most entries one reserve takes (`RESERVE_BATCH`; graphile-worker's batched
/// mode fetches up to its local queue's size, 500, in one query).
fn batch() -> usize {
    env("RESERVE_BATCH", 500)
}
/// The most entries a worker holds reserved and not yet handled (`WINDOW`; the size
/// of graphile-worker's local queue).
fn window() -> usize {
    env("WINDOW", 500)
}
/// The lease the workers take.
const LEASE: Duration = Duration::from_secs(30);

fn env<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn log(message: &str) {
    eprintln!("[{}] {message}", Utc::now().format("%H:%M:%S%.3f"));
}

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::var(CHILD).is_ok() {
        runtime.block_on(child())
    } else {
        runtime.block_on(parent())
    }
}

// ---------------------------------------------------------------------------------
// The parent: databases, enqueueing, timing.

async fn parent() -> Result<(), BoxError> {
    let runs: usize = env("RUNS", 3);
    let hold = env("HOLD", 0) == 1;
    for what in env_list("ONLY", "throughput latency") {
        for run in 1..=runs {
            match what.as_str() {
                "throughput" => {
                    for w in env_list("TP_WORKERS", "1 2") {
                        for c in env_list("TP_CONC", "10 24") {
                            let (w, c) = (w.parse()?, c.parse()?);
                            log(&format!(
                                "== throughput WORKERS={w} CONCURRENCY={c} run {run}/{runs}"
                            ));
                            emit(&throughput(w, c, hold).await?);
                        }
                    }
                }
                "latency" => {
                    let (w, c) = (env("LAT_WORKERS", 1), env("LAT_CONC", 50));
                    log(&format!(
                        "== latency WORKERS={w} CONCURRENCY={c} run {run}/{runs}"
                    ));
                    emit(&latency(w, c, hold).await?);
                }
                other => return Err(format!("unknown benchmark {other}").into()),
            }
        }
    }
    Ok(())
}

fn emit(line: &Value) {
    println!("{line}");
}

fn admin_options() -> Result<PgConnectOptions, BoxError> {
    let url = std::env::var("PGURL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    Ok(url
        .parse::<PgConnectOptions>()?
        .log_statements(tracing::log::LevelFilter::Off))
}

fn db_url() -> Result<String, BoxError> {
    let url = std::env::var("PGURL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let (server, _) = url.rsplit_once('/').ok_or("PGURL has no database part")?;
    Ok(format!("{server}/{DB}"))
}

/// Drops and creates the benchmark's database, migrates it, and returns a pool on it.
async fn recreate_db() -> Result<PgPool, BoxError> {
    let mut admin = sqlx::PgConnection::connect_with(&admin_options()?).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {DB} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {DB}")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(
            db_url()?
                .parse::<PgConnectOptions>()?
                .log_statements(tracing::log::LevelFilter::Off),
        )
        .await?;
    chronos_postgres::migrate(&pool).await?;
    Ok(pool)
}

async fn drop_db(pool: PgPool) -> Result<(), BoxError> {
    pool.close().await;
    if env("KEEP_DB", 0) == 1 {
        return Ok(());
    }
    let mut admin = sqlx::PgConnection::connect_with(&admin_options()?).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {DB} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

/// A no-op entry added at `added` (its key's instant) and due at `run_at`.
fn noop_entry(added: chrono::DateTime<Utc>, run_at: chrono::DateTime<Utc>) -> QueueEntry {
    QueueEntry {
        key: OccurrenceKey::scheduled(Uuid::new_v4(), added),
        run_at,
        attempt: 0,
        execution_id: None,
    }
}

async fn count(pool: &PgPool) -> Result<i64, BoxError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM queue_entries")
        .fetch_one(pool)
        .await?)
}

async fn throughput(w: usize, c: usize, hold: bool) -> Result<Value, BoxError> {
    let (n, chunk): (usize, usize) = (env("N", 50_000), env("CHUNK", 1_000));
    let t_start = Utc::now();
    let pool = recreate_db().await?;
    let queue = PgQueue::new(pool.clone(), Arc::new(SystemClock)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (g0, p0) = (pg_cpu_s(), own_cpu_s());
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let now = Utc::now();
        let entries: Vec<QueueEntry> = (i..n.min(i + chunk))
            .map(|_| noop_entry(now, now))
            .collect();
        queue.enqueue(&entries).await?;
        i += chunk;
    }
    let enqueue_s = started.elapsed().as_secs_f64();
    let (g1, p1) = (pg_cpu_s(), own_cpu_s());
    let queued = count(&pool).await?;
    let table_bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('queue_entries')")
        .fetch_one(&pool)
        .await?;
    log(&format!(
        "enqueued {n} in {enqueue_s:.3} s ({:.0} jobs/s), queued={queued}",
        n as f64 / enqueue_s
    ));

    let mut workers = Workers::start(w, c, false, hold)?;
    workers.ready().await?;
    let g2 = pg_cpu_s();
    let t0 = workers.go()?;
    let how = workers.wait_for(n as u64, Duration::from_secs(600)).await?;
    // Done = gone from the table (as graphile-worker's harness: polled every 5 ms).
    let mut left = -1;
    let mut t_done = None;
    for _ in 0..6000 {
        left = count(&pool).await?;
        if left == 0 {
            t_done = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let g3 = pg_cpu_s();
    let result = workers.stop().await?;
    let process_s = t_done
        .unwrap_or_else(Instant::now)
        .duration_since(t0)
        .as_secs_f64();
    let handler_s = result
        .last
        .map_or(process_s, |last| last.duration_since(t0).as_secs_f64());
    log(&format!(
        "processed {} in {process_s:.3} s ({:.0} jobs/s; last ack at {handler_s:.3} s) per-process={:?} {how} left={left}",
        result.done,
        n as f64 / process_s,
        result.per_process
    ));
    let line = json!({
        "label": format!("chronos-pgqueue.throughput.w{w}.c{c}.batch{}", if hold { ".hold" } else { "" }),
        "cfg": {
            "n": n, "chunk": chunk, "workers": w, "concurrency": c, "mode": "batch",
            "reserve_batch": batch(), "window": window(), "hold_slot_until_ack": hold,
            "t0": t_start.timestamp_millis() as f64 / 1000.0,
            "t1": Utc::now().timestamp_millis() as f64 / 1000.0,
        },
        "enqueue_s": round3(enqueue_s),
        "enqueue_jobs_per_s": (n as f64 / enqueue_s).round(),
        "process_s": round3(process_s),
        "process_jobs_per_s": (n as f64 / process_s).round(),
        "handler_jobs_per_s": (result.done as f64 / handler_s).round(),
        "completed": result.done,
        "jobs_left": left,
        "timed_out": i32::from(how == "timeout" || left != 0),
        "enqueue_pg_cpu": round2((g1 - g0) / enqueue_s),
        "enqueue_producer_cpu": round2((p1 - p0) / enqueue_s),
        "process_pg_cpu": round2((g3 - g2) / process_s),
        "process_workers_cpu": round2(result.cpu_s / process_s),
        "pg_bytes_per_queued_job": (table_bytes as f64 / n as f64).round(),
    });
    drop(queue);
    drop_db(pool).await?;
    Ok(line)
}

async fn latency(w: usize, c: usize, hold: bool) -> Result<Value, BoxError> {
    let (n, chunk, spread): (usize, usize, u64) = (
        env("LAT_N", 2_000),
        env("LAT_CHUNK", 100),
        env("SPREAD_MS", 10_000),
    );
    let t_start = Utc::now();
    let pool = recreate_db().await?;
    let queue = PgQueue::new(pool.clone(), Arc::new(SystemClock)).await?;
    let delays: Vec<i64> = (0..n)
        .map(|i| ((i as f64 + 0.5) * spread as f64 / n as f64).floor() as i64)
        .collect();

    let mut workers = Workers::start(w, c, true, hold)?;
    workers.ready().await?;
    workers.go()?;
    workers.started().await?;
    tokio::time::sleep(Duration::from_millis(500)).await; // let the workers reach their idle wait
    let added = Instant::now();
    for part in delays.chunks(chunk) {
        let base = Utc::now();
        let entries: Vec<QueueEntry> = part
            .iter()
            .map(|d| noop_entry(base, base + chrono::Duration::milliseconds(*d)))
            .collect();
        queue.enqueue(&entries).await?;
    }
    let add_ms = added.elapsed().as_millis();
    log(&format!(
        "added {n} jobs in {add_ms} ms; waiting ~{spread} ms"
    ));
    let how = workers
        .wait_for(n as u64, Duration::from_millis(spread + 60_000))
        .await?;
    let result = workers.stop().await?;
    let late: Vec<f64> = result.samples.iter().map(|s| s.0).collect();
    let late1s: Vec<f64> = result
        .samples
        .iter()
        .filter(|s| s.1 >= 1000.0)
        .map(|s| s.0)
        .collect();
    let mut line = json!({
        "label": format!("chronos-pgqueue.latency.w{w}.c{c}{}", if hold { ".hold" } else { "" }),
        "cfg": {
            "n": n, "spread_ms": spread, "dist": "even", "chunk": chunk, "workers": w,
            "concurrency": c, "mode": "notify+timer",
            "t0": t_start.timestamp_millis() as f64 / 1000.0,
            "t1": Utc::now().timestamp_millis() as f64 / 1000.0,
        },
        "add_ms": add_ms,
        "completed": result.done,
        "timed_out": i32::from(how == "timeout"),
        "early_jobs": late.iter().filter(|l| **l < 0.0).count(),
    });
    if let Value::Object(fields) = &mut line {
        fields.extend(stats(&late, "lateness_"));
        fields.extend(stats(&late1s, "lateness_late1s_"));
    }
    log(&format!(
        "lateness p50={} p95={} p99={} max={} ms",
        line["lateness_p50"], line["lateness_p95"], line["lateness_p99"], line["lateness_max"]
    ));
    drop(queue);
    drop_db(pool).await?;
    Ok(line)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// min, nearest-rank p50/p95/p99, max and mean, as the anchors' `lib.js`.
fn stats(values: &[f64], prefix: &str) -> serde_json::Map<String, Value> {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let pick = |p: f64| -> Value {
        if s.is_empty() {
            return Value::Null;
        }
        let i = ((p / 100.0 * s.len() as f64).ceil() as usize).saturating_sub(1);
        json!(round3(s[i.min(s.len() - 1)]))
    };
    let mean = if s.is_empty() {
        Value::Null
    } else {
        json!(round3(s.iter().sum::<f64>() / s.len() as f64))
    };
    let mut out = serde_json::Map::new();
    out.insert(
        format!("{prefix}min"),
        s.first().map_or(Value::Null, |v| json!(round3(*v))),
    );
    out.insert(format!("{prefix}p50"), pick(50.0));
    out.insert(format!("{prefix}p95"), pick(95.0));
    out.insert(format!("{prefix}p99"), pick(99.0));
    out.insert(
        format!("{prefix}max"),
        s.last().map_or(Value::Null, |v| json!(round3(*v))),
    );
    out.insert(format!("{prefix}mean"), mean);
    out
}

/// CPU seconds used so far by the PostgreSQL server processes, as the anchors' `lib.js`
/// counts them (the postmaster with its reaped children, and every live backend).
fn pg_cpu_s() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut ticks = 0u64;
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
        ticks += f(11) + f(12) + if parent_is_pg { 0 } else { f(13) + f(14) };
    }
    ticks as f64 / 100.0
}

/// `(comm, fields after comm)` of `/proc/<pid>/stat`.
fn proc_stat(pid: &str) -> Option<(String, Vec<String>)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (s.find('(')?, s.rfind(')')?);
    let comm = s.get(open + 1..close)?.to_owned();
    let fields = s.get(close + 2..)?.split(' ').map(str::to_owned).collect();
    Some((comm, fields))
}

/// CPU seconds this process has used.
fn own_cpu_s() -> f64 {
    proc_stat("self").map_or(0.0, |(_, f)| {
        let v = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (v(11) + v(12)) as f64 / 100.0
    })
}

// ---------------------------------------------------------------------------------
// Worker processes, driven over stdin/stdout.

/// A message from a worker process.
enum Message {
    Ready,
    Started,
    Progress {
        done: u64,
        last_us: i64,
    },
    Final {
        done: u64,
        last_us: i64,
        cpu_s: f64,
        samples: Vec<(f64, f64)>,
    },
    Exited,
}

struct Workers {
    children: Vec<Child>,
    stdins: Vec<ChildStdin>,
    messages: mpsc::UnboundedReceiver<(usize, Message)>,
    done: Vec<u64>,
    last_us: Vec<i64>,
    /// The start signal: wall clock (to turn the children's timestamps into offsets)
    /// and monotonic.
    go: Option<(i64, Instant)>,
}

struct Outcome {
    done: u64,
    per_process: Vec<u64>,
    last: Option<Instant>,
    cpu_s: f64,
    samples: Vec<(f64, f64)>,
}

impl Workers {
    fn start(
        processes: usize,
        concurrency: usize,
        record: bool,
        hold: bool,
    ) -> Result<Workers, BoxError> {
        let exe = std::env::current_exe()?;
        let (tx, messages) = mpsc::unbounded_channel();
        let mut children = Vec::new();
        let mut stdins = Vec::new();
        for i in 0..processes {
            let mut child = Command::new(&exe)
                .env(CHILD, i.to_string())
                .env("QB_DATABASE_URL", db_url()?)
                .env("QB_CONCURRENCY", concurrency.to_string())
                .env("QB_RECORD", if record { "1" } else { "0" })
                .env("QB_HOLD", if hold { "1" } else { "0" })
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let stdout = child.stdout.take().ok_or("no stdout of a worker")?;
            stdins.push(child.stdin.take().ok_or("no stdin of a worker")?);
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(m) = parse_message(&line) {
                        let _ = tx.send((i, m));
                    }
                }
                let _ = tx.send((i, Message::Exited));
            });
            children.push(child);
        }
        Ok(Workers {
            children,
            stdins,
            messages,
            done: vec![0; processes],
            last_us: vec![0; processes],
            go: None,
        })
    }

    async fn next(&mut self) -> Result<(usize, Message), BoxError> {
        let (i, m) = self.messages.recv().await.ok_or("all workers are gone")?;
        match m {
            Message::Exited => Err(format!("worker {i} exited early").into()),
            Message::Progress { done, last_us } => {
                self.done[i] = done;
                self.last_us[i] = last_us;
                Ok((i, Message::Progress { done, last_us }))
            }
            m => Ok((i, m)),
        }
    }

    async fn all(&mut self, want: fn(&Message) -> bool) -> Result<(), BoxError> {
        let mut seen = vec![false; self.children.len()];
        while !seen.iter().all(|s| *s) {
            let (i, m) = self.next().await?;
            if want(&m) {
                seen[i] = true;
            }
        }
        Ok(())
    }

    async fn ready(&mut self) -> Result<(), BoxError> {
        self.all(|m| matches!(m, Message::Ready)).await
    }

    async fn started(&mut self) -> Result<(), BoxError> {
        self.all(|m| matches!(m, Message::Started)).await
    }

    fn send(&mut self, command: &str) -> Result<(), BoxError> {
        for stdin in &mut self.stdins {
            writeln!(stdin, "{command}")?;
            stdin.flush()?;
        }
        Ok(())
    }

    fn go(&mut self) -> Result<Instant, BoxError> {
        let t0 = Instant::now();
        self.go = Some((Utc::now().timestamp_micros(), t0));
        self.send("go")?;
        Ok(t0)
    }

    async fn wait_for(&mut self, target: u64, timeout: Duration) -> Result<&'static str, BoxError> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.done.iter().sum::<u64>() < target {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(m) => {
                    m?;
                }
                Err(_) => return Ok("timeout"),
            }
        }
        Ok("done")
    }

    async fn stop(mut self) -> Result<Outcome, BoxError> {
        self.send("stop")?;
        let mut finals = HashMap::new();
        while finals.len() < self.children.len() {
            let (i, m) = self.next().await?;
            if let Message::Final {
                done,
                last_us,
                cpu_s,
                samples,
            } = m
            {
                self.done[i] = done;
                self.last_us[i] = last_us;
                finals.insert(i, (cpu_s, samples));
            }
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        let last_us = self.last_us.iter().copied().max().unwrap_or(0);
        let last = self.go.and_then(|(go_us, t0)| {
            u64::try_from(last_us - go_us)
                .ok()
                .map(|d| t0 + Duration::from_micros(d))
        });
        let mut cpu_s = 0.0;
        let mut samples = Vec::new();
        for (_, (c, s)) in finals {
            cpu_s += c;
            samples.extend(s);
        }
        Ok(Outcome {
            done: self.done.iter().sum(),
            per_process: self.done.clone(),
            last,
            cpu_s,
            samples,
        })
    }
}

fn parse_message(line: &str) -> Option<Message> {
    let v: Value = serde_json::from_str(line).ok()?;
    let num = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    Some(match v.get("type")?.as_str()? {
        "ready" => Message::Ready,
        "started" => Message::Started,
        "progress" => Message::Progress {
            done: num("done") as u64,
            last_us: num("last_us") as i64,
        },
        "final" => Message::Final {
            done: num("done") as u64,
            last_us: num("last_us") as i64,
            cpu_s: num("cpu_s"),
            samples: serde_json::from_value(v.get("samples")?.clone()).ok()?,
        },
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------
// A worker process.

fn say(message: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{message}");
    let _ = out.flush();
}

async fn child() -> Result<(), BoxError> {
    let url: String = env("QB_DATABASE_URL", String::new());
    let concurrency: usize = env("QB_CONCURRENCY", 24);
    let record = env("QB_RECORD", 0) == 1;
    let hold = env("QB_HOLD", 0) == 1;
    let worker = format!("bench-{}", std::process::id());
    let connections: u32 = env("POOL", concurrency.max(8) as u32 + 2);
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .connect_with(
            url.parse::<PgConnectOptions>()?
                .log_statements(tracing::log::LevelFilter::Off),
        )
        .await?;
    // Open every connection before the start, so connection set-up is not timed.
    let mut opened = Vec::new();
    for _ in 0..connections {
        opened.push(pool.acquire().await?);
    }
    drop(opened);

    let (commands_tx, mut commands) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if commands_tx.send(line.trim().to_owned()).is_err() {
                break;
            }
        }
    });
    say(json!({"type": "ready"}));
    while commands.recv().await.as_deref() != Some("go") {}
    let cpu0 = own_cpu_s();
    let queue = PgQueue::new(pool.clone(), Arc::new(SystemClock)).await?;
    let stats = Arc::new(Stats::default());
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let worker_loop = tokio::spawn(work(
        queue.clone(),
        worker,
        concurrency,
        record,
        hold,
        stats.clone(),
        samples.clone(),
        stop.clone(),
    ));
    say(json!({"type": "started"}));

    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut reported = u64::MAX;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let done = stats.done.load(Ordering::Relaxed);
                if done != reported {
                    reported = done;
                    say(json!({"type": "progress", "done": done, "last_us": stats.last_us.load(Ordering::Relaxed)}));
                }
            }
            command = commands.recv() => match command.as_deref() {
                Some("stop") | None => break,
                Some(_) => {}
            },
        }
    }
    stop.cancel();
    let _ = worker_loop.await;
    let cpu_s = own_cpu_s() - cpu0;
    let samples: Vec<(f64, f64)> = samples.lock().map(|s| s.clone()).unwrap_or_default();
    say(json!({
        "type": "final",
        "done": stats.done.load(Ordering::Relaxed),
        "last_us": stats.last_us.load(Ordering::Relaxed),
        "cpu_s": cpu_s,
        "samples": samples,
    }));
    drop(queue);
    pool.close().await;
    Ok(())
}

#[derive(Default)]
struct Stats {
    /// Entries acked.
    done: AtomicU64,
    /// When the last ack returned, epoch µs.
    last_us: std::sync::atomic::AtomicI64,
}

/// The worker loop: reserve a batch (up to [`batch`], keeping at most [`window`]
/// entries reserved and not handled), run each entry's no-op handler on one of
/// `concurrency` slots, ack it; `wait()` when the queue had fewer than asked for.
#[allow(clippy::too_many_arguments)]
async fn work(
    queue: PgQueue,
    worker: String,
    concurrency: usize,
    record: bool,
    hold: bool,
    stats: Arc<Stats>,
    samples: Arc<std::sync::Mutex<Vec<(f64, f64)>>>,
    stop: tokio_util::sync::CancellationToken,
) {
    let (batch_size, window) = (batch(), Arc::new(Semaphore::new(window())));
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let mut permits = tokio::select! {
            p = window.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            () = stop.cancelled() => return,
        };
        let more = window.available_permits().min(batch_size.saturating_sub(1));
        if let Ok(extra) = window.clone().try_acquire_many_owned(more as u32) {
            permits.merge(extra);
        }
        let want = permits.num_permits();
        let batch = match queue.reserve(&worker, want, LEASE).await {
            Ok(batch) => batch,
            Err(error) => {
                log(&format!("reserve failed: {error}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Fewer than asked for: nothing more was due a moment ago, so wait (which
        // returns at once if something is due by now) rather than ask again.
        let short = batch.len() < want;
        for r in batch {
            let Some(entry_permit) = permits.split(1) else {
                break;
            };
            let (queue, slots, stats, samples) =
                (queue.clone(), slots.clone(), stats.clone(), samples.clone());
            tasks.spawn(async move {
                let Ok(slot) = slots.acquire_owned().await else {
                    return;
                };
                // The no-op handler.
                if record {
                    let now = Utc::now();
                    let late =
                        (now - r.entry.run_at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                    let delay = (r.entry.run_at - r.entry.key.scheduled_for)
                        .num_microseconds()
                        .unwrap_or(0) as f64
                        / 1000.0;
                    if let Ok(mut s) = samples.lock() {
                        s.push((late, delay));
                    }
                }
                // Handled: the next entry may be taken.
                drop(entry_permit);
                let slot = if hold {
                    Some(slot)
                } else {
                    drop(slot);
                    None
                };
                match queue.ack(&r.lease).await {
                    Ok(()) => {
                        stats.done.fetch_add(1, Ordering::Relaxed);
                        stats
                            .last_us
                            .fetch_max(Utc::now().timestamp_micros(), Ordering::Relaxed);
                    }
                    Err(error) => log(&format!("ack failed: {error}")),
                }
                drop(slot);
            });
        }
        while tasks.try_join_next().is_some() {}
        if short {
            drop(permits);
            tokio::select! {
                waited = queue.wait() => if let Err(error) = waited {
                    log(&format!("wait failed: {error}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                },
                () = stop.cancelled() => return,
            }
        }
    }
}
