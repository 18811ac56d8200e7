//! `RedisQueue` beyond the contract: several instances on one queue, wake-ups across
//! instances, expired leases returned at start, key layout, and memory per entry.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chronos::clock::{Clock, ManualClock, SystemClock};
use chronos::model::OccurrenceKey;
use chronos::queue::{Queue, QueueEntry};
use chronos::testkit::{entry, start};
use chronos_redis::testing::TestRedis;
use uuid::Uuid;

/// Now, to the microsecond (the queue's precision, as the store's).
fn now_us() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn due_now(n: usize) -> Vec<QueueEntry> {
    let now = now_us();
    (0..n)
        .map(|_| {
            let key = OccurrenceKey::scheduled(Uuid::new_v4(), now);
            entry(key, now)
        })
        .collect()
}

#[test]
fn two_instances_deliver_each_of_5000_entries_once() {
    chronos::testkit::run(async {
        const N: usize = 5_000;
        let redis = TestRedis::connect().await;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let a = redis.queue("q", clock.clone()).await;
        let b = redis.queue("q", clock.clone()).await;
        let entries = due_now(N);
        assert_eq!(a.enqueue(&entries).await.unwrap(), N);
        assert_eq!(
            b.enqueue(&entries).await.unwrap(),
            0,
            "enqueueing twice keeps one"
        );

        let mut tasks = Vec::new();
        for (i, q) in [a.clone(), b.clone()].into_iter().enumerate() {
            for w in 0..4 {
                let q = q.clone();
                tasks.push(tokio::spawn(async move {
                    let worker = format!("instance-{i}-worker-{w}");
                    let mut got = Vec::new();
                    loop {
                        let batch = q
                            .reserve(&worker, 32, Duration::from_secs(60))
                            .await
                            .unwrap();
                        if batch.is_empty() {
                            break;
                        }
                        let leases: Vec<_> = batch.iter().map(|r| r.lease.clone()).collect();
                        // Half the batches through the one-call ack of many.
                        if w % 2 == 0 {
                            assert!(q.ack_many(&leases).await.unwrap().iter().all(|ok| *ok));
                        } else {
                            for l in &leases {
                                q.ack(l).await.unwrap();
                            }
                        }
                        got.extend(batch.into_iter().map(|r| {
                            assert_eq!(r.deliveries, 1);
                            r.entry.key
                        }));
                    }
                    got
                }));
            }
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        assert_eq!(all.len(), N, "each entry delivered exactly once");
        let unique: HashSet<_> = all.into_iter().collect();
        let expected: HashSet<_> = entries.iter().map(|e| e.key).collect();
        assert_eq!(unique, expected);
        assert_eq!(a.counts().await.unwrap().total(), 0);
    });
}

#[test]
fn an_enqueue_or_retry_on_one_instance_wakes_waiters_on_another() {
    chronos::testkit::run(async {
        let redis = TestRedis::connect().await;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let a = redis.queue("q", clock.clone()).await;
        let b = redis.queue("q", clock.clone()).await;

        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.wait().await })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!waiter.is_finished(), "wait() resolved on an empty queue");
        let e = due_now(1);
        a.enqueue(&e).await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("instance b woke after instance a enqueued")
            .unwrap()
            .unwrap();

        // A retry far in the future on a wakes b too (its next deadline changed).
        let r = a
            .reserve("w", 1, Duration::from_secs(60))
            .await
            .unwrap()
            .remove(0);
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.wait().await })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(
            !waiter.is_finished(),
            "wait() resolved with only a leased entry"
        );
        a.retry(&r.lease, Utc::now() + chrono::Duration::hours(1), 1, None)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("instance b woke after instance a retried")
            .unwrap()
            .unwrap();
    });
}

#[test]
fn leases_that_expired_while_no_queue_ran_return_at_start() {
    chronos::testkit::run(async {
        let redis = TestRedis::connect().await;
        let clock = Arc::new(ManualClock::new(start()));
        let a = redis.queue("q", clock.clone()).await;
        let e = entry(OccurrenceKey::scheduled(Uuid::new_v4(), start()), start());
        a.enqueue(std::slice::from_ref(&e)).await.unwrap();
        let first = a
            .reserve("w", 1, Duration::from_secs(30))
            .await
            .unwrap()
            .remove(0);
        drop(a);
        clock.advance(Duration::from_secs(31));
        let b = redis.queue("q", clock.clone()).await;
        let mut conn = redis.conn.clone();
        let prefix = b.prefix().to_owned();
        let (due, leased): (usize, usize) = redis::pipe()
            .zcard(format!("{prefix}:due"))
            .zcard(format!("{prefix}:leased"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            (due, leased),
            (1, 0),
            "the expired lease went back to the due set at start"
        );
        let again = b
            .reserve("w", 1, Duration::from_secs(30))
            .await
            .unwrap()
            .remove(0);
        assert_eq!((again.entry, again.deliveries), (e, 2));
        assert!(again.lease.token > first.lease.token);
    });
}

/// After Redis loses its data (`FLUSHALL`, a restart without persistence) the
/// fencing tokens must not start over: a worker still holding a lease from before
/// could otherwise ack or extend the lease of the entry's next delivery.
#[test]
fn a_lease_from_before_a_flush_never_matches_a_new_one() {
    chronos::testkit::run(async {
        let redis = TestRedis::connect().await;
        let q = redis.queue("q", Arc::new(SystemClock)).await;
        let e = due_now(1).remove(0);
        let lease = Duration::from_secs(30);
        // Many deliveries before the flush, so the old counter is ahead of a new one
        // that would start from zero.
        let mut old = None;
        for _ in 0..50 {
            q.enqueue(std::slice::from_ref(&e)).await.unwrap();
            let r = q.reserve("old", 1, lease).await.unwrap().remove(0);
            if let Some(previous) = old.replace(r.lease.clone()) {
                assert!(r.lease.token > previous.token);
            }
            q.ack(&r.lease).await.unwrap();
        }
        q.enqueue(std::slice::from_ref(&e)).await.unwrap();
        let held = q.reserve("old", 1, lease).await.unwrap().remove(0).lease;

        // The data of this test is lost (its keys deleted: FLUSHALL would also hit
        // the other tests sharing this Redis), and the safety sync enqueues again.
        assert!(redis.clean().await.unwrap() > 0);
        q.enqueue(std::slice::from_ref(&e)).await.unwrap();
        let new = q.reserve("new", 1, lease).await.unwrap().remove(0).lease;

        assert!(new.token > held.token, "{} after {}", new.token, held.token);
        assert!(q.ack(&held).await.is_err(), "the old lease acks nothing");
        assert!(q.extend(&held, lease).await.is_err(), "nor extends");
        q.ack(&new).await.unwrap();
    });
}

#[test]
fn every_key_carries_the_prefix_and_one_hash_tag() {
    chronos::testkit::run(async {
        let redis = TestRedis::connect().await;
        let clock = Arc::new(ManualClock::new(start()));
        let q = redis.queue("tag", clock.clone()).await;
        let mut entries = due_now(3);
        entries[1].attempt = 2;
        entries[1].execution_id = Some(Uuid::now_v7());
        for e in &mut entries {
            e.run_at = start();
        }
        q.enqueue(&entries).await.unwrap();
        let got = q.reserve("w", 2, Duration::from_secs(1)).await.unwrap();
        clock.advance(Duration::from_secs(2));
        q.reserve("w", 1, Duration::from_secs(1)).await.unwrap();
        q.ack(&got[0].lease).await.ok();
        let mut conn = redis.conn.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", redis.prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!keys.is_empty());
        for k in keys {
            assert!(k.starts_with(&format!("{}{{tag}}:", redis.prefix)), "{k}");
        }
    });
}

#[test]
fn a_delayed_entry_takes_little_memory() {
    chronos::testkit::run(async {
        const N: usize = 20_000;
        let redis = TestRedis::connect().await;
        let q = redis.queue("mem", Arc::new(SystemClock)).await;
        let later = now_us() + chrono::Duration::hours(1);
        let entries: Vec<QueueEntry> = (0..N)
            .map(|i| {
                let key = OccurrenceKey::scheduled(Uuid::new_v4(), later);
                entry(key, later + chrono::Duration::milliseconds(i as i64))
            })
            .collect();
        assert_eq!(q.enqueue(&entries).await.unwrap(), N);
        let mut conn = redis.conn.clone();
        let mut bytes = 0u64;
        for suffix in [":due", ":leased", ":e", ":token", ":lapsed"] {
            let used: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(format!("{}{suffix}", q.prefix()))
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut conn)
                .await
                .unwrap();
            bytes += used.unwrap_or(0);
        }
        let per_entry = bytes as f64 / N as f64;
        eprintln!("{per_entry:.1} bytes per delayed entry (MEMORY USAGE)");
        // BullMQ: 759 bytes per delayed job with an empty payload; the bound is a third.
        assert!(per_entry <= 253.0, "{per_entry:.1} bytes per delayed entry");
    });
}
