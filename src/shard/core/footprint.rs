//! How much state a core holds, table by table: what a leak check looks
//! at. A core whose connections all closed, whose messages were all
//! handled and whose calls were all answered, once its deadlines passed,
//! holds nothing but its idempotency keys (purged on the next claim).

use super::ShardCore;

/// Entries in each of a core's tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Users with a connection here.
    pub users: usize,
    /// Registrations waiting for `Registered`.
    pub registrations: usize,
    /// Directory entries and route tokens of the users this shard owns.
    pub directory: usize,
    /// Acks waiting for their counts.
    pub pending_acks: usize,
    /// Subscriptions (members, joining, recovering) and channel slots.
    pub subscriptions: usize,
    /// Channels this shard owns that some shard wants.
    pub interests: usize,
    /// Publishes waiting for their answer.
    pub publishes: usize,
    /// Connections whose welcome waits.
    pub welcome_waits: usize,
    /// Stream reads in flight.
    pub reads: usize,
    /// Direct messages being kept in an inbox.
    pub storing: usize,
    /// Presence tables of owned channels.
    pub presence: usize,
    /// Presence requests in flight.
    pub presence_asks: usize,
    /// Streams kept in memory (embedded mode; they expire).
    pub streams: usize,
    /// Actions not taken and messages to itself not handled.
    pub queued: usize,
}

impl Footprint {
    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        *self == Footprint::default()
    }
}

impl ShardCore {
    /// Entries in each table (tests and fuzzing: see [`Footprint`]);
    /// idempotency keys are left out.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            users: self.users.len(),
            registrations: self.registrations.len(),
            directory: self.directory.len(),
            pending_acks: self.pending.len(),
            subscriptions: self.subs.count() + self.subs.channels(),
            interests: self.interests.len(),
            publishes: self.publishes.len(),
            welcome_waits: self.welcome_waits.len(),
            reads: self.reads.len(),
            storing: self.storing.len(),
            presence: self.presence.len(),
            presence_asks: self.presence_asks.len(),
            streams: self.streams.len(),
            queued: self.actions.len() + self.local.len(),
        }
    }
}
