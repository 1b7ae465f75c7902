//! Where the instance listens and runs, who may connect, how a connection
//! lives and what clients may send: [`InstanceArgs`], [`AuthArgs`],
//! [`LifecycleArgs`] and [`MessagingArgs`], flattened into [`super::Args`].

use std::net::IpAddr;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, ValueEnum};

use super::Secret;
use crate::settings::IoDriver;

/// The instance: listen address, shards, io driver and its id.
#[derive(Debug, Clone, clap::Args)]
pub struct InstanceArgs {
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
}

/// Who may connect: token keys, the auth mode and allowed origins.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
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
}

/// How a connection lives: heartbeats, shutdown and drain.
#[derive(Debug, Clone, clap::Args)]
pub struct LifecycleArgs {
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
}

/// What clients may send and how deliveries are confirmed.
#[derive(Debug, Clone, clap::Args)]
pub struct MessagingArgs {
    /// Let clients broadcast to everyone (false: broadcast answers error forbidden); in token mode a client also needs a "broadcast": true claim in its JWT
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
}

/// `AUTH_MODE`: how clients prove who they are, as asked; resolved once with
/// `JWT_SECRET` and the host into [`crate::config::ResolvedAuth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Token when JWT_SECRET is set; insecure only on a loopback host
    Auto,
    /// JWT HS256 only; JWT_SECRET is required
    Token,
    /// ?userId= without proof; explicit opt-in, logged loudly, not with JWT_SECRET
    Insecure,
}
