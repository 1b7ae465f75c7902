//! websocket-app: a thread-per-core WebSocket messaging server for chat,
//! live dashboards and multiplayer games.
//!
//! One pinned worker thread per core ("shard") runs a `monoio` runtime on
//! io_uring (epoll as fallback) and owns every piece of state of the
//! connections it accepted. Shards talk only through typed messages in
//! lock-free mailboxes. A coordination layer (embedded, or Redis for many
//! instances) routes messages between instances; per-shard counters are
//! merged for Prometheus (`/metrics`) and CloudWatch.
//!
//! # Layout
//!
//! - [`config`]: command line, environment and `.env.local`, validated once
//!   into the typed settings each subsystem takes as they are (shards,
//!   Redis, CloudWatch).
//! - [`settings`]: the shards' settings (produced by [`config`]).
//! - [`protocol`]: the I/O-free wire protocol: HTTP handshake, WebSocket
//!   frames, JSON envelope. Bytes in, events out; fuzzed.
//! - [`auth`]: who a client is (JWT HS256 or the opt-in insecure mode).
//! - [`session`]: what one client message means (I/O-free, time passed in).
//! - [`ratelimit`]: the per-connection token bucket.
//! - [`shard`]: a worker: connections, local users, the directory of the
//!   users it owns, pending acks, the sweep, the handshake tasks, and the
//!   readiness set (epoll) through which it reads and writes every upgraded
//!   socket without a task per connection.
//! - [`instance`]: the instance-wide state every shard holds (settings,
//!   mailboxes, coordinator), and the mailbox router the coordinator calls.
//! - [`coordinator`]: the interface to other instances, and the embedded
//!   single-instance implementation.
//! - [`redis_coord`]: the Redis coordination layer (standalone or Cluster),
//!   run by a dedicated I/O thread.
//! - [`metrics`]: per-shard counters, Prometheus text, CloudWatch push.
//! - [`server`]: listeners, shard threads, signals, graceful shutdown.
//! - [`web`]: the demo page.
//! - [`app`]: wiring configuration to a running server (what `main` calls).

pub mod app;
pub mod auth;
pub mod config;
pub mod coordinator;
pub mod instance;
pub mod metrics;
pub mod protocol;
pub mod ratelimit;
pub mod redis_coord;
pub mod server;
pub mod session;
pub mod settings;
pub mod shard;
pub mod web;
