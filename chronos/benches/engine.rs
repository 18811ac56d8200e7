//! Engine benchmarks on the in-memory backends (release build):
//!
//! ```text
//! cargo bench -p chronos --bench engine            # N=200000 LATENESS_N=10000 SPREAD_MS=10000
//! ```
//!
//! - throughput: N no-op jobs are created with the workers off (the enqueue rate is
//!   reported too), then a worker process (sharing the store and queue) runs them all;
//!   `process_jobs_per_s` = N / time from the workers' start to the last job's end.
//! - lateness: LATENESS_N jobs due at instants spread evenly over SPREAD_MS, starting
//!   one second from now; each records `start - due` in ms.
//!
//! One JSON line per measurement, labelled like the anchors harnesses
//! (`chronos.throughput.memory.c<concurrency>`, `chronos.latency.memory`), so
//! `node ../shared/anchors/lib/compare.js` can put them beside BullMQ's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::Utc;
use chronos::executor::JobContext;
use chronos::memory::{MemoryQueue, MemoryStore};
use chronos::{Chronos, JobSpec};
use serde_json::{Value, json};
use tokio::sync::Notify;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Counter {
    done: AtomicU64,
    target: u64,
    all_done: Notify,
}

impl Counter {
    fn new(target: u64) -> Arc<Self> {
        Arc::new(Self {
            done: AtomicU64::new(0),
            target,
            all_done: Notify::new(),
        })
    }

    fn tick(&self) {
        if self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            self.all_done.notify_one();
        }
    }
}

async fn throughput(n: u64, concurrency: usize) -> Value {
    let store = MemoryStore::new();
    let queue = MemoryQueue::with_system_clock();
    let api = Chronos::builder()
        .store(store.clone())
        .queue(queue.clone())
        .workers(false)
        .sync(false)
        .executor("noop", |_ctx: JobContext| async { Ok(Value::Null) })
        .build()
        .await
        .expect("api");
    let t0 = Instant::now();
    for i in 0..n {
        api.create(JobSpec::immediate(format!("noop {i}")).handler("noop"))
            .await
            .expect("create");
    }
    let enqueue = n as f64 / t0.elapsed().as_secs_f64();
    let counter = Counter::new(n);
    let c = counter.clone();
    let t1 = Instant::now();
    let worker = Chronos::builder()
        .store(store.clone())
        .queue(queue.clone())
        .sync(false)
        .concurrency(concurrency)
        .executor("noop", move |_ctx: JobContext| {
            let c = c.clone();
            async move {
                c.tick();
                Ok(Value::Null)
            }
        })
        .build()
        .await
        .expect("worker");
    counter.all_done.notified().await;
    let process = n as f64 / t1.elapsed().as_secs_f64();
    worker.shutdown().await.expect("shutdown");
    json!({
        "label": format!("chronos.throughput.memory.c{concurrency}"),
        "jobs": n,
        "enqueue_jobs_per_s": enqueue.round(),
        "process_jobs_per_s": process.round(),
    })
}

async fn lateness(n: u64, spread_ms: u64) -> Value {
    let late = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n as usize)));
    let counter = Counter::new(n);
    let (l, c) = (late.clone(), counter.clone());
    let chronos = Chronos::builder()
        .concurrency(64)
        .executor("stamp", move |ctx: JobContext| {
            let (l, c) = (l.clone(), c.clone());
            async move {
                let lateness = Utc::now() - ctx.scheduled_for();
                l.lock()
                    .expect("lock")
                    .push(lateness.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
                c.tick();
                Ok(Value::Null)
            }
        })
        .build()
        .await
        .expect("build");
    let start = Utc::now() + chrono::Duration::seconds(1);
    for i in 0..n {
        let due = start + chrono::Duration::microseconds((i * spread_ms * 1000 / n) as i64);
        chronos
            .create(JobSpec::at(format!("due {i}"), due).handler("stamp"))
            .await
            .expect("create");
    }
    counter.all_done.notified().await;
    chronos.shutdown().await.expect("shutdown");
    let mut v = late.lock().expect("lock").clone();
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    json!({
        "label": "chronos.latency.memory",
        "jobs": n,
        "spread_ms": spread_ms,
        "lateness_min": v[0],
        "lateness_p50": pct(0.50),
        "lateness_p95": pct(0.95),
        "lateness_p99": pct(0.99),
        "lateness_max": v[v.len() - 1],
        "early_jobs": v.iter().filter(|x| **x < 0.0).count(),
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n = env("N", 200_000);
    let concurrency = env("CONCURRENCY", 256) as usize;
    let lateness_n = env("LATENESS_N", 10_000);
    let spread = env("SPREAD_MS", 10_000);
    let only = std::env::var("ONLY").unwrap_or_default();
    runtime.block_on(async {
        if only.is_empty() || only == "throughput" {
            emit(throughput(n, concurrency).await);
        }
        if only.is_empty() || only == "lateness" {
            emit(lateness(lateness_n, spread).await);
        }
    });
}

#[allow(clippy::print_stdout)]
fn emit(line: Value) {
    println!("{line}");
}
