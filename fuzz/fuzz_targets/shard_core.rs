//! The I/O-free shard core (`ShardCore`), driven by arbitrary event
//! sequences on a bus of 1 to 3 shards, embedded or with a stand-in for the
//! coordination layer (Redis).
//!
//! Events: connections open (with `subs` channels) and close (slab slots
//! are reused, newest freed first, as the server's slab does); clients send
//! messages (through the real session, `session::handle_text`: subscribe,
//! unsubscribe, publish, history, presence, inbox, direct, broadcast, ...);
//! a refresh drops channels; the server API calls the core; cross-shard
//! messages are delivered in an order the fuzzer picks (FIFO per pair of
//! shards, like the mailboxes); the coordination layer answers its oldest
//! call, with success or failure; other instances send direct messages,
//! broadcasts, operations and publications; stale answers with guessed
//! tokens arrive; time passes (starting just before the shard clock wraps).
//!
//! Invariants:
//! - nothing panics, and a core never mails itself;
//! - no action names a closed connection by slab index (deliveries to
//!   `Indices`/`Members`, operations, welcomes): with slots reused, that
//!   would reach another connection; a chat message reaches only its
//!   receiver's connections, a publication only the channel's subscribers;
//! - subscriptions vanish with their connection;
//! - a welcome carries its own user's inbox position and only channels its
//!   connection was opened with;
//! - every client request with an id gets exactly one answer (`ack`,
//!   `error`, `subscribed`, ...) while its connection stays open, and every
//!   server API call exactly one reply;
//! - once every connection closed, every message was handled and every call
//!   answered and the deadlines passed, no core holds any state (no leak).
#![no_main]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use websocket_app::coordinator::{
    Appended, Delivery, PresencePage, PublishOutcome, RemoteOutcome, ReplyTo, Retention, StreamKey,
    UserOp,
};
use websocket_app::metrics::MetricsRegistry;
use websocket_app::namespaces::{NamespaceOptions, Namespaces};
use websocket_app::protocol::channel::ChannelName;
use websocket_app::protocol::envelope::server_v2::with_offset;
use websocket_app::protocol::frame::text_frame_with;
use websocket_app::protocol::UserId;
use websocket_app::ratelimit::{RateLimit, TokenBucket};
use websocket_app::session::{handle_text, Outcome, Rules, Sender, SessionState};
use websocket_app::shard::core::streams::Streams;
use websocket_app::shard::core::{
    Action, ApiCommand, ApiOutcome, CoordinatorCall, CoreConfig, ShardCore, Target,
};
use websocket_app::shard::{ConnKey, ShardMsg};

const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
/// Channels of every kind of namespace: plain, history, presence with
/// join/leave (rate-limited), both, and one that allows no client publish.
const CHANNELS: [&str; 7] = [
    "lobby", "hist:a", "hist:b", "pres:a", "both:a", "both:b", "ro:a",
];
/// Sender id of the coordination layer on the bus.
const COORD: u16 = u16::MAX;
/// The shard clock starts just before it wraps.
const START_MS: u32 = u32::MAX - 20_000;
/// Types of the frames that answer a client request (and carry its id).
const ANSWERS: [&str; 8] = [
    "ack",
    "error",
    "subscribed",
    "unsubscribed",
    "history",
    "presence",
    "presence_stats",
    "inbox",
];

fn namespaces() -> Namespaces {
    let base = NamespaceOptions {
        public: true,
        client_publish: true,
        ..NamespaceOptions::default()
    };
    let hist = NamespaceOptions {
        history_size: 3,
        history_ttl: Duration::from_secs(60),
        ..base.clone()
    };
    let pres = NamespaceOptions {
        presence: true,
        join_leave: true,
        join_leave_per_sec: 2,
        ..base.clone()
    };
    let both = NamespaceOptions {
        join_leave_per_sec: 0,
        ..NamespaceOptions {
            presence: true,
            join_leave: true,
            ..hist.clone()
        }
    };
    let ro = NamespaceOptions {
        client_publish: false,
        ..base.clone()
    };
    let named = [("hist", hist), ("pres", pres), ("both", both), ("ro", ro)]
        .into_iter()
        .map(|(n, o)| (n.to_owned(), o))
        .collect();
    Namespaces {
        default: base,
        named,
    }
}

#[derive(Arbitrary, Debug)]
struct Setup {
    shards: u8,
    remote: bool,
    inbox: bool,
    max_channels: u8,
}

#[derive(Arbitrary, Debug)]
enum Event {
    Open { shard: u8, user: u8, subs: u8 },
    Close { conn: u8 },
    Client { conn: u8, op: ClientOp, id: bool },
    Refresh { conn: u8, allowed: u8 },
    Api { shard: u8, op: ApiOp },
    Deliver { pick: u8 },
    Coordinator { ok: bool, n: u8 },
    Remote(RemoteOp),
    Stray { shard: u8, token: u8, msg: StrayMsg },
    Tick { ms: u16 },
}

#[derive(Arbitrary, Debug)]
enum ClientOp {
    Subscribe {
        ch: u8,
        recover: Option<(u8, u8)>,
    },
    Unsubscribe {
        ch: u8,
    },
    Publish {
        ch: u8,
    },
    History {
        ch: u8,
        since: Option<(u8, u8)>,
        limit: u8,
    },
    Presence {
        ch: u8,
        stats: bool,
    },
    Inbox {
        since: Option<(u8, u8)>,
    },
    Direct {
        to: u8,
    },
    Broadcast,
    Heartbeat,
    Garbage,
}

#[derive(Arbitrary, Debug)]
enum ApiOp {
    Publish { ch: u8 },
    Send { to: u8 },
    Broadcast,
    Disconnect { user: u8 },
    Subscribe { user: u8, ch: u8 },
    Unsubscribe { user: u8, ch: u8 },
    Presence { ch: u8 },
    History { ch: u8, limit: u8 },
    UserStatus { user: u8 },
    Claim { key: u8 },
    Settle { key: u8 },
}

#[derive(Arbitrary, Debug)]
enum RemoteOp {
    Direct { user: u8, token: u8 },
    Broadcast,
    UserOp { user: u8, op: u8, ch: u8 },
    Publication { ch: u8 },
}

/// Answers with a guessed token, as a late or duplicated answer would come.
#[derive(Arbitrary, Debug)]
enum StrayMsg {
    Registered,
    RouteAdded,
    InterestReady { ch: u8 },
    ChannelSubscribed,
    StreamRead { some: bool },
    Published { ok: bool },
    DeliveryReport { connections: u8, parts: u8 },
    RemoteOutcome,
    PresenceRead,
    InboxAppended,
}

/// One simulated connection.
#[derive(Debug)]
struct Conn {
    user: UserId,
    key: ConnKey,
    subs: Vec<ChannelName>,
    welcomed: bool,
    closing: bool,
    bucket: TokenBucket,
    next_message: u32,
    /// Ids of requests not answered yet, and ids answered.
    waiting: HashMap<String, String>,
}

/// A slab of connections per shard: a freed slot is reused first.
#[derive(Default)]
struct Slots {
    conns: Vec<Option<Conn>>,
    free: Vec<u32>,
    generation: u32,
}

struct Bus {
    cores: Vec<ShardCore>,
    slots: Vec<Slots>,
    channels: BTreeMap<(u16, u16), VecDeque<ShardMsg>>,
    coordinator: VecDeque<(u16, CoordinatorCall)>,
    /// The coordination layer's streams (remote mode), and whose inbox an
    /// epoch it handed out belongs to.
    streams: Streams,
    inbox_epochs: HashMap<Arc<str>, UserId>,
    epochs: Vec<Arc<str>>,
    remote: bool,
    now: u32,
    namespaces: Arc<Namespaces>,
    inbox: Option<Retention>,
    /// API calls not replied to yet, per shard.
    api_waiting: HashSet<(u16, u64)>,
    next_api: u64,
    next_id: u64,
}

impl Bus {
    fn new(s: &Setup) -> Self {
        let shards = u16::from(s.shards % 3) + 1;
        let namespaces = Arc::new(namespaces());
        let inbox = s.inbox.then_some(Retention {
            size: 3,
            ttl: Duration::from_secs(60),
        });
        // Built once: a registry's histograms are large, and counters
        // change nothing the core decides.
        static REGISTRY: OnceLock<Arc<MetricsRegistry>> = OnceLock::new();
        let registry = REGISTRY.get_or_init(|| MetricsRegistry::new(3));
        let cores = (0..shards)
            .map(|index| {
                let cfg = CoreConfig {
                    index,
                    shards,
                    remote: s.remote,
                    delivery_timeout_ms: 5_000,
                    max_channels: usize::from(s.max_channels % 4) + 1,
                    inbox,
                    max_recovery_bytes: 1 << 16,
                };
                let metrics = registry.shard(usize::from(index));
                let seed = u64::from(index) + 1;
                ShardCore::new(cfg, metrics, namespaces.clone(), "srv".into(), seed)
            })
            .collect();
        Bus {
            cores,
            slots: (0..shards).map(|_| Slots::default()).collect(),
            channels: BTreeMap::new(),
            coordinator: VecDeque::new(),
            streams: Streams::new(99),
            inbox_epochs: HashMap::new(),
            epochs: Vec::new(),
            remote: s.remote,
            now: START_MS,
            namespaces,
            inbox,
            api_waiting: HashSet::new(),
            next_api: 1,
            next_id: 1,
        }
    }

    fn shards(&self) -> u16 {
        self.cores.len() as u16
    }

    fn conn(&self, shard: u16, index: u32) -> Option<&Conn> {
        self.slots[usize::from(shard)]
            .conns
            .get(index as usize)
            .and_then(Option::as_ref)
    }

    fn conn_mut(&mut self, shard: u16, index: u32) -> Option<&mut Conn> {
        self.slots[usize::from(shard)]
            .conns
            .get_mut(index as usize)
            .and_then(Option::as_mut)
    }

    /// The `n`th open connection (in shard and slot order).
    fn pick_conn(&self, n: u8) -> Option<(u16, ConnKey)> {
        let all: Vec<(u16, ConnKey)> = self
            .slots
            .iter()
            .enumerate()
            .flat_map(|(s, slots)| slots.conns.iter().flatten().map(move |c| (s as u16, c.key)))
            .collect();
        (!all.is_empty()).then(|| all[usize::from(n) % all.len()])
    }

    fn open(&mut self, shard: u8, user: u8, subs: u8) {
        let shard = u16::from(shard) % self.shards();
        let user = UserId::parse(USERS[usize::from(user) % USERS.len()]).unwrap();
        let subs: Vec<ChannelName> = (0..CHANNELS.len())
            .filter(|i| subs & (1 << i) != 0)
            .map(|i| ChannelName::parse(CHANNELS[i]).unwrap())
            .collect();
        let slots = &mut self.slots[usize::from(shard)];
        let index = slots.free.pop().unwrap_or(slots.conns.len() as u32);
        slots.generation += 1;
        let key = ConnKey {
            index,
            generation: slots.generation,
        };
        if index as usize == slots.conns.len() {
            slots.conns.push(None);
        }
        slots.conns[index as usize] = Some(Conn {
            user: user.clone(),
            key,
            subs: subs.clone(),
            welcomed: false,
            closing: false,
            bucket: TokenBucket::default(),
            next_message: 0,
            waiting: HashMap::new(),
        });
        self.cores[usize::from(shard)].conn_opened(key, &user, &subs);
        self.run(shard);
    }

    fn close(&mut self, shard: u16, key: ConnKey) {
        let slots = &mut self.slots[usize::from(shard)];
        let Some(conn) = slots.conns[key.index as usize].take() else {
            return;
        };
        slots.free.push(key.index);
        let core = &mut self.cores[usize::from(shard)];
        core.conn_closed(key, &conn.user);
        assert!(
            core.subscriptions_of(key.index).is_empty(),
            "subscriptions outlive their connection"
        );
        self.run(shard);
    }

    fn client(&mut self, shard: u16, key: ConnKey, op: &ClientOp, with_id: bool) {
        let id = with_id.then(|| {
            self.next_id += 1;
            format!("m{}", self.next_id)
        });
        let text = self.client_text(op, id.as_deref());
        let now = self.now;
        let namespaces = self.namespaces.clone();
        let inbox = self.inbox.is_some();
        let Some(conn) = self.conn_mut(shard, key.index) else {
            return;
        };
        let rules = Rules {
            max_message_bytes: 64 * 1024,
            broadcast_enabled: true,
            rate_limit: RateLimit::OFF,
            namespaces: &namespaces,
            inbox,
            max_json_depth: 64,
        };
        let user = conn.user.clone();
        let from = Sender {
            user: &user,
            connection_id: &"c1",
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            now_ms: now,
            insecure: true,
            grants: None,
        };
        let state = SessionState {
            bucket: &mut conn.bucket,
            next_message: &mut conn.next_message,
        };
        let outcome = handle_text(&text, &from, state, &rules);
        let answered = !matches!(
            outcome,
            Outcome::Latency(_) | Outcome::Close(_) | Outcome::Refresh { .. }
        );
        if let (Some(id), true) = (id, answered) {
            if !matches!(op, ClientOp::Heartbeat) {
                conn.waiting.insert(id, text.clone());
            }
        }
        self.cores[usize::from(shard)].client_outcome(key, outcome, 1, now);
        self.run(shard);
    }

    fn client_text(&self, op: &ClientOp, id: Option<&str>) -> String {
        let ch = |c: &u8| CHANNELS[usize::from(*c) % CHANNELS.len()];
        let position = |p: &Option<(u8, u8)>| {
            p.map(|(offset, e)| {
                let epoch = match self.epochs.len() {
                    0 => Arc::from("none"),
                    n => self.epochs[usize::from(e) % n].clone(),
                };
                json!({"offset": offset % 8, "epoch": &*epoch})
            })
        };
        let mut v = match op {
            ClientOp::Subscribe { ch: c, recover } => {
                let mut v = json!({"type": "subscribe", "channel": ch(c)});
                if let Some(p) = position(recover) {
                    v["recover"] = p;
                }
                v
            }
            ClientOp::Unsubscribe { ch: c } => json!({"type": "unsubscribe", "channel": ch(c)}),
            ClientOp::Publish { ch: c } => {
                json!({"type": "publish", "channel": ch(c), "payload": {"n": self.next_id}})
            }
            ClientOp::History {
                ch: c,
                since,
                limit,
            } => {
                let mut v = json!({"type": "history", "channel": ch(c), "limit": limit % 5});
                if let Some(p) = position(since) {
                    v["since"] = p;
                }
                v
            }
            ClientOp::Presence { ch: c, stats } => {
                let kind = if *stats { "presence_stats" } else { "presence" };
                json!({"type": kind, "channel": ch(c)})
            }
            ClientOp::Inbox { since } => {
                let mut v = json!({"type": "inbox"});
                if let Some(p) = position(since) {
                    v["since"] = p;
                }
                v
            }
            ClientOp::Direct { to } => json!({
                "type": "chat_message",
                "receiverID": USERS[usize::from(*to) % USERS.len()],
                "payload": {"n": self.next_id},
            }),
            ClientOp::Broadcast => json!({"type": "broadcast", "payload": self.next_id}),
            ClientOp::Heartbeat => json!({"type": "heartbeat"}),
            ClientOp::Garbage => json!({"type": "subscribe", "channel": "bad name"}),
        };
        if let Some(id) = id {
            v["id"] = json!(id);
        }
        v.to_string()
    }

    fn api(&mut self, shard: u8, op: &ApiOp) {
        let shard = u16::from(shard) % self.shards();
        let ch = |c: &u8| ChannelName::parse(CHANNELS[usize::from(*c) % CHANNELS.len()]).unwrap();
        let user = |u: &u8| UserId::parse(USERS[usize::from(*u) % USERS.len()]).unwrap();
        let frame = || text_frame_with(|out| out.extend_from_slice(br#"{"type":"server"}"#));
        let key = |k: &u8| Arc::from(format!("key-{}", k % 4));
        let cmd = match op {
            ApiOp::Publish { ch: c } => {
                let channel = ch(c);
                let json = json!({"type": "publication", "channel": &*channel, "id": "api"});
                ApiCommand::Publish {
                    channel,
                    json: Bytes::from(json.to_string()),
                }
            }
            ApiOp::Send { to } => ApiCommand::Send {
                user: user(to),
                frame: frame(),
            },
            ApiOp::Broadcast => ApiCommand::Broadcast { frame: frame() },
            ApiOp::Disconnect { user: u } => ApiCommand::User {
                user: user(u),
                op: UserOp::Disconnect("bye".into()),
            },
            ApiOp::Subscribe { user: u, ch: c } => ApiCommand::User {
                user: user(u),
                op: UserOp::Subscribe(ch(c)),
            },
            ApiOp::Unsubscribe { user: u, ch: c } => ApiCommand::User {
                user: user(u),
                op: UserOp::Unsubscribe(ch(c)),
            },
            ApiOp::Presence { ch: c } => ApiCommand::Presence { channel: ch(c) },
            ApiOp::History { ch: c, limit } => ApiCommand::History {
                channel: ch(c),
                since: None,
                limit: u32::from(*limit % 5),
            },
            ApiOp::UserStatus { user: u } => ApiCommand::UserStatus { user: user(u) },
            ApiOp::Claim { key: k } => ApiCommand::Claim { key: key(k) },
            ApiOp::Settle { key: k } => ApiCommand::Settle {
                key: key(k),
                answer: Bytes::from_static(b"200 {}"),
            },
        };
        let token = self.next_api;
        self.next_api += 1;
        self.api_waiting.insert((shard, token));
        self.cores[usize::from(shard)].api(token, cmd, 1, self.now);
        self.run(shard);
    }

    /// Takes and carries out every action of `shard`'s core, checking each.
    fn run(&mut self, shard: u16) {
        while let Some(action) = self.cores[usize::from(shard)].poll_action() {
            self.execute(shard, action);
        }
    }

    fn execute(&mut self, shard: u16, action: Action) {
        match action {
            Action::Send { shard: to, msg } => {
                assert_ne!(to, shard, "a core mails itself: {msg:?}");
                assert!(to < self.shards(), "no shard {to}");
                self.channels.entry((shard, to)).or_default().push_back(msg);
            }
            Action::Deliver {
                to, frame, report, ..
            } => {
                let taken = self.deliver(shard, to, &frame);
                if let Some(report) = report {
                    self.cores[usize::from(shard)].delivered(report, taken);
                }
            }
            Action::Welcome {
                conn,
                subscriptions,
                inbox,
            } => self.welcome(shard, conn, &subscriptions, inbox),
            Action::Close { conn, .. } => {
                if let Some(c) = self.conn_mut(shard, conn.index).filter(|c| c.key == conn) {
                    c.closing = true;
                }
            }
            Action::Coordinator(call) => {
                assert!(
                    self.remote || is_local_call(&call),
                    "embedded core called {call:?}"
                );
                self.coordinator.push_back((shard, call));
            }
            Action::UserOp {
                conns,
                user,
                op,
                report,
            } => {
                let mut changed = 0;
                for index in conns {
                    let c = self
                        .conn(shard, index)
                        .unwrap_or_else(|| panic!("operation on closed slot {shard}/{index}"));
                    assert_eq!(
                        c.user, user,
                        "operation for {user} on another user's connection"
                    );
                    let key = c.key;
                    if self.cores[usize::from(shard)].apply_user_op(key, &user, &op) {
                        changed += 1;
                    }
                }
                if let Some(report) = report {
                    self.cores[usize::from(shard)].delivered(report, changed);
                }
            }
            Action::ApiReply { token, .. } => {
                assert!(
                    self.api_waiting.remove(&(shard, token)),
                    "API call {token} on shard {shard} replied to twice (or never made)"
                );
            }
        }
    }

    fn deliver(&mut self, shard: u16, to: Target, frame: &Bytes) -> u32 {
        let body = json_of(frame);
        let indices: Vec<u32> = match to {
            Target::Conn(key) => {
                let Some(c) = self.conn_mut(shard, key.index).filter(|c| c.key == key) else {
                    return 0; // an answer to a connection gone: dropped by generation
                };
                if let Some(v) = &body {
                    let kind = v["type"].as_str().unwrap_or_default();
                    if let (true, Some(id)) = (ANSWERS.contains(&kind), v["id"].as_str()) {
                        if !c.closing {
                            assert!(c.waiting.remove(id).is_some(), "second answer to {id}: {v}");
                        }
                    }
                }
                if c.closing {
                    return 0;
                }
                return 1;
            }
            Target::Indices(indices) => indices.into_vec(),
            Target::Members(members) => members.to_vec(),
            Target::All { except } => {
                return self.slots[usize::from(shard)]
                    .conns
                    .iter()
                    .flatten()
                    .filter(|c| Some(c.key) != except && !c.closing)
                    .count() as u32;
            }
        };
        let mut taken = 0;
        for index in indices {
            let c = self
                .conn(shard, index)
                .unwrap_or_else(|| panic!("delivery to closed slot {shard}/{index}: {body:?}"));
            if let Some(v) = &body {
                match v["type"].as_str() {
                    Some("chat_message") => {
                        assert_eq!(v["receiverID"], &*c.user, "chat for another user")
                    }
                    Some("publication" | "join" | "leave") => {
                        let channel = v["channel"].as_str().unwrap_or_default();
                        let subs = self.cores[usize::from(shard)].subscriptions_of(index);
                        assert!(
                            subs.iter().any(|s| &**s == channel),
                            "{channel} delivered to {shard}/{index}, not subscribed: {subs:?}"
                        );
                    }
                    _ => {}
                }
            }
            if !c.closing {
                taken += 1;
            }
        }
        taken
    }

    fn welcome(
        &mut self,
        shard: u16,
        index: u32,
        subscriptions: &[ChannelName],
        inbox: Option<(u64, Arc<str>)>,
    ) {
        let owner_of_epoch = inbox
            .as_ref()
            .and_then(|(_, e)| self.inbox_epochs.get(e).cloned());
        let c = self
            .conn_mut(shard, index)
            .unwrap_or_else(|| panic!("welcome for closed slot {shard}/{index}"));
        if let Some(owner) = owner_of_epoch {
            assert_eq!(owner, c.user, "welcome carries another user's inbox");
        }
        for s in subscriptions {
            assert!(c.subs.contains(s), "welcome lists {s}, not in the token");
        }
        c.welcomed = true;
    }

    /// Delivers one pending message, picked among the busy pairs.
    fn step(&mut self, pick: usize) -> bool {
        let busy: Vec<(u16, u16)> = self
            .channels
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .collect();
        if busy.is_empty() {
            return false;
        }
        let (from, to) = busy[pick % busy.len()];
        if let Some(msg) = self
            .channels
            .get_mut(&(from, to))
            .and_then(VecDeque::pop_front)
        {
            self.cores[usize::from(to)].on_message(msg);
            self.run(to);
        }
        true
    }

    fn answer(&mut self, to: u16, msg: ShardMsg) {
        self.channels.entry((COORD, to)).or_default().push_back(msg);
    }

    /// The coordination layer handles its oldest call.
    fn coordinator_step(&mut self, ok: bool, n: u8) -> bool {
        let Some((from, call)) = self.coordinator.pop_front() else {
            return false;
        };
        let owner = |c: &str, shards: u16| websocket_app::shard::owner_of(c, shards);
        match call {
            CoordinatorCall::AddRoute { shard, token, .. } => {
                self.answer(shard, ShardMsg::RouteAdded { token })
            }
            CoordinatorCall::SendDirect { shard, token, .. }
            | CoordinatorCall::SendUserOp { shard, token, .. }
                if token != 0 =>
            {
                let outcome = match (ok, n % 3) {
                    (false, _) => RemoteOutcome::Failed,
                    (true, 0) => RemoteOutcome::Offline,
                    (true, _) => RemoteOutcome::Delivered {
                        connections: u32::from(n % 4),
                    },
                };
                self.answer(shard, ShardMsg::RemoteOutcome { token, outcome });
            }
            CoordinatorCall::SubscribeChannel { shard, token, .. } => {
                self.answer(shard, ShardMsg::ChannelSubscribed { token })
            }
            CoordinatorCall::Publish {
                channel,
                json,
                shard,
                token,
                sent_at_us,
            } => {
                let outcome = if ok {
                    let retention = Retention::of(self.namespaces.options(&channel));
                    let (json, at) = match retention {
                        Some(r) => {
                            let key = StreamKey::Channel(channel.clone());
                            let (at, entry) = self.streams.append(&key, &json, r, self.now);
                            self.note_epoch(&at.epoch);
                            (entry, Some(at))
                        }
                        None => (json, None),
                    };
                    let frame = text_frame_with(|out| out.extend_from_slice(&json));
                    let offset = at.as_ref().map(|a| a.offset);
                    let to = owner(&channel, self.shards());
                    let msg = ShardMsg::PublicationIn {
                        channel,
                        frame,
                        offset,
                        sent_at_us,
                    };
                    self.answer(to, msg);
                    PublishOutcome::Published {
                        offset,
                        epoch: at.map(|a| a.epoch),
                    }
                } else {
                    PublishOutcome::Failed
                };
                if token != 0 {
                    self.answer(shard, ShardMsg::Published { token, outcome });
                }
            }
            CoordinatorCall::ReadStream {
                key,
                query,
                shard,
                token,
            } => {
                let page = ok.then(|| self.streams.read(&key, &query, self.now));
                if let (Some(p), StreamKey::Inbox(user)) = (&page, &key) {
                    self.inbox_epochs.insert(p.epoch.clone(), user.clone());
                }
                if let Some(p) = &page {
                    self.note_epoch(&p.epoch.clone());
                }
                self.answer(shard, ShardMsg::StreamRead { token, page });
            }
            CoordinatorCall::AppendInbox {
                user,
                json,
                retention,
                shard,
                token,
            } => {
                let at = ok.then(|| {
                    let key = StreamKey::Inbox(user.clone());
                    let (at, _) = self.streams.append(&key, &json, retention, self.now);
                    self.inbox_epochs.insert(at.epoch.clone(), user);
                    at
                });
                self.answer(shard, ShardMsg::InboxAppended { token, at });
            }
            CoordinatorCall::ReadPresence { shard, token, .. } => {
                let page = ok.then(PresencePage::default);
                self.answer(shard, ShardMsg::PresenceRead { token, page });
            }
            CoordinatorCall::UserServers { shard, token, .. } => {
                let servers = ok.then(Vec::new);
                self.answer(shard, ShardMsg::UserServers { token, servers });
            }
            CoordinatorCall::Idempotency {
                answer,
                shard,
                token,
                ..
            } => {
                use websocket_app::shard::core::Claimed;
                let outcome = match (ok, answer) {
                    (false, _) => ApiOutcome::Unavailable,
                    (true, None) => ApiOutcome::Claim(Claimed::Fresh),
                    (true, Some(_)) => ApiOutcome::Settled,
                };
                self.answer(shard, ShardMsg::ApiAnswer { token, outcome });
            }
            _ => {}
        }
        let _ = from;
        true
    }

    fn note_epoch(&mut self, epoch: &Arc<str>) {
        if !self.epochs.contains(epoch) && self.epochs.len() < 16 {
            self.epochs.push(epoch.clone());
        }
    }

    fn remote_op(&mut self, op: &RemoteOp) {
        if !self.remote {
            return;
        }
        let shards = self.shards();
        let user = |u: &u8| UserId::parse(USERS[usize::from(*u) % USERS.len()]).unwrap();
        let ch = |c: &u8| ChannelName::parse(CHANNELS[usize::from(*c) % CHANNELS.len()]).unwrap();
        let owner = |name: &str| websocket_app::shard::owner_of(name, shards);
        match op {
            RemoteOp::Direct { user: u, token } => {
                let user = user(u);
                let reply = (*token != 0).then_some(ReplyTo::Coordinator {
                    token: u64::from(*token),
                });
                let frame = text_frame_with(|out| {
                    out.extend_from_slice(
                        json!({"type": "chat_message", "receiverID": &*user})
                            .to_string()
                            .as_bytes(),
                    )
                });
                let msg = ShardMsg::Route {
                    user: user.clone(),
                    what: Delivery::Frame(frame),
                    reply,
                    sent_at_us: 1,
                };
                self.answer(owner(&user), msg);
            }
            RemoteOp::Broadcast => {
                for s in 0..shards {
                    let frame =
                        text_frame_with(|out| out.extend_from_slice(br#"{"type":"broadcast"}"#));
                    let msg = ShardMsg::Broadcast {
                        frame,
                        reply: None,
                        parts: u32::from(shards),
                        sent_at_us: 1,
                    };
                    self.answer(s, msg);
                }
            }
            RemoteOp::UserOp { user: u, op, ch: c } => {
                let user = user(u);
                let op = match op % 3 {
                    0 => UserOp::Disconnect("".into()),
                    1 => UserOp::Subscribe(ch(c)),
                    _ => UserOp::Unsubscribe(ch(c)),
                };
                let msg = ShardMsg::Route {
                    user: user.clone(),
                    what: Delivery::Op(op),
                    reply: Some(ReplyTo::Coordinator { token: 7 }),
                    sent_at_us: 0,
                };
                self.answer(owner(&user), msg);
            }
            RemoteOp::Publication { ch: c } => {
                let channel = ch(c);
                let json = json!({"type": "publication", "channel": &*channel, "id": "r"});
                let offset = self.namespaces.options(&channel).has_history().then_some(1);
                let json = match offset {
                    Some(o) => with_offset(json.to_string().as_bytes(), o),
                    None => json.to_string().into_bytes(),
                };
                let frame = text_frame_with(|out| out.extend_from_slice(&json));
                let msg = ShardMsg::PublicationIn {
                    channel: channel.clone(),
                    frame,
                    offset,
                    sent_at_us: 1,
                };
                self.answer(owner(&channel), msg);
            }
        }
    }

    fn stray(&mut self, shard: u8, token: u8, msg: &StrayMsg) {
        let shard = u16::from(shard) % self.shards();
        let token = u64::from(token % 32) + 1;
        let msg = match msg {
            StrayMsg::Registered => ShardMsg::Registered { token },
            StrayMsg::RouteAdded => ShardMsg::RouteAdded { token },
            StrayMsg::InterestReady { ch } => ShardMsg::InterestReady {
                channel: ChannelName::parse(CHANNELS[usize::from(*ch) % CHANNELS.len()]).unwrap(),
                token,
            },
            StrayMsg::ChannelSubscribed => ShardMsg::ChannelSubscribed { token },
            StrayMsg::StreamRead { some } => ShardMsg::StreamRead {
                token,
                page: some.then(|| websocket_app::coordinator::StreamPage {
                    top: 2,
                    epoch: "stray".into(),
                    complete: true,
                    entries: vec![Bytes::from_static(b"{}")],
                }),
            },
            StrayMsg::Published { ok } => ShardMsg::Published {
                token,
                outcome: if *ok {
                    PublishOutcome::Published {
                        offset: None,
                        epoch: None,
                    }
                } else {
                    PublishOutcome::Failed
                },
            },
            StrayMsg::DeliveryReport { connections, parts } => ShardMsg::DeliveryReport {
                token,
                connections: u32::from(*connections % 4),
                parts: u32::from(*parts % 4),
            },
            StrayMsg::RemoteOutcome => ShardMsg::RemoteOutcome {
                token,
                outcome: RemoteOutcome::Offline,
            },
            StrayMsg::PresenceRead => ShardMsg::PresenceRead { token, page: None },
            StrayMsg::InboxAppended => ShardMsg::InboxAppended {
                token,
                at: Some(Appended {
                    offset: 1,
                    epoch: "stray".into(),
                }),
            },
        };
        self.answer(shard, msg);
    }

    fn tick(&mut self, ms: u32) {
        self.now = self.now.wrapping_add(ms);
        for shard in 0..self.shards() {
            self.cores[usize::from(shard)].tick(self.now);
            self.run(shard);
        }
    }

    /// Delivers every message and answers every call (successfully).
    fn settle(&mut self) {
        for i in 0..100_000usize {
            if !self.step(i) && !self.coordinator_step(true, 1) {
                return;
            }
        }
        panic!("the bus did not settle");
    }

    fn event(&mut self, e: &Event) {
        match e {
            Event::Open { shard, user, subs } => self.open(*shard, *user, *subs),
            Event::Close { conn } => {
                if let Some((shard, key)) = self.pick_conn(*conn) {
                    self.close(shard, key);
                }
            }
            Event::Client { conn, op, id } => {
                if let Some((shard, key)) = self.pick_conn(*conn) {
                    self.client(shard, key, op, *id);
                }
            }
            Event::Refresh { conn, allowed } => {
                if let Some((shard, key)) = self.pick_conn(*conn) {
                    let allowed = *allowed;
                    let ok = move |c: &ChannelName| {
                        let i = CHANNELS.iter().position(|n| *n == &**c).unwrap_or(0);
                        allowed & (1 << i) != 0
                    };
                    self.cores[usize::from(shard)].drop_forbidden(key, ok);
                    self.run(shard);
                }
            }
            Event::Api { shard, op } => self.api(*shard, op),
            Event::Deliver { pick } => {
                self.step(usize::from(*pick));
            }
            Event::Coordinator { ok, n } => {
                self.coordinator_step(*ok, *n);
            }
            Event::Remote(op) => self.remote_op(op),
            Event::Stray { shard, token, msg } => self.stray(*shard, *token, msg),
            Event::Tick { ms } => self.tick(u32::from(*ms) * 4),
        }
    }

    /// Every open connection got exactly one answer per request.
    fn check_answers(&self) {
        for c in self.slots.iter().flat_map(|s| s.conns.iter().flatten()) {
            if !c.closing {
                assert!(
                    c.waiting.is_empty(),
                    "{} never answered {:?}",
                    c.key.index,
                    c.waiting
                );
            }
        }
    }

    /// Closes everything, lets every deadline pass: nothing may be left.
    fn wind_down(&mut self) {
        self.settle();
        self.tick(400_000);
        self.settle();
        self.check_answers();
        for shard in 0..self.shards() {
            let keys: Vec<ConnKey> = self.slots[usize::from(shard)]
                .conns
                .iter()
                .flatten()
                .map(|c| c.key)
                .collect();
            for key in keys {
                self.close(shard, key);
            }
        }
        self.settle();
        self.tick(400_000);
        self.settle();
        assert!(
            self.api_waiting.is_empty(),
            "API calls never answered: {:?}",
            self.api_waiting
        );
        for (i, core) in self.cores.iter().enumerate() {
            let f = core.footprint();
            assert!(f.is_empty(), "shard {i} holds state after wind-down: {f:?}");
        }
    }
}

/// Calls an embedded core makes too (it has no other instance to ask).
fn is_local_call(call: &CoordinatorCall) -> bool {
    let _ = call;
    false
}

/// The JSON of a server text frame (2-, 4- or 10-byte header, unmasked).
fn json_of(frame: &[u8]) -> Option<Value> {
    let start = match frame.get(1)? & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    serde_json::from_slice(frame.get(start..)?).ok()
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let debug = std::env::var_os("SHARD_CORE_DEBUG").is_some();
    if debug {
        eprintln!("{setup:?}");
    }
    let mut bus = Bus::new(&setup);
    for _ in 0..256 {
        let Ok(event) = Event::arbitrary(&mut u) else {
            break;
        };
        if debug {
            eprintln!("{event:?}");
        }
        bus.event(&event);
    }
    bus.wind_down();
});
