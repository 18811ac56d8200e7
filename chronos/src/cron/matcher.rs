//! Matching of local (wall clock) date-times against a parsed expression.
//!
//! The seconds, minutes, hours and months of the croner pattern are copied
//! into bit masks, so finding the next matching time of day is a few bit
//! operations. Days are matched with bit masks too when neither day field
//! uses `L`, `W` or `#`; otherwise every candidate day is checked with
//! croner's own day matcher (`CronPattern::day_match`), which implements
//! those modifiers.

use chrono::{Datelike as _, NaiveDate, NaiveDateTime, Timelike as _};
use croner::{Cron, Weekday};

/// How days (day-of-month, day-of-week and their combination) are matched.
#[derive(Debug, Clone)]
enum DayRule {
    /// Plain values only: bit `d` of `dom` for day `d` (1-31), bit `w` of
    /// `dow` for weekday `w` (0 = Sunday).
    Masks { dom: u32, dow: u8, and: bool },
    /// `L`, `W` or `#` is used: ask croner.
    Croner,
}

/// A compiled expression matching local date-times.
#[derive(Debug, Clone)]
pub(super) struct Matcher {
    seconds: u64,
    minutes: u64,
    hours: u64,
    /// Bit `m` for month `m` (1-12).
    months: u64,
    days: DayRule,
    cron: Cron,
}

fn mask(values: &[u16]) -> u64 {
    values
        .iter()
        .filter(|&&v| v < 64)
        .fold(0, |m, &v| m | (1u64 << v))
}

/// The lowest set bit of `mask` at position `from` or above.
#[inline]
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let m = mask & (u64::MAX << from);
    (m != 0).then(|| m.trailing_zeros())
}

pub(super) const fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(super) const fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
const fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = if month <= 2 {
        year as i64 - 1
    } else {
        year as i64
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Weekday of a date, 0 = Sunday.
pub(super) const fn weekday(year: i32, month: u32, day: u32) -> u32 {
    // 1970-01-01 was a Thursday.
    (days_from_civil(year, month, day) + 4).rem_euclid(7) as u32
}

impl Matcher {
    /// Compiles a croner pattern. `and` says whether a day must match both
    /// day fields (Vixie cron's rule when either starts with `*`).
    pub(super) fn new(cron: Cron, and: bool) -> Self {
        let p = &cron.pattern;
        let days = if p.days.has_modifiers() || p.days_of_week.has_modifiers() {
            DayRule::Croner
        } else {
            let dow = mask(&p.days_of_week.values());
            // croner already folds 7 into 0; fold again to be safe.
            let dow = ((dow | (dow >> 7)) & 0x7f) as u8;
            DayRule::Masks {
                dom: mask(&p.days.values()) as u32,
                dow,
                and,
            }
        };
        Self {
            seconds: mask(&p.seconds.values()),
            minutes: mask(&p.minutes.values()),
            hours: mask(&p.hours.values()),
            months: mask(&p.months.values()),
            days,
            cron,
        }
    }

    /// Whether any time of day and any month can match at all.
    pub(super) fn has_times(&self) -> bool {
        self.seconds != 0 && self.minutes != 0 && self.hours != 0 && self.months != 0
    }

    /// The first day `>= from` of the month whose date matches the day fields.
    fn next_day(&self, year: i32, month: u32, from: u32) -> Option<u32> {
        let len = days_in_month(year, month);
        if from > len {
            return None;
        }
        match self.days {
            DayRule::Masks { dom, dow, and } => {
                let first = weekday(year, month, 1);
                // Bit i of `week`: day i+1 falls on a weekday in `dow`.
                let rotated = (u32::from(dow) | (u32::from(dow) << 7)) >> first;
                let week = u64::from(rotated & 0x7f);
                let dow_days =
                    ((week | week << 7 | week << 14 | week << 21 | week << 28) << 1) as u32;
                let days = if and { dom & dow_days } else { dom | dow_days };
                let valid = ((1u64 << (len + 1)) - 1) as u32 & !((1u32 << from) - 1);
                let m = days & valid;
                (m != 0).then(|| m.trailing_zeros())
            }
            DayRule::Croner => {
                let mut wd = Weekday::from_days_from_sunday(weekday(year, month, from));
                for day in from..=len {
                    if self
                        .cron
                        .pattern
                        .day_match(year, month, day, wd)
                        .unwrap_or(false)
                    {
                        return Some(day);
                    }
                    wd = wd.shift(1);
                }
                None
            }
        }
    }

    /// The first time of day `>= (h, m, s)` matching the time fields.
    #[inline]
    fn next_time(&self, h: u32, m: u32, s: u32) -> Option<(u32, u32, u32)> {
        if self.hours & (1 << h) != 0 {
            if self.minutes & (1 << m) != 0
                && let Some(s2) = next_bit(self.seconds, s)
            {
                return Some((h, m, s2));
            }
            if let Some(m2) = next_bit(self.minutes, m + 1) {
                return Some((h, m2, self.seconds.trailing_zeros()));
            }
        }
        let h2 = next_bit(self.hours, h + 1)?;
        Some((
            h2,
            self.minutes.trailing_zeros(),
            self.seconds.trailing_zeros(),
        ))
    }

    /// The first local date-time `>= start` (whole seconds) matching every
    /// field, searching no further than the end of `last_year`.
    pub(super) fn next_match(&self, start: NaiveDateTime, last_year: i32) -> Option<NaiveDateTime> {
        if !self.has_times() {
            return None;
        }
        let (mut y, mut mo, mut d) = (start.year(), start.month(), start.day());
        let (mut h, mut mi, mut s) = (start.hour(), start.minute(), start.second());
        loop {
            if y > last_year {
                return None;
            }
            // Month.
            match next_bit(self.months, mo) {
                Some(m2) if m2 == mo => {}
                Some(m2) => {
                    (mo, d, h, mi, s) = (m2, 1, 0, 0, 0);
                }
                None => {
                    y += 1;
                    (mo, d, h, mi, s) = (self.months.trailing_zeros(), 1, 0, 0, 0);
                    continue;
                }
            }
            // Day.
            match self.next_day(y, mo, d) {
                Some(d2) if d2 == d => {}
                Some(d2) => {
                    (d, h, mi, s) = (d2, 0, 0, 0);
                }
                None => {
                    (y, mo) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
                    (d, h, mi, s) = (1, 0, 0, 0);
                    continue;
                }
            }
            // Time of day.
            match self.next_time(h, mi, s) {
                Some((h2, m2, s2)) => {
                    return NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h2, m2, s2);
                }
                None => {
                    (h, mi, s) = (0, 0, 0);
                    if d < days_in_month(y, mo) {
                        d += 1;
                    } else {
                        (y, mo) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
                        d = 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use croner::parser::{CronParser, Seconds, Year};

    #[test]
    fn weekday_matches_chrono() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2026, 3, 29),
            (2000, 2, 29),
            (1600, 1, 1),
            (-44, 3, 15),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
            assert_eq!(
                weekday(y, m, d),
                date.weekday().num_days_from_sunday(),
                "{date}"
            );
        }
    }

    /// The bit-mask day matching agrees with croner's own matcher.
    #[test]
    fn day_masks_agree_with_croner() {
        let exprs = [
            ("0 0 0 13 * 5", false),
            ("0 0 0 1,15 * 1-5", false),
            ("0 0 0 * * 0", true),
            ("0 0 0 */2 * 1", true),
            ("0 0 0 1-7 * */3", true),
            ("0 0 0 31 * *", true),
            ("0 0 0 29 2 *", true),
        ];
        for (expr, and) in exprs {
            let cron = CronParser::builder()
                .seconds(Seconds::Required)
                .year(Year::Disallowed)
                .dom_and_dow(and)
                .build()
                .parse(expr)
                .expect("valid");
            let m = Matcher::new(cron.clone(), and);
            assert!(matches!(m.days, DayRule::Masks { .. }));
            for y in [2023, 2024, 2026, 2100] {
                for mo in 1..=12 {
                    for d in 1..=days_in_month(y, mo) {
                        let wd = Weekday::from_days_from_sunday(weekday(y, mo, d));
                        let expected = cron.pattern.day_match(y, mo, d, wd).unwrap_or(false);
                        let got = m.next_day(y, mo, d) == Some(d);
                        assert_eq!(got, expected, "{expr} {y}-{mo}-{d}");
                    }
                }
            }
        }
    }
}
