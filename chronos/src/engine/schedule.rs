//! When occurrences fall: a job's first occurrence, and what follows one.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::cron::CronSchedule;
use crate::model::{Job, MissedPolicy, Schedule};

/// What to do with a due occurrence of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Whether to run it (false: skipped by the missed-occurrence policy).
    pub(crate) run: bool,
    /// The job's next occurrence after it.
    pub(crate) next_run: Option<DateTime<Utc>>,
}

/// Parsed cron expressions, so a hot recurring job is not parsed on every occurrence.
#[derive(Debug, Default)]
pub(crate) struct CronCache {
    parsed: Mutex<HashMap<String, CronSchedule>>,
}

/// Past this many distinct expressions the cache starts over.
const CRON_CACHE_LIMIT: usize = 10_000;

impl CronCache {
    pub(crate) fn get(&self, expression: &str) -> Option<CronSchedule> {
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = parsed.get(expression) {
            return Some(c.clone());
        }
        let cron = CronSchedule::parse(expression).ok()?;
        if parsed.len() >= CRON_CACHE_LIMIT {
            parsed.clear();
        }
        parsed.insert(expression.to_owned(), cron.clone());
        Some(cron)
    }

    /// The first occurrence of a recurring job strictly after `after`.
    pub(crate) fn next_after(&self, job: &Job, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Schedule::Cron { expression } = &job.schedule else {
            return None;
        };
        self.get(expression)?.next_after(after, job.timezone)
    }

    /// What follows the occurrence `scheduled_for` of `job`, seen at `now`.
    ///
    /// A one-time job has nothing after. A recurring job continues from the
    /// occurrence itself (not from now, so it never drifts) unless that next
    /// occurrence is already past too, i.e. occurrences were missed: then the
    /// job's [`MissedPolicy`] decides.
    pub(crate) fn plan(&self, job: &Job, scheduled_for: DateTime<Utc>, now: DateTime<Utc>) -> Plan {
        if !matches!(job.schedule, Schedule::Cron { .. }) {
            return Plan {
                run: true,
                next_run: None,
            };
        }
        let next = self.next_after(job, scheduled_for);
        match next {
            Some(n) if n <= now => match job.missed_policy {
                MissedPolicy::RunAll => Plan {
                    run: true,
                    next_run: Some(n),
                },
                MissedPolicy::Coalesce => Plan {
                    run: true,
                    next_run: self.next_after(job, now),
                },
                MissedPolicy::Skip => Plan {
                    run: false,
                    next_run: self.next_after(job, now),
                },
            },
            _ => Plan {
                run: true,
                next_run: next,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobSpec;
    use chrono_tz::Tz;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn hourly(policy: MissedPolicy) -> Job {
        let spec = JobSpec::cron("h", "0 * * * *").missed_policy(policy);
        Job::from_spec(&spec, Tz::UTC, t("2026-01-01T00:00:00Z"))
    }

    #[test]
    fn on_time_occurrence_continues_from_itself() {
        let cache = CronCache::default();
        let job = hourly(MissedPolicy::Coalesce);
        // Running 20 minutes late does not move the schedule.
        let plan = cache.plan(&job, t("2026-01-01T01:00:00Z"), t("2026-01-01T01:20:00Z"));
        assert_eq!(
            plan,
            Plan {
                run: true,
                next_run: Some(t("2026-01-01T02:00:00Z"))
            }
        );
    }

    #[test]
    fn missed_occurrences_follow_the_policy() {
        let cache = CronCache::default();
        let due = t("2026-01-01T01:00:00Z");
        let now = t("2026-01-01T04:30:00Z");
        assert_eq!(
            cache.plan(&hourly(MissedPolicy::Coalesce), due, now),
            Plan {
                run: true,
                next_run: Some(t("2026-01-01T05:00:00Z"))
            }
        );
        assert_eq!(
            cache.plan(&hourly(MissedPolicy::RunAll), due, now),
            Plan {
                run: true,
                next_run: Some(t("2026-01-01T02:00:00Z"))
            }
        );
        assert_eq!(
            cache.plan(&hourly(MissedPolicy::Skip), due, now),
            Plan {
                run: false,
                next_run: Some(t("2026-01-01T05:00:00Z"))
            }
        );
    }

    #[test]
    fn one_time_jobs_have_nothing_after() {
        let cache = CronCache::default();
        let job = Job::from_spec(&JobSpec::immediate("x"), Tz::UTC, t("2026-01-01T00:00:00Z"));
        let plan = cache.plan(&job, t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"));
        assert_eq!(
            plan,
            Plan {
                run: true,
                next_run: None
            }
        );
    }
}
