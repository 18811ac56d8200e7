//! What the REST service needs from the outside world besides the scheduler: a
//! [`UserStore`], a list of [`Revocations`] and [`RateLimits`], as object-safe async
//! traits, with the process-local in-memory implementations of the embedded default
//! ([`MemoryUsers`], [`MemoryRevocations`], [`MemoryRateLimits`]).
//!
//! The PostgreSQL and Redis implementations, shared by every API process, are in
//! [`crate::adapters`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chronos::clock::{Clock, SystemClock};
use uuid::Uuid;

/// A boxed error from a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A registered user, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id (the owner of their jobs).
    pub id: Uuid,
    /// The email address, trimmed and lower-cased.
    pub email: String,
    /// When the user registered.
    pub created_at: DateTime<Utc>,
    /// When the user last changed.
    pub updated_at: DateTime<Utc>,
}

/// A user with their password hash (a PHC string), as a login needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredUser {
    /// The user.
    pub user: User,
    /// The argon2id hash of the password, a PHC string.
    pub password_hash: String,
}

impl std::fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUser")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Why a [`UserStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserStoreError {
    /// A user with this email (compared case-insensitively) exists already.
    #[error("a user with this email address exists already")]
    EmailExists,
    /// The backend failed.
    #[error("the user store failed: {0}")]
    Backend(#[source] BoxError),
}

/// Where users live.
///
/// Emails are given trimmed and lower-cased ([`normalize_email`]); implementations
/// normalize them again, so a lookup never depends on the caller's care.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Registers a user with a new id, created and updated at `now`. A second user
    /// with the same email is [`UserStoreError::EmailExists`], also when both are
    /// created at the same time.
    async fn create(
        &self,
        email: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User, UserStoreError>;

    /// The user with this email, with their password hash.
    async fn by_email(&self, email: &str) -> Result<Option<StoredUser>, UserStoreError>;

    /// The user with this id.
    async fn by_id(&self, id: Uuid) -> Result<Option<User>, UserStoreError>;
}

/// Why a [`Revocations`] call failed: the list could not be reached. A token whose
/// revocation cannot be checked must be refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationsError {
    /// The backend failed.
    #[error("the token revocation list is unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// The ids (`jti`) of revoked tokens, each kept until the token expires.
#[async_trait]
pub trait Revocations: Send + Sync + 'static {
    /// Revokes token `jti`, which expires at `expires_at`. A token that has expired
    /// already need not be stored.
    async fn revoke(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<(), RevocationsError>;

    /// Whether token `jti` is revoked.
    async fn is_revoked(&self, jti: &str) -> Result<bool, RevocationsError>;
}

/// The outcome of one [`RateLimits::check`], and what the `X-RateLimit-*` headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may go on (it was counted).
    pub allowed: bool,
    /// The limit (`X-RateLimit-Limit`).
    pub limit: u32,
    /// Requests left in the window (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// The end of the window in seconds since the epoch (`X-RateLimit-Reset`).
    pub reset: i64,
    /// For a refused request, seconds until the window ends, at least 1 (`Retry-After`).
    pub retry_after: Option<u64>,
}

/// Why a [`RateLimits::check`] could not decide.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The window is zero or too long.
    #[error("invalid rate limit window {0:?}")]
    InvalidWindow(Duration),
    /// The backend failed.
    #[error("the rate limiter is unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// Counts requests per key in fixed windows.
#[async_trait]
pub trait RateLimits: Send + Sync + 'static {
    /// Counts one request of `key` against `limit` requests per `window`. A refused
    /// request is not counted.
    async fn check(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, RateLimitError>;
}

/// An email address as stored and compared: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent whatever a panicking holder was doing (every update is
    // one insert or retain), so a poisoned lock is used as it is.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Entries a map may hold before the first sweep of expired ones; after a sweep, the
/// next one comes when the map has doubled, so sweeping costs O(1) amortized.
const FIRST_SWEEP_AT: usize = 1024;

/// Users in a process-local map (the embedded default; gone with the process).
#[derive(Debug, Default)]
pub struct MemoryUsers {
    inner: Mutex<UsersInner>,
}

#[derive(Debug, Default)]
struct UsersInner {
    by_email: HashMap<String, StoredUser>,
    email_of: HashMap<Uuid, String>,
}

impl MemoryUsers {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl UserStore for MemoryUsers {
    async fn create(
        &self,
        email: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User, UserStoreError> {
        let email = normalize_email(email);
        let mut inner = lock(&self.inner);
        if inner.by_email.contains_key(&email) {
            return Err(UserStoreError::EmailExists);
        }
        let user = User {
            id: Uuid::new_v4(),
            email: email.clone(),
            created_at: now,
            updated_at: now,
        };
        inner.email_of.insert(user.id, email.clone());
        inner.by_email.insert(
            email,
            StoredUser {
                user: user.clone(),
                password_hash: password_hash.to_owned(),
            },
        );
        Ok(user)
    }

    async fn by_email(&self, email: &str) -> Result<Option<StoredUser>, UserStoreError> {
        Ok(lock(&self.inner)
            .by_email
            .get(&normalize_email(email))
            .cloned())
    }

    async fn by_id(&self, id: Uuid) -> Result<Option<User>, UserStoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .email_of
            .get(&id)
            .and_then(|email| inner.by_email.get(email))
            .map(|stored| stored.user.clone()))
    }
}

/// Revoked token ids in a process-local map, each until its token expires (the
/// embedded default: one process sees only its own revocations). Expired entries are
/// swept as the map grows.
#[derive(Debug)]
pub struct MemoryRevocations {
    clock: Arc<dyn Clock>,
    inner: Mutex<Sweeping<DateTime<Utc>>>,
}

#[derive(Debug)]
struct Sweeping<V> {
    map: HashMap<String, V>,
    sweep_at: usize,
}

impl<V> Default for Sweeping<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            sweep_at: FIRST_SWEEP_AT,
        }
    }
}

impl<V> Sweeping<V> {
    /// Before an insert: when the map is due, drops what `alive` refuses.
    fn sweep_if_due(&mut self, alive: impl FnMut(&V) -> bool) {
        if self.map.len() >= self.sweep_at {
            let mut alive = alive;
            self.map.retain(|_, v| alive(v));
            self.sweep_at = (self.map.len() * 2).max(FIRST_SWEEP_AT);
        }
    }
}

impl MemoryRevocations {
    /// An empty list telling time by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            inner: Mutex::default(),
        }
    }

    /// How many revocations are held (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryRevocations {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

#[async_trait]
impl Revocations for MemoryRevocations {
    async fn revoke(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<(), RevocationsError> {
        let now = self.clock.now();
        if expires_at <= now {
            return Ok(());
        }
        let mut inner = lock(&self.inner);
        inner.sweep_if_due(|expiry| *expiry > now);
        let entry = inner.map.entry(jti.to_owned()).or_insert(expires_at);
        *entry = (*entry).max(expires_at);
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, RevocationsError> {
        let now = self.clock.now();
        Ok(lock(&self.inner)
            .map
            .get(jti)
            .is_some_and(|expiry| *expiry > now))
    }
}

/// Fixed-window counters in a process-local map (the embedded default), with the
/// same windows as [`chronos_redis::RedisRateLimiter`]: aligned on the epoch, a
/// refused request not counted. Ended windows are swept as the map grows.
#[derive(Debug)]
pub struct MemoryRateLimits {
    clock: Arc<dyn Clock>,
    inner: Mutex<Sweeping<Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    end_ms: i64,
    count: u32,
}

impl MemoryRateLimits {
    /// The longest window accepted, as for Redis: 366 days.
    pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

    /// No counters yet, telling time by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            inner: Mutex::default(),
        }
    }

    /// How many counters are held (ended windows included until the next sweep).
    pub fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryRateLimits {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

/// Whole seconds in `ms`, rounded up.
fn ceil_secs(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

#[async_trait]
impl RateLimits for MemoryRateLimits {
    async fn check(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, RateLimitError> {
        let window_ms = i64::try_from(window.as_millis())
            .ok()
            .filter(|ms| *ms > 0 && window <= Self::MAX_WINDOW)
            .ok_or(RateLimitError::InvalidWindow(window))?;
        let now_ms = self.clock.now().timestamp_millis();
        let start_ms = now_ms.div_euclid(window_ms) * window_ms;
        let end_ms = start_ms.saturating_add(window_ms);

        let mut inner = lock(&self.inner);
        inner.sweep_if_due(|w| w.end_ms > now_ms);
        let counter = inner
            .map
            .entry(format!("{key}:{window_ms}"))
            .or_insert(Window { end_ms, count: 0 });
        if counter.end_ms != end_ms {
            *counter = Window { end_ms, count: 0 };
        }
        let allowed = counter.count < limit;
        if allowed {
            counter.count += 1;
        }
        let remaining = if allowed { limit - counter.count } else { 0 };
        let retry_after = (!allowed).then(|| {
            u64::try_from(ceil_secs(end_ms - now_ms))
                .unwrap_or(1)
                .max(1)
        });
        Ok(RateDecision {
            allowed,
            limit,
            remaining,
            reset: ceil_secs(end_ms),
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use chronos::clock::ManualClock;

    use super::*;

    fn clock_at(ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock::new(
            DateTime::from_timestamp_millis(ms).unwrap(),
        ))
    }

    #[tokio::test]
    async fn users_are_unique_by_normalized_email() {
        let users = MemoryUsers::new();
        let now = Utc::now();
        let u = users.create(" A@Example.com ", "h", now).await.unwrap();
        assert_eq!(u.email, "a@example.com");
        assert!(matches!(
            users.create("a@EXAMPLE.com", "h2", now).await,
            Err(UserStoreError::EmailExists)
        ));
        let found = users.by_email("A@example.COM").await.unwrap().unwrap();
        assert_eq!(found.user, u);
        assert_eq!(found.password_hash, "h");
        assert_eq!(users.by_id(u.id).await.unwrap(), Some(u));
        assert_eq!(users.by_id(Uuid::new_v4()).await.unwrap(), None);
        assert!(users.by_email("b@example.com").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn revocations_last_until_the_token_expires_and_are_swept() {
        let clock = clock_at(1_000_000);
        let list = MemoryRevocations::new(clock.clone());
        let now = clock.now();
        list.revoke("a", now + chrono::Duration::seconds(10))
            .await
            .unwrap();
        list.revoke("expired", now).await.unwrap();
        assert!(list.is_revoked("a").await.unwrap());
        assert!(!list.is_revoked("expired").await.unwrap());
        assert!(!list.is_revoked("b").await.unwrap());
        clock.advance(Duration::from_secs(10));
        assert!(!list.is_revoked("a").await.unwrap());
        // Filling up sweeps what has expired.
        let later = clock.now() + chrono::Duration::seconds(10);
        for i in 0..FIRST_SWEEP_AT {
            list.revoke(&i.to_string(), later).await.unwrap();
        }
        assert_eq!(list.len(), FIRST_SWEEP_AT);
        assert!(!list.is_revoked("a").await.unwrap());
    }

    #[tokio::test]
    async fn fixed_windows_aligned_on_the_epoch() {
        let clock = clock_at(3_600_000 * 10 + 1_500);
        let limits = MemoryRateLimits::new(clock.clone());
        let hour = Duration::from_secs(3600);
        let d = limits.check("u", 2, hour).await.unwrap();
        assert_eq!((d.allowed, d.limit, d.remaining), (true, 2, 1));
        assert_eq!(d.reset, 3600 * 11);
        assert_eq!(d.retry_after, None);
        assert!(limits.check("u", 2, hour).await.unwrap().allowed);
        let d = limits.check("u", 2, hour).await.unwrap();
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Some(3600 - 1)); // 3598.5 s, rounded up
        // Another key, another window length: other counters.
        assert!(limits.check("v", 2, hour).await.unwrap().allowed);
        assert!(
            limits
                .check("u", 2, Duration::from_secs(60))
                .await
                .unwrap()
                .allowed
        );
        // The next window starts from zero.
        clock.advance(hour);
        let d = limits.check("u", 2, hour).await.unwrap();
        assert_eq!((d.allowed, d.remaining, d.reset), (true, 1, 3600 * 12));
        assert!(matches!(
            limits.check("u", 2, Duration::ZERO).await,
            Err(RateLimitError::InvalidWindow(_))
        ));
        // A zero limit refuses everything.
        assert!(!limits.check("z", 0, hour).await.unwrap().allowed);
    }
}
