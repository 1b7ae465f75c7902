//! One round trip's worth of commands, and what each answer is for.
//!
//! The engine turns everything queued since the last round trip into a
//! [`Round`]; the link sends it as one pipeline (standalone) or one
//! pipeline per slot (Cluster), and hands back one [`Reply`] per command in
//! order. Each command carries a [`Tag`] saying whose answer it is, so the
//! engine can dispatch replies without any per-request futures.

use bytes::Bytes;
use redis::{Cmd, Value};

use crate::protocol::UserId;

use super::channels::Changes;
use super::{keys, scripts};

/// Where a command must run on a Cluster (ignored on a standalone server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The node owning the slot of this key or sharded channel.
    Key(String),
    /// A given node (`SCAN` walks each master in turn); `None` on standalone.
    Node(Option<(String, u16)>),
    /// Every master (loading the function library).
    AllMasters,
}

/// Whose answer a command's reply is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// `SADD`/`SREM` of this instance in a user's route set; `waiters` are
    /// the `(shard, token)` pairs told through `route_added` once it is done.
    RouteWrite {
        /// The user whose route changed.
        user: UserId,
        /// `SADD` (true) or `SREM` (false).
        add: bool,
        /// Registrations waiting for this write.
        waiters: Vec<(u16, u64)>,
        /// True when the sweep found this instance's id in a set of a user
        /// that has no connection here (counted as a swept route).
        swept: bool,
    },
    /// `SREM` of a dead server from a route set (lazily or by the sweep).
    StaleRemove,
    /// `SMEMBERS` for the outbound direct `id`.
    Lookup {
        /// The outbound request.
        id: u64,
    },
    /// `EXISTS server_alive:<server>`.
    Exists {
        /// The server whose liveness is checked.
        server: String,
    },
    /// `PUBLISH`/`SPUBLISH` of direct `id` to `server`'s channel.
    PublishDirect {
        /// The outbound request.
        id: u64,
        /// The receiving server.
        server: String,
    },
    /// Publish of a confirmation or a broadcast (only failures matter).
    PublishOther {
        /// True for a confirmation: no subscriber means the origin is gone.
        confirm: bool,
    },
    /// Claiming (or refreshing) our liveness key: compare-and-set.
    Alive,
    /// Reading (or creating) the route-table epoch marker.
    Epoch,
    /// Deleting our liveness key at shutdown: compare-and-delete.
    Release,
    /// A sweep `SCAN` page.
    SweepScan,
    /// `FUNCTION LOAD` of the stream functions.
    Functions,
    /// A presence write (only failures matter).
    Presence,
    /// `SMEMBERS presence_servers` (the presence sweep).
    PresenceServers,
    /// `EXISTS server_alive:<server>` for the presence sweep.
    PresenceAlive {
        /// The server.
        server: String,
    },
    /// `SMEMBERS server_presence:<server>` of a dead server.
    PresenceChannels {
        /// The dead server.
        server: String,
    },
    /// An idempotency key's claim (`settle` false) or settling.
    Idempotency {
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
        /// A settling (its reply is `OK`).
        settle: bool,
    },
    /// `SMEMBERS` of a user's route set for a status read.
    StatusMembers {
        /// The read.
        id: u64,
    },
    /// `EXISTS` of a server's liveness key for a status read.
    StatusAlive {
        /// The read.
        id: u64,
        /// The server.
        server: String,
    },
    /// `wss_presence_list` for a shard's request.
    PresenceList {
        /// The asking shard.
        shard: u16,
        /// Its token.
        token: u64,
        /// Most users listed.
        cap: u32,
    },
    /// `wss_append` of a publication to a channel's history (it publishes too).
    PublishHistory {
        /// The publishing shard.
        shard: u16,
        /// Its token (0: no answer).
        token: u64,
    },
    /// `wss_read` of a stream.
    StreamRead {
        /// The reading shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// `wss_append` of a direct message to its receiver's inbox.
    InboxAppend {
        /// The sending shard.
        shard: u16,
        /// Its token.
        token: u64,
    },
    /// `PUBLISH`/`SPUBLISH` of a channel publication.
    PublishChannel {
        /// The publishing shard.
        shard: u16,
        /// Its token (0: no answer).
        token: u64,
    },
    /// The sweep reading one route set.
    SweepMembers {
        /// The user id part of the key (not validated: keys may be foreign).
        user: String,
    },
}

/// The answer to one command: a value, or the server's (or the link's)
/// error for that command alone.
pub type Reply = Result<Value, String>;

/// Commands for one round trip, with their targets and tags (same order).
#[derive(Default)]
pub struct Round {
    /// The commands, in the order they must run per key.
    pub cmds: Vec<Cmd>,
    /// Where each command runs on a Cluster.
    pub targets: Vec<Target>,
    /// Whose answer each reply is.
    pub tags: Vec<Tag>,
    /// Channel subscriptions to change before the commands run.
    pub channels: Changes,
}

impl Round {
    /// Number of commands.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty() && self.channels.is_empty()
    }

    /// Adds a command.
    pub fn push(&mut self, cmd: Cmd, target: Target, tag: Tag) {
        self.cmds.push(cmd);
        self.targets.push(target);
        self.tags.push(tag);
    }

    /// `SADD`/`SREM user_servers:<user> <member>`.
    pub fn route_write(&mut self, user: &str, member: &str, add: bool, tag: Tag) {
        let key = keys::route_key(user);
        let mut cmd = redis::cmd(if add { "SADD" } else { "SREM" });
        cmd.arg(&key).arg(member);
        self.push(cmd, Target::Key(key), tag);
    }

    /// `SMEMBERS user_servers:<user>`.
    pub fn members(&mut self, user: &str, tag: Tag) {
        let key = keys::route_key(user);
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(&key);
        self.push(cmd, Target::Key(key), tag);
    }

    /// `EXISTS server_alive:<server>`.
    pub fn exists(&mut self, server: &str) {
        let key = keys::alive_key(server);
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(&key);
        let tag = Tag::Exists {
            server: server.to_owned(),
        };
        self.push(cmd, Target::Key(key), tag);
    }

    /// Claims or refreshes `server_alive:<server>` for boot id `boot`
    /// (the [`scripts::CLAIM`] compare-and-set).
    pub fn claim(&mut self, server: &str, boot: &str, ttl_ms: u64) {
        let key = keys::alive_key(server);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::CLAIM)
            .arg(1)
            .arg(&key)
            .arg(boot)
            .arg(ttl_ms.max(1));
        self.push(cmd, Target::Key(key), Tag::Alive);
    }

    /// Deletes `server_alive:<server>` if it still holds `boot`
    /// (the [`scripts::RELEASE`] compare-and-delete).
    pub fn release(&mut self, server: &str, boot: &str) {
        let key = keys::alive_key(server);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::RELEASE).arg(1).arg(&key).arg(boot);
        self.push(cmd, Target::Key(key), Tag::Release);
    }

    /// Reads (creating when missing) the route-table epoch marker
    /// ([`scripts::EPOCH`]); `boot` makes a new marker unique.
    pub fn epoch(&mut self, boot: &str) {
        let key = keys::EPOCH_KEY.to_owned();
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::EPOCH).arg(1).arg(&key).arg(boot);
        self.push(cmd, Target::Key(key), Tag::Epoch);
    }

    /// Publishes `payload` on a server's channel: `SPUBLISH` on a Cluster
    /// (one shard), `PUBLISH` on a standalone server.
    pub fn publish_to_server(&mut self, server: &str, payload: &Bytes, sharded: bool, tag: Tag) {
        let channel = keys::server_channel(server);
        let mut cmd = redis::cmd(if sharded { "SPUBLISH" } else { "PUBLISH" });
        cmd.arg(&channel).arg(payload.as_ref());
        self.push(cmd, Target::Key(channel), tag);
    }

    /// `PUBLISH servers:broadcast <payload>` (a Cluster forwards plain
    /// `PUBLISH` to every node, which a broadcast needs anyway).
    pub fn publish_broadcast(&mut self, payload: &Bytes) {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(keys::BROADCAST_CHANNEL).arg(payload.as_ref());
        let target = Target::Key(keys::BROADCAST_CHANNEL.to_owned());
        self.push(cmd, target, Tag::PublishOther { confirm: false });
    }

    /// Publishes a channel publication on the channel's Redis channel:
    /// `SPUBLISH` on a Cluster (the channel's slot), `PUBLISH` standalone.
    pub fn publish_channel(&mut self, channel: &str, payload: &[u8], sharded: bool, tag: Tag) {
        let name = super::publication::redis_channel(channel);
        let mut cmd = redis::cmd(if sharded { "SPUBLISH" } else { "PUBLISH" });
        cmd.arg(&name).arg(payload);
        self.push(cmd, Target::Key(name), tag);
    }

    /// `SCAN <cursor> MATCH user_servers:* COUNT <count>` on `node`.
    pub fn scan(&mut self, node: Option<(String, u16)>, cursor: u64, count: usize) {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(keys::ROUTE_PATTERN)
            .arg("COUNT")
            .arg(count);
        self.push(cmd, Target::Node(node), Tag::SweepScan);
    }
}

/// An integer reply (`SADD`, `SREM`, `EXISTS`, `PUBLISH`), if it is one.
pub fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

/// The members of a set reply (RESP2 array or RESP3 set) as strings;
/// members that are not UTF-8 are skipped (no server id can match them).
pub fn as_strings(value: Value) -> Option<Vec<String>> {
    let items = match value {
        Value::Array(items) | Value::Set(items) => items,
        Value::Nil => Vec::new(),
        _ => return None,
    };
    let strings = items.into_iter().filter_map(|v| match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    });
    Some(strings.collect())
}

/// A `SCAN` reply: the next cursor and the keys of this page.
pub fn as_scan_page(value: Value) -> Option<(u64, Vec<String>)> {
    let Value::Array(mut parts) = value else {
        return None;
    };
    if parts.len() != 2 {
        return None;
    }
    let keys = as_strings(parts.pop()?)?;
    let cursor = match parts.pop()? {
        Value::BulkString(b) => std::str::from_utf8(&b).ok()?.parse().ok()?,
        Value::SimpleString(s) => s.parse().ok()?,
        Value::Int(n) => u64::try_from(n).ok()?,
        _ => return None,
    };
    Some((cursor, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_tags_and_targets_stay_aligned() {
        let mut r = Round::default();
        r.members("bob", Tag::Lookup { id: 1 });
        r.exists("s2");
        r.publish_to_server(
            "s2",
            &Bytes::from_static(b"x"),
            true,
            Tag::PublishOther { confirm: true },
        );
        assert_eq!(r.len(), 3);
        assert_eq!(r.targets[0], Target::Key("user_servers:bob".into()));
        assert_eq!(r.targets[1], Target::Key("server_alive:s2".into()));
        assert_eq!(r.targets[2], Target::Key("server:s2".into()));
        assert_eq!(
            r.tags[1],
            Tag::Exists {
                server: "s2".into()
            }
        );
        let packed = String::from_utf8_lossy(&r.cmds[2].get_packed_command()).into_owned();
        assert!(packed.contains("SPUBLISH"), "{packed}");
    }

    #[test]
    fn set_replies_of_both_protocols_parse() {
        let resp2 = Value::Array(vec![Value::BulkString(b"s1".to_vec())]);
        let resp3 = Value::Set(vec![Value::BulkString(b"s1".to_vec()), Value::Int(3)]);
        assert_eq!(as_strings(resp2), Some(vec!["s1".to_owned()]));
        assert_eq!(as_strings(resp3), Some(vec!["s1".to_owned()]));
        assert_eq!(as_strings(Value::Okay), None);
    }

    #[test]
    fn scan_pages_parse_and_garbage_does_not() {
        let page = Value::Array(vec![
            Value::BulkString(b"17".to_vec()),
            Value::Array(vec![Value::BulkString(b"user_servers:a".to_vec())]),
        ]);
        assert_eq!(
            as_scan_page(page),
            Some((17, vec!["user_servers:a".to_owned()]))
        );
        assert_eq!(as_scan_page(Value::Array(vec![Value::Nil])), None);
        assert_eq!(as_scan_page(Value::Int(1)), None);
    }
}
