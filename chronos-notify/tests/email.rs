//! `EmailNotifier` against a real SMTP server in the test process: what arrives (headers,
//! both body parts, escaping, no header injection), STARTTLS with AUTH against a
//! self-signed certificate, implicit TLS, and how each SMTP failure is classified.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chronos::notifier::{Delivery, Notifier, NotifyError};
use chronos_notify::testing::{ServerOptions, ServerTls, SmtpServer, TestCert};
use chronos_notify::{EmailNotifier, FixedRecipient, Recipients, SmtpConfig, TlsMode};
use mail_parser::MimeHeaders;
use support::{WAIT, failure, free_port, t, within};
use uuid::Uuid;

fn config(port: u16, tls: TlsMode) -> SmtpConfig {
    SmtpConfig {
        port,
        timeout: Duration::from_secs(5),
        logs_url: Some("https://chronos.example.com".into()),
        ..SmtpConfig::new("127.0.0.1", tls, "Chronos <chronos@example.com>")
    }
}

fn ops() -> FixedRecipient {
    FixedRecipient::new("ops@example.com").unwrap()
}

/// Whether the raw message has a header line named `name` (before the first blank line).
fn has_header(raw: &[u8], name: &str) -> bool {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with(&format!("{}:", name.to_ascii_lowercase()))
    })
}

#[tokio::test]
async fn the_email_carries_the_failure_in_both_parts_with_user_text_escaped() {
    let mut server = SmtpServer::start(ServerOptions::default()).await.unwrap();
    let notifier = EmailNotifier::new(config(server.port(), TlsMode::None), ops()).unwrap();
    let f = failure(
        "<script>alert(1)</script>",
        "Europe/Berlin",
        t("2026-01-01T05:30:00Z"),
        "upstream said <b>no</b> & gave up",
    );

    let delivery = within("the send", notifier.job_failed(&f)).await.unwrap();
    assert_eq!(
        delivery,
        Delivery::Sent {
            to: "ops@example.com".into()
        }
    );

    let mail = server.next_mail(WAIT).await.unwrap();
    assert_eq!(mail.from, "chronos@example.com");
    assert_eq!(mail.to, ["ops@example.com"]);
    assert!(!mail.tls && mail.user.is_none());
    let m = mail.parsed().unwrap();
    assert_eq!(m.subject(), Some("Job Failed: <script>alert(1)</script>"));
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Chronos"), Some("chronos@example.com"))
    );
    assert_eq!(
        m.to().unwrap().first().unwrap().address(),
        Some("ops@example.com")
    );
    let expected_id = format!("{}@chronos", f.id);
    assert_eq!(m.message_id(), Some(expected_id.as_str()));
    assert_eq!((m.text_body_count(), m.html_body_count()), (1, 1));
    let content_type = m.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("alternative"))
    );

    let text = m.body_text(0).unwrap();
    let html = m.body_html(0).unwrap();
    let logs = format!(
        "https://chronos.example.com/api/v1/executions/{}/logs",
        f.execution.id
    );
    for (part, body) in [("text", &text), ("html", &html)] {
        for needle in [
            f.job.id.to_string(),
            "2026-01-01 05:30:00 UTC".to_owned(),
            "2026-01-01 06:30:00 CET (Europe/Berlin)".to_owned(),
            logs.clone(),
        ] {
            assert!(
                body.contains(&needle),
                "{part} part lacks {needle:?}:\n{body}"
            );
        }
    }
    assert!(text.contains("The job \"<script>alert(1)</script>\" failed for good."));
    assert!(text.lines().any(|l| l == "Attempts:   3"), "{text}");
    assert!(text.contains("upstream said <b>no</b> & gave up"));
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("upstream said &lt;b&gt;no&lt;/b&gt; &amp; gave up"));
    assert!(html.contains("<th align=\"left\">Attempts</th><td>3</td>"));
    assert!(html.contains(&format!("<a href=\"{logs}\">")));
    assert!(server.try_next().is_none(), "one message");
}

#[tokio::test]
async fn user_text_cannot_inject_headers_or_recipients() {
    let mut server = SmtpServer::start(ServerOptions::default()).await.unwrap();
    let notifier = EmailNotifier::new(config(server.port(), TlsMode::None), ops()).unwrap();
    let name = "report\r\nBcc: x@y.example\r\nX-Injected: yes";
    let f = failure(
        name,
        "UTC",
        t("2026-01-01T00:00:00Z"),
        "e\r\n\r\n.\r\nMAIL FROM:<a@b.c>",
    );

    within("the send", notifier.job_failed(&f)).await.unwrap();
    let mail = server.next_mail(WAIT).await.unwrap();
    assert_eq!(
        mail.to,
        ["ops@example.com"],
        "the envelope has one recipient"
    );
    assert!(
        !has_header(&mail.data, "Bcc"),
        "{}",
        String::from_utf8_lossy(&mail.data)
    );
    assert!(!has_header(&mail.data, "X-Injected"));
    let m = mail.parsed().unwrap();
    assert!(m.header("Bcc").is_none());
    assert_eq!(m.subject(), Some(format!("Job Failed: {name}").as_str()));
    assert!(m.body_text(0).unwrap().contains("MAIL FROM:<a@b.c>"));
    assert!(
        server.try_next().is_none(),
        "the body did not smuggle a second message"
    );
    assert_eq!(server.rcpt_commands(), 1);
}

#[tokio::test]
async fn every_attempt_carries_the_same_message_id() {
    let mut server = SmtpServer::start(ServerOptions::default()).await.unwrap();
    let notifier = EmailNotifier::new(config(server.port(), TlsMode::None), ops()).unwrap();
    let mut f = failure("dedupe", "UTC", t("2026-01-01T00:00:00Z"), "boom");
    within("the send", notifier.job_failed(&f)).await.unwrap();
    f.attempt = 2;
    within("the send", notifier.job_failed(&f)).await.unwrap();
    let (a, b) = (
        server.next_mail(WAIT).await.unwrap(),
        server.next_mail(WAIT).await.unwrap(),
    );
    let id = format!("{}@chronos", f.id);
    assert_eq!(a.parsed().unwrap().message_id(), Some(id.as_str()));
    assert_eq!(b.parsed().unwrap().message_id(), Some(id.as_str()));
}

#[tokio::test]
async fn starttls_with_auth_against_a_self_signed_certificate() {
    let cert = TestCert::new().unwrap();
    let mut server = SmtpServer::start(ServerOptions {
        tls: ServerTls::StartTls(cert.config.clone()),
        auth: Some(("chronos".into(), "s3cret".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let cfg = SmtpConfig {
        username: Some("chronos".into()),
        password: Some("s3cret".into()),
        root_certificate: Some(cert.pem.clone()),
        ..config(server.port(), TlsMode::StartTls)
    };
    let notifier = EmailNotifier::new(cfg.clone(), ops()).unwrap();
    let f = failure("tls", "UTC", t("2026-01-01T00:00:00Z"), "boom");
    let sent = within("the send", notifier.job_failed(&f)).await.unwrap();
    assert_eq!(
        sent,
        Delivery::Sent {
            to: "ops@example.com".into()
        }
    );
    let mail = server.next_mail(WAIT).await.unwrap();
    assert!(mail.tls, "sent after STARTTLS");
    assert_eq!(mail.user.as_deref(), Some("chronos"));
    assert_eq!(mail.parsed().unwrap().subject(), Some("Job Failed: tls"));

    // A wrong password is a 535: permanent.
    let wrong = EmailNotifier::new(
        SmtpConfig {
            password: Some("wrong".into()),
            ..cfg.clone()
        },
        ops(),
    )
    .unwrap();
    let err = within("the send", wrong.job_failed(&f)).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("535"), "{err}");

    // Without trusting the certificate, TLS fails: retryable, nothing sent.
    let untrusting = EmailNotifier::new(
        SmtpConfig {
            root_certificate: None,
            ..cfg
        },
        ops(),
    )
    .unwrap();
    let err = within("the send", untrusting.job_failed(&f))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(server.try_next().is_none());
}

#[tokio::test]
async fn implicit_tls_with_auth() {
    let cert = TestCert::new().unwrap();
    let mut server = SmtpServer::start(ServerOptions {
        tls: ServerTls::Implicit(cert.config.clone()),
        auth: Some(("chronos".into(), "s3cret".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let cfg = SmtpConfig {
        username: Some("chronos".into()),
        password: Some("s3cret".into()),
        root_certificate: Some(cert.pem.clone()),
        ..config(server.port(), TlsMode::Implicit)
    };
    let notifier = EmailNotifier::new(cfg, ops()).unwrap();
    let f = failure("smtps", "UTC", t("2026-01-01T00:00:00Z"), "boom");
    within("the send", notifier.job_failed(&f)).await.unwrap();
    let mail = server.next_mail(WAIT).await.unwrap();
    assert!(mail.tls);
    assert_eq!(mail.user.as_deref(), Some("chronos"));
}

#[tokio::test]
async fn tls_mismatches_fail_retryably_and_never_send_in_clear_text() {
    let cert = TestCert::new().unwrap();
    let mut plain = SmtpServer::start(ServerOptions::default()).await.unwrap();
    let f = failure("mismatch", "UTC", t("2026-01-01T00:00:00Z"), "boom");

    // Implicit TLS against a plain server: the greeting is no TLS record.
    let implicit = EmailNotifier::new(
        SmtpConfig {
            root_certificate: Some(cert.pem.clone()),
            ..config(plain.port(), TlsMode::Implicit)
        },
        ops(),
    )
    .unwrap();
    let err = within("the send", implicit.job_failed(&f))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");

    // STARTTLS required but not offered: no downgrade.
    let starttls = EmailNotifier::new(
        SmtpConfig {
            root_certificate: Some(cert.pem.clone()),
            ..config(plain.port(), TlsMode::StartTls)
        },
        ops(),
    )
    .unwrap();
    let err = within("the send", starttls.job_failed(&f))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(plain.try_next().is_none());
    assert_eq!(plain.rcpt_commands(), 0);
}

#[tokio::test]
async fn smtp_replies_are_classified() {
    let f = failure("refused", "UTC", t("2026-01-01T00:00:00Z"), "boom");
    let rejecting = SmtpServer::start(ServerOptions {
        reject_rcpt: Some((550, "5.1.1 No such mailbox".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let notifier = EmailNotifier::new(config(rejecting.port(), TlsMode::None), ops()).unwrap();
    let err = within("the send", notifier.job_failed(&f))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "a 550 is final: {err}");
    assert!(err.to_string().contains("No such mailbox"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );

    let deferring = SmtpServer::start(ServerOptions {
        reject_rcpt: Some((451, "4.3.0 Try again later".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let notifier = EmailNotifier::new(config(deferring.port(), TlsMode::None), ops()).unwrap();
    let err = within("the send", notifier.job_failed(&f))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "a 451 is transient: {err}");
}

#[tokio::test]
async fn unreachable_and_silent_servers_are_retryable() {
    let f = failure("down", "UTC", t("2026-01-01T00:00:00Z"), "boom");
    let refused = EmailNotifier::new(config(free_port(), TlsMode::None), ops()).unwrap();
    let err = within("the send", refused.job_failed(&f))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(std::error::Error::source(&err).is_some());

    // A server that accepts the connection and never greets: the timeout ends it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            if let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        }
    });
    let slow = EmailNotifier::new(
        SmtpConfig {
            timeout: Duration::from_millis(300),
            ..config(port, TlsMode::None)
        },
        ops(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = within("the send", slow.job_failed(&f)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    hold.abort();
}

/// Addresses by owner.
struct Directory(Vec<(Uuid, &'static str)>);

#[async_trait]
impl Recipients for Directory {
    async fn email_of(&self, owner: Uuid) -> Result<Option<String>, NotifyError> {
        Ok(self
            .0
            .iter()
            .find(|(o, _)| *o == owner)
            .map(|(_, a)| (*a).to_owned()))
    }
}

/// A directory that is down.
struct Down;

#[async_trait]
impl Recipients for Down {
    async fn email_of(&self, _owner: Uuid) -> Result<Option<String>, NotifyError> {
        Err(NotifyError::retryable("the users table is unavailable"))
    }
}

#[tokio::test]
async fn recipients_decide_who_gets_it() {
    let mut server = SmtpServer::start(ServerOptions::default()).await.unwrap();
    let f = failure("owned", "UTC", t("2026-01-01T00:00:00Z"), "boom");

    let known = Arc::new(Directory(vec![(f.job.owner, "Owner <owner@example.com>")]));
    let notifier = EmailNotifier::new(config(server.port(), TlsMode::None), known).unwrap();
    let sent = within("the send", notifier.job_failed(&f)).await.unwrap();
    assert_eq!(
        sent,
        Delivery::Sent {
            to: "owner@example.com".into()
        }
    );
    assert_eq!(
        server.next_mail(WAIT).await.unwrap().to,
        ["owner@example.com"]
    );

    let nobody =
        EmailNotifier::new(config(server.port(), TlsMode::None), Directory(vec![])).unwrap();
    let skipped = within("the send", nobody.job_failed(&f)).await.unwrap();
    assert_eq!(
        skipped,
        Delivery::Skipped {
            reason: "no email address is known for the job's owner".into()
        }
    );

    let garbage = EmailNotifier::new(
        config(server.port(), TlsMode::None),
        Directory(vec![(f.job.owner, "not an address")]),
    )
    .unwrap();
    let err = within("the send", garbage.job_failed(&f))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("not an address"), "{err}");

    let down = EmailNotifier::new(config(server.port(), TlsMode::None), Down).unwrap();
    let err = within("the send", down.job_failed(&f)).await.unwrap_err();
    assert!(err.is_retryable());
    assert!(server.try_next().is_none());
}
