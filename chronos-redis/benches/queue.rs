//! Benchmarks of `RedisQueue`, with the definitions of the BullMQ anchors
//! (`/work/shared/anchors/bullmq`): one JSON line per measurement on stdout, labelled
//! `chronos.<test>.<variant>` so that `node anchors/lib/compare.js bullmq=… chronos=…`
//! aligns them with BullMQ's.
//!
//! - `throughput.w{1,2}.c50`: N no-op entries enqueued in chunks of 1,000 (no worker
//!   running), then W worker processes (this binary, spawned) × 50 concurrent
//!   handlers reserve, run a no-op and ack until the queue is empty.
//! - `latency.w1.c50`: one worker process waits first; then N delayed entries spread
//!   evenly over 10 s are added in chunks of 100; lateness = handler start − run_at.
//! - `retry`: one entry whose handler fails twice, retried at backoff × 2^n (100 ms);
//!   gaps between attempt starts.
//! - `delayed_memory.p0`: `INFO memory` used_memory delta / N for N delayed entries.
//!
//! Run: `cargo bench -p chronos-redis --bench queue` (needs `[[bench]] name = "queue"
//! harness = false`). Env: `CHRONOS_REDIS_URL`, `ONLY` (space-separated subset of
//! `throughput latency retry memory`), `N_TP` (50000), `N_LAT` (2000), `N_MEM` (100000),
//! `REPEAT` (3).

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark harness"
)]
#![allow(missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use chronos::clock::{Clock, SystemClock};
use chronos::model::OccurrenceKey;
use chronos::queue::{Queue, QueueEntry};
use chronos_redis::RedisQueue;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

const CONCURRENCY: usize = 50;
const LEASE: Duration = Duration::from_secs(60);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn url() -> String {
    chronos_redis::testing::redis_url()
}

fn now_us() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn entry_at(run_at: chrono::DateTime<Utc>) -> QueueEntry {
    QueueEntry {
        key: OccurrenceKey::scheduled(Uuid::new_v4(), run_at),
        run_at,
        attempt: 0,
        execution_id: None,
    }
}

async fn open(prefix: &str) -> RedisQueue {
    let client = redis::Client::open(url()).unwrap();
    RedisQueue::connect(client, prefix, Arc::new(SystemClock))
        .await
        .unwrap()
}

async fn admin() -> redis::aio::MultiplexedConnection {
    redis::Client::open(url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

async fn delete_prefix(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(conn)
            .await
            .unwrap();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn stats(values: &[f64], prefix: &str, out: &mut serde_json::Map<String, Value>) {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let mean = s.iter().sum::<f64>() / s.len().max(1) as f64;
    out.insert(
        format!("{prefix}min"),
        json!(r3(s.first().copied().unwrap_or(f64::NAN))),
    );
    for p in [50.0, 95.0, 99.0] {
        out.insert(format!("{prefix}p{p}"), json!(r3(percentile(&s, p))));
    }
    out.insert(
        format!("{prefix}max"),
        json!(r3(s.last().copied().unwrap_or(f64::NAN))),
    );
    out.insert(format!("{prefix}mean"), json!(r3(mean)));
}

// ---------------------------------------------------------------------------------
// The worker process.

/// `queue --worker <prefix> <stop_after>`: prints `ready`, waits for a line on stdin,
/// then runs CONCURRENCY handlers until `stop_after` entries are done (0: until the
/// queue is empty) and prints `{"done":…,"last_us":…,"lateness_ms":[…]}`.
async fn worker(prefix: String, stop_after: usize) {
    let q = open(&prefix).await;
    println!("ready");
    std::io::stdout().flush().unwrap();
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).unwrap();
    })
    .await
    .unwrap();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let samples = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let last_us = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let record = stop_after > 0;
    loop {
        if stop_after > 0 && done.load(std::sync::atomic::Ordering::SeqCst) >= stop_after {
            break;
        }
        let first = slots.clone().acquire_owned().await.unwrap();
        let want = slots.available_permits() + 1;
        let batch = q.reserve("bench", want, LEASE).await.unwrap();
        if batch.is_empty() {
            drop(first);
            // Let the handlers in flight finish before deciding whether to stop.
            drop(slots.acquire_many(CONCURRENCY as u32).await.unwrap());
            if stop_after > 0 && done.load(std::sync::atomic::Ordering::SeqCst) >= stop_after {
                break;
            }
            // Done when nothing is left, leased ones included (another process's).
            if stop_after == 0 {
                if q.counts().await.unwrap().total() == 0 {
                    break;
                }
                // Another process holds the last leases. Its acks wake nobody, and
                // once they are in, `wait` has nothing to wait for and would never
                // return: look again shortly instead.
                if let Ok(waited) = tokio::time::timeout(Duration::from_millis(20), q.wait()).await
                {
                    waited.unwrap();
                }
                continue;
            }
            q.wait().await.unwrap();
            continue;
        }
        let mut first = Some(first);
        for r in batch {
            let permit = first
                .take()
                .or_else(|| slots.clone().try_acquire_owned().ok())
                .unwrap();
            let (q, samples, done, last_us) =
                (q.clone(), samples.clone(), done.clone(), last_us.clone());
            tokio::spawn(async move {
                if record {
                    let late = (Utc::now() - r.entry.run_at)
                        .num_microseconds()
                        .unwrap_or(0);
                    samples.lock().unwrap().push(late as f64 / 1000.0);
                }
                // The no-op handler, then the ack.
                q.ack(&r.lease).await.unwrap();
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                last_us.fetch_max(
                    Utc::now().timestamp_micros(),
                    std::sync::atomic::Ordering::SeqCst,
                );
                drop(permit);
            });
        }
    }
    let _ = slots.acquire_many(CONCURRENCY as u32).await.unwrap();
    let out = json!({
        "done": done.load(std::sync::atomic::Ordering::SeqCst),
        "last_us": last_us.load(std::sync::atomic::Ordering::SeqCst),
        "lateness_ms": *samples.lock().unwrap(),
    });
    println!("{out}");
}

struct Pool {
    children: Vec<std::process::Child>,
}

impl Pool {
    /// Spawns `n` worker processes and waits until each is connected.
    fn start(n: usize, prefix: &str, stop_after: usize) -> Pool {
        let exe = std::env::current_exe().unwrap();
        let mut children = Vec::new();
        for _ in 0..n {
            let mut child = Command::new(&exe)
                .arg("--worker")
                .arg(prefix)
                .arg(stop_after.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "ready");
            children.push(child);
        }
        Pool { children }
    }

    /// Starts every worker; returns the instant (epoch µs).
    fn go(&mut self) -> i64 {
        let t0 = Utc::now().timestamp_micros();
        for c in &mut self.children {
            writeln!(c.stdin.as_mut().unwrap(), "go").unwrap();
        }
        t0
    }

    fn finish(self) -> Vec<Value> {
        self.children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                let text = String::from_utf8(out.stdout).unwrap();
                serde_json::from_str(text.lines().last().unwrap()).unwrap()
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------
// The benchmarks.

async fn throughput(w: usize) {
    let n = env_usize("N_TP", 50_000);
    let prefix = format!("chronos-bench:{{tp-{}}}", Uuid::new_v4().simple());
    let mut conn = admin().await;
    let q = open(&prefix).await;
    let mem0 = used_memory(&mut conn).await;
    let t = Instant::now();
    let now = now_us();
    let entries: Vec<QueueEntry> = (0..n).map(|_| entry_at(now)).collect();
    for chunk in entries.chunks(1_000) {
        q.enqueue(chunk).await.unwrap();
    }
    let enqueue_s = t.elapsed().as_secs_f64();
    let mem1 = used_memory(&mut conn).await;
    let mut pool = Pool::start(w, &prefix, 0);
    let t0 = pool.go();
    let results = pool.finish();
    let done: u64 = results.iter().map(|r| r["done"].as_u64().unwrap()).sum();
    let last = results
        .iter()
        .map(|r| r["last_us"].as_i64().unwrap())
        .max()
        .unwrap();
    let process_s = (last - t0) as f64 / 1e6;
    println!(
        "{}",
        json!({
            "label": format!("chronos.throughput.w{w}.c{CONCURRENCY}"),
            "cfg": {"n": n, "chunk": 1000, "workers": w, "concurrency": CONCURRENCY},
            "enqueue_s": enqueue_s, "enqueue_jobs_per_s": (n as f64 / enqueue_s).round(),
            "process_s": process_s, "process_jobs_per_s": (done as f64 / process_s).round(),
            "completed": done,
            "redis_bytes_per_waiting_job": ((mem1 - mem0) as f64 / n as f64).round(),
        })
    );
    delete_prefix(&mut conn, &prefix).await;
}

async fn latency() {
    let n = env_usize("N_LAT", 2_000);
    let spread_ms = 10_000i64;
    let prefix = format!("chronos-bench:{{lat-{}}}", Uuid::new_v4().simple());
    let mut conn = admin().await;
    let q = open(&prefix).await;
    let mut pool = Pool::start(1, &prefix, n);
    pool.go();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ta = now_us();
    let entries: Vec<QueueEntry> = (0..n as i64)
        .map(|i| {
            let delay_us = ((i as f64 + 0.5) * spread_ms as f64 * 1000.0 / n as f64) as i64;
            entry_at(ta + chrono::Duration::microseconds(delay_us))
        })
        .collect();
    for chunk in entries.chunks(100) {
        q.enqueue(chunk).await.unwrap();
    }
    let add_ms = (now_us() - ta).num_milliseconds();
    let results = pool.finish();
    let late: Vec<f64> = results[0]["lateness_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mut out = serde_json::Map::new();
    out.insert(
        "label".into(),
        json!(format!("chronos.latency.w1.c{CONCURRENCY}")),
    );
    out.insert("cfg".into(), json!({"n": n, "spread_ms": spread_ms, "chunk": 100, "workers": 1, "concurrency": CONCURRENCY}));
    out.insert("add_ms".into(), json!(add_ms));
    out.insert("completed".into(), json!(late.len()));
    out.insert(
        "early_jobs".into(),
        json!(late.iter().filter(|x| **x < 0.0).count()),
    );
    stats(&late, "lateness_", &mut out);
    println!("{}", Value::Object(out));
    delete_prefix(&mut conn, &prefix).await;
}

async fn retry() {
    let repeat = env_usize("REPEAT", 3);
    let backoff_ms = 100i64;
    let fails = 2u32;
    let prefix = format!("chronos-bench:{{retry-{}}}", Uuid::new_v4().simple());
    let mut conn = admin().await;
    let q = open(&prefix).await;
    let clock = SystemClock;
    for rep in 0..repeat {
        q.enqueue(&[entry_at(now_us())]).await.unwrap();
        let mut starts = Vec::new();
        loop {
            let got = q.reserve("bench", 1, LEASE).await.unwrap();
            let Some(r) = got.into_iter().next() else {
                q.wait().await.unwrap();
                continue;
            };
            let t = clock.now();
            starts.push(t);
            if r.entry.attempt < fails {
                let delay = backoff_ms * (1 << r.entry.attempt);
                q.retry(
                    &r.lease,
                    t + chrono::Duration::milliseconds(delay),
                    r.entry.attempt + 1,
                    None,
                )
                .await
                .unwrap();
            } else {
                q.ack(&r.lease).await.unwrap();
                break;
            }
        }
        let mut row = serde_json::Map::new();
        row.insert("label".into(), json!("chronos.retry"));
        row.insert(
            "cfg".into(),
            json!({"rep": rep, "backoff_ms": backoff_ms, "fails": fails}),
        );
        row.insert("attempts_seen".into(), json!(starts.len()));
        for (i, w) in starts.windows(2).enumerate() {
            let gap = (w[1] - w[0]).num_microseconds().unwrap() as f64 / 1000.0;
            let expected = (backoff_ms * (1 << i)) as f64;
            row.insert(
                format!("gap{}_ms", i + 1),
                json!((gap * 1000.0).round() / 1000.0),
            );
            row.insert(
                format!("gap{}_over_expected_ms", i + 1),
                json!(((gap - expected) * 1000.0).round() / 1000.0),
            );
        }
        println!("{}", Value::Object(row));
    }
    delete_prefix(&mut conn, &prefix).await;
}

async fn memory() {
    let n = env_usize("N_MEM", 100_000);
    let prefix = format!("chronos-bench:{{mem-{}}}", Uuid::new_v4().simple());
    let mut conn = admin().await;
    let q = open(&prefix).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let m0 = used_memory(&mut conn).await;
    let later = now_us() + chrono::Duration::hours(1);
    let entries: Vec<QueueEntry> = (0..n).map(|_| entry_at(later)).collect();
    for chunk in entries.chunks(1_000) {
        q.enqueue(chunk).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let m1 = used_memory(&mut conn).await;
    let due_bytes: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(format!("{prefix}:due"))
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    println!(
        "{}",
        json!({
            "label": "chronos.delayed_memory.p0",
            "cfg": {"n": n, "payload_bytes": 0, "delay_ms": 3_600_000},
            "used_memory_delta": m1 - m0,
            "bytes_per_delayed_job": ((m1 - m0) as f64 / n as f64).round(),
            "key_bytes_per_delayed_job": (due_bytes as f64 / n as f64).round(),
        })
    );
    delete_prefix(&mut conn, &prefix).await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if args.get(1).map(String::as_str) == Some("--worker") {
        let prefix = args[2].clone();
        let stop_after = args[3].parse().unwrap();
        runtime.block_on(worker(prefix, stop_after));
        return;
    }
    let only = std::env::var("ONLY").unwrap_or_else(|_| "throughput latency retry memory".into());
    runtime.block_on(async {
        for what in only.split_whitespace() {
            match what {
                "throughput" => {
                    throughput(1).await;
                    throughput(2).await;
                }
                "latency" => latency().await,
                "retry" => retry().await,
                "memory" => memory().await,
                other => eprintln!("unknown benchmark {other}"),
            }
        }
    });
}
