//! [`AppState`]: what every handler reaches, and [`AuthUser`]: who is calling.

use std::sync::Arc;

use chronos::Chronos;
use uuid::Uuid;

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Services>,
}

/// The services behind the API.
pub struct Services {
    /// The scheduler (jobs, executions, logs).
    pub chronos: Chronos,
}

impl AppState {
    /// State over these services.
    pub fn new(services: Services) -> Self {
        Self {
            inner: Arc::new(services),
        }
    }

    /// The scheduler.
    pub fn chronos(&self) -> &Chronos {
        &self.inner.chronos
    }

    /// All services.
    pub fn services(&self) -> &Services {
        &self.inner
    }
}

/// The authenticated caller, put into the request's extensions by the auth middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The user's id (owner of their jobs).
    pub id: Uuid,
    /// Their email address.
    pub email: String,
}
