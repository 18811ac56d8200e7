//! [`RedisQueue`]: the [`Queue`] contract on Redis.
//!
//! # Layout
//! Every key of a queue starts with one prefix that holds a hash tag (default
//! `chronos:{queue}`), so all of them live in one slot and the queue works on Redis
//! Cluster unchanged:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>:due` | sorted set | waiting entries (and lapsed leases), scored by `run_at` in µs |
//! | `<prefix>:leased` | sorted set | leased entries, scored by lease expiry in µs |
//! | `<prefix>:e` | hash | per entry that is not a plain first attempt: `run_at:attempt:deliveries:token:execution` |
//! | `<prefix>:token` | string | the fencing-token counter (started at the time in µs when missing, so tokens keep increasing across a flush) |
//! | `<prefix>:lapsed` | string | how many entries in `due` are lapsed leases (for counts) |
//! | `<prefix>:wake` | pub/sub channel | a message per enqueue or retry that added something |
//!
//! Members are the compact binary form of the [`OccurrenceKey`] (24 bytes, 40 for a
//! manual run), ordered as the keys are, so ties in `run_at` are broken by key. A
//! delayed first attempt is one member of `due` and nothing else: a reference, not a
//! copy of the job.
//!
//! # Scripts
//! Every state change is one Lua script (sent by `EVALSHA`, loaded again after a
//! server restart), taking "now" as an argument from the queue's [`Clock`], never
//! from the server. Reserving moves entries from `due` to `leased`: a worker that
//! dies leaves its entries in `leased`, and every reserve (and the start of a queue)
//! moves expired leases back to `due` first.
//!
//! # Waiting
//! [`Queue::wait`] registers with a local [`Notify`], reads the earliest due time and
//! lease expiry, and sleeps on the clock until then, unless woken first: by a local
//! enqueue or retry, or by a message on the wake channel from another queue instance
//! (a background task holds a dedicated, blocking subscriber connection and
//! re-subscribes after a disconnect, waking every waiter then). No polling.

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
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

/// The prefix of a queue's keys when none is given.
pub const DEFAULT_PREFIX: &str = "chronos:{queue}";

/// How many entries one enqueue script call adds at most.
const ENQUEUE_CHUNK: usize = 1_000;

/// Reconnect back-off of the wake-up subscriber: first delay, cap.
const SUBSCRIBE_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// The Lua scripts, each one atomic state change.
struct Scripts {
    enqueue: Script,
    reserve: Script,
    ack: Script,
    extend: Script,
    retry: Script,
    remove: Script,
    counts: Script,
    earliest: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            enqueue: Script::new(include_str!("enqueue.lua")),
            reserve: Script::new(include_str!("reserve.lua")),
            ack: Script::new(include_str!("ack.lua")),
            extend: Script::new(include_str!("extend.lua")),
            retry: Script::new(include_str!("retry.lua")),
            remove: Script::new(include_str!("remove.lua")),
            counts: Script::new(include_str!("counts.lua")),
            earliest: Script::new(include_str!("earliest.lua")),
        }
    }
}

/// The names of a queue's keys.
struct Keys {
    prefix: String,
    due: String,
    leased: String,
    entries: String,
    token: String,
    lapsed: String,
    wake: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        // Without a hash tag the keys could land in different cluster slots.
        let prefix = if has_hash_tag(prefix) {
            prefix.to_owned()
        } else {
            format!("{{{prefix}}}")
        };
        Self {
            due: format!("{prefix}:due"),
            leased: format!("{prefix}:leased"),
            entries: format!("{prefix}:e"),
            token: format!("{prefix}:token"),
            lapsed: format!("{prefix}:lapsed"),
            wake: format!("{prefix}:wake"),
            prefix,
        }
    }
}

/// Whether `s` holds a non-empty `{...}` hash tag.
fn has_hash_tag(s: &str) -> bool {
    s.find('{')
        .and_then(|open| s[open + 1..].find('}'))
        .is_some_and(|len| len > 0)
}

/// A [`Queue`] on Redis: every state change is one atomic Lua script, given "now"
/// from the queue's [`Clock`] (never the server's time).
///
/// Keys, all under one prefix with a hash tag (so one cluster slot):
/// `<prefix>:due` (sorted set of waiting entries by `run_at` in µs; members are the
/// 24-byte binary occurrence key, 40 for a manual run), `<prefix>:leased` (sorted set
/// by lease expiry), `<prefix>:e` (hash of `run_at:attempt:deliveries:token:execution`
/// for entries that are not a plain first attempt), `<prefix>:token` (fencing-token
/// counter), `<prefix>:lapsed` (lapsed leases awaiting redelivery, for counts), and
/// the pub/sub channel `<prefix>:wake`. A delayed first attempt is one sorted-set
/// member and nothing else (about 128 bytes of Redis memory).
///
/// Reserving moves entries from `due` to `leased`, never popping them: a worker that
/// dies leaves its entries in `leased`, and every reserve (and the start of a queue)
/// moves expired leases back to `due` first. [`Queue::wait`] sleeps on the clock until
/// the earliest due time or lease expiry, and is woken earlier by a local enqueue or
/// retry, or by a wake message from another instance (received on a dedicated
/// subscriber connection): no polling.
///
/// Clones share the connection and the wake-up subscriber. Commands go through a
/// [`ConnectionManager`], which reconnects on its own after the server restarts or
/// drops the connection: a call made while Redis is down fails with
/// [`QueueError::Backend`] naming the operation, and later calls succeed once Redis is
/// back. Scripts are reloaded automatically after a restart.
///
/// Acks are group-committed: acks made while one is in flight go together in the
/// next script call (no timer, so a lone ack goes at once); an ack whose caller gives
/// up before the answer may still be applied.
///
/// Losing Redis's data (a `FLUSHALL`, a restart without persistence) loses the
/// entries; the engine's safety sync rebuilds them from the store.
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    clock: Arc<dyn Clock>,
    keys: Keys,
    scripts: Scripts,
    /// Woken on every local enqueue or retry, every foreign wake message, and every
    /// subscriber reconnect.
    wake: Arc<Notify>,
    /// This queue's id in its wake messages: its subscriber skips them, as the
    /// enqueue or retry that sent one woke the local waiters already.
    origin: String,
    /// Where the queue connects, for error messages.
    addr: String,
    /// Acks on their way to the flusher, which sends those that arrive together in
    /// one script call; it stops when the last clone is dropped.
    acks: mpsc::UnboundedSender<AckRequest>,
    /// Stops the subscriber when the last clone is dropped.
    _stop: DropGuard,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("addr", &self.inner.addr)
            .field("prefix", &self.inner.keys.prefix)
            .field("clock", &self.inner.clock)
            .finish()
    }
}

fn backend(doing: &str, addr: &str, e: redis::RedisError) -> QueueError {
    QueueError::backend(format!("redis queue at {addr}: {doing}: {e}"), e)
}

fn protocol(doing: &str, what: impl fmt::Display) -> QueueError {
    QueueError::Backend {
        message: format!("redis queue: {doing}: unexpected reply: {what}"),
        source: None,
    }
}

/// Microseconds since the epoch.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(if us < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// The member id of `key`: job id, `scheduled_for` in µs (big-endian with the sign
/// bit flipped, so that bytes sort as instants do), and the manual run id if any.
pub(crate) fn encode_key(key: &OccurrenceKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(key.job_id.as_bytes());
    let us = micros(key.scheduled_for) as u64 ^ (1 << 63);
    out.extend_from_slice(&us.to_be_bytes());
    if let Some(m) = key.manual {
        out.extend_from_slice(m.as_bytes());
    }
    out
}

/// The inverse of [`encode_key`].
pub(crate) fn decode_key(id: &[u8]) -> Option<OccurrenceKey> {
    if id.len() != 24 && id.len() != 40 {
        return None;
    }
    let job_id = Uuid::from_slice(&id[..16]).ok()?;
    let us = u64::from_be_bytes(id[16..24].try_into().ok()?) ^ (1 << 63);
    let manual = if id.len() == 40 {
        Some(Uuid::from_slice(&id[24..]).ok()?)
    } else {
        None
    };
    Some(OccurrenceKey {
        job_id,
        scheduled_for: from_micros(us as i64),
        manual,
    })
}

/// The stored fields of an entry: `run_at:attempt:deliveries:token:execution`.
fn fields(run_at: DateTime<Utc>, attempt: u32, execution_id: Option<Uuid>) -> String {
    format!(
        "{}:{attempt}:0:0:{}",
        micros(run_at),
        execution_id
            .map(|u| u.simple().to_string())
            .unwrap_or_default()
    )
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Parses an integer that Redis may have formatted as a double.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => {
            let s = text(v)?;
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
        }
    }
}

fn reservation(v: &Value, expires_at: DateTime<Utc>) -> Option<Reservation> {
    let Value::Array(items) = v else {
        return None;
    };
    let [id, run_at, attempt, deliveries, token, exec] = items.as_slice() else {
        return None;
    };
    let Value::BulkString(id) = id else {
        return None;
    };
    let key = decode_key(id)?;
    let exec = text(exec)?;
    let execution_id = if exec.is_empty() {
        None
    } else {
        Some(Uuid::parse_str(&exec).ok()?)
    };
    let token = u64::try_from(integer(token)?).ok()?;
    Some(Reservation {
        entry: QueueEntry {
            key,
            run_at: from_micros(integer(run_at)?),
            attempt: u32::try_from(integer(attempt)?).ok()?,
            execution_id,
        },
        lease: Lease {
            key,
            token,
            expires_at,
        },
        deliveries: u32::try_from(integer(deliveries)?).ok()?,
    })
}

impl RedisQueue {
    /// A queue at the Redis `url` (e.g. `redis://127.0.0.1:6379/`) with the keys of
    /// [`DEFAULT_PREFIX`], telling time by `clock`.
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<RedisQueue, QueueError> {
        let client =
            redis::Client::open(url).map_err(|e| backend("parsing the connection URL", url, e))?;
        Self::connect(client, DEFAULT_PREFIX, clock).await
    }

    /// A queue through `client` whose keys start with `prefix`, telling time by `clock`.
    ///
    /// `prefix` should hold a hash tag (`chronos:{billing}`); one without is wrapped
    /// in braces. Queues with different prefixes are independent.
    ///
    /// Connects twice (a managed, auto-reconnecting connection for commands and a
    /// subscriber for wake-ups, run by a background task on the current tokio runtime
    /// until the last clone is dropped), then moves leases that expired while no
    /// queue was running back to the due set. Fails when Redis cannot be reached.
    pub async fn connect(
        client: redis::Client,
        prefix: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<RedisQueue, QueueError> {
        let addr = client.get_connection_info().addr().to_string();
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(2));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| backend("connecting", &addr, e))?;
        let keys = Keys::new(prefix);
        let wake = Arc::new(Notify::new());
        let lost = Arc::new(Notify::new());
        let origin = Uuid::new_v4().simple().to_string();
        let subscriber =
            resp3(&client).map_err(|e| backend("configuring the subscriber", &addr, e))?;
        let conn0 = subscribe(&subscriber, &keys.wake, &wake, &origin, &lost)
            .await
            .map_err(|e| backend("subscribing to wake-ups", &addr, e))?;
        let (acks, ack_rx) = mpsc::unbounded_channel();
        tokio::spawn(flush_acks(
            AckBatch {
                conn: conn.clone(),
                script: Script::new(include_str!("ack.lua")),
                keys: [
                    keys.due.clone(),
                    keys.leased.clone(),
                    keys.entries.clone(),
                    keys.lapsed.clone(),
                ],
                addr: addr.clone(),
            },
            ack_rx,
        ));
        let stop = CancellationToken::new();
        tokio::spawn(listen(
            subscriber,
            keys.wake.clone(),
            Some(conn0),
            wake.clone(),
            origin.clone(),
            lost,
            stop.clone(),
        ));
        let queue = RedisQueue {
            inner: Arc::new(Inner {
                conn,
                clock,
                keys,
                scripts: Scripts::new(),
                wake,
                origin,
                addr,
                acks,
                _stop: stop.drop_guard(),
            }),
        };
        // Expired leases return to the queue at start too, not only on reserve.
        queue.reserve_raw(0, Duration::ZERO).await?;
        Ok(queue)
    }

    /// The prefix of this queue's keys (with its hash tag).
    pub fn prefix(&self) -> &str {
        &self.inner.keys.prefix
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn err(&self, doing: &str, e: redis::RedisError) -> QueueError {
        backend(doing, &self.inner.addr, e)
    }

    async fn reserve_raw(
        &self,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        let now = self.now();
        let expires_at = after(now, lease);
        let k = &self.inner.keys;
        let reply: Value = self
            .inner
            .scripts
            .reserve
            .key(&k.due)
            .key(&k.leased)
            .key(&k.entries)
            .key(&k.token)
            .key(&k.lapsed)
            .arg(micros(now))
            .arg(micros(expires_at))
            .arg(max)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.err("reserve", e))?;
        let items = match reply {
            Value::Array(items) => items,
            Value::Nil => Vec::new(),
            other => return Err(protocol("reserve", format!("{other:?}"))),
        };
        items
            .iter()
            .map(|v| {
                reservation(v, expires_at).ok_or_else(|| protocol("reserve", format!("{v:?}")))
            })
            .collect()
    }

    /// Acks many leases in one script call (one round trip); for each lease, in
    /// order, whether it was still held (and the entry is now removed).
    pub async fn ack_many(&self, leases: &[Lease]) -> Result<Vec<bool>, QueueError> {
        let k = &self.inner.keys;
        AckBatch {
            conn: self.conn(),
            script: self.inner.scripts.ack.clone(),
            keys: [
                k.due.clone(),
                k.leased.clone(),
                k.entries.clone(),
                k.lapsed.clone(),
            ],
            addr: self.inner.addr.clone(),
        }
        .ack(leases)
        .await
    }

    /// The earliest instant `reserve` may find something: the first waiting entry's
    /// `run_at` or the first lease expiry.
    async fn earliest(&self) -> Result<Option<DateTime<Utc>>, QueueError> {
        let k = &self.inner.keys;
        let (due, leased): (String, String) = self
            .inner
            .scripts
            .earliest
            .key(&k.due)
            .key(&k.leased)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.err("looking for the next due entry", e))?;
        let parse = |s: &str| {
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
                .map(from_micros)
        };
        Ok(match (parse(&due), parse(&leased)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

#[async_trait]
impl Queue for RedisQueue {
    async fn enqueue(&self, entries: &[QueueEntry]) -> Result<usize, QueueError> {
        let k = &self.inner.keys;
        let mut added = 0usize;
        for chunk in entries.chunks(ENQUEUE_CHUNK) {
            let mut inv = self.inner.scripts.enqueue.key(&k.due);
            inv.key(&k.leased)
                .key(&k.entries)
                .arg(&k.wake)
                .arg(&self.inner.origin);
            for e in chunk {
                let plain = e.attempt == 0 && e.execution_id.is_none();
                inv.arg(encode_key(&e.key))
                    .arg(micros(e.run_at))
                    .arg(if plain {
                        String::new()
                    } else {
                        fields(e.run_at, e.attempt, e.execution_id)
                    });
            }
            let n: usize = inv
                .invoke_async(&mut self.conn())
                .await
                .map_err(|e| self.err("enqueue", e))?;
            if n > 0 {
                self.inner.wake.notify_waiters();
            }
            added += n;
        }
        Ok(added)
    }

    async fn reserve(
        &self,
        _worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.reserve_raw(max, lease).await
    }

    async fn wait(&self) -> Result<(), QueueError> {
        wait_until_due(&self.inner.wake, &*self.inner.clock, self.earliest()).await
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<Lease, QueueError> {
        let expires_at = after(self.now(), by);
        let k = &self.inner.keys;
        let held: i64 = self
            .inner
            .scripts
            .extend
            .key(&k.due)
            .key(&k.leased)
            .key(&k.entries)
            .key(&k.lapsed)
            .arg(encode_key(&lease.key))
            .arg(lease.token)
            .arg(micros(expires_at))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.err("extend", e))?;
        if held != 1 {
            return Err(QueueError::LeaseLost { key: lease.key });
        }
        Ok(Lease {
            key: lease.key,
            token: lease.token,
            expires_at,
        })
    }

    async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        let (reply, answer) = oneshot::channel();
        let request = AckRequest {
            lease: lease.clone(),
            reply,
        };
        let gone = || QueueError::Backend {
            message: "redis queue: the ack flusher stopped".to_owned(),
            source: None,
        };
        self.inner.acks.send(request).map_err(|_| gone())?;
        match answer.await.map_err(|_| gone())? {
            Ok(true) => Ok(()),
            Ok(false) => Err(QueueError::LeaseLost { key: lease.key }),
            Err(e) => Err(e),
        }
    }

    async fn retry(
        &self,
        lease: &Lease,
        run_at: DateTime<Utc>,
        attempt: u32,
        execution_id: Option<Uuid>,
    ) -> Result<(), QueueError> {
        let k = &self.inner.keys;
        let held: i64 = self
            .inner
            .scripts
            .retry
            .key(&k.due)
            .key(&k.leased)
            .key(&k.entries)
            .key(&k.lapsed)
            .arg(encode_key(&lease.key))
            .arg(lease.token)
            .arg(micros(run_at))
            .arg(fields(run_at, attempt, execution_id))
            .arg(&k.wake)
            .arg(&self.inner.origin)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.err("retry", e))?;
        if held != 1 {
            return Err(QueueError::LeaseLost { key: lease.key });
        }
        self.inner.wake.notify_waiters();
        Ok(())
    }

    async fn remove(&self, key: &OccurrenceKey) -> Result<bool, QueueError> {
        let k = &self.inner.keys;
        let removed: i64 = self
            .inner
            .scripts
            .remove
            .key(&k.due)
            .key(&k.leased)
            .key(&k.entries)
            .key(&k.lapsed)
            .arg(encode_key(key))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.err("remove", e))?;
        Ok(removed == 1)
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let k = &self.inner.keys;
        let (scheduled, ready, leased): (u64, u64, u64) = self
            .inner
            .scripts
            .counts
            .key(&k.due)
            .key(&k.leased)
            .key(&k.lapsed)
            .arg(micros(self.now()))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.err("counts", e))?;
        Ok(QueueCounts {
            scheduled,
            ready,
            leased,
        })
    }
}

/// One ack waiting for its flush.
struct AckRequest {
    lease: Lease,
    reply: oneshot::Sender<Result<bool, QueueError>>,
}

/// What an ack script call needs.
struct AckBatch {
    conn: ConnectionManager,
    script: Script,
    /// due, leased, entries, lapsed.
    keys: [String; 4],
    addr: String,
}

impl AckBatch {
    async fn ack(&self, leases: &[Lease]) -> Result<Vec<bool>, QueueError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.script.prepare_invoke();
        for k in &self.keys {
            inv.key(k);
        }
        for lease in leases {
            inv.arg(encode_key(&lease.key)).arg(lease.token);
        }
        let done: Vec<i64> = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| backend("ack", &self.addr, e))?;
        if done.len() != leases.len() {
            return Err(protocol(
                "ack",
                format!("{} answers for {} leases", done.len(), leases.len()),
            ));
        }
        Ok(done.into_iter().map(|d| d == 1).collect())
    }
}

/// Most acks one flush sends.
const ACK_BATCH: usize = 512;

/// Sends the acks that are waiting together in one script call (group commit: no
/// timer, so a lone ack goes at once); runs until every sender is gone.
async fn flush_acks(batch: AckBatch, mut requests: mpsc::UnboundedReceiver<AckRequest>) {
    let mut pending = Vec::with_capacity(ACK_BATCH);
    while requests.recv_many(&mut pending, ACK_BATCH).await > 0 {
        let leases: Vec<Lease> = pending.iter().map(|r| r.lease.clone()).collect();
        match batch.ack(&leases).await {
            Ok(done) => {
                for (r, ok) in pending.drain(..).zip(done) {
                    let _ = r.reply.send(Ok(ok));
                }
            }
            Err(e) => {
                let message = match e {
                    QueueError::Backend { message, .. } => message,
                    other => other.to_string(),
                };
                for r in pending.drain(..) {
                    let _ = r.reply.send(Err(QueueError::Backend {
                        message: message.clone(),
                        source: None,
                    }));
                }
            }
        }
    }
}

/// The client for the wake-up subscriber: `client`'s server and credentials, on RESP3
/// (whose push messages let a multiplexed connection subscribe).
fn resp3(client: &redis::Client) -> redis::RedisResult<redis::Client> {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    redis::Client::open(info.set_redis_settings(settings))
}

/// A subscriber connection on `channel`: wakes `wake` on every message from another
/// origin, and signals `lost` (and wakes `wake`) when the connection drops.
async fn subscribe(
    client: &redis::Client,
    channel: &str,
    wake: &Arc<Notify>,
    origin: &str,
    lost: &Arc<Notify>,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let (wake, origin, lost) = (wake.clone(), origin.to_owned(), lost.clone());
    let sender = move |info: redis::PushInfo| -> Result<(), std::convert::Infallible> {
        match info.kind {
            redis::PushKind::Message => {
                let own = matches!(info.data.get(1), Some(Value::BulkString(b)) if b.as_slice() == origin.as_bytes());
                if !own {
                    wake.notify_waiters();
                }
            }
            redis::PushKind::Disconnection => {
                lost.notify_one();
                wake.notify_waiters();
            }
            _ => {}
        }
        Ok(())
    };
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_push_sender(sender);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    conn.subscribe(channel).await?;
    Ok(conn)
}

/// Keeps a subscriber connection on the wake channel: reconnects (with back-off)
/// whenever it drops, waking every waiter then, as messages sent meanwhile were
/// missed; runs until `stop` is cancelled.
async fn listen(
    client: redis::Client,
    channel: String,
    mut conn: Option<redis::aio::MultiplexedConnection>,
    wake: Arc<Notify>,
    origin: String,
    lost: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut backoff = SUBSCRIBE_BACKOFF.0;
    loop {
        if conn.is_some() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = lost.notified() => {}
            }
            tracing::warn!("redis queue: wake-up subscriber lost its connection; reconnecting");
            conn = None;
            continue;
        }
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            connected = subscribe(&client, &channel, &wake, &origin, &lost) => connected,
        };
        match connected {
            Ok(c) => {
                conn = Some(c);
                backoff = SUBSCRIBE_BACKOFF.0;
                tracing::debug!("redis queue: wake-up subscriber reconnected");
                wake.notify_waiters();
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "redis queue: wake-up subscriber cannot reconnect");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(SUBSCRIBE_BACKOFF.1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_as_keys() {
        let t0 = DateTime::from_timestamp(1_767_225_600, 0).expect("instant");
        let mut keys = vec![
            OccurrenceKey::scheduled(Uuid::from_u128(1), t0),
            OccurrenceKey::scheduled(Uuid::from_u128(1), t0 - chrono::Duration::days(30_000)),
            OccurrenceKey {
                manual: Some(Uuid::from_u128(7)),
                ..OccurrenceKey::scheduled(Uuid::from_u128(1), t0)
            },
            OccurrenceKey::scheduled(Uuid::from_u128(2), t0),
        ];
        for k in &keys {
            assert_eq!(decode_key(&encode_key(k)), Some(*k));
        }
        let mut by_bytes = keys.clone();
        by_bytes.sort_by_key(encode_key);
        keys.sort();
        assert_eq!(keys, by_bytes);
    }

    #[test]
    fn prefixes_get_a_hash_tag() {
        assert_eq!(Keys::new("chronos:{q}").due, "chronos:{q}:due");
        assert_eq!(Keys::new("plain").due, "{plain}:due");
        assert_eq!(Keys::new("x{}").due, "{x{}}:due");
    }
}
