//! The periodic sweep of the route table: removes routes to servers whose
//! liveness key is gone, and this instance's id from the sets of users that
//! have no connection here (what a crash or a restart under the same
//! `SERVER_ID` left behind).
//!
//! A pass walks `SCAN 0 MATCH user_servers:*` on every node (each master of
//! a Cluster in turn), one page at a time, interleaved with the regular
//! traffic: page → `SMEMBERS` of its keys → liveness of their members →
//! `SREM`s, then the next page. One page is in progress at a time, which
//! bounds memory and keeps each round small. A pass runs at every
//! (re)connection (the start-up clean-up) and then every `interval` from the
//! start of the previous pass; so a dead server's routes are gone at most
//! `ttl + interval + duration of one pass` after its death.

use std::time::{Duration, Instant};

use super::keys;
use super::liveness::{Liveness, Status};

/// Keys asked per `SCAN` page.
pub const SCAN_COUNT: usize = 512;

/// A node to scan: `None` on a standalone server.
pub type Node = Option<(String, u16)>;

/// A route entry the sweep found stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Our own id in the set of a user with no connection here.
    Own(String),
    /// `(user, server)`: a dead server in the user's set.
    Dead(String, String),
}

/// One pass in progress.
#[derive(Debug)]
struct Pass {
    /// When the pass began (the next begins `interval` later).
    started: Instant,
    /// Index of the node being scanned.
    node: usize,
    /// The node's next cursor (0 before the first page and after the last).
    cursor: u64,
    /// True once the first page of the current node was asked for.
    began_node: bool,
    /// A `SCAN` is in flight.
    scanning: bool,
    /// Users of the current page whose sets are still to read.
    to_read: Vec<String>,
    /// `SMEMBERS` in flight.
    reading: usize,
    /// Sets read, waiting for liveness answers: `(user, members)`.
    sets: Vec<(String, Vec<String>)>,
}

/// The sweep's schedule and current pass.
#[derive(Debug)]
pub struct Sweep {
    /// Time between the starts of two passes.
    interval: Duration,
    /// Nodes to scan (set at every connection).
    nodes: Vec<Node>,
    /// The pass in progress, if any.
    pass: Option<Pass>,
    /// When the next pass begins.
    next_start: Instant,
}

impl Sweep {
    /// A sweep running every `interval` once [`Sweep::restart`] was called.
    pub fn new(interval: Duration, now: Instant) -> Self {
        let far = now + Duration::from_secs(3600 * 24 * 365);
        Self {
            interval,
            nodes: Vec::new(),
            pass: None,
            next_start: far,
        }
    }

    /// Connected: scan `nodes`, starting a pass now.
    pub fn restart(&mut self, nodes: Vec<Node>, now: Instant) {
        self.nodes = nodes;
        self.pass = None;
        self.next_start = now;
    }

    /// The link went down: the pass is abandoned (a new one starts at reconnection).
    pub fn abort(&mut self) {
        self.pass = None;
    }

    /// The next `SCAN` to send, if the pass is ready for one (starts a pass when due).
    pub fn next_scan(&mut self, now: Instant) -> Option<(Node, u64)> {
        if self.pass.is_none() && now >= self.next_start && !self.nodes.is_empty() {
            self.next_start = now + self.interval;
            self.pass = Some(Pass {
                started: now,
                node: 0,
                cursor: 0,
                began_node: false,
                scanning: false,
                to_read: Vec::new(),
                reading: 0,
                sets: Vec::new(),
            });
        }
        let p = self.pass.as_mut()?;
        if p.scanning || p.reading > 0 || !p.to_read.is_empty() || !p.sets.is_empty() {
            return None;
        }
        if p.began_node && p.cursor == 0 {
            p.node += 1;
            p.began_node = false;
        }
        let Some(node) = self.nodes.get(p.node) else {
            self.next_start = p.started + self.interval;
            self.pass = None;
            return None;
        };
        p.scanning = true;
        p.began_node = true;
        Some((node.clone(), p.cursor))
    }

    /// A `SCAN` reply (`None`: it failed, the pass ends and runs again on schedule).
    pub fn on_scan(&mut self, page: Option<(u64, Vec<String>)>) {
        let Some(p) = self.pass.as_mut() else { return };
        let Some((cursor, keys)) = page else {
            self.pass = None;
            return;
        };
        p.scanning = false;
        p.cursor = cursor;
        let users = keys
            .iter()
            .filter_map(|k| keys::user_of_route_key(k.as_bytes()));
        p.to_read.extend(users.map(str::to_owned));
    }

    /// Users whose sets to read in the next round.
    pub fn take_reads(&mut self) -> Vec<String> {
        let Some(p) = self.pass.as_mut() else {
            return Vec::new();
        };
        p.reading += p.to_read.len();
        std::mem::take(&mut p.to_read)
    }

    /// A set read by the sweep (`None`: the read failed, the set is skipped).
    pub fn on_members(&mut self, user: String, members: Option<Vec<String>>) {
        let Some(p) = self.pass.as_mut() else { return };
        p.reading = p.reading.saturating_sub(1);
        if let Some(members) = members {
            p.sets.push((user, members));
        }
    }

    /// Decides every set whose members' liveness is known.
    pub fn resolve(&mut self, me: &str, liveness: &mut Liveness, now: Instant) -> Vec<Removal> {
        let Some(p) = self.pass.as_mut() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        p.sets.retain(|(user, members)| {
            let statuses: Vec<Status> = members
                .iter()
                .map(|m| {
                    if m == me {
                        Status::Alive
                    } else {
                        liveness.status(m, now)
                    }
                })
                .collect();
            if statuses.contains(&Status::Unknown) {
                return true;
            }
            for (member, status) in members.iter().zip(statuses) {
                if member == me {
                    out.push(Removal::Own(user.clone()));
                } else if status == Status::Dead {
                    out.push(Removal::Dead(user.clone(), member.clone()));
                }
            }
            false
        });
        out
    }

    /// True while a pass is in progress.
    pub fn is_active(&self) -> bool {
        self.pass.is_some()
    }
}

#[cfg(test)]
mod tests;
