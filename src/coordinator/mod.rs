//! The coordination layer: how one instance reaches the others.
//!
//! Shards never talk to Redis (or anything that can block) themselves. They
//! call a [`Coordinator`], whose methods only enqueue work and return at once;
//! answers come back later as typed [`ShardMsg`](crate::shard::ShardMsg)s in
//! the shards' mailboxes, or through [`LocalRouter`] for messages that other
//! instances send to our users.
//!
//! Two implementations sit behind this one interface:
//! - [`Embedded`]: the in-process default. There are no other instances, so a
//!   route needs no registration and nothing is ever remote.
//! - `RedisCoordinator` (see `crate::redis_coord`): route table and pub/sub in
//!   Redis, standalone or Cluster, run by a dedicated I/O thread.

mod stream;

use bytes::Bytes;

use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

pub use stream::{Appended, PresencePage, Retention, StreamKey, StreamPage, StreamQuery};

/// Where the outcome of a delivery goes once the receiving side has counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTo {
    /// A shard of this instance waits for it (`token` names its pending ack).
    Shard {
        /// Index of the waiting shard.
        shard: u16,
        /// The pending-ack key on that shard.
        token: u64,
    },
    /// The coordination layer waits for it, to confirm to another instance.
    Coordinator {
        /// The coordinator's own key for the remote request.
        token: u64,
    },
}

/// The remote part of a direct message's outcome, as the coordinator saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteOutcome {
    /// Remote instances confirmed this many receiver connections in total.
    Delivered {
        /// Connections that accepted the message on other instances.
        connections: u32,
    },
    /// No other live instance holds a connection of the receiver.
    Offline,
    /// The coordination layer is down or did not confirm in time.
    Failed,
}

/// An operation on every connection of a user (server API), carried to
/// every instance holding the user like a direct message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOp {
    /// Close with 4010 and this reason.
    Disconnect(std::sync::Arc<str>),
    /// Subscribe to the channel (the backend decides: no permission check).
    Subscribe(ChannelName),
    /// Unsubscribe, telling the client `reason: server`.
    Unsubscribe(ChannelName),
}

/// How long an idempotency key is remembered (the server API's 5 minutes).
pub const IDEMPOTENCY_TTL_MS: u64 = 300_000;

/// What claiming (or settling) an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyAnswer {
    /// The key is new and now claimed.
    Fresh,
    /// Its request was carried out: the answer to replay.
    Replay(Bytes),
    /// Its request is being carried out.
    InProgress,
    /// The answer is remembered.
    Settled,
}

/// What a direct delivery carries: a frame, or an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A framed message, shared by every receiver.
    Frame(Bytes),
    /// An operation on each connection.
    Op(UserOp),
}

/// How a channel keeps its publications (its namespace's options).
pub type History = Retention;

impl Retention {
    /// The history a namespace keeps, if any.
    pub fn of(options: &crate::namespaces::NamespaceOptions) -> Option<Retention> {
        options.has_history().then_some(Retention {
            size: options.history_size,
            ttl: options.history_ttl,
        })
    }
}

/// What became of a publication handed to the coordination layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// It reached the channel (numbered when the channel keeps history).
    Published {
        /// Its offset in the channel's history.
        offset: Option<u64>,
        /// The history's epoch.
        epoch: Option<std::sync::Arc<str>>,
    },
    /// It could not be handed over (coordination layer down, timeout): not published.
    Failed,
}

/// Entry point for work arriving from other instances, implemented by the
/// server: it hands the work to the owner shard of the user.
pub trait LocalRouter: Send + Sync + 'static {
    /// Deliver `frame` to every local connection of `user`; the count goes to `reply`.
    fn deliver_direct(&self, user: UserId, frame: Bytes, reply: Option<ReplyTo>, sent_at_us: u64);
    /// Deliver `frame` to every local connection.
    fn deliver_broadcast(&self, frame: Bytes, sent_at_us: u64);
    /// The coordinator's answer for a message a shard sent with [`Coordinator::send_direct`].
    fn remote_outcome(&self, shard: u16, token: u64, outcome: RemoteOutcome);
    /// A route registration asked with [`Coordinator::add_route`] is done.
    fn route_added(&self, shard: u16, token: u64);
    /// Every local user's route is needed again (the coordination layer came back).
    fn reregister_routes(&self);
    /// The subscription asked with [`Coordinator::subscribe_channel`] is in place.
    fn channel_subscribed(&self, shard: u16, token: u64);
    /// A publication of a channel this instance is subscribed to, framed once.
    fn deliver_publication(
        &self,
        channel: ChannelName,
        frame: Bytes,
        offset: Option<u64>,
        sent_at_us: u64,
    );
    /// The outcome of a [`Coordinator::publish`] with a token.
    fn published(&self, shard: u16, token: u64, outcome: PublishOutcome);
    /// The answer to a [`Coordinator::read_stream`] (`None`: it failed).
    fn stream_read(&self, shard: u16, token: u64, page: Option<StreamPage>);
    /// The answer to a [`Coordinator::append_inbox`] (`None`: it failed).
    fn inbox_appended(&self, shard: u16, token: u64, at: Option<Appended>);
    /// The answer to a [`Coordinator::read_presence`] (`None`: it failed).
    fn presence_read(&self, shard: u16, token: u64, page: Option<PresencePage>);
    /// Carry out `op` on every local connection of `user`; the count goes to `reply`.
    fn deliver_user_op(&self, user: UserId, op: UserOp, reply: Option<ReplyTo>);
    /// The answer to a [`Coordinator::user_servers`] (`None`: it failed).
    fn user_servers(&self, shard: u16, token: u64, servers: Option<Vec<String>>);
    /// The answer to a [`Coordinator::idempotency`] (`None`: it failed).
    fn idempotency_answer(&self, shard: u16, token: u64, answer: Option<IdempotencyAnswer>);
}

/// What shards ask of the coordination layer. Every method must return at
/// once (enqueue, never block).
pub trait Coordinator: Send + Sync + 'static {
    /// The user's first connection on this instance opened. Returns `true`
    /// when a confirmation will arrive through [`LocalRouter::route_added`]
    /// with this `(shard, token)`; `false` when the route is in place already.
    fn add_route(&self, user: &UserId, shard: u16, token: u64) -> bool;
    /// The user's last connection on this instance closed.
    fn remove_route(&self, user: &UserId);
    /// Send a direct message to the receiver's connections on other
    /// instances. Returns `true` when a [`RemoteOutcome`] will arrive for
    /// `(shard, token)`; `false` when nothing is remote (no answer comes).
    fn send_direct(
        &self,
        user: &UserId,
        frame: Bytes,
        shard: u16,
        token: u64,
        sent_at_us: u64,
    ) -> bool;
    /// Send a broadcast frame to every other instance.
    fn send_broadcast(&self, frame: Bytes, sent_at_us: u64);
    /// Subscribe the instance to a channel's publications; the answer comes
    /// through [`LocalRouter::channel_subscribed`] with `(shard, token)`.
    fn subscribe_channel(&self, channel: &ChannelName, shard: u16, token: u64);
    /// The instance no longer wants the channel's publications.
    fn unsubscribe_channel(&self, channel: &ChannelName);
    /// Publish to a channel on every instance, this one included (its
    /// publications come back through [`LocalRouter::deliver_publication`]),
    /// numbered and kept when `history` is set. With a non-zero token the
    /// outcome comes through [`LocalRouter::published`].
    fn publish(
        &self,
        channel: &ChannelName,
        json: Bytes,
        history: Option<History>,
        shard: u16,
        token: u64,
        sent_at_us: u64,
    );
    /// Reads a stream (a channel's history, a user's inbox); the answer comes
    /// through [`LocalRouter::stream_read`] with `(shard, token)`.
    fn read_stream(&self, key: &StreamKey, query: StreamQuery, shard: u16, token: u64);
    /// Appends a direct message (its JSON without `offset`) to `user`'s
    /// inbox; the answer comes through [`LocalRouter::inbox_appended`].
    fn append_inbox(
        &self,
        user: &UserId,
        json: Bytes,
        retention: Retention,
        shard: u16,
        token: u64,
    );
    /// Carry out `op` on the user's connections on other instances; a
    /// [`RemoteOutcome`] (the count) answers `(shard, token)`.
    fn send_user_op(&self, user: &UserId, op: UserOp, shard: u16, token: u64);
    /// The live servers holding `user`'s connections; the answer comes
    /// through [`LocalRouter::user_servers`].
    fn user_servers(&self, user: &UserId, shard: u16, token: u64);
    /// Claims (`answer` `None`) or settles an idempotency key for
    /// [`IDEMPOTENCY_TTL_MS`], cluster-wide; the answer comes through
    /// [`LocalRouter::idempotency_answer`].
    fn idempotency(&self, key: &str, answer: Option<Bytes>, shard: u16, token: u64);
    /// Changes of this instance's presence in a channel: `(user, delta)`.
    fn presence_changes(&self, channel: &ChannelName, changes: Vec<(UserId, i32)>);
    /// This instance's whole presence in a channel (the layer lost it).
    fn presence_reset(&self, channel: &ChannelName, users: Vec<(UserId, u32)>);
    /// Reads a channel's presence, at most `cap` users (0: counts only);
    /// the answer comes through [`LocalRouter::presence_read`].
    fn read_presence(&self, channel: &ChannelName, cap: u32, shard: u16, token: u64);
    /// One shard's count for a remote instance's direct message (see
    /// [`ReplyTo::Coordinator`]); `parts` shards report for the same token.
    fn delivery_report(&self, token: u64, connections: u32, parts: u32);
    /// True while the coordination layer is reachable (drives `/ready`).
    fn is_ready(&self) -> bool;
    /// True when other instances may exist: routes are stored remotely and
    /// direct messages also go out through this layer.
    fn is_remote(&self) -> bool {
        true
    }
    /// Stop background work (graceful shutdown); routes of this instance are removed.
    fn shutdown(&self);
}

/// The in-process coordinator of a single instance: nothing is remote.
#[derive(Debug, Default)]
pub struct Embedded;

impl Coordinator for Embedded {
    fn add_route(&self, _user: &UserId, _shard: u16, _token: u64) -> bool {
        false
    }
    fn remove_route(&self, _user: &UserId) {}
    fn send_direct(&self, _: &UserId, _: Bytes, _: u16, _: u64, _: u64) -> bool {
        false
    }
    fn send_broadcast(&self, _frame: Bytes, _sent_at_us: u64) {}
    // The shards' cores handle channels themselves when nothing is remote.
    fn subscribe_channel(&self, _: &ChannelName, _: u16, _: u64) {}
    fn unsubscribe_channel(&self, _: &ChannelName) {}
    fn publish(&self, _: &ChannelName, _: Bytes, _: Option<History>, _: u16, _: u64, _: u64) {}
    fn read_stream(&self, _: &StreamKey, _: StreamQuery, _: u16, _: u64) {}
    fn append_inbox(&self, _: &UserId, _: Bytes, _: Retention, _: u16, _: u64) {}
    fn presence_changes(&self, _: &ChannelName, _: Vec<(UserId, i32)>) {}
    fn send_user_op(&self, _: &UserId, _: UserOp, _: u16, _: u64) {}
    fn user_servers(&self, _: &UserId, _: u16, _: u64) {}
    fn idempotency(&self, _: &str, _: Option<Bytes>, _: u16, _: u64) {}
    fn presence_reset(&self, _: &ChannelName, _: Vec<(UserId, u32)>) {}
    fn read_presence(&self, _: &ChannelName, _: u32, _: u16, _: u64) {}
    fn delivery_report(&self, _token: u64, _connections: u32, _parts: u32) {}
    fn is_ready(&self) -> bool {
        true
    }
    fn is_remote(&self) -> bool {
        false
    }
    fn shutdown(&self) {}
}
