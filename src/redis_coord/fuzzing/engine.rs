//! The engine with one request of each kind in flight, every command of
//! every round answered with the same reply: each request is answered
//! exactly once, with what the parser made of the reply (`None` or
//! `Failed` for a bad one), and a command's error is counted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::Value;

use crate::coordinator::{
    Appended, IdempotencyAnswer, LocalRouter, PresencePage, PublishOutcome, RemoteOutcome, ReplyTo,
    Retention, StreamKey, StreamPage, StreamQuery, UserOp,
};
use crate::metrics::{Counter, ShardMetrics};
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;
use crate::redis_coord::engine::{Command, Engine, EngineConfig, Refused};

use super::{functions, link, members, scripts, Claim, Tag};

/// What the engine answered a request.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Outcome(RemoteOutcome),
    RouteAdded,
    Published(PublishOutcome),
    Stream(Option<StreamPage>),
    Inbox(Option<Appended>),
    Presence(Option<PresencePage>),
    Servers(Option<Vec<String>>),
    Idempotency(Option<IdempotencyAnswer>),
}

/// The router: answers by token (deliveries are not requests: ignored).
#[derive(Default)]
struct Answers(Mutex<Vec<(u64, Answer)>>);

impl Answers {
    fn push(&self, token: u64, answer: Answer) {
        self.0.lock().unwrap().push((token, answer));
    }

    fn to(&self, token: u64) -> Vec<Answer> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, a)| a.clone())
            .collect()
    }
}

impl LocalRouter for Answers {
    fn deliver_direct(&self, _: UserId, _: Bytes, _: Option<ReplyTo>, _: u64) {}
    fn deliver_broadcast(&self, _: Bytes, _: u64) {}
    fn remote_outcome(&self, _: u16, token: u64, outcome: RemoteOutcome) {
        self.push(token, Answer::Outcome(outcome));
    }
    fn route_added(&self, _: u16, token: u64) {
        self.push(token, Answer::RouteAdded);
    }
    fn reregister_routes(&self) {}
    fn channel_subscribed(&self, _: u16, _: u64) {}
    fn deliver_publication(&self, _: ChannelName, _: Bytes, _: Option<u64>, _: u64) {}
    fn published(&self, _: u16, token: u64, outcome: PublishOutcome) {
        self.push(token, Answer::Published(outcome));
    }
    fn stream_read(&self, _: u16, token: u64, page: Option<StreamPage>) {
        self.push(token, Answer::Stream(page));
    }
    fn inbox_appended(&self, _: u16, token: u64, at: Option<Appended>) {
        self.push(token, Answer::Inbox(at));
    }
    fn presence_read(&self, _: u16, token: u64, page: Option<PresencePage>) {
        self.push(token, Answer::Presence(page));
    }
    fn deliver_user_op(&self, _: UserId, _: UserOp, _: Option<ReplyTo>) {}
    fn user_servers(&self, _: u16, token: u64, servers: Option<Vec<String>>) {
        self.push(token, Answer::Servers(servers));
    }
    fn idempotency_answer(&self, _: u16, token: u64, answer: Option<IdempotencyAnswer>) {
        self.push(token, Answer::Idempotency(answer));
    }
}

/// The engine settings of the tests and fuzz targets: server `me` (boot
/// id `boot-me`), no namespaces, a 10 s liveness TTL, a 30 s sweep, a 5 s
/// delivery timeout and a 3 s grace for a new route table.
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        server_id: "me".into(),
        liveness_ttl: Duration::from_secs(10),
        sweep_interval: Duration::from_secs(30),
        delivery_timeout: Duration::from_secs(5),
        namespaces: Default::default(),
        boot_id: "boot-me".into(),
        table_grace: Duration::from_secs(3),
    }
}

/// A connected engine (standalone) and what it answers.
fn engine(now: Instant) -> (Engine, Arc<Answers>, Arc<ShardMetrics>) {
    let answers = Arc::new(Answers::default());
    let metrics = Arc::new(ShardMetrics::new());
    let cfg = engine_config();
    let mut e = Engine::new(cfg, answers.clone(), metrics.clone(), now);
    e.connected(vec![None], false, now);
    (e, answers, metrics)
}

/// One request of each kind, the token saying which.
fn requests() -> Vec<Command> {
    let user = UserId::parse("bob").unwrap();
    let channel = ChannelName::parse("room").unwrap();
    let retention = Retention {
        size: 10,
        ttl: Duration::from_secs(60),
    };
    let (shard, json) = (0, Bytes::from_static(b"{\"type\":\"publication\"}"));
    let query = StreamQuery {
        since: Some((3, "e1".into())),
        limit: 10,
        retention,
    };
    let key = StreamKey::Channel(channel.clone());
    let (user2, channel2, json2) = (user.clone(), channel.clone(), json.clone());
    let read_presence = |cap, token| Command::ReadPresence {
        channel: channel.clone(),
        cap,
        shard,
        token,
    };
    let idempotency = |answer, token| Command::Idempotency {
        key: "k1".into(),
        answer,
        shard,
        token,
    };
    let publish = |history, token| Command::Publish {
        channel: channel.clone(),
        json: json.clone(),
        history,
        shard,
        token,
        sent_at_us: 1,
    };
    vec![
        Command::AddRoute {
            user: user.clone(),
            shard,
            token: 1,
        },
        Command::Direct {
            user: user.clone(),
            frame: Bytes::from_static(b"\x81\x02hi"),
            shard,
            token: 2,
            sent_at_us: 1,
        },
        Command::UserServers {
            user: user.clone(),
            shard,
            token: 3,
        },
        Command::ReadStream {
            key,
            query,
            shard,
            token: 4,
        },
        Command::AppendInbox {
            user: user2,
            json: json2,
            retention,
            shard,
            token: 5,
        },
        read_presence(5, 6),
        read_presence(0, 7),
        idempotency(None, 8),
        idempotency(Some(Bytes::from_static(b"answer")), 9),
        publish(Some(retention), 10),
        publish(None, 11),
        Command::PresenceChanges {
            channel: channel2,
            changes: vec![(user, 1)],
        },
    ]
}

/// Checks the engine on `v` as every command's reply.
pub(super) fn check(v: &Value) {
    let reply = link::to_reply(v.clone());
    let ok = reply.as_ref().ok();
    let now = Instant::now();
    let (mut e, answers, metrics) = engine(now);
    for cmd in requests() {
        assert!(e.on_command(cmd, now));
    }
    // Follow-ups (liveness checks, publishes) get the same reply; a few
    // rounds reach every step that a reply can lead to.
    for _ in 0..6 {
        let round = e.build_round(now);
        let replies = round.tags.iter().map(|_| reply.clone()).collect();
        e.on_replies(round.tags, replies, now);
    }
    e.tick(now + Duration::from_secs(6));

    let appended = ok.and_then(functions::parse_appended);
    let kept = match &appended {
        Some(at) => PublishOutcome::Published {
            offset: Some(at.offset),
            epoch: Some(at.epoch.clone()),
        },
        None => PublishOutcome::Failed,
    };
    let published = match ok {
        Some(_) => PublishOutcome::Published {
            offset: None,
            epoch: None,
        },
        None => PublishOutcome::Failed,
    };
    // A route set lists servers whose liveness comes next (and `v` is then
    // no integer: failed); an empty one is an answer.
    let servers = ok.and_then(members).filter(Vec::is_empty);
    let list = |cap| ok.and_then(|v| functions::presence::parse_list(v.clone(), cap));
    let expected = [
        (1, Answer::RouteAdded),
        (3, Answer::Servers(servers)),
        (
            4,
            Answer::Stream(ok.and_then(|v| functions::parse_page(v.clone()))),
        ),
        (5, Answer::Inbox(appended.clone())),
        (6, Answer::Presence(list(5))),
        (7, Answer::Presence(list(0))),
        (
            8,
            Answer::Idempotency(ok.and_then(|v| functions::parse_claim(v.clone()))),
        ),
        (
            9,
            Answer::Idempotency(ok.map(|_| IdempotencyAnswer::Settled)),
        ),
        (10, Answer::Published(kept)),
        (11, Answer::Published(published)),
    ];
    for (token, answer) in expected {
        assert_eq!(answers.to(token), vec![answer], "token {token}, {v:?}");
    }
    let outcome = answers.to(2);
    assert!(
        matches!(&outcome[..], [Answer::Outcome(_)]),
        "one outcome per direct message: {outcome:?}, {v:?}"
    );
    let kept = u64::from(appended.is_some());
    assert_eq!(metrics.get(Counter::PublicationsKept), kept);
    assert_eq!(metrics.get(Counter::RedisErrors) > 0, ok.is_none(), "{v:?}");

    handshake(v, &reply);
    other_tags(e, &answers, &reply);
}

/// The connection handshake: claim, epoch, two function loads.
fn handshake(v: &Value, reply: &Result<Value, String>) {
    let now = Instant::now();
    let (mut e, ..) = engine(now);
    let refused = e.on_handshake(vec![reply.clone(); 4], now).unwrap_err();
    match (reply.as_ref().ok().and_then(scripts::parse_claim), refused) {
        (
            Some(Claim::Held { holder, pttl_ms }),
            Refused::Held {
                holder: h,
                pttl_ms: p,
            },
        ) => {
            assert_eq!((holder, pttl_ms), (h, p));
        }
        (Some(Claim::Held { .. }), other) => panic!("held, yet {other:?}: {v:?}"),
        (_, refused) => assert!(matches!(refused, Refused::Error(_)), "{refused:?}"),
    }
    let claimed = vec![
        Ok(Value::Int(1)),
        reply.clone(),
        Ok(Value::Okay),
        Ok(Value::Okay),
    ];
    let epoch = reply.as_ref().ok().and_then(scripts::parse_epoch);
    assert_eq!(e.on_handshake(claimed, now).is_ok(), epoch.is_some());
}

/// The replies no request waits for (sweep, presence sweep, liveness,
/// publishes of others, our own writes), then the rounds they lead to.
fn other_tags(mut e: Engine, answers: &Answers, reply: &Result<Value, String>) {
    let now = Instant::now();
    let server = || "s2".to_owned();
    let tags = vec![
        Tag::SweepScan,
        Tag::SweepMembers { user: "bob".into() },
        Tag::PresenceServers,
        Tag::PresenceAlive { server: server() },
        Tag::PresenceChannels { server: server() },
        Tag::StaleRemove,
        Tag::Exists { server: server() },
        Tag::PublishOther { confirm: true },
        Tag::Alive,
        Tag::Epoch,
        Tag::Release,
        Tag::Functions,
        Tag::Presence,
        Tag::RouteWrite {
            user: UserId::parse("bob").unwrap(),
            add: true,
            waiters: vec![(0, 99)],
            swept: true,
        },
    ];
    let replies = tags.iter().map(|_| reply.clone()).collect();
    e.on_replies(tags, replies, now);
    let _ = e.take_conflict();
    for _ in 0..3 {
        let round = e.build_round(now);
        let replies = round.tags.iter().map(|_| reply.clone()).collect();
        e.on_replies(round.tags, replies, now);
    }
    assert_eq!(answers.to(99), vec![Answer::RouteAdded]);
}
