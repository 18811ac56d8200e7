//! The embedded example does what its documentation says: runs immediate, delayed,
//! cron and retried jobs, and shuts down gracefully, in seconds.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_embedded_example_runs_every_kind_of_job_and_shuts_down() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_embedded"))
        .env("RUST_LOG", "info")
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit status {:?}\n{stdout}",
        out.status
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let finished = |job: &str, status: &str| {
        stdout
            .lines()
            .filter(|l| l.contains("attempt finished"))
            .filter(|l| {
                l.contains(&format!("job={job} ")) && l.contains(&format!("status=\"{status}\""))
            })
            .count()
    };
    assert_eq!(finished("right away", "success"), 1, "{stdout}");
    assert_eq!(finished("in two seconds", "success"), 1, "{stdout}");
    assert_eq!(finished("flaky", "failed"), 2, "{stdout}");
    assert_eq!(finished("flaky", "success"), 1, "{stdout}");
    let ticks = finished("every second", "success");
    assert!(
        (3..=5).contains(&ticks),
        "{ticks} cron runs in 4 s\n{stdout}"
    );
    assert!(
        stdout.contains("attempts=3 final_status=\"completed\""),
        "{stdout}"
    );
    assert!(stdout.contains("shut down gracefully"), "{stdout}");
}
