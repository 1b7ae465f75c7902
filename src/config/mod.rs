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
//! - [`Args`] (`cli/`): the raw clap struct, one field per setting: its
//!   flag, variable, default and `--help` line, defined there only. Enums
//!   are parsed as the types their subsystem uses (`ValueEnum`).
//! - [`Config::from_args`] (`validate/`, `redis.rs`, `cloudwatch.rs`,
//!   `compression.rs`, ...):
//!   checks every value and their consistency and returns the typed
//!   [`Config`], or a [`ConfigError`] naming the setting.
//!
//! What each subsystem takes, as it is (nothing downstream checks again):
//! - [`Config::settings`]: the shards' [`Settings`], held by the instance;
//! - [`Config::redis`]: [`RedisSettings`] for `redis_coord::start`;
//! - [`Config::cloudwatch`]: [`CloudWatchSettings`] for
//!   `metrics::spawn_cloudwatch`;
//! - [`Config::auth`] and [`Config::allowed_origins`]: the authenticator.
//!
//! Entry points: [`load`] for the process (argv, environment, `.env.local`),
//! [`load_from`] for tests and tools (argv and an environment map; never
//! reads or changes the process environment).
//!
//! Secrets (`JWT_SECRET`, a password in `REDIS_URI`) never appear in `Debug`
//! output, [`Config::summary`], `--help`, or error messages.

mod api;
mod channels;
mod cli;
mod cloudwatch;
mod compression;
mod error;
mod hardening;
mod load;
mod redis;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_channels;
#[cfg(test)]
mod tests_compression;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_sources;

use std::fmt;

pub use channels::{parse as parse_channels_config, MAX_HISTORY_SIZE, MAX_HISTORY_TTL_SECS};
pub use cli::{Args, AuthMode, OnOff, Secret};
pub use cloudwatch::CloudWatchSettings;
pub use error::ConfigError;
pub use hardening::Hardening;
pub use load::{
    command, env_names, export_env_file, load, load_from, merge_env_file, process_env,
    DEFAULT_ENV_FILE,
};
pub use redis::{redact_uri, ClusterMode, RedisSettings};

use clap::ValueEnum;

use crate::settings::Settings;

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
    /// `ALLOWED_ORIGINS`: the accepted origins, serialized (RFC 6454:
    /// scheme and host lower-cased, default port left out); `None` accepts
    /// any origin.
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
    /// `NO_COLOR`: log lines without ANSI colours even on a terminal.
    pub no_color: bool,
    /// `JWT_LEEWAY_SECS`, `MAX_JSON_DEPTH` (the latter is also in
    /// `settings`, where the shards read it).
    pub hardening: Hardening,
}

/// How identity is established, resolved once from `JWT_SECRET`,
/// `AUTH_MODE` and the listen host (the protocol's "Connecting" rule).
#[derive(Clone, PartialEq, Eq)]
pub enum ResolvedAuth {
    /// JWTs (whenever `JWT_SECRET` or `JWT_PUBLIC_KEY_FILE` is set).
    Token {
        /// The HS256 key, at least 32 bytes. Never printed.
        secret: Option<Vec<u8>>,
        /// The RS256 or ES256 public key read from `JWT_PUBLIC_KEY_FILE`.
        public_key: Option<crate::auth::PublicKey>,
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
            Self::Token { secret, public_key } => {
                let secret = secret
                    .as_ref()
                    .map(|s| format!("<{} bytes hidden>", s.len()));
                write!(
                    f,
                    "Token {{ secret: {secret:?}, public_key: {public_key:?} }}"
                )
            }
            Self::Insecure { explicit } => write!(f, "Insecure {{ explicit: {explicit} }}"),
        }
    }
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
            Some(r) => format!("redis({} cluster={})", r.redacted(), value_name(&r.cluster)),
        };
        let cloudwatch = match &self.cloudwatch {
            None => "off".to_owned(),
            Some(c) => format!(
                "{} every {}s region={} endpoint={}",
                c.namespace,
                c.interval.as_secs(),
                c.region.as_deref().unwrap_or("sdk-default"),
                c.endpoint_url.as_deref().unwrap_or("region-default")
            ),
        };
        let rl = &s.rate_limit;
        let api = match &s.api {
            None => "off".to_owned(),
            Some(a) => format!(
                "on(keys={} max_body={} timeout={}ms rate={}/s)",
                a.keys.len(),
                a.max_body_bytes,
                a.request_timeout.as_millis(),
                a.rate_limit
            ),
        };
        let compression = match s.compression {
            None => "off".to_owned(),
            Some(d) => format!("on(level={} min_bytes={})", d.level, d.min_bytes),
        };
        format!(
            "server_id={} listen={} shards={} io_driver={} auth={auth} origins={origins} \
             environment={:?} coordination={coordination} max_message_bytes={} \
             send_queue_bytes={} max_connections={} rate_limit={}/s burst={} strikes={} \
             rate_limit_bytes={}/s bytes_burst={} message_complete_timeout={}ms \
             partial_message_bytes_per_shard={} ready_resume_percent={} \
             heartbeat={}ms timeout={}ms delivery_timeout={}ms shutdown_timeout={}ms \
             drain_rate={}/s broadcast={} echo_path={} dashboard={} cloudwatch=({cloudwatch}) api={api} log={:?} \
             jwt_leeway={}s max_json_depth={} compression={compression}",
            s.server_id,
            s.listen,
            s.shards,
            value_name(&s.io_driver),
            self.environment,
            s.max_message_bytes,
            s.send_queue_bytes,
            s.max_connections,
            rl.per_sec,
            rl.burst,
            rl.strikes,
            rl.bytes_per_sec,
            rl.bytes_burst,
            s.message_complete_timeout.as_millis(),
            s.partial_message_budget,
            s.ready_resume_percent,
            s.heartbeat_interval.as_millis(),
            s.heartbeat_timeout.as_millis(),
            s.delivery_timeout.as_millis(),
            s.shutdown_timeout.as_millis(),
            s.drain_rate,
            if s.broadcast_enabled { "on" } else { "off" },
            s.echo_path.as_deref().unwrap_or("off"),
            value_name(&s.dashboard),
            self.log,
            self.hardening.jwt_leeway.as_secs(),
            self.hardening.max_json_depth,
        )
    }
}

/// How `value` is written on the command line (`IoDriver::Legacy` is
/// `legacy`), so the summary shows what an operator would type.
fn value_name(value: &impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}
