//! Channel namespaces and their options (the contract's "Version 2:
//! channels"): what a channel allows is decided by its namespace, the part
//! of its name before the first `:`. Loaded and validated once at start from
//! the TOML file named by `CHANNELS_CONFIG` (see `config::channels`); a
//! namespace that is not listed, and every namespace when no file is given,
//! has the `[default]` options.

use std::collections::HashMap;
use std::time::Duration;

use crate::protocol::channel::namespace_of;

/// Default most `join`/`leave` events per channel per second.
pub const DEFAULT_JOIN_LEAVE_PER_SEC: u32 = 50;

/// The options of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceOptions {
    /// Any authenticated user may subscribe (else the token must allow it).
    pub public: bool,
    /// Subscribers may publish from the client (else only the server API may).
    pub client_publish: bool,
    /// Publications kept per channel for history and recovery; 0 = none.
    pub history_size: u32,
    /// How long the history of an idle channel is kept.
    pub history_ttl: Duration,
    /// Who is subscribed can be asked.
    pub presence: bool,
    /// Subscribers are told when users join or leave.
    pub join_leave: bool,
    /// Most `join`/`leave` events per channel per second (0: no limit);
    /// beyond it events are dropped (and counted), so a big room stays cheap.
    pub join_leave_per_sec: u32,
}

impl Default for NamespaceOptions {
    /// The contract's defaults: nothing allowed beyond subscribing with a
    /// token that names the channel.
    fn default() -> Self {
        Self {
            public: false,
            client_publish: false,
            history_size: 0,
            history_ttl: Duration::ZERO,
            presence: false,
            join_leave: false,
            join_leave_per_sec: DEFAULT_JOIN_LEAVE_PER_SEC,
        }
    }
}

impl NamespaceOptions {
    /// True when publications are numbered and kept.
    pub fn has_history(&self) -> bool {
        self.history_size > 0
    }
}

/// Every namespace's options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// Options of names without a namespace, and of unlisted namespaces.
    pub default: NamespaceOptions,
    /// Options of listed namespaces, by name.
    pub named: HashMap<String, NamespaceOptions>,
}

impl Namespaces {
    /// The options that apply to `channel`.
    pub fn options(&self, channel: &str) -> &NamespaceOptions {
        namespace_of(channel)
            .and_then(|ns| self.named.get(ns))
            .unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlisted_namespaces_and_plain_names_take_the_default() {
        let chat = NamespaceOptions {
            public: true,
            ..NamespaceOptions::default()
        };
        let ns = Namespaces {
            default: NamespaceOptions::default(),
            named: HashMap::from([("chat".to_owned(), chat.clone())]),
        };
        assert_eq!(ns.options("chat:1"), &chat);
        assert_eq!(ns.options("chat"), &NamespaceOptions::default());
        assert_eq!(ns.options("game:1"), &NamespaceOptions::default());
    }
}
