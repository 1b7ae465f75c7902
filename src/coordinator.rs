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

use bytes::Bytes;

use crate::protocol::UserId;

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
    fn delivery_report(&self, _token: u64, _connections: u32, _parts: u32) {}
    fn is_ready(&self) -> bool {
        true
    }
    fn is_remote(&self) -> bool {
        false
    }
    fn shutdown(&self) {}
}
