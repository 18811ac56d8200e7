//! `RedisRateLimiter` against a real Redis (`CHRONOS_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379/`); skipped when Redis is unreachable unless
//! `CHRONOS_REQUIRE_SERVICES=1`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on the unexpected")]

use std::time::Duration;

use chrono::{DateTime, Utc};
use chronos::testkit::{run, skip};
use chronos_redis::{LimiterError, RedisRateLimiter};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

fn redis_url() -> String {
    std::env::var("CHRONOS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
}

/// A new connection of its own (a separate "process"), or a skip.
async fn connect() -> ConnectionManager {
    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| skip("Redis", &e));
    ConnectionManager::new_with_config(client, config())
        .await
        .unwrap_or_else(|e| skip("Redis", &e))
}

fn unique_prefix() -> String {
    format!("test-limiter-{}", uuid::Uuid::new_v4())
}

/// The keys under `prefix`'s hash tag.
async fn keys_of(conn: &mut ConnectionManager, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{{{prefix}}}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

async fn cleanup(conn: &mut ConnectionManager, prefix: &str) {
    for key in keys_of(conn, prefix).await {
        let _: () = redis::cmd("DEL").arg(key).query_async(conn).await.unwrap();
    }
}

/// 2026-01-01T00:00:00Z + `secs`, a whole hour being a window boundary.
fn at(secs: i64) -> DateTime<Utc> {
    chronos::testkit::at(secs)
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn allows_exactly_the_limit_then_denies_until_the_window_ends() {
    run(async {
        let mut conn = connect().await;
        let prefix = unique_prefix();
        let limiter = RedisRateLimiter::new(conn.clone(), prefix.clone());

        // Window [00:00, 01:00), checked 10 s in.
        for i in 0..5u32 {
            let d = limiter.check("user:1", 5, MINUTE, at(10)).await.unwrap();
            assert!(d.allowed, "request {i}");
            assert_eq!(d.limit, 5);
            assert_eq!(d.remaining, 4 - i);
            assert_eq!(d.reset_at, at(60));
            assert_eq!(d.reset_epoch_secs(), at(60).timestamp());
            assert_eq!(d.retry_after, None);
            assert_eq!(d.retry_after_secs(), None);
        }
        for _ in 0..3 {
            let d = limiter.check("user:1", 5, MINUTE, at(15)).await.unwrap();
            assert!(!d.allowed);
            assert_eq!(d.limit, 5);
            assert_eq!(d.remaining, 0);
            assert_eq!(d.reset_at, at(60));
            assert_eq!(d.retry_after, Some(Duration::from_secs(45)));
            assert_eq!(d.retry_after_secs(), Some(45));
        }
        // Sub-second "now": Retry-After is rounded up.
        let d = limiter
            .check("user:1", 5, MINUTE, chronos::testkit::at_ms(59_700))
            .await
            .unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(300)));
        assert_eq!(d.retry_after_secs(), Some(1));

        cleanup(&mut conn, &prefix).await;
    });
}

#[test]
fn a_new_window_starts_from_zero() {
    run(async {
        let mut conn = connect().await;
        let prefix = unique_prefix();
        let limiter = RedisRateLimiter::new(conn.clone(), prefix.clone());

        for _ in 0..3 {
            assert!(
                limiter
                    .check("ip:10.0.0.1", 3, MINUTE, at(59))
                    .await
                    .unwrap()
                    .allowed
            );
        }
        assert!(
            !limiter
                .check("ip:10.0.0.1", 3, MINUTE, at(59))
                .await
                .unwrap()
                .allowed
        );

        // The window boundary itself belongs to the next window.
        let d = limiter
            .check("ip:10.0.0.1", 3, MINUTE, at(60))
            .await
            .unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
        assert_eq!(d.reset_at, at(120));

        // Windows are aligned to their size: 15 minutes from 00:00.
        let quarter = Duration::from_secs(15 * 60);
        let d = limiter
            .check("ip:10.0.0.1", 10, quarter, at(16 * 60 + 7))
            .await
            .unwrap();
        assert_eq!(d.reset_at, at(30 * 60));
        assert_eq!(
            d.remaining, 9,
            "another window length has a counter of its own"
        );

        cleanup(&mut conn, &prefix).await;
    });
}

#[test]
fn keys_and_prefixes_are_independent() {
    run(async {
        let mut conn = connect().await;
        let prefix = unique_prefix();
        let other_prefix = unique_prefix();
        let limiter = RedisRateLimiter::new(conn.clone(), prefix.clone());
        let other = RedisRateLimiter::new(conn.clone(), other_prefix.clone());

        assert!(
            limiter
                .check("user:a", 1, MINUTE, at(0))
                .await
                .unwrap()
                .allowed
        );
        assert!(
            !limiter
                .check("user:a", 1, MINUTE, at(0))
                .await
                .unwrap()
                .allowed
        );
        assert!(
            limiter
                .check("user:b", 1, MINUTE, at(0))
                .await
                .unwrap()
                .allowed
        );
        assert!(
            limiter
                .check("ip:::1", 1, MINUTE, at(0))
                .await
                .unwrap()
                .allowed
        );
        assert!(
            other
                .check("user:a", 1, MINUTE, at(0))
                .await
                .unwrap()
                .allowed
        );

        cleanup(&mut conn, &prefix).await;
        cleanup(&mut conn, &other_prefix).await;
    });
}

#[test]
fn a_zero_limit_denies_and_a_bad_window_is_rejected() {
    run(async {
        let mut conn = connect().await;
        let prefix = unique_prefix();
        let limiter = RedisRateLimiter::new(conn.clone(), prefix.clone());

        let d = limiter.check("user:z", 0, MINUTE, at(30)).await.unwrap();
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Some(Duration::from_secs(30)));

        for window in [
            Duration::ZERO,
            Duration::from_micros(999),
            Duration::from_secs(400 * 86_400),
        ] {
            let err = limiter.check("user:z", 1, window, at(0)).await.unwrap_err();
            assert!(matches!(err, LimiterError::InvalidWindow { .. }), "{err}");
            assert!(!err.is_unavailable());
            assert!(
                err.to_string().contains("invalid rate limit window"),
                "{err}"
            );
        }

        cleanup(&mut conn, &prefix).await;
    });
}

#[test]
fn counters_expire_after_their_window() {
    run(async {
        let mut conn = connect().await;
        let prefix = unique_prefix();
        let limiter = RedisRateLimiter::new(conn.clone(), prefix.clone());

        limiter.check("user:ttl", 10, MINUTE, at(20)).await.unwrap();
        let keys = keys_of(&mut conn, &prefix).await;
        assert_eq!(keys.len(), 1, "{keys:?}");
        let key = &keys[0];
        assert!(
            key.starts_with(&format!("{{{prefix}}}:rl:user:ttl:")),
            "{key}"
        );
        let pttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        // 40 s left in the window plus the slack.
        let max = 40_000 + RedisRateLimiter::EXPIRY_SLACK.as_millis() as i64;
        assert!(pttl > max - 5_000 && pttl <= max, "PTTL {pttl}");

        // Every counter has an expiry, whatever the window and "now" (here the
        // real clock, a 300 ms window, and a denied request after an allowed one).
        let now = Utc::now();
        let short = Duration::from_millis(300);
        assert!(
            limiter
                .check("user:short", 1, short, now)
                .await
                .unwrap()
                .allowed
        );
        assert!(
            !limiter
                .check("user:short", 1, short, now)
                .await
                .unwrap()
                .allowed
        );
        let keys = keys_of(&mut conn, &prefix).await;
        assert_eq!(keys.len(), 2, "{keys:?}");
        for key in keys {
            let pttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(pttl > 0, "{key} has PTTL {pttl}");
        }

        cleanup(&mut conn, &prefix).await;
    });
}

#[test]
fn two_processes_hammering_one_key_allow_exactly_the_limit() {
    run(async {
        let mut admin = connect().await;
        let prefix = unique_prefix();
        let a = RedisRateLimiter::new(connect().await, prefix.clone());
        let b = RedisRateLimiter::new(connect().await, prefix.clone());
        let now = at(100);

        let mut tasks = Vec::new();
        for limiter in [a, b] {
            for _ in 0..20 {
                let limiter = limiter.clone();
                tasks.push(tokio::spawn(async move {
                    let mut allowed = 0u32;
                    let mut remaining_seen = Vec::new();
                    for _ in 0..5 {
                        let d = limiter.check("shared", 50, MINUTE, now).await.unwrap();
                        if d.allowed {
                            allowed += 1;
                            remaining_seen.push(d.remaining);
                        } else {
                            assert_eq!(d.remaining, 0);
                            assert_eq!(d.retry_after, Some(Duration::from_secs(20)));
                        }
                    }
                    (allowed, remaining_seen)
                }));
            }
        }
        let mut total = 0;
        let mut remaining = Vec::new();
        for task in tasks {
            let (allowed, seen) = task.await.unwrap();
            total += allowed;
            remaining.extend(seen);
        }
        assert_eq!(total, 50, "200 attempts against a limit of 50");
        remaining.sort_unstable();
        assert_eq!(
            remaining,
            (0..50).collect::<Vec<u32>>(),
            "each count is handed out once"
        );

        cleanup(&mut admin, &prefix).await;
    });
}

#[test]
fn an_unreachable_redis_is_a_clear_error() {
    run(async {
        let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(Duration::from_secs(1)));
        let conn = ConnectionManager::new_lazy_with_config(client, config).unwrap();
        let limiter = RedisRateLimiter::new(conn, unique_prefix());

        for _ in 0..2 {
            let started = std::time::Instant::now();
            let err = limiter.check("user:1", 5, MINUTE, at(0)).await.unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(10));
            assert!(matches!(err, LimiterError::Redis { .. }), "{err:?}");
            assert!(err.is_unavailable(), "{err:?}");
            let message = err.to_string();
            assert!(
                message.starts_with("cannot check the rate limit of `user:1` in Redis: "),
                "{message}"
            );
            assert!(std::error::Error::source(&err).is_some());
            eprintln!("unreachable: {err}");
        }
    });
}

#[test]
fn a_killed_connection_is_replaced() {
    run(async {
        let mut admin = connect().await;
        let prefix = unique_prefix();
        let mut conn = connect().await;
        let limiter = RedisRateLimiter::new(conn.clone(), prefix.clone());

        let name = format!("limiter-{}", uuid::Uuid::new_v4().simple());
        let _: () = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&name)
            .query_async(&mut conn)
            .await
            .unwrap();
        let d = limiter.check("user:k", 3, MINUTE, at(0)).await.unwrap();
        assert_eq!(d.remaining, 2);

        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(client_id_named(&mut admin, &name).await)
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(killed, 1);

        // The next call may fail (the connection was dropped under it) but must not
        // panic; a later one succeeds on a new connection, and the count survived.
        match limiter.check("user:k", 3, MINUTE, at(0)).await {
            Ok(d) => assert_eq!(d.remaining, 1),
            Err(err) => {
                eprintln!("first call after the kill: {err}");
                assert!(matches!(err, LimiterError::Redis { .. }), "{err:?}");
                assert!(err.is_unavailable(), "{err:?}");
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                let d = loop {
                    match limiter.check("user:k", 3, MINUTE, at(0)).await {
                        Ok(d) => break d,
                        Err(e) if std::time::Instant::now() < deadline => {
                            eprintln!("still reconnecting: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("no reconnection: {e}"),
                    }
                };
                // Counted at most once (a call that fails after the script ran
                // may have counted).
                assert!(d.allowed && d.remaining <= 1, "{d:?}");
            }
        }
        assert!(
            client_id_named_opt(&mut admin, &name).await.is_none(),
            "old connection is gone"
        );
        let mut allowed = 0;
        while limiter
            .check("user:k", 3, MINUTE, at(0))
            .await
            .unwrap()
            .allowed
        {
            allowed += 1;
            assert!(allowed <= 1, "more than the limit allowed");
        }

        cleanup(&mut admin, &prefix).await;
    });
}

async fn client_id_named_opt(admin: &mut ConnectionManager, name: &str) -> Option<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .unwrap();
    list.lines().find_map(|line| {
        let mut fields = line.split(' ').filter_map(|f| f.split_once('='));
        let id = fields.clone().find(|(k, _)| *k == "id")?.1.to_owned();
        fields.any(|(k, v)| k == "name" && v == name).then_some(id)
    })
}

async fn client_id_named(admin: &mut ConnectionManager, name: &str) -> String {
    client_id_named_opt(admin, name)
        .await
        .unwrap_or_else(|| panic!("no client named {name}"))
}
