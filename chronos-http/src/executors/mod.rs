//! The built-in executors of the service, registered under their handler names:
//! - [`http`](http::HttpExecutor): calls a URL (`{url, method?, headers?, body?}`);
//! - [`sleep`](sleep::SleepExecutor): waits `{ms}` milliseconds;
//! - [`fail`](fail::FailExecutor): fails with `{message?, fatal?}`.
//!
//! Besides them, the engine's `echo` (the default handler) succeeds and returns
//! the payload.

pub mod fail;
pub mod http;
pub mod sleep;

use std::future::Future;

use chronos::ChronosBuilder;
use chronos::executor::{ExecError, JobContext};
use serde_json::Value;

pub use fail::FailExecutor;
pub use http::{HttpExecutor, HttpExecutorError, HttpExecutorOptions};
pub use sleep::SleepExecutor;

/// The handler name of [`HttpExecutor`].
pub const HTTP: &str = "http";
/// The handler name of [`SleepExecutor`].
pub const SLEEP: &str = "sleep";
/// The handler name of [`FailExecutor`].
pub const FAIL: &str = "fail";

/// Registers the built-in executors on `builder`.
pub fn register(
    builder: ChronosBuilder,
    http: HttpExecutorOptions,
) -> Result<ChronosBuilder, HttpExecutorError> {
    Ok(builder
        .executor(HTTP, HttpExecutor::new(http)?)
        .executor(SLEEP, SleepExecutor)
        .executor(FAIL, FailExecutor))
}

/// Runs `work` until the attempt is cancelled (its timeout, or shutdown); then
/// drops it and never resolves.
///
/// The engine is the one that decides what a cancelled attempt was: it stops
/// waiting at the deadline (a `timeout`) or at shutdown (`cancelled`, queued to run
/// again). An executor that answered the cancellation with an error of its own could
/// be recorded as an ordinary failure instead (the engine polls the executor first),
/// so the built-in executors stay silent once cancelled.
pub async fn cancellable<F>(ctx: &JobContext, work: F) -> Result<Value, ExecError>
where
    F: Future<Output = Result<Value, ExecError>>,
{
    tokio::select! {
        result = work => result,
        () = ctx.cancelled() => {
            ctx.log().warn("cancelled (timeout or shutdown)");
            std::future::pending().await
        }
    }
}
