//! `POST /cron/preview`: the next fire times of a cron expression, computed by the
//! same parser and rules as jobs.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use chrono::{DateTime, Datelike as _, Utc};
use chronos::model::spec::{self, SpecError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::docs::UNAUTHENTICATED;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::json::Fields;
use crate::respond::{Envelope, ok, timestamp};
use crate::routes::jobs::method_not_allowed;
use crate::state::AppState;

/// Most fire times one preview returns.
pub const MAX_COUNT: u64 = 100;
/// Fire times returned when the request names no `count`.
pub const DEFAULT_COUNT: u64 = 5;
/// The last year RFC 3339 can write: later fire times are not listed.
const LAST_YEAR: i32 = 9999;

/// The fields `POST /cron/preview` accepts.
const PREVIEW_FIELDS: &[&str] = &["cron_expression", "timezone", "after", "count"];

/// The cron routes, relative to `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cron/preview", post(preview))
        .method_not_allowed_fallback(method_not_allowed)
}

// The single description of the body of `POST /cron/preview` (for the document):
// `preview` reads it field by field with `Fields`. A unit test checks that it lists
// exactly `PREVIEW_FIELDS`.
/// The body of `POST /cron/preview`.
///
/// `null` counts as absent; any other field is unknown.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"cron_expression": "30 2 * * *", "timezone": "Europe/Berlin", "count": 3}))]
pub struct CronPreview {
    /// 5 fields, or 6 with seconds first; names, ranges, lists, steps,
    /// `@hourly`-style macros, `L`, `W`, `#`: the rules of jobs.
    pub cron_expression: String,
    /// The IANA time zone it is evaluated in (default `UTC`).
    #[schema(default = "UTC")]
    pub timezone: Option<String>,
    /// List fire times strictly after this instant (RFC 3339 with `Z` or an offset;
    /// default now).
    pub after: Option<DateTime<Utc>>,
    /// How many fire times: 1 to 100.
    #[schema(minimum = 1, maximum = 100, default = json!(DEFAULT_COUNT))]
    pub count: Option<u64>,
}

/// Preview a cron expression.
///
/// `POST /cron/preview` `{cron_expression, timezone?, after?, count?}` → `data:
/// {next_runs: [...]}`: the first `count` (1..100, default 5) fire times strictly
/// after `after` (RFC 3339 with `Z` or an offset, default now), evaluated in
/// `timezone` (IANA, default `UTC`) with the DST rules of jobs, each an RFC 3339 UTC
/// instant with milliseconds.
///
/// Errors are those of job creation: a malformed body or field (unknown fields,
/// wrong types, `count` out of range, `cron_expression` missing) is a 400
/// `VALIDATION_ERROR` naming each field; a bad time zone 400 `INVALID_TIMEZONE`; an
/// expression that does not parse, or never fires after `after`, 422
/// `INVALID_CRON_EXPRESSION` with the parser's reason.
///
/// Decisions: `null` counts as absent; fewer than `count` instants come back only
/// when the expression stops firing within the search horizon (50 years past the
/// previous one) or fires past the year 9999, which RFC 3339 cannot write (none at
/// all is a 422 like an expression that never fires); the computation runs off the async workers, so a pathological
/// expression cannot stall other requests.
#[utoipa::path(post, path = "/api/v1/cron/preview", tag = "cron", operation_id = "cron_preview",
    security(("bearer" = [])),
    request_body = CronPreview,
    responses(
        (status = 200, description = "The next fire times", body = Envelope<Preview>),
        (status = 400, description = "`VALIDATION_ERROR` (naming each field), `INVALID_JSON` \
            or `INVALID_TIMEZONE`", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`INVALID_CRON_EXPRESSION`: it does not parse, or never \
            fires after `after`", body = ErrorBody),
    )
)]
pub async fn preview(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let mut f = Fields::of(body)?;
    f.reject_unknown(PREVIEW_FIELDS, |_| "unknown field".to_owned());
    let expression = f.string("cron_expression");
    if expression.is_none() && !f.has_issue("cron_expression") {
        f.issue("cron_expression", "is required");
    }
    let timezone = f.string("timezone");
    let after = f.instant("after");
    let count = f.integer("count", 1, MAX_COUNT, &format!("between 1 and {MAX_COUNT}"));
    let issues = f.take_issues();
    let Some(expression) = expression.filter(|_| issues.is_empty()) else {
        return Err(ApiError::fields(issues));
    };
    let tz = spec::parse_timezone(timezone.as_deref().unwrap_or("UTC"))?;
    let after = after.unwrap_or_else(|| state.chronos().clock().now());
    let count = usize::try_from(count.unwrap_or(DEFAULT_COUNT)).unwrap_or(usize::MAX);
    let runs = tokio::task::spawn_blocking(move || -> Result<Vec<DateTime<Utc>>, ApiError> {
        let cron = spec::parse_cron(&expression, tz, after)?;
        let runs: Vec<_> = cron
            .iter_after(after, tz)
            .take_while(|at| at.year() <= LAST_YEAR)
            .take(count)
            .collect();
        if runs.is_empty() {
            return Err(SpecError::InvalidCron {
                expression,
                reason: format!(
                    "it never fires after {} before the year {}",
                    timestamp(after),
                    LAST_YEAR + 1
                ),
            }
            .into());
        }
        Ok(runs)
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    Ok(ok(Preview {
        next_runs: runs.into_iter().map(timestamp).collect(),
    }))
}

/// The fire times.
#[derive(Serialize, ToSchema)]
struct Preview {
    /// RFC 3339 UTC instants with milliseconds, soonest first.
    #[schema(value_type = Vec<DateTime<Utc>>)]
    next_runs: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use utoipa::PartialSchema;

    use super::*;

    /// The request type describes exactly the fields the handler accepts.
    #[test]
    fn the_documented_body_is_the_accepted_one() {
        let schema = serde_json::to_value(CronPreview::schema()).unwrap();
        let mut fields: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        let mut accepted = PREVIEW_FIELDS.to_vec();
        accepted.sort_unstable();
        assert_eq!(fields, accepted);
        assert_eq!(
            schema["properties"]["count"]["maximum"].as_f64(),
            Some(MAX_COUNT as f64)
        );
    }
}
