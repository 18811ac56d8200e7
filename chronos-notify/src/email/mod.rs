//! [`EmailNotifier`]: failure emails over SMTP.
//!
//! The notifier renders one email per failure (see [`crate`] for what it holds) and
//! hands it to the SMTP server configured in [`SmtpConfig`]. The recipient comes
//! from a [`Recipients`] implementation.
//!
//! How SMTP outcomes reach the engine:
//!
//! | outcome | [`Delivery`] / [`NotifyError`] |
//! |---|---|
//! | the server accepted the message | `Sent { to: <address> }` |
//! | no address is known for the owner | `Skipped { reason }` |
//! | the address cannot be parsed | permanent |
//! | a `5xx` reply (unknown mailbox, bad credentials, ...) | permanent |
//! | a `4xx` reply, connection refused, timeout, TLS or network failure | retryable |
//!
//! ```
//! use std::time::Duration;
//! use chronos_notify::{ConfigError, EmailNotifier, FixedRecipient, SmtpConfig, TlsMode};
//!
//! # fn main() -> Result<(), ConfigError> {
//! let cfg = SmtpConfig {
//!     port: 2525,
//!     timeout: Duration::from_secs(10),
//!     ..SmtpConfig::new("smtp.example.com", TlsMode::StartTls, "chronos@example.com")
//! };
//! let email = EmailNotifier::new(cfg, FixedRecipient::new("ops@example.com")?)?;
//! assert_eq!(chronos::Notifier::channel(&email), "email");
//!
//! // Configuration errors name the field.
//! let bad = SmtpConfig::new("smtp.example.com", TlsMode::StartTls, "not an address");
//! let err = EmailNotifier::new(bad, FixedRecipient::new("ops@example.com")?).unwrap_err();
//! assert!(matches!(err, ConfigError::InvalidAddress { field: "from", .. }));
//! # Ok(())
//! # }
//! ```

mod message;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chronos::notifier::{Delivery, Failure, Notifier, NotifyError};
use lettre::Address;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{self};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use uuid::Uuid;

use crate::{ConfigError, chain};

use message::LogsPointer;

/// The channel name of [`EmailNotifier`].
pub const CHANNEL: &str = "email";

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain text throughout: only for a relay on a trusted network (no credentials).
    None,
    /// Connect in plain text, then upgrade with `STARTTLS`; a server that does not
    /// offer it is an error (never a silent downgrade). Usually port 587.
    #[default]
    StartTls,
    /// TLS from the first byte ("SMTPS"). Usually port 465.
    Implicit,
}

impl TlsMode {
    /// The usual port for this mode: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::None => 25,
            TlsMode::StartTls => 587,
            TlsMode::Implicit => 465,
        }
    }
}

/// Where and how [`EmailNotifier`] sends email. Start from [`SmtpConfig::new`] and
/// change fields with struct-update syntax; [`EmailNotifier::new`] checks them.
#[derive(Clone)]
pub struct SmtpConfig {
    /// The SMTP server's host name (also the name its TLS certificate must carry).
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: TlsMode,
    /// The user to authenticate as (`AUTH PLAIN` or `LOGIN`); with `password`.
    pub username: Option<String>,
    /// The password; never logged, and shown as `<redacted>` by `Debug`.
    pub password: Option<String>,
    /// The sender: `chronos@example.com` or `Chronos <chronos@example.com>`.
    pub from: String,
    /// A PEM certificate (or several) to trust besides the public web roots: a
    /// private CA, or the self-signed certificate of a test server.
    pub root_certificate: Option<String>,
    /// How long one email may take, from connecting to the server's acceptance of the
    /// message (default 20 s; keep it below the engine's
    /// [`NotifyPolicy::timeout`](chronos::NotifyPolicy::timeout), 30 s by default,
    /// so the log names the SMTP server as the cause).
    pub timeout: Duration,
    /// The public base URL of the Chronos API (`https://chronos.example.com`): the
    /// email links to `{logs_url}/api/v1/executions/{execution_id}/logs`. Without
    /// it, the email names the route `GET /api/v1/executions/{id}/logs`.
    pub logs_url: Option<String>,
}

impl SmtpConfig {
    /// A configuration for `host` with `tls`, on the mode's usual port, without
    /// credentials, extra roots or a logs URL, and a 20 s timeout.
    pub fn new(host: impl Into<String>, tls: TlsMode, from: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: tls.default_port(),
            tls,
            username: None,
            password: None,
            from: from.into(),
            root_certificate: None,
            timeout: Duration::from_secs(20),
            logs_url: None,
        }
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field(
                "root_certificate",
                &self.root_certificate.as_ref().map(|_| "<PEM>"),
            )
            .field("timeout", &self.timeout)
            .field("logs_url", &self.logs_url)
            .finish()
    }
}

/// Who receives the failure email of a job: the address of the job's owner.
///
/// ```
/// use async_trait::async_trait;
/// use chronos::notifier::NotifyError;
/// use chronos_notify::Recipients;
/// use uuid::Uuid;
///
/// /// Looks owners up in a directory.
/// struct Directory;
///
/// #[async_trait]
/// impl Recipients for Directory {
///     async fn email_of(&self, owner: Uuid) -> Result<Option<String>, NotifyError> {
///         // a lookup that is down would return `NotifyError::retryable(..)`
///         Ok((owner == Uuid::nil()).then(|| "admin@example.com".to_owned()))
///     }
/// }
/// ```
#[async_trait]
pub trait Recipients: Send + Sync + 'static {
    /// The email address of `owner`, or `None` if none is known (the notification
    /// is then skipped). An error is passed on as the attempt's outcome.
    async fn email_of(&self, owner: Uuid) -> Result<Option<String>, NotifyError>;
}

#[async_trait]
impl<R: Recipients + ?Sized> Recipients for Arc<R> {
    async fn email_of(&self, owner: Uuid) -> Result<Option<String>, NotifyError> {
        (**self).email_of(owner).await
    }
}

/// Sends every failure to one address (an operations mailbox, say).
#[derive(Debug, Clone)]
pub struct FixedRecipient {
    address: String,
}

impl FixedRecipient {
    /// All failures to `address`, which must be a valid email address.
    pub fn new(address: impl Into<String>) -> Result<Self, ConfigError> {
        let address = address.into();
        match Mailbox::from_str(&address) {
            Ok(_) => Ok(Self { address }),
            Err(source) => Err(ConfigError::InvalidAddress {
                field: "recipient",
                value: address,
                source: source.into(),
            }),
        }
    }

    /// The address.
    pub fn address(&self) -> &str {
        &self.address
    }
}

#[async_trait]
impl Recipients for FixedRecipient {
    async fn email_of(&self, _owner: Uuid) -> Result<Option<String>, NotifyError> {
        Ok(Some(self.address.clone()))
    }
}

/// How long a QUIT after an accepted message may take.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// The reason given when no address is known for the job's owner.
pub const NO_ADDRESS: &str = "no email address is known for the job's owner";

/// A failure channel that sends an email over SMTP (channel name `email`).
///
/// Each email travels over its own connection (connect, TLS, AUTH, one transaction,
/// QUIT), under one deadline, [`SmtpConfig::timeout`]. Failures are rare, and a
/// connection that an attempt abandoned (at its deadline, or when the engine's
/// timeout cancels it) is closed with it instead of being handed to the next email
/// mid-transaction, as a connection pool would.
pub struct EmailNotifier {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    from: Mailbox,
    logs: LogsPointer,
    recipients: Box<dyn Recipients>,
}

impl fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls_mode())
            .field("authenticated", &self.credentials.is_some())
            .field("timeout", &self.timeout)
            .field("from", &self.from.to_string())
            .field("logs", &self.logs)
            .finish_non_exhaustive()
    }
}

impl EmailNotifier {
    /// Checks `config` and prepares the SMTP client. Fails with the field that is
    /// wrong: an empty host, an invalid `from`, credentials that are half given or
    /// would travel without TLS, a root certificate that is not PEM, a zero timeout,
    /// or a `logs_url` that is not an absolute `http(s)` URL.
    ///
    /// Needs no async runtime.
    pub fn new(config: SmtpConfig, recipients: impl Recipients) -> Result<Self, ConfigError> {
        let SmtpConfig {
            host,
            port,
            tls,
            username,
            password,
            from,
            root_certificate,
            timeout,
            logs_url,
        } = config;
        let host = host.trim().to_owned();
        if host.is_empty() {
            return Err(ConfigError::Empty { field: "host" });
        }
        if from.trim().is_empty() {
            return Err(ConfigError::Empty { field: "from" });
        }
        let from =
            Mailbox::from_str(from.trim()).map_err(|source| ConfigError::InvalidAddress {
                field: "from",
                value: from.clone(),
                source: source.into(),
            })?;
        if timeout.is_zero() {
            return Err(ConfigError::ZeroDuration { field: "timeout" });
        }
        let credentials = match (username, password) {
            (Some(user), Some(password)) => Some(Credentials::new(user, password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::IncompleteCredentials {
                    given: "username",
                    missing: "password",
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::IncompleteCredentials {
                    given: "password",
                    missing: "username",
                });
            }
        };
        if credentials.is_some() && tls == TlsMode::None {
            return Err(ConfigError::CredentialsWithoutTls);
        }
        let logs = LogsPointer::new(logs_url.as_deref())?;
        let tls = match tls {
            TlsMode::None => Tls::None,
            TlsMode::StartTls => Tls::Required(tls_parameters(&host, root_certificate.as_deref())?),
            TlsMode::Implicit => Tls::Wrapper(tls_parameters(&host, root_certificate.as_deref())?),
        };
        Ok(Self {
            host,
            port,
            tls,
            credentials,
            timeout,
            hello: ClientId::default(),
            from,
            logs,
            recipients: Box::new(recipients),
        })
    }

    fn tls_mode(&self) -> TlsMode {
        match self.tls {
            Tls::Required(_) | Tls::Opportunistic(_) => TlsMode::StartTls,
            Tls::Wrapper(_) => TlsMode::Implicit,
            Tls::None => TlsMode::None,
        }
    }

    /// The email for `failure` addressed to `to`.
    fn message(&self, failure: &Failure, to: Mailbox) -> Result<lettre::Message, NotifyError> {
        let rendered = message::render(failure, &self.logs);
        lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(message::message_id(failure)))
            .multipart(lettre::message::MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| {
                NotifyError::permanent(format!("the email could not be built: {e}")).with_source(e)
            })
    }

    /// Connects, secures, authenticates and transfers `email`; returns the open
    /// connection for a polite QUIT. (lettre closes the connection on an error.)
    async fn transfer(&self, email: &lettre::Message) -> Result<AsyncSmtpConnection, smtp::Error> {
        let wrapper = match &self.tls {
            Tls::Wrapper(parameters) => Some(parameters.clone()),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            wrapper,
            None,
        )
        .await?;
        if let Tls::Required(parameters) = &self.tls {
            conn.starttls(parameters.clone(), &self.hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        conn.send(email.envelope(), &email.formatted()).await?;
        Ok(conn)
    }
}

/// TLS parameters for `host`, trusting the public web roots and `extra_root`.
fn tls_parameters(host: &str, extra_root: Option<&str>) -> Result<TlsParameters, ConfigError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(pem) = extra_root {
        let count = <CertificateDer<'_> as PemObject>::pem_slice_iter(pem.as_bytes())
            .try_fold(0usize, |n, cert| cert.map(|_| n + 1))
            .map_err(|e| ConfigError::InvalidCertificate {
                reason: e.to_string(),
            })?;
        if count == 0 {
            return Err(ConfigError::InvalidCertificate {
                reason: "no `-----BEGIN CERTIFICATE-----` block found".to_owned(),
            });
        }
        let cert =
            Certificate::from_pem(pem.as_bytes()).map_err(|e| ConfigError::InvalidCertificate {
                reason: e.to_string(),
            })?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|source| ConfigError::Tls {
        field: "root_certificate",
        source: source.into(),
    })
}

impl EmailNotifier {
    /// Classifies an SMTP failure: only a permanent (`5xx`) reply is final.
    fn smtp_error(&self, error: smtp::Error) -> NotifyError {
        let (retryable, what) = if error.is_permanent() {
            (false, "refused")
        } else if error.is_transient() {
            (true, "deferred")
        } else if error.is_timeout() {
            (true, "did not answer in time")
        } else if error.is_tls() {
            (true, "failed to set up TLS")
        } else {
            (true, "could not be reached")
        };
        let message = format!(
            "the SMTP server {}:{} {what}: {}",
            self.host,
            self.port,
            chain(&error)
        );
        let e = if retryable {
            NotifyError::retryable(message)
        } else {
            NotifyError::permanent(message)
        };
        e.with_source(error)
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn channel(&self) -> &str {
        CHANNEL
    }

    async fn job_failed(&self, failure: &Failure) -> Result<Delivery, NotifyError> {
        let Some(address) = self.recipients.email_of(failure.job.owner).await? else {
            return Ok(Delivery::Skipped {
                reason: NO_ADDRESS.to_owned(),
            });
        };
        let to = Address::from_str(address.trim())
            .map(Mailbox::from)
            .or_else(|_| Mailbox::from_str(address.trim()))
            .map_err(|e| {
                NotifyError::permanent(format!(
                    "the owner's email address {address:?} is not valid: {e}"
                ))
                .with_source(e)
            })?;
        let email = self.message(failure, to.clone())?;
        tracing::debug!(host = %self.host, port = self.port, to = %to.email, "sending failure email");
        match tokio::time::timeout(self.timeout, self.transfer(&email)).await {
            Ok(Ok(mut conn)) => {
                // The message is accepted: say goodbye in the background, so that a slow
                // QUIT can neither delay nor (through the engine's timeout) undo that.
                let wait = QUIT_WAIT.min(self.timeout);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(wait, conn.quit()).await;
                });
            }
            Ok(Err(error)) => return Err(self.smtp_error(error)),
            Err(_) => {
                return Err(NotifyError::retryable(format!(
                    "the SMTP server {}:{} did not complete the exchange within {} s",
                    self.host,
                    self.port,
                    self.timeout.as_secs_f64()
                )));
            }
        }
        Ok(Delivery::Sent {
            to: to.email.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use super::*;

    fn cfg() -> SmtpConfig {
        SmtpConfig::new(
            "smtp.example.com",
            TlsMode::StartTls,
            "Chronos <chronos@example.com>",
        )
    }

    fn ops() -> FixedRecipient {
        FixedRecipient::new("ops@example.com").unwrap()
    }

    #[test]
    fn the_password_is_redacted_in_debug() {
        let cfg = SmtpConfig {
            username: Some("chronos".into()),
            password: Some("hunter2".into()),
            ..cfg()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let notifier = EmailNotifier::new(cfg, ops()).unwrap();
        assert!(!format!("{notifier:?}").contains("hunter2"));
    }

    #[test]
    fn construction_needs_no_runtime_and_uses_the_modes_port() {
        let n = EmailNotifier::new(cfg(), ops()).unwrap();
        assert_eq!((n.host.as_str(), n.port), ("smtp.example.com", 587));
        assert_eq!(n.channel(), "email");
        let implicit = SmtpConfig::new("smtp.example.com", TlsMode::Implicit, "a@example.com");
        assert_eq!(implicit.port, 465);
    }

    #[test]
    fn bad_fields_are_named() {
        let err = |cfg: SmtpConfig| EmailNotifier::new(cfg, ops()).unwrap_err();
        assert!(matches!(
            err(SmtpConfig {
                host: " ".into(),
                ..cfg()
            }),
            ConfigError::Empty { field: "host" }
        ));
        assert!(matches!(
            err(SmtpConfig {
                from: "".into(),
                ..cfg()
            }),
            ConfigError::Empty { field: "from" }
        ));
        for from in ["nope", "a@b.com, c@d.com", "a@b.com\r\nBcc: c@d.com"] {
            assert!(matches!(
                err(SmtpConfig {
                    from: from.into(),
                    ..cfg()
                }),
                ConfigError::InvalidAddress { field: "from", .. }
            ));
        }
        assert!(matches!(
            err(SmtpConfig {
                username: Some("u".into()),
                ..cfg()
            }),
            ConfigError::IncompleteCredentials {
                missing: "password",
                ..
            }
        ));
        assert!(matches!(
            err(SmtpConfig {
                password: Some("p".into()),
                ..cfg()
            }),
            ConfigError::IncompleteCredentials {
                missing: "username",
                ..
            }
        ));
        assert!(matches!(
            err(SmtpConfig {
                tls: TlsMode::None,
                username: Some("u".into()),
                password: Some("p".into()),
                ..cfg()
            }),
            ConfigError::CredentialsWithoutTls
        ));
        assert!(matches!(
            err(SmtpConfig {
                timeout: Duration::ZERO,
                ..cfg()
            }),
            ConfigError::ZeroDuration { field: "timeout" }
        ));
        assert!(matches!(
            err(SmtpConfig {
                root_certificate: Some("not pem".into()),
                ..cfg()
            }),
            ConfigError::InvalidCertificate { .. }
        ));
        for url in [
            "chronos.example.com",
            "ftp://chronos.example.com",
            "https://x.example.com/?a=b",
        ] {
            assert!(matches!(
                err(SmtpConfig {
                    logs_url: Some(url.into()),
                    ..cfg()
                }),
                ConfigError::InvalidUrl {
                    field: "logs_url",
                    ..
                }
            ));
        }
        let message = err(SmtpConfig {
            from: "nope".into(),
            ..cfg()
        })
        .to_string();
        assert_eq!(message, "`from` is not a valid email address: \"nope\"");
    }

    #[test]
    fn a_fixed_recipient_must_be_an_address() {
        assert_eq!(ops().address(), "ops@example.com");
        let err = FixedRecipient::new("ops at example").unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InvalidAddress {
                field: "recipient",
                ..
            }
        ));
    }
}
