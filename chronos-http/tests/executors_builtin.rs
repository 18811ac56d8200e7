#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]
//! The built-in executors, run by a real engine against real local servers:
//! `http` (2xx output, 5xx retried, 404 fatal, timeout, signature, the SSRF guard
//! with every kind of refused target and a redirect to loopback), `sleep`
//! (completion and cancellation) and `fail`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use chronos::model::{Execution, ExecutionQuery, ExecutionStatus};
use chronos::{Chronos, JobSpec};
use chronos_http::config::Secret;
use chronos_http::executors::{self, HttpExecutorOptions};
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

/// What the test server saw.
#[derive(Default)]
struct Seen {
    hits: AtomicUsize,
    last: std::sync::Mutex<Option<(String, HeaderMap, String)>>,
}

/// A local server: `/ok` echoes, `/fail503`, `/missing` (404), `/slow` (5 s),
/// `/big` (10 KiB), `/redirect?to=URL`.
async fn server(addr: &str) -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route(
            "/ok",
            any(
                |State(seen): State<Arc<Seen>>,
                 method: axum::http::Method,
                 headers: HeaderMap,
                 body: String| async move {
                    seen.hits.fetch_add(1, Ordering::SeqCst);
                    *seen.last.lock().unwrap() = Some((method.to_string(), headers, body.clone()));
                    (
                        StatusCode::CREATED,
                        [("content-type", "text/plain"), ("x-request-id", "abc")],
                        format!("got {body}"),
                    )
                },
            ),
        )
        .route(
            "/fail503",
            get(|State(seen): State<Arc<Seen>>| async move {
                seen.hits.fetch_add(1, Ordering::SeqCst);
                (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance")
            }),
        )
        .route(
            "/missing",
            get(|State(seen): State<Arc<Seen>>| async move {
                seen.hits.fetch_add(1, Ordering::SeqCst);
                (StatusCode::NOT_FOUND, "no such thing")
            }),
        )
        .route(
            "/slow",
            get(|State(seen): State<Arc<Seen>>| async move {
                seen.hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/big", get(|| async { "é".repeat(5 * 1024) }))
        .route(
            "/redirect",
            get(
                |State(seen): State<Arc<Seen>>,
                 axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >| async move {
                    seen.hits.fetch_add(1, Ordering::SeqCst);
                    (StatusCode::FOUND, [("location", q["to"].clone())]).into_response()
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (local, seen)
}

async fn engine(options: HttpExecutorOptions) -> Chronos {
    executors::register(Chronos::builder(), options)
        .unwrap()
        .build()
        .await
        .unwrap()
}

fn open() -> HttpExecutorOptions {
    HttpExecutorOptions {
        allow_private_targets: true,
        ..HttpExecutorOptions::default()
    }
}

fn guarded() -> HttpExecutorOptions {
    HttpExecutorOptions::default()
}

/// Runs `handler` with `payload` once (plus `retries`), returns the first attempt
/// and the number of executions recorded right after it (a retry is recorded as a
/// queued execution when the attempt fails).
async fn run(
    chronos: &Chronos,
    handler: &str,
    payload: Value,
    retries: u32,
    timeout: Duration,
) -> (Execution, u64) {
    let job = chronos
        .create(
            JobSpec::cron("test", "0 0 1 1 *")
                .handler(handler)
                .payload(payload)
                .max_retries(retries)
                .retry_backoff(Duration::from_secs(60))
                .timeout(timeout),
        )
        .await
        .unwrap();
    let run = chronos.execute_now(job.id).await.unwrap();
    let done = chronos.wait_for(&run, WAIT).await.unwrap();
    let page = chronos
        .owned_by(Uuid::nil())
        .executions(job.id, &ExecutionQuery::default())
        .await
        .unwrap();
    (done, page.total)
}

async fn http(chronos: &Chronos, payload: Value, retries: u32) -> (Execution, u64) {
    run(chronos, "http", payload, retries, Duration::from_secs(5)).await
}

fn error(e: &Execution) -> &str {
    e.error.as_deref().unwrap_or_default()
}

#[tokio::test]
async fn http_success_returns_status_headers_and_body() {
    let (addr, seen) = server("127.0.0.1:0").await;
    let chronos = engine(open()).await;
    let (done, total) = http(
        &chronos,
        json!({"url": format!("http://{addr}/ok?q=1"), "method": "post",
               "headers": {"X-Custom": "yes"}, "body": {"hello": "world"}}),
        3,
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Success, "{:?}", done.error);
    assert_eq!(total, 1);
    let out = done.output.unwrap();
    assert_eq!(out["status"], 201);
    assert_eq!(out["headers"]["content-type"], "text/plain");
    assert_eq!(out["headers"]["x-request-id"], "abc");
    assert_eq!(out["body_excerpt"], r#"got {"hello":"world"}"#);
    assert_eq!(out["truncated"], false);
    let (method, headers, body) = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(method, "POST");
    assert_eq!(body, r#"{"hello":"world"}"#);
    assert_eq!(headers["x-custom"], "yes");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("chronos-signature").is_none());
    assert_eq!(
        headers["chronos-execution-id"],
        done.id.to_string().as_str()
    );
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_string_bodies_and_signatures() {
    let (addr, seen) = server("127.0.0.1:0").await;
    let chronos = engine(HttpExecutorOptions {
        secret: Some(Secret::new("exec-secret")),
        ..open()
    })
    .await;
    let (done, _) = http(
        &chronos,
        json!({"url": format!("http://{addr}/ok"), "method": "PUT", "body": "plain text"}),
        0,
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Success, "{:?}", done.error);
    let (method, headers, body) = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!((method.as_str(), body.as_str()), ("PUT", "plain text"));
    let ts = headers["chronos-timestamp"].to_str().unwrap();
    let sig = headers["chronos-signature"].to_str().unwrap();
    chronos_notify::verify_signature(
        "exec-secret",
        ts,
        b"plain text",
        sig,
        chrono::Utc::now(),
        Duration::from_secs(60),
    )
    .unwrap();
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_body_excerpt_is_capped_at_4_kib() {
    let (addr, _) = server("127.0.0.1:0").await;
    let chronos = engine(open()).await;
    let (done, _) = http(&chronos, json!({"url": format!("http://{addr}/big")}), 0).await;
    assert_eq!(done.status, ExecutionStatus::Success, "{:?}", done.error);
    let out = done.output.unwrap();
    let excerpt = out["body_excerpt"].as_str().unwrap();
    assert!(excerpt.len() <= 4096 + 3, "{}", excerpt.len());
    assert!(excerpt.starts_with("éé"));
    assert_eq!(out["truncated"], true);
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_5xx_is_retryable() {
    let (addr, seen) = server("127.0.0.1:0").await;
    let chronos = engine(open()).await;
    let (done, total) = http(
        &chronos,
        json!({"url": format!("http://{addr}/fail503")}),
        2,
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert!(error(&done).contains("503"), "{}", error(&done));
    assert!(
        error(&done).contains("down for maintenance"),
        "{}",
        error(&done)
    );
    assert_eq!(total, 2, "a retry is queued");
    assert_eq!(seen.hits.load(Ordering::SeqCst), 1);
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_404_is_fatal() {
    let (addr, _) = server("127.0.0.1:0").await;
    let chronos = engine(open()).await;
    let (done, total) = http(
        &chronos,
        json!({"url": format!("http://{addr}/missing")}),
        2,
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert!(error(&done).contains("404"), "{}", error(&done));
    assert_eq!(total, 1, "no retry after a 404");
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_times_out_with_the_job() {
    let (addr, seen) = server("127.0.0.1:0").await;
    let chronos = engine(open()).await;
    let started = std::time::Instant::now();
    let (done, _) = run(
        &chronos,
        "http",
        json!({"url": format!("http://{addr}/slow")}),
        0,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Timeout, "{:?}", done.error);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(seen.hits.load(Ordering::SeqCst), 1);
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_bad_payloads_are_fatal() {
    let chronos = engine(open()).await;
    for payload in [
        json!({}),
        json!({"url": "not a url"}),
        json!({"url": "ftp://example.com/x"}),
        json!({"url": "http://127.0.0.1:1/", "method": "NOT A METHOD"}),
        json!({"url": "http://127.0.0.1:1/", "headers": {"bad header": "x"}}),
        json!({"url": "http://127.0.0.1:1/", "headers": ["x"]}),
    ] {
        let (done, total) = http(&chronos, payload.clone(), 2).await;
        assert_eq!(done.status, ExecutionStatus::Failed, "{payload}");
        assert!(
            error(&done).contains("invalid http payload"),
            "{payload}: {}",
            error(&done)
        );
        assert_eq!(total, 1, "{payload}: fatal");
    }
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_connection_refused_is_retryable() {
    // A port nobody listens on: bind one, then drop it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let chronos = engine(open()).await;
    let (done, total) = http(
        &chronos,
        json!({"url": format!("http://127.0.0.1:{port}/")}),
        1,
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(total, 2, "retried: {}", error(&done));
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_guard_refuses_non_public_targets() {
    let (addr, seen) = server("127.0.0.1:0").await;
    let port = addr.port();
    let chronos = engine(guarded()).await;
    for url in [
        format!("http://127.0.0.1:{port}/ok"),
        format!("http://localhost:{port}/ok"),
        format!("http://[::1]:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        "http://10.0.0.1/".to_owned(),
        "http://192.168.1.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://0.0.0.0/".to_owned(),
        "http://[fd00::1]/".to_owned(),
    ] {
        let (done, total) = http(&chronos, json!({ "url": url }), 2).await;
        assert_eq!(done.status, ExecutionStatus::Failed, "{url}");
        assert!(
            error(&done).contains("refusing to connect"),
            "{url}: {}",
            error(&done)
        );
        assert!(error(&done).contains("ALLOW_PRIVATE_TARGETS"), "{url}");
        assert_eq!(total, 1, "{url}: refusals are fatal");
    }
    assert_eq!(seen.hits.load(Ordering::SeqCst), 0, "nothing got through");
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_guard_checks_every_redirect() {
    // The first hop is an allowed address (127.0.0.2, allowed by exception); the
    // redirect points at loopback addresses that are not.
    let (first, first_seen) = server("127.0.0.2:0").await;
    let (target, target_seen) = server("127.0.0.1:0").await;
    let chronos = engine(HttpExecutorOptions {
        allowed_addresses: vec!["127.0.0.2".parse::<IpAddr>().unwrap()],
        ..guarded()
    })
    .await;
    for to in [
        format!("http://127.0.0.1:{}/ok", target.port()),
        format!("http://localhost:{}/ok", target.port()),
        format!("http://[::1]:{}/ok", target.port()),
    ] {
        let url = format!("http://{first}/redirect?to={to}");
        let (done, total) = http(&chronos, json!({ "url": url }), 2).await;
        assert_eq!(done.status, ExecutionStatus::Failed, "{to}");
        assert!(
            error(&done).contains("refusing to connect"),
            "{to}: {}",
            error(&done)
        );
        assert_eq!(total, 1, "{to}: fatal");
    }
    assert_eq!(first_seen.hits.load(Ordering::SeqCst), 3);
    assert_eq!(target_seen.hits.load(Ordering::SeqCst), 0);

    // An allowed redirect is followed.
    let url = format!("http://{first}/redirect?to=http://{first}/ok");
    let (done, _) = http(&chronos, json!({ "url": url }), 0).await;
    assert_eq!(done.status, ExecutionStatus::Success, "{:?}", done.error);
    assert_eq!(done.output.unwrap()["status"], 201);
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn sleep_completes_and_is_cancelled_by_the_timeout() {
    let chronos = engine(guarded()).await;
    let (done, _) = run(
        &chronos,
        "sleep",
        json!({"ms": 20}),
        0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Success);
    assert_eq!(done.output.unwrap(), json!({"slept_ms": 20}));

    let started = std::time::Instant::now();
    let (done, _) = run(
        &chronos,
        "sleep",
        json!({"ms": 60_000}),
        0,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));

    let (done, total) = run(
        &chronos,
        "sleep",
        json!({"ms": "soon"}),
        2,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(total, 1, "a bad payload is fatal");
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn sleep_is_cancelled_by_shutdown() {
    let chronos = executors::register(Chronos::builder(), guarded())
        .unwrap()
        .configure(|c| c.shutdown_grace = Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let job = chronos
        .create(
            JobSpec::cron("long", "0 0 1 1 *")
                .handler("sleep")
                .payload(json!({"ms": 60_000}))
                .timeout(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    let mut events = chronos.subscribe();
    let run = chronos.execute_now(job.id).await.unwrap();
    // Wait until it runs.
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(chronos::Event::Started(e)) = events.recv().await
                && e.id == run.id
            {
                break;
            }
        }
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    chronos.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let done = chronos
        .owned_by(Uuid::nil())
        .execution(run.id)
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Cancelled);
}

#[tokio::test]
async fn fail_is_retryable_unless_fatal() {
    let chronos = engine(guarded()).await;
    let (done, total) = run(
        &chronos,
        "fail",
        json!({"message": "boom"}),
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(error(&done), "boom");
    assert_eq!(total, 2, "retried");

    let (done, total) = run(
        &chronos,
        "fail",
        json!({"message": "for good", "fatal": true}),
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(error(&done), "for good");
    assert_eq!(total, 1, "fatal");

    let (done, _) = run(&chronos, "fail", json!({}), 0, Duration::from_secs(5)).await;
    assert_eq!(error(&done), executors::fail::DEFAULT_MESSAGE);
    chronos.shutdown().await.unwrap();
}
