//! Placeholder: being written.

use crate::error::ApiError;

/// Not written yet.
pub async fn preview() -> ApiError {
    ApiError::internal(&"not implemented")
}
