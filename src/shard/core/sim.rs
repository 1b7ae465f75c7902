//! A simulated bus of N shard cores, deterministic and in-process, for the
//! race tests: every cross-shard message travels through a FIFO channel per
//! (sender, receiver) pair, as through the real mailboxes, and a seeded
//! scheduler picks which pending message, coordinator answer or scripted
//! client event happens next. Connections are plain records; a coordinator
//! stands in for Redis (a route set and answers in command order).

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::coordinator::RemoteOutcome;
use crate::metrics::MetricsRegistry;
use crate::protocol::UserId;
use crate::session::Outcome;

use super::{owner_of, Action, CoordinatorCall, CoreConfig, ShardCore, ShardMsg, Target};
use crate::shard::ConnKey;

/// Sender id of the coordination layer on the bus.
const COORD: u16 = u16::MAX;

/// One simulated connection.
#[derive(Debug)]
pub struct SimConn {
    /// Its user.
    pub user: UserId,
    /// Its key.
    pub key: ConnKey,
    /// `welcome` was sent.
    pub welcomed: u32,
    /// Frames it received, in order (held ones count once welcomed).
    pub received: Vec<Bytes>,
    /// A close was asked by the core.
    pub closing: bool,
}

/// The coordination layer's stand-in.
#[derive(Debug, Default)]
pub struct SimCoordinator {
    /// Commands not handled yet, in the order shards issued them.
    pub queue: VecDeque<(u16, CoordinatorCall)>,
    /// Users whose route is stored.
    pub routes: BTreeMap<String, bool>,
    /// Route writes per user, in order: true = add.
    pub writes: HashMap<String, Vec<bool>>,
    /// What a remote delivery reports.
    pub remote_outcome: Option<RemoteOutcome>,
}

/// N cores on one simulated bus.
pub struct Sim {
    /// The cores, by shard index.
    pub cores: Vec<ShardCore>,
    /// Pending messages per (from, to) pair.
    channels: BTreeMap<(u16, u16), VecDeque<ShardMsg>>,
    /// Live connections per (shard, slab index).
    pub conns: BTreeMap<(u16, u32), SimConn>,
    /// The coordination layer.
    pub coordinator: SimCoordinator,
    /// The scheduler's randomness.
    pub rng: StdRng,
    /// Next slab index / generation per shard.
    next_index: Vec<u32>,
    /// Violations found while running (checked by the tests).
    pub violations: Vec<String>,
}

impl Sim {
    /// `shards` cores; `remote` puts a coordinator with other instances behind them.
    pub fn new(shards: u16, remote: bool, seed: u64) -> Self {
        let registry = MetricsRegistry::new(usize::from(shards));
        let cores = (0..shards)
            .map(|index| {
                let cfg = CoreConfig {
                    index,
                    shards,
                    remote,
                    delivery_timeout_ms: 5_000,
                    max_channels: 8,
                    inbox: None,
                    max_recovery_bytes: 1 << 20,
                };
                ShardCore::new(
                    cfg,
                    registry.shard(usize::from(index)),
                    Default::default(),
                    "sim".into(),
                    1,
                )
            })
            .collect();
        Self {
            cores,
            channels: BTreeMap::new(),
            conns: BTreeMap::new(),
            coordinator: SimCoordinator::default(),
            rng: StdRng::seed_from_u64(seed),
            next_index: vec![0; usize::from(shards)],
            violations: Vec::new(),
        }
    }

    /// Opens a connection of `user` on `shard`.
    pub fn open(&mut self, shard: u16, user: &str) -> (u16, ConnKey) {
        let index = self.next_index[usize::from(shard)];
        self.next_index[usize::from(shard)] += 1;
        let key = ConnKey {
            index,
            generation: index + 1,
        };
        let user = UserId::parse(user).expect("valid user");
        let conn = SimConn {
            user: user.clone(),
            key,
            welcomed: 0,
            received: Vec::new(),
            closing: false,
        };
        self.conns.insert((shard, index), conn);
        self.cores[usize::from(shard)].conn_opened(key, &user, &[]);
        self.run(shard);
        (shard, key)
    }

    /// Closes (removes) a connection.
    pub fn close(&mut self, (shard, key): (u16, ConnKey)) {
        if let Some(conn) = self.conns.remove(&(shard, key.index)) {
            self.cores[usize::from(shard)].conn_closed(key, &conn.user);
            self.run(shard);
        }
    }

    /// `from` sends a direct message to `to`, with an ack id.
    pub fn send(&mut self, (shard, key): (u16, ConnKey), to: &str, id: &str) {
        let outcome = Outcome::Direct {
            receiver: UserId::parse(to).expect("valid user"),
            frame: Bytes::from(format!("msg:{id}")),
            ack: Some(id.to_owned()),
        };
        self.cores[usize::from(shard)].client_outcome(key, outcome, 1, 0);
        self.run(shard);
    }

    /// Runs one pending step chosen at random; false when nothing is pending.
    pub fn step(&mut self) -> bool {
        let busy: Vec<(u16, u16)> = self
            .channels
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .collect();
        let coordinator = !self.coordinator.queue.is_empty();
        let choices = busy.len() + usize::from(coordinator);
        if choices == 0 {
            return false;
        }
        let pick = self.rng.random_range(0..choices);
        if pick == busy.len() {
            self.coordinator_step();
        } else {
            let (from, to) = busy[pick];
            let msg = self
                .channels
                .get_mut(&(from, to))
                .and_then(VecDeque::pop_front);
            if let Some(msg) = msg {
                self.cores[usize::from(to)].on_message(msg);
                self.run(to);
            }
        }
        true
    }

    /// Steps until nothing is pending (bounded).
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the bus did not settle");
    }

    /// Takes and carries out every action of `shard`'s core.
    fn run(&mut self, shard: u16) {
        while let Some(action) = self.cores[usize::from(shard)].poll_action() {
            self.execute(shard, action);
        }
    }

    fn execute(&mut self, shard: u16, action: Action) {
        match action {
            Action::Send { shard: to, msg } => {
                assert_ne!(to, shard, "a core never mails itself");
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
            Action::Welcome { conn, .. } => self.welcome(shard, conn),
            Action::Close { conn, .. } => {
                if let Some(c) = self.conns.get_mut(&(shard, conn.index)) {
                    c.closing = true;
                }
            }
            Action::Coordinator(call) => self.coordinator.queue.push_back((shard, call)),
            Action::UserOp { .. } | Action::ApiReply { .. } => {}
        }
    }

    fn deliver(&mut self, shard: u16, to: Target, frame: &Bytes) -> u32 {
        let keys: Vec<u32> = match to {
            Target::Conn(key) => self
                .conns
                .get(&(shard, key.index))
                .filter(|c| c.key == key)
                .map(|_| vec![key.index])
                .unwrap_or_default(),
            Target::Members(members) => members.to_vec(),
            Target::Indices(indices) => {
                for i in &indices {
                    if !self.conns.contains_key(&(shard, *i)) {
                        let v = format!("shard {shard}: delivery to closed slot {i}");
                        self.violations.push(v);
                    }
                }
                indices.into_vec()
            }
            Target::All { except } => self
                .conns
                .range((shard, 0)..(shard + 1, 0))
                .filter(|(_, c)| Some(c.key) != except && !c.closing)
                .map(|(_, c)| c.key.index)
                .collect(),
        };
        let mut taken = 0;
        for index in keys {
            if let Some(c) = self.conns.get_mut(&(shard, index)).filter(|c| !c.closing) {
                c.received.push(frame.clone());
                taken += 1;
            }
        }
        taken
    }

    fn welcome(&mut self, shard: u16, index: u32) {
        let Some(conn) = self.conns.get_mut(&(shard, index)) else {
            self.violations
                .push(format!("shard {shard}: welcome for closed slot {index}"));
            return;
        };
        conn.welcomed += 1;
        let user = conn.user.clone();
        let owner = owner_of(&user, self.cores.len() as u16);
        if !self.cores[usize::from(owner)]
            .shards_of(&user)
            .contains(&shard)
        {
            self.violations.push(format!(
                "{user} welcomed on shard {shard} before the owner knew"
            ));
        }
        let remote = self.cores[0].cfg.remote;
        if remote && !self.coordinator.routes.contains_key(&*user) {
            self.violations.push(format!(
                "{user} welcomed on shard {shard} without a stored route"
            ));
        }
    }

    /// The coordination layer handles its oldest command.
    fn coordinator_step(&mut self) {
        let Some((shard, call)) = self.coordinator.queue.pop_front() else {
            return;
        };
        let answer = |sim: &mut Self, msg: ShardMsg| {
            sim.channels
                .entry((COORD, shard))
                .or_default()
                .push_back(msg);
        };
        match call {
            CoordinatorCall::AddRoute { user, token, .. } => {
                self.coordinator.routes.insert(user.to_string(), true);
                let writes = self.coordinator.writes.entry(user.to_string()).or_default();
                writes.push(true);
                answer(self, ShardMsg::RouteAdded { token });
            }
            CoordinatorCall::RemoveRoute { user } => {
                self.coordinator.routes.remove(&*user);
                let writes = self.coordinator.writes.entry(user.to_string()).or_default();
                writes.push(false);
            }
            CoordinatorCall::SendDirect { token, .. } if token != 0 => {
                let outcome = self
                    .coordinator
                    .remote_outcome
                    .unwrap_or(RemoteOutcome::Offline);
                answer(self, ShardMsg::RemoteOutcome { token, outcome });
            }
            _ => {}
        }
    }

    /// The acks `conn` received, as (id, status, connections).
    pub fn acks(&self, (shard, key): (u16, ConnKey)) -> Vec<(String, String, u64)> {
        let Some(c) = self.conns.get(&(shard, key.index)) else {
            return Vec::new();
        };
        c.received
            .iter()
            .filter_map(|f| json_of(f))
            .filter(|v| v["type"] == "ack")
            .map(|v| {
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                let status = v["status"].as_str().unwrap_or_default().to_owned();
                (id, status, v["connections"].as_u64().unwrap_or(0))
            })
            .collect()
    }

    /// Frames `conn` received whose bytes are `body`.
    pub fn count_received(&self, (shard, key): (u16, ConnKey), body: &str) -> usize {
        self.conns.get(&(shard, key.index)).map_or(0, |c| {
            c.received
                .iter()
                .filter(|f| &f[..] == body.as_bytes())
                .count()
        })
    }
}

/// The JSON of a server text frame (2- or 4-byte header, unmasked).
pub fn json_of(frame: &[u8]) -> Option<Value> {
    let start = match frame.get(1)? & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    serde_json::from_slice(frame.get(start..)?).ok()
}
