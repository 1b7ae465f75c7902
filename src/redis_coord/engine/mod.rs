//! The coordinator's brain, free of I/O: shards' commands and other
//! instances' envelopes in, [`Round`]s of Redis commands and router
//! callbacks out.
//!
//! The I/O thread ([`super::worker`]) owns one `Engine`. It feeds it what
//! arrived (commands, pushes, replies, the clock), asks it for the next
//! round whenever no round trip is in flight, and tells it when the link
//! goes up or down. Everything queued while a round trip is in flight thus
//! goes out together in the next one: that is the batching. Keeping this
//! I/O-free lets the unit tests drive it with a recording router.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::coordinator::{LocalRouter, PublishOutcome};
use crate::metrics::{Counter, ShardMetrics};
use crate::namespaces::Namespaces;

use super::channels::ChannelSubs;
use super::inbound::Inbound;
use super::liveness::Liveness;
use super::outbound::{Finish, Outbound};
use super::presence::Presence;
use super::publication;
use super::round::{Round, Tag, Target};
use super::routes::Routes;
use super::status;
use super::sweep::{self, Node, Sweep};

/// What the engine needs to know about this instance.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This instance's server id.
    pub server_id: String,
    /// TTL of the liveness key (refreshed every third of it).
    pub liveness_ttl: Duration,
    /// Time between sweep passes.
    pub sweep_interval: Duration,
    /// How long a remote delivery may take before it counts as failed.
    pub delivery_timeout: Duration,
    /// Channel namespaces (presence options).
    pub namespaces: Arc<Namespaces>,
    /// This process's boot id: the value of our liveness key, unique per
    /// process, so that another process with our server id is told apart.
    pub boot_id: String,
    /// How long after the route-table epoch marker was created "no live
    /// route" still answers `Failed` (see `engine::identity`).
    pub table_grace: Duration,
}

/// The coordinator state owned by the I/O thread.
pub struct Engine {
    /// Instance settings.
    cfg: EngineConfig,
    /// Where deliveries and answers go.
    router: Arc<dyn LocalRouter>,
    /// The coordinator's own counters.
    metrics: Arc<ShardMetrics>,
    /// True while the link is up (rounds can run).
    up: bool,
    /// The link is a Cluster: per-server channels use sharded pub/sub.
    sharded: bool,
    /// Local users and route writes to send.
    routes: Routes,
    /// Direct messages we sent, waiting for an outcome.
    outbound: Outbound,
    /// Direct messages we received, waiting for the shards' counts.
    inbound: Inbound,
    /// Liveness cache of other servers.
    liveness: Liveness,
    /// The route table sweep.
    sweep: Sweep,
    /// Publishes for the next round: `(server, payload, tag)`, `None` = broadcast.
    publishes: Vec<(Option<String>, Bytes, Tag)>,
    /// Dead servers' routes to remove in the next round: `(user, server)`.
    stale: Vec<(String, String)>,
    /// The instance's channel subscriptions.
    channels: ChannelSubs,
    /// Channel publications for the next round.
    channel_publishes: Vec<ChannelPublish>,
    /// Stream function calls for the next round: command, key, tag.
    stream_calls: Vec<(redis::Cmd, String, Tag)>,
    /// Presence writes and the presence sweep.
    presence: Presence,
    /// User status reads: id → (shard, token, servers found so far).
    status: HashMap<u64, status::Pending>,
    /// The next outbound request id (never 0).
    next_id: u64,
    /// When the liveness key is refreshed next.
    next_alive: Instant,
    /// The route-table epoch marker last seen (`None` before the first).
    epoch: Option<String>,
    /// Set when a refresh found our liveness key held by another process.
    conflict: Option<String>,
}

impl Engine {
    /// A disconnected engine.
    pub fn new(
        cfg: EngineConfig,
        router: Arc<dyn LocalRouter>,
        metrics: Arc<ShardMetrics>,
        now: Instant,
    ) -> Self {
        let outbound_timeout = cfg
            .delivery_timeout
            .saturating_sub((cfg.delivery_timeout / 10).min(Duration::from_millis(250)));
        Self {
            presence: Presence::new(cfg.sweep_interval, now),
            outbound: Outbound::new(outbound_timeout),
            inbound: Inbound::new(cfg.delivery_timeout),
            liveness: Liveness::new(cfg.liveness_ttl),
            sweep: Sweep::new(cfg.sweep_interval, now),
            cfg,
            router,
            metrics,
            up: false,
            sharded: false,
            routes: Routes::default(),
            publishes: Vec::new(),
            stale: Vec::new(),
            channels: ChannelSubs::default(),
            channel_publishes: Vec::new(),
            stream_calls: Vec::new(),
            status: HashMap::new(),
            next_id: 1,
            next_alive: now,
            epoch: None,
            conflict: None,
        }
    }

    /// The link is up (subscribed, liveness key written): start the sweep
    /// and ask the shards for every route again.
    pub fn connected(&mut self, nodes: Vec<Node>, sharded: bool, now: Instant) {
        self.up = true;
        self.sharded = sharded;
        self.next_alive = now + self.cfg.liveness_ttl / 3;
        self.sweep.restart(nodes, now);
        self.router.reregister_routes();
        for (shard, token) in self.channels.link_lost() {
            self.router.channel_subscribed(shard, token);
        }
        self.presence.link_lost(Instant::now());
    }

    /// The link is down: everything in flight fails now.
    pub fn disconnected(&mut self) {
        self.up = false;
        for finish in self.outbound.fail_all() {
            self.answer(finish);
        }
        self.inbound.clear();
        self.liveness.reset();
        self.sweep.abort();
        self.stale.clear();
        let lost = self.publishes.drain(..).count();
        self.metrics.add(Counter::RedisErrors, lost as u64);
        for p in std::mem::take(&mut self.channel_publishes) {
            self.metrics.incr(Counter::RedisErrors);
            if p.token != 0 {
                self.router
                    .published(p.shard, p.token, PublishOutcome::Failed);
            }
        }
        for (_, _, tag) in std::mem::take(&mut self.stream_calls) {
            self.metrics.incr(Counter::RedisErrors);
            self.fail_stream_call(tag);
        }
        for (shard, token) in self.channels.link_lost() {
            self.router.channel_subscribed(shard, token);
        }
        self.presence.link_lost(Instant::now());
    }

    /// Expires what is past its deadline.
    pub fn tick(&mut self, now: Instant) {
        for finish in self.outbound.expire(now) {
            self.answer(finish);
        }
        self.inbound.expire(now);
    }

    /// The commands of a graceful exit: our routes and liveness key removed
    /// (the key only if it is still ours).
    pub fn shutdown_round(&self) -> Round {
        let mut round = Round::default();
        for user in self.routes.local_users() {
            round.route_write(user, &self.cfg.server_id, false, Tag::StaleRemove);
        }
        round.release(&self.cfg.server_id, &self.cfg.boot_id);
        round
    }

    /// Everything queued since the last round, as the next round (empty when idle or down).
    pub fn build_round(&mut self, now: Instant) -> Round {
        let mut round = Round::default();
        if !self.up {
            return round;
        }
        let me = self.cfg.server_id.clone();
        for (user, w) in self.routes.drain() {
            let tag = Tag::RouteWrite {
                user: user.clone(),
                add: w.add,
                waiters: w.waiters,
                swept: w.swept,
            };
            round.route_write(&user, &me, w.add, tag);
        }
        for (user, server) in self.stale.drain(..) {
            round.route_write(&user, &server, false, Tag::StaleRemove);
        }
        for (id, user) in self.outbound.take_lookups() {
            round.members(&user, Tag::Lookup { id });
        }
        for user in self.sweep.take_reads() {
            round.members(&user, Tag::SweepMembers { user: user.clone() });
        }
        for server in self.liveness.take_wanted() {
            round.exists(&server);
        }
        round.channels = self.channels.take_changes();
        for (cmd, list, tag) in self.stream_calls.drain(..) {
            round.push(cmd, Target::Key(list), tag);
        }
        let sent_at_us = crate::shard::core::unix_micros(std::time::SystemTime::now());
        let (ns, sharded) = (&*self.cfg.namespaces, self.sharded);
        self.presence
            .build(&mut round, &me, ns, sharded, sent_at_us, now);
        for p in self.channel_publishes.drain(..) {
            let payload = publication::encode(p.sent_at_us, &p.json);
            let tag = Tag::PublishChannel {
                shard: p.shard,
                token: p.token,
            };
            round.publish_channel(&p.channel, &payload, self.sharded, tag);
        }
        for (server, payload, tag) in self.publishes.drain(..) {
            match server {
                Some(server) => round.publish_to_server(&server, &payload, self.sharded, tag),
                None => round.publish_broadcast(&payload),
            }
        }
        if now >= self.next_alive {
            self.next_alive = now + self.cfg.liveness_ttl / 3;
            self.identity_commands(&mut round);
        }
        if let Some((node, cursor)) = self.sweep.next_scan(now) {
            round.scan(node, cursor, sweep::SCAN_COUNT);
        }
        round
    }

    /// Calls the router for a finished outbound request (not for token 0).
    fn answer(&self, (shard, token, outcome): Finish) {
        if token != 0 {
            self.router.remote_outcome(shard, token, outcome);
        }
    }

    fn answer_opt(&self, finish: Option<Finish>) {
        if let Some(f) = finish {
            self.answer(f);
        }
    }
}

mod command;
mod commands;
mod identity;
mod incoming;
mod replies;

use command::ChannelPublish;
pub use command::Command;

pub use identity::Refused;

#[cfg(test)]
mod tests;
