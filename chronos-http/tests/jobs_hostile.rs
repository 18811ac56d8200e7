//! Hostile and careless input to `POST /jobs` and `GET /jobs`: every mistake is the
//! documented error naming its field, never a 500, and odd but valid input is taken
//! as it is.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod jobs_support;

use jobs_support::*;
use reqwest::Method;
use serde_json::{Value, json};

fn immediate() -> Value {
    json!({"name": "x", "job_type": "one-time", "schedule_type": "immediate"})
}

fn cron() -> Value {
    json!({"name": "x", "job_type": "recurring", "schedule_type": "cron",
           "cron_expression": "0 0 * * *"})
}

fn scheduled() -> Value {
    json!({"name": "x", "job_type": "one-time", "schedule_type": "scheduled",
           "scheduled_time": "2026-03-03T00:00:00Z"})
}

/// `base` with `extra`'s fields set (a `null` in `extra` removes the field).
fn with(base: Value, extra: Value) -> Value {
    let mut base = base.as_object().unwrap().clone();
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            base.remove(k);
        } else {
            base.insert(k.clone(), v.clone());
        }
    }
    Value::Object(base)
}

async fn create_names_every_invalid_field(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let huge = "99999999999999999999999999";
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["job_type", "name", "schedule_type"]),
        (
            with(immediate(), json!({"foo": 1, "Bar": {"x": 1}})),
            vec!["Bar", "foo"],
        ),
        (
            with(immediate(), json!({"id": "x", "status": "paused"})),
            vec!["id", "status"],
        ),
        (with(immediate(), json!({"name": 5})), vec!["name"]),
        (with(immediate(), json!({"name": ["x"]})), vec!["name"]),
        (
            with(immediate(), json!({"name": "nul\u{0000}"})),
            vec!["name"],
        ),
        (
            with(immediate(), json!({"description": "\u{0000}"})),
            vec!["description"],
        ),
        (
            with(immediate(), json!({"payload": {"k": ["\u{0000}"]}})),
            vec!["payload"],
        ),
        (
            with(immediate(), json!({"payload": {"\u{0000}": 1}})),
            vec!["payload"],
        ),
        (with(immediate(), json!({"name": ""})), vec!["name"]),
        (with(immediate(), json!({"name": "   "})), vec!["name"]),
        (
            with(immediate(), json!({"name": "n".repeat(256)})),
            vec!["name"],
        ),
        (
            with(immediate(), json!({"description": "d".repeat(1001)})),
            vec!["description"],
        ),
        (
            with(immediate(), json!({"description": 1})),
            vec!["description"],
        ),
        (
            with(immediate(), json!({"job_type": "ONE-TIME"})),
            vec!["job_type"],
        ),
        (with(immediate(), json!({"job_type": 1})), vec!["job_type"]),
        (
            with(immediate(), json!({"job_type": null})),
            vec!["job_type"],
        ),
        (
            with(immediate(), json!({"schedule_type": "daily"})),
            vec!["schedule_type"],
        ),
        (
            with(immediate(), json!({"schedule_type": null})),
            vec!["schedule_type"],
        ),
        (
            with(cron(), json!({"job_type": "one-time"})),
            vec!["schedule_type"],
        ),
        (
            with(immediate(), json!({"job_type": "recurring"})),
            vec!["schedule_type"],
        ),
        (
            with(scheduled(), json!({"job_type": "recurring"})),
            vec!["schedule_type"],
        ),
        (
            with(scheduled(), json!({"scheduled_time": null})),
            vec!["scheduled_time"],
        ),
        (
            with(cron(), json!({"cron_expression": null})),
            vec!["cron_expression"],
        ),
        (
            with(immediate(), json!({"cron_expression": "* * * * *"})),
            vec!["cron_expression"],
        ),
        (
            with(
                immediate(),
                json!({"scheduled_time": "2026-03-03T00:00:00Z"}),
            ),
            vec!["scheduled_time"],
        ),
        (
            with(cron(), json!({"scheduled_time": "2026-03-03T00:00:00Z"})),
            vec!["scheduled_time"],
        ),
        (
            with(scheduled(), json!({"cron_expression": "* * * * *"})),
            vec!["cron_expression"],
        ),
        (
            with(
                immediate(),
                json!({"scheduled_time": "tomorrow", "cron_expression": 5}),
            ),
            vec!["cron_expression", "scheduled_time"],
        ),
        (
            with(scheduled(), json!({"scheduled_time": "tomorrow"})),
            vec!["scheduled_time"],
        ),
        (
            with(
                scheduled(),
                json!({"scheduled_time": "2026-03-03T00:00:00"}),
            ),
            vec!["scheduled_time"],
        ),
        (
            with(scheduled(), json!({"scheduled_time": "2026-03-03"})),
            vec!["scheduled_time"],
        ),
        (
            with(scheduled(), json!({"scheduled_time": 1_772_496_000})),
            vec!["scheduled_time"],
        ),
        (
            with(cron(), json!({"cron_expression": 5})),
            vec!["cron_expression"],
        ),
        (with(immediate(), json!({"payload": [1]})), vec!["payload"]),
        (with(immediate(), json!({"payload": "x"})), vec!["payload"]),
        (with(immediate(), json!({"payload": 5})), vec!["payload"]),
        (
            with(immediate(), json!({"timeout_seconds": 0})),
            vec!["timeout_seconds"],
        ),
        (
            with(immediate(), json!({"timeout_seconds": 3601})),
            vec!["timeout_seconds"],
        ),
        (
            with(immediate(), json!({"timeout_seconds": -1})),
            vec!["timeout_seconds"],
        ),
        (
            with(immediate(), json!({"timeout_seconds": 1.5})),
            vec!["timeout_seconds"],
        ),
        (
            with(immediate(), json!({"timeout_seconds": "300"})),
            vec!["timeout_seconds"],
        ),
        (
            with(immediate(), json!({"timeout_seconds": 1e30})),
            vec!["timeout_seconds"],
        ),
        (
            with(immediate(), json!({"timeout_seconds": u64::MAX})),
            vec!["timeout_seconds"],
        ),
        (
            with(immediate(), json!({"timeout_seconds": i64::MIN})),
            vec!["timeout_seconds"],
        ),
        (
            with(immediate(), json!({"max_retries": 11})),
            vec!["max_retries"],
        ),
        (
            with(immediate(), json!({"max_retries": -1})),
            vec!["max_retries"],
        ),
        (
            with(immediate(), json!({"max_retries": 4_294_967_296_u64})),
            vec!["max_retries"],
        ),
        (
            with(immediate(), json!({"max_retries": true})),
            vec!["max_retries"],
        ),
        (
            with(immediate(), json!({"retry_backoff_ms": 86_400_001})),
            vec!["retry_backoff_ms"],
        ),
        (
            with(immediate(), json!({"retry_backoff_ms": -5})),
            vec!["retry_backoff_ms"],
        ),
        (
            with(immediate(), json!({"handler": "nope"})),
            vec!["handler"],
        ),
        (with(immediate(), json!({"handler": ""})), vec!["handler"]),
        (with(immediate(), json!({"handler": 7})), vec!["handler"]),
        (with(immediate(), json!({"timezone": 5})), vec!["timezone"]),
        (
            json!({"name": "", "job_type": "one-time", "schedule_type": "immediate",
                   "timeout_seconds": 0, "max_retries": 11, "payload": [], "x": 1}),
            vec!["max_retries", "name", "payload", "timeout_seconds", "x"],
        ),
    ];
    for (body, fields) in cases {
        let r = a.post("/jobs", body.clone()).await;
        let mut got = r.error(400, "VALIDATION_ERROR");
        got.sort_unstable();
        assert_eq!(got, fields, "{body}");
    }

    // Numbers too large for any integer type are read as numbers, not 500s.
    let body = format!(
        r#"{{"name": "x", "job_type": "one-time", "schedule_type": "immediate", "timeout_seconds": {huge}}}"#
    );
    let r = a.raw(Method::POST, "/jobs", body, None).await;
    assert_eq!(r.error(400, "VALIDATION_ERROR"), ["timeout_seconds"]);
    assert_eq!(
        r.field_message("timeout_seconds"),
        "must be between 1 and 3600 seconds"
    );

    // The messages say what is wrong.
    let r = a
        .post("/jobs", with(immediate(), json!({"foo": 1, "name": 5})))
        .await;
    assert_eq!(r.field_message("foo"), "unknown field");
    assert_eq!(r.field_message("name"), "must be a string, not a number");
    assert!(r.body["message"].as_str().unwrap().contains("foo"));
    let r = a
        .post(
            "/jobs",
            with(immediate(), json!({"cron_expression": "* * * * *"})),
        )
        .await;
    assert_eq!(
        r.field_message("cron_expression"),
        "does not belong to an immediate job"
    );
    let r = a
        .post("/jobs", with(scheduled(), json!({"scheduled_time": null})))
        .await;
    assert_eq!(
        r.field_message("scheduled_time"),
        "is required for a scheduled job"
    );
    let r = a
        .post("/jobs", with(immediate(), json!({"max_retries": -1})))
        .await;
    assert_eq!(r.field_message("max_retries"), "must be between 0 and 10");
    let r = a
        .post("/jobs", with(immediate(), json!({"timeout_seconds": 2.5})))
        .await;
    assert_eq!(
        r.field_message("timeout_seconds"),
        "must be a whole number between 1 and 3600 seconds"
    );

    // Nothing was created by any of it.
    assert_eq!(a.get("/jobs").await.data()["pagination"]["total"], 0);
}

async fn create_maps_schedule_problems_to_their_codes(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    let r = a
        .post("/jobs", with(cron(), json!({"timezone": "Mars/Olympus"})))
        .await;
    r.error(400, "INVALID_TIMEZONE");
    assert!(r.body["message"].as_str().unwrap().contains("Mars/Olympus"));
    a.post("/jobs", with(immediate(), json!({"timezone": "utc+2"})))
        .await
        .error(400, "INVALID_TIMEZONE");

    let r = a
        .post(
            "/jobs",
            with(cron(), json!({"cron_expression": "61 * * * *"})),
        )
        .await;
    r.error(422, "INVALID_CRON_EXPRESSION");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("minute field: 61 is out of range 0-59"),
        "{r:#?}"
    );
    for bad in [
        "",
        "* * * *",
        "* * * * * * *",
        "@reboot",
        "0 0 30 2 *",
        "*/0 * * * *",
        "'; DROP TABLE jobs; --",
    ] {
        a.post("/jobs", with(cron(), json!({"cron_expression": bad})))
            .await
            .error(422, "INVALID_CRON_EXPRESSION");
    }
    let r = a
        .post(
            "/jobs",
            with(cron(), json!({"cron_expression": "0 0 30 2 *"})),
        )
        .await;
    assert!(r.body["message"].as_str().unwrap().contains("never fires"));

    a.post(
        "/jobs",
        with(
            scheduled(),
            json!({"scheduled_time": "2026-03-02T09:00:00Z"}),
        ),
    )
    .await
    .error(400, "INVALID_SCHEDULED_TIME");
    // An offset that puts a future-looking wall time in the past.
    a.post(
        "/jobs",
        with(
            scheduled(),
            json!({"scheduled_time": "2026-03-02T10:30:00+01:00"}),
        ),
    )
    .await
    .error(400, "INVALID_SCHEDULED_TIME");
}

async fn create_rejects_bodies_that_are_not_json_objects(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    for (body, ct) in [
        ("", None),
        ("", Some("application/json")),
        ("   ", Some("application/json")),
        ("{", Some("application/json")),
        ("{\"name\": \"x\",}", Some("application/json")),
        ("{} {}", Some("application/json")),
        (
            "name=x&job_type=one-time",
            Some("application/x-www-form-urlencoded"),
        ),
        ("\u{feff}{}", Some("application/json")),
    ] {
        let r = a.raw(Method::POST, "/jobs", body, ct).await;
        r.error(400, "INVALID_JSON");
    }
    for body in ["[]", "null", "\"job\"", "42", "true", "[{\"name\": \"x\"}]"] {
        let r = a
            .raw(Method::POST, "/jobs", body, Some("application/json"))
            .await;
        assert_eq!(r.error(400, "VALIDATION_ERROR"), ["body"], "{body}");
    }
    // Nested past the parser's depth limit: refused, not a stack overflow.
    let deep = format!(
        r#"{{"name": "x", "job_type": "one-time", "schedule_type": "immediate", "payload": {{"a": {}1{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    a.raw(Method::POST, "/jobs", deep, Some("application/json"))
        .await
        .error(400, "INVALID_JSON");
    // Over the body limit.
    let big = json!({"name": "x", "job_type": "one-time", "schedule_type": "immediate",
                     "payload": {"blob": "x".repeat(1024 * 1024 + 1)}});
    a.post("/jobs", big).await.error(413, "PAYLOAD_TOO_LARGE");

    // A valid body is read whatever the Content-Type says, or without one.
    let body = immediate().to_string();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/json; charset=utf-8"),
    ] {
        let r = a.raw(Method::POST, "/jobs", body.clone(), ct).await;
        assert_eq!(r.status, 201, "{ct:?}: {r:#?}");
    }
}

async fn create_takes_odd_but_valid_input_as_it_is(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    for name in [
        "Robert'); DROP TABLE jobs;--",
        "' OR '1'='1",
        "<script>alert(1)</script>",
        "Zürich 🌍 報告",
        &"é".repeat(255),
    ] {
        let job = a.create(with(immediate(), json!({"name": name}))).await;
        assert_eq!(job["name"], name);
        let got = a
            .get(&format!("/jobs/{}", job["id"].as_str().unwrap()))
            .await;
        assert_eq!(got.data()["name"], name);
    }

    // null counts as absent: a form that sends every field works.
    let job = a
        .create(json!({
            "name": "form", "description": null, "job_type": "one-time",
            "schedule_type": "immediate", "scheduled_time": null, "cron_expression": null,
            "timezone": null, "handler": null, "payload": null, "timeout_seconds": null,
            "max_retries": null, "retry_backoff_ms": null
        }))
        .await;
    assert_eq!(job["description"], Value::Null);
    assert_eq!(job["timezone"], "UTC");
    assert_eq!(job["handler"], "echo");
    assert_eq!(job["payload"], json!({}));
    assert_eq!(job["timeout_seconds"], 300);
    assert_eq!(job["max_retries"], 3);
    assert_eq!(job["retry_backoff_ms"], 60000);

    // The extremes of every range.
    let job = a
        .create(with(
            cron(),
            json!({"timeout_seconds": 3600, "max_retries": 10, "retry_backoff_ms": 86_400_000,
                   "timezone": "Pacific/Chatham", "description": "d".repeat(1000)}),
        ))
        .await;
    assert_eq!(job["timeout_seconds"], 3600);
    assert_eq!(job["max_retries"], 10);
    assert_eq!(job["retry_backoff_ms"], 86_400_000);
    let job = a
        .create(with(
            immediate(),
            json!({"timeout_seconds": 1, "max_retries": 0, "retry_backoff_ms": 0,
                   "payload": {"nested": {"deep": [1, 2, {"x": null}]}, "n": 1e300}}),
        ))
        .await;
    assert_eq!(job["max_retries"], 0);
    assert_eq!(
        job["payload"],
        json!({"nested": {"deep": [1, 2, {"x": null}]}, "n": 1e300})
    );

    // A cron expression has no length limit: one listing every minute, hour and day
    // (over 255 characters) is a valid job on every backend, created and changed.
    // (PostgreSQL's column was varchar(255): a 500 there, a 201 in memory.)
    let list = |from: u32, to: u32| {
        (from..to)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let long = format!("{} {} {} * *", list(0, 60), list(0, 24), list(1, 32));
    assert!(long.len() > 255);
    let job = a
        .create(with(cron(), json!({"cron_expression": long})))
        .await;
    assert_eq!(job["cron_expression"], json!(long));
    assert_eq!(job["next_run"], "2026-03-02T10:01:00.000Z");
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());
    assert_eq!(a.get(&path).await.data()["cron_expression"], json!(long));
    let longer = format!("{} {long}", list(0, 60));
    let r = a.patch(&path, json!({"cron_expression": longer})).await;
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(r.data()["cron_expression"], json!(longer));
    assert_eq!(r.data()["next_run"], "2026-03-02T10:00:01.000Z");
    assert_eq!(a.get(&path).await.data()["cron_expression"], json!(longer));
}

async fn list_parameters_are_validated_by_name(backend: Backend) {
    let w = world(backend).await;
    let a = w.user().await;
    a.create_cron("x").await;
    for q in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "limit=1.5",
        "limit=%20",
        "limit=1e2",
        "limit=99999999999999999999",
        "page=0",
        "page=-3",
        "page=abc",
        "page=99999999999",
        "sort_by=priority",
        "sort_by=name;DROP%20TABLE%20jobs",
        "sort_by=NAME",
        "sort_order=up",
        "sort_order=ASC",
        "status=deleted",
        "status=running",
        "status=active'%20OR%20'1'='1",
        "job_type=cron",
        "job_type=one_time",
        "status=active&status=paused",
        "status=%FF",
        "status=%ZZ",
        "job_type=one-time%00",
    ] {
        let r = a.get(&format!("/jobs?{q}")).await;
        let field = q.split('=').next().unwrap();
        if q == "limit=%20" {
            // A blank value counts as absent.
            assert_eq!(r.status, 200, "{q}");
            continue;
        }
        assert_eq!(r.error(400, "VALIDATION_ERROR"), [field], "{q}");
    }
    let r = a.get("/jobs?limit=0").await;
    assert_eq!(
        r.field_message("limit"),
        "must be a whole number from 1 to 100"
    );
    let r = a.get("/jobs?sort_by=priority").await;
    assert_eq!(
        r.field_message("sort_by"),
        "must be created_at, next_run, name or updated_at"
    );

    // Every bad parameter is named at once.
    let r = a
        .get("/jobs?limit=0&page=0&sort_by=x&sort_order=y&status=z&job_type=w")
        .await;
    let mut fields = r.error(400, "VALIDATION_ERROR");
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "job_type",
            "limit",
            "page",
            "sort_by",
            "sort_order",
            "status"
        ]
    );
}

on_both_backends!(
    create_names_every_invalid_field,
    create_maps_schedule_problems_to_their_codes,
    create_rejects_bodies_that_are_not_json_objects,
    create_takes_odd_but_valid_input_as_it_is,
    list_parameters_are_validated_by_name,
);
