#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]
//! From configuration to running parts: the engine's tunables and the HTTP
//! settings follow the variables, the failure webhook is registered and receives a
//! signed event for a job that fails for good, failure emails look up the owner's
//! address in the user store, and the roles run what they should.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use chronos::JobSpec;
use chronos_http::config::Config;
use chronos_http::ports::{MemoryUsers, UserStore};
use chronos_http::wiring::{self, Backends, Role, UserRecipients};
use chronos_notify::Recipients;
use serde_json::{Value, json};
use uuid::Uuid;

fn config(vars: &[(&str, &str)]) -> Config {
    Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
}

fn recipients() -> Arc<dyn Recipients> {
    Arc::new(UserRecipients(Arc::new(MemoryUsers::new())))
}

#[test]
fn the_engine_and_the_http_layer_follow_the_configuration() {
    let c = config(&[
        ("WORKER_CONCURRENCY", "3"),
        ("JOB_LEASE_SECS", "12"),
        ("SAFETY_SYNC_INTERVAL_SECS", "45"),
        ("SHUTDOWN_GRACE_SECS", "7"),
        ("RATE_LIMIT_MAX", "50"),
        ("RATE_LIMIT_WINDOW_SECS", "60"),
        ("AUTH_RATE_LIMIT_MAX", "5"),
        ("AUTH_RATE_LIMIT_WINDOW_SECS", "120"),
        ("BODY_LIMIT_BYTES", "4096"),
        ("TRUST_PROXY", "true"),
        ("CORS_ORIGIN", "https://app.example.com"),
    ]);
    let e = wiring::engine_config(&c, Role::Serve);
    assert_eq!(e.concurrency, 3);
    assert_eq!(e.lease, Duration::from_secs(12));
    assert_eq!(e.sync_interval, Duration::from_secs(45));
    assert_eq!(e.shutdown_grace, Duration::from_secs(7));
    assert!(e.run_workers && e.run_sync);
    let api = wiring::engine_config(&c, Role::Api);
    assert!(!api.run_workers && !api.run_sync);
    let worker = wiring::engine_config(&c, Role::Worker);
    assert!(worker.run_workers && worker.run_sync);

    let s = wiring::settings(&c);
    assert_eq!(s.user_rate_limit.max, 50);
    assert_eq!(s.user_rate_limit.window, Duration::from_secs(60));
    assert_eq!(s.auth_rate_limit.max, 5);
    assert_eq!(s.auth_rate_limit.window, Duration::from_secs(120));
    assert_eq!(s.body_limit, 4096);
    assert!(s.trust_proxy);
    assert_eq!(s.cors_origin, c.cors_origin);

    let h = wiring::http_executor_options(&config(&[
        ("ALLOW_PRIVATE_TARGETS", "true"),
        ("HTTP_EXECUTOR_SECRET", "s"),
    ]));
    assert!(h.allow_private_targets);
    assert_eq!(h.secret.unwrap().expose(), "s");

    assert!(wiring::smtp_config(&config(&[])).is_none());
    let smtp = wiring::smtp_config(&config(&[
        ("SMTP_HOST", "mail.example.com"),
        ("SMTP_FROM", "Chronos <c@example.com>"),
        ("SMTP_USERNAME", "u"),
        ("SMTP_PASSWORD", "p"),
        ("PUBLIC_URL", "https://chronos.example.com"),
    ]))
    .unwrap();
    assert_eq!((smtp.host.as_str(), smtp.port), ("mail.example.com", 587));
    assert_eq!(smtp.password.as_deref(), Some("p"));
    assert_eq!(
        smtp.logs_url.as_deref(),
        Some("https://chronos.example.com")
    );
}

#[tokio::test]
async fn failure_emails_go_to_the_owner() {
    let users = Arc::new(MemoryUsers::new());
    let user = users
        .create("owner@example.com", "hash", chrono::Utc::now())
        .await
        .unwrap();
    let r = UserRecipients(users);
    assert_eq!(
        r.email_of(user.id).await.unwrap().as_deref(),
        Some("owner@example.com")
    );
    assert_eq!(r.email_of(Uuid::new_v4()).await.unwrap(), None);
}

#[tokio::test]
async fn smtp_configuration_registers_the_email_notifier() {
    // The SMTP client connects on the first send: building needs no server.
    let c = config(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", "2525"),
        ("SMTP_TLS", "none"),
        ("SMTP_FROM", "Chronos <chronos@example.com>"),
    ]);
    let wired = wiring::build(&c, Role::Serve, Backends::default(), recipients())
        .await
        .unwrap();
    wired.shutdown().await.unwrap();
    // A setting the notifier refuses surfaces when wiring, naming the channel.
    let c = config(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_FROM", "not an <address@"),
    ]);
    let e = wiring::build(&c, Role::Serve, Backends::default(), recipients())
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("email notifier:"), "{e}");
}

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

#[tokio::test]
async fn a_job_that_fails_for_good_reaches_the_webhook() {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(r): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    r.lock().unwrap().push((headers, body));
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let c = config(&[
        ("WEBHOOK_URL", &format!("http://{addr}/hook")),
        ("WEBHOOK_SECRET", "hook-secret"),
    ]);
    let wired = wiring::build(&c, Role::Serve, Backends::default(), recipients())
        .await
        .unwrap();
    let job = wired
        .chronos
        .create(
            JobSpec::cron("doomed", "0 0 1 1 *")
                .handler("fail")
                .payload(json!({"message": "broken for good", "fatal": true})),
        )
        .await
        .unwrap();
    let run = wired.chronos.execute_now(job.id).await.unwrap();
    wired
        .chronos
        .wait_for(&run, Duration::from_secs(10))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no webhook call");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (headers, body) = received.lock().unwrap()[0].clone();
    chronos_notify::verify_signature(
        "hook-secret",
        headers["chronos-timestamp"].to_str().unwrap(),
        &body,
        headers["chronos-signature"].to_str().unwrap(),
        chrono::Utc::now(),
        Duration::from_secs(60),
    )
    .unwrap();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "job.failed");
    assert_eq!(event["job"]["id"], job.id.to_string());
    assert_eq!(event["execution"]["error"], "broken for good");
    wired.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_embedding_application_registers_its_own_executors() {
    let wired = wiring::build_with(
        &config(&[]),
        Role::Serve,
        Backends::default(),
        recipients(),
        |builder| {
            builder.executor("invoice", |ctx: chronos::executor::JobContext| async move {
                Ok(serde_json::json!({ "invoiced": ctx.payload()["customer"] }))
            })
        },
    )
    .await
    .unwrap();
    assert!(wired.chronos.has_executor("invoice") && wired.chronos.has_executor("http"));
    let job = wired
        .chronos
        .create(
            JobSpec::immediate("bill acme")
                .handler("invoice")
                .payload(serde_json::json!({ "customer": "acme" })),
        )
        .await
        .unwrap();
    let run = wired.chronos.execute_now(job.id).await.unwrap();
    let done = wired
        .chronos
        .wait_for(&run, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(done.output, Some(serde_json::json!({ "invoiced": "acme" })));
    // A name the built-ins use already fails the build.
    let clash = wiring::build_with(
        &config(&[]),
        Role::Serve,
        Backends::default(),
        recipients(),
        |builder| {
            builder.executor("http", |_ctx: chronos::executor::JobContext| async move {
                Ok(serde_json::Value::Null)
            })
        },
    )
    .await;
    assert!(clash.is_err());
    wired.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_api_process_runs_no_workers() {
    let wired = wiring::build(&config(&[]), Role::Api, Backends::default(), recipients())
        .await
        .unwrap();
    assert!(!wired.chronos.config().run_workers);
    let job = wired
        .chronos
        .create(JobSpec::cron("idle", "* * * * * *"))
        .await
        .unwrap();
    let run = wired.chronos.execute_now(job.id).await.unwrap();
    // Nobody takes it.
    assert!(
        wired
            .chronos
            .wait_for(&run, Duration::from_millis(300))
            .await
            .is_err()
    );
    wired.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_services_are_built_from_the_configuration() {
    let c = config(&[
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("JWT_EXPIRES_IN", "600"),
    ]);
    let backends = Backends::default();
    let users = wiring::user_store(&backends);
    let wired = wiring::build(&c, Role::Serve, backends, recipients())
        .await
        .unwrap();
    let services = wiring::services(&c, &wired, users).unwrap();
    assert_eq!(services.tokens.ttl(), Duration::from_secs(600));
    let issued = services
        .tokens
        .issue(Uuid::new_v4(), "a@example.com")
        .unwrap();
    // Another process with the same secret accepts the token.
    let other = wiring::services(&c, &wired, Arc::new(MemoryUsers::new())).unwrap();
    other.tokens.verify(&issued.token).unwrap();
    wired.shutdown().await.unwrap();
}
