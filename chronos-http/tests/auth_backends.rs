//! The auth flow on the shared backends: two app instances (two routers, two
//! `Services`, as two API processes) on one PostgreSQL database (users) and one
//! Redis prefix (revocations, rate limits). Skipped loudly when a service is
//! unreachable, unless `CHRONOS_REQUIRE_SERVICES=1`.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod auth_support;

use std::sync::Arc;
use std::time::Duration;

use auth_support::{PASSWORD, TestApp, assert_error, builder, email, roomy, serve_state};
use chrono::{TimeZone, Utc};
use chronos::clock::{Clock, ManualClock};
use chronos::testkit::run;
use chronos_http::adapters::{RedisRateLimits, RedisRevocations};
use chronos_http::ports::{RateLimits, Revocations, UserStore, UserStoreError};
use chronos_http::state::{AppState, RateLimit, Settings};
use chronos_postgres::PgUsers;
use chronos_postgres::testing::TestDb;
use chronos_redis::testing::TestRedis;
use chronos_redis::{RedisRateLimiter, RedisRevocationList};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The backends of one test: a database, a Redis prefix (its keys deleted at the end).
struct Backends {
    db: TestDb,
    redis: TestRedis,
    prefix: String,
    clock: Arc<ManualClock>,
}

impl Backends {
    async fn new() -> Self {
        let db = TestDb::create().await;
        let redis = TestRedis::connect().await;
        let prefix = format!("{}auth", redis.prefix);
        // Half an hour into an hourly window, so windows are exact.
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 30, 0).unwrap(),
        ));
        Self {
            db,
            redis,
            prefix,
            clock,
        }
    }

    /// One API process: its own pool, Redis connection and services.
    async fn instance(&self, settings: Settings) -> TestApp {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect_with(self.db.options.clone())
            .await
            .unwrap();
        let conn = redis::aio::ConnectionManager::new(self.redis.client.clone())
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = self.clock.clone();
        let services = builder(settings)
            .await
            .users(Arc::new(PgUsers::new(pool)))
            .revocations(Arc::new(RedisRevocations::new(
                RedisRevocationList::new(conn.clone(), self.prefix.clone()),
                clock.clone(),
            )))
            .limiter(Arc::new(RedisRateLimits::new(
                RedisRateLimiter::new(conn, self.prefix.clone()),
                clock.clone(),
            )))
            .clock(clock)
            .build()
            .unwrap();
        serve_state(AppState::new(services)).await
    }
}

fn limited(user_max: u32, auth_max: u32) -> Settings {
    let mut s = roomy();
    s.user_rate_limit = RateLimit {
        max: user_max,
        window: Duration::from_secs(3600),
    };
    s.auth_rate_limit = RateLimit {
        max: auth_max,
        window: Duration::from_secs(900),
    };
    s
}

#[test]
fn two_instances_share_users_and_revocations() {
    run(async {
        let backends = Backends::new().await;
        let one = backends.instance(roomy()).await;
        let two = backends.instance(roomy()).await;

        // A user registered on one logs in on two, in another case.
        let address = email();
        let registered = one.register(&address).await;
        let logged_in = two.login(&address.to_uppercase()).await;
        assert_eq!(logged_in["user_id"], registered["user_id"]);
        assert_eq!(logged_in["user"], registered["user"]);
        let a = two
            .post_json(
                "/auth/register",
                &json!({"email": address.to_uppercase(), "password": PASSWORD}),
            )
            .await;
        assert_error(&a, StatusCode::CONFLICT, "EMAIL_EXISTS");
        let a = two
            .post_json(
                "/auth/login",
                &json!({"email": address, "password": "WrongPass1"}),
            )
            .await;
        assert_error(&a, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

        // A token from one works on two, until it is logged out on one.
        let token = registered["token"].as_str().unwrap().to_owned();
        let a = two.authed(Method::GET, "/auth/me", &token).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        assert_eq!(a.body["data"]["email"], json!(address));
        let a = one.authed(Method::POST, "/auth/logout", &token).await;
        assert_eq!(a.status, StatusCode::OK);
        for app in [&one, &two] {
            let a = app.authed(Method::GET, "/auth/me", &token).await;
            assert_error(&a, StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
            let a = app.authed(Method::GET, "/jobs", &token).await;
            assert_error(&a, StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        }

        // A refresh on two revokes the old token on one.
        let old = logged_in["token"].as_str().unwrap().to_owned();
        let a = two.authed(Method::POST, "/auth/refresh", &old).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        let new = a.body["data"]["token"].as_str().unwrap().to_owned();
        let a = one.authed(Method::GET, "/auth/me", &old).await;
        assert_error(&a, StatusCode::UNAUTHORIZED, "TOKEN_REVOKED");
        let a = one.authed(Method::GET, "/auth/me", &new).await;
        assert_eq!(a.status, StatusCode::OK);

        // Revocations live as long as the token, not longer.
        let mut conn = backends.redis.conn.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{{}}}:revoked:*", backends.prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(keys.len(), 2);
        for key in keys {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(ttl > 86_000_000 && ttl <= 86_400_000, "{ttl}");
        }
    });
}

#[test]
fn concurrent_registrations_on_two_instances_have_one_winner() {
    run(async {
        let backends = Backends::new().await;
        let one = backends.instance(roomy()).await;
        let two = backends.instance(roomy()).await;
        for _ in 0..3 {
            let address = email();
            let lower = json!({"email": address, "password": PASSWORD});
            let upper = json!({"email": address.to_uppercase(), "password": PASSWORD});
            let (a, b) = tokio::join!(
                one.post_json("/auth/register", &lower),
                two.post_json("/auth/register", &upper),
            );
            let mut statuses = [a.status.as_u16(), b.status.as_u16()];
            statuses.sort_unstable();
            assert_eq!(statuses, [201, 409], "{:?} {:?}", a.body, b.body);
        }
    });
}

#[test]
fn rate_limits_are_shared_by_the_instances() {
    run(async {
        let backends = Backends::new().await;
        let one = backends.instance(limited(4, 3)).await;
        let two = backends.instance(limited(4, 3)).await;
        let reset = Utc
            .with_ymd_and_hms(2026, 1, 1, 1, 0, 0)
            .unwrap()
            .timestamp()
            .to_string();

        // Per IP (127.0.0.1 on both): register on one, log in on two, then over.
        let address = email();
        let token = one.token(&address).await;
        two.login(&address).await;
        let a = one
            .post_json(
                "/auth/login",
                &json!({"email": address, "password": PASSWORD}),
            )
            .await;
        assert_eq!(a.header("x-ratelimit-remaining"), Some("0"));
        let a = two
            .post_json(
                "/auth/login",
                &json!({"email": address, "password": PASSWORD}),
            )
            .await;
        assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
        assert_eq!(a.header("retry-after"), Some("900"));

        // Per user: 4 an hour across both.
        let mut remaining = Vec::new();
        for app in [&one, &two, &one, &two] {
            let a = app.authed(Method::GET, "/jobs", &token).await;
            assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
            assert_eq!(a.header("x-ratelimit-limit"), Some("4"));
            assert_eq!(a.header("x-ratelimit-reset"), Some(reset.as_str()));
            remaining.push(a.header("x-ratelimit-remaining").unwrap().to_owned());
        }
        assert_eq!(remaining, ["3", "2", "1", "0"]);
        for app in [&one, &two] {
            let a = app.authed(Method::GET, "/jobs", &token).await;
            assert_error(&a, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
            assert_eq!(a.header("retry-after"), Some("1800"));
        }
        // The next window.
        backends.clock.advance(Duration::from_secs(1800));
        let a = two.authed(Method::GET, "/jobs", &token).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.header("x-ratelimit-remaining"), Some("3"));
    });
}

#[test]
fn the_adapters_directly() {
    run(async {
        let backends = Backends::new().await;
        let users = PgUsers::new(backends.db.pool.clone());
        let created = UserStore::create(&users, " Eve@Example.com ", "hash", Utc::now())
            .await
            .unwrap();
        assert_eq!(created.email, "eve@example.com");
        assert!(matches!(
            UserStore::create(&users, "EVE@example.com", "hash", Utc::now()).await,
            Err(UserStoreError::EmailExists)
        ));
        let found = UserStore::by_email(&users, "eve@EXAMPLE.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.user, created);
        assert_eq!(found.password_hash, "hash");
        assert_eq!(
            UserStore::by_id(&users, created.id).await.unwrap(),
            Some(created)
        );

        let clock: Arc<dyn Clock> = backends.clock.clone();
        let conn = backends.redis.conn.clone();
        let revocations = RedisRevocations::new(
            RedisRevocationList::new(conn.clone(), backends.prefix.clone()),
            clock.clone(),
        );
        let now = clock.now();
        revocations
            .revoke("gone", now - chrono::Duration::seconds(1))
            .await
            .unwrap();
        assert!(!revocations.is_revoked("gone").await.unwrap());
        revocations
            .revoke("alive", now + chrono::Duration::seconds(60))
            .await
            .unwrap();
        assert!(revocations.is_revoked("alive").await.unwrap());

        let limits =
            RedisRateLimits::new(RedisRateLimiter::new(conn, backends.prefix.clone()), clock);
        let hour = Duration::from_secs(3600);
        let d = limits.check("k", 1, hour).await.unwrap();
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining, d.retry_after), (1, 0, None));
        let d = limits.check("k", 1, hour).await.unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(1800));
        assert!(limits.check("k", 1, Duration::ZERO).await.is_err());
    });
}
