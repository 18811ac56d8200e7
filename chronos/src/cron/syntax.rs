//! Field-level validation and normalisation of cron expressions.
//!
//! croner does the actual parsing into bit sets, but it is lenient in places
//! (weekday names are accepted in the month field, empty list elements are
//! skipped, `L` alone in the day-of-week field parses but never matches) and
//! its error messages do not say which field is wrong. This module checks
//! every field against a strict grammar first, produces readable messages of
//! the form `"minute field: 61 is out of range 0-59"`, and rewrites names to
//! numbers so croner only ever sees a small, well-formed ASCII language.

use std::fmt;

/// The fields of an expression, in the order of a 6-field expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    /// All fields in 6-field order.
    pub(super) const ALL: [Field; 6] = [
        Field::Second,
        Field::Minute,
        Field::Hour,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    fn expected(self) -> String {
        let (min, max) = self.bounds();
        match self {
            Field::Month => format!("a number {min}-{max} or a name JAN-DEC"),
            Field::DayOfWeek => format!("a number {min}-{max} or a name SUN-SAT"),
            _ => format!("a number {min}-{max}"),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A problem in one field; rendered as `"<field> field: <problem>"`.
#[derive(Debug)]
pub(super) struct FieldError {
    pub(super) field: Field,
    pub(super) problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} field: {}", self.field, self.problem)
    }
}

/// The six fields of an expression after macro expansion and normalisation.
#[derive(Debug, Clone)]
pub(super) struct Normalized {
    /// The normalised fields in 6-field order (seconds first; `0` when the
    /// expression had 5 fields). Names are replaced by numbers, `?` by `*`.
    pub(super) fields: [String; 6],
    /// Whether the minute and hour fields both do not start with `*`.
    pub(super) fixed_time: bool,
    /// Whether the day-of-month or the day-of-week field starts with `*`
    /// (or is `?`): then a day must match both fields (Vixie cron's rule),
    /// otherwise either.
    pub(super) dom_and_dow: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// What the accepted macros stand for.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Expands macros, splits and validates the fields of a trimmed, non-empty
/// expression. The error is the complete readable message.
pub(super) fn normalize(expression: &str) -> Result<Normalized, String> {
    let expanded = if expression.starts_with('@') {
        expand_macro(expression)?
    } else {
        expression
    };

    let parts: Vec<&str> = expanded.split_whitespace().collect();
    let (seconds, rest) = match parts.len() {
        5 => ("0", &parts[..]),
        6 => (parts[0], &parts[1..]),
        7 => {
            return Err(
                "expected 5 fields (minute hour day-of-month month day-of-week) \
                 or 6 with seconds first, got 7: a year field is not supported"
                    .to_owned(),
            );
        }
        n => {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) \
                 or 6 with seconds first, got {n}"
            ));
        }
    };

    let raw = [seconds, rest[0], rest[1], rest[2], rest[3], rest[4]];
    let mut fields: [String; 6] = Default::default();
    for ((slot, field), text) in fields.iter_mut().zip(Field::ALL).zip(raw) {
        *slot = normalize_field(field, text).map_err(|e| e.to_string())?;
    }

    let starts_with_star = |s: &str| s.starts_with('*') || s.starts_with('?');
    Ok(Normalized {
        fixed_time: !raw[1].starts_with('*') && !raw[2].starts_with('*'),
        dom_and_dow: starts_with_star(raw[3]) || starts_with_star(raw[5]),
        fields,
    })
}

fn expand_macro(expression: &str) -> Result<&'static str, String> {
    let word = expression.split_whitespace().next().unwrap_or(expression);
    if word.eq_ignore_ascii_case("@reboot") {
        return Err(
            "@reboot is not supported: it runs at startup, not on a time schedule".to_owned(),
        );
    }
    let Some(&(_, expansion)) = MACROS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
    else {
        return Err(format!(
            "unknown macro '{word}' (expected one of @yearly, @annually, @monthly, @weekly, \
             @daily, @midnight, @hourly)"
        ));
    };
    if word.len() != expression.len() {
        return Err(format!("macro '{word}' must be the whole expression"));
    }
    Ok(expansion)
}

fn normalize_field(field: Field, text: &str) -> Result<String, FieldError> {
    let err = |problem: String| FieldError { field, problem };
    if text == "?" {
        return if matches!(field, Field::DayOfMonth | Field::DayOfWeek) {
            Ok("*".to_owned())
        } else {
            Err(err(format!(
                "'?' is only allowed in the day-of-month and day-of-week fields (expected {})",
                field.expected()
            )))
        };
    }
    let mut out = String::with_capacity(text.len());
    for (i, item) in text.split(',').enumerate() {
        if i > 0 {
            out.push(',');
        }
        normalize_item(field, item, text, &mut out).map_err(err)?;
    }
    Ok(out)
}

/// Position of a value inside an item: only matters for `SUN` as a range end,
/// which means 7 so that `FRI-SUN` is the range 5-7.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pos {
    Start,
    End,
}

fn normalize_item(field: Field, item: &str, whole: &str, out: &mut String) -> Result<(), String> {
    use std::fmt::Write as _;

    if item.is_empty() {
        return Err(format!("empty list element in '{whole}'"));
    }

    match field {
        Field::DayOfMonth => {
            if item.eq_ignore_ascii_case("L") || item.eq_ignore_ascii_case("LW") {
                out.push_str(&item.to_ascii_uppercase());
                return Ok(());
            }
            if let Some(day) = strip_suffix_ci(item, 'W') {
                if !is_number(day) {
                    return Err(format!(
                        "'{item}': W must follow a day number, e.g. '15W' (nearest weekday to the 15th)"
                    ));
                }
                let day = value(field, day, Pos::Start)?;
                let _ = write!(out, "{day}W");
                return Ok(());
            }
        }
        Field::DayOfWeek => {
            if item.eq_ignore_ascii_case("L") {
                return Err(
                    "'L' alone is not supported; use e.g. '5L' for the last Friday of \
                     the month"
                        .to_owned(),
                );
            }
            if let Some((day, nth)) = item.split_once('#') {
                if day.contains(['-', '/', '*']) {
                    return Err(format!(
                        "'{item}': '#' must follow a single weekday, e.g. '5#3' (third Friday)"
                    ));
                }
                let day = value(field, day, Pos::Start)?;
                let nth = match nth.parse::<u32>() {
                    Ok(n @ 1..=5) if is_number(nth) => n,
                    _ => {
                        return Err(format!(
                            "'{item}': the occurrence after '#' must be 1-5, e.g. '5#3'"
                        ));
                    }
                };
                let _ = write!(out, "{day}#{nth}");
                return Ok(());
            }
            if let Some(day) = strip_suffix_ci(item, 'L') {
                if day.contains(['-', '/', '*']) {
                    return Err(format!(
                        "'{item}': 'L' must follow a single weekday, e.g. '5L' (last Friday)"
                    ));
                }
                let day = value(field, day, Pos::Start)?;
                let _ = write!(out, "{day}L");
                return Ok(());
            }
        }
        _ => {}
    }

    let (base, step) = match item.split_once('/') {
        Some((base, step_text)) => {
            let step = match step_text.parse::<u32>() {
                Ok(0) => return Err(format!("'{item}': step must be at least 1")),
                Ok(n) if is_number(step_text) => {
                    let (min, max) = field.bounds();
                    if n > max - min + 1 {
                        return Err(format!(
                            "'{item}': step {n} is larger than the field's range {min}-{max}"
                        ));
                    }
                    n
                }
                _ => {
                    return Err(format!(
                        "'{item}': step '{step_text}' is not a positive number"
                    ));
                }
            };
            (base, Some(step))
        }
        None => (item, None),
    };

    if base == "*" {
        out.push('*');
    } else if let Some((start_text, end_text)) = base.split_once('-') {
        let start = value(field, start_text, Pos::Start)?;
        let end = value(field, end_text, Pos::End)?;
        if start > end {
            return Err(format!(
                "range '{base}' is backwards: start {start} is after end {end}"
            ));
        }
        let _ = write!(out, "{start}-{end}");
    } else {
        let v = value(field, base, Pos::Start)?;
        if let Some(step) = step {
            let (_, max) = field.bounds();
            return Err(format!(
                "'{item}': a step needs '*' or a range before '/', e.g. '*/{step}' or \
                 '{v}-{max}/{step}'"
            ));
        }
        let _ = write!(out, "{v}");
    }
    if let Some(step) = step {
        let _ = write!(out, "/{step}");
    }
    Ok(())
}

fn strip_suffix_ci(item: &str, suffix: char) -> Option<&str> {
    item.strip_suffix(suffix)
        .or_else(|| item.strip_suffix(suffix.to_ascii_lowercase()))
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Parses one number or name and checks it against the field's bounds.
fn value(field: Field, text: &str, pos: Pos) -> Result<u32, String> {
    let (min, max) = field.bounds();
    if text.is_empty() {
        return Err(format!("missing value (expected {})", field.expected()));
    }
    if is_number(text) {
        return match text.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!("{text} is out of range {min}-{max}")),
        };
    }
    let names: &[&str] = match field {
        Field::Month => &MONTHS,
        Field::DayOfWeek => &WEEKDAYS,
        _ => &[],
    };
    match names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        Some(i) => {
            let i = i as u32;
            Ok(match field {
                Field::Month => i + 1,
                Field::DayOfWeek if i == 0 && pos == Pos::End => 7,
                _ => i,
            })
        }
        None => Err(format!(
            "invalid value '{text}' (expected {})",
            field.expected()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(expr: &str) -> Vec<String> {
        match normalize(expr) {
            Ok(n) => n.fields.to_vec(),
            Err(e) => panic!("{expr}: {e}"),
        }
    }

    #[test]
    fn names_become_numbers_per_field() {
        assert_eq!(
            fields("0 9 * jan-Mar MON-fri"),
            ["0", "0", "9", "*", "1-3", "1-5"]
        );
        assert_eq!(fields("0 0 * * FRI-SUN"), ["0", "0", "0", "*", "*", "5-7"]);
        assert_eq!(fields("0 0 * * SUN-SAT"), ["0", "0", "0", "*", "*", "0-6"]);
        assert_eq!(fields("0 0 ? * fri#3"), ["0", "0", "0", "*", "*", "5#3"]);
        assert_eq!(fields("0 0 lw * 5l"), ["0", "0", "0", "LW", "*", "5L"]);
    }

    #[test]
    fn names_are_rejected_in_the_wrong_field() {
        assert!(normalize("0 0 * MON *").is_err());
        assert!(normalize("0 0 * * JAN").is_err());
        assert!(normalize("0 0 * * MONDAY").is_err());
    }

    #[test]
    fn fixed_time_and_dom_dow_mode() {
        let n = |e: &str| normalize(e).map_err(|e| e.to_string());
        assert!(n("0 1-3 * * *").is_ok_and(|n| n.fixed_time && n.dom_and_dow));
        assert!(n("*/5 2 * * *").is_ok_and(|n| !n.fixed_time));
        assert!(n("0 */2 * * *").is_ok_and(|n| !n.fixed_time));
        assert!(n("@hourly").is_ok_and(|n| !n.fixed_time));
        assert!(n("@daily").is_ok_and(|n| n.fixed_time));
        assert!(n("*/10 30 2 * * *").is_ok_and(|n| n.fixed_time));
        assert!(n("0 0 13 * 5").is_ok_and(|n| !n.dom_and_dow));
        assert!(n("0 0 */2 * 5").is_ok_and(|n| n.dom_and_dow));
        assert!(n("0 0 1 * ?").is_ok_and(|n| n.dom_and_dow));
    }
}
