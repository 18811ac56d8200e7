//! Chronos embedded in an application, with nothing else running.
//!
//! Runs an immediate job, a delayed job, a cron job every second, and a job that
//! fails twice before it succeeds (retried with exponential backoff), then shuts
//! down gracefully. Finishes in about five seconds:
//!
//! ```text
//! cargo run -p examples --bin embedded
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chronos::executor::{ExecError, JobContext};
use chronos::model::ExecutionQuery;
use chronos::{Chronos, Event, JobSpec};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,chronos=info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let failures_left = Arc::new(AtomicU32::new(2));
    let chronos = Chronos::builder()
        .executor("greet", |ctx: JobContext| async move {
            let who = ctx.payload()["who"].as_str().unwrap_or("world").to_owned();
            ctx.log().info(format!("greeting {who}"));
            Ok(json!({ "greeting": format!("hello, {who}") }))
        })
        .executor("flaky", move |ctx: JobContext| {
            let failures_left = failures_left.clone();
            async move {
                if failures_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return Err(ExecError::retryable(format!(
                        "attempt {} failed: upstream unavailable",
                        ctx.attempt()
                    )));
                }
                Ok(json!({ "succeeded_on_attempt": ctx.attempt() }))
            }
        })
        .concurrency(8)
        .build()
        .await?;

    let mut events = chronos.subscribe();
    let now = chronos.clock().now();

    chronos
        .create(
            JobSpec::immediate("right away")
                .handler("greet")
                .payload(json!({"who": "now"})),
        )
        .await?;
    chronos
        .create(
            JobSpec::at("in two seconds", now + chrono::Duration::seconds(2))
                .handler("greet")
                .payload(json!({"who": "later"})),
        )
        .await?;
    let ticker = chronos
        .create(
            JobSpec::cron("every second", "* * * * * *")
                .timezone("Europe/Berlin")
                .handler("greet")
                .payload(json!({"who": "cron"})),
        )
        .await?;
    let flaky = chronos
        .create(
            JobSpec::immediate("flaky")
                .handler("flaky")
                .max_retries(3)
                .retry_backoff(Duration::from_millis(250)),
        )
        .await?;

    // Watch attempts finish for four seconds.
    let watch = async {
        while let Ok(event) = events.recv().await {
            if let Event::Finished(e) = event {
                tracing::info!(
                    job = %e.job_name,
                    attempt = e.attempt,
                    status = e.status.as_str(),
                    scheduled_for = %e.scheduled_for,
                    output = %e.output.unwrap_or_default(),
                    error = e.error.as_deref().unwrap_or(""),
                    "attempt finished"
                );
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), watch).await;

    chronos.pause(ticker.id).await?;
    let owner = chronos.owned_by(flaky.owner);
    let history = owner
        .executions(flaky.id, &ExecutionQuery::default())
        .await?;
    tracing::info!(
        attempts = history.total,
        final_status = chronos.job(flaky.id).await?.status.as_str(),
        "the flaky job's history"
    );
    let ticks = owner
        .executions(ticker.id, &ExecutionQuery::default())
        .await?;
    tracing::info!(
        runs = ticks.total,
        "the cron job ran once a second until paused"
    );

    chronos.shutdown().await?;
    tracing::info!("shut down gracefully");
    Ok(())
}
