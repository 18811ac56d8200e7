#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]
//! The application the binary serves, assembled by `wiring` in-process on a real
//! socket: the OpenAPI document lists every route of the contract and every route
//! it lists is served; health answers 503 naming a dead or hung dependency within
//! the probe timeout; the dashboard health needs a token; metrics count requests by
//! route template and executions by status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronos::{Chronos, JobSpec};
use chronos_http::config::Config;
use chronos_http::routes::system::{self, System};
use chronos_http::wiring::{self, Backends, Role, UserRecipients};
use serde_json::{Value, json};

/// Every route of the contract (API.md).
const CONTRACT: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/me"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/jobs"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/upcoming"),
    ("get", "/api/v1/jobs/{id}"),
    ("patch", "/api/v1/jobs/{id}"),
    ("delete", "/api/v1/jobs/{id}"),
    ("post", "/api/v1/jobs/{id}/pause"),
    ("post", "/api/v1/jobs/{id}/resume"),
    ("post", "/api/v1/jobs/{id}/execute"),
    ("get", "/api/v1/jobs/{id}/executions"),
    ("get", "/api/v1/executions/{id}"),
    ("get", "/api/v1/executions/{id}/logs"),
    ("get", "/api/v1/dashboard/stats"),
    ("get", "/api/v1/dashboard/health"),
    ("post", "/api/v1/cron/preview"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

/// The application of `chronos serve` on the embedded backends, served on a local
/// port; returns its base URL and the engine.
async fn serve() -> (String, Chronos) {
    let config = Config::from_vars([("RATE_LIMIT_MAX", "10000")]).unwrap();
    let backends = Backends::default();
    let users = wiring::user_store(&backends);
    let wired = wiring::build(
        &config,
        Role::Serve,
        backends,
        Arc::new(UserRecipients(users.clone())),
    )
    .await
    .unwrap();
    let services = wiring::services(&config, &wired, users).unwrap();
    let app = wiring::router(&wired, services);
    let chronos = wired.chronos.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
        drop(wired);
    });
    (format!("http://{addr}"), chronos)
}

/// Serves only the operational routes of `system`.
async fn serve_system(system: System) -> String {
    let app: axum::Router =
        system::routes(system.clone()).nest("/api/v1", system::dashboard_routes(system));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn token(base: &str) -> String {
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": format!("{}@example.com", uuid::Uuid::new_v4()), "password": "Secret123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    body["data"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_document_lists_every_route_of_the_contract() {
    let doc = serde_json::to_value(chronos_http::docs::openapi()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            assert!(
                CONTRACT.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is documented but not in the contract"
            );
            documented += 1;
        }
    }
    assert_eq!(documented, CONTRACT.len());
    for (method, path) in CONTRACT {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let responses = op["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{method} {path}");
        if path.contains("{id}") {
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "id" && p["in"] == "path"),
                "{method} {path} documents its id"
            );
        }
        if path.starts_with("/api/v1/") && !path.ends_with("/register") && !path.ends_with("/login")
        {
            assert!(op["security"].is_array(), "{method} {path} needs a token");
            assert!(
                responses.contains_key("401"),
                "{method} {path} documents 401"
            );
        }
    }
    // Bodies and errors are described.
    let create = &doc["paths"]["/api/v1/jobs"]["post"];
    assert!(create["requestBody"].is_object());
    assert!(create["responses"]["422"].is_object());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "ErrorBody",
        "ErrorCode",
        "Job",
        "CreateJob",
        "Execution",
        "Health",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let (base, chronos) = serve().await;
    let client = reqwest::Client::new();
    let token = token(&base).await;
    let id = uuid::Uuid::new_v4();
    for (method, path) in CONTRACT {
        let url = format!("{base}{}", path.replace("{id}", &id.to_string()));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = client
            .request(method.clone(), &url)
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            status != 404 || !body.contains("ROUTE_NOT_FOUND"),
            "{method} {path}: {body}"
        );
        assert_ne!(status, 500, "{method} {path}: {body}");
    }
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn dashboard_health_needs_a_token() {
    let (base, chronos) = serve().await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{base}/api/v1/dashboard/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let token = token(&base).await;
    let r = client
        .get(format!("{base}/api/v1/dashboard/health"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-ratelimit-limit"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(body["system"]["uptime_seconds"].is_number());
    assert_eq!(body["services"]["queue"]["metrics"]["total"], 0);
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_executions_by_status() {
    let (base, chronos) = serve().await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let id = uuid::Uuid::new_v4();
        client
            .get(format!("{base}/api/v1/jobs/{id}"))
            .send()
            .await
            .unwrap();
    }
    client
        .get(format!("{base}/no/such/route"))
        .send()
        .await
        .unwrap();

    let ok = chronos
        .create(JobSpec::cron("ok", "0 0 1 1 *").handler("echo"))
        .await
        .unwrap();
    let bad = chronos
        .create(
            JobSpec::cron("bad", "0 0 1 1 *")
                .handler("fail")
                .payload(json!({"fatal": true})),
        )
        .await
        .unwrap();
    for job in [ok.id, bad.id] {
        let run = chronos.execute_now(job).await.unwrap();
        chronos
            .wait_for(&run, Duration::from_secs(10))
            .await
            .unwrap();
    }
    // The events reach the metrics task asynchronously.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains(r#"chronos_job_executions_total{status="failed"} 1"#)
            || Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        text.contains(
            r#"chronos_http_requests_total{method="GET",route="/api/v1/jobs/{id}",status="401"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(
        text.contains(r#"chronos_job_executions_total{status="success"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"chronos_job_executions_total{status="failed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("chronos_job_executions_started_total 2"),
        "{text}"
    );
    assert!(
        text.contains(r#"chronos_queue_entries{state="scheduled"} 2"#),
        "{text}"
    );
    assert!(text.contains("chronos_queue_up 1"), "{text}");
    assert!(text.contains(r#"chronos_build_info{version=""#), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_names_an_unreachable_database() {
    let chronos = Chronos::builder().build().await.unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy(&format!("postgres://u:p@127.0.0.1:{port}/x"))
        .unwrap();
    let base = serve_system(
        System::builder(chronos.clone())
            .database(pool)
            .probe_timeout(Duration::from_millis(500))
            .build(),
    )
    .await;
    let started = Instant::now();
    let r = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(3));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["error"], true);
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(body["message"], "unhealthy: database");
    assert_eq!(body["services"]["database"]["status"], "unhealthy");
    assert!(body["services"]["database"]["error"].is_string());
    assert_eq!(body["services"]["queue"]["status"], "healthy");
    chronos.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_answers_503_quickly_when_the_database_hangs() {
    // A server that accepts connections and never says a word.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = hung.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let chronos = Chronos::builder().build().await.unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy(&format!("postgres://u:p@127.0.0.1:{port}/x"))
        .unwrap();
    let base = serve_system(
        System::builder(chronos.clone())
            .database(pool)
            .probe_timeout(Duration::from_millis(300))
            .build(),
    )
    .await;
    for path in ["/health", "/api/v1/dashboard/health"] {
        let started = Instant::now();
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert!(started.elapsed() < Duration::from_secs(3), "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["message"], "unhealthy: database");
        assert!(
            body["services"]["database"]["error"]
                .as_str()
                .unwrap()
                .contains("no answer within 300 ms"),
            "{body}"
        );
    }
    chronos.shutdown().await.unwrap();
}
