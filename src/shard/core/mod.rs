//! The shard's routing core, free of I/O: events in, actions out.
//!
//! [`ShardCore`] owns what a shard knows about routing: its local users and
//! their connections, the directory of the users it owns (which shards hold
//! them), registrations in flight and acks its senders wait for. It never
//! touches a socket, a mailbox or a clock: the I/O side (`super::*`) feeds it
//! events — a connection opened or closed, a session [`Outcome`], a
//! [`ShardMsg`] from another shard or the coordination layer, a delivery
//! count, a tick with the time — and carries out the [`Action`]s it queues,
//! taken one at a time with [`ShardCore::poll_action`].
//!
//! A message to the shard itself is queued locally and handled when the
//! actions before it have been taken, like a message from another shard:
//! the core is never re-entered while its state is borrowed, and the order
//! of a user's route changes is the same whichever shard they come from.
//!
//! # Layout
//! - [`users`]: local users, registration with the owner, welcome.
//! - [`directory`]: the owner's directory of the users it owns.
//! - [`routing`]: client messages in; direct messages (through the
//!   receiver's owner) and broadcasts out.
//! - [`delivery`]: queuing on local connections, delivery counts, acks.
//! - [`pending`]: acks waiting for their counts.
//! - [`channels`]: this shard's channel subscriptions.
//! - [`interest`]: the channel owner's view of which shards want a channel.
//! - [`pubsub`]: subscribe, unsubscribe, publish and deliver through the core.
//! - [`history`]: reading streams: recovery, `history`, `inbox`, welcome position.
//! - [`inbox`]: direct messages kept in the receiver's inbox.
//! - [`streams`]: the streams an owner keeps in memory in embedded mode.
//! - [`presence`]: who is subscribed: counting, the owner's tables, requests.
//! - [`api`]: server API commands, and operations on a user's connections.
//! - [`footprint`]: how much state the core holds (leak checks).

mod action;
mod api;
pub mod channels;
mod delivery;
pub mod directory;
mod footprint;
mod history;
mod inbox;
pub mod interest;
pub mod pending;
pub mod presence;
mod pubsub;
mod routing;
pub mod streams;
mod users;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::coordinator::Retention;
use crate::metrics::ShardMetrics;
use crate::namespaces::Namespaces;
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

use super::{ConnKey, ShardMsg};
use channels::Subscriptions;
use directory::Directory;
use history::Read;
use inbox::StoringMap;
use interest::Interests;
use pending::PendingAcks;
use pubsub::PendingPublish;
use streams::Streams;
use users::WelcomeWait;

pub use action::{Action, CoordinatorCall, Report, Target};
pub use api::{ApiCommand, ApiOutcome, Claimed, UserOp, IDEMPOTENCY_TTL};
pub use footprint::Footprint;
pub use routing::unix_micros;

/// What the core needs to know about its instance, fixed at start.
#[derive(Debug, Clone, Copy)]
pub struct CoreConfig {
    /// This shard's number.
    pub index: u16,
    /// Shards in the instance.
    pub shards: u16,
    /// Other instances exist (Redis): routes are stored remotely and direct
    /// messages also go out through the coordination layer.
    pub remote: bool,
    /// How long a sender waits for a delivery's count, in shard-clock ms.
    pub delivery_timeout_ms: u32,
    /// Subscriptions per connection.
    pub max_channels: usize,
    /// Users' inboxes, when kept (`INBOX_SIZE` > 0).
    pub inbox: Option<Retention>,
    /// Largest recovery (bytes of missed publications) sent in one
    /// `subscribed`; more gives `recovered: false`.
    pub max_recovery_bytes: usize,
}

#[cfg(test)]
impl CoreConfig {
    /// The one shard of an instance, with Redis when `remote` (the test
    /// answers for the coordinator), without inboxes.
    pub fn single(remote: bool) -> Self {
        Self {
            index: 0,
            shards: 1,
            remote,
            delivery_timeout_ms: 5_000,
            max_channels: 8,
            inbox: None,
            max_recovery_bytes: 1 << 20,
        }
    }
}

/// The shard that keeps `user`'s directory entry (and its route in the
/// coordination layer), or a channel's interest: a fixed hash of the name,
/// so every shard agrees.
pub fn owner_of(user: &str, shards: u16) -> u16 {
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(user);
    (hash % u64::from(shards.max(1))) as u16
}

/// A user's connections on this shard.
#[derive(Debug, Default)]
pub struct LocalUser {
    /// Slab indices of the user's connections here. An index is valid as
    /// long as it is listed: the core hears of every close before the slot
    /// can be reused.
    pub conns: SmallVec<[u32; 2]>,
    /// Registration with the owner shard in flight: its token (0: none;
    /// tokens start at 1). A plain u64 keeps the map entry small.
    pub registering: u64,
}

/// One shard's routing state.
pub struct ShardCore {
    /// Fixed facts about the instance.
    cfg: CoreConfig,
    /// This shard's counters.
    metrics: Arc<ShardMetrics>,
    /// Users with a connection on this shard.
    users: HashMap<UserId, LocalUser>,
    /// Registration tokens waiting for `Registered`, with their user.
    registrations: HashMap<u64, UserId>,
    /// Directory of the users this shard owns.
    directory: Directory,
    /// Acks waiting for delivery counts.
    pending: PendingAcks,
    /// This shard's channel subscriptions.
    subs: Subscriptions,
    /// The channels this shard owns that some shard wants.
    interests: Interests,
    /// Publishes waiting for their answer, by token.
    publishes: HashMap<u64, PendingPublish>,
    /// Connections whose welcome waits for their `subs` channels or inbox position.
    welcome_waits: HashMap<u32, WelcomeWait>,
    /// Channel namespaces and their options.
    namespaces: Arc<Namespaces>,
    /// Streams this shard owns (embedded mode only).
    streams: Streams,
    /// Stream reads in flight, by token.
    reads: HashMap<u64, Read>,
    /// Direct messages being kept in their receiver's inbox, by token.
    storing: StoringMap,
    /// This instance's server id (user status in embedded mode).
    server_id: Arc<str>,
    /// Idempotency keys this shard owns (embedded mode): answer (`None`
    /// while in progress), expiry on the shard clock.
    idempotency: HashMap<Arc<str>, (Option<Bytes>, u32)>,
    /// Presence of the channels this shard owns.
    presence: presence::Tables,
    /// Presence requests waiting for their answer, by token.
    presence_asks: HashMap<u64, presence::Asking>,
    /// Next token (registrations, routes, pending acks); never 0.
    next_token: u64,
    /// Actions not taken yet, oldest first.
    actions: VecDeque<Action>,
    /// Messages to this shard itself, handled once `actions` is empty.
    local: VecDeque<ShardMsg>,
    /// The shard clock at the last event (ack deadlines).
    now_ms: u32,
}

impl ShardCore {
    /// A core with no users; `seed` makes its streams' epochs unique to
    /// this process.
    pub fn new(
        cfg: CoreConfig,
        metrics: Arc<ShardMetrics>,
        namespaces: Arc<Namespaces>,
        server_id: Arc<str>,
        seed: u64,
    ) -> Self {
        Self {
            cfg,
            metrics,
            users: HashMap::new(),
            registrations: HashMap::new(),
            directory: Directory::default(),
            pending: PendingAcks::default(),
            subs: Subscriptions::default(),
            interests: Interests::default(),
            publishes: HashMap::new(),
            welcome_waits: HashMap::new(),
            namespaces,
            streams: Streams::new(seed),
            reads: HashMap::new(),
            storing: StoringMap::new(),
            server_id,
            idempotency: HashMap::new(),
            presence: presence::Tables::default(),
            presence_asks: HashMap::new(),
            next_token: 1,
            actions: VecDeque::new(),
            local: VecDeque::new(),
            now_ms: 0,
        }
    }

    /// The next action to take, if any. Messages to this shard itself are
    /// handled here, once every action queued before them was taken.
    pub fn poll_action(&mut self) -> Option<Action> {
        loop {
            if let Some(a) = self.actions.pop_front() {
                return Some(a);
            }
            let msg = self.local.pop_front()?;
            self.on_message(msg);
        }
    }

    /// A message from another shard or from the coordination layer.
    pub fn on_message(&mut self, msg: ShardMsg) {
        match msg {
            ShardMsg::Register { user, shard, token } => self.on_register(user, shard, token),
            ShardMsg::RouteAdded { token } => self.on_route_added(token),
            ShardMsg::Registered { token } => self.on_registered(token),
            ShardMsg::Unregister { user, shard } => self.on_unregister(user, shard),
            ShardMsg::Reregister => {
                self.reregister_routes();
                self.reset_presence();
            }
            ShardMsg::Route {
                user,
                what,
                reply,
                sent_at_us,
            } => self.on_route(user, what, reply, sent_at_us),
            ShardMsg::Deliver {
                user,
                what,
                reply,
                parts,
                sent_at_us,
            } => self.deliver_to_user(&user, what, sent_at_us, reply, parts),
            ShardMsg::UserStatus { user, shard, token } => self.on_user_status(user, shard, token),
            ShardMsg::UserServers { token, servers } => self.on_user_servers(token, servers),
            ShardMsg::Idempotency {
                key,
                answer,
                shard,
                token,
            } => self.on_idempotency(key, answer, shard, token),
            ShardMsg::ApiAnswer { token, outcome } => self.api_reply(token, outcome),
            ShardMsg::Broadcast {
                frame,
                reply,
                parts,
                sent_at_us,
            } => self.deliver_to_all(frame, sent_at_us, None, reply, parts),
            ShardMsg::DeliveryReport {
                token,
                connections,
                parts,
            } => self.on_delivery_report(token, connections, parts),
            ShardMsg::RemoteOutcome { token, outcome } => self.on_remote_outcome(token, outcome),
            ShardMsg::Interest {
                channel,
                shard,
                want,
                token,
            } => self.on_interest(channel, shard, want, token),
            ShardMsg::InterestReady { channel, token } => self.on_interest_ready(channel, token),
            ShardMsg::ChannelSubscribed { token } => self.on_channel_subscribed(token),
            ShardMsg::Publish {
                channel,
                json,
                reply,
                sent_at_us,
            } => self.on_publish(channel, json, reply, sent_at_us),
            ShardMsg::PublicationIn {
                channel,
                frame,
                offset,
                sent_at_us,
            } => self.fan_out(channel, frame, offset, sent_at_us),
            ShardMsg::Publication {
                channel,
                frame,
                offset,
                sent_at_us,
            } => self.on_publication(&channel, frame, offset, sent_at_us),
            ShardMsg::Published { token, outcome } => self.on_published(token, outcome),
            ShardMsg::ReadStream {
                key,
                query,
                shard,
                token,
            } => self.on_read_stream(key, query, shard, token),
            ShardMsg::StreamRead { token, page } => self.on_stream_read(token, page),
            ShardMsg::AppendInbox {
                user,
                json,
                retention,
                shard,
                token,
            } => self.on_append_inbox(user, json, retention, shard, token),
            ShardMsg::InboxAppended { token, at } => self.on_inbox_appended(token, at),
            ShardMsg::Presence {
                channel,
                user,
                delta,
            } => self.on_presence(channel, user, delta),
            ShardMsg::ReadPresence {
                channel,
                cap,
                shard,
                token,
            } => self.on_read_presence(channel, cap, shard, token),
            ShardMsg::PresenceRead { token, page } => self.on_presence_read(token, page),
            ShardMsg::CloseAll(_) => {
                debug_assert!(false, "CloseAll is handled by the I/O side");
            }
        }
    }

    /// The time passed: expire acks whose deadline is over.
    pub fn tick(&mut self, now_ms: u32) {
        self.now_ms = now_ms;
        for (ack, status) in self.pending.expire(now_ms) {
            self.send_ack(&ack, status);
        }
        self.expire_publishes(now_ms);
        self.streams.expire(now_ms);
        self.presence.purge(now_ms);
    }

    /// Channels `conn` is subscribed to (or joining).
    pub fn subscriptions_of(&self, conn: u32) -> Vec<ChannelName> {
        self.subs.of_conn(conn)
    }

    /// Subscriptions on this shard.
    pub fn subscription_count(&self) -> usize {
        self.subs.count()
    }

    /// Users with a connection here (tests, metrics).
    pub fn local_user_count(&self) -> usize {
        self.users.len()
    }

    /// True when `user` has a connection here.
    pub fn has_local_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Acks waiting (tests, metrics).
    pub fn pending_acks(&self) -> usize {
        self.pending.len()
    }

    /// Shards holding `user`, per this shard's directory (meaningful on the
    /// user's owner only).
    pub fn shards_of(&self, user: &str) -> &[u16] {
        self.directory.shards_of(user)
    }

    fn token(&mut self) -> u64 {
        let t = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(1);
        t
    }

    fn owner_of(&self, user: &str) -> u16 {
        owner_of(user, self.cfg.shards)
    }

    /// Sends `msg` to `shard`: into its mailbox, or the local queue for this shard.
    fn send(&mut self, shard: u16, msg: ShardMsg) {
        if shard == self.cfg.index {
            self.local.push_back(msg);
        } else {
            self.actions.push_back(Action::Send { shard, msg });
        }
    }

    fn act(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn coordinator(&mut self, call: CoordinatorCall) {
        self.actions.push_back(Action::Coordinator(call));
    }
}
