//! Configuration: command-line flags, environment variables and `.env.local`,
//! validated once at start.
//!
//! Precedence: flags override the environment, which overrides `.env.local`
//! (loaded when present, never overriding variables already set; another file
//! with `--env-file`). [`Args`] is the raw clap layer (every setting with its
//! env name and default in `--help`); [`Config::from_args`] validates it into
//! typed values and fails with a [`ConfigError`] that names the setting.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::settings::Settings;

/// An invalid setting; the message names it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value out of range or inconsistent with another.
    #[error("invalid {setting}: {reason}")]
    Invalid {
        /// The flag/env name.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The env file could not be read.
    #[error("cannot read env file {path}: {reason}")]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, reason: reason.into() }
}

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthModeArg {
    /// Token when JWT_SECRET is set; insecure only on a loopback address.
    Auto,
    /// JWT HS256 only (JWT_SECRET required).
    Token,
    /// `?userId=` without proof (explicit opt-in; logged loudly).
    Insecure,
}

/// On/off/auto switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Detect.
    Auto,
    /// Force on.
    On,
    /// Force off.
    Off,
}

/// Every setting, as given on the command line or in the environment.
#[derive(Debug, Clone, Parser)]
#[command(name = "websocket-app", version, about = "Thread-per-core WebSocket messaging server", long_about = None)]
pub struct Args {
    /// Read settings from this file instead of .env.local (variables already set win).
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// Listen address. Insecure mode is only automatic on loopback addresses.
    #[arg(long, env = "WSS_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Listen port (0 picks a free one; the log says which).
    #[arg(long, env = "WSS_PORT", default_value_t = 8081)]
    pub port: u16,
    /// Worker threads (shards), one pinned per core; 0 = every available core.
    #[arg(long, env = "WSS_SHARDS", default_value_t = 0)]
    pub shards: usize,
    /// io driver: io_uring, falling back to epoll when unavailable (auto), or forced.
    #[arg(long, env = "IO_DRIVER", value_enum, default_value = "auto")]
    pub io_driver: IoDriverArg,
    /// This instance's stable id: route table value, CloudWatch ServerID dimension. Default: <hostname>-<port>.
    #[arg(long, env = "SERVER_ID")]
    pub server_id: Option<String>,
    /// HS256 secret for client tokens (at least 32 bytes). Setting it turns token mode on.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// auto | token | insecure (see docs/PROTOCOL.md, "Connecting").
    #[arg(long, env = "AUTH_MODE", value_enum, default_value = "auto")]
    pub auth_mode: AuthModeArg,
    /// Comma-separated exact Origins allowed to connect; unset = any origin.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Free text for logs (the original server's variable).
    #[arg(long, env = "ENVIRONMENT", default_value = "development")]
    pub environment: String,
    /// Redis for more than one instance (redis:// or rediss://; comma-separated seeds for Cluster). Unset = embedded single-instance broker.
    #[arg(long, env = "REDIS_URI")]
    pub redis_uri: Option<String>,
    /// Redis Cluster mode: auto-detect, on, or off.
    #[arg(long, env = "REDIS_CLUSTER", value_enum, default_value = "auto")]
    pub redis_cluster: Switch,
    /// Liveness key TTL in Redis; a dead instance's routes stop being used after it.
    #[arg(long, env = "LIVENESS_TTL_MS", default_value_t = 10_000)]
    pub liveness_ttl_ms: u64,
    /// Period of the stale-route sweep in Redis.
    #[arg(long, env = "ROUTE_SWEEP_MS", default_value_t = 30_000)]
    pub route_sweep_ms: u64,
    /// Largest client message (bytes, after reassembly); larger closes 1009.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 65_536)]
    pub max_message_bytes: usize,
    /// Per-connection send queue (bytes); a consumer that falls further behind is closed 4008.
    #[arg(long, env = "SEND_QUEUE_BYTES", default_value_t = 1_048_576)]
    pub send_queue_bytes: usize,
    /// Connections per instance; more get 503.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 1_000_000)]
    pub max_connections: usize,
    /// Messages per second per connection (0 = no limit).
    #[arg(long, env = "RATE_LIMIT_PER_SEC", default_value_t = 100)]
    pub rate_limit: u32,
    /// Messages a connection may send at once after a pause.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,
    /// Refused messages in a row before the connection is closed 4029.
    #[arg(long, env = "RATE_LIMIT_STRIKES", default_value_t = 100)]
    pub rate_limit_strikes: u16,
    /// Heartbeat interval announced to clients (ms).
    #[arg(long, env = "HEARTBEAT_INTERVAL_MS", default_value_t = 30_000)]
    pub heartbeat_interval_ms: u64,
    /// Silence after which a connection is closed 4000 (ms); must exceed the interval.
    #[arg(long, env = "HEARTBEAT_TIMEOUT_MS", default_value_t = 60_000)]
    pub heartbeat_timeout_ms: u64,
    /// Bound on graceful shutdown (ms).
    #[arg(long, env = "SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,
    /// Drain (SIGUSR1) pace: connections closed with 1012 per second per instance.
    #[arg(long, env = "DRAIN_RATE", default_value_t = 1000)]
    pub drain_rate: u32,
    /// Allow clients to broadcast.
    #[arg(long = "broadcast", env = "BROADCAST_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub broadcast_enabled: bool,
    /// Conformance tests only: upgrades on this path echo frames and need no identity (insecure mode only).
    #[arg(long, env = "ECHO_PATH")]
    pub echo_path: Option<String>,
    /// How long a sender waits for other instances to confirm a delivery (ms) before `failed`.
    #[arg(long, env = "DELIVERY_TIMEOUT_MS", default_value_t = 5_000)]
    pub delivery_timeout_ms: u64,
    /// Push metrics to CloudWatch (standard AWS credential chain; AWS_ENDPOINT_URL honoured).
    #[arg(long = "cloudwatch", env = "CLOUDWATCH_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub cloudwatch_enabled: bool,
    /// CloudWatch namespace (the original's by default).
    #[arg(long, env = "CLOUDWATCH_NAMESPACE", default_value = "wss/metrics")]
    pub cloudwatch_namespace: String,
    /// CloudWatch push interval (seconds).
    #[arg(long, env = "METRICS_INTERVAL_SECS", default_value_t = 60)]
    pub metrics_interval_secs: u64,
    /// AWS region for CloudWatch (default: the SDK's chain).
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// The page at `/`: on (chat demo + dashboard), readonly (dashboard only), off.
    #[arg(long, env = "DASHBOARD", value_enum, default_value = "on")]
    pub dashboard: DashboardArg,
    /// Log filter (tracing EnvFilter syntax), e.g. info or websocket_app=debug.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
}

/// io driver choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IoDriverArg {
    /// io_uring, else epoll.
    Auto,
    /// io_uring only.
    Uring,
    /// epoll only.
    Legacy,
}

/// Dashboard mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DashboardArg {
    /// Chat demo and dashboard.
    On,
    /// Dashboard only.
    Readonly,
    /// Nothing at `/`.
    Off,
}

/// How identity is established, resolved from JWT_SECRET, AUTH_MODE and the host.
#[derive(Clone, PartialEq, Eq)]
pub enum ResolvedAuth {
    /// JWT HS256 with this secret.
    Token {
        /// The secret.
        secret: Vec<u8>,
    },
    /// `?userId=`; `explicit` when AUTH_MODE=insecure was set.
    Insecure {
        /// Opted in explicitly (else allowed by a loopback host).
        explicit: bool,
    },
}

impl std::fmt::Debug for ResolvedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token { .. } => f.write_str("Token { secret: <hidden> }"),
            Self::Insecure { explicit } => write!(f, "Insecure {{ explicit: {explicit} }}"),
        }
    }
}

/// Redis settings, when REDIS_URI is set.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// The URI (or comma-separated seeds).
    pub uri: String,
    /// Cluster mode.
    pub cluster: Switch,
    /// Liveness key TTL.
    pub liveness_ttl: Duration,
    /// Stale-route sweep period.
    pub sweep_interval: Duration,
}

/// CloudWatch settings, when enabled.
#[derive(Debug, Clone)]
pub struct CloudWatchSettings {
    /// Namespace.
    pub namespace: String,
    /// Push interval.
    pub interval: Duration,
    /// Region override.
    pub region: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the shards use.
    pub settings: Settings,
    /// Identity mode.
    pub auth: ResolvedAuth,
    /// Origin allow-list.
    pub allowed_origins: Option<Vec<String>>,
    /// Free-text environment name.
    pub environment: String,
    /// Redis, or None for the embedded broker.
    pub redis: Option<RedisSettings>,
    /// CloudWatch, or None when off.
    pub cloudwatch: Option<CloudWatchSettings>,
    /// Log filter.
    pub log: String,
}

/// Loads `.env.local` (or `--env-file`), parses the process arguments, validates.
pub fn load() -> Result<Config, ConfigError> {
    let argv: Vec<String> = std::env::args().collect();
    let env_file = env_file_flag(&argv);
    load_env_file(env_file.as_deref())?;
    Config::from_args(Args::parse_from(argv))
}

/// `--env-file` must be read before clap sees the environment.
fn env_file_flag(argv: &[String]) -> Option<PathBuf> {
    let pos = argv.iter().position(|a| a == "--env-file" || a.starts_with("--env-file="))?;
    match argv[pos].split_once('=') {
        Some((_, v)) => Some(v.into()),
        None => argv.get(pos + 1).map(PathBuf::from),
    }
}

/// Loads variables from `path`, or `.env.local` when present; set variables win.
pub fn load_env_file(path: Option<&std::path::Path>) -> Result<(), ConfigError> {
    match path {
        Some(p) => dotenvy::from_path(p)
            .map_err(|e| ConfigError::EnvFile { path: p.to_path_buf(), reason: e.to_string() }),
        None => match dotenvy::from_filename(".env.local") {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(ConfigError::EnvFile { path: ".env.local".into(), reason: e.to_string() }),
        },
    }
}

#[path = "config_validate.rs"]
mod validate;

impl Config {
    /// Validates raw arguments.
    pub fn from_args(a: Args) -> Result<Self, ConfigError> {
        validate::config(a)
    }

    /// One line for the start-up log; never prints secrets.
    pub fn summary(&self) -> String {
        let s = &self.settings;
        let auth = match self.auth {
            ResolvedAuth::Token { .. } => "token",
            ResolvedAuth::Insecure { .. } => "insecure",
        };
        format!(
            "server_id={} listen={} shards={} auth={} coordination={} cloudwatch={} environment={}",
            s.server_id,
            s.listen,
            s.shards,
            auth,
            if self.redis.is_some() { "redis" } else { "embedded" },
            self.cloudwatch.is_some(),
            self.environment
        )
    }
}
