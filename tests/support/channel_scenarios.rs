//! Channels across instances over Redis, shared by `redis_standalone.rs`
//! and `redis_cluster.rs` (included there with `#[path]`): interest-based
//! subscriptions, one order per channel from publishers on every instance,
//! unsubscribe, a Redis restart with subscribers connected, and a killed
//! instance.
#![allow(dead_code)]

use std::time::Duration;

use crate::scenarios::{instance_with, wait_ready, Deployment};
use crate::support::channels::{
    ack, config_file, publications, publish, subscribe, unsubscribe, NAMESPACES,
};
use crate::support::{eventually, Client, ServerProcess};

/// Instances `ids` with the test namespaces; keep the file alive.
fn instances(dep: &dyn Deployment, ids: &[&str]) -> (Vec<ServerProcess>, tempfile::NamedTempFile) {
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    let env = [("CHANNELS_CONFIG", path.as_str())];
    let servers = ids.iter().map(|id| instance_with(dep, id, &env)).collect();
    (servers, file)
}

/// Publishers on two instances, subscribers on both: every subscriber gets
/// every publication once, all in one order; the last unsubscribe on an
/// instance removes its Redis subscription.
pub fn channel_spans_instances(dep: &dyn Deployment) {
    let (servers, _f) = instances(dep, &["a", "b"]);
    let redis_channel = "ch:{chat:room}";
    let mut subs: Vec<Client> = (0..4)
        .map(|i| servers[i % 2].user(&format!("s{i}")))
        .collect();
    for c in &mut subs {
        subscribe(c, "chat:room");
    }
    assert_eq!(
        dep.subscribers(redis_channel),
        2,
        "one subscription per instance"
    );
    let mut pa = servers[0].user("pa");
    let mut pb = servers[1].user("pb");
    for n in 0..15 {
        publish(&mut pa, "chat:room", n, &format!("a{n}"));
        publish(&mut pb, "chat:room", 100 + n, &format!("b{n}"));
    }
    for n in 0..15 {
        assert_eq!(ack(&mut pa, &format!("a{n}"))["status"], "published");
        assert_eq!(ack(&mut pb, &format!("b{n}"))["status"], "published");
    }
    let order = publications(&mut subs[0], "chat:room", 30);
    let from_a: Vec<u64> = order.iter().copied().filter(|n| *n < 100).collect();
    assert_eq!(from_a, (0..15).collect::<Vec<_>>());
    for c in &mut subs[1..] {
        assert_eq!(
            publications(c, "chat:room", 30),
            order,
            "one channel order everywhere"
        );
    }
    for c in &mut subs {
        assert!(c.silent_for(Duration::from_millis(200)), "nothing twice");
    }
    // Instance b's subscribers leave: its Redis subscription goes, a's stays.
    unsubscribe(&mut subs[1], "chat:room");
    drop(subs.remove(3));
    eventually("b unsubscribed from redis", || {
        (dep.subscribers(redis_channel) == 1).then_some(())
    });
    publish(&mut pb, "chat:room", 999, "last");
    ack(&mut pb, "last");
    assert_eq!(publications(&mut subs[0], "chat:room", 1), vec![999]);
    assert!(
        subs[1].silent_for(Duration::from_millis(200)),
        "unsubscribed"
    );
}

/// Redis restarts empty while subscribers stay connected: publishes fail
/// meanwhile (acked `failed`), then every instance subscribes again and
/// publications flow, without a client reconnecting.
pub fn channels_survive_a_redis_restart(dep: &mut dyn Deployment) {
    let (servers, _f) = instances(dep, &["a", "b"]);
    let mut sa = servers[0].user("sa");
    let mut sb = servers[1].user("sb");
    subscribe(&mut sa, "chat:r");
    subscribe(&mut sb, "chat:r");
    let mut publisher = servers[0].user("p");
    dep.stop();
    wait_ready(&servers[0], 503);
    publish(&mut publisher, "chat:r", 1, "down");
    assert_eq!(
        ack(&mut publisher, "down")["status"],
        "failed",
        "never published for what was not"
    );
    dep.start_again();
    for s in &servers {
        wait_ready(s, 200);
    }
    eventually("both instances subscribed again", || {
        (dep.subscribers("ch:{chat:r}") == 2).then_some(())
    });
    publish(&mut publisher, "chat:r", 2, "up");
    assert_eq!(ack(&mut publisher, "up")["status"], "published");
    assert_eq!(publications(&mut sa, "chat:r", 1), vec![2]);
    assert_eq!(publications(&mut sb, "chat:r", 1), vec![2]);
}

/// `kill -9` of one instance leaves the others' channels working.
pub fn killed_instance_leaves_channels_working(dep: &dyn Deployment) {
    let (mut servers, _f) = instances(dep, &["a", "b", "c"]);
    let mut sa = servers[0].user("sa");
    let mut sc = servers[2].user("sc");
    let mut sb = servers[1].user("sb");
    for c in [&mut sa, &mut sb, &mut sc] {
        subscribe(c, "chat:k");
    }
    servers[1].signal(9);
    servers[1].wait_exit(Duration::from_secs(5));
    let mut publisher = servers[0].user("p");
    publish(&mut publisher, "chat:k", 5, "k");
    assert_eq!(ack(&mut publisher, "k")["status"], "published");
    assert_eq!(publications(&mut sa, "chat:k", 1), vec![5]);
    assert_eq!(publications(&mut sc, "chat:k", 1), vec![5]);
}
