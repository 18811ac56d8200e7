//! The job routes inside the whole service (`app::router`): behind real
//! authentication, with every layer, as the original frontend calls them.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

use std::net::SocketAddr;
use std::time::Duration;

use chronos::{Chronos, Event};
use chronos_http::app;
use chronos_http::auth::Passwords;
use chronos_http::state::{AppState, Services};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct App {
    base: String,
    http: reqwest::Client,
}

impl App {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    async fn register(&self, email: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/auth/register",
                None,
                Some(json!({"email": email, "password": "SecurePass123!"})),
            )
            .await;
        assert_eq!(status, 201, "{body:#}");
        body["data"]["token"].as_str().unwrap().to_owned()
    }
}

async fn app() -> (App, Chronos) {
    let chronos = Chronos::builder().build().await.unwrap();
    let services = Services::builder(chronos.clone())
        .passwords(Passwords::with_params(64, 1, 1).unwrap())
        .build()
        .unwrap();
    let router = app::router(AppState::new(services));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    (
        App {
            base: format!("http://{addr}"),
            http,
        },
        chronos,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frontends_calls_work_through_the_whole_service() {
    let (app, chronos) = app().await;
    let a = app.register("a@example.com").await;
    let b = app.register("b@example.com").await;
    let a = Some(a.as_str());
    let b = Some(b.as_str());

    // Not authenticated: 401 before anything else.
    let (status, body) = app.call(Method::GET, "/jobs", None, None).await;
    assert_eq!(status, 401, "{body:#}");
    assert_eq!(body["code"], "UNAUTHORIZED");

    // An immediate job runs; its statistics show it.
    let mut events = chronos.subscribe();
    let (status, body) = app
        .call(
            Method::POST,
            "/jobs",
            a,
            Some(
                json!({"name": "now", "job_type": "one-time", "schedule_type": "immediate",
                        "payload": {"k": "v"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body:#}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["data"]["job_id"], body["data"]["id"]);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Finished(e) = events.recv().await.unwrap()
                && e.job_id.to_string() == id
            {
                return e;
            }
        }
    })
    .await
    .unwrap();
    let (status, body) = app.call(Method::GET, &format!("/jobs/{id}"), a, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["status"], "completed");
    assert_eq!(body["data"]["execution_count"], 1);
    assert_eq!(body["data"]["success_count"], 1);
    let (status, body) = app
        .call(Method::GET, &format!("/jobs/{id}/executions"), a, None)
        .await;
    assert_eq!(status, 200);
    let execution = body["data"]["executions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(body["data"]["executions"][0]["output"], json!({"k": "v"}));
    for path in [
        format!("/executions/{execution}"),
        format!("/executions/{execution}/logs"),
    ] {
        assert_eq!(app.call(Method::GET, &path, a, None).await.0, 200);
        let (status, body) = app.call(Method::GET, &path, b, None).await;
        assert_eq!(status, 404);
        assert_eq!(body["code"], "EXECUTION_NOT_FOUND");
    }

    // Bodyless POSTs with no Content-Type.
    let (_, body) = app
        .call(
            Method::POST,
            "/jobs",
            a,
            Some(
                json!({"name": "cron", "job_type": "recurring", "schedule_type": "cron",
                        "cron_expression": "0 0 1 1 *"}),
            ),
        )
        .await;
    let cron = body["data"]["id"].as_str().unwrap().to_owned();
    for (action, status, message) in [
        ("pause", 200, "Job paused successfully"),
        ("resume", 200, "Job resumed successfully"),
        ("execute", 202, "Job execution triggered"),
    ] {
        let (got, body) = app
            .call(Method::POST, &format!("/jobs/{cron}/{action}"), a, None)
            .await;
        assert_eq!(got, status, "{action}: {body:#}");
        assert_eq!(body["message"], message);
        let (got, body) = app
            .call(Method::POST, &format!("/jobs/{cron}/{action}"), b, None)
            .await;
        assert_eq!(got, 404, "{action}");
        assert_eq!(body["code"], "JOB_NOT_FOUND");
    }

    // The other routes answer through the whole stack.
    for path in ["/jobs?limit=5", "/jobs/upcoming", "/dashboard/stats"] {
        let (status, body) = app.call(Method::GET, path, a, None).await;
        assert_eq!(status, 200, "{path}: {body:#}");
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/cron/preview",
            a,
            Some(json!({"cron_expression": "@daily", "count": 2})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["next_runs"].as_array().unwrap().len(), 2);
    let (status, body) = app.call(Method::GET, "/jobs?limit=0", a, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["field"], "limit");
    let (status, body) = app
        .call(Method::PUT, &format!("/jobs/{cron}"), a, None)
        .await;
    assert_eq!(status, 405);
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    let (status, body) = app
        .call(Method::DELETE, &format!("/jobs/{cron}"), a, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"success": true, "message": "Job deleted successfully"})
    );
}
