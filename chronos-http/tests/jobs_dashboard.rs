//! `GET /dashboard/stats` and `POST /cron/preview` over real HTTP.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod jobs_support;

use std::time::{Duration, Instant};

use jobs_support::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn an_empty_dashboard_is_all_zeros_as_numbers(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let r = a.get("/dashboard/stats").await;
    assert_eq!(r.status, 200);
    assert_eq!(keys(&r.body), ["data", "success"]);
    assert_eq!(
        r.data(),
        &json!({
            "jobs": {"total": 0, "active": 0, "completed": 0, "paused": 0, "failed": 0,
                     "onetime": 0, "recurring": 0},
            "executions": {"total": 0, "successful": 0, "failed": 0, "success_rate": 0.0,
                           "avg_duration_seconds": 0.0, "max_duration_seconds": 0.0,
                           "min_duration_seconds": 0.0},
            "upcoming_jobs": [],
            "recent_executions": []
        })
    );
}

async fn the_dashboard_counts_the_callers_jobs_and_runs(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let other = w.user().await;
    let mut events = w.events();

    // Three runs, one after another: 1.5 s and 2.5 s successes, then a failure.
    let mut runs = Vec::new();
    for (name, handler, ms) in [
        ("first", "takes", 1500),
        ("second", "takes", 2500),
        ("third", "boom", 0),
    ] {
        let job = a
            .create(
                json!({"name": name, "job_type": "one-time", "schedule_type": "immediate",
                           "handler": handler, "payload": {"ms": ms}}),
            )
            .await;
        runs.push((job.clone(), next_finished(&mut events, &job["id"]).await));
    }
    a.create_cron("far cron").await;
    let paused = a.create_cron("paused cron").await;
    a.post_empty(&format!("/jobs/{}/pause", paused["id"].as_str().unwrap()))
        .await;
    let soon = a
        .create(
            json!({"name": "soon", "job_type": "one-time", "schedule_type": "scheduled",
                       "scheduled_time": "2026-03-02T12:00:00Z"}),
        )
        .await;
    let gone = a.create_cron("deleted").await;
    a.delete(&format!("/jobs/{}", gone["id"].as_str().unwrap()))
        .await;
    // Another user's job counts for them only.
    other.create_cron("not mine").await;

    let r = a.get("/dashboard/stats").await;
    assert_eq!(r.status, 200);
    let recent: Vec<Value> = runs
        .iter()
        .rev()
        .map(|(job, run)| {
            json!({
                "id": run.id, "job_id": job["id"], "job_name": job["name"],
                "status": run.status.as_str(),
                "execution_time": ts(run.started_at.unwrap()),
                "duration_ms": run.duration_ms.unwrap(),
            })
        })
        .collect();
    assert_eq!(
        r.data(),
        &json!({
            "jobs": {"total": 6, "active": 2, "completed": 2, "paused": 1, "failed": 1,
                     "onetime": 4, "recurring": 2},
            "executions": {"total": 3, "successful": 2, "failed": 1, "success_rate": 66.67,
                           "avg_duration_seconds": 1.33, "max_duration_seconds": 2.5,
                           "min_duration_seconds": 0.0},
            "upcoming_jobs": [{"id": soon["id"], "job_id": soon["id"], "name": "soon",
                               "next_run": "2026-03-02T12:00:00.000Z", "job_type": "one-time"}],
            "recent_executions": recent
        })
    );
    assert_eq!(
        r.data()["recent_executions"][2]["duration_ms"],
        1500,
        "durations are whole milliseconds"
    );
    assert_eq!(r.data()["recent_executions"][0]["status"], "failed");

    let r = other.get("/dashboard/stats").await;
    assert_eq!(r.data()["jobs"]["total"], 1);
    assert_eq!(r.data()["executions"]["total"], 0);
}

async fn the_dashboard_lists_at_most_ten_of_each(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let mut events = w.events();
    for i in 0..12 {
        let job = a
            .create(
                json!({"name": format!("job {i:02}"), "job_type": "one-time",
                           "schedule_type": "scheduled",
                           "scheduled_time": format!("2026-03-02T{:02}:00:00Z", 11 + i)}),
            )
            .await;
        a.post_empty(&format!("/jobs/{}/execute", job["id"].as_str().unwrap()))
            .await;
        next_finished(&mut events, &job["id"]).await;
    }
    let r = a.get("/dashboard/stats").await;
    let upcoming = r.data()["upcoming_jobs"].as_array().unwrap();
    assert_eq!(upcoming.len(), 10);
    assert_eq!(upcoming[0]["name"], "job 00");
    assert_eq!(upcoming[9]["name"], "job 09");
    let recent = r.data()["recent_executions"].as_array().unwrap();
    assert_eq!(recent.len(), 10);
    assert_eq!(recent[0]["job_name"], "job 11", "newest first");
    assert_eq!(r.data()["executions"]["total"], 12);
    assert_eq!(r.data()["executions"]["success_rate"], 100.0);
    // The jobs' own list is not capped at 10.
    assert_eq!(a.get("/jobs/upcoming").await.data()["count"], 12);
}

async fn cron_preview_lists_the_next_fire_times(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let r = a
        .post("/cron/preview", json!({"cron_expression": "*/15 * * * *"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"success": true, "data": {"next_runs": [
            "2026-03-02T10:15:00.000Z", "2026-03-02T10:30:00.000Z", "2026-03-02T10:45:00.000Z",
            "2026-03-02T11:00:00.000Z", "2026-03-02T11:15:00.000Z"
        ]}})
    );

    // Berlin's spring-forward night: 02:30 does not exist, the fixed-time job fires
    // at the jump; `after` takes an offset.
    let r = a
        .post(
            "/cron/preview",
            json!({"cron_expression": "30 2 * * *", "timezone": "Europe/Berlin",
                   "after": "2026-03-28T12:00:00+01:00", "count": 3}),
        )
        .await;
    assert_eq!(
        r.data()["next_runs"],
        json!([
            "2026-03-29T01:00:00.000Z",
            "2026-03-30T00:30:00.000Z",
            "2026-03-31T00:30:00.000Z"
        ])
    );

    let r = a
        .post(
            "/cron/preview",
            json!({"cron_expression": "* * * * * *", "count": 100, "timezone": null}),
        )
        .await;
    let runs = r.data()["next_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 100);
    assert_eq!(runs[99], "2026-03-02T10:01:40.000Z");
    let r = a
        .post(
            "/cron/preview",
            json!({"cron_expression": "@yearly", "count": 1}),
        )
        .await;
    assert_eq!(r.data()["next_runs"], json!(["2027-01-01T00:00:00.000Z"]));

    // A rare expression (29 February on a Monday) still answers, and promptly.
    let started = Instant::now();
    let r = a
        .post(
            "/cron/preview",
            json!({"cron_expression": "0 0 29 2 1", "count": 100}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["next_runs"][0], "2027-02-01T00:00:00.000Z");
    assert!(started.elapsed() < Duration::from_secs(10));
}

async fn cron_preview_errors_are_those_of_jobs(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["cron_expression"]),
        (json!({"cron_expression": null}), vec!["cron_expression"]),
        (json!({"cron_expression": 5}), vec!["cron_expression"]),
        (
            json!({"cron_expression": "* * * * *", "count": 0}),
            vec!["count"],
        ),
        (
            json!({"cron_expression": "* * * * *", "count": 101}),
            vec!["count"],
        ),
        (
            json!({"cron_expression": "* * * * *", "count": -1}),
            vec!["count"],
        ),
        (
            json!({"cron_expression": "* * * * *", "count": "5"}),
            vec!["count"],
        ),
        (
            json!({"cron_expression": "* * * * *", "count": 2.5}),
            vec!["count"],
        ),
        (
            json!({"cron_expression": "* * * * *", "count": 1e300}),
            vec!["count"],
        ),
        (
            json!({"cron_expression": "* * * * *", "after": "yesterday"}),
            vec!["after"],
        ),
        (
            json!({"cron_expression": "* * * * *", "after": 0}),
            vec!["after"],
        ),
        (
            json!({"cron_expression": "* * * * *", "timezone": 1}),
            vec!["timezone"],
        ),
        (
            json!({"cron_expression": "* * * * *", "foo": 1}),
            vec!["foo"],
        ),
        (
            json!({"count": 0, "bar": true}),
            vec!["bar", "count", "cron_expression"],
        ),
    ];
    for (body, fields) in cases {
        let r = a.post("/cron/preview", body.clone()).await;
        let mut got = r.error(400, "VALIDATION_ERROR");
        got.sort_unstable();
        assert_eq!(got, fields, "{body}");
    }
    for body in ["[]", "null", "\"* * * * *\""] {
        let r = a
            .raw(
                Method::POST,
                "/cron/preview",
                body,
                Some("application/json"),
            )
            .await;
        assert_eq!(r.error(400, "VALIDATION_ERROR"), ["body"]);
    }
    for body in ["", "{", "{\"cron_expression\": \"* * * * *\""] {
        a.raw(Method::POST, "/cron/preview", body, None)
            .await
            .error(400, "INVALID_JSON");
    }
    a.post(
        "/cron/preview",
        json!({"cron_expression": "* * * * *", "timezone": "Mars/Olympus"}),
    )
    .await
    .error(400, "INVALID_TIMEZONE");
    let r = a
        .post("/cron/preview", json!({"cron_expression": "61 * * * *"}))
        .await;
    r.error(422, "INVALID_CRON_EXPRESSION");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("minute field: 61 is out of range 0-59")
    );
    for bad in ["", "@reboot", "0 0 30 2 *", "* * * *", "1-2-3 * * * *"] {
        a.post("/cron/preview", json!({"cron_expression": bad}))
            .await
            .error(422, "INVALID_CRON_EXPRESSION");
    }
    // Past the end of time: it never fires again.
    let r = a
        .post(
            "/cron/preview",
            json!({"cron_expression": "* * * * *", "after": "9999-12-31T23:59:59Z"}),
        )
        .await;
    r.error(422, "INVALID_CRON_EXPRESSION");
}

on_both_backends!(
    an_empty_dashboard_is_all_zeros_as_numbers,
    the_dashboard_counts_the_callers_jobs_and_runs,
    the_dashboard_lists_at_most_ten_of_each,
    cron_preview_lists_the_next_fire_times,
    cron_preview_errors_are_those_of_jobs,
);
