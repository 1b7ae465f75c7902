//! Unit tests of the engine: batching, aggregation and failure handling,
//! driven with a recording router and hand-made replies.

use std::sync::Mutex;

use redis::Value;

use super::*;
use crate::coordinator::{
    Appended, IdempotencyAnswer, LocalRouter, PresencePage, RemoteOutcome, ReplyTo, StreamPage,
    UserOp,
};
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;
use crate::redis_coord::envelope::{self, Envelope};

/// What the engine asked of the router.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Direct(String, Vec<u8>, Option<ReplyTo>),
    Broadcast(Vec<u8>),
    Outcome(u16, u64, RemoteOutcome),
    RouteAdded(u16, u64),
    Reregister,
    ChannelSubscribed(u16, u64),
    Publication(String, Vec<u8>, Option<u64>),
    Published(u16, u64, PublishOutcome),
    StreamRead(u16, u64, Option<StreamPage>),
    InboxAppended(u16, u64, Option<Appended>),
    PresenceRead(u16, u64, Option<PresencePage>),
    UserOp(String, UserOp, Option<ReplyTo>),
    UserServers(u16, u64, Option<Vec<String>>),
    Idempotency(u16, u64, Option<IdempotencyAnswer>),
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Call>>);

impl Recorder {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
    fn push(&self, c: Call) {
        self.0.lock().unwrap().push(c);
    }
}

impl LocalRouter for Recorder {
    fn deliver_direct(&self, user: UserId, frame: Bytes, reply: Option<ReplyTo>, _: u64) {
        self.push(Call::Direct(user.to_string(), frame.to_vec(), reply));
    }
    fn deliver_broadcast(&self, frame: Bytes, _: u64) {
        self.push(Call::Broadcast(frame.to_vec()));
    }
    fn remote_outcome(&self, shard: u16, token: u64, outcome: RemoteOutcome) {
        self.push(Call::Outcome(shard, token, outcome));
    }
    fn route_added(&self, shard: u16, token: u64) {
        self.push(Call::RouteAdded(shard, token));
    }
    fn reregister_routes(&self) {
        self.push(Call::Reregister);
    }
    fn channel_subscribed(&self, shard: u16, token: u64) {
        self.push(Call::ChannelSubscribed(shard, token));
    }
    fn deliver_publication(&self, channel: ChannelName, frame: Bytes, offset: Option<u64>, _: u64) {
        self.push(Call::Publication(
            channel.to_string(),
            frame.to_vec(),
            offset,
        ));
    }
    fn published(&self, shard: u16, token: u64, outcome: PublishOutcome) {
        self.push(Call::Published(shard, token, outcome));
    }
    fn stream_read(&self, shard: u16, token: u64, page: Option<StreamPage>) {
        self.push(Call::StreamRead(shard, token, page));
    }
    fn inbox_appended(&self, shard: u16, token: u64, at: Option<Appended>) {
        self.push(Call::InboxAppended(shard, token, at));
    }
    fn presence_read(&self, shard: u16, token: u64, page: Option<PresencePage>) {
        self.push(Call::PresenceRead(shard, token, page));
    }
    fn deliver_user_op(&self, user: UserId, op: UserOp, reply: Option<ReplyTo>) {
        self.push(Call::UserOp(user.to_string(), op, reply));
    }
    fn user_servers(&self, shard: u16, token: u64, servers: Option<Vec<String>>) {
        self.push(Call::UserServers(shard, token, servers));
    }
    fn idempotency_answer(&self, shard: u16, token: u64, answer: Option<IdempotencyAnswer>) {
        self.push(Call::Idempotency(shard, token, answer));
    }
}

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn engine() -> (Engine, Arc<Recorder>, Arc<ShardMetrics>, Instant) {
    let now = Instant::now();
    let rec = Arc::new(Recorder::default());
    let metrics = Arc::new(ShardMetrics::new());
    let cfg = crate::redis_coord::fuzzing::engine_config();
    let mut e = Engine::new(cfg, rec.clone(), metrics.clone(), now);
    e.connected(vec![None], false, now);
    assert_eq!(rec.take(), vec![Call::Reregister]);
    (e, rec, metrics, now)
}

/// Command names of a round, in order.
fn names(round: &Round) -> Vec<String> {
    round
        .cmds
        .iter()
        .map(|c| {
            let packed = c.get_packed_command();
            let text = String::from_utf8_lossy(&packed);
            text.split("\r\n").nth(2).unwrap_or_default().to_owned()
        })
        .collect()
}

/// Replies every command of `round` with `f(tag)`.
fn answer(e: &mut Engine, round: Round, now: Instant, f: impl Fn(&Tag) -> Value) {
    let replies = round.tags.iter().map(|t| Ok(f(t))).collect();
    e.on_replies(round.tags, replies, now);
}

/// Argument `n` of command `i` of `round`.
fn arg(round: &Round, i: usize, n: usize) -> Bytes {
    match round.cmds[i].args_iter().nth(n) {
        Some(redis::Arg::Simple(b)) => Bytes::copy_from_slice(b),
        _ => panic!("no argument {n} in command {i}"),
    }
}

fn direct(e: &mut Engine, to: &str, token: u64, now: Instant) {
    let cmd = Command::Direct {
        user: user(to),
        frame: Bytes::from_static(b"F"),
        shard: 1,
        token,
        sent_at_us: 5,
    };
    assert!(e.on_command(cmd, now));
}

#[test]
fn queued_work_goes_out_as_one_round() {
    let (mut e, rec, _, now) = engine();
    let first = e.build_round(now);
    assert_eq!(
        names(&first),
        vec!["SCAN"],
        "the start-up sweep begins at once"
    );
    answer(&mut e, first, now, |_| {
        Value::Array(vec![Value::BulkString(b"0".to_vec()), Value::Array(vec![])])
    });
    let later = now + Duration::from_secs(4);
    assert_eq!(
        names(&e.build_round(later)),
        vec!["EVAL", "EVAL"],
        "liveness claim and epoch check after ttl/3"
    );
    e.on_command(
        Command::AddRoute {
            user: user("a"),
            shard: 0,
            token: 7,
        },
        now,
    );
    e.on_command(
        Command::AddRoute {
            user: user("b"),
            shard: 1,
            token: 8,
        },
        now,
    );
    direct(&mut e, "c", 9, now);
    e.on_command(
        Command::Broadcast {
            frame: Bytes::from_static(b"B"),
            sent_at_us: 1,
        },
        now,
    );
    let round = e.build_round(now);
    assert_eq!(names(&round), vec!["SADD", "SADD", "SMEMBERS", "PUBLISH"]);
    answer(&mut e, round, now, |t| match t {
        Tag::Lookup { .. } => Value::Set(vec![]),
        _ => Value::Int(1),
    });
    let mut calls = rec.take();
    calls.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        calls,
        vec![
            Call::Outcome(1, 9, RemoteOutcome::Offline),
            Call::RouteAdded(0, 7),
            Call::RouteAdded(1, 8)
        ]
    );
    assert!(e.build_round(now).is_empty(), "idle");
}

#[test]
fn a_remote_direct_is_confirmed_and_summed() {
    let (mut e, rec, _, now) = engine();
    e.build_round(now);
    direct(&mut e, "bob", 9, now);
    let lookup = e.build_round(now);
    answer(&mut e, lookup, now, |_| {
        Value::Set(vec![Value::BulkString(b"s2".to_vec())])
    });
    let exists = e.build_round(now);
    assert_eq!(names(&exists), vec!["EXISTS"]);
    answer(&mut e, exists, now, |_| Value::Int(1));
    let publish = e.build_round(now);
    assert_eq!(names(&publish), vec!["PUBLISH"]);
    let Ok(Envelope::Direct { token, origin, .. }) = envelope::decode(arg(&publish, 0, 2)) else {
        panic!("not a direct")
    };
    assert_eq!(origin, "me");
    answer(&mut e, publish, now, |_| Value::Int(1));
    assert!(rec.take().is_empty(), "waits for the confirmation");
    e.on_message(envelope::encode_confirm("s2", token, 2), now);
    assert_eq!(
        rec.take(),
        vec![Call::Outcome(
            1,
            9,
            RemoteOutcome::Delivered { connections: 2 }
        )]
    );
}

#[test]
fn incoming_direct_is_delivered_and_confirmed_after_every_part() {
    let (mut e, rec, _, now) = engine();
    e.build_round(now);
    e.on_message(envelope::encode_direct("s2", 44, 5, "bob", b"F"), now);
    let calls = rec.take();
    let Call::Direct(u, frame, Some(ReplyTo::Coordinator { token: key })) = &calls[0] else {
        panic!("{calls:?}")
    };
    assert_eq!((u.as_str(), frame.as_slice()), ("bob", &b"F"[..]));
    e.on_command(
        Command::Report {
            key: *key,
            connections: 1,
            parts: 2,
        },
        now,
    );
    assert!(e.build_round(now).is_empty(), "one part missing");
    e.on_command(
        Command::Report {
            key: *key,
            connections: 2,
            parts: 2,
        },
        now,
    );
    let round = e.build_round(now);
    assert_eq!(
        round.targets,
        vec![super::super::round::Target::Key("server:s2".into())]
    );
    let confirm = envelope::decode(arg(&round, 0, 2)).unwrap();
    assert_eq!(
        confirm,
        Envelope::Confirm {
            origin: "me".into(),
            token: 44,
            connections: 3
        }
    );
}

#[test]
fn no_ack_direct_is_delivered_without_confirmation() {
    let (mut e, rec, _, now) = engine();
    e.on_message(envelope::encode_direct("s2", 0, 5, "bob", b"F"), now);
    assert_eq!(
        rec.take(),
        vec![Call::Direct("bob".into(), b"F".to_vec(), None)]
    );
}

#[test]
fn own_broadcasts_are_skipped_and_garbage_is_counted() {
    let (mut e, rec, metrics, now) = engine();
    e.on_message(envelope::encode_broadcast("me", 1, b"B"), now);
    e.on_message(envelope::encode_broadcast("s2", 1, b"B"), now);
    e.on_message(Bytes::from_static(b"garbage"), now);
    assert_eq!(rec.take(), vec![Call::Broadcast(b"B".to_vec())]);
    assert_eq!(metrics.get(Counter::RedisErrors), 1);
}

#[test]
fn while_down_routes_are_confirmed_and_sends_fail_then_routes_flush() {
    let (mut e, rec, _, now) = engine();
    e.disconnected();
    e.on_command(
        Command::AddRoute {
            user: user("a"),
            shard: 0,
            token: 1,
        },
        now,
    );
    e.on_command(Command::RemoveRoute { user: user("z") }, now);
    direct(&mut e, "bob", 2, now);
    assert!(e.build_round(now).is_empty());
    assert_eq!(
        rec.take(),
        vec![
            Call::RouteAdded(0, 1),
            Call::Outcome(1, 2, RemoteOutcome::Failed)
        ]
    );
    e.connected(vec![None], false, now);
    let mut writes = names(&e.build_round(now));
    writes.truncate(2);
    writes.sort();
    assert_eq!(writes, vec!["SADD", "SREM"]);
}

#[test]
fn lost_round_fails_pending_sends_and_requeues_route_writes() {
    let (mut e, rec, _, now) = engine();
    e.build_round(now);
    e.on_command(Command::RemoveRoute { user: user("a") }, now);
    direct(&mut e, "bob", 3, now);
    let round = e.build_round(now);
    e.on_round_failed(round.tags);
    assert_eq!(rec.take(), vec![Call::Outcome(1, 3, RemoteOutcome::Failed)]);
    e.connected(vec![None], false, now);
    assert_eq!(names(&e.build_round(now))[0], "SREM");
}

#[test]
fn dead_route_is_removed_lazily_and_counted() {
    let (mut e, rec, metrics, now) = engine();
    e.build_round(now);
    direct(&mut e, "bob", 4, now);
    let lookup = e.build_round(now);
    answer(&mut e, lookup, now, |_| {
        Value::Array(vec![Value::BulkString(b"gone".to_vec())])
    });
    let exists = e.build_round(now);
    answer(&mut e, exists, now, |_| Value::Int(0));
    assert_eq!(
        rec.take(),
        vec![Call::Outcome(1, 4, RemoteOutcome::Offline)]
    );
    let removal = e.build_round(now);
    assert_eq!(names(&removal), vec!["SREM"]);
    answer(&mut e, removal, now, |_| Value::Int(1));
    assert_eq!(metrics.get(Counter::RoutesSwept), 1);
}

mod identity;

/// An unsubscribe notice is ours only when it confirms an unsubscribe the
/// engine sent; one Redis sent on its own (a Cluster slot moved) or one for
/// this server's channel means the link must be replaced.
#[test]
fn unsubscribe_notices_tell_ours_from_redis_dropping_a_subscription() {
    let (mut e, _rec, _, now) = engine();
    let channel = ChannelName::parse("room").unwrap();
    let subscribe = Command::SubscribeChannel {
        channel: channel.clone(),
        shard: 0,
        token: 1,
    };
    assert!(e.on_command(subscribe, now));
    let round = e.build_round(now);
    e.on_channels_applied(&round.channels, true);
    assert!(e.on_unsubscribed(b"ch:{room}"), "dropped by Redis");
    assert!(e.on_unsubscribed(b"server:s1"), "never ours");
    assert!(e.on_command(Command::UnsubscribeChannel { channel }, now));
    let round = e.build_round(now);
    assert_eq!(round.channels.unsubscribe.len(), 1);
    e.on_channels_applied(&round.channels, true);
    assert!(!e.on_unsubscribed(b"ch:{room}"), "the confirmation of ours");
}
