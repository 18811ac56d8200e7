//! The platform around the routes, over real HTTP on the in-memory services: rate
//! limits (per user, per IP, `X-Forwarded-For` only behind a trusted proxy), their
//! headers, limiter and revocation outages, security headers, request ids, CORS,
//! 404/405/413 bodies, panics, the concurrency limit.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod auth_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auth_support::{
    Answer, PASSWORD, TestApp, assert_error, builder, email, roomy, serve, serve_state, spawn,
};
use axum::Router;
use axum::routing::get;
use chrono::{DateTime, TimeZone, Utc};
use chronos::clock::ManualClock;
use chronos_http::app::router_with;
use chronos_http::ports::{
    RateDecision, RateLimitError, RateLimits, Revocations, RevocationsError,
};
use chronos_http::state::{AppState, CorsOrigin, RateLimit, Settings};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

/// 2026-01-01T00:30:00Z: half an hour into an hourly window, a 15-minute window ends
/// at 00:45.
fn half_past() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 30, 0).unwrap()
}

/// An app whose HTTP clock is manual, at [`half_past`].
async fn spawn_at(settings: Settings) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(half_past()));
    let services = builder(settings)
        .await
        .clock(clock.clone())
        .build()
        .unwrap();
    (serve_state(AppState::new(services)).await, clock)
}

fn rate_headers(a: &Answer) -> Option<(u32, u32, i64)> {
    Some((
        a.header("x-ratelimit-limit")?.parse().unwrap(),
        a.header("x-ratelimit-remaining")?.parse().unwrap(),
        a.header("x-ratelimit-reset")?.parse().unwrap(),
    ))
}

fn assert_security_headers(a: &Answer) {
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"), "{a:?}");
    assert_eq!(a.header("x-frame-options"), Some("DENY"), "{a:?}");
    assert_eq!(a.header("referrer-policy"), Some("no-referrer"), "{a:?}");
    assert_eq!(a.header("server"), None, "{a:?}");
    let id = a.header("x-request-id").unwrap();
    assert!(!id.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn per_user_limit_with_headers_then_429() {
    let mut settings = roomy();
    settings.user_rate_limit = RateLimit {
        max: 3,
        window: Duration::from_secs(3600),
    };
    let (app, clock) = spawn_at(settings).await;
    let token = app.token(&email()).await;
    let reset = Utc
        .with_ymd_and_hms(2026, 1, 1, 1, 0, 0)
        .unwrap()
        .timestamp();

    // Successes and errors alike count and carry the headers.
    let a = app.authed(Method::GET, "/jobs", &token).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(rate_headers(&a), Some((3, 2, reset)));
    let a = app
        .authed(Method::GET, &format!("/jobs/{}", Uuid::new_v4()), &token)
        .await;
    assert_error(&a, StatusCode::NOT_FOUND, "JOB_NOT_FOUND");
    assert_eq!(rate_headers(&a), Some((3, 1, reset)));
    let a = app.authed(Method::GET, "/dashboard/stats", &token).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(rate_headers(&a), Some((3, 0, reset)));

    // Over the limit: 429 with Retry-After (to the window's end) on every limited route.
    for path in ["/jobs", "/executions/00000000-0000-0000-0000-000000000000"] {
        let a = app.authed(Method::GET, path, &token).await;
        assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
        assert_eq!(rate_headers(&a), Some((3, 0, reset)));
        assert_eq!(a.header("retry-after"), Some("1800"));
        assert_security_headers(&a);
    }
    let a = app.authed(Method::POST, "/auth/refresh", &token).await;
    assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");

    // Not limited: me and logout (no headers), and other users.
    let a = app.authed(Method::GET, "/auth/me", &token).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(rate_headers(&a), None);
    let other = app.token(&email()).await;
    let a = app.authed(Method::GET, "/jobs", &other).await;
    assert_eq!(rate_headers(&a), Some((3, 2, reset)));

    // The next window starts from zero.
    clock.advance(Duration::from_secs(1800));
    let a = app.authed(Method::GET, "/jobs", &token).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(rate_headers(&a), Some((3, 2, reset + 3600)));
    // Refresh is limited too.
    let a = app.authed(Method::POST, "/auth/refresh", &token).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(rate_headers(&a), Some((3, 1, reset + 3600)));
}

#[tokio::test(flavor = "multi_thread")]
async fn per_ip_limit_on_register_and_login() {
    let mut settings = roomy();
    settings.auth_rate_limit = RateLimit {
        max: 3,
        window: Duration::from_secs(900),
    };
    let (app, _clock) = spawn_at(settings.clone()).await;
    let reset = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 45, 0)
        .unwrap()
        .timestamp();
    let address = email();
    let a = app
        .post_json(
            "/auth/register",
            &json!({"email": address, "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(rate_headers(&a), Some((3, 2, reset)));
    // Failures count and carry the headers.
    let a = app
        .post_json(
            "/auth/login",
            &json!({"email": address, "password": "Wrong123pass"}),
        )
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    assert_eq!(rate_headers(&a), Some((3, 1, reset)));
    let a = app.post_json("/auth/login", &json!({})).await;
    assert_error(&a, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(rate_headers(&a), Some((3, 0, reset)));
    // Over: X-Forwarded-For changes nothing without a trusted proxy.
    for forwarded in [None, Some("203.0.113.7"), Some("198.51.100.1, 203.0.113.8")] {
        let mut req = app
            .request(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": address, "password": PASSWORD}));
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        let a = app.send(req).await;
        assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
        assert_eq!(a.header("retry-after"), Some("900"));
        assert_eq!(rate_headers(&a), Some((3, 0, reset)));
    }
    // Register shares the budget.
    let a = app
        .post_json(
            "/auth/register",
            &json!({"email": email(), "password": PASSWORD}),
        )
        .await;
    assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");

    // Behind a trusted proxy, each forwarded client has its own budget: the last
    // address of the header is the one the proxy saw.
    settings.trust_proxy = true;
    let (proxied, _clock) = spawn_at(settings).await;
    let login = |forwarded: &'static str| {
        let proxied = &proxied;
        let address = address.clone();
        async move {
            proxied
                .send(
                    proxied
                        .request(Method::POST, "/api/v1/auth/login")
                        .header("x-forwarded-for", forwarded)
                        .json(&json!({"email": address, "password": PASSWORD})),
                )
                .await
        }
    };
    for _ in 0..3 {
        let a = login("203.0.113.7").await;
        assert_error(&a, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let a = login("203.0.113.7").await;
    assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
    // A client spoofing an address before the proxy's own does not escape.
    let a = login("10.0.0.1, 203.0.113.7").await;
    assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
    let a = login("203.0.113.99").await;
    assert_eq!(rate_headers(&a).unwrap().1, 2);
}

struct DownLimiter;

#[async_trait]
impl RateLimits for DownLimiter {
    async fn check(
        &self,
        _key: &str,
        _limit: u32,
        _window: Duration,
    ) -> Result<RateDecision, RateLimitError> {
        Err(RateLimitError::Unavailable("connection refused".into()))
    }
}

struct DownRevocations;

#[async_trait]
impl Revocations for DownRevocations {
    async fn revoke(&self, _jti: &str, _at: DateTime<Utc>) -> Result<(), RevocationsError> {
        Err(RevocationsError::Unavailable("connection refused".into()))
    }

    async fn is_revoked(&self, _jti: &str) -> Result<bool, RevocationsError> {
        Err(RevocationsError::Unavailable("connection refused".into()))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limiter_outage_fails_open_a_revocation_outage_fails_closed() {
    let mut settings = roomy();
    settings.user_rate_limit.max = 1;
    settings.auth_rate_limit.max = 1;
    let services = builder(settings.clone())
        .await
        .limiter(Arc::new(DownLimiter))
        .build()
        .unwrap();
    let app = serve_state(AppState::new(services)).await;
    let token = app.token(&email()).await;
    for _ in 0..3 {
        let a = app.authed(Method::GET, "/jobs", &token).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        assert_eq!(rate_headers(&a), None);
    }
    app.token(&email()).await;

    let services = builder(settings)
        .await
        .revocations(Arc::new(DownRevocations))
        .build()
        .unwrap();
    let app = serve_state(AppState::new(services)).await;
    let token = app.token(&email()).await;
    for (method, path) in [
        (Method::GET, "/auth/me"),
        (Method::GET, "/jobs"),
        (Method::POST, "/auth/logout"),
    ] {
        let a = app.authed(method, path, &token).await;
        assert_error(&a, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn security_headers_and_request_ids_on_every_answer() {
    let mut settings = roomy();
    settings.body_limit = 1024;
    let app = spawn(settings).await;
    let token = app.token(&email()).await;
    let answers = [
        app.authed(Method::GET, "/auth/me", &token).await,
        app.send(app.request(Method::GET, "/api/v1/auth/me")).await,
        app.send(app.request(Method::GET, "/nowhere")).await,
        app.send(app.request(Method::GET, "/api/v1/auth/login"))
            .await,
        app.send(
            app.request(Method::POST, "/api/v1/auth/login")
                .body("x".repeat(4096)),
        )
        .await,
        app.post_json(
            "/auth/register",
            &json!({"email": email(), "password": PASSWORD}),
        )
        .await,
    ];
    let mut ids = std::collections::HashSet::new();
    for a in &answers {
        assert_security_headers(a);
        let id = a.header("x-request-id").unwrap();
        Uuid::parse_str(id).unwrap();
        ids.insert(id.to_owned());
    }
    assert_eq!(ids.len(), answers.len());

    // A client's id is echoed; an unusable one is replaced.
    let a = app
        .send(
            app.request(Method::GET, "/api/v1/auth/me")
                .header("x-request-id", "client-id-42"),
        )
        .await;
    assert_eq!(a.header("x-request-id"), Some("client-id-42"));
    for bad in ["x".repeat(200), String::new(), "a b".to_owned()] {
        let a = app
            .send(
                app.request(Method::GET, "/api/v1/auth/me")
                    .header("x-request-id", bad.clone()),
            )
            .await;
        let id = a.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        Uuid::parse_str(id).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_for_any_or_the_configured_origins() {
    let app = spawn(roomy()).await;
    let preflight = |app: &TestApp, origin: &str| {
        app.request(Method::OPTIONS, "/api/v1/jobs")
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
    };
    let a = app.send(preflight(&app, "https://app.example.com")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    let methods = a.header("access-control-allow-methods").unwrap().to_owned();
    for m in ["GET", "POST", "PATCH", "DELETE", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = a
        .header("access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"));
    assert_security_headers(&a);

    let mut settings = roomy();
    settings.cors_origin = CorsOrigin::parse("https://app.example.com").unwrap();
    let app = spawn(settings).await;
    let a = app.send(preflight(&app, "https://app.example.com")).await;
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let a = app.send(preflight(&app, "https://evil.example.com")).await;
    assert_eq!(a.header("access-control-allow-origin"), None);
    // A simple request from the allowed origin can read the rate-limit headers.
    let token = app.token(&email()).await;
    let a = app
        .send(
            app.request(Method::GET, "/api/v1/jobs")
                .bearer_auth(&token)
                .header("origin", "https://app.example.com"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let exposed = a
        .header("access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-ratelimit-remaining"), "{exposed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_methods_in_the_documented_body() {
    let app = spawn(roomy()).await;
    for path in [
        "/",
        "/nowhere",
        "/api/v1",
        "/api/v1/nowhere",
        "/api/v2/jobs",
        "/api/v1/auth",
    ] {
        let a = app.send(app.request(Method::GET, path)).await;
        assert_error(&a, StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND");
    }
    let token = app.token(&email()).await;
    for (method, path) in [
        (Method::GET, "/api/v1/auth/login"),
        (Method::PUT, "/api/v1/auth/register"),
        (Method::DELETE, "/api/v1/auth/me"),
        (Method::GET, "/api/v1/auth/logout"),
        (Method::PUT, "/api/v1/jobs"),
        (Method::DELETE, "/api/v1/dashboard/stats"),
    ] {
        let a = app
            .send(app.request(method.clone(), path).bearer_auth(&token))
            .await;
        assert_error(&a, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies() {
    let app = spawn(roomy()).await;
    let token = app.token(&email()).await;
    // Over 1 MiB on a route with a body: 413 in the documented body.
    let big = format!(
        r#"{{"email": "{}", "password": "{}"}}"#,
        email(),
        "Aa1".repeat(400_000)
    );
    for path in ["/api/v1/auth/register", "/api/v1/auth/login"] {
        let a = app
            .send(
                app.request(Method::POST, path)
                    .header("content-type", "application/json")
                    .body(big.clone()),
            )
            .await;
        assert_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    }
    // Just under it: read and judged.
    let a = app
        .send(
            app.request(Method::POST, "/api/v1/auth/register")
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"pad\": \"{}\"}}",
                    "x".repeat(1024 * 1024 - 100)
                )),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    // On a bodyless route, a huge body is ignored.
    let a = app
        .send(
            app.request(Method::POST, "/api/v1/auth/logout")
                .bearer_auth(&token)
                .body(vec![b'x'; 2 * 1024 * 1024]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_handler_is_a_500_in_the_documented_body() {
    let state = AppState::new(builder(roomy()).await.build().unwrap());
    let public = Router::new().route(
        "/boom",
        get(|| async {
            if true {
                panic!("boom");
            }
            "unreachable"
        }),
    );
    let api = Router::new().route(
        "/dashboard/boom",
        get(|| async {
            if true {
                panic!("{}", String::from("boom again"));
            }
            "unreachable"
        }),
    );
    let app = serve(router_with(state.clone(), public, api)).await;
    let a = app.send(app.request(Method::GET, "/boom")).await;
    let message = assert_error(&a, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    assert!(!message.contains("boom"), "{message}");
    assert_security_headers(&a);
    let mut app = app;
    app.state = Some(state);
    let token = app.token(&email()).await;
    let a = app.authed(Method::GET, "/dashboard/boom", &token).await;
    assert_error(&a, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    assert_security_headers(&a);
    // The server goes on.
    let a = app.authed(Method::GET, "/auth/me", &token).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_the_concurrency_limit_wait_their_turn() {
    let mut settings = roomy();
    settings.max_concurrent_requests = 1;
    let state = AppState::new(builder(settings).await.build().unwrap());
    let public = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        }),
    );
    let app = serve(router_with(state, public, Router::new())).await;
    let started = Instant::now();
    let (a, b) = tokio::join!(
        app.send(app.request(Method::GET, "/slow")),
        app.send(app.request(Method::GET, "/slow"))
    );
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}
