//! [`AppState`]: what every handler reaches, [`Services`] behind it with their
//! [`Settings`], and [`AuthUser`]: who is calling.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use chronos_http::state::{AppState, Services};
//!
//! let chronos = chronos::Chronos::builder().build().await?;
//! // In-memory users, revocations and rate limits, a random JWT secret, defaults.
//! let state = AppState::new(Services::builder(chronos).build()?);
//! let app = chronos_http::app::router(state);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use chronos::Chronos;
use chronos::clock::Clock;
use uuid::Uuid;

use crate::auth::password::Passwords;
use crate::auth::token::{DEFAULT_TTL, TokenConfigError, Tokens};
use crate::ports::{
    MemoryRateLimits, MemoryRevocations, MemoryUsers, RateLimits, Revocations, UserStore,
};

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Services>,
}

/// The services behind the API. Build them with [`Services::builder`].
pub struct Services {
    /// The scheduler (jobs, executions, logs).
    pub chronos: Chronos,
    /// The users.
    pub users: Arc<dyn UserStore>,
    /// Revoked tokens.
    pub revocations: Arc<dyn Revocations>,
    /// The rate limiter.
    pub limiter: Arc<dyn RateLimits>,
    /// Issues and verifies tokens.
    pub tokens: Tokens,
    /// Hashes and verifies passwords.
    pub passwords: Passwords,
    /// The numbers and switches of the HTTP layer.
    pub settings: Settings,
    /// The clock of the HTTP layer (token times, rate-limit windows): the
    /// scheduler's unless given.
    pub clock: Arc<dyn Clock>,
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

    /// The users.
    pub fn users(&self) -> &dyn UserStore {
        self.inner.users.as_ref()
    }

    /// Revoked tokens.
    pub fn revocations(&self) -> &dyn Revocations {
        self.inner.revocations.as_ref()
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &dyn RateLimits {
        self.inner.limiter.as_ref()
    }

    /// Issues and verifies tokens.
    pub fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// Hashes and verifies passwords.
    pub fn passwords(&self) -> &Passwords {
        &self.inner.passwords
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The HTTP layer's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
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

/// A limit of `max` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in a window.
    pub max: u32,
    /// The window (fixed, aligned on the epoch).
    pub window: Duration,
}

/// Which origins CORS allows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CorsOrigin {
    /// Any origin (`Access-Control-Allow-Origin: *`; the API uses bearer tokens, not
    /// cookies, so no credentials are involved).
    #[default]
    Any,
    /// Exactly these origins (`https://app.example.com`).
    List(Vec<HeaderValue>),
}

/// A `CORS_ORIGIN` that is not `*` nor a comma-separated list of origins.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid CORS origin `{0}`: expected `*` or comma-separated origins like `https://app.example.com`"
)]
pub struct InvalidCorsOrigin(String);

impl CorsOrigin {
    /// Parses `CORS_ORIGIN`: `*`, or origins separated by commas.
    pub fn parse(value: &str) -> Result<Self, InvalidCorsOrigin> {
        let value = value.trim();
        if value == "*" {
            return Ok(Self::Any);
        }
        let origins = value
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                let valid = (o.starts_with("http://") || o.starts_with("https://"))
                    && !o.contains(char::is_whitespace)
                    && !o.ends_with('/');
                valid
                    .then(|| HeaderValue::from_str(o).ok())
                    .flatten()
                    .ok_or_else(|| InvalidCorsOrigin(o.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if origins.is_empty() {
            return Err(InvalidCorsOrigin(value.to_owned()));
        }
        Ok(Self::List(origins))
    }
}

/// The numbers and switches of the HTTP layer; [`Default`] is the contract's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Per user, on every authenticated `/jobs`, `/executions`, `/dashboard` route and
    /// `/auth/refresh`: 100 per hour (`RATE_LIMIT_MAX`, `RATE_LIMIT_WINDOW_SECS`).
    pub user_rate_limit: RateLimit,
    /// Per client IP, on `/auth/register` and `/auth/login` together: 10 per 15
    /// minutes (`AUTH_RATE_LIMIT_MAX`, `AUTH_RATE_LIMIT_WINDOW_SECS`).
    pub auth_rate_limit: RateLimit,
    /// Whether the client IP is taken from `X-Forwarded-For` (`TRUST_PROXY`): the
    /// last address in it, the one the trusted proxy in front of the service saw.
    /// Otherwise (the default) the socket's peer address.
    pub trust_proxy: bool,
    /// The largest request body, in bytes: 1 MiB.
    pub body_limit: usize,
    /// The origins CORS allows (`CORS_ORIGIN`): any by default.
    pub cors_origin: CorsOrigin,
    /// Requests handled at once by this process; more wait their turn: 512.
    pub max_concurrent_requests: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            user_rate_limit: RateLimit {
                max: 100,
                window: Duration::from_secs(3600),
            },
            auth_rate_limit: RateLimit {
                max: 10,
                window: Duration::from_secs(15 * 60),
            },
            trust_proxy: false,
            body_limit: 1024 * 1024,
            cors_origin: CorsOrigin::Any,
            max_concurrent_requests: 512,
        }
    }
}

/// Why [`ServicesBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServicesError {
    /// No tokens were given and random ones could not be made.
    #[error(transparent)]
    Tokens(#[from] TokenConfigError),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Setting(String),
}

/// Builds [`Services`]: everything not given is the embedded default.
pub struct ServicesBuilder {
    chronos: Chronos,
    users: Option<Arc<dyn UserStore>>,
    revocations: Option<Arc<dyn Revocations>>,
    limiter: Option<Arc<dyn RateLimits>>,
    tokens: Option<Tokens>,
    passwords: Option<Passwords>,
    settings: Settings,
    clock: Option<Arc<dyn Clock>>,
}

impl Services {
    /// A builder over `chronos`. Unless given: in-memory users, revocations and rate
    /// limits (one process only), tokens with a random secret and a 24 h lifetime
    /// (they die with the process), argon2id with OWASP's parameters, the default
    /// [`Settings`], and the scheduler's clock.
    pub fn builder(chronos: Chronos) -> ServicesBuilder {
        ServicesBuilder {
            chronos,
            users: None,
            revocations: None,
            limiter: None,
            tokens: None,
            passwords: None,
            settings: Settings::default(),
            clock: None,
        }
    }
}

impl ServicesBuilder {
    /// The user store.
    pub fn users(mut self, users: Arc<dyn UserStore>) -> Self {
        self.users = Some(users);
        self
    }

    /// The revocation list.
    pub fn revocations(mut self, revocations: Arc<dyn Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The rate limiter.
    pub fn limiter(mut self, limiter: Arc<dyn RateLimits>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The tokens (their clock becomes the builder's).
    pub fn tokens(mut self, tokens: Tokens) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The password hasher.
    pub fn passwords(mut self, passwords: Passwords) -> Self {
        self.passwords = Some(passwords);
        self
    }

    /// The settings.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The clock of the HTTP layer (the scheduler's by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The services.
    pub fn build(self) -> Result<Services, ServicesError> {
        let s = &self.settings;
        for (name, limit) in [
            ("user_rate_limit", s.user_rate_limit),
            ("auth_rate_limit", s.auth_rate_limit),
        ] {
            if limit.window.as_millis() == 0 || limit.window > MemoryRateLimits::MAX_WINDOW {
                return Err(ServicesError::Setting(format!(
                    "{name}: the window must be between 1 ms and 366 days, not {:?}",
                    limit.window
                )));
            }
        }
        if s.body_limit == 0 {
            return Err(ServicesError::Setting("body_limit must be positive".into()));
        }
        if s.max_concurrent_requests == 0 {
            return Err(ServicesError::Setting(
                "max_concurrent_requests must be positive".into(),
            ));
        }
        let clock = self.clock.unwrap_or_else(|| self.chronos.clock().clone());
        let tokens = match self.tokens {
            Some(tokens) => tokens,
            None => Tokens::random(DEFAULT_TTL)?,
        }
        .with_clock(clock.clone());
        Ok(Services {
            users: self.users.unwrap_or_else(|| Arc::new(MemoryUsers::new())),
            revocations: self
                .revocations
                .unwrap_or_else(|| Arc::new(MemoryRevocations::new(clock.clone()))),
            limiter: self
                .limiter
                .unwrap_or_else(|| Arc::new(MemoryRateLimits::new(clock.clone()))),
            tokens,
            passwords: self.passwords.unwrap_or_default(),
            settings: self.settings,
            clock,
            chronos: self.chronos,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use super::*;

    #[test]
    fn cors_origins_parse() {
        assert_eq!(CorsOrigin::parse("*").unwrap(), CorsOrigin::Any);
        assert_eq!(
            CorsOrigin::parse(" https://a.example.com, http://localhost:3000 ").unwrap(),
            CorsOrigin::List(vec![
                HeaderValue::from_static("https://a.example.com"),
                HeaderValue::from_static("http://localhost:3000"),
            ])
        );
        for bad in ["", "a.example.com", "https://a.example.com/", "https://a b"] {
            assert!(CorsOrigin::parse(bad).is_err(), "{bad}");
        }
    }
}
