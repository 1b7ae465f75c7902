//! Turning raw [`Args`] into a validated [`Config`]: ranges, cross-setting
//! rules and the auth resolution. Every error names its setting.

use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::cli::{Args, AuthMode};
use super::error::{invalid, ConfigError};
use super::{api, cloudwatch, redis, Config, ResolvedAuth};
use crate::auth::PublicKey;
use crate::coordinator::Retention;
use crate::ratelimit::RateLimit;
use crate::settings::Settings;

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
    let public_key = public_key(a.jwt_public_key_file.as_deref())?;
    let auth = resolve_auth(
        a.jwt_secret.as_ref().map(|s| s.0.as_str()),
        public_key,
        a.auth_mode,
        a.host,
    )?;
    let echo_path = echo_path(a.echo_path.as_deref(), &auth)?;
    let hardening = super::hardening::settings(&a)?;
    let settings = Settings {
        listen: SocketAddr::new(a.host, a.port),
        shards: shards(a.shards)?,
        io_driver: a.io_driver,
        server_id: server_id(a.server_id.as_deref(), a.port)?,
        max_message_bytes: range("MAX_MESSAGE_BYTES", a.max_message_bytes, 256, 16 << 20)?,
        send_queue_bytes: queue_bytes(&a)?,
        max_connections: range("MAX_CONNECTIONS", a.max_connections, 1, usize::MAX)?,
        rate_limit: rate_limit(&a, queue_bytes(&a)?)?,
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
        dashboard: a.dashboard,
        drain_rate: range("DRAIN_RATE", a.drain_rate, 1, u32::MAX)?,
        namespaces: Arc::new(super::channels::load(a.channels_config.as_deref())?),
        max_channels_per_connection: range(
            "MAX_CHANNELS_PER_CONNECTION",
            a.max_channels_per_connection,
            1,
            65_535,
        )?,
        inbox: inbox(&a)?,
        max_json_depth: hardening.max_json_depth,
        token_notice: millis("TOKEN_NOTICE_MS", a.token_notice_ms, 0, 86_400_000)?,
        token_grace: millis("TOKEN_GRACE_MS", a.token_grace_ms, 0, 86_400_000)?,
        api: api::settings(&a)?,
        message_complete_timeout: millis(
            "MESSAGE_COMPLETE_TIMEOUT_MS",
            a.message_complete_timeout_ms,
            100,
            3_600_000,
        )?,
        partial_message_budget: partial_message_budget(&a)?,
        ready_resume_percent: range("READY_RESUME_PERCENT", a.ready_resume_percent, 0, 100)?,
        compression: super::compression::settings(&a)?,
    };
    Ok(Config {
        auth,
        allowed_origins: origins(a.allowed_origins.as_deref())?,
        environment: environment(&a.environment)?,
        redis: redis::settings(
            &a,
            &settings.server_id,
            settings.delivery_timeout,
            &settings.namespaces,
        )?,
        cloudwatch: cloudwatch::settings(&a, &settings.server_id)?,
        log: log_filter(&a.log)?,
        no_color: a.no_color,
        settings,
        hardening,
    })
}

/// `JWT_PUBLIC_KEY_FILE`, read and checked at start.
fn public_key(path: Option<&std::path::Path>) -> Result<Option<PublicKey>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| invalid("JWT_PUBLIC_KEY_FILE", format!("cannot read {shown}: {e}")))?;
    PublicKey::from_pem(&pem)
        .map(Some)
        .map_err(|why| invalid("JWT_PUBLIC_KEY_FILE", format!("{shown} {why}")))
}

/// The contract's rule: token whenever `JWT_SECRET` (or
/// `JWT_PUBLIC_KEY_FILE`) is set (`AUTH_MODE` insecure with it is an
/// error); `token` needs a key; insecure only without a key and either
/// asked for or on a loopback host.
pub(super) fn resolve_auth(
    secret: Option<&str>,
    public_key: Option<PublicKey>,
    mode: AuthMode,
    host: IpAddr,
) -> Result<ResolvedAuth, ConfigError> {
    if let Some(s) = secret.filter(|s| s.len() < MIN_SECRET_BYTES) {
        return Err(invalid(
            "JWT_SECRET",
            format!(
                "is {} bytes; it must be at least {MIN_SECRET_BYTES} bytes",
                s.len()
            ),
        ));
    }
    let has_key = secret.is_some() || public_key.is_some();
    match (has_key, mode) {
        (true, AuthMode::Insecure) => Err(invalid(
            "AUTH_MODE",
            "insecure cannot be combined with JWT_SECRET or JWT_PUBLIC_KEY_FILE (token auth is always on when one is set); unset one of them",
        )),
        (true, _) => Ok(ResolvedAuth::Token {
            secret: secret.map(|s| s.as_bytes().to_vec()),
            public_key,
        }),
        (false, AuthMode::Token) => Err(invalid(
            "JWT_SECRET",
            "is required by AUTH_MODE=token (at least 32 bytes), unless JWT_PUBLIC_KEY_FILE is set",
        )),
        (false, AuthMode::Insecure) => Ok(ResolvedAuth::Insecure { explicit: true }),
        (false, AuthMode::Auto) if is_loopback(host) => {
            Ok(ResolvedAuth::Insecure { explicit: false })
        }
        (false, AuthMode::Auto) => Err(invalid(
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
pub(super) fn range<T: PartialOrd + Display + Copy>(
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
pub(super) fn millis(
    setting: &'static str,
    ms: u64,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
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

/// `SEND_QUEUE_BYTES`, which must hold one largest message with room to spare.
fn queue_bytes(a: &Args) -> Result<usize, ConfigError> {
    let min = a.max_message_bytes.saturating_add(1024);
    range("SEND_QUEUE_BYTES", a.send_queue_bytes, min, 1 << 30).map_err(|_| {
        invalid(
            "SEND_QUEUE_BYTES",
            format!(
                "{} must be at least MAX_MESSAGE_BYTES + 1024 = {min} and at most 1 GiB",
                a.send_queue_bytes
            ),
        )
    })
}

/// Lowest accepted `RATE_LIMIT_BYTES_PER_SEC` while on: the budget refills
/// by the millisecond, so slower rates would round to nothing.
const MIN_BYTES_PER_SEC: u32 = 1024;
/// Room left in an idle receiver's queue after a sender's whole byte burst:
/// the envelope of its last message (sender, timestamp, id), charged after
/// the message was allowed, fits in it.
const BURST_HEADROOM: usize = 1024;

/// Both budgets. The byte burst holds one largest message (else it could
/// never be sent) and stays below the send queue by [`BURST_HEADROOM`], so
/// one client alone can never overflow an idle receiver's queue.
fn rate_limit(a: &Args, send_queue_bytes: usize) -> Result<RateLimit, ConfigError> {
    let per_sec = range("RATE_LIMIT_PER_SEC", a.rate_limit, 0, 1_000_000)?;
    let burst = range("RATE_LIMIT_BURST", a.rate_limit_burst, 0, 1_000_000)?;
    if per_sec > 0 && burst == 0 {
        return Err(invalid(
            "RATE_LIMIT_BURST",
            "must be at least 1 while RATE_LIMIT_PER_SEC is on (0 would refuse every message)",
        ));
    }
    let strikes = range("RATE_LIMIT_STRIKES", a.rate_limit_strikes, 1, u16::MAX)?;
    let bytes_per_sec = a.rate_limit_bytes;
    if bytes_per_sec != 0 && !(MIN_BYTES_PER_SEC..=1 << 30).contains(&bytes_per_sec) {
        return Err(invalid(
            "RATE_LIMIT_BYTES_PER_SEC",
            format!(
                "{bytes_per_sec} must be 0 (off) or {MIN_BYTES_PER_SEC}..={}",
                1u32 << 30
            ),
        ));
    }
    let (min, max) = (a.max_message_bytes, send_queue_bytes - BURST_HEADROOM);
    let bytes_burst = match a.rate_limit_bytes_burst {
        None => (send_queue_bytes / 2).clamp(min, max),
        Some(b) if (min..=max).contains(&(b as usize)) => b as usize,
        Some(b) => {
            return Err(invalid(
                "RATE_LIMIT_BYTES_BURST",
                format!(
                    "{b} must be at least MAX_MESSAGE_BYTES ({min}), so that one largest message \
                     can pass, and at most SEND_QUEUE_BYTES - {BURST_HEADROOM} ({max}), so that \
                     one client cannot fill another's send queue"
                ),
            ))
        }
    };
    Ok(RateLimit {
        per_sec,
        burst,
        strikes,
        bytes_per_sec,
        // At most 1 GiB (the send queue's bound).
        bytes_burst: bytes_burst as u32,
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

/// `ALLOWED_ORIGINS` as serialized origins (RFC 6454: `scheme://host[:port]`,
/// scheme and host lower-cased, the scheme's default port left out), the
/// form requests' `Origin` headers are compared in.
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
        let serialized = crate::auth::origin::serialize(origin).map_err(|why| {
            invalid(
                "ALLOWED_ORIGINS",
                format!("{origin:?} is not an origin like https://app.example.com[:port]: {why}"),
            )
        })?;
        if !list.contains(&serialized) {
            list.push(serialized);
        }
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

fn log_filter(filter: &str) -> Result<String, ConfigError> {
    tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| {
        invalid(
            "RUST_LOG",
            format!("{filter:?} is not a tracing filter: {e}"),
        )
    })?;
    Ok(filter.to_owned())
}

/// `PARTIAL_MESSAGE_BYTES_PER_SHARD`: room for one largest message being
/// assembled (with the decoder's state), so a lone client is never refused.
fn partial_message_budget(a: &Args) -> Result<usize, ConfigError> {
    let min = a.max_message_bytes.saturating_add(1024);
    let budget = a.partial_message_bytes_per_shard;
    if !(min..=1 << 40).contains(&budget) {
        return Err(invalid(
            "PARTIAL_MESSAGE_BYTES_PER_SHARD",
            format!(
                "{budget} must be at least MAX_MESSAGE_BYTES + 1024 = {min} (one largest \
                 message being assembled) and at most 1 TiB"
            ),
        ));
    }
    Ok(budget)
}

/// `INBOX_SIZE` and `INBOX_TTL_SECS`: the inbox, when kept.
fn inbox(a: &Args) -> Result<Option<Retention>, ConfigError> {
    let size = range("INBOX_SIZE", a.inbox_size, 0, 10_000)?;
    let ttl = range("INBOX_TTL_SECS", a.inbox_ttl_secs, 1, 30 * 86_400)?;
    Ok((size > 0).then(|| Retention {
        size,
        ttl: Duration::from_secs(ttl),
    }))
}
