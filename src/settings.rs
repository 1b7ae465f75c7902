//! The runtime settings the shards need, derived once from the validated
//! [`Config`](crate::config::Config). Kept separate so shards depend on a small
//! plain struct rather than on the command-line layer.

use std::net::SocketAddr;
use std::time::Duration;

use crate::protocol::deflate::DeflateConfig;
use crate::ratelimit::RateLimit;

/// Which io driver the shards run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// io_uring when the kernel allows it, else epoll (logged once at start).
    Auto,
    /// io_uring only; start fails if unavailable.
    Uring,
    /// epoll (monoio's legacy driver) only.
    Legacy,
}

/// What `GET /` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dashboard {
    /// Chat demo and live dashboard.
    On,
    /// Dashboard only, no chat demo.
    ReadOnly,
    /// `GET /` and `/stats` answer 404.
    Off,
}

/// Everything a shard needs to know, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address every shard's `SO_REUSEPORT` listener binds.
    pub listen: SocketAddr,
    /// Number of shards (worker threads), at least 1.
    pub shards: usize,
    /// io driver choice.
    pub io_driver: IoDriver,
    /// This instance's stable id (route table value, metrics dimension).
    pub server_id: String,
    /// Largest accepted client message (after reassembly); larger closes 1009.
    pub max_message_bytes: usize,
    /// Per-connection send queue bound; beyond it the connection is closed 4008.
    pub send_queue_bytes: usize,
    /// Connections per instance; beyond it upgrades get 503.
    pub max_connections: usize,
    /// Per-connection message rate limit.
    pub rate_limit: RateLimit,
    /// Announced to clients in `welcome`.
    pub heartbeat_interval: Duration,
    /// Silence after which a connection is closed 4000.
    pub heartbeat_timeout: Duration,
    /// Bound on graceful shutdown.
    pub shutdown_timeout: Duration,
    /// Whether clients may broadcast (else `error` `forbidden`).
    pub broadcast_enabled: bool,
    /// Conformance-test path whose connections echo frames (no identity).
    pub echo_path: Option<String>,
    /// How long a sender waits for other instances to confirm a delivery.
    pub delivery_timeout: Duration,
    /// What `GET /` serves.
    pub dashboard: Dashboard,
    /// Drain pace: connections closed per second per instance.
    pub drain_rate: u32,
    /// permessage-deflate: `None` when `COMPRESSION=off` (every offer is
    /// declined), else how the shard compresses.
    pub compression: Option<DeflateConfig>,
}
