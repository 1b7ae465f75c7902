//! The HTTP server API (`/api/v1/...`, contract: API.md; guide:
//! `docs/API.md`; description: `docs/openapi.yaml`): a backend publishes,
//! sends, broadcasts, disconnects, subscribes users, and reads presence,
//! history and who is online, for the whole cluster, through any instance.
//!
//! Served by the shards on the WebSocket port: the handshake task of a
//! connection whose first request is under `/api/` (while `API_KEYS` is
//! set; otherwise those paths are 404 like any unknown path) becomes an API
//! session that serves keep-alive requests until the connection closes. The
//! cluster-wide work is the core's ([`crate::shard::core::ApiCommand`],
//! awaited with [`crate::shard::Shard::api_call`]); this module is HTTP,
//! JSON and the API's rules around it.
//!
//! # Layout
//!
//! - [`http`]: request heads (`httparse`) and answers, I/O-free.
//! - [`route`]: path and method to an endpoint; query parameters.
//! - [`keys`]: constant-time key check, per-key rate limit, bounded logging.
//! - [`parse`]: a head's checks and an admitted request's body to typed
//!   work (I/O-free, fuzzed).
//! - [`request`]: JSON bodies (and paths) to typed commands; 400s that
//!   name their field.
//! - [`answer`]: answers and errors, and how an idempotency key keeps one.
//! - [`execute`]: frames, the core's call, idempotency keys.
//! - [`batch`]: up to 1,000 writes in order, yielding between them.
//! - [`session`]: the connection loop: bounds, timeouts, keep-alive.

pub mod answer;
pub mod batch;
pub mod execute;
pub mod http;
pub mod keys;
pub mod parse;
pub mod request;
pub mod route;
mod session;

use std::sync::Arc;
use std::time::Duration;

pub use keys::{ApiKeys, KeyId};
pub use route::PREFIX;
pub use session::serve;

/// The server API's settings (present when `API_KEYS` is set), validated by
/// the config layer.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `API_KEYS`, hashed, with each key's rate limit state (shared by
    /// every shard of the instance).
    pub keys: Arc<ApiKeys>,
    /// `API_MAX_BODY_BYTES`: larger bodies answer 413.
    pub max_body_bytes: usize,
    /// `API_REQUEST_TIMEOUT_MS`: a request must arrive within it; an idle
    /// keep-alive connection is closed after it.
    pub request_timeout: Duration,
    /// `API_RATE_LIMIT`: requests per second per key (0: no limit).
    pub rate_limit: u32,
}

/// True for the paths the API serves (when it is on).
pub fn is_api_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}
