//! `/auth`: register, login, logout, me, refresh.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::middleware::{Session, unavailable};
use crate::auth::password::{MAX_PASSWORD_CHARS, password_problem};
use crate::auth::token::Issued;
use crate::auth::validate_email;
use crate::error::{ApiError, Code, FieldIssue};
use crate::extract::ApiJson;
use crate::ports::{User, UserStoreError};
use crate::respond;
use crate::state::{AppState, AuthUser};

/// The body of register and login. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    email: Option<String>,
    password: Option<String>,
}

/// `data.user` of register and login.
#[derive(Debug, Serialize)]
struct UserBrief<'a> {
    id: Uuid,
    email: &'a str,
    #[serde(with = "crate::respond::instant")]
    created_at: DateTime<Utc>,
}

/// `data` of register and login: the user, the token, and (for the original
/// frontend) `user_id` and `email` beside `user`.
#[derive(Debug, Serialize)]
struct SessionData<'a> {
    user: UserBrief<'a>,
    token: &'a str,
    expires_in: u64,
    user_id: Uuid,
    email: &'a str,
}

impl<'a> SessionData<'a> {
    fn new(user: &'a User, issued: &'a Issued) -> Self {
        Self {
            user: UserBrief {
                id: user.id,
                email: &user.email,
                created_at: user.created_at,
            },
            token: &issued.token,
            expires_in: issued.expires_in,
            user_id: user.id,
            email: &user.email,
        }
    }
}

/// `data` of `GET /auth/me`.
#[derive(Debug, Serialize)]
struct Me<'a> {
    id: Uuid,
    email: &'a str,
    #[serde(with = "crate::respond::instant")]
    created_at: DateTime<Utc>,
    #[serde(with = "crate::respond::instant")]
    updated_at: DateTime<Utc>,
}

/// `data` of `POST /auth/refresh`.
#[derive(Debug, Serialize)]
struct Refreshed<'a> {
    token: &'a str,
    expires_in: u64,
}

fn issue_error(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

fn store_error(e: &UserStoreError) -> ApiError {
    match e {
        UserStoreError::EmailExists => email_exists(),
        UserStoreError::Backend(_) => ApiError::internal(e),
    }
}

fn email_exists() -> ApiError {
    ApiError::new(
        Code::EmailExists,
        "a user with this email address exists already",
    )
}

fn invalid_credentials() -> ApiError {
    ApiError::new(Code::InvalidCredentials, "invalid email or password")
}

/// The email and password of a body, with every problem at once.
fn read_credentials(body: Credentials, registering: bool) -> Result<(String, String), ApiError> {
    let mut errors = Vec::new();
    let email = match body.email.as_deref().map(validate_email) {
        None => {
            errors.push(FieldIssue {
                field: "email".into(),
                message: "is required".into(),
            });
            None
        }
        Some(Err(message)) => {
            errors.push(FieldIssue {
                field: "email".into(),
                message: message.into(),
            });
            None
        }
        Some(Ok(email)) => Some(email),
    };
    let password = match body.password {
        None => {
            errors.push(FieldIssue {
                field: "password".into(),
                message: "is required".into(),
            });
            None
        }
        Some(p) if p.is_empty() => {
            errors.push(FieldIssue {
                field: "password".into(),
                message: "is required".into(),
            });
            None
        }
        Some(p) => match password_problem(&p).filter(|_| registering) {
            Some(message) => {
                errors.push(FieldIssue {
                    field: "password".into(),
                    message: message.into(),
                });
                None
            }
            None => Some(p),
        },
    };
    match (email, password) {
        (Some(email), Some(password)) if errors.is_empty() => Ok((email, password)),
        _ => Err(ApiError::fields(errors)),
    }
}

/// `POST /auth/register` → 201 "User registered successfully".
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let (email, password) = read_credentials(body, true)?;
    // Spares a hash for a known address; the insert below decides under a race.
    if state
        .users()
        .by_email(&email)
        .await
        .map_err(|e| store_error(&e))?
        .is_some()
    {
        return Err(email_exists());
    }
    let hash = state
        .passwords()
        .hash(&password)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let now = state.clock().now();
    let user = state
        .users()
        .create(&email, &hash, now)
        .await
        .map_err(|e| store_error(&e))?;
    let issued = state
        .tokens()
        .issue(user.id, &user.email)
        .map_err(|e| issue_error(&e))?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok(respond::with(
        StatusCode::CREATED,
        Some("User registered successfully"),
        Some(SessionData::new(&user, &issued)),
    ))
}

/// `POST /auth/login` → 200 "Login successful". An unknown email and a wrong
/// password are the same 401 `INVALID_CREDENTIALS`, and take as long: an unknown
/// email is verified against a dummy hash.
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let (email, password) = read_credentials(body, false)?;
    if password.chars().count() > MAX_PASSWORD_CHARS {
        // No account has such a password; its length is no secret.
        return Err(invalid_credentials());
    }
    let found = state
        .users()
        .by_email(&email)
        .await
        .map_err(|e| store_error(&e))?;
    let passwords = state.passwords();
    let user = match found {
        Some(stored) => passwords
            .verify(&password, &stored.password_hash)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .then_some(stored.user),
        None => {
            passwords
                .verify_dummy(&password)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            None
        }
    };
    let Some(user) = user else {
        return Err(invalid_credentials());
    };
    let issued = state
        .tokens()
        .issue(user.id, &user.email)
        .map_err(|e| issue_error(&e))?;
    tracing::info!(user_id = %user.id, "user logged in");
    Ok(respond::ok_with(
        "Login successful",
        SessionData::new(&user, &issued),
    ))
}

/// `POST /auth/logout` → 200 "Logged out successfully": revokes the token for the
/// rest of its life. Takes no body.
pub async fn logout(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    Extension(session): Extension<Session>,
) -> Result<Response, ApiError> {
    revoke(&state, &session).await?;
    tracing::info!(user_id = %user.id, "user logged out");
    Ok(respond::ok_message("Logged out successfully"))
}

async fn revoke(state: &AppState, session: &Session) -> Result<(), ApiError> {
    state
        .revocations()
        .revoke(&session.jti, session.expires_at)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot revoke a token");
            unavailable()
        })
}

/// `GET /auth/me` → the caller.
pub async fn me(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
) -> Result<Response, ApiError> {
    let user = current_user(&state, &user).await?;
    Ok(respond::ok(Me {
        id: user.id,
        email: &user.email,
        created_at: user.created_at,
        updated_at: user.updated_at,
    }))
}

/// The caller's user row; a token whose user is gone is not authenticated.
async fn current_user(state: &AppState, user: &AuthUser) -> Result<User, ApiError> {
    state
        .users()
        .by_id(user.id)
        .await
        .map_err(|e| store_error(&e))?
        .ok_or_else(|| ApiError::new(Code::InvalidToken, "the token's user no longer exists"))
}

/// `POST /auth/refresh` → a new token; the old one is revoked. Takes no body.
pub async fn refresh(
    State(state): State<AppState>,
    Extension(user): Extension<AuthUser>,
    Extension(session): Extension<Session>,
) -> Result<Response, ApiError> {
    let user = current_user(&state, &user).await?;
    let issued = state
        .tokens()
        .issue(user.id, &user.email)
        .map_err(|e| issue_error(&e))?;
    // Revoke before answering: the new token is only handed out once the old one is dead.
    revoke(&state, &session).await?;
    Ok(respond::ok_with(
        "Token refreshed successfully",
        Refreshed {
            token: &issued.token,
            expires_in: issued.expires_in,
        },
    ))
}
