//! Redis key and channel names: the contract's route table and per-server
//! channel, plus the keys this implementation adds (liveness, broadcast).
//!
//! Names follow `docs/REDIS.md`. No hash tags: route keys are spread over
//! every slot of a Cluster by user id, and each server channel lands on the
//! slot of its own name, so neither the route table nor the pub/sub traffic
//! concentrates on one node.

/// Prefix of the route table's keys: `user_servers:<userID>` is the set of
/// server ids holding at least one connection of the user.
pub const ROUTE_PREFIX: &str = "user_servers:";

/// `SCAN` pattern matching every route key (the sweep walks it).
pub const ROUTE_PATTERN: &str = "user_servers:*";

/// Prefix of the per-server channel a server listens on (`server:<serverID>`).
pub const SERVER_CHANNEL_PREFIX: &str = "server:";

/// Prefix of the liveness keys: `server_alive:<serverID>` exists while the
/// server runs (refreshed every third of its TTL).
pub const ALIVE_PREFIX: &str = "server_alive:";

/// The route-table epoch marker: created (never expiring) by the first
/// instance that finds it missing, so a Redis that lost its data (or is new)
/// is noticed; see `docs/REDIS.md`. Not under `user_servers:`, so the sweep
/// never reads it.
pub const EPOCH_KEY: &str = "routes_epoch";

/// The channel every instance subscribes to for broadcasts. Deliberately not
/// under `server:` so that no server id can collide with it.
pub const BROADCAST_CHANNEL: &str = "servers:broadcast";

/// `user_servers:<user>`.
pub fn route_key(user: &str) -> String {
    format!("{ROUTE_PREFIX}{user}")
}

/// `server:<server>`.
pub fn server_channel(server: &str) -> String {
    format!("{SERVER_CHANNEL_PREFIX}{server}")
}

/// `server_alive:<server>`.
pub fn alive_key(server: &str) -> String {
    format!("{ALIVE_PREFIX}{server}")
}

/// The user id part of a route key found by `SCAN`, if it is one.
pub fn user_of_route_key(key: &[u8]) -> Option<&str> {
    let key = std::str::from_utf8(key).ok()?;
    key.strip_prefix(ROUTE_PREFIX).filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        assert_eq!(route_key("alice"), "user_servers:alice");
        assert_eq!(server_channel("s1"), "server:s1");
        assert_eq!(alive_key("s1"), "server_alive:s1");
        assert!(!BROADCAST_CHANNEL.starts_with(SERVER_CHANNEL_PREFIX));
        assert!(!EPOCH_KEY.starts_with(ROUTE_PREFIX));
    }

    #[test]
    fn route_keys_parse_back() {
        assert_eq!(user_of_route_key(b"user_servers:bob"), Some("bob"));
        assert_eq!(user_of_route_key(b"user_servers:"), None);
        assert_eq!(user_of_route_key(b"other:bob"), None);
        assert_eq!(user_of_route_key(&[0xff, 0xfe]), None);
    }
}
