//! The contract test kit: the tests every [`JobStore`](crate::JobStore) and
//! [`Queue`](crate::Queue) implementation must pass (feature `testkit`).
//!
//! A backend crate runs the whole kit with one macro call per trait, in a test
//! target of its own (for example `tests/contract.rs`, with `chronos` as a
//! dev-dependency with `features = ["testkit"]`):
//!
//! ```no_run
//! chronos::store_contract_tests!(async || chronos::memory::MemoryStore::new());
//! chronos::queue_contract_tests!(
//!     async |clock: std::sync::Arc<chronos::clock::ManualClock>| {
//!         chronos::memory::MemoryQueue::new(clock)
//!     }
//! );
//! # fn main() {}
//! ```
//!
//! [`store_contract_tests!`](crate::store_contract_tests) expands to a module
//! `store_contract` with one `#[test]` per case of [`store`], and
//! [`queue_contract_tests!`](crate::queue_contract_tests) to a module
//! `queue_contract` with one per case of [`queue`]; so a failure names its case,
//! the cases run in parallel, and `cargo test store_contract::` selects them. Each
//! test runs its case on a fresh multi-threaded tokio runtime ([`run`]); the backend
//! crate needs no tokio of its own.
//!
//! # The factory
//! The argument of each macro is a factory, called once per case: an async closure
//! (or any `AsyncFnOnce`) that returns a new, **empty** backend. A SQL backend
//! creates a fresh database or schema in it; anything that must be dropped when the
//! case ends (a temporary database, a container handle) can live inside the
//! returned value. The factory may panic when the backend cannot be set up: the
//! case then fails with that message.
//!
//! - A store factory takes no argument: `async || -> impl JobStore`. Store cases pass
//!   every instant explicitly, so a store needs no clock.
//! - A queue factory takes the test's clock, `Arc<ManualClock>`: `async |clock:
//!   Arc<ManualClock>| -> impl Queue`. The queue **must take "now" from that clock**
//!   (due times, lease expiry, and the instants [`Queue::wait`](crate::Queue::wait)
//!   sleeps until, via [`Clock::sleep_until`](crate::clock::Clock::sleep_until)),
//!   never from the wall clock or the server's clock: the cases move time with
//!   [`ManualClock::advance`](crate::clock::ManualClock::advance) and
//!   [`ManualClock::set`](crate::clock::ManualClock::set) and expect the queue to follow.
//!
//! Cases use instants from [`start`] on (2026-01-01T00:00:00Z), whole seconds or
//! milliseconds, so backends with microsecond or millisecond precision pass, and
//! ASCII job names, so a database collation sorts them as Rust does.
//!
//! # Running one case by hand
//! Each case is a public `async fn` taking the factory, e.g.
//! [`store::update_job_compare_and_set`]; call it from a test of your own to
//! run a subset, or to wrap a case with setup of your own.
//!
//! # Helpers
//! [`job`], [`recurring_job`], [`execution`], [`manual_execution`], [`log_entry`] and
//! [`entry`] build the model values the cases use, and may serve a backend's own tests.

pub mod queue;
pub mod store;

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{
    Execution, ExecutionStatus, Job, JobSpec, LogEntry, LogLevel, OccurrenceKey, Schedule,
};
use crate::queue::QueueEntry;

/// The instant every case starts at: 2026-01-01T00:00:00Z.
pub fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// [`start`] plus `secs` seconds (which may be negative).
pub fn at(secs: i64) -> DateTime<Utc> {
    start() + chrono::Duration::seconds(secs)
}

/// [`start`] plus `millis` milliseconds.
pub fn at_ms(millis: i64) -> DateTime<Utc> {
    start() + chrono::Duration::milliseconds(millis)
}

/// `n` fresh ids in ascending order, for cases that depend on the order of ids.
pub fn sorted_ids(n: usize) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    ids.sort_unstable();
    ids
}

/// A new active one-time (immediate) job of `owner`, created at [`start`], with
/// `next_run` = [`start`] and revision 0, as [`Job::from_spec`] builds it.
pub fn job(owner: Uuid, name: &str) -> Job {
    Job::from_spec(
        &JobSpec::immediate(name).owner(owner),
        chrono_tz::Tz::UTC,
        start(),
    )
}

/// A new active recurring job of `owner` (cron `* * * * *` in UTC), created at
/// [`start`], whose next occurrence is `next_run`.
pub fn recurring_job(owner: Uuid, name: &str, next_run: DateTime<Utc>) -> Job {
    let mut job = Job::from_spec(
        &JobSpec::cron(name, "* * * * *").owner(owner),
        chrono_tz::Tz::UTC,
        start(),
    );
    debug_assert!(matches!(job.schedule, Schedule::Cron { .. }));
    job.next_run = Some(next_run);
    job
}

/// An execution of a scheduled occurrence of `job` with a fresh id, recorded at
/// `created_at` for the occurrence due then (first attempt), in `status`.
///
/// A running or finished one started at `created_at` (with worker `worker-1`); a
/// finished one also finished then, with `duration_ms` 0. Adjust fields as needed.
pub fn execution(job: &Job, status: ExecutionStatus, created_at: DateTime<Utc>) -> Execution {
    let started = status != ExecutionStatus::Queued;
    let finished = status.is_finished();
    Execution {
        id: Uuid::now_v7(),
        job_id: job.id,
        owner: job.owner,
        job_name: job.name.clone(),
        scheduled_for: created_at,
        due_at: created_at,
        attempt: 0,
        status,
        started_at: started.then_some(created_at),
        finished_at: finished.then_some(created_at),
        duration_ms: finished.then_some(0),
        output: None,
        error: None,
        worker: started.then(|| "worker-1".to_owned()),
        manual: false,
        manual_run: None,
        created_at,
    }
}

/// The queued first execution of a manual run of `job` requested at `requested_at`,
/// as the engine records it before it enqueues the run: its id is also the
/// occurrence's `manual` id (see [`Execution::occurrence`]).
pub fn manual_execution(job: &Job, requested_at: DateTime<Utc>) -> Execution {
    let mut e = execution(job, ExecutionStatus::Queued, requested_at);
    e.manual = true;
    e.manual_run = Some(e.id);
    e
}

/// A log entry of `execution` with a fresh id.
pub fn log_entry(execution: &Execution, timestamp: DateTime<Utc>, message: &str) -> LogEntry {
    LogEntry {
        id: Uuid::now_v7(),
        execution_id: execution.id,
        job_id: execution.job_id,
        owner: execution.owner,
        level: LogLevel::Info,
        message: message.to_owned(),
        metadata: serde_json::json!({}),
        timestamp,
    }
}

/// A first-attempt queue entry for `key`, due at `run_at`, with no recorded execution.
pub fn entry(key: OccurrenceKey, run_at: DateTime<Utc>) -> QueueEntry {
    QueueEntry {
        key,
        run_at,
        attempt: 0,
        execution_id: None,
    }
}

/// Runs a case to completion on a new multi-threaded tokio runtime (4 workers, time
/// and I/O enabled). The contract macros wrap every case in it. A case whose factory
/// calls [`skip`] is reported as skipped (on stderr) instead of failed.
pub fn run(case: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("testkit: cannot build a tokio runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(case)));
    if let Err(payload) = outcome {
        match payload.downcast::<Skip>() {
            Ok(skip) => eprintln!("SKIPPED: {}", skip.0),
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
}

/// The panic payload of [`skip`].
#[derive(Debug)]
pub struct Skip(pub String);

/// The environment variable that turns a missing service into a failure: CI sets
/// `CHRONOS_REQUIRE_SERVICES=1`.
pub const REQUIRE_SERVICES: &str = "CHRONOS_REQUIRE_SERVICES";

/// Whether missing services must fail tests ([`REQUIRE_SERVICES`] is set to `1`).
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES).is_ok_and(|v| v == "1")
}

/// Ends a test because a service it needs (`what`) is unreachable: a failure when
/// [`services_required`], otherwise a loud skip (inside [`run`]: reported as skipped;
/// elsewhere the panic fails the test with the reason, so call it from [`run`] or
/// check [`services_required`] yourself).
pub fn skip(what: &str, error: &dyn std::fmt::Display) -> ! {
    let reason = format!("{what} is unreachable: {error}");
    if services_required() {
        panic!("{reason} (and {REQUIRE_SERVICES}=1 requires it)");
    }
    std::panic::panic_any(Skip(reason))
}

/// Expands to a module `store_contract` with one `#[test]` per case of the
/// [`JobStore`](crate::JobStore) contract ([`testkit::store`](crate::testkit::store)),
/// each calling its case with `$factory`: an async closure with no argument that
/// returns a new, empty store. See the [`testkit`](crate::testkit) docs.
///
/// ```no_run
/// chronos::store_contract_tests!(async || chronos::memory::MemoryStore::new());
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:expr $(,)?) => {
        $crate::__contract_tests!(
            store_contract,
            store,
            $factory,
            [
                insert_and_get_job,
                find_job_hides_deleted_jobs,
                duplicate_inserts_are_rejected,
                list_jobs_filters_by_status_and_kind,
                list_jobs_sorts_by_every_key,
                list_jobs_paginates,
                update_job_compare_and_set,
                upcoming_jobs_window,
                scheduled_jobs_keyset_paging,
                start_claims_scheduled_occurrence,
                start_one_time_occurrence_clears_next_run,
                start_second_claim_is_stale,
                start_on_paused_job_is_not_runnable,
                start_manual_run_on_paused_job,
                start_manual_run_on_deleted_job,
                start_missing_job,
                start_redelivery_abandons_running_attempt,
                start_redelivery_of_recorded_running_execution,
                start_queued_execution,
                start_finished_execution,
                finish_success,
                finish_is_fenced,
                finish_inserts_next_attempt,
                finish_applies_job_status,
                finish_keeps_deleted_job_deleted,
                get_execution_scoping,
                list_executions_order_filter_scoping,
                pending_executions_keyset,
                job_stats_numbers,
                owner_stats_numbers,
                recent_executions_across_jobs,
                logs_ordered_and_scoped,
                finish_records_notifications,
                notifications_dedupe_per_occurrence,
                claim_notifications_leases,
                settle_notification_outcomes,
            ]
        );
    };
}

/// Expands to a module `queue_contract` with one `#[test]` per case of the
/// [`Queue`](crate::Queue) contract ([`testkit::queue`](crate::testkit::queue)),
/// each calling its case with `$factory`: an async closure taking the case's
/// `Arc<ManualClock>` that returns a new, empty queue telling time by that clock.
/// See the [`testkit`](crate::testkit) docs.
///
/// ```no_run
/// chronos::queue_contract_tests!(
///     async |clock: std::sync::Arc<chronos::clock::ManualClock>| {
///         chronos::memory::MemoryQueue::new(clock)
///     }
/// );
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! queue_contract_tests {
    ($factory:expr $(,)?) => {
        $crate::__contract_tests!(
            queue_contract,
            queue,
            $factory,
            [
                reserve_in_due_order,
                enqueue_dedupes_by_key,
                reserve_respects_max,
                lapsed_lease_is_redelivered,
                extend_keeps_the_lease,
                retry_reschedules_the_entry,
                remove_waiting_and_leased_entries,
                remove_prevents_delivery,
                counts_by_state,
                wait_wakes_on_enqueue,
                wait_wakes_at_due_time,
                wait_wakes_when_a_lease_lapses,
                wait_wakes_every_waiter,
                wait_is_cancel_safe,
                concurrent_reservers_get_each_entry_once,
            ]
        );
    };
}

/// Implementation detail of the contract macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_tests {
    ($module:ident, $kit:ident, $factory:expr, [$($case:ident),* $(,)?]) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            $(
                #[test]
                fn $case() {
                    $crate::testkit::run($crate::testkit::$kit::$case($factory));
                }
            )*
        }
    };
}
