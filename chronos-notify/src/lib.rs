//! # chronos-notify
//!
//! Channels that tell a job's owner that the job failed for good, for
//! [`Chronos`](chronos::Chronos): [`EmailNotifier`] sends an email over SMTP, and
//! [`WebhookNotifier`] POSTs a signed JSON event to a URL. Register either (or both)
//! with [`ChronosBuilder::notifier`](chronos::ChronosBuilder::notifier); the engine
//! records one notification per failed occurrence and channel in its outbox, calls the
//! channel, retries transient errors with a doubling backoff and writes the outcome
//! into the failed execution's log (see [`chronos::notifier`] and
//! [`NotifyPolicy`](chronos::NotifyPolicy)).
//!
//! Both channels classify their errors for the engine: an error that another attempt
//! may fix (a server that is down, a timeout, an SMTP `4xx`, an HTTP `503`) is
//! [retryable](chronos::notifier::NotifyError::is_retryable); a refusal (an SMTP
//! `5xx`, an HTTP `400`) is permanent and is not tried again.
//!
//! ## Email (feature `email`)
//! An [`SmtpConfig`] says where the SMTP server is and how to talk to it:
//! - `host` and `port`, and the [`TlsMode`]: [`StartTls`](TlsMode::StartTls)
//!   (submission, port 587, the default), [`Implicit`](TlsMode::Implicit) (TLS from
//!   the first byte, port 465) or [`None`](TlsMode::None) (a relay on a trusted
//!   network; credentials are refused without TLS);
//! - `username` and `password` for `AUTH PLAIN`/`LOGIN` (both or neither; the password
//!   is never logged, and `Debug` shows it as `<redacted>`);
//! - `from`, the sender (`chronos@example.com` or `Chronos <chronos@example.com>`);
//! - `root_certificate`, a PEM certificate to trust besides the public roots (a
//!   private CA, a self-signed test server);
//! - `timeout`, how long one email may take from connecting to the server's
//!   acceptance (default 20 s);
//! - `logs_url`, the public base URL of the Chronos API: the email then links to
//!   `{logs_url}/api/v1/executions/{execution_id}/logs` (without it, the email names
//!   the route).
//!
//! Who receives the email is up to a [`Recipients`] implementation: the HTTP service
//! looks up the job owner's address, and [`FixedRecipient`] sends every failure to
//! one address. An owner without an address is skipped (and the execution's log says
//! so). The email's subject is `Job Failed: <job name>`; its plain-text and HTML
//! parts give the job, the failure time in UTC and in the job's time zone, the
//! attempts made, the error and where to read the execution's log. Its `Message-ID`
//! is derived from the notification's id, so a repeated attempt can be deduplicated.
//!
//! ## Webhook (feature `webhook`)
//! A [`WebhookConfig`] names the URL, the shared secret that signs each request, the
//! per-request timeout (default 10 s) and the channel name (default `webhook`; give a
//! second webhook its own name). Receivers check requests with [`verify_signature`];
//! the [`webhook`] module documents the body and the headers.
//!
//! ## Registering them
//! ```no_run
//! use chronos::Chronos;
//! use chronos_notify::{
//!     EmailNotifier, FixedRecipient, SmtpConfig, TlsMode, WebhookConfig, WebhookNotifier,
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = SmtpConfig {
//!     username: Some("chronos".into()),
//!     password: Some(std::env::var("SMTP_PASSWORD")?),
//!     logs_url: Some("https://chronos.example.com".into()),
//!     ..SmtpConfig::new("smtp.example.com", TlsMode::StartTls, "Chronos <chronos@example.com>")
//! };
//! let hook = WebhookConfig::new(
//!     "https://hooks.example.com/chronos",
//!     std::env::var("WEBHOOK_SECRET")?,
//! );
//! let chronos = Chronos::builder()
//!     .notifier(EmailNotifier::new(cfg, FixedRecipient::new("ops@example.com")?)?)
//!     .notifier(WebhookNotifier::new(hook)?)
//!     .build()
//!     .await?;
//! # chronos.shutdown().await?;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "email")]
pub mod email;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "webhook")]
pub mod webhook;

#[cfg(feature = "email")]
pub use email::{EmailNotifier, FixedRecipient, Recipients, SmtpConfig, TlsMode};
#[cfg(feature = "webhook")]
pub use webhook::{SignatureError, WebhookConfig, WebhookNotifier, verify_signature};

/// A notifier's configuration is unusable; the variant names the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required field is empty.
    #[error("`{field}` must not be empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A field is not a valid email address.
    #[error("`{field}` is not a valid email address: {value:?}")]
    InvalidAddress {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
        /// Why it was rejected.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A field is not a usable URL.
    #[error("`{field}` is not a usable URL: {reason}")]
    InvalidUrl {
        /// The field.
        field: &'static str,
        /// Why it was rejected (the URL itself is left out: it may hold credentials).
        reason: String,
    },
    /// The extra root certificate is not a PEM certificate.
    #[error("`root_certificate` is not a usable PEM certificate: {reason}")]
    InvalidCertificate {
        /// Why it was rejected.
        reason: String,
    },
    /// Only one of `username` and `password` is set.
    #[error("`{missing}` is required when `{given}` is set")]
    IncompleteCredentials {
        /// The field that is set.
        given: &'static str,
        /// The field that is missing.
        missing: &'static str,
    },
    /// Credentials were given for a connection without TLS.
    #[error(
        "`tls` is `None`, so `username` and `password` would travel in clear text; use `StartTls` or `Implicit`"
    )]
    CredentialsWithoutTls,
    /// A duration is zero.
    #[error("`{field}` must be longer than zero")]
    ZeroDuration {
        /// The field.
        field: &'static str,
    },
    /// The TLS client could not be set up from the configuration.
    #[error("`{field}`: the TLS client could not be set up")]
    Tls {
        /// The field that led to it.
        field: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An error and its causes, `: `-separated, without repeating a cause that the
/// message before already ends with (many errors print their source themselves).
#[cfg(any(feature = "email", feature = "webhook"))]
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use super::*;

    #[test]
    fn config_errors_name_the_field() {
        let e = ConfigError::Empty { field: "secret" };
        assert_eq!(e.to_string(), "`secret` must not be empty");
        let e = ConfigError::IncompleteCredentials {
            given: "username",
            missing: "password",
        };
        assert_eq!(
            e.to_string(),
            "`password` is required when `username` is set"
        );
    }
}
