//! [`Tokens`]: issuing and verifying the API's JSON Web Tokens (HS256, pinned).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chronos::clock::{Clock, SystemClock};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The shortest secret [`Tokens::new`] accepts: 32 bytes (256 bits, HS256's key size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The default lifetime of a token: 24 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The longest token [`Tokens::verify`] looks at; longer ones are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id (RFC 7519's subject).
    pub sub: String,
    /// The user's id again, as the original service named it.
    pub user_id: String,
    /// The user's email.
    pub email: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// The token's id (a UUID v4): what a revocation names.
    pub jti: String,
}

impl Claims {
    /// When the token expires.
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// A token just issued.
#[derive(Clone)]
pub struct Issued {
    /// The encoded token (secret: never log it).
    pub token: String,
    /// What it says.
    pub claims: Claims,
    /// Its lifetime in seconds (`expires_in`).
    pub expires_in: u64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("claims", &self.claims)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A token that passed [`Tokens::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The user's id (`sub`, equal to `user_id`).
    pub user_id: Uuid,
    /// The claims.
    pub claims: Claims,
}

/// Why [`Tokens`] cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenConfigError {
    /// The secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes long (it has {len})")]
    SecretTooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// The lifetime is zero, sub-second or absurdly long (over 366 days).
    #[error("invalid token lifetime {0:?}: must be whole seconds between 1 s and 366 days")]
    InvalidTtl(Duration),
    /// The system's random number generator failed.
    #[error("cannot generate a random JWT secret: {0}")]
    Random(String),
    /// The key was refused.
    #[error("invalid JWT key: {0}")]
    Key(#[source] jsonwebtoken::errors::Error),
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of ours: garbage, another algorithm, a bad signature, bad claims.
    #[error("invalid token")]
    Invalid,
    /// A token of ours whose time is up.
    #[error("token expired")]
    Expired,
}

/// Why a token could not be issued (a bug or a clock out of range).
#[derive(Debug, thiserror::Error)]
#[error("cannot issue a token: {0}")]
pub struct IssueError(String);

/// Issues and verifies HS256 JSON Web Tokens with one secret.
///
/// Verification accepts HS256 only: `alg: none`, every other algorithm (RS256 with
/// the secret as a "public key" included), a bad signature, a malformed token or
/// claims, or `sub` and `user_id` that are not the same UUID are
/// [`TokenError::Invalid`]; a token whose `exp` has come (no leeway) is
/// [`TokenError::Expired`], and only when its signature is good. Time is the
/// clock's (see [`with_clock`](Self::with_clock)).
///
/// Cheap to clone.
#[derive(Clone)]
pub struct Tokens {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    validation: Arc<Validation>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Tokens signed with `secret` (at least [`MIN_SECRET_BYTES`]), valid for `ttl`
    /// (whole seconds, 1 s to 366 days; [`DEFAULT_TTL`] is the contract's 24 h).
    pub fn new(secret: &[u8], ttl: Duration) -> Result<Self, TokenConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TokenConfigError::SecretTooShort { len: secret.len() });
        }
        if ttl.as_secs() == 0 || ttl.subsec_nanos() != 0 || ttl.as_secs() > 366 * 24 * 3600 {
            return Err(TokenConfigError::InvalidTtl(ttl));
        }
        let encoding = EncodingKey::from_secret(secret).map_err(TokenConfigError::Key)?;
        let decoding = DecodingKey::from_secret(secret).map_err(TokenConfigError::Key)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        // `exp` is checked against the clock below; the claims struct requires it.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: Arc::new(encoding),
            decoding: Arc::new(decoding),
            validation: Arc::new(validation),
            ttl,
            clock: Arc::new(SystemClock),
        })
    }

    /// Tokens signed with a fresh random 64-byte secret: for development and tests
    /// only, as tokens die with the process and other processes refuse them.
    pub fn random(ttl: Duration) -> Result<Self, TokenConfigError> {
        let mut secret = [0u8; 64];
        getrandom::fill(&mut secret).map_err(|e| TokenConfigError::Random(e.to_string()))?;
        Self::new(&secret, ttl)
    }

    /// The same, telling time by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long a token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new token for this user, with a new `jti`.
    pub fn issue(&self, user_id: Uuid, email: &str) -> Result<Issued, IssueError> {
        let iat = self.clock.now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).map_err(|e| IssueError(e.to_string()))?;
        let claims = Claims {
            sub: user_id.to_string(),
            user_id: user_id.to_string(),
            email: email.to_owned(),
            iat,
            exp: iat.saturating_add(ttl),
            jti: Uuid::new_v4().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| IssueError(e.to_string()))?;
        Ok(Issued {
            token,
            claims,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// Checks a token: see the [type docs](Tokens).
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        let user_id: Uuid = claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        if claims.user_id.parse::<Uuid>() != Ok(user_id) || claims.jti.is_empty() {
            return Err(TokenError::Invalid);
        }
        if self.clock.now().timestamp() >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(Verified { user_id, claims })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use chronos::clock::ManualClock;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn secrets_and_lifetimes_are_checked() {
        assert!(matches!(
            Tokens::new(b"short", DEFAULT_TTL),
            Err(TokenConfigError::SecretTooShort { len: 5 })
        ));
        for ttl in [Duration::ZERO, Duration::from_millis(1500)] {
            assert!(matches!(
                Tokens::new(SECRET, ttl),
                Err(TokenConfigError::InvalidTtl(_))
            ));
        }
        assert!(Tokens::new(SECRET, DEFAULT_TTL).is_ok());
        assert!(Tokens::random(DEFAULT_TTL).is_ok());
    }

    #[test]
    fn issue_verify_expire() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let tokens = Tokens::new(SECRET, Duration::from_secs(60))
            .unwrap()
            .with_clock(clock.clone());
        let user = Uuid::new_v4();
        let issued = tokens.issue(user, "a@example.com").unwrap();
        assert_eq!(issued.expires_in, 60);
        assert_eq!(issued.claims.exp - issued.claims.iat, 60);
        let verified = tokens.verify(&issued.token).unwrap();
        assert_eq!(verified.user_id, user);
        assert_eq!(verified.claims, issued.claims);
        assert!(!format!("{issued:?}").contains(&issued.token));

        clock.advance(Duration::from_secs(59));
        assert!(tokens.verify(&issued.token).is_ok());
        clock.advance(Duration::from_secs(1));
        assert_eq!(tokens.verify(&issued.token), Err(TokenError::Expired));

        let other = Tokens::new(b"another secret, also 32 bytes long", DEFAULT_TTL).unwrap();
        assert_eq!(other.verify(&issued.token), Err(TokenError::Invalid));
        assert_eq!(tokens.verify("garbage"), Err(TokenError::Invalid));
        assert_eq!(tokens.verify(""), Err(TokenError::Invalid));
        assert_eq!(
            tokens.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(TokenError::Invalid)
        );
    }
}
