//! The Redis coordination layer: route table and pub/sub between
//! instances, on a standalone Redis or a Redis Cluster.
//!
//! # Design
//!
//! - **One I/O thread** per instance ([`worker`]) runs a current-thread
//!   tokio runtime. Shards call [`RedisCoordinator`] ([`handle`]), whose
//!   methods only enqueue a command (unbounded queue, never blocks).
//! - **Batching**: the thread keeps at most one round trip in flight; all
//!   route writes, lookups, liveness checks and publishes queued meanwhile
//!   go out together as the next round ([`round`]): one pipeline on a
//!   standalone server, one pipeline per slot on a Cluster ([`link`]).
//! - **I/O-free core**: [`engine`] turns commands, pushes and replies into
//!   rounds and router callbacks; [`outbound`] (our direct messages:
//!   lookup → liveness → publish → confirmations → outcome), [`inbound`]
//!   (other instances' messages: shard reports → confirmation), [`routes`]
//!   (our route writes, coalesced per user), [`liveness`] and [`sweep`]
//!   are plain state machines with unit tests.
//! - **Wire**: [`envelope`] is the versioned binary message between
//!   instances; it carries the WebSocket frame the origin built, as is.
//! - **Failure**: while Redis is unreachable the instance keeps serving
//!   local users (`is_ready` false, remote sends `Failed`, new users are
//!   welcomed at once); on reconnection it re-subscribes, rewrites its
//!   liveness key and asks the shards to re-register every route.
//!
//! - **Settings**: [`start`] takes the config layer's [`RedisSettings`]
//!   as they are: seeds parsed, cluster mode and server id checked there,
//!   once.
//!
//! Keys, channels, the envelope, liveness and the sweep's bounds are
//! documented for operators in `docs/REDIS.md`.

pub mod channels;
pub mod engine;
pub mod envelope;
pub mod functions;
pub mod handle;
pub mod inbound;
pub mod keys;
pub mod link;
pub mod liveness;
pub mod outbound;
pub mod presence;
pub mod publication;
pub mod round;
pub mod routes;
pub mod status;
pub mod sweep;
pub mod worker;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use crate::config::RedisSettings;
use crate::coordinator::{Coordinator, LocalRouter};
use crate::metrics::ShardMetrics;

pub use handle::RedisCoordinator;

/// Why the coordinator could not start. The settings themselves were
/// validated by the config layer (seeds parsed, cluster mode consistent
/// with them, server id well-formed), so only the thread can fail here.
#[derive(Debug, Error)]
pub enum RedisError {
    /// The I/O thread could not be spawned.
    #[error("cannot start the redis thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Starts the coordinator: spawns the I/O thread, which connects in the
/// background (an unreachable Redis is not an error: the instance starts,
/// reports not ready, and keeps retrying).
pub fn start(
    settings: RedisSettings,
    router: Arc<dyn LocalRouter>,
    metrics: Arc<ShardMetrics>,
) -> Result<Arc<dyn Coordinator>, RedisError> {
    let engine_cfg = engine::EngineConfig {
        server_id: settings.server_id.clone(),
        liveness_ttl: settings.liveness_ttl,
        sweep_interval: settings.sweep_interval,
        delivery_timeout: settings.delivery_timeout,
        namespaces: settings.namespaces.clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let ready = Arc::new(AtomicBool::new(false));
    let worker = worker::Worker {
        seeds: settings.seeds,
        mode: settings.cluster,
        server_id: settings.server_id,
        engine: engine::Engine::new(engine_cfg, router, metrics.clone(), Instant::now()),
        rx,
        ready: ready.clone(),
        metrics,
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("redis-io".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(worker.run()),
                Err(e) => tracing::error!(error = %e, "cannot build the redis runtime"),
            }
            let _ = done_tx.send(());
        })?;
    Ok(Arc::new(RedisCoordinator::new(tx, ready, thread, done_rx)))
}
