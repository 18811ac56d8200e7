//! Faults against a real server: connections killed with `pg_terminate_backend` (what a
//! server restart or a failover does to every connection at once). Calls fail with
//! clear errors, the pools recover by themselves, maintenance leadership is lost and
//! regained, and the engine on PostgreSQL alone completes every job exactly once.

#![allow(clippy::unwrap_used, reason = "test helpers panic on the unexpected")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chronos::Chronos;
use chronos::JobSpec;
use chronos::clock::{Clock, SystemClock};
use chronos::executor::JobContext;
use chronos::testkit::run;
use chronos_postgres::testing::TestDb;
use chronos_postgres::{
    MAINTENANCE_LOCK_KEY, Maintenance, MaintenanceConfig, MaintenanceHandle, PgPool, PgQueue,
    PgStore, connect_with,
};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

/// Waits (in real time, at most [`WAIT`]) until the condition, which may `.await`, holds.
macro_rules! eventually {
    ($what:expr, $cond:expr) => {{
        let deadline = Instant::now() + WAIT;
        loop {
            if $cond {
                break;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {}", $what);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }};
}

/// Terminates the backends of one database from a connection to another one.
struct Killer {
    admin: PgConnection,
    database: String,
}

impl Killer {
    async fn new(db: &TestDb) -> Killer {
        let admin = PgConnection::connect_with(&db.options.clone().database("postgres"))
            .await
            .unwrap();
        Killer {
            admin,
            database: db.name.clone(),
        }
    }

    /// Terminates every backend of the database, waiting for each to exit; how many.
    async fn kill_all(&mut self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) \
             FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&self.database)
        .fetch_one(&mut self.admin)
        .await
        .unwrap()
    }

    /// Terminates one backend, waiting for it to exit.
    async fn kill(&mut self, pid: i32) {
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&mut self.admin)
            .await
            .unwrap();
        assert!(killed, "backend {pid} terminated");
    }

    /// The backends holding the maintenance leader lock on the database.
    async fn lock_holders(&mut self) -> Vec<i32> {
        sqlx::query_scalar(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1 \
               AND l.classid::bigint = $2 AND l.objid::bigint = $3 AND l.objsubid = 1",
        )
        .bind(&self.database)
        .bind(MAINTENANCE_LOCK_KEY >> 32)
        .bind(MAINTENANCE_LOCK_KEY & 0xffff_ffff)
        .fetch_all(&mut self.admin)
        .await
        .unwrap()
    }
}

async fn pool_of(options: &PgConnectOptions, size: u32) -> PgPool {
    connect_with(options.clone(), PgPoolOptions::new().max_connections(size))
        .await
        .unwrap()
}

/// What a killed connection looks like to a caller: an I/O error, the server's
/// "terminating connection due to administrator command" (57P01), or the pool giving
/// up on a connection; never anything else.
fn assert_connection_error(e: &sqlx::Error) {
    let message = e.to_string();
    assert!(!message.is_empty());
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => {}
        sqlx::Error::Database(db) => {
            assert_eq!(db.code().as_deref(), Some("57P01"), "{message}");
        }
        other => panic!("unexpected error for a killed connection: {other:?}"),
    }
}

async fn select_one(pool: &PgPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT 1").fetch_one(pool).await
}

/// After a kill, a pool of `size` connections fails at most one call per connection
/// (each with a connection error; a connection busy a moment ago is not pinged), and
/// then every call succeeds.
async fn recovers(pool: &PgPool, size: usize) {
    let mut failures = 0;
    loop {
        match select_one(pool).await {
            Ok(one) => {
                assert_eq!(one, 1);
                break;
            }
            Err(e) => {
                assert_connection_error(&e);
                failures += 1;
                assert!(
                    failures <= size,
                    "{failures} failures on {size} connections"
                );
            }
        }
    }
    for _ in 0..=size {
        assert_eq!(
            select_one(pool).await.unwrap(),
            1,
            "after {failures} failures"
        );
    }
}

#[test]
fn a_pool_recovers_after_its_connections_are_killed() {
    run(async {
        let db = TestDb::create().await;
        let pool = pool_of(&db.options, 4).await;
        let mut killer = Killer::new(&db).await;
        for round in 0..5 {
            // Fill the pool with several idle connections.
            let held: Vec<_> = acquire_many(&pool, 3).await;
            drop(held);
            assert_eq!(select_one(&pool).await.unwrap(), 1);
            let killed = killer.kill_all().await;
            assert!(killed >= 1, "round {round}: something to kill");

            recovers(&pool, 4).await;
        }
    });
}

/// Acquires `n` connections at once (so the pool opens that many).
async fn acquire_many(pool: &PgPool, n: usize) -> Vec<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pool.acquire().await.unwrap());
    }
    held
}

#[test]
fn a_transaction_whose_connection_is_killed_fails_cleanly() {
    run(async {
        let db = TestDb::create().await;
        let pool = pool_of(&db.options, 2).await;
        let mut killer = Killer::new(&db).await;
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
        killer.kill_all().await;
        let e = sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap_err();
        assert_connection_error(&e);
        // Committing or dropping the dead transaction does not panic either.
        let _ = tx.commit().await;
        recovers(&pool, 2).await;

        // A connection held across the kill: its next query fails; the pool does not
        // keep a dead connection for long.
        let mut conn = pool.acquire().await.unwrap();
        killer.kill_all().await;
        let e = sqlx::query("SELECT 1")
            .execute(&mut *conn)
            .await
            .unwrap_err();
        assert_connection_error(&e);
        drop(conn);
        recovers(&pool, 2).await;
    });
}

#[test]
fn a_busy_pool_survives_repeated_kills() {
    run(async {
        let db = TestDb::create().await;
        let pool = pool_of(&db.options, 8).await;
        let stop = CancellationToken::new();
        let mut workers = Vec::new();
        for _ in 0..8 {
            let pool = pool.clone();
            let stop = stop.clone();
            workers.push(tokio::spawn(async move {
                let (mut ok, mut failed) = (0_u32, 0_u32);
                while !stop.is_cancelled() {
                    match sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.005)")
                        .fetch_one(&pool)
                        .await
                    {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            assert_connection_error(&e);
                            failed += 1;
                        }
                    }
                }
                (ok, failed)
            }));
        }
        let mut killer = Killer::new(&db).await;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            killer.kill_all().await;
        }
        stop.cancel();
        let mut total_ok = 0;
        for worker in workers {
            let (ok, _failed) = worker.await.unwrap(); // no panic in any task
            total_ok += ok;
        }
        assert!(total_ok > 0);
        // Once the kills stop, every call succeeds.
        for _ in 0..20 {
            assert_eq!(select_one(&pool).await.unwrap(), 1);
        }
    });
}

fn fast_maintenance() -> MaintenanceConfig {
    MaintenanceConfig {
        months_ahead: 1,
        retention_months: None,
        interval: Duration::from_secs(3600),
        retry_period: Duration::from_millis(100),
        ..MaintenanceConfig::default()
    }
}

async fn wait_passes(handle: &MaintenanceHandle, at_least: u64) {
    let mut passes = handle.passes();
    tokio::time::timeout(WAIT, passes.wait_for(|n| *n >= at_least))
        .await
        .unwrap_or_else(|_| panic!("no maintenance pass number {at_least}"))
        .unwrap();
}

#[test]
fn killing_the_maintenance_leader_connection_loses_and_regains_leadership() {
    run(async {
        let db = TestDb::create().await;
        let pool = pool_of(&db.options, 4).await;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let handle = Maintenance::spawn(pool, clock, fast_maintenance());
        let mut killer = Killer::new(&db).await;
        wait_passes(&handle, 1).await;
        let mut holder = killer.lock_holders().await;
        assert_eq!(holder.len(), 1);

        for round in 1..=3_u64 {
            // Only its lock connection: it notices within its retry period, stops
            // leading, contends again and wins on a new connection. A new term starts
            // with a pass (the interval is an hour, so only a new term makes one).
            killer.kill(holder[0]).await;
            wait_passes(&handle, round + 1).await;
            assert!(handle.is_leader());
            let now = killer.lock_holders().await;
            assert_eq!(now.len(), 1);
            assert_ne!(
                now, holder,
                "round {round}: a new connection holds the lock"
            );
            holder = now;
        }

        // Every connection of the database, the pool's included.
        for round in 0..3 {
            killer.kill_all().await;
            eventually!(format!("leadership back after kill-all {round}"), {
                let now = killer.lock_holders().await;
                now.len() == 1 && now != holder && handle.is_leader()
            });
            holder = killer.lock_holders().await;
        }
        handle.shutdown().await;
        assert!(killer.lock_holders().await.is_empty());
    });
}

#[test]
fn the_engine_on_postgres_completes_every_job_exactly_once_while_connections_die() {
    run(async {
        const JOBS: usize = 40;
        let db = TestDb::create().await;
        let runs: Arc<Mutex<HashMap<Uuid, u32>>> = Arc::default();
        let slow = {
            let runs = runs.clone();
            move |ctx: JobContext| {
                let runs = runs.clone();
                async move {
                    *runs.lock().unwrap().entry(ctx.job().id).or_default() += 1;
                    ctx.log().info("working");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    Ok(json!("done"))
                }
            }
        };
        let engine = |pool: PgPool, workers: bool| {
            let slow = slow.clone();
            async move {
                let queue = PgQueue::new(pool.clone(), Arc::new(SystemClock))
                    .await
                    .unwrap();
                Chronos::builder()
                    .store(PgStore::new(pool))
                    .queue(queue)
                    .executor("slow", slow)
                    .workers(workers)
                    .sync(workers)
                    .concurrency(4)
                    .configure(|c| {
                        c.lease = Duration::from_secs(2);
                        c.sync_interval = Duration::from_secs(1);
                        c.shutdown_grace = Duration::from_secs(2);
                        c.max_deliveries = 50;
                    })
                    .build()
                    .await
                    .unwrap()
            }
        };

        // The jobs exist before the faults start (a create whose commit reply is lost
        // cannot say whether it happened; that is the caller's business).
        let api = engine(pool_of(&db.options, 4).await, false).await;
        let mut jobs = Vec::new();
        for i in 0..JOBS {
            let job = api
                .create(JobSpec::immediate(format!("job {i:02}")).handler("slow"))
                .await
                .unwrap();
            jobs.push(job.id);
        }
        api.shutdown().await.unwrap();

        let maintenance = Maintenance::spawn(
            pool_of(&db.options, 2).await,
            Arc::new(SystemClock),
            fast_maintenance(),
        );
        let worker = engine(pool_of(&db.options, 10).await, true).await;

        // Kill every connection of the database every 150 ms for 3 s while they run.
        let mut killer = Killer::new(&db).await;
        let storm_end = Instant::now() + Duration::from_secs(3);
        let mut kills = 0;
        while Instant::now() < storm_end {
            tokio::time::sleep(Duration::from_millis(150)).await;
            kills += killer.kill_all().await;
        }
        assert!(kills > 0);

        // Then everything completes, and the queue drains: an entry whose ack was lost
        // with its connection is delivered again once its lease lapses, found done,
        // and acked then.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state: Result<(i64, i64), _> = sqlx::query_as(
                "SELECT (SELECT count(DISTINCT job_id) FROM job_executions \
                         WHERE status = 'success'), \
                        (SELECT count(*) FROM queue_entries)",
            )
            .fetch_one(&db.pool)
            .await;
            if matches!(state, Ok((done, queued)) if done == JOBS as i64 && queued == 0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not all of {JOBS} jobs completed, or the queue not drained: {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worker.shutdown().await.unwrap();

        // Exactly one success per job, nothing left queued or running, every job done.
        let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT job_id, status::text, count(*) FROM job_executions \
             GROUP BY job_id, status ORDER BY job_id, status",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        for job in &jobs {
            let of: Vec<(&str, i64)> = rows
                .iter()
                .filter(|r| r.0 == *job)
                .map(|r| (r.1.as_str(), r.2))
                .collect();
            assert!(
                of.contains(&("success", 1)),
                "job {job}: exactly one success, got {of:?}"
            );
            assert!(
                of.iter().all(|(s, _)| *s != "queued" && *s != "running"),
                "job {job}: nothing left in flight, got {of:?}"
            );
        }
        let statuses: Vec<String> = sqlx::query_scalar("SELECT DISTINCT status::text FROM jobs")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(statuses, ["completed"]);
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs.len(), JOBS, "every job ran");
        let reruns: u32 = runs.values().map(|n| n - 1).sum();
        eprintln!("{kills} connections killed; {reruns} handler re-runs (at-least-once)");

        // Maintenance leads again after the storm.
        eventually!("maintenance to lead again", maintenance.is_leader());
        maintenance.shutdown().await;
    });
}

/// Makes the server refuse, once each, the next `starts` writes that start an
/// execution and the next `outcomes` writes of a successful outcome, with a transient
/// error (40001 `serialization_failure`, what a failover or a conflict gives): a
/// trigger counting on sequences, which a rolled-back statement does not undo.
async fn refuse_writes(pool: &PgPool, starts: i64, outcomes: i64) {
    for sql in [
        format!("CREATE SEQUENCE refused_starts MINVALUE 0 MAXVALUE {starts} START 1"),
        format!("CREATE SEQUENCE refused_outcomes MINVALUE 0 MAXVALUE {outcomes} START 1"),
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE seq text := CASE NEW.status WHEN 'running' THEN 'refused_starts'
                                             ELSE 'refused_outcomes' END;
         BEGIN
           PERFORM nextval(seq);
           RAISE EXCEPTION 'injected fault (%)', seq USING ERRCODE = '40001';
         EXCEPTION WHEN sequence_generator_limit_exceeded THEN RETURN NEW;
         END $$"
            .to_owned(),
        "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON job_executions FOR EACH ROW \
         WHEN (NEW.status IN ('running', 'success')) EXECUTE FUNCTION refuse()"
            .to_owned(),
    ] {
        sqlx::query(AssertSqlSafe(sql)).execute(pool).await.unwrap();
    }
}

/// A store that fails for a moment must not cost a job a lost outcome, a re-run or a
/// wait for its lease (30 s): an outcome write is tried again at once, and an attempt
/// that could not start is handed back to the queue and starts about a second later.
#[test]
fn a_store_blip_costs_no_rerun_and_no_lease_wait() {
    run(async {
        let db = TestDb::create().await;
        let runs = Arc::new(Mutex::new(0u32));
        let counting = {
            let runs = runs.clone();
            move |_: JobContext| {
                let runs = runs.clone();
                async move {
                    *runs.lock().unwrap() += 1;
                    Ok(json!("done"))
                }
            }
        };
        let queue = PgQueue::new(db.pool.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let engine = Chronos::builder()
            .store(PgStore::new(db.pool.clone()))
            .queue(queue)
            .executor("counting", counting)
            .configure(|c| c.shutdown_grace = Duration::from_secs(2))
            .build()
            .await
            .unwrap();
        assert_eq!(engine.config().lease, Duration::from_secs(30));
        refuse_writes(&db.pool, 1, 3).await;

        let created = Instant::now();
        let job = engine
            .create(JobSpec::immediate("blip").handler("counting"))
            .await
            .unwrap();
        eventually!(
            "the job to complete",
            engine.job(job.id).await.unwrap().status.as_str() == "completed"
        );
        let took = created.elapsed();
        assert!(
            took > Duration::from_millis(900) && took < Duration::from_secs(5),
            "completed {took:?} after its creation: one hand-back (1 s), not the lease"
        );
        // Every refusal was met (the sequences are used up), the executor ran once,
        // and the history is one successful execution.
        let used: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT last_value FROM refused_starts), \
                    (SELECT last_value FROM refused_outcomes)",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(used, (1, 3));
        assert_eq!(*runs.lock().unwrap(), 1);
        let history: Vec<(i32, String)> = sqlx::query_as(
            "SELECT retry_attempt, status::text FROM job_executions WHERE job_id = $1",
        )
        .bind(job.id)
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert_eq!(history, [(0, "success".to_owned())]);
        engine.shutdown().await.unwrap();
    });
}
