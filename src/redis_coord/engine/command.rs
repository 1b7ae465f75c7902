//! What shards ask the coordinator, as queued for the I/O thread.

use bytes::Bytes;

use crate::coordinator::{History, Retention, StreamKey, StreamQuery, UserOp};
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

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
pub(super) struct ChannelPublish {
    /// The channel.
    pub channel: ChannelName,
    /// The `publication` JSON without offset.
    pub json: Bytes,
    /// The publishing shard.
    pub shard: u16,
    /// Its token (0: no answer).
    pub token: u64,
    /// When the publisher's instance received it.
    pub sent_at_us: u64,
}
