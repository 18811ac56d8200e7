//! Cron expressions: parsing and computing fire times in any time zone.
//!
//! # Syntax
//!
//! * 5 fields `minute hour day-of-month month day-of-week`, or 6 fields with
//!   a leading `second` field. A 7th (year) field is rejected.
//! * Per field: `*`, numbers, ranges `1-5`, lists `1,15,30`, steps `*/15`
//!   and `1-30/5`. A step needs `*` or a range before the `/` (`5/10` is
//!   rejected, as in Vixie cron).
//! * Month names `JAN`-`DEC` and weekday names `SUN`-`SAT`, case-insensitive,
//!   each only in its own field. Sunday is `0` or `7`; `SUN` at the end of a
//!   range means 7, so `FRI-SUN` is Friday to Sunday.
//! * Day of month: `L` (last day), `LW` (last weekday), `15W` (the weekday
//!   nearest the 15th, within the month). Day of week: `5L` (last Friday of
//!   the month), `5#3` (third Friday). `?` is accepted as a synonym of `*` in
//!   both day fields.
//! * Macros `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
//!   `@midnight`, `@hourly`. `@reboot` is rejected.
//! * Day-of-month and day-of-week combine as in Vixie cron: if either field
//!   starts with `*` (or is `?`), a day must match both; otherwise a day
//!   matches if it matches either (`0 0 13 * 5` fires on every 13th *and*
//!   every Friday).
//!
//! Parsing is done by the [`croner`] crate, after a stricter validation pass
//! that produces readable errors naming the field, such as
//! `"minute field: 61 is out of range 0-59"`.
//!
//! # Time zones and daylight saving time
//!
//! Expressions are evaluated on the wall clock of a [`Tz`], following
//! Debian cron's rule for clock changes:
//!
//! * A *fixed-time* job (neither the minute nor the hour field starts with
//!   `*`, see [`CronSchedule::is_fixed_time`]) runs at wall clock times.
//!   If the clock jumps forward over such a time, the job fires once, at the
//!   instant of the jump (however many of its times were skipped). If the
//!   clock goes back and repeats such a time, it fires only the first time.
//! * Every other job follows absolute time: wall clock times skipped by a
//!   jump forward never fire, and repeated wall clock times fire twice.
//!
//! The same rule applies to any change of a zone's UTC offset, not only to
//! daylight saving time.
//!
//! # Example
//!
//! ```
//! use chrono::{TimeZone as _, Utc};
//! use chronos::cron::CronSchedule;
//!
//! let schedule = CronSchedule::parse("30 2 * * *").expect("valid expression");
//! let tz = chrono_tz::Europe::Berlin;
//! let after = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
//!
//! // 02:30 does not exist in Berlin on 2026-03-29 (the clock jumps from
//! // 02:00 to 03:00), so this fixed-time job fires at the jump: 03:00 CEST.
//! let next = schedule.next_after(after, tz).unwrap();
//! assert_eq!(next, Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
//!
//! let then: Vec<_> = schedule.iter_after(next, tz).take(2).collect();
//! assert_eq!(then[0], Utc.with_ymd_and_hms(2026, 3, 30, 0, 30, 0).unwrap());
//! assert_eq!(then[1], Utc.with_ymd_and_hms(2026, 3, 31, 0, 30, 0).unwrap());
//!
//! let err = CronSchedule::parse("61 * * * *").unwrap_err();
//! assert_eq!(err.message(), "minute field: 61 is out of range 0-59");
//! ```

mod matcher;
mod syntax;

use chrono::{
    DateTime, Datelike as _, Duration, LocalResult, NaiveDateTime, Offset as _, TimeZone as _,
    Timelike as _, Utc,
};
use chrono_tz::{GapInfo, Tz};
use croner::parser::{CronParser, Seconds, Year};

use self::matcher::Matcher;
use self::syntax::{Field, Normalized};

/// How far ahead (in years of local time) [`CronSchedule::next_after`]
/// searches before giving up. Long enough for the rarest satisfiable
/// expressions (e.g. a 29 February that is also a Sunday, which can be 40
/// years apart around 2100).
const SEARCH_HORIZON_YEARS: i32 = 50;

/// Upper bound on the candidates examined per call, as a guard against
/// pathological inputs; far above what any real zone needs.
const MAX_CANDIDATES: u32 = 200_000;

/// Why an expression was rejected.
///
/// [`Display`](std::fmt::Display) gives a readable reason that names the
/// field and the problem, e.g. `"minute field: 61 is out of range 0-59"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CronError {
    message: String,
}

impl CronError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The readable reason the expression was rejected.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A parsed cron expression.
///
/// Parse once with [`CronSchedule::parse`], then compute fire times with
/// [`CronSchedule::next_after`] or [`CronSchedule::iter_after`]; see the
/// [module documentation](self) for the syntax and the daylight saving time
/// rules.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    matcher: Matcher,
    fixed_time: bool,
}

impl CronSchedule {
    /// Parses an expression (surrounding whitespace is ignored).
    ///
    /// # Errors
    ///
    /// Returns a [`CronError`] with a readable reason if the expression is
    /// empty, has the wrong number of fields, uses an unknown macro or
    /// `@reboot`, or a field is malformed or out of range.
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let trimmed = expression.trim();
        if trimmed.is_empty() {
            return Err(CronError::new("empty expression"));
        }
        let normalized = syntax::normalize(trimmed).map_err(CronError::new)?;
        let cron = parse_with_croner(&normalized)?;
        let matcher = Matcher::new(cron, normalized.dom_and_dow);
        if !matcher.has_times() {
            return Err(CronError::new(format!(
                "expression '{trimmed}' selects no time at all"
            )));
        }
        Ok(Self {
            expression: trimmed.to_owned(),
            matcher,
            fixed_time: normalized.fixed_time,
        })
    }

    /// The expression as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Whether the minute and hour fields are both fixed, i.e. neither starts
    /// with `*` (Debian cron's "fixed-time job" rule, which decides how the
    /// job behaves when the clock changes).
    ///
    /// `0 1-3 * * *`, `0 1,2 * * *` and `@daily` are fixed-time;
    /// `*/5 2 * * *`, `0 */2 * * *` and `@hourly` are not. The seconds
    /// field of a 6-field expression does not matter.
    pub fn is_fixed_time(&self) -> bool {
        self.fixed_time
    }

    /// The first fire time strictly after `after`, evaluated on the wall
    /// clock of `tz` with the daylight saving time rules described in the
    /// [module documentation](self).
    ///
    /// Returns `None` if the expression never fires (e.g. `0 0 30 2 *`) or
    /// does not fire within 50 years of `after`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let offset = tz.offset_from_utc_datetime(&after.naive_utc()).fix();
        let local_after = after
            .naive_utc()
            .checked_add_signed(Duration::seconds(i64::from(offset.local_minus_utc())))?;
        let local_floor = local_after.with_nanosecond(0)?;
        let last_year = local_floor.year().saturating_add(SEARCH_HORIZON_YEARS);
        let one_second = Duration::seconds(1);
        let fixed = self.fixed_time;

        let mut cursor = local_floor.checked_add_signed(one_second)?;
        if !fixed {
            // If `after` lies in the first pass of a repeated (fall-back)
            // stretch of wall clock time, the second pass of the part of that
            // stretch already behind `after` still lies ahead in absolute
            // time: search it too.
            if let LocalResult::Ambiguous(_, later) = tz.from_local_datetime(&local_floor) {
                let later = later.to_utc();
                if later > after {
                    cursor = overlap_start(tz, after, later).unwrap_or(cursor);
                }
            }
        }

        // The best fire time found so far from the second pass of a repeated
        // stretch; a first-pass or unambiguous time found later may beat it.
        let mut best: Option<DateTime<Utc>> = None;
        let pick =
            |best: Option<DateTime<Utc>>, t: DateTime<Utc>| Some(best.map_or(t, |b| b.min(t)));

        for _ in 0..MAX_CANDIDATES {
            let Some(candidate) = self.matcher.next_match(cursor, last_year) else {
                return best;
            };
            match tz.from_local_datetime(&candidate) {
                LocalResult::Single(t) => {
                    let t = t.to_utc();
                    if t > after {
                        return pick(best, t);
                    }
                }
                LocalResult::Ambiguous(earlier, later) => {
                    let (earlier, later) = (earlier.to_utc(), later.to_utc());
                    if earlier > after {
                        return pick(best, earlier);
                    }
                    // Only jobs that follow absolute time fire again in the
                    // second pass.
                    if !fixed && later > after {
                        if best.is_some() {
                            return pick(best, later);
                        }
                        best = Some(later);
                        // Anything that can beat `later` lies in the first pass,
                        // which is after `after` only beyond its wall clock time.
                        cursor = candidate.max(local_floor).checked_add_signed(one_second)?;
                        continue;
                    }
                }
                LocalResult::None => {
                    // Skipped by a jump forward.
                    if let Some(end) = GapInfo::new(&candidate, &tz).and_then(|g| g.end) {
                        if fixed {
                            let jump = end.to_utc();
                            if jump > after {
                                return pick(best, jump);
                            }
                        }
                        cursor = end
                            .naive_local()
                            .max(candidate.checked_add_signed(one_second)?);
                        continue;
                    }
                }
            }
            cursor = candidate.checked_add_signed(one_second)?;
        }
        best
    }

    /// Successive fire times strictly after `after`, evaluated in `tz`;
    /// each item is [`next_after`](Self::next_after) of the previous one.
    pub fn iter_after(
        &self,
        after: DateTime<Utc>,
        tz: Tz,
    ) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(after, tz), move |&t| self.next_after(t, tz))
    }
}

/// The wall clock time where a repeated stretch starts, given an instant
/// `after` in its first pass and an instant `later` in its second pass.
fn overlap_start(tz: Tz, after: DateTime<Utc>, later: DateTime<Utc>) -> Option<NaiveDateTime> {
    let offset_at = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    let first = offset_at(after);
    // Binary search for the transition: the first whole second after `after`
    // whose offset differs from `after`'s.
    let (mut lo, mut hi) = (after.timestamp(), later.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(DateTime::from_timestamp(mid, 0)?) == first {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let transition = DateTime::from_timestamp(hi, 0)?;
    Some(transition.with_timezone(&tz).naive_local())
}

fn parse_with_croner(normalized: &Normalized) -> Result<croner::Cron, CronError> {
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .dom_and_dow(normalized.dom_and_dow)
        .build();
    match parser.parse(&normalized.fields.join(" ")) {
        Ok(cron) => Ok(cron),
        Err(err) => {
            // The validation pass should have caught everything croner
            // rejects; if not, find the field croner objects to.
            for (i, field) in Field::ALL.into_iter().enumerate() {
                let mut probe = ["0", "*", "*", "*", "*", "*"];
                probe[i] = normalized.fields[i].as_str();
                if let Err(field_err) = parser.parse(&probe.join(" ")) {
                    return Err(CronError::new(format!("{field} field: {field_err}")));
                }
            }
            Err(CronError::new(format!("invalid expression: {err}")))
        }
    }
}
