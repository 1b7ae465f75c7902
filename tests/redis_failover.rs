//! Redis Cluster failovers under a channel with history: the channel's
//! master is replaced by its replica while two instances publish and
//! subscribe (the subscriber on one, the publisher on the other).
//!
//! The new master's `master_replid` differs from the one stored in the
//! channel's meta, so the history starts a new epoch: a position taken
//! before the failover recovers nothing, whether the failover lost writes
//! (`TAKEOVER` of a replica cut off its master) or not (a manual failover:
//! the server cannot tell the two apart). Publishing and delivery go on
//! through the new master. See docs/REDIS.md, "Cluster failover".

mod support;

use serde_json::{json, Value};

use support::channel_scenarios::two;
use support::eventually;
use support::history::{live_offsets, publish_at, start, subscribe_from};
use support::redis::RedisCluster;
use support::redis_scenarios::wait_ready;
use support::{Client, ServerProcess};

/// A channel of the `hist` namespace (history of 5).
const CHANNEL: &str = "hist:failover";

/// A Cluster whose channel master has a replica, two instances, a
/// subscriber that received publications 1..=3 and the publisher.
struct Scene {
    cluster: RedisCluster,
    master: usize,
    replica: usize,
    servers: Vec<ServerProcess>,
    _namespaces: tempfile::NamedTempFile,
    sub: Client,
    publisher: Client,
    /// The epoch before the failover.
    epoch: String,
}

fn meta() -> String {
    format!("ch_meta:{{{CHANNEL}}}")
}

fn scene() -> Scene {
    let mut cluster = RedisCluster::start(3);
    let master = cluster.owner_of(&meta());
    let replica = cluster.add_replica(master);
    let (servers, file) = {
        let setup = two(&cluster);
        start(&setup)
    };
    let mut sub = servers[0].user("sub");
    let mut publisher = servers[1].user("pub");
    let before = subscribe_from(&mut sub, CHANNEL, None);
    let epoch = before["epoch"].as_str().expect("epoch").to_owned();
    for n in 1..=3 {
        assert_eq!(publish_at(&mut publisher, CHANNEL, n), n);
    }
    assert_eq!(live_offsets(&mut sub, 3), vec![1, 2, 3]);
    assert_eq!(
        cluster.cli(&["HGET", &meta(), "replid"]),
        cluster.replid(master),
        "the meta records the master that wrote it"
    );
    Scene {
        cluster,
        master,
        replica,
        servers,
        _namespaces: file,
        sub,
        publisher,
        epoch,
    }
}

impl Scene {
    /// After the failover: the slot moved, and every instance is subscribed
    /// again where it must be. The old master dropped the slot's sharded
    /// subscriptions (an `sunsubscribe` notice); the subscriber's instance
    /// reconnects and subscribes again on the new master, as does an
    /// instance whose own channel is in that slot.
    fn settled(&self, old_replid: &str) {
        assert_eq!(self.cluster.owner_of(&meta()), self.replica, "slot moved");
        assert_ne!(self.cluster.replid(self.replica), old_replid);
        self.servers[0].wait_log("redis dropped a subscription on its own");
        wait_subscribed(&self.cluster, &format!("ch:{{{CHANNEL}}}"));
        for (server, id) in self.servers.iter().zip(["a", "b"]) {
            wait_subscribed(&self.cluster, &format!("server:{id}"));
            wait_ready(server, 200);
        }
    }

    /// Publishes `n` after the failover: offset 1 of a new epoch, received
    /// live. Then an old position recovers nothing, and the new epoch
    /// recovers as usual. Returns the new epoch.
    fn new_epoch_after(&mut self, n: u64, old_positions: &[u64]) -> String {
        assert_eq!(publish_at(&mut self.publisher, CHANNEL, n), 1, "new epoch");
        assert_eq!(live_offsets(&mut self.sub, 1), vec![1]);
        let mut back = Vec::new();
        let mut new_epoch = String::new();
        for &offset in old_positions {
            let mut c = self.servers[1].user(&format!("back{offset}"));
            let answer = subscribe_from(&mut c, CHANNEL, Some((offset, &self.epoch)));
            back.push(c);
            assert_eq!(answer["recovered"], false, "from {offset}: {answer}");
            assert_eq!(answer["publications"], json!([]), "never partial");
            assert_eq!(answer["offset"], 1, "{answer}");
            new_epoch = answer["epoch"].as_str().expect("epoch").to_owned();
            assert_ne!(new_epoch, self.epoch, "a new epoch after the failover");
        }
        assert_eq!(publish_at(&mut self.publisher, CHANNEL, n + 1), 2);
        assert_eq!(live_offsets(&mut self.sub, 1), vec![2]);
        for c in &mut back {
            assert_eq!(live_offsets(c, 1), vec![2]);
        }
        let mut again = self.servers[0].user("again");
        let answer = subscribe_from(&mut again, CHANNEL, Some((0, &new_epoch)));
        assert_eq!(answer["recovered"], true, "{answer}");
        assert_eq!(offsets(&answer["publications"]), vec![1, 2]);
        new_epoch
    }
}

/// A manual failover loses nothing (the master waits for its replica), but
/// the instances cannot know that: a new epoch all the same.
#[test]
fn a_manual_failover_starts_a_new_epoch_and_publishing_goes_on() {
    let mut s = scene();
    let old_replid = s.cluster.replid(s.master);
    s.cluster.fail_over(s.replica);
    s.settled(&old_replid);
    s.new_epoch_after(4, &[3, 0]);
}

/// A write acknowledged by the old master never reached the replica that
/// takes over: its offset (4) would otherwise be given to a different
/// publication. Neither it nor the last one the new master kept (3)
/// matches anything after the failover.
#[test]
fn a_failover_that_lost_a_write_never_matches_an_old_offset() {
    let mut s = scene();
    let old_replid = s.cluster.replid(s.master);
    s.cluster.cut_off(s.replica, s.master);
    assert_eq!(publish_at(&mut s.publisher, CHANNEL, 4), 4);
    assert_eq!(live_offsets(&mut s.sub, 1), vec![4]);
    s.cluster.fail_over_with(s.replica, &["TAKEOVER"]);
    assert_eq!(
        s.cluster.cli(&["HGET", &meta(), "offset"]),
        "3",
        "the new master lacks the last write"
    );
    s.settled(&old_replid);
    s.new_epoch_after(5, &[4, 3]);
}

fn offsets(list: &Value) -> Vec<u64> {
    let list = list.as_array().expect("a list");
    list.iter().map(|p| p["offset"].as_u64().unwrap()).collect()
}

/// Waits until one instance is subscribed to the sharded channel `name` on
/// the master that owns its slot now.
fn wait_subscribed(cluster: &RedisCluster, name: &str) {
    let owner = &cluster.nodes[cluster.owner_of(name)];
    eventually(&format!("{name} subscribed on port {}", owner.port), || {
        let out = owner.cli(&["PUBSUB", "SHARDNUMSUB", name]);
        (out.lines().nth(1) == Some("1")).then_some(())
    });
}
