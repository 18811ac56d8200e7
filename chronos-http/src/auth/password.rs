//! [`Passwords`]: argon2id hashing and verification off the async threads, and the
//! password rules of registration.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

/// The shortest password accepted at registration, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Why a password is refused at registration (the message is for the client).
pub fn password_problem(password: &str) -> Option<&'static str> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Some("must be at least 8 characters long")
    } else if chars > MAX_PASSWORD_CHARS {
        Some("must be at most 128 characters long")
    } else if !password.chars().any(char::is_lowercase) {
        Some("must contain a lower-case letter")
    } else if !password.chars().any(char::is_uppercase) {
        Some("must contain an upper-case letter")
    } else if !password.chars().any(|c| c.is_ascii_digit()) {
        Some("must contain a digit")
    } else {
        None
    }
}

/// Why hashing or verifying failed (never because a password is wrong).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The parameters are not valid argon2 parameters.
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    /// argon2 failed (a stored hash that does not parse, the RNG, ...).
    #[error("argon2 failed: {0}")]
    Argon2(String),
    /// The blocking task failed.
    #[error("the password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashes and verifies passwords with argon2id.
///
/// Each hash or verification runs on tokio's blocking pool
/// ([`spawn_blocking`](tokio::task::spawn_blocking)); at most as many run at once as
/// the machine has cores (each takes `m_cost` KiB of memory: 19 MiB with the OWASP
/// parameters), the rest wait their turn.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish_non_exhaustive()
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::owasp()
    }
}

impl Passwords {
    /// argon2id with OWASP's parameters: 19 MiB of memory (`m=19456`), 2 passes,
    /// 1 lane.
    pub fn owasp() -> Self {
        // argon2's defaults are OWASP's (checked by a test).
        Self::from_params(Params::DEFAULT)
    }

    /// argon2id with these parameters: memory in KiB, passes, lanes. Weaker ones than
    /// [`owasp`](Self::owasp) are for tests only.
    pub fn with_params(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<Self, PasswordError> {
        let params = Params::new(m_cost, t_cost, p_cost, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(Self::from_params(params))
    }

    /// Also makes the dummy hash of [`verify_dummy`](Self::verify_dummy) now (one
    /// hash, ~20 ms with OWASP's parameters), so even the first login with an
    /// unknown email takes no longer than one with a wrong password.
    fn from_params(params: Params) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let dummy = Self::hasher(&params)
            .hash_password(uuid::Uuid::new_v4().as_bytes())
            .ok()
            .map(|hash| hash.to_string());
        Self {
            params,
            permits: Arc::new(Semaphore::new(cores)),
            dummy: Arc::new(OnceCell::new_with(dummy)),
        }
    }

    fn hasher(params: &Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Argon2(e.to_string()))?;
        Ok(tokio::task::spawn_blocking(work).await?)
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) of `password`
    /// with a fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.blocking(move || {
            Self::hasher(&params)
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| PasswordError::Argon2(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `hash` (a PHC string; its own parameters are used).
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        let params = self.params.clone();
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.blocking(move || {
            match Self::hasher(&params).verify_password(password.as_bytes(), hash.as_str()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(PasswordError::Argon2(e.to_string())),
            }
        })
        .await?
    }

    /// Verifies `password` against a hash no password matches, made with the same
    /// parameters: what a login with an unknown email does, so it takes as long as
    /// one with a wrong password. Always `false`.
    pub async fn verify_dummy(&self, password: &str) -> Result<bool, PasswordError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async {
                // Made at construction unless that failed: a random password nobody
                // knows, the hash of a fresh UUID.
                self.hash(&uuid::Uuid::new_v4().to_string()).await
            })
            .await?
            .clone();
        self.verify(password, &dummy).await?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use super::*;

    #[test]
    fn password_rules() {
        assert_eq!(password_problem("Passw0rd"), None);
        assert_eq!(password_problem("Pässwört1"), None);
        assert!(password_problem("Pa1").is_some());
        assert!(password_problem("password1").is_some());
        assert!(password_problem("PASSWORD1").is_some());
        assert!(password_problem("Password").is_some());
        assert_eq!(password_problem(&format!("Aa1{}", "x".repeat(125))), None);
        assert!(password_problem(&format!("Aa1{}", "x".repeat(126))).is_some());
    }

    #[tokio::test]
    async fn hash_and_verify_with_owasp_parameters() {
        let passwords = Passwords::owasp();
        let hash = passwords.hash("Correct1Horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(passwords.verify("Correct1Horse", &hash).await.unwrap());
        assert!(!passwords.verify("correct1horse", &hash).await.unwrap());
        // Salted: the same password hashes differently.
        assert_ne!(hash, passwords.hash("Correct1Horse").await.unwrap());
        assert!(!passwords.verify_dummy("Correct1Horse").await.unwrap());
        assert!(passwords.verify("x", "not a hash").await.is_err());
    }
}
