//! The router: every route of the contract, the fallbacks and the layers.
//!
//! ```text
//! /api/v1/auth/register, /auth/login            per-IP limit
//! /api/v1/auth/logout, /auth/me                  authenticated
//! /api/v1/auth/refresh, /jobs…, /executions…,
//!         /dashboard…  (+ extra api routes)     authenticated, per-user limit
//! /api/v1/cron/preview                           authenticated
//! extra public routes (/health, /metrics, …)     public
//! anything else                                  404 ROUTE_NOT_FOUND / 405 METHOD_NOT_ALLOWED
//! ```
//!
//! Layers, outermost first, on every route and fallback: a sane `x-request-id`
//! (the client's when it is short printable ASCII, else a new UUID), a tracing span
//! per request carrying it, the id echoed in the response, the security headers
//! (`X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
//! `Referrer-Policy: no-referrer`, no `Server`), CORS, a global concurrency limit,
//! panics turned into 500 `INTERNAL_ERROR` (logged inside the request's span), and
//! the body limit that [`ApiJson`](crate::extract::ApiJson) turns into 413
//! `PAYLOAD_TOO_LARGE`. Bodyless routes never read the body, so an oversized one is
//! ignored there.
//!
//! Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the per-IP
//! limit of register and login keys on the peer address.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{
    AUTHORIZATION, CONTENT_TYPE, REFERRER_POLICY, RETRY_AFTER, SERVER, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, Method, Response};
use axum::middleware::{from_fn_with_state, map_request};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::util::MapResponseLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::middleware::{
    X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET, ip_rate_limit, require_auth,
    user_rate_limit,
};
use crate::error::{ApiError, Code};
use crate::routes;
use crate::state::{AppState, CorsOrigin, Settings};

/// `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-given request id kept; a longer or non-printable one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The whole HTTP API over `state`, with no extra routes.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new(), Router::new())
}

/// The whole HTTP API over `state`, plus `public` routes at the root (`/health`,
/// `/metrics`, `/docs`: no authentication) and `api` routes under `/api/v1` behind
/// authentication and the per-user limit (`/dashboard/health`). Both get every
/// layer. Neither may set a fallback.
pub fn router_with(state: AppState, public: Router<AppState>, api: Router<AppState>) -> Router {
    let routes = Router::new()
        .nest("/api/v1", api_routes(&state, api))
        .merge(public)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed);
    with_layers(routes, state.settings()).with_state(state)
}

/// The routes under `/api/v1` with their middleware.
fn api_routes(state: &AppState, extra: Router<AppState>) -> Router<AppState> {
    let credentials = Router::new()
        .route("/auth/register", post(routes::auth::register))
        .route("/auth/login", post(routes::auth::login))
        .route_layer(from_fn_with_state(state.clone(), ip_rate_limit));
    let limited = Router::new()
        .route("/auth/refresh", post(routes::auth::refresh))
        .merge(routes::jobs::routes())
        .merge(routes::executions::routes())
        .merge(routes::dashboard::routes())
        .merge(extra)
        .route_layer(from_fn_with_state(state.clone(), user_rate_limit));
    let authenticated = Router::new()
        .route("/auth/logout", post(routes::auth::logout))
        .route("/auth/me", get(routes::auth::me))
        .merge(routes::cron::routes())
        .merge(limited)
        .route_layer(from_fn_with_state(state.clone(), require_auth));
    credentials.merge(authenticated)
}

/// Every layer, on every route and the fallbacks of `router`.
fn with_layers(router: Router<AppState>, settings: &Settings) -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(match &settings.cors_origin {
            CorsOrigin::Any => AllowOrigin::any(),
            CorsOrigin::List(origins) => AllowOrigin::list(origins.iter().cloned()),
        })
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([CONTENT_TYPE, AUTHORIZATION])
        .expose_headers([
            X_REQUEST_ID,
            X_RATELIMIT_LIMIT,
            X_RATELIMIT_REMAINING,
            X_RATELIMIT_RESET,
            RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600));
    let layers = ServiceBuilder::new()
        .layer(map_request(sanitize_request_id))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(MapResponseLayer::new(security_headers))
        .layer(cors)
        .layer(GlobalConcurrencyLimitLayer::new(
            settings.max_concurrent_requests,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(settings.body_limit));
    router.layer(layers)
}

/// Drops a client's `x-request-id` that is empty, too long or not printable ASCII,
/// so a new one is made.
async fn sanitize_request_id(mut req: Request) -> Request {
    let ok = req.headers().get(&X_REQUEST_ID).is_some_and(|v| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes.iter().all(|b| b.is_ascii_graphic())
    });
    if !ok {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    req
}

fn request_span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %id,
    )
}

fn security_headers<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.remove(SERVER);
    response
}

/// A panicking handler's answer: 500 `INTERNAL_ERROR`, the panic logged (in the
/// request's span, with its id).
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned());
    ApiError::internal(&format_args!("a handler panicked: {message}")).into_response()
}

async fn route_not_found() -> ApiError {
    ApiError::new(Code::RouteNotFound, "route not found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::MethodNotAllowed, "method not allowed on this route")
}
