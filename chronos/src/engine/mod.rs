//! The engine: [`Chronos`] and its builder.
//!
//! One [`Chronos`] value runs any of three roles, in one process or spread over many
//! that share a store and a queue:
//! - the **API** (always): create, change and run jobs, read their history;
//! - **workers** ([`ChronosBuilder::workers`]): take due entries from the queue and run
//!   them with bounded concurrency, per-attempt timeouts, lease renewal and retries;
//! - the **safety sync** ([`ChronosBuilder::sync`]): at start and every
//!   [`Config::sync_interval`], make the queue hold an entry for everything the store
//!   says is owed;
//! - the **notification dispatcher** (with the workers, when a
//!   [notifier](ChronosBuilder::notifier) is registered): deliver failure
//!   notifications from the store's outbox (see [`crate::notifier`]).
//!
//! # How an occurrence flows
//! The store is the source of truth: a job's `next_run` is the occurrence it is owed,
//! and the queue holds an entry for it. A worker that reserves that entry claims the
//! occurrence in the store (a compare-and-set moving `next_run` on, recording the
//! execution as running), enqueues the new `next_run`, runs the executor, and records
//! the outcome. A retry is recorded as a queued execution and the entry is re-timed in
//! the queue: it never lives in a sleeping task. Whatever crashes in between, the
//! store says what is owed and the sync puts it back into the queue.

mod notify;
mod ops;
mod schedule;
mod sync;
mod worker;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::Error;
use crate::clock::{Clock, SystemClock};
use crate::executor::{Echo, Executor};
use crate::memory::{MemoryQueue, MemoryStore};
use crate::model::spec::DEFAULT_HANDLER;
use crate::model::{Execution, Notification};
use crate::notifier::Notifier;
use crate::queue::Queue;
use crate::store::JobStore;

pub use notify::NotifyPolicy;
pub use ops::Owned;
pub use sync::SyncReport;

use schedule::CronCache;

/// Tunables of the engine. [`Config::default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most attempts running at once in this process (default 16).
    pub concurrency: usize,
    /// Most entries reserved from the queue in one call (default 256).
    pub reserve_batch: usize,
    /// How long a reservation is held before it lapses unless renewed (default 30 s).
    /// Workers renew at a third of it while an attempt runs.
    pub lease: Duration,
    /// How often the safety sync runs, after once at start (default 5 min).
    pub sync_interval: Duration,
    /// How long shutdown lets running attempts finish before cancelling them (default 30 s).
    pub shutdown_grace: Duration,
    /// After this many deliveries without an outcome (workers dying mid-attempt), an
    /// occurrence fails for good instead of running again (default 5).
    pub max_deliveries: u32,
    /// The name this process's workers record on executions (default `host-pid-random`).
    pub worker_id: String,
    /// Whether this process runs workers (default true).
    pub run_workers: bool,
    /// Whether this process runs the safety sync (default true).
    pub run_sync: bool,
    /// How failure notifications are delivered.
    pub notify: NotifyPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            concurrency: 16,
            reserve_batch: 256,
            lease: Duration::from_secs(30),
            sync_interval: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            max_deliveries: 5,
            worker_id: default_worker_id(),
            run_workers: true,
            run_sync: true,
            notify: NotifyPolicy::default(),
        }
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "chronos".to_owned());
    let nonce = Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &nonce[..6])
}

/// Something that happened to an execution in this process (see [`Chronos::subscribe`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An attempt started.
    Started(Execution),
    /// An attempt ended (any final status).
    Finished(Execution),
    /// A failure notification's delivery attempt was recorded by this process's
    /// dispatcher (pending again with a later `due_at` if it will be retried).
    Notification(Notification),
}

/// Builds a [`Chronos`]. Every part has an embedded default: the in-memory store and
/// queue, the system clock, no notifier (final failures are logged), and the built-in
/// `echo` executor.
pub struct ChronosBuilder {
    store: Option<Arc<dyn JobStore>>,
    queue: Option<Arc<dyn Queue>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    clock: Arc<dyn Clock>,
    executors: Vec<(String, Arc<dyn Executor>)>,
    config: Config,
}

impl fmt::Debug for ChronosBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChronosBuilder")
            .field(
                "executors",
                &self.executors.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field(
                "notifiers",
                &self
                    .notifiers
                    .iter()
                    .map(|n| n.channel())
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ChronosBuilder {
    /// Uses this store instead of the in-memory one.
    pub fn store(mut self, store: impl JobStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Uses this shared store.
    pub fn store_arc(mut self, store: Arc<dyn JobStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses this queue instead of the in-memory one.
    pub fn queue(mut self, queue: impl Queue) -> Self {
        self.queue = Some(Arc::new(queue));
        self
    }

    /// Uses this shared queue.
    pub fn queue_arc(mut self, queue: Arc<dyn Queue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Adds a channel for final failures (see [`crate::notifier`]). Each channel name
    /// may be registered once; a second one fails the build.
    pub fn notifier(self, notifier: impl Notifier) -> Self {
        self.notifier_arc(Arc::new(notifier))
    }

    /// Adds a shared channel for final failures.
    pub fn notifier_arc(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// Uses this clock (the default in-memory queue uses it too).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Registers an executor under a handler name. Registering `echo` replaces the
    /// built-in one; any other name registered twice fails the build.
    pub fn executor(mut self, name: impl Into<String>, executor: impl Executor) -> Self {
        self.executors.push((name.into(), Arc::new(executor)));
        self
    }

    /// Registers a typed [`Task`](crate::executor::Task) under a handler name.
    pub fn task(self, name: impl Into<String>, task: impl crate::executor::Task) -> Self {
        self.executor(name, crate::executor::Typed(task))
    }

    /// Most attempts running at once in this process.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n.max(1);
        self
    }

    /// Whether this process runs workers.
    pub fn workers(mut self, on: bool) -> Self {
        self.config.run_workers = on;
        self
    }

    /// Whether this process runs the safety sync.
    pub fn sync(mut self, on: bool) -> Self {
        self.config.run_sync = on;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Changes the configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// Checks the registry, runs the first safety sync (if this process runs it)
    /// and starts the background roles.
    pub async fn build(self) -> Result<Chronos, Error> {
        let mut executors: HashMap<String, Arc<dyn Executor>> = HashMap::new();
        executors.insert(DEFAULT_HANDLER.to_owned(), Arc::new(Echo));
        for (name, executor) in self.executors {
            if executors.insert(name.clone(), executor).is_some() && name != DEFAULT_HANDLER {
                return Err(Error::DuplicateExecutor(name));
            }
        }
        let mut notifiers: HashMap<String, Arc<dyn Notifier>> = HashMap::new();
        for notifier in self.notifiers {
            let channel = notifier.channel().to_owned();
            if notifiers.insert(channel.clone(), notifier).is_some() {
                return Err(Error::DuplicateNotifier(channel));
            }
        }
        let mut channels: Vec<String> = notifiers.keys().cloned().collect();
        channels.sort();
        let clock = self.clock;
        let queue = self
            .queue
            .unwrap_or_else(|| Arc::new(MemoryQueue::new(clock.clone())));
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            store,
            queue,
            notifiers,
            channels,
            notify_wake: tokio::sync::Notify::new(),
            clock,
            executors,
            config: self.config,
            crons: CronCache::default(),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            roles: TaskTracker::new(),
            attempts: TaskTracker::new(),
            events,
        });
        if inner.config.run_sync {
            inner.sync().await?;
            let synced_at = inner.clock.now();
            inner.roles.spawn(sync::run(inner.clone(), synced_at));
        }
        if inner.config.run_workers {
            inner.roles.spawn(worker::run(inner.clone()));
            if inner.channels.is_empty() {
                tracing::info!("no failure notifier is registered: final failures are only logged");
            } else {
                inner.roles.spawn(notify::run(inner.clone()));
            }
        }
        Ok(Chronos { inner })
    }
}

/// The scheduler. Cheap to clone; clones share everything.
///
/// Methods on `Chronos` itself act on any job (an embedded application owns all of
/// them); [`Chronos::owned_by`] gives the same operations scoped to one owner, as a
/// multi-user service needs.
#[derive(Clone)]
pub struct Chronos {
    inner: Arc<Inner>,
}

impl fmt::Debug for Chronos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chronos")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    store: Arc<dyn JobStore>,
    queue: Arc<dyn Queue>,
    /// Failure channels by name.
    notifiers: HashMap<String, Arc<dyn Notifier>>,
    /// Their names, sorted.
    channels: Vec<String>,
    /// Wakes the notification dispatcher (a failure was recorded here).
    notify_wake: tokio::sync::Notify,
    clock: Arc<dyn Clock>,
    executors: HashMap<String, Arc<dyn Executor>>,
    config: Config,
    crons: CronCache,
    /// Stops the roles from taking more work.
    stop: CancellationToken,
    /// Cancels running attempts (after the shutdown grace period).
    abort: CancellationToken,
    /// The background roles (worker loop, sync loop).
    roles: TaskTracker,
    /// Running attempts.
    attempts: TaskTracker,
    events: broadcast::Sender<Event>,
}

impl Chronos {
    /// A builder with the embedded defaults.
    pub fn builder() -> ChronosBuilder {
        ChronosBuilder {
            store: None,
            queue: None,
            notifiers: Vec::new(),
            clock: Arc::new(SystemClock),
            executors: Vec::new(),
            config: Config::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.inner.store
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.inner.queue
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Whether an executor is registered under `name`.
    pub fn has_executor(&self, name: &str) -> bool {
        self.inner.executors.contains_key(name)
    }

    /// Events of this process's workers: attempts started and finished. A receiver
    /// that falls more than 1024 events behind misses some (and is told so).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Makes the queue agree with the store now (the safety sync); idempotent.
    pub async fn sync(&self) -> Result<SyncReport, Error> {
        self.inner.sync().await
    }

    /// Graceful shutdown: stop taking work, let running attempts finish within
    /// [`Config::shutdown_grace`], then cancel the rest (recorded as cancelled and put
    /// back into the queue to run again).
    pub async fn shutdown(&self) -> Result<(), Error> {
        let inner = &self.inner;
        inner.stop.cancel();
        inner.roles.close();
        inner.roles.wait().await;
        inner.attempts.close();
        if tokio::time::timeout(inner.config.shutdown_grace, inner.attempts.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = inner.config.shutdown_grace.as_millis() as u64,
                "shutdown grace period over: cancelling running attempts"
            );
            inner.abort.cancel();
            inner.attempts.wait().await;
        }
        Ok(())
    }
}
