//! Placeholder: being written.

use crate::error::ApiError;

/// Not written yet.
pub async fn create() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn list() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn upcoming() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn get() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn update() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn delete() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn pause() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn resume() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn execute() -> ApiError {
    ApiError::internal(&"not implemented")
}

/// Not written yet.
pub async fn executions() -> ApiError {
    ApiError::internal(&"not implemented")
}
