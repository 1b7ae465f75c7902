//! Streams in Redis: the `wss` function library (`streams.lua`) that keeps
//! a channel's history or a user's inbox, and the commands that call it.
//!
//! One function call is one atomic step inside Redis: `wss_append`
//! numbers an entry, keeps it (trimmed to the stream's size, with the
//! stream's TTL) and, for a channel, publishes it on the channel's pub/sub
//! channel, so no subscriber sees a publication the history lacks or the
//! reverse, and offsets have no gap or duplicate whatever instance publishes.
//! `wss_read` returns the stream's position and the entries after a given
//! one, under the never-partial rule.
//!
//! Keys (hash tag = the channel or user, so a stream's keys and a channel's
//! sharded pub/sub channel share a Cluster slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `ch_meta:{<channel>}` / `inbox_meta:{<user>}` | hash | `offset`, `epoch`, `replid` |
//! | `ch_hist:{<channel>}` / `inbox:{<user>}` | list | the last `size` entries (JSON with `offset`) |
//!
//! The epoch changes whenever the stream's keys were lost (expired, evicted,
//! Redis restarted empty) or were last written by another server run: the
//! meta records the node's `master_replid`, which changes on restart and on
//! failover, so offsets written before a failover that lost writes are
//! never matched against the new run (conservative: an intact stream also
//! starts a new epoch then, and clients reload rather than risk a gap).

use bytes::Bytes;
use redis::{Cmd, Value};

use crate::coordinator::{Appended, Retention, StreamKey, StreamPage, StreamQuery};

use super::publication::redis_channel;

pub mod presence;

/// The library's source, loaded (`FUNCTION LOAD REPLACE`) on every master at
/// each connection.
pub const LIBRARY: &str = include_str!("streams.lua");

/// `FUNCTION LOAD REPLACE <library>`.
pub fn load() -> Cmd {
    let mut cmd = redis::cmd("FUNCTION");
    cmd.arg("LOAD").arg("REPLACE").arg(LIBRARY);
    cmd
}

/// The meta and list keys of a stream.
pub fn keys(key: &StreamKey) -> (String, String) {
    match key {
        StreamKey::Channel(c) => (format!("ch_meta:{{{c}}}"), format!("ch_hist:{{{c}}}")),
        StreamKey::Inbox(u) => (format!("inbox_meta:{{{u}}}"), format!("inbox:{{{u}}}")),
    }
}

/// A fresh epoch candidate (used only when the stream starts an epoch).
pub fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn ttl_ms(r: Retention) -> u64 {
    (r.ttl.as_millis() as u64).max(1)
}

/// The JSON without its closing brace (the function appends `offset`).
fn open_json(json: &[u8]) -> &[u8] {
    json.strip_suffix(b"}").unwrap_or(json)
}

/// Appends a publication to a channel's history and publishes it
/// (`SPUBLISH` on a Cluster). The list key is where the command runs.
pub fn append_publication(
    channel: &str,
    json: &[u8],
    r: Retention,
    sent_at_us: u64,
    sharded: bool,
) -> (Cmd, String) {
    let (meta, list) = keys(&StreamKey::Channel(crate::protocol::channel::ChannelName(
        channel.into(),
    )));
    let publish = if sharded { "SPUBLISH" } else { "PUBLISH" };
    let mut cmd = redis::cmd("FCALL");
    cmd.arg("wss_append")
        .arg(3)
        .arg(&meta)
        .arg(&list)
        .arg(redis_channel(channel))
        .arg(open_json(json))
        .arg(r.size)
        .arg(ttl_ms(r))
        .arg(new_epoch())
        .arg(sent_at_us)
        .arg(publish);
    (cmd, list)
}

/// Appends a direct message to a user's inbox.
pub fn append_inbox(key: &StreamKey, json: &[u8], r: Retention) -> (Cmd, String) {
    let (meta, list) = keys(key);
    let mut cmd = redis::cmd("FCALL");
    cmd.arg("wss_append")
        .arg(2)
        .arg(&meta)
        .arg(&list)
        .arg(open_json(json))
        .arg(r.size)
        .arg(ttl_ms(r))
        .arg(new_epoch())
        .arg(0)
        .arg("");
    (cmd, list)
}

/// Reads a stream.
pub fn read(key: &StreamKey, q: &StreamQuery) -> (Cmd, String) {
    let (meta, list) = keys(key);
    let (since, epoch) = match &q.since {
        Some((offset, epoch)) => (*offset as i64, epoch.to_string()),
        None => (-1, String::new()),
    };
    let mut cmd = redis::cmd("FCALL");
    cmd.arg("wss_read")
        .arg(2)
        .arg(&meta)
        .arg(&list)
        .arg(since)
        .arg(epoch)
        .arg(q.limit)
        .arg(new_epoch())
        .arg(ttl_ms(q.retention));
    (cmd, list)
}

/// `wss_append`'s reply: `[offset, epoch]`.
pub fn parse_appended(v: &Value) -> Option<Appended> {
    let Value::Array(items) = v else { return None };
    let offset = int(items.first()?)?;
    let epoch = text(items.get(1)?)?;
    Some(Appended {
        offset,
        epoch: epoch.into(),
    })
}

/// `wss_read`'s reply: `[offset, epoch, complete, entries…]`.
pub fn parse_page(v: Value) -> Option<StreamPage> {
    let Value::Array(items) = v else { return None };
    let top = int(items.first()?)?;
    let epoch = text(items.get(1)?)?;
    let complete = int(items.get(2)?)? == 1;
    let entries = items
        .into_iter()
        .skip(3)
        .map(|e| match e {
            Value::BulkString(b) => Some(Bytes::from(b)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(StreamPage {
        top,
        epoch: epoch.into(),
        complete,
        entries,
    })
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The Redis key of an idempotency key.
pub fn idempotency_key(key: &str) -> String {
    format!("idem:{key}")
}

/// Claims an idempotency key for `ttl_ms` (see `wss_idem_claim`).
pub fn claim(key: &str, ttl_ms: u64) -> (Cmd, String) {
    let name = idempotency_key(key);
    let mut cmd = redis::cmd("FCALL");
    cmd.arg("wss_idem_claim").arg(1).arg(&name).arg(ttl_ms);
    (cmd, name)
}

/// Remembers an idempotency key's answer for `ttl_ms`.
pub fn settle(key: &str, answer: &[u8], ttl_ms: u64) -> (Cmd, String) {
    let name = idempotency_key(key);
    let mut cmd = redis::cmd("SET");
    cmd.arg(&name).arg(answer).arg("PX").arg(ttl_ms);
    (cmd, name)
}

/// `wss_idem_claim`'s reply: `[1]` (fresh) or `[0, value]` ('' = in progress).
pub fn parse_claim(v: Value) -> Option<crate::coordinator::IdempotencyAnswer> {
    use crate::coordinator::IdempotencyAnswer;
    let Value::Array(items) = v else { return None };
    let mut items = items.into_iter();
    if int(&items.next()?)? == 1 {
        return Some(IdempotencyAnswer::Fresh);
    }
    match items.next()? {
        Value::BulkString(b) if b.is_empty() => Some(IdempotencyAnswer::InProgress),
        Value::BulkString(b) => Some(IdempotencyAnswer::Replay(Bytes::from(b))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streams_keys_share_its_hash_tag() {
        let c = StreamKey::Channel(crate::protocol::channel::ChannelName("chat:1".into()));
        assert_eq!(
            keys(&c),
            ("ch_meta:{chat:1}".into(), "ch_hist:{chat:1}".into())
        );
        let u = StreamKey::Inbox(crate::protocol::UserId("bob".into()));
        assert_eq!(keys(&u), ("inbox_meta:{bob}".into(), "inbox:{bob}".into()));
    }

    #[test]
    fn replies_parse_and_garbage_does_not() {
        let page = Value::Array(vec![
            Value::Int(4),
            Value::BulkString(b"e1".to_vec()),
            Value::Int(1),
            Value::BulkString(b"{}".to_vec()),
        ]);
        let p = parse_page(page).unwrap();
        assert_eq!(
            (p.top, &*p.epoch, p.complete, p.entries.len()),
            (4, "e1", true, 1)
        );
        assert!(parse_page(Value::Int(1)).is_none());
        let at = parse_appended(&Value::Array(vec![
            Value::Int(9),
            Value::BulkString(b"e".to_vec()),
        ]));
        assert_eq!(at.unwrap().offset, 9);
        assert!(parse_appended(&Value::Nil).is_none());
    }
}
