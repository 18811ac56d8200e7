//! The `sleep` executor: waits `payload.ms` milliseconds, then succeeds with
//! `{"slept_ms": ms}`. Cancellation (the job's timeout, shutdown) ends the wait at
//! once; the engine records the attempt as timed out or cancelled. A missing or
//! malformed `ms` is a fatal error.

use std::time::Duration;

use async_trait::async_trait;
use chronos::executor::{ExecError, Executor, JobContext};
use serde_json::{Value, json};

/// The built-in `sleep` executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct SleepExecutor;

#[async_trait]
impl Executor for SleepExecutor {
    async fn execute(&self, ctx: JobContext) -> Result<Value, ExecError> {
        let ms = ctx
            .payload()
            .get("ms")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                ExecError::fatal("invalid sleep payload: `ms` (a non-negative integer) is required")
            })?;
        ctx.log().info(format!("sleeping {ms} ms"));
        // A timeout or shutdown drops this future: the engine records what it was.
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(json!({ "slept_ms": ms }))
    }
}
