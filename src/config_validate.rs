//! Turning raw [`Args`] into a validated [`Config`]; every error names its setting.

use std::net::SocketAddr;
use std::time::Duration;

use super::{
    invalid, Args, AuthModeArg, CloudWatchSettings, Config, ConfigError, DashboardArg, IoDriverArg, RedisSettings,
    ResolvedAuth,
};
use crate::auth::is_valid_user_id;
use crate::ratelimit::RateLimit;
use crate::settings::{Dashboard, IoDriver, Settings};

/// Validates everything.
pub fn config(a: Args) -> Result<Config, ConfigError> {
    let auth = resolve_auth(&a)?;
    check_limits(&a)?;
    if a.echo_path.is_some() && !matches!(auth, ResolvedAuth::Insecure { .. }) {
        return Err(invalid("ECHO_PATH", "the echo path needs no identity, so it is only allowed in insecure mode"));
    }
    if let Some(p) = &a.echo_path {
        if !p.starts_with('/') || p == "/ws" {
            return Err(invalid("ECHO_PATH", "must start with '/' and differ from /ws"));
        }
    }
    let settings = settings(&a)?;
    Ok(Config {
        redis: redis(&a)?,
        cloudwatch: cloudwatch(&a)?,
        allowed_origins: a.allowed_origins.clone().filter(|o| !o.is_empty()),
        environment: a.environment.clone(),
        log: a.log.clone(),
        auth,
        settings,
    })
}

/// The contract's rule: token whenever JWT_SECRET is set; insecure only when
/// it is unset and either explicitly asked for or the host is loopback.
fn resolve_auth(a: &Args) -> Result<ResolvedAuth, ConfigError> {
    let secret = a.jwt_secret.as_deref().filter(|s| !s.is_empty());
    match (secret, a.auth_mode) {
        (Some(_), AuthModeArg::Insecure) => {
            Err(invalid("AUTH_MODE", "insecure mode cannot be combined with JWT_SECRET; unset one of them"))
        }
        (Some(s), _) if s.len() < 32 => Err(invalid("JWT_SECRET", "must be at least 32 bytes")),
        (Some(s), _) => Ok(ResolvedAuth::Token { secret: s.as_bytes().to_vec() }),
        (None, AuthModeArg::Token) => Err(invalid("JWT_SECRET", "AUTH_MODE=token needs JWT_SECRET")),
        (None, AuthModeArg::Insecure) => Ok(ResolvedAuth::Insecure { explicit: true }),
        (None, AuthModeArg::Auto) if a.host.is_loopback() => Ok(ResolvedAuth::Insecure { explicit: false }),
        (None, AuthModeArg::Auto) => Err(invalid(
            "JWT_SECRET",
            format!(
                "listening on {} (not loopback) without JWT_SECRET: set JWT_SECRET, or AUTH_MODE=insecure to accept unverified ?userId= identities",
                a.host
            ),
        )),
    }
}

fn check_limits(a: &Args) -> Result<(), ConfigError> {
    if !(256..=16 * 1024 * 1024).contains(&a.max_message_bytes) {
        return Err(invalid("MAX_MESSAGE_BYTES", "must be between 256 and 16777216"));
    }
    if a.send_queue_bytes < a.max_message_bytes + 1024 || a.send_queue_bytes > u32::MAX as usize / 2 {
        return Err(invalid("SEND_QUEUE_BYTES", "must be at least MAX_MESSAGE_BYTES + 1024 (and below 2 GiB)"));
    }
    if a.max_connections == 0 {
        return Err(invalid("MAX_CONNECTIONS", "must be at least 1"));
    }
    if a.shards > 1024 {
        return Err(invalid("WSS_SHARDS", "at most 1024"));
    }
    if a.heartbeat_interval_ms == 0 || a.heartbeat_timeout_ms <= a.heartbeat_interval_ms {
        return Err(invalid("HEARTBEAT_TIMEOUT_MS", "must be greater than HEARTBEAT_INTERVAL_MS (> 0)"));
    }
    if a.heartbeat_timeout_ms > 24 * 3600 * 1000 {
        return Err(invalid("HEARTBEAT_TIMEOUT_MS", "at most one day"));
    }
    if a.rate_limit > 0 && a.rate_limit_burst == 0 {
        return Err(invalid("RATE_LIMIT_BURST", "must be at least 1 when RATE_LIMIT_PER_SEC is set"));
    }
    if a.drain_rate == 0 {
        return Err(invalid("DRAIN_RATE", "must be at least 1"));
    }
    if a.delivery_timeout_ms == 0 || a.delivery_timeout_ms > 600_000 {
        return Err(invalid("DELIVERY_TIMEOUT_MS", "must be between 1 and 600000"));
    }
    Ok(())
}

fn settings(a: &Args) -> Result<Settings, ConfigError> {
    let shards = match a.shards {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    Ok(Settings {
        listen: SocketAddr::new(a.host, a.port),
        shards,
        io_driver: match a.io_driver {
            IoDriverArg::Auto => IoDriver::Auto,
            IoDriverArg::Uring => IoDriver::Uring,
            IoDriverArg::Legacy => IoDriver::Legacy,
        },
        server_id: server_id(a)?,
        max_message_bytes: a.max_message_bytes,
        send_queue_bytes: a.send_queue_bytes,
        max_connections: a.max_connections,
        rate_limit: RateLimit { per_sec: a.rate_limit, burst: a.rate_limit_burst, strikes: a.rate_limit_strikes },
        heartbeat_interval: Duration::from_millis(a.heartbeat_interval_ms),
        heartbeat_timeout: Duration::from_millis(a.heartbeat_timeout_ms),
        shutdown_timeout: Duration::from_millis(a.shutdown_timeout_ms),
        broadcast_enabled: a.broadcast_enabled,
        echo_path: a.echo_path.clone(),
        delivery_timeout: Duration::from_millis(a.delivery_timeout_ms),
        dashboard: match a.dashboard {
            DashboardArg::On => Dashboard::On,
            DashboardArg::Readonly => Dashboard::ReadOnly,
            DashboardArg::Off => Dashboard::Off,
        },
        drain_rate: a.drain_rate,
    })
}

fn server_id(a: &Args) -> Result<String, ConfigError> {
    let id = match &a.server_id {
        Some(id) => id.clone(),
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "localhost".into());
            format!("{}-{}", host.trim(), a.port)
        }
    };
    if id.len() > 64 || !is_valid_user_id(&id) {
        return Err(invalid("SERVER_ID", "1 to 64 bytes of A-Z a-z 0-9 . _ : @ -"));
    }
    Ok(id)
}

fn redis(a: &Args) -> Result<Option<RedisSettings>, ConfigError> {
    let Some(uri) = a.redis_uri.as_deref().filter(|u| !u.is_empty()) else { return Ok(None) };
    for seed in uri.split(',') {
        let seed = seed.trim();
        if !(seed.starts_with("redis://") || seed.starts_with("rediss://")) {
            return Err(invalid("REDIS_URI", format!("{seed:?} is not a redis:// or rediss:// URI")));
        }
    }
    if a.liveness_ttl_ms < 1000 {
        return Err(invalid("LIVENESS_TTL_MS", "at least 1000"));
    }
    if a.route_sweep_ms < 100 {
        return Err(invalid("ROUTE_SWEEP_MS", "at least 100"));
    }
    Ok(Some(RedisSettings {
        uri: uri.to_string(),
        cluster: a.redis_cluster,
        liveness_ttl: Duration::from_millis(a.liveness_ttl_ms),
        sweep_interval: Duration::from_millis(a.route_sweep_ms),
    }))
}

fn cloudwatch(a: &Args) -> Result<Option<CloudWatchSettings>, ConfigError> {
    if !a.cloudwatch_enabled {
        return Ok(None);
    }
    if !(1..=3600).contains(&a.metrics_interval_secs) {
        return Err(invalid("METRICS_INTERVAL_SECS", "must be between 1 and 3600"));
    }
    if a.cloudwatch_namespace.is_empty() || a.cloudwatch_namespace.starts_with("AWS/") {
        return Err(invalid("CLOUDWATCH_NAMESPACE", "must be non-empty and not start with AWS/"));
    }
    Ok(Some(CloudWatchSettings {
        namespace: a.cloudwatch_namespace.clone(),
        interval: Duration::from_secs(a.metrics_interval_secs),
        region: a.aws_region.clone(),
    }))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
