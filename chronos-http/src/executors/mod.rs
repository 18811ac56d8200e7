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

use chronos::ChronosBuilder;

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
