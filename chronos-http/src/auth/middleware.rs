//! The middleware of authenticated and rate-limited routes: [`require_auth`],
//! [`user_rate_limit`] and [`ip_rate_limit`] (used with
//! [`axum::middleware::from_fn_with_state`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::auth::token::TokenError;
use crate::error::{ApiError, Code};
use crate::ports::RateDecision;
use crate::state::{AppState, AuthUser, RateLimit};

/// `X-RateLimit-Limit`.
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`.
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`.
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The token of an authenticated request, beside its [`AuthUser`] in the request's
/// extensions: what logout and refresh revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The token's id.
    pub jti: String,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

/// Authenticates the request: an `Authorization: Bearer <token>` header with a
/// valid, unexpired, unrevoked token puts an [`AuthUser`] and a [`Session`] into the
/// request's extensions; anything else answers 401 (`UNAUTHORIZED` for a missing or
/// ill-formed header, `INVALID_TOKEN`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`). When the
/// revocation list cannot be asked, the request is refused with 503
/// `SERVICE_UNAVAILABLE` (fail closed: a revoked token must never pass).
pub async fn require_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authenticate(&state, req.headers()).await {
        Ok((user, session)) => {
            req.extensions_mut().insert(user);
            req.extensions_mut().insert(session);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The bearer token of `headers`, or `UNAUTHORIZED`.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let unauthorized = || {
        ApiError::new(
            Code::Unauthorized,
            "authentication required: send the header `Authorization: Bearer <token>`",
        )
    };
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(unauthorized());
    };
    let value = value.to_str().map_err(|_| unauthorized())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(unauthorized)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(unauthorized());
    }
    Ok(token)
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(AuthUser, Session), ApiError> {
    let token = bearer(headers)?;
    let verified = state.tokens().verify(token).map_err(|e| match e {
        TokenError::Invalid => ApiError::new(Code::InvalidToken, "invalid token"),
        TokenError::Expired => ApiError::new(Code::TokenExpired, "the token has expired"),
    })?;
    let claims = verified.claims;
    match state.revocations().is_revoked(&claims.jti).await {
        Ok(false) => {}
        Ok(true) => {
            return Err(ApiError::new(
                Code::TokenRevoked,
                "the token has been revoked",
            ));
        }
        Err(e) => {
            return Err(ApiError::unavailable(
                "cannot check whether a token is revoked: refusing it",
                &e,
            ));
        }
    }
    let session = Session {
        expires_at: claims.expires_at(),
        jti: claims.jti,
    };
    let user = AuthUser {
        id: verified.user_id,
        email: claims.email,
    };
    Ok((user, session))
}

/// The per-user limit ([`Settings::user_rate_limit`](crate::state::Settings)), keyed
/// by the [`AuthUser`] that [`require_auth`] put in (so it runs inside it).
pub async fn user_rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(user) = req.extensions().get::<AuthUser>() else {
        // Only mounted behind require_auth: a route without it is a wiring bug.
        return ApiError::internal(&"user_rate_limit without require_auth").into_response();
    };
    let key = format!("user:{}", user.id);
    let limit = state.settings().user_rate_limit;
    limited(&state, &key, limit, req, next).await
}

/// The per-IP limit of register and login together
/// ([`Settings::auth_rate_limit`](crate::state::Settings)), keyed by [`client_ip`].
pub async fn ip_rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let key = match client_ip(&req, state.settings().trust_proxy) {
        Some(ip) => format!("auth-ip:{ip}"),
        None => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "no client address: serve the app with \
                     `into_make_service_with_connect_info::<SocketAddr>()`; until then every \
                     client shares one register/login rate limit"
                );
            }
            "auth-ip:unknown".to_owned()
        }
    };
    let limit = state.settings().auth_rate_limit;
    limited(&state, &key, limit, req, next).await
}

/// The client's address: the socket's peer ([`ConnectInfo`]), or with `trust_proxy`
/// the last valid address of `X-Forwarded-For` (the one the proxy in front appended;
/// those before it are whatever the client claimed), falling back to the peer.
pub fn client_ip(req: &Request, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical())
}

/// Counts the request against `limit` under `key` and answers 429 when it is over,
/// with the `X-RateLimit-*` headers on every answer.
///
/// When the limiter fails (Redis down), the request goes on without the headers:
/// **fail open**, as a limiter outage must not take the API down; a warning is
/// logged (at most every 10 s, the rest at debug level).
async fn limited(
    state: &AppState,
    key: &str,
    limit: RateLimit,
    req: Request,
    next: Next,
) -> Response {
    match state.limiter().check(key, limit.max, limit.window).await {
        Ok(decision) if decision.allowed => {
            let mut response = next.run(req).await;
            set_rate_headers(response.headers_mut(), &decision);
            response
        }
        Ok(decision) => {
            let retry_after = decision.retry_after.unwrap_or(1);
            let mut error = ApiError::new(
                Code::RateLimitExceeded,
                format!("too many requests: try again in {retry_after} s"),
            );
            let headers = error.headers.get_or_insert_with(Box::default);
            set_rate_headers(headers, &decision);
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_after));
            error.into_response()
        }
        Err(e) => {
            warn_fail_open(state.clock().now(), &e);
            next.run(req).await
        }
    }
}

fn set_rate_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(decision.limit));
    headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(X_RATELIMIT_RESET, HeaderValue::from(decision.reset));
}

fn warn_fail_open(now: DateTime<Utc>, error: &dyn std::fmt::Display) {
    static LAST_WARNING: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = now.timestamp();
    let last = LAST_WARNING.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 10
        && LAST_WARNING
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(%error, "the rate limiter is unavailable: requests pass unlimited");
    } else {
        tracing::debug!(%error, "the rate limiter is unavailable: request passes unlimited");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use axum::body::Body;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer(&headers("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(&headers("bearer  abc ")).unwrap(), "abc");
        for bad in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "abc",
            "Bearer a b",
            "Token abc",
        ] {
            let e = bearer(&headers(bad)).unwrap_err();
            assert_eq!(e.code, Code::Unauthorized, "{bad}");
        }
        assert_eq!(
            bearer(&HeaderMap::new()).unwrap_err().code,
            Code::Unauthorized
        );
    }

    #[test]
    fn client_ip_uses_forwarded_for_only_when_trusted() {
        let mut req = Request::builder()
            .header("x-forwarded-for", "9.9.9.9, 1.2.3.4")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
        assert_eq!(client_ip(&req, false), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(client_ip(&req, true), Some(IpAddr::from([1, 2, 3, 4])));
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_ip(&req, true), Some(IpAddr::from([127, 0, 0, 1])));
    }
}
