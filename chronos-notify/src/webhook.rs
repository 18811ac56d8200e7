//! [`WebhookNotifier`]: failure events POSTed to a URL, signed with a shared secret.
//!
//! # The request
//! `POST <url>` with the headers
//! - `Content-Type: application/json`
//! - `Chronos-Event-Id: <id>`: the notification's id, the same on every attempt
//!   (deduplicate on it);
//! - `Chronos-Timestamp: <unix seconds>`: when this attempt was signed;
//! - `Chronos-Signature: v1=<hex>`: the lowercase hex HMAC-SHA256 of
//!   `"{timestamp}.{body}"` under the shared secret;
//!
//! and the body (timestamps in RFC 3339, `null` where unknown)
//!
//! ```json
//! {
//!   "type": "job.failed",
//!   "id": "0190...",
//!   "attempt": 1,
//!   "job": {"id": "...", "name": "nightly", "owner": "...", "handler": "send-report",
//!           "timezone": "Europe/Berlin", "status": "active"},
//!   "execution": {"id": "...", "scheduled_for": "2026-01-01T01:30:00Z", "attempt": 2,
//!                 "status": "failed", "error": "upstream down",
//!                 "started_at": "2026-01-01T01:34:00Z", "finished_at": "2026-01-01T01:34:01Z",
//!                 "manual": false},
//!   "attempts_made": 3
//! }
//! ```
//!
//! `attempt` counts delivery attempts of this event; `attempts_made` counts the job's
//! attempts at the failed occurrence.
//!
//! # Outcomes
//! A `2xx` answer is a delivery. `408`, `429`, any `5xx`, a connection failure and a
//! timeout are retried by the engine; any other answer (`400`, `401`, `404`, a
//! redirect, which is not followed) is final.
//!
//! # Receiving
//! Check each request with [`verify_signature`] over the raw body bytes, before parsing
//! them:
//!
//! ```
//! use std::time::Duration;
//! use chrono::Utc;
//! use chronos_notify::webhook::{sign, verify_signature, SignatureError};
//!
//! let secret = "s3cret";
//! let body = br#"{"type":"job.failed"}"#;
//! let now = Utc::now();
//! // What the sender puts into the headers:
//! let timestamp = now.timestamp().to_string();
//! let signature = sign(secret, now.timestamp(), body);
//!
//! let tolerance = Duration::from_secs(300);
//! assert_eq!(verify_signature(secret, &timestamp, body, &signature, now, tolerance), Ok(()));
//! assert_eq!(
//!     verify_signature("other", &timestamp, body, &signature, now, tolerance),
//!     Err(SignatureError::Mismatch)
//! );
//! ```

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use chronos::notifier::{Delivery, Failure, Notifier, NotifyError};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::{ConfigError, chain};

/// The default channel name.
pub const DEFAULT_CHANNEL: &str = "webhook";
/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A sensible tolerance for [`verify_signature`]: five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// The header with the notification's id.
pub const EVENT_ID_HEADER: &str = "Chronos-Event-Id";
/// The header with the signing time in unix seconds.
pub const TIMESTAMP_HEADER: &str = "Chronos-Timestamp";
/// The header with the signature, `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "Chronos-Signature";
/// The event type of a final failure.
pub const JOB_FAILED: &str = "job.failed";

/// The most of an error answer's body that goes into the log.
const BODY_SNIPPET: usize = 256;

type HmacSha256 = Hmac<Sha256>;

/// Where and how [`WebhookNotifier`] posts events. [`WebhookNotifier::new`] checks it.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The `http(s)` URL to POST to. Credentials in it (`https://user:pw@host/`) are
    /// sent as basic auth and never logged; the query is sent but not logged either.
    pub url: String,
    /// The shared secret that signs each request (required); `Debug` redacts it.
    pub secret: String,
    /// The channel name (default `webhook`): give each webhook of a deployment its own.
    pub channel: String,
    /// How long one request may take, from connecting to reading the answer
    /// (default 10 s).
    pub timeout: Duration,
}

impl WebhookConfig {
    /// A webhook to `url` signed with `secret`, on channel `webhook`, with a 10 s timeout.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: secret.into(),
            channel: DEFAULT_CHANNEL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = url::Url::parse(&self.url)
            .map(|u| display_url(&u))
            .unwrap_or_else(|_| "<not a URL>".to_owned());
        f.debug_struct("WebhookConfig")
            .field("url", &url)
            .field("secret", &"<redacted>")
            .field("channel", &self.channel)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A failure channel that POSTs a signed JSON event (see the [module](self) docs).
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: url::Url,
    /// The URL without credentials and query: for logs and [`Delivery::Sent`].
    shown: String,
    secret: String,
    channel: String,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("channel", &self.channel)
            .field("url", &self.shown)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// Checks `config` and prepares the HTTP client: the URL must be an absolute
    /// `http(s)` URL, the secret and the channel non-empty, the timeout above zero.
    pub fn new(config: WebhookConfig) -> Result<Self, ConfigError> {
        let WebhookConfig {
            url,
            secret,
            channel,
            timeout,
        } = config;
        let invalid = |reason: &str| ConfigError::InvalidUrl {
            field: "url",
            reason: reason.to_owned(),
        };
        if url.trim().is_empty() {
            return Err(ConfigError::Empty { field: "url" });
        }
        let url = url::Url::parse(url.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.host().is_none() {
            return Err(invalid("it names no host"));
        }
        if secret.trim().is_empty() {
            return Err(ConfigError::Empty { field: "secret" });
        }
        let channel = channel.trim().to_owned();
        if channel.is_empty() {
            return Err(ConfigError::Empty { field: "channel" });
        }
        if timeout.is_zero() {
            return Err(ConfigError::ZeroDuration { field: "timeout" });
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("chronos-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Tls {
                field: "url",
                source: e.into(),
            })?;
        Ok(Self {
            client,
            shown: display_url(&url),
            url,
            secret,
            channel,
        })
    }

    /// The channel name.
    pub fn channel_name(&self) -> &str {
        &self.channel
    }
}

/// The JSON body for `failure`, as sent.
pub fn event_body(failure: &Failure) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Event::of(failure))
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: Uuid,
    attempt: u32,
    job: JobView<'a>,
    execution: ExecutionView<'a>,
    attempts_made: u32,
}

#[derive(Serialize)]
struct JobView<'a> {
    id: Uuid,
    name: &'a str,
    owner: Uuid,
    handler: &'a str,
    timezone: &'a str,
    status: &'static str,
}

#[derive(Serialize)]
struct ExecutionView<'a> {
    id: Uuid,
    scheduled_for: String,
    attempt: u32,
    status: &'static str,
    error: Option<&'a str>,
    started_at: Option<String>,
    finished_at: Option<String>,
    manual: bool,
}

/// Returns the URL without credentials, query and fragment: safe to log and to name
/// as a delivery target.
fn display_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    // Both fail only for URLs that cannot have credentials at all.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl<'a> Event<'a> {
    fn of(failure: &'a Failure) -> Self {
        let job = &failure.job;
        let e = &failure.execution;
        Self {
            kind: JOB_FAILED,
            id: failure.id,
            attempt: failure.attempt,
            job: JobView {
                id: job.id,
                name: &job.name,
                owner: job.owner,
                handler: &job.handler,
                timezone: job.timezone.name(),
                status: job.status.as_str(),
            },
            execution: ExecutionView {
                id: e.id,
                scheduled_for: rfc3339(e.scheduled_for),
                attempt: e.attempt,
                status: e.status.as_str(),
                error: e.error.as_deref(),
                started_at: e.started_at.map(rfc3339),
                finished_at: e.finished_at.map(rfc3339),
                manual: e.manual,
            },
            attempts_made: failure.attempts_made(),
        }
    }
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Chronos-Signature` value for `body` sent at `timestamp` (unix seconds):
/// `v1=` and the lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn sign(secret: impl AsRef<[u8]>, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret.as_ref(), &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1={}", hex::encode(tag))
}

/// Why [`verify_signature`] rejected a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp header is not a number of seconds.
    #[error("the `Chronos-Timestamp` header is not a unix time: {0:?}")]
    MalformedTimestamp(String),
    /// The signature header holds no `v1=<hex>` entry.
    #[error("the `Chronos-Signature` header holds no `v1=<hex>` signature")]
    MalformedSignature,
    /// No signature matches: another secret, or the body or timestamp was changed.
    #[error("the signature does not match the body, the timestamp and the secret")]
    Mismatch,
    /// The signature is right but the timestamp is too far from now (a replay).
    #[error(
        "the request was signed {age_secs} s from now, beyond the tolerance of {tolerance_secs} s"
    )]
    Stale {
        /// How far the timestamp is from now (negative: in the future).
        age_secs: i64,
        /// The tolerance that was exceeded.
        tolerance_secs: u64,
    },
}

/// Checks a received webhook request: `timestamp_header` and `signature_header` are
/// the values of `Chronos-Timestamp` and `Chronos-Signature`, `body` the raw body
/// bytes, `now` the receiver's time, and `tolerance` how far the timestamp may be from
/// it, either way (see [`DEFAULT_TOLERANCE`]).
///
/// The signature header may hold several comma-separated entries (`v1=<a>,v1=<b>`, to
/// rotate secrets); one that matches suffices. Signatures are compared in constant
/// time. A request whose signature matches but whose timestamp is out of tolerance is
/// [`SignatureError::Stale`]; deduplicate the rest on `Chronos-Event-Id`.
pub fn verify_signature(
    secret: impl AsRef<[u8]>,
    timestamp_header: &str,
    body: &[u8],
    signature_header: &str,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let timestamp_header = timestamp_header.trim();
    let timestamp: i64 = timestamp_header
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp(timestamp_header.to_owned()))?;
    let expected = mac(secret.as_ref(), timestamp_header, body);
    let mut any = false;
    let mut matched = false;
    for entry in signature_header.split(',') {
        let Some(hex_tag) = entry.trim().strip_prefix("v1=") else {
            continue;
        };
        let Ok(tag) = hex::decode(hex_tag) else {
            continue;
        };
        any = true;
        if expected.clone().verify_slice(&tag).is_ok() {
            matched = true;
            break;
        }
    }
    if !any {
        return Err(SignatureError::MalformedSignature);
    }
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let age_secs = now.timestamp().saturating_sub(timestamp);
    if age_secs.unsigned_abs() > tolerance.as_secs() {
        return Err(SignatureError::Stale {
            age_secs,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(())
}

impl WebhookNotifier {
    fn request_error(&self, error: reqwest::Error) -> NotifyError {
        // The URL may carry credentials: keep it out of the message and the source.
        let error = error.without_url();
        let what = if error.is_timeout() {
            "did not answer in time"
        } else if error.is_connect() {
            "could not be reached"
        } else {
            "failed"
        };
        let message = format!("the webhook {} {what}: {}", self.shown, chain(&error));
        if error.is_builder() {
            NotifyError::permanent(message).with_source(error)
        } else {
            NotifyError::retryable(message).with_source(error)
        }
    }
}

/// Whether another attempt may get a different answer.
fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The start of an answer's body, on one line, for the log.
async fn snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_SNIPPET {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(BODY_SNIPPET)]).into_owned();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn channel(&self) -> &str {
        &self.channel
    }

    async fn job_failed(&self, failure: &Failure) -> Result<Delivery, NotifyError> {
        let body = event_body(failure).map_err(|e| {
            NotifyError::permanent(format!("the event could not be serialized: {e}")).with_source(e)
        })?;
        let timestamp = Utc::now().timestamp();
        let signature = sign(self.secret.as_bytes(), timestamp, &body);
        tracing::debug!(url = %self.shown, "posting failure event");
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, failure.id.to_string())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| self.request_error(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Delivery::Sent {
                to: self.shown.clone(),
            });
        }
        let note = if status.is_redirection() {
            " (redirects are not followed)"
        } else {
            ""
        };
        let message = format!(
            "the webhook {} answered {status}{note}{}",
            self.shown,
            snippet(response).await
        );
        Err(if retryable_status(status) {
            NotifyError::retryable(message)
        } else {
            NotifyError::permanent(message)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn signatures_are_lowercase_hex_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 style check against an independently computed value:
        // HMAC-SHA256("key", "1700000000.{}")
        let sig = sign("key", 1_700_000_000, b"{}");
        assert!(sig.starts_with("v1="));
        assert_eq!(sig.len(), 3 + 64);
        assert_eq!(sig, sig.to_lowercase());
        let mut mac = HmacSha256::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            sig,
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        // The well-known vector HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        let mut mac = HmacSha256::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn verification_accepts_the_right_secret_within_tolerance_only() {
        let now = t("2026-01-01T00:00:00Z");
        let ts = now.timestamp();
        let body = br#"{"type":"job.failed"}"#;
        let sig = sign("s", ts, body);
        let tol = DEFAULT_TOLERANCE;
        let ok = |secret: &str, ts: &str, body: &[u8], sig: &str, now| {
            verify_signature(secret, ts, body, sig, now, tol)
        };
        assert_eq!(ok("s", &ts.to_string(), body, &sig, now), Ok(()));
        assert_eq!(
            ok("t", &ts.to_string(), body, &sig, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ok("s", &ts.to_string(), br#"{"type":"job.failEd"}"#, &sig, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ok("s", &(ts + 1).to_string(), body, &sig, now),
            Err(SignatureError::Mismatch),
            "the timestamp is signed too"
        );
        assert_eq!(
            ok(
                "s",
                &ts.to_string(),
                body,
                &sig,
                now + chrono::Duration::seconds(301)
            ),
            Err(SignatureError::Stale {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            ok(
                "s",
                &ts.to_string(),
                body,
                &sig,
                now - chrono::Duration::seconds(301)
            ),
            Err(SignatureError::Stale {
                age_secs: -301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            ok(
                "s",
                &ts.to_string(),
                body,
                &sig,
                now + chrono::Duration::seconds(300)
            ),
            Ok(())
        );
        assert_eq!(
            ok("s", "yesterday", body, &sig, now),
            Err(SignatureError::MalformedTimestamp("yesterday".into()))
        );
        assert_eq!(
            ok("s", &ts.to_string(), body, "sha256=abc", now),
            Err(SignatureError::MalformedSignature)
        );
        assert_eq!(
            ok("s", &ts.to_string(), body, "v1=zz", now),
            Err(SignatureError::MalformedSignature)
        );
        let rotated = format!("v1={}, {sig}", "00".repeat(32));
        assert_eq!(ok("s", &ts.to_string(), body, &rotated, now), Ok(()));
    }

    #[test]
    fn display_url_drops_credentials_query_and_fragment() {
        let url =
            url::Url::parse("https://user:pw@hooks.example.com:8443/a/b?token=x#frag").unwrap();
        assert_eq!(display_url(&url), "https://hooks.example.com:8443/a/b");
    }

    #[test]
    fn statuses_are_classified() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [301, 400, 401, 403, 404, 410, 422] {
            assert!(
                !retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn configuration_is_checked_and_the_secret_redacted() {
        let ok = WebhookNotifier::new(WebhookConfig::new(
            "https://user:pw@hooks.example.com/x?token=t",
            "topsecret",
        ))
        .unwrap();
        assert_eq!(ok.channel(), "webhook");
        assert_eq!(ok.shown, "https://hooks.example.com/x");
        let shown = format!("{ok:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("pw") && !shown.contains("token"),
            "{shown}"
        );
        let cfg = WebhookConfig::new("https://user:pw@hooks.example.com/x?token=t", "topsecret");
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("pw@") && !shown.contains("token"),
            "{shown}"
        );

        let err = |cfg: WebhookConfig| WebhookNotifier::new(cfg).unwrap_err();
        let base = || WebhookConfig::new("https://hooks.example.com", "s");
        assert!(matches!(
            err(WebhookConfig {
                secret: " ".into(),
                ..base()
            }),
            ConfigError::Empty { field: "secret" }
        ));
        assert!(matches!(
            err(WebhookConfig {
                channel: "".into(),
                ..base()
            }),
            ConfigError::Empty { field: "channel" }
        ));
        assert!(matches!(
            err(WebhookConfig {
                url: "".into(),
                ..base()
            }),
            ConfigError::Empty { field: "url" }
        ));
        for url in ["hooks.example.com", "ftp://hooks.example.com", "http://"] {
            assert!(
                matches!(
                    err(WebhookConfig {
                        url: url.into(),
                        ..base()
                    }),
                    ConfigError::InvalidUrl { field: "url", .. }
                ),
                "{url}"
            );
        }
        assert!(matches!(
            err(WebhookConfig {
                timeout: Duration::ZERO,
                ..base()
            }),
            ConfigError::ZeroDuration { field: "timeout" }
        ));
        let second = WebhookNotifier::new(WebhookConfig {
            channel: "webhook-ops".into(),
            ..base()
        })
        .unwrap();
        assert_eq!(second.channel_name(), "webhook-ops");
    }
}
