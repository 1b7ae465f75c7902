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

use clap::builder::{BoolishValueParser, FalseyValueParser};
use clap::{ArgAction, Parser, ValueEnum};

use super::redis::ClusterMode;
use crate::protocol::deflate::DeflateConfig;
use crate::settings::{Dashboard, IoDriver};

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
    #[arg(long, env = "IO_DRIVER", value_enum, default_value_t = IoDriver::Auto)]
    pub io_driver: IoDriver,

    /// Stable instance id (route table value, CloudWatch ServerID); default: hostname-port
    #[arg(long, env = "SERVER_ID", value_name = "ID")]
    pub server_id: Option<String>,

    /// HS256 secret for client tokens, at least 32 bytes; setting it turns token auth on
    #[arg(long, env = "JWT_SECRET", value_name = "SECRET")]
    pub jwt_secret: Option<Secret>,

    /// PEM public key (RSA for RS256, P-256 EC for ES256) client tokens may be signed with; setting it turns token auth on
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", value_name = "PATH")]
    pub jwt_public_key_file: Option<std::path::PathBuf>,

    /// Identity mode; insecure (?userId=) must be explicit unless the host is loopback
    #[arg(long, env = "AUTH_MODE", value_enum, default_value_t = AuthMode::Auto)]
    pub auth_mode: AuthMode,

    /// Comma-separated origins allowed to connect (403 otherwise; scheme and host case-insensitive); unset = any origin
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
    #[arg(long, env = "REDIS_CLUSTER", value_enum, default_value_t = ClusterMode::Auto)]
    pub redis_cluster: ClusterMode,

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

    /// Push metrics to CloudWatch (credentials: the standard AWS chain)
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

    /// CloudWatch endpoint URL (VPC endpoint, local test server); unset = the region's
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub aws_endpoint_url: Option<String>,

    /// The page at /: chat demo and dashboard (on), dashboard only (readonly), or none (off)
    #[arg(long, env = "DASHBOARD", value_enum, default_value_t = Dashboard::On)]
    pub dashboard: Dashboard,

    /// Log filter in tracing EnvFilter syntax, e.g. info or websocket_app=debug
    #[arg(long, env = "RUST_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,

    /// Log lines without ANSI colours (used only on a terminal anyway); any value but 0/false/no/off
    #[arg(
        long = "no-color",
        env = "NO_COLOR",
        default_value = "false",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = FalseyValueParser::new(),
        action = ArgAction::Set
    )]
    pub no_color: bool,

    // ---- Version 2: channels ----
    /// TOML file of channel namespaces and their options (public, client_publish, history, presence); unset = defaults
    #[arg(long, env = "CHANNELS_CONFIG", value_name = "PATH")]
    pub channels_config: Option<PathBuf>,

    /// Channel subscriptions per connection (1..=65535); one more answers error too_many_channels
    #[arg(
        long,
        env = "MAX_CHANNELS_PER_CONNECTION",
        default_value_t = 128,
        value_name = "N"
    )]
    pub max_channels_per_connection: usize,

    /// Direct messages kept per user for offline receivers and reconnects (0 = no inbox; at most 10000)
    #[arg(long, env = "INBOX_SIZE", default_value_t = 0, value_name = "N")]
    pub inbox_size: u32,

    /// Send token_expiring when at most this long is left before the connection's token expires
    #[arg(
        long,
        env = "TOKEN_NOTICE_MS",
        default_value_t = 30_000,
        value_name = "MS"
    )]
    pub token_notice_ms: u64,

    /// Close with 4001 this long after the connection's token expired without a refresh
    #[arg(
        long,
        env = "TOKEN_GRACE_MS",
        default_value_t = 10_000,
        value_name = "MS"
    )]
    pub token_grace_ms: u64,

    /// How long a user's inbox is kept after its last message
    #[arg(
        long,
        env = "INBOX_TTL_SECS",
        default_value_t = 86_400,
        value_name = "SECS"
    )]
    pub inbox_ttl_secs: u64,

    // ---- Hardening: what one client may make the server accept. Validated
    // together in `super::hardening`; kept as one block at the end. ----
    /// Clock skew allowed on JWT exp and nbf, in seconds (0..=300)
    #[arg(
        long,
        env = "JWT_LEEWAY_SECS",
        default_value_t = 5,
        value_name = "SECS"
    )]
    pub jwt_leeway_secs: u64,

    /// Deepest nesting of a chat or broadcast payload (1..=1000); deeper answers error bad_json
    #[arg(
        long,
        env = "MAX_JSON_DEPTH",
        default_value_t = 64,
        value_name = "LEVELS"
    )]
    pub max_json_depth: usize,

    // ---- Server API (/api/v1/...) ----
    /// Comma-separated keys of the HTTP server API (16+ visible ASCII bytes each); unset = every /api/ path is 404
    #[arg(long, env = "API_KEYS", value_name = "KEYS")]
    pub api_keys: Option<Secret>,

    /// Largest server API request body in bytes (1024..=64 MiB); larger answers 413
    #[arg(
        long,
        env = "API_MAX_BODY_BYTES",
        default_value_t = 1_048_576,
        value_name = "BYTES"
    )]
    pub api_max_body_bytes: usize,

    /// Time for a server API request to arrive (head and body), and idle time of a keep-alive connection, in ms
    #[arg(
        long,
        env = "API_REQUEST_TIMEOUT_MS",
        default_value_t = 10_000,
        value_name = "MS"
    )]
    pub api_request_timeout_ms: u64,

    /// Server API requests per second per key and instance, a batch counting its commands (0 = no limit)
    #[arg(
        long,
        env = "API_RATE_LIMIT",
        default_value_t = 1_000,
        value_name = "PER_SEC"
    )]
    pub api_rate_limit: u32,
    // ---- Abuse limits (issue 17): bytes, unfinished messages, readiness ----
    /// Bytes per second one connection's messages may cost, envelopes included (0 = no byte limit); the default, ~1 Mbit/s, is what a modest reader drains
    #[arg(
        long,
        env = "RATE_LIMIT_BYTES_PER_SEC",
        default_value_t = 131_072,
        value_name = "BYTES"
    )]
    pub rate_limit_bytes: u32,

    /// Bytes a connection may send at once after a pause; unset = half of SEND_QUEUE_BYTES. At least MAX_MESSAGE_BYTES, at most SEND_QUEUE_BYTES - 1024, so no single client can fill another's queue
    #[arg(long, env = "RATE_LIMIT_BYTES_BURST", value_name = "BYTES")]
    pub rate_limit_bytes_burst: Option<u32>,

    /// A started frame or message must complete within this many ms, or the connection is closed 1008 (a byte now and then does not extend it)
    #[arg(
        long,
        env = "MESSAGE_COMPLETE_TIMEOUT_MS",
        default_value_t = 30_000,
        value_name = "MS"
    )]
    pub message_complete_timeout_ms: u64,

    /// Bytes all unfinished messages of one shard may hold (at least MAX_MESSAGE_BYTES + 1 KiB); the connection whose message goes past it is closed 1008
    #[arg(
        long,
        env = "PARTIAL_MESSAGE_BYTES_PER_SHARD",
        default_value_t = 33_554_432,
        value_name = "BYTES"
    )]
    pub partial_message_bytes_per_shard: usize,

    /// After /ready turned 503 at MAX_CONNECTIONS, it turns 200 again once open connections fall to this percentage of it (0..=100; at least one below the limit)
    #[arg(
        long,
        env = "READY_RESUME_PERCENT",
        default_value_t = 95,
        value_name = "PERCENT"
    )]
    pub ready_resume_percent: u8,

    // ---- Compression: permessage-deflate (issue 15). One block, kept last;
    // validated together in `super::compression`. ----
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

/// `AUTH_MODE`: how clients prove who they are, as asked; resolved once with
/// `JWT_SECRET` and the host into [`super::ResolvedAuth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Token when JWT_SECRET is set; insecure only on a loopback host
    Auto,
    /// JWT HS256 only; JWT_SECRET is required
    Token,
    /// ?userId= without proof; explicit opt-in, logged loudly, not with JWT_SECRET
    Insecure,
}

/// A plain two-way switch (`COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Disabled
    Off,
    /// Enabled
    On,
}
