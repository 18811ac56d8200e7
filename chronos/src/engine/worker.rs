//! Workers: take due entries from the queue and run them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;
use uuid::Uuid;

use super::{Event, Inner};
use crate::Error;
use crate::clock::after;
use crate::executor::{ExecError, JobContext, JobLogger};
use crate::model::{Execution, ExecutionStatus, Job, JobKind, JobStatus, LogEntry, LogLevel};
use crate::queue::{Lease, QueueEntry, QueueError, Reservation};
use crate::store::{
    Advance, FinishExecution, NewNotification, StartExecution, StartOutcome, StoreError,
};

/// How long the loop backs off after the queue failed, before asking again.
const QUEUE_ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// When the store fails before the executor runs (reading the job, starting the
/// attempt), the entry is handed back to the queue, due again after this delay,
/// instead of waiting out its lease.
const HAND_BACK_DELAY: Duration = Duration::from_secs(1);

/// The first pause before an outcome or log write is tried again after the store failed; it doubles
/// up to [`RECORD_RETRY_MAX`].
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(25);
/// The longest pause between two tries of such a write.
const RECORD_RETRY_MAX: Duration = Duration::from_secs(1);
/// Outcome and log writes are retried while the lease has more than this left, so that the
/// last try ends before another worker can take the entry.
const RECORD_RETRY_MARGIN: Duration = Duration::from_secs(1);

/// The worker loop: reserve as many entries as there are free slots, run each in its
/// own task, and when nothing is due wait for the queue's wake-up.
pub(super) async fn run(inner: Arc<Inner>) {
    let slots = Arc::new(Semaphore::new(inner.config.concurrency));
    loop {
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            () = inner.stop.cancelled() => return,
        };
        if inner.stop.is_cancelled() {
            return;
        }
        let want = (slots.available_permits() + 1).min(inner.config.reserve_batch.max(1));
        match inner
            .queue
            .reserve(&inner.config.worker_id, want, inner.config.lease)
            .await
        {
            Ok(reserved) if reserved.is_empty() => {
                drop(first);
                tokio::select! {
                    waited = inner.queue.wait() => if let Err(e) = waited {
                        backoff(&inner, &e).await;
                    },
                    () = inner.stop.cancelled() => return,
                }
            }
            Ok(reserved) => {
                let mut first = Some(first);
                for reservation in reserved {
                    // Only this loop takes permits, so the free ones counted above are there.
                    let Some(permit) = first
                        .take()
                        .or_else(|| slots.clone().try_acquire_owned().ok())
                    else {
                        break;
                    };
                    let span = tracing::debug_span!("attempt", key = %reservation.entry.key, attempt = reservation.entry.attempt);
                    inner.attempts.spawn(
                        Box::pin(attempt(inner.clone(), reservation, permit)).instrument(span),
                    );
                }
            }
            Err(e) => {
                drop(first);
                backoff(&inner, &e).await;
            }
        }
    }
}

async fn backoff(inner: &Inner, error: &QueueError) {
    tracing::warn!(%error, "queue unavailable; retrying");
    tokio::select! {
        () = tokio::time::sleep(QUEUE_ERROR_BACKOFF) => {}
        () = inner.stop.cancelled() => {}
    }
}

/// Runs one reservation to its end; errors leave the lease to lapse, so the entry is
/// delivered again.
async fn attempt(inner: Arc<Inner>, reservation: Reservation, slot: OwnedSemaphorePermit) {
    if let Err(error) = Attempt::new(&inner, reservation, slot).run().await {
        tracing::warn!(%error, "attempt interrupted; its entry will be delivered again");
    }
}

/// How the executor's run ended.
enum Ran {
    Returned(Result<Value, ExecError>),
    TimedOut,
    Shutdown,
    LeaseLost,
}

struct Attempt<'a> {
    inner: &'a Inner,
    /// The concurrency slot: held while the executor runs, given back before the
    /// outcome is recorded, so slow bookkeeping (a remote commit) does not idle a slot.
    slot: Option<OwnedSemaphorePermit>,
    entry: QueueEntry,
    lease: Lease,
    deliveries: u32,
    engine_log: Vec<(LogLevel, String, Value)>,
}

impl<'a> Attempt<'a> {
    fn new(inner: &'a Inner, r: Reservation, slot: OwnedSemaphorePermit) -> Self {
        Self {
            inner,
            slot: Some(slot),
            entry: r.entry,
            lease: r.lease,
            deliveries: r.deliveries,
            engine_log: Vec::new(),
        }
    }

    async fn run(mut self) -> Result<(), Error> {
        let inner = self.inner;
        let key = self.entry.key;
        let now = inner.clock.now();
        let claims =
            self.entry.attempt == 0 && key.manual.is_none() && self.entry.execution_id.is_none();
        let mut plan = None;
        if claims {
            let job = match inner.store.get_job(key.job_id).await {
                Ok(Some(job)) => job,
                Ok(None) => return self.drop_entry("job missing").await,
                Err(e) => return self.hand_back(e).await,
            };
            plan = Some(inner.crons.plan(&job, key.scheduled_for, now));
        }
        let start = StartExecution {
            key,
            attempt: self.entry.attempt,
            execution_id: self.entry.execution_id.unwrap_or_else(Uuid::now_v7),
            advance: plan.map(|p| Advance {
                next_run: p.next_run,
            }),
            worker: inner.config.worker_id.clone(),
            started_at: now,
        };
        let started = match inner.store.start_execution(&start).await {
            Ok(started) => started,
            Err(e) => return self.hand_back(e).await,
        };
        let (job, execution) = match started {
            StartOutcome::Skipped(reason) => {
                return self.drop_entry(&format!("{reason:?}")).await;
            }
            StartOutcome::Started {
                job,
                execution,
                abandoned,
            } => {
                if abandoned > 0 {
                    tracing::warn!(
                        abandoned,
                        deliveries = self.deliveries,
                        "re-delivered: the previous holder's lease lapsed"
                    );
                    self.note(
                        LogLevel::Warn,
                        "re-delivered: a previous attempt was abandoned by its worker",
                        json!({"abandoned": abandoned, "deliveries": self.deliveries}),
                    );
                }
                (job, execution)
            }
        };
        if claims {
            // Chain the job's next occurrence (idempotent: the key dedupes).
            inner.enqueue_next(&job).await;
        }
        inner.emit(|| Event::Started(execution.clone()));
        if plan.is_some_and(|p| !p.run) {
            self.note(
                LogLevel::Info,
                "skipped: occurrences were missed and the job's missed_policy is skip",
                Value::Object(Default::default()),
            );
            return self
                .finish(
                    &job,
                    FinishExecution {
                        error: Some("missed occurrence skipped".into()),
                        ..self.ending(&execution, ExecutionStatus::Cancelled)
                    },
                )
                .await
                .map(drop);
        }
        let ran = if self.deliveries > inner.config.max_deliveries {
            Ran::Returned(Err(ExecError::fatal(format!(
                "gave up after {} deliveries: workers kept vanishing while running it",
                self.deliveries - 1
            ))))
        } else {
            self.execute(&job, &execution).await
        };
        drop(self.slot.take());
        self.conclude(&job, &execution, ran).await
    }

    fn note(&mut self, level: LogLevel, message: &str, metadata: Value) {
        self.engine_log.push((level, message.to_owned(), metadata));
    }

    async fn drop_entry(&self, why: &str) -> Result<(), Error> {
        tracing::debug!(why, "entry not run");
        self.settle_ack().await
    }

    /// The store failed before the executor ran: the entry goes back to the queue, due
    /// again in [`HAND_BACK_DELAY`] with its delivery count reset, so a store blip
    /// delays the occurrence by a second rather than by the lease. When the queue
    /// cannot take it back either, the lease lapses as for a vanished worker.
    async fn hand_back(&self, error: StoreError) -> Result<(), Error> {
        let at = after(self.inner.clock.now(), HAND_BACK_DELAY);
        let entry = &self.entry;
        match self
            .inner
            .queue
            .retry(&self.lease, at, entry.attempt, entry.execution_id)
            .await
        {
            Ok(()) => tracing::warn!(%error, "store unavailable; entry handed back to the queue"),
            Err(e) => {
                tracing::warn!(%error, queue_error = %e, "store unavailable and the entry could not be handed back; it is delivered again when its lease lapses")
            }
        }
        Ok(())
    }

    /// Runs an idempotent store write (the fenced outcome, log lines keyed by id),
    /// trying it again when the store fails (a dropped connection, a restarting
    /// server), after 25 ms doubling up to 1 s, while the lease has more than
    /// [`RECORD_RETRY_MARGIN`] left: a blip must cost a finished run neither its
    /// outcome (and a re-run after the lease) nor its log.
    async fn persist<T, F>(&self, doing: &str, write: impl Fn() -> F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        let clock = &self.inner.clock;
        let mut pause = RECORD_RETRY_FIRST;
        let mut tries = 1u32;
        loop {
            match write().await {
                Err(error @ StoreError::Backend { .. })
                    if after(clock.now(), pause + RECORD_RETRY_MARGIN) < self.lease.expires_at =>
                {
                    tracing::warn!(%error, tries, "store failed {doing}; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RECORD_RETRY_MAX);
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    /// Runs the executor under the job's timeout, renewing the lease and flushing the
    /// log while it runs.
    async fn execute(&mut self, job: &Job, execution: &Execution) -> Ran {
        let inner = self.inner;
        let Some(executor) = inner.executors.get(&job.handler).cloned() else {
            return Ran::Returned(Err(ExecError::fatal(format!(
                "no executor is registered under {:?} in worker {}",
                job.handler, inner.config.worker_id
            ))));
        };
        let cancel = inner.abort.child_token();
        let logger = JobLogger::new(execution.id, job.id, job.owner, inner.clock.clone());
        let ctx = JobContext {
            job: Arc::new(job.clone()),
            execution_id: execution.id,
            attempt: execution.attempt,
            scheduled_for: execution.scheduled_for,
            manual: execution.manual,
            cancel: cancel.clone(),
            logger: logger.clone(),
        };
        let started = execution.started_at.unwrap_or_else(|| inner.clock.now());
        let deadline = after(started, job.timeout);
        let renew_every = inner.config.lease / 3;
        let mut renew_at = after(started, renew_every);
        let run = executor.execute(ctx);
        tokio::pin!(run);
        let ran = loop {
            let wake = inner.clock.sleep_until(deadline.min(renew_at));
            tokio::select! {
                // The run first: a quick executor then never arms a timer.
                biased;
                // An error returned because shutdown cancelled the run is a shutdown,
                // not a failure: the attempt is re-queued, not retried or failed.
                result = &mut run => break match result {
                    Err(_) if inner.abort.is_cancelled() => Ran::Shutdown,
                    result => Ran::Returned(result),
                },
                () = wake => {
                    let now = inner.clock.now();
                    if now >= deadline {
                        break Ran::TimedOut;
                    }
                    renew_at = after(now, renew_every);
                    match inner.queue.extend(&self.lease, inner.config.lease).await {
                        Ok(lease) => self.lease = lease,
                        Err(QueueError::LeaseLost { .. }) => break Ran::LeaseLost,
                        Err(error) => tracing::warn!(%error, "lease renewal failed; will try again"),
                    }
                    self.flush(logger.drain()).await;
                }
                () = inner.abort.cancelled() => break Ran::Shutdown,
            }
        };
        cancel.cancel();
        self.flush(logger.drain()).await;
        ran
    }

    async fn flush(&self, entries: Vec<LogEntry>) {
        if entries.is_empty() {
            return;
        }
        let store = &self.inner.store;
        let stored = self.persist("storing log entries", || store.append_logs(&entries));
        if let Err(error) = stored.await {
            tracing::warn!(%error, lost = entries.len(), "could not store log entries");
        }
    }

    /// Records how the run ended and settles the queue entry: ack, retry later, or
    /// release for another worker.
    async fn conclude(mut self, job: &Job, execution: &Execution, ran: Ran) -> Result<(), Error> {
        let inner = self.inner;
        let attempt = execution.attempt;
        let (status, output, error, retryable) = match ran {
            Ran::LeaseLost => {
                // Another worker holds the entry now and has abandoned this attempt.
                tracing::warn!(
                    "lease lost while running; leaving the occurrence to its new holder"
                );
                return Ok(());
            }
            Ran::Shutdown => {
                let now = inner.clock.now();
                let again = queued_again(execution, attempt, now);
                self.note(
                    LogLevel::Warn,
                    "cancelled by shutdown; queued to run again",
                    Value::Object(Default::default()),
                );
                let recorded = self
                    .finish(
                        job,
                        FinishExecution {
                            error: Some("cancelled: the worker shut down".into()),
                            next_attempt: Some(again.clone()),
                            ..self.ending(execution, ExecutionStatus::Cancelled)
                        },
                    )
                    .await?;
                if recorded.is_some() {
                    inner
                        .queue
                        .retry(&self.lease, now, attempt, Some(again.id))
                        .await?;
                }
                return Ok(());
            }
            Ran::TimedOut => (
                ExecutionStatus::Timeout,
                None,
                Some(format!("timed out after {} s", job.timeout.as_secs_f64())),
                true,
            ),
            Ran::Returned(Ok(output)) => (ExecutionStatus::Success, Some(output), None, false),
            Ran::Returned(Err(e)) => (
                ExecutionStatus::Failed,
                None,
                Some(e.to_string()),
                e.is_retryable(),
            ),
        };
        // A manual run leaves a one-time job's own occurrence alone.
        let one_time = !execution.manual && job.kind() == JobKind::OneTime;
        if status == ExecutionStatus::Success {
            let job_status = one_time.then_some(JobStatus::Completed);
            self.finish(
                job,
                FinishExecution {
                    output,
                    job_status,
                    ..self.ending(execution, status)
                },
            )
            .await?;
            return self.settle_ack().await;
        }
        let now = inner.clock.now();
        if retryable && attempt < job.max_retries {
            let retry = attempt + 1;
            let backoff = job.backoff_for(retry);
            let at = after(now, backoff);
            let mut again = queued_again(execution, retry, now);
            again.due_at = at;
            self.note(
                LogLevel::Warn,
                &format!("attempt {attempt} failed; retry {retry} of {} at {}", job.max_retries, at.to_rfc3339()),
                json!({"error": error, "retry": retry, "backoff_ms": u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX)}),
            );
            let again_id = again.id;
            if self
                .finish(
                    job,
                    FinishExecution {
                        error,
                        next_attempt: Some(again),
                        ..self.ending(execution, status)
                    },
                )
                .await?
                .is_some()
            {
                inner
                    .queue
                    .retry(&self.lease, at, retry, Some(again_id))
                    .await?;
            }
            return Ok(());
        }
        let reason = if retryable {
            format!("failed for good after {} attempts", attempt + 1)
        } else {
            "failed for good: the error is not retryable".to_owned()
        };
        self.note(
            LogLevel::Error,
            &reason,
            json!({"error": error, "attempts": attempt + 1}),
        );
        tracing::warn!(
            job_id = %job.id,
            job_name = %job.name,
            execution_id = %execution.id,
            attempts = attempt + 1,
            error = error.as_deref().unwrap_or(""),
            "job failed for good"
        );
        if inner.channels.is_empty() {
            self.note(
                LogLevel::Warn,
                "Failure notification not sent: no notifier is configured",
                Value::Object(Default::default()),
            );
        }
        let notifications = inner
            .channels
            .iter()
            .map(|channel| NewNotification {
                id: Uuid::now_v7(),
                channel: channel.clone(),
            })
            .collect();
        let job_status = one_time.then_some(JobStatus::Failed);
        let recorded = self
            .finish(
                job,
                FinishExecution {
                    error,
                    job_status,
                    notifications,
                    ..self.ending(execution, status)
                },
            )
            .await?;
        if recorded.is_none() {
            return Ok(()); // abandoned meanwhile: the entry belongs to another worker
        }
        if !inner.channels.is_empty() {
            inner.notify_wake.notify_one();
        }
        self.settle_ack().await
    }

    async fn settle_ack(&self) -> Result<(), Error> {
        match self.inner.queue.ack(&self.lease).await {
            Ok(()) | Err(QueueError::LeaseLost { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The end of an attempt, now, with nothing else to record yet.
    fn ending(&self, execution: &Execution, status: ExecutionStatus) -> FinishExecution {
        FinishExecution {
            execution_id: execution.id,
            status,
            finished_at: self.inner.clock.now(),
            output: None,
            error: None,
            next_attempt: None,
            job_status: None,
            notifications: Vec::new(),
        }
    }

    /// Records the end of the attempt with the engine's own log lines.
    async fn finish(
        &mut self,
        job: &Job,
        finish: FinishExecution,
    ) -> Result<Option<Execution>, Error> {
        let inner = self.inner;
        let finished_at = finish.finished_at;
        let execution_id = finish.execution_id;
        let store = &inner.store;
        let recorded = self
            .persist("recording the outcome", || store.finish_execution(&finish))
            .await?;
        let notes = std::mem::take(&mut self.engine_log);
        if !notes.is_empty() {
            let entries = notes
                .into_iter()
                .map(|(level, message, metadata)| LogEntry {
                    id: Uuid::now_v7(),
                    execution_id,
                    job_id: job.id,
                    owner: job.owner,
                    level,
                    message,
                    metadata,
                    timestamp: finished_at,
                })
                .collect::<Vec<_>>();
            self.flush(entries).await;
        }
        match &recorded {
            Some(done) => inner.emit(|| Event::Finished(done.clone())),
            None => tracing::warn!("attempt was abandoned meanwhile; its outcome is not recorded"),
        }
        Ok(recorded)
    }
}

/// A queued execution for another attempt of the same occurrence, due `now`.
fn queued_again(execution: &Execution, attempt: u32, now: DateTime<Utc>) -> Execution {
    Execution {
        id: Uuid::now_v7(),
        attempt,
        status: ExecutionStatus::Queued,
        due_at: now,
        started_at: None,
        finished_at: None,
        duration_ms: None,
        output: None,
        error: None,
        worker: None,
        created_at: now,
        ..execution.clone()
    }
}

impl Inner {
    /// Sends an event if anyone listens (building it only then).
    pub(super) fn emit(&self, event: impl FnOnce() -> Event) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event());
        }
    }
}
