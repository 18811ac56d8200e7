#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]
//! The application the binary serves, assembled by `wiring` in-process on a real
//! socket: the OpenAPI document lists every route of the contract and every route
//! it lists is served; it declares every error answer with the codes of the
//! contract, and real answers (bodies, codes, headers, list parameters) match it;
//! health answers 503 naming a dead or hung dependency within the probe timeout; the
//! dashboard health needs a token; metrics count requests by route template and
//! executions by status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronos::{Chronos, JobSpec};
use chronos_http::config::Config;
use chronos_http::error::Code;
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

/// Every error code of the contract (API.md) with its status.
const CONTRACT_CODES: &[(&str, u16)] = &[
    ("VALIDATION_ERROR", 400),
    ("INVALID_JSON", 400),
    ("UNAUTHORIZED", 401),
    ("INVALID_TOKEN", 401),
    ("TOKEN_EXPIRED", 401),
    ("TOKEN_REVOKED", 401),
    ("INVALID_CREDENTIALS", 401),
    ("EMAIL_EXISTS", 409),
    ("JOB_NOT_FOUND", 404),
    ("EXECUTION_NOT_FOUND", 404),
    ("INVALID_SCHEDULED_TIME", 400),
    ("INVALID_CRON_EXPRESSION", 422),
    ("INVALID_TIMEZONE", 400),
    ("INVALID_JOB_STATUS", 400),
    ("INVALID_OPERATION", 400),
    ("RATE_LIMIT_EXCEEDED", 429),
    ("PAYLOAD_TOO_LARGE", 413),
    ("ROUTE_NOT_FOUND", 404),
    ("METHOD_NOT_ALLOWED", 405),
    ("INTERNAL_ERROR", 500),
];

/// Codes beyond the contract's list: a dependency the request needs is down (the
/// health routes' 503, the revocation list), or the service is shutting down.
const EXTRA_CODES: &[(&str, u16)] = &[("SERVICE_UNAVAILABLE", 503)];

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

// ---------------------------------------------------------------- the document's errors

/// The codes an error response's description names (`` `UPPER_SNAKE` ``).
fn named_codes(description: &str) -> Vec<&str> {
    description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            !word.is_empty() && word.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
        .collect()
}

/// The name a code is written with.
fn code_name(code: Code) -> String {
    serde_json::to_value(code)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Follows a `$ref` to its schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "{r} does not resolve");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Every `$ref` anywhere in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_declares_every_error_answer_with_the_contracts_codes() {
    let doc = serde_json::to_value(chronos_http::docs::openapi()).unwrap();

    // The codes are the contract's, with the statuses of the contract.
    let mut expected: Vec<(String, u16)> = CONTRACT_CODES
        .iter()
        .chain(EXTRA_CODES)
        .map(|(c, s)| ((*c).to_owned(), *s))
        .collect();
    expected.sort();
    let mut actual: Vec<(String, u16)> = Code::ALL
        .iter()
        .map(|c| (code_name(*c), c.status().as_u16()))
        .collect();
    actual.sort();
    assert_eq!(actual, expected);
    let mut documented: Vec<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    documented.sort();
    let mut names: Vec<String> = expected.iter().map(|(c, _)| c.clone()).collect();
    names.sort();
    assert_eq!(documented, names);
    let status_of = |code: &str| expected.iter().find(|(c, _)| c == code).map(|(_, s)| *s);

    // Every reference resolves.
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(!all_refs.is_empty());
    for r in all_refs {
        resolve(&doc, &json!({ "$ref": r }));
    }

    let mut operation_ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            operation_ids.push(op["operationId"].as_str().unwrap().to_owned());
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{at}"
            );
            assert!(
                op["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{at} has a description"
            );
            let responses = op["responses"].as_object().unwrap();
            let authenticated = op["security"].is_array();
            let mut required = vec!["500"];
            if authenticated {
                required.extend(["401", "503"]);
            }
            if path.contains("{id}") {
                required.extend(["400", "404"]);
            }
            if op["requestBody"].is_object() {
                required.extend(["400", "413"]);
                let bad_json = responses["400"]["description"].as_str().unwrap();
                assert!(bad_json.contains("`INVALID_JSON`"), "{at}");
            }
            if path.starts_with("/api/v1/auth/register") || path.starts_with("/api/v1/auth/login") {
                required.push("429");
            }
            for status in required {
                assert!(responses.contains_key(status), "{at} declares {status}");
            }
            let mut successes = 0;
            for (status, response) in responses {
                let code: u16 = status.parse().unwrap();
                let description = response["description"].as_str().unwrap();
                let content = response["content"].as_object();
                if code < 400 {
                    successes += 1;
                    assert!(content.is_some(), "{at} {status} has a body");
                    continue;
                }
                // Every error answer names its codes, and they have its status.
                let codes = named_codes(description);
                assert!(
                    !codes.is_empty(),
                    "{at} {status} names its codes: {description}"
                );
                for c in codes {
                    assert_eq!(status_of(c), Some(code), "{at} {status}: `{c}`");
                }
                let schema = &content.unwrap()["application/json"]["schema"];
                let body = resolve(&doc, schema);
                assert!(
                    body["properties"]["code"].is_object(),
                    "{at} {status} has an error body"
                );
            }
            assert!(successes > 0, "{at}");
            // Rate-limited answers carry the headers, 429 with `Retry-After`.
            if let Some(limited) = responses.get("429") {
                assert!(limited["headers"]["Retry-After"].is_object(), "{at}");
                let first = responses.keys().find(|s| s.starts_with('2')).unwrap();
                assert!(
                    responses[first]["headers"]["X-RateLimit-Remaining"].is_object(),
                    "{at}"
                );
            }
        }
    }
    let count = operation_ids.len();
    operation_ids.sort();
    operation_ids.dedup();
    assert_eq!(operation_ids.len(), count, "operation ids are unique");
}

// ---------------------------------------------------------------- answers match the document

/// Checks `value` against `schema` (the JSON Schema subset utoipa writes), strictly:
/// a key an object schema does not list is an error.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    check(doc, schema, value, at, errors, true);
}

/// [`validate`]; `strict: false` for a part of an `allOf`, whose object may hold the
/// keys of the other parts.
fn check(
    doc: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
    strict: bool,
) {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            let fits = options.iter().any(|option| {
                let mut e = Vec::new();
                check(doc, option, value, at, &mut e, strict);
                e.is_empty()
            });
            if !fits {
                errors.push(format!("{at}: {value} fits no option of {key}"));
            }
        }
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        // Unknown keys are judged against all the parts together, below.
        check(doc, part, value, at, errors, false);
    }
    if let Some(types) = match &schema["type"] {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    } {
        let fits = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        });
        if !fits {
            errors.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {values:?}"));
    }
    if let Some(s) = value.as_str() {
        match schema["format"].as_str() {
            Some("date-time") => {
                let written = s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.';
                if !written || chrono::DateTime::parse_from_rfc3339(s).is_err() {
                    errors.push(format!("{at}: {s} is not RFC 3339 UTC with milliseconds"));
                }
            }
            Some("uuid") if uuid::Uuid::parse_str(s).is_err() => {
                errors.push(format!("{at}: {s} is not a UUID"));
            }
            _ => {}
        }
    }
    if let Some(n) = value.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|min| n < min) {
            errors.push(format!("{at}: {n} is below the minimum"));
        }
        if schema["maximum"].as_f64().is_some_and(|max| n > max) {
            errors.push(format!("{at}: {n} is above the maximum"));
        }
    }
    if let Some(items) = value.as_array()
        && schema["items"].is_object()
    {
        for (i, item) in items.iter().enumerate() {
            validate(doc, &schema["items"], item, &format!("{at}[{i}]"), errors);
        }
    }
    if let Some(object) = value.as_object() {
        let mut known = Vec::new();
        properties(doc, schema, &mut known);
        for field in schema["required"].as_array().into_iter().flatten() {
            let field = field.as_str().unwrap();
            if !object.contains_key(field) {
                errors.push(format!("{at}: {field} is missing"));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (key, v) in object {
                if let Some(prop) = props.get(key) {
                    validate(doc, prop, v, &format!("{at}.{key}"), errors);
                }
            }
        }
        if strict && !known.is_empty() {
            for key in object.keys() {
                if !known.contains(&key.as_str()) {
                    errors.push(format!("{at}.{key} is not documented"));
                }
            }
        }
    }
}

/// The properties an object schema lists, its `allOf` parts included.
fn properties<'a>(doc: &'a Value, schema: &'a Value, out: &mut Vec<&'a str>) {
    let schema = resolve(doc, schema);
    if let Some(props) = schema["properties"].as_object() {
        out.extend(props.keys().map(String::as_str));
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        properties(doc, part, out);
    }
}

/// A client that checks every answer against the document.
struct Checked {
    doc: Value,
    base: String,
    client: reqwest::Client,
    checked: std::cell::RefCell<Vec<String>>,
}

impl Checked {
    /// A request of the documented operation `method template` (to `template`
    /// itself, unless [`Call::at`] names another path).
    fn call<'a>(&'a self, method: &'static str, template: &'static str) -> Call<'a> {
        Call {
            api: self,
            method,
            template,
            path: template.to_owned(),
            token: None,
            body: None,
        }
    }
}

/// One request, checked against the document.
struct Call<'a> {
    api: &'a Checked,
    method: &'static str,
    template: &'static str,
    path: String,
    token: Option<&'a str>,
    body: Option<Vec<u8>>,
}

impl<'a> Call<'a> {
    /// Sends it to `path` (the template's parameters filled in, a query added).
    fn at(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// With this bearer token.
    fn token(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    /// With this JSON body.
    fn json(mut self, body: Value) -> Self {
        self.body = Some(serde_json::to_vec(&body).unwrap());
        self
    }

    /// With this body, sent as JSON.
    fn raw(mut self, body: &'static str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self
    }

    /// Sends it, asserts the status, and checks the answer against the document: the
    /// status is declared, the body fits its schema, an error's code is named in the
    /// status's description, the declared headers are there. Returns the JSON body
    /// (`null` when not JSON).
    async fn expect(self, status: u16) -> Value {
        let Call {
            api,
            method,
            template,
            path,
            token,
            body,
        } = self;
        let verb = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = api.client.request(verb, format!("{}{path}", api.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(bytes) = body {
            request = request
                .header("content-type", "application/json")
                .body(bytes);
        }
        let r = request.send().await.unwrap();
        let headers = r.headers().clone();
        let actual = r.status().as_u16();
        let text = r.text().await.unwrap();
        let at = format!("{method} {path} → {actual}");
        assert_eq!(actual, status, "{at}: {text}");
        let op = &api.doc["paths"][template][method];
        assert!(op.is_object(), "{method} {template} is documented");
        let response = &op["responses"][status.to_string()];
        assert!(response.is_object(), "{at} is documented: {text}");
        let (media_type, content) = response["content"]
            .as_object()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        let content_type = headers["content-type"].to_str().unwrap();
        assert_eq!(
            content_type.split(';').next(),
            media_type.split(';').next(),
            "{at}"
        );
        for (name, _) in response["headers"].as_object().into_iter().flatten() {
            assert!(headers.contains_key(name.as_str()), "{at} has {name}");
        }
        api.checked
            .borrow_mut()
            .push(format!("{method} {template} {status}"));
        if media_type != "application/json" {
            return Value::Null;
        }
        let value: Value = serde_json::from_str(&text).unwrap();
        let mut errors = Vec::new();
        validate(&api.doc, &content["schema"], &value, "body", &mut errors);
        assert!(errors.is_empty(), "{at}: {errors:#?}\n{value:#}");
        if status >= 400 {
            let code = value["code"].as_str().unwrap();
            let description = response["description"].as_str().unwrap();
            assert!(
                named_codes(description).contains(&code),
                "{at}: `{code}` is not named in {description:?}"
            );
        }
        value
    }
}

/// A one-time immediate job named `x`, with `extra` fields.
fn job_with(extra: Value) -> Value {
    let mut body = json!({"name": "x", "job_type": "one-time", "schedule_type": "immediate"});
    let fields = body.as_object_mut().unwrap();
    fields.extend(extra.as_object().unwrap().clone());
    body
}

#[tokio::test]
async fn real_answers_match_the_document() {
    let (base, chronos) = serve().await;
    let api = Checked {
        doc: serde_json::to_value(chronos_http::docs::openapi()).unwrap(),
        base,
        client: reqwest::Client::new(),
        checked: Default::default(),
    };

    // Auth.
    let (register, login) = ("/api/v1/auth/register", "/api/v1/auth/login");
    let email = format!("{}@example.com", uuid::Uuid::new_v4());
    let credentials = json!({"email": email, "password": "Secret123"});
    let body = api
        .call("post", register)
        .json(credentials.clone())
        .expect(201)
        .await;
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    let t = token.as_str();
    api.call("post", register)
        .json(credentials.clone())
        .expect(409)
        .await;
    let weak = json!({"email": "x", "password": "weak"});
    api.call("post", register).json(weak).expect(400).await;
    api.call("post", login).json(credentials).expect(200).await;
    let wrong = json!({"email": email, "password": "Wrong1234"});
    api.call("post", login).json(wrong).expect(401).await;
    let me = "/api/v1/auth/me";
    api.call("get", me).token(t).expect(200).await;
    api.call("get", me).expect(401).await;

    // Jobs.
    let jobs = "/api/v1/jobs";
    let cron = json!({
        "name": "nightly", "description": "a report", "job_type": "recurring",
        "schedule_type": "cron", "cron_expression": "30 2 * * *", "timezone": "Europe/Berlin"
    });
    let cron = api.call("post", jobs).token(t).json(cron).expect(201).await;
    let cron_id = cron["data"]["id"].as_str().unwrap().to_owned();
    let once = job_with(json!({
        "name": "later", "schedule_type": "scheduled",
        "scheduled_time": "2999-01-01T00:00:00+02:00", "payload": {"k": [1, 2]}
    }));
    let once = api.call("post", jobs).token(t).json(once).expect(201).await;
    let once_id = once["data"]["id"].as_str().unwrap().to_owned();
    let bad_cron =
        json!({"job_type": "recurring", "schedule_type": "cron", "cron_expression": "61 * * * *"});
    let past = json!({"schedule_type": "scheduled", "scheduled_time": "2001-01-01T00:00:00Z"});
    for (bad, status) in [
        (json!({"name": "", "job_type": "weekly", "extra": 1}), 400),
        (job_with(bad_cron), 422),
        (job_with(json!({"timezone": "Mars/Base"})), 400),
        (job_with(past), 400),
    ] {
        api.call("post", jobs)
            .token(t)
            .json(bad)
            .expect(status)
            .await;
    }
    api.call("post", jobs)
        .token(t)
        .raw("{\"name\":")
        .expect(400)
        .await;
    api.call("post", jobs).json(json!({})).expect(401).await;

    // The list parameters: every documented value is accepted; anything else, and
    // every value out of the documented range, is a 400 naming the parameter.
    let job_executions = "/api/v1/jobs/{id}/executions";
    let executions_of = format!("{jobs}/{cron_id}/executions");
    for (template, path) in [
        (jobs, jobs.to_owned()),
        (job_executions, executions_of.clone()),
    ] {
        let params = api.doc["paths"][template]["get"]["parameters"].clone();
        for param in params
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
        {
            let name = param["name"].as_str().unwrap();
            let schema = resolve(&api.doc, &param["schema"]).clone();
            let mut good = Vec::new();
            let mut bad = vec!["bogus".to_owned()];
            if let Some(values) = schema["enum"].as_array() {
                good.extend(values.iter().map(|v| v.as_str().unwrap().to_owned()));
            } else {
                let min = schema["minimum"].as_f64().unwrap() as u64;
                good.push(min.to_string());
                bad.push((min - 1).to_string());
                if let Some(max) = schema["maximum"].as_f64().map(|m| m as u64) {
                    good.push(max.to_string());
                    bad.push((max + 1).to_string());
                }
            }
            for value in good {
                let at = format!("{path}?{name}={value}");
                api.call("get", template).at(at).token(t).expect(200).await;
            }
            for value in bad {
                let at = format!("{path}?{name}={value}");
                let body = api.call("get", template).at(at).token(t).expect(400).await;
                assert_eq!(body["errors"][0]["field"], name);
            }
        }
    }

    api.call("get", "/api/v1/jobs/upcoming")
        .token(t)
        .expect(200)
        .await;
    let job = "/api/v1/jobs/{id}";
    let cron_job = format!("{jobs}/{cron_id}");
    api.call("get", job)
        .at(&cron_job)
        .token(t)
        .expect(200)
        .await;
    let missing = format!("{jobs}/{}", uuid::Uuid::new_v4());
    api.call("get", job).at(missing).token(t).expect(404).await;
    let malformed = format!("{jobs}/not-a-uuid");
    api.call("get", job)
        .at(malformed)
        .token(t)
        .expect(400)
        .await;
    let change = json!({"cron_expression": "0 3 * * *", "description": null});
    api.call("patch", job)
        .at(&cron_job)
        .token(t)
        .json(change)
        .expect(200)
        .await;
    let empty = json!({});
    api.call("patch", job)
        .at(&cron_job)
        .token(t)
        .json(empty)
        .expect(400)
        .await;
    let bad_cron = json!({"cron_expression": "nope"});
    api.call("patch", job)
        .at(&cron_job)
        .token(t)
        .json(bad_cron)
        .expect(422)
        .await;
    let (pause, resume) = ("/api/v1/jobs/{id}/pause", "/api/v1/jobs/{id}/resume");
    let on_cron = |what: &str| format!("{cron_job}/{what}");
    api.call("post", pause)
        .at(on_cron("pause"))
        .token(t)
        .expect(200)
        .await;
    api.call("post", resume)
        .at(on_cron("resume"))
        .token(t)
        .expect(200)
        .await;
    api.call("post", resume)
        .at(on_cron("resume"))
        .token(t)
        .expect(400)
        .await;
    let once_pause = format!("{jobs}/{once_id}/pause");
    api.call("post", pause)
        .at(once_pause)
        .token(t)
        .expect(400)
        .await;

    // Executions: a manual run that succeeds.
    let execute = "/api/v1/jobs/{id}/execute";
    let run = api
        .call("post", execute)
        .at(on_cron("execute"))
        .token(t)
        .expect(202)
        .await;
    let execution_id = run["data"]["execution_id"].as_str().unwrap().to_owned();
    let (execution, logs) = ("/api/v1/executions/{id}", "/api/v1/executions/{id}/logs");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let path = format!("/api/v1/executions/{execution_id}");
        let body = api
            .call("get", execution)
            .at(path)
            .token(t)
            .expect(200)
            .await;
        if body["data"]["status"] == "success" {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let call = api.call("get", job_executions).at(&executions_of);
    call.token(t).expect(200).await;
    let path = format!("/api/v1/executions/{execution_id}/logs");
    api.call("get", logs).at(path).token(t).expect(200).await;
    let missing = format!("/api/v1/executions/{}", uuid::Uuid::new_v4());
    api.call("get", execution)
        .at(missing)
        .token(t)
        .expect(404)
        .await;

    // A job that fails for good: its execution has an error, and its log says so.
    let boom =
        json!({"name": "boom", "handler": "fail", "payload": {"fatal": true}, "max_retries": 0});
    let boom = api
        .call("post", jobs)
        .token(t)
        .json(job_with(boom))
        .expect(201)
        .await;
    let boom_id = boom["data"]["id"].as_str().unwrap();
    let boom_executions = format!("{jobs}/{boom_id}/executions");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let call = api.call("get", job_executions).at(&boom_executions);
        let page = call.token(t).expect(200).await;
        let failed = page["data"]["executions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["status"] == "failed")
            .map(|e| e["id"].as_str().unwrap().to_owned());
        if let Some(failed) = failed {
            let path = format!("/api/v1/executions/{failed}/logs");
            let body = api.call("get", logs).at(path).token(t).expect(200).await;
            if !body["data"]["logs"].as_array().unwrap().is_empty() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Dashboard, cron, system.
    api.call("get", "/api/v1/dashboard/stats")
        .token(t)
        .expect(200)
        .await;
    api.call("get", "/api/v1/dashboard/health")
        .token(t)
        .expect(200)
        .await;
    let preview = "/api/v1/cron/preview";
    let good =
        json!({"cron_expression": "*/5 * * * *", "after": "2026-01-01T00:00:00+01:00", "count": 3});
    for (body, status) in [
        (good, 200),
        (json!({"cron_expression": "0 0 31 2 *"}), 422),
        (
            json!({"cron_expression": "0 0 * * *", "timezone": "Nowhere"}),
            400,
        ),
        (json!({"count": 101}), 400),
    ] {
        api.call("post", preview)
            .token(t)
            .json(body)
            .expect(status)
            .await;
    }
    for path in ["/health", "/metrics", "/docs"] {
        api.call("get", path).expect(200).await;
    }
    let served = api.call("get", "/openapi.json").expect(200).await;
    assert_eq!(served, api.doc);

    // Refresh (the old token is revoked), delete, logout.
    let body = api
        .call("post", "/api/v1/auth/refresh")
        .token(t)
        .expect(200)
        .await;
    api.call("get", me).token(t).expect(401).await;
    let fresh = body["data"]["token"].as_str().unwrap().to_owned();
    let t = fresh.as_str();
    let once_job = format!("{jobs}/{once_id}");
    api.call("delete", job)
        .at(&once_job)
        .token(t)
        .expect(200)
        .await;
    api.call("delete", job)
        .at(&once_job)
        .token(t)
        .expect(404)
        .await;
    let once_execute = format!("{once_job}/execute");
    api.call("post", execute)
        .at(once_execute)
        .token(t)
        .expect(404)
        .await;
    let logout = "/api/v1/auth/logout";
    api.call("post", logout).token(t).expect(200).await;
    api.call("post", logout).token(t).expect(401).await;

    // The checks are strict: a job that strays from the document does not pass.
    let schema = &api.doc["paths"][jobs]["post"]["responses"]["201"]["content"]["application/json"]
        ["schema"];
    let mut errors = Vec::new();
    validate(&api.doc, schema, &cron, "body", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let strays: [(&str, Value); 4] = [
        ("bogus", json!(1)),
        ("status", json!("weird")),
        ("created_at", json!("2026-01-01T00:00:00Z")),
        ("next_run", Value::Null),
    ];
    for (field, value) in strays {
        let mut stray = cron.clone();
        stray["data"][field] = value;
        if field == "next_run" {
            stray["data"].as_object_mut().unwrap().remove(field);
        }
        let mut errors = Vec::new();
        validate(&api.doc, schema, &stray, "body", &mut errors);
        assert!(!errors.is_empty(), "{field}");
    }

    // Every documented operation was exercised.
    let checked = api.checked.take();
    for (method, path) in CONTRACT {
        assert!(
            checked
                .iter()
                .any(|c| c.starts_with(&format!("{method} {path} "))),
            "{method} {path} was not checked"
        );
    }
    chronos.shutdown().await.unwrap();
}
