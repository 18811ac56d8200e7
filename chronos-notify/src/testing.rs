//! Test helpers (feature `testing`): a real SMTP server in the test's own process,
//! and self-signed certificates for it.
//!
//! [`SmtpServer`] is `mailin`'s SMTP protocol engine (the one inside
//! `mailin-embedded`) driven by tokio and tokio-rustls, on `127.0.0.1`: plain text,
//! STARTTLS or implicit TLS ([`ServerTls`]), optional `AUTH PLAIN`/`LOGIN`, and a
//! scripted refusal of every recipient ([`ServerOptions`]). It keeps every message
//! it accepts ([`Received`]: envelope, raw data, whether the session was encrypted
//! and who authenticated) for the test to take, and stops when dropped.
//! (`mailin-embedded` itself serves forever on blocking threads, reads certificates
//! only from files, has no implicit TLS and pulls in rustls with aws-lc; this keeps
//! everything on ring, in the test's runtime, and stops with the test.)
//!
//! The server runs on the tokio runtime it was started on: start it from the test's
//! runtime (a multi-threaded one when the code under test blocks a thread).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use chronos_notify::testing::{ServerOptions, SmtpServer};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server = SmtpServer::start(ServerOptions::default()).await?;
//! // ... point the code under test at 127.0.0.1:{server.port()} without TLS ...
//! let mail = server
//!     .next_mail(Duration::from_secs(10))
//!     .await
//!     .ok_or("no email within 10 s")?;
//! assert_eq!(mail.to, ["owner@example.com"]);
//! let message = mail.parsed().ok_or("not a MIME message")?;
//! assert_eq!(message.subject(), Some("Job Failed: nightly"));
//! assert!(server.try_next().is_none(), "exactly one email");
//! # Ok(())
//! # }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mailin::{AuthMechanism, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub use mail_parser;
pub use tokio_rustls::rustls::ServerConfig;

/// Why a [`TestCert`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestCertError {
    /// The key pair or the certificate could not be generated.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or the protocol versions.
    #[error("cannot build the TLS server configuration: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
}

/// A self-signed certificate for `127.0.0.1` and `localhost`, and a rustls server
/// configuration (ring) that presents it.
#[derive(Clone)]
pub struct TestCert {
    /// The certificate in PEM: what a client must trust (for the email notifier,
    /// `SmtpConfig::root_certificate`).
    pub pem: String,
    /// The server side, for [`ServerTls::StartTls`] or [`ServerTls::Implicit`].
    pub config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TestCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCert").finish_non_exhaustive()
    }
}

impl TestCert {
    /// Generates a fresh key pair and certificate.
    pub fn new() -> Result<TestCert, TestCertError> {
        let key = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(key.cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der())),
            )?;
        Ok(TestCert {
            pem: key.cert.pem(),
            config: Arc::new(config),
        })
    }
}

/// How the test server secures connections.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum ServerTls {
    /// Plain text; STARTTLS is not offered.
    #[default]
    Plain,
    /// STARTTLS is offered (and AUTH only after it).
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte (SMTPS).
    Implicit(Arc<ServerConfig>),
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerTls::Plain => "Plain",
            ServerTls::StartTls(_) => "StartTls",
            ServerTls::Implicit(_) => "Implicit",
        })
    }
}

/// What the test server does. The default: plain text, no AUTH, every message
/// accepted.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// How connections are secured.
    pub tls: ServerTls,
    /// Offer and require `AUTH PLAIN` or `LOGIN` with this user and password.
    pub auth: Option<(String, String)>,
    /// Answer every `RCPT TO` with this code and text (e.g. `550` for a permanent
    /// refusal, `451` for a temporary one) instead of accepting it.
    pub reject_rcpt: Option<(u16, String)>,
}

/// One message the server accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message as transmitted (dot-unstuffed), headers and body.
    pub data: Vec<u8>,
    /// Whether the session was encrypted when the message came.
    pub tls: bool,
    /// The user the session authenticated as.
    pub user: Option<String>,
}

impl Received {
    /// The message parsed as MIME (`None` if it does not parse): subject, headers,
    /// text and HTML bodies.
    pub fn parsed(&self) -> Option<mail_parser::Message<'_>> {
        mail_parser::MessageParser::default().parse(&self.data)
    }

    /// The message as text (lossy UTF-8), headers and body.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A real SMTP server on `127.0.0.1` (see the [module docs](self)). Dropping it
/// stops it: the listener closes and open sessions end.
#[derive(Debug)]
pub struct SmtpServer {
    addr: SocketAddr,
    mail: mpsc::UnboundedReceiver<Received>,
    rcpts: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    /// Starts a server on an ephemeral port of `127.0.0.1`.
    pub async fn start(options: ServerOptions) -> std::io::Result<SmtpServer> {
        Self::start_on(0, options).await
    }

    /// Starts a server on `port` of `127.0.0.1` (0: any free one). Fails when the
    /// port is taken.
    pub async fn start_on(port: u16, options: ServerOptions) -> std::io::Result<SmtpServer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (tx, mail) = mpsc::unbounded_channel();
        let rcpts = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            options: Arc::new(options),
            tx,
            rcpts: rcpts.clone(),
        };
        let task = tokio::spawn(async move {
            // The sessions are aborted with the set when the server task is.
            let mut sessions = tokio::task::JoinSet::new();
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: try again shortly.
                        tracing::debug!(%error, "the test SMTP server could not accept");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                while sessions.try_join_next().is_some() {}
                let shared = shared.clone();
                sessions.spawn(async move {
                    if let Err(error) = serve(stream, peer.ip(), shared).await {
                        tracing::debug!(%error, "test SMTP session ended");
                    }
                });
            }
        });
        Ok(SmtpServer {
            addr,
            mail,
            rcpts,
            task,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next message the server accepts (or has accepted and not yet handed
    /// out), waiting at most `timeout`; `None` when none comes in time.
    pub async fn next_mail(&mut self, timeout: Duration) -> Option<Received> {
        tokio::time::timeout(timeout, self.mail.recv())
            .await
            .ok()
            .flatten()
    }

    /// A message already accepted and not yet handed out, if any (no waiting).
    pub fn try_next(&mut self) -> Option<Received> {
        self.mail.try_recv().ok()
    }

    /// How many `RCPT TO` commands the server has answered, accepted or not.
    pub fn rcpt_commands(&self) -> usize {
        self.rcpts.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Shared {
    options: Arc<ServerOptions>,
    tx: mpsc::UnboundedSender<Received>,
    rcpts: Arc<AtomicUsize>,
}

/// One session's decisions, for `mailin`.
struct Session {
    shared: Shared,
    current: Received,
    user: Option<String>,
    tls: Arc<AtomicBool>,
}

impl Handler for Session {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.current.from = from.to_owned();
        self.current.to.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        self.shared.rcpts.fetch_add(1, Ordering::SeqCst);
        if let Some((code, text)) = &self.shared.options.reject_rcpt {
            return Response::custom(*code, text.clone());
        }
        self.current.to.push(to.to_owned());
        mailin::response::OK
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.current.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut mail = std::mem::take(&mut self.current);
        mail.tls = self.tls.load(Ordering::SeqCst);
        mail.user.clone_from(&self.user);
        // The receiver is gone only when the server is being dropped.
        let _ = self.shared.tx.send(mail);
        mailin::response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.check(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check(user, password)
    }
}

impl Session {
    fn check(&mut self, user: &str, password: &str) -> Response {
        match &self.shared.options.auth {
            Some((u, p)) if u == user && p == password => {
                self.user = Some(user.to_owned());
                mailin::response::AUTH_OK
            }
            _ => mailin::response::INVALID_CREDENTIALS,
        }
    }
}

enum Ended {
    Closed,
    StartTls,
}

async fn serve(stream: TcpStream, ip: IpAddr, shared: Shared) -> std::io::Result<()> {
    let options = shared.options.clone();
    let mut builder = SessionBuilder::new("chronos-test-smtp");
    if !matches!(options.tls, ServerTls::Plain) {
        builder.enable_start_tls();
    }
    if options.auth.is_some() {
        builder
            .enable_auth(AuthMechanism::Plain)
            .enable_auth(AuthMechanism::Login);
    }
    let tls = Arc::new(AtomicBool::new(false));
    let mut session = builder.build(
        ip,
        Session {
            shared,
            current: Received::default(),
            user: None,
            tls: tls.clone(),
        },
    );
    match &options.tls {
        ServerTls::Implicit(config) => {
            let stream = TlsAcceptor::from(config.clone()).accept(stream).await?;
            tls.store(true, Ordering::SeqCst);
            session.tls_active();
            converse(&mut session, &mut BufStream::new(stream), true).await?;
        }
        ServerTls::Plain => {
            converse(&mut session, &mut BufStream::new(stream), true).await?;
        }
        ServerTls::StartTls(config) => {
            let mut plain = BufStream::new(stream);
            if let Ended::StartTls = converse(&mut session, &mut plain, true).await? {
                let stream = TlsAcceptor::from(config.clone())
                    .accept(plain.into_inner())
                    .await?;
                tls.store(true, Ordering::SeqCst);
                session.tls_active();
                converse(&mut session, &mut BufStream::new(stream), false).await?;
            }
        }
    }
    Ok(())
}

async fn converse<H: Handler, S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut mailin::Session<H>,
    stream: &mut BufStream<S>,
    greet: bool,
) -> std::io::Result<Ended> {
    if greet {
        stream.write_all(&session.greeting().buffer()?).await?;
        stream.flush().await?;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        if stream.read_until(b'\n', &mut line).await? == 0 {
            return Ok(Ended::Closed);
        }
        let response = session.process(&line);
        if response.action == mailin::Action::NoReply {
            continue;
        }
        stream.write_all(&response.buffer()?).await?;
        stream.flush().await?;
        match response.action {
            mailin::Action::Close => return Ok(Ended::Closed),
            mailin::Action::UpgradeTls => return Ok(Ended::StartTls),
            mailin::Action::Reply | mailin::Action::NoReply => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use super::*;
    use tokio::io::AsyncReadExt;

    /// Sends `lines` one by one, reading one reply after each; returns the replies.
    async fn talk(port: u16, lines: &[&str]) -> Vec<String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut stream = BufStream::new(stream);
        let mut replies = Vec::new();
        let mut greeting = String::new();
        stream.read_line(&mut greeting).await.unwrap();
        replies.push(greeting);
        for line in lines {
            stream.write_all(line.as_bytes()).await.unwrap();
            stream.write_all(b"\r\n").await.unwrap();
            stream.flush().await.unwrap();
            if line.starts_with("EHLO") {
                // Multi-line reply: `250-…` lines, then `250 …`.
                let mut all = String::new();
                loop {
                    let mut l = String::new();
                    stream.read_line(&mut l).await.unwrap();
                    all.push_str(&l);
                    if l.as_bytes().get(3) == Some(&b' ') {
                        break;
                    }
                }
                replies.push(all);
            } else if *line != "." && replies.last().is_some_and(|r| r.starts_with("354")) {
                // Inside DATA: no reply per line.
            } else {
                let mut l = String::new();
                stream.read_line(&mut l).await.unwrap();
                replies.push(l);
            }
        }
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        replies
    }

    #[tokio::test]
    async fn a_plain_session_is_captured() {
        let mut server = SmtpServer::start(ServerOptions::default()).await.unwrap();
        let replies = talk(
            server.port(),
            &[
                "EHLO client",
                "MAIL FROM:<a@example.com>",
                "RCPT TO:<b@example.com>",
                "DATA",
                "Subject: hi",
                "",
                "..dot",
                ".",
                "QUIT",
            ],
        )
        .await;
        assert!(replies[0].starts_with("220"), "{replies:?}");
        assert!(!replies[1].contains("STARTTLS"), "{replies:?}");
        let mail = server.next_mail(Duration::from_secs(5)).await.unwrap();
        assert_eq!(mail.from, "a@example.com");
        assert_eq!(mail.to, ["b@example.com"]);
        assert!(!mail.tls && mail.user.is_none());
        assert!(mail.text().contains("\r\n.dot"), "{}", mail.text());
        assert_eq!(mail.parsed().unwrap().subject(), Some("hi"));
        assert_eq!(server.rcpt_commands(), 1);
        assert!(server.try_next().is_none());
        assert!(server.next_mail(Duration::from_millis(20)).await.is_none());
    }

    #[tokio::test]
    async fn starttls_is_offered_and_recipients_refused_as_configured() {
        let cert = TestCert::new().unwrap();
        assert!(cert.pem.contains("BEGIN CERTIFICATE"));
        let server = SmtpServer::start(ServerOptions {
            tls: ServerTls::StartTls(cert.config.clone()),
            auth: None,
            reject_rcpt: Some((550, "5.1.1 No such mailbox".into())),
        })
        .await
        .unwrap();
        let replies = talk(
            server.port(),
            &[
                "EHLO client",
                "MAIL FROM:<a@example.com>",
                "RCPT TO:<b@example.com>",
                "QUIT",
            ],
        )
        .await;
        assert!(replies[1].contains("STARTTLS"), "{replies:?}");
        assert!(replies[3].starts_with("550"), "{replies:?}");
        assert_eq!(server.rcpt_commands(), 1);
    }

    #[tokio::test]
    async fn a_taken_port_is_an_error_and_dropping_stops_the_server() {
        let server = SmtpServer::start(ServerOptions::default()).await.unwrap();
        let port = server.port();
        assert_eq!(server.addr().port(), port);
        assert!(
            SmtpServer::start_on(port, ServerOptions::default())
                .await
                .is_err()
        );
        drop(server);
        // The listener closes with the task; the port can be served again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match SmtpServer::start_on(port, ServerOptions::default()).await {
                Ok(again) => {
                    assert_eq!(again.port(), port);
                    break;
                }
                Err(e) => {
                    assert!(tokio::time::Instant::now() < deadline, "{e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}
