//! Channels across instances over Redis, shared by `redis_standalone.rs`
//! and `redis_cluster.rs` (as `support::channel_scenarios`): interest-based
//! subscriptions, one order per channel from publishers on every instance,
//! unsubscribe, a Redis restart with subscribers connected, and a killed
//! instance.
#![allow(dead_code)]

use std::time::Duration;

use crate::support::channels::{
    ack, config_file, publications, publish, subscribe, unsubscribe, NAMESPACES,
};
use crate::support::redis_scenarios::{instance_with, wait_ready, Deployment};
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
    for s in &servers {
        assert!(
            !s.log_text().contains("dropped a subscription on its own"),
            "our own unsubscribe was taken for Redis dropping it:\n{}",
            s.log_text()
        );
    }
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

/// Two instances on `dep` for the history scenarios (`support::history`).
pub fn two<'a>(dep: &'a dyn Deployment) -> impl Fn(&[(&str, &str)]) -> Vec<ServerProcess> + 'a {
    move |env: &[(&str, &str)]| vec![instance_with(dep, "a", env), instance_with(dep, "b", env)]
}

/// History, recovery and the inbox across two instances.
pub fn history_across_instances(dep: &dyn Deployment) {
    use crate::support::history;
    let setup = two(dep);
    let (servers, _f) = history::start(&setup);
    history::recovery_is_exact_or_refused(&servers);
    history::history_pages(&servers);
    history::inbox_keeps_what_an_offline_user_missed(&servers);
    history::inbox_pages(&servers);
    for seed in 0..2 {
        history::recovery_storm_has_no_gap_or_duplicate(&servers, seed);
    }
}

/// Redis restarts empty: the history is gone, its epoch changes, and an
/// old position recovers nothing (never a wrong offset match).
pub fn a_redis_restart_starts_a_new_epoch(dep: &mut dyn Deployment) {
    use crate::support::history::{publish_at, start, subscribe_from};
    let (servers, _f) = {
        let setup = two(dep);
        start(&setup)
    };
    let mut c = servers[0].user("p");
    let first = subscribe_from(&mut c, "hist:e", None);
    let epoch = first["epoch"].as_str().unwrap().to_owned();
    publish_at(&mut c, "hist:e", 1);
    dep.stop();
    wait_ready(&servers[0], 503);
    dep.start_again();
    wait_ready(&servers[0], 200);
    wait_ready(&servers[1], 200);
    let mut back = servers[1].user("back");
    let answer = subscribe_from(&mut back, "hist:e", Some((1, &epoch)));
    assert_eq!(answer["recovered"], false, "{answer}");
    assert_ne!(
        answer["epoch"],
        epoch.as_str(),
        "a new epoch after the history was lost"
    );
    assert_eq!(answer["offset"], 0);
}

/// Presence across two instances, and what a crash or a Redis restart
/// does to it.
pub fn presence_across_instances(dep: &dyn Deployment) {
    use crate::support::presence;
    let setup = two(dep);
    let (servers, _f) = presence::start(&setup);
    presence::members_and_join_leave(&servers);
}

/// `kill -9` of the instance holding a member: the member leaves presence
/// (with a `leave`) within the liveness TTL plus one sweep interval.
pub fn a_killed_instances_members_leave(dep: &dyn Deployment) {
    use crate::support::presence::{event, presence, start};
    let setup = two(dep);
    let (mut servers, _f) = start(&setup);
    let mut watcher = servers[0].user("watcher");
    subscribe(&mut watcher, "room:k");
    assert_eq!(event(&mut watcher), ("join".into(), "watcher".into()));
    let mut ghost = servers[1].user("ghost");
    subscribe(&mut ghost, "room:k");
    assert_eq!(event(&mut watcher), ("join".into(), "ghost".into()));
    servers[1].signal(9);
    servers[1].wait_exit(Duration::from_secs(5));
    let killed = std::time::Instant::now();
    assert_eq!(event(&mut watcher), ("leave".into(), "ghost".into()));
    let bound = Duration::from_millis(
        crate::support::redis_scenarios::TTL_MS + 3 * crate::support::redis_scenarios::SWEEP_MS,
    );
    assert!(
        killed.elapsed() < bound + Duration::from_secs(2),
        "leave after {:?}",
        killed.elapsed()
    );
    assert_eq!(
        presence(&mut watcher, "room:k"),
        vec![("watcher".to_owned(), 1)]
    );
    // Exactly once, and never back: no second `leave`, no `join` of the
    // ghost while further sweeps run.
    assert!(
        watcher.silent_for(bound),
        "an event after the ghost's leave"
    );
    assert_eq!(
        presence(&mut watcher, "room:k"),
        vec![("watcher".to_owned(), 1)]
    );
}

/// Redis restarts empty: the instances rebuild presence from their live
/// subscriptions, without a client reconnecting.
pub fn presence_is_rebuilt_after_a_redis_restart(dep: &mut dyn Deployment) {
    use crate::support::presence::{presence, start};
    let (servers, _f) = {
        let setup = two(dep);
        start(&setup)
    };
    let mut a = servers[0].user("ann");
    let mut b = servers[1].user("ben");
    subscribe(&mut a, "room:r");
    subscribe(&mut b, "room:r");
    let both = vec![("ann".to_owned(), 1), ("ben".to_owned(), 1)];
    eventually("both listed", || {
        (presence(&mut a, "room:r") == both).then_some(())
    });
    dep.stop();
    wait_ready(&servers[0], 503);
    dep.start_again();
    wait_ready(&servers[0], 200);
    wait_ready(&servers[1], 200);
    eventually("presence rebuilt", || {
        (presence(&mut b, "room:r") == both).then_some(())
    });
}
