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

use crate::coordinator::{
    History, LocalRouter, PublishOutcome, RemoteOutcome, ReplyTo, Retention, StreamKey,
    StreamQuery, UserOp,
};
use crate::metrics::{Counter, ShardMetrics};
use crate::namespaces::Namespaces;
use crate::protocol::channel::ChannelName;
use crate::protocol::frame::text_frame_with;
use crate::protocol::UserId;

use super::channels::ChannelSubs;
use super::envelope::{self, Envelope};
use super::functions;
use super::inbound::Inbound;
use super::keys;
use super::liveness::Liveness;
use super::outbound::{Finish, Outbound};
use super::presence::Presence;
use super::publication;
use super::round::{Round, Tag, Target};
use super::routes::Routes;
use super::status;
use super::sweep::{self, Node, Sweep};

/// What shards ask, as queued for the I/O thread.
#[derive(Debug)]
pub enum Command {
    /// `Coordinator::add_route`.
    AddRoute {
        /// The user whose first local connection opened.
        user: UserId,
        /// The shard to answer through `route_added`.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// `Coordinator::remove_route`.
    RemoveRoute {
        /// The user whose last local connection closed.
        user: UserId,
    },
    /// `Coordinator::send_direct`.
    Direct {
        /// The receiver.
        user: UserId,
        /// The frame to deliver.
        frame: Bytes,
        /// The sending shard.
        shard: u16,
        /// Its pending-ack token (0: no ack wanted, no outcome sent).
        token: u64,
        /// When the sender's server received it.
        sent_at_us: u64,
    },
    /// `Coordinator::send_broadcast`.
    Broadcast {
        /// The frame to deliver.
        frame: Bytes,
        /// When the sender's server received it.
        sent_at_us: u64,
    },
    /// `Coordinator::subscribe_channel`.
    SubscribeChannel {
        /// The channel.
        channel: ChannelName,
        /// The owner shard to answer.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// `Coordinator::unsubscribe_channel`.
    UnsubscribeChannel {
        /// The channel.
        channel: ChannelName,
    },
    /// `Coordinator::publish`.
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The `publication` JSON without offset.
        json: Bytes,
        /// How the channel keeps its publications, if it does.
        history: Option<History>,
        /// The publishing shard.
        shard: u16,
        /// Its token (0: no answer wanted).
        token: u64,
        /// When the publisher's instance received it.
        sent_at_us: u64,
    },
    /// `Coordinator::read_stream`.
    ReadStream {
        /// The stream.
        key: StreamKey,
        /// What to read.
        query: StreamQuery,
        /// The reading shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// `Coordinator::append_inbox`.
    AppendInbox {
        /// The receiver.
        user: UserId,
        /// The message's JSON without offset.
        json: Bytes,
        /// How the inbox keeps messages.
        retention: Retention,
        /// The sending shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// `Coordinator::presence_changes`.
    PresenceChanges {
        /// The channel.
        channel: ChannelName,
        /// `(user, delta)`.
        changes: Vec<(UserId, i32)>,
    },
    /// `Coordinator::presence_reset`.
    PresenceReset {
        /// The channel.
        channel: ChannelName,
        /// `(user, connections)`.
        users: Vec<(UserId, u32)>,
    },
    /// `Coordinator::read_presence`.
    ReadPresence {
        /// The channel.
        channel: ChannelName,
        /// Most users listed (0: counts only).
        cap: u32,
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// `Coordinator::send_user_op`.
    UserOp {
        /// The user.
        user: UserId,
        /// The operation.
        op: UserOp,
        /// The asking shard.
        shard: u16,
        /// Its token (0: no outcome wanted).
        token: u64,
    },
    /// `Coordinator::user_servers`.
    UserServers {
        /// The user.
        user: UserId,
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// `Coordinator::idempotency`.
    Idempotency {
        /// The key.
        key: String,
        /// The answer to remember (`None`: claim).
        answer: Option<Bytes>,
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// `Coordinator::delivery_report`.
    Report {
        /// Our key of the incoming direct.
        key: u64,
        /// Connections that took it on one shard.
        connections: u32,
        /// Shards reporting for it.
        parts: u32,
    },
    /// `Coordinator::shutdown`.
    Shutdown,
}

/// A publication waiting for the next round.
#[derive(Debug)]
struct ChannelPublish {
    /// The channel.
    channel: ChannelName,
    /// The `publication` JSON without offset.
    json: Bytes,
    /// The publishing shard.
    shard: u16,
    /// Its token (0: no answer).
    token: u64,
    /// When the publisher's instance received it.
    sent_at_us: u64,
}

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

    /// Handles a shard's command; false on `Shutdown`.
    pub fn on_command(&mut self, cmd: Command, now: Instant) -> bool {
        match cmd {
            Command::AddRoute { user, shard, token } if self.up => {
                self.routes.add(user, Some((shard, token)))
            }
            Command::AddRoute { user, shard, token } => {
                // Welcome the client now; the route is written on reconnection.
                self.routes.add(user, None);
                self.router.route_added(shard, token);
            }
            Command::RemoveRoute { user } => self.routes.remove(user),
            Command::Direct {
                user,
                frame,
                shard,
                token,
                sent_at_us,
            } => self.begin_direct(user, &frame, shard, token, sent_at_us, now),
            Command::Broadcast { frame, sent_at_us } => self.broadcast(&frame, sent_at_us),
            Command::UserOp {
                user,
                op,
                shard,
                token,
            } => self.begin_user_op(user, &op, shard, token, now),
            Command::Idempotency {
                key,
                answer,
                shard,
                token,
            } => {
                if !self.up {
                    return self.down(|r| r.idempotency_answer(shard, token, None));
                }
                let ttl = crate::coordinator::IDEMPOTENCY_TTL_MS;
                let settle = answer.is_some();
                let (cmd, name) = match &answer {
                    Some(a) => functions::settle(&key, a, ttl),
                    None => functions::claim(&key, ttl),
                };
                let tag = Tag::Idempotency {
                    shard,
                    token,
                    settle,
                };
                self.stream_calls.push((cmd, name, tag));
            }
            Command::UserServers { user, shard, token } => {
                if !self.up {
                    return self.down(|r| r.user_servers(shard, token, None));
                }
                let id = self.next_id();
                self.status.insert(id, status::Pending::new(shard, token));
                self.stream_calls.push((
                    status::members(&user),
                    keys::route_key(&user),
                    Tag::StatusMembers { id },
                ));
            }
            Command::SubscribeChannel {
                channel,
                shard,
                token,
            } => {
                if let Some((shard, token)) =
                    self.channels.subscribe(channel, shard, token, self.up)
                {
                    self.router.channel_subscribed(shard, token);
                }
            }
            Command::UnsubscribeChannel { channel } => self.channels.unsubscribe(channel),
            // While down, changes are dropped: the owners' tables rebuild
            // Redis's on reconnection.
            Command::PresenceChanges { channel, changes } if self.up => {
                self.presence.changes(channel, changes)
            }
            Command::PresenceReset { channel, users } if self.up => {
                self.presence.reset(channel, users)
            }
            Command::PresenceChanges { .. } | Command::PresenceReset { .. } => {}
            Command::ReadPresence {
                channel,
                cap,
                shard,
                token,
            } => {
                if !self.up {
                    return self.down(|r| r.presence_read(shard, token, None));
                }
                let (cmd, key) = functions::presence::list(&channel, cap);
                self.stream_calls
                    .push((cmd, key, Tag::PresenceList { shard, token, cap }));
            }
            Command::ReadStream {
                key,
                query,
                shard,
                token,
            } => {
                if !self.up {
                    return self.down(|r| r.stream_read(shard, token, None));
                }
                let (cmd, list) = functions::read(&key, &query);
                self.stream_calls
                    .push((cmd, list, Tag::StreamRead { shard, token }));
            }
            Command::AppendInbox {
                user,
                json,
                retention,
                shard,
                token,
            } => {
                if !self.up {
                    return self.down(|r| r.inbox_appended(shard, token, None));
                }
                let (cmd, list) =
                    functions::append_inbox(&StreamKey::Inbox(user), &json, retention);
                self.stream_calls
                    .push((cmd, list, Tag::InboxAppend { shard, token }));
            }
            Command::Publish {
                channel,
                json,
                history,
                shard,
                token,
                sent_at_us,
            } => self.publish(channel, json, history, shard, token, sent_at_us),
            Command::Report {
                key,
                connections,
                parts,
            } => self.report(key, connections, parts),
            Command::Shutdown => return false,
        }
        true
    }

    fn begin_direct(
        &mut self,
        user: UserId,
        frame: &[u8],
        shard: u16,
        token: u64,
        sent_at_us: u64,
        now: Instant,
    ) {
        if !self.up {
            self.metrics.incr(Counter::RedisErrors);
            self.answer((shard, token, RemoteOutcome::Failed));
            return;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let wire_token = if token == 0 { 0 } else { id };
        let payload =
            envelope::encode_direct(&self.cfg.server_id, wire_token, sent_at_us, &user, frame);
        self.outbound.begin(id, shard, token, user, payload, now);
    }

    fn begin_user_op(&mut self, user: UserId, op: &UserOp, shard: u16, token: u64, now: Instant) {
        if !self.up {
            self.metrics.incr(Counter::RedisErrors);
            self.answer((shard, token, RemoteOutcome::Failed));
            return;
        }
        let id = self.next_id();
        let wire_token = if token == 0 { 0 } else { id };
        let payload = envelope::encode_user_op(&self.cfg.server_id, wire_token, &user, op);
        self.outbound.begin(id, shard, token, user, payload, now);
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    fn broadcast(&mut self, frame: &[u8], sent_at_us: u64) {
        if !self.up {
            self.metrics.incr(Counter::RedisErrors);
            return;
        }
        let payload = envelope::encode_broadcast(&self.cfg.server_id, sent_at_us, frame);
        self.publishes
            .push((None, payload, Tag::PublishOther { confirm: false }));
    }

    fn publish(
        &mut self,
        channel: ChannelName,
        json: Bytes,
        history: Option<History>,
        shard: u16,
        token: u64,
        sent_at_us: u64,
    ) {
        if !self.up {
            self.metrics.incr(Counter::RedisErrors);
            if token != 0 {
                self.router.published(shard, token, PublishOutcome::Failed);
            }
            return;
        }
        if let Some(retention) = history {
            // Numbered, kept and published in one atomic step.
            let (cmd, list) =
                functions::append_publication(&channel, &json, retention, sent_at_us, self.sharded);
            self.stream_calls
                .push((cmd, list, Tag::PublishHistory { shard, token }));
            return;
        }
        self.channel_publishes.push(ChannelPublish {
            channel,
            json,
            shard,
            token,
            sent_at_us,
        });
    }

    /// Answers a command at once while the link is down (it fails).
    fn down(&self, answer: impl FnOnce(&dyn LocalRouter)) -> bool {
        self.metrics.incr(Counter::RedisErrors);
        answer(&*self.router);
        true
    }

    fn report(&mut self, key: u64, connections: u32, parts: u32) {
        let Some((origin, token, n)) = self.inbound.report(key, connections, parts) else {
            return;
        };
        if self.up {
            let payload = envelope::encode_confirm(&self.cfg.server_id, token, n);
            self.publishes
                .push((Some(origin), payload, Tag::PublishOther { confirm: true }));
        }
    }

    /// A message published to one of our Redis channels (`channel` is its name).
    pub fn on_push(&mut self, channel: &[u8], payload: Bytes, now: Instant) {
        match publication::channel_of(channel) {
            Some(name) => self.on_publication(name, payload),
            None => self.on_message(payload, now),
        }
    }

    fn on_publication(&mut self, channel: ChannelName, payload: Bytes) {
        let Some(p) = publication::decode(payload) else {
            self.metrics.incr(Counter::RedisErrors);
            tracing::debug!(%channel, "dropped an undecodable publication");
            return;
        };
        // Framed once here for every subscriber of the instance.
        let frame = text_frame_with(|out| out.extend_from_slice(&p.json));
        self.router
            .deliver_publication(channel, frame, p.offset, p.sent_at_us);
    }

    /// A message published to this server's or the broadcast channel.
    pub fn on_message(&mut self, payload: Bytes, now: Instant) {
        match envelope::decode(payload) {
            Ok(Envelope::Direct {
                origin,
                token,
                sent_at_us,
                user,
                frame,
            }) => {
                let reply = (token != 0).then(|| ReplyTo::Coordinator {
                    token: self.inbound.begin(origin, token, now),
                });
                self.router.deliver_direct(user, frame, reply, sent_at_us);
            }
            Ok(Envelope::UserOp {
                origin,
                token,
                user,
                op,
            }) => {
                let reply = (token != 0).then(|| ReplyTo::Coordinator {
                    token: self.inbound.begin(origin, token, now),
                });
                self.router.deliver_user_op(user, op, reply);
            }
            Ok(Envelope::Confirm {
                origin,
                token,
                connections,
            }) => {
                let done = self.outbound.on_confirm(token, origin, connections);
                self.answer_opt(done);
            }
            Ok(Envelope::Broadcast {
                origin,
                sent_at_us,
                frame,
            }) => {
                if origin != self.cfg.server_id {
                    self.router.deliver_broadcast(frame, sent_at_us);
                }
            }
            Err(e) => {
                self.metrics.incr(Counter::RedisErrors);
                tracing::debug!(error = %e, "dropped an undecodable pub/sub message");
            }
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

mod identity;
mod replies;

pub use identity::Refused;

#[cfg(test)]
mod tests;
