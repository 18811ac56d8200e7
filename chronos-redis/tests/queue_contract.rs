//! The `Queue` contract (`chronos::testkit::queue`) on `RedisQueue`: each case with
//! its own key prefix on the test server, skipped loudly when Redis is unreachable.

use std::sync::Arc;

use chronos::clock::ManualClock;
use chronos_redis::RedisQueue;
use chronos_redis::testing::TestRedis;

/// A queue under a fresh prefix; the `TestRedis` rides along so its keys are
/// deleted when the case drops the queue.
struct Case {
    queue: RedisQueue,
    _redis: TestRedis,
}

#[async_trait::async_trait]
impl chronos::queue::Queue for Case {
    async fn enqueue(
        &self,
        entries: &[chronos::queue::QueueEntry],
    ) -> Result<usize, chronos::queue::QueueError> {
        self.queue.enqueue(entries).await
    }
    async fn reserve(
        &self,
        worker: &str,
        max: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<chronos::queue::Reservation>, chronos::queue::QueueError> {
        self.queue.reserve(worker, max, lease).await
    }
    async fn wait(&self) -> Result<(), chronos::queue::QueueError> {
        self.queue.wait().await
    }
    async fn extend(
        &self,
        lease: &chronos::queue::Lease,
        by: std::time::Duration,
    ) -> Result<chronos::queue::Lease, chronos::queue::QueueError> {
        self.queue.extend(lease, by).await
    }
    async fn ack(&self, lease: &chronos::queue::Lease) -> Result<(), chronos::queue::QueueError> {
        self.queue.ack(lease).await
    }
    async fn retry(
        &self,
        lease: &chronos::queue::Lease,
        run_at: chrono::DateTime<chrono::Utc>,
        attempt: u32,
        execution_id: Option<uuid::Uuid>,
    ) -> Result<(), chronos::queue::QueueError> {
        self.queue.retry(lease, run_at, attempt, execution_id).await
    }
    async fn remove(
        &self,
        key: &chronos::model::OccurrenceKey,
    ) -> Result<bool, chronos::queue::QueueError> {
        self.queue.remove(key).await
    }
    async fn counts(&self) -> Result<chronos::queue::QueueCounts, chronos::queue::QueueError> {
        self.queue.counts().await
    }
}

chronos::queue_contract_tests!(async |clock: Arc<ManualClock>| {
    let redis = TestRedis::connect().await;
    let queue = redis.queue("q", clock).await;
    Case {
        queue,
        _redis: redis,
    }
});
