//! The protocol's optional features: channels, the direct-message inbox and
//! token refresh ([`ChannelsArgs`], version 2), and permessage-deflate
//! ([`CompressionArgs`], issue 15), flattened into [`super::Args`].

use std::path::PathBuf;

use super::OnOff;
use crate::protocol::deflate::DeflateConfig;

/// Version 2: channel namespaces and subscriptions, the inbox, and token
/// refresh. One group because `--help` lists them together (the token
/// settings sit between the inbox's size and its TTL).
#[derive(Debug, Clone, clap::Args)]
pub struct ChannelsArgs {
    /// TOML file of [default] and [namespaces.<name>] options: public, client_publish, history_size (<= 10000, > 0 needs history_ttl_secs), history_ttl_secs (<= 30 days), presence, join_leave (needs presence), join_leave_per_sec (50; 0 = no limit); unset = defaults
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
}

/// Compression: permessage-deflate (issue 15). Validated together in
/// `super::super::compression`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompressionArgs {
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
