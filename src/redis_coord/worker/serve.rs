//! The Up state: drain what the shards and Redis queued, let the engine
//! build one round, run it and feed the replies back; when idle, sleep until
//! a command, a push or the housekeeping tick. Also the clean-up round at
//! shutdown.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc::error::TryRecvError;

use super::{Worker, MAX_DRAIN, ROUND_TIMEOUT, SHUTDOWN_TIMEOUT, TICK};
use crate::redis_coord::engine::Command;
use crate::redis_coord::link::{Link, Pushes};
use crate::redis_coord::round::Tag;

/// Why serving a link ended.
pub(super) enum Exit {
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
    /// Serves a connected link until it breaks or shutdown is asked.
    pub(super) async fn serve(&mut self, mut link: Link, mut pushes: Pushes) -> Exit {
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
                Ok(Ok(replies)) => {
                    self.engine.on_replies(round.tags, replies, Instant::now());
                    if let Some(holder) = self.engine.take_conflict() {
                        tracing::error!(
                            server_id = %self.server_id,
                            holder,
                            "our liveness key now holds another process's boot id: another instance runs with this SERVER_ID; leaving Redis"
                        );
                        return Exit::Down;
                    }
                }
                Ok(Err(e)) => return self.lost(round.tags, &e.to_string()),
                Err(_) => return self.lost(round.tags, "round trip timed out"),
            }
        }
    }

    fn lost(&mut self, tags: Vec<Tag>, why: &str) -> Exit {
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
            PushKind::Unsubscribe | PushKind::SUnsubscribe => {
                let channel = push.data.into_iter().next().and_then(name_of);
                if channel.is_some_and(|c| self.engine.on_unsubscribed(&c)) {
                    // Also, the `redis` crate pairs such a notice with the
                    // oldest request in flight on that node's connection,
                    // so that connection's replies can no longer be trusted.
                    tracing::warn!(
                        "redis dropped a subscription on its own (a Cluster failover or slot migration); reconnecting"
                    );
                    return Some(Stop::Down);
                }
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
    pub(super) async fn clean_up(&mut self, mut link: Link) {
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

/// The channel and payload of a `message`/`smessage` push: `[channel, payload]`.
pub(in crate::redis_coord) fn message_payload(data: Vec<Value>) -> Option<(Vec<u8>, Bytes)> {
    let mut data = data.into_iter();
    let channel = name_of(data.next()?)?;
    match data.next()? {
        Value::BulkString(b) => Some((channel, Bytes::from(b))),
        _ => None,
    }
}

/// A channel name in a push (bulk or simple string).
fn name_of(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}
