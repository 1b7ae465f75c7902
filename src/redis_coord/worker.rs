//! The Redis I/O thread: a current-thread tokio runtime that connects,
//! serves rounds, and reconnects with backoff.
//!
//! Two states. **Down**: connect attempts (with jittered exponential
//! backoff) while shards' commands keep being answered at once (routes
//! confirmed so clients are welcomed, remote sends `Failed`). **Up**: drain
//! every queued command and push, let the engine build one round, run it,
//! feed the replies back; when idle, sleep until a command, a push or the
//! housekeeping tick. Any link failure (error, timeout, disconnection push)
//! goes back to Down; the next Up re-subscribes, rewrites the liveness key
//! and asks the shards to re-register their routes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use futures_util::FutureExt;
use redis::{ConnectionInfo, PushInfo, PushKind, Value};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::ClusterMode;
use crate::metrics::{Counter, ShardMetrics};

use super::engine::{Command, Engine};
use super::link::{self, Link, Pushes};

/// Housekeeping period: deadlines, liveness refresh, sweep schedule.
const TICK: Duration = Duration::from_millis(50);
/// First reconnection delay; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest reconnection delay.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
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
}

/// Why serving a link ended.
enum Exit {
    /// The link broke: reconnect.
    Down,
    /// Shutdown was asked: clean up on this link and stop.
    Shutdown(Link),
}

/// Why the serving loop must stop (before the link is handed back).
enum Stop {
    /// The link broke.
    Down,
    /// Shutdown was asked (or every handle is gone).
    Shutdown,
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

    /// Connects with backoff, answering commands meanwhile; `None` on shutdown.
    async fn connect_loop(&mut self) -> Option<(Link, Pushes)> {
        let mut backoff = MIN_BACKOFF;
        for attempt in 1u64.. {
            match self.attempt().await? {
                Ok(connected) => return Some(connected),
                Err(e) if attempt == 1 || attempt % 30 == 0 => {
                    tracing::warn!(error = %e, attempt, "redis unreachable; serving local users only, retrying")
                }
                Err(e) => tracing::debug!(error = %e, attempt, "redis connection attempt failed"),
            }
            let jitter = 0.8 + 0.4 * rand::random::<f64>();
            let sleep = tokio::time::sleep(backoff.mul_f64(jitter));
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    cmd = self.rx.recv() => if !self.on_command_down(cmd) { return None },
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        None
    }

    /// One connection attempt; `None` when shutdown arrived meanwhile.
    async fn attempt(&mut self) -> Option<Result<(Link, Pushes), String>> {
        let (seeds, mode, server_id) = (self.seeds.clone(), self.mode, self.server_id.clone());
        let handshake = self.engine.handshake_round();
        let attempt = async move {
            let (mut link, pushes) = link::connect(&seeds, mode, &server_id)
                .await
                .map_err(|e| e.to_string())?;
            let replies = link
                .run(handshake.cmds, &handshake.targets)
                .await
                .map_err(|e| e.to_string())?;
            if replies.is_empty() {
                return Err("no reply to the handshake".to_owned());
            }
            // Loading the stream functions and writing the liveness key
            // must both succeed.
            match replies.into_iter().find_map(Result::err) {
                Some(e) => Err(e),
                None => Ok((link, pushes)),
            }
        };
        // A panic inside the client (e.g. no TLS crypto provider) must not
        // kill this thread: it counts as a failed attempt.
        let attempt = AssertUnwindSafe(attempt)
            .catch_unwind()
            .map(|r| r.unwrap_or_else(|p| Err(panic_text(&*p))));
        let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt);
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                result = &mut attempt => return Some(result.unwrap_or_else(|_| Err("connection attempt timed out".to_owned()))),
                cmd = self.rx.recv() => if !self.on_command_down(cmd) { return None },
            }
        }
    }

    fn on_command_down(&mut self, cmd: Option<Command>) -> bool {
        cmd.is_some_and(|cmd| self.engine.on_command(cmd, Instant::now()))
    }

    /// Serves a connected link until it breaks or shutdown is asked.
    async fn serve(&mut self, mut link: Link, mut pushes: Pushes) -> Exit {
        let kind = if link.is_cluster() {
            "cluster"
        } else {
            "standalone"
        };
        tracing::info!(mode = kind, server_id = %self.server_id, "connected to redis");
        self.ready.store(true, Ordering::Release);
        self.engine
            .connected(link.nodes(), link.is_cluster(), Instant::now());
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(stop) = self.drain(&mut pushes) {
                return stop.exit(link);
            }
            let now = Instant::now();
            self.engine.tick(now);
            let round = self.engine.build_round(now);
            if round.is_empty() {
                let stop = tokio::select! {
                    cmd = self.rx.recv() => self.on_command_up(cmd),
                    push = pushes.recv() => self.on_push(push),
                    _ = tick.tick() => None,
                };
                if let Some(stop) = stop {
                    return stop.exit(link);
                }
                continue;
            }
            tracing::trace!(commands = round.len(), "round trip");
            if !round.channels.is_empty() {
                let applied =
                    tokio::time::timeout(ROUND_TIMEOUT, link.apply_channels(&round.channels)).await;
                match applied {
                    Ok(Ok(())) => self.engine.on_channels_applied(&round.channels, true),
                    Ok(Err(e)) => return self.lost(round.tags, &e.to_string()),
                    Err(_) => return self.lost(round.tags, "channel subscription timed out"),
                }
                if round.cmds.is_empty() {
                    continue;
                }
            }
            let result =
                tokio::time::timeout(ROUND_TIMEOUT, link.run(round.cmds, &round.targets)).await;
            match result {
                Ok(Ok(replies)) => self.engine.on_replies(round.tags, replies, Instant::now()),
                Ok(Err(e)) => return self.lost(round.tags, &e.to_string()),
                Err(_) => return self.lost(round.tags, "round trip timed out"),
            }
        }
    }

    fn lost(&mut self, tags: Vec<super::round::Tag>, why: &str) -> Exit {
        tracing::warn!(error = why, "redis link lost; reconnecting");
        self.engine.on_round_failed(tags);
        Exit::Down
    }

    /// Handles what is already queued (up to [`MAX_DRAIN`] of each).
    fn drain(&mut self, pushes: &mut Pushes) -> Option<Stop> {
        for _ in 0..MAX_DRAIN {
            match self.rx.try_recv() {
                Ok(cmd) => {
                    if let Some(stop) = self.on_command_up(Some(cmd)) {
                        return Some(stop);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Some(Stop::Shutdown),
            };
        }
        for _ in 0..MAX_DRAIN {
            match pushes.try_recv() {
                Ok(push) => {
                    if let Some(stop) = self.on_push(Some(push)) {
                        return Some(stop);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Some(Stop::Down),
            };
        }
        None
    }

    fn on_command_up(&mut self, cmd: Option<Command>) -> Option<Stop> {
        (!self.on_command_down(cmd)).then_some(Stop::Shutdown)
    }

    fn on_push(&mut self, push: Option<PushInfo>) -> Option<Stop> {
        let Some(push) = push else {
            return Some(Stop::Down);
        };
        match push.kind {
            PushKind::Disconnection => {
                tracing::warn!("redis connection closed; reconnecting");
                return Some(Stop::Down);
            }
            PushKind::Message | PushKind::SMessage => {
                if let Some((channel, payload)) = message_payload(push.data) {
                    self.engine.on_push(&channel, payload, Instant::now());
                }
            }
            _ => {}
        }
        None
    }

    /// Removes our routes and liveness key, within [`SHUTDOWN_TIMEOUT`].
    async fn clean_up(&mut self, mut link: Link) {
        let round = self.engine.shutdown_round();
        let n = round.len();
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, link.run(round.cmds, &round.targets)).await {
            Ok(Ok(_)) => tracing::info!(
                routes = n.saturating_sub(1),
                "removed this instance's routes from redis"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not remove routes at shutdown"),
            Err(_) => tracing::warn!("removing routes at shutdown timed out"),
        }
    }
}

impl Stop {
    fn exit(self, link: Link) -> Exit {
        match self {
            Stop::Down => Exit::Down,
            Stop::Shutdown => Exit::Shutdown(link),
        }
    }
}

/// A panic's message, for the log.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    format!(
        "redis client panicked: {}",
        text.as_deref().unwrap_or("(see stderr)")
    )
}

/// The channel and payload of a `message`/`smessage` push: `[channel, payload]`.
fn message_payload(data: Vec<Value>) -> Option<(Vec<u8>, Bytes)> {
    let mut data = data.into_iter();
    let channel = match data.next()? {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        _ => return None,
    };
    match data.next()? {
        Value::BulkString(b) => Some((channel, Bytes::from(b))),
        _ => None,
    }
}
