//! The [`Queue`] contract, one public `async fn` per case.
//!
//! Each case makes an `Arc<ManualClock>` standing at [`start`], passes
//! it to the factory, which must return a new, empty queue that tells time by that
//! clock (see the [`testkit`](super) docs), and panics when the queue breaks the
//! contract. [`queue_contract_tests!`](crate::queue_contract_tests) runs them all.
//!
//! The cases about [`Queue::wait`] also use real time: they give a waiter up to
//! 5 s to wake and check that one stays asleep for 100 ms.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{at, entry, start};
use crate::clock::ManualClock;
use crate::model::OccurrenceKey;
use crate::queue::{Queue, QueueCounts, QueueEntry, QueueError, Reservation};

/// The lease the cases take.
const LEASE: Duration = Duration::from_secs(30);
/// How long a waiter may take to wake.
const WAKE: Duration = Duration::from_secs(5);
/// How long a waiter that should sleep is watched.
const ASLEEP: Duration = Duration::from_millis(100);

async fn setup<Q: Queue>(
    factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q,
) -> (Arc<ManualClock>, Arc<Q>) {
    let clock = Arc::new(ManualClock::new(start()));
    let queue = factory(clock.clone()).await;
    (clock, Arc::new(queue))
}

/// `n` scheduled keys in ascending key order.
fn keys(n: usize) -> Vec<OccurrenceKey> {
    let mut keys: Vec<OccurrenceKey> = (0..n)
        .map(|_| OccurrenceKey::scheduled(Uuid::new_v4(), start()))
        .collect();
    keys.sort_unstable();
    keys
}

async fn enqueue<Q: Queue>(queue: &Q, entries: &[QueueEntry]) -> usize {
    queue.enqueue(entries).await.expect("enqueue")
}

async fn reserve<Q: Queue>(queue: &Q, max: usize) -> Vec<Reservation> {
    queue
        .reserve("worker-1", max, LEASE)
        .await
        .expect("reserve")
}

async fn counts<Q: Queue>(queue: &Q) -> QueueCounts {
    queue.counts().await.expect("counts")
}

fn counts_of(scheduled: u64, ready: u64, leased: u64) -> QueueCounts {
    QueueCounts {
        scheduled,
        ready,
        leased,
    }
}

fn reserved_keys(got: &[Reservation]) -> Vec<OccurrenceKey> {
    got.iter().map(|r| r.entry.key).collect()
}

#[track_caller]
fn assert_lease_lost<T: std::fmt::Debug>(
    result: Result<T, QueueError>,
    key: OccurrenceKey,
    op: &str,
) {
    match result {
        Err(QueueError::LeaseLost { key: k }) => {
            assert_eq!(k, key, "{op}: LeaseLost names the key")
        }
        other => panic!("{op}: expected LeaseLost, got {other:?}"),
    }
}

/// Watches a spawned waiter for [`ASLEEP`]; panics if it finished.
async fn assert_asleep(waiter: &tokio::task::JoinHandle<Result<(), QueueError>>, what: &str) {
    tokio::time::sleep(ASLEEP).await;
    assert!(!waiter.is_finished(), "wait() resolved {what}");
}

async fn assert_wakes(waiter: tokio::task::JoinHandle<Result<(), QueueError>>, what: &str) {
    match tokio::time::timeout(WAKE, waiter).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => panic!("wait() failed {what}: {e}"),
        Ok(Err(e)) => panic!("the waiter panicked {what}: {e}"),
        Err(_) => panic!("wait() did not resolve within {WAKE:?} {what}"),
    }
}

fn spawn_waiter<Q: Queue>(queue: &Arc<Q>) -> tokio::task::JoinHandle<Result<(), QueueError>> {
    let queue = queue.clone();
    tokio::spawn(async move { queue.wait().await })
}

/// `reserve` leases due entries earliest `run_at` first (ties by key), never one
/// before its `run_at`; a reservation carries the entry, a lease of the requested
/// length with an increasing token, and delivery count 1.
pub async fn reserve_in_due_order<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (clock, queue) = setup(factory).await;
    let k = keys(5);
    let e0 = entry(k[4], at(-5));
    let e1 = entry(k[0], at(10));
    let e2 = entry(k[1], at(10));
    let e3 = entry(k[2], at(20));
    let e4 = entry(k[3], at(25));
    assert_eq!(
        enqueue(
            &*queue,
            &[e4.clone(), e2.clone(), e3.clone(), e0.clone(), e1.clone()]
        )
        .await,
        5
    );

    let got = reserve(&*queue, 10).await;
    assert_eq!(
        reserved_keys(&got),
        vec![e0.key],
        "only the overdue entry at start"
    );
    let first = &got[0];
    assert_eq!(first.entry, e0);
    assert_eq!(first.deliveries, 1);
    assert_eq!(
        (first.lease.key, first.lease.expires_at),
        (e0.key, at(30)),
        "the lease runs for the requested 30 s from now"
    );

    clock.set(at(19));
    let got = reserve(&*queue, 10).await;
    assert_eq!(
        reserved_keys(&got),
        vec![e1.key, e2.key],
        "at(10) entries, by key"
    );
    clock.set(at(20));
    let got2 = reserve(&*queue, 10).await;
    assert_eq!(
        reserved_keys(&got2),
        vec![e3.key],
        "due exactly at its run_at"
    );
    assert_eq!(got2[0].entry, e3);
    let tokens: Vec<u64> = [first]
        .into_iter()
        .chain(&got)
        .chain(&got2)
        .map(|r| r.lease.token)
        .collect();
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens increase: {tokens:?}"
    );
    assert!(
        reserve(&*queue, 10).await.is_empty(),
        "at(25) is not due yet"
    );
    clock.set(at(25));
    assert_eq!(reserved_keys(&reserve(&*queue, 10).await), vec![e4.key]);
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 5));
}

/// One entry per key: enqueueing a present key (waiting or leased) adds nothing and
/// leaves the present entry as it is; once acked, the key can be enqueued again.
pub async fn enqueue_dedupes_by_key<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (_clock, queue) = setup(factory).await;
    let k = keys(1)[0];
    let e = entry(k, at(0));
    assert_eq!(enqueue(&*queue, &[e.clone(), e.clone()]).await, 1);
    let changed = QueueEntry {
        run_at: at(100),
        attempt: 3,
        execution_id: Some(Uuid::now_v7()),
        ..e.clone()
    };
    assert_eq!(enqueue(&*queue, std::slice::from_ref(&changed)).await, 0);
    assert_eq!(counts(&*queue).await, counts_of(0, 1, 0));

    let got = reserve(&*queue, 10).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].entry, e, "the first entry is kept as it was");
    assert_eq!(
        enqueue(&*queue, std::slice::from_ref(&e)).await,
        0,
        "present while leased"
    );
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 1));
    assert!(reserve(&*queue, 10).await.is_empty(), "no second lease");

    queue.ack(&got[0].lease).await.expect("ack");
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 0));
    assert_lease_lost(queue.ack(&got[0].lease).await, k, "a second ack");
    assert_eq!(
        enqueue(&*queue, std::slice::from_ref(&e)).await,
        1,
        "absent after the ack"
    );
    assert_eq!(reserve(&*queue, 10).await[0].deliveries, 1);
}

/// `reserve` leases at most `max` entries.
pub async fn reserve_respects_max<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (_clock, queue) = setup(factory).await;
    let entries: Vec<QueueEntry> = keys(5).into_iter().map(|k| entry(k, at(0))).collect();
    assert_eq!(enqueue(&*queue, &entries).await, 5);
    assert!(reserve(&*queue, 0).await.is_empty(), "max 0");
    assert_eq!(counts(&*queue).await, counts_of(0, 5, 0));
    let mut seen = Vec::new();
    for expected in [2, 2, 1, 0] {
        let got = reserve(&*queue, 2).await;
        assert_eq!(got.len(), expected);
        seen.extend(reserved_keys(&got));
    }
    let all: Vec<OccurrenceKey> = entries.iter().map(|e| e.key).collect();
    assert_eq!(
        seen, all,
        "in key order, as all are due at the same instant"
    );
}

/// A lease that lapses makes the entry deliverable again, with `deliveries` one
/// higher and a greater token; the old lease then fails with `LeaseLost`.
pub async fn lapsed_lease_is_redelivered<Q: Queue>(
    factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q,
) {
    let (clock, queue) = setup(factory).await;
    let k = keys(1)[0];
    let e = entry(k, at(0));
    enqueue(&*queue, std::slice::from_ref(&e)).await;
    let first = reserve(&*queue, 1).await.remove(0);
    assert_eq!(first.lease.expires_at, at(30));

    clock.set(at(29));
    assert!(
        reserve(&*queue, 1).await.is_empty(),
        "still leased at at(29)"
    );
    clock.set(at(30));
    let got = reserve(&*queue, 1).await;
    assert_eq!(got.len(), 1, "lapsed at its expiry, at(30)");
    let second = &got[0];
    assert_eq!(second.entry, e);
    assert_eq!(second.deliveries, 2);
    assert!(
        second.lease.token > first.lease.token,
        "a new, greater token: {} then {}",
        first.lease.token,
        second.lease.token
    );
    assert_eq!(second.lease.expires_at, at(60));

    assert_lease_lost(queue.ack(&first.lease).await, k, "ack with the old lease");
    assert_lease_lost(
        queue.extend(&first.lease, LEASE).await,
        k,
        "extend with the old lease",
    );
    assert_lease_lost(
        queue.retry(&first.lease, at(100), 1, None).await,
        k,
        "retry with the old lease",
    );
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 1));

    clock.set(at(60));
    let third = reserve(&*queue, 1).await.remove(0);
    assert_eq!(third.deliveries, 3);
    assert_lease_lost(
        queue.ack(&second.lease).await,
        k,
        "ack with the second lease",
    );
    queue
        .ack(&third.lease)
        .await
        .expect("ack with the current lease");
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 0));
    clock.set(at(1000));
    assert!(reserve(&*queue, 1).await.is_empty(), "acked for good");
}

/// `extend` moves the lease's expiry to `by` from now, keeping its token, so the
/// entry is not delivered again meanwhile.
pub async fn extend_keeps_the_lease<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (clock, queue) = setup(factory).await;
    let k = keys(2);
    enqueue(&*queue, &[entry(k[0], at(0)), entry(k[1], at(0))]).await;
    let got = reserve(&*queue, 2).await;
    assert_eq!(reserved_keys(&got), k);

    clock.set(at(20));
    let extended = queue.extend(&got[0].lease, LEASE).await.expect("extend");
    assert_eq!(
        (extended.key, extended.token, extended.expires_at),
        (k[0], got[0].lease.token, at(50)),
        "same key and token, expiry 30 s from at(20)"
    );

    clock.set(at(40));
    let again = reserve(&*queue, 2).await;
    assert_eq!(
        reserved_keys(&again),
        vec![k[1]],
        "only the entry whose lease was not extended is delivered again"
    );
    assert_eq!(again[0].deliveries, 2);
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 2));

    let extended = queue.extend(&extended, LEASE).await.expect("extend again");
    assert_eq!(extended.expires_at, at(70));
    clock.set(at(69));
    assert!(reserve(&*queue, 2).await.is_empty());
    queue
        .ack(&extended)
        .await
        .expect("ack with the extended lease");
    queue.ack(&again[0].lease).await.expect("ack");
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 0));
}

/// `retry` releases the entry to run at `run_at` as a new attempt with its recorded
/// execution; it is not delivered before then, and its delivery count starts over.
pub async fn retry_reschedules_the_entry<Q: Queue>(
    factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q,
) {
    let (clock, queue) = setup(factory).await;
    let k = keys(1)[0];
    enqueue(&*queue, &[entry(k, at(0))]).await;
    let first = reserve(&*queue, 1).await.remove(0);
    // Let the lease lapse and be delivered again, so that deliveries is 2.
    clock.set(at(30));
    let second = reserve(&*queue, 1).await.remove(0);
    assert_eq!(second.deliveries, 2);

    let run = Uuid::now_v7();
    queue
        .retry(&second.lease, at(90), 1, Some(run))
        .await
        .expect("retry");
    assert_eq!(counts(&*queue).await, counts_of(1, 0, 0));
    assert_lease_lost(queue.ack(&second.lease).await, k, "ack after retry");
    assert_lease_lost(
        queue.retry(&first.lease, at(10), 1, None).await,
        k,
        "retry with a lost lease",
    );
    assert!(reserve(&*queue, 1).await.is_empty(), "not before run_at");
    clock.set(at(89));
    assert!(reserve(&*queue, 1).await.is_empty(), "not before run_at");

    clock.set(at(90));
    let third = reserve(&*queue, 1).await.remove(0);
    assert_eq!(
        third.entry,
        QueueEntry {
            key: k,
            run_at: at(90),
            attempt: 1,
            execution_id: Some(run),
        }
    );
    assert_eq!(third.deliveries, 1, "the delivery count starts over");
    assert!(third.lease.token > second.lease.token);
    queue.ack(&third.lease).await.expect("ack");
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 0));
}

/// `remove` drops a waiting or a leased entry and says whether there was one; the
/// lease on a removed entry is lost.
pub async fn remove_waiting_and_leased_entries<Q: Queue>(
    factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q,
) {
    let (_clock, queue) = setup(factory).await;
    let k = keys(2);
    enqueue(&*queue, &[entry(k[0], at(100)), entry(k[1], at(0))]).await;

    assert!(
        queue.remove(&k[0]).await.expect("remove"),
        "a waiting entry"
    );
    assert!(
        !queue.remove(&k[0]).await.expect("remove"),
        "already removed"
    );
    assert_eq!(counts(&*queue).await, counts_of(0, 1, 0));

    let got = reserve(&*queue, 10).await.remove(0);
    assert!(queue.remove(&k[1]).await.expect("remove"), "a leased entry");
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 0));
    assert_lease_lost(queue.ack(&got.lease).await, k[1], "ack after remove");
    assert_lease_lost(
        queue.extend(&got.lease, LEASE).await,
        k[1],
        "extend after remove",
    );
    assert_lease_lost(
        queue.retry(&got.lease, at(5), 1, None).await,
        k[1],
        "retry after remove",
    );
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 0));

    let never = OccurrenceKey::scheduled(Uuid::now_v7(), start());
    assert!(
        !queue.remove(&never).await.expect("remove"),
        "never enqueued"
    );
    assert_eq!(
        enqueue(&*queue, &[entry(k[0], at(0))]).await,
        1,
        "a removed key can be enqueued again (a resume)"
    );
}

/// A removed entry is never delivered: how a pause stops an occurrence.
pub async fn remove_prevents_delivery<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (clock, queue) = setup(factory).await;
    let k = keys(3);
    enqueue(
        &*queue,
        &[entry(k[0], at(0)), entry(k[1], at(0)), entry(k[2], at(60))],
    )
    .await;
    assert!(queue.remove(&k[0]).await.expect("remove"));
    assert!(queue.remove(&k[2]).await.expect("remove"));
    assert_eq!(reserved_keys(&reserve(&*queue, 10).await), vec![k[1]]);
    clock.set(at(3600));
    assert!(
        reserve(&*queue, 10)
            .await
            .iter()
            .all(|r| r.entry.key == k[1]),
        "removed entries stay removed"
    );
}

/// `counts` splits entries into scheduled (not yet due), ready (due, not leased) and
/// leased (including leases that lapsed but were not delivered again).
pub async fn counts_by_state<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (clock, queue) = setup(factory).await;
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 0));
    let k = keys(5);
    enqueue(
        &*queue,
        &[
            entry(k[0], at(100)),
            entry(k[1], at(200)),
            entry(k[2], at(0)),
            entry(k[3], at(-10)),
            entry(k[4], at(0)),
        ],
    )
    .await;
    assert_eq!(counts(&*queue).await, counts_of(2, 3, 0));
    assert_eq!(counts(&*queue).await.total(), 5);

    let got = reserve(&*queue, 1).await;
    assert_eq!(reserved_keys(&got), vec![k[3]]);
    assert_eq!(counts(&*queue).await, counts_of(2, 2, 1));

    clock.set(at(100));
    assert_eq!(
        counts(&*queue).await,
        counts_of(1, 3, 1),
        "the lapsed lease still counts as leased; at(100) is now ready"
    );
}

/// `wait` stays pending on an empty queue and resolves when an entry is enqueued
/// by another task.
pub async fn wait_wakes_on_enqueue<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (_clock, queue) = setup(factory).await;
    let waiter = spawn_waiter(&queue);
    assert_asleep(&waiter, "on an empty queue").await;

    let q = queue.clone();
    let k = keys(1)[0];
    tokio::spawn(async move { q.enqueue(&[entry(k, at(0))]).await })
        .await
        .expect("the enqueuing task")
        .expect("enqueue");
    assert_wakes(waiter, "after an enqueue").await;
    assert_eq!(reserved_keys(&reserve(&*queue, 1).await), vec![k]);
}

/// `wait` resolves when the earliest entry becomes due as the clock moves, not
/// before; and at once when something is due already.
pub async fn wait_wakes_at_due_time<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (clock, queue) = setup(factory).await;
    let k = keys(2);
    enqueue(&*queue, &[entry(k[0], at(60)), entry(k[1], at(120))]).await;
    assert!(
        tokio::time::timeout(ASLEEP, queue.wait()).await.is_err(),
        "wait() resolved with nothing due"
    );

    let waiter = spawn_waiter(&queue);
    assert_asleep(&waiter, "with nothing due").await;
    clock.advance(Duration::from_secs(30));
    assert_asleep(&waiter, "at at(30), before the entry is due at at(60)").await;
    clock.advance(Duration::from_secs(30));
    assert_wakes(waiter, "when the clock reached at(60)").await;

    match tokio::time::timeout(WAKE, queue.wait()).await {
        Ok(result) => result.expect("wait"),
        Err(_) => panic!("wait() did not resolve at once with an entry due"),
    }
    let got = reserve(&*queue, 10).await;
    assert_eq!(reserved_keys(&got), vec![k[0]]);
    queue.ack(&got[0].lease).await.expect("ack");

    // The next entry, due at at(120), is the next wake-up.
    let waiter = spawn_waiter(&queue);
    assert_asleep(&waiter, "before at(120)").await;
    clock.set(at(121));
    assert_wakes(waiter, "when the clock jumped past at(120)").await;
    assert_eq!(reserved_keys(&reserve(&*queue, 10).await), vec![k[1]]);
}

/// `wait` resolves when a lease lapses, for the entry is deliverable again.
pub async fn wait_wakes_when_a_lease_lapses<Q: Queue>(
    factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q,
) {
    let (clock, queue) = setup(factory).await;
    let k = keys(1)[0];
    enqueue(&*queue, &[entry(k, at(0))]).await;
    let first = reserve(&*queue, 1).await.remove(0);

    let waiter = spawn_waiter(&queue);
    assert_asleep(&waiter, "while the only entry is leased").await;
    clock.advance(LEASE);
    assert_wakes(waiter, "when the lease lapsed").await;
    let again = reserve(&*queue, 1).await;
    assert_eq!(reserved_keys(&again), vec![k]);
    assert!(again[0].lease.token > first.lease.token);
}

/// Every task waiting on the queue is woken by an enqueue.
pub async fn wait_wakes_every_waiter<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (_clock, queue) = setup(factory).await;
    let waiters: Vec<_> = (0..4).map(|_| spawn_waiter(&queue)).collect();
    tokio::time::sleep(ASLEEP).await;
    for w in &waiters {
        assert!(!w.is_finished(), "wait() resolved on an empty queue");
    }
    enqueue(&*queue, &[entry(keys(1)[0], at(0))]).await;
    for w in waiters {
        assert_wakes(w, "after an enqueue, for every waiter").await;
    }
}

/// Dropping a pending `wait` leaves the queue working: later waits still wake.
pub async fn wait_is_cancel_safe<Q: Queue>(factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q) {
    let (clock, queue) = setup(factory).await;
    let k = keys(2);
    enqueue(&*queue, &[entry(k[0], at(60))]).await;
    for _ in 0..3 {
        assert!(
            tokio::time::timeout(Duration::from_millis(20), queue.wait())
                .await
                .is_err(),
            "wait() resolved with nothing due"
        );
    }
    let waiter = spawn_waiter(&queue);
    assert_asleep(&waiter, "with nothing due").await;
    waiter.abort();
    let _ = waiter.await;

    let waiter = spawn_waiter(&queue);
    enqueue(&*queue, &[entry(k[1], at(0))]).await;
    assert_wakes(waiter, "after an enqueue that followed cancelled waits").await;
    assert_eq!(reserved_keys(&reserve(&*queue, 10).await), vec![k[1]]);

    let waiter = spawn_waiter(&queue);
    clock.set(at(60));
    assert_wakes(waiter, "at the due time, after cancelled waits").await;
}

/// Many workers reserving at once: each of 2,000 entries is delivered exactly once.
pub async fn concurrent_reservers_get_each_entry_once<Q: Queue>(
    factory: impl AsyncFnOnce(Arc<ManualClock>) -> Q,
) {
    const ENTRIES: usize = 2_000;
    const WORKERS: usize = 8;
    let (_clock, queue) = setup(factory).await;
    let all = keys(ENTRIES);
    let entries: Vec<QueueEntry> = all
        .iter()
        .enumerate()
        .map(|(i, k)| entry(*k, at(-(i as i64 % 97))))
        .collect();
    let mut added = 0;
    for chunk in entries.chunks(500) {
        added += enqueue(&*queue, chunk).await;
    }
    assert_eq!(added, ENTRIES);

    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let worker = format!("worker-{w}");
                let mut got = Vec::new();
                loop {
                    let batch = queue
                        .reserve(&worker, 16, Duration::from_secs(3600))
                        .await
                        .expect("reserve");
                    if batch.is_empty() {
                        break;
                    }
                    for r in batch {
                        assert_eq!(r.deliveries, 1, "no lease lapses here");
                        queue.ack(&r.lease).await.expect("ack");
                        got.push(r.entry.key);
                    }
                }
                got
            })
        })
        .collect();
    let mut delivered = Vec::new();
    for t in tasks {
        delivered.extend(t.await.expect("a reserving task panicked"));
    }
    assert_eq!(
        delivered.len(),
        ENTRIES,
        "every entry delivered exactly once"
    );
    let unique: HashSet<OccurrenceKey> = delivered.into_iter().collect();
    assert_eq!(unique, all.into_iter().collect::<HashSet<_>>());
    assert_eq!(counts(&*queue).await, counts_of(0, 0, 0));
}
