//! Unfinished messages: the shard's side table of connections that are in
//! the middle of a frame or a message, when each began and how much memory
//! its decoder holds for it, checked against a deadline and a shard budget.
//!
//! I/O-free, clock passed in. Why a side table and not a field in `Conn`:
//! an idle connection must stay as small as it is (see the size test in
//! `conn.rs`), and only the few connections mid-message need any of this.
//! Without it, a client could start a message of `MAX_MESSAGE_BYTES` and add
//! a byte now and then (any byte counts as a sign of life), pinning that
//! memory for as long as it liked, and many clients could together grow the
//! shard without bound.

use std::collections::HashMap;

use super::ConnKey;

/// The limits, validated by the config layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnfinishedLimits {
    /// How long a started message may take to complete, in ms.
    pub timeout_ms: u32,
    /// Bytes all of the shard's unfinished messages may hold together
    /// (at least one largest message).
    pub budget_bytes: usize,
}

/// What to do with a connection after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limits.
    Ok,
    /// Its message began longer than the timeout ago: close it.
    Overdue,
    /// Its growth took the shard past the budget: close it (the offender,
    /// not whoever happens to hold the most).
    OverBudget,
}

/// One connection mid-message.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Shard clock (ms) when what it holds now began.
    started_ms: u32,
    /// Bytes its decoder holds.
    bytes: usize,
}

/// The shard's connections that are mid-message.
#[derive(Debug)]
pub struct Unfinished {
    limits: UnfinishedLimits,
    entries: HashMap<ConnKey, Entry>,
    /// Sum of every entry's `bytes`.
    total: usize,
}

impl Unfinished {
    /// An empty table.
    pub fn new(limits: UnfinishedLimits) -> Self {
        Self {
            limits,
            entries: HashMap::new(),
            total: 0,
        }
    }

    /// Records what a connection holds after a read at `now_ms`: `held`
    /// bytes (0: nothing unfinished); `restarted` when a message completed
    /// during the read, so that what is held now began with it.
    pub fn update(&mut self, key: ConnKey, held: usize, restarted: bool, now_ms: u32) -> Verdict {
        if held == 0 {
            self.remove(key);
            return Verdict::Ok;
        }
        let entry = self.entries.entry(key).or_insert(Entry {
            started_ms: now_ms,
            bytes: 0,
        });
        if restarted {
            entry.started_ms = now_ms;
        }
        self.total = self.total - entry.bytes + held;
        entry.bytes = held;
        if now_ms.wrapping_sub(entry.started_ms) > self.limits.timeout_ms {
            Verdict::Overdue
        } else if self.total > self.limits.budget_bytes {
            Verdict::OverBudget
        } else {
            Verdict::Ok
        }
    }

    /// Forgets a connection (closed, or its unfinished message dropped).
    pub fn remove(&mut self, key: ConnKey) {
        if let Some(e) = self.entries.remove(&key) {
            self.total -= e.bytes;
        }
        if self.entries.is_empty() && self.entries.capacity() > 64 {
            // After a burst, the table does not keep its peak size.
            self.entries = HashMap::new();
        }
    }

    /// Connections whose message began longer than the timeout ago.
    pub fn overdue(&self, now_ms: u32) -> Vec<ConnKey> {
        self.entries
            .iter()
            .filter(|(_, e)| now_ms.wrapping_sub(e.started_ms) > self.limits.timeout_ms)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Bytes held by every unfinished message of the shard.
    pub fn total_bytes(&self) -> usize {
        self.total
    }

    /// Connections mid-message.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no connection is mid-message.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: UnfinishedLimits = UnfinishedLimits {
        timeout_ms: 1_000,
        budget_bytes: 100_000,
    };

    fn key(index: u32) -> ConnKey {
        ConnKey {
            index,
            generation: 1,
        }
    }

    #[test]
    fn a_message_must_complete_within_the_timeout_however_it_trickles() {
        let mut t = Unfinished::new(LIMITS);
        assert_eq!(t.update(key(1), 300, false, 10), Verdict::Ok);
        // A byte now and then does not move the start.
        for now in (100..=1_000).step_by(100) {
            assert_eq!(t.update(key(1), 301, false, now), Verdict::Ok, "at {now}");
        }
        assert!(t.overdue(1_010).is_empty());
        assert_eq!(t.overdue(1_011), vec![key(1)], "the sweep finds it");
        assert_eq!(t.update(key(1), 302, false, 1_011), Verdict::Overdue);
    }

    #[test]
    fn a_completed_message_restarts_the_clock_and_idle_leaves_the_table() {
        let mut t = Unfinished::new(LIMITS);
        t.update(key(1), 300, false, 10);
        // A message completed during this read; the next one began with it.
        assert_eq!(t.update(key(1), 50, true, 900), Verdict::Ok);
        assert_eq!(t.update(key(1), 60, false, 1_800), Verdict::Ok);
        assert!(t.overdue(1_900).is_empty());
        assert_eq!(t.update(key(1), 0, false, 1_950), Verdict::Ok);
        assert!(t.is_empty() && t.total_bytes() == 0);
        assert!(
            t.overdue(10_000).is_empty(),
            "idle connections are not timed"
        );
    }

    #[test]
    fn the_connection_that_takes_the_shard_past_the_budget_is_the_offender() {
        let mut t = Unfinished::new(LIMITS);
        for i in 0..3 {
            assert_eq!(t.update(key(i), 30_000, false, 1), Verdict::Ok);
        }
        assert_eq!(t.total_bytes(), 90_000);
        assert_eq!(t.update(key(3), 5_000, false, 2), Verdict::Ok);
        assert_eq!(t.update(key(3), 10_001, false, 3), Verdict::OverBudget);
        // Dropping the offender's message makes room for the others again.
        t.remove(key(3));
        assert_eq!(t.update(key(0), 40_000, false, 4), Verdict::Ok);
        assert_eq!((t.len(), t.total_bytes()), (3, 100_000));
        t.remove(key(0));
        t.remove(key(0));
        assert_eq!(
            (t.len(), t.total_bytes()),
            (2, 60_000),
            "removing twice is harmless"
        );
    }

    #[test]
    fn the_table_lets_go_of_its_peak_size() {
        let mut t = Unfinished::new(LIMITS);
        for i in 0..1_000 {
            t.update(key(i), 10, false, 1);
        }
        for i in 0..1_000 {
            t.remove(key(i));
        }
        assert!(t.is_empty());
        assert_eq!(t.entries.capacity(), 0);
    }
}
