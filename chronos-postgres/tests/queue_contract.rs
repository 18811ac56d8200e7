//! [`PgQueue`] against the queue contract (`chronos::testkit::queue`): every case on a
//! fresh, migrated database of the test server (see `chronos_postgres::testing`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos::clock::ManualClock;
use chronos::model::OccurrenceKey;
use chronos::queue::{Lease, Queue, QueueCounts, QueueEntry, QueueError, Reservation};
use chronos_postgres::PgQueue;
use chronos_postgres::testing::TestDb;
use uuid::Uuid;

/// A [`PgQueue`] that keeps its database alive. The queue is declared first, so it
/// (and its background tasks) goes before the database is dropped.
struct TestQueue {
    queue: PgQueue,
    _db: TestDb,
}

async fn test_queue(clock: Arc<ManualClock>) -> TestQueue {
    let db = TestDb::create().await;
    let queue = PgQueue::new(db.pool.clone(), clock)
        .await
        .expect("a PgQueue on the test database");
    TestQueue { queue, _db: db }
}

#[async_trait]
impl Queue for TestQueue {
    async fn enqueue(&self, entries: &[QueueEntry]) -> Result<usize, QueueError> {
        self.queue.enqueue(entries).await
    }

    async fn reserve(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        self.queue.reserve(worker, max, lease).await
    }

    async fn wait(&self) -> Result<(), QueueError> {
        self.queue.wait().await
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<Lease, QueueError> {
        self.queue.extend(lease, by).await
    }

    async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        self.queue.ack(lease).await
    }

    async fn retry(
        &self,
        lease: &Lease,
        run_at: DateTime<Utc>,
        attempt: u32,
        execution_id: Option<Uuid>,
    ) -> Result<(), QueueError> {
        self.queue.retry(lease, run_at, attempt, execution_id).await
    }

    async fn remove(&self, key: &OccurrenceKey) -> Result<bool, QueueError> {
        self.queue.remove(key).await
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        self.queue.counts().await
    }
}

chronos::queue_contract_tests!(async |clock: Arc<ManualClock>| test_queue(clock).await);
