//! The typed messages shards exchange (Seastar style: no shared mutable state).

use bytes::Bytes;

use crate::coordinator::{
    Appended, Delivery, PresencePage, PublishOutcome, RemoteOutcome, ReplyTo, Retention, StreamKey,
    StreamPage, StreamQuery,
};
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;
use crate::shard::core::ApiOutcome;

/// Why the server is closing every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAll {
    /// Graceful shutdown: close 1001.
    Shutdown,
    /// Drain: close 1012 (reconnect elsewhere), paced at this many per second per shard.
    Drain {
        /// Closes per second on this shard.
        per_sec: u32,
    },
}

/// A message for one shard.
#[derive(Debug)]
pub enum ShardMsg {
    /// To the user's owner shard: `shard` now holds a connection of `user`
    /// (its first). The owner answers `Registered` to `shard` once the route
    /// is in place everywhere (locally and, for the user's first connection on
    /// this instance, in the coordination layer).
    Register {
        /// The user.
        user: UserId,
        /// The shard holding the connection.
        shard: u16,
        /// The registering shard's key, echoed in `Registered`.
        token: u64,
    },
    /// The route asked with `token` is in place: the connection may be welcomed.
    Registered {
        /// The token given in `Register`.
        token: u64,
    },
    /// To the owner shard: the coordination layer stored the route it asked
    /// for with this token.
    RouteAdded {
        /// The owner's token given to `Coordinator::add_route`.
        token: u64,
    },
    /// To the owner shard: `shard` holds no connection of `user` any more.
    Unregister {
        /// The user.
        user: UserId,
        /// The shard whose last connection of the user closed.
        shard: u16,
    },
    /// To the owner shard: deliver to every local connection of `user`.
    Route {
        /// The receiver.
        user: UserId,
        /// The framed message (encoded once and shared), or an operation.
        what: Delivery,
        /// Who counts the receiving connections.
        reply: Option<ReplyTo>,
        /// Unix micros when the sender's instance received it (delivery latency).
        sent_at_us: u64,
    },
    /// From the owner shard to a shard holding connections of `user`.
    Deliver {
        /// The receiver.
        user: UserId,
        /// The framed message, or an operation.
        what: Delivery,
        /// Who counts the receiving connections.
        reply: Option<ReplyTo>,
        /// How many shards answer `reply` for this message in all.
        parts: u32,
        /// Unix micros when the sender's instance received it.
        sent_at_us: u64,
    },
    /// Deliver to every connection of this shard.
    Broadcast {
        /// The framed message.
        frame: Bytes,
        /// The sender's shard and pending-ack key, when the sender wants an ack.
        reply: Option<ReplyTo>,
        /// How many shards answer `reply` in all.
        parts: u32,
        /// Unix micros when the sender's instance received it.
        sent_at_us: u64,
    },
    /// Part of a delivery's count, for a pending ack on this shard.
    DeliveryReport {
        /// The pending ack.
        token: u64,
        /// Connections of this part that accepted the message.
        connections: u32,
        /// How many parts the message has in all.
        parts: u32,
    },
    /// The coordination layer's answer for the remote part of a direct message.
    RemoteOutcome {
        /// The pending ack.
        token: u64,
        /// What the other instances said.
        outcome: RemoteOutcome,
    },
    /// Register every local user's route again (the coordination layer is back).
    Reregister,
    /// To the channel's owner shard: `shard` wants the channel's
    /// publications (its first local subscriber) or no longer does (its last
    /// left). The owner answers a `want` with `InterestReady`.
    Interest {
        /// The channel.
        channel: ChannelName,
        /// The shard.
        shard: u16,
        /// True when it wants them, false when it stops.
        want: bool,
        /// The shard's token for this interest, echoed in `InterestReady`.
        token: u64,
    },
    /// From the channel's owner: the channel's publications reach the shard
    /// from now on (the instance is subscribed in the coordination layer).
    InterestReady {
        /// The channel.
        channel: ChannelName,
        /// The token of the `Interest` it answers.
        token: u64,
    },
    /// To the channel's owner shard: the coordination layer subscribed the
    /// instance to the channel, as asked with this token.
    ChannelSubscribed {
        /// The owner's token given to the coordinator.
        token: u64,
    },
    /// To the channel's owner shard (embedded mode): number and fan out a
    /// publication, then answer the publisher.
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The `publication` JSON, without offset.
        json: Bytes,
        /// The publisher's shard and token, when it wants an ack.
        reply: Option<(u16, u64)>,
        /// Unix micros when the publisher's instance received it.
        sent_at_us: u64,
    },
    /// To the channel's owner shard, from the coordination layer: a
    /// publication to forward to every interested shard, in arrival order.
    PublicationIn {
        /// The channel.
        channel: ChannelName,
        /// The framed publication, shared by every receiver.
        frame: Bytes,
        /// Its offset when the channel keeps history.
        offset: Option<u64>,
        /// Unix micros when the publisher's instance received it.
        sent_at_us: u64,
    },
    /// From the channel's owner: deliver to the local subscribers.
    Publication {
        /// The channel.
        channel: ChannelName,
        /// The framed publication, shared by every receiver.
        frame: Bytes,
        /// Its offset when the channel keeps history.
        offset: Option<u64>,
        /// Unix micros when the publisher's instance received it.
        sent_at_us: u64,
    },
    /// To a stream's owner shard (embedded mode): read it, answer
    /// `StreamRead` to `shard`.
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
    /// The answer to a stream read (`None`: it failed).
    StreamRead {
        /// The read's token.
        token: u64,
        /// What it found.
        page: Option<StreamPage>,
    },
    /// To a user's owner shard (embedded mode): keep a direct message in the
    /// user's inbox, answer `InboxAppended` to `shard`.
    AppendInbox {
        /// The receiver.
        user: UserId,
        /// The message's JSON without offset.
        json: Bytes,
        /// How the inbox keeps messages.
        retention: Retention,
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// Where a direct message landed in its receiver's inbox (`None`: not kept).
    InboxAppended {
        /// The append's token.
        token: u64,
        /// Its place.
        at: Option<Appended>,
    },
    /// To a channel's owner shard: a member was counted in or out of the
    /// channel's presence.
    Presence {
        /// The channel.
        channel: ChannelName,
        /// The member's user.
        user: UserId,
        /// +1 or -1.
        delta: i32,
    },
    /// To a channel's owner shard (embedded mode): read its presence,
    /// answer `PresenceRead` to `shard`.
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
    /// The answer to a presence read (`None`: it failed).
    PresenceRead {
        /// The read's token.
        token: u64,
        /// What it found.
        page: Option<PresencePage>,
    },
    /// To a user's owner shard (embedded mode): is the user connected here?
    /// Answer `UserServers` to `shard`.
    UserStatus {
        /// The user.
        user: UserId,
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// The live servers holding a user (`None`: it could not be read).
    UserServers {
        /// The request's token.
        token: u64,
        /// Their ids.
        servers: Option<Vec<String>>,
    },
    /// To an idempotency key's owner shard (embedded mode): claim or settle
    /// it, answer `ApiAnswer` to `shard`.
    Idempotency {
        /// The key.
        key: std::sync::Arc<str>,
        /// The answer to remember (`None`: claim).
        answer: Option<Bytes>,
        /// The asking shard.
        shard: u16,
        /// Its API token.
        token: u64,
    },
    /// An answer for a server API call of this shard.
    ApiAnswer {
        /// The call's token.
        token: u64,
        /// The answer.
        outcome: ApiOutcome,
    },
    /// The outcome of a publish, for the publisher's pending ack.
    Published {
        /// The publisher's token.
        token: u64,
        /// What happened to it.
        outcome: PublishOutcome,
    },
    /// Close every connection.
    CloseAll(CloseAll),
}
