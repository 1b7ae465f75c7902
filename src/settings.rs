//! The runtime settings the shards need, produced once by the config layer
//! ([`Config::settings`](crate::config::Config::settings)), already
//! validated: shards read the fields and never check them again.
//!
//! The two enums are also what the command line parses (`ValueEnum`): their
//! variant names are the accepted values, their doc comments the `--help`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::coordinator::Retention;
use crate::namespaces::Namespaces;
use crate::protocol::deflate::DeflateConfig;
use clap::ValueEnum;

use crate::ratelimit::RateLimit;

/// Which io driver the shards run on (`IO_DRIVER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IoDriver {
    /// io_uring when the kernel allows it, else epoll (logged once at start).
    Auto,
    /// io_uring only; start fails if unavailable.
    Uring,
    /// epoll (monoio's legacy driver) only.
    Legacy,
}

/// What `GET /` serves (`DASHBOARD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dashboard {
    /// Chat demo and live dashboard.
    On,
    /// Dashboard only, no chat demo.
    #[value(name = "readonly")]
    ReadOnly,
    /// GET / and /stats answer 404.
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
    /// Channel namespaces and their options.
    pub namespaces: Arc<Namespaces>,
    /// Subscriptions per connection.
    pub max_channels_per_connection: usize,
    /// Users' inboxes of direct messages, when kept (`INBOX_SIZE` > 0).
    pub inbox: Option<Retention>,
    /// Deepest nesting of a chat or broadcast payload; deeper is `bad_json`.
    pub max_json_depth: usize,
    /// `token_expiring` is sent when at most this is left before expiry.
    pub token_notice: Duration,
    /// A connection is closed 4001 this long after its token expired.
    pub token_grace: Duration,
    /// The HTTP server API, when `API_KEYS` is set.
    pub api: Option<crate::api::ApiSettings>,
    /// How long a started frame or message may take to complete; past it
    /// the connection is closed 1008.
    pub message_complete_timeout: Duration,
    /// Bytes a shard's unfinished messages may hold together; the
    /// connection whose message takes it past this is closed 1009.
    pub partial_message_budget: usize,
    /// Once `/ready` turned 503 at `max_connections`, it turns 200 again
    /// when open connections fall to this percentage of it.
    pub ready_resume_percent: u8,
    /// permessage-deflate: `None` when `COMPRESSION=off` (every offer is
    /// declined), else how the shard compresses.
    pub compression: Option<DeflateConfig>,
}
