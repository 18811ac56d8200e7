//! [`PgQueue`] beyond the contract: several queues on one database as several
//! processes would have them (each with a pool of its own), notifications between
//! them, the group commit of acks, and the background tasks' lifecycle.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chronos::clock::{Clock, ManualClock, SystemClock};
use chronos::model::OccurrenceKey;
use chronos::queue::{Queue, QueueEntry, QueueError, Reservation};
use chronos::testkit::{at, entry, run, start};
use chronos_postgres::PgQueue;
use chronos_postgres::testing::TestDb;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);
/// How long a wake-up or a background task may take.
const PATIENCE: Duration = Duration::from_secs(5);

/// Another pool on the test database, as a second process would have.
async fn second_pool(db: &TestDb) -> PgPool {
    PgPoolOptions::new()
        .max_connections(10)
        .connect_with(db.options.clone())
        .await
        .expect("a second pool")
}

fn keys(n: usize) -> Vec<OccurrenceKey> {
    (0..n)
        .map(|_| OccurrenceKey::scheduled(Uuid::new_v4(), start()))
        .collect()
}

/// Entries due at `run_at`.
fn entries(n: usize, run_at: DateTime<Utc>) -> Vec<QueueEntry> {
    keys(n).into_iter().map(|k| entry(k, run_at)).collect()
}

async fn rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM queue_entries")
        .fetch_one(pool)
        .await
        .expect("count rows")
}

async fn listening(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .fetch_one(pool)
    .await
    .expect("count listeners")
}

fn assert_lease_lost<T: std::fmt::Debug>(result: Result<T, QueueError>, what: &str) {
    assert!(
        matches!(result, Err(QueueError::LeaseLost { .. })),
        "{what}: expected LeaseLost, got {result:?}"
    );
}

/// Two "processes" (two queues on two pools), four reserving tasks each, take 5,000
/// entries: each entry is delivered exactly once, and all acks are committed.
#[test]
fn two_processes_deliver_each_entry_once() {
    run(async {
        const ENTRIES: usize = 5_000;
        let db = TestDb::create().await;
        let pools = [db.pool.clone(), second_pool(&db).await];
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut queues = Vec::new();
        for pool in &pools {
            queues.push(
                PgQueue::new(pool.clone(), clock.clone())
                    .await
                    .expect("queue"),
            );
        }
        let all = entries(ENTRIES, Utc::now() - chrono::Duration::seconds(1));
        for chunk in all.chunks(1_000) {
            assert_eq!(
                queues[0].enqueue(chunk).await.expect("enqueue"),
                chunk.len()
            );
        }

        let mut tasks = tokio::task::JoinSet::new();
        for (p, queue) in queues.iter().enumerate() {
            for t in 0..4 {
                let queue = queue.clone();
                tasks.spawn(async move {
                    let worker = format!("process-{p}-task-{t}");
                    let mut got = Vec::new();
                    loop {
                        let batch = queue
                            .reserve(&worker, 64, Duration::from_secs(3600))
                            .await
                            .expect("reserve");
                        if batch.is_empty() {
                            break;
                        }
                        let mut acks = tokio::task::JoinSet::new();
                        for r in batch {
                            assert_eq!(r.deliveries, 1, "no lease lapses here");
                            got.push(r.entry.key);
                            let queue = queue.clone();
                            acks.spawn(async move { queue.ack(&r.lease).await });
                        }
                        while let Some(ack) = acks.join_next().await {
                            ack.expect("an ack task").expect("ack");
                        }
                    }
                    (p, got)
                });
            }
        }
        let mut delivered = Vec::new();
        let mut per_process = [0; 2];
        while let Some(done) = tasks.join_next().await {
            let (p, got) = done.expect("a reserving task");
            per_process[p] += got.len();
            delivered.extend(got);
        }
        eprintln!("deliveries per process: {per_process:?}");
        assert_eq!(delivered.len(), ENTRIES, "every entry delivered once");
        let unique: HashSet<OccurrenceKey> = delivered.into_iter().collect();
        let expected: HashSet<OccurrenceKey> = all.iter().map(|e| e.key).collect();
        assert_eq!(unique, expected);
        assert_eq!(rows(&pools[1]).await, 0, "every ack committed");
    });
}

/// An enqueue on one queue wakes a wait() on another queue (another pool) through
/// NOTIFY, in real time, also for an entry that is not due for an hour.
#[test]
fn notify_wakes_another_process() {
    run(async {
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(start()));
        let producer = PgQueue::new(db.pool.clone(), clock.clone())
            .await
            .expect("queue");
        let consumer = PgQueue::new(second_pool(&db).await, clock.clone())
            .await
            .expect("queue");

        for (n, run_at) in [at(3600), at(0)].into_iter().enumerate() {
            let waiter = tokio::spawn({
                let consumer = consumer.clone();
                async move { consumer.wait().await }
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(!waiter.is_finished(), "wait() resolved before enqueue {n}");
            let sent = std::time::Instant::now();
            producer
                .enqueue(&entries(1, run_at))
                .await
                .expect("enqueue");
            tokio::time::timeout(PATIENCE, waiter)
                .await
                .unwrap_or_else(|_| panic!("the other queue's wait() did not wake (enqueue {n})"))
                .expect("the waiter")
                .expect("wait");
            eprintln!("woken {:?} after enqueue {n}", sent.elapsed());
        }
        // The entry due now is there for the consumer.
        let got = consumer.reserve("c", 10, LEASE).await.expect("reserve");
        assert_eq!(got.len(), 1);
    });
}

/// When the listening connection is killed, the queue reconnects, wakes its waiters
/// (something may have been missed meanwhile), and notifications wake it again.
#[test]
fn listener_reconnects() {
    run(async {
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(start()));
        let producer = PgQueue::new(db.pool.clone(), clock.clone())
            .await
            .expect("queue");
        let consumer = PgQueue::new(second_pool(&db).await, clock.clone())
            .await
            .expect("queue");
        assert_eq!(listening(&db.pool).await, 2);

        let waiter = tokio::spawn({
            let consumer = consumer.clone();
            async move { consumer.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "wait() resolved on an empty queue");
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&db.pool)
        .await
        .expect("terminate the listeners");
        assert_eq!(killed, 2);
        tokio::time::timeout(PATIENCE, waiter)
            .await
            .expect("a waiter is woken when its listener reconnects")
            .expect("the waiter")
            .expect("wait");

        // Listening again: a remote enqueue wakes a new waiter.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while listening(&db.pool).await < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the listeners did not come back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let waiter = tokio::spawn({
            let consumer = consumer.clone();
            async move { consumer.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "wait() resolved on an empty queue");
        producer
            .enqueue(&entries(1, at(3600)))
            .await
            .expect("enqueue");
        tokio::time::timeout(PATIENCE, waiter)
            .await
            .expect("a waiter is woken by a notification after the reconnect")
            .expect("the waiter")
            .expect("wait");
    });
}

/// 1,000 acks at once are committed (the group commit answers each), and the rows
/// are gone for another connection.
#[test]
fn group_commit_of_concurrent_acks() {
    run(async {
        const ENTRIES: usize = 1_000;
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(start()));
        let queue = PgQueue::new(db.pool.clone(), clock.clone())
            .await
            .expect("queue");
        queue
            .enqueue(&entries(ENTRIES, at(0)))
            .await
            .expect("enqueue");
        let got = queue.reserve("w", ENTRIES, LEASE).await.expect("reserve");
        assert_eq!(got.len(), ENTRIES);

        let acks: Vec<_> = got
            .into_iter()
            .map(|r| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.ack(&r.lease).await })
            })
            .collect();
        for ack in acks {
            ack.await.expect("an ack task").expect("ack");
        }
        let other = second_pool(&db).await;
        assert_eq!(
            rows(&other).await,
            0,
            "every acked row is deleted, committed"
        );
    });
}

/// After a lease lapsed and the entry was delivered again (to another process), the
/// old lease is lost for ack, extend and retry, also when its ack shares a flush
/// with the current one; a second ack of one lease is lost too.
#[test]
fn stale_tokens_lose_the_lease() {
    run(async {
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(start()));
        let first = PgQueue::new(db.pool.clone(), clock.clone())
            .await
            .expect("queue");
        let second = PgQueue::new(second_pool(&db).await, clock.clone())
            .await
            .expect("queue");
        first.enqueue(&entries(2, at(0))).await.expect("enqueue");
        let old: Vec<Reservation> = first.reserve("first", 2, LEASE).await.expect("reserve");
        assert_eq!(old.len(), 2);
        clock.advance(LEASE);
        let new = second.reserve("second", 2, LEASE).await.expect("reserve");
        assert_eq!(new.len(), 2);
        assert!(new.iter().all(|r| r.deliveries == 2));

        assert_lease_lost(first.ack(&old[0].lease).await, "ack with a stale token");
        assert_lease_lost(first.extend(&old[0].lease, LEASE).await, "extend");
        assert_lease_lost(first.retry(&old[0].lease, at(100), 1, None).await, "retry");

        // A stale and a current ack of the same entry in one batch, from one queue.
        let (stale, current) = tokio::join!(first.ack(&old[1].lease), first.ack(&new[1].lease));
        assert_lease_lost(stale, "a stale ack beside the current one");
        current.expect("the current ack");

        // The same lease acked twice at once: one wins.
        let (a, b) = tokio::join!(second.ack(&new[0].lease), second.ack(&new[0].lease));
        assert!(
            matches!(
                (&a, &b),
                (Ok(()), Err(QueueError::LeaseLost { .. }))
                    | (Err(QueueError::LeaseLost { .. }), Ok(()))
            ),
            "one of two acks of a lease succeeds: {a:?}, {b:?}"
        );
        assert_eq!(rows(&db.pool).await, 0);
    });
}

/// A flush that fails answers its acks with a backend error; the flusher keeps going
/// and the next acks succeed.
#[test]
fn flusher_survives_a_failed_flush() {
    run(async {
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(start()));
        let queue = PgQueue::new(db.pool.clone(), clock.clone())
            .await
            .expect("queue");
        queue.enqueue(&entries(2, at(0))).await.expect("enqueue");
        let got = queue.reserve("w", 2, LEASE).await.expect("reserve");
        sqlx::raw_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'no deletes today'; END $$;
             CREATE TRIGGER refuse BEFORE DELETE ON queue_entries
                 FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .execute(&db.pool)
        .await
        .expect("a trigger that refuses deletes");
        match queue.ack(&got[0].lease).await {
            Err(QueueError::Backend { message, .. }) => {
                assert!(message.contains("no deletes today"), "{message}");
            }
            other => panic!("expected a backend error, got {other:?}"),
        }
        sqlx::raw_sql("DROP TRIGGER refuse ON queue_entries")
            .execute(&db.pool)
            .await
            .expect("drop the trigger");
        queue
            .ack(&got[0].lease)
            .await
            .expect("ack after the failure");
        queue.ack(&got[1].lease).await.expect("ack");
        assert_eq!(rows(&db.pool).await, 0);
    });
}

/// Dropping the last clone of a queue stops its listener (its connection stops
/// listening), and a queue built afterwards works.
#[test]
fn dropping_the_queue_stops_its_tasks() {
    run(async {
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(start()));
        let queue = PgQueue::new(db.pool.clone(), clock.clone())
            .await
            .expect("queue");
        let clone = queue.clone();
        assert_eq!(
            listening(&db.pool).await,
            1,
            "one listener for the queue and its clone"
        );
        drop(queue);
        clone
            .enqueue(&entries(1, at(0)))
            .await
            .expect("a clone keeps working");
        drop(clone);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while listening(&db.pool).await > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the listener still listens after the queue was dropped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let queue = PgQueue::new(db.pool.clone(), clock).await.expect("queue");
        let got = queue.reserve("w", 1, LEASE).await.expect("reserve");
        queue.ack(&got[0].lease).await.expect("ack");
        assert_eq!(rows(&db.pool).await, 0);
    });
}

/// An enqueue too large for one statement (sent as several in one transaction) adds
/// every absent key once, keeping the first of duplicates, and stores manual keys,
/// attempts and execution ids as given; acks of all of them at once are committed.
#[test]
fn large_enqueue_and_ack_batches() {
    run(async {
        const ENTRIES: usize = 1_500;
        let db = TestDb::create().await;
        let clock = Arc::new(ManualClock::new(start()));
        let queue = PgQueue::new(db.pool.clone(), clock.clone())
            .await
            .expect("queue");
        let mut all: Vec<QueueEntry> = (0..ENTRIES)
            .map(|i| {
                let mut e = entry(OccurrenceKey::scheduled(Uuid::new_v4(), at(0)), at(0));
                if i % 3 == 0 {
                    e.key.manual = Some(Uuid::now_v7());
                    e.attempt = 2;
                    e.execution_id = e.key.manual;
                }
                e
            })
            .collect();
        // Duplicates of present keys, later in the call, with other contents.
        let duplicates: Vec<QueueEntry> = all
            .iter()
            .step_by(7)
            .map(|e| QueueEntry {
                run_at: at(500),
                attempt: 9,
                ..e.clone()
            })
            .collect();
        let mut call = all.clone();
        call.extend(duplicates);
        assert_eq!(queue.enqueue(&call).await.expect("enqueue"), ENTRIES);
        assert_eq!(queue.enqueue(&all[..10]).await.expect("enqueue"), 0);

        let got = queue
            .reserve("w", 2 * ENTRIES, LEASE)
            .await
            .expect("reserve");
        assert_eq!(got.len(), ENTRIES);
        let mut stored: Vec<QueueEntry> = got.iter().map(|r| r.entry.clone()).collect();
        stored.sort_by_key(|e| e.key);
        all.sort_by_key(|e| e.key);
        assert_eq!(stored, all, "the first of duplicates, as given");

        let acks: Vec<_> = got
            .into_iter()
            .map(|r| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.ack(&r.lease).await })
            })
            .collect();
        for ack in acks {
            ack.await.expect("an ack task").expect("ack");
        }
        assert_eq!(rows(&db.pool).await, 0);
    });
}
