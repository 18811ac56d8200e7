//! [`PgStore`] latency on a large database (release build, PostgreSQL at
//! `CHRONOS_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`):
//!
//! ```text
//! cargo bench -p chronos-postgres --bench store   # JOBS=1000000 EXECUTIONS=10000000 OWNERS=1000 OPS=2000
//! ```
//!
//! 1. Creates a database of its own (dropped at the end; set `BENCH_DATABASE_URL` to
//!    use, seed once and keep a database of yours instead), and seeds it with set-based
//!    SQL: `JOBS` jobs over `OWNERS` owners (70 % recurring; some paused, completed,
//!    failed, deleted), and `EXECUTIONS` executions over the last 60 days (a tenth of
//!    them on 100 hot jobs), then `VACUUM (ANALYZE)`.
//! 2. Measures `OPS` sequential calls of each operation through a pool configured as
//!    [`chronos_postgres::connect`] configures it (set `PING=0` to skip the health
//!    check it runs before each acquire), and prints one JSON line per operation:
//!    `{"label":"chronos.pgstore.<op>","p50_ms":…,"p99_ms":…,"n":…}`.
//! 3. Prints to stderr the plans (`EXPLAIN (ANALYZE, BUFFERS)`, by `auto_explain` on a
//!    connection of its own, after warming the statements up) of the statements the
//!    store runs for the main operations.

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chronos::model::{
    ExecutionQuery, ExecutionStatus, Job, JobQuery, JobSort, JobSpec, OccurrenceKey, SortOrder,
};
use chronos::store::{Advance, FinishExecution, JobStore, StartExecution, StartOutcome};
use chronos_postgres::PgStore;
use chronos_postgres::testing::TestDb;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};
use uuid::Uuid;

type Res<T> = Result<T, Box<dyn Error>>;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[allow(clippy::print_stdout)]
fn emit(line: serde_json::Value) {
    println!("{line}");
}

/// A small deterministic PRNG (xorshift64*), so runs pick the same rows.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The owner with number `k`, as the seed SQL computes it (`bench_owner`).
fn owner(k: u64) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | u128::from(k))
}

/// Latencies of one operation.
struct Samples {
    label: String,
    times: Vec<Duration>,
}

impl Samples {
    fn new(label: impl Into<String>) -> Self {
        Self {
            label: format!("chronos.pgstore.{}", label.into()),
            times: Vec::new(),
        }
    }

    fn emit(mut self) {
        self.times.sort_unstable();
        let n = self.times.len();
        if n == 0 {
            return;
        }
        let ms = |q: usize| self.times[(n - 1) * q / 100].as_secs_f64() * 1e3;
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        emit(json!({
            "label": self.label,
            "p50_ms": round(ms(50)),
            "p99_ms": round(ms(99)),
            "n": n,
        }));
    }
}

/// Times `n` calls of `op`.
async fn measure<F, Fut>(label: impl Into<String>, n: usize, mut op: F) -> Res<()>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Res<()>>,
{
    let mut s = Samples::new(label);
    for i in 0..n {
        let t = Instant::now();
        op(i).await?;
        s.times.push(t.elapsed());
    }
    s.emit();
    Ok(())
}

// ---------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------

/// Helpers of the seed SQL: a UUID v7 from a time and a hash, and owner number `k`.
/// Job `i` (1-based) is created at an instant computed from `i`; its id, owner and
/// name derive from `i` too (one hash, `md5('j' || i)`), so executions can name their
/// job without a join.
const SEED_FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION bench_v7(ms bigint, hash text) RETURNS uuid
    IMMUTABLE LANGUAGE sql AS
$$ SELECT (lpad(to_hex(ms), 12, '0') || '7' || substr(hash, 1, 3) || '8'
           || substr(hash, 4, 15))::uuid $$;
CREATE OR REPLACE FUNCTION bench_owner(k bigint) RETURNS uuid IMMUTABLE LANGUAGE sql AS
$$ SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(k), 12, '0'))::uuid $$;
"#;

/// `$1`..=`$2` job numbers, `$3` jobs, `$4` owners, `$5` the instant of the seed.
const SEED_JOBS: &str = r#"
INSERT INTO jobs (id, user_id, name, job_type, schedule_type, scheduled_time, cron_expression,
                  timezone, handler, payload, status, next_run, last_executed_at, paused_at,
                  created_at, updated_at, revision)
SELECT bench_v7((extract(epoch FROM created) * 1000)::bigint, h), bench_owner(i % $4),
       'job-' || substr(h, 20, 12),
       CASE WHEN rec THEN 'recurring' ELSE 'one-time' END,
       CASE WHEN rec THEN 'cron' ELSE 'scheduled' END,
       CASE WHEN rec THEN NULL ELSE $5 + make_interval(secs => i % 604800) END,
       CASE WHEN rec THEN '*/5 * * * *' END,
       'UTC', 'noop', '{}', status,
       CASE WHEN status IN ('active', 'paused')
            THEN $5 + make_interval(secs => (i * 7919) % 86400) END,
       CASE WHEN status <> 'active' OR rec THEN created + interval '1 hour' END,
       CASE WHEN status = 'paused' THEN created + interval '2 hours' END,
       created, created + make_interval(secs => (i * 104729) % 86400), 1
FROM (
    SELECT i, created, rec, md5('j' || i) AS h,
           CASE WHEN i % 31 = 0 THEN 'deleted'
                WHEN i % 13 = 0 THEN 'paused'
                WHEN NOT rec AND i % 4 = 0 THEN 'completed'
                WHEN NOT rec AND i % 4 = 1 THEN 'failed'
                ELSE 'active' END AS status
    FROM (SELECT i, i % 10 < 7 AS rec,
                 $5 - interval '400 days' + (interval '365 days' * i / $3) AS created
          FROM generate_series($1::bigint, $2::bigint) AS i) AS g
    OFFSET 0 -- computes h once per row
) AS s
"#;

/// `$1`..=`$2` execution numbers, `$3` executions, `$4` jobs, `$5` owners, `$6` the
/// instant of the seed.
const SEED_EXECUTIONS: &str = r#"
INSERT INTO job_executions (id, job_id, user_id, job_name, scheduled_for, due_at,
                            retry_attempt, status, execution_time, finished_at, duration_ms,
                            output, error_message, worker, manual, created_at)
SELECT bench_v7((extract(epoch FROM created) * 1000)::bigint, md5('e' || e)),
       bench_v7((extract(epoch FROM $6 - interval '400 days' + (interval '365 days' * k / $4))
                 * 1000)::bigint, h),
       bench_owner(k % $5), 'job-' || substr(h, 20, 12), created, created,
       0, status,
       CASE WHEN status <> 'queued' THEN created END,
       CASE WHEN status NOT IN ('queued', 'running') THEN created + make_interval(secs => dur / 1000.0) END,
       CASE WHEN status NOT IN ('queued', 'running') THEN dur END,
       CASE WHEN status = 'success' THEN '{"ok": true}'::jsonb END,
       CASE WHEN status IN ('failed', 'timeout') THEN 'boom' END,
       CASE WHEN status <> 'queued' THEN 'bench' END,
       false, created
FROM (
    SELECT e, created, k, md5('j' || k) AS h, 10 + (e * 31) % 5000 AS dur,
           CASE WHEN e % 100003 = 0 THEN 'queued'
                WHEN e % 100019 = 0 THEN 'running'
                WHEN e % 100 < 85 THEN 'success'
                WHEN e % 100 < 95 THEN 'failed'
                WHEN e % 100 < 97 THEN 'timeout'
                ELSE 'cancelled' END AS status
    FROM (SELECT e,
                 $6 - interval '60 days' + (interval '60 days' * e / $3) AS created,
                 CASE WHEN e % 10 = 0
                      THEN 10 * ((e / 10) % 100) * greatest($4 / 1000, 1) + 1
                      ELSE 1 + (e * 7919) % $4 END AS k
          FROM generate_series($1::bigint, $2::bigint) AS e) AS g
    OFFSET 0 -- computes h once per row
) AS s
"#;

/// The indexes of `table` that back no constraint, as (name, definition).
async fn secondary_indexes(
    conn: &mut sqlx::PgConnection,
    table: &str,
) -> Res<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename = $1 \
           AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass)",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?)
}

/// Drops `indexes` (a bulk load is much faster without them).
async fn drop_indexes(conn: &mut sqlx::PgConnection, indexes: &[(String, String)]) -> Res<()> {
    for (name, _) in indexes {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Recreates `indexes` from their definitions in the catalog (a partitioned table's
/// read `ON ONLY`, which would leave the partitions unindexed).
async fn create_indexes(conn: &mut sqlx::PgConnection, indexes: &[(String, String)]) -> Res<()> {
    for (_, def) in indexes {
        let def = def.replace(" ON ONLY ", " ON ");
        sqlx::query(sqlx::AssertSqlSafe(def))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Runs `sql` over `1..=total` in batches of `batch`, binding `lo`, `hi`, `args` and
/// `now`, on [`LOADERS`] connections at once.
async fn load(
    pool: &PgPool,
    what: &str,
    sql: &'static str,
    total: i64,
    batch: i64,
    args: Vec<i64>,
    now: DateTime<Utc>,
) -> Res<f64> {
    let t = Instant::now();
    let batches = (total + batch - 1) / batch;
    let mut loaders = Vec::new();
    for first in 0..LOADERS {
        let pool = pool.clone();
        let args = args.clone();
        loaders.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            conn.execute("SET synchronous_commit = off").await?;
            let mut b = first;
            while b < batches {
                let lo = b * batch + 1;
                let hi = (lo + batch - 1).min(total);
                let mut q = sqlx::query(sql).bind(lo).bind(hi);
                for a in &args {
                    q = q.bind(*a);
                }
                q.bind(now).execute(&mut *conn).await?;
                b += LOADERS;
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for loader in loaders {
        loader.await??;
    }
    let s = t.elapsed().as_secs_f64();
    eprintln!("seeded {total} {what} in {s:.1} s");
    Ok(s)
}

/// Connections that load at once (the machine this was written for has two cores).
const LOADERS: i64 = 2;

async fn seed(pool: &PgPool, jobs: u64, executions: u64, owners: u64) -> Res<()> {
    let mut conn = pool.acquire().await?;
    conn.execute("SET maintenance_work_mem = '1GB'").await?;
    conn.execute(SEED_FUNCTIONS).await?;
    let now = Utc::now();
    let (jobs_i, execs_i, owners_i) = (
        i64::try_from(jobs)?,
        i64::try_from(executions)?,
        i64::try_from(owners)?,
    );
    let job_indexes = secondary_indexes(&mut conn, "jobs").await?;
    let execution_indexes = secondary_indexes(&mut conn, "job_executions").await?;
    drop_indexes(&mut conn, &job_indexes).await?;
    drop_indexes(&mut conn, &execution_indexes).await?;

    let jobs_s = load(
        pool,
        "jobs",
        SEED_JOBS,
        jobs_i,
        100_000,
        vec![jobs_i, owners_i],
        now,
    )
    .await?;
    let execs_s = load(
        pool,
        "executions",
        SEED_EXECUTIONS,
        execs_i,
        250_000,
        vec![execs_i, jobs_i, owners_i],
        now,
    )
    .await?;

    let t = Instant::now();
    create_indexes(&mut conn, &job_indexes).await?;
    create_indexes(&mut conn, &execution_indexes).await?;
    let index_s = t.elapsed().as_secs_f64();
    eprintln!(
        "recreated {} indexes in {index_s:.1} s",
        job_indexes.len() + execution_indexes.len()
    );

    let t = Instant::now();
    conn.execute("VACUUM (ANALYZE) jobs").await?;
    conn.execute("VACUUM (ANALYZE) job_executions").await?;
    conn.execute("CHECKPOINT").await?;
    let vacuum_s = t.elapsed().as_secs_f64();
    eprintln!("vacuum, analyze and checkpoint in {vacuum_s:.1} s");
    let round = |x: f64| (x * 10.0).round() / 10.0;
    emit(json!({
        "label": "chronos.pgstore.seed",
        "jobs": jobs,
        "executions": executions,
        "owners": owners,
        "jobs_s": round(jobs_s),
        "executions_s": round(execs_s),
        "indexes_s": round(index_s),
        "vacuum_analyze_s": round(vacuum_s),
    }));
    Ok(())
}

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

/// Whether notices (the plans `auto_explain` sends) are printed.
static CAPTURE: AtomicBool = AtomicBool::new(false);

/// A tracing subscriber that prints sqlx's PostgreSQL notices to stderr while
/// [`CAPTURE`] is set, and ignores every other event.
struct NoticePrinter;

const NOTICE_TARGET: &str = "sqlx::postgres::notice";

impl tracing::Subscriber for NoticePrinter {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if meta.target() == NOTICE_TARGET {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.target() == NOTICE_TARGET
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "message" {
                    self.0.push_str(value);
                }
            }

            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0.push_str(&format!("{value:?}"));
                }
            }
        }
        if CAPTURE.load(Ordering::SeqCst) {
            let mut m = Message(String::new());
            event.record(&mut m);
            eprintln!("{}", m.0);
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// A one-connection pool whose statements `auto_explain` explains (ANALYZE, BUFFERS)
/// into notices.
async fn explain_pool(options: PgConnectOptions) -> Res<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "LOAD 'auto_explain'; \
                     SET auto_explain.log_min_duration = 0; \
                     SET auto_explain.log_analyze = on; \
                     SET auto_explain.log_buffers = on; \
                     SET auto_explain.log_level = 'notice'",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

/// Runs `op` six times (so a prepared statement may switch to its generic plan) and
/// prints the plans of a seventh run under `label`.
async fn plan<F, Fut>(label: &str, mut op: F) -> Res<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Res<()>>,
{
    for _ in 0..6 {
        op().await?;
    }
    eprintln!("\n=== plan: {label} ===");
    CAPTURE.store(true, Ordering::SeqCst);
    let result = op().await;
    CAPTURE.store(false, Ordering::SeqCst);
    result
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

struct Sample {
    /// Jobs that are not deleted, as (owner, id).
    visible: Vec<(Uuid, Uuid)>,
    /// Active recurring jobs, as (id, next_run), each used once by start/finish.
    runnable: Vec<(Uuid, DateTime<Utc>)>,
    /// The 100 hot jobs (about a tenth of all executions), as (owner, id).
    hot: Vec<(Uuid, Uuid)>,
}

async fn sample(pool: &PgPool, n: usize, jobs: u64, owners: u64) -> Res<Sample> {
    let n = i64::try_from(n)?;
    let visible = sqlx::query_as(
        "SELECT user_id, id FROM jobs TABLESAMPLE BERNOULLI (2) REPEATABLE (7) \
         WHERE status <> 'deleted' LIMIT $1",
    )
    .bind(n)
    .fetch_all(pool)
    .await?;
    let runnable = sqlx::query_as(
        "SELECT id, next_run FROM jobs TABLESAMPLE BERNOULLI (5) REPEATABLE (11) \
         WHERE status = 'active' AND job_type = 'recurring' AND next_run IS NOT NULL LIMIT $1",
    )
    .bind(n)
    .fetch_all(pool)
    .await?;
    // The hot jobs are numbers 10·m·stride + 1 (m < 100) of the seed: found by owner and name.
    let stride = i64::try_from((jobs / 1000).max(1))?;
    let hot = sqlx::query_as(
        "SELECT j.user_id, j.id FROM jobs j \
         JOIN (SELECT bench_owner(k % $2) AS user_id, 'job-' || substr(md5('j' || k), 20, 12) AS name \
               FROM (SELECT 10 * m * $1 + 1 AS k FROM generate_series(0, 99) AS m) AS h) AS h \
           ON j.user_id = h.user_id AND j.name = h.name \
         WHERE j.status <> 'deleted'",
    )
    .bind(stride)
    .bind(i64::try_from(owners)?)
    .fetch_all(pool)
    .await?;
    Ok(Sample {
        visible,
        runnable,
        hot,
    })
}

fn list_query(sort: JobSort, order: SortOrder, page: u32) -> JobQuery {
    JobQuery {
        sort,
        order,
        page,
        limit: 20,
        ..JobQuery::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    tracing::subscriber::set_global_default(NoticePrinter)?;
    let jobs = env("JOBS", 1_000_000);
    let executions = env("EXECUTIONS", 10_000_000);
    let owners = env("OWNERS", 1_000).max(1);
    let ops = usize::try_from(env("OPS", 2_000))?;
    let ping = env("PING", 1) != 0;

    // The database: a fresh one, or the caller's (seeded once, kept).
    let (test_db, options) = match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => (None, url.parse::<PgConnectOptions>()?),
        Err(_) => {
            let db = TestDb::create().await;
            let options = db.options.clone();
            (Some(db), options)
        }
    };
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(ping)
        .connect_with(options.clone())
        .await?;
    chronos_postgres::migrate(&pool).await?;
    let seeded: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&pool)
        .await?;
    if seeded == 0 {
        seed(&pool, jobs, executions, owners).await?;
    } else {
        eprintln!("using the {seeded} jobs already in the database");
    }
    let store = PgStore::new(pool.clone());
    let s = sample(&pool, ops, jobs, owners).await?;
    eprintln!(
        "sampled {} visible jobs, {} runnable jobs, {} hot jobs",
        s.visible.len(),
        s.runnable.len(),
        s.hot.len()
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let per_owner = (jobs / owners).max(1);
    // A deep page: 80 % into an owner's list.
    let deep = u32::try_from((per_owner * 8 / 10 / 20).max(2))?;

    // create
    measure("create", ops, |i| {
        let store = store.clone();
        let o = owner(rng.below(owners));
        async move {
            let now = Utc::now();
            let mut job = Job::from_spec(
                &JobSpec::cron(format!("bench {i}"), "*/5 * * * *").owner(o),
                chrono_tz::Tz::UTC,
                now,
            );
            job.next_run = Some(now + chrono::Duration::minutes(5));
            store.insert_job(&job).await?;
            Ok(())
        }
    })
    .await?;

    // get
    measure("get", ops, |_| {
        let store = store.clone();
        let (o, id) = *rng.pick(&s.visible);
        async move {
            store
                .find_job(o, id)
                .await?
                .ok_or("a sampled job is missing")?;
            Ok(())
        }
    })
    .await?;

    // list: every sort, both orders, page 1 and a deep page
    let sorts = [
        ("created_at", JobSort::CreatedAt),
        ("updated_at", JobSort::UpdatedAt),
        ("name", JobSort::Name),
        ("next_run", JobSort::NextRun),
    ];
    let orders = [("desc", SortOrder::Desc), ("asc", SortOrder::Asc)];
    let list_ops = (ops / 4).max(1);
    for (sort_name, sort) in sorts {
        for (order_name, order) in orders {
            for (page_name, page) in [("p1", 1), ("deep", deep)] {
                measure(
                    format!("list.{sort_name}.{order_name}.{page_name}"),
                    list_ops,
                    |_| {
                        let store = store.clone();
                        let o = owner(rng.below(owners));
                        async move {
                            let p = store.list_jobs(o, &list_query(sort, order, page)).await?;
                            if p.items.is_empty() && p.total > u64::from(page) * 20 {
                                return Err("an empty page inside the list".into());
                            }
                            Ok(())
                        }
                    },
                )
                .await?;
            }
        }
    }

    // list_executions, newest first: a typical job and a hot one
    measure("list_executions", ops, |_| {
        let store = store.clone();
        let (o, id) = *rng.pick(&s.visible);
        async move {
            store
                .list_executions(o, id, &ExecutionQuery::default())
                .await?;
            Ok(())
        }
    })
    .await?;
    if !s.hot.is_empty() {
        measure("list_executions.hot", ops, |_| {
            let store = store.clone();
            let (o, id) = *rng.pick(&s.hot);
            async move {
                store
                    .list_executions(o, id, &ExecutionQuery::default())
                    .await?;
                Ok(())
            }
        })
        .await?;
    }

    // the safety sync's scan: a keyset page of scheduled jobs
    measure("scheduled_jobs", ops, |_| {
        let store = store.clone();
        let (_, after) = *rng.pick(&s.visible);
        async move {
            store.scheduled_jobs(Some(after), 100).await?;
            Ok(())
        }
    })
    .await?;

    measure("upcoming_jobs", ops, |_| {
        let store = store.clone();
        let o = owner(rng.below(owners));
        async move {
            let now = Utc::now();
            store
                .upcoming_jobs(o, now, now + chrono::Duration::hours(1), 20)
                .await?;
            Ok(())
        }
    })
    .await?;

    measure("job_stats", ops, |_| {
        let store = store.clone();
        let (o, id) = *rng.pick(&s.visible);
        async move {
            store.job_stats(o, id).await?;
            Ok(())
        }
    })
    .await?;

    // start + finish of a claimed occurrence
    let mut start_s = Samples::new("start_execution");
    let mut finish_s = Samples::new("finish_execution");
    let mut both_s = Samples::new("start_finish");
    let plans_reserved = 20.min(s.runnable.len());
    for &(id, next_run) in &s.runnable[plans_reserved..] {
        let t = Instant::now();
        let req = StartExecution {
            key: OccurrenceKey::scheduled(id, next_run),
            attempt: 0,
            execution_id: Uuid::now_v7(),
            advance: Some(Advance {
                next_run: Some(next_run + chrono::Duration::minutes(5)),
            }),
            worker: "bench".to_owned(),
            started_at: Utc::now(),
        };
        let StartOutcome::Started { execution, .. } = store.start_execution(&req).await? else {
            return Err(format!("job {id}: the claim did not start").into());
        };
        let started = t.elapsed();
        let t1 = Instant::now();
        let finish = FinishExecution {
            execution_id: execution.id,
            status: ExecutionStatus::Success,
            finished_at: Utc::now(),
            output: Some(json!({"ok": true})),
            error: None,
            next_attempt: None,
            job_status: None,
            notifications: Vec::new(),
        };
        store
            .finish_execution(&finish)
            .await?
            .ok_or("the attempt was not running")?;
        finish_s.times.push(t1.elapsed());
        start_s.times.push(started);
        both_s.times.push(t.elapsed());
    }
    start_s.emit();
    finish_s.emit();
    both_s.emit();

    // Plans.
    let explain = PgStore::new(explain_pool(options).await?);
    let o = owner(rng.below(owners));
    for (label, q) in [
        (
            "list_jobs created_at desc, page 1",
            list_query(JobSort::CreatedAt, SortOrder::Desc, 1),
        ),
        (
            "list_jobs created_at desc, deep page",
            list_query(JobSort::CreatedAt, SortOrder::Desc, deep),
        ),
        (
            "list_jobs name asc, deep page",
            list_query(JobSort::Name, SortOrder::Asc, deep),
        ),
        (
            "list_jobs next_run desc (NULLS LAST), page 1",
            list_query(JobSort::NextRun, SortOrder::Desc, 1),
        ),
        (
            "list_jobs next_run asc, deep page",
            list_query(JobSort::NextRun, SortOrder::Asc, deep),
        ),
    ] {
        plan(label, || async {
            explain.list_jobs(o, &q).await?;
            Ok(())
        })
        .await?;
    }
    let (after_owner, after) = s.visible[0];
    plan(
        "scheduled_jobs (the due scan), a keyset page of 100",
        || async {
            explain.scheduled_jobs(Some(after), 100).await?;
            Ok(())
        },
    )
    .await?;
    plan("find_job (get)", || async {
        explain.find_job(after_owner, after).await?;
        Ok(())
    })
    .await?;
    plan("list_executions newest first, page 1", || async {
        explain
            .list_executions(after_owner, after, &ExecutionQuery::default())
            .await?;
        Ok(())
    })
    .await?;
    if let Some(&(hot_owner, hot)) = s.hot.first() {
        plan(
            "list_executions of a hot job newest first, page 1",
            || async {
                explain
                    .list_executions(hot_owner, hot, &ExecutionQuery::default())
                    .await?;
                Ok(())
            },
        )
        .await?;
    }
    // start + finish: the warm-up claims use jobs reserved for it.
    let reserved = &s.runnable[..plans_reserved];
    let mut next = reserved.iter();
    plan("start_execution + finish_execution", || {
        let item = next.next().copied();
        let explain = explain.clone();
        async move {
            let (id, next_run) = item.ok_or("no job left for the plans")?;
            let req = StartExecution {
                key: OccurrenceKey::scheduled(id, next_run),
                attempt: 0,
                execution_id: Uuid::now_v7(),
                advance: Some(Advance {
                    next_run: Some(next_run + chrono::Duration::minutes(5)),
                }),
                worker: "bench".to_owned(),
                started_at: Utc::now(),
            };
            let StartOutcome::Started { execution, .. } = explain.start_execution(&req).await?
            else {
                return Err("the claim did not start".into());
            };
            let finish = FinishExecution {
                execution_id: execution.id,
                status: ExecutionStatus::Success,
                finished_at: Utc::now(),
                output: None,
                error: None,
                next_attempt: None,
                job_status: None,
                notifications: Vec::new(),
            };
            explain.finish_execution(&finish).await?;
            Ok(())
        }
    })
    .await?;

    if let Some(db) = test_db {
        db.drop_now().await;
    }
    Ok(())
}
