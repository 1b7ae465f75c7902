//! The raw command-line layer: [`Args`], one field per setting, parsed by
//! clap and not yet checked against each other.
//!
//! Every field names its environment variable (`env = ...`) and its default,
//! and its doc comment is the one-line "why" shown by `--help`. The `env`
//! names are not read by clap itself: [`super::load`] strips them and feeds
//! the values from an explicit map instead, so that the same code path runs
//! in production and in tests without touching the process environment.

use std::convert::Infallible;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};

use crate::protocol::deflate::DeflateConfig;

/// Every setting as given on the command line or in the environment.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "websocket-app",
    version,
    about = "Thread-per-core WebSocket messaging server",
    long_about = None,
    after_help = "Precedence: flags, then the environment, then .env.local (or --env-file). \
                  An empty variable counts as unset. See docs/CONFIGURATION.md."
)]
pub struct Args {
    /// Read settings from this file instead of .env.local; variables already set win
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// Listen address (IP); insecure mode is automatic only on loopback addresses
    #[arg(long, env = "WSS_HOST", default_value = "127.0.0.1", value_name = "IP")]
    pub host: IpAddr,

    /// Listen port; 0 picks a free one (the "listening" log line says which)
    #[arg(long, env = "WSS_PORT", default_value_t = 8081)]
    pub port: u16,

    /// Worker threads (shards), one pinned per core; 0 = one per available core, at most 1024
    #[arg(long, env = "WSS_SHARDS", default_value_t = 0, value_name = "N")]
    pub shards: usize,

    /// io driver: io_uring falling back to epoll (auto), or forced to one of them
    #[arg(long, env = "IO_DRIVER", value_enum, default_value_t = IoDriverArg::Auto)]
    pub io_driver: IoDriverArg,

    /// Stable instance id (route table value, CloudWatch ServerID); default: hostname-port
    #[arg(long, env = "SERVER_ID", value_name = "ID")]
    pub server_id: Option<String>,

    /// HS256 secret for client tokens, at least 32 bytes; setting it turns token auth on
    #[arg(long, env = "JWT_SECRET", value_name = "SECRET")]
    pub jwt_secret: Option<Secret>,

    /// Identity mode; insecure (?userId=) must be explicit unless the host is loopback
    #[arg(long, env = "AUTH_MODE", value_enum, default_value_t = AuthModeArg::Auto)]
    pub auth_mode: AuthModeArg,

    /// Comma-separated exact Origins allowed to connect (403 otherwise); unset = any origin
    #[arg(long, env = "ALLOWED_ORIGINS", value_name = "ORIGINS")]
    pub allowed_origins: Option<String>,

    /// Deployment name, free text for logs and metrics (the original server's variable)
    #[arg(
        long,
        env = "ENVIRONMENT",
        default_value = "development",
        value_name = "NAME"
    )]
    pub environment: String,

    /// Redis for several instances (redis:// or rediss://, comma-separated Cluster seeds); unset = embedded broker
    #[arg(long, env = "REDIS_URI", value_name = "URI")]
    pub redis_uri: Option<Secret>,

    /// Redis Cluster mode: detect it (auto), or force it on or off
    #[arg(long, env = "REDIS_CLUSTER", value_enum, default_value_t = Switch::Auto)]
    pub redis_cluster: Switch,

    /// TTL of this instance's Redis liveness key; a dead instance's routes are ignored after it
    #[arg(
        long,
        env = "LIVENESS_TTL_MS",
        default_value_t = 10_000,
        value_name = "MS"
    )]
    pub liveness_ttl_ms: u64,

    /// Period of the sweep that removes dead instances' routes from Redis
    #[arg(
        long,
        env = "ROUTE_SWEEP_MS",
        default_value_t = 30_000,
        value_name = "MS"
    )]
    pub route_sweep_ms: u64,

    /// Largest client message in bytes after reassembly (256..=16 MiB); larger closes 1009
    #[arg(
        long,
        env = "MAX_MESSAGE_BYTES",
        default_value_t = 65_536,
        value_name = "BYTES"
    )]
    pub max_message_bytes: usize,

    /// Per-connection send queue in bytes (>= max message + 1 KiB); a slower reader is closed 4008
    #[arg(
        long,
        env = "SEND_QUEUE_BYTES",
        default_value_t = 1_048_576,
        value_name = "BYTES"
    )]
    pub send_queue_bytes: usize,

    /// Open connections per instance; further upgrades get 503
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        default_value_t = 1_000_000,
        value_name = "N"
    )]
    pub max_connections: usize,

    /// Messages per second per connection (0 = no limit); protects shards from floods
    #[arg(
        long,
        env = "RATE_LIMIT_PER_SEC",
        default_value_t = 100,
        value_name = "PER_SEC"
    )]
    pub rate_limit: u32,

    /// Messages a connection may send at once after a pause (token bucket size)
    #[arg(
        long,
        env = "RATE_LIMIT_BURST",
        default_value_t = 200,
        value_name = "N"
    )]
    pub rate_limit_burst: u32,

    /// Refused messages in a row before the connection is closed 4029
    #[arg(
        long,
        env = "RATE_LIMIT_STRIKES",
        default_value_t = 100,
        value_name = "N"
    )]
    pub rate_limit_strikes: u16,

    /// Heartbeat interval announced to clients in the welcome, in milliseconds
    #[arg(
        long,
        env = "HEARTBEAT_INTERVAL_MS",
        default_value_t = 30_000,
        value_name = "MS"
    )]
    pub heartbeat_interval_ms: u64,

    /// Silence after which a connection is closed 4000, in ms; must exceed the interval
    #[arg(
        long,
        env = "HEARTBEAT_TIMEOUT_MS",
        default_value_t = 60_000,
        value_name = "MS"
    )]
    pub heartbeat_timeout_ms: u64,

    /// Bound on graceful shutdown (SIGTERM/SIGINT), in milliseconds
    #[arg(
        long,
        env = "SHUTDOWN_TIMEOUT_MS",
        default_value_t = 10_000,
        value_name = "MS"
    )]
    pub shutdown_timeout_ms: u64,

    /// Drain pace (SIGUSR1): connections closed with 1012 per second per instance
    #[arg(
        long,
        env = "DRAIN_RATE",
        default_value_t = 1000,
        value_name = "PER_SEC"
    )]
    pub drain_rate: u32,

    /// Let clients broadcast to everyone (false: broadcast answers error forbidden)
    #[arg(
        long = "broadcast",
        env = "BROADCAST_ENABLED",
        default_value = "true",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = BoolishValueParser::new(),
        action = ArgAction::Set
    )]
    pub broadcast_enabled: bool,

    /// Conformance tests only: upgrades on this path echo frames, no identity; insecure auth only
    #[arg(long, env = "ECHO_PATH", value_name = "PATH")]
    pub echo_path: Option<String>,

    /// How long a sender waits for another instance to confirm a delivery before ack failed, in ms
    #[arg(
        long,
        env = "DELIVERY_TIMEOUT_MS",
        default_value_t = 5_000,
        value_name = "MS"
    )]
    pub delivery_timeout_ms: u64,

    /// Interval of the CloudWatch push, in seconds (1..=3600)
    #[arg(
        long,
        env = "METRICS_INTERVAL_SECS",
        default_value_t = 60,
        value_name = "SECS"
    )]
    pub metrics_interval_secs: u64,

    /// Push metrics to CloudWatch (standard AWS credential chain; AWS_ENDPOINT_URL honoured)
    #[arg(
        long = "cloudwatch",
        env = "CLOUDWATCH_ENABLED",
        default_value = "false",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = BoolishValueParser::new(),
        action = ArgAction::Set
    )]
    pub cloudwatch_enabled: bool,

    /// CloudWatch namespace; the original's, so existing dashboards and alarms keep working
    #[arg(
        long,
        env = "CLOUDWATCH_NAMESPACE",
        default_value = "wss/metrics",
        value_name = "NAMESPACE"
    )]
    pub cloudwatch_namespace: String,

    /// AWS region for CloudWatch; unset = the SDK's chain (profile), then us-east-1
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub aws_region: Option<String>,

    /// The page at /: chat demo and dashboard (on), dashboard only (readonly), or none (off)
    #[arg(long, env = "DASHBOARD", value_enum, default_value_t = DashboardArg::On)]
    pub dashboard: DashboardArg,

    /// Log filter in tracing EnvFilter syntax, e.g. info or websocket_app=debug
    #[arg(long, env = "RUST_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,

    /// Log line format (json needs tracing-subscriber's json feature, not in this build)
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    // ---- Compression: permessage-deflate (issue 15). One block, kept last;
    // validated together in `validate::compression`. ----
    /// permessage-deflate (RFC 7692, no context takeover) for clients that offer it
    #[arg(long, env = "COMPRESSION", value_enum, default_value_t = OnOff::Off)]
    pub compression: OnOff,

    /// Messages shorter than this are sent uncompressed (0..=16 MiB)
    #[arg(
        long,
        env = "COMPRESSION_MIN_BYTES",
        default_value_t = DeflateConfig::DEFAULT_MIN_BYTES,
        value_name = "BYTES"
    )]
    pub compression_min_bytes: usize,

    /// zlib level, 1 (fastest) to 9 (smallest); 6 sends ~40% of the bytes of JSON
    #[arg(
        long,
        env = "COMPRESSION_LEVEL",
        default_value_t = DeflateConfig::DEFAULT_LEVEL,
        value_name = "LEVEL"
    )]
    pub compression_level: u32,
}

/// A string that is or may contain a secret (`JWT_SECRET`, a password in
/// `REDIS_URI`); its `Debug` never shows the value, so `Args` can be logged
/// or printed in a panic.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes hidden>)", self.0.len())
    }
}

impl FromStr for Secret {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Secret(s.to_owned()))
    }
}

/// `IO_DRIVER` as written; mapped to [`crate::settings::IoDriver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IoDriverArg {
    /// io_uring when the kernel allows it, else epoll (logged once at start)
    Auto,
    /// io_uring only; start fails if it is unavailable
    Uring,
    /// epoll (monoio's legacy driver) only
    Legacy,
}

/// `AUTH_MODE` as written; resolved with `JWT_SECRET` and the host into
/// [`super::ResolvedAuth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthModeArg {
    /// Token when JWT_SECRET is set; insecure only on a loopback host
    Auto,
    /// JWT HS256 only; JWT_SECRET is required
    Token,
    /// ?userId= without proof; explicit opt-in, logged loudly, not with JWT_SECRET
    Insecure,
}

/// A three-way switch (`REDIS_CLUSTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Detect at connect time
    Auto,
    /// Force on
    On,
    /// Force off
    Off,
}

/// `DASHBOARD` as written; mapped to [`crate::settings::Dashboard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DashboardArg {
    /// Chat demo and live dashboard
    On,
    /// Dashboard only, no chat demo
    Readonly,
    /// GET / and /stats answer 404
    Off,
}

/// A plain two-way switch (`COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Disabled
    Off,
    /// Enabled
    On,
}

/// `LOG_FORMAT`. Only text: JSON lines need tracing-subscriber's `json`
/// feature, which this build does not enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines on stderr
    Text,
}
