//! Test parts shared by the email tests: a real SMTP server in the test process,
//! self-signed certificates, failures to notify about, and event waits.
//!
//! The server is `mailin`'s SMTP protocol engine (the one inside `mailin-embedded`)
//! driven by tokio and tokio-rustls: `mailin-embedded` itself serves forever on
//! blocking threads, reads certificates only from files, has no implicit TLS and pulls
//! in rustls with aws-lc; this keeps everything on ring, in the test's runtime, and
//! stops with the test.

#![allow(dead_code, reason = "each test file uses a different part of the kit")]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chronos::Event;
use chronos::JobSpec;
use chronos::model::{Execution, ExecutionStatus, Job, Notification};
use chronos::notifier::Failure;
use mailin::{AuthMechanism, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use uuid::Uuid;

/// The longest any test waits for something that should happen.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Awaits `f` for at most [`WAIT`].
pub(crate) async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("a timestamp")
}

/// A port on 127.0.0.1 where nothing listens (it was free a moment ago).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A self-signed certificate for `127.0.0.1` and `localhost`.
pub(crate) struct TestCert {
    /// The certificate in PEM, for the client's `root_certificate`.
    pub(crate) pem: String,
    pub(crate) config: Arc<ServerConfig>,
}

impl TestCert {
    pub(crate) fn new() -> Self {
        let key = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("a certificate");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(key.cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der())),
            )
            .expect("a server config");
        Self {
            pem: key.cert.pem(),
            config: Arc::new(config),
        }
    }
}

/// How the test server secures connections.
#[derive(Clone, Default)]
pub(crate) enum ServerTls {
    /// Plain text; STARTTLS is not offered.
    #[default]
    Plain,
    /// STARTTLS is offered (and AUTH only after it).
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte.
    Implicit(Arc<ServerConfig>),
}

/// What the test server does.
#[derive(Clone, Default)]
pub(crate) struct ServerOptions {
    pub(crate) tls: ServerTls,
    /// Require AUTH PLAIN or LOGIN with this user and password.
    pub(crate) auth: Option<(String, String)>,
    /// Answer every RCPT with this code and text.
    pub(crate) reject_rcpt: Option<(u16, String)>,
}

/// One message the server accepted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Received {
    /// The envelope sender (MAIL FROM).
    pub(crate) from: String,
    /// The envelope recipients (RCPT TO).
    pub(crate) to: Vec<String>,
    /// The message as transmitted (dot-unstuffed).
    pub(crate) data: Vec<u8>,
    /// Whether the session was encrypted when the message came.
    pub(crate) tls: bool,
    /// The user the session authenticated as.
    pub(crate) user: Option<String>,
}

impl Received {
    pub(crate) fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parseable message")
    }
}

/// A real SMTP server on 127.0.0.1, stopped when dropped.
pub(crate) struct SmtpServer {
    pub(crate) addr: SocketAddr,
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
    /// Starts a server on an ephemeral port.
    pub(crate) async fn start(options: ServerOptions) -> Self {
        Self::start_on(0, options).await
    }

    /// Starts a server on `port` (0: any free one).
    pub(crate) async fn start_on(port: u16, options: ServerOptions) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the SMTP port is free");
        let addr = listener.local_addr().expect("addr");
        let (tx, mail) = mpsc::unbounded_channel();
        let rcpts = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            options: Arc::new(options),
            tx,
            rcpts: rcpts.clone(),
        };
        let task = tokio::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                while sessions.try_join_next().is_some() {}
                let shared = shared.clone();
                sessions.spawn(async move {
                    if let Err(error) = serve(stream, peer.ip(), shared).await {
                        tracing::debug!(%error, "SMTP session ended");
                    }
                });
            }
        });
        Self {
            addr,
            mail,
            rcpts,
            task,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next message the server accepts.
    pub(crate) async fn next_mail(&mut self) -> Received {
        within("an email", self.mail.recv())
            .await
            .expect("the server runs")
    }

    /// A message already accepted and not yet taken, if any.
    pub(crate) fn try_next(&mut self) -> Option<Received> {
        self.mail.try_recv().ok()
    }

    /// How many RCPT commands the server has answered.
    pub(crate) fn rcpt_commands(&self) -> usize {
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
    tls: Arc<Mutex<bool>>,
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
        mail.tls = *self.tls.lock().expect("lock");
        mail.user.clone_from(&self.user);
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
    let tls = Arc::new(Mutex::new(false));
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
            *tls.lock().expect("lock") = true;
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
                *tls.lock().expect("lock") = true;
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

/// A failure of a job named `name` in `tz` whose third attempt ended at `finished`.
pub(crate) fn failure(name: &str, tz: &str, finished: DateTime<Utc>, error: &str) -> Failure {
    let created = t("2026-01-01T00:00:00Z");
    let spec = JobSpec::immediate(name)
        .handler("report")
        .owner(Uuid::now_v7());
    let job = Job::from_spec(&spec, tz.parse().expect("a time zone"), created);
    let execution = Execution {
        id: Uuid::now_v7(),
        job_id: job.id,
        owner: job.owner,
        job_name: job.name.clone(),
        scheduled_for: created,
        due_at: finished,
        attempt: 2,
        status: ExecutionStatus::Failed,
        started_at: Some(finished),
        finished_at: Some(finished),
        duration_ms: Some(0),
        output: None,
        error: Some(error.to_owned()),
        worker: Some("test".to_owned()),
        manual: false,
        manual_run: None,
        created_at: finished,
    };
    Failure {
        id: Uuid::now_v7(),
        attempt: 1,
        job,
        execution,
    }
}

/// The next settled notification attempt.
pub(crate) async fn notification(rx: &mut broadcast::Receiver<Event>) -> Notification {
    within("a notification attempt", async {
        loop {
            if let Event::Notification(n) = rx.recv().await.expect("events") {
                return n;
            }
        }
    })
    .await
}

/// The next attempt that finishes.
pub(crate) async fn finished(rx: &mut broadcast::Receiver<Event>) -> Execution {
    within("an attempt to finish", async {
        loop {
            if let Event::Finished(e) = rx.recv().await.expect("events") {
                return e;
            }
        }
    })
    .await
}

/// Asserts that no notification attempt settles for a short while (the manual clock
/// stands still, so nothing is due).
pub(crate) async fn no_notification(rx: &mut broadcast::Receiver<Event>) {
    let got = tokio::time::timeout(Duration::from_millis(150), async {
        loop {
            if let Event::Notification(n) = rx.recv().await.expect("events") {
                return n;
            }
        }
    })
    .await;
    assert!(
        got.is_err(),
        "expected no notification attempt, got {got:?}"
    );
}
