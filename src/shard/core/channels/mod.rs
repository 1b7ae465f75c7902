//! Channel subscriptions on this shard.
//!
//! Each channel with a local subscriber has one slot: its subscribed
//! connections (shared as one `Rc` list, so a publication's delivery takes
//! the list without copying it) and the connections still waiting to join.
//! A shard asks the channel's owner for the channel's publications when its
//! first local connection subscribes (`Interest`), and joins waiting
//! connections once the owner answers (`InterestReady`): from then on every
//! publication the owner forwards reaches this shard. A subscriber costs a
//! slab index in its channel's list and a channel slot id in its
//! connection's list (see `tuning/BENCHMARKS.md` for bytes per subscription).
//!
//! # Layout
//!
//! - this file: the table ([`Subscriptions`]), one channel's state
//!   ([`LocalChannel`]) and what the table's operations answer;
//! - `membership.rs`: joining (asking the owner, waiting for its answer)
//!   and leaving, one connection or all of a closed connection's channels;
//! - `recovery.rs`: subscribers of a channel with history, whose position
//!   is read while live publications wait in a buffer, and who gets a
//!   publication meanwhile.

mod membership;
mod recovery;

pub use recovery::{Recovering, MAX_BUFFERED};

use std::collections::HashMap;
use std::rc::Rc;

use slab::Slab;
use smallvec::SmallVec;

use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::Position;
use crate::protocol::UserId;

use crate::shard::ConnKey;

/// A connection waiting for the channel's publications to reach the shard.
#[derive(Debug, Clone)]
pub struct Joining {
    /// The connection.
    pub conn: ConnKey,
    /// Its `subscribe` id, echoed in `subscribed`.
    pub id: Option<String>,
    /// Where it asked to recover from.
    pub recover: Option<Position<'static>>,
    /// Subscribed by its token's `subs` claim: no `subscribed` answer (the
    /// welcome lists it).
    pub at_connect: bool,
    /// Its user (presence counts users).
    pub user: UserId,
}

/// One channel's local state.
#[derive(Debug)]
pub struct LocalChannel {
    /// The channel.
    pub name: ChannelName,
    /// Its namespace keeps history: a new subscriber first reads the position.
    pub history: bool,
    /// Its namespace has presence: the members' users, by slab index.
    pub presence: Option<HashMap<u32, UserId>>,
    /// Connections subscribed (answered), by slab index.
    pub members: Rc<Vec<u32>>,
    /// Connections waiting for `InterestReady`.
    pub joining: Vec<Joining>,
    /// Subscribers whose position is being read.
    pub recovering: Vec<Recovering>,
    /// Members that already have every publication up to an offset (read
    /// with their recovery; a live copy may still be on its way).
    pub skips: Vec<(u32, u64)>,
    /// Token of this shard's `Interest` in flight or granted.
    pub token: u64,
    /// The owner answered: publications reach this shard.
    pub ready: bool,
}

impl LocalChannel {
    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.joining.is_empty() && self.recovering.is_empty()
    }

    fn has(&self, index: u32) -> bool {
        self.members.contains(&index)
            || self.joining.iter().any(|j| j.conn.index == index)
            || self
                .recovering
                .iter()
                .any(|r| r.joining.conn.index == index)
    }

    /// Removes `index`; returns its user when presence counted it.
    fn forget(&mut self, index: u32) -> Option<UserId> {
        if let Some(pos) = self.members.iter().position(|&m| m == index) {
            Rc::make_mut(&mut self.members).swap_remove(pos);
        }
        self.joining.retain(|j| j.conn.index != index);
        self.recovering.retain(|r| r.joining.conn.index != index);
        self.skips.retain(|(m, _)| *m != index);
        self.presence.as_mut().and_then(|p| p.remove(&index))
    }
}

/// What a channel's namespace asks of its subscriptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kind {
    /// It keeps history.
    pub history: bool,
    /// It has presence.
    pub presence: bool,
}

/// Who gets a publication on this shard.
#[derive(Debug)]
pub enum Targets {
    /// Every member: the channel's own list, shared.
    Shared(Rc<Vec<u32>>),
    /// These members (some already have it).
    Some(Vec<u32>),
}

/// What a subscribe request leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    /// The connection was subscribed already.
    Already,
    /// It may join now (the channel's publications reach the shard).
    Now,
    /// Its channel keeps history: read its position with this token first.
    Read(u64),
    /// It waits; the shard must ask the owner with this token.
    AskOwner(u64),
    /// It waits for an answer already asked for.
    Waiting,
    /// The connection has its maximum of subscriptions.
    TooMany,
}

/// A connection leaving a channel.
#[derive(Debug, PartialEq, Eq)]
pub struct Leaving {
    /// The channel.
    pub channel: ChannelName,
    /// It was the channel's last local subscriber: tell the owner (this
    /// interest token).
    pub emptied: Option<u64>,
    /// Presence counted it for this user: count it out.
    pub counted: Option<UserId>,
}

/// Every channel with a local subscriber.
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// Channel slots.
    slots: Slab<LocalChannel>,
    /// Channel name → slot.
    by_name: HashMap<ChannelName, u32>,
    /// Connection slab index → its channels' slots.
    by_conn: HashMap<u32, SmallVec<[u32; 4]>>,
    /// Subscriptions (members and joining) on the shard.
    count: usize,
}

impl Subscriptions {
    /// Subscriptions on the shard (members and joining).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Channels with a local subscriber.
    pub fn channels(&self) -> usize {
        self.slots.len()
    }

    /// The channel's local state.
    pub fn get(&self, channel: &str) -> Option<&LocalChannel> {
        self.by_name.get(channel).map(|&s| &self.slots[s as usize])
    }

    /// Channels `conn` is subscribed to (or joining).
    pub fn of_conn(&self, index: u32) -> Vec<ChannelName> {
        self.by_conn
            .get(&index)
            .map(|slots| {
                slots
                    .iter()
                    .map(|&s| self.slots[s as usize].name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Subscriptions `conn` holds.
    pub fn conn_count(&self, index: u32) -> usize {
        self.by_conn.get(&index).map_or(0, SmallVec::len)
    }
}

#[cfg(test)]
mod tests;
