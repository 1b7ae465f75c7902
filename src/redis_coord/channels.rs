//! The instance's channel subscriptions in Redis, free of I/O.
//!
//! The shards' owners say which channels the instance wants; this keeps the
//! wanted set and what the current link has actually subscribed, and hands
//! the worker the difference as one batch per round: a reconnect storm of
//! thousands of channels goes out as a few `SUBSCRIBE` commands (standalone)
//! or one pipelined `SSUBSCRIBE` per channel (Cluster), not one round trip
//! each. A subscribe is answered once the link confirmed it, so a client's
//! `subscribed` means the channel's publications reach this instance.
//! While the link is down subscribes are answered at once (nothing can be
//! published then either) and the whole set is subscribed again on
//! reconnection.
//!
//! It also counts the unsubscribes sent and not yet confirmed, so that an
//! unsubscribe notice Redis sends on its own (a Cluster node that lost a
//! slot, in a failover or a resharding, drops the slot's sharded
//! subscriptions) is told apart from the confirmation of ours.

use std::collections::{BTreeSet, HashMap};

use crate::protocol::channel::ChannelName;

/// One channel's state.
#[derive(Debug, Default)]
struct Sub {
    /// The instance wants its publications.
    wanted: bool,
    /// The current link is subscribed to it.
    active: bool,
    /// Owners to answer once it is active: `(shard, token)`.
    waiters: Vec<(u16, u64)>,
}

/// The batch of changes for one round.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Channels to subscribe.
    pub subscribe: Vec<ChannelName>,
    /// Channels to unsubscribe.
    pub unsubscribe: Vec<ChannelName>,
}

impl Changes {
    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.unsubscribe.is_empty()
    }
}

/// Every channel the instance wants or is subscribed to.
#[derive(Debug, Default)]
pub struct ChannelSubs {
    /// Channel → state; removed when neither wanted nor active.
    subs: HashMap<ChannelName, Sub>,
    /// Channels whose `wanted` and `active` differ.
    dirty: BTreeSet<ChannelName>,
    /// Unsubscribes sent on the current link whose confirmation has not
    /// arrived yet, per channel.
    unconfirmed: HashMap<ChannelName, u32>,
}

impl ChannelSubs {
    /// Channels the instance wants.
    pub fn wanted(&self) -> usize {
        self.subs.values().filter(|s| s.wanted).count()
    }

    /// An owner wants `channel`; returns the answer to give now, if any
    /// (already subscribed, or the link is down).
    pub fn subscribe(
        &mut self,
        channel: ChannelName,
        shard: u16,
        token: u64,
        up: bool,
    ) -> Option<(u16, u64)> {
        let sub = self.subs.entry(channel.clone()).or_default();
        sub.wanted = true;
        if sub.active || !up {
            self.dirty.insert(channel);
            return Some((shard, token));
        }
        sub.waiters.push((shard, token));
        self.dirty.insert(channel);
        None
    }

    /// The instance no longer wants `channel`.
    pub fn unsubscribe(&mut self, channel: ChannelName) {
        if let Some(sub) = self.subs.get_mut(&channel) {
            sub.wanted = false;
            // A waiter here asked for an earlier subscribe its owner gave up.
            sub.waiters.clear();
            self.dirty.insert(channel);
        }
    }

    /// What the next round must change (nothing while the link is down).
    pub fn take_changes(&mut self) -> Changes {
        let mut changes = Changes::default();
        for channel in std::mem::take(&mut self.dirty) {
            let Some(sub) = self.subs.get(&channel) else {
                continue;
            };
            match (sub.wanted, sub.active) {
                (true, false) => changes.subscribe.push(channel),
                (false, true) => {
                    *self.unconfirmed.entry(channel.clone()).or_default() += 1;
                    changes.unsubscribe.push(channel);
                }
                (false, false) => {
                    self.subs.remove(&channel);
                }
                (true, true) => {}
            }
        }
        changes
    }

    /// The link applied `changes`: the answers now due.
    pub fn applied(&mut self, changes: &Changes) -> Vec<(u16, u64)> {
        let mut answers = Vec::new();
        for channel in &changes.subscribe {
            if let Some(sub) = self.subs.get_mut(channel) {
                sub.active = true;
                answers.append(&mut sub.waiters);
                if !sub.wanted {
                    self.dirty.insert(channel.clone());
                }
            }
        }
        for channel in &changes.unsubscribe {
            if let Some(sub) = self.subs.get_mut(channel) {
                sub.active = false;
                if sub.wanted {
                    self.dirty.insert(channel.clone());
                } else {
                    self.subs.remove(channel);
                }
            }
        }
        answers
    }

    /// Redis says `channel` is no longer subscribed: true when that
    /// confirms an unsubscribe of ours, false when Redis dropped the
    /// subscription on its own.
    pub fn unsubscribe_confirmed(&mut self, channel: &ChannelName) -> bool {
        match self.unconfirmed.get_mut(channel) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.unconfirmed.remove(channel);
                true
            }
            None => false,
        }
    }

    /// The link is gone (or its changes failed): nothing is subscribed;
    /// waiters are answered (their channels are subscribed on reconnection).
    pub fn link_lost(&mut self) -> Vec<(u16, u64)> {
        self.unconfirmed.clear();
        let mut answers = Vec::new();
        self.subs.retain(|_, sub| {
            sub.active = false;
            answers.append(&mut sub.waiters);
            sub.wanted
        });
        self.dirty = self.subs.keys().cloned().collect();
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[test]
    fn a_subscribe_is_answered_once_the_link_applied_it() {
        let mut c = ChannelSubs::default();
        assert_eq!(c.subscribe(chan("a"), 0, 7, true), None);
        assert_eq!(c.subscribe(chan("a"), 1, 8, true), None);
        let changes = c.take_changes();
        assert_eq!(changes.subscribe, vec![chan("a")]);
        assert_eq!(c.applied(&changes), vec![(0, 7), (1, 8)]);
        assert_eq!(c.subscribe(chan("a"), 0, 9, true), Some((0, 9)));
        assert!(c.take_changes().is_empty());
    }

    #[test]
    fn a_quick_unsubscribe_and_subscribe_settle_on_the_last_wish() {
        let mut c = ChannelSubs::default();
        c.subscribe(chan("a"), 0, 1, true);
        let first = c.take_changes();
        c.unsubscribe(chan("a"));
        assert_eq!(c.subscribe(chan("a"), 0, 2, true), None);
        assert_eq!(c.applied(&first), vec![(0, 2)]);
        assert!(c.take_changes().is_empty(), "wanted and active agree");
        c.unsubscribe(chan("a"));
        let second = c.take_changes();
        assert_eq!(second.unsubscribe, vec![chan("a")]);
        c.applied(&second);
        assert_eq!(c.wanted(), 0);
        assert!(c.take_changes().is_empty());
    }

    #[test]
    fn only_our_own_unsubscribes_are_confirmations() {
        let mut c = ChannelSubs::default();
        for name in ["a", "b"] {
            c.subscribe(chan(name), 0, 1, true);
        }
        let changes = c.take_changes();
        c.applied(&changes);
        assert!(!c.unsubscribe_confirmed(&chan("a")), "dropped by Redis");
        c.unsubscribe(chan("a"));
        let first = c.take_changes();
        c.subscribe(chan("a"), 0, 2, true);
        c.applied(&first);
        let second = c.take_changes();
        assert_eq!(second.subscribe, vec![chan("a")]);
        c.applied(&second);
        c.unsubscribe(chan("a"));
        let third = c.take_changes();
        assert_eq!(third.unsubscribe, vec![chan("a")]);
        c.applied(&third);
        assert!(c.unsubscribe_confirmed(&chan("a")), "ours");
        assert!(c.unsubscribe_confirmed(&chan("a")), "ours again");
        assert!(!c.unsubscribe_confirmed(&chan("a")), "one more: not ours");
        c.unsubscribe(chan("b"));
        c.take_changes();
        c.link_lost();
        assert!(
            !c.unsubscribe_confirmed(&chan("b")),
            "a new link starts with nothing unconfirmed"
        );
    }

    #[test]
    fn a_lost_link_resubscribes_everything_wanted_in_one_batch() {
        let mut c = ChannelSubs::default();
        for name in ["a", "b", "c"] {
            c.subscribe(chan(name), 0, 1, true);
        }
        let changes = c.take_changes();
        c.applied(&changes);
        c.unsubscribe(chan("c"));
        assert!(c.link_lost().is_empty());
        assert_eq!(
            c.subscribe(chan("d"), 0, 5, false),
            Some((0, 5)),
            "answered while down"
        );
        let again = c.take_changes();
        assert_eq!(again.subscribe, vec![chan("a"), chan("b"), chan("d")]);
        assert!(again.unsubscribe.is_empty());
    }
}
