//! The `http` executor: calls a URL and succeeds on a `2xx` answer.
//!
//! # Payload
//! ```json
//! {"url": "https://api.example.com/hook", "method": "POST",
//!  "headers": {"Authorization": "Bearer …"}, "body": {"any": "JSON"}}
//! ```
//! - `url` (required): an `http` or `https` URL;
//! - `method`: default `GET`;
//! - `headers`: an object of header names to string values;
//! - `body`: a string is sent as it is; any other JSON value is sent as JSON with
//!   `Content-Type: application/json`; absent or `null` sends no body.
//!
//! The request is cancelled when the attempt is (the job's `timeout_seconds`, or
//! shutdown), so the engine records a timeout or a cancellation. Redirects are followed
//! (at most 5), each hop checked like the first.
//!
//! # Outcome
//! A `2xx` answer succeeds with the output
//! `{"status": 200, "headers": {…a few…}, "body_excerpt": "…", "truncated": false}`
//! (the first 4 KiB of the body, decoded as UTF-8 with replacement characters). A
//! `5xx`, `429` or `408` answer, a connection failure and a timeout are retryable
//! failures; any other answer (`4xx`, an unfollowed `3xx`) and a refused target are
//! fatal.
//!
//! # Private targets
//! Unless [`HttpExecutorOptions::allow_private_targets`] is set (`ALLOW_PRIVATE_TARGETS`),
//! the executor refuses to connect to loopback, private (RFC 1918, CGNAT
//! `100.64.0.0/10`, ULA `fc00::/7`), link-local (`169.254.0.0/16` with the cloud
//! metadata address, `fe80::/10`), unspecified, multicast, broadcast and reserved
//! addresses, IPv6 forms that embed such an IPv4 address (mapped, compatible, NAT64,
//! 6to4) included. Host names are checked after resolution, on every address they
//! resolve to, by the resolver that the connection then uses, so the check and the
//! connection see the same addresses; a name with any refused address is refused.
//! IP literals are checked before the request and on every redirect. Proxies from the
//! environment are not used (they would resolve the target themselves).
//!
//! # Signature
//! With a secret (`HTTP_EXECUTOR_SECRET`), each request carries `Chronos-Timestamp`
//! (unix seconds) and `Chronos-Signature: v1=<hex>`, the HMAC-SHA256 of
//! `"{timestamp}.{body}"`, exactly as the failure webhooks of `chronos-notify`: check
//! them with `chronos_notify::verify_signature`. `Chronos-Job-Id` and
//! `Chronos-Execution-Id` name the attempt.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chronos::executor::{ExecError, Executor, JobContext};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};

use crate::config::Secret;

/// The most body bytes kept in the output.
pub const BODY_EXCERPT_BYTES: usize = 4096;

/// The most redirects followed.
pub const MAX_REDIRECTS: usize = 5;

/// How much later than the job's timeout the request itself times out.
const TIMEOUT_SLACK: Duration = Duration::from_secs(1);

/// The response headers copied into the output.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "location",
    "etag",
    "last-modified",
    "retry-after",
    "date",
    "x-request-id",
];

/// How the [`HttpExecutor`] behaves.
#[derive(Debug, Clone, Default)]
pub struct HttpExecutorOptions {
    /// Let requests reach loopback, private, link-local and other non-public
    /// addresses (`ALLOW_PRIVATE_TARGETS`).
    pub allow_private_targets: bool,
    /// Addresses allowed even though they are not public (an internal service the
    /// jobs may call). Empty by default.
    pub allowed_addresses: Vec<IpAddr>,
    /// Sign each request with this secret (`HTTP_EXECUTOR_SECRET`).
    pub secret: Option<Secret>,
}

/// What the executor could not set up.
#[derive(Debug, thiserror::Error)]
#[error("the http executor's client could not be built: {0}")]
pub struct HttpExecutorError(#[source] reqwest::Error);

/// A connection or redirect the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to connect to {target}: {addr} is not a public address (ALLOW_PRIVATE_TARGETS permits it)"
)]
pub struct BlockedTarget {
    /// The host as the URL names it.
    pub target: String,
    /// The address that is not public.
    pub addr: IpAddr,
}

/// Which addresses requests may reach.
#[derive(Debug, Clone)]
struct Guard {
    allow_private: bool,
    allowed: HashSet<IpAddr>,
}

impl Guard {
    fn check(&self, target: &str, addr: IpAddr) -> Result<(), BlockedTarget> {
        if self.allow_private || self.allowed.contains(&addr) || is_public(addr) {
            Ok(())
        } else {
            Err(BlockedTarget {
                target: target.to_owned(),
                addr,
            })
        }
    }

    /// Checks a URL whose host is an IP literal (those bypass the resolver).
    fn check_url(&self, url: &Url) -> Result<(), BlockedTarget> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.check(url.host_str().unwrap_or_default(), ip)
    }
}

/// The resolver of the executor's client: the system resolver, then the guard on
/// every address.
struct GuardedResolver {
    guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                guard.check(&host, addr.ip())?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `addr` is a public unicast address.
pub fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let blocked = a == 0                              // "this network", 0.0.0.0
        || a == 10                                    // RFC 1918
        || (a == 100 && (64..128).contains(&b))       // CGNAT 100.64.0.0/10
        || a == 127                                   // loopback
        || (a == 169 && b == 254)                     // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))        // RFC 1918
        || (a == 192 && b == 0 && c == 0)             // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)             // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)           // 6to4 relay anycast
        || (a == 192 && b == 168)                     // RFC 1918
        || (a == 198 && (b == 18 || b == 19))         // benchmarking
        || (a == 198 && b == 51 && c == 100)          // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)           // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !blocked
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let blocked = ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00      // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80      // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0      // site-local fec0::/10 (deprecated)
        || (s[0] & 0xff00) == 0xff00      // multicast
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard 100::/64
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0] == 0; // anything else in ::/16 (IPv4-compatible and reserved)
    !blocked
}

/// The IPv4 address an IPv6 address carries: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return Some(tail());
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(tail());
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// The built-in `http` executor (see the [module docs](self)).
#[derive(Clone)]
pub struct HttpExecutor {
    client: reqwest::Client,
    guard: Arc<Guard>,
    secret: Option<Secret>,
}

impl fmt::Debug for HttpExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpExecutor")
            .field("allow_private_targets", &self.guard.allow_private)
            .field("allowed_addresses", &self.guard.allowed)
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

impl HttpExecutor {
    /// An executor with these options.
    pub fn new(options: HttpExecutorOptions) -> Result<Self, HttpExecutorError> {
        let guard = Arc::new(Guard {
            allow_private: options.allow_private_targets,
            allowed: options.allowed_addresses.into_iter().collect(),
        });
        let redirect_guard = guard.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match redirect_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(blocked) => attempt.error(blocked),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("chronos/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .redirect(policy)
            .connect_timeout(Duration::from_secs(10))
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .build()
            .map_err(HttpExecutorError)?;
        Ok(Self {
            client,
            guard,
            secret: options.secret,
        })
    }

    async fn call(&self, ctx: &JobContext) -> Result<Value, ExecError> {
        let request = Request::from_payload(ctx.payload())?;
        self.guard
            .check_url(&request.url)
            .map_err(ExecError::fatal)?;
        let shown = shown_url(&request.url);
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone())
            // The engine times the attempt out at the job's timeout (and then
            // cancels the request); this is a backstop a little later, so the
            // attempt is recorded as a timeout rather than a failed request.
            .timeout(ctx.job().timeout + TIMEOUT_SLACK)
            .headers(request.headers)
            .header("chronos-job-id", ctx.job().id.to_string())
            .header("chronos-execution-id", ctx.execution_id().to_string());
        if let Some(content_type) = request.content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        if let Some(secret) = &self.secret {
            let now = chrono::Utc::now().timestamp();
            let body = request.body.as_deref().unwrap_or_default();
            builder = builder.header("chronos-timestamp", now.to_string()).header(
                "chronos-signature",
                chronos_notify::webhook::sign(secret.expose(), now, body),
            );
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        ctx.log().info(format!("{} {shown}", request.method));
        let started = Instant::now();
        let response = builder.send().await.map_err(|e| classify(&e, &shown))?;
        let status = response.status();
        let headers = kept_headers(response.headers());
        let (excerpt, truncated) = read_excerpt(response).await;
        let elapsed = started.elapsed().as_millis();
        ctx.log()
            .info(format!("{shown} answered {status} in {elapsed} ms"));
        if status.is_success() {
            return Ok(json!({
                "status": status.as_u16(),
                "headers": headers,
                "body_excerpt": excerpt,
                "truncated": truncated,
            }));
        }
        let mut reason = format!("{shown} answered {status}");
        let short: String = excerpt.chars().take(300).collect();
        if !short.trim().is_empty() {
            reason.push_str(": ");
            reason.push_str(short.trim());
        }
        if is_retryable_status(status) {
            Err(ExecError::retryable(reason))
        } else {
            Err(ExecError::fatal(reason))
        }
    }
}

#[async_trait]
impl Executor for HttpExecutor {
    async fn execute(&self, ctx: JobContext) -> Result<Value, ExecError> {
        self.call(&ctx).await
    }
}

/// `5xx`, `429` and `408` may succeed later.
fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// A failed send: a refused target is fatal, anything else (connection, timeout)
/// retryable.
fn classify(e: &reqwest::Error, shown: &str) -> ExecError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(blocked) = err.downcast_ref::<BlockedTarget>() {
            return ExecError::fatal(blocked);
        }
        source = err.source();
    }
    let cause = full_chain(e);
    if e.is_timeout() {
        ExecError::retryable(format!("{shown} timed out: {cause}"))
    } else if e.is_redirect() || e.is_builder() {
        ExecError::fatal(format!("{shown}: {cause}"))
    } else {
        ExecError::retryable(format!("{shown} failed: {cause}"))
    }
}

/// The error and its causes on one line.
fn full_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = err.source();
    }
    out
}

/// The URL without credentials and query: safe for logs and errors.
fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn kept_headers(headers: &HeaderMap) -> Map<String, Value> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), Value::String(value.to_owned())))
        })
        .collect()
}

/// The first [`BODY_EXCERPT_BYTES`] of the body (UTF-8, lossy), and whether there
/// was more. A body that breaks off counts as what arrived.
async fn read_excerpt(mut response: reqwest::Response) -> (String, bool) {
    let mut bytes = Vec::new();
    let mut truncated = false;
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = BODY_EXCERPT_BYTES - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    (String::from_utf8_lossy(&bytes).into_owned(), truncated)
}

/// The request a payload describes.
struct Request {
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    content_type: Option<HeaderValue>,
}

impl Request {
    fn from_payload(payload: &Value) -> Result<Request, ExecError> {
        let bad = |m: String| ExecError::fatal(format!("invalid http payload: {m}"));
        let url = payload
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`url` (a string) is required".to_owned()))?;
        let url = Url::parse(url).map_err(|e| bad(format!("`url` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!(
                "`url` must be http or https, not {}",
                url.scheme()
            )));
        }
        let method = match payload.get("method") {
            None | Some(Value::Null) => Method::GET,
            Some(Value::String(m)) => Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| bad(format!("`method` {m:?} is not an HTTP method")))?,
            Some(_) => return Err(bad("`method` must be a string".to_owned())),
        };
        let mut headers = HeaderMap::new();
        match payload.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(bad(format!(
                                "header {name:?} must be a string, number or boolean"
                            )));
                        }
                    };
                    let header = HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| bad(format!("{name:?} is not a header name")))?;
                    let value = HeaderValue::from_str(&value)
                        .map_err(|_| bad(format!("the value of header {name:?} is not valid")))?;
                    headers.append(header, value);
                }
            }
            Some(_) => return Err(bad("`headers` must be an object".to_owned())),
        }
        let (body, content_type) = match payload.get("body") {
            None | Some(Value::Null) => (None, None),
            Some(Value::String(s)) => (Some(s.clone().into_bytes()), None),
            Some(other) => {
                let bytes = serde_json::to_vec(other)
                    .map_err(|e| bad(format!("`body` does not serialize: {e}")))?;
                let content_type = (!headers.contains_key(CONTENT_TYPE))
                    .then(|| HeaderValue::from_static("application/json"));
                (Some(bytes), content_type)
            }
        };
        Ok(Request {
            url,
            method,
            headers,
            body,
            content_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        match s.parse::<IpAddr>() {
            Ok(ip) => is_public(ip),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(!public(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(public(ip), "{ip} should pass");
        }
    }
}
