//! The success envelope: `{"success": true, "message"?: "...", "data": ...}`, and
//! how instants are written (RFC 3339 UTC with milliseconds and `Z`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// An instant as the API writes it: `2026-11-29T09:09:40.985Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serializes `Option<DateTime<Utc>>`/`DateTime<Utc>` fields with [`timestamp`]
/// (`#[serde(with = "crate::respond::instant")]`).
pub mod instant {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    /// Writes an instant.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::timestamp(*at))
    }

    /// The same for optional instants (`null` when absent).
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::Serializer;

        /// Writes an optional instant.
        pub fn serialize<S: Serializer>(
            at: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => s.serialize_str(&super::super::timestamp(*at)),
                None => s.serialize_none(),
            }
        }
    }
}

/// A success answer with data: `{"success": true, "message"?: "...", "data": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<'a, T> {
    /// Always `true`.
    pub success: bool,
    /// What was done ("Job created successfully"); reads leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<&'a str>,
    /// The answer.
    pub data: T,
}

/// A success answer with only a message: `{"success": true, "message": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message<'a> {
    /// Always `true`.
    pub success: bool,
    /// What was done ("Job deleted successfully").
    pub message: &'a str,
}

/// 200 with `data`.
pub fn ok<T: Serialize>(data: T) -> Response {
    with(StatusCode::OK, None, data)
}

/// 200 with a message and `data`.
pub fn ok_with<T: Serialize>(message: &str, data: T) -> Response {
    with(StatusCode::OK, Some(message), data)
}

/// 200 with only a message.
pub fn ok_message(message: &str) -> Response {
    (
        StatusCode::OK,
        Json(Message {
            success: true,
            message,
        }),
    )
        .into_response()
}

/// Any status, message and data.
pub fn with<T: Serialize>(status: StatusCode, message: Option<&str>, data: T) -> Response {
    (
        status,
        Json(Envelope {
            success: true,
            message,
            data,
        }),
    )
        .into_response()
}
