//! [`Config`]: the service's configuration, read from environment variables.
//!
//! [`Config::from_vars`] is a pure function over `(name, value)` pairs, so it is
//! tested without touching the process environment; the binary calls it with
//! `std::env::vars()` after loading an optional `.env` file. A bad value is a
//! [`ConfigError`] that names the variable and the expected form (the binary prints
//! it on one line and exits with code 2). Secrets are never shown by `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use chronos_notify::TlsMode;

use crate::state::CorsOrigin;

/// The name of the variable that selects production mode (`CHRONOS_ENV=production`).
pub const ENV_VAR: &str = "CHRONOS_ENV";

/// `REDIS_PREFIX` when unset: the keys of a service without one stay where they
/// always were (`chronos:{queue}:…`, `{chronos}:…`).
pub const REDIS_PREFIX_DEFAULT: &str = "chronos";

/// The longest `REDIS_PREFIX` accepted, in characters.
pub const MAX_REDIS_PREFIX_LEN: usize = 64;

/// The shortest `JWT_SECRET` accepted, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// The service's configuration. Every variable is optional unless said otherwise;
/// an empty value counts as unset.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `CHRONOS_ENV` | `development` | `production` makes `JWT_SECRET` required |
/// | `PORT` | `5000` | TCP port of the HTTP API (`0`: any free port) |
/// | `HOST` | `0.0.0.0` | address the HTTP API binds to |
/// | `DATABASE_URL` | unset | `postgres://…`: PostgreSQL store (and, without `REDIS_URL`, the PostgreSQL queue). Unset: in-memory backends, jobs are lost on restart |
/// | `REDIS_URL` | unset | `redis://…` or `rediss://…`: Redis queue, shared rate limits and token revocations |
/// | `REDIS_PREFIX` | `chronos` | the start of every Redis key of the service: the queue under `<prefix>:{queue}`, rate limits and revocations under `{<prefix>}:`. Processes of one deployment share it; deployments (or test runs) sharing one Redis each need their own, else their workers take each other's queue entries. 1 to 64 letters, digits, `-`, `_`, `.` or `:` |
/// | `RUN_MIGRATIONS` | `true` | run the PostgreSQL migrations at start |
/// | `JWT_SECRET` | random (dev only) | HS256 key of the API tokens, at least 32 bytes; required when `CHRONOS_ENV=production`, otherwise a random one is generated (tokens die with the process) |
/// | `JWT_EXPIRES_IN` | `86400` | token lifetime in seconds |
/// | `SMTP_HOST` | unset | SMTP server for failure emails; unset: failure emails are disabled |
/// | `SMTP_PORT` | by `SMTP_TLS`: 25, 587, 465 | SMTP port |
/// | `SMTP_TLS` | `starttls` | `none`, `starttls` or `tls` (implicit TLS) |
/// | `SMTP_USERNAME`, `SMTP_PASSWORD` | unset | SMTP credentials (both or neither; TLS required) |
/// | `SMTP_FROM` | required with `SMTP_HOST` | sender, `chronos@example.com` or `Chronos <chronos@example.com>` |
/// | `PUBLIC_URL` | unset | public base URL of the API (`https://chronos.example.com`), for links to execution logs in emails |
/// | `WEBHOOK_URL`, `WEBHOOK_SECRET` | unset | failure events POSTed to this URL, signed with the secret (both or neither) |
/// | `WORKER_CONCURRENCY` | `16` | attempts running at once per process (≥ 1) |
/// | `SAFETY_SYNC_INTERVAL_SECS` | `300` | period of the safety sync (≥ 1) |
/// | `JOB_LEASE_SECS` | `30` | queue lease of a running attempt, renewed at a third (≥ 1) |
/// | `SHUTDOWN_GRACE_SECS` | `30` | how long shutdown lets running attempts finish |
/// | `RATE_LIMIT_MAX` | `100` | requests per user and window on the authenticated API (≥ 1) |
/// | `RATE_LIMIT_WINDOW_SECS` | `3600` | that window (≥ 1) |
/// | `AUTH_RATE_LIMIT_MAX` | `10` | register/login requests per client IP and window (≥ 1) |
/// | `AUTH_RATE_LIMIT_WINDOW_SECS` | `900` | that window (≥ 1) |
/// | `BODY_LIMIT_BYTES` | `1048576` | largest request body (≥ 1) |
/// | `TRUST_PROXY` | `false` | take the client IP from `X-Forwarded-For` |
/// | `CORS_ORIGIN` | `*` | the origins CORS allows: `*`, or comma-separated origins (`https://app.example.com,http://localhost:3000`) |
/// | `LOG_FORMAT` | `pretty` | `pretty` or `json` |
/// | `LOG_LEVEL` | `info` | a tracing filter: `debug`, `info,chronos=debug`, … |
/// | `ALLOW_PRIVATE_TARGETS` | `false` | let the `http` executor call loopback, private and link-local addresses |
/// | `HTTP_EXECUTOR_SECRET` | unset | sign the `http` executor's requests (`Chronos-Timestamp`, `Chronos-Signature`, like the webhooks) |
/// | `EXECUTION_RETENTION_DAYS` | `365` | executions and logs older than this are dropped by partition maintenance (rounded up to whole months; `0` keeps everything) |
///
/// Booleans accept `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `CHRONOS_ENV=production`.
    pub production: bool,
    /// `PORT`.
    pub port: u16,
    /// `HOST`.
    pub host: String,
    /// `DATABASE_URL`.
    pub database_url: Option<SecretUrl>,
    /// `REDIS_URL`.
    pub redis_url: Option<SecretUrl>,
    /// `REDIS_PREFIX` (see [`REDIS_PREFIX_DEFAULT`]).
    pub redis_prefix: String,
    /// `RUN_MIGRATIONS`.
    pub run_migrations: bool,
    /// `JWT_SECRET`, or a random one outside production.
    pub jwt_secret: Secret,
    /// Whether [`Config::jwt_secret`] was generated (no `JWT_SECRET` given).
    pub jwt_secret_generated: bool,
    /// `JWT_EXPIRES_IN`.
    pub jwt_expires_in: Duration,
    /// `SMTP_*` (with `PUBLIC_URL`): `None` when `SMTP_HOST` is unset.
    pub smtp: Option<Smtp>,
    /// `PUBLIC_URL`.
    pub public_url: Option<String>,
    /// `WEBHOOK_URL` and `WEBHOOK_SECRET`.
    pub webhook: Option<Webhook>,
    /// `WORKER_CONCURRENCY`.
    pub worker_concurrency: usize,
    /// `SAFETY_SYNC_INTERVAL_SECS`.
    pub safety_sync_interval: Duration,
    /// `JOB_LEASE_SECS`.
    pub job_lease: Duration,
    /// `SHUTDOWN_GRACE_SECS`.
    pub shutdown_grace: Duration,
    /// `RATE_LIMIT_MAX`.
    pub rate_limit_max: u32,
    /// `RATE_LIMIT_WINDOW_SECS`.
    pub rate_limit_window: Duration,
    /// `AUTH_RATE_LIMIT_MAX`.
    pub auth_rate_limit_max: u32,
    /// `AUTH_RATE_LIMIT_WINDOW_SECS`.
    pub auth_rate_limit_window: Duration,
    /// `BODY_LIMIT_BYTES`.
    pub body_limit_bytes: usize,
    /// `TRUST_PROXY`.
    pub trust_proxy: bool,
    /// `CORS_ORIGIN` (any origin when unset).
    pub cors_origin: CorsOrigin,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `LOG_LEVEL`.
    pub log_level: String,
    /// `ALLOW_PRIVATE_TARGETS`.
    pub allow_private_targets: bool,
    /// `HTTP_EXECUTOR_SECRET`.
    pub http_executor_secret: Option<Secret>,
    /// `EXECUTION_RETENTION_DAYS` (`None`: keep everything).
    pub execution_retention_days: Option<u32>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The SMTP settings of failure emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    /// `SMTP_HOST`.
    pub host: String,
    /// `SMTP_PORT` (or the TLS mode's usual port).
    pub port: u16,
    /// `SMTP_TLS`.
    pub tls: TlsMode,
    /// `SMTP_USERNAME`.
    pub username: Option<String>,
    /// `SMTP_PASSWORD`.
    pub password: Option<Secret>,
    /// `SMTP_FROM`.
    pub from: String,
}

/// The failure webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `WEBHOOK_URL` (may hold credentials: redacted by `Debug`).
    pub url: SecretUrl,
    /// `WEBHOOK_SECRET`.
    pub secret: Secret,
}

/// A secret string: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A URL that may carry credentials: `Debug` and `Display` show it without its
/// password (and query, which may hold tokens).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL as given: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL without password and query: safe to log.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("redacted"));
                }
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            }
            Err(_) => "<redacted>".to_owned(),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A variable with an unusable value. `Display` is one line naming the variable and
/// the expected form (never the value of a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {var}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong and what is expected.
    pub problem: String,
}

impl ConfigError {
    fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

/// The variables [`Config::from_vars`] reads.
pub const VARIABLES: &[&str] = &[
    ENV_VAR,
    "PORT",
    "HOST",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_PREFIX",
    "RUN_MIGRATIONS",
    "JWT_SECRET",
    "JWT_EXPIRES_IN",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_TLS",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "PUBLIC_URL",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WORKER_CONCURRENCY",
    "SAFETY_SYNC_INTERVAL_SECS",
    "JOB_LEASE_SECS",
    "SHUTDOWN_GRACE_SECS",
    "RATE_LIMIT_MAX",
    "RATE_LIMIT_WINDOW_SECS",
    "AUTH_RATE_LIMIT_MAX",
    "AUTH_RATE_LIMIT_WINDOW_SECS",
    "BODY_LIMIT_BYTES",
    "TRUST_PROXY",
    "CORS_ORIGIN",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "ALLOW_PRIVATE_TARGETS",
    "HTTP_EXECUTOR_SECRET",
    "EXECUTION_RETENTION_DAYS",
];

/// The variables, with blanks treated as unset.
struct Vars(HashMap<String, String>);

impl Vars {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A value that must be kept as given (secrets: no trimming).
    fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    fn bool(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    name,
                    format!("expected true or false, got {v:?}"),
                )),
            },
        }
    }

    /// An unsigned integer in `min..=max`.
    fn uint<T>(&self, name: &'static str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + Copy + fmt::Display,
    {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let expected = || format!("expected an integer from {min} to {max}, got {v:?}");
        match v.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(ConfigError::new(name, expected())),
        }
    }

    fn secs(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.uint(name, default, min, max).map(Duration::from_secs)
    }
}

/// A day in seconds, and bounds that keep durations sane.
const DAY: u64 = 86_400;
const YEAR: u64 = 365 * DAY;

impl Config {
    /// The configuration from these variables (names are case-sensitive; blank
    /// values count as unset; unknown names are ignored).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        let production = match vars.get(ENV_VAR).map(str::to_ascii_lowercase).as_deref() {
            None | Some("development" | "dev" | "test") => false,
            Some("production" | "prod") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    ENV_VAR,
                    format!("expected production or development, got {other:?}"),
                ));
            }
        };

        let port = vars.uint("PORT", 5000u16, 0, u16::MAX)?;
        let host = vars.string("HOST", "0.0.0.0");
        let database_url = match vars.raw("DATABASE_URL") {
            None => None,
            Some(v) => Some(url_with_scheme(
                "DATABASE_URL",
                v,
                &["postgres", "postgresql"],
                "postgres://user:password@host:5432/database",
            )?),
        };
        let redis_url = match vars.raw("REDIS_URL") {
            None => None,
            Some(v) => Some(url_with_scheme(
                "REDIS_URL",
                v,
                &["redis", "rediss"],
                "redis://host:6379",
            )?),
        };
        let redis_prefix = redis_prefix(&vars)?;
        let run_migrations = vars.bool("RUN_MIGRATIONS", true)?;

        let (jwt_secret, jwt_secret_generated) = match vars.raw("JWT_SECRET") {
            Some(s) if s.len() >= MIN_JWT_SECRET_BYTES => (Secret::new(s), false),
            Some(s) => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    format!(
                        "expected at least {MIN_JWT_SECRET_BYTES} bytes, got {} (generate one with `openssl rand -hex 32`)",
                        s.len()
                    ),
                ));
            }
            None if production => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    format!(
                        "required when {ENV_VAR}=production: at least {MIN_JWT_SECRET_BYTES} random bytes (`openssl rand -hex 32`)"
                    ),
                ));
            }
            None => (random_secret(), true),
        };
        let jwt_expires_in = vars.secs("JWT_EXPIRES_IN", DAY, 1, YEAR)?;

        let public_url = match vars.get("PUBLIC_URL") {
            None => None,
            Some(v) => {
                let u = url_with_scheme(
                    "PUBLIC_URL",
                    v,
                    &["http", "https"],
                    "https://chronos.example.com",
                )?;
                Some(u.0.trim_end_matches('/').to_owned())
            }
        };
        let smtp = smtp(&vars)?;
        let webhook = match (vars.raw("WEBHOOK_URL"), vars.raw("WEBHOOK_SECRET")) {
            (None, None) => None,
            (Some(url), Some(secret)) => Some(Webhook {
                url: url_with_scheme(
                    "WEBHOOK_URL",
                    url,
                    &["http", "https"],
                    "https://hooks.example.com/chronos",
                )?,
                secret: Secret::new(secret),
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "WEBHOOK_SECRET",
                    "required when WEBHOOK_URL is set (the shared secret that signs each event)",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "WEBHOOK_URL",
                    "required when WEBHOOK_SECRET is set (an http(s) URL)",
                ));
            }
        };

        let worker_concurrency = vars.uint("WORKER_CONCURRENCY", 16usize, 1, 10_000)?;
        let safety_sync_interval = vars.secs("SAFETY_SYNC_INTERVAL_SECS", 300, 1, DAY)?;
        let job_lease = vars.secs("JOB_LEASE_SECS", 30, 1, DAY)?;
        let shutdown_grace = vars.secs("SHUTDOWN_GRACE_SECS", 30, 0, DAY)?;
        let rate_limit_max = vars.uint("RATE_LIMIT_MAX", 100u32, 1, u32::MAX)?;
        let rate_limit_window = vars.secs("RATE_LIMIT_WINDOW_SECS", 3600, 1, YEAR)?;
        let auth_rate_limit_max = vars.uint("AUTH_RATE_LIMIT_MAX", 10u32, 1, u32::MAX)?;
        let auth_rate_limit_window = vars.secs("AUTH_RATE_LIMIT_WINDOW_SECS", 900, 1, YEAR)?;
        let body_limit_bytes = vars.uint("BODY_LIMIT_BYTES", 1usize << 20, 1, 1usize << 30)?;
        let trust_proxy = vars.bool("TRUST_PROXY", false)?;
        let cors_origin = match vars.get("CORS_ORIGIN") {
            None => CorsOrigin::Any,
            Some(v) => CorsOrigin::parse(v).map_err(|_| {
                ConfigError::new(
                    "CORS_ORIGIN",
                    format!("expected * or comma-separated origins like https://app.example.com, got {v:?}"),
                )
            })?,
        };
        let log_format = match vars
            .get("LOG_FORMAT")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("pretty" | "text") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("expected pretty or json, got {other:?}"),
                ));
            }
        };
        let log_level = vars.string("LOG_LEVEL", "info");
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log_level) {
            return Err(ConfigError::new(
                "LOG_LEVEL",
                format!(
                    "expected a level (error, warn, info, debug, trace) or a tracing filter such as info,chronos=debug: {e}"
                ),
            ));
        }
        let allow_private_targets = vars.bool("ALLOW_PRIVATE_TARGETS", false)?;
        let http_executor_secret = vars.raw("HTTP_EXECUTOR_SECRET").map(Secret::new);
        let execution_retention_days =
            match vars.uint("EXECUTION_RETENTION_DAYS", 365u32, 0, 36_500)? {
                0 => None,
                days => Some(days),
            };

        Ok(Config {
            production,
            port,
            host,
            database_url,
            redis_url,
            redis_prefix,
            run_migrations,
            jwt_secret,
            jwt_secret_generated,
            jwt_expires_in,
            smtp,
            public_url,
            webhook,
            worker_concurrency,
            safety_sync_interval,
            job_lease,
            shutdown_grace,
            rate_limit_max,
            rate_limit_window,
            auth_rate_limit_max,
            auth_rate_limit_window,
            body_limit_bytes,
            trust_proxy,
            cors_origin,
            log_format,
            log_level,
            allow_private_targets,
            http_executor_secret,
            execution_retention_days,
        })
    }

    /// The configuration of this process's environment (after `.env` was loaded).
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// The partition retention of [`EXECUTION_RETENTION_DAYS`](Config), in whole
    /// months (rounded up; `None` keeps everything).
    pub fn retention_months(&self) -> Option<u32> {
        self.execution_retention_days.map(|d| d.div_ceil(30))
    }

    /// Whether the service runs on the in-memory backends (no `DATABASE_URL`).
    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
    }
}

/// `REDIS_PREFIX`: characters that need no quoting anywhere and cannot break the
/// hash tag the keys are grouped by (no braces, no glob characters, no spaces).
fn redis_prefix(vars: &Vars) -> Result<String, ConfigError> {
    let Some(prefix) = vars.get("REDIS_PREFIX") else {
        return Ok(REDIS_PREFIX_DEFAULT.to_owned());
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if prefix.chars().count() > MAX_REDIS_PREFIX_LEN || !prefix.chars().all(allowed) {
        return Err(ConfigError::new(
            "REDIS_PREFIX",
            format!(
                "expected 1 to {MAX_REDIS_PREFIX_LEN} letters, digits, -, _, . or : (such as chronos-staging), got {prefix:?}"
            ),
        ));
    }
    Ok(prefix.to_owned())
}

fn smtp(vars: &Vars) -> Result<Option<Smtp>, ConfigError> {
    let tls = match vars.get("SMTP_TLS").map(str::to_ascii_lowercase).as_deref() {
        None | Some("starttls") => TlsMode::StartTls,
        Some("tls" | "implicit" | "smtps") => TlsMode::Implicit,
        Some("none" | "off" | "false") => TlsMode::None,
        Some(other) => {
            return Err(ConfigError::new(
                "SMTP_TLS",
                format!("expected none, starttls or tls, got {other:?}"),
            ));
        }
    };
    let port = vars.uint("SMTP_PORT", tls.default_port(), 1, u16::MAX)?;
    let Some(host) = vars.get("SMTP_HOST") else {
        return Ok(None);
    };
    let username = vars.get("SMTP_USERNAME").map(str::to_owned);
    let password = vars.raw("SMTP_PASSWORD").map(Secret::new);
    match (&username, &password) {
        (Some(_), None) => {
            return Err(ConfigError::new(
                "SMTP_PASSWORD",
                "required when SMTP_USERNAME is set",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "SMTP_USERNAME",
                "required when SMTP_PASSWORD is set",
            ));
        }
        (Some(_), Some(_)) if tls == TlsMode::None => {
            return Err(ConfigError::new(
                "SMTP_TLS",
                "must be starttls or tls when SMTP_USERNAME and SMTP_PASSWORD are set (credentials never travel in clear text)",
            ));
        }
        _ => {}
    }
    let Some(from) = vars.get("SMTP_FROM") else {
        return Err(ConfigError::new(
            "SMTP_FROM",
            "required when SMTP_HOST is set: the sender, e.g. Chronos <chronos@example.com>",
        ));
    };
    if !from.contains('@') {
        return Err(ConfigError::new(
            "SMTP_FROM",
            format!(
                "expected an email address such as Chronos <chronos@example.com>, got {from:?}"
            ),
        ));
    }
    Ok(Some(Smtp {
        host: host.to_owned(),
        port,
        tls,
        username,
        password,
        from: from.to_owned(),
    }))
}

/// Checks a URL's scheme; the value is never echoed (it may hold credentials).
fn url_with_scheme(
    var: &'static str,
    value: &str,
    schemes: &[&str],
    example: &str,
) -> Result<SecretUrl, ConfigError> {
    let expected = || format!("expected a URL like {example}");
    let parsed = url::Url::parse(value.trim())
        .map_err(|e| ConfigError::new(var, format!("{} ({e})", expected())))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(ConfigError::new(
            var,
            format!(
                "{}: the scheme must be {}, got {:?}",
                expected(),
                schemes.join(" or "),
                parsed.scheme()
            ),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(var, format!("{}: no host", expected())));
    }
    Ok(SecretUrl(value.trim().to_owned()))
}

/// 256 random bits, hex (from two v4 UUIDs: 244 random bits).
fn random_secret() -> Secret {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    Secret(format!("{a}{b}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn redis_prefix_defaults_to_the_keys_of_old() {
        assert_eq!(parse(&[]).unwrap().redis_prefix, "chronos");
        assert_eq!(
            parse(&[("REDIS_PREFIX", "  ")]).unwrap().redis_prefix,
            "chronos"
        );
        assert!(VARIABLES.contains(&"REDIS_PREFIX"));
    }

    #[test]
    fn redis_prefix_is_taken_trimmed() {
        for ok in ["staging", " chronos-test:0a1b ", "a", "tenant_1.eu:jobs"] {
            let c = parse(&[("REDIS_PREFIX", ok)]).unwrap();
            assert_eq!(c.redis_prefix, ok.trim());
        }
        let longest = "p".repeat(MAX_REDIS_PREFIX_LEN);
        assert_eq!(
            parse(&[("REDIS_PREFIX", &longest)]).unwrap().redis_prefix,
            longest
        );
    }

    #[test]
    fn redis_prefix_refuses_what_would_break_keys() {
        let too_long = "p".repeat(MAX_REDIS_PREFIX_LEN + 1);
        for bad in [
            "{tag}",
            "a}b",
            "a b",
            "a*",
            "q?",
            "[x]",
            "é",
            too_long.as_str(),
        ] {
            let e = parse(&[("REDIS_PREFIX", bad)]).unwrap_err();
            assert_eq!(e.var, "REDIS_PREFIX", "{bad:?}");
            assert!(e.to_string().contains("letters, digits"), "{e}");
        }
    }
}
