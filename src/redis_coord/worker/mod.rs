//! The Redis I/O thread: a current-thread tokio runtime that connects,
//! serves rounds, and reconnects with backoff.
//!
//! Two states. **Down**: connect attempts (with jittered exponential
//! backoff) while shards' commands keep being answered at once (routes
//! confirmed so clients are welcomed, remote sends `Failed`). **Up**: drain
//! every queued command and push, let the engine build one round, run it,
//! feed the replies back; when idle, sleep until a command, a push or the
//! housekeeping tick. Any link failure (error, timeout, disconnection push,
//! a subscription Redis dropped on its own) goes back to Down; the next Up
//! claims the liveness key (compare-and-set: never another process's),
//! reads the route-table epoch, re-subscribes and asks the shards to
//! re-register their routes. While another process holds
//! our liveness key the instance stays Down: at start that is a duplicate
//! `SERVER_ID` and refuses the start, unless the holder turns out dead (its
//! key expires, see [`super::claim`]).
//!
//! # Layout
//!
//! - this file: the worker's state, its settings (delays and bounds) and
//!   the outer loop (connect, serve, reconnect or clean up);
//! - `connect.rs`: the Down state: attempts with backoff, the liveness-key
//!   claim and the first-contact report to [`super::start`];
//! - `serve.rs`: the Up state: drain, build and run rounds, handle pushes,
//!   clean up at shutdown.

mod connect;
mod serve;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::ConnectionInfo;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::ClusterMode;
use crate::metrics::{Counter, ShardMetrics};

use super::engine::{Command, Engine};
pub(super) use serve::message_payload;
use serve::Exit;

/// Housekeeping period: deadlines, liveness refresh, sweep schedule.
const TICK: Duration = Duration::from_millis(50);
/// First reconnection delay; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest reconnection delay (before jitter).
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Delays are spread by ± this fraction, so instances do not retry in step.
const JITTER: f64 = 0.2;
/// The longest time between two connection attempts: [`MAX_BACKOFF`] with
/// the largest jitter. A live instance that lost Redis tries again within it.
pub const MAX_RETRY_DELAY: Duration = Duration::from_millis(2_400);
/// Delay between attempts while our liveness key is held by a process not
/// (yet) known to be alive: short, to take the key over as it expires.
const HELD_RETRY: Duration = Duration::from_millis(100);
/// Bound on one connection attempt (connect, subscribe, handshake).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);
/// Bound on one round trip before the link counts as broken.
const ROUND_TIMEOUT: Duration = Duration::from_secs(4);
/// Most commands (and pushes) taken per round: bounds a round's size under load.
const MAX_DRAIN: usize = 8192;
/// Bound on the clean-up round at shutdown.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything the I/O thread owns.
pub struct Worker {
    /// Parsed seed addresses.
    pub seeds: Vec<ConnectionInfo>,
    /// Standalone, Cluster or detect.
    pub mode: ClusterMode,
    /// This instance's server id (its channel).
    pub server_id: String,
    /// The I/O-free coordinator state.
    pub engine: Engine,
    /// Commands from the shards.
    pub rx: UnboundedReceiver<Command>,
    /// What `is_ready` reads.
    pub ready: Arc<AtomicBool>,
    /// The coordinator's counters.
    pub metrics: Arc<ShardMetrics>,
    /// Where the outcome of the first contact goes while [`super::start`]
    /// waits for it; `None` once decided.
    pub first_contact: Option<std::sync::mpsc::Sender<FirstContact>>,
}

/// How the first contact with Redis went (reported to [`super::start`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstContact {
    /// Our liveness key is ours: registered.
    Registered,
    /// Redis did not answer: the instance starts and keeps trying.
    Unreachable,
    /// Our liveness key holds another boot id; whether its process is alive
    /// is known `within` this time at the latest.
    Held {
        /// The holder's boot id.
        holder: String,
        /// Bound on the time to a verdict.
        within: Duration,
    },
    /// Another live process holds our liveness key: a duplicate `SERVER_ID`.
    Conflict(String),
}

impl Worker {
    /// Runs until shutdown (or until every coordinator handle is gone).
    pub async fn run(mut self) {
        let mut connections = 0u64;
        while let Some((link, pushes)) = self.connect_loop().await {
            connections += 1;
            if connections > 1 {
                self.metrics.incr(Counter::RedisReconnects);
            }
            let exit = self.serve(link, pushes).await;
            self.ready.store(false, Ordering::Release);
            self.engine.disconnected();
            if let Exit::Shutdown(link) = exit {
                self.clean_up(link).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_bound_is_the_largest_jittered_backoff() {
        let bound = MAX_BACKOFF.mul_f64(1.0 + JITTER);
        assert!(bound.abs_diff(MAX_RETRY_DELAY) < Duration::from_millis(1));
        assert!(HELD_RETRY <= MIN_BACKOFF);
    }
}
