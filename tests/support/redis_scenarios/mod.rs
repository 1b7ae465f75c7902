//! Multi-instance scenarios shared by `redis_standalone.rs`,
//! `redis_cluster.rs` and `api.rs` (as `support::redis_scenarios`): the same
//! checks run against a standalone Redis and a 3-master Cluster.
//!
//! Two levels: the coordinator API driven directly with a recording router
//! (no server binary involved), and real server processes with real
//! WebSocket clients. Every wait is bounded and event-driven where an event
//! exists (a message, an ack, a log line, a key changing).
//!
//! # Layout
//!
//! - this file: the deployments under test ([`Deployment`]) and the helpers
//!   for server processes and their clients;
//! - `coordinator_api.rs`: the coordinator level, with its recording router;
//! - `app.rs`: server processes and WebSocket clients;
//! - `identity.rs`: duplicate server ids, restarts, Redis restarting empty;
//! - `outage.rs`: presence changes made while the link was down.
#![allow(dead_code)]

mod app;
mod coordinator_api;
mod identity;
mod outage;

// Every test binary compiles the harness; only some call these.
#[allow(unused_imports)]
pub use app::*;
pub use coordinator_api::*;
#[allow(unused_imports)]
pub use identity::*;
#[allow(unused_imports)]
pub use outage::*;

use serde_json::{json, Value};

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

/// Marks `dep` as a Redis that has been up for long (an old route-table
/// epoch), so that instances starting on it have no grace period in which
/// "no route" is `failed`; tests of that grace restart Redis, which removes
/// the marker.
pub fn settled(dep: &dyn Deployment) {
    dep.cli(&["SET", "routes_epoch", "1:settled-by-the-test", "NX"]);
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
