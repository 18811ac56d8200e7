//! Placeholder: being written.

use crate::error::ApiError;

/// Not written yet.
pub async fn health() -> ApiError {
    ApiError::internal(&"not implemented")
}
