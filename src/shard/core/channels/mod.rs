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

use std::collections::HashMap;
use std::rc::Rc;

use slab::Slab;
use smallvec::SmallVec;

use bytes::Bytes;

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

/// A subscriber of a channel with history whose position (and, asked to
/// recover, missed publications) is being read: live publications wait in
/// its buffer until the read returns, so none is lost or sent twice.
#[derive(Debug)]
pub struct Recovering {
    /// The subscribe request.
    pub joining: Joining,
    /// The read's token.
    pub token: u64,
    /// Live publications meanwhile: `(offset, frame)`, in channel order.
    pub buffer: Vec<(u64, Bytes)>,
    /// More arrived than [`MAX_BUFFERED`]: the recovery cannot be complete.
    pub overflowed: bool,
}

/// Most live publications buffered per recovering subscriber.
pub const MAX_BUFFERED: usize = 1_000;

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

    /// Adds `joining` to `channel` (at most `max` per connection); `token`
    /// is used if the shard must ask the owner, or read the position of a
    /// channel with `history`. On [`Joined::Now`] the connection is a member
    /// already.
    pub fn join(
        &mut self,
        channel: &ChannelName,
        joining: &Joining,
        max: usize,
        token: u64,
        kind: Kind,
    ) -> Joined {
        let index = joining.conn.index;
        let slot = match self.by_name.get(channel) {
            Some(&slot) => slot,
            None => {
                if self.conn_count(index) >= max {
                    return Joined::TooMany;
                }
                let slot = self.slots.insert(LocalChannel {
                    name: channel.clone(),
                    history: kind.history,
                    presence: kind.presence.then(HashMap::new),
                    members: Rc::new(Vec::new()),
                    joining: Vec::new(),
                    recovering: Vec::new(),
                    skips: Vec::new(),
                    token,
                    ready: false,
                }) as u32;
                self.by_name.insert(channel.clone(), slot);
                self.push(slot, joining.clone());
                return Joined::AskOwner(token);
            }
        };
        let ch = &self.slots[slot as usize];
        if ch.has(index) {
            return Joined::Already;
        }
        if self.conn_count(index) >= max {
            return Joined::TooMany;
        }
        if ch.ready && ch.history {
            self.by_conn.entry(index).or_default().push(slot);
            self.count += 1;
            self.slots[slot as usize].recovering.push(Recovering {
                joining: joining.clone(),
                token,
                buffer: Vec::new(),
                overflowed: false,
            });
            Joined::Read(token)
        } else if ch.ready {
            self.by_conn.entry(index).or_default().push(slot);
            Rc::make_mut(&mut self.slots[slot as usize].members).push(index);
            self.count += 1;
            Joined::Now
        } else {
            self.push(slot, joining.clone());
            Joined::Waiting
        }
    }

    fn push(&mut self, slot: u32, joining: Joining) {
        self.by_conn
            .entry(joining.conn.index)
            .or_default()
            .push(slot);
        self.slots[slot as usize].joining.push(joining);
        self.count += 1;
    }

    /// The owner answered `token` for `channel`: the connections that join
    /// now (members from here on). Empty for a stale answer.
    pub fn ready(&mut self, channel: &str, token: u64) -> Vec<Joining> {
        let Some(&slot) = self.by_name.get(channel) else {
            return Vec::new();
        };
        let ch = &mut self.slots[slot as usize];
        if ch.token != token {
            return Vec::new();
        }
        ch.ready = true;
        std::mem::take(&mut ch.joining)
    }

    /// The connections of `joined` read their position first (with these
    /// tokens): from joining to recovering.
    pub fn begin_reads(&mut self, channel: &str, joined: Vec<(Joining, u64)>) {
        if let Some(&slot) = self.by_name.get(channel) {
            let ch = &mut self.slots[slot as usize];
            for (joining, token) in joined {
                ch.recovering.push(Recovering {
                    joining,
                    token,
                    buffer: Vec::new(),
                    overflowed: false,
                });
            }
        }
    }

    /// A live publication: every recovering subscriber buffers it. Returns
    /// the members to deliver it to: the shared list, or (while a recovered
    /// member may already have it) the list without those.
    pub fn publication(
        &mut self,
        channel: &str,
        offset: Option<u64>,
        frame: &Bytes,
    ) -> Option<Targets> {
        let &slot = self.by_name.get(channel)?;
        let ch = &mut self.slots[slot as usize];
        if let Some(offset) = offset {
            for r in &mut ch.recovering {
                if r.buffer.len() >= MAX_BUFFERED {
                    r.overflowed = true;
                    r.buffer.clear();
                } else if !r.overflowed {
                    r.buffer.push((offset, frame.clone()));
                }
            }
        }
        if ch.skips.is_empty() || offset.is_none() {
            return Some(Targets::Shared(ch.members.clone()));
        }
        let offset = offset.unwrap_or(0);
        let skipped: Vec<u32> = ch
            .skips
            .iter()
            .filter(|(_, upto)| offset <= *upto)
            .map(|(m, _)| *m)
            .collect();
        ch.skips.retain(|(_, upto)| offset <= *upto);
        let targets = ch
            .members
            .iter()
            .copied()
            .filter(|m| !skipped.contains(m))
            .collect();
        Some(Targets::Some(targets))
    }

    /// The read with `token` returned: the recovering subscriber leaves
    /// recovery and becomes a member that skips publications up to `upto`.
    pub fn finish_read(
        &mut self,
        channel: &str,
        token: u64,
        upto: Option<u64>,
    ) -> Option<Recovering> {
        let &slot = self.by_name.get(channel)?;
        let ch = &mut self.slots[slot as usize];
        let pos = ch.recovering.iter().position(|r| r.token == token)?;
        let r = ch.recovering.swap_remove(pos);
        let index = r.joining.conn.index;
        Rc::make_mut(&mut ch.members).push(index);
        if let Some(upto) = upto {
            ch.skips.push((index, upto));
        }
        Some(r)
    }

    /// Moves the connections of `joined` from joining to members (after
    /// their answers were queued).
    pub fn admit(&mut self, channel: &str, joined: &[Joining]) {
        if let Some(&slot) = self.by_name.get(channel) {
            let ch = &mut self.slots[slot as usize];
            ch.joining
                .retain(|j| !joined.iter().any(|k| k.conn == j.conn));
            let members = Rc::make_mut(&mut ch.members);
            members.extend(joined.iter().map(|j| j.conn.index));
        }
    }

    /// Removes `index` from `channel`; `None` when it was not subscribed.
    pub fn leave(&mut self, channel: &str, index: u32) -> Option<Leaving> {
        let &slot = self.by_name.get(channel)?;
        let ch = &mut self.slots[slot as usize];
        if !ch.has(index) {
            return None;
        }
        let counted = ch.forget(index);
        let channel = ch.name.clone();
        self.count -= 1;
        if let Some(list) = self.by_conn.get_mut(&index) {
            list.retain(|s| *s != slot);
            if list.is_empty() {
                self.by_conn.remove(&index);
            }
        }
        let emptied = self.drop_if_empty(slot);
        Some(Leaving {
            channel,
            emptied,
            counted,
        })
    }

    /// Presence counts member `index` of `channel` for `user`: true when the
    /// channel has presence and it was not counted yet.
    pub fn count_in(&mut self, channel: &str, index: u32, user: &UserId) -> bool {
        let Some(&slot) = self.by_name.get(channel) else {
            return false;
        };
        match self.slots[slot as usize].presence.as_mut() {
            Some(p) => p.insert(index, user.clone()).is_none(),
            None => false,
        }
    }

    fn drop_if_empty(&mut self, slot: u32) -> Option<u64> {
        if !self.slots[slot as usize].is_empty() {
            return None;
        }
        let ch = self.slots.remove(slot as usize);
        self.by_name.remove(&ch.name);
        Some(ch.token)
    }

    /// A connection closed: removes it from every channel.
    pub fn remove_conn(&mut self, index: u32) -> Vec<Leaving> {
        let Some(slots) = self.by_conn.remove(&index) else {
            return Vec::new();
        };
        let mut left = Vec::new();
        for slot in slots {
            let ch = &mut self.slots[slot as usize];
            let counted = ch.forget(index);
            let channel = ch.name.clone();
            self.count -= 1;
            let emptied = self.drop_if_empty(slot);
            left.push(Leaving {
                channel,
                emptied,
                counted,
            });
        }
        left
    }
}

#[cfg(test)]
mod tests;
