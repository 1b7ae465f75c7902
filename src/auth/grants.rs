//! What a verified token allows beyond naming the user: the channels it may
//! subscribe to (`channels`), those it is subscribed to at connect (`subs`),
//! whether it may broadcast (`broadcast`), and when it expires (`exp`).
//!
//! A connection holds its grants behind one shared pointer (or none at all
//! when the token grants nothing beyond its `sub`), so they cost an idle
//! connection eight bytes.

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
}

impl Identity {
    /// An identity taken on trust (insecure mode).
    pub fn insecure(user: UserId) -> Self {
        Self {
            user,
            grants: None,
            insecure: true,
        }
    }
}

/// The token's claims beyond `sub`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// `channels`: exact names, or prefixes ending in `*`.
    pub channels: Vec<String>,
    /// `subs`: channels the connection is subscribed to before `welcome`.
    pub subs: Vec<ChannelName>,
    /// `broadcast: true`: the client may send `broadcast`.
    pub broadcast: bool,
    /// `exp`, Unix seconds (rounded down).
    pub expires_at: Option<u64>,
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
            None => c == channel,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(channels: &[&str]) -> Grants {
        Grants {
            channels: channels.iter().map(|s| s.to_string()).collect(),
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
}
