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
//! Keys, channels, the envelope, liveness and the sweep's bounds are
//! documented for operators in `docs/REDIS.md`.

pub mod claim;
pub mod engine;
pub mod envelope;
pub mod handle;
pub mod inbound;
pub mod keys;
pub mod link;
pub mod liveness;
pub mod outbound;
pub mod round;
pub mod routes;
pub mod scripts;
pub mod sweep;
pub mod worker;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{ConnectionInfo, IntoConnectionInfo};
use thiserror::Error;

use crate::coordinator::{Coordinator, LocalRouter};
use crate::metrics::ShardMetrics;

pub use handle::RedisCoordinator;

/// Default TTL of an instance's liveness key.
pub const DEFAULT_LIVENESS_TTL: Duration = Duration::from_secs(10);
/// Default time between two sweeps of the route table.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Whether the Redis deployment is a Cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterMode {
    /// Ask the first reachable seed (`INFO cluster`) at each connection.
    #[default]
    Auto,
    /// A Redis Cluster (sharded pub/sub for per-server channels).
    On,
    /// A standalone server (the first seed).
    Off,
}

/// How to reach Redis and who this instance is.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://` URIs, comma-separated (several seeds for a Cluster).
    pub uri: String,
    /// Cluster or not.
    pub cluster: ClusterMode,
    /// This instance's id: its route entries and its channel `server:<id>`.
    pub server_id: String,
    /// TTL of the liveness key `server_alive:<id>` (refreshed every third).
    pub liveness_ttl: Duration,
    /// Time between sweeps of stale routes.
    pub sweep_interval: Duration,
    /// How long a remote delivery may take before its outcome is `Failed`.
    pub delivery_timeout: Duration,
}

/// Why the coordinator could not start.
#[derive(Debug, Error)]
pub enum RedisError {
    /// `REDIS_URI` is empty or one of its seeds is not a valid Redis URI.
    #[error("invalid REDIS_URI {uri:?}: {reason}")]
    BadUri {
        /// The offending seed.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Several seeds with cluster mode off.
    #[error("REDIS_URI lists {0} seeds but cluster mode is off")]
    SeveralSeeds(usize),
    /// The server id cannot name a channel (empty).
    #[error("server id must not be empty")]
    EmptyServerId,
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

/// Parses the comma-separated seeds.
pub fn parse_seeds(uri: &str) -> Result<Vec<ConnectionInfo>, RedisError> {
    let seeds: Vec<&str> = uri
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if seeds.is_empty() {
        let reason = "no URI given".to_owned();
        return Err(RedisError::BadUri {
            uri: uri.to_owned(),
            reason,
        });
    }
    seeds
        .into_iter()
        .map(|s| {
            s.into_connection_info().map_err(|e| RedisError::BadUri {
                uri: s.to_owned(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Starts the coordinator: validates the configuration and spawns the I/O
/// thread, which connects in the background (an unreachable Redis is not an
/// error: the instance starts, reports not ready, and keeps retrying).
pub fn start(
    cfg: RedisConfig,
    router: Arc<dyn LocalRouter>,
    metrics: Arc<ShardMetrics>,
) -> Result<Arc<dyn Coordinator>, RedisError> {
    let seeds = parse_seeds(&cfg.uri)?;
    if cfg.cluster == ClusterMode::Off && seeds.len() > 1 {
        return Err(RedisError::SeveralSeeds(seeds.len()));
    }
    if cfg.server_id.is_empty() {
        return Err(RedisError::EmptyServerId);
    }
    let liveness_ttl = cfg.liveness_ttl.max(Duration::from_millis(300));
    let engine_cfg = engine::EngineConfig {
        server_id: cfg.server_id.clone(),
        liveness_ttl,
        sweep_interval: cfg.sweep_interval.max(Duration::from_millis(100)),
        delivery_timeout: cfg.delivery_timeout,
        boot_id: boot_id(),
        // docs/REDIS.md, "Redis restarted empty": every live instance retries
        // within MAX_RETRY_DELAY, then has a liveness TTL to register again.
        table_grace: liveness_ttl + worker::MAX_RETRY_DELAY,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let ready = Arc::new(AtomicBool::new(false));
    let (contact_tx, contact_rx) = std::sync::mpsc::channel();
    let worker = worker::Worker {
        seeds,
        mode: cfg.cluster,
        server_id: cfg.server_id.clone(),
        engine: engine::Engine::new(engine_cfg, router, metrics.clone(), Instant::now()),
        rx,
        ready: ready.clone(),
        metrics,
        first_contact: Some(contact_tx),
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
    if let Err(holder) = await_first_contact(&contact_rx, &cfg.server_id) {
        // The worker never subscribed nor wrote anything: just stop it.
        let _ = tx.send(engine::Command::Shutdown);
        let _ = done_rx.recv_timeout(worker::SHUTDOWN_TIMEOUT);
        return Err(RedisError::DuplicateServerId {
            server_id: cfg.server_id,
            holder,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_and_a_bad_one_is_named() {
        assert_eq!(parse_seeds("redis://a:1, redis://b:2").unwrap().len(), 2);
        assert!(matches!(parse_seeds(" , "), Err(RedisError::BadUri { .. })));
        let err = parse_seeds("redis://a:1,http://x").unwrap_err();
        assert!(err.to_string().contains("http://x"), "{err}");
        assert!(
            parse_seeds("rediss://secure.example:6380").is_ok(),
            "TLS seeds"
        );
    }
}
