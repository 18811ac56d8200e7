//! The shared rate limiter, [`RedisRateLimiter`] (re-exported at the crate root).

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use redis::{RedisError, Script};

/// KEYS[1]: the counter. ARGV[1]: the limit. ARGV[2]: its time to live in ms.
/// Returns `{allowed (0 or 1), count after this request}`.
const CHECK_SCRIPT: &str = r"
local limit = tonumber(ARGV[1])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= limit then
  return {0, count}
end
count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, count}
";

/// The outcome of one [`RedisRateLimiter::check`]: whether the request may go on,
/// and what to put in the rate-limit headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request is allowed (it was counted) or must be refused (429).
    pub allowed: bool,
    /// The limit checked against (`X-RateLimit-Limit`).
    pub limit: u32,
    /// How many more requests the current window allows (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// The end of the current window, when the count starts again from zero
    /// (`X-RateLimit-Reset`, see [`reset_epoch_secs`](Self::reset_epoch_secs)).
    pub reset_at: DateTime<Utc>,
    /// For a refused request, the time from "now" to [`reset_at`](Self::reset_at)
    /// (`Retry-After`, see [`retry_after_secs`](Self::retry_after_secs)); `None`
    /// when allowed.
    pub retry_after: Option<Duration>,
}

impl RateDecision {
    /// [`reset_at`](Self::reset_at) in whole seconds since the Unix epoch, rounded
    /// up (exact when the window is a whole number of seconds).
    pub fn reset_epoch_secs(&self) -> i64 {
        let millis = self.reset_at.timestamp_millis();
        millis.div_euclid(1000) + i64::from(millis.rem_euclid(1000) != 0)
    }

    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up (so at
    /// least 1 for a refused request), for the `Retry-After` header.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() != 0))
    }
}

/// Why a [`RedisRateLimiter::check`] could not decide.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimiterError {
    /// The window is zero, shorter than a millisecond, or longer than [`RedisRateLimiter::MAX_WINDOW`].
    #[error("invalid rate limit window {window:?}: must be between 1 ms and {max:?}", max = RedisRateLimiter::MAX_WINDOW)]
    InvalidWindow {
        /// The window given.
        window: Duration,
    },
    /// "Now" is so far from the epoch that the window's end cannot be represented.
    #[error("cannot compute the rate limit window around {now}")]
    OutOfRange {
        /// The instant given.
        now: DateTime<Utc>,
    },
    /// Redis failed: unreachable, restarting, a killed connection, a timeout, ...
    #[error("{doing}: {source}")]
    Redis {
        /// What the limiter was doing.
        doing: String,
        /// The client's error.
        #[source]
        source: RedisError,
    },
}

impl LimiterError {
    /// Whether Redis could not be reached or could not serve (connection refused or
    /// dropped, timeout, a restarting server still loading its data): a transient
    /// failure, unlike a bad argument.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Redis { source, .. } => is_unavailable(source),
            Self::InvalidWindow { .. } | Self::OutOfRange { .. } => false,
        }
    }
}

/// Connection refused or dropped, a timeout, or a server that is starting (`LOADING`)
/// or without a master (`MASTERDOWN`, `CLUSTERDOWN`, `TRYAGAIN`).
pub(crate) fn is_unavailable(error: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_timeout()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::TryAgain
            )
        )
}

/// An atomic fixed-window rate limiter stored in Redis, shared by every process
/// that uses the same Redis and prefix (per-user and per-IP limits of an API).
///
/// # Algorithm
/// A **fixed window aligned to the window size** (on the Unix epoch): with a window
/// of one hour, the windows are `[10:00, 11:00)`, `[11:00, 12:00)`, ...; with 15
/// minutes, `[10:00, 10:15)`, ... Each `(key, window)` pair has one counter in Redis,
/// and one check is one atomic Lua script: read the counter, and when it is below
/// the limit increment it and (re)set its expiry. A denied request does not count.
///
/// This was chosen over a sliding window or GCRA because it gives **exact** answers
/// for the HTTP headers: `X-RateLimit-Limit` is the limit, `X-RateLimit-Remaining`
/// the number of requests still allowed in the current window, `X-RateLimit-Reset`
/// the end of the window ([`RateDecision::reset_epoch_secs`]) and `Retry-After` the
/// time until then ([`RateDecision::retry_after_secs`]): a client that waits that
/// long is allowed again. The known cost: a client may send up to twice the limit
/// in a short time around a window boundary (the end of one window, then the start
/// of the next).
///
/// # Time
/// "Now" is the caller's: [`RedisRateLimiter::check`] takes it, so windows follow
/// the application's clock (testable without waiting), never Redis's. Expiry is set
/// relative to it (`PEXPIRE` of the time left in the window plus [`RedisRateLimiter::EXPIRY_SLACK`]),
/// so the counters disappear shortly after their window ends even when the
/// application's clock and the server's differ.
///
/// # Keys
/// A counter is stored at `{<prefix>}:rl:<key>:<window ms>:<window start ms>`: the
/// window length is part of the name, so two limits with different windows on the
/// same key (say `user:42` per hour and per minute) never share a counter, and the
/// prefix is a Redis Cluster hash tag. Choose keys per limit, e.g. `user:<id>` or
/// `ip:<address>` (any string; IPv6 colons are fine).
///
/// # Failures
/// When Redis is down or restarting, [`check`](RedisRateLimiter::check) returns a
/// [`LimiterError::Redis`] (see [`LimiterError::is_unavailable`]) instead of
/// waiting or panicking; the [`ConnectionManager`] reconnects by itself, so later
/// checks succeed once Redis is back. Whether to fail open or closed is the
/// caller's choice.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
///
/// use chronos_redis::RedisRateLimiter;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let conn = redis::aio::ConnectionManager::new(client).await?;
/// let limiter = RedisRateLimiter::new(conn, "chronos");
///
/// // 100 requests per hour per user.
/// let decision = limiter
///     .check("user:42", 100, Duration::from_secs(3600), chrono::Utc::now())
///     .await?;
/// println!("X-RateLimit-Limit: {}", decision.limit);
/// println!("X-RateLimit-Remaining: {}", decision.remaining);
/// println!("X-RateLimit-Reset: {}", decision.reset_epoch_secs());
/// if let Some(secs) = decision.retry_after_secs() {
///     println!("429, Retry-After: {secs}");
/// }
/// # Ok(())
/// # }
/// ```
///
/// Cheap to clone (the [`ConnectionManager`] is shared).
#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: ConnectionManager,
    prefix: String,
    script: Script,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// How long a counter outlives its window, so processes whose clocks lag a little
    /// behind still find it.
    pub const EXPIRY_SLACK: Duration = Duration::from_secs(5);

    /// The longest window accepted: 366 days.
    pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

    /// A limiter using `conn`, with its keys under the hash tag `{prefix}`.
    ///
    /// The connection's response timeout (500 ms by default in
    /// [`ConnectionManagerConfig`](redis::aio::ConnectionManagerConfig)) bounds how
    /// long a check waits for an unresponsive server.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            script: Script::new(CHECK_SCRIPT),
        }
    }

    /// The prefix given to [`new`](Self::new).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Counts one request of `key` against `limit` requests per `window` (aligned
    /// on the epoch, see the [type docs](RedisRateLimiter)) at instant `now`, atomically.
    ///
    /// Allowed: the request is counted, `remaining` is what is left after it.
    /// Refused: nothing is counted, `remaining` is 0 and `retry_after` the time
    /// until the window ends. A `limit` of 0 refuses everything.
    pub async fn check(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<RateDecision, LimiterError> {
        let window_ms = i64::try_from(window.as_millis())
            .ok()
            .filter(|ms| *ms > 0 && window <= Self::MAX_WINDOW)
            .ok_or(LimiterError::InvalidWindow { window })?;
        let now_ms = now.timestamp_millis();
        let start_ms = now_ms.div_euclid(window_ms) * window_ms;
        let end_ms = start_ms
            .checked_add(window_ms)
            .ok_or(LimiterError::OutOfRange { now })?;
        let reset_at =
            DateTime::from_timestamp_millis(end_ms).ok_or(LimiterError::OutOfRange { now })?;
        let left_ms = end_ms - now_ms; // in 1..=window_ms
        let slack_ms = i64::try_from(Self::EXPIRY_SLACK.as_millis()).unwrap_or(i64::MAX);
        let ttl_ms = left_ms.saturating_add(slack_ms);

        let counter = format!("{{{}}}:rl:{key}:{window_ms}:{start_ms}", self.prefix);
        let mut conn = self.conn.clone();
        let (allowed, count): (i64, i64) = self
            .script
            .key(&counter)
            .arg(limit)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|source| LimiterError::Redis {
                doing: format!("cannot check the rate limit of `{key}` in Redis"),
                source,
            })?;

        let allowed = allowed == 1;
        let remaining = if allowed {
            let used = u32::try_from(count).unwrap_or(u32::MAX);
            limit.saturating_sub(used)
        } else {
            0
        };
        let retry_after =
            (!allowed).then(|| Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)));
        Ok(RateDecision {
            allowed,
            limit,
            remaining,
            reset_at,
            retry_after,
        })
    }
}
