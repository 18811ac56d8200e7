//! The job and execution routes over real HTTP: bodies exactly as a client sees them,
//! a job's whole life, pause/resume/execute, updates, deletes, lists and owner
//! isolation.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod jobs_support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use chronos::model::ExecutionStatus;
use jobs_support::*;
use reqwest::Method;
use serde_json::{Value, json};

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn an_immediate_job_runs_and_its_whole_history_is_readable(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let mut events = w.events();

    let created = a
        .post(
            "/jobs",
            json!({
                "name": "Data Processing",
                "description": "Process user data",
                "job_type": "one-time",
                "schedule_type": "immediate",
                "handler": "chatty",
                "payload": {"data_source": "users", "operation": "aggregate"},
                "timeout_seconds": 300,
                "max_retries": 3
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:#?}");
    assert_eq!(keys(&created.body), ["data", "message", "success"]);
    assert_eq!(created.body["message"], "Job created successfully");
    let job = created.data().clone();
    let id = id_of(&job);
    assert_eq!(keys(&job), JOB_KEYS);
    assert_eq!(
        job,
        json!({
            "id": id, "job_id": id, "user_id": a.id,
            "name": "Data Processing", "description": "Process user data",
            "job_type": "one-time", "schedule_type": "immediate",
            "scheduled_time": null, "cron_expression": null, "timezone": "UTC",
            "handler": "chatty",
            "payload": {"data_source": "users", "operation": "aggregate"},
            "timeout_seconds": 300, "max_retries": 3, "retry_count": 0,
            "retry_backoff_ms": 60000, "status": "active",
            "next_run": "2026-03-02T10:00:00.000Z", "last_executed_at": null,
            "paused_at": null, "resumed_at": null,
            "created_at": "2026-03-02T10:00:00.000Z", "updated_at": "2026-03-02T10:00:00.000Z"
        })
    );

    let run = next_finished(&mut events, &job["id"]).await;
    assert_eq!(run.status, ExecutionStatus::Success);

    // The job, completed, with its statistics (numbers) and the frontend's aliases.
    let got = a.get(&format!("/jobs/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(keys(&got.body), ["data", "success"]);
    let detail = got.data();
    let mut expected_keys: Vec<&str> = JOB_KEYS.to_vec();
    expected_keys.extend([
        "execution_count",
        "failure_count",
        "statistics",
        "success_count",
    ]);
    expected_keys.sort_unstable();
    assert_eq!(keys(detail), expected_keys);
    assert_eq!(detail["status"], "completed");
    assert_eq!(detail["next_run"], Value::Null);
    assert_eq!(detail["last_executed_at"], "2026-03-02T10:00:00.000Z");
    assert_eq!(
        detail["statistics"],
        json!({
            "total_executions": 1, "successful_executions": 1, "failed_executions": 0,
            "average_duration_ms": 0.0, "last_execution_time": "2026-03-02T10:00:00.000Z"
        })
    );
    assert!(detail["statistics"]["average_duration_ms"].is_number());
    assert_eq!(detail["execution_count"], 1);
    assert_eq!(detail["success_count"], 1);
    assert_eq!(detail["failure_count"], 0);

    // Its executions.
    let list = a.get(&format!("/jobs/{id}/executions")).await;
    assert_eq!(list.status, 200);
    let data = list.data();
    assert_eq!(keys(data), ["executions", "pagination"]);
    assert_eq!(
        data["pagination"],
        json!({"total": 1, "page": 1, "limit": 20, "total_pages": 1})
    );
    let execution = data["executions"][0].clone();
    assert_eq!(keys(&execution), EXECUTION_KEYS);
    assert!(execution["worker"].as_str().is_some_and(|w| !w.is_empty()));
    let mut without_worker = execution.clone();
    without_worker["worker"] = Value::Null;
    assert_eq!(
        without_worker,
        json!({
            "id": run.id, "job_id": id, "job_name": "Data Processing", "status": "success",
            "scheduled_for": "2026-03-02T10:00:00.000Z",
            "execution_time": "2026-03-02T10:00:00.000Z",
            "finished_at": "2026-03-02T10:00:00.000Z",
            "duration_ms": 0, "retry_attempt": 0, "output": {"logged": 2},
            "error_message": null, "worker": null, "manual": false,
            "created_at": "2026-03-02T10:00:00.000Z"
        })
    );

    // The same execution on its own.
    let one = a.get(&format!("/executions/{}", run.id)).await;
    assert_eq!(one.status, 200);
    assert_eq!(keys(&one.body), ["data", "success"]);
    assert_eq!(one.data(), &execution);

    // Its log: what the executor wrote, in order, with metadata.
    let logs = a.get(&format!("/executions/{}/logs", run.id)).await;
    assert_eq!(logs.status, 200);
    let data = logs.data();
    assert_eq!(keys(data), ["execution_id", "logs"]);
    assert_eq!(data["execution_id"], json!(run.id));
    let entries = data["logs"].as_array().unwrap();
    for e in entries {
        assert_eq!(keys(e), ["id", "level", "message", "metadata", "timestamp"]);
        assert_timestamp(&e["timestamp"]);
        assert!(e["metadata"].is_object());
    }
    let first = entries
        .iter()
        .position(|e| e["message"] == "first line")
        .unwrap();
    let second = entries
        .iter()
        .position(|e| e["message"] == "second line")
        .unwrap();
    assert!(first < second);
    assert_eq!(entries[first]["level"], "info");
    assert_eq!(entries[first]["metadata"], json!({}));
    assert_eq!(entries[second]["level"], "warn");
    assert_eq!(entries[second]["metadata"], json!({"step": 2, "ok": true}));
}

async fn a_scheduled_job_takes_offsets_and_runs_at_its_time(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let job = a
        .create(json!({
            "name": "Weekly Report",
            "job_type": "one-time",
            "schedule_type": "scheduled",
            "scheduled_time": "2026-03-02T13:30:00+02:00",
            "payload": {"report_type": "sales"}
        }))
        .await;
    assert_eq!(job["scheduled_time"], "2026-03-02T11:30:00.000Z");
    assert_eq!(job["next_run"], "2026-03-02T11:30:00.000Z");
    assert_eq!(job["schedule_type"], "scheduled");
    assert_eq!(job["job_type"], "one-time");

    // Milliseconds survive, and the earliest possible future instant is accepted.
    let precise = a
        .create(json!({
            "name": "precise", "job_type": "one-time", "schedule_type": "scheduled",
            "scheduled_time": "2026-03-02T10:00:00.001Z"
        }))
        .await;
    assert_eq!(precise["scheduled_time"], "2026-03-02T10:00:00.001Z");

    for past in [
        "2026-03-02T10:00:00Z",
        "2026-03-02T09:59:59Z",
        "2020-01-01T00:00:00Z",
    ] {
        let r = a
            .post(
                "/jobs",
                json!({"name": "late", "job_type": "one-time", "schedule_type": "scheduled",
                       "scheduled_time": past}),
            )
            .await;
        r.error(400, "INVALID_SCHEDULED_TIME");
    }

    let mut events = w.events();
    w.clock.advance(Duration::from_secs(90 * 60));
    let run = next_finished(&mut events, &job["id"]).await;
    assert_eq!(run.scheduled_for, at("2026-03-02T11:30:00Z"));
    let got = a.get(&format!("/jobs/{}", id_of(&job))).await;
    assert_eq!(got.data()["status"], "completed");
    assert_eq!(got.data()["statistics"]["successful_executions"], 1);
}

async fn a_cron_job_is_scheduled_in_its_time_zone(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let job = a
        .create(json!({
            "name": "Daily Backup",
            "description": "Backup database daily",
            "job_type": "recurring",
            "schedule_type": "cron",
            "cron_expression": "0 9 * * *",
            "timezone": "Europe/Berlin",
            "payload": {"backup_type": "full", "retention_days": 7},
            "timeout_seconds": 600
        }))
        .await;
    assert_eq!(job["job_type"], "recurring");
    assert_eq!(job["schedule_type"], "cron");
    assert_eq!(job["cron_expression"], "0 9 * * *");
    assert_eq!(job["timezone"], "Europe/Berlin");
    assert_eq!(job["scheduled_time"], Value::Null);
    assert_eq!(job["next_run"], "2026-03-03T08:00:00.000Z");
    assert_eq!(job["timeout_seconds"], 600);

    for (expression, next) in [
        ("*/30 * * * * *", "2026-03-02T10:00:30.000Z"),
        ("@hourly", "2026-03-02T11:00:00.000Z"),
        ("0 9 * * MON-FRI", "2026-03-03T09:00:00.000Z"),
        ("0 0 L * *", "2026-03-31T00:00:00.000Z"),
    ] {
        let job = a
            .create(json!({"name": expression, "job_type": "recurring",
                           "schedule_type": "cron", "cron_expression": expression}))
            .await;
        assert_eq!(job["next_run"], next, "{expression}");
    }
}

async fn lists_filter_sort_and_page(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let tick = || w.clock.advance(Duration::from_secs(1));

    let b = a.create_cron("b-cron").await;
    tick();
    let paused = a.create_cron("a-cron").await;
    assert_eq!(
        a.post_empty(&format!("/jobs/{}/pause", id_of(&paused)))
            .await
            .status,
        200
    );
    tick();
    let scheduled = a
        .create(
            json!({"name": "c-once", "job_type": "one-time", "schedule_type": "scheduled",
                       "scheduled_time": "2026-03-05T00:00:00Z"}),
        )
        .await;
    tick();
    let mut events = w.events();
    let done = a
        .create(json!({"name": "d-once", "job_type": "one-time", "schedule_type": "immediate"}))
        .await;
    next_finished(&mut events, &done["id"]).await;
    tick();
    let deleted = a.create_cron("e-deleted").await;
    assert_eq!(
        a.delete(&format!("/jobs/{}", id_of(&deleted))).await.status,
        200
    );

    let names = |r: &Answer| -> Vec<String> {
        r.data()["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                assert_eq!(keys(j), JOB_KEYS);
                j["name"].as_str().unwrap().to_owned()
            })
            .collect()
    };

    // Defaults: newest first, page 1 of 20, deleted jobs left out.
    let all = a.get("/jobs").await;
    assert_eq!(all.status, 200);
    assert_eq!(keys(all.data()), ["jobs", "pagination"]);
    assert_eq!(names(&all), ["d-once", "c-once", "a-cron", "b-cron"]);
    assert_eq!(
        all.data()["pagination"],
        json!({"total": 4, "page": 1, "limit": 20, "total_pages": 1})
    );

    let r = a.get("/jobs?sort_by=name&sort_order=asc").await;
    assert_eq!(names(&r), ["a-cron", "b-cron", "c-once", "d-once"]);
    let r = a.get("/jobs?sort_by=name").await;
    assert_eq!(names(&r), ["d-once", "c-once", "b-cron", "a-cron"]);
    let r = a.get("/jobs?sort_by=created_at&sort_order=asc").await;
    assert_eq!(names(&r), ["b-cron", "a-cron", "c-once", "d-once"]);
    // Jobs with no next run (paused, completed) come last.
    let r = a.get("/jobs?sort_by=next_run&sort_order=asc").await;
    assert_eq!(&names(&r)[..2], ["c-once", "b-cron"]);
    let r = a.get("/jobs?sort_by=updated_at&sort_order=desc").await;
    assert_eq!(names(&r).len(), 4);

    let r = a.get("/jobs?status=paused").await;
    assert_eq!(names(&r), ["a-cron"]);
    let r = a.get("/jobs?status=completed").await;
    assert_eq!(names(&r), ["d-once"]);
    let r = a.get("/jobs?status=failed").await;
    assert_eq!(names(&r), Vec::<String>::new());
    assert_eq!(
        r.data()["pagination"],
        json!({"total": 0, "page": 1, "limit": 20, "total_pages": 0})
    );
    let r = a.get("/jobs?job_type=one-time").await;
    assert_eq!(names(&r), ["d-once", "c-once"]);
    let r = a
        .get("/jobs?status=active&job_type=recurring&sort_order=asc")
        .await;
    assert_eq!(names(&r), ["b-cron"]);
    assert_eq!(r.data()["jobs"][0]["id"], b["id"]);

    let r = a.get("/jobs?limit=3&page=2&sort_order=asc").await;
    assert_eq!(names(&r), ["d-once"]);
    assert_eq!(
        r.data()["pagination"],
        json!({"total": 4, "page": 2, "limit": 3, "total_pages": 2})
    );
    let r = a.get("/jobs?limit=3&page=7").await;
    assert_eq!(names(&r), Vec::<String>::new());
    assert_eq!(r.data()["pagination"]["page"], 7);
    let r = a.get("/jobs?limit=100&page=1").await;
    assert_eq!(r.data()["pagination"]["limit"], 100);

    // Empty values count as absent; other parameters are ignored.
    let r = a
        .get("/jobs?status=&job_type=&sort_by=&sort_order=&page=&limit=&_=123&foo=bar")
        .await;
    assert_eq!(names(&r), ["d-once", "c-once", "a-cron", "b-cron"]);
    assert_eq!(r.data()["pagination"]["limit"], 20);

    // The scheduled job is there as created.
    let r = a.get("/jobs?job_type=one-time&status=active").await;
    assert_eq!(r.data()["jobs"][0], scheduled);
}

async fn upcoming_lists_active_jobs_due_within_a_day_soonest_first(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let once = |name: &str, time: &str| {
        json!({"name": name, "job_type": "one-time", "schedule_type": "scheduled",
               "scheduled_time": time})
    };
    a.create(once("later", "2026-03-03T09:00:00Z")).await;
    a.create(once("soon", "2026-03-02T11:00:00Z")).await;
    a.create(once("too late", "2026-03-03T10:00:01Z")).await;
    a.create_cron("far cron").await;
    a.create(
        json!({"name": "cron soon", "job_type": "recurring", "schedule_type": "cron",
                    "cron_expression": "30 10 * * *"}),
    )
    .await;
    let paused = a
        .create(
            json!({"name": "paused", "job_type": "recurring", "schedule_type": "cron",
                       "cron_expression": "0 11 * * *"}),
        )
        .await;
    a.post_empty(&format!("/jobs/{}/pause", id_of(&paused)))
        .await;

    let r = a.get("/jobs/upcoming").await;
    assert_eq!(r.status, 200);
    assert_eq!(keys(r.data()), ["count", "jobs"]);
    assert_eq!(r.data()["count"], 3);
    let jobs = r.data()["jobs"].as_array().unwrap();
    let got: Vec<(&str, &str)> = jobs
        .iter()
        .map(|j| {
            assert_eq!(keys(j), JOB_KEYS);
            (j["name"].as_str().unwrap(), j["next_run"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("cron soon", "2026-03-02T10:30:00.000Z"),
            ("soon", "2026-03-02T11:00:00.000Z"),
            ("later", "2026-03-03T09:00:00.000Z"),
        ]
    );

    // Nobody else's jobs, and an empty list for a new user.
    let b = w.user().await;
    let r = b.get("/jobs/upcoming").await;
    assert_eq!(r.data(), &json!({"jobs": [], "count": 0}));
}

async fn patch_changes_fields_reschedules_and_pauses(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let job = a
        .create(
            json!({"name": "Nightly", "description": "old", "job_type": "recurring",
                       "schedule_type": "cron", "cron_expression": "0 0 * * *"}),
        )
        .await;
    let id = id_of(&job);
    let path = format!("/jobs/{id}");
    assert_eq!(job["next_run"], "2026-03-03T00:00:00.000Z");

    w.clock.advance(Duration::from_secs(1));
    let r = a
        .patch(
            &path,
            json!({"name": "Renamed", "description": "new", "payload": {"a": 1},
                   "timeout_seconds": 900, "max_retries": 5, "retry_backoff_ms": 1000,
                   "handler": "chatty"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(keys(&r.body), ["data", "message", "success"]);
    assert_eq!(r.body["message"], "Job updated successfully");
    let d = r.data();
    assert_eq!(keys(d), JOB_KEYS);
    assert_eq!(d["name"], "Renamed");
    assert_eq!(d["description"], "new");
    assert_eq!(d["payload"], json!({"a": 1}));
    assert_eq!(d["timeout_seconds"], 900);
    assert_eq!(d["max_retries"], 5);
    assert_eq!(d["retry_backoff_ms"], 1000);
    assert_eq!(d["handler"], "chatty");
    assert_eq!(d["updated_at"], "2026-03-02T10:00:01.000Z");
    assert_eq!(d["created_at"], "2026-03-02T10:00:00.000Z");
    assert_eq!(d["next_run"], "2026-03-03T00:00:00.000Z");

    // A new cron expression, then a new zone, recompute next_run.
    let r = a
        .patch(&path, json!({"cron_expression": "0 12 * * *"}))
        .await;
    assert_eq!(r.data()["next_run"], "2026-03-02T12:00:00.000Z");
    assert_eq!(r.data()["cron_expression"], "0 12 * * *");
    let r = a
        .patch(&path, json!({"timezone": "America/New_York"}))
        .await;
    assert_eq!(r.data()["timezone"], "America/New_York");
    assert_eq!(r.data()["next_run"], "2026-03-02T17:00:00.000Z");

    // null clears the description.
    let r = a.patch(&path, json!({"description": null})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["description"], Value::Null);

    // status behaves like pause and resume.
    let r = a.patch(&path, json!({"status": "paused"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["status"], "paused");
    assert_eq!(r.data()["paused_at"], "2026-03-02T10:00:01.000Z");
    assert_eq!(r.data()["next_run"], Value::Null);
    let r = a.patch(&path, json!({"status": "paused"})).await;
    assert_eq!(
        r.status, 200,
        "setting the status a job has changes nothing"
    );
    assert_eq!(r.data()["status"], "paused");
    w.clock.set(at("2026-03-02T20:00:00Z"));
    let r = a.patch(&path, json!({"status": "active"})).await;
    assert_eq!(r.data()["status"], "active");
    assert_eq!(r.data()["resumed_at"], "2026-03-02T20:00:00.000Z");
    assert_eq!(r.data()["next_run"], "2026-03-03T17:00:00.000Z");

    // The change is what GET shows.
    let got = a.get(&path).await;
    assert_eq!(got.data()["name"], "Renamed");
    assert_eq!(got.data()["timezone"], "America/New_York");

    // Errors of the job as it is.
    let once = a
        .create(
            json!({"name": "once", "job_type": "one-time", "schedule_type": "scheduled",
                       "scheduled_time": "2026-03-04T00:00:00Z"}),
        )
        .await;
    let once_path = format!("/jobs/{}", id_of(&once));
    let r = a
        .patch(&once_path, json!({"cron_expression": "* * * * *"}))
        .await;
    assert_eq!(r.error(400, "VALIDATION_ERROR"), ["cron_expression"]);
    a.patch(&once_path, json!({"status": "paused"}))
        .await
        .error(400, "INVALID_OPERATION");
    a.patch(&path, json!({"cron_expression": "0 25 * * *"}))
        .await
        .error(422, "INVALID_CRON_EXPRESSION");
    a.patch(&path, json!({"timezone": "Mars/Olympus_Mons"}))
        .await
        .error(400, "INVALID_TIMEZONE");

    let mut events = w.events();
    let done = a
        .create(json!({"name": "done", "job_type": "one-time", "schedule_type": "immediate"}))
        .await;
    next_finished(&mut events, &done["id"]).await;
    let r = a
        .patch(&format!("/jobs/{}", id_of(&done)), json!({"name": "x"}))
        .await;
    r.error(400, "INVALID_JOB_STATUS");

    a.patch(&format!("/jobs/{}", uuid()), json!({"name": "x"}))
        .await
        .error(404, "JOB_NOT_FOUND");
}

async fn patch_rejects_empty_unknown_null_and_ill_typed_fields(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let job = a.create_cron("target").await;
    let path = format!("/jobs/{}", id_of(&job));

    for (body, ct) in [
        ("", None),
        ("   \n", Some("application/json")),
        ("{}", None),
    ] {
        let r = a.raw(Method::PATCH, &path, body, ct).await;
        assert_eq!(r.error(400, "VALIDATION_ERROR"), ["body"], "{body:?}");
    }
    for body in ["{", "{\"name\": }", "{\"name\": \"x\"} trailing", "nul"] {
        a.raw(Method::PATCH, &path, body, Some("application/json"))
            .await
            .error(400, "INVALID_JSON");
    }
    let big = json!({"payload": {"blob": "x".repeat(1024 * 1024 + 1)}});
    a.patch(&path, big).await.error(413, "PAYLOAD_TOO_LARGE");
    for body in ["[]", "null", "\"name\"", "5"] {
        let r = a.raw(Method::PATCH, &path, body, None).await;
        assert_eq!(r.error(400, "VALIDATION_ERROR"), ["body"], "{body}");
    }

    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"foo": 1}), vec!["foo"]),
        (
            json!({"name": "ok", "foo": 1, "bar": null}),
            vec!["foo", "bar"],
        ),
        (
            json!({"id": "x", "job_type": "one-time", "scheduled_time": "2027-01-01T00:00:00Z"}),
            vec!["id", "job_type", "scheduled_time"],
        ),
        (json!({"name": null}), vec!["name"]),
        (
            json!({"status": null, "payload": null}),
            vec!["payload", "status"],
        ),
        (json!({"name": 5}), vec!["name"]),
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "x".repeat(256)}), vec!["name"]),
        (json!({"description": 5}), vec!["description"]),
        (json!({"status": "completed"}), vec!["status"]),
        (json!({"status": "deleted"}), vec!["status"]),
        (json!({"status": true}), vec!["status"]),
        (json!({"timeout_seconds": 0}), vec!["timeout_seconds"]),
        (json!({"timeout_seconds": 3601}), vec!["timeout_seconds"]),
        (json!({"timeout_seconds": "60"}), vec!["timeout_seconds"]),
        (json!({"max_retries": -1}), vec!["max_retries"]),
        (json!({"max_retries": 11}), vec!["max_retries"]),
        (
            json!({"retry_backoff_ms": 86_400_001}),
            vec!["retry_backoff_ms"],
        ),
        (json!({"payload": [1]}), vec!["payload"]),
        (json!({"payload": "x"}), vec!["payload"]),
        (json!({"handler": "nope"}), vec!["handler"]),
        (json!({"cron_expression": 5}), vec!["cron_expression"]),
        (json!({"timezone": ["UTC"]}), vec!["timezone"]),
        (
            json!({"name": "", "max_retries": 99, "zzz": 1}),
            vec!["max_retries", "name", "zzz"],
        ),
    ];
    for (body, fields) in cases {
        let r = a.patch(&path, body.clone()).await;
        let mut got = r.error(400, "VALIDATION_ERROR");
        got.sort_unstable();
        let mut want = fields.clone();
        want.sort_unstable();
        assert_eq!(got, want, "{body}");
    }
    let r = a.patch(&path, json!({"foo": 1, "user_id": "x"})).await;
    assert_eq!(r.field_message("foo"), "unknown field");
    assert_eq!(r.field_message("user_id"), "cannot be changed");
    let r = a.patch(&path, json!({"name": null})).await;
    assert_eq!(r.field_message("name"), "must not be null");

    // Nothing of it was applied.
    let got = a.get(&path).await;
    assert_eq!(got.data()["name"], "target");
    assert_eq!(got.data()["updated_at"], job["updated_at"]);
}

async fn pause_resume_and_execute_take_no_body(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let job = a
        .create(
            json!({"name": "hourly", "job_type": "recurring", "schedule_type": "cron",
                       "cron_expression": "0 * * * *"}),
        )
        .await;
    let id = id_of(&job);
    assert_eq!(job["next_run"], "2026-03-02T11:00:00.000Z");

    // No body, no Content-Type: what the original frontend sends.
    let r = a.post_empty(&format!("/jobs/{id}/pause")).await;
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(keys(&r.body), ["data", "message", "success"]);
    assert_eq!(r.body["message"], "Job paused successfully");
    assert_eq!(keys(r.data()), JOB_KEYS);
    assert_eq!(r.data()["status"], "paused");
    assert_eq!(r.data()["paused_at"], "2026-03-02T10:00:00.000Z");
    assert_eq!(r.data()["next_run"], Value::Null);
    assert_eq!(r.data()["job_id"], json!(id));
    let again = a.post_empty(&format!("/jobs/{id}/pause")).await;
    again.error(400, "INVALID_OPERATION");

    // Two hours pass while paused: nothing is owed.
    w.clock.set(at("2026-03-02T12:00:00Z"));

    // A Content-Type with an empty body, or a body that is not JSON: ignored.
    let r = a
        .raw(
            Method::POST,
            &format!("/jobs/{id}/resume"),
            "",
            Some("application/json"),
        )
        .await;
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(r.body["message"], "Job resumed successfully");
    assert_eq!(r.data()["status"], "active");
    assert_eq!(r.data()["resumed_at"], "2026-03-02T12:00:00.000Z");
    assert_eq!(r.data()["next_run"], "2026-03-02T13:00:00.000Z");
    assert_eq!(r.data()["paused_at"], "2026-03-02T10:00:00.000Z");
    a.raw(
        Method::POST,
        &format!("/jobs/{id}/resume"),
        "{not json",
        Some("application/json"),
    )
    .await
    .error(400, "INVALID_OPERATION");

    // Execute: 202 with exactly the documented body.
    let mut events = w.events();
    let r = a.post_empty(&format!("/jobs/{id}/execute")).await;
    assert_eq!(r.status, 202, "{r:#?}");
    let execution_id = r.body["data"]["execution_id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body,
        json!({
            "success": true,
            "message": "Job execution triggered",
            "data": {
                "jobId": id, "execution_id": execution_id, "status": "queued",
                "message": "Job queued for immediate execution"
            }
        })
    );
    let run = next_finished(&mut events, &job["id"]).await;
    assert_eq!(run.id.to_string(), execution_id);
    let e = a.get(&format!("/executions/{execution_id}")).await;
    assert_eq!(e.data()["manual"], true);
    assert_eq!(e.data()["status"], "success");
    assert_eq!(e.data()["scheduled_for"], "2026-03-02T12:00:00.000Z");
    let list = a.get(&format!("/jobs/{id}/executions")).await;
    assert_eq!(
        list.data()["pagination"]["total"],
        1,
        "nothing ran while paused"
    );

    // A paused job runs when asked to.
    a.post_empty(&format!("/jobs/{id}/pause")).await;
    let r = a
        .raw(
            Method::POST,
            &format!("/jobs/{id}/execute"),
            "{\"ignored\": true}",
            Some("application/json"),
        )
        .await;
    assert_eq!(r.status, 202);
    let run = next_finished(&mut events, &job["id"]).await;
    assert_eq!(run.status, ExecutionStatus::Success);
    assert_eq!(
        a.get(&format!("/jobs/{id}")).await.data()["status"],
        "paused"
    );

    // One-time jobs cannot be paused; active ones cannot be resumed.
    let once = a
        .create(
            json!({"name": "once", "job_type": "one-time", "schedule_type": "scheduled",
                       "scheduled_time": "2026-03-04T00:00:00Z"}),
        )
        .await;
    let r = a.post_empty(&format!("/jobs/{}/pause", id_of(&once))).await;
    r.error(400, "INVALID_OPERATION");
    assert!(r.body["message"].as_str().unwrap().contains("recurring"));
    a.post_empty(&format!("/jobs/{}/resume", id_of(&once)))
        .await
        .error(400, "INVALID_OPERATION");

    // A completed one-time job runs again and stays completed.
    let done = a
        .create(json!({"name": "done", "job_type": "one-time", "schedule_type": "immediate"}))
        .await;
    next_finished(&mut events, &done["id"]).await;
    let r = a
        .post_empty(&format!("/jobs/{}/execute", id_of(&done)))
        .await;
    assert_eq!(r.status, 202);
    next_finished(&mut events, &done["id"]).await;
    let got = a.get(&format!("/jobs/{}", id_of(&done))).await;
    assert_eq!(got.data()["status"], "completed");
    assert_eq!(got.data()["statistics"]["total_executions"], 2);

    for action in ["pause", "resume", "execute"] {
        a.post_empty(&format!("/jobs/{}/{action}", uuid()))
            .await
            .error(404, "JOB_NOT_FOUND");
    }
}

async fn failures_and_retries_show_in_the_history(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let mut events = w.events();

    // A fatal failure: no retry, the one-time job fails.
    let job = a
        .create(
            json!({"name": "explodes", "job_type": "one-time", "schedule_type": "immediate",
                       "handler": "boom"}),
        )
        .await;
    let run = next_finished(&mut events, &job["id"]).await;
    let e = a.get(&format!("/executions/{}", run.id)).await;
    assert_eq!(e.data()["status"], "failed");
    assert_eq!(e.data()["error_message"], "boom");
    assert_eq!(e.data()["output"], Value::Null);
    let got = a.get(&format!("/jobs/{}", id_of(&job))).await;
    assert_eq!(got.data()["status"], "failed");
    assert_eq!(got.data()["statistics"]["failed_executions"], 1);
    assert_eq!(got.data()["failure_count"], 1);
    assert_eq!(got.data()["success_count"], 0);
    let logs = a.get(&format!("/executions/{}/logs", run.id)).await;
    assert!(
        logs.data()["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["level"] == "error"),
        "{logs:#?}"
    );

    // A retryable failure with one retry after 1 s.
    let job = a
        .create(
            json!({"name": "flaky", "job_type": "one-time", "schedule_type": "immediate",
                       "handler": "flaky", "max_retries": 1, "retry_backoff_ms": 1000}),
        )
        .await;
    let id = id_of(&job);
    next_finished(&mut events, &job["id"]).await;
    let list = a.get(&format!("/jobs/{id}/executions")).await;
    let items = list.data()["executions"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["status"], "queued");
    assert_eq!(items[0]["retry_attempt"], 1);
    assert_eq!(items[0]["execution_time"], Value::Null);
    assert_eq!(items[1]["status"], "failed");
    assert_eq!(items[1]["retry_attempt"], 0);
    assert_eq!(items[1]["error_message"], "try again");
    let queued = a.get(&format!("/jobs/{id}/executions?status=queued")).await;
    assert_eq!(queued.data()["pagination"]["total"], 1);

    w.clock.advance(Duration::from_secs(1));
    let last = next_finished(&mut events, &job["id"]).await;
    assert_eq!(last.attempt, 1);
    let list = a.get(&format!("/jobs/{id}/executions")).await;
    let statuses: Vec<(&str, u64)> = list.data()["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["status"].as_str().unwrap(),
                e["retry_attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [("failed", 1), ("failed", 0)]);
    let got = a.get(&format!("/jobs/{id}")).await;
    assert_eq!(got.data()["status"], "failed");
    assert_eq!(got.data()["retry_count"], 1);
    assert_eq!(
        got.data()["statistics"]["total_executions"],
        2,
        "{:#}",
        got.body
    );

    // Filters and pages of executions.
    let r = a
        .get(&format!("/jobs/{id}/executions?status=failed&limit=1"))
        .await;
    assert_eq!(
        r.data()["pagination"],
        json!({"total": 2, "page": 1, "limit": 1, "total_pages": 2})
    );
    assert_eq!(r.data()["executions"][0]["retry_attempt"], 1);
    let r = a
        .get(&format!(
            "/jobs/{id}/executions?status=failed&limit=1&page=2"
        ))
        .await;
    assert_eq!(r.data()["executions"][0]["retry_attempt"], 0);
    let r = a
        .get(&format!("/jobs/{id}/executions?status=success"))
        .await;
    assert_eq!(
        r.data(),
        &json!({"executions": [], "pagination": {"total": 0, "page": 1, "limit": 20, "total_pages": 0}})
    );
    for q in [
        "status=bogus",
        "status=SUCCESS",
        "status=success'%20OR%20'1'='1",
        "limit=0",
        "limit=101",
        "limit=abc",
        "page=0",
        "page=-1",
    ] {
        let r = a.get(&format!("/jobs/{id}/executions?{q}")).await;
        let field = q.split('=').next().unwrap();
        assert_eq!(r.error(400, "VALIDATION_ERROR"), [field], "{q}");
    }
}

async fn a_deleted_job_is_gone_everywhere_but_nothing_else_is(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let mut events = w.events();
    let job = a.create_cron("to delete").await;
    let keep = a.create_cron("to keep").await;
    let id = id_of(&job);
    a.post_empty(&format!("/jobs/{id}/execute")).await;
    let run = next_finished(&mut events, &job["id"]).await;

    let r = a.delete(&format!("/jobs/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"success": true, "message": "Job deleted successfully"})
    );

    for (method, path) in [
        (Method::GET, format!("/jobs/{id}")),
        (Method::DELETE, format!("/jobs/{id}")),
        (Method::POST, format!("/jobs/{id}/pause")),
        (Method::POST, format!("/jobs/{id}/resume")),
        (Method::POST, format!("/jobs/{id}/execute")),
        (Method::GET, format!("/jobs/{id}/executions")),
    ] {
        a.call(method.clone(), &path, None)
            .await
            .error(404, "JOB_NOT_FOUND");
    }
    a.patch(&format!("/jobs/{id}"), json!({"name": "back"}))
        .await
        .error(404, "JOB_NOT_FOUND");
    a.get(&format!("/executions/{}", run.id))
        .await
        .error(404, "EXECUTION_NOT_FOUND");
    a.get(&format!("/executions/{}/logs", run.id))
        .await
        .error(404, "EXECUTION_NOT_FOUND");

    let list = a.get("/jobs").await;
    assert_eq!(list.data()["pagination"]["total"], 1);
    assert_eq!(list.data()["jobs"][0]["id"], keep["id"]);
    assert_eq!(a.get(&format!("/jobs/{}", id_of(&keep))).await.status, 200);
}

async fn another_users_jobs_and_executions_are_exactly_as_invisible_as_missing_ones(
    backend: Backend,
) {
    let w = world(backend).await;
    let a = w.user().await;
    let b = w.user().await;
    let mut events = w.events();
    let job = a.create_cron("private").await;
    let id = id_of(&job);
    a.post_empty(&format!("/jobs/{id}/execute")).await;
    let run = next_finished(&mut events, &job["id"]).await;

    let missing = uuid();
    for target in [id.clone(), missing.to_string()] {
        let mut answers = Vec::new();
        for (method, path, body) in [
            (Method::GET, format!("/jobs/{target}"), None),
            (
                Method::PATCH,
                format!("/jobs/{target}"),
                Some(json!({"name": "stolen"})),
            ),
            (
                Method::PATCH,
                format!("/jobs/{target}"),
                Some(json!({"status": "paused"})),
            ),
            (Method::DELETE, format!("/jobs/{target}"), None),
            (Method::POST, format!("/jobs/{target}/pause"), None),
            (Method::POST, format!("/jobs/{target}/resume"), None),
            (Method::POST, format!("/jobs/{target}/execute"), None),
            (Method::GET, format!("/jobs/{target}/executions"), None),
        ] {
            let r = b.call(method, &path, body).await;
            r.error(404, "JOB_NOT_FOUND");
            answers.push(r.body["message"].clone());
        }
        assert!(answers.iter().all(|m| m == "job not found"), "{answers:?}");
    }
    for target in [run.id, uuid()] {
        for path in [
            format!("/executions/{target}"),
            format!("/executions/{target}/logs"),
        ] {
            let r = b.get(&path).await;
            r.error(404, "EXECUTION_NOT_FOUND");
            assert_eq!(r.body["message"], "execution not found");
        }
    }
    let r = b.get("/jobs").await;
    assert_eq!(r.data()["pagination"]["total"], 0);
    let r = b.get("/dashboard/stats").await;
    assert_eq!(r.data()["jobs"]["total"], 0);
    assert_eq!(r.data()["executions"]["total"], 0);

    // A's job is untouched by all of it.
    let got = a.get(&format!("/jobs/{id}")).await;
    assert_eq!(got.data()["name"], "private");
    assert_eq!(got.data()["status"], "active");
    assert_eq!(got.data()["statistics"]["total_executions"], 1);
    assert_eq!(got.data()["updated_at"], job["updated_at"]);
}

async fn wrong_methods_and_bad_ids_get_the_documented_errors(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let job = a.create_cron("x").await;
    let id = id_of(&job);
    for (method, path) in [
        (Method::PUT, format!("/jobs/{id}")),
        (Method::POST, format!("/jobs/{id}")),
        (Method::DELETE, "/jobs".to_owned()),
        (Method::PATCH, "/jobs".to_owned()),
        (Method::GET, format!("/jobs/{id}/pause")),
        (Method::DELETE, format!("/jobs/{id}/execute")),
        (Method::POST, format!("/jobs/{id}/executions")),
        (Method::POST, "/jobs/upcoming".to_owned()),
        (Method::DELETE, format!("/executions/{id}")),
        (Method::POST, format!("/executions/{id}/logs")),
        (Method::POST, "/dashboard/stats".to_owned()),
        (Method::GET, "/cron/preview".to_owned()),
    ] {
        a.call(method.clone(), &path, None)
            .await
            .error(405, "METHOD_NOT_ALLOWED");
    }
    a.get(&format!("/jobs/{id}/bogus"))
        .await
        .error(404, "ROUTE_NOT_FOUND");

    for bad in [
        "not-a-uuid",
        "1",
        "00000000-0000-0000-0000-00000000000g",
        "'%20OR%20'1'='1",
        "%3Bdrop%20table%20jobs",
        &"f".repeat(2000),
    ] {
        for path in [
            format!("/jobs/{bad}"),
            format!("/jobs/{bad}/executions"),
            format!("/executions/{bad}"),
            format!("/executions/{bad}/logs"),
        ] {
            let r = a.get(&path).await;
            assert_eq!(r.error(400, "VALIDATION_ERROR"), ["id"], "{path}");
        }
        for action in ["pause", "resume", "execute"] {
            let r = a.post_empty(&format!("/jobs/{bad}/{action}")).await;
            assert_eq!(r.error(400, "VALIDATION_ERROR"), ["id"]);
        }
        let r = a.delete(&format!("/jobs/{bad}")).await;
        assert_eq!(r.error(400, "VALIDATION_ERROR"), ["id"]);
        let r = a.patch(&format!("/jobs/{bad}"), json!({"name": "x"})).await;
        assert_eq!(r.error(400, "VALIDATION_ERROR"), ["id"]);
    }
}

on_both_backends!(
    an_immediate_job_runs_and_its_whole_history_is_readable,
    a_scheduled_job_takes_offsets_and_runs_at_its_time,
    a_cron_job_is_scheduled_in_its_time_zone,
    lists_filter_sort_and_page,
    upcoming_lists_active_jobs_due_within_a_day_soonest_first,
    patch_changes_fields_reschedules_and_pauses,
    patch_rejects_empty_unknown_null_and_ill_typed_fields,
    pause_resume_and_execute_take_no_body,
    failures_and_retries_show_in_the_history,
    a_deleted_job_is_gone_everywhere_but_nothing_else_is,
    another_users_jobs_and_executions_are_exactly_as_invisible_as_missing_ones,
    wrong_methods_and_bad_ids_get_the_documented_errors,
);
