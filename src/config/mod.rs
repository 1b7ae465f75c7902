//! Configuration: command-line flags, environment variables and `.env.local`,
//! validated once at start.
//!
//! Precedence: flags override the environment, which overrides the env file
//! (`.env.local` when present, or `--env-file PATH`; it never overrides a
//! variable already set). An empty variable counts as unset. The original
//! server's variables keep their names and defaults: `WSS_PORT` (8081),
//! `REDIS_URI`, `JWT_SECRET`, `ENVIRONMENT`. Every setting, with its flag,
//! variable, default and meaning, is in `docs/CONFIGURATION.md` and `--help`.
//!
//! Two layers:
//! - [`Args`]: the raw clap struct, one field per setting;
//! - [`Config::from_args`]: checks every value and their consistency and
//!   returns the typed [`Config`], or a [`ConfigError`] naming the setting.
//!
//! Entry points: [`load`] for the process (argv, environment, `.env.local`),
//! [`load_from`] for tests and tools (argv and an environment map; never
//! reads or changes the process environment).
//!
//! Secrets (`JWT_SECRET`, a password in `REDIS_URI`) never appear in `Debug`
//! output, [`Config::summary`], `--help`, or error messages.

mod cli;
mod error;
mod load;
mod redis;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_compression;
#[cfg(test)]
mod tests_sources;

use std::fmt;
use std::time::Duration;

pub use cli::{Args, AuthModeArg, DashboardArg, IoDriverArg, LogFormat, OnOff, Secret, Switch};
pub use error::ConfigError;
pub use load::{
    command, env_names, export_env_file, load, load_from, merge_env_file, process_env,
    DEFAULT_ENV_FILE,
};
pub use redis::{redact_uri, RedisSettings};

use crate::settings::{Dashboard, IoDriver, Settings};

/// The validated configuration of one server process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Everything the shards need (listen address, shard count, io driver,
    /// server id, limits, rate limit, heartbeats, timeouts, echo path,
    /// dashboard, drain rate); handed to the server as is.
    pub settings: Settings,
    /// How clients prove who they are, resolved from `JWT_SECRET`,
    /// `AUTH_MODE` and the host (see [`ResolvedAuth`]).
    pub auth: ResolvedAuth,
    /// `ALLOWED_ORIGINS`: the exact `Origin` values accepted (lower-cased);
    /// `None` accepts any origin.
    pub allowed_origins: Option<Vec<String>>,
    /// `ENVIRONMENT`: the deployment's name, kept for logs and metrics.
    pub environment: String,
    /// The Redis coordination layer; `None` runs the embedded broker (one
    /// instance, no Redis).
    pub redis: Option<RedisSettings>,
    /// CloudWatch push; `None` when `CLOUDWATCH_ENABLED` is off.
    pub cloudwatch: Option<CloudWatchSettings>,
    /// `RUST_LOG`: the tracing filter, already checked to parse.
    pub log: String,
    /// `LOG_FORMAT`: how log lines look.
    pub log_format: LogFormat,
}

/// How identity is established, resolved once from `JWT_SECRET`,
/// `AUTH_MODE` and the listen host (the protocol's "Connecting" rule).
#[derive(Clone, PartialEq, Eq)]
pub enum ResolvedAuth {
    /// HS256 JWTs signed with `secret` (whenever `JWT_SECRET` is set).
    Token {
        /// The HMAC key, at least 32 bytes. Never printed.
        secret: Vec<u8>,
    },
    /// `?userId=` without proof (no `JWT_SECRET`).
    Insecure {
        /// `AUTH_MODE=insecure` was set; `false` means it was allowed only
        /// because the host is a loopback address.
        explicit: bool,
    },
}

impl fmt::Debug for ResolvedAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token { secret } => {
                write!(f, "Token {{ secret: <{} bytes hidden> }}", secret.len())
            }
            Self::Insecure { explicit } => write!(f, "Insecure {{ explicit: {explicit} }}"),
        }
    }
}

/// CloudWatch push settings (when `CLOUDWATCH_ENABLED` is on); the pusher's
/// `ServerID` dimension is `settings.server_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchSettings {
    /// `CLOUDWATCH_NAMESPACE`, checked against CloudWatch's rules.
    pub namespace: String,
    /// `METRICS_INTERVAL_SECS`: time between pushes.
    pub interval: Duration,
    /// `AWS_REGION`; `None` leaves it to the SDK's chain.
    pub region: Option<String>,
}

impl Config {
    /// Validates raw arguments into a configuration; the error names the
    /// first setting found wrong. Reads the host name (for the default
    /// server id) and the core count (for `WSS_SHARDS=0`).
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        validate::config(args)
    }

    /// One line for the start-up log. Never prints a secret: the JWT secret
    /// is reduced to "token" and Redis credentials to `***`.
    pub fn summary(&self) -> String {
        let s = &self.settings;
        let auth = match self.auth {
            ResolvedAuth::Token { .. } => "token",
            ResolvedAuth::Insecure { explicit: true } => "insecure(explicit)",
            ResolvedAuth::Insecure { explicit: false } => "insecure(loopback)",
        };
        let origins = match &self.allowed_origins {
            None => "any".to_owned(),
            Some(list) => list.join(","),
        };
        let coordination = match &self.redis {
            None => "embedded".to_owned(),
            Some(r) => format!("redis({} cluster={})", r.redacted(), switch_name(r.cluster)),
        };
        let cloudwatch = match &self.cloudwatch {
            None => "off".to_owned(),
            Some(c) => format!(
                "{} every {}s region={}",
                c.namespace,
                c.interval.as_secs(),
                c.region.as_deref().unwrap_or("sdk-default")
            ),
        };
        let rl = &s.rate_limit;
        let mut line = format!(
            "server_id={} listen={} shards={} io_driver={} auth={auth} origins={origins} \
             environment={:?} coordination={coordination} max_message_bytes={} \
             send_queue_bytes={} max_connections={} rate_limit={}/s burst={} strikes={} \
             heartbeat={}ms timeout={}ms delivery_timeout={}ms shutdown_timeout={}ms \
             drain_rate={}/s broadcast={} echo_path={} dashboard={} cloudwatch=({cloudwatch}) log={:?}",
            s.server_id,
            s.listen,
            s.shards,
            io_driver_name(s.io_driver),
            self.environment,
            s.max_message_bytes,
            s.send_queue_bytes,
            s.max_connections,
            rl.per_sec,
            rl.burst,
            rl.strikes,
            s.heartbeat_interval.as_millis(),
            s.heartbeat_timeout.as_millis(),
            s.delivery_timeout.as_millis(),
            s.shutdown_timeout.as_millis(),
            s.drain_rate,
            if s.broadcast_enabled { "on" } else { "off" },
            s.echo_path.as_deref().unwrap_or("off"),
            dashboard_name(s.dashboard),
            self.log,
        );
        match s.compression {
            None => line.push_str(" compression=off"),
            Some(d) => line.push_str(&format!(
                " compression=on(level={} min_bytes={})",
                d.level, d.min_bytes
            )),
        }
        line
    }
}

fn io_driver_name(d: IoDriver) -> &'static str {
    match d {
        IoDriver::Auto => "auto",
        IoDriver::Uring => "uring",
        IoDriver::Legacy => "legacy",
    }
}

fn switch_name(s: Switch) -> &'static str {
    match s {
        Switch::Auto => "auto",
        Switch::On => "on",
        Switch::Off => "off",
    }
}

fn dashboard_name(d: Dashboard) -> &'static str {
    match d {
        Dashboard::On => "on",
        Dashboard::ReadOnly => "readonly",
        Dashboard::Off => "off",
    }
}
