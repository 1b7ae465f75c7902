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
//!   welcomed at once); on reconnection it claims its liveness key,
//!   re-subscribes and asks the shards to re-register every route.
//! - **Identity and epoch** ([`claim`], [`scripts`], `engine::identity`):
//!   the liveness key holds a per-process boot id, claimed and deleted only
//!   while ours (a duplicate `SERVER_ID` is refused at start); the
//!   route-table epoch marker turns "no route" answers into `Failed` while
//!   Redis may have lost routes that instances have not put back yet.
//!
//! - **Settings**: [`start`] takes the config layer's [`RedisSettings`]
//!   as they are: seeds parsed, cluster mode and server id checked there,
//!   once.
//!
//! - **Bad replies**: every parser of a reply answers `None` (the request
//!   fails) for anything outside its contract, never panics; `fuzzing`
//!   (hidden) checks them all, for the `redis_reply` fuzz target and the
//!   unit tests.
//!
//! Keys, channels, the envelope, liveness and the sweep's bounds are
//! documented for operators in `docs/REDIS.md`.

pub mod channels;
pub mod claim;
pub mod engine;
pub mod envelope;
pub mod functions;
#[doc(hidden)]
pub mod fuzzing;
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
pub mod scripts;
pub mod status;
pub mod sweep;
pub mod worker;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Another live process runs with this server id.
    #[error(
        "SERVER_ID {server_id:?} is in use by another live instance (server_alive:{server_id} \
         holds its boot id {holder}, and it keeps refreshing it); give every instance its own \
         SERVER_ID, or stop the other one first"
    )]
    DuplicateServerId {
        /// Our (their) server id.
        server_id: String,
        /// The other process's boot id.
        holder: String,
    },
}

/// Starts the coordinator: spawns the I/O thread, which connects in the
/// background (an unreachable Redis is not an error: the instance starts,
/// reports not ready, and keeps retrying).
pub fn start(
    settings: RedisSettings,
    router: Arc<dyn LocalRouter>,
    metrics: Arc<ShardMetrics>,
) -> Result<Arc<dyn Coordinator>, RedisError> {
    let liveness_ttl = settings.liveness_ttl;
    let engine_cfg = engine::EngineConfig {
        server_id: settings.server_id.clone(),
        liveness_ttl,
        sweep_interval: settings.sweep_interval,
        delivery_timeout: settings.delivery_timeout,
        namespaces: settings.namespaces.clone(),
        boot_id: boot_id(),
        // docs/REDIS.md, "Redis restarted empty": every live instance retries
        // within MAX_RETRY_DELAY, then has a liveness TTL to register again.
        table_grace: liveness_ttl + worker::MAX_RETRY_DELAY,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let ready = Arc::new(AtomicBool::new(false));
    let (contact_tx, contact_rx) = std::sync::mpsc::channel();
    let worker = worker::Worker {
        seeds: settings.seeds,
        mode: settings.cluster,
        server_id: settings.server_id.clone(),
        engine: engine::Engine::new(engine_cfg, router, metrics.clone(), Instant::now()),
        rx,
        ready: ready.clone(),
        metrics,
        first_contact: Some(contact_tx),
    };
    let server_id = settings.server_id.clone();
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
    if let Err(holder) = await_first_contact(&contact_rx, &server_id) {
        // The worker never subscribed nor wrote anything: just stop it.
        let _ = tx.send(engine::Command::Shutdown);
        let _ = done_rx.recv_timeout(worker::SHUTDOWN_TIMEOUT);
        return Err(RedisError::DuplicateServerId { server_id, holder });
    }
    Ok(Arc::new(RedisCoordinator::new(tx, ready, thread, done_rx)))
}

/// How long start-up waits for a first answer from Redis before going on
/// in the background (connecting and claiming take milliseconds when Redis
/// is reachable; an unreachable Redis is not an error).
const FIRST_CONTACT_WAIT: Duration = Duration::from_secs(3);

/// Waits until the first contact decided whether our server id is free:
/// `Err(holder)` when another live process holds it. While the key is held
/// by a process not yet known to be alive (a crashed predecessor), waits
/// for its verdict (at most the key's remaining TTL, and a little more).
fn await_first_contact(
    rx: &std::sync::mpsc::Receiver<worker::FirstContact>,
    server_id: &str,
) -> Result<(), String> {
    let mut deadline = Instant::now() + FIRST_CONTACT_WAIT;
    let mut told = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(worker::FirstContact::Conflict(holder)) => return Err(holder),
            Ok(worker::FirstContact::Held { holder, within }) => {
                if !told {
                    tracing::warn!(
                        server_id,
                        holder = %holder,
                        wait_ms = within.as_millis() as u64,
                        "server_alive:{server_id} holds another process's boot id: waiting to see whether that process is alive (a crashed predecessor's key expires)"
                    );
                    told = true;
                }
                deadline = deadline.max(Instant::now() + within + FIRST_CONTACT_WAIT);
            }
            Ok(_) | Err(_) => return Ok(()),
        }
    }
}

/// This process's boot id: start time (Unix ms, for operators) and 64
/// random bits, unique per process.
fn boot_id() -> String {
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{start_ms}-{:016x}", rand::random::<u64>())
}
