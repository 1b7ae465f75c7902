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

use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::Position;

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
}

/// One channel's local state.
#[derive(Debug)]
pub struct LocalChannel {
    /// The channel.
    pub name: ChannelName,
    /// Connections subscribed (answered), by slab index.
    pub members: Rc<Vec<u32>>,
    /// Connections waiting for `InterestReady`.
    pub joining: Vec<Joining>,
    /// Token of this shard's `Interest` in flight or granted.
    pub token: u64,
    /// The owner answered: publications reach this shard.
    pub ready: bool,
}

impl LocalChannel {
    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.joining.is_empty()
    }

    fn has(&self, index: u32) -> bool {
        self.members.contains(&index) || self.joining.iter().any(|j| j.conn.index == index)
    }
}

/// What a subscribe request leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    /// The connection was subscribed already.
    Already,
    /// It may join now (the channel's publications reach the shard).
    Now,
    /// It waits; the shard must ask the owner with this token.
    AskOwner(u64),
    /// It waits for an answer already asked for.
    Waiting,
    /// The connection has its maximum of subscriptions.
    TooMany,
}

/// What an unsubscribe left behind.
#[derive(Debug, PartialEq, Eq)]
pub enum Left {
    /// The connection was not subscribed.
    NotSubscribed,
    /// Other local subscribers remain.
    Others,
    /// It was the last local subscriber: tell the owner (this interest token).
    Emptied(u64),
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
    /// is used if the shard must ask the owner. On [`Joined::Now`] the
    /// connection is a member already.
    pub fn join(
        &mut self,
        channel: &ChannelName,
        joining: &Joining,
        max: usize,
        token: u64,
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
                    members: Rc::new(Vec::new()),
                    joining: Vec::new(),
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
        if ch.ready {
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

    /// Removes `index` from `channel`.
    pub fn leave(&mut self, channel: &str, index: u32) -> Left {
        let Some(&slot) = self.by_name.get(channel) else {
            return Left::NotSubscribed;
        };
        let ch = &mut self.slots[slot as usize];
        if !ch.has(index) {
            return Left::NotSubscribed;
        }
        if let Some(pos) = ch.members.iter().position(|&m| m == index) {
            Rc::make_mut(&mut ch.members).swap_remove(pos);
        }
        ch.joining.retain(|j| j.conn.index != index);
        self.count -= 1;
        if let Some(list) = self.by_conn.get_mut(&index) {
            list.retain(|s| *s != slot);
            if list.is_empty() {
                self.by_conn.remove(&index);
            }
        }
        match self.drop_if_empty(slot) {
            Some(token) => Left::Emptied(token),
            None => Left::Others,
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

    /// A connection closed: removes it everywhere. Returns the channels
    /// left without a local subscriber (tell their owners), with tokens.
    pub fn remove_conn(&mut self, index: u32) -> Vec<(ChannelName, u64)> {
        let Some(slots) = self.by_conn.remove(&index) else {
            return Vec::new();
        };
        let mut emptied = Vec::new();
        for slot in slots {
            let ch = &mut self.slots[slot as usize];
            if let Some(pos) = ch.members.iter().position(|&m| m == index) {
                Rc::make_mut(&mut ch.members).swap_remove(pos);
            }
            ch.joining.retain(|j| j.conn.index != index);
            self.count -= 1;
            let name = ch.name.clone();
            if let Some(token) = self.drop_if_empty(slot) {
                emptied.push((name, token));
            }
        }
        emptied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joining(index: u32) -> Joining {
        Joining {
            conn: ConnKey {
                index,
                generation: 1,
            },
            id: None,
            recover: None,
            at_connect: false,
        }
    }

    fn chan(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[test]
    fn the_first_subscriber_asks_the_owner_and_later_ones_wait_or_join() {
        let mut s = Subscriptions::default();
        let c = chan("room");
        assert_eq!(s.join(&c, &joining(1), 8, 7), Joined::AskOwner(7));
        assert_eq!(s.join(&c, &joining(2), 8, 8), Joined::Waiting);
        assert_eq!(s.join(&c, &joining(1), 8, 9), Joined::Already);
        assert!(
            s.ready("room", 99).is_empty(),
            "a stale answer joins nobody"
        );
        let joined = s.ready("room", 7);
        assert_eq!(joined.len(), 2);
        s.admit("room", &joined);
        assert_eq!(*s.get("room").unwrap().members, vec![1, 2]);
        assert_eq!(s.join(&c, &joining(3), 8, 10), Joined::Now);
        assert_eq!(*s.get("room").unwrap().members, vec![1, 2, 3]);
        assert_eq!(s.count(), 3);
    }

    #[test]
    fn the_last_subscriber_leaving_frees_the_channel() {
        let mut s = Subscriptions::default();
        let c = chan("room");
        s.join(&c, &joining(1), 8, 7);
        s.join(&c, &joining(2), 8, 7);
        assert_eq!(s.leave("room", 1), Left::Others);
        assert_eq!(
            s.leave("room", 1),
            Left::NotSubscribed,
            "not subscribed any more"
        );
        assert_eq!(s.leave("room", 2), Left::Emptied(7));
        assert!(s.get("room").is_none());
        assert_eq!((s.count(), s.channels()), (0, 0));
    }

    #[test]
    fn a_closing_connection_leaves_every_channel_and_the_limit_holds() {
        let mut s = Subscriptions::default();
        for name in ["a", "b", "c"] {
            assert_eq!(s.join(&chan(name), &joining(1), 3, 1), Joined::AskOwner(1));
        }
        assert_eq!(s.join(&chan("d"), &joining(1), 3, 1), Joined::TooMany);
        s.join(&chan("a"), &joining(2), 3, 1);
        let mut emptied: Vec<_> = s.remove_conn(1).into_iter().map(|(c, _)| c).collect();
        emptied.sort();
        assert_eq!(emptied, vec![chan("b"), chan("c")]);
        assert_eq!(s.count(), 1);
        assert!(s.of_conn(1).is_empty());
        assert_eq!(s.of_conn(2), vec![chan("a")]);
    }
}
