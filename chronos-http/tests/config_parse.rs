#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]
//! `Config::from_vars`: defaults, every variable, bad values naming the variable,
//! secrets redacted.

use std::time::Duration;

use chronos_http::config::{Config, ConfigError, LogFormat, MIN_JWT_SECRET_BYTES};
use chronos_http::state::CorsOrigin;
use chronos_notify::TlsMode;

const SECRET: &str = "0123456789abcdef0123456789abcdef-jwt";

fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn err(vars: &[(&str, &str)]) -> ConfigError {
    match parse(vars) {
        Ok(c) => panic!("{vars:?} should be refused, got {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults() {
    let c = parse(&[]).unwrap();
    assert!(!c.production);
    assert_eq!(c.port, 5000);
    assert_eq!(c.host, "0.0.0.0");
    assert!(c.database_url.is_none());
    assert!(c.redis_url.is_none());
    assert!(c.is_embedded());
    assert!(c.run_migrations);
    assert!(c.jwt_secret_generated);
    assert!(c.jwt_secret.expose().len() >= MIN_JWT_SECRET_BYTES);
    assert_eq!(c.jwt_expires_in, Duration::from_secs(86_400));
    assert!(c.smtp.is_none());
    assert!(c.public_url.is_none());
    assert!(c.webhook.is_none());
    assert_eq!(c.worker_concurrency, 16);
    assert_eq!(c.safety_sync_interval, Duration::from_secs(300));
    assert_eq!(c.job_lease, Duration::from_secs(30));
    assert_eq!(c.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.rate_limit_max, 100);
    assert_eq!(c.rate_limit_window, Duration::from_secs(3600));
    assert_eq!(c.auth_rate_limit_max, 10);
    assert_eq!(c.auth_rate_limit_window, Duration::from_secs(900));
    assert_eq!(c.body_limit_bytes, 1024 * 1024);
    assert!(!c.trust_proxy);
    assert_eq!(c.cors_origin, CorsOrigin::Any);
    assert_eq!(c.log_format, LogFormat::Pretty);
    assert_eq!(c.log_level, "info");
    assert!(!c.allow_private_targets);
    assert!(c.http_executor_secret.is_none());
    assert_eq!(c.execution_retention_days, Some(365));
    assert_eq!(c.retention_months(), Some(13));
}

#[test]
fn two_generated_secrets_differ() {
    let a = parse(&[]).unwrap().jwt_secret;
    let b = parse(&[]).unwrap().jwt_secret;
    assert_ne!(a.expose(), b.expose());
}

#[test]
fn every_variable() {
    let c = parse(&[
        ("CHRONOS_ENV", "production"),
        ("PORT", "8080"),
        ("HOST", "127.0.0.1"),
        ("DATABASE_URL", "postgres://chronos:pw@db:5432/chronos"),
        ("REDIS_URL", "redis://:rpw@cache:6379/0"),
        ("RUN_MIGRATIONS", "false"),
        ("JWT_SECRET", SECRET),
        ("JWT_EXPIRES_IN", "3600"),
        ("SMTP_HOST", "smtp.example.com"),
        ("SMTP_PORT", "2525"),
        ("SMTP_TLS", "tls"),
        ("SMTP_USERNAME", "mailer"),
        ("SMTP_PASSWORD", "smtp-pw"),
        ("SMTP_FROM", "Chronos <chronos@example.com>"),
        ("PUBLIC_URL", "https://chronos.example.com/"),
        ("WEBHOOK_URL", "https://hooks.example.com/chronos"),
        ("WEBHOOK_SECRET", "hook-secret"),
        ("WORKER_CONCURRENCY", "4"),
        ("SAFETY_SYNC_INTERVAL_SECS", "60"),
        ("JOB_LEASE_SECS", "10"),
        ("SHUTDOWN_GRACE_SECS", "5"),
        ("RATE_LIMIT_MAX", "1000"),
        ("RATE_LIMIT_WINDOW_SECS", "60"),
        ("AUTH_RATE_LIMIT_MAX", "3"),
        ("AUTH_RATE_LIMIT_WINDOW_SECS", "30"),
        ("BODY_LIMIT_BYTES", "2048"),
        ("TRUST_PROXY", "yes"),
        (
            "CORS_ORIGIN",
            "https://app.example.com, http://localhost:3000",
        ),
        ("LOG_FORMAT", "JSON"),
        ("LOG_LEVEL", "debug,sqlx=warn"),
        ("ALLOW_PRIVATE_TARGETS", "1"),
        ("HTTP_EXECUTOR_SECRET", "exec-secret"),
        ("EXECUTION_RETENTION_DAYS", "90"),
    ])
    .unwrap();
    assert!(c.production);
    assert_eq!(c.port, 8080);
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(
        c.database_url.as_ref().unwrap().expose(),
        "postgres://chronos:pw@db:5432/chronos"
    );
    assert_eq!(
        c.redis_url.as_ref().unwrap().expose(),
        "redis://:rpw@cache:6379/0"
    );
    assert!(!c.is_embedded());
    assert!(!c.run_migrations);
    assert_eq!(c.jwt_secret.expose(), SECRET);
    assert!(!c.jwt_secret_generated);
    assert_eq!(c.jwt_expires_in, Duration::from_secs(3600));
    let smtp = c.smtp.as_ref().unwrap();
    assert_eq!(smtp.host, "smtp.example.com");
    assert_eq!(smtp.port, 2525);
    assert_eq!(smtp.tls, TlsMode::Implicit);
    assert_eq!(smtp.username.as_deref(), Some("mailer"));
    assert_eq!(smtp.password.as_ref().unwrap().expose(), "smtp-pw");
    assert_eq!(smtp.from, "Chronos <chronos@example.com>");
    assert_eq!(c.public_url.as_deref(), Some("https://chronos.example.com"));
    let hook = c.webhook.as_ref().unwrap();
    assert_eq!(hook.url.expose(), "https://hooks.example.com/chronos");
    assert_eq!(hook.secret.expose(), "hook-secret");
    assert_eq!(c.worker_concurrency, 4);
    assert_eq!(c.safety_sync_interval, Duration::from_secs(60));
    assert_eq!(c.job_lease, Duration::from_secs(10));
    assert_eq!(c.shutdown_grace, Duration::from_secs(5));
    assert_eq!(c.rate_limit_max, 1000);
    assert_eq!(c.rate_limit_window, Duration::from_secs(60));
    assert_eq!(c.auth_rate_limit_max, 3);
    assert_eq!(c.auth_rate_limit_window, Duration::from_secs(30));
    assert_eq!(c.body_limit_bytes, 2048);
    assert!(c.trust_proxy);
    assert_eq!(
        c.cors_origin,
        CorsOrigin::parse("https://app.example.com,http://localhost:3000").unwrap()
    );
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.log_level, "debug,sqlx=warn");
    assert!(c.allow_private_targets);
    assert_eq!(
        c.http_executor_secret.as_ref().unwrap().expose(),
        "exec-secret"
    );
    assert_eq!(c.execution_retention_days, Some(90));
    assert_eq!(c.retention_months(), Some(3));
}

#[test]
fn smtp_port_follows_the_tls_mode_and_blanks_are_unset() {
    for (tls, mode, port) in [
        ("", TlsMode::StartTls, 587),
        ("starttls", TlsMode::StartTls, 587),
        ("tls", TlsMode::Implicit, 465),
        ("none", TlsMode::None, 25),
    ] {
        let c = parse(&[
            ("SMTP_HOST", "mail"),
            ("SMTP_FROM", "c@example.com"),
            ("SMTP_TLS", tls),
            ("PORT", "  "),
        ])
        .unwrap();
        let smtp = c.smtp.unwrap();
        assert_eq!((smtp.tls, smtp.port), (mode, port), "{tls}");
        assert_eq!(c.port, 5000);
    }
}

#[test]
fn retention_zero_keeps_everything() {
    let c = parse(&[("EXECUTION_RETENTION_DAYS", "0")]).unwrap();
    assert_eq!(c.execution_retention_days, None);
    assert_eq!(c.retention_months(), None);
    assert_eq!(
        parse(&[("EXECUTION_RETENTION_DAYS", "31")])
            .unwrap()
            .retention_months(),
        Some(2)
    );
}

/// Variables, the variable the error must name, and a word of the expected form.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn bad_values_name_the_variable_and_the_expected_form() {
    let cases: &[Case] = &[
        (&[("PORT", "http")], "PORT", "integer"),
        (&[("PORT", "70000")], "PORT", "integer"),
        (
            &[("DATABASE_URL", "mysql://db/x")],
            "DATABASE_URL",
            "postgres://",
        ),
        (
            &[("DATABASE_URL", "not a url")],
            "DATABASE_URL",
            "postgres://",
        ),
        (&[("REDIS_URL", "http://cache")], "REDIS_URL", "redis://"),
        (
            &[("RUN_MIGRATIONS", "maybe")],
            "RUN_MIGRATIONS",
            "true or false",
        ),
        (
            &[("JWT_SECRET", "short")],
            "JWT_SECRET",
            "at least 32 bytes",
        ),
        (&[("CHRONOS_ENV", "production")], "JWT_SECRET", "required"),
        (&[("CHRONOS_ENV", "staging")], "CHRONOS_ENV", "production"),
        (&[("JWT_EXPIRES_IN", "-1")], "JWT_EXPIRES_IN", "integer"),
        (&[("SMTP_HOST", "mail")], "SMTP_FROM", "required"),
        (
            &[("SMTP_HOST", "m"), ("SMTP_FROM", "nobody")],
            "SMTP_FROM",
            "email",
        ),
        (&[("SMTP_TLS", "ssl3")], "SMTP_TLS", "none, starttls or tls"),
        (&[("SMTP_PORT", "0")], "SMTP_PORT", "integer"),
        (
            &[
                ("SMTP_HOST", "m"),
                ("SMTP_FROM", "a@b.c"),
                ("SMTP_USERNAME", "u"),
            ],
            "SMTP_PASSWORD",
            "required",
        ),
        (
            &[
                ("SMTP_HOST", "m"),
                ("SMTP_FROM", "a@b.c"),
                ("SMTP_USERNAME", "u"),
                ("SMTP_PASSWORD", "p"),
                ("SMTP_TLS", "none"),
            ],
            "SMTP_TLS",
            "starttls or tls",
        ),
        (
            &[("PUBLIC_URL", "chronos.example.com")],
            "PUBLIC_URL",
            "https://",
        ),
        (
            &[("WEBHOOK_URL", "https://h.example.com")],
            "WEBHOOK_SECRET",
            "required",
        ),
        (&[("WEBHOOK_SECRET", "s")], "WEBHOOK_URL", "required"),
        (
            &[("WORKER_CONCURRENCY", "0")],
            "WORKER_CONCURRENCY",
            "from 1",
        ),
        (
            &[("SAFETY_SYNC_INTERVAL_SECS", "0")],
            "SAFETY_SYNC_INTERVAL_SECS",
            "from 1",
        ),
        (&[("JOB_LEASE_SECS", "1.5")], "JOB_LEASE_SECS", "integer"),
        (
            &[("SHUTDOWN_GRACE_SECS", "x")],
            "SHUTDOWN_GRACE_SECS",
            "integer",
        ),
        (&[("RATE_LIMIT_MAX", "0")], "RATE_LIMIT_MAX", "integer"),
        (
            &[("RATE_LIMIT_WINDOW_SECS", "0")],
            "RATE_LIMIT_WINDOW_SECS",
            "integer",
        ),
        (
            &[("AUTH_RATE_LIMIT_MAX", "ten")],
            "AUTH_RATE_LIMIT_MAX",
            "integer",
        ),
        (&[("AUTH_RATE_LIMIT_WINDOW_SECS", "")], "", ""),
        (
            &[("BODY_LIMIT_BYTES", "1MiB")],
            "BODY_LIMIT_BYTES",
            "integer",
        ),
        (&[("TRUST_PROXY", "2")], "TRUST_PROXY", "true or false"),
        (
            &[("CORS_ORIGIN", "app.example.com")],
            "CORS_ORIGIN",
            "origins",
        ),
        (&[("LOG_FORMAT", "xml")], "LOG_FORMAT", "pretty or json"),
        (&[("LOG_LEVEL", "loud[")], "LOG_LEVEL", "level"),
        (
            &[("ALLOW_PRIVATE_TARGETS", "sure")],
            "ALLOW_PRIVATE_TARGETS",
            "true or false",
        ),
        (
            &[("EXECUTION_RETENTION_DAYS", "-3")],
            "EXECUTION_RETENTION_DAYS",
            "integer",
        ),
    ];
    for (vars, var, expected) in cases {
        if var.is_empty() {
            // A blank value counts as unset.
            parse(vars).unwrap();
            continue;
        }
        let e = err(vars);
        assert_eq!(e.var, *var, "{vars:?}: {e}");
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains(var), "{line}");
        assert!(
            line.contains(expected),
            "{vars:?}: {line} should mention {expected}"
        );
    }
}

#[test]
fn secrets_are_redacted_in_debug_and_errors() {
    let c = parse(&[
        ("DATABASE_URL", "postgres://chronos:db-password@db/chronos"),
        ("REDIS_URL", "redis://:redis-password@cache:6379"),
        ("JWT_SECRET", SECRET),
        ("SMTP_HOST", "smtp"),
        ("SMTP_FROM", "c@example.com"),
        ("SMTP_USERNAME", "mailer"),
        ("SMTP_PASSWORD", "smtp-password"),
        (
            "WEBHOOK_URL",
            "https://user:hook-password@hooks.example.com/x?token=hook-token",
        ),
        ("WEBHOOK_SECRET", "hook-secret"),
        ("HTTP_EXECUTOR_SECRET", "exec-secret"),
    ])
    .unwrap();
    let debug = format!("{c:?}");
    for secret in [
        "db-password",
        "redis-password",
        SECRET,
        "smtp-password",
        "hook-password",
        "hook-token",
        "hook-secret",
        "exec-secret",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert!(debug.contains("<redacted>"));
    assert!(
        debug.contains("db/chronos"),
        "the URL's host stays visible: {debug}"
    );
    assert_eq!(
        c.database_url.as_ref().unwrap().to_string(),
        "postgres://chronos:redacted@db/chronos"
    );

    // A bad secret's value never appears in the error.
    let e = err(&[("JWT_SECRET", "tiny-secret-value")]);
    assert!(!e.to_string().contains("tiny-secret-value"), "{e}");
    let e = err(&[("DATABASE_URL", "mysql://u:leaky@db/x")]);
    assert!(!e.to_string().contains("leaky"), "{e}");
}

#[test]
fn unknown_variables_are_ignored() {
    parse(&[("PATH", "/usr/bin"), ("HOME", "/root"), ("port", "x")]).unwrap();
}
