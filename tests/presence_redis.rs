//! Presence over a real standalone Redis with two instances, beyond the
//! scenarios shared with the Cluster (`support::channel_scenarios`): the
//! `join`/`leave` rate limit applied inside Redis, and what a crash followed
//! by a restart under the same `SERVER_ID` leaves behind.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::channels::{config_file, publish, subscribe};
use support::presence::{event, presence, recv_skipping_events, NAMESPACES};
use support::redis::RedisServer;
use support::redis_scenarios::instance_with;
use support::{eventually, http_get, Client, ServerProcess};

/// `crowd`: presence with `join`/`leave` at most [`RATE`] per second.
const CROWD: &str = "\
[namespaces.crowd]
public = true
client_publish = true
presence = true
join_leave = true
join_leave_per_sec = 2
";
/// `join_leave_per_sec` of `crowd`.
const RATE: u64 = 2;
/// Users joining at once.
const JOINERS: u64 = 40;

/// A `/stats` counter of `s`.
fn stats_counter(s: &ServerProcess, key: &str) -> u64 {
    let (status, text) = http_get(s.addr, "/stats");
    assert_eq!(status, 200, "{text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: Value = serde_json::from_str(body).expect("/stats is JSON");
    v["counters"][key].as_u64().expect("a counter")
}

/// Many users join on one instance within moments; a member on the other
/// instance gets at most what the token bucket in Redis allows (a burst of
/// `RATE`, then `RATE` per second of the window the joins took), and every
/// join not sent is counted in the channel's `jl_dropped`. Exact whatever
/// the timing: sent + dropped = joins, and the bound grows with the
/// measured window.
#[test]
fn join_leave_per_sec_limits_events_across_instances_and_counts_the_rest() {
    let redis = RedisServer::start();
    let file = config_file(CROWD);
    let path = file.path().to_str().unwrap().to_owned();
    let env = [("CHANNELS_CONFIG", path.as_str())];
    let (a, b) = (
        instance_with(&redis, "a", &env),
        instance_with(&redis, "b", &env),
    );
    let mut watch = b.user("watch");
    subscribe(&mut watch, "crowd:1");
    assert_eq!(event(&mut watch), ("join".into(), "watch".into()));
    let dropped_key = ["HGET", "pres_meta:{crowd:1}", "jl_dropped"];
    assert_eq!(redis.cli(&dropped_key), "", "nothing dropped yet");

    let mut joiners: Vec<Client> = (0..JOINERS).map(|i| a.user(&format!("u{i}"))).collect();
    let started = Instant::now();
    for c in &mut joiners {
        c.send(&json!({"type": "subscribe", "channel": "crowd:1", "id": "s"}));
    }
    for c in &mut joiners {
        recv_skipping_events(c, "subscribed");
    }
    // Every join has been through the function (and its bucket) once the
    // channel lists them all.
    let members = (JOINERS + 1).to_string();
    eventually("every joiner in Redis", || {
        (redis.cli(&["HLEN", "pres_user:{crowd:1}"]) == members).then_some(())
    });
    let window = started.elapsed();
    let dropped = match redis.cli(&dropped_key).as_str() {
        "" => 0, // never dropped: the field was never written
        n => n.parse::<u64>().expect("jl_dropped"),
    };

    // A publication after the joins comes after their events (one Redis
    // pub/sub channel): everything before it is every event sent.
    publish(&mut watch, "crowd:1", 1, "marker");
    let mut joins = 0;
    loop {
        let v = watch.recv();
        match v["type"].as_str() {
            Some("join") => joins += 1,
            Some("publication") => break,
            Some("ack") => {}
            _ => panic!("unexpected {v}"),
        }
    }
    // The bucket holds at most RATE tokens when the first joiner comes
    // (the watcher's own join took one of them earlier) and gains RATE per
    // second of the window.
    let bound = RATE + RATE * window.as_millis() as u64 / 1000;
    assert!(
        bound < JOINERS,
        "joins took {window:?}: too slow to test the limit"
    );
    assert_eq!(joins + dropped, JOINERS, "sent {joins} + dropped {dropped}");
    assert!(joins <= bound, "{joins} joins in {window:?} at {RATE}/s");
    assert!(joins >= RATE - 1, "the token the watcher left was used");
    // With Redis the instances' own counter stays 0 (docs/METRICS.md).
    assert_eq!(stats_counter(&a, "joinLeaveDropped"), 0);
    assert_eq!(stats_counter(&b, "joinLeaveDropped"), 0);
}

/// No survivor's sweep runs during these tests, so what a test sees is the
/// restarted instance's doing, not a lucky sweep.
const NO_SWEEP: (&str, &str) = ("ROUTE_SWEEP_MS", "600000");

/// KNOWN GAP (docs/REDIS.md, "Presence"): an instance killed and restarted
/// at once under the same `SERVER_ID` claims the id as soon as its old
/// liveness key expires, so no survivor sees it dead, and nothing drops the
/// previous run's part: its members stay listed without a `leave`. The same
/// gap leaves members after a link outage in channels where every local
/// member left meanwhile. Ignored until the instance drops, at link-up and
/// once its shards have re-sent their tables, its part of every channel in
/// `server_presence:<id>` that was not rewritten.
#[test]
#[ignore = "known gap: a restart under the same SERVER_ID keeps the previous run's presence"]
fn a_restart_under_the_same_id_drops_the_previous_runs_members() {
    let redis = RedisServer::start();
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    let env = [("CHANNELS_CONFIG", path.as_str()), NO_SWEEP];
    let mut a = instance_with(&redis, "a", &env);
    let b = instance_with(&redis, "b", &env);
    let mut ben = b.user("ben");
    subscribe(&mut ben, "room:g");
    assert_eq!(event(&mut ben), ("join".into(), "ben".into()));
    let mut ann = a.user("ann");
    subscribe(&mut ann, "room:g");
    assert_eq!(event(&mut ben), ("join".into(), "ann".into()));

    a.signal(9);
    a.wait_exit(Duration::from_secs(5));
    let _again = instance_with(&redis, "a", &env);
    assert_eq!(event(&mut ben), ("leave".into(), "ann".into()));
    assert_eq!(presence(&mut ben, "room:g"), vec![("ben".to_owned(), 1)]);
}
