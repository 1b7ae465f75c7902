//! Turning raw [`Args`] into a validated [`Config`]: ranges, cross-setting
//! rules and the auth resolution. Every error names its setting.

use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::cli::{Args, AuthModeArg, DashboardArg, IoDriverArg, OnOff};
use super::error::{invalid, ConfigError};
use super::{redis, CloudWatchSettings, Config, ResolvedAuth};
use crate::protocol::deflate::DeflateConfig;
use crate::ratelimit::RateLimit;
use crate::settings::{Dashboard, IoDriver, Settings};

/// Most shards accepted (`WSS_SHARDS`); also the cap for "one per core".
pub(super) const MAX_SHARDS: usize = 1024;
/// Shortest accepted JWT secret: HS256's key should be as long as its hash.
pub(super) const MIN_SECRET_BYTES: usize = 32;
/// Longest accepted server id (it is a Redis key part and a metric dimension).
pub(super) const MAX_SERVER_ID_BYTES: usize = 64;
/// Paths the server already answers; the echo path must differ.
const RESERVED_PATHS: [&str; 6] = ["/", "/ws", "/health", "/ready", "/metrics", "/stats"];

/// Validates everything, in flag order after the auth resolution.
pub(super) fn config(a: Args) -> Result<Config, ConfigError> {
    let auth = resolve_auth(
        a.jwt_secret.as_ref().map(|s| s.0.as_str()),
        a.auth_mode,
        a.host,
    )?;
    let echo_path = echo_path(a.echo_path.as_deref(), &auth)?;
    let settings = Settings {
        listen: SocketAddr::new(a.host, a.port),
        shards: shards(a.shards)?,
        io_driver: match a.io_driver {
            IoDriverArg::Auto => IoDriver::Auto,
            IoDriverArg::Uring => IoDriver::Uring,
            IoDriverArg::Legacy => IoDriver::Legacy,
        },
        server_id: server_id(a.server_id.as_deref(), a.port)?,
        max_message_bytes: range("MAX_MESSAGE_BYTES", a.max_message_bytes, 256, 16 << 20)?,
        send_queue_bytes: range(
            "SEND_QUEUE_BYTES",
            a.send_queue_bytes,
            a.max_message_bytes.saturating_add(1024),
            1 << 30,
        )
        .map_err(|_| {
            invalid(
                "SEND_QUEUE_BYTES",
                format!(
                    "{} must be at least MAX_MESSAGE_BYTES + 1024 = {} and at most 1 GiB",
                    a.send_queue_bytes,
                    a.max_message_bytes.saturating_add(1024)
                ),
            )
        })?,
        max_connections: range("MAX_CONNECTIONS", a.max_connections, 1, usize::MAX)?,
        rate_limit: rate_limit(&a)?,
        heartbeat_interval: millis(
            "HEARTBEAT_INTERVAL_MS",
            a.heartbeat_interval_ms,
            10,
            3_600_000,
        )?,
        heartbeat_timeout: heartbeat_timeout(&a)?,
        shutdown_timeout: millis("SHUTDOWN_TIMEOUT_MS", a.shutdown_timeout_ms, 0, 3_600_000)?,
        broadcast_enabled: a.broadcast_enabled,
        echo_path,
        delivery_timeout: millis("DELIVERY_TIMEOUT_MS", a.delivery_timeout_ms, 1, 600_000)?,
        dashboard: match a.dashboard {
            DashboardArg::On => Dashboard::On,
            DashboardArg::Readonly => Dashboard::ReadOnly,
            DashboardArg::Off => Dashboard::Off,
        },
        drain_rate: range("DRAIN_RATE", a.drain_rate, 1, u32::MAX)?,
        compression: compression(&a)?,
    };
    Ok(Config {
        auth,
        allowed_origins: origins(a.allowed_origins.as_deref())?,
        environment: environment(&a.environment)?,
        redis: redis::settings(&a)?,
        cloudwatch: cloudwatch(&a)?,
        log: log_filter(&a.log)?,
        log_format: a.log_format,
        settings,
    })
}

/// The contract's rule: token whenever `JWT_SECRET` is set (`AUTH_MODE`
/// insecure with it is an error); `token` needs the secret; insecure only
/// without a secret and either asked for or on a loopback host.
pub(super) fn resolve_auth(
    secret: Option<&str>,
    mode: AuthModeArg,
    host: IpAddr,
) -> Result<ResolvedAuth, ConfigError> {
    match (secret, mode) {
        (Some(_), AuthModeArg::Insecure) => Err(invalid(
            "AUTH_MODE",
            "insecure cannot be combined with JWT_SECRET (token auth is always on when it is set); unset one of them",
        )),
        (Some(s), _) if s.len() < MIN_SECRET_BYTES => Err(invalid(
            "JWT_SECRET",
            format!("is {} bytes; it must be at least {MIN_SECRET_BYTES} bytes", s.len()),
        )),
        (Some(s), _) => Ok(ResolvedAuth::Token {
            secret: s.as_bytes().to_vec(),
        }),
        (None, AuthModeArg::Token) => Err(invalid(
            "JWT_SECRET",
            "is required by AUTH_MODE=token (at least 32 bytes)",
        )),
        (None, AuthModeArg::Insecure) => Ok(ResolvedAuth::Insecure { explicit: true }),
        (None, AuthModeArg::Auto) if is_loopback(host) => {
            Ok(ResolvedAuth::Insecure { explicit: false })
        }
        (None, AuthModeArg::Auto) => Err(invalid(
            "JWT_SECRET",
            format!(
                "is unset and the server listens on {host}, which is not a loopback address: \
                 set JWT_SECRET (token auth), or AUTH_MODE=insecure to accept unverified ?userId= identities"
            ),
        )),
    }
}

/// Loopback, including IPv4-mapped IPv6 (`::ffff:127.0.0.1`). The
/// unspecified addresses (`0.0.0.0`, `::`) listen everywhere: not loopback.
pub(super) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `value` if within `min..=max`, else an error naming `setting`.
fn range<T: PartialOrd + Display + Copy>(
    setting: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if value < min || value > max {
        return Err(invalid(
            setting,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(value)
}

/// A range-checked millisecond setting as a `Duration`.
fn millis(setting: &'static str, ms: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
    range(setting, ms, min, max).map(Duration::from_millis)
}

fn shards(n: usize) -> Result<usize, ConfigError> {
    match range("WSS_SHARDS", n, 0, MAX_SHARDS)? {
        0 => Ok(std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_SHARDS)),
        n => Ok(n),
    }
}

fn rate_limit(a: &Args) -> Result<RateLimit, ConfigError> {
    let per_sec = range("RATE_LIMIT_PER_SEC", a.rate_limit, 0, 1_000_000)?;
    let burst = range("RATE_LIMIT_BURST", a.rate_limit_burst, 0, 1_000_000)?;
    if per_sec > 0 && burst == 0 {
        return Err(invalid(
            "RATE_LIMIT_BURST",
            "must be at least 1 while RATE_LIMIT_PER_SEC is on (0 would refuse every message)",
        ));
    }
    let strikes = range("RATE_LIMIT_STRIKES", a.rate_limit_strikes, 1, u16::MAX)?;
    Ok(RateLimit {
        per_sec,
        burst,
        strikes,
    })
}

fn heartbeat_timeout(a: &Args) -> Result<Duration, ConfigError> {
    let (interval, timeout) = (a.heartbeat_interval_ms, a.heartbeat_timeout_ms);
    if timeout <= interval {
        return Err(invalid(
            "HEARTBEAT_TIMEOUT_MS",
            format!("{timeout} must be greater than HEARTBEAT_INTERVAL_MS ({interval})"),
        ));
    }
    millis("HEARTBEAT_TIMEOUT_MS", timeout, 11, 86_400_000)
}

/// `SERVER_ID`, or `<hostname>-<port>` (`<hostname>-0-<pid>` on port 0,
/// where the port is not known yet and several processes may share a host).
fn server_id(given: Option<&str>, port: u16) -> Result<String, ConfigError> {
    let (id, how) = match given {
        Some(id) => (id.to_owned(), "SERVER_ID"),
        None if port == 0 => (
            format!("{}-0-{}", hostname(), std::process::id()),
            "the default from the host name",
        ),
        None => (
            format!("{}-{port}", hostname()),
            "the default from the host name",
        ),
    };
    let valid =
        (1..=MAX_SERVER_ID_BYTES).contains(&id.len()) && crate::protocol::is_valid_user_id(&id);
    if !valid {
        return Err(invalid(
            "SERVER_ID",
            format!(
                "{id:?} ({how}) must be 1 to {MAX_SERVER_ID_BYTES} bytes of A-Z a-z 0-9 . _ : @ -; set SERVER_ID"
            ),
        ));
    }
    Ok(id)
}

/// The kernel's host name, else `HOSTNAME`, else `localhost`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn echo_path(path: Option<&str>, auth: &ResolvedAuth) -> Result<Option<String>, ConfigError> {
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if matches!(auth, ResolvedAuth::Token { .. }) {
        return Err(invalid(
            "ECHO_PATH",
            "needs no identity, so it is only allowed with insecure auth (JWT_SECRET unset)",
        ));
    }
    let well_formed = path.starts_with('/')
        && !path.contains(['?', '#'])
        && path.bytes().all(|b| b.is_ascii_graphic());
    if !well_formed || RESERVED_PATHS.contains(&path) {
        return Err(invalid(
            "ECHO_PATH",
            format!(
                "{path:?} must be an absolute path without query, other than {RESERVED_PATHS:?}"
            ),
        ));
    }
    Ok(Some(path.to_owned()))
}

/// `ALLOWED_ORIGINS` as lower-cased `scheme://host[:port]` entries.
fn origins(raw: Option<&str>) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let mut list = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if origin == "*" {
            return Err(invalid(
                "ALLOWED_ORIGINS",
                "'*' is not an origin; leave ALLOWED_ORIGINS unset to accept any",
            ));
        }
        let well_formed = origin.split_once("://").is_some_and(|(scheme, host)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !host.is_empty()
                && !host.contains(['/', '?', '#', '@', ' '])
        });
        if !well_formed {
            return Err(invalid(
                "ALLOWED_ORIGINS",
                format!("{origin:?} is not an origin like https://app.example.com[:port] (no path, no trailing slash)"),
            ));
        }
        list.push(origin.to_ascii_lowercase());
    }
    if list.is_empty() {
        return Err(invalid("ALLOWED_ORIGINS", "lists no origin"));
    }
    Ok(Some(list))
}

fn environment(name: &str) -> Result<String, ConfigError> {
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(invalid(
            "ENVIRONMENT",
            "must be 1 to 255 bytes without control characters",
        ));
    }
    Ok(name.to_owned())
}

fn cloudwatch(a: &Args) -> Result<Option<CloudWatchSettings>, ConfigError> {
    let interval = range("METRICS_INTERVAL_SECS", a.metrics_interval_secs, 1, 3600)?;
    let ns = &a.cloudwatch_namespace;
    let ns_ok = (1..=255).contains(&ns.len())
        && !ns.starts_with("AWS/")
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"./-_#: ".contains(&b));
    if !ns_ok {
        return Err(invalid(
            "CLOUDWATCH_NAMESPACE",
            format!("{ns:?} must be 1 to 255 of A-Z a-z 0-9 . - _ / # : and space, not starting with AWS/"),
        ));
    }
    let region = a.aws_region.as_deref().filter(|r| !r.is_empty());
    if let Some(r) = region {
        if !r
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "AWS_REGION",
                format!("{r:?} is not a region name like us-east-1"),
            ));
        }
    }
    Ok(a.cloudwatch_enabled.then(|| CloudWatchSettings {
        namespace: ns.clone(),
        interval: Duration::from_secs(interval),
        region: region.map(str::to_owned),
    }))
}

/// The `COMPRESSION_*` block: checked even when off, so that a typo does not
/// wait for the day compression is turned on.
fn compression(a: &Args) -> Result<Option<DeflateConfig>, ConfigError> {
    let levels = DeflateConfig::LEVELS;
    let config = DeflateConfig {
        min_bytes: range(
            "COMPRESSION_MIN_BYTES",
            a.compression_min_bytes,
            0,
            16 << 20,
        )?,
        level: range(
            "COMPRESSION_LEVEL",
            a.compression_level,
            *levels.start(),
            *levels.end(),
        )?,
    };
    Ok((a.compression == OnOff::On).then_some(config))
}

fn log_filter(filter: &str) -> Result<String, ConfigError> {
    tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| {
        invalid(
            "RUST_LOG",
            format!("{filter:?} is not a tracing filter: {e}"),
        )
    })?;
    Ok(filter.to_owned())
}
