//! Checks of every parser of Redis replies against one reply: the body of
//! the `redis_reply` fuzz target, and of the unit tests that replay its
//! seeds (`fuzz/seeds/redis_reply/`) on stable Rust. Not used by the server.
//!
//! A misbehaving Redis, or our function libraries at another version (the
//! last instance to connect loads its own), may answer anything. Each
//! parser must then say "bad reply" (`None`), never panic; what it accepts
//! must be what the reply says and what the contract promises (the Lua
//! sources and `coordinator::stream`). Trailing items a later library
//! might add are ignored; a field we read must be one we know. Every check
//! is an assertion, so a broken contract is a crash of the fuzz target.
//!
//! # Layout
//!
//! - this file: [`check_resp`], [`check_reply`] and the checks of the
//!   parsers, each against the reply read again here;
//! - `engine.rs`: the engine with one request of each kind in flight, every
//!   command answered with the reply: each request answered once, with
//!   what the parser made of it;
//! - `tests.rs`: the seeds and malformed values.

use std::time::{Duration, Instant};

use redis::Value;

use crate::coordinator::IdempotencyAnswer;
use crate::namespaces::Namespaces;
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::MAX_EPOCH_BYTES;

use super::round::{self, Round, Tag, Target};
use super::scripts::{self, Claim};
use super::{functions, keys, link, presence, status, worker};

mod engine;

pub use engine::engine_config;

/// Reads `bytes` with the `redis` crate's own RESP2/RESP3 parser (the one
/// the client hands us values from) and checks every parser on the value.
pub fn check_resp(bytes: &[u8]) {
    if let Ok(value) = redis::parse_redis_value(bytes) {
        check_reply(&value);
    }
}

/// Checks every reply parser, and the engine, on `v`.
pub fn check_reply(v: &Value) {
    generic(v);
    slot_masters(v);
    streams(v);
    presence_list(v);
    idempotency(v);
    identity(v);
    status_read(v);
    presence_sweep(v);
    push(v);
    engine::check(v);
}

/// A number as our functions return it: an integer, or a bulk string of
/// decimal digits (read again here, not with the parsers' helper).
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(b) => {
            let digits = b.strip_prefix(b"+").unwrap_or(b);
            if digits.is_empty() {
                return None;
            }
            digits.iter().try_fold(0u64, |n, &d| {
                let d = d.is_ascii_digit().then(|| u64::from(d - b'0'))?;
                n.checked_mul(10)?.checked_add(d)
            })
        }
        _ => None,
    }
}

/// A string reply: a UTF-8 bulk string or a simple string.
fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// The items of an array reply.
fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        _ => &[],
    }
}

/// The string members of a set reply (non-strings skipped), `None` when it
/// is not a set (or array, or nil).
fn members(v: &Value) -> Option<Vec<String>> {
    let items = match v {
        Value::Array(items) | Value::Set(items) => &items[..],
        Value::Nil => &[],
        _ => return None,
    };
    Some(items.iter().filter_map(text).map(str::to_owned).collect())
}

/// An epoch a client (and the server API) can send back.
fn assert_epoch(epoch: &str, v: &Value) {
    assert!(
        !epoch.is_empty() && epoch.len() <= MAX_EPOCH_BYTES,
        "epoch {epoch:?} accepted from {v:?}"
    );
}

/// Integer, set and `SCAN` replies; a command's error.
fn generic(v: &Value) {
    let int = match v {
        Value::Int(n) => Some(*n),
        _ => None,
    };
    assert_eq!(round::as_int(v), int);
    assert_eq!(round::as_strings(v.clone()), members(v));
    if let Some((cursor, keys)) = round::as_scan_page(v.clone()) {
        let [c, page] = items(v) else {
            panic!("a scan page is [cursor, keys]: {v:?}")
        };
        let said = match c {
            Value::SimpleString(s) => number(&Value::BulkString(s.clone().into_bytes())),
            c => number(c),
        };
        assert_eq!(Some(cursor), said, "{v:?}");
        assert_eq!(Some(keys), members(page));
    }
    match link::to_reply(v.clone()) {
        Err(e) => assert!(matches!(v, Value::ServerError(_)), "{e}"),
        Ok(same) => assert!(same == *v && !matches!(v, Value::ServerError(_))),
    }
}

/// `CLUSTER SLOTS`: each master is the first node of its range, in order.
fn slot_masters(v: &Value) {
    let listed: Vec<(String, u16)> = items(v)
        .iter()
        .filter_map(|range| {
            let node = items(items(range).get(2)?);
            let Value::Int(port) = node.get(1)? else {
                return None;
            };
            Some((text(node.first()?)?.to_owned(), u16::try_from(*port).ok()?))
        })
        .collect();
    assert_eq!(link::parse_slot_masters(v.clone()), listed, "{v:?}");
}

/// `wss_append` (`[offset, epoch]`) and `wss_read` (`[top, epoch,
/// complete, entries…]`).
fn streams(v: &Value) {
    if let Some(at) = functions::parse_appended(v) {
        let [offset, epoch, ..] = items(v) else {
            panic!("an append is [offset, epoch]: {v:?}")
        };
        assert_eq!(number(offset), Some(at.offset));
        assert!(at.offset >= 1, "entries are numbered from 1: {v:?}");
        assert_eq!(text(epoch), Some(&*at.epoch));
        assert_epoch(&at.epoch, v);
    }
    if let Some(page) = functions::parse_page(v.clone()) {
        let [top, epoch, complete, entries @ ..] = items(v) else {
            panic!("a page is [top, epoch, complete, entries…]: {v:?}")
        };
        assert_eq!(number(top), Some(page.top));
        assert_eq!(text(epoch), Some(&*page.epoch));
        assert_epoch(&page.epoch, v);
        assert_eq!(page.complete, number(complete) == Some(1));
        assert_eq!(page.entries.len(), entries.len(), "every entry or none");
        for (got, said) in page.entries.iter().zip(entries) {
            assert!(matches!(said, Value::BulkString(b) if b[..] == got[..]));
        }
        // Entries carry distinct offsets 1..=top; an incomplete read has none.
        assert!(page.entries.len() as u64 <= page.top, "{v:?}");
        assert!(page.complete || page.entries.is_empty(), "{v:?}");
    }
}

/// `wss_presence_list`: `[truncated, users, connections, user, count, …]`,
/// at most the asked cap of users.
fn presence_list(v: &Value) {
    for cap in [0, 1, 2, 100] {
        let Some(page) = functions::presence::parse_list(v.clone(), cap) else {
            continue;
        };
        let [truncated, users, connections, listed @ ..] = items(v) else {
            panic!("a presence page has three counts: {v:?}")
        };
        assert_eq!(Some(page.user_count), number(users));
        assert_eq!(Some(page.connections), number(connections));
        assert_eq!(page.truncated, cap > 0 && number(truncated) == Some(1));
        assert!(page.users.len() <= cap as usize, "cap {cap}: {v:?}");
        assert_eq!(page.users.len() * 2, listed.len(), "every user or none");
        for ((user, n), said) in page.users.iter().zip(listed.chunks(2)) {
            assert!(matches!(&said[0], Value::BulkString(b) if b[..] == *user.as_bytes()));
            assert_eq!(number(&said[1]), Some(u64::from(*n)));
        }
    }
}

/// `wss_idem_claim`: `[1]` (fresh) or `[0, answer]` (`''`: in progress).
fn idempotency(v: &Value) {
    let Some(answer) = functions::parse_claim(v.clone()) else {
        return;
    };
    let said = items(v);
    let state = said.first().and_then(number);
    match &answer {
        IdempotencyAnswer::Fresh => assert_eq!(state, Some(1), "{v:?}"),
        IdempotencyAnswer::InProgress => {
            assert_eq!(state, Some(0), "{v:?}");
            assert!(matches!(said.get(1), Some(Value::BulkString(b)) if b.is_empty()));
        }
        IdempotencyAnswer::Replay(answer) => {
            assert_eq!(state, Some(0), "{v:?}");
            assert!(!answer.is_empty());
            assert!(matches!(said.get(1), Some(Value::BulkString(b)) if b[..] == answer[..]));
        }
        IdempotencyAnswer::Settled => panic!("a claim is never settled: {v:?}"),
    }
}

/// The liveness claim (`1` or `[holder, pttl]`) and the epoch marker
/// (`[marker, now_ms]`): scripts we send ourselves, so exactly these shapes.
fn identity(v: &Value) {
    let claim = match v {
        Value::Int(1) => Some(Claim::Ours),
        Value::Array(parts) => match &parts[..] {
            [holder, Value::Int(pttl_ms)] => text(holder).map(|holder| Claim::Held {
                holder: holder.to_owned(),
                pttl_ms: *pttl_ms,
            }),
            _ => None,
        },
        _ => None,
    };
    assert_eq!(scripts::parse_claim(v), claim, "{v:?}");
    let epoch = match items(v) {
        [marker, Value::Int(now)] => text(marker).zip(u64::try_from(*now).ok()),
        _ => None,
    };
    let parsed = scripts::parse_epoch(v);
    assert_eq!(parsed.as_ref().map(|(m, n)| (&m[..], *n)), epoch, "{v:?}");
    if let Some((marker, _)) = parsed {
        let _ = scripts::epoch_created_ms(&marker);
    }
}

/// A user status read: the route set, then each server's liveness.
fn status_read(v: &Value) {
    let checks = status::on_members(7, Some(v.clone()));
    let servers = members(v);
    assert_eq!(
        checks.as_ref().map(Vec::len),
        servers.as_ref().map(Vec::len)
    );
    for ((_, target, tag), server) in checks.into_iter().flatten().zip(servers.iter().flatten()) {
        assert_eq!(target, Target::Key(keys::alive_key(server)));
        let server = server.clone();
        assert_eq!(tag, Tag::StatusAlive { id: 7, server });
    }
    assert!(status::on_members(7, None).is_none());
    let mut p = status::Pending::new(0, 1);
    p.waiting = Some(1);
    let done = status::on_alive(&mut p, "s2".into(), Some(v));
    let alive = match v {
        Value::Int(n) => Some(*n > 0),
        _ => None,
    };
    assert_eq!(done, alive.map(|_| true));
    assert_eq!(p.live.len(), usize::from(alive == Some(true)));
}

/// The presence sweep: servers with presence, a server's liveness, a dead
/// server's channels; each queues exactly what the reply lists.
fn presence_sweep(v: &Value) {
    let now = Instant::now();
    let ns = Namespaces::default();
    let queued = |p: &mut presence::Presence| {
        let mut round = Round::default();
        p.build(&mut round, "me", &ns, false, 1, now);
        round.tags
    };
    let mut p = presence::Presence::new(Duration::from_secs(60), now);
    p.on_servers(Some(v.clone()), "me");
    let others = members(v).unwrap_or_default();
    let others = others.iter().filter(|s| *s != "me").count();
    let tags = queued(&mut p);
    assert_eq!(tags.len(), others);
    assert!(tags.iter().all(|t| matches!(t, Tag::PresenceAlive { .. })));

    p.on_alive("s2".into(), Some(v));
    let dead = queued(&mut p);
    assert_eq!(dead.len(), usize::from(*v == Value::Int(0)), "{v:?}");

    p.on_dead_channels("s2".into(), Some(v.clone()), &ns, false, 1);
    let expected = members(v).map(|channels| {
        let valid = channels.iter().filter(|c| ChannelName::parse(c).is_some());
        valid.count() + 2 // each channel's part, then DEL and SREM
    });
    assert_eq!(queued(&mut p).len(), expected.unwrap_or(0), "{v:?}");
}

/// A pub/sub push's data: `[channel, payload]`.
fn push(v: &Value) {
    let (Value::Array(data) | Value::Push { data, .. }) = v else {
        return;
    };
    let Some((channel, payload)) = worker::message_payload(data.clone()) else {
        return;
    };
    let said = match data.first() {
        Some(Value::BulkString(b)) => b.clone(),
        Some(Value::SimpleString(s)) => s.clone().into_bytes(),
        other => panic!("channel accepted from {other:?}"),
    };
    assert_eq!(channel, said);
    assert!(matches!(data.get(1), Some(Value::BulkString(b)) if b[..] == payload[..]));
}

#[cfg(test)]
mod tests;
