//! websocket-app: a thread-per-core WebSocket messaging server for chat,
//! live dashboards and multiplayer games.
//!
//! One pinned worker thread per core ("shard") runs a `monoio` runtime on
//! io_uring (epoll as fallback) for accepting, handshakes, timers and one
//! readiness wait, and owns every piece of state of the connections it
//! accepted; steady-state reads and writes are non-blocking `recv`/`sendmsg`
//! on sockets its epoll readiness set reports ready. Shards talk only through typed messages in
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
//!   frames, JSON envelope, close codes, user ids. Bytes in, events out;
//!   fuzzed; depends on nothing of the server.
//! - [`auth`]: who a client is (JWT HS256 or the opt-in insecure mode).
//! - [`session`]: what one client message means (I/O-free, time passed in).
//! - [`namespaces`]: channel namespaces and their options.
//! - [`ratelimit`]: the per-connection token bucket.
//! - [`close`]: why the server closes a connection (code, text, counter).
//! - [`shard`]: a worker, laid out along the data flow (accept → handshake
//!   → read → decode → route → deliver → write); its routing core
//!   ([`shard::core`]) is I/O-free: events in, actions out, tested on a
//!   simulated bus of shards.
//! - [`instance`]: the instance-wide state every shard holds (settings,
//!   mailboxes, coordinator), and the mailbox router the coordinator calls.
//! - [`admission`]: whether the instance can take more clients (`/ready`):
//!   the connection limit with hysteresis, the accept back-off at the file
//!   descriptor limit (I/O-free).
//! - [`coordinator`]: the interface to other instances, and the embedded
//!   single-instance implementation.
//! - [`redis_coord`]: the Redis coordination layer (standalone or Cluster),
//!   run by a dedicated I/O thread.
//! - [`metrics`]: per-shard counters, Prometheus text, CloudWatch push.
//! - [`server`]: listeners, shard threads, signals, graceful shutdown.
//! - [`web`]: the demo page.
//! - [`api`]: the HTTP server API for backends (`/api/v1/...`), served by
//!   the shards on the WebSocket port.
//! - [`app`]: wiring configuration to a running server (what `main` calls).

pub mod admission;
pub mod api;
pub mod app;
pub mod auth;
pub mod close;
pub mod config;
pub mod coordinator;
pub mod instance;
pub mod metrics;
pub mod namespaces;
pub mod protocol;
pub mod ratelimit;
pub mod redis_coord;
pub mod server;
pub mod session;
pub mod settings;
pub mod shard;
pub mod web;
