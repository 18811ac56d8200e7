//! The failure email's subject and its plain-text and HTML bodies.

use chrono::{DateTime, Utc};
use chronos::notifier::Failure;
use html_escape::{encode_double_quoted_attribute, encode_text};

use crate::ConfigError;

/// Where the email points for the execution's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogsPointer {
    /// A link under this base URL (no trailing slash).
    Url(String),
    /// Only the API route (no public URL is configured).
    Route,
}

impl LogsPointer {
    /// From the configured `logs_url`: an absolute `http(s)` URL without query or
    /// fragment.
    pub(crate) fn new(base: Option<&str>) -> Result<Self, ConfigError> {
        let Some(base) = base.map(str::trim).filter(|b| !b.is_empty()) else {
            return Ok(Self::Route);
        };
        let invalid = |reason: &str| ConfigError::InvalidUrl {
            field: "logs_url",
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(base).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a base URL takes no query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("a link sent by email must not carry credentials"));
        }
        Ok(Self::Url(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The pointer to one execution's log, as text.
    fn to(&self, execution: uuid::Uuid) -> String {
        match self {
            Self::Url(base) => format!("{base}/api/v1/executions/{execution}/logs"),
            Self::Route => format!("GET /api/v1/executions/{execution}/logs"),
        }
    }
}

/// The parts of a failure email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

/// `<{failure.id}@chronos>`: the same on every attempt, so receivers can deduplicate.
pub(crate) fn message_id(failure: &Failure) -> String {
    format!("<{}@chronos>", failure.id)
}

/// When the occurrence failed: the last attempt's end.
fn failed_at(failure: &Failure) -> DateTime<Utc> {
    let e = &failure.execution;
    e.finished_at.or(e.started_at).unwrap_or(e.created_at)
}

/// `2026-01-01 05:30:00 UTC`.
fn utc_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `2026-01-01 06:30:00 CET (Europe/Berlin)`.
fn local_time(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    format!(
        "{} ({tz})",
        at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z")
    )
}

/// Renders the email. Nothing from the job is trusted: the HTML part escapes it all;
/// the subject is a header value that lettre encodes.
pub(crate) fn render(failure: &Failure, logs: &LogsPointer) -> Rendered {
    let job = &failure.job;
    let execution = &failure.execution;
    let at = failed_at(failure);
    let utc = utc_time(at);
    let local = local_time(at, job.timezone);
    let attempts = failure.attempts_made();
    let error = match failure.error() {
        "" => "(no error message was recorded)",
        error => error,
    };
    let pointer = logs.to(execution.id);
    let subject = format!("Job Failed: {}", job.name);

    let text = format!(
        "The job \"{name}\" failed for good.\n\
         \n\
         Job:        {name}\n\
         Job id:     {job_id}\n\
         Execution:  {execution_id}\n\
         Failed at:  {utc}\n\
         \x20           {local}\n\
         Attempts:   {attempts}\n\
         Error:      {error}\n\
         \n\
         Execution logs: {pointer}\n",
        name = job.name,
        job_id = job.id,
        execution_id = execution.id,
    );

    let e = |s: &str| encode_text(s).into_owned();
    let logs_html = match logs {
        LogsPointer::Url(_) => format!(
            "<a href=\"{}\">{}</a>",
            encode_double_quoted_attribute(&pointer),
            e(&pointer)
        ),
        LogsPointer::Route => format!("<code>{}</code>", e(&pointer)),
    };
    let html = format!(
        "<!DOCTYPE html>\n\
         <html>\n\
         <head><meta charset=\"utf-8\"><title>{subject}</title></head>\n\
         <body style=\"font-family: sans-serif\">\n\
         <p>The job <strong>{name}</strong> failed for good.</p>\n\
         <table cellpadding=\"4\">\n\
         <tr><th align=\"left\">Job</th><td>{name}</td></tr>\n\
         <tr><th align=\"left\">Job id</th><td><code>{job_id}</code></td></tr>\n\
         <tr><th align=\"left\">Execution</th><td><code>{execution_id}</code></td></tr>\n\
         <tr><th align=\"left\">Failed at</th><td>{utc}<br>{local}</td></tr>\n\
         <tr><th align=\"left\">Attempts</th><td>{attempts}</td></tr>\n\
         <tr><th align=\"left\">Error</th><td><pre style=\"white-space: pre-wrap\">{error}</pre></td></tr>\n\
         </table>\n\
         <p>Execution logs: {logs_html}</p>\n\
         </body>\n\
         </html>\n",
        subject = e(&subject),
        name = e(&job.name),
        job_id = job.id,
        execution_id = execution.id,
        utc = e(&utc),
        local = e(&local),
        error = e(error),
    );

    Rendered {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use chronos::JobSpec;
    use chronos::model::{Execution, ExecutionStatus, Job};
    use uuid::Uuid;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn failure(name: &str, tz: &str, finished: &str, error: Option<&str>) -> Failure {
        let now = t("2026-01-01T00:00:00Z");
        let job = Job::from_spec(&JobSpec::immediate(name), tz.parse().unwrap(), now);
        let at = t(finished);
        let execution = Execution {
            id: Uuid::now_v7(),
            job_id: job.id,
            owner: job.owner,
            job_name: job.name.clone(),
            scheduled_for: now,
            due_at: now,
            attempt: 2,
            status: ExecutionStatus::Failed,
            started_at: Some(at),
            finished_at: Some(at),
            duration_ms: Some(0),
            output: None,
            error: error.map(str::to_owned),
            worker: None,
            manual: false,
            manual_run: None,
            created_at: now,
        };
        Failure {
            id: Uuid::now_v7(),
            attempt: 1,
            job,
            execution,
        }
    }

    #[test]
    fn times_are_given_in_utc_and_in_the_jobs_zone_across_dst() {
        let winter = failure("j", "Europe/Berlin", "2026-01-01T05:30:00Z", None);
        let r = render(&winter, &LogsPointer::Route);
        assert!(r.text.contains("2026-01-01 05:30:00 UTC"), "{}", r.text);
        assert!(
            r.text.contains("2026-01-01 06:30:00 CET (Europe/Berlin)"),
            "{}",
            r.text
        );

        // Berlin leaves CET at 01:00 UTC on 2026-03-29.
        let before = render(
            &failure("j", "Europe/Berlin", "2026-03-29T00:59:59Z", None),
            &LogsPointer::Route,
        );
        assert!(
            before
                .text
                .contains("2026-03-29 01:59:59 CET (Europe/Berlin)")
        );
        let after = render(
            &failure("j", "Europe/Berlin", "2026-03-29T01:00:00Z", None),
            &LogsPointer::Route,
        );
        assert!(
            after
                .text
                .contains("2026-03-29 03:00:00 CEST (Europe/Berlin)")
        );

        // New York returns to EST at 06:00 UTC on 2026-11-01: 01:30 happens twice.
        let first = render(
            &failure("j", "America/New_York", "2026-11-01T05:30:00Z", None),
            &LogsPointer::Route,
        );
        assert!(
            first
                .text
                .contains("2026-11-01 01:30:00 EDT (America/New_York)")
        );
        let second = render(
            &failure("j", "America/New_York", "2026-11-01T06:30:00Z", None),
            &LogsPointer::Route,
        );
        assert!(
            second
                .text
                .contains("2026-11-01 01:30:00 EST (America/New_York)")
        );
        assert!(
            second
                .html
                .contains("2026-11-01 06:30:00 UTC<br>2026-11-01 01:30:00 EST (America/New_York)")
        );

        // Zones without an abbreviation show their offset.
        let kolkata = render(
            &failure("j", "Asia/Kolkata", "2026-01-01T00:00:00Z", None),
            &LogsPointer::Route,
        );
        assert!(
            kolkata
                .text
                .contains("2026-01-01 05:30:00 IST (Asia/Kolkata)"),
            "{}",
            kolkata.text
        );
    }

    #[test]
    fn both_parts_name_the_job_the_attempts_the_error_and_the_logs() {
        let f = failure(
            "nightly-report",
            "UTC",
            "2026-01-01T05:30:00Z",
            Some("upstream down"),
        );
        let logs = LogsPointer::new(Some("https://chronos.example.com/")).unwrap();
        let r = render(&f, &logs);
        assert_eq!(r.subject, "Job Failed: nightly-report");
        let link = format!(
            "https://chronos.example.com/api/v1/executions/{}/logs",
            f.execution.id
        );
        for part in [&r.text, &r.html] {
            assert!(part.contains("nightly-report"));
            assert!(part.contains(&f.job.id.to_string()));
            assert!(part.contains(&f.execution.id.to_string()));
            assert!(part.contains("2026-01-01 05:30:00 UTC"));
            assert!(part.contains("upstream down"));
            assert!(part.contains(&link), "{part}");
        }
        assert!(r.text.contains("Attempts:   3\n"), "{}", r.text);
        assert!(r.html.contains("<td>3</td>"));
        assert!(r.html.contains(&format!("<a href=\"{link}\">")));

        let route = render(&f, &LogsPointer::Route);
        let route_text = format!("GET /api/v1/executions/{}/logs", f.execution.id);
        assert!(route.text.contains(&route_text));
        assert!(route.html.contains(&format!("<code>{route_text}</code>")));
        assert!(!route.html.contains("<a "));
    }

    #[test]
    fn user_text_is_escaped_in_html_and_verbatim_in_text() {
        let f = failure(
            "<script>alert(1)</script>",
            "UTC",
            "2026-01-01T00:00:00Z",
            Some("bad \"quote\" & <b>tag</b>"),
        );
        let r = render(&f, &LogsPointer::Route);
        assert!(r.text.contains("<script>alert(1)</script>"));
        assert!(r.text.contains("bad \"quote\" & <b>tag</b>"));
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(!r.html.contains("<b>"));
        assert!(
            r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            r.html
        );
        assert!(
            r.html
                .contains("bad \"quote\" &amp; &lt;b&gt;tag&lt;/b&gt;")
        );
    }

    #[test]
    fn a_missing_error_is_said_so() {
        let r = render(
            &failure("j", "UTC", "2026-01-01T00:00:00Z", None),
            &LogsPointer::Route,
        );
        assert!(
            r.text
                .contains("Error:      (no error message was recorded)")
        );
    }

    #[test]
    fn the_message_id_is_the_notifications_id() {
        let f = failure("j", "UTC", "2026-01-01T00:00:00Z", None);
        assert_eq!(message_id(&f), format!("<{}@chronos>", f.id));
    }

    #[test]
    fn logs_url_keeps_a_path_prefix_and_rejects_the_unusable() {
        assert_eq!(
            LogsPointer::new(Some("https://example.com/chronos/")).unwrap(),
            LogsPointer::Url("https://example.com/chronos".into())
        );
        assert_eq!(LogsPointer::new(None).unwrap(), LogsPointer::Route);
        assert_eq!(LogsPointer::new(Some("  ")).unwrap(), LogsPointer::Route);
        for bad in [
            "example.com",
            "mailto:a@example.com",
            "https://example.com/?x=1",
            "https://example.com/#top",
            "https://user:pw@example.com",
        ] {
            assert!(LogsPointer::new(Some(bad)).is_err(), "{bad}");
        }
    }
}
