//! Scenarios with real server processes and WebSocket clients (part of
//! `redis_scenarios`).

use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    ack, assert_delivered, chat, instance, received, wait_ready, Deployment, SWEEP_MS, TTL_MS,
};
use crate::support::eventually;

/// Direct messages across two instances, both ways, acked `delivered` with
/// the receiver's connection count.
pub fn direct_both_ways(dep: &dyn Deployment) {
    let (a, b) = (instance(dep, "a"), instance(dep, "b"));
    let mut alice = a.user("alice");
    let mut bob = b.user("bob");
    chat(&mut alice, "bob", "m1");
    received(&mut bob, "m1");
    assert_delivered(&ack(&mut alice, "m1"), 1);
    chat(&mut bob, "alice", "m2");
    received(&mut alice, "m2");
    assert_delivered(&ack(&mut bob, "m2"), 1);
}

/// One user with connections on two instances gets every message on all of
/// them, and the ack counts local and remote connections.
pub fn user_on_two_instances(dep: &dyn Deployment) {
    let (a, b) = (instance(dep, "a"), instance(dep, "b"));
    let mut carol = vec![a.user("carol"), b.user("carol"), b.user("carol")];
    let mut dave = a.user("dave");
    let mut erin = b.user("erin");
    for (i, sender) in [&mut dave, &mut erin].into_iter().enumerate() {
        let id = format!("c{i}");
        chat(sender, "carol", &id);
        assert_delivered(&ack(sender, &id), 3);
        carol.iter_mut().for_each(|c| received(c, &id));
    }
    assert_eq!(sorted_members(dep, "carol"), vec!["a", "b"]);
    drop(carol.pop());
    drop(carol.pop());
    eventually("b's route for carol removed", || {
        (sorted_members(dep, "carol") == ["a"]).then_some(())
    });
}

/// A broadcast reaches every connection of every other instance exactly once.
pub fn broadcast_once(dep: &dyn Deployment) {
    let servers = [instance(dep, "a"), instance(dep, "b"), instance(dep, "c")];
    let mut sender = servers[0].user("u0");
    let mut others = vec![
        servers[0].user("u1"),
        servers[1].user("u2"),
        servers[2].user("u3"),
        servers[2].user("u4"),
    ];
    sender.send(&json!({"type": "broadcast", "payload": "hello", "id": "b1"}));
    ack(&mut sender, "b1");
    for c in &mut others {
        let m = c.recv_type("broadcast");
        assert_eq!(m["payload"], "hello");
    }
    for c in others.iter_mut().chain([&mut sender]) {
        assert!(c.silent_for(Duration::from_millis(300)));
    }
}

/// `kill -9` of an instance: a message to its user is `offline` at once (no
/// subscriber), and its routes are swept within TTL + sweep interval.
pub fn killed_instance_routes_are_swept(dep: &dyn Deployment) {
    let a = instance(dep, "a");
    let mut b = instance(dep, "b");
    let mut alice = a.user("alice");
    let _erin = b.user("erin");
    assert_eq!(sorted_members(dep, "erin"), vec!["b"]);
    b.signal(9);
    b.wait_exit(Duration::from_secs(5));
    let killed = Instant::now();
    let offline = eventually("offline ack for erin", || {
        chat(&mut alice, "erin", "k1");
        let a = ack(&mut alice, "k1");
        (a["status"] == "offline").then_some(a)
    });
    assert_eq!(offline["status"], "offline");
    let bound = Duration::from_millis(TTL_MS + SWEEP_MS) + Duration::from_secs(2);
    while !sorted_members(dep, "erin").is_empty() {
        assert!(
            killed.elapsed() < bound,
            "erin's route to the dead instance outlived {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(dep.cli(&["EXISTS", "server_alive:b"]), "0");
}

/// Redis stops and comes back (empty) while clients stay connected:
/// `/ready` 503 then 200, sends `failed` meanwhile, routes re-registered.
pub fn redis_outage_and_recovery(dep: &mut dyn Deployment) {
    let (a, b) = (instance(dep, "a"), instance(dep, "b"));
    let mut alice = a.user("alice");
    let mut bob = b.user("bob");
    dep.stop();
    wait_ready(&a, 503);
    wait_ready(&b, 503);
    chat(&mut alice, "bob", "o1");
    assert_eq!(ack(&mut alice, "o1")["status"], "failed");
    let mut local = a.user("zoe");
    chat(&mut alice, "zoe", "o2");
    received(&mut local, "o2");
    assert_delivered(&ack(&mut alice, "o2"), 1);
    dep.start_again();
    wait_ready(&a, 200);
    wait_ready(&b, 200);
    eventually("bob's route re-registered", || {
        (sorted_members(dep, "bob") == ["b"]).then_some(())
    });
    chat(&mut alice, "bob", "o3");
    received(&mut bob, "o3");
    assert_delivered(&ack(&mut alice, "o3"), 1);
}

/// A direct message is published only on the receiver's instance channel
/// (and its confirmation only on the sender's), never to other instances.
pub fn publish_only_to_receiver_instances(dep: &dyn Deployment) {
    let servers = [instance(dep, "a"), instance(dep, "b"), instance(dep, "c")];
    let mut alice = servers[0].user("alice");
    let mut bob = servers[1].user("bob");
    let _carl = servers[2].user("carl");
    let monitors = dep.monitors();
    chat(&mut alice, "bob", "p1");
    received(&mut bob, "p1");
    assert_delivered(&ack(&mut alice, "p1"), 1);
    let publishes = || -> Vec<String> {
        let all = monitors
            .iter()
            .flat_map(|m| m.lines_with("PUBLISH\" \"server:"));
        all.collect()
    };
    let count =
        |lines: &[String], channel: &str| lines.iter().filter(|l| l.contains(channel)).count();
    // MONITOR output reaches us asynchronously: wait for both publishes.
    eventually("the direct and its confirmation in MONITOR", || {
        let p = publishes();
        (count(&p, "\"server:b\"") >= 1 && count(&p, "\"server:a\"") >= 1).then_some(())
    });
    let p = publishes();
    assert_eq!(
        p.len(),
        2,
        "only server:b (message) and server:a (confirmation): {p:#?}"
    );
}

/// The server ids in `user`'s route set, sorted.
pub fn sorted_members(dep: &dyn Deployment, user: &str) -> Vec<String> {
    let out = dep.cli(&["SMEMBERS", &format!("user_servers:{user}")]);
    let mut members: Vec<String> = out
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    members.sort();
    members
}
