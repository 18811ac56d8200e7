//! The in-memory [`JobStore`].

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{
    Execution, ExecutionQuery, ExecutionStatus, Job, JobKind, JobQuery, JobSort, JobStats,
    JobStatus, LogEntry, MAX_PAGE_SIZE, Notification, NotificationStatus, OccurrenceKey,
    OwnerStats, Page, SortOrder,
};
use crate::store::{
    ABANDONED, ClaimedNotification, FinishExecution, JobStore, NewNotification, SettleNotification,
    SkipReason, StartExecution, StartOutcome, StoreError,
};

/// A [`JobStore`] that keeps everything in memory, behind one mutex.
///
/// Clones share the same state. Every operation is one critical section, so
/// [`JobStore::start_execution`] and [`JobStore::finish_execution`] are atomic.
///
/// Indexes: jobs by id and by owner; active scheduled jobs by id (for
/// [`JobStore::scheduled_jobs`]) and by owner and `next_run` (for
/// [`JobStore::upcoming_jobs`]); executions by id, by job (newest first), running
/// ones by occurrence and pending (queued or running) ones by id; logs by execution.
///
/// [`JobStore::list_jobs`] sorts with jobs that have no `next_run` last in both
/// directions, and names by their UTF-8 bytes.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("MemoryStore")
            .field("jobs", &st.jobs.len())
            .field("executions", &st.executions.len())
            .field("pending_executions", &st.exec_index.pending.len())
            .finish()
    }
}

#[derive(Default)]
struct State {
    jobs: HashMap<Uuid, Job>,
    job_index: JobIndex,
    executions: HashMap<Uuid, Execution>,
    exec_index: ExecIndex,
    logs: HashMap<Uuid, Vec<LogEntry>>,
    notifications: Outbox,
}

/// Failure notifications and their indexes.
#[derive(Default)]
struct Outbox {
    by_id: HashMap<Uuid, Notification>,
    /// One per occurrence and channel.
    recorded: HashSet<(OccurrenceKey, String)>,
    /// Pending ones as `(due_at, id)`.
    pending: BTreeSet<(DateTime<Utc>, Uuid)>,
    /// Ids by execution.
    by_execution: HashMap<Uuid, Vec<Uuid>>,
}

impl Outbox {
    /// Whether notification `id` is on one of `channels`.
    fn on(&self, id: &Uuid, channels: &[String]) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|n| channels.contains(&n.channel))
    }

    fn record(&mut self, failed: &Execution, new: &NewNotification, at: DateTime<Utc>) {
        if !self
            .recorded
            .insert((failed.occurrence(), new.channel.clone()))
        {
            return;
        }
        let n = Notification {
            id: new.id,
            channel: new.channel.clone(),
            job_id: failed.job_id,
            owner: failed.owner,
            execution_id: failed.id,
            scheduled_for: failed.scheduled_for,
            manual_run: failed.manual_run,
            status: NotificationStatus::Pending,
            attempts: 0,
            due_at: at,
            last_error: None,
            created_at: at,
            finished_at: None,
        };
        self.pending.insert((at, n.id));
        self.by_execution.entry(failed.id).or_default().push(n.id);
        self.by_id.insert(n.id, n);
    }
}

impl State {
    /// The owner's job, unless it is deleted.
    fn visible_job(&self, owner: Uuid, id: Uuid) -> Option<&Job> {
        self.jobs
            .get(&id)
            .filter(|j| j.owner == owner && j.status != JobStatus::Deleted)
    }

    /// The owner's jobs that are not deleted.
    fn owned_jobs(&self, owner: Uuid) -> impl Iterator<Item = &Job> {
        self.job_index
            .by_owner
            .get(&owner)
            .into_iter()
            .flatten()
            .filter_map(|id| self.jobs.get(id))
            .filter(|j| j.status != JobStatus::Deleted)
    }

    /// A job's executions, oldest first.
    fn executions_of(&self, job_id: Uuid) -> impl Iterator<Item = &Execution> {
        self.exec_index
            .by_job
            .get(&job_id)
            .into_iter()
            .flatten()
            .filter_map(|(_, id)| self.executions.get(id))
    }

    fn append_logs(&mut self, entries: &[LogEntry]) {
        let mut unsorted = Vec::new();
        for entry in entries {
            let log = self.logs.entry(entry.execution_id).or_default();
            if log
                .last()
                .is_some_and(|last| (last.timestamp, last.id) > (entry.timestamp, entry.id))
            {
                unsorted.push(entry.execution_id);
            }
            log.push(entry.clone());
        }
        for id in unsorted {
            if let Some(log) = self.logs.get_mut(&id) {
                // Stable and linear on the nearly sorted logs this sees.
                log.sort_by_key(|e| (e.timestamp, e.id));
            }
        }
    }

    /// Stores `job` (new or a replacement), keeping the indexes right.
    fn put_job(&mut self, job: Job) {
        match self.jobs.get(&job.id) {
            Some(old) => self.job_index.replace(old, &job),
            None => self.job_index.add(&job),
        }
        self.jobs.insert(job.id, job);
    }
}

/// Secondary indexes of jobs.
#[derive(Default)]
struct JobIndex {
    /// Every job of an owner, deleted ones included.
    by_owner: HashMap<Uuid, BTreeSet<Uuid>>,
    /// Active jobs with a `next_run`, by id.
    scheduled: BTreeMap<Uuid, DateTime<Utc>>,
    /// Active jobs with a `next_run`, as `(owner, next_run, id)`.
    upcoming: BTreeSet<(Uuid, DateTime<Utc>, Uuid)>,
}

/// The `next_run` a job is scheduled for, if it is active.
fn schedulable(job: &Job) -> Option<DateTime<Utc>> {
    job.next_run.filter(|_| job.status == JobStatus::Active)
}

impl JobIndex {
    fn add(&mut self, job: &Job) {
        self.by_owner.entry(job.owner).or_default().insert(job.id);
        if let Some(next) = schedulable(job) {
            self.scheduled.insert(job.id, next);
            self.upcoming.insert((job.owner, next, job.id));
        }
    }

    fn remove(&mut self, job: &Job) {
        if let Some(ids) = self.by_owner.get_mut(&job.owner) {
            ids.remove(&job.id);
            if ids.is_empty() {
                self.by_owner.remove(&job.owner);
            }
        }
        if let Some(next) = schedulable(job) {
            self.scheduled.remove(&job.id);
            self.upcoming.remove(&(job.owner, next, job.id));
        }
    }

    fn replace(&mut self, old: &Job, new: &Job) {
        if old.owner != new.owner {
            self.remove(old);
            self.add(new);
        } else {
            self.reschedule(new, schedulable(old));
        }
    }

    /// Updates the schedule indexes of `job`, which was indexed with `before`.
    fn reschedule(&mut self, job: &Job, before: Option<DateTime<Utc>>) {
        let after = schedulable(job);
        if before == after {
            return;
        }
        if let Some(next) = before {
            self.scheduled.remove(&job.id);
            self.upcoming.remove(&(job.owner, next, job.id));
        }
        if let Some(next) = after {
            self.scheduled.insert(job.id, next);
            self.upcoming.insert((job.owner, next, job.id));
        }
    }
}

/// Secondary indexes of executions.
#[derive(Default)]
struct ExecIndex {
    /// A job's executions as `(created_at, id)`.
    by_job: HashMap<Uuid, BTreeSet<(DateTime<Utc>, Uuid)>>,
    /// Running executions by occurrence.
    running: HashMap<OccurrenceKey, Running>,
    /// Queued and running executions.
    pending: BTreeSet<Uuid>,
}

impl ExecIndex {
    fn add(&mut self, e: &Execution) {
        self.by_job
            .entry(e.job_id)
            .or_default()
            .insert((e.created_at, e.id));
        self.add_status(e);
    }

    /// Indexes what depends on the status (call after changing it).
    fn add_status(&mut self, e: &Execution) {
        match e.status {
            ExecutionStatus::Queued => {
                self.pending.insert(e.id);
            }
            ExecutionStatus::Running => {
                self.pending.insert(e.id);
                match self.running.entry(e.occurrence()) {
                    Entry::Vacant(v) => {
                        v.insert(Running::One(e.id));
                    }
                    Entry::Occupied(mut o) => o.get_mut().push(e.id),
                }
            }
            _ => {}
        }
    }

    /// Unindexes what depends on the status (call before changing it).
    fn remove_status(&mut self, e: &Execution) {
        match e.status {
            ExecutionStatus::Queued => {
                self.pending.remove(&e.id);
            }
            ExecutionStatus::Running => {
                self.pending.remove(&e.id);
                let key = e.occurrence();
                if let Entry::Occupied(mut o) = self.running.entry(key)
                    && o.get_mut().remove(e.id)
                {
                    o.remove();
                }
            }
            _ => {}
        }
    }
}

/// The running executions of one occurrence: almost always one.
enum Running {
    One(Uuid),
    Many(Vec<Uuid>),
}

impl Running {
    fn push(&mut self, id: Uuid) {
        match self {
            Running::One(first) => *self = Running::Many(vec![*first, id]),
            Running::Many(ids) => ids.push(id),
        }
    }

    /// Removes `id`; returns whether none are left.
    fn remove(&mut self, id: Uuid) -> bool {
        match self {
            Running::One(only) => *only == id,
            Running::Many(ids) => {
                ids.retain(|i| *i != id);
                ids.is_empty()
            }
        }
    }

    fn into_vec(self) -> Vec<Uuid> {
        match self {
            Running::One(id) => vec![id],
            Running::Many(ids) => ids,
        }
    }
}

/// `to - from` in whole milliseconds, never negative.
fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

fn clamp_limit(limit: u32) -> u32 {
    limit.clamp(1, MAX_PAGE_SIZE)
}

fn offset(page: u32, limit: u32) -> usize {
    usize::try_from(Page::<()>::offset(page, limit)).unwrap_or(usize::MAX)
}

/// The order of [`JobStore::list_jobs`]: the sort key, then the id, in `order`;
/// jobs without a `next_run` last in both directions.
fn compare_jobs(a: &Job, b: &Job, sort: JobSort, order: SortOrder) -> Ordering {
    let by_key = match sort {
        JobSort::CreatedAt => a.created_at.cmp(&b.created_at),
        JobSort::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        JobSort::Name => a.name.cmp(&b.name),
        JobSort::NextRun => match (a.next_run, b.next_run) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => return Ordering::Less,
            (None, Some(_)) => return Ordering::Greater,
            (None, None) => Ordering::Equal,
        },
    };
    let ord = by_key.then_with(|| a.id.cmp(&b.id));
    match order {
        SortOrder::Asc => ord,
        SortOrder::Desc => ord.reverse(),
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut st = self.lock();
        if st.jobs.contains_key(&job.id) {
            return Err(StoreError::Duplicate {
                what: "job",
                id: job.id,
            });
        }
        st.put_job(job.clone());
        Ok(())
    }

    async fn get_job(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        Ok(self.lock().jobs.get(&id).cloned())
    }

    async fn find_job(&self, owner: Uuid, id: Uuid) -> Result<Option<Job>, StoreError> {
        Ok(self.lock().visible_job(owner, id).cloned())
    }

    async fn list_jobs(&self, owner: Uuid, query: &JobQuery) -> Result<Page<Job>, StoreError> {
        let limit = clamp_limit(query.limit);
        let page = query.page.max(1);
        let st = self.lock();
        let mut matching: Vec<&Job> = st
            .job_index
            .by_owner
            .get(&owner)
            .into_iter()
            .flatten()
            .filter_map(|id| st.jobs.get(id))
            .filter(|j| {
                j.status != JobStatus::Deleted
                    && query.status.is_none_or(|s| j.status == s)
                    && query.kind.is_none_or(|k| j.kind() == k)
            })
            .collect();
        matching.sort_unstable_by(|a, b| compare_jobs(a, b, query.sort, query.order));
        let total = matching.len() as u64;
        let items = matching
            .into_iter()
            .skip(offset(page, limit))
            .take(limit as usize)
            .cloned()
            .collect();
        Ok(Page {
            items,
            total,
            page,
            limit,
        })
    }

    async fn upcoming_jobs(
        &self,
        owner: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let st = self.lock();
        Ok(st
            .job_index
            .upcoming
            .range((owner, from, Uuid::nil())..=(owner, to, Uuid::max()))
            .filter_map(|(_, _, id)| st.jobs.get(id))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn update_job(&self, job: &Job) -> Result<Job, StoreError> {
        let mut st = self.lock();
        let Some(stored) = st.jobs.get(&job.id) else {
            return Err(StoreError::NotFound {
                what: "job",
                id: job.id,
            });
        };
        if stored.revision != job.revision {
            return Err(StoreError::Conflict {
                id: job.id,
                expected: job.revision,
            });
        }
        let mut new = job.clone();
        new.revision = job.revision + 1;
        st.put_job(new.clone());
        Ok(new)
    }

    async fn scheduled_jobs(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        let st = self.lock();
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(st
            .job_index
            .scheduled
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(id, next)| (*id, *next))
            .collect())
    }

    async fn insert_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        let mut st = self.lock();
        if st.executions.contains_key(&execution.id) {
            return Err(StoreError::Duplicate {
                what: "execution",
                id: execution.id,
            });
        }
        st.exec_index.add(execution);
        st.executions.insert(execution.id, execution.clone());
        Ok(())
    }

    async fn start_execution(&self, start: &StartExecution) -> Result<StartOutcome, StoreError> {
        let mut guard = self.lock();
        let State {
            jobs,
            job_index,
            executions,
            exec_index,
            ..
        } = &mut *guard;
        let key = start.key;
        let now = start.started_at;

        // 1. The job, and whether this occurrence may run.
        let Some(job) = jobs.get_mut(&key.job_id) else {
            return Ok(StartOutcome::Skipped(SkipReason::JobMissing));
        };
        let runnable = if key.manual.is_some() {
            job.status != JobStatus::Deleted
        } else {
            job.status == JobStatus::Active
        };
        if !runnable {
            if let Some(e) = executions.get_mut(&start.execution_id)
                && e.status == ExecutionStatus::Queued
                && e.job_id == key.job_id
            {
                exec_index.remove_status(e);
                e.status = ExecutionStatus::Cancelled;
                e.finished_at = Some(now);
            }
            return Ok(StartOutcome::Skipped(SkipReason::NotRunnable(job.status)));
        }

        // A running execution of another occurrence is a caller's mix-up of ids:
        // refuse it before changing anything.
        if let Some(e) = executions.get(&start.execution_id)
            && e.status == ExecutionStatus::Running
            && e.occurrence() != key
        {
            return Err(StoreError::Duplicate {
                what: "execution",
                id: e.id,
            });
        }

        // 2. Abandon running attempts of the same occurrence.
        let abandoned_ids = exec_index
            .running
            .remove(&key)
            .map_or_else(Vec::new, Running::into_vec);
        for id in &abandoned_ids {
            if let Some(e) = executions.get_mut(id) {
                exec_index.pending.remove(id);
                e.status = ExecutionStatus::Failed;
                e.error = Some(ABANDONED.to_owned());
                e.finished_at = Some(now);
                e.duration_ms = e.started_at.map(|s| millis_between(s, now));
            }
        }
        let abandoned = u32::try_from(abandoned_ids.len()).unwrap_or(u32::MAX);

        // 3. Claim the occurrence.
        let mut next_run = job.next_run;
        if let Some(advance) = start.advance {
            if job.next_run == Some(key.scheduled_for) {
                next_run = advance.next_run;
            } else if abandoned == 0 {
                return Ok(StartOutcome::Skipped(SkipReason::Stale));
            }
        }

        // 4. Start the execution.
        let new_row = |id: Uuid, due_at: DateTime<Utc>| Execution {
            id,
            job_id: job.id,
            owner: job.owner,
            job_name: job.name.clone(),
            scheduled_for: key.scheduled_for,
            due_at,
            attempt: start.attempt,
            status: ExecutionStatus::Running,
            started_at: Some(now),
            finished_at: None,
            duration_ms: None,
            output: None,
            error: None,
            worker: Some(start.worker.clone()),
            manual: key.manual.is_some(),
            manual_run: key.manual,
            created_at: now,
        };
        let execution = match executions.get_mut(&start.execution_id) {
            Some(e) if e.status == ExecutionStatus::Queued => {
                exec_index.remove_status(e);
                e.status = ExecutionStatus::Running;
                e.started_at = Some(now);
                e.worker = Some(start.worker.clone());
                exec_index.add_status(e);
                e.clone()
            }
            // The execution itself was running and step 2 abandoned it: a re-delivery
            // after its worker vanished. The attempt runs again as a new row, so the
            // history shows the abandoned one (step 4 of the trait docs).
            Some(e) if abandoned_ids.contains(&e.id) => {
                let row = new_row(Uuid::now_v7(), e.due_at);
                exec_index.add(&row);
                executions.insert(row.id, row.clone());
                row
            }
            Some(e) if e.status.is_finished() => {
                return Ok(StartOutcome::Skipped(SkipReason::AlreadyFinished));
            }
            Some(e) => {
                // Running for another occurrence (refused above).
                return Err(StoreError::Duplicate {
                    what: "execution",
                    id: e.id,
                });
            }
            None => {
                let due_at = if start.attempt == 0 {
                    key.scheduled_for.min(now)
                } else {
                    now
                };
                let row = new_row(start.execution_id, due_at);
                exec_index.add(&row);
                executions.insert(row.id, row.clone());
                row
            }
        };

        // 5. Record the attempt on the job.
        if next_run != job.next_run {
            let before = schedulable(job);
            job.next_run = next_run;
            job_index.reschedule(job, before);
        }
        job.last_executed_at = Some(now);
        job.retry_count = start.attempt;
        job.revision += 1;
        job.updated_at = now;

        Ok(StartOutcome::Started {
            job: job.clone(),
            execution,
            abandoned,
        })
    }

    async fn finish_execution(
        &self,
        finish: &FinishExecution,
    ) -> Result<Option<Execution>, StoreError> {
        let mut guard = self.lock();
        let State {
            jobs,
            job_index,
            executions,
            exec_index,
            notifications,
            ..
        } = &mut *guard;
        let duplicate = finish
            .next_attempt
            .as_ref()
            .map(|next| next.id)
            .filter(|id| executions.contains_key(id));
        let Some(e) = executions.get_mut(&finish.execution_id) else {
            return Ok(None);
        };
        if e.status != ExecutionStatus::Running {
            return Ok(None);
        }
        if let Some(id) = duplicate {
            return Err(StoreError::Duplicate {
                what: "execution",
                id,
            });
        }
        exec_index.remove_status(e);
        e.status = finish.status;
        e.finished_at = Some(finish.finished_at);
        e.duration_ms = e.started_at.map(|s| millis_between(s, finish.finished_at));
        e.output.clone_from(&finish.output);
        e.error.clone_from(&finish.error);
        exec_index.add_status(e);
        let finished = e.clone();
        for new in &finish.notifications {
            notifications.record(&finished, new, finish.finished_at);
        }

        if let Some(next) = &finish.next_attempt {
            exec_index.add(next);
            executions.insert(next.id, next.clone());
        }
        if let Some(status) = finish.job_status
            && let Some(job) = jobs.get_mut(&finished.job_id)
            && job.status != JobStatus::Deleted
        {
            let before = schedulable(job);
            job.status = status;
            job.revision += 1;
            job.updated_at = finish.finished_at;
            job_index.reschedule(job, before);
        }
        Ok(Some(finished))
    }

    async fn get_execution(&self, owner: Uuid, id: Uuid) -> Result<Option<Execution>, StoreError> {
        let st = self.lock();
        Ok(st
            .executions
            .get(&id)
            .filter(|e| e.owner == owner && st.visible_job(owner, e.job_id).is_some())
            .cloned())
    }

    async fn list_executions(
        &self,
        owner: Uuid,
        job_id: Uuid,
        query: &ExecutionQuery,
    ) -> Result<Page<Execution>, StoreError> {
        let limit = clamp_limit(query.limit);
        let page = query.page.max(1);
        let st = self.lock();
        let mut items = Vec::new();
        let mut total = 0u64;
        if st.visible_job(owner, job_id).is_some()
            && let Some(ids) = st.exec_index.by_job.get(&job_id)
        {
            let skip = offset(page, limit);
            let matching = ids
                .iter()
                .rev()
                .filter_map(|(_, id)| st.executions.get(id))
                .filter(|e| query.status.is_none_or(|s| e.status == s));
            for e in matching {
                if total >= skip as u64 && items.len() < limit as usize {
                    items.push(e.clone());
                }
                total += 1;
            }
        }
        Ok(Page {
            items,
            total,
            page,
            limit,
        })
    }

    async fn pending_executions(
        &self,
        after: Option<Uuid>,
        limit: usize,
        running_started_before: DateTime<Utc>,
    ) -> Result<Vec<Execution>, StoreError> {
        let st = self.lock();
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(st
            .exec_index
            .pending
            .range((lower, Bound::Unbounded))
            .filter_map(|id| st.executions.get(id))
            .filter(|e| match e.status {
                ExecutionStatus::Queued => true,
                ExecutionStatus::Running => e.started_at.is_none_or(|s| s < running_started_before),
                _ => false,
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn job_stats(&self, owner: Uuid, job_id: Uuid) -> Result<JobStats, StoreError> {
        let st = self.lock();
        let mut stats = JobStats::default();
        if st.visible_job(owner, job_id).is_none() {
            return Ok(stats);
        }
        let (mut sum_ms, mut timed) = (0f64, 0u64);
        let executions = st
            .exec_index
            .by_job
            .get(&job_id)
            .into_iter()
            .flatten()
            .filter_map(|(_, id)| st.executions.get(id));
        for e in executions {
            stats.total_executions += 1;
            match e.status {
                ExecutionStatus::Success => stats.successful_executions += 1,
                ExecutionStatus::Failed | ExecutionStatus::Timeout => {
                    stats.failed_executions += 1;
                }
                _ => {}
            }
            if let Some(ms) = e.duration_ms {
                sum_ms += ms as f64;
                timed += 1;
            }
            if e.started_at > stats.last_execution_time {
                stats.last_execution_time = e.started_at;
            }
        }
        if timed > 0 {
            stats.average_duration_ms = Some(sum_ms / timed as f64);
        }
        Ok(stats)
    }

    async fn owner_stats(&self, owner: Uuid) -> Result<OwnerStats, StoreError> {
        let st = self.lock();
        let mut stats = OwnerStats::default();
        let (jobs, runs) = (&mut stats.jobs, &mut stats.executions);
        let (mut sum_ms, mut timed) = (0f64, 0u64);
        for job in st.owned_jobs(owner) {
            jobs.total += 1;
            match job.status {
                JobStatus::Active => jobs.active += 1,
                JobStatus::Paused => jobs.paused += 1,
                JobStatus::Completed => jobs.completed += 1,
                JobStatus::Failed => jobs.failed += 1,
                JobStatus::Pending | JobStatus::Deleted => {}
            }
            match job.kind() {
                JobKind::Recurring => jobs.recurring += 1,
                JobKind::OneTime => jobs.one_time += 1,
            }
            for e in st.executions_of(job.id) {
                runs.total += 1;
                match e.status {
                    ExecutionStatus::Success => runs.successful += 1,
                    ExecutionStatus::Failed | ExecutionStatus::Timeout => runs.failed += 1,
                    _ => {}
                }
                if let Some(ms) = e.duration_ms {
                    sum_ms += ms as f64;
                    timed += 1;
                    runs.max_duration_ms = runs.max_duration_ms.max(Some(ms));
                    runs.min_duration_ms = Some(runs.min_duration_ms.map_or(ms, |m| m.min(ms)));
                }
            }
        }
        if timed > 0 {
            runs.average_duration_ms = Some(sum_ms / timed as f64);
        }
        Ok(stats)
    }

    async fn recent_executions(
        &self,
        owner: Uuid,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let st = self.lock();
        let mut recent: Vec<&Execution> = st
            .owned_jobs(owner)
            .flat_map(|job| st.executions_of(job.id))
            .collect();
        recent.sort_unstable_by_key(|e| std::cmp::Reverse((e.created_at, e.id)));
        Ok(recent.into_iter().take(limit).cloned().collect())
    }

    async fn append_logs(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
        self.lock().append_logs(entries);
        Ok(())
    }

    async fn logs(&self, owner: Uuid, execution_id: Uuid) -> Result<Vec<LogEntry>, StoreError> {
        let st = self.lock();
        Ok(st
            .logs
            .get(&execution_id)
            .into_iter()
            .flatten()
            .filter(|e| e.owner == owner && st.visible_job(owner, e.job_id).is_some())
            .cloned()
            .collect())
    }

    async fn claim_notifications(
        &self,
        channels: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedNotification>, StoreError> {
        let mut guard = self.lock();
        let State {
            jobs,
            executions,
            notifications: outbox,
            ..
        } = &mut *guard;
        let due: Vec<(DateTime<Utc>, Uuid)> = outbox
            .pending
            .range(..=(now, Uuid::max()))
            .filter(|(_, id)| outbox.on(id, channels))
            .take(limit)
            .copied()
            .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for key in due {
            let Some(n) = outbox.by_id.get_mut(&key.1) else {
                continue;
            };
            let (Some(job), Some(execution)) =
                (jobs.get(&n.job_id), executions.get(&n.execution_id))
            else {
                continue;
            };
            outbox.pending.remove(&key);
            n.attempts += 1;
            n.due_at = lease_until;
            outbox.pending.insert((lease_until, n.id));
            claimed.push(ClaimedNotification {
                notification: n.clone(),
                job: job.clone(),
                execution: execution.clone(),
            });
        }
        Ok(claimed)
    }

    async fn settle_notification(&self, settle: &SettleNotification) -> Result<bool, StoreError> {
        let mut guard = self.lock();
        let Some(n) = guard.notifications.by_id.get_mut(&settle.id) else {
            return Ok(false);
        };
        if n.status != NotificationStatus::Pending || n.attempts != settle.attempt {
            return Ok(false);
        }
        let old_due = n.due_at;
        settle.apply(n);
        let (id, status, due) = (n.id, n.status, n.due_at);
        let outbox = &mut guard.notifications;
        outbox.pending.remove(&(old_due, id));
        if status == NotificationStatus::Pending {
            outbox.pending.insert((due, id));
        }
        guard.append_logs(std::slice::from_ref(&settle.log));
        Ok(true)
    }

    async fn next_notification_due(
        &self,
        channels: &[String],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let st = self.lock();
        let outbox = &st.notifications;
        Ok(outbox
            .pending
            .iter()
            .find(|(_, id)| outbox.on(id, channels))
            .map(|(due, _)| *due))
    }

    async fn notifications(&self, execution_id: Uuid) -> Result<Vec<Notification>, StoreError> {
        let st = self.lock();
        let outbox = &st.notifications;
        let mut found: Vec<Notification> = outbox
            .by_execution
            .get(&execution_id)
            .into_iter()
            .flatten()
            .filter_map(|id| outbox.by_id.get(id).cloned())
            .collect();
        found.sort_by(|a, b| a.channel.cmp(&b.channel));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobSpec;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("a valid instant")
    }

    fn job(owner: Uuid) -> Job {
        Job::from_spec(
            &JobSpec::immediate("j").owner(owner),
            chrono_tz::Tz::UTC,
            t(0),
        )
    }

    #[tokio::test]
    async fn list_limit_is_clamped() {
        let store = MemoryStore::new();
        let owner = Uuid::new_v4();
        for _ in 0..3 {
            store.insert_job(&job(owner)).await.expect("insert");
        }
        let q = |limit| JobQuery {
            limit,
            page: 0,
            ..JobQuery::default()
        };
        let page = store.list_jobs(owner, &q(0)).await.expect("list");
        assert_eq!(
            (page.items.len(), page.limit, page.page, page.total),
            (1, 1, 1, 3)
        );
        let page = store.list_jobs(owner, &q(1000)).await.expect("list");
        assert_eq!((page.items.len(), page.limit), (3, MAX_PAGE_SIZE));
    }

    #[tokio::test]
    async fn finish_with_duplicate_next_attempt_changes_nothing() {
        let store = MemoryStore::new();
        let j = job(Uuid::new_v4());
        store.insert_job(&j).await.expect("insert");
        let id = Uuid::now_v7();
        let start = StartExecution {
            key: OccurrenceKey::scheduled(j.id, t(0)),
            attempt: 0,
            execution_id: id,
            advance: None,
            worker: "w".to_owned(),
            started_at: t(1),
        };
        let StartOutcome::Started { execution, .. } =
            store.start_execution(&start).await.expect("start")
        else {
            panic!("not started");
        };
        let finish = FinishExecution {
            execution_id: id,
            status: ExecutionStatus::Failed,
            finished_at: t(2),
            output: None,
            error: None,
            next_attempt: Some(execution.clone()),
            job_status: None,
            notifications: Vec::new(),
        };
        let err = store
            .finish_execution(&finish)
            .await
            .expect_err("duplicate");
        assert!(matches!(err, StoreError::Duplicate { what: "execution", id: d } if d == id));
        let stored = store.get_execution(j.owner, id).await.expect("get");
        assert_eq!(stored, Some(execution), "still running, unchanged");

        // Starting a running execution under another occurrence is refused.
        let other = StartExecution {
            key: OccurrenceKey::scheduled(j.id, t(5)),
            ..start
        };
        let err = store
            .start_execution(&other)
            .await
            .expect_err("mixed-up id");
        assert!(matches!(err, StoreError::Duplicate { .. }));
    }

    #[tokio::test]
    async fn clones_share_state() {
        let store = MemoryStore::new();
        let j = job(Uuid::new_v4());
        store.clone().insert_job(&j).await.expect("insert");
        assert_eq!(store.get_job(j.id).await.expect("get"), Some(j));
        assert!(format!("{store:?}").contains("jobs: 1"));
    }
}
