//! Joining and leaving: a connection joins at once when the channel's
//! publications already reach the shard, else waits for the owner's answer
//! to the shard's `Interest` (asked by the first local subscriber); the last
//! one to leave tells the caller to withdraw that interest.

use std::collections::HashMap;
use std::rc::Rc;

use super::{Joined, Joining, Kind, Leaving, LocalChannel, Recovering, Subscriptions};
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

impl Subscriptions {
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
            let r = Recovering::new(joining.clone(), token);
            self.slots[slot as usize].recovering.push(r);
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

    /// The `subscribe` of connection `index` to `channel` that is still in
    /// progress (waiting for the owner or for its position), not yet
    /// answered: `Some(its id)`. `None` when there is none, or it came from
    /// the token's `subs` claim (the welcome answers those).
    pub fn unanswered(&self, channel: &str, index: u32) -> Option<Option<String>> {
        let &slot = self.by_name.get(channel)?;
        let ch = &self.slots[slot as usize];
        let waiting = ch.joining.iter();
        let reading = ch.recovering.iter().map(|r| &r.joining);
        waiting
            .chain(reading)
            .find(|j| j.conn.index == index && !j.at_connect)
            .map(|j| j.id.clone())
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
