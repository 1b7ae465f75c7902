//! The coordinator level: [`redis_coord::start`] driven directly, its
//! router a [`Recorder`] that a test waits on, no server binary involved.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::ValueEnum;
use websocket_app::config::{self, ClusterMode};
use websocket_app::coordinator::{
    Appended, Coordinator, IdempotencyAnswer, LocalRouter, PresencePage, PublishOutcome,
    RemoteOutcome, ReplyTo, StreamPage, UserOp,
};
use websocket_app::metrics::ShardMetrics;
use websocket_app::protocol::channel::ChannelName;
use websocket_app::protocol::UserId;
use websocket_app::redis_coord;

use super::{settled, Deployment, SWEEP_MS, TTL_MS};
use crate::support::eventually;

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
