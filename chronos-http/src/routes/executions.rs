//! Placeholder: being written.

use crate::error::ApiError;

/// Not written yet.
pub async fn get() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn logs() -> ApiError {
    ApiError::internal(&"not implemented")
}
