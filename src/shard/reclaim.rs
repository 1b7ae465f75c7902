//! Giving the memory of a burst back to the OS.
//!
//! A burst of handshakes (a reconnect storm, a load test ramp), of closes or
//! of channel subscribes frees a lot of short-lived memory at once:
//! handshake tasks, request buffers, send queues, answers. mimalloc keeps freed pages of a thread until that
//! thread's heap is collected, so an idle shard would go on holding the
//! burst's peak. The shard notes every event that frees memory and, once a
//! burst is over (a sweep tick without any) or at least every
//! [`RECLAIM_EVERY_MS`] while churn goes on, collects its heap: empty pages
//! go back to the OS. A shard without connects, closes or HTTP requests never
//! collects; health probes alone cause at most one collection (~0.1 ms) per
//! 10 s.

use std::cell::Cell;

/// Longest time between collections while connections keep churning.
pub const RECLAIM_EVERY_MS: u32 = 10_000;

/// When to collect this shard's heap.
#[derive(Debug, Default)]
pub struct Reclaim {
    /// Memory-freeing events (handshakes ended, connections removed) since the last collection.
    churn: Cell<u32>,
    /// `churn` at the previous sweep tick, to see whether the burst goes on.
    churn_at_last_tick: Cell<u32>,
    /// Shard clock (ms) of the last collection.
    last_ms: Cell<u32>,
}

impl Reclaim {
    /// Something that held memory just ended.
    pub fn note(&self) {
        self.churn.set(self.churn.get().saturating_add(1));
    }

    /// Called every sweep tick: true when the heap should be collected now.
    pub fn due(&self, now_ms: u32) -> bool {
        let churn = self.churn.get();
        if churn == 0 {
            return false;
        }
        let quiet = churn == self.churn_at_last_tick.get();
        let overdue = now_ms.wrapping_sub(self.last_ms.get()) >= RECLAIM_EVERY_MS;
        if quiet || overdue {
            self.churn.set(0);
            self.churn_at_last_tick.set(0);
            self.last_ms.set(now_ms);
            return true;
        }
        self.churn_at_last_tick.set(churn);
        false
    }
}

/// Returns this thread's empty heap pages to the OS.
pub fn collect_thread_heap() {
    // SAFETY: mi_collect has no preconditions; it only touches the calling
    // thread's heap (and is harmless when mimalloc is not the global allocator).
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_shard_never_collects() {
        let r = Reclaim::default();
        assert!(!r.due(1_000));
        assert!(!r.due(60_000));
    }

    #[test]
    fn collects_once_a_burst_is_over() {
        let r = Reclaim::default();
        r.last_ms.set(1_000);
        r.note();
        r.note();
        assert!(!r.due(1_100), "the burst may go on");
        assert!(r.due(1_200), "a quiet tick ends the burst");
        assert!(!r.due(1_300), "nothing freed since");
    }

    #[test]
    fn collects_during_endless_churn_at_a_bounded_interval() {
        let r = Reclaim::default();
        r.last_ms.set(0);
        let mut collected_at = Vec::new();
        for tick in 1..=250u32 {
            r.note();
            if r.due(tick * 100) {
                collected_at.push(tick * 100);
            }
        }
        assert_eq!(collected_at, vec![10_000, 20_000]);
    }
}
