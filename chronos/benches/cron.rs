//! Throughput of `CronSchedule::next_after` (plain `fn main`, no harness).
//!
//! For each of five time zones, a mix of expressions is evaluated by chaining
//! `next_after` from several start instants spread over 2026 (so daylight
//! saving time transitions are crossed) for a fixed time budget. Prints one
//! JSON line per zone and one for the total:
//!
//! ```text
//! {"label":"chronos.cron.next_after.<zone>","metric":"ops_per_sec","value":N}
//! ```
//!
//! Run with `cargo bench --bench cron`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]
// Only `harness = false` runs `main`; stay warning-free if built with the harness.
#![cfg_attr(test, allow(dead_code))]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use chronos::cron::CronSchedule;

const EXPRESSIONS: [&str; 8] = [
    "*/5 * * * *",
    "30 2 * * *",
    "0 9 * * 1-5",
    "0 0 L * *",
    "*/10 * * * * *",
    "0 0 29 2 *",
    "@hourly",
    "0 9-17/2 * * MON-FRI",
];

const ZONES: [Tz; 5] = [
    Tz::UTC,
    Tz::Europe__Berlin,
    Tz::America__New_York,
    Tz::Australia__Lord_Howe,
    Tz::Asia__Kathmandu,
];

/// Time spent per zone.
const BUDGET: Duration = Duration::from_millis(300);
/// Successive fire times computed from each start instant.
const CHAIN: usize = 64;

fn main() {
    let schedules: Vec<CronSchedule> = EXPRESSIONS
        .iter()
        .map(|e| CronSchedule::parse(e).expect("valid expression"))
        .collect();
    // Start instants spread over 2026 at odd times of day.
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let starts: Vec<DateTime<Utc>> = (0..24)
        .map(|i| base + chrono::Duration::seconds(i * 15 * 86_400 + i * 3_917))
        .collect();

    let mut total_ops = 0u64;
    let mut total_time = Duration::ZERO;
    for tz in ZONES {
        // Warm up.
        run_round(&schedules, &starts[..2], tz);

        let mut ops = 0u64;
        let began = Instant::now();
        let mut round = 0usize;
        while began.elapsed() < BUDGET {
            let start = &starts[round % starts.len()..][..1];
            ops += run_round(&schedules, start, tz);
            round += 1;
        }
        let elapsed = began.elapsed();
        total_ops += ops;
        total_time += elapsed;
        print_line(&format!("chronos.cron.next_after.{tz}"), ops, elapsed);
    }
    print_line("chronos.cron.next_after.total", total_ops, total_time);
}

/// Chains `next_after` for every schedule from every start; returns the calls made.
fn run_round(schedules: &[CronSchedule], starts: &[DateTime<Utc>], tz: Tz) -> u64 {
    let mut ops = 0;
    for schedule in schedules {
        for &start in starts {
            let mut t = start;
            for _ in 0..CHAIN {
                ops += 1;
                match schedule.next_after(black_box(t), black_box(tz)) {
                    Some(next) => t = next,
                    None => break,
                }
            }
            black_box(t);
        }
    }
    ops
}

fn print_line(label: &str, ops: u64, elapsed: Duration) {
    let per_sec = ops as f64 / elapsed.as_secs_f64();
    println!(r#"{{"label":"{label}","metric":"ops_per_sec","value":{per_sec:.0}}}"#);
}
