//! Which other servers are alive, as their `server_alive:<id>` keys say.
//!
//! A route is used only after its server's liveness key was seen. Positive
//! answers are cached briefly ([`Liveness::new`]'s `fresh_for`, a tenth of
//! the TTL, at most a second) so a busy conversation costs no extra round
//! trip; negative answers are used only within the pass that fetched them
//! and never cached, because a dead verdict removes routes, and a server
//! restarted under the same id must not lose its fresh routes to an old
//! verdict. Several requests for the same server share one `EXISTS`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// What is known about a server now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Its liveness key was seen within the freshness window.
    Alive,
    /// Its liveness key is gone (fetched in this pass).
    Dead,
    /// Unknown yet: an `EXISTS` is queued or in flight.
    Unknown,
    /// The check failed (Redis error): neither use nor remove the route.
    Failed,
}

/// The liveness cache and the checks it needs.
#[derive(Debug)]
pub struct Liveness {
    /// How long a positive answer is trusted.
    fresh_for: Duration,
    /// When each server was last seen alive.
    alive_at: HashMap<String, Instant>,
    /// Servers to check in the next round.
    wanted: HashSet<String>,
    /// Servers whose check is in the current round.
    in_flight: HashSet<String>,
    /// Verdicts of this pass that are not cached: dead or failed checks.
    this_pass: HashMap<String, Status>,
}

impl Liveness {
    /// A cache trusting positive answers for a tenth of `ttl` (at most 1 s).
    pub fn new(ttl: Duration) -> Self {
        Self {
            fresh_for: (ttl / 10).min(Duration::from_secs(1)),
            alive_at: HashMap::new(),
            wanted: HashSet::new(),
            in_flight: HashSet::new(),
            this_pass: HashMap::new(),
        }
    }

    /// The status of `server`, asking for a check when it is not known.
    pub fn status(&mut self, server: &str, now: Instant) -> Status {
        if let Some(at) = self.alive_at.get(server) {
            if now.saturating_duration_since(*at) < self.fresh_for {
                return Status::Alive;
            }
        }
        if let Some(status) = self.this_pass.get(server) {
            return *status;
        }
        if !self.in_flight.contains(server) {
            self.wanted.insert(server.to_owned());
        }
        Status::Unknown
    }

    /// The servers to check in the next round (now in flight).
    pub fn take_wanted(&mut self) -> Vec<String> {
        let wanted: Vec<String> = self.wanted.drain().collect();
        self.in_flight.extend(wanted.iter().cloned());
        wanted
    }

    /// The answer of an `EXISTS`.
    pub fn on_exists(&mut self, server: String, exists: bool, now: Instant) {
        self.in_flight.remove(&server);
        if exists {
            self.this_pass.remove(&server);
            self.alive_at.insert(server, now);
        } else {
            self.alive_at.remove(&server);
            self.this_pass.insert(server, Status::Dead);
        }
    }

    /// An `EXISTS` failed.
    pub fn on_error(&mut self, server: String) {
        self.in_flight.remove(&server);
        self.this_pass.insert(server, Status::Failed);
    }

    /// A publish reached no subscriber: whatever the key says, do not
    /// trust the cached answer any longer.
    pub fn forget(&mut self, server: &str) {
        self.alive_at.remove(server);
    }

    /// Everyone who waited has looked at this pass's verdicts: drop them,
    /// and stale cache entries with them.
    pub fn end_pass(&mut self, now: Instant) {
        self.this_pass.clear();
        let fresh_for = self.fresh_for;
        self.alive_at
            .retain(|_, at| now.saturating_duration_since(*at) < fresh_for);
    }

    /// The link went down: checks in flight will never answer.
    pub fn reset(&mut self) {
        self.wanted.clear();
        self.in_flight.clear();
        self.this_pass.clear();
        self.alive_at.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_check_serves_every_waiter_and_alive_is_cached_briefly() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Duration::from_secs(10));
        assert_eq!(l.status("s2", t0), Status::Unknown);
        assert_eq!(l.status("s2", t0), Status::Unknown);
        assert_eq!(l.take_wanted(), vec!["s2".to_owned()]);
        assert_eq!(l.status("s2", t0), Status::Unknown);
        assert!(l.take_wanted().is_empty(), "already in flight");
        l.on_exists("s2".into(), true, t0);
        l.end_pass(t0);
        assert_eq!(
            l.status("s2", t0 + Duration::from_millis(999)),
            Status::Alive
        );
        assert_eq!(l.status("s2", t0 + Duration::from_secs(1)), Status::Unknown);
    }

    #[test]
    fn dead_verdicts_last_one_pass_only() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Duration::from_secs(10));
        l.status("s3", t0);
        l.take_wanted();
        l.on_exists("s3".into(), false, t0);
        assert_eq!(l.status("s3", t0), Status::Dead);
        l.end_pass(t0);
        assert_eq!(l.status("s3", t0), Status::Unknown);
    }

    #[test]
    fn failed_checks_and_forgotten_servers() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Duration::from_secs(1));
        l.status("s4", t0);
        l.take_wanted();
        l.on_error("s4".into());
        assert_eq!(l.status("s4", t0), Status::Failed);
        l.on_exists("s4".into(), true, t0);
        assert_eq!(l.status("s4", t0), Status::Alive);
        l.forget("s4");
        assert_eq!(l.status("s4", t0), Status::Unknown);
        l.reset();
        assert!(l.take_wanted().is_empty());
    }
}
