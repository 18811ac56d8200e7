//! The [`ports`](crate::ports) on PostgreSQL and Redis, shared by every API process:
//! users in PostgreSQL ([`PgUsers`] implements [`UserStore`]), revocations and rate
//! limits in Redis ([`RedisRevocations`], [`RedisRateLimits`]).
//!
//! # Failures
//! - **Rate limits fail open.** When Redis cannot answer, [`RedisRateLimits::check`]
//!   returns [`RateLimitError::Unavailable`] and the middleware lets the request
//!   through without rate-limit headers, logging a warning: a limiter outage must
//!   not take the API down.
//! - **Revocations fail closed.** When Redis cannot answer,
//!   [`RedisRevocations::is_revoked`] returns [`RevocationsError::Unavailable`] and
//!   the request is refused with 503 `SERVICE_UNAVAILABLE`: a revoked token must
//!   never pass. A logout or refresh that cannot record its revocation is a 503 too.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos::clock::Clock;
use chronos_postgres::{PgUsers, UserError, UserRow};
use chronos_redis::{LimiterError, RedisRateLimiter, RedisRevocationList};
use uuid::Uuid;

use crate::ports::{
    RateDecision, RateLimitError, RateLimits, Revocations, RevocationsError, StoredUser, User,
    UserStore, UserStoreError,
};

fn user(row: UserRow) -> StoredUser {
    StoredUser {
        user: User {
            id: row.id,
            email: row.email,
            created_at: row.created_at,
            updated_at: row.updated_at,
        },
        password_hash: row.password_hash,
    }
}

fn user_error(e: UserError) -> UserStoreError {
    match e {
        UserError::EmailExists => UserStoreError::EmailExists,
        other => UserStoreError::Backend(Box::new(other)),
    }
}

/// Users in PostgreSQL; ids are random UUIDs (v4).
#[async_trait]
impl UserStore for PgUsers {
    async fn create(
        &self,
        email: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User, UserStoreError> {
        PgUsers::create(self, Uuid::new_v4(), email, password_hash, now)
            .await
            .map(|row| user(row).user)
            .map_err(user_error)
    }

    async fn by_email(&self, email: &str) -> Result<Option<StoredUser>, UserStoreError> {
        PgUsers::by_email(self, email)
            .await
            .map(|row| row.map(user))
            .map_err(user_error)
    }

    async fn by_id(&self, id: Uuid) -> Result<Option<User>, UserStoreError> {
        PgUsers::by_id(self, id)
            .await
            .map(|row| row.map(|r| user(r).user))
            .map_err(user_error)
    }
}

/// Revoked tokens in Redis ([`RedisRevocationList`]), seen by every process on the
/// same Redis and prefix; each kept until its token expires, by `clock`'s time.
/// Fails closed (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct RedisRevocations {
    list: RedisRevocationList,
    clock: Arc<dyn Clock>,
}

impl RedisRevocations {
    /// Revocations in `list`, telling time by `clock`.
    pub fn new(list: RedisRevocationList, clock: Arc<dyn Clock>) -> Self {
        Self { list, clock }
    }
}

#[async_trait]
impl Revocations for RedisRevocations {
    async fn revoke(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<(), RevocationsError> {
        self.list
            .revoke(jti, expires_at, self.clock.now())
            .await
            .map(|_| ())
            .map_err(|e| RevocationsError::Unavailable(Box::new(e)))
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, RevocationsError> {
        self.list
            .is_revoked(jti)
            .await
            .map_err(|e| RevocationsError::Unavailable(Box::new(e)))
    }
}

/// Rate limits in Redis ([`RedisRateLimiter`]), shared by every process on the same
/// Redis and prefix, windows by `clock`'s time. Fails open (see the
/// [module docs](self)).
#[derive(Debug, Clone)]
pub struct RedisRateLimits {
    limiter: RedisRateLimiter,
    clock: Arc<dyn Clock>,
}

impl RedisRateLimits {
    /// Limits counted by `limiter`, telling time by `clock`.
    pub fn new(limiter: RedisRateLimiter, clock: Arc<dyn Clock>) -> Self {
        Self { limiter, clock }
    }
}

#[async_trait]
impl RateLimits for RedisRateLimits {
    async fn check(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, RateLimitError> {
        let decision = self
            .limiter
            .check(key, limit, window, self.clock.now())
            .await
            .map_err(|e| match e {
                LimiterError::InvalidWindow { window } => RateLimitError::InvalidWindow(window),
                other => RateLimitError::Unavailable(Box::new(other)),
            })?;
        Ok(RateDecision {
            allowed: decision.allowed,
            limit: decision.limit,
            remaining: decision.remaining,
            reset: decision.reset_epoch_secs(),
            retry_after: decision.retry_after_secs().map(|s| s.max(1)),
        })
    }
}
