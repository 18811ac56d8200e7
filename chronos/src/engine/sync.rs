//! The safety sync: make the queue hold an entry for everything the store says is owed.
//!
//! It walks the store in pages and enqueues, for every active job, its `next_run`, and
//! for every queued execution (manual runs, retries) and every execution still
//! "running" longer than a lease (its worker is presumed dead), an entry that starts
//! it. Enqueueing is idempotent, so the sync can run at any time, in any number of
//! processes at once; entries that are no longer owed are dropped by the worker that
//! takes them, after the store says so.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Inner;
use crate::Error;
use crate::clock::{after, before};
use crate::model::{ExecutionStatus, OccurrenceKey};
use crate::queue::QueueEntry;

/// Rows read from the store per page.
const PAGE: usize = 1000;

/// What one run of the safety sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Active jobs with a next occurrence checked.
    pub jobs: u64,
    /// Queued or stale running executions checked.
    pub executions: u64,
    /// Entries the queue was missing and now holds.
    pub enqueued: u64,
}

/// Runs the sync every [`Config::sync_interval`](super::Config::sync_interval) after `since`.
pub(super) async fn run(inner: Arc<Inner>, since: DateTime<Utc>) {
    let interval = inner.config.sync_interval;
    let mut next = after(since, interval);
    loop {
        tokio::select! {
            () = inner.clock.sleep_until(next) => {}
            () = inner.stop.cancelled() => return,
        }
        next = after(inner.clock.now(), interval);
        match inner.sync().await {
            Ok(report) if report.enqueued > 0 => {
                tracing::warn!(?report, "safety sync repaired the queue");
            }
            Ok(report) => tracing::debug!(?report, "safety sync: queue agrees with the store"),
            Err(error) => tracing::warn!(%error, "safety sync failed; will run again"),
        }
    }
}

impl Inner {
    pub(super) async fn sync(&self) -> Result<super::SyncReport, Error> {
        let mut report = SyncReport::default();
        let mut after = None;
        loop {
            let page = self.store.scheduled_jobs(after, PAGE).await?;
            let Some(&(last, _)) = page.last() else { break };
            after = Some(last);
            report.jobs += page.len() as u64;
            let entries: Vec<_> = page
                .iter()
                .map(|&(job_id, at)| QueueEntry {
                    key: OccurrenceKey::scheduled(job_id, at),
                    run_at: at,
                    attempt: 0,
                    execution_id: None,
                })
                .collect();
            report.enqueued += self.queue.enqueue(&entries).await? as u64;
        }
        let stale = before(self.clock.now(), self.config.lease);
        let mut after = None;
        loop {
            let page = self.store.pending_executions(after, PAGE, stale).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            report.executions += page.len() as u64;
            let entries: Vec<_> = page
                .iter()
                .map(|e| QueueEntry {
                    key: e.occurrence(),
                    run_at: if e.status == ExecutionStatus::Queued {
                        e.due_at
                    } else {
                        self.clock.now()
                    },
                    attempt: e.attempt,
                    execution_id: Some(e.id),
                })
                .collect();
            report.enqueued += self.queue.enqueue(&entries).await? as u64;
        }
        Ok(report)
    }
}
