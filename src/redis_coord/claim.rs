//! Is the other process holding our `SERVER_ID` alive?
//!
//! When our liveness key holds another boot id, either a second instance
//! runs with our id (a configuration error: refuse), or a previous process
//! of ours crashed and its key has not expired yet (wait and take it over).
//! They are told apart by watching the key's remaining TTL across attempts:
//! a live holder refreshes its key every third of its TTL, so the TTL goes
//! up; a dead holder's only goes down until the key expires (and the claim
//! then succeeds). A key without a TTL never expires: treated as live.
//!
//! I/O-free; the worker feeds it each attempt's answer.

use std::time::Duration;

/// The verdict after one more look at the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided: look again soon; a dead holder's key expires within
    /// `within` (after which the claim succeeds), a live one refreshes first.
    Wait {
        /// Bound on the time to a decision.
        within: Duration,
    },
    /// The holder refreshed its key: another live process has our id.
    Live,
}

/// What was seen of the holder so far.
#[derive(Debug, Default)]
pub struct ClaimWatch {
    /// The holder and its key's TTL at the previous look.
    last: Option<(String, i64)>,
}

impl ClaimWatch {
    /// The key holds `holder` with `pttl_ms` left (Redis `PTTL`).
    pub fn observe(&mut self, holder: &str, pttl_ms: i64) -> Verdict {
        let refreshed = matches!(&self.last, Some((h, prev)) if h == holder && pttl_ms > *prev);
        self.last = Some((holder.to_owned(), pttl_ms));
        if refreshed || pttl_ms == -1 {
            return Verdict::Live;
        }
        let left = u64::try_from(pttl_ms).unwrap_or(0);
        Verdict::Wait {
            within: Duration::from_millis(left),
        }
    }

    /// The claim succeeded (or the link failed): start afresh next time.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decreasing_ttl_waits_and_a_refresh_is_live() {
        let mut w = ClaimWatch::default();
        assert_eq!(
            w.observe("b1", 900),
            Verdict::Wait {
                within: Duration::from_millis(900)
            }
        );
        assert!(matches!(w.observe("b1", 700), Verdict::Wait { .. }));
        assert!(matches!(w.observe("b1", 700), Verdict::Wait { .. }));
        assert_eq!(w.observe("b1", 1000), Verdict::Live, "refreshed");
    }

    #[test]
    fn a_new_holder_starts_over_and_no_ttl_is_live() {
        let mut w = ClaimWatch::default();
        w.observe("b1", 100);
        assert!(
            matches!(w.observe("b2", 1000), Verdict::Wait { .. }),
            "another process took the expired key: not a refresh"
        );
        w.reset();
        assert!(matches!(w.observe("b2", 2000), Verdict::Wait { .. }));
        assert_eq!(w.observe("b3", -1), Verdict::Live);
        assert!(matches!(
            ClaimWatch::default().observe("b4", -2),
            Verdict::Wait { within } if within.is_zero()
        ));
    }
}
