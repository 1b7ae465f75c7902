//! What one connection (or one client) may make the server hold or do:
//! [`LimitsArgs`], [`HardeningArgs`] and [`AbuseLimitsArgs`], flattened into
//! [`super::Args`]. Their ceilings are checked in `super::super::validate`
//! and `super::super::hardening`.

/// Message size, send queue, connections and the message rate limit.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitsArgs {
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
}

/// Hardening: what one client may make the server accept. Validated
/// together in `super::super::hardening`.
#[derive(Debug, Clone, clap::Args)]
pub struct HardeningArgs {
    /// Clock skew allowed on JWT exp and nbf, in seconds (0..=300)
    #[arg(
        long,
        env = "JWT_LEEWAY_SECS",
        default_value_t = 5,
        value_name = "SECS"
    )]
    pub jwt_leeway_secs: u64,

    /// Deepest nesting of a chat, broadcast or publish payload (1..=1000); deeper answers error bad_json
    #[arg(
        long,
        env = "MAX_JSON_DEPTH",
        default_value_t = 64,
        value_name = "LEVELS"
    )]
    pub max_json_depth: usize,
}

/// Abuse limits (issue 17): bytes, unfinished messages, readiness.
#[derive(Debug, Clone, clap::Args)]
pub struct AbuseLimitsArgs {
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

    /// Bytes all unfinished messages of one shard may hold (at least MAX_MESSAGE_BYTES + 1 KiB); the connection whose message goes past it is closed 1009 (message too big; clients reconnect after it)
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
}
