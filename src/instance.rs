//! State shared by every shard of an instance: read-mostly, set up once.
//!
//! Shards own all per-connection state; what lives here is immutable after
//! start (settings, authenticator, mailboxes) or a handful of atomics touched
//! only on connect, close and shutdown, never per message.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::auth::Authenticator;
use crate::coordinator::{Coordinator, LocalRouter, PublishOutcome, RemoteOutcome, ReplyTo};
use crate::metrics::MetricsRegistry;
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;
use crate::settings::Settings;
use crate::shard::{Mailbox, ShardMsg};

/// The instance-wide context every shard holds an `Arc` of.
pub struct Instance {
    /// Validated settings.
    pub settings: Settings,
    /// Decides who a connecting client is.
    pub auth: Authenticator,
    /// One inbox per shard, indexed by shard number.
    pub mailboxes: Vec<Mailbox>,
    /// Per-shard counters, merged by the metrics thread.
    pub metrics: Arc<MetricsRegistry>,
    /// How this instance reaches the others (embedded or Redis).
    pub coordinator: Arc<dyn Coordinator>,
    /// False once shutdown or drain began: upgrades get 503, `/ready` 503.
    pub accepting: AtomicBool,
    /// Open WebSocket connections on the instance, for `MAX_CONNECTIONS`.
    pub connections: AtomicUsize,
    /// Random per process start: makes connection ids unique across restarts.
    pub boot_id: u64,
}

impl Instance {
    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.mailboxes.len()
    }

    /// The shard that keeps `user`'s directory entry (see [`crate::shard::owner_of`]).
    pub fn owner_of(&self, user: &str) -> u16 {
        crate::shard::owner_of(user, self.mailboxes.len() as u16)
    }

    /// Pushes a message into a shard's mailbox.
    pub fn send(&self, shard: u16, msg: ShardMsg) {
        self.mailboxes[usize::from(shard)].push(msg);
    }

    /// Reserves a connection slot; false when the instance is full.
    pub fn try_reserve_connection(&self) -> bool {
        let max = self.settings.max_connections;
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Frees a connection slot.
    pub fn release_connection(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// True while upgrades are accepted.
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// `/ready`: accepting and the coordination layer reachable.
    pub fn is_ready(&self) -> bool {
        self.is_accepting() && self.coordinator.is_ready()
    }
}

/// The [`LocalRouter`] the coordination layer calls: forwards work from other
/// instances into the right shard's mailbox.
pub struct MailboxRouter {
    /// The instance; set once the coordinator exists (it needs this router first).
    pub instance: std::sync::OnceLock<Arc<Instance>>,
}

impl MailboxRouter {
    fn instance(&self) -> Option<&Arc<Instance>> {
        self.instance.get()
    }
}

impl LocalRouter for MailboxRouter {
    fn deliver_direct(&self, user: UserId, frame: Bytes, reply: Option<ReplyTo>, sent_at_us: u64) {
        if let Some(s) = self.instance() {
            let owner = s.owner_of(&user);
            s.send(
                owner,
                ShardMsg::Route {
                    user,
                    frame,
                    reply,
                    sent_at_us,
                },
            );
        }
    }

    fn deliver_broadcast(&self, frame: Bytes, sent_at_us: u64) {
        if let Some(s) = self.instance() {
            for shard in 0..s.shard_count() {
                let msg = ShardMsg::Broadcast {
                    frame: frame.clone(),
                    reply: None,
                    parts: 0,
                    sent_at_us,
                };
                s.send(shard as u16, msg);
            }
        }
    }

    fn remote_outcome(&self, shard: u16, token: u64, outcome: RemoteOutcome) {
        if let Some(s) = self.instance() {
            s.send(shard, ShardMsg::RemoteOutcome { token, outcome });
        }
    }

    fn route_added(&self, shard: u16, token: u64) {
        if let Some(s) = self.instance() {
            s.send(shard, ShardMsg::RouteAdded { token });
        }
    }

    fn channel_subscribed(&self, shard: u16, token: u64) {
        if let Some(s) = self.instance() {
            s.send(shard, ShardMsg::ChannelSubscribed { token });
        }
    }

    fn deliver_publication(
        &self,
        channel: ChannelName,
        frame: Bytes,
        offset: Option<u64>,
        sent_at_us: u64,
    ) {
        if let Some(s) = self.instance() {
            let owner = s.owner_of(&channel);
            let msg = ShardMsg::PublicationIn {
                channel,
                frame,
                offset,
                sent_at_us,
            };
            s.send(owner, msg);
        }
    }

    fn published(&self, shard: u16, token: u64, outcome: PublishOutcome) {
        if let Some(s) = self.instance() {
            s.send(shard, ShardMsg::Published { token, outcome });
        }
    }

    fn reregister_routes(&self) {
        if let Some(s) = self.instance() {
            for shard in 0..s.shard_count() {
                s.send(shard as u16, ShardMsg::Reregister);
            }
        }
    }
}
