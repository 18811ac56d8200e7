//! [`PgQueue`]: the [`Queue`] of a deployment that runs on PostgreSQL alone, in the
//! table `queue_entries`. How it claims entries, wakes waiters and commits acks (and
//! why the group commit of acks keeps them durable) is documented on the type, where
//! users of the crate read it too.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos::clock::{Clock, after};
use chronos::model::OccurrenceKey;
use chronos::queue::{
    Lease, Queue, QueueCounts, QueueEntry, QueueError, Reservation, wait_until_due,
};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use crate::db::queue_err;

/// The channel enqueues and retries notify, and every [`PgQueue`] listens on.
const CHANNEL: &str = "chronos_queue";

/// The most acks one flush deletes.
const MAX_ACK_BATCH: usize = 2048;

/// The most bytes of bind parameters one statement carries. sqlx 0.9.0 leaves
/// Nagle's algorithm on (it no longer sets `TCP_NODELAY`), so a request larger than a
/// fresh socket's send buffer (16 KiB on Linux) goes out in two segments, the second
/// held back until the server acknowledges the first, which it delays by 40 ms. Larger
/// enqueues and ack batches are therefore sent as several statements of at most this
/// size, in one transaction.
const STATEMENT_BYTES: usize = 14_000;

/// Bind bytes of one array element: a 4-byte length, then the value (none for NULL).
const fn element_bytes(value: usize) -> usize {
    4 + value
}

/// Bind bytes of a nullable UUID element.
fn uuid_bytes(value: Option<Uuid>) -> usize {
    element_bytes(if value.is_some() { 16 } else { 0 })
}

/// Splits `items` into runs whose bind parameters stay within [`STATEMENT_BYTES`].
fn statement_chunks<T>(items: &[T], bytes: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let b = bytes(item);
        if i > start && size + b > STATEMENT_BYTES {
            chunks.push(&items[start..i]);
            (start, size) = (i, 0);
        }
        size += b;
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

/// The most flushes in flight at once.
const MAX_FLUSHES: usize = 2;

/// How often a flush that hit a deadlock or a serialization failure is tried again.
const FLUSH_ATTEMPTS: u32 = 3;

/// The first and the longest pause between attempts to reconnect the listener.
const LISTEN_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(5));

/// A [`Queue`] in PostgreSQL's table `queue_entries`.
///
/// Clones share the same background tasks (the listener and the ack flusher), which
/// stop when the last clone is dropped. Several `PgQueue`s, in one process or many,
/// may work on the same database: they share its entries.
///
/// # Rows
/// One row per [`OccurrenceKey`] (`job_id`, `scheduled_for`, `manual`, where the nil
/// UUID stands for "not a manual run"), so an enqueue of a present key adds nothing.
/// A waiting entry has no lease (`lease_token IS NULL`); a leased one has a fencing
/// token from the sequence `queue_lease_token_seq` and an expiry, `leased_until`. A
/// lease that has expired stays valid (its holder may still ack, extend or retry it)
/// until a [`Queue::reserve`] delivers the entry again with a new token, and counts
/// as leased until then, as in the in-memory queue.
///
/// Every statement takes "now" from the queue's [`Clock`], as a bind parameter, never
/// from the server's `now()`, so tests can move time and a server with a skewed clock
/// agrees with the engine.
///
/// # Claiming
/// [`Queue::reserve`] is one `UPDATE`: it locks, with `FOR UPDATE SKIP LOCKED`, up to
/// `max` due waiting entries (read in order off the partial index
/// `queue_entries_ready_idx`) and up to `max` entries whose lease has lapsed (through
/// `queue_entries_leased_idx`), keeps the `max` earliest of both by `run_at` and key,
/// and leases them. Concurrent reservers, in this process or others, skip each
/// other's rows instead of waiting for them, so each entry is delivered once per
/// lease. The statement runs in a short transaction whose `SET LOCAL` planner
/// settings pin that plan: a queue table's statistics are too often missing or stale
/// to leave the choice to them, and a planner that believes few entries are due
/// sorts all of them instead of reading the first `max` off the index.
///
/// # Waking
/// Nothing polls. [`Queue::enqueue`] and [`Queue::retry`] send `NOTIFY chronos_queue`
/// in the statement that changes the rows (the payload is the earliest `run_at` they
/// wrote, in epoch microseconds, and the sending queue's id), so the notification
/// goes out with the commit. Each [`PgQueue`] holds one connection of its pool that
/// `LISTEN`s on that channel, in a background task, and wakes every pending
/// [`Queue::wait`] on each notification from another queue. A waiter first registers
/// for that wake-up, then asks for the earliest instant anything becomes deliverable
/// (the first waiting `run_at` or the first lease expiry: two index look-ups), and
/// returns at once if it has come, or sleeps on the clock until that instant or the
/// next wake-up, whichever comes first. Registering before looking means a commit is
/// either seen by the look or followed by a notification that finds the waiter
/// registered. Local enqueues and retries wake this queue's waiters directly when
/// they return, so the listener skips the queue's own notifications, which would
/// only wake them again, late.
///
/// When the listening connection is lost, the task reconnects (with a backoff while
/// the server is unreachable), and once it listens again wakes every waiter, so that
/// an entry added meanwhile is found late rather than never. Wake-ups may be
/// spurious; [`Queue::wait`] allows that.
///
/// # Group commit of acks
/// A worker acks every entry it runs, so acks are the busiest statement. [`Queue::ack`]
/// hands its `(key, token)` to a background flusher and awaits the answer. The
/// flusher takes everything pending (up to 2,048 acks) and deletes it with one
/// `DELETE` over `unnest` of the keys and tokens: one transaction, one round trip and
/// one WAL flush for the whole batch. Batches form by themselves while flushes are
/// in flight (two at most, so that one executes while the other waits for its commit
/// to reach the disk); nothing waits on a timer.
///
/// A batch, or an enqueue, whose parameters exceed about 14 kB is sent as several
/// statements of that size in one transaction, still one commit: with sqlx 0.9.0
/// (which leaves Nagle's algorithm on), a larger request waits 40 ms for the
/// server's delayed ACK.
///
/// Durability is not traded for this: `ack` returns only after the `COMMIT` that
/// deleted its row (with the server's `synchronous_commit`, on by default), and
/// answers `LeaseLost` for a row the statement did not delete. Acks that are answered
/// together were committed together; an ack whose caller gives up before the answer
/// may still be committed. A failed flush answers every ack of its batch with the
/// error; the flusher keeps running, and stops when the queue is dropped.
#[derive(Clone)]
pub struct PgQueue {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    /// Woken on every notification, local enqueue or retry, and listener reconnect.
    wake: Arc<Notify>,
    /// This queue's id in its notifications' payloads: its listener skips them, as
    /// the enqueue or retry that sent one woke the local waiters already.
    origin: String,
    /// Acks on their way to the flusher.
    acks: mpsc::UnboundedSender<AckRequest>,
    /// Cancels the listener task when the last clone is dropped.
    _stop: DropGuard,
}

/// One ack waiting for its flush.
struct AckRequest {
    key: OccurrenceKey,
    token: i64,
    reply: oneshot::Sender<Result<(), QueueError>>,
}

/// A row of `queue_entries` as `reserve` returns it.
type ReservedRow = (
    Uuid,
    DateTime<Utc>,
    Uuid,
    DateTime<Utc>,
    i32,
    Option<Uuid>,
    i64,
    DateTime<Utc>,
    i32,
);

impl PgQueue {
    /// A queue on `pool` (migrated with [`migrate`](crate::migrate)) that tells time by
    /// `clock`.
    ///
    /// Starts two background tasks on the current tokio runtime: the listener, which
    /// holds one connection of `pool` for `LISTEN` (so size the pool one larger), and
    /// the ack flusher. Fails when that connection cannot be made.
    pub async fn new(pool: PgPool, clock: Arc<dyn Clock>) -> Result<PgQueue, QueueError> {
        let listener = connect_listener(&pool).await?;
        let wake = Arc::new(Notify::new());
        let origin = Uuid::new_v4().simple().to_string();
        let stop = CancellationToken::new();
        let (acks, ack_rx) = mpsc::unbounded_channel();
        tokio::spawn(listen(
            pool.clone(),
            listener,
            wake.clone(),
            origin.clone(),
            stop.clone(),
        ));
        tokio::spawn(flush_acks(pool.clone(), ack_rx));
        Ok(PgQueue {
            inner: Arc::new(Inner {
                pool,
                clock,
                wake,
                origin,
                acks,
                _stop: stop.drop_guard(),
            }),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The earliest instant at which `reserve` may find something: the first waiting
    /// entry's `run_at` or the first lease expiry.
    async fn earliest(&self) -> Result<Option<DateTime<Utc>>, QueueError> {
        sqlx::query_scalar(
            "SELECT least(
                 (SELECT min(run_at) FROM queue_entries WHERE lease_token IS NULL),
                 (SELECT min(leased_until) FROM queue_entries WHERE lease_token IS NOT NULL))",
        )
        .fetch_one(&self.inner.pool)
        .await
        .map_err(|e| queue_err("queue: looking for the next due entry", e))
    }
}

impl fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgQueue")
            .field("pool", &self.inner.pool)
            .field("clock", &self.inner.clock)
            .finish()
    }
}

/// The nil UUID stands for "not a manual run" in the key columns.
fn manual_column(key: &OccurrenceKey) -> Uuid {
    key.manual.unwrap_or(Uuid::nil())
}

fn key_from_columns(job_id: Uuid, scheduled_for: DateTime<Utc>, manual: Uuid) -> OccurrenceKey {
    OccurrenceKey {
        job_id,
        scheduled_for,
        manual: (!manual.is_nil()).then_some(manual),
    }
}

fn token_column(lease: &Lease) -> Result<i64, QueueError> {
    // Tokens come from a bigint sequence, so a token beyond i64 was never handed out.
    i64::try_from(lease.token).map_err(|_| QueueError::LeaseLost { key: lease.key })
}

fn int_column(value: u32, what: &str) -> Result<i32, QueueError> {
    i32::try_from(value)
        .map_err(|e| QueueError::backend(format!("queue: {what} {value} is out of range"), e))
}

fn from_column(value: i64, what: &str) -> Result<u64, QueueError> {
    u64::try_from(value)
        .map_err(|e| QueueError::backend(format!("queue: stored {what} {value} is negative"), e))
}

fn from_int_column(value: i32, what: &str) -> Result<u32, QueueError> {
    u32::try_from(value)
        .map_err(|e| QueueError::backend(format!("queue: stored {what} {value} is negative"), e))
}

fn reservation(row: ReservedRow) -> Result<Reservation, QueueError> {
    let (
        job_id,
        scheduled_for,
        manual,
        run_at,
        attempt,
        execution_id,
        token,
        leased_until,
        deliveries,
    ) = row;
    let key = key_from_columns(job_id, scheduled_for, manual);
    Ok(Reservation {
        entry: QueueEntry {
            key,
            run_at,
            attempt: from_int_column(attempt, "attempt")?,
            execution_id,
        },
        lease: Lease {
            key,
            token: from_column(token, "lease token")?,
            expires_at: leased_until,
        },
        deliveries: from_int_column(deliveries, "delivery count")?,
    })
}

/// Inserts the entries whose keys are absent and notifies `chronos_queue` (with the
/// commit) if there were any; returns how many were inserted.
async fn insert<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    entries: &[&QueueEntry],
    origin: &str,
) -> Result<usize, QueueError> {
    let n = entries.len();
    let (mut job_ids, mut scheduled, mut manuals, mut run_ats, mut attempts, mut executions) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in entries {
        job_ids.push(e.key.job_id);
        scheduled.push(e.key.scheduled_for);
        manuals.push(e.key.manual);
        run_ats.push(e.run_at);
        attempts.push(int_column(e.attempt, "attempt")?);
        executions.push(e.execution_id);
    }
    // `manual` travels as NULL for "not a manual run" (4 bytes instead of 20).
    let (added, _notified): (i64, bool) = sqlx::query_as(
        "WITH added AS (
             INSERT INTO queue_entries (job_id, scheduled_for, manual, run_at, attempt, execution_id)
             SELECT job_id, scheduled_for,
                    coalesce(manual, '00000000-0000-0000-0000-000000000000'),
                    run_at, attempt, execution_id
             FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::timestamptz[],
                         $5::int4[], $6::uuid[])
                  AS e(job_id, scheduled_for, manual, run_at, attempt, execution_id)
             ON CONFLICT DO NOTHING
             RETURNING run_at
         ), summary AS (
             SELECT count(*) AS n, min(run_at) AS first FROM added
         )
         SELECT n,
                CASE WHEN n > 0 THEN pg_notify('chronos_queue',
                    (extract(epoch FROM first) * 1000000)::bigint::text || ' ' || $7) END
                    IS NOT NULL
         FROM summary",
    )
    .bind(&job_ids)
    .bind(&scheduled)
    .bind(&manuals)
    .bind(&run_ats)
    .bind(&attempts)
    .bind(&executions)
    .bind(origin)
    .fetch_one(executor)
    .await
    .map_err(|e| queue_err("queue: enqueueing entries", e))?;
    usize::try_from(added)
        .map_err(|e| QueueError::backend(format!("queue: inserted {added} rows"), e))
}

#[async_trait]
impl Queue for PgQueue {
    async fn enqueue(&self, entries: &[QueueEntry]) -> Result<usize, QueueError> {
        if entries.is_empty() {
            return Ok(0);
        }
        // In key order, so that concurrent enqueues of overlapping keys take their
        // index locks in the same order; the sort is stable, so the first of two
        // entries with one key is still the one inserted.
        let mut sorted: Vec<&QueueEntry> = entries.iter().collect();
        sorted.sort_by_key(|e| e.key);
        let chunks = statement_chunks(&sorted, |e| {
            element_bytes(16) // job_id
                + element_bytes(8) // scheduled_for
                + uuid_bytes(e.key.manual)
                + element_bytes(8) // run_at
                + element_bytes(4) // attempt
                + uuid_bytes(e.execution_id)
        });
        let origin = &self.inner.origin;
        let added = if let [chunk] = chunks.as_slice() {
            insert(&self.inner.pool, chunk, origin).await?
        } else {
            let mut tx = self
                .inner
                .pool
                .begin()
                .await
                .map_err(|e| queue_err("queue: enqueueing entries", e))?;
            let mut added = 0;
            for chunk in chunks {
                added += insert(&mut *tx, chunk, origin).await?;
            }
            tx.commit()
                .await
                .map_err(|e| queue_err("queue: committing enqueued entries", e))?;
            added
        };
        if added > 0 {
            self.inner.wake.notify_waiters();
        }
        Ok(added)
    }

    async fn reserve(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = self.now();
        let expires_at = after(now, lease);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        // Both candidate sets are locked with SKIP LOCKED, the `max` earliest of them
        // leased by `ctid` (stable while this statement holds the row locks). A row
        // locked but not kept is released when the transaction ends.
        //
        // The planner settings make the plan independent of the table's statistics,
        // which are missing or stale on a queue more often than not: a planner that
        // believes few entries are due would otherwise read and sort every due entry
        // (a bitmap or sequential scan) instead of taking the first `max` off the
        // index in order. Without those two scans the ordered index scan is the
        // cheapest plan left, and no node is "disabled", so the estimate stays low;
        // JIT is off all the same, as its compile time dwarfs this statement.
        let mut tx = self
            .inner
            .pool
            .begin_with(
                "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
                 SET LOCAL jit = off",
            )
            .await
            .map_err(|e| queue_err("queue: reserving entries", e))?;
        let rows: Vec<ReservedRow> = sqlx::query_as(
            "WITH due AS (
                 SELECT ctid, run_at, job_id, scheduled_for, manual FROM queue_entries
                 WHERE lease_token IS NULL AND run_at <= $1
                 ORDER BY run_at, job_id, scheduled_for, manual
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED
             ), lapsed AS (
                 SELECT ctid, run_at, job_id, scheduled_for, manual FROM queue_entries
                 WHERE lease_token IS NOT NULL AND leased_until <= $1 AND run_at <= $1
                 ORDER BY run_at, job_id, scheduled_for, manual
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED
             ), picked AS (
                 SELECT ctid FROM (SELECT * FROM due UNION ALL SELECT * FROM lapsed) AS candidates
                 ORDER BY run_at, job_id, scheduled_for, manual
                 LIMIT $2
             )
             UPDATE queue_entries
             SET lease_token = nextval('queue_lease_token_seq'),
                 leased_until = $3,
                 worker = $4,
                 deliveries = deliveries + 1
             WHERE ctid = ANY (ARRAY(SELECT ctid FROM picked))
             RETURNING job_id, scheduled_for, manual, run_at, attempt, execution_id,
                       lease_token, leased_until, deliveries",
        )
        .bind(now)
        .bind(limit)
        .bind(expires_at)
        .bind(worker)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| queue_err("queue: reserving entries", e))?;
        tx.commit()
            .await
            .map_err(|e| queue_err("queue: committing a reservation", e))?;
        let mut out = rows
            .into_iter()
            .map(reservation)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| {
            (a.entry.run_at, a.entry.key, a.lease.token).cmp(&(
                b.entry.run_at,
                b.entry.key,
                b.lease.token,
            ))
        });
        Ok(out)
    }

    async fn wait(&self) -> Result<(), QueueError> {
        wait_until_due(&self.inner.wake, &*self.inner.clock, self.earliest()).await
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<Lease, QueueError> {
        let expires_at = after(self.now(), by);
        let token = token_column(lease)?;
        let stored: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE queue_entries SET leased_until = $5
             WHERE job_id = $1 AND scheduled_for = $2 AND manual = $3 AND lease_token = $4
             RETURNING leased_until",
        )
        .bind(lease.key.job_id)
        .bind(lease.key.scheduled_for)
        .bind(manual_column(&lease.key))
        .bind(token)
        .bind(expires_at)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| queue_err("queue: extending a lease", e))?;
        match stored {
            Some(expires_at) => Ok(Lease {
                key: lease.key,
                token: lease.token,
                expires_at,
            }),
            None => Err(QueueError::LeaseLost { key: lease.key }),
        }
    }

    async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        let token = token_column(lease)?;
        let (reply, answer) = oneshot::channel();
        self.inner
            .acks
            .send(AckRequest {
                key: lease.key,
                token,
                reply,
            })
            .map_err(|_| {
                QueueError::backend("queue: acking an entry", "the ack flusher stopped")
            })?;
        answer
            .await
            .map_err(|_| QueueError::backend("queue: acking an entry", "the ack flusher stopped"))?
    }

    async fn retry(
        &self,
        lease: &Lease,
        run_at: DateTime<Utc>,
        attempt: u32,
        execution_id: Option<Uuid>,
    ) -> Result<(), QueueError> {
        let token = token_column(lease)?;
        let retried: Option<bool> = sqlx::query_scalar(
            "WITH released AS (
                 UPDATE queue_entries
                 SET run_at = $5, attempt = $6, execution_id = $7,
                     lease_token = NULL, leased_until = NULL, worker = NULL, deliveries = 0
                 WHERE job_id = $1 AND scheduled_for = $2 AND manual = $3 AND lease_token = $4
                 RETURNING run_at
             )
             SELECT pg_notify('chronos_queue',
                        (extract(epoch FROM run_at) * 1000000)::bigint::text || ' ' || $8)
                    IS NOT NULL
             FROM released",
        )
        .bind(lease.key.job_id)
        .bind(lease.key.scheduled_for)
        .bind(manual_column(&lease.key))
        .bind(token)
        .bind(run_at)
        .bind(int_column(attempt, "attempt")?)
        .bind(execution_id)
        .bind(&self.inner.origin)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| queue_err("queue: releasing an entry for a retry", e))?;
        if retried.is_none() {
            return Err(QueueError::LeaseLost { key: lease.key });
        }
        self.inner.wake.notify_waiters();
        Ok(())
    }

    async fn remove(&self, key: &OccurrenceKey) -> Result<bool, QueueError> {
        let done = sqlx::query(
            "DELETE FROM queue_entries WHERE job_id = $1 AND scheduled_for = $2 AND manual = $3",
        )
        .bind(key.job_id)
        .bind(key.scheduled_for)
        .bind(manual_column(key))
        .execute(&self.inner.pool)
        .await
        .map_err(|e| queue_err("queue: removing an entry", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let (scheduled, ready, leased): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE lease_token IS NULL AND run_at > $1),
                    count(*) FILTER (WHERE lease_token IS NULL AND run_at <= $1),
                    count(*) FILTER (WHERE lease_token IS NOT NULL)
             FROM queue_entries",
        )
        .bind(self.now())
        .fetch_one(&self.inner.pool)
        .await
        .map_err(|e| queue_err("queue: counting entries", e))?;
        Ok(QueueCounts {
            scheduled: from_column(scheduled, "count")?,
            ready: from_column(ready, "count")?,
            leased: from_column(leased, "count")?,
        })
    }
}

// ---------------------------------------------------------------------------------
// The listener task.

async fn connect_listener(pool: &PgPool) -> Result<PgListener, QueueError> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .map_err(|e| queue_err("queue: connecting the listener", e))?;
    listener
        .listen(CHANNEL)
        .await
        .map_err(|e| queue_err("queue: LISTEN chronos_queue", e))?;
    Ok(listener)
}

/// Whether a notification came from another queue than the one with id `origin`
/// (payload `<earliest run_at in epoch µs> <origin>`).
fn foreign(payload: &str, origin: &str) -> bool {
    payload.rsplit(' ').next() != Some(origin)
}

/// Wakes `wake`'s waiters on every notification from another queue, and after every
/// reconnect; runs until `stop` is cancelled or the pool is closed.
async fn listen(
    pool: PgPool,
    listener: PgListener,
    wake: Arc<Notify>,
    origin: String,
    stop: CancellationToken,
) {
    let mut listener = Some(listener);
    let mut backoff = LISTEN_BACKOFF.0;
    loop {
        let Some(current) = listener.as_mut() else {
            let connected = tokio::select! {
                () = stop.cancelled() => return,
                connected = connect_listener(&pool) => connected,
            };
            match connected {
                Ok(l) => {
                    listener = Some(l);
                    backoff = LISTEN_BACKOFF.0;
                    // Anything committed while disconnected was not notified here.
                    wake.notify_waiters();
                }
                Err(error) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(%error, retry_in = ?backoff, "queue listener cannot reconnect");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(LISTEN_BACKOFF.1);
                }
            }
            continue;
        };
        let received = tokio::select! {
            () = stop.cancelled() => return,
            received = current.try_recv() => received,
        };
        match received {
            Ok(Some(first)) => {
                // Notifications that arrived together wake the waiters once.
                let mut wanted = foreign(first.payload(), &origin);
                while let Some(next) = current.next_buffered() {
                    wanted |= foreign(next.payload(), &origin);
                }
                if wanted {
                    wake.notify_waiters();
                }
            }
            // The connection was lost and has been re-established (and LISTENs again).
            Ok(None) => {
                tracing::debug!("queue listener reconnected");
                wake.notify_waiters();
            }
            Err(error) => {
                listener = None;
                wake.notify_waiters();
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%error, "queue listener lost its connection; reconnecting");
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The ack flusher.

/// Deletes acked entries in batches until every sender is gone (the queue dropped).
async fn flush_acks(pool: PgPool, mut requests: mpsc::UnboundedReceiver<AckRequest>) {
    let mut flushes = tokio::task::JoinSet::new();
    loop {
        if flushes.len() >= MAX_FLUSHES {
            let _ = flushes.join_next().await;
            continue;
        }
        let mut batch = Vec::with_capacity(MAX_ACK_BATCH);
        tokio::select! {
            received = requests.recv_many(&mut batch, MAX_ACK_BATCH) => {
                if received == 0 {
                    break;
                }
                flushes.spawn(flush(pool.clone(), batch));
            }
            Some(_) = flushes.join_next(), if !flushes.is_empty() => {}
        }
    }
    while flushes.join_next().await.is_some() {}
}

/// An error shared by every ack of a failed flush.
#[derive(Debug)]
struct FlushError(Arc<sqlx::Error>);

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for FlushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Deletes the rows the acks of `chunk` hold; returns the indexes (into `chunk`) of
/// the acks whose row was deleted.
async fn delete<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    chunk: &[AckRequest],
) -> Result<Vec<usize>, sqlx::Error> {
    let n = chunk.len();
    let (mut job_ids, mut scheduled, mut manuals, mut tokens) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in chunk {
        job_ids.push(r.key.job_id);
        scheduled.push(r.key.scheduled_for);
        manuals.push(r.key.manual);
        tokens.push(r.token);
    }
    // `manual` travels as NULL for "not a manual run" (4 bytes instead of 20).
    let ordinals: Vec<i64> = sqlx::query_scalar(
        "WITH held AS (
             SELECT a.i, e.ctid
             FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::int8[])
                  WITH ORDINALITY AS a(job_id, scheduled_for, manual, token, i)
             CROSS JOIN LATERAL (
                 SELECT ctid FROM queue_entries
                 WHERE job_id = a.job_id AND scheduled_for = a.scheduled_for
                   AND manual = coalesce(a.manual, '00000000-0000-0000-0000-000000000000')
                   AND lease_token = a.token
                 OFFSET 0
             ) AS e
         )
         DELETE FROM queue_entries AS q USING held
         WHERE q.ctid = held.ctid
         RETURNING held.i",
    )
    .bind(&job_ids)
    .bind(&scheduled)
    .bind(&manuals)
    .bind(&tokens)
    .fetch_all(executor)
    .await?;
    // Ordinals count from 1.
    Ok(ordinals
        .into_iter()
        .filter_map(|i| usize::try_from(i - 1).ok())
        .collect())
}

/// [`delete`] for each chunk, in one transaction; returns indexes into the
/// concatenation of the chunks.
async fn delete_in_transaction(
    pool: &PgPool,
    chunks: &[&[AckRequest]],
) -> Result<Vec<usize>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut deleted = Vec::new();
    let mut offset = 0;
    for chunk in chunks {
        deleted.extend(
            delete(&mut *tx, chunk)
                .await?
                .into_iter()
                .map(|i| i + offset),
        );
        offset += chunk.len();
    }
    tx.commit().await?;
    Ok(deleted)
}

fn is_transient(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// Deletes the batch's rows and answers each ack: one statement, or (for a batch
/// larger than [`STATEMENT_BYTES`]) several in one transaction, so one commit either
/// way.
///
/// Each `(key, token)` is looked up by primary key (the `LATERAL ... OFFSET 0` keeps
/// the planner from hashing the whole table instead, whatever its statistics say),
/// and the rows found are deleted by `ctid`. A row that another transaction updated
/// after the statement began is left alone and its ack answered `LeaseLost`: that
/// update delivered the entry again (the lease is lost indeed), or extended the lease
/// while it was being acked, which a worker does not do.
async fn flush(pool: PgPool, mut batch: Vec<AckRequest>) {
    // In key order: concurrent flushes (of other processes) then lock rows in the
    // same order.
    batch.sort_by_key(|r| (r.key, r.token));
    let n = batch.len();
    let chunks = statement_chunks(&batch, |r| {
        element_bytes(16) + element_bytes(8) + uuid_bytes(r.key.manual) + element_bytes(8)
    });
    let mut attempt = 1;
    let outcome = loop {
        let result = if let [chunk] = chunks.as_slice() {
            delete(&pool, chunk).await
        } else {
            delete_in_transaction(&pool, &chunks).await
        };
        match result {
            Err(e) if attempt < FLUSH_ATTEMPTS && is_transient(&e) => attempt += 1,
            other => break other,
        }
    };
    match outcome {
        Ok(deleted) => {
            let mut done = vec![false; n];
            for i in deleted {
                if let Some(slot) = done.get_mut(i) {
                    *slot = true;
                }
            }
            for (r, done) in batch.drain(..).zip(done) {
                let answer = if done {
                    Ok(())
                } else {
                    Err(QueueError::LeaseLost { key: r.key })
                };
                // The caller may have gone; then nobody is told.
                let _ = r.reply.send(answer);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, acks = n, "queue: an ack flush failed");
            let shared = Arc::new(e);
            for r in batch.drain(..) {
                let error = FlushError(shared.clone());
                let _ = r.reply.send(Err(QueueError::backend(
                    format!("queue: acking an entry: {error}"),
                    error,
                )));
            }
        }
    }
}
