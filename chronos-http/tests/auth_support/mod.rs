//! Helpers of the `auth_*` tests: an app served on a loopback port, a client, and
//! checks of the documented bodies.

#![allow(dead_code, reason = "each test file uses part of the helpers")]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use chronos::Chronos;
use chronos_http::app;
use chronos_http::auth::Passwords;
use chronos_http::auth::token::{DEFAULT_TTL, Tokens};
use chronos_http::state::{AppState, Services, ServicesBuilder, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The JWT secret of the test apps (32 bytes).
pub(crate) const SECRET: &[u8] = b"test-secret-test-secret-test-sec";

/// A password that passes the rules.
pub(crate) const PASSWORD: &str = "SecurePass123!";

/// A scheduler on the in-memory backends, without workers.
pub(crate) async fn chronos() -> Chronos {
    Chronos::builder()
        .workers(false)
        .sync(false)
        .build()
        .await
        .unwrap()
}

/// Cheap argon2id parameters: the tests hash many passwords. (The OWASP ones are
/// tested in the crate's unit tests and in `auth_flow::owasp_parameters_end_to_end`.)
pub(crate) fn fast_passwords() -> Passwords {
    Passwords::with_params(64, 1, 1).unwrap()
}

/// A builder with the test secret, fast passwords and `settings`.
pub(crate) async fn builder(settings: Settings) -> ServicesBuilder {
    Services::builder(chronos().await)
        .tokens(Tokens::new(SECRET, DEFAULT_TTL).unwrap())
        .passwords(fast_passwords())
        .settings(settings)
}

/// An app served on 127.0.0.1.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    /// A client without a proxy.
    pub(crate) client: reqwest::Client,
    /// The state behind it.
    pub(crate) state: Option<AppState>,
}

/// Serves `router` on a loopback port with the peer address as `ConnectInfo`.
pub(crate) async fn serve(router: Router) -> TestApp {
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
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        state: None,
    }
}

/// Serves the API over `state`.
pub(crate) async fn serve_state(state: AppState) -> TestApp {
    let mut app = serve(app::router(state.clone())).await;
    app.state = Some(state);
    app
}

/// Serves the API over in-memory services with the test secret and `settings`.
pub(crate) async fn spawn(settings: Settings) -> TestApp {
    serve_state(AppState::new(builder(settings).await.build().unwrap())).await
}

/// Settings with limits high enough to stay out of the way.
pub(crate) fn roomy() -> Settings {
    let mut s = Settings::default();
    s.user_rate_limit.max = 10_000;
    s.auth_rate_limit.max = 10_000;
    s
}

/// A response: status, headers and JSON body (`Value::Null` when not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    /// The status.
    pub(crate) status: StatusCode,
    /// The headers.
    pub(crate) headers: reqwest::header::HeaderMap,
    /// The body as JSON.
    pub(crate) body: Value,
}

impl Answer {
    /// A header as a string.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

impl TestApp {
    /// A request to `path` (from the root).
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// Sends `req` and reads the answer.
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `POST /api/v1/<path>` with a JSON body.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.send(
            self.request(Method::POST, &format!("/api/v1{path}"))
                .json(body),
        )
        .await
    }

    /// A request to `/api/v1/<path>` with a bearer token.
    pub(crate) async fn authed(&self, method: Method, path: &str, token: &str) -> Answer {
        self.send(
            self.request(method, &format!("/api/v1{path}"))
                .bearer_auth(token),
        )
        .await
    }

    /// Registers `email`; panics unless 201. Returns `data`.
    pub(crate) async fn register(&self, email: &str) -> Value {
        let a = self
            .post_json(
                "/auth/register",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        a.body["data"].clone()
    }

    /// Logs `email` in; panics unless 200. Returns `data`.
    pub(crate) async fn login(&self, email: &str) -> Value {
        let a = self
            .post_json(
                "/auth/login",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        a.body["data"].clone()
    }

    /// Registers `email` and returns its token.
    pub(crate) async fn token(&self, email: &str) -> String {
        self.register(email).await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Asserts `a` is the documented error body with this status and code; returns the
/// message.
pub(crate) fn assert_error(a: &Answer, status: StatusCode, code: &str) -> String {
    assert_eq!(a.status, status, "{:?}", a.body);
    let body = a
        .body
        .as_object()
        .unwrap_or_else(|| panic!("not JSON: {a:?}"));
    assert_eq!(body["error"], json!(true), "{body:?}");
    assert_eq!(body["code"], json!(code), "{body:?}");
    let message = body["message"].as_str().unwrap();
    assert!(!message.is_empty());
    assert_timestamp(&body["timestamp"]);
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let expected: &[&str] = if body.contains_key("errors") {
        &["code", "error", "errors", "message", "timestamp"]
    } else {
        &["code", "error", "message", "timestamp"]
    };
    assert_eq!(keys, expected, "{body:?}");
    message.to_owned()
}

/// Asserts `v` is an RFC 3339 UTC instant with milliseconds and `Z`.
pub(crate) fn assert_timestamp(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert_eq!(s.len(), 24, "{s}");
    assert!(s.ends_with('Z'), "{s}");
    chrono::DateTime::parse_from_rfc3339(s).unwrap();
}

/// The sorted keys of a JSON object.
pub(crate) fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort_unstable();
    keys
}

/// A unique email address.
pub(crate) fn email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}
