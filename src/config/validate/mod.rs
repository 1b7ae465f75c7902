//! Turning raw [`Args`] into a validated [`Config`]: ranges, cross-setting
//! rules and the auth resolution. Every error names its setting.
//!
//! [`config`] is the one entry point. The checks of one concern live next to
//! each other: `auth.rs` (who may connect), `server.rs` (the instance and its
//! connections), `limits.rs` (limits that depend on each other); Redis,
//! CloudWatch, the server API, hardening and compression have their own
//! modules in `super`. The generic checks ([`range`], [`millis`]) are here.

mod auth;
mod limits;
mod server;

use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::cli::{Args, ChannelsArgs};
use super::error::{invalid, ConfigError};
use super::{api, cloudwatch, redis, Config};
use crate::coordinator::Retention;
use crate::settings::Settings;

/// Validates everything, in flag order after the auth resolution.
pub(super) fn config(a: Args) -> Result<Config, ConfigError> {
    let public_key = auth::public_key(a.auth.jwt_public_key_file.as_deref())?;
    let auth = auth::resolve_auth(
        a.auth.jwt_secret.as_ref().map(|s| s.0.as_str()),
        public_key,
        a.auth.auth_mode,
        a.instance.host,
    )?;
    let echo_path = server::echo_path(a.messaging.echo_path.as_deref(), &auth)?;
    let hardening = super::hardening::settings(&a.hardening)?;
    let (i, l, lc, ch) = (&a.instance, &a.limits, &a.lifecycle, &a.channels);
    let settings = Settings {
        listen: SocketAddr::new(i.host, i.port),
        shards: server::shards(i.shards)?,
        io_driver: i.io_driver,
        server_id: server::server_id(i.server_id.as_deref(), i.port)?,
        max_message_bytes: range("MAX_MESSAGE_BYTES", l.max_message_bytes, 256, 16 << 20)?,
        send_queue_bytes: limits::queue_bytes(l)?,
        max_connections: range("MAX_CONNECTIONS", l.max_connections, 1, usize::MAX)?,
        rate_limit: limits::rate_limit(l, &a.abuse, limits::queue_bytes(l)?)?,
        heartbeat_interval: millis(
            "HEARTBEAT_INTERVAL_MS",
            lc.heartbeat_interval_ms,
            10,
            3_600_000,
        )?,
        heartbeat_timeout: server::heartbeat_timeout(lc)?,
        shutdown_timeout: millis("SHUTDOWN_TIMEOUT_MS", lc.shutdown_timeout_ms, 0, 3_600_000)?,
        broadcast_enabled: a.messaging.broadcast_enabled,
        echo_path,
        delivery_timeout: millis(
            "DELIVERY_TIMEOUT_MS",
            a.messaging.delivery_timeout_ms,
            1,
            600_000,
        )?,
        dashboard: a.dashboard,
        drain_rate: range("DRAIN_RATE", lc.drain_rate, 1, u32::MAX)?,
        namespaces: Arc::new(super::channels::load(ch.channels_config.as_deref())?),
        max_channels_per_connection: range(
            "MAX_CHANNELS_PER_CONNECTION",
            ch.max_channels_per_connection,
            1,
            65_535,
        )?,
        inbox: inbox(ch)?,
        max_json_depth: hardening.max_json_depth,
        token_notice: millis("TOKEN_NOTICE_MS", ch.token_notice_ms, 0, 86_400_000)?,
        token_grace: millis("TOKEN_GRACE_MS", ch.token_grace_ms, 0, 86_400_000)?,
        api: api::settings(&a.api)?,
        message_complete_timeout: millis(
            "MESSAGE_COMPLETE_TIMEOUT_MS",
            a.abuse.message_complete_timeout_ms,
            100,
            3_600_000,
        )?,
        partial_message_budget: limits::partial_message_budget(l, &a.abuse)?,
        ready_resume_percent: range("READY_RESUME_PERCENT", a.abuse.ready_resume_percent, 0, 100)?,
        compression: super::compression::settings(&a.compression)?,
    };
    Ok(Config {
        auth,
        allowed_origins: auth::origins(a.auth.allowed_origins.as_deref())?,
        environment: environment(&a.environment)?,
        redis: redis::settings(
            &a.redis,
            &settings.server_id,
            settings.delivery_timeout,
            &settings.namespaces,
        )?,
        cloudwatch: cloudwatch::settings(&a.cloudwatch, &settings.server_id)?,
        log: log_filter(&a.log)?,
        no_color: a.no_color,
        settings,
        hardening,
    })
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
/// `INBOX_SIZE` and `INBOX_TTL_SECS`: the inbox, when kept.
fn inbox(a: &ChannelsArgs) -> Result<Option<Retention>, ConfigError> {
    let size = range("INBOX_SIZE", a.inbox_size, 0, 10_000)?;
    let ttl = range("INBOX_TTL_SECS", a.inbox_ttl_secs, 1, 30 * 86_400)?;
    Ok((size > 0).then(|| Retention {
        size,
        ttl: Duration::from_secs(ttl),
    }))
}
