//! Property tests for `chronos::cron`.
//!
//! The fire times are checked against an independent reference written here:
//! a matcher for the plain field forms (`*`, numbers, ranges, lists, steps)
//! and a brute-force walk over UTC instants that applies Debian cron's clock
//! change rule directly. Neither calls croner or the module under test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use chronos::cron::CronSchedule;
use proptest::prelude::*;

const ZONES: [Tz; 5] = [
    Tz::UTC,
    Tz::Europe__Berlin,
    Tz::America__New_York,
    Tz::Australia__Lord_Howe,
    Tz::Asia__Kathmandu,
];

// ---------------------------------------------------------------------------
// Independent reference matcher
// ---------------------------------------------------------------------------

/// A plain field as a bit set over `min..=max`.
fn field_set(text: &str, min: u32, max: u32) -> u64 {
    let mut set = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().unwrap()),
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().unwrap(), b.parse().unwrap())
        } else {
            let v = range.parse().unwrap();
            (v, v)
        };
        let mut v = lo;
        while v <= hi {
            set |= 1 << v;
            v += step;
        }
    }
    set
}

#[derive(Debug, Clone)]
struct Reference {
    seconds: u64,
    minutes: u64,
    hours: u64,
    dom: u64,
    months: u64,
    dow: u64,
    /// Vixie cron: if either day field starts with `*`, both must match.
    and: bool,
    fixed: bool,
}

impl Reference {
    fn new(fields: &Fields) -> Self {
        let dow = field_set(&fields.dow, 0, 7);
        Self {
            seconds: fields.second.as_deref().map_or(1, |s| field_set(s, 0, 59)),
            minutes: field_set(&fields.minute, 0, 59),
            hours: field_set(&fields.hour, 0, 23),
            dom: field_set(&fields.dom, 1, 31),
            months: field_set(&fields.month, 1, 12),
            dow: (dow | (dow >> 7)) & 0x7f,
            and: fields.dom.starts_with('*') || fields.dow.starts_with('*'),
            fixed: !fields.minute.starts_with('*') && !fields.hour.starts_with('*'),
        }
    }

    fn matches(&self, t: NaiveDateTime) -> bool {
        let bit = |set: u64, v: u32| set & (1 << v) != 0;
        let dom = bit(self.dom, t.day());
        let dow = bit(self.dow, t.weekday().num_days_from_sunday());
        bit(self.seconds, t.second())
            && bit(self.minutes, t.minute())
            && bit(self.hours, t.hour())
            && bit(self.months, t.month())
            && if self.and { dom && dow } else { dom || dow }
    }
}

fn offset_secs(tz: Tz, t: DateTime<Utc>) -> i64 {
    i64::from(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

fn local(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc() + Duration::seconds(offset_secs(tz, t))
}

/// If the clock jumps forward at `t`, the skipped wall clock range.
fn gap_at(tz: Tz, t: DateTime<Utc>) -> Option<(NaiveDateTime, NaiveDateTime)> {
    let before = offset_secs(tz, t - Duration::seconds(1));
    let after = offset_secs(tz, t);
    (after > before).then(|| {
        (
            t.naive_utc() + Duration::seconds(before),
            t.naive_utc() + Duration::seconds(after),
        )
    })
}

fn gap_has_match(r: &Reference, (start, end): (NaiveDateTime, NaiveDateTime), step: i64) -> bool {
    let mut l = start;
    while l < end {
        if r.matches(l) {
            return true;
        }
        l += Duration::seconds(step);
    }
    false
}

/// Whether a wall clock time was already shown before instant `t`.
fn seen_before(tz: Tz, t: DateTime<Utc>) -> bool {
    match tz.from_local_datetime(&local(tz, t)) {
        LocalResult::Ambiguous(earlier, _) => earlier.to_utc() < t,
        _ => false,
    }
}

/// Debian cron's rule, instant by instant.
fn fires_at(r: &Reference, tz: Tz, t: DateTime<Utc>, step: i64) -> bool {
    if r.matches(local(tz, t)) && !(r.fixed && seen_before(tz, t)) {
        return true;
    }
    r.fixed && gap_at(tz, t).is_some_and(|gap| gap_has_match(r, gap, step))
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Fields {
    second: Option<String>,
    minute: String,
    hour: String,
    dom: String,
    month: String,
    dow: String,
}

impl Fields {
    fn expression(&self) -> String {
        let five = format!(
            "{} {} {} {} {}",
            self.minute, self.hour, self.dom, self.month, self.dow
        );
        match &self.second {
            Some(s) => format!("{s} {five}"),
            None => five,
        }
    }
}

/// One non-`*` item of a plain field with values in `min..=max`.
fn item(min: u32, max: u32) -> BoxedStrategy<String> {
    let span = max - min + 1;
    prop_oneof![
        3 => (min..=max).prop_map(|v| v.to_string()),
        2 => (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        1 => (min..=max, min..=max, 1..=span)
            .prop_map(|(a, b, s)| format!("{}-{}/{s}", a.min(b), a.max(b))),
    ]
    .boxed()
}

/// A plain field: `*`, `*/n`, or a list of items.
fn field(min: u32, max: u32, star_weight: u32) -> BoxedStrategy<String> {
    let span = max - min + 1;
    prop_oneof![
        star_weight => Just("*".to_owned()),
        2 => (1..=span.min(30)).prop_map(|s| format!("*/{s}")),
        4 => prop::collection::vec(item(min, max), 1..=3).prop_map(|v| v.join(",")),
    ]
    .boxed()
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        prop_oneof![
            6 => Just(None),
            1 => Just(Some("0".to_owned())),
            1 => field(0, 59, 1).prop_map(Some),
        ],
        field(0, 59, 1),
        // Bias hours towards the DST-affected early morning.
        prop_oneof![
            2 => field(0, 23, 2),
            1 => prop::sample::select(vec!["1", "2", "3", "1-3", "2,3", "0-4/2", "*/2", "1,2", "0"])
                .prop_map(str::to_owned),
        ],
        field(1, 31, 16),
        field(1, 12, 16),
        field(0, 7, 6),
    )
        .prop_map(|(second, minute, hour, dom, month, dow)| Fields {
            second,
            minute,
            hour,
            dom,
            month,
            dow,
        })
}

/// Instants in 1970..2100, with sub-second parts sometimes.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (
        0i64..4_102_444_800,
        prop_oneof![3 => Just(0u32), 1 => 0u32..1_000_000_000],
    )
        .prop_map(|(s, ns)| DateTime::from_timestamp(s, ns).unwrap())
}

/// Offset changes of `tz` during `year`, to the second.
fn transitions(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0).unwrap();
    let step = Duration::hours(6);
    while t < end {
        let next = t + step;
        if offset_secs(tz, t) != offset_secs(tz, next) {
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset_secs(tz, mid) == offset_secs(tz, lo) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push(hi);
        }
        t = next;
    }
    out
}

/// A start instant in `tz`, usually shortly before one of its offset changes.
fn near_transition(
    tz: Tz,
    year: i32,
    pick: usize,
    before_secs: i64,
    fallback: DateTime<Utc>,
) -> DateTime<Utc> {
    let ts = transitions(tz, year);
    if ts.is_empty() {
        fallback
    } else {
        ts[pick % ts.len()] - Duration::seconds(before_secs)
    }
}

/// Strings made of cron-ish tokens.
fn cronish() -> impl Strategy<Value = String> {
    let tokens = vec![
        "*",
        "/",
        "-",
        ",",
        "0",
        "1",
        "2",
        "5",
        "7",
        "15",
        "30",
        "59",
        "60",
        "L",
        "W",
        "#",
        "?",
        "+",
        "LW",
        "#5",
        "#6",
        "5L",
        "MON",
        "jan",
        "SUN",
        "FRI",
        "@daily",
        "@hourly",
        "@reboot",
        "@",
        " ",
        " ",
        " ",
        "\t",
        "99999999999",
        "ß",
        "٣",
        "é",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..24).prop_map(|v| v.concat())
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Default 256 cases (override with `PROPTEST_CASES`), no persistence files.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// (1) Parsing never panics, and neither does computing with whatever parses.
    #[test]
    fn parse_never_panics(s in ".{0,60}", t in instant(), z in 0usize..5) {
        if let Ok(schedule) = CronSchedule::parse(&s)
            && let Some(next) = schedule.next_after(t, ZONES[z])
        {
            prop_assert!(next > t);
        }
    }

    #[test]
    fn parse_never_panics_on_cronish_strings(s in cronish(), t in instant(), z in 0usize..5) {
        match CronSchedule::parse(&s) {
            Ok(schedule) => {
                prop_assert_eq!(schedule.expression(), s.trim());
                if let Some(next) = schedule.next_after(t, ZONES[z]) {
                    prop_assert!(next > t);
                }
            }
            Err(err) => prop_assert!(!err.message().is_empty()),
        }
    }

    /// (2) Any result is strictly after `after` and fires according to the
    /// expression and the clock change rule.
    #[test]
    fn next_after_matches_the_expression(f in fields(), after in instant(), z in 0usize..5) {
        let expr = f.expression();
        let schedule = CronSchedule::parse(&expr).map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?;
        let reference = Reference::new(&f);
        prop_assert_eq!(schedule.is_fixed_time(), reference.fixed);
        let tz = ZONES[z];
        let step = if f.second.is_some() { 1 } else { 60 };
        if let Some(next) = schedule.next_after(after, tz) {
            prop_assert!(next > after, "{} in {}: {} is not after {}", expr, tz, next, after);
            prop_assert_eq!(next.nanosecond(), 0);
            let wall = local(tz, next);
            if reference.matches(wall) {
                prop_assert!(
                    !(reference.fixed && seen_before(tz, next)),
                    "{} in {}: fixed-time job fired in the second pass at {}", expr, tz, next
                );
            } else {
                let gap = gap_at(tz, next);
                prop_assert!(
                    reference.fixed && gap.is_some_and(|g| gap_has_match(&reference, g, step)),
                    "{} in {}: {} (wall clock {}) does not match", expr, tz, next, wall
                );
            }
        }
    }

    /// (3) Nothing is skipped or added: over a window, the fire times equal a
    /// brute-force walk over every candidate instant (every minute, or every
    /// second for 6-field expressions), in UTC.
    #[test]
    fn no_fire_time_is_skipped_in_utc(f in fields(), after in instant()) {
        check_window(&f, Tz::UTC, after)?;
    }

    /// (3b) The same around the clock changes of the other zones.
    #[test]
    fn no_fire_time_is_skipped_around_clock_changes(
        f in fields(),
        z in 1usize..5,
        year in 1971i32..2099,
        pick in 0usize..4,
        before_secs in 0i64..(36 * 3600),
        fallback in instant(),
    ) {
        let tz = ZONES[z];
        let after = near_transition(tz, year, pick, before_secs, fallback);
        check_window(&f, tz, after)?;
    }
}

fn check_window(f: &Fields, tz: Tz, after: DateTime<Utc>) -> Result<(), TestCaseError> {
    let expr = f.expression();
    let schedule =
        CronSchedule::parse(&expr).map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?;
    let reference = Reference::new(f);
    let (step, window) = if f.second.is_some() {
        (1, Duration::hours(3))
    } else {
        (60, Duration::hours(48))
    };
    let end = after + window;

    let got: Vec<_> = schedule
        .iter_after(after, tz)
        .take_while(|&t| t <= end)
        .collect();

    let mut expected = Vec::new();
    // First candidate instant strictly after `after`, aligned to `step`.
    let mut t = DateTime::from_timestamp(after.timestamp().div_euclid(step) * step, 0).unwrap();
    while t <= after {
        t += Duration::seconds(step);
    }
    while t <= end {
        if fires_at(&reference, tz, t, step) {
            expected.push(t);
        }
        t += Duration::seconds(step);
    }
    prop_assert_eq!(&got, &expected, "{} in {} after {}", expr, tz, after);
    Ok(())
}
