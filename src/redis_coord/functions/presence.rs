//! Presence in Redis: the `wss_presence` function library
//! (`presence.lua`) and the commands that call it.
//!
//! Keys of a channel `c` (hash tag `{c}`, one slot with its pub/sub channel):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `pres_srv:{c}:<server>` | hash | user → connections on that server |
//! | `pres_user:{c}` | hash | user → connections on every server |
//! | `pres_meta:{c}` | hash | `connections` (total), `join`/`leave` rate state, `jl_dropped` |
//!
//! and, to find a dead server's parts: `presence_servers` (set of server
//! ids with presence) and `server_presence:<server>` (set of its channels).
//! A change is one atomic function call per channel per round: it updates
//! the server's part and the totals, and publishes `join`/`leave` (rate
//! limited) when a user's total crosses zero. Listing is capped; counts are
//! two O(1) reads.

use redis::{Cmd, Value};

use crate::coordinator::PresencePage;
use crate::namespaces::NamespaceOptions;
use crate::protocol::UserId;

use super::super::publication::redis_channel;

/// The library's source.
pub const LIBRARY: &str = include_str!("presence.lua");

/// Set of servers with presence somewhere.
pub const SERVERS_KEY: &str = "presence_servers";

/// `FUNCTION LOAD REPLACE <library>`.
pub fn load() -> Cmd {
    let mut cmd = redis::cmd("FUNCTION");
    cmd.arg("LOAD").arg("REPLACE").arg(LIBRARY);
    cmd
}

/// `server_presence:<server>`: the channels where `server` has presence.
pub fn server_key(server: &str) -> String {
    format!("server_presence:{server}")
}

fn part_key(channel: &str, server: &str) -> String {
    format!("pres_srv:{{{channel}}}:{server}")
}

fn users_key(channel: &str) -> String {
    format!("pres_user:{{{channel}}}")
}

fn meta_key(channel: &str) -> String {
    format!("pres_meta:{{{channel}}}")
}

/// The function call's keys and its leading arguments (events options).
fn call(
    name: &str,
    channel: &str,
    server: &str,
    o: &NamespaceOptions,
    sharded: bool,
    sent_at_us: u64,
) -> Cmd {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(name)
        .arg(4)
        .arg(part_key(channel, server))
        .arg(users_key(channel))
        .arg(meta_key(channel))
        .arg(redis_channel(channel))
        .arg(if o.join_leave { "1" } else { "0" })
        .arg(o.join_leave_per_sec)
        .arg(if sharded { "SPUBLISH" } else { "PUBLISH" })
        .arg(sent_at_us)
        .arg(channel);
    cmd
}

/// Applies this server's changes `(user, delta)` to a channel's presence.
/// Returns the command and the key it runs on.
pub fn changes(
    channel: &str,
    server: &str,
    o: &NamespaceOptions,
    sharded: bool,
    sent_at_us: u64,
    deltas: &[(UserId, i32)],
) -> (Cmd, String) {
    let cmd = call(
        "wss_presence_changes",
        channel,
        server,
        o,
        sharded,
        sent_at_us,
    );
    with_pairs(cmd, channel, deltas)
}

/// Removes a dead server's part of a channel's presence (with `leave`s).
pub fn drop(
    channel: &str,
    server: &str,
    o: &NamespaceOptions,
    sharded: bool,
    sent_at_us: u64,
) -> (Cmd, String) {
    let cmd = call("wss_presence_drop", channel, server, o, sharded, sent_at_us);
    (cmd, users_key(channel))
}

/// Sets this server's part of a channel's presence to exactly `users`,
/// announcing the users whose total crossed zero (`join`/`leave`).
pub fn reset(
    channel: &str,
    server: &str,
    o: &NamespaceOptions,
    sharded: bool,
    sent_at_us: u64,
    users: &[(UserId, u32)],
) -> (Cmd, String) {
    let cmd = call(
        "wss_presence_reset",
        channel,
        server,
        o,
        sharded,
        sent_at_us,
    );
    with_pairs(cmd, channel, users)
}

/// Appends `(user, number)` pairs; the command and the key it runs on.
fn with_pairs<N: redis::ToRedisArgs>(
    mut cmd: Cmd,
    channel: &str,
    pairs: &[(UserId, N)],
) -> (Cmd, String) {
    for (user, n) in pairs {
        cmd.arg(&**user).arg(n);
    }
    (cmd, users_key(channel))
}

/// Lists a channel's presence, at most `cap` users (0: counts only).
pub fn list(channel: &str, cap: u32) -> (Cmd, String) {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg("wss_presence_list")
        .arg(2)
        .arg(users_key(channel))
        .arg(meta_key(channel))
        .arg(cap);
    (cmd, users_key(channel))
}

/// `wss_presence_list`'s reply: `[truncated, users, connections, user, count, …]`,
/// at most `cap` users (more is a bad reply).
pub fn parse_list(v: Value, cap: u32) -> Option<PresencePage> {
    let Value::Array(items) = v else { return None };
    let mut items = items.into_iter();
    let truncated = int(&items.next()?)? == 1;
    let user_count = int(&items.next()?)?;
    let connections = int(&items.next()?)?;
    let mut users = Vec::new();
    while let Some(user) = items.next() {
        let Value::BulkString(user) = user else {
            return None;
        };
        if users.len() >= cap as usize {
            return None;
        }
        let n = int(&items.next()?)?;
        users.push((String::from_utf8(user).ok()?, u32::try_from(n).ok()?));
    }
    Some(PresencePage {
        users,
        user_count,
        connections,
        truncated: cap > 0 && truncated,
    })
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channels_keys_share_its_hash_tag() {
        assert_eq!(part_key("room", "s1"), "pres_srv:{room}:s1");
        assert_eq!(users_key("room"), "pres_user:{room}");
        assert_eq!(meta_key("room"), "pres_meta:{room}");
    }

    #[test]
    fn lists_parse_and_garbage_does_not() {
        let v = Value::Array(vec![
            Value::Int(1),
            Value::Int(3),
            Value::Int(5),
            Value::BulkString(b"alice".to_vec()),
            Value::Int(2),
        ]);
        let p = parse_list(v, 1).unwrap();
        assert_eq!(p.users, vec![("alice".to_owned(), 2)]);
        assert_eq!((p.user_count, p.connections, p.truncated), (3, 5, true));
        assert!(parse_list(Value::Int(0), 1).is_none());
        let odd = Value::Array(vec![
            Value::Int(0),
            Value::Int(0),
            Value::Int(0),
            Value::Int(7),
        ]);
        assert!(parse_list(odd, 1).is_none());
    }

    /// Found by the `redis_reply` checks: a list longer than the asked cap
    /// was accepted (and collected whole).
    #[test]
    fn more_users_than_the_cap_is_a_bad_reply() {
        let user = |name: &str| [Value::BulkString(name.as_bytes().to_vec()), Value::Int(1)];
        let mut items = vec![Value::Int(1), Value::Int(3), Value::Int(3)];
        items.extend(user("alice"));
        items.extend(user("bob"));
        assert!(parse_list(Value::Array(items.clone()), 1).is_none());
        assert!(parse_list(Value::Array(items.clone()), 0).is_none());
        assert_eq!(parse_list(Value::Array(items), 2).unwrap().users.len(), 2);
    }
}
