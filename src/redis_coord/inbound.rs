//! Direct messages other instances sent to our users: counting the shards'
//! reports until the confirmation can go back to the origin.
//!
//! Each incoming direct that wants a confirmation gets a key of ours (the
//! `ReplyTo::Coordinator` token). The owner shard answers with `parts`
//! (the number of shards holding the receiver, at least 1) and every part
//! reports once; when all parts are in, the sum is confirmed to the origin.
//! A request whose reports never complete is dropped at its deadline (the
//! origin then answers `failed` by its own deadline), so nothing leaks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A confirmation to publish: `(origin server, origin token, connections)`.
pub type Confirm = (String, u64, u32);

/// One incoming direct waiting for its shards' reports.
#[derive(Debug)]
struct Pending {
    /// Server id of the sending instance.
    origin: String,
    /// The origin's request key, echoed in the confirmation.
    token: u64,
    /// Parts announced by the reports (0 until the first report).
    parts: u32,
    /// Parts reported.
    reported: u32,
    /// Connections that accepted the message, summed over parts.
    connections: u32,
    /// When the request is dropped unanswered.
    deadline: Instant,
}

/// Incoming directs by our key.
#[derive(Debug)]
pub struct Inbound {
    /// Waiting requests.
    pending: HashMap<u64, Pending>,
    /// The next key (never 0, which means "no confirmation").
    next_key: u64,
    /// How long reports may take.
    timeout: Duration,
}

impl Inbound {
    /// Nothing waiting; requests are dropped after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            pending: HashMap::new(),
            next_key: 1,
            timeout,
        }
    }

    /// Starts counting a direct from `origin`; returns our key for it.
    pub fn begin(&mut self, origin: String, token: u64, now: Instant) -> u64 {
        let key = self.next_key;
        self.next_key = self.next_key.wrapping_add(1).max(1);
        let deadline = now + self.timeout;
        let pending = Pending {
            origin,
            token,
            parts: 0,
            reported: 0,
            connections: 0,
            deadline,
        };
        self.pending.insert(key, pending);
        key
    }

    /// One shard's report; returns the confirmation once every part is in.
    pub fn report(&mut self, key: u64, connections: u32, parts: u32) -> Option<Confirm> {
        let p = self.pending.get_mut(&key)?;
        p.parts = parts.max(1);
        p.reported += 1;
        p.connections = p.connections.saturating_add(connections);
        if p.reported < p.parts {
            return None;
        }
        self.pending
            .remove(&key)
            .map(|p| (p.origin, p.token, p.connections))
    }

    /// Drops requests past their deadline; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.pending.len();
        self.pending.retain(|_, p| p.deadline > now);
        before - self.pending.len()
    }

    /// The link went down: no confirmation can be sent.
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Number of requests waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_summed_then_confirmed_once() {
        let now = Instant::now();
        let mut i = Inbound::new(Duration::from_secs(1));
        let k = i.begin("s1".into(), 77, now);
        assert_ne!(k, 0);
        assert_eq!(i.report(k, 2, 2), None);
        assert_eq!(i.report(k, 1, 2), Some(("s1".into(), 77, 3)));
        assert_eq!(i.report(k, 1, 2), None, "already confirmed");
    }

    #[test]
    fn a_user_with_no_connection_confirms_zero() {
        let now = Instant::now();
        let mut i = Inbound::new(Duration::from_secs(1));
        let k = i.begin("s1".into(), 5, now);
        assert_eq!(i.report(k, 0, 1), Some(("s1".into(), 5, 0)));
    }

    #[test]
    fn unanswered_requests_expire() {
        let now = Instant::now();
        let mut i = Inbound::new(Duration::from_secs(1));
        let a = i.begin("s1".into(), 1, now);
        i.begin("s1".into(), 2, now + Duration::from_millis(500));
        assert_eq!(i.expire(now + Duration::from_secs(1)), 1);
        assert_eq!(i.report(a, 1, 1), None);
        assert_eq!(i.len(), 1);
        i.clear();
        assert!(i.is_empty());
    }
}
