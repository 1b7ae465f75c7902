//! Whether the instance can take more clients, as `/ready` tells a load
//! balancer: the connection limit with hysteresis, and the accept loops'
//! state at the file descriptor limit. I/O-free: counts and times are
//! passed in.
//!
//! - [`Admission`] (one per instance, in [`crate::instance::Instance`]):
//!   `/ready` turns 503 when open connections reach `MAX_CONNECTIONS` and
//!   stays so until they fall to `READY_RESUME_PERCENT` of it, so that a
//!   load balancer does not flap an instance in and out at the limit; and
//!   it is 503 while any shard's accept loop is stalled at the descriptor
//!   limit.
//! - [`AcceptBackoff`] (one per shard's accept loop): how long to wait
//!   after `EMFILE`/`ENFILE` before accepting again (doubling, bounded), and
//!   whether to log it (one line per [`LOG_EVERY_MS`], with the count of
//!   failures left out), instead of ~40 warnings a second.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// First wait after an accept failed for lack of descriptors.
pub const FIRST_BACKOFF_MS: u32 = 20;
/// Longest wait between accept attempts while descriptors are short.
pub const MAX_BACKOFF_MS: u32 = 1_000;
/// At most one log line about failing accepts per shard this often.
pub const LOG_EVERY_MS: u32 = 10_000;

/// The instance's capacity as `/ready` reports it.
#[derive(Debug)]
pub struct Admission {
    /// `MAX_CONNECTIONS`.
    max: usize,
    /// Open connections at or below which a full instance is ready again.
    resume_at: usize,
    /// Set when open connections reached `max`; cleared at `resume_at`.
    full: AtomicBool,
    /// Shards whose accept loop cannot get a descriptor.
    stalled: AtomicUsize,
}

impl Admission {
    /// For `max` connections, ready again at `resume_percent` % of it (at
    /// least one below `max`).
    pub fn new(max: usize, resume_percent: u8) -> Self {
        let resume_at = (max as u128 * u128::from(resume_percent.min(100)) / 100) as usize;
        Self {
            max,
            resume_at: resume_at.min(max.saturating_sub(1)),
            full: AtomicBool::new(false),
            stalled: AtomicUsize::new(0),
        }
    }

    /// A connection slot was reserved; `open` are open now.
    pub fn reserved(&self, open: usize) {
        if open >= self.max {
            self.full.store(true, Ordering::Release);
        }
    }

    /// `/ready`'s capacity part with `open` connections now: false at the
    /// limit and after it until `open` falls to the resume mark, and while a
    /// shard cannot accept. Decided from the count it is given, so a race
    /// with [`Admission::reserved`] can cost the hysteresis, never the limit.
    pub fn has_room(&self, open: usize) -> bool {
        if open >= self.max {
            self.full.store(true, Ordering::Release);
            return false;
        }
        if self.full.load(Ordering::Acquire) {
            if open > self.resume_at {
                return false;
            }
            self.full.store(false, Ordering::Release);
        }
        self.can_accept()
    }

    /// False while a shard's accept loop is at the descriptor limit: new
    /// upgrades are refused then, so the descriptor kept in reserve goes to
    /// answering (503) rather than to a connection that would keep it.
    pub fn can_accept(&self) -> bool {
        self.stalled.load(Ordering::Acquire) == 0
    }

    /// A shard's accept loop ran out of descriptors (call once per stall).
    pub fn stall(&self) {
        self.stalled.fetch_add(1, Ordering::AcqRel);
    }

    /// That shard can accept again (call once per [`Admission::stall`]).
    pub fn resume(&self) {
        self.stalled.fetch_sub(1, Ordering::AcqRel);
    }

    /// Open connections at or below which a full instance is ready again.
    pub fn resume_at(&self) -> usize {
        self.resume_at
    }
}

/// True for the accept errors that mean the process or system is out of a
/// resource, not that one client misbehaved: back off, and say not ready.
pub fn is_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// What to do after a failed accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Wait this long before accepting again.
    pub delay_ms: u32,
    /// Log now, saying how many failures were left out since the last line;
    /// `None`: stay quiet.
    pub log: Option<u32>,
}

/// At most one log line per [`LOG_EVERY_MS`] for a recurring event.
#[derive(Debug, Default)]
pub struct LogLimiter {
    /// Clock (ms) of the last line, if any.
    logged_at: Option<u32>,
    /// Events since the last line.
    quiet: u32,
}

impl LogLimiter {
    /// The event happened at `now_ms` (any clock that only grows): `Some`
    /// with the number of events left out since the last line when a line
    /// is due, else `None`.
    pub fn note(&mut self, now_ms: u32) -> Option<u32> {
        let due = self
            .logged_at
            .is_none_or(|at| now_ms.wrapping_sub(at) >= LOG_EVERY_MS);
        if due {
            self.logged_at = Some(now_ms);
            Some(std::mem::take(&mut self.quiet))
        } else {
            self.quiet += 1;
            None
        }
    }
}

/// One accept loop's back-off and log limiter.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    /// The last wait; 0 when accepting works.
    delay_ms: u32,
    /// Lines about failing accepts.
    log: LogLimiter,
}

impl AcceptBackoff {
    /// An accept failed at `now_ms` (any clock that only grows).
    pub fn failed(&mut self, now_ms: u32) -> Step {
        self.delay_ms = match self.delay_ms {
            0 => FIRST_BACKOFF_MS,
            d => d.saturating_mul(2).min(MAX_BACKOFF_MS),
        };
        Step {
            delay_ms: self.delay_ms,
            log: self.log.note(now_ms),
        }
    }

    /// Accepting works again: the next failure waits the shortest time.
    /// (The log limiter keeps its clock: flapping logs no more often.)
    pub fn recovered(&mut self) {
        self.delay_ms = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_turns_503_at_the_limit_and_back_only_at_the_resume_mark() {
        let a = Admission::new(10, 50);
        assert_eq!(a.resume_at(), 5);
        assert!(a.has_room(9));
        a.reserved(10);
        assert!(!a.has_room(10));
        for open in [9, 6] {
            assert!(!a.has_room(open), "hysteresis at {open}");
        }
        assert!(a.has_room(5), "ready again at the mark");
        assert!(a.has_room(9), "and stays so below the limit");
        // Seen full by /ready alone (no reservation noted it): same rule.
        assert!(!a.has_room(10));
        assert!(!a.has_room(7));
    }

    #[test]
    fn the_resume_mark_is_below_the_limit_even_at_100_percent() {
        assert_eq!(Admission::new(2, 95).resume_at(), 1);
        assert_eq!(Admission::new(2, 100).resume_at(), 1);
        assert_eq!(Admission::new(1_000_000, 95).resume_at(), 950_000);
        assert_eq!(Admission::new(1, 0).resume_at(), 0);
    }

    #[test]
    fn a_stalled_shard_makes_the_instance_not_ready_until_it_resumes() {
        let a = Admission::new(10, 90);
        a.stall();
        a.stall();
        assert!(!a.has_room(0) && !a.can_accept());
        a.resume();
        assert!(!a.has_room(0), "one shard still stalled");
        a.resume();
        assert!(a.has_room(0) && a.can_accept());
    }

    #[test]
    fn backoff_doubles_to_its_bound_and_restarts_after_recovery() {
        let mut b = AcceptBackoff::default();
        let delays: Vec<u32> = (0..8).map(|i| b.failed(i).delay_ms).collect();
        assert_eq!(delays, [20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.recovered();
        assert_eq!(b.failed(100).delay_ms, FIRST_BACKOFF_MS);
    }

    #[test]
    fn one_log_line_per_period_counting_the_quiet_failures() {
        let mut b = AcceptBackoff::default();
        assert_eq!(b.failed(1).log, Some(0), "the first failure is logged");
        // 40 failures a second for 25 s: three lines, not a thousand.
        let mut lines = vec![(1, 0)];
        for i in 1..1_000u32 {
            let now = 1 + i * 25;
            if let Some(quiet) = b.failed(now).log {
                lines.push((now, quiet));
            }
        }
        assert_eq!(lines, [(1, 0), (10_001, 399), (20_001, 399)]);
        b.recovered();
        assert_eq!(
            b.failed(20_100).log,
            None,
            "recovery does not reset the limiter"
        );
    }

    #[test]
    fn only_resource_errors_count_as_exhaustion() {
        let err = std::io::Error::from_raw_os_error;
        assert!(is_exhaustion(&err(libc::EMFILE)));
        assert!(is_exhaustion(&err(libc::ENFILE)));
        assert!(!is_exhaustion(&err(libc::ECONNABORTED)));
        assert!(!is_exhaustion(&std::io::Error::other("x")));
    }
}
