//! The `fail` executor: always fails, with `payload.message` (default `failed on
//! purpose`). The failure is retryable, unless `payload.fatal` is `true`.

use async_trait::async_trait;
use chronos::executor::{ExecError, Executor, JobContext};
use serde_json::Value;

/// The message when the payload gives none.
pub const DEFAULT_MESSAGE: &str = "failed on purpose";

/// The built-in `fail` executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailExecutor;

#[async_trait]
impl Executor for FailExecutor {
    async fn execute(&self, ctx: JobContext) -> Result<Value, ExecError> {
        let payload = ctx.payload();
        let message = payload
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_MESSAGE)
            .to_owned();
        let fatal = payload
            .get("fatal")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        ctx.log().error(format!(
            "failing {}: {message}",
            if fatal { "for good" } else { "(retryable)" }
        ));
        if fatal {
            Err(ExecError::fatal(message))
        } else {
            Err(ExecError::retryable(message))
        }
    }
}
