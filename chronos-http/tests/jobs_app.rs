//! The job routes inside the whole service, on both deployments: behind real
//! authentication and the per-user rate limit, with every layer, as the original
//! frontend calls them; what a caller without a valid token gets on every route;
//! the `X-RateLimit-*` headers and the limit itself; and that each world really runs
//! on the backends it says.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod jobs_support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use chronos_http::state::RateLimit;
use jobs_support::*;
use reqwest::Method;
use serde_json::{Value, json};

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn epoch(s: &str) -> i64 {
    s.parse::<DateTime<Utc>>().unwrap().timestamp()
}

async fn the_frontends_calls_work_through_the_whole_service(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let b = w.user().await;

    // Not authenticated: 401 before anything else.
    w.anonymous().get("/jobs").await.error(401, "UNAUTHORIZED");

    // An immediate job runs; its statistics show it.
    let mut events = w.events();
    let created = a
        .post(
            "/jobs",
            json!({"name": "now", "job_type": "one-time", "schedule_type": "immediate",
                   "payload": {"k": "v"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:#?}");
    let job = created.data().clone();
    let id = id_of(&job);
    assert_eq!(job["job_id"], job["id"]);
    assert_eq!(job["user_id"], json!(a.id));
    next_finished(&mut events, &job["id"]).await;
    let r = a.get(&format!("/jobs/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["status"], "completed");
    assert_eq!(r.data()["execution_count"], 1);
    assert_eq!(r.data()["success_count"], 1);
    let r = a.get(&format!("/jobs/{id}/executions")).await;
    assert_eq!(r.status, 200);
    let execution = id_of(&r.data()["executions"][0]);
    assert_eq!(r.data()["executions"][0]["output"], json!({"k": "v"}));
    for path in [
        format!("/executions/{execution}"),
        format!("/executions/{execution}/logs"),
    ] {
        assert_eq!(a.get(&path).await.status, 200);
        let r = b.get(&path).await;
        r.error(404, "EXECUTION_NOT_FOUND");
    }

    // Bodyless POSTs with no Content-Type.
    let cron = id_of(&a.create_cron("cron").await);
    for (action, status, message) in [
        ("pause", 200, "Job paused successfully"),
        ("resume", 200, "Job resumed successfully"),
        ("execute", 202, "Job execution triggered"),
    ] {
        let r = a.post_empty(&format!("/jobs/{cron}/{action}")).await;
        assert_eq!(r.status, status, "{action}: {r:#?}");
        assert_eq!(r.body["message"], message);
        b.post_empty(&format!("/jobs/{cron}/{action}"))
            .await
            .error(404, "JOB_NOT_FOUND");
    }

    // The other routes answer through the whole stack.
    for path in [
        "/jobs?limit=5",
        "/jobs/upcoming",
        "/dashboard/stats",
        "/dashboard/health",
    ] {
        let r = a.get(path).await;
        assert_eq!(r.status, 200, "{path}: {r:#?}");
    }
    let r = a
        .post(
            "/cron/preview",
            json!({"cron_expression": "@daily", "count": 2}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["next_runs"].as_array().unwrap().len(), 2);
    let r = a.get("/jobs?limit=0").await;
    assert_eq!(r.error(400, "VALIDATION_ERROR"), ["limit"]);
    a.call(Method::PUT, &format!("/jobs/{cron}"), None)
        .await
        .error(405, "METHOD_NOT_ALLOWED");
    let r = a.delete(&format!("/jobs/{cron}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"success": true, "message": "Job deleted successfully"})
    );
}

/// Every route of jobs, executions, the dashboard and cron, on `job` and
/// `execution`, with a body each accepts.
fn every_route(job: &str, execution: &str) -> Vec<(Method, String, Option<Value>)> {
    let cron = json!({"name": "x", "job_type": "recurring", "schedule_type": "cron",
                      "cron_expression": "0 0 1 1 *"});
    vec![
        (Method::POST, "/jobs".into(), Some(cron)),
        (Method::GET, "/jobs".into(), None),
        (Method::GET, "/jobs?status=active&limit=5".into(), None),
        (Method::GET, "/jobs/upcoming".into(), None),
        (Method::GET, format!("/jobs/{job}"), None),
        (
            Method::PATCH,
            format!("/jobs/{job}"),
            Some(json!({"name": "stolen"})),
        ),
        (Method::DELETE, format!("/jobs/{job}"), None),
        (Method::POST, format!("/jobs/{job}/pause"), None),
        (Method::POST, format!("/jobs/{job}/resume"), None),
        (Method::POST, format!("/jobs/{job}/execute"), None),
        (Method::GET, format!("/jobs/{job}/executions"), None),
        (Method::GET, format!("/executions/{execution}"), None),
        (Method::GET, format!("/executions/{execution}/logs"), None),
        (Method::GET, "/dashboard/stats".into(), None),
        (Method::GET, "/dashboard/health".into(), None),
        (
            Method::POST,
            "/cron/preview".into(),
            Some(json!({"cron_expression": "* * * * *"})),
        ),
        // Authentication comes before anything about the request itself.
        (Method::GET, "/jobs/not-a-uuid".into(), None),
        (Method::GET, "/executions/1/logs".into(), None),
        (Method::POST, "/jobs".into(), Some(json!({"name": 5}))),
        (Method::POST, "/cron/preview".into(), Some(json!({}))),
    ]
}

async fn every_route_needs_a_valid_token(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let b = w.user().await;
    let mut events = w.events();
    let job = a.create_cron("mine").await;
    let id = id_of(&job);
    let run = a.post_empty(&format!("/jobs/{id}/execute")).await;
    assert_eq!(run.status, 202);
    let execution = run.data()["execution_id"].as_str().unwrap().to_owned();
    next_finished(&mut events, &job["id"]).await;

    // A second session of A's, logged out: its token is revoked (in Redis on the
    // shared deployment), A's first one is not.
    let second = w.user_session(&a).await;
    let r = second.post_empty("/auth/logout").await;
    assert_eq!(r.status, 200, "{r:#?}");
    let revoked = second.token().to_owned();
    // A's token with B's signature.
    let (head, _) = a.token().rsplit_once('.').unwrap();
    let (_, signature) = b.token().rsplit_once('.').unwrap();
    let forged = format!("{head}.{signature}");

    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "UNAUTHORIZED"),
        (Some(String::new()), "UNAUTHORIZED"),
        (Some("Bearer".into()), "UNAUTHORIZED"),
        (
            Some("Basic dXNlcjpTZWN1cmVQYXNzMTIzIQ==".into()),
            "UNAUTHORIZED",
        ),
        (Some(a.token().to_owned()), "UNAUTHORIZED"),
        (Some("Bearer not-a-jwt".into()), "INVALID_TOKEN"),
        (Some(format!("Bearer {forged}")), "INVALID_TOKEN"),
        (Some(format!("Bearer {revoked}")), "TOKEN_REVOKED"),
    ];
    for (authorization, code) in &cases {
        let caller = a.with_authorization(authorization.as_deref());
        for (method, path, body) in every_route(&id, &execution) {
            let r = caller.call(method.clone(), &path, body).await;
            assert_eq!(r.error(401, code), Vec::<String>::new(), "{method} {path}");
            assert_eq!(r.header("x-ratelimit-limit"), None, "{method} {path}");
        }
    }

    // None of it touched A's job.
    let got = a.get(&format!("/jobs/{id}")).await;
    assert_eq!(got.data()["status"], "active");
    assert_eq!(got.data()["name"], "mine");
    assert_eq!(got.data()["updated_at"], job["updated_at"]);
    assert_eq!(got.data()["statistics"]["total_executions"], 1);
    assert_eq!(a.get("/jobs").await.data()["pagination"]["total"], 1);

    // B's valid token opens none of A's job and execution routes.
    for (method, path, body) in every_route(&id, &execution) {
        let own = path == "/jobs"
            || path.starts_with("/jobs?")
            || !(path.contains(&id) || path.contains(&execution));
        if own {
            continue;
        }
        let code = if path.starts_with("/executions") {
            "EXECUTION_NOT_FOUND"
        } else {
            "JOB_NOT_FOUND"
        };
        b.call(method.clone(), &path, body).await.error(404, code);
    }

    // A day later A's tokens have expired: 401 on every route.
    w.clock.advance(Duration::from_secs(24 * 3600));
    for (method, path, body) in every_route(&id, &execution) {
        let r = a.call(method.clone(), &path, body).await;
        r.error(401, "TOKEN_EXPIRED");
    }
    // Logging in again gives a working token.
    let again = w.user_session(&a).await;
    assert_eq!(again.get(&format!("/jobs/{id}")).await.status, 200);
}

async fn limited_routes_carry_the_rate_limit_and_stop_at_it(backend: Backend) {
    let mut settings = roomy();
    settings.user_rate_limit = RateLimit {
        max: 5,
        window: Duration::from_secs(3600),
    };
    let w = world_with(backend, settings).await;
    let a = w.user().await;
    let b = w.user().await;
    // Windows are aligned on the epoch: 10:00 to 11:00.
    let reset = epoch("2026-03-02T11:00:00Z");

    let created = a
        .post(
            "/jobs",
            json!({"name": "counted", "job_type": "recurring", "schedule_type": "cron",
                   "cron_expression": "0 0 1 1 *"}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.rate_limit(), (5, 4, reset));
    let id = id_of(created.data());
    // Errors count too.
    let answers = [
        a.get(&format!("/jobs/{id}")).await,
        a.get(&format!("/executions/{}", uuid())).await,
        a.get("/dashboard/stats").await,
        a.get("/jobs/not-a-uuid").await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [200, 404, 200, 400]);
    let remaining: Vec<u32> = answers.iter().map(|r| r.rate_limit().1).collect();
    assert_eq!(remaining, [3, 2, 1, 0]);
    assert!(
        answers
            .iter()
            .all(|r| r.rate_limit() == (5, r.rate_limit().1, reset))
    );

    // Over the limit: 429 on every limited route, with the headers and Retry-After,
    // and nothing done.
    for (method, path, body) in [
        (
            Method::POST,
            "/jobs".to_owned(),
            Some(json!({"name": "refused", "job_type": "one-time", "schedule_type": "immediate"})),
        ),
        (Method::GET, "/jobs".to_owned(), None),
        (Method::GET, "/jobs/upcoming".to_owned(), None),
        (Method::DELETE, format!("/jobs/{id}"), None),
        (Method::POST, format!("/jobs/{id}/pause"), None),
        (Method::GET, format!("/executions/{}/logs", uuid()), None),
        (Method::GET, "/dashboard/stats".to_owned(), None),
        (Method::GET, "/dashboard/health".to_owned(), None),
    ] {
        let r = a.call(method.clone(), &path, body).await;
        r.error(429, "RATE_LIMIT_EXCEEDED");
        assert_eq!(r.rate_limit(), (5, 0, reset), "{method} {path}");
        assert_eq!(r.header("retry-after"), Some("3600"), "{method} {path}");
    }
    // Routes outside the limit still answer.
    let r = a
        .post("/cron/preview", json!({"cron_expression": "@hourly"}))
        .await;
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(a.get("/auth/me").await.status, 200);
    // The limit is per user.
    let r = b.get("/jobs").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.rate_limit(), (5, 4, reset));

    // The next window.
    w.clock.advance(Duration::from_secs(3600));
    let r = a.get("/jobs").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.rate_limit(), (5, 4, reset + 3600));
    assert_eq!(
        r.data()["pagination"]["total"],
        1,
        "the refused create did nothing"
    );
    assert_eq!(
        r.data()["jobs"][0]["status"],
        "active",
        "nor the refused pause"
    );
}

async fn each_world_runs_on_the_backends_it_says(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let job = a
        .create(
            json!({"name": "later", "job_type": "one-time", "schedule_type": "scheduled",
                   "scheduled_time": "2026-03-02T12:00:00Z"}),
        )
        .await;
    let health = a.get("/dashboard/health").await;
    assert_eq!(health.status, 200, "{health:#?}");
    let services = &health.body["services"];
    let Some(shared) = &w.shared else {
        assert_eq!(backend, Backend::Memory);
        assert_eq!(services["database"]["backend"], "memory", "{health:#?}");
        return;
    };
    assert_eq!(backend, Backend::PgRedis);
    assert_eq!(services["database"]["backend"], "postgresql", "{health:#?}");
    assert_eq!(services["redis"]["status"], "healthy", "{health:#?}");

    // The user and the job are rows of the world's database.
    let (email,): (String,) = sqlx::query_as("SELECT email::text FROM users WHERE id = $1")
        .bind(a.id)
        .fetch_one(&shared.pool)
        .await
        .unwrap();
    assert_eq!(email, a.email);
    let id: uuid::Uuid = id_of(&job).parse().unwrap();
    let (name, owner): (String, uuid::Uuid) =
        sqlx::query_as("SELECT name::text, user_id FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&shared.pool)
            .await
            .unwrap();
    assert_eq!((name.as_str(), owner), ("later", a.id));

    // Its occurrence waits in the Redis queue; the rate limit counts in Redis.
    let mut conn = shared.redis.clone();
    let due: usize = redis::cmd("ZCARD")
        .arg(format!("{}:due", shared.queue_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(due, 1);
    let counters: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{}}}:rl:user:{}:*", shared.http_prefix, a.id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(counters.len(), 1, "{counters:?}");

    // A logout is recorded in Redis.
    let second = w.user_session(&a).await;
    assert_eq!(second.post_empty("/auth/logout").await.status, 200);
    let revoked: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{}}}:revoked:*", shared.http_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
}

on_both_backends!(
    the_frontends_calls_work_through_the_whole_service,
    every_route_needs_a_valid_token,
    limited_routes_carry_the_rate_limit_and_stop_at_it,
    each_world_runs_on_the_backends_it_says,
);
