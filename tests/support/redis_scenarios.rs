//! Multi-instance scenarios shared by `redis_standalone.rs` and
//! `redis_cluster.rs` (included there with `#[path]`): the same checks run
//! against a standalone Redis and a 3-master Cluster.
//!
//! Two levels: the coordinator API driven directly with a recording router
//! (no server binary involved), and real server processes with real
//! WebSocket clients. Every wait is bounded and event-driven where an event
//! exists (a message, an ack, a log line, a key changing).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::ValueEnum;
use serde_json::{json, Value};
use websocket_app::config::{self, ClusterMode};
use websocket_app::coordinator::{
    Appended, Coordinator, IdempotencyAnswer, LocalRouter, PresencePage, PublishOutcome,
    RemoteOutcome, ReplyTo, StreamPage, UserOp,
};
use websocket_app::metrics::ShardMetrics;
use websocket_app::protocol::channel::ChannelName;
use websocket_app::protocol::UserId;
use websocket_app::redis_coord;

use crate::support::redis::{Monitor, RedisCluster, RedisServer};
use crate::support::{eventually, http_get, Client, ServerProcess};

/// Liveness TTL given to instances in these tests.
pub const TTL_MS: u64 = 1_000;
/// Sweep interval given to instances in these tests.
pub const SWEEP_MS: u64 = 500;

/// A Redis deployment under test.
pub trait Deployment {
    /// `REDIS_URI`.
    fn uri(&self) -> String;
    /// `REDIS_CLUSTER`.
    fn cluster_flag(&self) -> &'static str;
    /// `redis-cli` for a single-key command.
    fn cli(&self, args: &[&str]) -> String;
    /// A `MONITOR` on every node.
    fn monitors(&self) -> Vec<Monitor>;
    /// Kills every Redis process (an outage; data is lost).
    fn stop(&mut self);
    /// Starts them again on the same ports.
    fn start_again(&mut self);
    /// Subscribers of a Redis pub/sub channel (sharded on a Cluster).
    fn subscribers(&self, channel: &str) -> u64;
}

/// The count of a `PUBSUB NUMSUB`/`SHARDNUMSUB` reply (`channel\ncount`).
fn numsub(out: &str) -> u64 {
    out.lines().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

impl Deployment for RedisServer {
    fn uri(&self) -> String {
        RedisServer::uri(self)
    }
    fn cluster_flag(&self) -> &'static str {
        "off"
    }
    fn cli(&self, args: &[&str]) -> String {
        RedisServer::cli(self, args)
    }
    fn monitors(&self) -> Vec<Monitor> {
        vec![self.monitor()]
    }
    fn stop(&mut self) {
        RedisServer::stop(self)
    }
    fn start_again(&mut self) {
        self.launch()
    }
    fn subscribers(&self, channel: &str) -> u64 {
        numsub(&RedisServer::cli(self, &["PUBSUB", "NUMSUB", channel]))
    }
}

impl Deployment for RedisCluster {
    fn uri(&self) -> String {
        RedisCluster::uri(self)
    }
    fn cluster_flag(&self) -> &'static str {
        "on"
    }
    fn cli(&self, args: &[&str]) -> String {
        RedisCluster::cli(self, args)
    }
    fn monitors(&self) -> Vec<Monitor> {
        self.nodes.iter().map(RedisServer::monitor).collect()
    }
    fn stop(&mut self) {
        self.stop_all()
    }
    fn start_again(&mut self) {
        self.launch_all()
    }
    fn subscribers(&self, channel: &str) -> u64 {
        self.nodes
            .iter()
            .map(|n| numsub(&n.cli(&["PUBSUB", "SHARDNUMSUB", channel])))
            .sum()
    }
}

// ---------------------------------------------------------------- coordinator level

/// What a coordinator asked of its router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `deliver_direct(user, frame, reply)`.
    Direct(String, Vec<u8>, Option<ReplyTo>),
    /// `deliver_broadcast(frame)`.
    Broadcast(Vec<u8>),
    /// `remote_outcome(shard, token, outcome)`.
    Outcome(u16, u64, RemoteOutcome),
    /// `route_added(shard, token)`.
    RouteAdded(u16, u64),
    /// `reregister_routes()`.
    Reregister,
    /// `channel_subscribed(shard, token)`.
    ChannelSubscribed(u16, u64),
    /// `deliver_publication(channel, frame, offset)`.
    Publication(String, Vec<u8>, Option<u64>),
    /// `published(shard, token, outcome)`.
    Published(u16, u64, PublishOutcome),
    StreamRead(u16, u64, Option<StreamPage>),
    InboxAppended(u16, u64, Option<Appended>),
    PresenceRead(u16, u64, Option<PresencePage>),
    UserOp(String, UserOp, Option<ReplyTo>),
    UserServers(u16, u64, Option<Vec<String>>),
    Idempotency(u16, u64, Option<IdempotencyAnswer>),
}

/// A router that records calls and lets a test wait for one.
#[derive(Default)]
pub struct Recorder {
    /// Calls not yet taken by [`Recorder::wait`].
    calls: Mutex<Vec<Call>>,
    /// Signalled on every call.
    cv: Condvar,
}

impl Recorder {
    fn push(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
        self.cv.notify_all();
    }

    /// Waits for (and removes) the first call matching `pred`.
    pub fn wait(&self, what: &str, pred: impl Fn(&Call) -> bool) -> Call {
        let deadline = Instant::now() + crate::support::WAIT;
        let mut calls = self.calls.lock().unwrap();
        loop {
            if let Some(i) = calls.iter().position(&pred) {
                return calls.remove(i);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; calls: {calls:?}"
            );
            calls = self.cv.wait_timeout(calls, left).unwrap().0;
        }
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

/// Marks `dep` as a Redis that has been up for long (an old route-table
/// epoch), so that instances starting on it have no grace period in which
/// "no route" is `failed`; tests of that grace restart Redis, which removes
/// the marker.
pub fn settled(dep: &dyn Deployment) {
    dep.cli(&["SET", "routes_epoch", "1:settled-by-the-test", "NX"]);
}

/// A coordinator with its recorder.
pub fn coordinator(
    uri: &str,
    mode: ClusterMode,
    id: &str,
) -> (Arc<dyn Coordinator>, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    // Through the config layer, as the server does: it parses and checks
    // the seeds, and `redis_coord::start` takes the result as it is.
    let cluster = mode.to_possible_value().expect("a value name");
    let (ttl, sweep) = (TTL_MS.to_string(), SWEEP_MS.to_string());
    let args = [
        "websocket-app",
        "--redis-uri",
        uri,
        "--redis-cluster",
        cluster.get_name(),
        "--server-id",
        id,
        "--liveness-ttl-ms",
        &ttl,
        "--route-sweep-ms",
        &sweep,
        "--delivery-timeout-ms",
        "3000",
    ];
    let settings = config::load_from(args, &HashMap::new())
        .expect("valid redis settings")
        .redis
        .expect("REDIS_URI is set");
    let coord =
        redis_coord::start(settings, rec.clone(), Arc::new(ShardMetrics::new())).expect("start");
    eventually("coordinator ready", || coord.is_ready().then_some(()));
    rec.wait("reregister at connection", |c| *c == Call::Reregister);
    (coord, rec)
}

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

/// Route, direct with confirmation, offline receiver, broadcast, shutdown clean-up.
pub fn coordinator_round_trip(dep: &dyn Deployment, mode: ClusterMode) {
    settled(dep);
    let (a, rec_a) = coordinator(&dep.uri(), mode, "ca");
    let (b, rec_b) = coordinator(&dep.uri(), mode, "cb");
    assert!(b.add_route(&user("bob"), 1, 11));
    rec_b.wait("route_added", |c| *c == Call::RouteAdded(1, 11));
    assert_eq!(dep.cli(&["SMEMBERS", "user_servers:bob"]), "cb");

    assert!(a.send_direct(&user("bob"), Bytes::from_static(b"\x81\x02hi"), 3, 7, 1));
    let call = rec_b.wait("delivery on b", |c| matches!(c, Call::Direct(..)));
    let Call::Direct(who, frame, Some(ReplyTo::Coordinator { token })) = call else {
        panic!("unexpected {call:?}")
    };
    assert_eq!(
        (who.as_str(), frame.as_slice()),
        ("bob", &b"\x81\x02hi"[..])
    );
    b.delivery_report(token, 2, 2);
    b.delivery_report(token, 1, 2);
    let delivered = Call::Outcome(3, 7, RemoteOutcome::Delivered { connections: 3 });
    rec_a.wait("delivered outcome", |c| *c == delivered);

    assert!(a.send_direct(&user("nobody"), Bytes::from_static(b"x"), 3, 8, 1));
    rec_a.wait("offline outcome", |c| {
        *c == Call::Outcome(3, 8, RemoteOutcome::Offline)
    });

    a.send_broadcast(Bytes::from_static(b"all"), 1);
    rec_b.wait("broadcast on b", |c| *c == Call::Broadcast(b"all".to_vec()));

    b.shutdown();
    assert!(!b.is_ready());
    assert_eq!(dep.cli(&["SMEMBERS", "user_servers:bob"]), "");
    assert_eq!(dep.cli(&["EXISTS", "server_alive:cb"]), "0");
    a.shutdown();
}

/// Stale routes: our own id left by a previous run (removed at start-up),
/// a dead server's id (never used: `Offline`; swept within TTL + interval).
pub fn coordinator_sweeps_stale_routes(dep: &dyn Deployment, mode: ClusterMode) {
    settled(dep);
    dep.cli(&["SADD", "user_servers:old", "cs"]);
    dep.cli(&["SADD", "user_servers:ghost", "dead", "cs"]);
    let (a, rec) = coordinator(&dep.uri(), mode, "cs");
    assert!(a.add_route(&user("ghost"), 0, 1));
    rec.wait("route_added", |c| *c == Call::RouteAdded(0, 1));
    assert!(a.send_direct(&user("ghost"), Bytes::from_static(b"x"), 0, 2, 1));
    rec.wait("offline: the dead server is not used", |c| {
        *c == Call::Outcome(0, 2, RemoteOutcome::Offline)
    });
    let bound = Duration::from_millis(TTL_MS + SWEEP_MS) + Duration::from_secs(2);
    let start = Instant::now();
    while dep.cli(&["SMEMBERS", "user_servers:ghost"]) != "cs"
        || dep.cli(&["EXISTS", "user_servers:old"]) != "0"
    {
        assert!(start.elapsed() < bound, "stale routes outlived {bound:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    a.shutdown();
}

/// Redis goes away and comes back empty: not ready meanwhile, sends fail,
/// routes are confirmed at once; afterwards re-registration is asked.
pub fn coordinator_outage_and_recovery(dep: &mut dyn Deployment, mode: ClusterMode) {
    let (a, rec) = coordinator(&dep.uri(), mode, "co");
    dep.stop();
    eventually("not ready while redis is down", || {
        (!a.is_ready()).then_some(())
    });
    assert!(a.send_direct(&user("bob"), Bytes::from_static(b"x"), 0, 1, 1));
    rec.wait("failed while down", |c| {
        *c == Call::Outcome(0, 1, RemoteOutcome::Failed)
    });
    assert!(a.add_route(&user("zed"), 0, 2));
    rec.wait("route confirmed while down", |c| {
        *c == Call::RouteAdded(0, 2)
    });
    dep.start_again();
    rec.wait("re-registration asked", |c| *c == Call::Reregister);
    eventually("ready again after reconnection", || {
        a.is_ready().then_some(())
    });
    eventually("zed's route written after reconnection", || {
        (dep.cli(&["SMEMBERS", "user_servers:zed"]) == "co").then_some(())
    });
    a.shutdown();
}

// ---------------------------------------------------------------- server processes

/// Starts an instance of the server on `dep` with id `id` (short liveness settings).
pub fn instance(dep: &dyn Deployment, id: &str) -> ServerProcess {
    instance_with(dep, id, &[])
}

/// Like [`instance`], with more environment.
pub fn instance_with(dep: &dyn Deployment, id: &str, extra: &[(&str, &str)]) -> ServerProcess {
    settled(dep);
    let uri = dep.uri();
    let (ttl, sweep) = (TTL_MS.to_string(), SWEEP_MS.to_string());
    let mut env = vec![
        ("REDIS_URI", uri.as_str()),
        ("SERVER_ID", id),
        ("REDIS_CLUSTER", dep.cluster_flag()),
        ("LIVENESS_TTL_MS", ttl.as_str()),
        ("ROUTE_SWEEP_MS", sweep.as_str()),
    ];
    env.extend_from_slice(extra);
    let s = ServerProcess::start(&["--shards", "2"], &env);
    wait_ready(&s, 200);
    s
}

/// Waits until `/ready` answers `status`.
pub fn wait_ready(s: &ServerProcess, status: u16) {
    eventually(&format!("/ready {status} on {}", s.addr), || {
        (http_get(s.addr, "/ready").0 == status).then_some(())
    });
}

/// Sends a chat message with an ack id.
pub fn chat(from: &mut Client, to: &str, id: &str) {
    from.send(&json!({"type": "chat_message", "receiverID": to, "payload": {"n": id}, "id": id}));
}

/// Reads the ack for `id` and returns it.
pub fn ack(c: &mut Client, id: &str) -> Value {
    let a = c.recv_type("ack");
    assert_eq!(a["id"], id, "ack for another message: {a}");
    a
}

/// Asserts an ack `delivered` to `n` connections.
pub fn assert_delivered(a: &Value, n: u64) {
    assert_eq!(a["status"], "delivered", "{a}");
    assert_eq!(a["connections"], n, "{a}");
}

/// Receives the chat message `id`.
pub fn received(c: &mut Client, id: &str) {
    let m = c.recv_type("chat_message");
    assert_eq!(m["payload"]["n"], id, "{m}");
}

#[path = "redis_scenarios_app.rs"]
mod app;
pub use app::*;

#[path = "redis_scenarios_identity.rs"]
mod identity;
pub use identity::*;
