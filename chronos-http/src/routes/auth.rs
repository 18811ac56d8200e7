//! `/auth`: register, login, logout, me, refresh.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::middleware::Session;
use crate::auth::password::{MAX_PASSWORD_CHARS, password_problem};
use crate::auth::token::Issued;
use crate::auth::validate_email;
use crate::docs::{RATE_LIMITED, UNAUTHENTICATED};
use crate::error::{ApiError, Code, ErrorBody, FieldIssue};
use crate::extract::ApiJson;
use crate::ports::{User, UserStoreError};
use crate::respond::{self, Envelope, Message};
use crate::state::{AppState, AuthUser};

/// The body of register and login. Unknown fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "user@example.com", "password": "SecurePass123"}))]
pub struct Credentials {
    /// A valid address; stored trimmed and lower-cased, unique case-insensitively.
    #[schema(required = true, nullable = false)]
    email: Option<String>,
    /// To register: 8 to 128 characters with a lower-case letter, an upper-case letter
    /// and a digit.
    #[schema(required = true, nullable = false)]
    password: Option<String>,
}

/// `data.user` of register and login.
#[derive(Debug, Serialize, ToSchema)]
struct UserBrief<'a> {
    /// The user's id.
    id: Uuid,
    /// The address as stored (trimmed, lower-cased).
    email: &'a str,
    /// When the account was made.
    #[serde(with = "crate::respond::instant")]
    created_at: DateTime<Utc>,
}

/// `data` of register and login: the user, the token, and (for the original
/// frontend) `user_id` and `email` beside `user`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
struct SessionData<'a> {
    /// The user.
    user: UserBrief<'a>,
    /// The bearer token (JWT, HS256).
    token: &'a str,
    /// The token's lifetime in seconds (86400 by default).
    expires_in: u64,
    /// `user.id` (the original frontend reads it here).
    user_id: Uuid,
    /// `user.email` (the original frontend reads it here).
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
#[derive(Debug, Serialize, ToSchema)]
struct Me<'a> {
    /// The user's id.
    id: Uuid,
    /// The address as stored.
    email: &'a str,
    /// When the account was made.
    #[serde(with = "crate::respond::instant")]
    created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(with = "crate::respond::instant")]
    updated_at: DateTime<Utc>,
}

/// `data` of `POST /auth/refresh`.
#[derive(Debug, Serialize, ToSchema)]
struct Refreshed<'a> {
    /// The new bearer token.
    token: &'a str,
    /// Its lifetime in seconds.
    expires_in: u64,
}

fn issue_error(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

fn store_error(e: &UserStoreError) -> ApiError {
    match e {
        UserStoreError::EmailExists => email_exists(),
        UserStoreError::Backend(_) => ApiError::unavailable("user store", e),
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

/// Register.
///
/// `POST /auth/register` → 201 "User registered successfully", signed in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", operation_id = "register",
    request_body = Credentials,
    responses(
        (status = 201, description = "\"User registered successfully\" with a token",
            body = Envelope<SessionData>),
        (status = 400, description = "`VALIDATION_ERROR` (a missing or bad email, a weak \
            password) or `INVALID_JSON`", body = ErrorBody),
        (status = 409, description = "`EMAIL_EXISTS` (compared case-insensitively)",
            body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`: over the per-client-IP limit of \
            register and login together (10 per 15 minutes by default)", body = ErrorBody),
    )
)]
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
        SessionData::new(&user, &issued),
    ))
}

/// Sign in.
///
/// `POST /auth/login` → 200 "Login successful". An unknown email and a wrong
/// password are the same 401 `INVALID_CREDENTIALS`, and take as long: an unknown
/// email is verified against a dummy hash.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login",
    request_body = Credentials,
    responses(
        (status = 200, description = "\"Login successful\" with a token", body = Envelope<SessionData>),
        (status = 400, description = "`VALIDATION_ERROR` (a missing email or password) or \
            `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`INVALID_CREDENTIALS`: an unknown email or a wrong \
            password, alike", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMIT_EXCEEDED`: over the per-client-IP limit",
            body = ErrorBody),
    )
)]
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

/// Sign out.
///
/// `POST /auth/logout` → 200 "Logged out successfully": revokes the token for the
/// rest of its life (everywhere: it gets 401 `TOKEN_REVOKED`). Takes no body.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "logout",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "\"Logged out successfully\"", body = Message),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the revocation could not be \
            recorded (the token stays valid)", body = ErrorBody),
    )
)]
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
        .map_err(|e| ApiError::unavailable("cannot revoke a token", &e))
}

/// The caller.
///
/// `GET /auth/me` → the caller's account.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", operation_id = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Envelope<Me>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
    )
)]
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

/// A new token.
///
/// `POST /auth/refresh` → 200 "Token refreshed successfully" with a new token; the
/// old one is revoked. Takes no body.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", operation_id = "refresh",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "\"Token refreshed successfully\" with the new token",
            body = Envelope<Refreshed>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the old token could not be \
            revoked (no new one is handed out)", body = ErrorBody),
    )
)]
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
