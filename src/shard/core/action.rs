//! What the core asks of the I/O side: [`Action`]s, and their parts.

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::close::CloseReason;
use crate::coordinator::{ReplyTo, Retention, StreamKey, StreamQuery, UserOp};

use super::api::ApiOutcome;
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

use super::super::{ConnKey, ShardMsg};

/// Which connections a frame goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One connection (an answer to its own message, an ack).
    Conn(ConnKey),
    /// Connections of one user on this shard, by slab index.
    Indices(SmallVec<[u32; 2]>),
    /// Every open protocol connection of the shard but `except`.
    All {
        /// The sender of a broadcast, which does not get its own.
        except: Option<ConnKey>,
    },
    /// A channel's subscribers on this shard, by slab index (the channel's
    /// own list, shared rather than copied).
    Members(Rc<Vec<u32>>),
}

/// Where a delivery's count goes once the frame is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Who waits for the count.
    pub reply: ReplyTo,
    /// How many parts (shards) count for the same message in all.
    pub parts: u32,
}

/// What the shard asks of the coordination layer (see
/// [`Coordinator`](crate::coordinator::Coordinator)); answers come back as
/// [`ShardMsg`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorCall {
    /// Store the user's route; `RouteAdded { token }` answers to `shard`.
    AddRoute {
        /// The user.
        user: UserId,
        /// The owner shard asking.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// Remove the user's route.
    RemoveRoute {
        /// The user.
        user: UserId,
    },
    /// Deliver to the user's connections on other instances; with a token,
    /// a `RemoteOutcome` answers.
    SendDirect {
        /// The receiver.
        user: UserId,
        /// The framed message.
        frame: Bytes,
        /// The sending shard.
        shard: u16,
        /// Its pending-ack token (0: no answer wanted).
        token: u64,
        /// Unix micros when this instance received it.
        sent_at_us: u64,
    },
    /// Deliver to every connection of every other instance.
    Broadcast {
        /// The framed message.
        frame: Bytes,
        /// Unix micros when this instance received it.
        sent_at_us: u64,
    },
    /// Subscribe the instance to a channel; `ChannelSubscribed { token }`
    /// answers to `shard` (the channel's owner).
    SubscribeChannel {
        /// The channel.
        channel: ChannelName,
        /// The owner shard asking.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// The instance no longer wants the channel's publications.
    UnsubscribeChannel {
        /// The channel.
        channel: ChannelName,
    },
    /// Publish to a channel on every instance (this one included, through
    /// its subscription); with a token, `Published` answers to `shard`.
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The `publication` JSON, without offset.
        json: Bytes,
        /// The publishing shard.
        shard: u16,
        /// Its token (0: no answer wanted).
        token: u64,
        /// Unix micros when this instance received it.
        sent_at_us: u64,
    },
    /// Read a stream; `StreamRead { token }` answers to `shard`.
    ReadStream {
        /// The stream.
        key: StreamKey,
        /// What to read.
        query: StreamQuery,
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// Keep a direct message in its receiver's inbox; `InboxAppended { token }`
    /// answers to `shard`.
    AppendInbox {
        /// The receiver.
        user: UserId,
        /// The message's JSON, without offset.
        json: Bytes,
        /// How the inbox keeps messages.
        retention: Retention,
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// Changes of this instance's presence in a channel.
    PresenceChanges {
        /// The channel.
        channel: ChannelName,
        /// `(user, delta)`.
        changes: Vec<(UserId, i32)>,
    },
    /// This instance's whole presence in a channel.
    PresenceReset {
        /// The channel.
        channel: ChannelName,
        /// `(user, connections)`.
        users: Vec<(UserId, u32)>,
    },
    /// Read a channel's presence; `PresenceRead { token }` answers to `shard`.
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
    /// Carry out an operation on the user's connections on other
    /// instances; with a token, a `RemoteOutcome` answers to `shard`.
    SendUserOp {
        /// The user.
        user: UserId,
        /// The operation.
        op: UserOp,
        /// The asking shard.
        shard: u16,
        /// Its pending ack's token (0: none).
        token: u64,
    },
    /// The live servers holding a user; `UserServers { token }` answers.
    UserServers {
        /// The user.
        user: UserId,
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// Claim or settle an idempotency key cluster-wide; `ApiAnswer
    /// { token }` answers to `shard`.
    Idempotency {
        /// The key.
        key: Arc<str>,
        /// The answer to remember (`None`: claim).
        answer: Option<Bytes>,
        /// The asking shard.
        shard: u16,
        /// Its API token.
        token: u64,
    },
    /// One shard's count for another instance's direct message.
    DeliveryReport {
        /// The coordinator's key.
        token: u64,
        /// Connections that took it here.
        connections: u32,
        /// Shards reporting for it.
        parts: u32,
    },
}

/// One thing for the I/O side to do.
#[derive(Debug)]
pub enum Action {
    /// Put `msg` in another shard's mailbox.
    Send {
        /// The receiving shard (never this one).
        shard: u16,
        /// The message.
        msg: ShardMsg,
    },
    /// Queue `frame` on connections; with `report`, tell the core how many
    /// took it ([`ShardCore::delivered`]).
    Deliver {
        /// The receivers.
        to: Target,
        /// The frame, shared by every receiver.
        frame: Bytes,
        /// Unix micros when the sender's instance received it (0: not a message).
        sent_at_us: u64,
        /// Where the count goes.
        report: Option<Report>,
    },
    /// The connection's route is in place: send `welcome` first, then what
    /// was held behind it.
    Welcome {
        /// Its slab index.
        conn: u32,
        /// The channels its token's `subs` claim subscribed it to.
        subscriptions: Vec<ChannelName>,
        /// Its user's inbox position, when the server keeps inboxes.
        inbox: Option<(u64, Arc<str>)>,
    },
    /// Close a connection.
    Close {
        /// The connection.
        conn: ConnKey,
        /// Why.
        reason: CloseReason,
    },
    /// Ask the coordination layer.
    Coordinator(CoordinatorCall),
    /// Apply an operation to connections of `user` (by slab index), each
    /// through [`ShardCore::apply_user_op`](super::ShardCore::apply_user_op);
    /// with `report`, tell the core how many it changed.
    UserOp {
        /// The connections.
        conns: SmallVec<[u32; 2]>,
        /// Their user.
        user: UserId,
        /// The operation.
        op: UserOp,
        /// Where the count goes.
        report: Option<Report>,
    },
    /// Answer a server API command.
    ApiReply {
        /// The command's token.
        token: u64,
        /// The answer.
        outcome: ApiOutcome,
    },
}
