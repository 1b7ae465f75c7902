//! The races that matter, driven through the simulated bus in many seeded
//! interleavings: registrations racing closes across shards, acks summed
//! from several shards and a remote instance, and a receiver leaving while
//! a message to it is in flight.

use rand::Rng;

use super::sim::Sim;
use crate::coordinator::RemoteOutcome;
use crate::shard::ConnKey;

/// Seeds per property: every one is a different interleaving.
const SEEDS: u64 = 400;

/// Users whose owner is a given shard of three, found once.
fn user_owned_by(shard: u16) -> String {
    (0..)
        .map(|i| format!("user{i}"))
        .find(|u| super::owner_of(u, 3) == shard)
        .expect("some user hashes there")
}

fn assert_clean(sim: &Sim, seed: u64) {
    assert!(
        sim.violations.is_empty(),
        "seed {seed}: {:?}",
        sim.violations
    );
}

/// At rest with no connection left: no local user, no directory entry, no
/// route, and the route writes alternate add/remove.
fn assert_all_gone(sim: &Sim, user: &str, seed: u64) {
    assert_clean(sim, seed);
    for (i, core) in sim.cores.iter().enumerate() {
        assert!(
            !core.has_local_user(user),
            "seed {seed}: shard {i} keeps {user}"
        );
        assert!(
            core.shards_of(user).is_empty(),
            "seed {seed}: shard {i} directory"
        );
    }
    assert!(
        !sim.coordinator.routes.contains_key(user),
        "seed {seed}: route left behind"
    );
    let writes = sim
        .coordinator
        .writes
        .get(user)
        .cloned()
        .unwrap_or_default();
    for pair in writes.windows(2) {
        assert_ne!(pair[0], pair[1], "seed {seed}: writes {writes:?}");
    }
}

#[test]
fn two_connections_of_one_user_on_two_shards_in_every_interleaving() {
    for seed in 0..SEEDS {
        for owner in 0..3 {
            let user = user_owned_by(owner);
            let mut sim = Sim::new(3, true, seed);
            // Each connection opens, lives a random while, closes; the two
            // lives overlap in every way the scheduler finds.
            let mut script = vec![(1u16, true), (2, true), (1, false), (2, false)];
            let mut open: Vec<Option<(u16, ConnKey)>> = vec![None; 3];
            while !script.is_empty() {
                let ready: Vec<usize> = (0..script.len())
                    .filter(|&i| script[i].1 || open[usize::from(script[i].0)].is_some())
                    .collect();
                if ready.is_empty() || sim.rng.random_bool(0.5) && sim.step() {
                    continue;
                }
                let (shard, opening) = script.remove(ready[sim.rng.random_range(0..ready.len())]);
                if opening {
                    open[usize::from(shard)] = Some(sim.open(shard, &user));
                } else if let Some(c) = open[usize::from(shard)].take() {
                    sim.close(c);
                }
            }
            sim.settle();
            assert_all_gone(&sim, &user, seed);
        }
    }
}

#[test]
fn every_connection_is_welcomed_once_and_routable_when_it_is() {
    for seed in 0..SEEDS {
        let user = user_owned_by(0);
        let mut sim = Sim::new(3, true, seed);
        let a = sim.open(1, &user);
        let b = sim.open(2, &user);
        let c = sim.open(1, &user);
        sim.settle();
        assert_clean(&sim, seed);
        for conn in [a, b, c] {
            assert_eq!(
                sim.conns[&(conn.0, conn.1.index)].welcomed,
                1,
                "seed {seed}"
            );
        }
        let mut holders = sim.cores[0].shards_of(&user).to_vec();
        holders.sort();
        assert_eq!(holders, [1, 2], "seed {seed}");
        for conn in [a, b, c] {
            sim.close(conn);
        }
        sim.settle();
        assert_all_gone(&sim, &user, seed);
    }
}

#[test]
fn a_close_racing_its_registration_leaves_nothing_behind() {
    for seed in 0..SEEDS {
        let user = user_owned_by(0);
        let mut sim = Sim::new(3, true, seed);
        // Open and close before the owner and the coordinator answered,
        // then come back while the old answers are still in flight.
        let first = sim.open(1, &user);
        for _ in 0..sim.rng.random_range(0..4) {
            sim.step();
        }
        sim.close(first);
        for _ in 0..sim.rng.random_range(0..4) {
            sim.step();
        }
        let again = sim.open(1, &user);
        sim.settle();
        assert_clean(&sim, seed);
        assert_eq!(
            sim.conns[&(again.0, again.1.index)].welcomed,
            1,
            "seed {seed}"
        );
        assert!(sim.coordinator.routes.contains_key(&user), "seed {seed}");
        sim.close(again);
        sim.settle();
        assert_all_gone(&sim, &user, seed);
    }
}

#[test]
fn an_ack_sums_several_shards_and_the_remote_instances() {
    for seed in 0..SEEDS {
        let receiver = user_owned_by(2);
        let mut sim = Sim::new(3, true, seed);
        sim.coordinator.remote_outcome = Some(RemoteOutcome::Delivered { connections: 2 });
        let sender = sim.open(0, "sender");
        let held: Vec<_> = [1, 1, 2].iter().map(|&s| sim.open(s, &receiver)).collect();
        sim.settle();
        sim.send(sender, &receiver, "m1");
        sim.settle();
        assert_clean(&sim, seed);
        assert_eq!(
            sim.acks(sender),
            vec![("m1".to_owned(), "delivered".to_owned(), 5)],
            "seed {seed}"
        );
        for conn in held {
            assert_eq!(sim.count_received(conn, "msg:m1"), 1, "seed {seed}");
        }
        assert_eq!(sim.cores[0].pending_acks(), 0);
    }
}

#[test]
fn a_receiver_leaving_while_a_message_is_in_flight_gets_an_honest_ack() {
    let mut outcomes = [0usize; 2];
    for seed in 0..SEEDS {
        let receiver = user_owned_by(2);
        let mut sim = Sim::new(3, true, seed);
        let sender = sim.open(0, "sender");
        let only = sim.open(1, &receiver);
        sim.settle();
        sim.send(sender, &receiver, "m1");
        for _ in 0..sim.rng.random_range(0..6) {
            sim.step();
        }
        let got = sim.count_received(only, "msg:m1");
        sim.close(only);
        sim.settle();
        assert_clean(&sim, seed);
        let acks = sim.acks(sender);
        assert_eq!(acks.len(), 1, "seed {seed}: {acks:?}");
        let (_, status, connections) = &acks[0];
        if got == 1 {
            outcomes[0] += 1;
            assert_eq!(
                (status.as_str(), *connections),
                ("delivered", 1),
                "seed {seed}"
            );
        } else {
            outcomes[1] += 1;
            assert_eq!(status, "offline", "seed {seed}: nothing was queued");
        }
        assert_all_gone(&sim, &receiver, seed);
    }
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "both orders were explored: {outcomes:?}"
    );
}

#[test]
fn embedded_mode_welcomes_without_a_coordinator_round_trip() {
    for seed in 0..50 {
        let mut sim = Sim::new(2, false, seed);
        let a = sim.open(0, "alice");
        let b = sim.open(1, "bob");
        sim.settle();
        assert!(sim.coordinator.writes.is_empty(), "no route writes");
        sim.send(a, "bob", "m1");
        sim.settle();
        assert_eq!(
            sim.acks(a),
            vec![("m1".to_owned(), "delivered".to_owned(), 1)]
        );
        assert_eq!(sim.count_received(b, "msg:m1"), 1);
    }
}
