//! Replicas and failovers on a test Cluster ([`RedisCluster`]).
//!
//! [`RedisCluster::start`] builds masters only (`--cluster-replicas 0`),
//! which the other tests use. A failover test adds a replica to the one
//! master it cares about ([`RedisCluster::add_replica`]: a new node, `CLUSTER
//! MEET`, `CLUSTER REPLICATE`), which is cheaper on a small machine than a
//! replica for every master, then promotes it ([`RedisCluster::fail_over`]).
//!
//! Every step waits for the state the next one needs, read from the nodes
//! themselves (`CLUSTER NODES`, `CLUSTER INFO`, `INFO replication`), each
//! wait bounded by [`START_WAIT`] and failing with what the nodes said.

use std::time::{Duration, Instant};

use super::redis::{RedisCluster, RedisServer, START_WAIT};

/// One line of `CLUSTER NODES`: `<id> <addr> <flags> <master> …`.
struct NodeLine<'a> {
    /// The node's id.
    id: &'a str,
    /// Comma-separated flags (`myself,master`, `slave`, `fail?`, …).
    flags: &'a str,
    /// The id of its master, or `-`.
    master: &'a str,
}

fn node_lines(cluster_nodes: &str) -> impl Iterator<Item = NodeLine<'_>> {
    cluster_nodes.lines().filter_map(|line| {
        let mut parts = line.split_whitespace();
        let id = parts.next()?;
        let flags = parts.nth(1)?;
        let master = parts.next()?;
        Some(NodeLine { id, flags, master })
    })
}

/// What `node` says about node `id`: `(flags, master id)`.
fn view_of(node: &RedisServer, id: &str) -> Option<(String, String)> {
    let out = node.cli(&["CLUSTER", "NODES"]);
    let view = node_lines(&out)
        .find(|l| l.id == id)
        .map(|l| (l.flags.to_owned(), l.master.to_owned()));
    view
}

/// Polls `ok` every 20 ms until it holds; after [`START_WAIT`] fails with
/// `what` and `detail()` (what the nodes said).
fn wait_for(what: &str, mut ok: impl FnMut() -> bool, detail: impl Fn() -> String) {
    let deadline = Instant::now() + START_WAIT;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            detail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl RedisCluster {
    /// The node's Cluster id (`CLUSTER MYID`).
    pub fn id_of(&self, node: usize) -> String {
        self.nodes[node].cli(&["CLUSTER", "MYID"])
    }

    /// The index of the master that owns `key`'s slot: the node the
    /// Cluster redirects to (`MOVED`), or the first node when it owns it.
    pub fn owner_of(&self, key: &str) -> usize {
        let reply = self.nodes[0]
            .command(&["EXISTS", key])
            .expect("node 0 answers");
        let port = match reply.strip_prefix("MOVED ") {
            Some(moved) => moved.rsplit(':').next().unwrap().parse().unwrap(),
            None => self.nodes[0].port,
        };
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .unwrap_or_else(|| panic!("{key}: MOVED to unknown port {port} ({reply})"))
    }

    /// Adds a new node as a replica of `nodes[master]` and waits until it
    /// replicates (`master_link_status:up`), every node sees it as that
    /// master's replica (needed for a failover's election) and the Cluster
    /// is ok everywhere. Returns its index in `nodes`.
    pub fn add_replica(&mut self, master: usize) -> usize {
        let master_id = self.id_of(master);
        let seed = self.nodes[master].port.to_string();
        let node = RedisServer::start_cluster_node();
        assert_eq!(node.cli(&["CLUSTER", "MEET", "127.0.0.1", &seed]), "OK");
        self.nodes.push(node);
        let replica = self.nodes.len() - 1;
        let replica_id = self.id_of(replica);
        wait_for(
            "the new node to know every node",
            || self.everyone_knows(&replica_id),
            || self.describe(),
        );
        let node = &self.nodes[replica];
        assert_eq!(node.cli(&["CLUSTER", "REPLICATE", &master_id]), "OK");
        wait_for(
            "the replica's link to its master",
            || self.link_up(replica),
            || self.describe(),
        );
        wait_for(
            "every node to see the replica",
            || self.all_see(&replica_id, "slave", &master_id),
            || self.describe(),
        );
        self.wait_ok();
        replica
    }

    /// Manual failover (`CLUSTER FAILOVER` on `nodes[replica]`): the master
    /// stops writes until the replica caught up, so nothing is lost. See
    /// [`Self::fail_over_with`] for what it waits for.
    pub fn fail_over(&self, replica: usize) {
        self.fail_over_with(replica, &[]);
    }

    /// `CLUSTER FAILOVER <options>` on `nodes[replica]` (`TAKEOVER`: at
    /// once, without the master or a vote, as an operator would after a
    /// master was lost). Waits until it is a master, every node sees it as
    /// a master and its old master as its replica, the old master
    /// replicates from it, and the Cluster is ok everywhere.
    pub fn fail_over_with(&self, replica: usize, options: &[&str]) {
        let replica_id = self.id_of(replica);
        let (_, master_id) = view_of(&self.nodes[replica], &replica_id).expect("itself");
        let old = (0..self.nodes.len())
            .find(|&i| self.id_of(i) == master_id)
            .expect("its master is one of our nodes");
        let mut cmd = vec!["CLUSTER", "FAILOVER"];
        cmd.extend_from_slice(options);
        assert_eq!(self.nodes[replica].cli(&cmd), "OK");
        wait_for(
            "the replica to become master",
            || self.nodes[replica].cli(&["ROLE"]).starts_with("master"),
            || self.describe(),
        );
        wait_for(
            "every node to see the new master and the old one as its replica",
            || {
                self.all_see(&replica_id, "master", "-")
                    && self.all_see(&master_id, "slave", &replica_id)
            },
            || self.describe(),
        );
        wait_for(
            "the old master to replicate from the new one",
            || self.link_up(old),
            || self.describe(),
        );
        self.wait_ok();
    }

    /// Cuts `nodes[replica]` off its master: what the master writes from now
    /// on does not reach it (a lagging replica). Its `masterauth` is set to
    /// a password the master does not have and its link is closed, so each
    /// attempt to reconnect fails; waits until both ends see the link down.
    /// Promote it with [`Self::fail_over_with`] `TAKEOVER` to lose those writes.
    pub fn cut_off(&self, replica: usize, master: usize) {
        let node = &self.nodes[replica];
        assert_eq!(
            node.cli(&["CONFIG", "SET", "masterauth", "not-the-password"]),
            "OK"
        );
        node.cli(&["CLIENT", "KILL", "TYPE", "master"]);
        wait_for(
            "the cut-off replica's link to be down on both ends",
            || {
                let mine = node.cli(&["INFO", "replication"]);
                let theirs = self.nodes[master].cli(&["INFO", "replication"]);
                mine.contains("master_link_status:down") && theirs.contains("connected_slaves:0")
            },
            || self.describe(),
        );
    }

    /// The `master_replid` of `nodes[node]` (`INFO replication`).
    pub fn replid(&self, node: usize) -> String {
        let info = self.nodes[node].cli(&["INFO", "replication"]);
        info.lines()
            .find_map(|l| l.strip_prefix("master_replid:"))
            .unwrap_or_else(|| panic!("no master_replid in {info}"))
            .trim()
            .to_owned()
    }

    fn everyone_knows(&self, id: &str) -> bool {
        let count = self.nodes.len();
        self.nodes.iter().all(|n| {
            let out = n.cli(&["CLUSTER", "NODES"]);
            node_lines(&out).count() == count && node_lines(&out).any(|l| l.id == id)
        })
    }

    fn all_see(&self, id: &str, role: &str, master: &str) -> bool {
        self.nodes.iter().all(|n| {
            view_of(n, id).is_some_and(|(flags, m)| {
                let flags: Vec<&str> = flags.split(',').collect();
                flags.contains(&role) && !flags.iter().any(|f| f.starts_with("fail")) && m == master
            })
        })
    }

    fn link_up(&self, node: usize) -> bool {
        let info = self.nodes[node].cli(&["INFO", "replication"]);
        info.contains("role:slave") && info.contains("master_link_status:up")
    }

    /// Every node's `CLUSTER NODES` and replication role, for failures.
    fn describe(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "node {}:\n{}\n{}\n",
                    n.port,
                    n.cli(&["CLUSTER", "NODES"]),
                    n.cli(&["INFO", "replication"])
                )
            })
            .collect()
    }
}
