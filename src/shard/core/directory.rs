//! The owner shard's directory: which shards hold connections of a user.
//!
//! Every user has one owner shard (`super::owner_of`). All route changes for
//! that user pass through it in mailbox order, and it alone talks to the
//! coordination layer about the user's route. That is what rules out the
//! original server's races: a user's route is added when the count of shards
//! holding it goes 0 → 1 and removed when it goes 1 → 0, by one thread, in
//! order, so one connection's close can never remove the route of another.

use std::collections::HashMap;

use smallvec::SmallVec;

use crate::protocol::UserId;

/// A registration waiting for the coordination layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    /// The shard that asked.
    pub shard: u16,
    /// Its token.
    pub token: u64,
}

/// One user's entry.
#[derive(Debug, Default)]
pub struct Entry {
    /// Shards holding at least one connection of the user.
    pub shards: SmallVec<[u16; 2]>,
    /// The route write in flight and the registrations it will answer
    /// (`None` when not waiting).
    pub pending: Option<Box<PendingRoute>>,
}

/// A route write the coordination layer has not confirmed yet.
#[derive(Debug, Default)]
pub struct PendingRoute {
    /// The token of the write (0 until it is asked).
    pub token: u64,
    /// Registrations to answer once it is stored.
    pub waiters: SmallVec<[Waiter; 1]>,
}

/// What a registration needs next.
#[derive(Debug, PartialEq, Eq)]
pub enum Registration {
    /// Route in place: answer the shard now.
    Ready,
    /// First connection on the instance: ask the coordination layer, then answer.
    AddRoute,
    /// The coordination layer is storing the route already; the answer comes with it.
    Waiting,
}

/// The owner shard's directory.
#[derive(Debug, Default)]
pub struct Directory {
    /// User → entry; absent when no shard holds a connection of the user.
    users: HashMap<UserId, Entry>,
    /// Coordinator token → user whose route is being stored.
    route_tokens: HashMap<u64, UserId>,
}

impl Directory {
    /// `shard` now holds a connection of `user`.
    pub fn register(&mut self, user: &UserId, waiter: Waiter) -> Registration {
        let entry = self.users.entry(user.clone()).or_default();
        let first = entry.shards.is_empty();
        if !entry.shards.contains(&waiter.shard) {
            entry.shards.push(waiter.shard);
        }
        match (&mut entry.pending, first) {
            (Some(pending), _) => {
                pending.waiters.push(waiter);
                Registration::Waiting
            }
            (None, true) => {
                let waiters = smallvec::smallvec![waiter];
                entry.pending = Some(Box::new(PendingRoute { token: 0, waiters }));
                Registration::AddRoute
            }
            (None, false) => Registration::Ready,
        }
    }

    /// Remembers the coordinator token of `user`'s route write.
    pub fn route_requested(&mut self, user: &UserId, token: u64) {
        if let Some(pending) = self.users.get_mut(user).and_then(|e| e.pending.as_mut()) {
            pending.token = token;
            self.route_tokens.insert(token, user.clone());
        }
    }

    /// The route asked with `token` is stored: the waiters to answer. A
    /// confirmation of an older write (the user left and came back since)
    /// answers nobody: the current write is still in flight.
    pub fn route_added(&mut self, token: u64) -> SmallVec<[Waiter; 1]> {
        let Some(user) = self.route_tokens.remove(&token) else {
            return SmallVec::new();
        };
        let Some(entry) = self.users.get_mut(&user) else {
            return SmallVec::new();
        };
        match &entry.pending {
            Some(p) if p.token == token => {
                entry.pending.take().map(|p| p.waiters).unwrap_or_default()
            }
            _ => SmallVec::new(),
        }
    }

    /// Answers every waiter of `user` at once (no coordination round trip).
    pub fn take_waiters(&mut self, user: &UserId) -> SmallVec<[Waiter; 1]> {
        self.users
            .get_mut(user)
            .and_then(|e| e.pending.take().map(|p| p.waiters))
            .unwrap_or_default()
    }

    /// `shard` holds no connection of `user` any more. True when no shard
    /// does: the route must be removed.
    pub fn unregister(&mut self, user: &UserId, shard: u16) -> bool {
        let Some(entry) = self.users.get_mut(user) else {
            return false;
        };
        entry.shards.retain(|s| *s != shard);
        if !entry.shards.is_empty() {
            return false;
        }
        if let Some(p) = self.users.remove(user).and_then(|e| e.pending) {
            self.route_tokens.remove(&p.token);
        }
        true
    }

    /// Shards holding connections of `user`.
    pub fn shards_of(&self, user: &str) -> &[u16] {
        self.users
            .get(user)
            .map(|e| e.shards.as_slice())
            .unwrap_or(&[])
    }

    /// Entries held: users and route tokens (leak checks).
    pub fn len(&self) -> usize {
        self.users.len() + self.route_tokens.len()
    }

    /// True when no user is owned and no route is being added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every user in the directory (to register routes again after a coordination outage).
    pub fn users(&self) -> impl Iterator<Item = &UserId> {
        self.users.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn first_registration_adds_the_route_once() {
        let mut d = Directory::default();
        let u = user("alice");
        assert_eq!(
            d.register(&u, Waiter { shard: 0, token: 1 }),
            Registration::AddRoute
        );
        d.route_requested(&u, 99);
        assert_eq!(
            d.register(&u, Waiter { shard: 1, token: 2 }),
            Registration::Waiting
        );
        let waiters = d.route_added(99);
        assert_eq!(
            waiters.as_slice(),
            &[Waiter { shard: 0, token: 1 }, Waiter { shard: 1, token: 2 }]
        );
        assert_eq!(
            d.register(&u, Waiter { shard: 1, token: 3 }),
            Registration::Ready
        );
        assert_eq!(d.shards_of("alice"), &[0, 1]);
    }

    #[test]
    fn route_is_removed_only_when_the_last_shard_leaves() {
        let mut d = Directory::default();
        let u = user("bob");
        d.register(&u, Waiter { shard: 0, token: 1 });
        d.take_waiters(&u);
        d.register(&u, Waiter { shard: 1, token: 2 });
        assert!(!d.unregister(&u, 0), "another shard still holds bob");
        assert_eq!(d.shards_of("bob"), &[1]);
        assert!(d.unregister(&u, 1));
        assert!(d.shards_of("bob").is_empty());
        assert!(!d.unregister(&u, 1), "unknown user is a no-op");
    }

    #[test]
    fn a_stale_confirmation_answers_nobody() {
        let mut d = Directory::default();
        let u = user("carol");
        d.register(&u, Waiter { shard: 0, token: 1 });
        d.route_requested(&u, 10);
        assert!(d.unregister(&u, 0));
        let again = d.register(&u, Waiter { shard: 0, token: 2 });
        assert_eq!(again, Registration::AddRoute);
        d.route_requested(&u, 11);
        assert!(
            d.route_added(10).is_empty(),
            "the write of the previous visit"
        );
        let waiters = d.route_added(11);
        assert_eq!(waiters.as_slice(), &[Waiter { shard: 0, token: 2 }]);
    }
}
