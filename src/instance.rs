//! State shared by every shard of an instance: read-mostly, set up once.
//!
//! Shards own all per-connection state; what lives here is immutable after
//! start (settings, authenticator, mailboxes) or a handful of atomics touched
//! only on connect, close and shutdown, never per message.
//!
//! Start order (see `server.rs`): the [`MailboxRouter`] first, since the
//! coordinator delivers into it from its own thread as soon as it runs; then
//! the coordinator; then the [`Instance`] holding both.

use std::ops::Index;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::admission::Admission;
use crate::auth::Authenticator;
use crate::coordinator::{
    Appended, Coordinator, Delivery, IdempotencyAnswer, LocalRouter, PresencePage, PublishOutcome,
    RemoteOutcome, ReplyTo, StreamPage, UserOp,
};
use crate::metrics::MetricsRegistry;
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;
use crate::settings::Settings;
use crate::shard::core::{ApiOutcome, Claimed};
use crate::shard::{Mailbox, ShardMsg};

/// The instance-wide context every shard holds an `Arc` of.
pub struct Instance {
    /// Validated settings.
    pub settings: Settings,
    /// Decides who a connecting client is.
    pub auth: Authenticator,
    /// One inbox per shard, indexed by shard number (`mailboxes[i]`); the
    /// same router the coordinator delivers through.
    pub mailboxes: Arc<MailboxRouter>,
    /// Per-shard counters, merged by the metrics thread.
    pub metrics: Arc<MetricsRegistry>,
    /// How this instance reaches the others (embedded or Redis).
    pub coordinator: Arc<dyn Coordinator>,
    /// False once shutdown or drain began: upgrades get 503, `/ready` 503.
    pub accepting: AtomicBool,
    /// Open WebSocket connections on the instance, for `MAX_CONNECTIONS`.
    pub connections: AtomicUsize,
    /// Whether it can take more clients (`/ready`): the connection limit's
    /// hysteresis, shards stalled at the descriptor limit.
    pub admission: Admission,
    /// Random per process start: makes connection ids unique across restarts.
    pub boot_id: u64,
}

impl Instance {
    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.mailboxes.shard_count()
    }

    /// The shard that keeps `user`'s directory entry (see
    /// [`MailboxRouter::owner_of`]).
    pub fn owner_of(&self, user: &str) -> u16 {
        self.mailboxes.owner_of(user)
    }

    /// Pushes a message into a shard's mailbox.
    pub fn send(&self, shard: u16, msg: ShardMsg) {
        self.mailboxes.send(shard, msg);
    }

    /// Reserves a connection slot; false when the instance is full.
    pub fn try_reserve_connection(&self) -> bool {
        let max = self.settings.max_connections;
        let reserved = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match reserved {
            Ok(before) => {
                self.admission.reserved(before + 1);
                true
            }
            Err(_) => false,
        }
    }

    /// Frees a connection slot.
    pub fn release_connection(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// True while upgrades are accepted.
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// `/ready`: accepting, the coordination layer reachable, and room for
    /// more clients: below `MAX_CONNECTIONS` (once reached, until open
    /// connections fall to `READY_RESUME_PERCENT` of it) and no shard stalled
    /// at the file descriptor limit.
    pub fn is_ready(&self) -> bool {
        let open = self.connections.load(Ordering::Acquire);
        self.is_accepting() && self.coordinator.is_ready() && self.admission.has_room(open)
    }
}

/// Every shard's mailbox, and the [`LocalRouter`] the coordination layer
/// calls: it forwards work from other instances into the right shard's
/// mailbox. Created before the coordinator (which needs it) and the shards
/// (which drain it); a message pushed before a shard runs waits for it.
pub struct MailboxRouter {
    /// One per shard, indexed by shard number.
    mailboxes: Box<[Mailbox]>,
}

impl MailboxRouter {
    /// Empty mailboxes for `shards` shards.
    pub fn new(shards: usize) -> Self {
        Self {
            mailboxes: (0..shards).map(|_| Mailbox::new()).collect(),
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.mailboxes.len()
    }

    /// The shard that owns `name` (a user's directory entry, a channel's
    /// interest): see [`crate::shard::owner_of`].
    pub fn owner_of(&self, name: &str) -> u16 {
        crate::shard::owner_of(name, self.mailboxes.len() as u16)
    }

    /// Pushes a message into a shard's mailbox.
    pub fn send(&self, shard: u16, msg: ShardMsg) {
        self.mailboxes[usize::from(shard)].push(msg);
    }
}

impl Index<usize> for MailboxRouter {
    type Output = Mailbox;

    /// Shard `shard`'s mailbox. Panics if it is not a shard index.
    fn index(&self, shard: usize) -> &Mailbox {
        &self.mailboxes[shard]
    }
}

impl LocalRouter for MailboxRouter {
    fn deliver_direct(&self, user: UserId, frame: Bytes, reply: Option<ReplyTo>, sent_at_us: u64) {
        let owner = self.owner_of(&user);
        self.send(
            owner,
            ShardMsg::Route {
                user,
                what: Delivery::Frame(frame),
                reply,
                sent_at_us,
            },
        );
    }

    fn deliver_broadcast(&self, frame: Bytes, sent_at_us: u64) {
        for shard in 0..self.shard_count() {
            let msg = ShardMsg::Broadcast {
                frame: frame.clone(),
                reply: None,
                parts: 0,
                sent_at_us,
            };
            self.send(shard as u16, msg);
        }
    }

    fn remote_outcome(&self, shard: u16, token: u64, outcome: RemoteOutcome) {
        self.send(shard, ShardMsg::RemoteOutcome { token, outcome });
    }

    fn route_added(&self, shard: u16, token: u64) {
        self.send(shard, ShardMsg::RouteAdded { token });
    }

    fn channel_subscribed(&self, shard: u16, token: u64) {
        self.send(shard, ShardMsg::ChannelSubscribed { token });
    }

    fn deliver_publication(
        &self,
        channel: ChannelName,
        frame: Bytes,
        offset: Option<u64>,
        sent_at_us: u64,
    ) {
        let owner = self.owner_of(&channel);
        let msg = ShardMsg::PublicationIn {
            channel,
            frame,
            offset,
            sent_at_us,
        };
        self.send(owner, msg);
    }

    fn published(&self, shard: u16, token: u64, outcome: PublishOutcome) {
        self.send(shard, ShardMsg::Published { token, outcome });
    }

    fn stream_read(&self, shard: u16, token: u64, page: Option<StreamPage>) {
        self.send(shard, ShardMsg::StreamRead { token, page });
    }

    fn inbox_appended(&self, shard: u16, token: u64, at: Option<Appended>) {
        self.send(shard, ShardMsg::InboxAppended { token, at });
    }

    fn presence_read(&self, shard: u16, token: u64, page: Option<PresencePage>) {
        self.send(shard, ShardMsg::PresenceRead { token, page });
    }

    fn deliver_user_op(&self, user: UserId, op: UserOp, reply: Option<ReplyTo>) {
        let owner = self.owner_of(&user);
        let msg = ShardMsg::Route {
            user,
            what: Delivery::Op(op),
            reply,
            sent_at_us: 0,
        };
        self.send(owner, msg);
    }

    fn user_servers(&self, shard: u16, token: u64, servers: Option<Vec<String>>) {
        self.send(shard, ShardMsg::UserServers { token, servers });
    }

    fn idempotency_answer(&self, shard: u16, token: u64, answer: Option<IdempotencyAnswer>) {
        let outcome = match answer {
            None => ApiOutcome::Unavailable,
            Some(IdempotencyAnswer::Settled) => ApiOutcome::Settled,
            Some(IdempotencyAnswer::Fresh) => ApiOutcome::Claim(Claimed::Fresh),
            Some(IdempotencyAnswer::InProgress) => ApiOutcome::Claim(Claimed::InProgress),
            Some(IdempotencyAnswer::Replay(b)) => ApiOutcome::Claim(Claimed::Replay(b)),
        };
        self.send(shard, ShardMsg::ApiAnswer { token, outcome });
    }

    fn reregister_routes(&self) {
        for shard in 0..self.shard_count() {
            self.send(shard as u16, ShardMsg::Reregister);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coordinator may deliver before the shards run (it starts first):
    /// the messages wait in the mailboxes instead of being dropped.
    #[test]
    fn the_router_delivers_before_any_shard_runs() {
        let router = MailboxRouter::new(3);
        router.route_added(2, 7);
        router.reregister_routes();
        let pushed: Vec<u64> = (0..3).map(|i| router[i].pushed()).collect();
        assert_eq!(pushed, [1, 1, 2]);
        let mut out = Vec::new();
        assert!(router[2].drain(&mut out, 8));
        assert_eq!(out.len(), 2, "both wait for shard 2");
        let owner = router.owner_of("alice");
        assert!(usize::from(owner) < router.shard_count());
        assert_eq!(owner, MailboxRouter::new(3).owner_of("alice"), "fixed hash");
    }
}
