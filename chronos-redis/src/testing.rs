//! Test helpers (feature `testing`): a Redis connection and a unique key prefix per
//! test, whose keys are deleted when the helper is dropped.
//!
//! The server is `CHRONOS_REDIS_URL` (default `redis://127.0.0.1:6379/`). When it is
//! unreachable, [`TestRedis::connect`] skips the test loudly with
//! [`chronos::testkit::skip`] (a failure when `CHRONOS_REQUIRE_SERVICES=1`), so call
//! it inside [`chronos::testkit::run`] from a plain `#[test]`:
//!
//! ```no_run
//! # use chronos_redis::testing::TestRedis;
//! #[test]
//! fn my_test() {
//!     chronos::testkit::run(async {
//!         let redis = TestRedis::connect().await;
//!         let key = redis.key("counter");
//!         // ... use redis.conn / redis.client with keys under redis.prefix
//!     });
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use chronos::clock::Clock;
use redis::aio::ConnectionManager;

use crate::RedisQueue;

/// The environment variable naming the test server.
pub const REDIS_URL_VAR: &str = "CHRONOS_REDIS_URL";

/// The test server's URL: `CHRONOS_REDIS_URL`, or `redis://127.0.0.1:6379/`.
pub fn redis_url() -> String {
    std::env::var(REDIS_URL_VAR).unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A connection and a unique key prefix for one test; deletes every key under the
/// prefix when dropped (SCAN + DEL of `prefix*` and of the hash-tagged `{prefix*`
/// that the rate limiter and revocation list use).
pub struct TestRedis {
    /// A client for the test server.
    pub client: redis::Client,
    /// A managed connection to it.
    pub conn: ConnectionManager,
    /// This test's key prefix (`chronos-test:<uuid>:`); every key the test makes
    /// should start with it.
    pub prefix: String,
}

impl std::fmt::Debug for TestRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRedis")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl TestRedis {
    /// Connects to the test server with a fresh prefix, or skips the test (see the
    /// [module docs](self)).
    pub async fn connect() -> TestRedis {
        let url = redis_url();
        let client = match redis::Client::open(url.as_str()) {
            Ok(c) => c,
            Err(e) => chronos::testkit::skip("Redis", &format!("{url}: {e}")),
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let conn = match tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => chronos::testkit::skip("Redis", &format!("{url}: {e}")),
            Err(_) => chronos::testkit::skip("Redis", &format!("{url}: connect timed out")),
        };
        TestRedis {
            client,
            conn,
            prefix: format!("chronos-test:{}:", uuid::Uuid::new_v4().simple()),
        }
    }

    /// `prefix` + `suffix`.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// A queue prefix under this test's prefix, with a hash tag: `<prefix>{<name>}`.
    pub fn queue_prefix(&self, name: &str) -> String {
        format!("{}{{{name}}}", self.prefix)
    }

    /// A [`RedisQueue`] named `name` under this test's prefix, telling time by `clock`.
    ///
    /// # Panics
    /// When the queue cannot connect.
    pub async fn queue(&self, name: &str, clock: Arc<dyn Clock>) -> RedisQueue {
        match RedisQueue::connect(self.client.clone(), &self.queue_prefix(name), clock).await {
            Ok(q) => q,
            Err(e) => panic!("cannot open a RedisQueue on the test server: {e}"),
        }
    }

    /// The globs of this test's keys: `prefix*`, and `{prefix*` for hash-tagged ones
    /// (`{prefix}:…`, `{prefix:http}:…`).
    fn patterns(&self) -> [String; 2] {
        let stem = self.prefix.trim_end_matches(':');
        [format!("{}*", self.prefix), format!("{{{stem}*")]
    }

    /// Deletes every key of this test now; returns how many were deleted.
    pub async fn clean(&self) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let mut deleted = 0;
        for pattern in self.patterns() {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    let n: usize = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
                    deleted += n;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(deleted)
    }

    fn clean_blocking(&self) -> redis::RedisResult<()> {
        let mut conn = self
            .client
            .get_connection_with_timeout(Duration::from_secs(2))?;
        for pattern in self.patterns() {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(&mut conn)?;
                if !keys.is_empty() {
                    let _: usize = redis::cmd("DEL").arg(&keys).query(&mut conn)?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Err(e) = self.clean_blocking() {
            eprintln!(
                "TestRedis: could not delete keys under {}: {e}",
                self.prefix
            );
        }
    }
}
