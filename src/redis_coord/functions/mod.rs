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
use crate::protocol::envelope::MAX_EPOCH_BYTES;

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

/// `wss_append`'s reply: `[offset, epoch]` (entries are numbered from 1).
pub fn parse_appended(v: &Value) -> Option<Appended> {
    let Value::Array(items) = v else { return None };
    let offset = int(items.first()?).filter(|&n| n >= 1)?;
    let epoch = epoch(items.get(1)?)?;
    Some(Appended {
        offset,
        epoch: epoch.into(),
    })
}

/// `wss_read`'s reply: `[offset, epoch, complete, entries…]`. The entries
/// carry distinct offsets up to `offset`, and an incomplete read has none:
/// a page that says otherwise is a bad reply.
pub fn parse_page(v: Value) -> Option<StreamPage> {
    let Value::Array(items) = v else { return None };
    let top = int(items.first()?)?;
    let epoch = epoch(items.get(1)?)?;
    let complete = int(items.get(2)?)? == 1;
    let count = items.len().saturating_sub(3);
    if count as u64 > top || (!complete && count > 0) {
        return None;
    }
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

/// A stream's epoch, if a client (or the server API) can send it back to
/// recover: else every recovery would fail, so the reply is a bad one.
fn epoch(v: &Value) -> Option<String> {
    text(v).filter(|e| !e.is_empty() && e.len() <= MAX_EPOCH_BYTES)
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

/// `wss_idem_claim`'s reply: `[1]` (fresh) or `[0, value]` ('' = in
/// progress). Any other state is a bad reply, never a replay.
pub fn parse_claim(v: Value) -> Option<crate::coordinator::IdempotencyAnswer> {
    use crate::coordinator::IdempotencyAnswer;
    let Value::Array(items) = v else { return None };
    let mut items = items.into_iter();
    match int(&items.next()?)? {
        1 => return Some(IdempotencyAnswer::Fresh),
        0 => {}
        _ => return None,
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

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn resp(bytes: &[u8]) -> Value {
        redis::parse_redis_value(bytes).unwrap()
    }

    /// Found by the `redis_reply` fuzz target and its seed checks; each was
    /// accepted before (the inputs are seeds in `fuzz/seeds/redis_reply/`).
    #[test]
    fn replies_outside_the_contract_are_bad_replies() {
        // found_append_offset_0: an append at offset 0 (entries start at 1),
        // the way a claim's `[0, '']` read as an append with an empty epoch.
        let offset_0 = resp(b"*3\r\n:0\r\n$8\r\nhostname\r\n-\r\n");
        assert!(parse_appended(&offset_0).is_none());
        let in_progress = Value::Array(vec![Value::Int(0), bulk("")]);
        assert!(parse_appended(&in_progress).is_none());
        // found_page_empty_epoch, and an epoch too long to send back.
        assert!(parse_page(resp(b"*3\r\n:11\r\n+\r\n:5\r\n")).is_none());
        let long = "e".repeat(MAX_EPOCH_BYTES + 1);
        assert!(parse_appended(&Value::Array(vec![Value::Int(1), bulk(&long)])).is_none());
        // A page with more entries than its top offset, or entries in an
        // incomplete read.
        let page = |top, complete| {
            let items = vec![
                Value::Int(top),
                bulk("e1"),
                Value::Int(complete),
                bulk("{}"),
            ];
            parse_page(Value::Array(items))
        };
        assert!(page(0, 1).is_none());
        assert!(page(1, 0).is_none());
        assert!(page(1, 1).is_some());
        // found_claim_state_7000: a claim state other than 1 or 0 (here an
        // append's reply) was replayed as the stored answer.
        assert_eq!(parse_claim(resp(b"*2\r\n:7000\r\n$3\r\nid0\r\n")), None);
        let replay = Value::Array(vec![Value::Int(0), bulk("{}")]);
        let answer = crate::coordinator::IdempotencyAnswer::Replay(Bytes::from_static(b"{}"));
        assert_eq!(parse_claim(replay), Some(answer));
    }
}
