//! [`ApiError`]: every error the API answers with, in the one documented shape.
//!
//! ```json
//! {"error": true, "message": "...", "code": "UPPER_SNAKE", "timestamp": "2026-11-29T09:09:40.985Z"}
//! ```
//! Validation errors add `"errors": [{"field": "...", "message": "..."}]`.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chronos::model::spec::{FieldError, SpecError};
use serde::Serialize;
use utoipa::ToSchema;

/// The documented error codes, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = ErrorCode)]
pub enum Code {
    /// 400: a field is missing, malformed or out of range.
    ValidationError,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 401: no or an ill-formed `Authorization` header.
    Unauthorized,
    /// 401: the token's signature, algorithm or claims are wrong.
    InvalidToken,
    /// 401: the token has expired.
    TokenExpired,
    /// 401: the token was revoked (logout, refresh).
    TokenRevoked,
    /// 401: unknown email or wrong password.
    InvalidCredentials,
    /// 409: the email is registered already.
    EmailExists,
    /// 404: no such job for this user.
    JobNotFound,
    /// 404: no such execution for this user.
    ExecutionNotFound,
    /// 400: `scheduled_time` is not in the future.
    InvalidScheduledTime,
    /// 422: the cron expression does not parse.
    InvalidCronExpression,
    /// 400: not an IANA time zone.
    InvalidTimezone,
    /// 400: the job's status forbids the change.
    InvalidJobStatus,
    /// 400: the operation does not apply to the job as it is.
    InvalidOperation,
    /// 429: too many requests in the window.
    RateLimitExceeded,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 404: no such route.
    RouteNotFound,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 503: a dependency is down or the service is shutting down.
    ServiceUnavailable,
    /// 500: a bug, logged with the request id.
    InternalError,
}

impl Code {
    /// Every code, in the order of their declaration.
    pub const ALL: [Code; 21] = [
        Code::ValidationError,
        Code::InvalidJson,
        Code::Unauthorized,
        Code::InvalidToken,
        Code::TokenExpired,
        Code::TokenRevoked,
        Code::InvalidCredentials,
        Code::EmailExists,
        Code::JobNotFound,
        Code::ExecutionNotFound,
        Code::InvalidScheduledTime,
        Code::InvalidCronExpression,
        Code::InvalidTimezone,
        Code::InvalidJobStatus,
        Code::InvalidOperation,
        Code::RateLimitExceeded,
        Code::PayloadTooLarge,
        Code::RouteNotFound,
        Code::MethodNotAllowed,
        Code::ServiceUnavailable,
        Code::InternalError,
    ];

    /// The HTTP status of the code.
    pub fn status(self) -> StatusCode {
        match self {
            Code::ValidationError
            | Code::InvalidJson
            | Code::InvalidScheduledTime
            | Code::InvalidTimezone
            | Code::InvalidJobStatus
            | Code::InvalidOperation => StatusCode::BAD_REQUEST,
            Code::Unauthorized
            | Code::InvalidToken
            | Code::TokenExpired
            | Code::TokenRevoked
            | Code::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Code::EmailExists => StatusCode::CONFLICT,
            Code::JobNotFound | Code::ExecutionNotFound | Code::RouteNotFound => {
                StatusCode::NOT_FOUND
            }
            Code::InvalidCronExpression => StatusCode::UNPROCESSABLE_ENTITY,
            Code::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldIssue {
    /// The field as the API spells it (`schedule.cron_expression`, `limit`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An error answer. Build it with a constructor, return it from a handler.
#[derive(Debug)]
pub struct ApiError {
    /// The code (and so the status).
    pub code: Code,
    /// The human-readable message (never internals for a 500).
    pub message: String,
    /// Field errors of a `VALIDATION_ERROR`.
    pub errors: Vec<FieldIssue>,
    /// Extra headers (`Retry-After`, rate-limit headers).
    pub headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            errors: Vec::new(),
            headers: None,
        }
    }

    /// A `VALIDATION_ERROR` about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::fields(vec![FieldIssue {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// A `VALIDATION_ERROR` about several fields (the message joins them).
    pub fn fields(errors: Vec<FieldIssue>) -> Self {
        let message = if errors.is_empty() {
            "validation failed".to_owned()
        } else {
            let parts: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            format!("validation failed: {}", parts.join("; "))
        };
        Self {
            errors,
            ..Self::new(Code::ValidationError, message)
        }
    }

    /// A 500 for a failure the client cannot fix. The cause is logged (the request
    /// span carries the request id); the client gets a generic message.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            Code::InternalError,
            "an internal error occurred; it has been logged",
        )
    }

    /// A 503 for a backend the request needs (the database, Redis) that failed: not
    /// the client's mistake and not a bug. The cause is logged with what was being
    /// done; the client gets a generic message.
    pub fn unavailable(doing: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{doing}: backend unavailable");
        Self::new(
            Code::ServiceUnavailable,
            "the service is temporarily unavailable; try again later",
        )
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers
            .get_or_insert_with(Box::default)
            .insert(name, value);
        self
    }
}

/// Every error answer: `{"error": true, "message", "code", "timestamp", "errors"?}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": true, "message": "job not found", "code": "JOB_NOT_FOUND",
    "timestamp": "2026-11-29T09:09:40.985Z"}))]
pub struct ErrorBody<'a> {
    /// Always `true`.
    pub error: bool,
    /// What went wrong, for people (never internals).
    pub message: &'a str,
    /// What went wrong, for programs; it fixes the HTTP status.
    pub code: Code,
    /// When the error was answered (RFC 3339 UTC with milliseconds and `Z`).
    #[serde(with = "crate::respond::instant")]
    pub timestamp: DateTime<Utc>,
    /// The invalid fields of a `VALIDATION_ERROR` (left out when there are none).
    #[serde(skip_serializing_if = "<[FieldIssue]>::is_empty")]
    pub errors: &'a [FieldIssue],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: true,
            message: &self.message,
            code: self.code,
            timestamp: Utc::now(),
            errors: &self.errors,
        };
        let mut response = (self.code.status(), axum::Json(body)).into_response();
        if let Some(headers) = self.headers {
            response.headers_mut().extend(*headers);
        }
        response
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::Fields(fields) => ApiError::fields(
                fields
                    .into_iter()
                    .map(|FieldError { field, message }| FieldIssue { field, message })
                    .collect(),
            ),
            SpecError::InvalidTimezone(_) => ApiError::new(Code::InvalidTimezone, e.to_string()),
            SpecError::InvalidCron { .. } => {
                ApiError::new(Code::InvalidCronExpression, e.to_string())
            }
            SpecError::ScheduledTimeNotInFuture { .. } => {
                ApiError::new(Code::InvalidScheduledTime, e.to_string())
            }
        }
    }
}

impl From<chronos::Error> for ApiError {
    fn from(e: chronos::Error) -> Self {
        use chronos::Error as E;
        match e {
            E::Spec(spec) => spec.into(),
            E::JobNotFound(_) => ApiError::new(Code::JobNotFound, "job not found"),
            E::ExecutionNotFound(_) => {
                ApiError::new(Code::ExecutionNotFound, "execution not found")
            }
            E::InvalidJobStatus { .. } => ApiError::new(Code::InvalidJobStatus, e.to_string()),
            E::InvalidOperation(message) => ApiError::new(Code::InvalidOperation, message),
            E::ShuttingDown => {
                ApiError::new(Code::ServiceUnavailable, "the service is shutting down")
            }
            // The database or the queue failed (down, restarting, connection lost):
            // not the client's mistake and not a bug of ours, so 503, and logged.
            E::Store(_) | E::Queue(_) => ApiError::unavailable("scheduler", &e),
            E::WaitTimedOut(_) | E::DuplicateExecutor(_) | E::DuplicateNotifier(_) | E::Task(_) => {
                ApiError::internal(&e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_code_once() {
        for (i, code) in Code::ALL.into_iter().enumerate() {
            // Exhaustive: a new code breaks this match until it is listed in `ALL`.
            let position = match code {
                Code::ValidationError => 0,
                Code::InvalidJson => 1,
                Code::Unauthorized => 2,
                Code::InvalidToken => 3,
                Code::TokenExpired => 4,
                Code::TokenRevoked => 5,
                Code::InvalidCredentials => 6,
                Code::EmailExists => 7,
                Code::JobNotFound => 8,
                Code::ExecutionNotFound => 9,
                Code::InvalidScheduledTime => 10,
                Code::InvalidCronExpression => 11,
                Code::InvalidTimezone => 12,
                Code::InvalidJobStatus => 13,
                Code::InvalidOperation => 14,
                Code::RateLimitExceeded => 15,
                Code::PayloadTooLarge => 16,
                Code::RouteNotFound => 17,
                Code::MethodNotAllowed => 18,
                Code::ServiceUnavailable => 19,
                Code::InternalError => 20,
            };
            assert_eq!(i, position, "{code:?}");
        }
    }
}
