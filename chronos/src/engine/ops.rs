//! What users do with jobs: create, change, pause, resume, delete, run now, read history.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::Instrument;
use uuid::Uuid;

use super::{Chronos, Event, Inner};
use crate::Error;
use crate::model::spec::{self, SpecError};
use crate::model::{
    Execution, ExecutionQuery, ExecutionStatus, Job, JobKind, JobQuery, JobSpec, JobStats,
    JobStatus, JobUpdate, LogEntry, OccurrenceKey, OwnerStats, Page, Schedule,
};
use crate::queue::QueueEntry;
use crate::store::StoreError;

/// How often a read-modify-write of a job is retried when it races another writer.
const CAS_ATTEMPTS: usize = 16;

/// `None`: any owner (the embedding application); `Some(owner)`: that owner only.
type Scope = Option<Uuid>;

impl Inner {
    fn handler_known(&self) -> impl Fn(&str) -> bool + '_ {
        |name| self.executors.contains_key(name)
    }

    async fn load(&self, scope: Scope, id: Uuid) -> Result<Job, Error> {
        let job = match scope {
            Some(owner) => self.store.find_job(owner, id).await?,
            None => self
                .store
                .get_job(id)
                .await?
                .filter(|j| j.status != JobStatus::Deleted),
        };
        job.ok_or(Error::JobNotFound(id))
    }

    /// Puts the occurrence a job is owed into the queue. The store already says it is
    /// owed, so a failure here is repaired by the safety sync: log it and go on.
    pub(super) async fn enqueue_next(&self, job: &Job) {
        let Some(at) = job.next_run else { return };
        if job.status != JobStatus::Active {
            return;
        }
        let entry = QueueEntry {
            key: OccurrenceKey::scheduled(job.id, at),
            run_at: at,
            attempt: 0,
            execution_id: None,
        };
        if let Err(e) = self.queue.enqueue(&[entry]).await {
            tracing::warn!(job_id = %job.id, error = %e, "enqueue failed; the safety sync will repair it");
        }
    }

    /// Drops the queue entry of an occurrence no longer owed. Failure is harmless: a
    /// worker that takes a stale entry finds it stale in the store and drops it.
    async fn unqueue(&self, job_id: Uuid, at: Option<DateTime<Utc>>) {
        let Some(at) = at else { return };
        if let Err(e) = self
            .queue
            .remove(&OccurrenceKey::scheduled(job_id, at))
            .await
        {
            tracing::debug!(%job_id, error = %e, "could not remove a stale entry; workers will skip it");
        }
    }

    pub(super) async fn create(&self, spec: &JobSpec) -> Result<Job, Error> {
        let now = self.clock.now();
        let valid = spec.validate(now, &self.handler_known())?;
        let mut job = Job::from_spec(spec, valid.timezone, now);
        if let Some(cron) = &valid.cron {
            job.next_run = cron.next_after(now, valid.timezone);
        }
        self.store.insert_job(&job).await?;
        self.enqueue_next(&job).await;
        tracing::debug!(job_id = %job.id, next_run = ?job.next_run, "job created");
        Ok(job)
    }

    /// Read-modify-write of a job, retried when it races another writer (a worker
    /// claiming an occurrence, another request). `change` returns `Ok(false)` when
    /// nothing needs writing.
    async fn modify(
        &self,
        scope: Scope,
        id: Uuid,
        mut change: impl FnMut(&mut Job, DateTime<Utc>) -> Result<bool, Error>,
    ) -> Result<(Job, Option<DateTime<Utc>>), Error> {
        for _ in 0..CAS_ATTEMPTS {
            let mut job = self.load(scope, id).await?;
            let before = job.next_run;
            let now = self.clock.now();
            if !change(&mut job, now)? {
                return Ok((job, before));
            }
            job.updated_at = now;
            match self.store.update_job(&job).await {
                Ok(stored) => return Ok((stored, before)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound { .. }) => return Err(Error::JobNotFound(id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Store(StoreError::Conflict { id, expected: 0 }))
    }

    /// After a write that may have moved `next_run`: make the queue follow.
    async fn follow(&self, job: &Job, before: Option<DateTime<Utc>>) {
        if job.next_run != before || job.status != JobStatus::Active {
            self.unqueue(job.id, before).await;
        }
        self.enqueue_next(job).await;
    }

    pub(super) async fn update(
        &self,
        scope: Scope,
        id: Uuid,
        update: &JobUpdate,
    ) -> Result<Job, Error> {
        if update.is_empty() {
            return Err(SpecError::Fields(vec![spec::FieldError::new(
                "body",
                "at least one field must be given",
            )])
            .into());
        }
        update.validate(&self.handler_known())?;
        let (job, before) = self
            .modify(scope, id, |job, now| {
                apply_update(self, job, update, now)?;
                Ok(true)
            })
            .await?;
        self.follow(&job, before).await;
        Ok(job)
    }

    pub(super) async fn pause(&self, scope: Scope, id: Uuid) -> Result<Job, Error> {
        let (job, before) = self
            .modify(scope, id, |job, now| {
                pause(job, now)?;
                Ok(true)
            })
            .await?;
        self.follow(&job, before).await;
        Ok(job)
    }

    pub(super) async fn resume(&self, scope: Scope, id: Uuid) -> Result<Job, Error> {
        let (job, before) = self
            .modify(scope, id, |job, now| {
                resume(self, job, now)?;
                Ok(true)
            })
            .await?;
        self.follow(&job, before).await;
        Ok(job)
    }

    pub(super) async fn delete(&self, scope: Scope, id: Uuid) -> Result<Job, Error> {
        let (job, before) = self
            .modify(scope, id, |job, _| {
                job.status = JobStatus::Deleted;
                job.next_run = None;
                Ok(true)
            })
            .await?;
        self.unqueue(job.id, before).await;
        Ok(job)
    }

    pub(super) async fn execute_now(&self, scope: Scope, id: Uuid) -> Result<Execution, Error> {
        let job = self.load(scope, id).await?;
        let now = self.clock.now();
        let run = Uuid::now_v7();
        let execution = Execution {
            id: run,
            job_id: job.id,
            owner: job.owner,
            job_name: job.name.clone(),
            scheduled_for: now,
            due_at: now,
            attempt: 0,
            status: ExecutionStatus::Queued,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            output: None,
            error: None,
            worker: None,
            manual: true,
            manual_run: Some(run),
            created_at: now,
        };
        self.store.insert_execution(&execution).await?;
        let entry = QueueEntry {
            key: execution.occurrence(),
            run_at: now,
            attempt: 0,
            execution_id: Some(run),
        };
        if let Err(e) = self.queue.enqueue(&[entry]).await {
            tracing::warn!(job_id = %job.id, execution_id = %run, error = %e, "enqueue failed; the safety sync will repair it");
        }
        Ok(execution)
    }

    async fn execution(&self, owner: Uuid, id: Uuid) -> Result<Execution, Error> {
        self.store
            .get_execution(owner, id)
            .await?
            .ok_or(Error::ExecutionNotFound(id))
    }

    pub(super) async fn wait_for(
        &self,
        execution: &Execution,
        timeout: Duration,
    ) -> Result<Execution, Error> {
        let mut events = self.events.subscribe();
        let wait = async {
            loop {
                let current = self.execution(execution.owner, execution.id).await?;
                if current.status.is_finished() {
                    return Ok(current);
                }
                // Wait for news of it; on a lagged receiver, read the store again.
                loop {
                    match events.recv().await {
                        Ok(Event::Finished(e)) if e.id == execution.id => return Ok(e),
                        Ok(_) => continue,
                        Err(_) => break,
                    }
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::WaitTimedOut(execution.id))?
    }
}

fn pause(job: &mut Job, now: DateTime<Utc>) -> Result<(), Error> {
    if job.status != JobStatus::Active || job.kind() != JobKind::Recurring {
        return Err(Error::InvalidOperation(format!(
            "only active recurring jobs can be paused; this one is {} and {}",
            job.kind().as_str(),
            job.status.as_str()
        )));
    }
    job.status = JobStatus::Paused;
    job.paused_at = Some(now);
    job.next_run = None;
    Ok(())
}

fn resume(inner: &Inner, job: &mut Job, now: DateTime<Utc>) -> Result<(), Error> {
    if job.status != JobStatus::Paused {
        return Err(Error::InvalidOperation(format!(
            "only paused jobs can be resumed; this one is {}",
            job.status.as_str()
        )));
    }
    job.status = JobStatus::Active;
    job.resumed_at = Some(now);
    job.next_run = inner.crons.next_after(job, now);
    Ok(())
}

fn apply_update(
    inner: &Inner,
    job: &mut Job,
    u: &JobUpdate,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if job.status.is_terminal() {
        return Err(Error::InvalidJobStatus {
            id: job.id,
            status: job.status,
        });
    }
    if let Some(name) = &u.name {
        job.name = name.clone();
    }
    if let Some(description) = &u.description {
        job.description = description.clone();
    }
    if let Some(payload) = &u.payload {
        job.payload = payload.clone();
    }
    if let Some(t) = u.timeout {
        job.timeout = t;
    }
    if let Some(r) = u.max_retries {
        job.max_retries = r;
    }
    if let Some(b) = u.retry_backoff {
        job.retry_backoff = b;
    }
    if let Some(h) = &u.handler {
        job.handler = h.clone();
    }
    if let Some(p) = u.missed_policy {
        job.missed_policy = p;
    }
    let mut reschedule = false;
    if let Some(tz) = &u.timezone {
        job.timezone = spec::parse_timezone(tz)?;
        reschedule = true;
    }
    if let Some(expression) = &u.cron_expression {
        if job.kind() != JobKind::Recurring {
            return Err(SpecError::Fields(vec![spec::FieldError::new(
                "cron_expression",
                "only recurring jobs have a cron expression",
            )])
            .into());
        }
        spec::parse_cron(expression, job.timezone, now)?;
        job.schedule = Schedule::Cron {
            expression: expression.clone(),
        };
        reschedule = true;
    }
    if reschedule && job.kind() == JobKind::Recurring {
        // Check the expression against the (possibly new) zone as well.
        if let Some(expression) = job.cron_expression() {
            spec::parse_cron(expression, job.timezone, now)?;
        }
        if job.status == JobStatus::Active {
            job.next_run = inner.crons.next_after(job, now);
        }
    }
    match u.status {
        Some(JobStatus::Paused) if job.status != JobStatus::Paused => pause(job, now)?,
        Some(JobStatus::Active) if job.status != JobStatus::Active => resume(inner, job, now)?,
        _ => {}
    }
    Ok(())
}

/// The operations of [`Chronos`] scoped to one owner: another owner's jobs and
/// executions are exactly as invisible as missing ones.
#[derive(Debug, Clone)]
pub struct Owned {
    chronos: Chronos,
    owner: Uuid,
}

/// Runs a write to its end on a task of its own, so a caller that stops waiting (an
/// HTTP client that disconnects mid-request drops the handler) cannot split the store
/// write from the queue update that follows it: no occurrence is left to the safety sync.
async fn detached<T, F, Fut>(inner: &Arc<Inner>, op: F) -> Result<T, Error>
where
    F: FnOnce(Arc<Inner>) -> Fut,
    Fut: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    let task = tokio::spawn(op(inner.clone()).instrument(tracing::Span::current()));
    task.await.map_err(|e| Error::Task(e.to_string()))?
}

impl Chronos {
    /// The operations scoped to `owner`.
    pub fn owned_by(&self, owner: Uuid) -> Owned {
        Owned {
            chronos: self.clone(),
            owner,
        }
    }

    /// Validates and stores a job, and queues its first occurrence.
    pub async fn create(&self, spec: JobSpec) -> Result<Job, Error> {
        detached(
            &self.inner,
            |inner| async move { inner.create(&spec).await },
        )
        .await
    }

    /// The job with this id (not deleted).
    pub async fn job(&self, id: Uuid) -> Result<Job, Error> {
        self.inner.load(None, id).await
    }

    /// Changes a job; a new cron expression or time zone reschedules it.
    pub async fn update(&self, id: Uuid, update: JobUpdate) -> Result<Job, Error> {
        detached(&self.inner, |inner| async move {
            inner.update(None, id, &update).await
        })
        .await
    }

    /// Pauses an active recurring job: nothing runs, including what is queued.
    pub async fn pause(&self, id: Uuid) -> Result<Job, Error> {
        detached(
            &self.inner,
            |inner| async move { inner.pause(None, id).await },
        )
        .await
    }

    /// Resumes a paused job from now.
    pub async fn resume(&self, id: Uuid) -> Result<Job, Error> {
        detached(
            &self.inner,
            |inner| async move { inner.resume(None, id).await },
        )
        .await
    }

    /// Soft-deletes a job: it never runs again; its history is kept.
    pub async fn delete(&self, id: Uuid) -> Result<Job, Error> {
        detached(
            &self.inner,
            |inner| async move { inner.delete(None, id).await },
        )
        .await
    }

    /// Runs the job once more, now, whatever is queued already. Returns the queued
    /// execution; see [`Chronos::wait_for`].
    pub async fn execute_now(&self, id: Uuid) -> Result<Execution, Error> {
        detached(&self.inner, |inner| async move {
            inner.execute_now(None, id).await
        })
        .await
    }

    /// Waits until an attempt ends, at most `timeout` ([`Error::WaitTimedOut`]).
    pub async fn wait_for(
        &self,
        execution: &Execution,
        timeout: Duration,
    ) -> Result<Execution, Error> {
        self.inner.wait_for(execution, timeout).await
    }
}

impl Owned {
    /// The owner.
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    fn inner(&self) -> &Inner {
        &self.chronos.inner
    }

    /// Creates a job owned by this owner (whatever `spec.owner` says).
    pub async fn create(&self, spec: JobSpec) -> Result<Job, Error> {
        let spec = spec.owner(self.owner);
        detached(&self.chronos.inner, |inner| async move {
            inner.create(&spec).await
        })
        .await
    }

    /// The owner's job.
    pub async fn job(&self, id: Uuid) -> Result<Job, Error> {
        self.inner().load(Some(self.owner), id).await
    }

    /// One page of the owner's jobs.
    pub async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>, Error> {
        Ok(self.inner().store.list_jobs(self.owner, query).await?)
    }

    /// The owner's active jobs due within `within` from now, soonest first.
    pub async fn upcoming_jobs(&self, within: Duration, limit: usize) -> Result<Vec<Job>, Error> {
        let now = self.inner().clock.now();
        let to = crate::clock::after(now, within);
        Ok(self
            .inner()
            .store
            .upcoming_jobs(self.owner, now, to, limit)
            .await?)
    }

    /// Changes the owner's job.
    pub async fn update(&self, id: Uuid, update: &JobUpdate) -> Result<Job, Error> {
        let (owner, update) = (self.owner, update.clone());
        detached(&self.chronos.inner, |inner| async move {
            inner.update(Some(owner), id, &update).await
        })
        .await
    }

    /// Pauses the owner's job.
    pub async fn pause(&self, id: Uuid) -> Result<Job, Error> {
        let owner = self.owner;
        detached(&self.chronos.inner, |inner| async move {
            inner.pause(Some(owner), id).await
        })
        .await
    }

    /// Resumes the owner's job.
    pub async fn resume(&self, id: Uuid) -> Result<Job, Error> {
        let owner = self.owner;
        detached(&self.chronos.inner, |inner| async move {
            inner.resume(Some(owner), id).await
        })
        .await
    }

    /// Soft-deletes the owner's job.
    pub async fn delete(&self, id: Uuid) -> Result<Job, Error> {
        let owner = self.owner;
        detached(&self.chronos.inner, |inner| async move {
            inner.delete(Some(owner), id).await
        })
        .await
    }

    /// Runs the owner's job once more, now.
    pub async fn execute_now(&self, id: Uuid) -> Result<Execution, Error> {
        let owner = self.owner;
        detached(&self.chronos.inner, |inner| async move {
            inner.execute_now(Some(owner), id).await
        })
        .await
    }

    /// One page of the owner's job's executions, newest first.
    pub async fn executions(
        &self,
        job_id: Uuid,
        query: &ExecutionQuery,
    ) -> Result<Page<Execution>, Error> {
        self.job(job_id).await?;
        Ok(self
            .inner()
            .store
            .list_executions(self.owner, job_id, query)
            .await?)
    }

    /// The owner's execution.
    pub async fn execution(&self, id: Uuid) -> Result<Execution, Error> {
        self.inner().execution(self.owner, id).await
    }

    /// The log of the owner's execution, oldest first.
    pub async fn logs(&self, execution_id: Uuid) -> Result<Vec<LogEntry>, Error> {
        self.execution(execution_id).await?;
        Ok(self.inner().store.logs(self.owner, execution_id).await?)
    }

    /// Statistics of the owner's job.
    pub async fn stats(&self, job_id: Uuid) -> Result<JobStats, Error> {
        self.job(job_id).await?;
        Ok(self.inner().store.job_stats(self.owner, job_id).await?)
    }

    /// The owner's job and its statistics, read together (one ownership check).
    pub async fn job_with_stats(&self, id: Uuid) -> Result<(Job, JobStats), Error> {
        self.inner()
            .store
            .find_job_with_stats(self.owner, id)
            .await?
            .ok_or(Error::JobNotFound(id))
    }

    /// The owner's dashboard figures: jobs by status and kind, execution totals.
    pub async fn overview(&self) -> Result<OwnerStats, Error> {
        Ok(self.inner().store.owner_stats(self.owner).await?)
    }

    /// The owner's latest executions across all their jobs, newest first.
    pub async fn recent_executions(&self, limit: usize) -> Result<Vec<Execution>, Error> {
        Ok(self
            .inner()
            .store
            .recent_executions(self.owner, limit)
            .await?)
    }
}
