//! The systems around the server: Redis ([`RedisArgs`]), the CloudWatch
//! push ([`CloudWatchArgs`]) and the HTTP server API ([`ApiArgs`]),
//! flattened into [`super::Args`] and validated by the config module of the
//! same name.

use clap::builder::BoolishValueParser;
use clap::ArgAction;

use super::Secret;
use crate::config::ClusterMode;

/// Redis, for several instances; unset means the embedded broker.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
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
}

/// The CloudWatch metrics push.
#[derive(Debug, Clone, clap::Args)]
pub struct CloudWatchArgs {
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
}

/// The server API (`/api/v1/...`).
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
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
}
