//! [`PgUsers`]: the REST service's users on PostgreSQL (the `users` table).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgRow;
use uuid::Uuid;

/// A row of `users`.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The user's id.
    pub id: Uuid,
    /// The email address, trimmed and lower-cased.
    pub email: String,
    /// The password hash (a PHC string).
    pub password_hash: String,
    /// When the user registered.
    pub created_at: DateTime<Utc>,
    /// When the user last changed.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRow {
    /// Leaves the hash out: it must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// Why a [`PgUsers`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// A user with this email exists already (emails are unique case-insensitively).
    #[error("a user with this email address exists already")]
    EmailExists,
    /// The database failed.
    #[error("{doing}: {source}")]
    Db {
        /// What was being done.
        doing: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

/// The users of the REST service, in the table `users`.
///
/// Emails are stored trimmed and lower-cased, by PostgreSQL's own `lower(btrim(…))`
/// (what the table's `CHECK` demands), and compared the same way on lookup, so
/// callers may pass them in any case. The unique index on `email` decides between
/// two registrations of one address, also at the same instant in two processes:
/// [`PgUsers::create`] is one `INSERT … ON CONFLICT (email) DO NOTHING`, and the
/// loser gets [`UserError::EmailExists`].
///
/// Clones share the pool.
#[derive(Debug, Clone)]
pub struct PgUsers {
    pool: PgPool,
}

fn row(r: &PgRow) -> Result<UserRow, sqlx::Error> {
    use sqlx::Row;
    Ok(UserRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl PgUsers {
    /// Users in the database of `pool` (migrated with [`crate::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Registers a user with id `id`, created and updated at `now` (stored with
    /// PostgreSQL's microsecond precision: the row returned is what was stored).
    pub async fn create(
        &self,
        id: Uuid,
        email: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRow, UserError> {
        const DOING: &str = "cannot register a user";
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at) \
             VALUES ($1, lower(btrim($2)), $3, $4, $4) \
             ON CONFLICT (email) DO NOTHING \
             RETURNING id, email, password_hash, created_at, updated_at",
        )
        .bind(id)
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await;
        match inserted {
            Ok(Some(r)) => row(&r).map_err(|source| UserError::Db {
                doing: DOING,
                source,
            }),
            Ok(None) => Err(UserError::EmailExists),
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                // ON CONFLICT covers the email; a unique violation here is the email
                // index met another way (never the random id in practice).
                Err(UserError::EmailExists)
            }
            Err(source) => Err(UserError::Db {
                doing: DOING,
                source,
            }),
        }
    }

    /// The user with this email (any case, surrounding spaces ignored).
    pub async fn by_email(&self, email: &str) -> Result<Option<UserRow>, UserError> {
        const DOING: &str = "cannot look a user up by email";
        let found = sqlx::query(
            "SELECT id, email, password_hash, created_at, updated_at \
             FROM users WHERE email = lower(btrim($1))",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| UserError::Db {
            doing: DOING,
            source,
        })?;
        found
            .as_ref()
            .map(row)
            .transpose()
            .map_err(|source| UserError::Db {
                doing: DOING,
                source,
            })
    }

    /// The user with this id.
    pub async fn by_id(&self, id: Uuid) -> Result<Option<UserRow>, UserError> {
        const DOING: &str = "cannot look a user up by id";
        let found = sqlx::query(
            "SELECT id, email, password_hash, created_at, updated_at FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| UserError::Db {
            doing: DOING,
            source,
        })?;
        found
            .as_ref()
            .map(row)
            .transpose()
            .map_err(|source| UserError::Db {
                doing: DOING,
                source,
            })
    }
}
