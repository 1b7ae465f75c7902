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

/// Gives back the spare capacity of a table that a burst grew and that
/// holds little now (a hash map or queue keeps its largest size otherwise:
/// the peak of a connect storm, per shard, for good).
pub(super) trait Shrink {
    fn entries(&self) -> usize;
    fn room(&self) -> usize;
    fn shrink(&mut self);

    /// Shrinks when at most a quarter of the room is used (and the room is
    /// worth it), so a table in steady use is not reallocated every sweep.
    fn shrink_if_sparse(&mut self) {
        if self.room() > 64 && self.room() > 4 * self.entries() {
            self.shrink();
        }
    }
}

impl<K: Eq + std::hash::Hash, V> Shrink for std::collections::HashMap<K, V> {
    fn entries(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink(&mut self) {
        self.shrink_to_fit();
    }
}

impl<T> Shrink for std::collections::VecDeque<T> {
    fn entries(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink(&mut self) {
        self.shrink_to_fit();
    }
}

impl ShardCore {
    /// After a burst (from the shard's heap reclaim): the transient tables
    /// give back what the burst grew, before the heap is collected.
    pub fn shrink_after_burst(&mut self) {
        self.actions.shrink_if_sparse();
        self.local.shrink_if_sparse();
        self.registrations.shrink_if_sparse();
        self.welcome_waits.shrink_if_sparse();
        self.publishes.shrink_if_sparse();
        self.reads.shrink_if_sparse();
        self.storing.shrink_if_sparse();
        self.presence_asks.shrink_if_sparse();
        self.pending.shrink_if_sparse();
    }
}
