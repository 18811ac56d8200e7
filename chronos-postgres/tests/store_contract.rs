//! [`PgStore`] against the store contract test kit (`chronos::testkit`): every case on
//! a fresh database of its own (see `chronos_postgres::testing::TestDb`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos::model::{
    Execution, ExecutionQuery, Job, JobQuery, JobStats, LogEntry, Notification, OwnerStats, Page,
};
use chronos::store::{
    ClaimedNotification, FinishExecution, JobStore, SettleNotification, StartExecution,
    StartOutcome, StoreError,
};
use chronos_postgres::PgStore;
use chronos_postgres::testing::TestDb;
use uuid::Uuid;

/// A [`PgStore`] that owns its test database: dropping it drops the database.
struct TestStore {
    store: PgStore,
    _db: TestDb,
}

async fn test_store() -> TestStore {
    let db = TestDb::create().await;
    TestStore {
        store: PgStore::new(db.pool.clone()),
        _db: db,
    }
}

#[async_trait]
impl JobStore for TestStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        self.store.insert_job(job).await
    }

    async fn get_job(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        self.store.get_job(id).await
    }

    async fn find_job(&self, owner: Uuid, id: Uuid) -> Result<Option<Job>, StoreError> {
        self.store.find_job(owner, id).await
    }

    async fn list_jobs(&self, owner: Uuid, query: &JobQuery) -> Result<Page<Job>, StoreError> {
        self.store.list_jobs(owner, query).await
    }

    async fn upcoming_jobs(
        &self,
        owner: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        self.store.upcoming_jobs(owner, from, to, limit).await
    }

    async fn update_job(&self, job: &Job) -> Result<Job, StoreError> {
        self.store.update_job(job).await
    }

    async fn scheduled_jobs(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        self.store.scheduled_jobs(after, limit).await
    }

    async fn insert_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        self.store.insert_execution(execution).await
    }

    async fn start_execution(&self, start: &StartExecution) -> Result<StartOutcome, StoreError> {
        self.store.start_execution(start).await
    }

    async fn finish_execution(
        &self,
        finish: &FinishExecution,
    ) -> Result<Option<Execution>, StoreError> {
        self.store.finish_execution(finish).await
    }

    async fn get_execution(&self, owner: Uuid, id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.store.get_execution(owner, id).await
    }

    async fn list_executions(
        &self,
        owner: Uuid,
        job_id: Uuid,
        query: &ExecutionQuery,
    ) -> Result<Page<Execution>, StoreError> {
        self.store.list_executions(owner, job_id, query).await
    }

    async fn pending_executions(
        &self,
        after: Option<Uuid>,
        limit: usize,
        running_started_before: DateTime<Utc>,
    ) -> Result<Vec<Execution>, StoreError> {
        self.store
            .pending_executions(after, limit, running_started_before)
            .await
    }

    async fn job_stats(&self, owner: Uuid, job_id: Uuid) -> Result<JobStats, StoreError> {
        self.store.job_stats(owner, job_id).await
    }

    async fn owner_stats(&self, owner: Uuid) -> Result<OwnerStats, StoreError> {
        self.store.owner_stats(owner).await
    }

    async fn recent_executions(
        &self,
        owner: Uuid,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        self.store.recent_executions(owner, limit).await
    }

    async fn append_logs(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
        self.store.append_logs(entries).await
    }

    async fn logs(&self, owner: Uuid, execution_id: Uuid) -> Result<Vec<LogEntry>, StoreError> {
        self.store.logs(owner, execution_id).await
    }

    async fn claim_notifications(
        &self,
        channels: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedNotification>, StoreError> {
        self.store
            .claim_notifications(channels, now, lease_until, limit)
            .await
    }

    async fn settle_notification(&self, settle: &SettleNotification) -> Result<bool, StoreError> {
        self.store.settle_notification(settle).await
    }

    async fn next_notification_due(
        &self,
        channels: &[String],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.store.next_notification_due(channels).await
    }

    async fn notifications(&self, execution_id: Uuid) -> Result<Vec<Notification>, StoreError> {
        self.store.notifications(execution_id).await
    }
}

chronos::store_contract_tests!(test_store);
