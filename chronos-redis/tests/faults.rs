//! Faults: Redis down, restarting, or dropping the queue's connections. Calls fail
//! with clear `QueueError::Backend` errors (never a panic or a hang), and the queue
//! reconnects on its own, wake-ups included.
//!
//! The Redis server is shared with other tests, so it is neither stopped nor flushed:
//! the queue talks to it through a TCP proxy owned by the test, which can refuse
//! connections ("down"), drop them all ("restart"), and whose upstream connections the
//! test kills server-side with `CLIENT KILL ADDR`.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use chronos::clock::{Clock, SystemClock};
use chronos::model::OccurrenceKey;
use chronos::queue::{Queue, QueueEntry, QueueError};
use chronos::testkit::entry;
use chronos_redis::RedisQueue;
use chronos_redis::testing::TestRedis;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A TCP proxy to the test server.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct ProxyState {
    /// The local addresses of the proxy's connections to Redis (as `CLIENT LIST` shows them).
    upstream_locals: Vec<SocketAddr>,
    pipes: Vec<JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut p = Proxy {
            addr,
            upstream,
            state: Arc::default(),
            acceptor: None,
        };
        p.accept(listener);
        p
    }

    fn accept(&mut self, listener: TcpListener) {
        let (state, upstream) = (self.state.clone(), self.upstream);
        self.acceptor = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let mut st = state.lock().unwrap();
                st.upstream_locals.push(server.local_addr().unwrap());
                st.pipes.push(tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }));
            }
        }));
    }

    fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Stops listening and drops every connection: Redis is "down".
    fn down(&mut self) {
        if let Some(a) = self.acceptor.take() {
            a.abort();
        }
        let mut st = self.state.lock().unwrap();
        for p in st.pipes.drain(..) {
            p.abort();
        }
        st.upstream_locals.clear();
    }

    /// Listens again on the same port: Redis is back.
    async fn up(&mut self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.accept(listener);
    }

    /// Kills this proxy's connections on the server side (`CLIENT KILL ADDR`);
    /// returns how many the server closed.
    async fn kill_server_side(&self, redis: &TestRedis) -> usize {
        let locals = self.state.lock().unwrap().upstream_locals.clone();
        let mut conn = redis.conn.clone();
        let mut killed = 0;
        for a in locals {
            let r: redis::RedisResult<()> = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ADDR")
                .arg(a.to_string())
                .query_async(&mut conn)
                .await;
            if r.is_ok() {
                killed += 1;
            }
        }
        killed
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

fn upstream() -> SocketAddr {
    let url = chronos_redis::testing::redis_url();
    let info = redis::Client::open(url.as_str()).unwrap();
    match info.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port) => {
            let host = if host == "localhost" {
                "127.0.0.1"
            } else {
                host.as_str()
            };
            format!("{host}:{port}").parse().unwrap()
        }
        other => panic!("the fault tests need a TCP Redis, not {other:?}"),
    }
}

fn now_us() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn due_now(n: usize) -> Vec<QueueEntry> {
    let now = now_us();
    (0..n)
        .map(|_| entry(OccurrenceKey::scheduled(Uuid::new_v4(), now), now))
        .collect()
}

#[track_caller]
fn assert_clear(e: &QueueError, op: &str) {
    match e {
        QueueError::Backend { message, .. } => {
            assert!(
                message.starts_with("redis queue at ") && message.contains(op),
                "a clear message names the server and the operation ({op}): {message}"
            );
        }
        other => panic!("{op}: expected a backend error, got {other:?}"),
    }
}

/// Retries `f` until it succeeds (within 20 s), checking every error on the way.
async fn eventually<T, F, Fut>(op: &str, mut f: F) -> (T, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, QueueError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut errors = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(12), f()).await {
            Ok(Ok(v)) => return (v, errors),
            Ok(Err(e)) => {
                assert_clear(&e, op);
                errors += 1;
            }
            Err(_) => panic!("{op} hung for 12 s"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{op} did not recover in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_closed_port_gives_a_clear_error() {
    chronos::testkit::run(async {
        // Skip (loudly) like the others when there is no Redis at all.
        let _redis = TestRedis::connect().await;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let started = std::time::Instant::now();
        let err = RedisQueue::open(&format!("redis://127.0.0.1:{port}/"), Arc::new(SystemClock))
            .await
            .expect_err("nothing listens there");
        assert_clear(&err, "connecting");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "failed fast");
        let err = RedisQueue::open("not a url", Arc::new(SystemClock))
            .await
            .expect_err("a bad URL");
        assert!(
            err.to_string().contains("parsing the connection URL"),
            "{err}"
        );
    });
}

#[test]
fn killed_connections_reconnect_and_nothing_is_lost() {
    chronos::testkit::run(async {
        let redis = TestRedis::connect().await;
        let proxy = Proxy::start(upstream()).await;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let client = redis::Client::open(proxy.url()).unwrap();
        let q = RedisQueue::connect(client, &redis.queue_prefix("q"), clock.clone())
            .await
            .unwrap();
        // A second instance straight to Redis, to wake the first one's waiters.
        let direct = redis.queue("q", clock.clone()).await;

        let entries = due_now(100);
        assert_eq!(q.enqueue(&entries[..50]).await.unwrap(), 50);
        let first = q.reserve("w", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(first.len(), 10);

        // The server drops the queue's connections (command and subscriber) mid-run.
        let killed = proxy.kill_server_side(&redis).await;
        assert!(killed >= 2, "killed {killed} connections");
        let (added, errors) = eventually("enqueue", || q.enqueue(&entries[50..])).await;
        assert!(added == 50 || errors > 0, "added {added}");
        for r in &first {
            eventually("ack", || async {
                match q.ack(&r.lease).await {
                    // An ack whose answer was lost may have been applied: LeaseLost then.
                    Err(QueueError::LeaseLost { .. }) => Ok(()),
                    other => other,
                }
            })
            .await;
        }
        let mut got = first.iter().map(|r| r.entry.key).collect::<Vec<_>>();
        loop {
            let (batch, _) =
                eventually("reserve", || q.reserve("w", 32, Duration::from_secs(60))).await;
            if batch.is_empty() {
                break;
            }
            for r in &batch {
                eventually("ack", || q.ack(&r.lease)).await;
            }
            got.extend(batch.into_iter().map(|r| r.entry.key));
        }
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 100, "every entry delivered after the reconnect");

        // The subscriber reconnected: a waiter sleeps, and wakes on a remote enqueue.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.wait().await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished(), "wait() resolved on an empty queue");
        direct.enqueue(&due_now(1)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(3), waiter)
            .await
            .expect("the waiter woke after the subscriber reconnected")
            .unwrap()
            .unwrap();
        drop(proxy);
    });
}

#[test]
fn redis_down_then_back_gives_errors_then_recovers() {
    chronos::testkit::run(async {
        let redis = TestRedis::connect().await;
        let mut proxy = Proxy::start(upstream()).await;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let client = redis::Client::open(proxy.url()).unwrap();
        let q = RedisQueue::connect(client, &redis.queue_prefix("q"), clock.clone())
            .await
            .unwrap();
        let entries = due_now(20);
        q.enqueue(&entries).await.unwrap();

        // Down: every call fails fast with a clear error; no panic, no hang.
        proxy.down();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.wait().await })
        };
        for _ in 0..3 {
            let started = std::time::Instant::now();
            match q.reserve("w", 5, Duration::from_secs(30)).await {
                Err(e) => assert_clear(&e, "reserve"),
                Ok(r) => panic!("reserve succeeded with Redis down: {r:?}"),
            }
            match q.counts().await {
                Err(e) => assert_clear(&e, "counts"),
                Ok(c) => panic!("counts succeeded with Redis down: {c:?}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(12),
                "errors come promptly"
            );
        }
        // A waiter never hangs silently: it resolves (spuriously, or with an error).
        if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(12), waiter).await {
            assert_clear(&e, "");
        }

        // Back (a restart that kept the data: the server is shared, not flushed).
        proxy.up().await;
        let (counts, _) = eventually("counts", || q.counts()).await;
        assert_eq!(counts.total(), 20);
        let (got, _) = eventually("reserve", || q.reserve("w", 50, Duration::from_secs(30))).await;
        assert_eq!(got.len(), 20);
        for r in &got {
            eventually("ack", || q.ack(&r.lease)).await;
        }
        assert_eq!(q.counts().await.unwrap().total(), 0);
    });
}
