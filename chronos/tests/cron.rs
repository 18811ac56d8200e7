//! Table tests for `chronos::cron`: exact fire times across time zones,
//! daylight saving time transitions and calendar edge cases, plus parse errors.
//!
//! Every expected value was worked out by hand from the calendar and the
//! zones' transitions (checked against chrono-tz):
//!
//! | zone                | 2026 spring forward               | 2026 fall back                    |
//! |---------------------|-----------------------------------|-----------------------------------|
//! | Europe/Berlin       | 03-29 02:00 CET -> 03:00 CEST     | 10-25 03:00 CEST -> 02:00 CET     |
//! | America/New_York    | 03-08 02:00 EST -> 03:00 EDT      | 11-01 02:00 EDT -> 01:00 EST      |
//! | Australia/Lord_Howe | 10-04 02:00 +10:30 -> 02:30 +11   | 04-05 02:00 +11 -> 01:30 +10:30   |
//! | Asia/Kathmandu      | no DST; 1986-01-01 00:00 +05:30 -> 00:15 +05:45            |
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use chronos::cron::CronSchedule;

const UTC: &str = "UTC";
const BERLIN: &str = "Europe/Berlin";
const NEW_YORK: &str = "America/New_York";
const LORD_HOWE: &str = "Australia/Lord_Howe";
const KATHMANDU: &str = "Asia/Kathmandu";
const APIA: &str = "Pacific/Apia";

/// (expression, zone, after, the next fire times), instants in RFC 3339.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

#[rustfmt::skip]
const CASES: &[Case] = &[
    // ---- Plain schedules in UTC ----
    ("*/15 * * * *", UTC, "2026-01-01T00:00:00Z", &[
        "2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z",
    ]),
    // Strictly after: a sub-second before a fire time, and exactly on one.
    ("*/15 * * * *", UTC, "2026-01-01T00:14:59.999Z", &["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z"]),
    ("*/15 * * * *", UTC, "2026-01-01T00:15:00Z", &["2026-01-01T00:30:00Z"]),
    ("*/15 * * * *", UTC, "2026-01-01T00:15:00.5Z", &["2026-01-01T00:30:00Z"]),
    ("1-30/10 * * * *", UTC, "2026-01-01T00:00:00Z", &[
        "2026-01-01T00:01:00Z", "2026-01-01T00:11:00Z", "2026-01-01T00:21:00Z", "2026-01-01T01:01:00Z",
    ]),
    // Weekdays; 2026-01-02 is a Friday.
    ("0 9 * * 1-5", UTC, "2026-01-02T10:00:00Z", &[
        "2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z", "2026-01-07T09:00:00Z",
        "2026-01-08T09:00:00Z", "2026-01-09T09:00:00Z", "2026-01-12T09:00:00Z",
    ]),
    ("0 9-17/2 * * MON-FRI", UTC, "2026-01-02T14:00:00Z", &[
        "2026-01-02T15:00:00Z", "2026-01-02T17:00:00Z", "2026-01-05T09:00:00Z", "2026-01-05T11:00:00Z",
    ]),
    // Leap days.
    ("0 0 29 2 *", UTC, "2025-01-01T00:00:00Z", &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
    ("0 0 29 2 *", UTC, "2028-02-29T00:00:00Z", &["2032-02-29T00:00:00Z"]),
    // 2100 is not a leap year.
    ("0 0 29 2 *", UTC, "2097-01-01T00:00:00Z", &["2104-02-29T00:00:00Z"]),
    // Month ends.
    ("0 0 L * *", UTC, "2026-01-15T00:00:00Z", &[
        "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z",
    ]),
    ("0 0 L 2 *", UTC, "2026-03-01T00:00:00Z", &["2027-02-28T00:00:00Z", "2028-02-29T00:00:00Z"]),
    ("0 0 31 * *", UTC, "2026-01-31T00:00:00Z", &[
        "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
        "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z",
    ]),
    // Year ends.
    ("59 23 31 12 *", UTC, "2026-06-01T00:00:00Z", &["2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"]),
    ("*/30 * * * *", UTC, "2026-12-31T23:45:00Z", &["2027-01-01T00:00:00Z", "2027-01-01T00:30:00Z"]),
    ("0 0 1 1 *", UTC, "2026-12-31T23:59:59Z", &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
    ("59 59 23 31 12 *", UTC, "2026-12-31T23:59:58Z", &["2026-12-31T23:59:59Z", "2027-12-31T23:59:59Z"]),
    // W: 2026-02-15 and 2026-03-15 are Sundays, 2026-04-15 a Wednesday.
    ("0 0 15W * *", UTC, "2026-02-01T00:00:00Z", &[
        "2026-02-16T00:00:00Z", "2026-03-16T00:00:00Z", "2026-04-15T00:00:00Z",
    ]),
    // 2026-08-01 is a Saturday: the nearest weekday inside the month is Monday the 3rd.
    ("0 0 1W * *", UTC, "2026-07-15T00:00:00Z", &[
        "2026-08-03T00:00:00Z", "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z",
    ]),
    // Last weekday: 2026-05-31 is a Sunday.
    ("0 0 LW * *", UTC, "2026-05-01T00:00:00Z", &[
        "2026-05-29T00:00:00Z", "2026-06-30T00:00:00Z", "2026-07-31T00:00:00Z",
    ]),
    // #: third Friday (Fridays of January 2026: 2, 9, 16, ...).
    ("0 0 * * 5#3", UTC, "2026-01-01T00:00:00Z", &[
        "2026-01-16T00:00:00Z", "2026-02-20T00:00:00Z", "2026-03-20T00:00:00Z",
    ]),
    ("0 0 * * FRI#3", UTC, "2026-01-01T00:00:00Z", &["2026-01-16T00:00:00Z"]),
    // L in day-of-week: last Friday.
    ("0 0 * * 5L", UTC, "2026-01-01T00:00:00Z", &[
        "2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z",
    ]),
    // Names, case-insensitive.
    ("0 12 * JAN,mar Mon", UTC, "2026-01-20T00:00:00Z", &[
        "2026-01-26T12:00:00Z", "2026-03-02T12:00:00Z", "2026-03-09T12:00:00Z",
    ]),
    // Sunday as 0, 7 or SUN (2026-01-04 is a Sunday).
    ("0 0 * * 0", UTC, "2026-01-01T00:00:00Z", &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]),
    ("0 0 * * 7", UTC, "2026-01-01T00:00:00Z", &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]),
    ("0 0 * * sun", UTC, "2026-01-01T00:00:00Z", &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]),
    ("0 0 * * FRI-SUN", UTC, "2026-01-01T00:00:00Z", &[
        "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z",
    ]),
    ("0 0 * * 5-7", UTC, "2026-01-01T00:00:00Z", &[
        "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z",
    ]),
    // OR rule: every 13th and every Friday (2026-04-13 is a Monday).
    ("0 0 13 * 5", UTC, "2026-03-14T00:00:00Z", &[
        "2026-03-20T00:00:00Z", "2026-03-27T00:00:00Z", "2026-04-03T00:00:00Z",
        "2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z", "2026-04-17T00:00:00Z",
    ]),
    // A day field starting with `*` makes it AND (Vixie cron): days 1, 11,
    // 21, 31 that are Mondays.
    ("0 0 */10 * 1", UTC, "2026-01-01T00:00:00Z", &[
        "2026-05-11T00:00:00Z", "2026-06-01T00:00:00Z", "2026-08-31T00:00:00Z",
    ]),
    ("0 0 1,15 * ?", UTC, "2026-01-01T00:00:00Z", &["2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z"]),
    // Seconds.
    ("*/10 * * * * *", UTC, "2026-01-01T00:00:05Z", &[
        "2026-01-01T00:00:10Z", "2026-01-01T00:00:20Z", "2026-01-01T00:00:30Z",
        "2026-01-01T00:00:40Z", "2026-01-01T00:00:50Z", "2026-01-01T00:01:00Z",
    ]),
    ("30 0 12 * * *", UTC, "2026-01-01T12:00:30Z", &["2026-01-02T12:00:30Z", "2026-01-03T12:00:30Z"]),
    // Macros (2026-01-04 is a Sunday).
    ("@hourly", UTC, "2026-01-01T00:30:00Z", &["2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"]),
    ("@daily", UTC, "2026-01-01T00:30:00Z", &["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]),
    ("@midnight", UTC, "2026-01-01T00:00:00Z", &["2026-01-02T00:00:00Z"]),
    ("@weekly", UTC, "2026-01-01T00:00:00Z", &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]),
    ("@monthly", UTC, "2026-01-01T00:00:00Z", &["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]),
    ("@yearly", UTC, "2026-01-01T00:00:00Z", &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
    ("@ANNUALLY", UTC, "2026-06-01T00:00:00Z", &["2027-01-01T00:00:00Z"]),
    // Never.
    ("0 0 30 2 *", UTC, "2026-01-01T00:00:00Z", &[]),
    ("0 0 31 4,6,9,11 *", UTC, "2026-01-01T00:00:00Z", &[]),
    // ---- Europe/Berlin, spring forward 2026-03-29 02:00 CET -> 03:00 CEST ----
    // Fixed-time job inside the gap: fires once at the jump.
    ("30 2 * * *", BERLIN, "2026-03-27T12:00:00Z", &[
        "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
    ]),
    ("0,30 2 * * *", BERLIN, "2026-03-28T12:00:00Z", &[
        "2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T02:30:00+02:00",
    ]),
    // 03:00 itself also matches: still a single fire at 03:00.
    ("0,30 2,3 * * *", BERLIN, "2026-03-28T12:00:00Z", &[
        "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:00:00+02:00", "2026-03-30T02:30:00+02:00", "2026-03-30T03:00:00+02:00",
    ]),
    ("0 1-3 * * *", BERLIN, "2026-03-28T12:00:00Z", &[
        "2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00",
        "2026-03-30T01:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T03:00:00+02:00",
    ]),
    // Starting exactly at the jump: the fire there is not repeated.
    ("0,30 2,3 * * *", BERLIN, "2026-03-29T01:00:00Z", &["2026-03-29T03:30:00+02:00"]),
    // Interval jobs skip the missing hour.
    ("*/30 * * * *", BERLIN, "2026-03-29T00:15:00Z", &[
        "2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00",
    ]),
    ("@hourly", BERLIN, "2026-03-28T23:30:00Z", &[
        "2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00",
    ]),
    ("*/20 2 * * *", BERLIN, "2026-03-28T12:00:00Z", &[
        "2026-03-30T02:00:00+02:00", "2026-03-30T02:20:00+02:00",
    ]),
    // ---- Europe/Berlin, fall back 2026-10-25 03:00 CEST -> 02:00 CET ----
    // Fixed-time: once, in the first pass.
    ("30 2 * * *", BERLIN, "2026-10-24T12:00:00Z", &[
        "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00",
    ]),
    ("0 1-3 * * *", BERLIN, "2026-10-24T12:00:00Z", &[
        "2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00",
        "2026-10-26T01:00:00+01:00",
    ]),
    ("0 1,2 * * *", BERLIN, "2026-10-24T12:00:00Z", &[
        "2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-26T01:00:00+01:00",
    ]),
    // After the first 02:30, from inside either pass: next is the following day.
    ("30 2 * * *", BERLIN, "2026-10-25T00:40:00Z", &["2026-10-26T02:30:00+01:00"]),
    ("30 2 * * *", BERLIN, "2026-10-25T01:10:00Z", &["2026-10-26T02:30:00+01:00"]),
    // Interval jobs: both passes.
    ("*/30 * * * *", BERLIN, "2026-10-24T23:45:00Z", &[
        "2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00",
    ]),
    ("@hourly", BERLIN, "2026-10-24T22:30:00Z", &[
        "2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00",
    ]),
    // Starting inside the first pass (02:10 CEST) and the second (02:10 CET).
    ("*/30 * * * *", BERLIN, "2026-10-25T00:10:00Z", &[
        "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]),
    ("*/30 * * * *", BERLIN, "2026-10-25T01:10:00Z", &[
        "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00",
    ]),
    ("0 */30 2 * * *", BERLIN, "2026-10-25T00:00:00Z", &[
        "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
        "2026-10-26T02:00:00+01:00",
    ]),
    // ---- America/New_York ----
    ("30 2 * * *", NEW_YORK, "2026-03-07T12:00:00Z", &[
        "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00",
    ]),
    ("0 1-3 * * *", NEW_YORK, "2026-03-07T12:00:00Z", &[
        "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T01:00:00-04:00",
    ]),
    ("*/20 2 * * *", NEW_YORK, "2026-03-07T12:00:00Z", &["2026-03-09T02:00:00-04:00"]),
    ("0 1-3 * * *", NEW_YORK, "2026-10-31T12:00:00Z", &[
        "2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00",
    ]),
    ("0 1,2 * * *", NEW_YORK, "2026-10-31T12:00:00Z", &[
        "2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-02T01:00:00-05:00",
    ]),
    ("30 1 * * *", NEW_YORK, "2026-10-31T12:00:00Z", &[
        "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00",
    ]),
    ("*/20 1 * * *", NEW_YORK, "2026-10-31T12:00:00Z", &[
        "2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00", "2026-11-01T01:40:00-04:00",
        "2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00", "2026-11-01T01:40:00-05:00",
        "2026-11-02T01:00:00-05:00",
    ]),
    ("@daily", NEW_YORK, "2026-03-07T12:00:00Z", &[
        "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00",
    ]),
    // ---- Australia/Lord_Howe: 30-minute shifts ----
    // Spring forward 2026-10-04 02:00 +10:30 -> 02:30 +11:00 (2026-10-03T15:30Z).
    ("15 2 * * *", LORD_HOWE, "2026-10-03T00:00:00Z", &[
        "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00",
    ]),
    ("0,15 2 * * *", LORD_HOWE, "2026-10-03T00:00:00Z", &[
        "2026-10-04T02:30:00+11:00", "2026-10-05T02:00:00+11:00", "2026-10-05T02:15:00+11:00",
    ]),
    ("0,30 2 * * *", LORD_HOWE, "2026-10-03T00:00:00Z", &[
        "2026-10-04T02:30:00+11:00", "2026-10-05T02:00:00+11:00", "2026-10-05T02:30:00+11:00",
    ]),
    ("*/15 * * * *", LORD_HOWE, "2026-10-03T15:10:00Z", &[
        "2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00",
    ]),
    // Fall back 2026-04-05 02:00 +11:00 -> 01:30 +10:30 (2026-04-04T15:00Z).
    ("*/15 * * * *", LORD_HOWE, "2026-04-04T14:20:00Z", &[
        "2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00",
        "2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30",
    ]),
    ("45 1 * * *", LORD_HOWE, "2026-04-04T00:00:00Z", &[
        "2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30",
    ]),
    // ---- Asia/Kathmandu, +05:45 ----
    ("0 9 * * *", KATHMANDU, "2026-01-01T00:00:00Z", &[
        "2026-01-01T09:00:00+05:45", "2026-01-02T09:00:00+05:45",
    ]),
    ("*/30 * * * *", KATHMANDU, "2026-01-01T00:00:00Z", &[
        "2026-01-01T06:00:00+05:45", "2026-01-01T06:30:00+05:45",
    ]),
    // Historical (non-DST) offset change 1986-01-01 00:00 +05:30 -> 00:15 +05:45.
    ("5 0 * * *", KATHMANDU, "1985-12-31T12:00:00Z", &[
        "1986-01-01T00:15:00+05:45", "1986-01-02T00:05:00+05:45",
    ]),
    ("*/5 * * * *", KATHMANDU, "1985-12-31T18:20:00Z", &[
        "1985-12-31T23:55:00+05:30", "1986-01-01T00:15:00+05:45", "1986-01-01T00:20:00+05:45",
    ]),
    // ---- Pacific/Apia skipped all of 2011-12-30 (-10:00 -> +14:00) ----
    // The same rule as for DST: a fixed-time job fires once at the jump...
    ("0 10 * * *", APIA, "2011-12-29T12:00:00Z", &[
        "2011-12-29T10:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T10:00:00+14:00",
    ]),
    // ...an interval job just skips the missing day.
    ("0 */12 * * *", APIA, "2011-12-29T12:00:00Z", &[
        "2011-12-29T12:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00",
    ]),
];

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("bad instant {text}: {e}"))
        .to_utc()
}

fn zone(name: &str) -> Tz {
    name.parse()
        .unwrap_or_else(|e| panic!("bad zone {name}: {e}"))
}

#[test]
fn fire_times_table() {
    let mut failures = Vec::new();
    for &(expr, tz_name, after, expected) in CASES {
        let schedule = CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let tz = zone(tz_name);
        let after = instant(after);
        let expected: Vec<DateTime<Utc>> = expected.iter().map(|t| instant(t)).collect();

        let got: Vec<DateTime<Utc>> = schedule
            .iter_after(after, tz)
            .take(expected.len() + 1)
            .collect();
        let got_prefix = &got[..expected.len().min(got.len())];
        let ok = got_prefix == expected.as_slice() && (!expected.is_empty() || got.is_empty());
        if !ok {
            let show = |v: &[DateTime<Utc>]| {
                v.iter()
                    .map(|t| t.with_timezone(&tz).to_rfc3339())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            failures.push(format!(
                "{expr:?} in {tz_name} after {after}:\n   expected [{}]\n   got      [{}]",
                show(&expected),
                show(got_prefix)
            ));
        }
        // next_after agrees with the iterator.
        assert_eq!(
            schedule.next_after(after, tz),
            got.first().copied(),
            "{expr} {tz_name}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn schedule_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_send_sync::<CronSchedule>();
    assert_send_sync::<chronos::cron::CronError>();
}

#[test]
fn fixed_time_classification() {
    let cases = [
        ("30 2 * * *", true),
        ("0 1-3 * * *", true),
        ("0 1,2 * * *", true),
        ("0 9-17/2 * * *", true),
        ("@daily", true),
        ("@midnight", true),
        ("@weekly", true),
        ("@monthly", true),
        ("@yearly", true),
        ("@hourly", false),
        ("*/5 2 * * *", false),
        ("0 */2 * * *", false),
        ("* * * * *", false),
        ("0 * * * *", false),
        ("*/10 30 2 * * *", true),
        ("0 */5 2 * * *", false),
        ("0 30 * * * *", false),
    ];
    for (expr, fixed) in cases {
        let schedule = CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(schedule.is_fixed_time(), fixed, "{expr}");
    }
}

#[test]
fn expression_is_kept_trimmed() {
    let schedule = CronSchedule::parse("  */5 * * * *\n").unwrap();
    assert_eq!(schedule.expression(), "*/5 * * * *");
    let schedule = CronSchedule::parse("@Daily").unwrap();
    assert_eq!(schedule.expression(), "@Daily");
}

#[test]
fn equivalent_spellings_agree() {
    let groups: &[&[&str]] = &[
        &[
            "0 0 * * 0",
            "0 0 * * 7",
            "0 0 * * SUN",
            "@weekly",
            "0 0 0 * * sun",
        ],
        &[
            "0 0 1 1 *",
            "@yearly",
            "@annually",
            "0 0 1 JAN *",
            "0 0 0 1 jan ?",
        ],
        &["0 0 * * *", "@daily", "@midnight", "0 0 ? * *"],
        &["0 * * * *", "@hourly", "0 0-59/60 * * * *"],
        &[
            "0 9 * * 1-5",
            "0 9 * * MON-FRI",
            "0 9 * * mon,tue,wed,thu,fri",
        ],
        &["0 0 * * 0-6", "0 0 * * *", "0 0 * * 1-7"],
    ];
    let tz = zone(BERLIN);
    let after = instant("2026-03-20T00:00:00Z");
    for group in groups {
        let reference: Vec<_> = CronSchedule::parse(group[0])
            .unwrap()
            .iter_after(after, tz)
            .take(30)
            .collect();
        for expr in &group[1..] {
            let got: Vec<_> = CronSchedule::parse(expr)
                .unwrap_or_else(|e| panic!("{expr}: {e}"))
                .iter_after(after, tz)
                .take(30)
                .collect();
            assert_eq!(got, reference, "{expr} vs {}", group[0]);
        }
    }
}

/// (expression, fragments the message must contain)
#[rustfmt::skip]
const INVALID: &[(&str, &[&str])] = &[
    ("", &["empty expression"]),
    ("   \t ", &["empty expression"]),
    ("61 * * * *", &["minute field", "61", "0-59"]),
    ("0 24 * * *", &["hour field", "24", "0-23"]),
    ("0 0 32 * *", &["day-of-month field", "32", "1-31"]),
    ("0 0 0 * *", &["day-of-month field", "0", "1-31"]),
    ("0 0 * 13 *", &["month field", "13", "1-12"]),
    ("0 0 * * 8", &["day-of-week field", "8", "0-7"]),
    ("60 * * * * *", &["second field", "60", "0-59"]),
    ("99999999999 * * * *", &["minute field", "99999999999"]),
    ("* * *", &["expected 5 fields", "got 3"]),
    ("* * * *", &["got 4"]),
    ("* * * * * * *", &["got 7", "year"]),
    ("* * * * * * * *", &["got 8"]),
    ("a b c d e", &["minute field", "'a'"]),
    ("0 0 * MON *", &["month field", "'MON'"]),
    ("0 0 * * JAN", &["day-of-week field", "'JAN'"]),
    ("0 0 * * MONDAY", &["day-of-week field", "'MONDAY'"]),
    ("@reboot", &["@reboot", "not supported"]),
    ("@nope", &["unknown macro", "@nope"]),
    ("@daily 5", &["@daily", "whole expression"]),
    ("*/0 * * * *", &["minute field", "*/0", "step"]),
    ("*/61 * * * *", &["minute field", "step 61"]),
    ("*/x * * * *", &["minute field", "step 'x'"]),
    ("5/10 * * * *", &["minute field", "5/10", "*/10"]),
    ("0 5-1 * * *", &["hour field", "5-1", "backwards"]),
    ("1-0 * * * *", &["minute field", "1-0", "backwards"]),
    ("1- * * * *", &["minute field", "missing value"]),
    ("1-2-3 * * * *", &["minute field", "'2-3'"]),
    ("1,,2 * * * *", &["minute field", "empty list element"]),
    (", * * * *", &["minute field", "empty list element"]),
    ("? * * * *", &["minute field", "'?'"]),
    ("0 0 * * L", &["day-of-week field", "'L' alone"]),
    ("0 0 * * 5#6", &["day-of-week field", "5#6", "1-5"]),
    ("0 0 * * 5#0", &["day-of-week field", "5#0"]),
    ("0 0 * * 1-5#2", &["day-of-week field", "'#'"]),
    ("0 0 * * 8#2", &["day-of-week field", "8", "0-7"]),
    ("0 0 W * *", &["day-of-month field", "'W'"]),
    ("0 0 32W * *", &["day-of-month field", "32"]),
    ("0 0 3L * *", &["day-of-month field", "'3L'"]),
    ("0 0 * * 1-5L", &["day-of-week field", "'L'"]),
    ("0 0 L * 5W", &["day-of-week field", "'5W'"]),
    ("L * * * *", &["minute field", "'L'"]),
    ("0 0 * * +1", &["day-of-week field", "'+1'"]),
    ("٣ * * * *", &["minute field", "'٣'"]),
];

#[test]
fn invalid_expressions_table() {
    let mut failures = Vec::new();
    for &(expr, fragments) in INVALID {
        match CronSchedule::parse(expr) {
            Ok(_) => failures.push(format!("{expr:?}: accepted")),
            Err(err) => {
                assert_eq!(err.to_string(), err.message());
                let message = err.message();
                for fragment in fragments {
                    if !message.contains(fragment) {
                        failures.push(format!("{expr:?}: message {message:?} lacks {fragment:?}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exact_messages() {
    let message = |expr: &str| {
        CronSchedule::parse(expr)
            .map(|_| ())
            .unwrap_err()
            .message()
            .to_owned()
    };
    assert_eq!(
        message("61 * * * *"),
        "minute field: 61 is out of range 0-59"
    );
    assert_eq!(message(""), "empty expression");
    assert_eq!(
        message("* * *"),
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got 3"
    );
}

#[test]
fn extremes_do_not_panic() {
    let schedule = CronSchedule::parse("* * * * * *").unwrap();
    for tz_name in [UTC, BERLIN, NEW_YORK, LORD_HOWE, KATHMANDU] {
        let tz = zone(tz_name);
        assert_eq!(schedule.next_after(DateTime::<Utc>::MAX_UTC, tz), None);
        // Near the minimum, the wall clock may not be representable: `None` is fine.
        let first = schedule.next_after(DateTime::<Utc>::MIN_UTC, tz);
        assert!(
            first.is_none_or(|t| t > DateTime::<Utc>::MIN_UTC),
            "{tz_name}"
        );
    }
}
