//! `RedisRevocationList` against a real Redis (`CHRONOS_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379/`); skipped when Redis is unreachable unless
//! `CHRONOS_REQUIRE_SERVICES=1`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on the unexpected")]

use std::time::Duration;

use chrono::Utc;
use chronos::testkit::{run, skip};
use chronos_redis::{RedisRevocationList, RevocationError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

fn redis_url() -> String {
    std::env::var("CHRONOS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A new connection of its own (a separate "process"), or a skip.
async fn connect() -> ConnectionManager {
    let client = redis::Client::open(redis_url()).unwrap_or_else(|e| skip("Redis", &e));
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    ConnectionManager::new_with_config(client, config)
        .await
        .unwrap_or_else(|e| skip("Redis", &e))
}

fn unique_prefix() -> String {
    format!("test-revocation-{}", uuid::Uuid::new_v4())
}

fn key(prefix: &str, jti: &str) -> String {
    format!("{{{prefix}}}:revoked:{jti}")
}

async fn pttl(conn: &mut ConnectionManager, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
}

async fn cleanup(conn: &mut ConnectionManager, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{prefix}}}:*"))
        .query_async(conn)
        .await
        .unwrap();
    for key in keys {
        let _: () = redis::cmd("DEL").arg(key).query_async(conn).await.unwrap();
    }
}

#[test]
fn a_revoked_token_is_seen_by_every_process() {
    run(async {
        let mut admin = connect().await;
        let prefix = unique_prefix();
        let api1 = RedisRevocationList::new(connect().await, prefix.clone());
        let api2 = RedisRevocationList::new(connect().await, prefix.clone());
        let now = Utc::now();

        assert!(!api2.is_revoked("jti-1").await.unwrap());
        assert!(
            api1.revoke("jti-1", now + chrono::Duration::minutes(15), now)
                .await
                .unwrap()
        );
        assert!(api2.is_revoked("jti-1").await.unwrap());
        assert!(api1.is_revoked("jti-1").await.unwrap());
        assert!(!api2.is_revoked("jti-2").await.unwrap(), "only that token");

        // Another prefix is another list.
        let other = RedisRevocationList::new(admin.clone(), unique_prefix());
        assert!(!other.is_revoked("jti-1").await.unwrap());

        let ttl = pttl(&mut admin, &key(&prefix, "jti-1")).await;
        assert!(ttl > 14 * 60_000 && ttl <= 15 * 60_000, "PTTL {ttl}");

        cleanup(&mut admin, &prefix).await;
    });
}

#[test]
fn an_unknown_token_is_not_revoked() {
    run(async {
        let conn = connect().await;
        let list = RedisRevocationList::new(conn, unique_prefix());
        assert!(!list.is_revoked("never-revoked").await.unwrap());
        assert!(!list.is_revoked("").await.unwrap());
    });
}

#[test]
fn a_revocation_expires_with_its_token() {
    run(async {
        let mut admin = connect().await;
        let prefix = unique_prefix();
        let list = RedisRevocationList::new(connect().await, prefix.clone());

        let now = Utc::now();
        assert!(
            list.revoke("short", now + chrono::Duration::milliseconds(200), now)
                .await
                .unwrap()
        );
        assert!(list.is_revoked("short").await.unwrap());
        let ttl = pttl(&mut admin, &key(&prefix, "short")).await;
        assert!(ttl > 0 && ttl <= 200, "PTTL {ttl}");

        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!list.is_revoked("short").await.unwrap());
        assert_eq!(
            pttl(&mut admin, &key(&prefix, "short")).await,
            -2,
            "the key is gone"
        );

        cleanup(&mut admin, &prefix).await;
    });
}

#[test]
fn the_callers_clock_sets_the_time_to_live() {
    run(async {
        let mut admin = connect().await;
        let prefix = unique_prefix();
        let list = RedisRevocationList::new(admin.clone(), prefix.clone());

        // A "now" far from the server's clock: the time left, 1 h, is what counts.
        let now = chronos::testkit::start();
        assert!(
            list.revoke("skewed", now + chrono::Duration::hours(1), now)
                .await
                .unwrap()
        );
        let ttl = pttl(&mut admin, &key(&prefix, "skewed")).await;
        assert!(ttl > 3_590_000 && ttl <= 3_600_000, "PTTL {ttl}");

        cleanup(&mut admin, &prefix).await;
    });
}

#[test]
fn an_expired_token_is_not_stored() {
    run(async {
        let mut admin = connect().await;
        let prefix = unique_prefix();
        let list = RedisRevocationList::new(admin.clone(), prefix.clone());
        let now = Utc::now();

        assert!(
            !list
                .revoke("old", now - chrono::Duration::seconds(1), now)
                .await
                .unwrap()
        );
        assert!(!list.revoke("just-now", now, now).await.unwrap());
        assert!(!list.is_revoked("old").await.unwrap());
        assert!(!list.is_revoked("just-now").await.unwrap());
        assert_eq!(pttl(&mut admin, &key(&prefix, "old")).await, -2);
        assert_eq!(pttl(&mut admin, &key(&prefix, "just-now")).await, -2);

        cleanup(&mut admin, &prefix).await;
    });
}

#[test]
fn revoking_again_never_shortens_the_revocation() {
    run(async {
        let mut admin = connect().await;
        let prefix = unique_prefix();
        let list = RedisRevocationList::new(admin.clone(), prefix.clone());
        let k = key(&prefix, "twice");
        let now = Utc::now();

        assert!(
            list.revoke("twice", now + chrono::Duration::hours(1), now)
                .await
                .unwrap()
        );
        assert!(
            list.revoke("twice", now + chrono::Duration::minutes(1), now)
                .await
                .unwrap()
        );
        let ttl = pttl(&mut admin, &k).await;
        assert!(ttl > 3_590_000, "shortened to {ttl}");

        assert!(
            list.revoke("twice", now + chrono::Duration::hours(2), now)
                .await
                .unwrap()
        );
        let ttl = pttl(&mut admin, &k).await;
        assert!(ttl > 7_190_000 && ttl <= 7_200_000, "not lengthened: {ttl}");
        assert!(list.is_revoked("twice").await.unwrap());

        cleanup(&mut admin, &prefix).await;
    });
}

#[test]
fn concurrent_revocations_from_two_processes() {
    run(async {
        let mut admin = connect().await;
        let prefix = unique_prefix();
        let api1 = RedisRevocationList::new(connect().await, prefix.clone());
        let api2 = RedisRevocationList::new(connect().await, prefix.clone());
        let now = Utc::now();
        let expires_at = now + chrono::Duration::minutes(5);

        let mut tasks = Vec::new();
        for i in 0..100 {
            let (writer, reader) = if i % 2 == 0 {
                (api1.clone(), api2.clone())
            } else {
                (api2.clone(), api1.clone())
            };
            tasks.push(tokio::spawn(async move {
                let jti = format!("jti-{}", i % 50); // every id revoked twice
                assert!(writer.revoke(&jti, expires_at, now).await.unwrap());
                assert!(reader.is_revoked(&jti).await.unwrap());
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        for i in 0..50 {
            assert!(api1.is_revoked(&format!("jti-{i}")).await.unwrap());
        }
        assert!(!api2.is_revoked("jti-50").await.unwrap());
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{{prefix}}}:*"))
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(keys.len(), 50);

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
        let list = RedisRevocationList::new(conn, unique_prefix());
        let now = Utc::now();

        let err = list
            .revoke("jti-x", now + chrono::Duration::minutes(1), now)
            .await
            .unwrap_err();
        assert!(matches!(err, RevocationError::Redis { .. }), "{err:?}");
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("cannot revoke token `jti-x` in Redis: "),
            "{err}"
        );

        let err = list.is_revoked("jti-x").await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("cannot check whether token `jti-x` is revoked in Redis: "),
            "{err}"
        );
    });
}

#[test]
fn a_killed_connection_is_replaced() {
    run(async {
        let mut admin = connect().await;
        let prefix = unique_prefix();
        let mut conn = connect().await;
        let list = RedisRevocationList::new(conn.clone(), prefix.clone());
        let now = Utc::now();
        assert!(
            list.revoke("k", now + chrono::Duration::minutes(1), now)
                .await
                .unwrap()
        );

        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut conn)
            .await
            .unwrap();
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(killed, 1);

        // The next call may fail, without panicking; a later one succeeds.
        if let Err(err) = list.is_revoked("k").await {
            eprintln!("first call after the kill: {err}");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let revoked = loop {
            match list.is_revoked("k").await {
                Ok(revoked) => break revoked,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("still reconnecting: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no reconnection: {e}"),
            }
        };
        assert!(revoked);

        cleanup(&mut admin, &prefix).await;
    });
}
