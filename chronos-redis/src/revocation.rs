//! The shared token revocation list, [`RedisRevocationList`] (re-exported at the
//! crate root).

use chrono::{DateTime, Utc};
use redis::RedisError;
use redis::aio::ConnectionManager;

/// Why a [`RedisRevocationList`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// Redis failed: unreachable, restarting, a killed connection, a timeout, ...
    #[error("{doing}: {source}")]
    Redis {
        /// What the revocation list was doing.
        doing: String,
        /// The client's error.
        #[source]
        source: RedisError,
    },
}

impl RevocationError {
    /// Whether Redis could not be reached or could not serve (connection refused or
    /// dropped, timeout, a restarting server still loading its data): a transient
    /// failure.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Redis { source, .. } => crate::limiter::is_unavailable(source),
        }
    }
}

/// The ids (`jti`) of revoked tokens, stored in Redis and shared by every API
/// process that talks to the same Redis.
///
/// A revoked id is stored at `{<prefix>}:revoked:<jti>` (the prefix is a Redis
/// Cluster hash tag) and expires when the token itself does, so the list never
/// holds more than the revoked tokens still alive: [`revoke`](RedisRevocationList::revoke)
/// sets a time to live of `expires_at - now` (relative to the caller's "now", so
/// the application's clock decides, not the server's); a token already expired is
/// not stored. Revoking an id twice keeps the later of the two expiries (needs
/// Redis 7.0 or newer for `PEXPIRE ... GT`).
///
/// When Redis is down or restarting, calls return a [`RevocationError`] (see
/// [`RevocationError::is_unavailable`]); the [`ConnectionManager`] reconnects by
/// itself. Whether an unknown revocation state rejects the token is the caller's
/// choice (rejecting is the safe one).
///
/// # Example
/// ```no_run
/// use chronos_redis::RedisRevocationList;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let conn = redis::aio::ConnectionManager::new(client).await?;
/// let revoked = RedisRevocationList::new(conn, "chronos");
///
/// let now = chrono::Utc::now();
/// let expires_at = now + chrono::Duration::minutes(15);
/// revoked.revoke("token-id", expires_at, now).await?;
/// assert!(revoked.is_revoked("token-id").await?);
/// # Ok(())
/// # }
/// ```
///
/// Cheap to clone (the [`ConnectionManager`] is shared).
#[derive(Clone)]
pub struct RedisRevocationList {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisRevocationList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocationList")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRevocationList {
    /// A revocation list using `conn`, with its keys under the hash tag `{prefix}`.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
        }
    }

    /// The prefix given to [`new`](Self::new).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, jti: &str) -> String {
        format!("{{{}}}:revoked:{jti}", self.prefix)
    }

    /// Revokes token `jti`, which expires at `expires_at`, as of `now`: it stays
    /// revoked for `expires_at - now` (at least 1 ms). Returns whether it was stored:
    /// `false` when the token has already expired (`expires_at <= now`), as an
    /// expired token is refused anyway. Revoking again never shortens the time.
    pub async fn revoke(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, RevocationError> {
        let ttl_ms = (expires_at - now).num_milliseconds();
        if ttl_ms <= 0 {
            tracing::debug!(jti, %expires_at, "token already expired, not stored as revoked");
            return Ok(false);
        }
        let key = self.key(jti);
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .arg("GT")
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|source| RevocationError::Redis {
                doing: format!("cannot revoke token `{jti}` in Redis"),
                source,
            })?;
        Ok(true)
    }

    /// Whether token `jti` is revoked (and its revocation not yet expired).
    pub async fn is_revoked(&self, jti: &str) -> Result<bool, RevocationError> {
        let mut conn = self.conn.clone();
        redis::cmd("EXISTS")
            .arg(self.key(jti))
            .query_async::<bool>(&mut conn)
            .await
            .map_err(|source| RevocationError::Redis {
                doing: format!("cannot check whether token `{jti}` is revoked in Redis"),
                source,
            })
    }
}
