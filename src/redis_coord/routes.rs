//! This instance's own routes: which users have a connection here, and the
//! route writes (`SADD`/`SREM` of our id) not yet sent.
//!
//! Writes are coalesced per user: only the latest wish per user goes out in
//! a round, so at most one write per user is in any round and the order of
//! a user's writes across rounds is the order the shards asked for them
//! (rounds run one after another). That also lets a Cluster run the writes
//! of different users concurrently without reordering any user's.
//!
//! While Redis is unreachable the wishes simply accumulate (one entry per
//! user); they go out in the first round after reconnecting, so a user who
//! left during an outage does not keep a stale route if Redis kept its data.

use std::collections::{HashMap, HashSet};

use crate::protocol::UserId;

/// One user's write waiting for the next round.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PendingWrite {
    /// `SADD` (true) or `SREM` (false): the latest wish.
    pub add: bool,
    /// `(shard, token)` registrations to confirm once written.
    pub waiters: Vec<(u16, u64)>,
    /// Queued by the sweep (a stale entry of ours), not by a shard.
    pub swept: bool,
}

/// Local users and pending route writes.
#[derive(Debug, Default)]
pub struct Routes {
    /// Users with at least one connection on this instance, as told by
    /// `add_route`/`remove_route`: what shutdown removes, and what the sweep
    /// must never remove.
    local: HashSet<UserId>,
    /// Writes not yet sent, one per user.
    pending: HashMap<UserId, PendingWrite>,
}

impl Routes {
    /// The user's first connection here opened; `waiter` (if any) is
    /// confirmed once the `SADD` is done.
    pub fn add(&mut self, user: UserId, waiter: Option<(u16, u64)>) {
        self.local.insert(user.clone());
        let entry = self.pending.entry(user).or_default();
        entry.add = true;
        entry.swept = false;
        entry.waiters.extend(waiter);
    }

    /// The user's last connection here closed.
    pub fn remove(&mut self, user: UserId) {
        self.local.remove(&user);
        let entry = self.pending.entry(user).or_default();
        entry.add = false;
        entry.swept = false;
    }

    /// The sweep found our id in `user`'s set: queue its removal unless the
    /// user is local or a write for it is pending (that write decides).
    pub fn remove_stale(&mut self, user: UserId) -> bool {
        if self.local.contains(&user) || self.pending.contains_key(&user) {
            return false;
        }
        let write = PendingWrite {
            add: false,
            waiters: Vec::new(),
            swept: true,
        };
        self.pending.insert(user, write);
        true
    }

    /// A write that may not have been applied (the link failed mid-round):
    /// queue it again unless a newer wish for the user exists. Waiters are
    /// not kept: the caller answered them.
    pub fn requeue(&mut self, user: UserId, add: bool) {
        self.pending.entry(user).or_insert(PendingWrite {
            add,
            waiters: Vec::new(),
            swept: false,
        });
    }

    /// Takes every pending write.
    pub fn drain(&mut self) -> impl Iterator<Item = (UserId, PendingWrite)> + '_ {
        self.pending.drain()
    }

    /// True when writes wait for a round.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// True when `user` has a connection here.
    pub fn is_local(&self, user: &str) -> bool {
        self.local.contains(user)
    }

    /// Every local user (for shutdown).
    pub fn local_users(&self) -> impl Iterator<Item = &UserId> {
        self.local.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn latest_wish_per_user_wins_and_waiters_are_kept() {
        let mut r = Routes::default();
        r.add(user("a"), Some((0, 1)));
        r.remove(user("a"));
        r.add(user("a"), Some((1, 2)));
        let writes: Vec<_> = r.drain().collect();
        assert_eq!(writes.len(), 1);
        assert!(writes[0].1.add);
        assert_eq!(writes[0].1.waiters, vec![(0, 1), (1, 2)]);
        assert!(r.is_local("a"));
    }

    #[test]
    fn sweep_never_removes_a_local_or_pending_user() {
        let mut r = Routes::default();
        r.add(user("a"), None);
        assert!(!r.remove_stale(user("a")));
        r.drain().for_each(drop);
        assert!(!r.remove_stale(user("a")), "still local");
        r.remove(user("b"));
        assert!(!r.remove_stale(user("b")), "its own removal is pending");
        r.drain().for_each(drop);
        assert!(r.remove_stale(user("b")));
        let (_, w) = r.drain().next().unwrap();
        assert!(w.swept && !w.add);
    }

    #[test]
    fn requeue_does_not_override_a_newer_wish() {
        let mut r = Routes::default();
        r.add(user("a"), None);
        r.drain().for_each(drop);
        r.remove(user("a"));
        r.requeue(user("a"), true);
        let (_, w) = r.drain().next().unwrap();
        assert!(!w.add);
        r.requeue(user("a"), false);
        assert!(r.has_pending());
    }
}
