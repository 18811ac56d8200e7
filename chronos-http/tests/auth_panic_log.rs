//! A panicking handler is logged with the request's id (its own test binary: it
//! installs the process's tracing subscriber).

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod auth_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use auth_support::{assert_error, builder, roomy, serve};
use axum::Router;
use axum::routing::get;
use chronos_http::app::router_with;
use chronos_http::state::AppState;
use reqwest::{Method, StatusCode};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_logged_with_the_request_id_and_nothing_secret() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let state = AppState::new(builder(roomy()).await.build().unwrap());
    let public = Router::new().route(
        "/boom",
        get(|| async {
            if true {
                panic!("boom");
            }
            "unreachable"
        }),
    );
    let app = serve(router_with(state, public, Router::new())).await;
    let a = app
        .send(
            app.request(Method::GET, "/boom")
                .header("x-request-id", "panic-request-1"),
        )
        .await;
    assert_error(&a, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    assert_eq!(a.header("x-request-id"), Some("panic-request-1"));

    // A login's password and token never reach the log.
    let data = app.register("logged@example.com").await;
    let token = data["token"].as_str().unwrap().to_owned();
    app.authed(Method::GET, "/auth/me", &token).await;

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("a handler panicked: boom"))
        .unwrap_or_else(|| panic!("no panic line in:\n{log}"));
    assert!(line.contains("request_id=panic-request-1"), "{line}");
    assert!(line.contains("ERROR"), "{line}");
    assert!(!log.contains(auth_support::PASSWORD), "{log}");
    assert!(!log.contains(&token), "{log}");
    assert!(!log.contains("$argon2id$"), "{log}");
}
