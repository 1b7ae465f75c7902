//! What a verified token allows beyond naming the user: the channels it may
//! subscribe to (`channels`), those it is subscribed to at connect (`subs`),
//! and whether it may broadcast (`broadcast`). Its expiry (`exp`) is kept
//! apart, in the connection itself, because it differs from token to token
//! while the grants are usually the same for many users.
//!
//! A connection holds its grants behind one shared pointer, or none at all
//! when the token grants nothing beyond its `sub`: eight bytes. Each shard
//! interns them ([`GrantsCache`]), so the thousands of connections whose
//! tokens carry the same claims share one copy instead of ~200 bytes each.

use std::collections::HashSet;
use std::sync::Arc;

use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

/// Most entries a `channels` or `subs` claim may hold.
pub const MAX_CLAIM_ENTRIES: usize = 1024;

/// Who connected, and what their token allows.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user.
    pub user: UserId,
    /// The token's grants; `None` in insecure mode (everything a namespace
    /// allows) and for tokens that grant nothing beyond their `sub`.
    pub grants: Option<Arc<Grants>>,
    /// Insecure mode: identity taken on trust, every channel allowed.
    pub insecure: bool,
    /// The token's `exp`, Unix seconds (rounded down); `None` without one.
    pub expires_at: Option<u64>,
}

impl Identity {
    /// An identity taken on trust (insecure mode).
    pub fn insecure(user: UserId) -> Self {
        Self {
            user,
            grants: None,
            insecure: true,
            expires_at: None,
        }
    }
}

/// The token's claims beyond `sub` and `exp`; boxed slices, without the
/// spare capacity of the vectors they were parsed into.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Grants {
    /// `channels`: exact names, or prefixes ending in `*`.
    pub channels: Box<[Box<str>]>,
    /// `subs`: channels the connection is subscribed to before `welcome`.
    pub subs: Box<[ChannelName]>,
    /// `broadcast: true`: the client may send `broadcast`.
    pub broadcast: bool,
}

impl Grants {
    /// True when the grants add nothing to a bare identity.
    pub fn is_empty(&self) -> bool {
        *self == Grants::default()
    }

    /// Whether the token allows `channel`: an exact `channels` entry, an
    /// entry ending in `*` whose prefix starts the name, or a `subs` entry
    /// (the issuer subscribed the connection itself).
    pub fn allows_channel(&self, channel: &str) -> bool {
        let claimed = self.channels.iter().any(|c| match c.strip_suffix('*') {
            Some(prefix) => channel.starts_with(prefix),
            None => &**c == channel,
        });
        claimed || self.subs.iter().any(|s| &**s == channel)
    }
}

/// Whether a connection with these grants may subscribe to `channel` in a
/// namespace that is (or is not) `public`.
pub fn may_subscribe(
    identity_insecure: bool,
    grants: Option<&Grants>,
    public: bool,
    channel: &str,
) -> bool {
    identity_insecure || public || grants.is_some_and(|g| g.allows_channel(channel))
}

/// Whether a connection may send `broadcast` (when the server allows it):
/// insecure mode may; in token mode the token must say `"broadcast": true`.
pub fn may_broadcast(identity_insecure: bool, grants: Option<&Grants>) -> bool {
    identity_insecure || grants.is_some_and(|g| g.broadcast)
}

/// One shard's interned grants: connections whose tokens grant the same
/// thing share one `Arc`. Entries no connection holds any more are dropped
/// by [`GrantsCache::prune`] (the shard's sweep calls it), so the cache
/// never holds more than the live distinct grants plus those released
/// since the last prune.
#[derive(Debug, Default)]
pub struct GrantsCache {
    interned: HashSet<Arc<Grants>>,
}

impl GrantsCache {
    /// The shared copy of `grants` (this one, if it is the first).
    pub fn intern(&mut self, grants: Arc<Grants>) -> Arc<Grants> {
        if let Some(shared) = self.interned.get(&grants) {
            return shared.clone();
        }
        self.interned.insert(grants.clone());
        grants
    }

    /// Forgets the grants that only the cache still holds; gives back the
    /// table's memory when most of it is empty.
    pub fn prune(&mut self) {
        self.interned.retain(|g| Arc::strong_count(g) > 1);
        if self.interned.capacity() > 4 * self.interned.len().max(16) {
            self.interned.shrink_to_fit();
        }
    }

    /// Distinct grants held.
    pub fn len(&self) -> usize {
        self.interned.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.interned.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(channels: &[&str]) -> Grants {
        Grants {
            channels: channels.iter().map(|&s| Box::from(s)).collect(),
            ..Grants::default()
        }
    }

    #[test]
    fn channel_claims_match_exactly_or_by_prefix() {
        let g = grants(&["game:lobby7", "dash:*"]);
        assert!(g.allows_channel("game:lobby7"));
        assert!(!g.allows_channel("game:lobby70"));
        assert!(g.allows_channel("dash:cpu"));
        assert!(g.allows_channel("dash:"));
        assert!(!g.allows_channel("dashboard"));
        assert!(grants(&["*"]).allows_channel("anything"));
    }

    #[test]
    fn public_namespaces_and_insecure_mode_need_no_claim() {
        let none = grants(&[]);
        assert!(may_subscribe(false, Some(&none), true, "chat:1"));
        assert!(!may_subscribe(false, Some(&none), false, "chat:1"));
        assert!(!may_subscribe(false, None, false, "chat:1"));
        assert!(may_subscribe(true, None, false, "chat:1"));
    }

    #[test]
    fn broadcast_is_granted_not_assumed() {
        let mut g = Grants::default();
        assert!(!may_broadcast(false, Some(&g)));
        assert!(!may_broadcast(false, None));
        g.broadcast = true;
        assert!(may_broadcast(false, Some(&g)));
        assert!(may_broadcast(true, None));
    }

    #[test]
    fn equal_grants_share_one_copy_until_released() {
        let mut cache = GrantsCache::default();
        let a = cache.intern(Arc::new(grants(&["chat:*"])));
        let b = cache.intern(Arc::new(grants(&["chat:*"])));
        let c = cache.intern(Arc::new(grants(&["dash:*"])));
        assert!(Arc::ptr_eq(&a, &b), "equal grants are one allocation");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(cache.len(), 2);
        drop(c);
        cache.prune();
        assert_eq!(cache.len(), 1, "grants nobody holds are forgotten");
        drop((a, b));
        cache.prune();
        assert!(cache.is_empty());
        let d = cache.intern(Arc::new(grants(&["chat:*"])));
        assert_eq!(Arc::strong_count(&d), 2, "interned afresh after a prune");
    }
}
